//! The loopback listener that catches the browser's redirect back to the app (RFC 8252 §7.3).
//!
//! It listens on `127.0.0.1` on a port the system picks and serves one `GET` of its path: other
//! requests (`/favicon.ico`, stray probes) get a 404 and it keeps listening. The browser's
//! request is held open until the app knows how signing in ended, so the page says so.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A request larger than this is not a redirect to us.
const MAX_REQUEST: usize = 16 * 1024;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Loopback {
    listener: TcpListener,
    path: &'static str,
}

/// The redirect that arrived: its query parameters, and the browser waiting for a page.
pub(crate) struct Arrival {
    pub params: HashMap<String, String>,
    stream: TcpStream,
}

impl Loopback {
    pub async fn bind(path: &'static str) -> std::io::Result<Loopback> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Ok(Loopback { listener, path })
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn uri(&self) -> String {
        let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
        format!("http://127.0.0.1:{port}{}", self.path)
    }

    /// Waits for the one `GET {path}`; forever, so callers bound it with a timeout.
    pub async fn arrival(&self) -> Arrival {
        loop {
            let Ok((mut stream, _)) = self.listener.accept().await else {
                continue;
            };
            let target = match tokio::time::timeout(READ_TIMEOUT, request_target(&mut stream)).await
            {
                Ok(Some(target)) => target,
                _ => continue,
            };
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            if path != self.path {
                let _ = respond(&mut stream, "404 Not Found", "Not found", "").await;
                continue;
            }
            let params = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            return Arrival { params, stream };
        }
    }
}

impl Arrival {
    /// Answers the browser with a small page: a heading and what to do next.
    pub async fn answer(mut self, heading: &str, text: &str) {
        if let Err(e) = respond(&mut self.stream, "200 OK", heading, text).await {
            tracing::debug!(error = %e, "the browser left before its page was sent");
        }
    }
}

/// The target of a `GET` request line, or `None` for anything else.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buffer.len() + n > MAX_REQUEST {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let head = std::str::from_utf8(&buffer).ok()?;
    let mut parts = head.lines().next()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    heading: &str,
    text: &str,
) -> std::io::Result<()> {
    let body = page(heading, text);
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn page(heading: &str, text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>{h} — Tallydesk</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}</style>\
         </head><body><main><h1>{h}</h1><p>{t}</p></main></body></html>",
        h = escape(heading),
        t = escape(text)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

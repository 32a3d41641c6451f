//! The certified OpenID provider, and a browser for its pages.
//!
//! The provider is the npm package `oidc-provider`, run by `oidc/provider.mjs` (beside this
//! crate's `Cargo.toml`; `scripts/setup` installs its packages) on a free loopback port with
//! keys generated at start: one public client, the desktop app, and `at+jwt` access tokens for
//! the API. Nothing about its tokens is faked, so what signs in against it meets what a real
//! identity provider issues.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// `oidc/provider.mjs` under node; gone when dropped (or when this process is).
pub struct OidcProvider {
    pub issuer: String,
    /// The provider exits when its stdin closes, even if this process dies without killing it.
    _stdin: ChildStdin,
    _child: Child,
    /// What the provider wrote to stderr, shown when a test fails.
    log: Arc<Mutex<String>>,
}

impl OidcProvider {
    pub async fn start() -> OidcProvider {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the OIDC test provider's npm packages are missing in {}: run scripts/setup (npm ci in testkit/oidc)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "starting `node provider.mjs` (is Node.js installed? scripts/setup installs it)",
            );
        let stdin = child.stdin.take().expect("piped stdin");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line()).await;
        let issuer = match &first {
            Ok(Ok(Some(line))) => serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["issuer"].as_str().map(str::to_owned)),
            _ => None,
        };
        let Some(issuer) = issuer else {
            // Give stderr a moment to arrive, so the message says why.
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "the OIDC provider did not announce its issuer ({first:?}); its stderr:\n{}",
                log.lock().unwrap_or_else(|e| e.into_inner())
            );
        };
        OidcProvider {
            issuer,
            _stdin: stdin,
            _child: child,
            log,
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "OIDC provider stderr:\n{}",
                self.log.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
}

/// An HTTP client going through an identity provider's pages as a person's browser does: a
/// cookie jar, and redirects followed by hand so that the one back to the app is caught rather
/// than connected to.
#[derive(Clone)]
pub struct BrowserClient {
    pub http: reqwest::Client,
}

/// Where following redirects ends: a page to fill in, or the redirect back to the app.
pub enum Landing {
    Page { url: Url, html: String },
    Back(Url),
}

/// What one request answered, redirects not followed: a page (status and HTML), or a redirect.
#[derive(Debug)]
pub enum Answer {
    Page {
        status: reqwest::StatusCode,
        url: Url,
        html: String,
    },
    Redirect(Url),
}

impl Answer {
    /// Sends `request` and reads what it answered.
    pub async fn of(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("a request to the provider");
        let url = response.url().clone();
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .expect("a redirect has a Location");
            return Answer::Redirect(url.join(location).expect("a valid Location"));
        }
        let html = response.text().await.expect("page body");
        Answer::Page { status, url, html }
    }

    #[track_caller]
    pub fn page(self) -> (reqwest::StatusCode, Url, String) {
        match self {
            Answer::Page { status, url, html } => (status, url, html),
            Answer::Redirect(to) => panic!("expected a page, was sent to {to}"),
        }
    }

    #[track_caller]
    pub fn redirect(self) -> Url {
        match self {
            Answer::Redirect(to) => to,
            Answer::Page { status, url, html } => {
                panic!("expected a redirect, got {status} at {url}:\n{html}")
            }
        }
    }
}

impl BrowserClient {
    pub fn new() -> BrowserClient {
        BrowserClient {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
        }
    }

    /// Sends `request`, then follows redirects (GET, cookies kept) until a page, or a redirect
    /// to a URL that starts with `back`.
    pub async fn follow(&self, mut request: reqwest::RequestBuilder, back: &str) -> Landing {
        for _ in 0..10 {
            match Answer::of(request).await {
                Answer::Redirect(next) if next.as_str().starts_with(back) => {
                    return Landing::Back(next);
                }
                Answer::Redirect(next) => request = self.http.get(next),
                Answer::Page { status, url, html } => {
                    assert!(status.is_success(), "{url} answered {status}:\n{html}");
                    return Landing::Page { url, html };
                }
            }
        }
        panic!("too many redirects");
    }

    /// Posts `form` with its fields as they are, then follows redirects as [`Self::follow`].
    pub async fn submit(&self, form: Form, back: &str) -> Landing {
        self.follow(self.http.post(form.action).form(&form.fields), back)
            .await
    }
}

impl Default for BrowserClient {
    fn default() -> Self {
        BrowserClient::new()
    }
}

/// The first HTML form of a page: where it posts, and its fields with their initial values.
pub struct Form {
    pub action: Url,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(html: &str, page: &Url) -> Form {
        let start = html
            .find("<form")
            .unwrap_or_else(|| panic!("no form on {page}:\n{html}"));
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |end| start + end);
        let form = &html[start..end];
        let tag = |at: usize| &form[at..form[at..].find('>').map_or(form.len(), |end| at + end)];
        let action = attribute(tag(0), "action").unwrap_or_default();
        let action = page.join(&action).expect("a valid form action");
        let fields = form
            .match_indices("<input")
            .filter_map(|(at, _)| {
                let input = tag(at);
                let name = attribute(input, "name")?;
                Some((name, attribute(input, "value").unwrap_or_default()))
            })
            .collect();
        Form { action, fields }
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(key, _)| key == name) {
            Some(field) => field.1 = value.to_owned(),
            None => panic!("the form has no field {name:?}: {:?}", self.fields),
        }
    }
}

/// A double-quoted attribute of an HTML tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// 32 random bytes, base64url: a PKCE verifier, a state, a nonce.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The claims of a JWT, unverified (the server does the verifying).
pub fn jwt_payload(token: &str) -> Value {
    jwt_part(token, 1)
}

/// Part `index` of a signed JWT (0: header, 1: claims), decoded.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a signed JWT has three parts: {token}");
    let part = URL_SAFE_NO_PAD.decode(parts[index]).expect("base64url");
    serde_json::from_slice(&part).expect("a JSON object")
}

/// `token` with the first byte of its signature changed.
pub fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let mut signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    signature[0] ^= 0x01;
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

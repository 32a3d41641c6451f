//! The server side of the fault test: two `tallydesk-server` processes on one Postgres
//! database, behind a TCP proxy whose address is their shared public URL (so one issuer, and
//! one server URL for the desktops). Instances are killed with SIGKILL and started again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Forwards each connection to one of the instances that are up, in turn.
pub struct Proxy {
    pub url: String,
    up: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the proxy");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let up: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let targets = up.clone();
        let turn = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let targets = targets.clone();
                let turn = turn.clone();
                tokio::spawn(async move {
                    let candidates = targets.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if candidates.is_empty() {
                        return;
                    }
                    let first = turn.fetch_add(1, Ordering::Relaxed);
                    for i in 0..candidates.len() {
                        let addr = candidates[(first + i) % candidates.len()];
                        if let Ok(mut outbound) = TcpStream::connect(addr).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Proxy { url, up }
    }

    fn set_up(&self, addr: SocketAddr, up: bool) {
        let mut list = self.up.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|a| *a != addr);
        if up {
            list.push(addr);
        }
    }
}

/// One `tallydesk-server` process.
pub struct Instance {
    pub name: String,
    addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

/// The server binary next to this test binary (`target/debug`).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let binary = dir.join("tallydesk-server");
    assert!(
        binary.is_file(),
        "{} is missing: the fault test runs the real server binary; build it first with \
         `cargo build -p tallydesk-server`",
        binary.display()
    );
    binary
}

fn free_port() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    socket.local_addr().expect("its address")
}

impl Instance {
    pub fn new(name: &str, dir: &Path) -> Instance {
        Instance {
            name: name.to_owned(),
            addr: free_port(),
            child: None,
            log: dir.join(format!("{name}.log")),
        }
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process and waits until it answers `/api/v1/health`.
    pub async fn start(&mut self, database_url: &str, proxy: &Proxy) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's log file");
        let child = Command::new(server_binary())
            .env("TALLYDESK_DATABASE_URL", database_url)
            .env("TALLYDESK_LISTEN", self.addr.to_string())
            .env("TALLYDESK_PUBLIC_URL", &proxy.url)
            .env("TALLYDESK_BUILTIN_ISSUER", "on")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        self.child = Some(child);
        let health = format!("http://{}/api/v1/health", self.addr);
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(&health).send().await
                && r.status().is_success()
            {
                proxy.set_up(self.addr, true);
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited at start ({status}); its log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not answer {health} within 30 s", self.name);
    }

    /// How many lines of the server's log contain `text`.
    pub fn log_lines_with(&self, text: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(text))
            .count()
    }

    /// `kill -9`.
    pub async fn kill(&mut self, proxy: &Proxy) {
        proxy.set_up(self.addr, false);
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL reaches the server");
        }
    }
}

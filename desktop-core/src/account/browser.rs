//! Opening a page in the person's browser: the sign-in and sign-out pages of the identity provider.

use std::process::{Command, Stdio};
use std::sync::Arc;

/// The environment variable naming a program to open pages with instead of the system browser.
/// It is run with the URL as its one argument (tests drive the login form with it).
pub const BROWSER_ENV: &str = "TALLYDESK_BROWSER";

/// Opens a URL, or says why it could not.
type Open = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Opens a URL somewhere a person (or a test) can act on it.
#[derive(Clone)]
pub struct Browser(Arc<Open>);

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Browser")
    }
}

impl Browser {
    /// `open` decides what opening a URL means; its error says why it could not.
    pub fn new(open: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Browser {
        Browser(Arc::new(open))
    }

    /// The program named by `TALLYDESK_BROWSER`, else the system's default browser.
    pub fn system() -> Browser {
        match std::env::var_os(BROWSER_ENV).filter(|p| !p.is_empty()) {
            Some(program) => Browser::new(move |url| {
                spawn(Command::new(&program).arg(url)).map_err(|e| {
                    format!(
                        "{BROWSER_ENV} ({}) could not be started: {e}",
                        program.to_string_lossy()
                    )
                })
            }),
            None => Browser::new(|url| {
                spawn(&mut system_opener(url))
                    .map_err(|e| format!("the system browser could not be opened: {e}"))
            }),
        }
    }

    pub fn open(&self, url: &str) -> Result<(), String> {
        (self.0)(url)
    }
}

#[cfg(target_os = "macos")]
fn system_opener(url: &str) -> Command {
    let mut command = Command::new("open");
    command.arg(url);
    command
}

#[cfg(target_os = "windows")]
fn system_opener(url: &str) -> Command {
    // `start` would need the URL's `&` escaped for cmd; the URL handler takes it as it is.
    let mut command = Command::new("rundll32");
    command.arg("url.dll,FileProtocolHandler").arg(url);
    command
}

#[cfg(not(any(target_os = "macos", target_os = "windows")))]
fn system_opener(url: &str) -> Command {
    let mut command = Command::new("xdg-open");
    command.arg(url);
    command
}

/// Starts `command` without waiting for it; a thread reaps it and logs a failure.
fn spawn(command: &mut Command) -> std::io::Result<()> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    std::thread::spawn(move || match child.wait() {
        Ok(status) if !status.success() => {
            tracing::warn!(%status, "the browser program failed");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "waiting for the browser program failed"),
    });
    Ok(())
}

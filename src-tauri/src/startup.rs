//! Where start-up time goes: milestones from process start to the first interactive screen,
//! logged at debug level under the `tallydesk::startup` target
//! (`RUST_LOG=tallydesk::startup=debug`), and the one line the start-up figures wait for.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

static STARTED: OnceLock<Instant> = OnceLock::new();
static INTERACTIVE: AtomicBool = AtomicBool::new(false);
static SHOWN: Notify = Notify::const_new();

/// The longest work that waits for the first screen waits, should the UI never say it is there
/// (a workspace that cannot open shows its problem instead).
const SHOWN_AT_LATEST: Duration = Duration::from_secs(3);

/// Notes the start of the process; call first thing in `main`.
pub fn begin() {
    STARTED.get_or_init(Instant::now);
}

/// Milliseconds since [`begin`].
pub fn elapsed_ms() -> u128 {
    STARTED.get().map_or(0, |t| t.elapsed().as_millis())
}

/// Logs a milestone on the way to the first interactive screen (nothing once it is there).
pub fn mark(step: &str) {
    if !INTERACTIVE.load(Ordering::Relaxed) {
        tracing::debug!(target: "tallydesk::startup", ms = elapsed_ms(), "{step}");
    }
}

/// A step of the UI's on the way to its first screen, at `at_ms` on the page's clock.
#[derive(Debug, serde::Deserialize, specta::Type)]
pub struct UiMilestone {
    pub step: String,
    pub at_ms: u32,
}

/// The UI says its first screen is interactive: printed once, on stdout, for
/// `scripts/desktop-figures`. Its milestones, timed on the page's clock (which reads `now_ms`
/// at this call), are logged on the process's clock beside the others.
pub fn interactive(milestones: &[UiMilestone], now_ms: u32) {
    if INTERACTIVE.swap(true, Ordering::Relaxed) {
        return;
    }
    SHOWN.notify_waiters();
    let ms = elapsed_ms();
    for m in milestones {
        let at = ms as i64 - i64::from(now_ms) + i64::from(m.at_ms);
        tracing::debug!(target: "tallydesk::startup", ms = at, "ui: {}", m.step);
    }
    tracing::info!(ms, "first interactive screen");
    println!("tallydesk: first interactive screen {ms} ms after start");
}

/// Waits for the first interactive screen (or [`SHOWN_AT_LATEST`]): work the first screen does
/// not need (the tray, SLA alerts) waits, so that it does not compete with the webview for the
/// CPU while the app starts.
pub async fn first_screen_shown() {
    let shown = SHOWN.notified();
    tokio::pin!(shown);
    shown.as_mut().enable();
    if INTERACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let _ = tokio::time::timeout(SHOWN_AT_LATEST, shown).await;
}

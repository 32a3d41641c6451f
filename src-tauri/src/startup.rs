//! Where start-up time goes: milestones from process start to the first interactive screen,
//! logged at debug level under the `tallydesk::startup` target
//! (`RUST_LOG=tallydesk::startup=debug`), and the one line the start-up figures wait for.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();
static INTERACTIVE: AtomicBool = AtomicBool::new(false);

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

/// The UI says its first screen is interactive: printed once, on stdout, for
/// `scripts/desktop-figures`.
pub fn interactive() {
    if INTERACTIVE.swap(true, Ordering::Relaxed) {
        return;
    }
    let ms = elapsed_ms();
    tracing::info!(ms, "first interactive screen");
    println!("tallydesk: first interactive screen {ms} ms after start");
}

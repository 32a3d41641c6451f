//! Where the time comes from: the system clock in the apps, a fixed or stepped one in tests.
//!
//! The rules in this crate never read it; the server and the desktop hold one and pass the time
//! it tells into them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// How to wait until a clock moved by hand reads a time; `None`: real time passes.
    wait_until: Option<Arc<dyn Fn(DateTime<Utc>) -> Wait + Send + Sync>>,
}

/// Resolves once a clock moved by hand reads a given time or later.
pub type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Clock {
    pub fn system() -> Self {
        Self::fixed(Utc::now)
    }

    /// Reads the time from `f`; waiting for a time takes real time, as on the system clock.
    pub fn fixed(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self {
            now: Arc::new(f),
            wait_until: None,
        }
    }

    /// A clock a test moves by hand: `now` reads it, and `wait_until(at)` resolves once it has
    /// been moved to `at` or past.
    pub fn manual(
        now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
        wait_until: impl Fn(DateTime<Utc>) -> Wait + Send + Sync + 'static,
    ) -> Self {
        Self {
            now: Arc::new(now),
            wait_until: Some(Arc::new(wait_until)),
        }
    }

    /// The current time, to the microsecond that Postgres and the desktop's store keep.
    pub fn now(&self) -> DateTime<Utc> {
        (self.now)().trunc_subsecs(6)
    }

    /// On a clock moved by hand, what resolves once it reads `at`. `None` on a clock that
    /// follows real time: the caller waits `at - now()` on its runtime's timer.
    pub fn wait_until(&self, at: DateTime<Utc>) -> Option<Wait> {
        self.wait_until.as_ref().map(|wait_until| wait_until(at))
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

//! Where the time comes from: the system clock in the apps, a fixed or stepped one in tests.
//!
//! The rules in this crate never read it; the server and the desktop hold one and pass the time
//! it tells into them.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    pub fn fixed(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The current time, to the microsecond that Postgres and the desktop's store keep.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)().trunc_subsecs(6)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

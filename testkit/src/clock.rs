//! A clock the test moves by hand, for deadlines and for the waits on them.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tallydesk_server::Clock;
use tokio::sync::watch;

/// A clock the test moves by hand: it starts on Monday 2026-11-02 at 08:00 UTC and stands
/// still until [`TestClock::advance`]. Tasks waiting on the server's clock made from it
/// ([`TestClock::clock`]) wake when the test moves it past their time.
#[derive(Clone)]
pub struct TestClock(Arc<Hands>);

struct Hands {
    time: watch::Sender<DateTime<Utc>>,
    /// How many tasks wait on the clock.
    waiting: watch::Sender<usize>,
}

impl TestClock {
    pub fn new() -> TestClock {
        let start = "2026-11-02T08:00:00Z".parse().expect("a start time");
        TestClock(Arc::new(Hands {
            time: watch::Sender::new(start),
            waiting: watch::Sender::new(0),
        }))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.time.borrow()
    }

    pub fn advance(&self, by: Duration) {
        self.0.time.send_modify(|now| *now += by);
    }

    /// Returns once some task waits on the clock (the SLA monitor between passes, say).
    pub async fn someone_waits(&self) {
        let mut waiting = self.0.waiting.subscribe();
        waiting
            .wait_for(|&tasks| tasks > 0)
            .await
            .expect("the clock outlives its tests");
    }

    /// The server's clock, reading this one.
    pub fn clock(&self) -> Clock {
        let (reading, waiting) = (self.clone(), self.clone());
        Clock::manual(
            move || reading.now(),
            move |at| Box::pin(waiting.clone().wait_until(at)),
        )
    }

    async fn wait_until(self, at: DateTime<Utc>) {
        let mut time = self.0.time.subscribe();
        self.0.waiting.send_modify(|tasks| *tasks += 1);
        let _counted = Counted(&self.0.waiting);
        time.wait_for(|&now| now >= at)
            .await
            .expect("the clock outlives its tests");
    }
}

impl Default for TestClock {
    fn default() -> Self {
        TestClock::new()
    }
}

/// Counts a task out of the waiting ones when its wait ends or is dropped.
struct Counted<'a>(&'a watch::Sender<usize>);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|tasks| *tasks -= 1);
    }
}

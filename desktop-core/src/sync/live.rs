//! When to sync: at start, after each local write (at once after a quiet spell, see
//! [`write_wait`]), on the server's `changed` events (and after every reconnect of their
//! stream), when asked to retry, and again with exponential backoff after a failure. Runs beside
//! the app; nothing here blocks a command.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::ErrorCode;
use crate::sync::Replica;

/// Local writes that come in a burst are pushed together: after a write starts a sync, the
/// next write-prompted sync starts no sooner than this.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// With nothing to prompt it, a sync still runs this often.
pub const IDLE_SYNC: Duration = Duration::from_secs(5 * 60);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Waits that double after each failure, up to a minute.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next attempt; the one after is twice as long (at most a minute).
    pub fn fail(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(LAST_RETRY);
        wait
    }

    pub fn succeed(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// How long a local write waits before the sync that sends it, given how long ago the last
/// write-prompted sync started (`None`: none yet). The first write after a quiet spell goes at
/// once; writes made during that sync or soon after wait until [`DEBOUNCE`] has passed since it
/// started, and go together (leading and trailing edge: at most one write-prompted sync per
/// `DEBOUNCE`, and none of them late by more than that).
pub fn write_wait(since_last: Option<Duration>) -> Duration {
    since_last.map_or(Duration::ZERO, |since| DEBOUNCE.saturating_sub(since))
}

/// Reads a Server-Sent Events stream as it arrives: feed it chunks, it says how many
/// messages asked for a pull (`changed`, or `resync`).
#[derive(Debug, Default)]
pub struct EventReader {
    buffer: String,
}

impl EventReader {
    pub fn feed(&mut self, chunk: &[u8]) -> usize {
        self.buffer
            .push_str(&String::from_utf8_lossy(chunk).replace('\r', ""));
        let mut pulls = 0;
        while let Some(end) = self.buffer.find("\n\n") {
            let message: String = self.buffer.drain(..end + 2).collect();
            let event = message
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            if matches!(event, Some("changed" | "resync")) {
                pulls += 1;
            }
        }
        pulls
    }
}

/// Syncs `replica` for as long as the task lives. `retry` asks for a sync now.
pub async fn run(replica: Replica, retry: Arc<Notify>) {
    let events = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(replica.clone(), events.clone()));
    let mut queued = replica.desk().queued();
    let mut backoff = Backoff::default();
    // When a local write last started a sync.
    let mut last_write_sync: Option<Instant> = None;
    loop {
        let wait = match replica.sync().await {
            Ok(()) => {
                backoff.succeed();
                IDLE_SYNC
            }
            Err(e) if matches!(e.code, ErrorCode::NotSignedIn | ErrorCode::SessionExpired) => {
                IDLE_SYNC
            }
            Err(e) => {
                let wait = backoff.fail();
                tracing::info!(error = %e, ?wait, "sync failed; trying again later");
                wait
            }
        };
        tokio::select! {
            changed = queued.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Err(e) = replica.refresh_status().await {
                    tracing::warn!(error = %e, "could not count the unsent changes");
                }
                tokio::time::sleep(write_wait(last_write_sync.map(|at| at.elapsed()))).await;
                // Writes made meanwhile go with this sync.
                queued.mark_unchanged();
                last_write_sync = Some(Instant::now());
            }
            () = events.notified() => {}
            () = retry.notified() => backoff.succeed(),
            () = tokio::time::sleep(wait) => {}
        }
    }
    listener.abort();
}

/// Keeps the server's event stream open while signed in, and wakes the sync on each
/// `changed` event and after each (re)connect.
async fn listen(replica: Replica, wake: Arc<Notify>) {
    let mut backoff = Backoff::default();
    let mut queued = replica.desk().queued();
    loop {
        let Some(scope) = replica.desk().sync_scope() else {
            // Signing in changes the scope, which also bumps `queued`.
            if queued.changed().await.is_err() {
                return;
            }
            continue;
        };
        match replica.connection().open_events().await {
            Ok(mut response) => {
                backoff.succeed();
                wake.notify_one();
                let mut reader = EventReader::default();
                // The stream ends when the server or the network drops it, or at once when the
                // scope changes (another tenant's events come on another stream), which also
                // bumps `queued`.
                loop {
                    tokio::select! {
                        chunk = response.chunk() => match chunk {
                            Ok(Some(chunk)) => {
                                if reader.feed(&chunk) > 0 {
                                    wake.notify_one();
                                }
                            }
                            _ => break,
                        },
                        changed = queued.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            if replica.desk().sync_scope().as_ref() != Some(&scope) {
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let wait = backoff.fail();
                tracing::debug!(error = %e, ?wait, "no event stream; trying again later");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_and_starts_over_after_a_success() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| b.fail().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.succeed();
        assert_eq!(b.fail(), Duration::from_secs(1));
    }

    #[test]
    fn a_write_after_a_quiet_spell_syncs_at_once_and_a_burst_waits_out_the_debounce() {
        assert_eq!(
            write_wait(None),
            Duration::ZERO,
            "the first write since the loop started is sent at once"
        );
        assert_eq!(
            write_wait(Some(DEBOUNCE * 3)),
            Duration::ZERO,
            "after a quiet spell, a write is sent at once"
        );
        assert_eq!(write_wait(Some(DEBOUNCE)), Duration::ZERO);
        assert_eq!(
            write_wait(Some(Duration::from_millis(100))),
            DEBOUNCE - Duration::from_millis(100),
            "a write soon after the last one waits for the rest of the window, gathering others"
        );
        assert_eq!(
            write_wait(Some(Duration::ZERO)),
            DEBOUNCE,
            "a write made while its predecessor's sync runs waits a whole window at most"
        );
    }

    #[test]
    fn changed_and_resync_events_ask_for_a_pull_across_chunk_boundaries() {
        let mut r = EventReader::default();
        assert_eq!(
            r.feed(b":keep-alive\n\nevent: sla\ndata: {}\n\nevent: chan"),
            0
        );
        assert_eq!(
            r.feed(b"ged\r\ndata: {\"tenant_id\":\"x\",\"seq\":4}\r\n\r\n"),
            1,
            "a message split over two chunks counts once it is complete"
        );
        assert_eq!(
            r.feed(b"event:changed\ndata: {}\n\nevent: resync\ndata: {}\n\n"),
            2
        );
    }
}

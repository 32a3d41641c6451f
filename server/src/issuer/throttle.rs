//! Rate limits on password attempts, per account and per client address.
//!
//! Each attempt is counted *before* the password is checked, in one statement, so concurrent
//! attempts (on any number of server instances: the counters live in Postgres) cannot slip past
//! the limit. A correct password takes its attempt back. Counts are kept in fixed windows:
//! once a key is over its limit, attempts are refused until its window ends.
//!
//! The account key is the email as typed (lower-cased), whether or not an account has it, so
//! being throttled reveals nothing about which accounts exist.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// Sign-ins that may wait for the login form at once, by default.
pub const DEFAULT_MAX_INTERACTIONS: u32 = 10_000;

/// How many attempts are allowed in one window, and how many sign-ins may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed attempts per account.
    pub per_account: i32,
    /// Attempts per client address (a shared NAT holds many people).
    pub per_address: i32,
    pub window: Duration,
    /// Sign-in requests waiting for the form at once, across all browsers: past it, a new one
    /// is refused `temporarily_unavailable` rather than stored.
    pub max_interactions: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_account: 5,
            per_address: 30,
            window: Duration::minutes(15),
            max_interactions: i64::from(DEFAULT_MAX_INTERACTIONS),
        }
    }
}

/// Who is attempting: the account named, and the address the request came from when known.
#[derive(Debug, Clone)]
pub struct Attempt {
    account: String,
    address: Option<String>,
}

/// An attempt refused by the limits: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// "Too many attempts" in words, rounded up to whole minutes.
    pub fn message(&self) -> String {
        let minutes = (self.retry_after.num_seconds() + 59) / 60;
        let minutes = minutes.max(1);
        format!(
            "Too many sign-in attempts. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )
    }
}

impl Attempt {
    pub fn new(account: &str, address: Option<IpAddr>) -> Self {
        Attempt {
            account: account.trim().to_lowercase(),
            address: address.map(|ip| ip.to_canonical().to_string()),
        }
    }

    /// Counts this attempt; refuses it when the account or the address is over its limit.
    /// The address is counted first, and an address over its limit counts no account, so one
    /// address cannot fill the table with the accounts it names.
    #[tracing::instrument(skip_all, err)]
    pub async fn begin(
        &self,
        db: &PgPool,
        limits: Limits,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Throttled>, sqlx::Error> {
        let mut refused: Option<Throttled> = None;
        let mut counts = Vec::new();
        if let Some(address) = &self.address {
            counts.push(("address", address.as_str(), limits.per_address));
        }
        counts.push(("account", self.account.as_str(), limits.per_account));
        for (kind, key, limit) in counts {
            if kind == "account" && refused.is_some() {
                break;
            }
            let row = sqlx::query!(
                "insert into issuer_login_failures as f (kind, key, window_start, failures)
                 values ($1, $2, $3, 1)
                 on conflict (kind, key) do update set
                    window_start = case when f.window_start <= $4 then $3 else f.window_start end,
                    failures = case when f.window_start <= $4 then 1 else f.failures + 1 end
                 returning window_start, failures",
                kind,
                key,
                now,
                now - limits.window,
            )
            .fetch_one(db)
            .await?;
            if row.failures > limit {
                let retry_after = row.window_start + limits.window - now;
                let longest = refused.map_or(retry_after, |r| r.retry_after.max(retry_after));
                refused = Some(Throttled {
                    retry_after: longest,
                });
            }
        }
        if refused.is_some() {
            tracing::warn!(
                address = self.address.as_deref().unwrap_or("unknown"),
                "sign-in attempts throttled"
            );
        }
        Ok(refused.map_or(Ok(()), Err))
    }

    /// The password was right: forget the account's failures, and take back this attempt from
    /// the address's count.
    pub async fn succeeded(&self, db: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "delete from issuer_login_failures where kind = 'account' and key = $1",
            self.account
        )
        .execute(db)
        .await?;
        if let Some(address) = &self.address {
            sqlx::query!(
                "update issuer_login_failures set failures = greatest(failures - 1, 0)
                  where kind = 'address' and key = $1",
                address
            )
            .execute(db)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_said_in_whole_minutes() {
        let t = Throttled {
            retry_after: Duration::seconds(61),
        };
        assert_eq!(
            t.message(),
            "Too many sign-in attempts. Try again in 2 minutes."
        );
        let t = Throttled {
            retry_after: Duration::seconds(5),
        };
        assert_eq!(
            t.message(),
            "Too many sign-in attempts. Try again in 1 minute."
        );
    }
}

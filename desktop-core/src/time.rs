//! Times are stored as microseconds since the Unix epoch: exact, and ordered as numbers.

use chrono::{DateTime, Utc};

pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

pub fn opt_from_micros(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.map(from_micros)
}

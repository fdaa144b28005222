//! The checks the parts share: seconds, counts and ranges, each refused with its key.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::{ConfigError, invalid};

/// A finite number of seconds, at least the key's floor: what every interval and timeout key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositiveSecs(Duration);

/// The floor of each interval and timeout key, in seconds. Below it an interval spins a loop
/// (`poll_interval = 1e-8` kept a core busy without ever finishing a cycle) and a timeout fails
/// every call; the tests' fast settings stay above it.
pub(super) mod floor {
    pub const POLL_INTERVAL: f64 = 0.01;
    pub const STATS_INTERVAL: f64 = 0.01;
    pub const BATCH_MAX_SEC: f64 = 0.01;
    pub const RETRY_MAX_DELAY: f64 = 0.1;
    pub const LIBVIRT_TIMEOUT: f64 = 0.1;
    pub const INFLUX_TIMEOUT: f64 = 0.1;
    pub const SHUTDOWN_TIMEOUT: f64 = 0.1;
}

impl PositiveSecs {
    /// `seconds`, refused below `floor` (itself above zero).
    pub fn parse(key: &'static str, seconds: f64, floor: f64) -> Result<Self, ConfigError> {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(invalid(
                key,
                format!("must be a positive number of seconds, got {seconds}"),
            ));
        }
        if seconds < floor {
            return Err(invalid(
                key,
                format!("must be at least {floor} seconds, got {seconds}"),
            ));
        }
        Duration::try_from_secs_f64(seconds)
            .map(PositiveSecs)
            .map_err(|e| invalid(key, e.to_string()))
    }
}

impl From<PositiveSecs> for Duration {
    fn from(seconds: PositiveSecs) -> Duration {
        seconds.0
    }
}

/// Seconds from `low` to `high` (above zero, and finite).
pub(super) fn seconds_in(
    key: &'static str,
    seconds: f64,
    (low, high): (f64, f64),
) -> Result<Duration, ConfigError> {
    if !(low..=high).contains(&seconds) {
        return Err(invalid(
            key,
            format!("must be {low} to {high} seconds, got {seconds}"),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub(super) fn whole_number_in<T>(
    key: &'static str,
    value: i64,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: TryFrom<i64> + PartialOrd + Display,
{
    T::try_from(value)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            let (low, high) = (range.start(), range.end());
            invalid(key, format!("must be {low} to {high}, got {value}"))
        })
}

pub(super) fn positive_count(key: &'static str, count: i64) -> Result<usize, ConfigError> {
    usize::try_from(count)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(key, format!("must be a positive whole number, got {count}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_seconds_are_finite_and_above_zero() {
        assert_eq!(
            Duration::from(PositiveSecs::parse("k", 0.25, 0.1).unwrap()),
            Duration::from_millis(250)
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let message = PositiveSecs::parse("k", bad, 0.1).unwrap_err().to_string();
            assert!(
                message.starts_with("configuration key `k`: must be a positive number"),
                "{message}"
            );
        }
        let message = PositiveSecs::parse("k", 1e30, 0.1).unwrap_err().to_string();
        assert!(message.starts_with("configuration key `k`: "), "{message}");
        let message = PositiveSecs::parse("k", 0.05, 0.1).unwrap_err().to_string();
        assert_eq!(
            message,
            "configuration key `k`: must be at least 0.1 seconds, got 0.05"
        );
        assert!(PositiveSecs::parse("k", 0.1, 0.1).is_ok());
    }
}

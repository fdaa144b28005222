//! Logging through `tracing`: human-readable or JSON, level from `RUST_LOG` (default `info`).

use std::time::{Duration, Instant};

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::configuration::LogFormat;

pub fn get_subscriber<Sink>(
    default_filter: &str,
    format: LogFormat,
    sink: Sink,
) -> Box<dyn Subscriber + Send + Sync>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// Installs the subscriber for the whole process; call once.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    tracing::subscriber::set_global_default(subscriber)
        .expect("a tracing subscriber was already set");
}

/// Lets a recurring log line through at most once per `period`: the first at once, then the
/// first after each period, each telling how many occurrences it stands for, so a flood (failed
/// logins, a VM that can never be written) costs a line a period and still counts every one.
#[derive(Debug)]
pub struct LogThrottle {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl LogThrottle {
    pub const fn new(period: Duration) -> Self {
        LogThrottle {
            period,
            last: None,
            held: 0,
        }
    }

    /// Counts `n` more occurrences at `now`. Some(every occurrence since the last line let
    /// through, these included) when a line is due.
    pub fn count(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.held += n;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.period)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_line_a_period_through_with_the_count() {
        let mut throttle = LogThrottle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(throttle.count(1, start), Some(1));
        for second in 1..60 {
            assert_eq!(throttle.count(1, start + Duration::from_secs(second)), None);
        }
        assert_eq!(throttle.count(2, start + Duration::from_secs(60)), Some(61));
        assert_eq!(throttle.count(1, start + Duration::from_secs(61)), None);
        assert_eq!(throttle.count(0, start + Duration::from_secs(200)), Some(1));
    }
}

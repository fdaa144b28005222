//! The outlook's keys (`insights_forecast_*`, `insights_recommend_*`): how often its lines are
//! written, how the forecasts' trends are fitted and VPA's clock, each checked with its key.

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::seconds_in;
use crate::insights::forecast::ForecastSettings;
use crate::insights::outlook::OutlookSettings;
use crate::insights::rightsizing::vm::VpaClock;

/// A cadence from a minute to a week.
const SECONDS: (f64, f64) = (60.0, 604_800.0);
/// A half-life from a second (a test's leak fills a guest in minutes) to a week.
const HALF_LIFE: (f64, f64) = (1.0, 604_800.0);
/// VPA's minute, or shorter for a test.
const SAMPLE_INTERVAL: (f64, f64) = (1.0, 60.0);
/// The recommendations' cadence: down to a shortened VPA minute, so a test's can follow it.
const RECOMMEND_EVERY: (f64, f64) = (1.0, 604_800.0);

pub fn outlook(settings: &Settings) -> Result<OutlookSettings, ConfigError> {
    let horizon_days = settings.insights_forecast_horizon_days;
    if !(1.0..=3650.0).contains(&horizon_days) {
        return Err(invalid(
            "insights_forecast_horizon_days",
            format!("must be 1 to 3650 days, got {horizon_days}"),
        ));
    }
    Ok(OutlookSettings {
        forecast: ForecastSettings {
            half_life: seconds_in(
                "insights_forecast_half_life",
                settings.insights_forecast_half_life,
                HALF_LIFE,
            )?
            .as_secs_f64(),
            horizon: horizon_days * 86_400.0,
        },
        clock: VpaClock {
            minute_ns: seconds_in(
                "insights_recommend_sample_interval",
                settings.insights_recommend_sample_interval,
                SAMPLE_INTERVAL,
            )?
            .as_nanos() as i64,
        },
        forecast_every: seconds("insights_forecast_every", settings.insights_forecast_every)?,
        recommend_every: seconds_in(
            "insights_recommend_every",
            settings.insights_recommend_every,
            RECOMMEND_EVERY,
        )?,
    })
}

fn seconds(key: &'static str, value: f64) -> Result<Duration, ConfigError> {
    seconds_in(key, value, SECONDS)
}

#[cfg(test)]
mod tests {
    use super::super::load_with_env;
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<OutlookSettings, ConfigError> {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load_with_env(None, env).map(|config| config.outlook)
    }

    #[test]
    fn defaults_and_each_key_checked_by_name() {
        let defaults = load(&[]).unwrap();
        assert_eq!(defaults.forecast_every, Duration::from_secs(300));
        assert_eq!(defaults.recommend_every, Duration::from_secs(3600));
        assert_eq!(defaults.forecast.half_life, 21_600.0);
        assert_eq!(defaults.forecast.horizon, 365.0 * 86_400.0);
        assert_eq!(defaults.clock, VpaClock::default());
        for (key, value) in [
            ("INSIGHTS_FORECAST_EVERY", "59"),
            ("INSIGHTS_RECOMMEND_EVERY", "604801"),
            ("INSIGHTS_RECOMMEND_EVERY", "0.5"),
            ("INSIGHTS_FORECAST_HALF_LIFE", "0"),
            ("INSIGHTS_FORECAST_HORIZON_DAYS", "0.5"),
            ("INSIGHTS_FORECAST_HORIZON_DAYS", "NaN"),
            ("INSIGHTS_RECOMMEND_SAMPLE_INTERVAL", "61"),
            ("INSIGHTS_RECOMMEND_SAMPLE_INTERVAL", "0.5"),
        ] {
            let error = load(&[(&format!("VMTELEMETRY_{key}"), value)]).unwrap_err();
            let named = key.to_lowercase();
            assert!(error.to_string().contains(&named), "{key}={value}: {error}");
        }
    }
}

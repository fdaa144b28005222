//! The outlook's keys (`insights_forecast_*`, `insights_recommend_every`): how often its lines
//! are written and how the forecasts' trends are fitted, each checked with its key.

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid};
use crate::insights::forecast::ForecastSettings;
use crate::insights::outlook::OutlookSettings;

/// A cadence or a half-life from a minute to a week.
const SECONDS: (f64, f64) = (60.0, 604_800.0);

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
            half_life: seconds(
                "insights_forecast_half_life",
                settings.insights_forecast_half_life,
            )?
            .as_secs_f64(),
            horizon: horizon_days * 86_400.0,
        },
        forecast_every: seconds("insights_forecast_every", settings.insights_forecast_every)?,
        recommend_every: seconds(
            "insights_recommend_every",
            settings.insights_recommend_every,
        )?,
    })
}

fn seconds(key: &'static str, value: f64) -> Result<Duration, ConfigError> {
    let (low, high) = SECONDS;
    if !(low..=high).contains(&value) {
        return Err(invalid(
            key,
            format!("must be {low} to {high} seconds, got {value}"),
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

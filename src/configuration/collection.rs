//! What is collected besides the seed's fields, from which domains, and how a remote peer is
//! watched.

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::{PositiveSecs, floor, whole_number_in};
use crate::domain_filter::DomainFilter;
use crate::extended::GROUP_NAMES;
use crate::libvirt::bulk_stats::StatsGroups;

/// "A few": each is one more client of libvirtd, and over ssh one more session.
const MAX_SEED_CONNECTIONS: usize = 8;
/// An hour between keepalive pings, or a hundred unanswered ones, would leave a dead peer unnoticed.
const MAX_KEEPALIVE_INTERVAL_SEC: i32 = 3600;
const MAX_KEEPALIVE_COUNT: u32 = 100;

/// The extended stats groups, their cadence, and the domain filter (applied to every measurement).
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// Empty: no bulk stats call at all.
    pub stats_groups: StatsGroups,
    pub stats_interval: Duration,
    pub filter: DomainFilter,
    /// Write `host_metrics` every poll cycle.
    pub host_metrics: bool,
    /// The most connections a small host's seed cycle is spread over.
    pub seed_connections: usize,
    /// Of remote connections: a dead peer is noticed after `count` unanswered pings `interval`
    /// apart.
    pub keepalive: Keepalive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval_sec: i32,
    pub count: u32,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            stats_groups: StatsGroups::empty(),
            stats_interval: Duration::from_secs(5),
            filter: DomainFilter::default(),
            host_metrics: true,
            seed_connections: 2,
            keepalive: Keepalive {
                interval_sec: 5,
                count: 5,
            },
        }
    }
}

impl CollectionConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(CollectionConfig {
            stats_groups: stats_groups(&settings.stats_groups)?,
            stats_interval: PositiveSecs::parse(
                "stats_interval",
                settings.stats_interval,
                floor::STATS_INTERVAL,
            )?
            .into(),
            filter: domain_filter(&settings.domain_include, &settings.domain_exclude)?,
            host_metrics: settings.host_metrics,
            seed_connections: whole_number_in(
                "seed_connections",
                settings.seed_connections,
                1..=MAX_SEED_CONNECTIONS,
            )?,
            keepalive: Keepalive::from_settings(settings)?,
        })
    }
}

impl Keepalive {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Keepalive {
            interval_sec: whole_number_in(
                "libvirt_keepalive_interval",
                settings.libvirt_keepalive_interval,
                1..=MAX_KEEPALIVE_INTERVAL_SEC,
            )?,
            count: whole_number_in(
                "libvirt_keepalive_count",
                settings.libvirt_keepalive_count,
                1..=MAX_KEEPALIVE_COUNT,
            )?,
        })
    }
}

/// The named groups (empty entries, as an empty environment variable gives, are ignored).
fn stats_groups(names: &[String]) -> Result<StatsGroups, ConfigError> {
    let mut groups = StatsGroups::empty();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let Some((_, group)) = GROUP_NAMES.iter().find(|(known, _)| *known == name) else {
            let known: Vec<&str> = GROUP_NAMES.iter().map(|(n, _)| *n).collect();
            return Err(invalid(
                "stats_groups",
                format!(
                    "unknown group `{name}` (expected some of {})",
                    known.join(", ")
                ),
            ));
        };
        groups |= *group;
    }
    Ok(groups)
}

fn domain_filter(include: &[String], exclude: &[String]) -> Result<DomainFilter, ConfigError> {
    DomainFilter::new(&non_empty(include), &non_empty(exclude)).map_err(|(which, message)| {
        match which {
            "include" => invalid("domain_include", message),
            _ => invalid("domain_exclude", message),
        }
    })
}

fn non_empty(patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .filter(|p| !p.trim().is_empty())
        .cloned()
        .collect()
}

//! What is collected besides the seed's fields, from which domains, and how a remote peer is
//! watched.

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::{PositiveSecs, floor, whole_number_in};
use crate::domain_filter::{DomainFilter, FilterError};
use crate::extended::GROUP_NAMES;
use crate::libvirt::bulk_stats::StatsGroups;

/// "A few": each is one more client of libvirtd, and over ssh one more session.
const MAX_SEED_CONNECTIONS: usize = 8;
/// An hour between keepalive pings, or a hundred unanswered ones, would leave a dead peer unnoticed.
const MAX_KEEPALIVE_INTERVAL_SEC: i32 = 3600;
const MAX_KEEPALIVE_COUNT: u32 = 100;
/// The `stats_groups` name of the guest agent's group (not one of libvirt's bulk groups).
pub const GUEST_GROUP: &str = "guest";
/// Longer, and a silent agent would hold a libvirtd worker and a sampler thread for minutes.
const MAX_GUEST_AGENT_TIMEOUT_SEC: i32 = 300;

/// The extended stats groups, their cadence, and the domain filter (applied to every measurement).
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// Empty: no bulk stats call at all.
    pub stats_groups: StatsGroups,
    pub stats_interval: Duration,
    /// The `guest` group: each running domain's guest agent, every `stats_interval`.
    pub guest: bool,
    /// The longest a guest agent may take to answer (`virDomainAgentSetResponseTimeout`).
    pub guest_agent_timeout_sec: i32,
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
            guest: false,
            guest_agent_timeout_sec: 2,
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
        let (stats_groups, guest) = stats_groups(&settings.stats_groups)?;
        Ok(CollectionConfig {
            stats_groups,
            guest,
            guest_agent_timeout_sec: guest_agent_timeout(settings, guest)?,
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

/// Whole seconds, below `libvirt_timeout` when the guest group is on (a silent agent must give
/// up before the cycle is taken for stuck).
fn guest_agent_timeout(settings: &Settings, guest: bool) -> Result<i32, ConfigError> {
    let key = "guest_agent_timeout";
    let seconds = whole_number_in(
        key,
        settings.guest_agent_timeout,
        1..=MAX_GUEST_AGENT_TIMEOUT_SEC,
    )?;
    if guest && f64::from(seconds) >= settings.libvirt_timeout {
        let limit = settings.libvirt_timeout;
        return Err(invalid(
            key,
            format!(
                "must be below libvirt_timeout ({limit} s) with the guest group on, got {seconds}"
            ),
        ));
    }
    Ok(seconds)
}

/// The named groups (empty entries, as an empty environment variable gives, are ignored), and
/// whether `guest` is one of them.
fn stats_groups(names: &[String]) -> Result<(StatsGroups, bool), ConfigError> {
    let (mut groups, mut guest) = (StatsGroups::empty(), false);
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if name == GUEST_GROUP {
            guest = true;
            continue;
        }
        let Some((_, group)) = GROUP_NAMES.iter().find(|(known, _)| *known == name) else {
            let mut known: Vec<&str> = GROUP_NAMES.iter().map(|(n, _)| *n).collect();
            known.push(GUEST_GROUP);
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
    Ok((groups, guest))
}

fn domain_filter(include: &[String], exclude: &[String]) -> Result<DomainFilter, ConfigError> {
    DomainFilter::new(&non_empty(include), &non_empty(exclude)).map_err(|error| match error {
        FilterError::Include(e) => invalid("domain_include", e.to_string()),
        FilterError::Exclude(e) => invalid("domain_exclude", e.to_string()),
    })
}

fn non_empty(patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .filter(|p| !p.trim().is_empty())
        .cloned()
        .collect()
}

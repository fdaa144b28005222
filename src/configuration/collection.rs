//! What is collected besides the seed's fields, from which domains, and how a remote peer is
//! watched.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::{PositiveSecs, floor, whole_number_in};
use crate::domain_filter::{DomainFilter, FilterError};
use crate::extended::GROUP_NAMES;
use crate::libvirt::bulk_stats::StatsGroups;
use crate::libvirt::cadence::Part;

/// "A few": each is one more client of libvirtd, and over ssh one more session.
const MAX_SEED_CONNECTIONS: usize = 8;
/// An hour between keepalive pings, or a hundred unanswered ones, would leave a dead peer unnoticed.
const MAX_KEEPALIVE_INTERVAL_SEC: i32 = 3600;
const MAX_KEEPALIVE_COUNT: u32 = 100;
/// The `stats_groups` name of the guest agent's group (not one of libvirt's bulk groups).
pub const GUEST_GROUP: &str = "guest";
/// The `stats_group_intervals` name of the disks' sizes, read with the block group's bulk call.
pub const BLOCK_SIZES: &str = "block_sizes";
/// Longer, and a silent agent would hold a libvirtd worker and a sampler thread for minutes.
const MAX_GUEST_AGENT_TIMEOUT_SEC: i32 = 300;

/// The extended stats groups, their cadence, and the domain filter (applied to every measurement).
#[derive(Debug, Clone)]
pub struct CollectionConfig {
    /// Empty: no bulk stats call at all.
    pub stats_groups: StatsGroups,
    pub stats_interval: Duration,
    /// The `guest` group: each running domain's guest agent.
    pub guest: bool,
    /// Each group on (a bulk group alone, or the guest agents; the disks' sizes with the block
    /// group) with its interval: `stats_group_intervals`' where it names one, else
    /// `stats_interval`.
    pub intervals: Vec<(Part, Duration)>,
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
            intervals: Vec::new(),
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
        let stats_interval = PositiveSecs::parse(
            "stats_interval",
            settings.stats_interval,
            floor::STATS_INTERVAL,
        )?
        .into();
        let overrides = group_intervals(&settings.stats_group_intervals)?;
        Ok(CollectionConfig {
            stats_groups,
            guest,
            intervals: intervals(stats_groups, guest, stats_interval, &overrides),
            guest_agent_timeout_sec: guest_agent_timeout(settings, guest)?,
            stats_interval,
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

    /// Whether the host's connections must open read-write: the guest agents' calls and the
    /// dirty-rate calculation's start are refused on a read-only one.
    pub fn read_write(&self) -> bool {
        self.guest || self.stats_groups.contains(StatsGroups::DIRTYRATE)
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
            let known = known_groups();
            return Err(invalid(
                "stats_groups",
                format!("unknown group `{name}` (expected some of {known})"),
            ));
        };
        groups |= *group;
    }
    Ok((groups, guest))
}

/// The part `name` stands for in `stats_groups` and `stats_group_intervals`.
fn part_named(name: &str) -> Option<Part> {
    match name {
        GUEST_GROUP => Some(Part::Guest),
        BLOCK_SIZES => Some(Part::BlockSizes),
        _ => GROUP_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, group)| Part::Bulk(*group)),
    }
}

fn known_groups() -> String {
    let mut known: Vec<&str> = GROUP_NAMES.iter().map(|(n, _)| *n).collect();
    known.push(GUEST_GROUP);
    known.join(", ")
}

/// `stats_group_intervals`: a known group's name to positive seconds (on or not).
fn group_intervals(table: &BTreeMap<String, f64>) -> Result<HashMap<Part, Duration>, ConfigError> {
    let key = "stats_group_intervals";
    let mut intervals = HashMap::new();
    for (name, seconds) in table {
        let Some(part) = part_named(name.trim()) else {
            let known = format!("{}, {BLOCK_SIZES}", known_groups());
            return Err(invalid(
                key,
                format!("unknown group `{name}` (expected some of {known})"),
            ));
        };
        let interval =
            PositiveSecs::parse(key, *seconds, floor::STATS_INTERVAL).map_err(|e| match e {
                ConfigError::Invalid { key, message } => invalid(key, format!("{name}: {message}")),
                other => other,
            })?;
        intervals.insert(part, interval.into());
    }
    Ok(intervals)
}

/// Each group on, one bulk group at a time, with its interval.
fn intervals(
    groups: StatsGroups,
    guest: bool,
    default: Duration,
    overrides: &HashMap<Part, Duration>,
) -> Vec<(Part, Duration)> {
    let bulk = GROUP_NAMES
        .iter()
        .filter(|(_, group)| groups.contains(*group))
        .map(|(_, group)| Part::Bulk(*group));
    let guest = guest.then_some(Part::Guest);
    let sizes = groups
        .contains(StatsGroups::BLOCK)
        .then_some(Part::BlockSizes);
    bulk.chain(guest)
        .chain(sizes)
        .map(|part| (part, overrides.get(&part).copied().unwrap_or(default)))
        .collect()
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

//! `vmtelemetry replay`: the same forecasts and recommendations over history already in
//! InfluxDB, so an operator sees last month's on the first day and the methods can be judged on
//! long series. Reads a span in chunks (`history`), feeds every VM's readings in time order to
//! the outlook, then prints a table (`table`) or JSON.

mod chunks;
mod history;
mod table;

use std::io::IsTerminal;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::configuration::{AppConfig, InfluxApi};
use crate::influx::TargetError;
use crate::influx::query::{QueryError, QueryTarget};
use crate::influx::tls::{HttpClients, TlsError};
use crate::insights::forecast::fill::GuestFill;
use crate::insights::outlook::{Outlook, OutlookSettings};
use crate::insights::rightsizing::summary::{
    Recommendations, RecommendationsQuery, SortBy, recommendations,
};
use chunks::Chunks;

pub use table::table;

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayArgs {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Only this `host` tag.
    pub host: Option<String>,
    /// Only the VMs whose name matches, `*` matching any run of characters.
    pub name: Option<String>,
    /// The span read per query; sized by the answers if none.
    pub chunk: Option<Duration>,
    /// VMs shown (all of them in JSON).
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay needs influx_url")]
    NoInflux,
    #[error(
        "replay reads InfluxQL (influx_api = \"v1\" or \"v2\"); InfluxDB 3's SQL is not read yet"
    )]
    Sql,
    #[error("the end ({end}) is not after the start ({start})")]
    EmptySpan {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("`{0}` is neither RFC 3339, `now` nor like `-30d`: {1}")]
    Instant(String, String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Query(#[from] QueryError),
}

impl ReplayError {
    /// 2: what was asked cannot be done; 1: InfluxDB failed it.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReplayError::Query(_) => 1,
            _ => 2,
        }
    }
}

/// `now`, RFC 3339, or a duration before `now` like `-30d`.
pub fn instant(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ReplayError> {
    let bad = |why: String| ReplayError::Instant(text.to_owned(), why);
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let ago = humantime::parse_duration(ago).map_err(|e| bad(e.to_string()))?;
        return chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .ok_or_else(|| bad("too far back".into()));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad(e.to_string()))
}

/// Reads the span chunk by chunk (a progress bar on a terminal), and returns every VM's
/// recommendation and forecasts as the service would have had them at the span's end.
pub async fn run(config: &AppConfig, args: &ReplayArgs) -> Result<Recommendations, ReplayError> {
    if args.end <= args.start {
        return Err(ReplayError::EmptySpan {
            start: args.start,
            end: args.end,
        });
    }
    let target = QueryTarget::new(&config.writer)?.ok_or(ReplayError::NoInflux)?;
    if target.api() == InfluxApi::V3 {
        return Err(ReplayError::Sql);
    }
    let https = (config.writer.influx_url.as_ref()).is_some_and(|url| url.scheme() == "https");
    let client = HttpClients::new(https, config.writer.ca_file.as_deref())?.client();
    let total = (args.end - args.start).num_seconds().max(1) as u64;
    let progress = match std::io::stderr().is_terminal() {
        true => indicatif::ProgressBar::new(total),
        false => indicatif::ProgressBar::hidden(),
    };
    let mut outlook = Outlook::default();
    let settings = &config.outlook;
    let mut chunks = Chunks::new(args.start, args.end, args.chunk);
    while let Some((from, to)) = chunks.next_span() {
        let params = json!({
            "start": from.timestamp_nanos_opt(),
            "end": to.timestamp_nanos_opt(),
        });
        let (answer, bytes) = history::read(&target, &client, &params).await?;
        chunks.answered(bytes);
        let keep = |host: &str, name: &str| {
            args.host.as_deref().is_none_or(|h| h == host)
                && args.name.as_deref().is_none_or(|p| glob(p, name))
        };
        for vm in history::vms(&answer, keep)? {
            replay_vm(&mut outlook, &vm, settings);
        }
        progress.inc((to - from).num_seconds() as u64);
    }
    progress.finish_and_clear();
    let query = RecommendationsQuery {
        host: None,
        sort: Some(SortBy::ReclaimableVcpus),
        limit: Some(args.limit),
    };
    Ok(recommendations(&outlook, &query, settings.clock))
}

/// One VM's span: its readings and its guest agent's answers, merged in time order (an answer
/// counts only once its VM was read, as in the service's cycles).
fn replay_vm(outlook: &mut Outlook, vm: &history::VmHistory, settings: &OutlookSettings) {
    let mut guests = vm.guests.iter().peekable();
    for reading in &vm.readings {
        while let Some(guest) = guests.next_if(|g| g.timestamp_ns < reading.vm.timestamp_ns) {
            observe_guest(outlook, &vm.host, guest, settings);
        }
        outlook.observe_vm(&vm.host, reading, settings);
    }
    guests.for_each(|guest| observe_guest(outlook, &vm.host, guest, settings));
}

fn observe_guest(outlook: &mut Outlook, host: &str, guest: &GuestFill, settings: &OutlookSettings) {
    if let Some(host) = outlook.hosts.get_mut(host) {
        host.observe_guest(guest, settings);
    }
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_runs_of_any_characters() {
        assert!(glob("web-*", "web-1"));
        assert!(glob("*", ""));
        assert!(glob("*-db-*", "eu-db-7"));
        assert!(glob("é*ü", "éaü"));
        assert!(!glob("web-*", "db-1"));
        assert!(!glob("web", "web-1"));
    }
}

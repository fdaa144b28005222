use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use crate::actors::Pipeline;
use crate::actors::messages::LookupVm;
use crate::influx::query::{HistoryQuery, Measurement, QueryTarget, VmTag};
use crate::vms::VmLookup;

/// The most points a history request returns, whatever `limit` says.
pub struct QueryLimit(pub usize);

const DEFAULT_LIMIT: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The VM: UUID, or name (a name on several hosts needs `host`); none for `host_metrics`.
    vm: Option<String>,
    /// The `host` tag; needed for `host_metrics`.
    host: Option<String>,
    /// `vm_metrics` (default), `vm_features`, `vm_cpu`, `vm_disk`, `vm_net` (each point with
    /// its `vcpu`, `device` or `interface`), `vm_anomalies`, or `host_metrics` (by `host`).
    measurement: Option<String>,
    /// Comma-separated fields of the measurement; default all of them.
    fields: Option<String>,
    /// RFC 3339, or relative to now like `-1h`, `-15m`, `-7d`; default `-1h`.
    start: Option<String>,
    /// RFC 3339, relative like `-5m`, or `now` (default).
    end: Option<String>,
    /// Buckets of this length, in whole seconds (`30s`, `1m`, `1h`): the mean of each field, and
    /// the last value of the `cputime_ns` counter.
    every: Option<String>,
    /// The most points returned: default 1000, capped by `query_limit_max`.
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    /// What the VM was looked up by: its UUID when known live, else the name asked for; none
    /// for a measurement of hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    pub measurement: Measurement,
    pub fields: Vec<&'static str>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Bucket length in seconds, when downsampled.
    pub every: Option<u64>,
    pub limit: usize,
    /// Oldest first; each has `time` (RFC 3339) and the fields that had a value.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<serde_json::Map<String, Value>>,
}

/// A VM's history from InfluxDB, with user input passed only as bound query parameters.
#[utoipa::path(
    get,
    path = "/api/telemetry/history",
    params(HistoryParams),
    responses(
        (status = 200, body = History),
        (status = 400, body = super::error::ErrorBody, description = "a bad parameter, named"),
        (status = 409, body = super::error::ErrorBody, description = "the name is on several hosts"),
        (status = 502, body = super::error::ErrorBody, description = "InfluxDB failed or answered garbage"),
        (status = 503, body = super::error::ErrorBody, description = "InfluxDB is unreachable, or none is configured (`influx_url` empty)"),
        (status = 504, body = super::error::ErrorBody, description = "InfluxDB did not answer in time"),
    )
)]
pub async fn history(
    pipeline: web::Data<Pipeline>,
    target: web::Data<Option<QueryTarget>>,
    client: web::Data<awc::Client>,
    max_limit: web::Data<QueryLimit>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let target = target.as_ref().as_ref().ok_or(ApiError::NoInflux)?;
    let request = HistoryRequest::try_from(params.into_inner())?;
    let query = request.into_query(&pipeline, max_limit.0).await?;
    let points = target.history(&client, &query).await?;
    Ok(HttpResponse::Ok().json(History::of(query, points)))
}

/// A history request with every parameter checked; its VM is still to be looked up.
#[derive(Debug)]
struct HistoryRequest {
    /// None for a measurement of hosts, which then has `host`.
    vm: Option<String>,
    host: Option<String>,
    measurement: Measurement,
    fields: Vec<&'static str>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    every: Option<Duration>,
    /// Before the cap of `query_limit_max`.
    limit: usize,
}

impl TryFrom<HistoryParams> for HistoryRequest {
    type Error = ApiError;

    fn try_from(params: HistoryParams) -> Result<Self, ApiError> {
        let now = Utc::now();
        let measurement = measurement(params.measurement.as_deref())?;
        let fields = fields(measurement, params.fields.as_deref())?;
        let start = instant("start", params.start.as_deref().unwrap_or("-1h"), now)?;
        let end = instant("end", params.end.as_deref().unwrap_or("now"), now)?;
        if start >= end {
            return Err(ApiError::bad_parameter("start", "must be before end"));
        }
        let every = params.every.as_deref().map(bucket).transpose()?;
        if let Some(text) = fields.iter().find(|f| Measurement::is_text(f))
            && every.is_some()
        {
            return Err(ApiError::bad_parameter(
                "fields",
                format!("`{text}` is text and cannot be averaged with `every`"),
            ));
        }
        let limit = params.limit.as_deref().map(limit).transpose()?;
        subject(measurement, params.vm.as_deref(), params.host.as_deref())?;
        Ok(HistoryRequest {
            vm: params.vm,
            host: params.host,
            measurement,
            fields,
            start,
            end,
            every,
            limit: limit.unwrap_or(DEFAULT_LIMIT),
        })
    }
}

impl HistoryRequest {
    /// A VM known live is queried by UUID, which survives renames; another by what was asked.
    async fn into_query(
        self,
        pipeline: &Pipeline,
        max_limit: usize,
    ) -> Result<HistoryQuery, ApiError> {
        let (vm, host) = match self.vm {
            Some(selector) => {
                let (tag, vm, host) = lookup(pipeline, selector, self.host).await?;
                (Some((tag, vm)), host)
            }
            None => (None, self.host),
        };
        Ok(HistoryQuery {
            measurement: self.measurement,
            fields: self.fields,
            vm,
            host,
            start: self.start,
            end: self.end,
            every: self.every,
            limit: self.limit.min(max_limit),
        })
    }
}

/// The tag and value a VM is queried by, and its host if known.
async fn lookup(
    pipeline: &Pipeline,
    selector: String,
    host: Option<String>,
) -> Result<(VmTag, String, Option<String>), ApiError> {
    let lookup = LookupVm {
        selector: selector.clone(),
        host: host.clone(),
    };
    Ok(match pipeline.features.send(lookup).await? {
        VmLookup::Found(detail) => (VmTag::Uuid, detail.vm.uuid, Some(detail.vm.host)),
        VmLookup::Ambiguous(candidates) => {
            return Err(ApiError::AmbiguousVm {
                selector,
                candidates,
            });
        }
        VmLookup::NotFound if looks_like_uuid(&selector) => {
            (VmTag::Uuid, selector.to_ascii_lowercase(), host)
        }
        VmLookup::NotFound => (VmTag::Name, selector, host),
    })
}

/// A VM's measurement needs `vm`; a host's needs `host` and takes no `vm`.
fn subject(measurement: Measurement, vm: Option<&str>, host: Option<&str>) -> Result<(), ApiError> {
    let name = measurement.name();
    match (measurement.is_per_host(), vm, host) {
        (false, None, _) => Err(ApiError::bad_parameter(
            "vm",
            format!("is needed for {name}"),
        )),
        (false, Some(""), _) => Err(ApiError::bad_parameter("vm", "must not be empty")),
        (true, Some(_), _) => Err(ApiError::bad_parameter(
            "vm",
            format!("{name} is per host: give `host` alone"),
        )),
        (true, None, None | Some("")) => Err(ApiError::bad_parameter(
            "host",
            format!("is needed for {name}"),
        )),
        _ => Ok(()),
    }
}

impl History {
    fn of(query: HistoryQuery, points: Vec<serde_json::Map<String, Value>>) -> Self {
        History {
            vm: query.vm.map(|(_, vm)| vm),
            measurement: query.measurement,
            fields: query.fields,
            start: query.start,
            end: query.end,
            every: query.every.map(|e| e.as_secs()),
            limit: query.limit,
            points,
        }
    }
}

fn measurement(name: Option<&str>) -> Result<Measurement, ApiError> {
    let Some(name) = name else {
        return Ok(Measurement::VmMetrics);
    };
    Measurement::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Measurement::ALL.iter().map(|m| m.name()).collect();
        ApiError::bad_parameter(
            "measurement",
            format!("`{name}`: use one of {}", known.join(", ")),
        )
    })
}

fn fields(measurement: Measurement, asked: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    let known = measurement.fields();
    let Some(asked) = asked else {
        return Ok(known.to_vec());
    };
    let mut fields = Vec::new();
    for name in asked.split(',').map(str::trim) {
        let field = known.iter().find(|f| **f == name).ok_or_else(|| {
            ApiError::bad_parameter(
                "fields",
                format!(
                    "`{name}` is not a field of {} ({})",
                    measurement.name(),
                    known.join(", ")
                ),
            )
        })?;
        if !fields.contains(field) {
            fields.push(*field);
        }
    }
    Ok(fields)
}

/// `now`, `-<duration>` (e.g. `-1h30m`), or RFC 3339, within what nanosecond timestamps hold
/// (1677 to 2262).
fn instant(parameter: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let instant = parse_instant(parameter, text, now)?;
    if instant.timestamp_nanos_opt().is_none() {
        return Err(ApiError::bad_parameter(
            parameter,
            format!("`{text}` is outside the years 1677 to 2262"),
        ));
    }
    Ok(instant)
}

fn parse_instant(
    parameter: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let ago = humantime::parse_duration(ago)
            .map_err(|e| ApiError::bad_parameter(parameter, format!("`{text}`: {e}")))?;
        return chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .ok_or_else(|| {
                ApiError::bad_parameter(parameter, format!("`{text}` is too far back"))
            });
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::bad_parameter(
                parameter,
                format!("`{text}` is neither RFC 3339, `now` nor like `-1h`: {e}"),
            )
        })
}

/// The longest bucket: a year, beyond which downsampling means nothing.
const MAX_BUCKET: Duration = Duration::from_secs(366 * 24 * 3600);

fn bucket(text: &str) -> Result<Duration, ApiError> {
    let every = humantime::parse_duration(text)
        .map_err(|e| ApiError::bad_parameter("every", format!("`{text}`: {e}")))?;
    if every.subsec_nanos() != 0 || every.as_secs() == 0 {
        return Err(ApiError::bad_parameter(
            "every",
            format!("`{text}` is not a whole number of seconds"),
        ));
    }
    if every > MAX_BUCKET {
        return Err(ApiError::bad_parameter(
            "every",
            format!("`{text}` is longer than a year"),
        ));
    }
    Ok(every)
}

fn limit(text: &str) -> Result<usize, ApiError> {
    text.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::bad_parameter("limit", format!("`{text}` is not a positive whole number"))
        })
}

fn looks_like_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<HistoryRequest, ApiError> {
        let params = web::Query::<HistoryParams>::from_query(query).unwrap();
        HistoryRequest::try_from(params.into_inner())
    }

    #[test]
    fn a_request_is_parsed_whole_or_refused_naming_one_parameter() {
        let request = parse("vm=web-1").unwrap();
        assert_eq!(request.fields, Measurement::VmMetrics.fields());
        assert_eq!(request.end - request.start, chrono::Duration::hours(1));
        assert_eq!((request.every, request.limit), (None, DEFAULT_LIMIT));
        let host = parse("measurement=host_metrics&host=h").unwrap();
        assert_eq!((host.vm, host.host.as_deref()), (None, Some("h")));
        for (query, parameter) in [
            ("vm=", "vm"),
            ("fields=state", "vm"),
            ("measurement=host_metrics", "host"),
            ("measurement=host_metrics&host=", "host"),
            ("measurement=host_metrics&host=h&vm=a", "vm"),
            ("vm=a&measurement=x", "measurement"),
            ("vm=a&every=1m&fields=state", "fields"),
            ("vm=a&start=-1m&end=-2m", "start"),
            ("vm=a&limit=0", "limit"),
        ] {
            let error = parse(query).unwrap_err();
            assert!(
                error.to_string().contains(&format!("`{parameter}`")),
                "{query}: {error}"
            );
        }
    }

    #[test]
    fn instants_are_now_relative_or_rfc3339() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(instant("start", "now", now).unwrap(), now);
        assert_eq!(
            instant("start", "-1h30m", now).unwrap().to_rfc3339(),
            "2026-11-25T10:30:00+00:00"
        );
        assert_eq!(
            instant("end", "2026-11-24T10:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T09:00:00+00:00"
        );
        for bad in [
            "yesterday",
            "-",
            "-1x",
            "2026-13-01T00:00:00Z",
            "-999999999999y",
        ] {
            let error = instant("start", bad, now).unwrap_err();
            assert!(error.to_string().contains("`start`"), "{error}");
        }
    }

    #[test]
    fn buckets_are_whole_seconds() {
        assert_eq!(bucket("1m").unwrap(), Duration::from_secs(60));
        assert!(bucket("1500ms").is_err());
        assert!(bucket("0s").is_err());
        assert!(bucket("soon").is_err());
        assert!(bucket("2years").is_err());
    }

    #[test]
    fn only_known_fields_are_accepted() {
        assert_eq!(
            fields(Measurement::VmFeatures, None).unwrap(),
            ["memory_rate_kb_per_sec", "memory_angle_deg"]
        );
        assert_eq!(
            fields(Measurement::VmMetrics, Some("cputime_ns, cputime_ns,state")).unwrap(),
            ["cputime_ns", "state"]
        );
        let error =
            fields(Measurement::VmMetrics, Some("memory_used_kb,\"x\" FROM y")).unwrap_err();
        assert!(error.to_string().contains("`fields`"), "{error}");
    }

    #[test]
    fn uuids_are_recognised() {
        assert!(looks_like_uuid("550e8400-e29b-41d4-a716-446655440000"));
        assert!(!looks_like_uuid("550e8400-e29b-41d4-a716-44665544000g"));
        assert!(!looks_like_uuid("web-1"));
    }
}

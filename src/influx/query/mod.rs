//! History from InfluxDB: SQL on `/api/v3/query_sql` for InfluxDB 3, InfluxQL on `/query` for the
//! v1 and v2 APIs. User input only ever travels as bound parameters (`$vm`, `$host`, `$start`,
//! `$end`); what is written into the query text are field and tag names from a fixed list and
//! numbers this module formatted itself.

mod measurement;
mod reply;

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use url::Url;

use super::TargetError;
use super::schema::vm_tags;
use crate::configuration::{InfluxApi, WriterConfig};
pub use measurement::Measurement;
use reply::{error_message, influxql_points, sql_points};

/// Which tag picks the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmTag {
    Uuid,
    Name,
}

#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub measurement: Measurement,
    /// Field names taken from `Measurement::fields`.
    pub fields: Vec<&'static str>,
    /// The VM, by this tag; none for a measurement of hosts (`Measurement::is_per_host`).
    pub vm: Option<(VmTag, String)>,
    pub host: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Averages per bucket of this length when set.
    pub every: Option<Duration>,
    pub limit: usize,
}

/// One point: `time` (RFC 3339), the measurement's key tag if it has one, and the fields asked
/// for; a field with no value is left out.
pub type Point = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("InfluxDB is unreachable: {0}")]
    Unreachable(String),
    #[error("InfluxDB did not answer within {0:?}")]
    Timeout(Duration),
    #[error("InfluxDB answered {status}: {message}")]
    Failed { status: u16, message: String },
    #[error("InfluxDB's answer could not be read: {0}")]
    BadReply(String),
}

/// Longest InfluxDB answer read; a history is at most `query_limit_max` points.
const REPLY_LIMIT: usize = 64 * 1024 * 1024;

/// Where and how to query, built once from the settings.
#[derive(Clone)]
pub struct QueryTarget {
    api: InfluxApi,
    url: Url,
    db: String,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl QueryTarget {
    /// None without an `influx_url`.
    pub fn new(config: &WriterConfig) -> Result<Option<Self>, TargetError> {
        let Some(influx_url) = &config.influx_url else {
            return Ok(None);
        };
        let path = match config.influx_api {
            InfluxApi::V3 => "api/v3/query_sql",
            InfluxApi::V1 | InfluxApi::V2 => "query",
        };
        Ok(Some(QueryTarget {
            api: config.influx_api,
            url: super::without_userinfo(super::endpoint(influx_url, path)?),
            db: config.influx_db.clone(),
            authorization: super::authorization(influx_url, config.influx_token.as_ref())?,
            timeout: config.request_timeout,
        }))
    }

    /// Runs the query. `awc::Client` is not `Send`: each HTTP worker passes its own.
    pub async fn history(
        &self,
        client: &awc::Client,
        query: &HistoryQuery,
    ) -> Result<Vec<Point>, QueryError> {
        let request = self.request(client);
        let sent = match self.api {
            InfluxApi::V3 => request.send_json(&json!({
                "db": self.db,
                "q": sql(query),
                "format": "json",
                "params": params(query, |t| json!(t.to_rfc3339())),
            })),
            InfluxApi::V1 | InfluxApi::V2 => {
                let params = params(query, |t| json!(t.timestamp_nanos_opt()));
                request.send_form(&[
                    ("db", self.db.as_str()),
                    ("q", &influxql(query)),
                    ("epoch", "ns"),
                    ("params", &params.to_string()),
                ])
            }
        };
        let body = self.exchange(sent).await?;
        match self.api {
            InfluxApi::V3 => sql_points(&body, query),
            InfluxApi::V1 | InfluxApi::V2 => influxql_points(&body, query),
        }
    }

    /// The API this target speaks.
    pub fn api(&self) -> InfluxApi {
        self.api
    }

    pub(crate) fn db(&self) -> &str {
        &self.db
    }

    pub(crate) fn request(&self, client: &awc::Client) -> awc::ClientRequest {
        let mut request = client.post(self.url.as_str()).timeout(self.timeout);
        if let Some(authorization) = &self.authorization {
            request = request.insert_header((AUTHORIZATION, authorization.clone()));
        }
        request
    }

    /// The answer's body, or what went wrong on the way.
    pub(crate) async fn exchange(
        &self,
        sent: awc::SendClientRequest,
    ) -> Result<actix_web::web::Bytes, QueryError> {
        let mut response = sent.await.map_err(|error| match error {
            awc::error::SendRequestError::Timeout => QueryError::Timeout(self.timeout),
            other => QueryError::Unreachable(other.to_string()),
        })?;
        let body = response
            .body()
            .limit(REPLY_LIMIT)
            .await
            .map_err(|e| match e {
                awc::error::PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    QueryError::Timeout(self.timeout)
                }
                other => QueryError::BadReply(other.to_string()),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(QueryError::Failed {
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        Ok(body)
    }
}

fn params(query: &HistoryQuery, time: impl Fn(&DateTime<Utc>) -> Value) -> Value {
    let mut params = json!({
        "start": time(&query.start),
        "end": time(&query.end),
    });
    if let Some((_, vm)) = &query.vm {
        params["vm"] = json!(vm);
    }
    if let Some(host) = &query.host {
        params["host"] = json!(host);
    }
    params
}

/// ` FROM "<measurement>" WHERE "<uuid or name>" = $vm [AND "host" = $host]`, or only the host
/// for a measurement of hosts: the same in SQL and InfluxQL.
fn vm_filter(query: &HistoryQuery) -> String {
    let mut conditions = Vec::new();
    if let Some((tag, _)) = query.vm {
        let tag = match tag {
            VmTag::Uuid => vm_tags::UUID,
            VmTag::Name => vm_tags::NAME,
        };
        conditions.push(format!("\"{tag}\" = $vm"));
    }
    if query.host.is_some() {
        conditions.push(format!("\"{}\" = $host", vm_tags::HOST));
    }
    format!(
        " FROM \"{}\" WHERE {}",
        query.measurement.name(),
        conditions.join(" AND ")
    )
}

/// InfluxDB 3 SQL (Apache DataFusion's dialect).
pub fn sql(query: &HistoryQuery) -> String {
    let mut q = String::from("SELECT ");
    match query.every {
        Some(every) => {
            let _ = write!(
                q,
                "date_bin(INTERVAL '{} seconds', time) AS time",
                every.as_secs()
            );
            for field in &query.fields {
                if Measurement::is_counter(field) {
                    let _ = write!(q, ", last_value(\"{field}\" ORDER BY time) AS \"{field}\"");
                } else {
                    let _ = write!(q, ", avg(\"{field}\") AS \"{field}\"");
                }
            }
        }
        None => {
            q.push_str("time");
            for field in &query.fields {
                let _ = write!(q, ", \"{field}\"");
            }
        }
    }
    let key = query.measurement.key_tag();
    if let Some(tag) = key {
        let _ = write!(q, ", \"{tag}\"");
    }
    q.push_str(&vm_filter(query));
    q.push_str(" AND time >= CAST($start AS TIMESTAMP) AND time < CAST($end AS TIMESTAMP)");
    match (query.every, key) {
        (Some(_), Some(tag)) => {
            let _ = write!(q, " GROUP BY 1, \"{tag}\"");
        }
        (Some(_), None) => q.push_str(" GROUP BY 1"),
        (None, _) => {}
    }
    let _ = write!(q, " ORDER BY time LIMIT {}", query.limit);
    q
}

/// InfluxQL, for `/query`.
pub fn influxql(query: &HistoryQuery) -> String {
    let mut q = String::from("SELECT ");
    let columns: Vec<String> = query
        .fields
        .iter()
        .map(|field| match query.every {
            Some(_) if Measurement::is_counter(field) => {
                format!("last(\"{field}\") AS \"{field}\"")
            }
            Some(_) => format!("mean(\"{field}\") AS \"{field}\""),
            None => format!("\"{field}\""),
        })
        .collect();
    q.push_str(&columns.join(", "));
    q.push_str(&vm_filter(query));
    q.push_str(" AND time >= $start AND time < $end");
    // One series per device: a bucket is never a mean over several.
    let key = query.measurement.key_tag();
    match (query.every, key) {
        (Some(every), Some(tag)) => {
            let _ = write!(
                q,
                " GROUP BY time({}s), \"{tag}\" fill(none)",
                every.as_secs()
            );
        }
        (Some(every), None) => {
            let _ = write!(q, " GROUP BY time({}s) fill(none)", every.as_secs());
        }
        (None, Some(tag)) => {
            let _ = write!(q, " GROUP BY \"{tag}\"");
        }
        (None, None) => {}
    }
    let _ = write!(q, " ORDER BY time ASC LIMIT {}", query.limit);
    q
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn query(every: Option<u64>, host: Option<&str>) -> HistoryQuery {
        HistoryQuery {
            measurement: Measurement::VmMetrics,
            fields: vec!["memory_used_kb", "cputime_ns"],
            vm: Some((VmTag::Name, "x' OR '1'='1".into())),
            host: host.map(str::to_owned),
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            end: DateTime::from_timestamp(1_700_003_600, 0).unwrap(),
            every: every.map(Duration::from_secs),
            limit: 500,
        }
    }

    #[test]
    fn user_input_is_only_ever_a_parameter() {
        for q in [
            query(None, Some("h'1")),
            query(Some(60), Some("h'1")),
            query(None, None),
        ] {
            for text in [sql(&q), influxql(&q)] {
                assert!(!text.contains("OR '1'"), "{text}");
                assert!(!text.contains("h'1"), "{text}");
                assert!(text.contains("$vm") && text.contains("$start"), "{text}");
            }
            let bound = params(&q, |t| json!(t.to_rfc3339()));
            assert_eq!(bound["vm"], json!("x' OR '1'='1"));
        }
    }

    #[test]
    fn sql_downsamples_with_date_bin_and_avg() {
        assert_eq!(
            sql(&query(Some(60), Some("h"))),
            "SELECT date_bin(INTERVAL '60 seconds', time) AS time, avg(\"memory_used_kb\") AS \
             \"memory_used_kb\", last_value(\"cputime_ns\" ORDER BY time) AS \"cputime_ns\" FROM \
             \"vm_metrics\" WHERE \"name\" = $vm AND \"host\" = $host AND time >= CAST($start AS \
             TIMESTAMP) AND time < CAST($end AS TIMESTAMP) GROUP BY 1 ORDER BY time LIMIT 500"
        );
    }

    #[test]
    fn influxql_downsamples_with_mean() {
        assert_eq!(
            influxql(&query(Some(300), None)),
            "SELECT mean(\"memory_used_kb\") AS \"memory_used_kb\", last(\"cputime_ns\") AS \
             \"cputime_ns\" FROM \"vm_metrics\" WHERE \"name\" = $vm AND time >= $start AND time \
             < $end GROUP BY time(300s) fill(none) ORDER BY time ASC LIMIT 500"
        );
    }

    #[test]
    fn devices_are_buckets_of_their_own_and_hosts_are_asked_by_host() {
        let mut q = query(Some(60), None);
        q.measurement = Measurement::VmNet;
        q.fields = vec!["rx_bytes_per_sec"];
        assert_eq!(
            influxql(&q),
            "SELECT mean(\"rx_bytes_per_sec\") AS \"rx_bytes_per_sec\" FROM \"vm_net\" WHERE \
             \"name\" = $vm AND time >= $start AND time < $end GROUP BY time(60s), \"interface\" \
             fill(none) ORDER BY time ASC LIMIT 500"
        );
        assert!(
            sql(&q).contains(", \"interface\" FROM \"vm_net\"")
                && sql(&q).contains("GROUP BY 1, \"interface\""),
            "{}",
            sql(&q)
        );
        q.measurement = Measurement::HostMetrics;
        q.fields = vec!["memory_free_kb"];
        q.vm = None;
        q.host = Some("h'1".into());
        q.every = None;
        assert_eq!(
            influxql(&q),
            "SELECT \"memory_free_kb\" FROM \"host_metrics\" WHERE \"host\" = $host AND time >= \
             $start AND time < $end ORDER BY time ASC LIMIT 500"
        );
        let bound = params(&q, |t| json!(t.to_rfc3339()));
        assert_eq!((bound.get("vm"), &bound["host"]), (None, &json!("h'1")));
    }
}

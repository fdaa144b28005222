//! History from InfluxDB: SQL on `/api/v3/query_sql` for InfluxDB 3, InfluxQL on `/query` for the
//! v1 and v2 APIs. User input only ever travels as bound parameters (`$vm`, `$host`, `$start`,
//! `$end`); what is written into the query text are field names from a fixed list and numbers
//! this module formatted itself.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::TargetError;
use super::schema::{vm_features, vm_metrics, vm_tags};
use crate::configuration::{InfluxApi, WriterConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    VmMetrics,
    VmFeatures,
}

impl Measurement {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            vm_metrics::MEASUREMENT => Some(Measurement::VmMetrics),
            vm_features::MEASUREMENT => Some(Measurement::VmFeatures),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Measurement::VmMetrics => vm_metrics::MEASUREMENT,
            Measurement::VmFeatures => vm_features::MEASUREMENT,
        }
    }

    /// The fields the seed defines; nothing else may be asked for.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Measurement::VmMetrics => &vm_metrics::FIELDS,
            Measurement::VmFeatures => &vm_features::FIELDS,
        }
    }

    /// Fields that cannot be averaged into buckets.
    pub fn is_text(field: &str) -> bool {
        field == vm_metrics::STATE
    }

    /// Cumulative counters: a bucket shows its last value, which keeps differences exact (a mean
    /// of a counter means little, and overflows InfluxDB 1.x's integer sums).
    pub fn is_counter(field: &str) -> bool {
        field == vm_metrics::CPUTIME_NS
    }
}

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
    pub vm_tag: VmTag,
    pub vm: String,
    pub host: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Averages per bucket of this length when set.
    pub every: Option<Duration>,
    pub limit: usize,
}

/// One point: `time` (RFC 3339) and the fields asked for; a field with no value is left out.
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
            url: super::endpoint(influx_url, path)?,
            db: config.influx_db.clone(),
            authorization: super::bearer(config.influx_token.as_ref())?,
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
        "vm": query.vm,
        "start": time(&query.start),
        "end": time(&query.end),
    });
    if let Some(host) = &query.host {
        params["host"] = json!(host);
    }
    params
}

/// ` FROM "<measurement>" WHERE "<uuid or name>" = $vm [AND "host" = $host]`: the same in SQL
/// and InfluxQL.
fn vm_filter(query: &HistoryQuery) -> String {
    let tag = match query.vm_tag {
        VmTag::Uuid => vm_tags::UUID,
        VmTag::Name => vm_tags::NAME,
    };
    let mut filter = format!(
        " FROM \"{}\" WHERE \"{tag}\" = $vm",
        query.measurement.name()
    );
    if query.host.is_some() {
        let _ = write!(filter, " AND \"{}\" = $host", vm_tags::HOST);
    }
    filter
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
    q.push_str(&vm_filter(query));
    q.push_str(" AND time >= CAST($start AS TIMESTAMP) AND time < CAST($end AS TIMESTAMP)");
    if query.every.is_some() {
        q.push_str(" GROUP BY 1");
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
    if let Some(every) = query.every {
        let _ = write!(q, " GROUP BY time({}s) fill(none)", every.as_secs());
    }
    let _ = write!(q, " ORDER BY time ASC LIMIT {}", query.limit);
    q
}

/// The message of an error reply: InfluxDB's JSON `error`/`message`, or its plain text.
fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => ["error", "message"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Value::as_str))
            .map_or_else(|| text.trim().to_owned(), str::to_owned),
        _ => text.trim().chars().take(1000).collect(),
    }
}

/// `[{"time":"2026-11-24T10:00:00","memory_used_kb":1}, …]`: UTC times without a zone.
fn sql_points(body: &[u8], query: &HistoryQuery) -> Result<Vec<Point>, QueryError> {
    let rows: Vec<Map<String, Value>> =
        serde_json::from_slice(body).map_err(|e| QueryError::BadReply(e.to_string()))?;
    rows.into_iter()
        .map(|mut row| {
            let time = match row.remove("time") {
                Some(Value::String(time)) => parse_sql_time(&time)?,
                other => return Err(bad_time(other)),
            };
            Ok(point(time, query, |field| row.remove(field)))
        })
        .collect()
}

fn parse_sql_time(time: &str) -> Result<DateTime<Utc>, QueryError> {
    NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(time).map(|t| t.with_timezone(&Utc)))
        .map_err(|_| QueryError::BadReply(format!("unreadable time {time:?}")))
}

/// `{"results":[{"series":[{"columns":["time",…],"values":[[ns,…]]}]}]}` with `epoch=ns`.
fn influxql_points(body: &[u8], query: &HistoryQuery) -> Result<Vec<Point>, QueryError> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|e| QueryError::BadReply(e.to_string()))?;
    let result = reply
        .get("results")
        .and_then(|results| results.get(0))
        .ok_or_else(|| QueryError::BadReply("no `results` in the answer".into()))?;
    if let Some(error) = result.get("error").and_then(Value::as_str) {
        return Err(QueryError::Failed {
            status: 200,
            message: error.to_owned(),
        });
    }
    let Some(series) = result.get("series").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut points = Vec::new();
    for one in series {
        let columns: Vec<&str> = one
            .get("columns")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .ok_or_else(|| QueryError::BadReply("a series without columns".into()))?;
        let rows = one
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| QueryError::BadReply("a series without values".into()))?;
        for row in rows {
            let values = row
                .as_array()
                .filter(|values| values.len() == columns.len())
                .ok_or_else(|| QueryError::BadReply("a row unlike its columns".into()))?;
            let mut by_column: Map<String, Value> = columns
                .iter()
                .map(|c| c.to_string())
                .zip(values.iter().cloned())
                .collect();
            let time = match by_column.remove("time") {
                Some(Value::Number(ns)) => ns
                    .as_i64()
                    .map(DateTime::from_timestamp_nanos)
                    .ok_or_else(|| bad_time(Some(Value::Number(ns))))?,
                other => return Err(bad_time(other)),
            };
            points.push(point(time, query, |field| by_column.remove(field)));
        }
    }
    Ok(points)
}

fn bad_time(value: Option<Value>) -> QueryError {
    QueryError::BadReply(format!("a row with time {value:?}"))
}

fn point(
    time: DateTime<Utc>,
    query: &HistoryQuery,
    mut value_of: impl FnMut(&str) -> Option<Value>,
) -> Point {
    let mut point = Map::new();
    point.insert("time".into(), json!(time.to_rfc3339()));
    for field in &query.fields {
        if let Some(value) = value_of(field).filter(|v| !v.is_null()) {
            point.insert((*field).to_owned(), value);
        }
    }
    point
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(every: Option<u64>, host: Option<&str>) -> HistoryQuery {
        HistoryQuery {
            measurement: Measurement::VmMetrics,
            fields: vec!["memory_used_kb", "cputime_ns"],
            vm_tag: VmTag::Name,
            vm: "x' OR '1'='1".into(),
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
    fn sql_replies_become_points_with_utc_times() {
        let body = br#"[{"time":"2026-11-24T10:00:00","memory_used_kb":1024,"cputime_ns":5},
                        {"time":"2026-11-24T10:00:05.5","memory_used_kb":2048}]"#;
        let points = sql_points(body, &query(None, None)).unwrap();
        assert_eq!(points[0]["time"], json!("2026-11-24T10:00:00+00:00"));
        assert_eq!(points[1]["time"], json!("2026-11-24T10:00:05.500+00:00"));
        assert_eq!(points[1].get("cputime_ns"), None);
    }

    #[test]
    fn influxql_replies_become_points() {
        let body = br#"{"results":[{"statement_id":0,"series":[{"name":"vm_metrics",
            "columns":["time","memory_used_kb","cputime_ns"],
            "values":[[1700000000000000000,1024,null]]}]}]}"#;
        let points = influxql_points(body, &query(None, None)).unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0]["memory_used_kb"], json!(1024));
        assert_eq!(points[0].get("cputime_ns"), None);
        let empty = br#"{"results":[{"statement_id":0}]}"#;
        assert!(
            influxql_points(empty, &query(None, None))
                .unwrap()
                .is_empty()
        );
    }

    /// Asserts that `parse` calls each of `bodies` a bad reply.
    #[track_caller]
    fn assert_bad_replies(
        parse: fn(&[u8], &HistoryQuery) -> Result<Vec<Point>, QueryError>,
        bodies: &[&[u8]],
    ) {
        let q = query(None, None);
        for body in bodies {
            assert!(
                matches!(parse(body, &q), Err(QueryError::BadReply(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert_bad_replies(
            influxql_points,
            &[
                b"not json",
                b"{\"results\":[]}",
                b"{\"results\":[{\"series\":[{\"columns\":[\"time\"],\"values\":[[1,2]]}]}]}",
                b"{\"results\":[{\"series\":[{\"columns\":[\"time\"],\"values\":[[\"x\"]]}]}]}",
                b"{\"results\":[{\"series\":[{\"values\":[]}]}]}",
                b"{\"res",
            ],
        );
        assert_bad_replies(
            sql_points,
            &[
                b"[{\"time\":5}]",
                b"[{\"time\":\"yesterday\"}]",
                b"{}",
                b"[1]",
            ],
        );
        let q = query(None, None);
        let failed = br#"{"results":[{"statement_id":0,"error":"database not found: x"}]}"#;
        assert!(matches!(
            influxql_points(failed, &q),
            Err(QueryError::Failed { .. })
        ));
    }
}

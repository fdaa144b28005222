//! InfluxDB's answers to a history query, read into points.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::{HistoryQuery, Point, QueryError};

/// The message of an error reply: InfluxDB's JSON `error`/`message`, or its plain text.
pub(super) fn error_message(body: &[u8]) -> String {
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
pub(super) fn sql_points(body: &[u8], query: &HistoryQuery) -> Result<Vec<Point>, QueryError> {
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
pub(super) fn influxql_points(body: &[u8], query: &HistoryQuery) -> Result<Vec<Point>, QueryError> {
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
        // Grouped by a tag: its value is the series', not a column's.
        let tags = one.get("tags").and_then(Value::as_object);
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
            by_column.extend(
                tags.into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
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
    let key = query.measurement.key_tag();
    for name in query.fields.iter().copied().chain(key) {
        // An empty tag is InfluxQL's word for a line without it (`vm_cpu`'s total).
        if let Some(value) = value_of(name).filter(|v| !v.is_null() && v != "") {
            point.insert(name.to_owned(), value);
        }
    }
    point
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::query::tests::query;
    use crate::influx::query::{Measurement, VmTag};

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

    #[test]
    fn a_key_tag_comes_with_each_point_from_either_dialect() {
        let mut q = query(None, None);
        q.measurement = Measurement::VmDisk;
        q.fields = vec!["read_bytes_per_sec"];
        q.vm = Some((VmTag::Uuid, "u".into()));
        let body = br#"{"results":[{"statement_id":0,"series":[
            {"name":"vm_disk","tags":{"device":"vda"},"columns":["time","read_bytes_per_sec"],
             "values":[[1700000000000000000,10.5]]},
            {"name":"vm_disk","tags":{"device":"vdb"},"columns":["time","read_bytes_per_sec"],
             "values":[[1700000000000000000,2.0]]}]}]}"#;
        let points = influxql_points(body, &q).unwrap();
        let devices: Vec<_> = points.iter().map(|p| p["device"].clone()).collect();
        assert_eq!(devices, [json!("vda"), json!("vdb")]);
        assert_eq!(points[0]["read_bytes_per_sec"], json!(10.5));
        let body = br#"[{"time":"2026-11-24T10:00:00","read_bytes_per_sec":1.0,"device":"vda"}]"#;
        assert_eq!(sql_points(body, &q).unwrap()[0]["device"], json!("vda"));
        // vm_cpu's total line has no `vcpu`: InfluxQL says "".
        q.measurement = Measurement::VmCpu;
        q.fields = vec!["cpu_usage_percent"];
        let body = br#"{"results":[{"statement_id":0,"series":[{"name":"vm_cpu",
            "tags":{"vcpu":""},"columns":["time","cpu_usage_percent"],
            "values":[[1700000000000000000,50.0]]}]}]}"#;
        assert_eq!(influxql_points(body, &q).unwrap()[0].get("vcpu"), None);
    }
}

//! In-process stand-in for the InfluxDB 3 Core HTTP write and SQL query APIs.
//!
//! Integration tests point the service at [`InfluxDb3StandIn::url`] instead of
//! a real `influxdb3 serve`, then inspect what arrived ([`requests`],
//! [`queries`]) and what was stored ([`rows`]). The paths follow InfluxDB 3
//! Core's own source:
//!
//! * `POST /api/v3/write_lp`: partial writes by default (`accept_partial`),
//!   `precision=auto` by default, 204 on success.
//! * `POST /api/v2/write` and `POST /write` (v1): all-or-nothing, nanoseconds
//!   by default, with those APIs' error body shapes.
//! * `GET|POST /api/v3/query_sql`: SQL run by Apache DataFusion 55 (InfluxDB
//!   3's engine) over the stored rows; see below.
//! * `GET /health`: `200 OK`; every other path is `404 not found`.
//! * With a token, every path needs it (as in InfluxDB 3 without
//!   `--disable-authz`): `Bearer`/`Token`/`Basic` header, or `?p=` on `/write`.
//!
//! Lines are parsed with `influxdb_line_protocol` (the parser InfluxDB 3
//! uses) and checked against a per-(database, table) schema: the first write
//! of a column fixes whether it is a tag or a field, and the field's type.
//! Points are keyed by (tag set, timestamp); rewriting a point overwrites only
//! the fields it names.
//!
//! Queries: `db`, `q`, `format` (`json`, the default, or `jsonl`) and `params`
//! (a JSON object; a JSON string on GET) come from the query string on GET and
//! from a JSON body on POST. Each query starts `influxdb3_query.py` in the
//! Python that `scripts/install-deps.sh` sets up (`VMT_TEST_PYTHON`, else
//! `$VMT_TEST_STATE/venv/bin/python`); it registers one table per measurement
//! with InfluxDB 3's column types (tags `Dictionary(Int32, Utf8)`, fields by
//! type, `time` `Timestamp(ns)`), binds `$name` placeholders through
//! DataFusion's own parameter API, and prints rows as arrow-json does:
//! `[{"time":"2026-11-24T10:00:00","v":1}]`, null columns left out. Unknown
//! database: 404 `{"error"}`; SQL errors: 400 plain text; no usable Python:
//! 500 naming the setup step.
//!
//! Not modelled: query formats `csv`, `pretty` and `parquet` (400), InfluxDB's
//! own SQL functions (`date_bin_gapfill`, selectors), `no_sync` durability,
//! schema size limits. Error statuses and shapes match the server; message
//! texts are close to, not always identical with, InfluxDB's.
//!
//! ```ignore
//! let influx = InfluxDb3StandIn::start(Some("apiv3_token")).await;
//! // ... run the service with `influx.url` and the token ...
//! assert_eq!(influx.rows("telemetry", "cpu").len(), 1);
//! influx.stop().await;
//! ```
//!
//! [`requests`]: InfluxDb3StandIn::requests
//! [`queries`]: InfluxDb3StandIn::queries
//! [`rows`]: InfluxDb3StandIn::rows

// Each test binary that includes this support module uses a different subset
// of it; unused items must not fail `clippy -D warnings`.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::error::{PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use influxdb_line_protocol::{FieldValue as LpFieldValue, ParsedLine, parse_lines, split_lines};
use serde::Deserialize;
use serde_json::{Value, json};

/// InfluxDB 3's default `--max-http-request-size` (10 MiB), applied to the
/// decompressed body like the real server does.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// The query helper, run as `python -I -c SCRIPT`: no path to find at run time.
const QUERY_SCRIPT: &str = include_str!("influxdb3_query.py");

/// Exit statuses of the query helper besides 0.
const EXIT_QUERY_ERROR: i32 = 3;
const EXIT_SETUP_ERROR: i32 = 4;

/// How long one query may run, Python's start-up (a fraction of a second) included.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a missing or broken query Python tells the test's reader to do.
const SETUP_HINT: &str = "run scripts/install-deps.sh (it builds the test venv with datafusion) \
    or set VMT_TEST_PYTHON";

/// The real server's text for a malformed `Authorization` header.
const MALFORMED_AUTH: &str = "Authorization header was malformed, the request was not in the \
    form of 'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic";

/// A running stand-in server; stopped by [`stop`](Self::stop) or on drop.
pub struct InfluxDb3StandIn {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    shared: web::Data<Shared>,
    handle: ServerHandle,
}

/// One HTTP request as the stand-in received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// URL-decoded query parameters (the last one wins if a name repeats).
    pub query: BTreeMap<String, String>,
    /// Header names are lower case; repeated headers are joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The body after `Content-Encoding: gzip` decoding (lossy UTF-8).
    pub body: String,
    /// The status the stand-in answered with.
    pub status: u16,
}

/// One stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, FieldValue>,
    pub time_ns: i64,
}

/// A stored field value, typed as line protocol typed it (`1i`, `1u`, `1`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    String(String),
}

impl InfluxDb3StandIn {
    /// Starts the server on an ephemeral loopback port. `token: None` turns
    /// authentication off, like `influxdb3 serve --without-auth`.
    ///
    /// Must run inside an actix System (e.g. `#[actix_web::test]`).
    pub async fn start(token: Option<&str>) -> Self {
        let shared = web::Data::new(Shared {
            token: token.map(str::to_owned),
            state: Mutex::new(State::default()),
        });
        let app_shared = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_shared.clone())
                .app_data(web::PayloadConfig::new(MAX_REQUEST_BYTES))
                // One catch-all handler so that every request, even a 404, is
                // recorded, and routing mirrors the real server's match.
                .default_service(web::to(handle))
        })
        .workers(1)
        // Tests own the process: no Ctrl-C handlers, no long shutdown wait.
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .expect("bind the InfluxDB 3 stand-in to 127.0.0.1:0");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            url: format!("http://{addr}"),
            shared,
            handle,
        }
    }

    /// Every request received so far, in arrival order, rejected ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The `/api/v3/query_sql` requests among [`requests`](Self::requests).
    pub fn queries(&self) -> Vec<RecordedRequest> {
        let state = self.shared.lock();
        let queries = state.requests.iter().filter(|r| r.path == QUERY_SQL_PATH);
        queries.cloned().collect()
    }

    /// The points stored in `db`.`table`, sorted by (time, tags).
    pub fn rows(&self, db: &str, table: &str) -> Vec<Row> {
        let state = self.shared.lock();
        let Some(table) = state.databases.get(db).and_then(|db| db.get(table)) else {
            return Vec::new();
        };
        table
            .points
            .iter()
            .map(|((time_ns, tags), fields)| Row {
                tags: tags.clone(),
                fields: fields.clone(),
                time_ns: *time_ns,
            })
            .collect()
    }

    /// Replaces the queue of canned replies. Each `(status, body)` answers one
    /// write request (any of the three write paths) before authentication and
    /// parsing; the request is recorded but nothing is stored. Once the queue
    /// is empty, normal behaviour resumes.
    pub fn set_next_responses(&self, statuses: Vec<(u16, String)>) {
        for (status, _) in &statuses {
            assert!(
                StatusCode::from_u16(*status).is_ok(),
                "set_next_responses: {status} is not a valid HTTP status"
            );
        }
        self.shared.lock().canned = statuses.into();
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(&self) {
        // Not graceful: the test is done, and a graceful stop would wait for
        // keep-alive connections still held by the client's pool.
        self.handle.stop(false).await;
    }
}

impl Drop for InfluxDb3StandIn {
    fn drop(&mut self) {
        // `stop` sends the command immediately; the returned future only waits
        // for completion, which Drop cannot do. A second stop is a no-op.
        drop(self.handle.stop(false));
    }
}

// ---------------------------------------------------------------------------
// Shared state

struct Shared {
    token: Option<String>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the data from the next assert.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    canned: VecDeque<(u16, String)>,
    databases: BTreeMap<String, Database>,
}

/// Tables by name.
type Database = BTreeMap<String, Table>;

/// Column name -> column type, fixed by the column's first accepted write.
type Schema = BTreeMap<String, ColumnType>;

#[derive(Default)]
struct Table {
    schema: Schema,
    /// Keyed by (time, tag set) so iteration is already in `rows()` order.
    points: BTreeMap<(i64, BTreeMap<String, String>), BTreeMap<String, FieldValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Tag,
    Integer,
    UInteger,
    Float,
    String,
    Boolean,
}

impl ColumnType {
    fn of(value: &LpFieldValue<'_>) -> Self {
        match value {
            LpFieldValue::I64(_) => Self::Integer,
            LpFieldValue::U64(_) => Self::UInteger,
            LpFieldValue::F64(_) => Self::Float,
            LpFieldValue::String(_) => Self::String,
            LpFieldValue::Boolean(_) => Self::Boolean,
        }
    }

    /// The names InfluxDB 3 uses in its column-type error messages.
    fn iox_name(self) -> &'static str {
        match self {
            Self::Tag => "iox::column_type::tag",
            Self::Integer => "iox::column_type::field::integer",
            Self::UInteger => "iox::column_type::field::uinteger",
            Self::Float => "iox::column_type::field::float",
            Self::String => "iox::column_type::field::string",
            Self::Boolean => "iox::column_type::field::boolean",
        }
    }
}

impl From<&LpFieldValue<'_>> for FieldValue {
    fn from(value: &LpFieldValue<'_>) -> Self {
        match value {
            LpFieldValue::I64(v) => Self::I64(*v),
            LpFieldValue::U64(v) => Self::U64(*v),
            LpFieldValue::F64(v) => Self::F64(*v),
            LpFieldValue::String(v) => Self::String(v.to_string()),
            LpFieldValue::Boolean(v) => Self::Bool(*v),
        }
    }
}

// ---------------------------------------------------------------------------
// Request handling

/// The three write APIs differ in parameters, defaults and error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `/api/v3/write_lp`
    V3,
    /// `/api/v2/write`
    V2,
    /// `/write`
    V1,
}

const QUERY_SQL_PATH: &str = "/api/v3/query_sql";

enum Route {
    Health,
    Write(Api),
    QuerySql,
    NotFound,
}

impl Route {
    fn of(req: &HttpRequest) -> Self {
        match (req.method().as_str(), req.path()) {
            ("GET", "/health") => Self::Health,
            ("POST", "/api/v3/write_lp") => Self::Write(Api::V3),
            ("POST", "/api/v2/write") => Self::Write(Api::V2),
            ("POST", "/write") => Self::Write(Api::V1),
            ("GET" | "POST", QUERY_SQL_PATH) => Self::QuerySql,
            _ => Self::NotFound,
        }
    }
}

/// What [`respond`] decided: a reply, or a query to run off the worker thread.
enum Outcome {
    Reply(Reply),
    Query(QueryJob),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Self::Reply(reply)
    }
}

/// The body extractor's result is taken as a `Result` so that an undecodable
/// or oversized body still reaches us, gets recorded and gets InfluxDB's reply.
async fn handle(
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let query = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let reply = match respond(&req, &query, &body, &shared) {
        Outcome::Reply(reply) => reply,
        // A query waits for a Python process: not on the server's one worker
        // thread, which keeps serving writes meanwhile.
        Outcome::Query(job) => web::block(move || job.run())
            .await
            .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };

    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| *joined = format!("{joined}, {value}"))
            .or_insert_with(|| value.into_owned());
    }
    shared.lock().requests.push(RecordedRequest {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query,
        headers,
        body: body
            .as_ref()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default(),
        status: reply.status.as_u16(),
    });
    reply.into_response()
}

/// Canned replies first, then authentication (which, as in InfluxDB 3, guards
/// every path), then routing.
fn respond(
    req: &HttpRequest,
    query: &BTreeMap<String, String>,
    body: &Result<web::Bytes, actix_web::Error>,
    shared: &Shared,
) -> Outcome {
    let route = Route::of(req);
    if let Route::Write(_) = route
        && let Some((status, canned)) = shared.lock().canned.pop_front()
    {
        let status = StatusCode::from_u16(status).expect("checked by set_next_responses");
        // Served verbatim; labelled JSON when it parses as JSON.
        let body = if serde_json::from_str::<Value>(&canned).is_ok() {
            Body::Json(canned)
        } else {
            Body::Text(canned)
        };
        return Reply { status, body }.into();
    }

    // Auth failures on /api/v2/write use that API's error shape.
    let shape = match route {
        Route::Write(api) => api,
        Route::Health | Route::QuerySql | Route::NotFound => Api::V3,
    };
    if let Err(rejection) = authenticate(req, query, shared.token.as_deref(), shape) {
        return rejection.into();
    }
    match route {
        Route::Health => text(StatusCode::OK, "OK").into(),
        Route::NotFound => text(StatusCode::NOT_FOUND, "not found").into(),
        Route::Write(api) => write(api, query, req, body, shared)
            .unwrap_or_else(|error| error)
            .into(),
        Route::QuerySql => match query_job(req, body, shared) {
            Ok(job) => Outcome::Query(job),
            Err(error) => error.into(),
        },
    }
}

/// InfluxDB 3's token check: `?p=TOKEN` on `/write`, else an `Authorization`
/// header with scheme `Bearer`, `Token` or `Basic` (base64 `user:TOKEN`).
fn authenticate(
    req: &HttpRequest,
    query: &BTreeMap<String, String>,
    token: Option<&str>,
    api: Api,
) -> Result<(), Reply> {
    let Some(expected) = token else {
        return Ok(());
    };
    let unauthorized = || match api {
        Api::V2 => error(Api::V2, StatusCode::UNAUTHORIZED, "unauthorized access"),
        Api::V3 | Api::V1 => Reply::empty(StatusCode::UNAUTHORIZED),
    };
    let malformed = || error(api, StatusCode::BAD_REQUEST, MALFORMED_AUTH);

    let presented = match (req.path(), query.get("p")) {
        ("/write", Some(password)) => password.clone(),
        _ => {
            let Some(header) = req.headers().get(AUTHORIZATION) else {
                return Err(unauthorized());
            };
            let Ok(header) = header.to_str() else {
                return Err(Reply::empty(StatusCode::INTERNAL_SERVER_ERROR));
            };
            // Exactly "<scheme> <token>", split on single spaces like the server.
            let mut parts = header.split(' ');
            let (Some(scheme), Some(credential), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed());
            };
            match scheme {
                "Bearer" | "Token" => credential.to_owned(),
                "Basic" => basic_auth_password(credential).ok_or_else(malformed)?,
                _ => return Err(malformed()),
            }
        }
    };
    if presented == expected {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// The token part of a Basic credential, `base64("user:token")`.
fn basic_auth_password(credential: &str) -> Option<String> {
    let decoded = String::from_utf8(decode_base64(credential)?).ok()?;
    let (user, password) = decoded.rsplit_once(':')?;
    (!user.contains(':')).then(|| password.to_owned())
}

/// Standard-alphabet base64; `None` on any other character.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in input.trim_end_matches('=').bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        // Only the low `bits + 6` (< 16) bits matter; mask to avoid overflow.
        buffer = ((buffer << 6) | u32::from(sextet)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// Where a write goes and how its lines are read.
struct WriteTarget {
    db: String,
    precision: Precision,
    accept_partial: bool,
}

/// Runs one write request; `Err` holds the error reply.
fn write(
    api: Api,
    query: &BTreeMap<String, String>,
    req: &HttpRequest,
    body: &Result<web::Bytes, actix_web::Error>,
    shared: &Shared,
) -> Result<Reply, Reply> {
    // Same order as the server: parameters, db name, then the body.
    let target = match api {
        Api::V3 => v3_params(req, query)?,
        Api::V2 => v2_params(req, query)?,
        Api::V1 => v1_params(req, query)?,
    };
    validate_db_name(&target.db, api == Api::V1)
        .map_err(|message| error(api, StatusCode::BAD_REQUEST, message))?;
    let lp = read_body(api, req, body)?;

    let mut state = shared.lock();
    let db = state.databases.entry(target.db).or_default();
    match write_lines(db, lp, target.precision, target.accept_partial, now_ns()) {
        Ok(()) => Ok(Reply::empty(StatusCode::NO_CONTENT)),
        Err(rejection) => Err(rejection_reply(api, rejection)),
    }
}

/// `/api/v3/write_lp?db=&precision=&accept_partial=&no_sync=`
fn v3_params(req: &HttpRequest, query: &BTreeMap<String, String>) -> Result<WriteTarget, Reply> {
    // InfluxDB 3 answers parameter errors on this path in plain text.
    let bad = |message: String| text(StatusCode::BAD_REQUEST, message);
    if req.query_string().is_empty() {
        return Err(bad("missing query parameter 'db'".into()));
    }
    let db = query
        .get("db")
        .ok_or_else(|| bad("serde error: missing field `db`".into()))?;
    let precision = parse_precision(Api::V3, query.get("precision")).map_err(|value| {
        bad(format!(
            "serde error: unknown variant `{value}` for `precision`"
        ))
    })?;
    let flag = |name: &str, default: bool| match query.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(bad(
            "serde error: provided string was not `true` or `false`".into(),
        )),
    };
    let accept_partial = flag("accept_partial", true)?;
    // Durability is not modelled; the flag is only validated.
    flag("no_sync", false)?;
    Ok(WriteTarget {
        db: db.clone(),
        precision,
        accept_partial,
    })
}

/// `/api/v2/write?bucket=&org=&precision=`: `org` is ignored by InfluxDB 3.
fn v2_params(req: &HttpRequest, query: &BTreeMap<String, String>) -> Result<WriteTarget, Reply> {
    let bad = |message: String| error(Api::V2, StatusCode::BAD_REQUEST, message);
    if req.query_string().is_empty() {
        return Err(bad("no org/bucket destination provided".into()));
    }
    let precision = parse_precision(Api::V2, query.get("precision")).map_err(|value| {
        bad(format!(
            "failed to deserialize org/bucket/precision in request: unknown variant `{value}`"
        ))
    })?;
    let bucket = query.get("bucket").filter(|bucket| !bucket.is_empty());
    let bucket = bucket.ok_or_else(|| bad("missing bucket value".into()))?;
    Ok(WriteTarget {
        db: bucket.clone(),
        precision,
        accept_partial: false,
    })
}

/// `/write?db=&rp=&precision=&u=&p=` (v1 compatibility).
fn v1_params(req: &HttpRequest, query: &BTreeMap<String, String>) -> Result<WriteTarget, Reply> {
    let bad = |message: String| error(Api::V1, StatusCode::BAD_REQUEST, message);
    if req.query_string().is_empty() {
        return Err(bad("no db destination provided".into()));
    }
    let prefix = "failed to deserialize db/rp/precision in request";
    let db = query
        .get("db")
        .ok_or_else(|| bad(format!("{prefix}: missing field `db`")))?;
    let precision = parse_precision(Api::V1, query.get("precision"))
        .map_err(|value| bad(format!("{prefix}: unknown variant `{value}`")))?;
    // A named retention policy becomes part of the database name, "db/rp".
    let rp = query
        .get("rp")
        .map(|rp| rp.to_lowercase())
        .unwrap_or_default();
    let db = match rp.as_str() {
        "" | "''" | "autogen" | "default" => db.clone(),
        rp => format!("{db}/{rp}"),
    };
    Ok(WriteTarget {
        db,
        precision,
        accept_partial: false,
    })
}

/// InfluxDB 3's database-name rule: ASCII letters, digits, `_` and `-`,
/// starting with a letter or digit; v1 may add one `/rp` suffix.
fn validate_db_name(name: &str, accept_rp: bool) -> Result<(), &'static str> {
    const INVALID_CHAR: &str = "invalid character in database name: must be ASCII, \
        containing only letters, numbers, underscores, or hyphens";
    const INVALID_RP: &str = "db name with invalid retention policy, if providing a \
        retention policy name, must be of form '<db_name>/<rp_name>'";
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("db name cannot be empty");
    };
    if !first.is_ascii() {
        return Err(INVALID_CHAR);
    }
    if !first.is_ascii_alphanumeric() {
        return Err("db name did not start with a number or letter");
    }
    let mut rp_separator_seen = false;
    for c in chars {
        if !c.is_ascii() {
            return Err(INVALID_CHAR);
        }
        match (accept_rp, c) {
            (true, '/') if rp_separator_seen => return Err(INVALID_RP),
            (true, '/') => rp_separator_seen = true,
            // With an rp allowed, the server checks nothing else (sic).
            (true, _) => {}
            (false, c) if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                return Err(INVALID_CHAR);
            }
            (false, _) => {}
        }
    }
    if name.ends_with('/') {
        return Err(INVALID_RP);
    }
    Ok(())
}

/// Checks `Content-Encoding` and the extracted body the way InfluxDB 3 does.
/// Note the real server answers most body problems with 500 on v3 and v1.
fn read_body<'a>(
    api: Api,
    req: &HttpRequest,
    body: &'a Result<web::Bytes, actix_web::Error>,
) -> Result<&'a str, Reply> {
    // Plain text on v3/v1, `{"code","message"}` on v2 (where the status for
    // most of these is 400 instead).
    let fail = |v3_status: StatusCode, v2_status: StatusCode, message: String| match api {
        Api::V2 => error(api, v2_status, message),
        Api::V3 | Api::V1 => text(v3_status, message),
    };
    // actix-web would also inflate br/deflate/zstd; InfluxDB accepts only gzip.
    if let Some(encoding) = req.headers().get(CONTENT_ENCODING) {
        let encoding = String::from_utf8_lossy(encoding.as_bytes());
        if encoding != "gzip" && encoding != "identity" {
            let message = format!("unacceptable content-encoding: {encoding}");
            return Err(fail(
                StatusCode::BAD_REQUEST,
                StatusCode::BAD_REQUEST,
                message,
            ));
        }
    }
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(e) if matches!(e.as_error::<PayloadError>(), Some(PayloadError::Overflow)) => {
            let message = format!("max request size ({MAX_REQUEST_BYTES} bytes) exceeded");
            return Err(fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::PAYLOAD_TOO_LARGE,
                message,
            ));
        }
        Err(e) => {
            let message = format!("error decoding gzip stream: {e}");
            return Err(fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_REQUEST,
                message,
            ));
        }
    };
    std::str::from_utf8(bytes).map_err(|e| {
        let message = format!("body content is not valid utf8: {e}");
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_REQUEST,
            message,
        )
    })
}

// ---------------------------------------------------------------------------
// SQL queries

/// `format`, spelled as InfluxDB 3 accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum QueryFormat {
    Parquet,
    Csv,
    Pretty,
    Json,
    #[serde(alias = "jsonl")]
    JsonLines,
}

impl QueryFormat {
    /// The server's `Accept` rule, used when the request names no format. It
    /// runs first, so a bad header fails even a request that names one.
    fn from_accept(req: &HttpRequest) -> Result<Self, Reply> {
        let Some(accept) = req.headers().get(ACCEPT) else {
            return Ok(Self::Json);
        };
        match accept.as_bytes() {
            b"application/vnd.apache.parquet" => Ok(Self::Parquet),
            b"text/csv" => Ok(Self::Csv),
            b"text/plain" => Ok(Self::Pretty),
            b"application/json" | b"*/*" => Ok(Self::Json),
            other => {
                let other = String::from_utf8_lossy(other);
                if other.contains("text/html") || other.contains("*/*") {
                    Ok(Self::Json)
                } else {
                    // 500, not 400: the server maps this error to its default.
                    let message = format!("invalid mime type ({other})");
                    Err(text(StatusCode::INTERNAL_SERVER_ERROR, message))
                }
            }
        }
    }
}

/// The query string of `GET /api/v3/query_sql`; `params` is a JSON string.
#[derive(Deserialize)]
struct QueryGet {
    db: String,
    q: String,
    format: Option<QueryFormat>,
    params: Option<String>,
}

/// The JSON body of `POST /api/v3/query_sql`; the query string is ignored.
#[derive(Deserialize)]
struct QueryPost {
    db: String,
    q: String,
    format: Option<QueryFormat>,
    params: Option<BTreeMap<String, Value>>,
}

/// One query, ready for the helper: its stdin and how to label its stdout.
struct QueryJob {
    format: QueryFormat,
    input: Vec<u8>,
}

/// Reads the request like the server (parameters, then the database) and
/// snapshots the database's tables; `Err` holds the error reply.
fn query_job(
    req: &HttpRequest,
    body: &Result<web::Bytes, actix_web::Error>,
    shared: &Shared,
) -> Result<QueryJob, Reply> {
    let bad = |message: String| text(StatusCode::BAD_REQUEST, message);
    let header_format = QueryFormat::from_accept(req)?;
    let (db, q, format, params) = if req.method() == "GET" {
        if req.query_string().is_empty() {
            return Err(bad("missing query parameters 'db' and 'q'".into()));
        }
        let get = web::Query::<QueryGet>::from_query(req.query_string())
            .map_err(|e| match e {
                // The serde message alone, as the server's serde_urlencoded gives it.
                QueryPayloadError::Deserialize(e) => bad(format!("serde error: {e}")),
                e => bad(e.to_string()),
            })?
            .into_inner();
        let params = get
            .params
            .map(|params| serde_json::from_str::<BTreeMap<String, Value>>(&params))
            .transpose()
            .map_err(|e| bad(format!("serde json error: {e}")))?;
        (get.db, get.q, get.format, params)
    } else {
        let body = read_body(Api::V3, req, body)?;
        let post = serde_json::from_str::<QueryPost>(body)
            .map_err(|e| bad(format!("serde json error: {e}")))?;
        (post.db, post.q, post.format, post.params)
    };
    let format = format.unwrap_or(header_format);
    let params = params
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| Ok((name, typed_param(value)?)))
        .collect::<Result<serde_json::Map<_, _>, String>>()
        .map_err(|e| bad(format!("serde json error: {e}")))?;
    if !matches!(format, QueryFormat::Json | QueryFormat::JsonLines) {
        return Err(bad(format!(
            "the InfluxDB 3 stand-in answers format json and jsonl only, not {format:?}"
        )));
    }

    let state = shared.lock();
    let Some(database) = state.databases.get(&db) else {
        let message = format!("query error: database not found: {db}");
        return Err(json_reply(StatusCode::NOT_FOUND, json!({"error": message})));
    };
    let tables: Vec<Value> = database
        .iter()
        .map(|(name, table)| table_json(name, table))
        .collect();
    drop(state);
    let format_name = if format == QueryFormat::JsonLines {
        "jsonl"
    } else {
        "json"
    };
    let input = json!({"q": q, "format": format_name, "params": params, "tables": tables});
    Ok(QueryJob {
        format,
        input: input.to_string().into_bytes(),
    })
}

/// A JSON parameter as InfluxDB 3 types it (`iox_query_params`): a number that
/// fits u64 is UInt64, else Int64, else Float64, so `1764000000000000000`
/// binds as UInt64.
fn typed_param(value: Value) -> Result<Value, String> {
    let kind = match &value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() => "u64",
        Value::Number(n) if n.is_i64() => "i64",
        Value::Number(_) => "f64",
        Value::String(_) => "str",
        Value::Array(_) => {
            return Err("JSON arrays are not supported as query parameters. \
                Expected null, boolean, number, or string."
                .into());
        }
        Value::Object(_) => {
            return Err("JSON objects are not supported as query parameters. \
                Expected null, boolean, number, or string"
                .into());
        }
    };
    Ok(json!({"type": kind, "value": value}))
}

/// One table for the helper, column by column. Columns come in name order,
/// `time` among them, as InfluxDB 3 lists them for `SELECT *`.
fn table_json(name: &str, table: &Table) -> Value {
    let mut columns: Vec<(&str, Option<ColumnType>)> = table
        .schema
        .iter()
        .map(|(name, column_type)| (name.as_str(), Some(*column_type)))
        .collect();
    columns.push(("time", None));
    columns.sort_by_key(|(name, _)| *name);

    let columns: Vec<Value> = columns
        .into_iter()
        .map(|(column, column_type)| {
            let values: Vec<Value> = table
                .points
                .iter()
                .map(|((time_ns, tags), fields)| match column_type {
                    None => json!(time_ns),
                    Some(ColumnType::Tag) => tags.get(column).map_or(Value::Null, |v| json!(v)),
                    Some(_) => fields.get(column).map_or(Value::Null, field_json),
                })
                .collect();
            let kind = match column_type {
                None => "time",
                Some(ColumnType::Tag) => "tag",
                Some(ColumnType::Integer) => "i64",
                Some(ColumnType::UInteger) => "u64",
                Some(ColumnType::Float) => "f64",
                Some(ColumnType::String) => "string",
                Some(ColumnType::Boolean) => "bool",
            };
            json!({"name": column, "type": kind, "values": values})
        })
        .collect();
    json!({"name": name, "columns": columns})
}

fn field_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::I64(v) => json!(v),
        FieldValue::U64(v) => json!(v),
        FieldValue::F64(v) => json!(v),
        FieldValue::Bool(v) => json!(v),
        FieldValue::String(v) => json!(v),
    }
}

/// The Python that runs queries: `VMT_TEST_PYTHON` (scripts/test.sh sets it),
/// else the venv that scripts/install-deps.sh builds under `VMT_TEST_STATE`.
fn query_python() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(python) = set("VMT_TEST_PYTHON") {
        return python.into();
    }
    let state = set("VMT_TEST_STATE").unwrap_or_else(|| "/var/tmp/vmtelemetry-test".into());
    Path::new(&state).join("venv/bin/python")
}

impl QueryJob {
    /// Runs the helper (blocking) and turns its exit into the server's reply.
    fn run(self) -> Reply {
        let failed = |message: String| {
            let message = format!("InfluxDB 3 stand-in: {message}");
            text(StatusCode::INTERNAL_SERVER_ERROR, message)
        };
        let python = query_python();
        if !python.exists() {
            let python = python.display();
            return failed(format!(
                "no Python for SQL queries at {python}: {SETUP_HINT}"
            ));
        }
        let output = match run_helper(&python, self.input) {
            Ok(output) => output,
            Err(message) => return failed(message),
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        match output.status.code() {
            Some(0) if self.format == QueryFormat::JsonLines => Reply {
                status: StatusCode::OK,
                body: Body::JsonLines(stdout),
            },
            Some(0) => Reply {
                status: StatusCode::OK,
                body: Body::Json(stdout),
            },
            Some(EXIT_QUERY_ERROR) => text(StatusCode::BAD_REQUEST, stdout),
            Some(EXIT_SETUP_ERROR) => failed(stdout),
            _ => failed(format!(
                "the query helper ({}) failed, {}: {}",
                python.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }
}

/// `python -I -c SCRIPT` with `input` on stdin, killed after [`QUERY_TIMEOUT`].
fn run_helper(python: &Path, input: Vec<u8>) -> Result<Output, String> {
    // -I: no PYTHONPATH, no user site: only the venv's packages count.
    let mut child = Command::new(python)
        .args(["-I", "-c", QUERY_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}; {SETUP_HINT}", python.display()))?;
    // Every pipe has its own thread, so no side blocks on a full pipe. A write
    // error only means the helper exited early; its status tells why.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = thread::spawn(move || drop(stdin.write_all(&input)));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));

    let deadline = Instant::now() + QUERY_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                drop(child.kill());
                drop(child.wait());
                break Err(format!(
                    "the query helper ran over {} s and was killed",
                    QUERY_TIMEOUT.as_secs()
                ));
            }
            Err(e) => break Err(format!("cannot wait for the query helper: {e}")),
        }
    };
    let _ = writer.join();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(Output {
        status: status?,
        stdout,
        stderr,
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        drop(pipe.read_to_end(&mut bytes));
        bytes
    })
}

// ---------------------------------------------------------------------------
// Line protocol, schema and storage

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    /// v3 only: guess the unit from the timestamp's magnitude.
    Auto,
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    /// v1 only.
    Minute,
    /// v1 only.
    Hour,
}

impl Precision {
    /// Nanoseconds per unit; for `Auto`, of the unit guessed for `timestamp`.
    fn nanos_per_unit(self, timestamp: i64) -> i64 {
        match self {
            Self::Auto => Self::guess(timestamp).nanos_per_unit(timestamp),
            Self::Nanosecond => 1,
            Self::Microsecond => 1_000,
            Self::Millisecond => 1_000_000,
            Self::Second => 1_000_000_000,
            Self::Minute => 60 * 1_000_000_000,
            Self::Hour => 3_600 * 1_000_000_000,
        }
    }

    /// InfluxDB 3's `precision=auto` rule, on |timestamp| / 1e9: below 5 is
    /// seconds, below 5 000 milliseconds, below 5 000 000 microseconds, else
    /// nanoseconds. So every unit is read correctly for dates from about
    /// 1970-02-27 to 2128-06-11.
    fn guess(timestamp: i64) -> Self {
        match timestamp.unsigned_abs() / 1_000_000_000 {
            0..5 => Self::Second,
            5..5_000 => Self::Millisecond,
            5_000..5_000_000 => Self::Microsecond,
            _ => Self::Nanosecond,
        }
    }

    /// The line's timestamp in nanoseconds. Without one, InfluxDB uses the
    /// ingest time truncated to the precision (untouched for `Auto`).
    fn to_nanos(self, timestamp: Option<i64>, now_ns: i64) -> Result<i64, String> {
        match timestamp {
            Some(ts) => ts
                .checked_mul(self.nanos_per_unit(ts))
                .ok_or_else(|| format!("timestamp, {ts}, out of range for precision: {self:?}")),
            None if self == Self::Auto => Ok(now_ns),
            None => {
                let unit = self.nanos_per_unit(0);
                Ok(now_ns / unit * unit)
            }
        }
    }
}

/// Reads `precision`, whose accepted spellings and default differ per API;
/// `Err` holds the rejected value.
fn parse_precision(api: Api, value: Option<&String>) -> Result<Precision, String> {
    let Some(value) = value else {
        return Ok(match api {
            Api::V3 => Precision::Auto,
            Api::V2 | Api::V1 => Precision::Nanosecond,
        });
    };
    Ok(match (api, value.as_str()) {
        (Api::V3, "auto") => Precision::Auto,
        (_, "s" | "second") => Precision::Second,
        (_, "ms" | "millisecond") => Precision::Millisecond,
        (_, "us" | "u" | "microsecond") => Precision::Microsecond,
        (_, "ns" | "n" | "nanosecond") => Precision::Nanosecond,
        (Api::V1, "m") => Precision::Minute,
        (Api::V1, "h") => Precision::Hour,
        _ => return Err(value.clone()),
    })
}

/// One rejected line, as InfluxDB 3 reports it.
struct LineError {
    original_line: String,
    /// 1-based, counting the lines the parser yields (blank and `#` comment
    /// lines are skipped and not counted).
    line_number: usize,
    error_message: String,
}

impl LineError {
    fn to_json(&self) -> Value {
        json!({
            "original_line": self.original_line,
            "line_number": self.line_number,
            "error_message": self.error_message,
        })
    }
}

enum Rejection {
    /// `accept_partial=true`: the other lines were stored.
    Partial(Vec<LineError>),
    /// All-or-nothing: the first bad line; nothing was stored.
    Rejected(LineError),
    /// The body held no lines at all.
    Empty,
}

/// A validated line, ready to store.
struct Point {
    table: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, FieldValue>,
    time_ns: i64,
}

/// Validates `body` line by line against the schema, then stores the accepted
/// points. Nothing (points or schema) is stored if the write is rejected.
fn write_lines(
    db: &mut Database,
    body: &str,
    precision: Precision,
    accept_partial: bool,
    now_ns: i64,
) -> Result<(), Rejection> {
    // A working copy, so that columns added by earlier lines of this request
    // constrain later ones, and a rejected request leaves no trace.
    let mut schemas: BTreeMap<String, Schema> = db
        .iter()
        .map(|(name, table)| (name.clone(), table.schema.clone()))
        .collect();
    let mut points = Vec::new();
    let mut errors = Vec::new();
    let mut line_number = 0;

    // `split_lines` is the parser's own line splitter (it keeps newlines inside
    // quoted strings), so each piece is exactly one line for `parse_lines` and
    // the original text for error reports.
    for raw_line in split_lines(body) {
        let Some(parsed) = parse_lines(raw_line).next() else {
            continue; // blank or comment line
        };
        line_number += 1;
        let checked = parsed
            .map_err(|e| e.to_string())
            .and_then(|line| check_line(&mut schemas, &line, precision, now_ns));
        match checked {
            Ok(point) => points.push(point),
            Err(error_message) => {
                let error = LineError {
                    original_line: raw_line.trim_end_matches('\r').to_owned(),
                    line_number,
                    error_message,
                };
                if !accept_partial {
                    return Err(Rejection::Rejected(error));
                }
                errors.push(error);
            }
        }
    }
    if line_number == 0 {
        return Err(Rejection::Empty);
    }

    for (name, schema) in schemas {
        db.entry(name).or_default().schema = schema;
    }
    for point in points {
        let table = db.entry(point.table).or_default();
        // Same (time, tags) is the same point: named fields overwrite, the
        // others are kept.
        table
            .points
            .entry((point.time_ns, point.tags))
            .or_default()
            .extend(point.fields);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Partial(errors))
    }
}

/// Checks one parsed line against the table's schema. On success the line's
/// new columns join the working schema; on failure it leaves no trace.
fn check_line(
    schemas: &mut BTreeMap<String, Schema>,
    line: &ParsedLine<'_>,
    precision: Precision,
    now_ns: i64,
) -> Result<Point, String> {
    let table = line.series.measurement.to_string();
    let empty = Schema::new();
    let known = schemas.get(&table).unwrap_or(&empty);
    let mut added = Schema::new();
    let mut declare = |name: &str, wanted: ColumnType| {
        if name == "time" {
            return Err("invalid column name 'time': it is reserved for the timestamp".to_owned());
        }
        match known.get(name).or_else(|| added.get(name)) {
            Some(&existing) if existing != wanted => Err(format!(
                "invalid column type for column '{name}', expected {}, got {}",
                existing.iox_name(),
                wanted.iox_name()
            )),
            Some(_) => Ok(()),
            None => {
                added.insert(name.to_owned(), wanted);
                Ok(())
            }
        }
    };

    let mut tags = BTreeMap::new();
    for (key, value) in line.series.tag_set.iter().flatten() {
        declare(key, ColumnType::Tag)?;
        tags.insert(key.to_string(), value.to_string());
    }
    let mut fields = BTreeMap::new();
    for (key, value) in &line.field_set {
        declare(key, ColumnType::of(value))?;
        fields.insert(key.to_string(), FieldValue::from(value));
    }
    let time_ns = precision.to_nanos(line.timestamp, now_ns)?;

    schemas.entry(table.clone()).or_default().extend(added);
    Ok(Point {
        table,
        tags,
        fields,
        time_ns,
    })
}

fn now_ns() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock is after 1970");
    i64::try_from(since_epoch.as_nanos()).expect("system clock is before 2262")
}

// ---------------------------------------------------------------------------
// Response bodies

fn rejection_reply(api: Api, rejection: Rejection) -> Reply {
    let status = StatusCode::BAD_REQUEST;
    match (api, rejection) {
        (Api::V2, Rejection::Rejected(line)) => error(
            api,
            status,
            format!(
                "line protocol parsing error: line {}: {}",
                line.line_number, line.error_message
            ),
        ),
        (_, Rejection::Rejected(line)) => json_reply(
            status,
            json!({"error": "line protocol parsing error", "data": line.to_json()}),
        ),
        (_, Rejection::Partial(lines)) => json_reply(
            status,
            json!({
                "error": "partial write of line protocol occurred",
                "data": lines.iter().map(LineError::to_json).collect::<Vec<_>>(),
            }),
        ),
        (Api::V2, Rejection::Empty) => error(api, status, "no data written: empty write"),
        (_, Rejection::Empty) => text(status, "no data written: empty write"),
    }
}

/// A JSON error in the API's shape: `{"code","message"}` for v2,
/// `{"error"}` for v3 and v1.
fn error(api: Api, status: StatusCode, message: impl Into<String>) -> Reply {
    let message = message.into();
    let body = match api {
        Api::V2 => {
            let code = match status.as_u16() {
                400 => "invalid",
                401 => "unauthorized",
                404 => "not found",
                413 => "request too large",
                _ => "internal error",
            };
            json!({"code": code, "message": message})
        }
        Api::V3 | Api::V1 => json!({"error": message}),
    };
    json_reply(status, body)
}

fn json_reply(status: StatusCode, body: Value) -> Reply {
    Reply {
        status,
        body: Body::Json(body.to_string()),
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    Reply {
        status,
        body: Body::Text(body.into()),
    }
}

/// A reply as plain data: small enough to travel in `Err` (an `HttpResponse`
/// is too big for clippy's `result_large_err`), and its status is recorded.
struct Reply {
    status: StatusCode,
    body: Body,
}

enum Body {
    Empty,
    Text(String),
    /// Already serialized.
    Json(String),
    /// Already serialized, one object per line.
    JsonLines(String),
}

impl Reply {
    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: Body::Empty,
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        match self.body {
            Body::Empty => response.finish(),
            Body::Text(text) => response.content_type(ContentType::plaintext()).body(text),
            Body::Json(json) => response.content_type(ContentType::json()).body(json),
            Body::JsonLines(lines) => response
                .insert_header((CONTENT_TYPE, "application/jsonl"))
                .body(lines),
        }
    }
}

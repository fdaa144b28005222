//! `spawn_app`, the real InfluxDB of the tests, libvirt test-driver nodes, and waiting.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vmtelemetry::configuration::load_with_env;
use vmtelemetry::startup::Application;
use vmtelemetry::telemetry::{get_subscriber, init_subscriber};

use crate::support::settings::{base_settings, influx_url};
pub use crate::support::test_node::TestDomain;
use crate::support::test_node::node_xml;

/// Logs show only when asked: `TEST_LOG=1 cargo test`.
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let format = vmtelemetry::configuration::LogFormat::Text;
        init_subscriber(get_subscriber("debug", format, std::io::stdout));
    }
});

/// Over `base_settings`: fast cycles, and the seed's pipeline unless a test asks for more
/// (tests/api/extended.rs does): the older tests count lines exactly.
const IN_PROCESS: [(&str, &str); 5] = [
    ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
    ("VMTELEMETRY_BATCH_MAX_SEC", "0.2"),
    ("VMTELEMETRY_LIBVIRT_TIMEOUT", "5"),
    ("VMTELEMETRY_STATS_GROUPS", ""),
    ("VMTELEMETRY_HOST_METRICS", "false"),
];

pub struct TestApp {
    pub address: String,
    pub client: awc::Client,
    /// The app's own spool, removed with it.
    _spool: tempfile::TempDir,
}

/// Starts the application with test settings, overridden by `env` (as `VMTELEMETRY_*` variables).
pub async fn spawn_app(env: &[(&str, &str)]) -> TestApp {
    spawn_app_with_file(None, env).await
}

/// Starts the application collecting `uri` into `influx`'s database, with `env` over that.
pub async fn spawn_collecting(uri: &str, influx: &Influx, env: &[(&str, &str)]) -> TestApp {
    let target = [
        ("VMTELEMETRY_LIBVIRT_URI", uri),
        ("VMTELEMETRY_INFLUX_URL", &influx.url),
        ("VMTELEMETRY_INFLUX_DB", &influx.db),
    ];
    spawn_app(&[&target, env].concat()).await
}

/// libvirt's system connection: the real guests of `support::guest`.
pub const QEMU_SYSTEM: &str = "qemu:///system";

/// A fresh database, with the application collecting `uri` into it (`env` over the test
/// settings).
pub async fn collecting_from(uri: &str, env: &[(&str, &str)]) -> (TestApp, Influx) {
    let influx = Influx::new_database().await;
    let app = spawn_collecting(uri, &influx, env).await;
    (app, influx)
}

/// A test-driver node of `domains` and a fresh database, with the application collecting the one
/// into the other (`env` over the test settings). Keep the node: dropping it removes its file.
pub async fn collecting(
    domains: &[TestDomain],
    env: &[(&str, &str)],
) -> (TestApp, Influx, TestNode) {
    let node = TestNode::new(domains);
    let (app, influx) = collecting_from(&node.uri, env).await;
    (app, influx, node)
}

/// Starts the application collecting `uri` and writing to the InfluxDB at `url` through `api`
/// (`v1`, `v2` or `v3`), with `env` over that.
pub async fn spawn_writing_to(uri: &str, url: &str, api: &str, env: &[(&str, &str)]) -> TestApp {
    let target = [
        ("VMTELEMETRY_LIBVIRT_URI", uri),
        ("VMTELEMETRY_INFLUX_URL", url),
        ("VMTELEMETRY_INFLUX_API", api),
    ];
    spawn_app(&[&target, env].concat()).await
}

/// As `spawn_app`, with a configuration file's text between the defaults and `env`.
pub async fn spawn_app_with_file(file: Option<&str>, env: &[(&str, &str)]) -> TestApp {
    LazyLock::force(&TRACING);
    let spool = tempfile::tempdir().expect("a spool directory");
    let mut settings = base_settings(spool.path());
    settings.extend(
        IN_PROCESS
            .iter()
            .chain(env)
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let file = file.map(|text| {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    });
    let config = load_with_env(file.as_ref().map(|f| f.path()), settings)
        .expect("test configuration is valid");
    let application = Application::build(config).expect("application starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    actix_rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: awc::Client::default(),
        _spool: spool,
    }
}

/// Serves `handler` for every request, on a free loopback port with one worker, for the rest of
/// the test; its base URL. For the fake servers a test scripts.
pub fn serve_every_request<F, Args>(handler: F) -> String
where
    F: actix_web::Handler<Args> + Send,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().default_service(actix_web::web::to(handler.clone()))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("a free loopback port");
    let url = format!("http://{}", server.addrs()[0]);
    actix_rt::spawn(server.run());
    url
}

/// A JSON answer of the service.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: awc::http::header::HeaderMap,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self.request("GET", path, None).await;
        (answer.status, answer.body)
    }

    /// Any method, with `Authorization: Bearer <token>` when given.
    pub async fn request(&self, method: &str, path: &str, token: Option<&str>) -> Answer {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.expect("the service answers");
        let body = response.body().limit(64 << 20).await.expect("a body");
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body:?}"));
        Answer {
            status: response.status().as_u16(),
            body: json,
            headers: response.headers().clone(),
        }
    }

    pub async fn status(&self) -> Value {
        let (code, status) = self.get("/api/telemetry/status").await;
        assert_eq!(code, 200, "{status}");
        status
    }

    /// The status once `ready` holds of it (`None`: a figure it needs is not there yet); fails
    /// the test after `timeout` with `what`.
    pub async fn status_when(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&Value) -> Option<bool>,
    ) -> Value {
        wait_for(what, timeout, || async {
            let status = self.status().await;
            ready(&status)?.then_some(status)
        })
        .await
    }
}

impl TestApp {
    /// The status once no line waits in the queue and `accounted` holds of the lines the
    /// features produced so far and of the status (`None`: a figure it needs is not there yet):
    /// checked between cycles, when no line is on its way to the writer.
    pub async fn status_when_settled(
        &self,
        what: &str,
        timeout: Duration,
        accounted: impl Fn(u64, &Value) -> Option<bool>,
    ) -> Value {
        self.status_when(what, timeout, |status| {
            let produced = status["features"]["lines_produced"].as_u64()?;
            Some(status["queue_depth"] == json!(0) && accounted(produced, status)?)
        })
        .await
    }
}

/// Asserts an error answer as the API promises it: the HTTP `status`, the stable `code`, and a
/// message that names `named`.
#[track_caller]
pub fn assert_error(answer: &(u16, Value), status: u16, code: &str, named: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], json!(code), "{body}");
    let message = body["error"]["message"].as_str();
    assert!(
        message.is_some_and(|m| m.contains(named)),
        "the message should name {named:?}: {body}"
    );
}

/// The string `key` of each item of the JSON array `items`, in order.
#[track_caller]
pub fn each_str<'a>(items: &'a Value, key: &str) -> Vec<&'a str> {
    let items = items.as_array().expect("an array").iter();
    items.map(|item| item[key].as_str().unwrap()).collect()
}

/// Polls `check` until it returns `Some`, or fails the test after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Unique across runs too: pids come round again (pid_max is 32768 here), and a database left by
/// an earlier run of the same pid would hand its rows to a test that counts them.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static STARTED: LazyLock<u128> = LazyLock::new(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |since| since.as_millis())
    });
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        *STARTED,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh database on the real InfluxDB (1.x) that `scripts/test-env.sh` runs on loopback.
pub struct Influx {
    pub db: String,
    url: String,
    client: awc::Client,
}

impl Influx {
    pub async fn new_database() -> Self {
        Self::new_database_at(&influx_url()).await
    }

    /// A fresh database on the InfluxDB 1.x at `url`.
    pub async fn new_database_at(url: &str) -> Self {
        Self::new_database_with(url, awc::Client::default()).await
    }

    /// As `new_database_at`, asking as `user` (an InfluxDB 1.x with `auth-enabled`).
    pub async fn new_database_as(url: &str, user: &str, password: &str) -> Self {
        let client = awc::Client::builder()
            .basic_auth(user, Some(password))
            .finish();
        Self::new_database_with(url, client).await
    }

    async fn new_database_with(url: &str, client: awc::Client) -> Self {
        let influx = Influx {
            db: unique("vmt"),
            url: url.to_owned(),
            client,
        };
        influx
            .query_raw(&format!("CREATE DATABASE \"{}\"", influx.db), None)
            .await;
        influx
    }

    async fn query_raw(&self, q: &str, db: Option<&str>) -> Value {
        let mut params = vec![("q", q), ("epoch", "ns")];
        if let Some(db) = db {
            params.push(("db", db));
        }
        let mut response = self
            .client
            .post(format!("{}/query", self.url))
            .send_form(&params)
            .await
            .unwrap_or_else(|e| panic!("influxd at {} answers: {e}", self.url));
        let body = response.body().await.expect("a body");
        assert!(response.status().is_success(), "{q}: {body:?}");
        serde_json::from_slice(&body).expect("InfluxDB answers JSON")
    }

    /// Rows of an InfluxQL query on this database, each a map from column to value.
    pub async fn rows(&self, q: &str) -> Vec<BTreeMap<String, Value>> {
        let answer = self.query_raw(q, Some(&self.db)).await;
        let result = &answer["results"][0];
        assert!(result.get("error").is_none(), "{q}: {result}");
        let mut rows = Vec::new();
        for series in result["series"].as_array().into_iter().flatten() {
            let columns: Vec<String> = series["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
            for values in series["values"].as_array().unwrap() {
                let mut row: BTreeMap<String, Value> = columns
                    .iter()
                    .cloned()
                    .zip(values.as_array().unwrap().iter().cloned())
                    .collect();
                if let Some(tags) = series.get("tags").and_then(Value::as_object) {
                    row.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                rows.push(row);
            }
        }
        rows
    }

    /// The rows of `measurement` whose `name` tag is `vm`, in time order.
    pub async fn rows_of(&self, measurement: &str, vm: &str) -> Vec<BTreeMap<String, Value>> {
        let q = format!("SELECT * FROM \"{measurement}\" WHERE \"name\" = '{vm}' ORDER BY time");
        self.rows(&q).await
    }

    /// The `host_metrics` rows (one per cycle, in the batch of its `vm_metrics` lines) once at
    /// least `min` cycles are stored and each of `vms` VMs has a `vm_metrics` point in every one;
    /// `None` before. Counted inside InfluxDB: 1,000 series per query would be a heavy answer,
    /// many times over.
    pub async fn complete_cycles(
        &self,
        vms: usize,
        min: usize,
    ) -> Option<Vec<BTreeMap<String, Value>>> {
        let per_vm = "SELECT MIN(n) AS lo, MAX(n) AS hi, COUNT(n) AS vms FROM \
                      (SELECT COUNT(cpu_count) AS n FROM vm_metrics GROUP BY uuid)";
        let cycles = self.rows("SELECT * FROM host_metrics").await;
        let counts = self.rows(per_vm).await;
        let counts = counts.first()?;
        let n = serde_json::json!(cycles.len());
        (cycles.len() >= min
            && counts["vms"] == serde_json::json!(vms)
            && counts["lo"] == n
            && counts["hi"] == n)
            .then_some(cycles)
    }

    /// The rows of the query `q` once `ready` holds of them; fails the test after `timeout` with
    /// `what`.
    pub async fn rows_when(
        &self,
        what: &str,
        timeout: Duration,
        q: &str,
        ready: impl Fn(&[BTreeMap<String, Value>]) -> bool,
    ) -> Vec<BTreeMap<String, Value>> {
        wait_for(what, timeout, || async {
            let rows = self.rows(q).await;
            ready(&rows).then_some(rows)
        })
        .await
    }

    /// Waits until this database holds at least `min` `vm_features` points (a VM has them from
    /// its second sample on).
    pub async fn features_stored(&self, min: usize) {
        let what = format!("{min} vm_features points in InfluxDB");
        let q = "SELECT * FROM vm_features";
        let timeout = Duration::from_secs(15);
        self.rows_when(&what, timeout, q, |rows| rows.len() >= min)
            .await;
    }

    /// How many points both measurements hold.
    pub async fn point_count(&self) -> usize {
        let mut count = 0;
        for measurement in ["vm_metrics", "vm_features"] {
            count += self
                .rows(&format!("SELECT * FROM \"{measurement}\""))
                .await
                .len();
        }
        count
    }

    /// `fieldKey -> fieldType` of a measurement, as InfluxDB stored them.
    pub async fn field_types(&self, measurement: &str) -> BTreeMap<String, String> {
        self.rows(&format!("SHOW FIELD KEYS FROM \"{measurement}\""))
            .await
            .into_iter()
            .map(|row| {
                (
                    row["fieldKey"].as_str().unwrap().to_owned(),
                    row["fieldType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

// Here rather than in support/test_node.rs, which the libvirt unit tests include too.
impl TestDomain {
    /// A running domain `{prefix}{n}` for each `n`.
    pub fn running(prefix: &str, ns: impl IntoIterator<Item = u32>) -> Vec<Self> {
        ns.into_iter()
            .map(|n| TestDomain::new(&format!("{prefix}{n}"), 1, n))
            .collect()
    }
}

/// A libvirt test-driver node file, opened through libvirtd as `test+unix:///PATH`.
pub struct TestNode {
    _dir: tempfile::TempDir,
    pub uri: String,
}

impl TestNode {
    pub fn new(domains: &[TestDomain]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("node.xml");
        std::fs::write(&path, node_xml(domains)).expect("node file written");
        TestNode {
            uri: format!("test+unix://{}", path.display()),
            _dir: dir,
        }
    }
}

//! Settings: the embedded `config/default.toml`, then an optional file, then the environment.
//! `Settings` is what the files say; `validate` turns it, part by part, into typed values or one
//! error naming the key.

mod admin;
mod collection;
mod coordination;
mod error;
mod hosts;
mod http;
mod insights;
mod outlook;
mod strict;
mod values;
mod writer;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use admin::MIN_ADMIN_TOKEN_CHARS;
pub use collection::{CollectionConfig, Keepalive};
pub use coordination::{Coordination, EtcdConfig, EtcdTls};
pub use error::ConfigError;
pub use hosts::{HostConfig, HostEntry, Shard};
pub use http::{AllowedHosts, HttpConfig};
pub use writer::{InfluxApi, SpoolConfig, WriterConfig, redacted_url};

use error::invalid;
use strict::Strict;
use values::{PositiveSecs, floor, positive_count, whole_number_in};

const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "VMTELEMETRY";
/// Each VM reserves room for its recent samples at its first (9 bytes a sample): an absurd
/// count would fail that allocation rather than be refused here.
const MAX_RECENT_SAMPLES: usize = 100_000;

/// The settings as written in the files and the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub poll_interval: f64,
    pub batch_max_lines: i64,
    pub batch_max_sec: f64,
    pub libvirt_uri: String,
    pub libvirt_timeout: f64,
    pub libvirt_keepalive_interval: i64,
    pub libvirt_keepalive_count: i64,
    pub influx_url: String,
    pub influx_db: String,
    pub max_queue: i64,
    pub influx_api: String,
    pub influx_timeout: f64,
    pub influx_token: Option<SecretString>,
    pub influx_gzip: bool,
    pub influx_ca_file: String,
    pub create_database: bool,
    pub retry_max_delay: f64,
    pub spool_dir: String,
    pub spool_max_bytes: i64,
    pub spool_min_free_bytes: i64,
    pub shutdown_timeout: f64,
    pub hosts: Option<Vec<HostEntry>>,
    pub host_name: Option<String>,
    pub shard_index: i64,
    pub shard_count: i64,
    pub coordination: String,
    pub etcd_endpoints: Vec<String>,
    pub etcd_prefix: String,
    pub etcd_member_ttl: i64,
    pub etcd_cacert: String,
    pub etcd_cert: String,
    pub etcd_key: String,
    pub etcd_user: String,
    pub etcd_password: Option<SecretString>,
    pub member_name: String,
    pub listen: String,
    pub log_format: String,
    pub admin_token: Option<SecretString>,
    pub recent_samples: i64,
    pub query_limit_max: i64,
    pub stats_groups: Vec<String>,
    pub stats_interval: f64,
    pub stats_group_intervals: std::collections::BTreeMap<String, f64>,
    pub guest_agent_timeout: i64,
    pub host_metrics: bool,
    pub seed_connections: i64,
    pub domain_include: Vec<String>,
    pub domain_exclude: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub http_max_connections: i64,
    pub metrics_enabled: bool,
    pub insights: bool,
    pub insights_window: f64,
    pub insights_max_gap: f64,
    pub insights_learning_samples: i64,
    pub insights_baseline_samples: i64,
    pub insights_threshold: f64,
    pub insights_peer_min_vms: i64,
    pub insights_condition_cycles: i64,
    pub insights_cpu_saturated_percent: f64,
    pub insights_cpu_steal_percent: f64,
    pub insights_memory_used_percent: f64,
    pub insights_swap_kb_per_sec: f64,
    pub insights_major_faults_per_sec: f64,
    pub insights_disk_latency_ms: f64,
    pub insights_net_drops_per_sec: f64,
    pub insights_forecast_every: f64,
    pub insights_recommend_every: f64,
    pub insights_forecast_half_life: f64,
    pub insights_forecast_horizon_days: f64,
    pub insights_recommend_sample_interval: f64,
    pub insights_snapshot_interval: f64,
}

/// Validated settings, in the units the service uses.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub poll_interval: Duration,
    pub libvirt_timeout: Duration,
    /// The hosts this instance collects: its shard of the configured list (with etcd, the whole
    /// list, of which it collects the hosts it owns).
    pub hosts: Vec<HostConfig>,
    pub shard: Shard,
    pub coordination: Coordination,
    pub writer: WriterConfig,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// How long a stop may take to flush what the writer holds.
    pub shutdown_timeout: Duration,
    /// None: the admin endpoints are disabled.
    pub admin_token: Option<SecretString>,
    /// Samples per VM held in memory for the API.
    pub recent_samples: usize,
    /// The most points one history request returns.
    pub query_limit_max: usize,
    /// What is collected besides the seed's fields, and from which domains.
    pub collection: CollectionConfig,
    /// The REST API's Host names and connection bound.
    pub http: HttpConfig,
    /// Serve `GET /metrics` (Prometheus).
    pub metrics_enabled: bool,
    /// None: `insights = false`.
    pub insights: Option<crate::insights::InsightsSettings>,
    /// Forecasts and recommendations, part of the insights.
    pub outlook: crate::insights::outlook::OutlookSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Reads the embedded defaults, `file` if given, and the environment, then validates.
pub fn load(file: Option<&Path>) -> Result<AppConfig, ConfigError> {
    load_with_env(file, std::env::vars())
}

/// As `load`, with the environment passed in, so tests need not touch the process's.
pub fn load_with_env(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<AppConfig, ConfigError> {
    let mut env: config::Map<String, String> = env.into_iter().collect();
    // The token also comes from the variable InfluxDB's own tools use.
    if let Some(token) = env.remove("INFLUX_TOKEN") {
        env.entry(format!("{ENV_PREFIX}_INFLUX_TOKEN"))
            .or_insert(token);
    }
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let merged = builder
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .source(Some(env)),
        )
        .build()?;
    let settings = Settings::deserialize(Strict(merged.cache)).map_err(|e| ConfigError::Type {
        key: e.path,
        message: e.message,
    })?;
    settings.validate()
}

impl Settings {
    pub fn validate(self) -> Result<AppConfig, ConfigError> {
        let poll_interval =
            PositiveSecs::parse("poll_interval", self.poll_interval, floor::POLL_INTERVAL)?;
        let libvirt_timeout = PositiveSecs::parse(
            "libvirt_timeout",
            self.libvirt_timeout,
            floor::LIBVIRT_TIMEOUT,
        )?;
        let shutdown_timeout = PositiveSecs::parse(
            "shutdown_timeout",
            self.shutdown_timeout,
            floor::SHUTDOWN_TIMEOUT,
        )?;
        let collection = CollectionConfig::from_settings(&self)?;
        let writer = WriterConfig::from_settings(&self)?;
        let log_format = LogFormat::parse(&self.log_format)?;
        let listen = listen_address(&self.listen)?;
        let shard = Shard::from_settings(&self)?;
        let hosts = HostConfig::list_from_settings(&self, shard)?;
        let coordination = Coordination::from_settings(&self)?;
        let insights = insights::insights(&self, &hosts)?;
        let outlook = outlook::outlook(&self)?;
        let http = HttpConfig::from_settings(&self)?;
        let admin_token = admin::admin_token(self.admin_token)?;
        Ok(AppConfig {
            poll_interval: poll_interval.into(),
            libvirt_timeout: libvirt_timeout.into(),
            hosts,
            shard,
            coordination,
            writer,
            listen,
            log_format,
            shutdown_timeout: shutdown_timeout.into(),
            recent_samples: whole_number_in(
                "recent_samples",
                self.recent_samples,
                0..=MAX_RECENT_SAMPLES,
            )?,
            query_limit_max: positive_count("query_limit_max", self.query_limit_max)?,
            admin_token,
            collection,
            http,
            metrics_enabled: self.metrics_enabled,
            insights,
            outlook,
        })
    }
}

impl LogFormat {
    fn parse(name: &str) -> Result<Self, ConfigError> {
        match name {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(invalid(
                "log_format",
                format!("unknown value `{other}` (expected text or json)"),
            )),
        }
    }
}

fn listen_address(text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|e| invalid("listen", format!("`{text}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::bulk_stats::StatsGroups;
    use secrecy::ExposeSecret;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        load_with_env(None, env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_seeds() {
        let config = load_with_env(None, env(&[])).unwrap();
        assert_eq!(config.poll_interval, Duration::from_secs(5));
        assert_eq!(config.libvirt_timeout, Duration::from_secs(10));
        assert_eq!(
            config.collection.keepalive,
            Keepalive {
                interval_sec: 5,
                count: 5
            }
        );
        assert_eq!(config.writer.batch_max_lines, 2000);
        assert_eq!(config.writer.batch_max_age, Duration::from_secs(1));
        assert_eq!(config.writer.max_queue, 20000);
        assert_eq!(config.writer.influx_db, "vmstats");
        assert_eq!(
            config.writer.influx_url.unwrap().as_str(),
            "http://localhost:8181/"
        );
        assert_eq!(config.writer.influx_api, InfluxApi::V3);
        assert!(config.writer.influx_token.is_none());
        assert_eq!(
            config.hosts,
            vec![HostConfig {
                uri: "qemu:///system".into(),
                name: None
            }]
        );
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_any_key() {
        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_POLL_INTERVAL", "0.5"),
                ("VMTELEMETRY_BATCH_MAX_LINES", "10"),
                ("VMTELEMETRY_INFLUX_API", "v1"),
                ("VMTELEMETRY_HOSTS", "test:///default,qemu:///system"),
                ("INFLUX_TOKEN", "s3cret"),
            ]),
        )
        .unwrap();
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.writer.batch_max_lines, 10);
        assert_eq!(config.writer.influx_api, InfluxApi::V1);
        let uris: Vec<_> = config.hosts.iter().map(|h| h.uri.as_str()).collect();
        assert_eq!(uris, ["test:///default", "qemu:///system"]);
        assert_eq!(
            config.writer.influx_token.unwrap().expose_secret(),
            "s3cret"
        );
    }

    #[test]
    fn a_file_overrides_the_defaults_and_names_hosts() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            file,
            r#"hosts = ["test:///default", {{ uri = "test+unix:///tmp/n.xml", name = "b" }}]
               influx_token = "from-file""#
        )
        .unwrap();
        let config = load_with_env(Some(file.path()), env(&[])).unwrap();
        assert_eq!(
            config.hosts[1],
            HostConfig {
                uri: "test+unix:///tmp/n.xml".into(),
                name: Some("b".into())
            }
        );
        assert_eq!(
            config.writer.influx_token.unwrap().expose_secret(),
            "from-file"
        );
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (key, value) in [
            ("poll_interval", "0"),
            ("batch_max_sec", "-1"),
            ("libvirt_timeout", "0"),
            ("batch_max_lines", "20001"),
            ("max_queue", "0"),
            ("recent_samples", "-1"),
            ("recent_samples", "100001"),
            ("seed_connections", "0"),
            ("seed_connections", "9"),
            ("libvirt_keepalive_interval", "0"),
            ("libvirt_keepalive_interval", "3601"),
            ("libvirt_keepalive_count", "0"),
            ("libvirt_keepalive_count", "-3"),
            ("influx_url", "not a url"),
            ("influx_url", "ftp://x"),
            ("influx_api", "v4"),
            ("log_format", "xml"),
            ("listen", "nowhere"),
            ("hosts", ""),
            ("poll_interval", "soon"),
            ("poll_interval", "1e-8"),
            ("stats_interval", "0.001"),
            ("batch_max_sec", "0.001"),
            ("retry_max_delay", "0.01"),
            ("libvirt_timeout", "0.01"),
            ("influx_timeout", "0.01"),
            ("shutdown_timeout", "0.01"),
            ("batch_max_lines", "1.5"),
            ("influx_gzip", "yes"),
            ("admin_token", "1234"),
        ] {
            let variable = format!("VMTELEMETRY_{}", key.to_uppercase());
            let message = error_of(&[(&variable, value)]);
            assert!(
                message.contains(key),
                "{variable}={value}: `{message}` does not name {key}"
            );
            assert!(!message.contains('\n'), "{message} is more than one line");
        }
    }

    fn file_error(text: &str) -> String {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(file, "{text}").unwrap();
        load_with_env(Some(file.path()), env(&[]))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_value_of_the_wrong_type_in_a_file_is_refused() {
        for (text, key) in [
            ("batch_max_lines = 1.5", "`batch_max_lines`"),
            ("influx_gzip = \"yes\"", "`influx_gzip`"),
            ("influx_gzip = 1", "`influx_gzip`"),
            ("poll_interval = \"5\"", "`poll_interval`"),
            ("influx_db = 5", "`influx_db`"),
            ("stats_groups = \"block\"", "`stats_groups`"),
            ("domain_include = [1]", "`domain_include.0`"),
            ("admin_token = 1234567890", "`admin_token`"),
        ] {
            let message = file_error(text);
            assert!(
                message.contains(key),
                "{text}: `{message}` does not name {key}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
        assert!(file_error("no_such_key = 1").contains("`no_such_key`"));
    }

    #[test]
    fn the_environment_is_text_parsed_whole_for_each_key() {
        let token = "12345678901234567890123456789012345";
        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_INFLUX_GZIP", "FALSE"),
                ("VMTELEMETRY_CREATE_DATABASE", "true"),
                ("VMTELEMETRY_BATCH_MAX_LINES", " 500 "),
                ("VMTELEMETRY_POLL_INTERVAL", "2"),
                ("VMTELEMETRY_INFLUX_DB", "2024"),
                ("VMTELEMETRY_ADMIN_TOKEN", token),
                ("VMTELEMETRY_DOMAIN_EXCLUDE", "1,true"),
            ]),
        )
        .unwrap();
        assert!(!config.writer.gzip && config.writer.create_database);
        assert_eq!(config.writer.batch_max_lines, 500);
        assert_eq!(config.poll_interval, Duration::from_secs(2));
        // Text that looks like a number stays the text it was.
        assert_eq!(config.writer.influx_db, "2024");
        assert_eq!(config.admin_token.unwrap().expose_secret(), token);
        assert!(!config.collection.filter.allows("true"));
    }

    #[test]
    fn each_interval_accepts_its_floor() {
        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_POLL_INTERVAL", "0.01"),
                ("VMTELEMETRY_STATS_INTERVAL", "0.01"),
                ("VMTELEMETRY_BATCH_MAX_SEC", "0.01"),
                ("VMTELEMETRY_RETRY_MAX_DELAY", "0.1"),
                ("VMTELEMETRY_LIBVIRT_TIMEOUT", "0.1"),
                ("VMTELEMETRY_INFLUX_TIMEOUT", "0.1"),
                ("VMTELEMETRY_SHUTDOWN_TIMEOUT", "0.1"),
            ]),
        )
        .unwrap();
        assert_eq!(config.poll_interval, Duration::from_millis(10));
        assert_eq!(config.shutdown_timeout, Duration::from_millis(100));
    }

    #[test]
    fn an_empty_host_list_is_refused() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(file, "hosts = []").unwrap();
        let message = load_with_env(Some(file.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("`hosts`"), "{message}");
    }

    #[test]
    fn shards_split_the_host_list_exactly_once() {
        let hosts: Vec<String> = (0..20).map(|n| format!("test:///h{n}")).collect();
        let list = hosts.join(",");
        let mut seen = Vec::new();
        for index in 0..3 {
            let index = index.to_string();
            let config = load_with_env(
                None,
                env(&[
                    ("VMTELEMETRY_HOSTS", &list),
                    ("VMTELEMETRY_SHARD_COUNT", "3"),
                    ("VMTELEMETRY_SHARD_INDEX", &index),
                ]),
            )
            .unwrap();
            assert!((6..=7).contains(&config.hosts.len()));
            seen.extend(config.hosts.into_iter().map(|h| h.uri));
        }
        seen.sort();
        let mut expected = hosts.clone();
        expected.sort();
        assert_eq!(seen, expected);
        assert!(error_of(&[("VMTELEMETRY_SHARD_INDEX", "1")]).contains("shard_index"));
        assert!(error_of(&[("VMTELEMETRY_SHARD_COUNT", "0")]).contains("shard_count"));
    }

    #[test]
    fn host_name_names_the_single_host() {
        let config = load_with_env(None, env(&[("VMTELEMETRY_HOST_NAME", "node-7")])).unwrap();
        assert_eq!(config.hosts[0].name.as_deref(), Some("node-7"));
        let message = error_of(&[
            ("VMTELEMETRY_HOST_NAME", "node-7"),
            ("VMTELEMETRY_HOSTS", "test:///default"),
        ]);
        assert!(message.contains("host_name"), "{message}");
    }

    #[test]
    fn the_token_never_prints() {
        let config = load_with_env(
            None,
            env(&[
                ("INFLUX_TOKEN", "s3cret"),
                (
                    "VMTELEMETRY_ADMIN_TOKEN",
                    "adm1n-0123456789abcdef0123456789ab",
                ),
            ]),
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("adm1n"),
            "{printed}"
        );
    }

    #[test]
    fn stats_groups_interval_and_filters() {
        let config = load_with_env(None, env(&[])).unwrap();
        let all = StatsGroups::CPU_TOTAL
            | StatsGroups::BALLOON
            | StatsGroups::VCPU
            | StatsGroups::INTERFACE
            | StatsGroups::BLOCK;
        assert_eq!(config.collection.stats_groups, all);
        assert_eq!(config.collection.stats_interval, Duration::from_secs(5));
        assert!(config.collection.filter.is_open());

        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_STATS_GROUPS", "block,interface"),
                ("VMTELEMETRY_STATS_INTERVAL", "2.5"),
                ("VMTELEMETRY_DOMAIN_INCLUDE", "web-*,db-*"),
                ("VMTELEMETRY_DOMAIN_EXCLUDE", "*-test"),
            ]),
        )
        .unwrap();
        let c = &config.collection;
        assert_eq!(c.stats_groups, StatsGroups::BLOCK | StatsGroups::INTERFACE);
        assert_eq!(c.stats_interval, Duration::from_millis(2500));
        assert!(c.filter.allows("web-1") && c.filter.allows("db-2"));
        assert!(!c.filter.allows("web-test") && !c.filter.allows("mail"));

        let off = load_with_env(None, env(&[("VMTELEMETRY_STATS_GROUPS", "")])).unwrap();
        assert!(off.collection.stats_groups.is_empty());

        let message = error_of(&[("VMTELEMETRY_STATS_GROUPS", "cpu_total,disks")]);
        assert!(
            message.contains("stats_groups") && message.contains("disks"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert!(error_of(&[("VMTELEMETRY_STATS_INTERVAL", "0")]).contains("stats_interval"));
        assert!(error_of(&[("VMTELEMETRY_DOMAIN_INCLUDE", "[x")]).contains("domain_include"));
        assert!(error_of(&[("VMTELEMETRY_DOMAIN_EXCLUDE", "{a")]).contains("domain_exclude"));
    }

    #[test]
    fn the_guest_group_is_off_by_default_and_its_timeout_bounded() {
        let config = load_with_env(None, env(&[])).unwrap();
        assert!(!config.collection.guest);
        assert_eq!(config.collection.guest_agent_timeout_sec, 2);
        let config = load_with_env(
            None,
            env(&[
                ("VMTELEMETRY_STATS_GROUPS", "guest"),
                ("VMTELEMETRY_GUEST_AGENT_TIMEOUT", "5"),
            ]),
        )
        .unwrap();
        let c = &config.collection;
        assert!(c.guest && c.stats_groups.is_empty());
        assert_eq!(c.guest_agent_timeout_sec, 5);
        for bad in ["0", "301", "-1"] {
            let message = error_of(&[("VMTELEMETRY_GUEST_AGENT_TIMEOUT", bad)]);
            assert!(message.contains("guest_agent_timeout"), "{message}");
        }
        let at_libvirts = [
            ("VMTELEMETRY_STATS_GROUPS", "guest,block"),
            ("VMTELEMETRY_GUEST_AGENT_TIMEOUT", "10"),
        ];
        let message = error_of(&at_libvirts);
        assert!(
            message.contains("guest_agent_timeout") && message.contains("libvirt_timeout"),
            "{message}"
        );
        // Without the group, the timeout is not in use.
        assert!(load_with_env(None, env(&[("VMTELEMETRY_GUEST_AGENT_TIMEOUT", "10")])).is_ok());
        let message = error_of(&[("VMTELEMETRY_STATS_GROUPS", "guests")]);
        assert!(
            message.contains("guest,") || message.contains(", guest"),
            "{message}"
        );
    }

    #[test]
    fn each_group_has_its_own_interval_stats_interval_by_default() {
        use crate::libvirt::cadence::Part;
        let secs = Duration::from_secs_f64;
        let config = load_with_env(None, env(&[])).unwrap();
        let c = &config.collection;
        let (sizes, groups): (Vec<_>, Vec<_>) = c
            .intervals
            .iter()
            .copied()
            .partition(|(part, _)| *part == Part::BlockSizes);
        assert!(groups.iter().all(|(_, every)| *every == secs(5.0)));
        assert_eq!(groups.len(), 5, "{:?}", c.intervals);
        // The disks' sizes every 5 minutes, with the block group's bulk call.
        assert_eq!(sizes, [(Part::BlockSizes, secs(300.0))]);
        assert!(!c.read_write());
        let config = load_with_env(
            None,
            env(&[
                (
                    "VMTELEMETRY_STATS_GROUPS",
                    "block,balloon,vm,dirtyrate,guest",
                ),
                ("VMTELEMETRY_STATS_INTERVAL", "2"),
                ("VMTELEMETRY_STATS_GROUP_INTERVALS__BALLOON", "30"),
                ("VMTELEMETRY_STATS_GROUP_INTERVALS__VM", "0.5"),
                ("VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK_SIZES", "60"),
            ]),
        )
        .unwrap();
        let c = &config.collection;
        let expected = [
            (Part::Bulk(StatsGroups::BALLOON), secs(30.0)),
            (Part::Bulk(StatsGroups::BLOCK), secs(2.0)),
            (Part::Bulk(StatsGroups::VM), secs(0.5)),
            // The defaults' own: the guest agents every minute, the dirty rate every 5.
            (Part::Bulk(StatsGroups::DIRTYRATE), secs(300.0)),
            (Part::Guest, secs(60.0)),
            (Part::BlockSizes, secs(60.0)),
        ];
        assert_eq!(c.intervals, expected);
        assert!(c.read_write());
        let dirty = load_with_env(None, env(&[("VMTELEMETRY_STATS_GROUPS", "dirtyrate")]));
        assert!(dirty.unwrap().collection.read_write());

        for (value, wanted) in [("0", "guest: must be a positive"), ("-5", "positive")] {
            let message = error_of(&[("VMTELEMETRY_STATS_GROUP_INTERVALS__GUEST", value)]);
            assert!(
                message.starts_with("configuration key `stats_group_intervals`: ")
                    && message.contains(wanted),
                "{message}"
            );
        }
        let message = error_of(&[("VMTELEMETRY_STATS_GROUP_INTERVALS__DISKS", "10")]);
        assert!(
            message.contains("stats_group_intervals") && message.contains("unknown group `disks`"),
            "{message}"
        );
        assert!(message.contains(", block_sizes"), "{message}");
        let message = error_of(&[("VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK_SIZES", "0")]);
        assert!(
            message.contains("block_sizes: must be a positive"),
            "{message}"
        );
        let message = error_of(&[("VMTELEMETRY_STATS_GROUP_INTERVALS__BLOCK", "often")]);
        assert!(message.contains("stats_group_intervals.block"), "{message}");
    }
}

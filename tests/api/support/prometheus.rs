//! Debian's prometheus-libvirt-exporter and Prometheus, each a process of the test's own on a
//! free loopback port, killed when dropped; and a parser for the text they exchange.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};

use super::DiesWithTest;
use super::influxd::free_port;

/// A child process serving HTTP on `url`.
pub struct Served {
    pub url: String,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(program: &str, args: impl FnOnce(&str, &std::path::Path) -> Vec<String>) -> Served {
    let dir = tempfile::tempdir().expect("a directory");
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new(program)
        .args(args(&address, dir.path()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .dies_with_test()
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} does not start (scripts/install-deps.sh installs it): {e}")
        });
    Served {
        url: format!("http://{address}"),
        _dir: dir,
        child,
    }
}

/// The exporter reading `uri`.
pub fn exporter(uri: &str) -> Served {
    serve("/usr/bin/prometheus-libvirt-exporter", |address, _| {
        vec![
            format!("--web.listen-address={address}"),
            format!("--libvirt.uri={uri}"),
        ]
    })
}

/// Prometheus scraping `target` (`host:port`) every second, its data in a temporary directory.
pub fn prometheus(target: &str) -> Served {
    serve("/usr/bin/prometheus", |address, dir| {
        let config = dir.join("prometheus.yml");
        let text = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: vmtelemetry\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, text).expect("prometheus.yml written");
        vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={address}"),
        ]
    })
}

/// Fails unless `promtool check metrics` (Prometheus's own parser and linter) takes `text`
/// without a word.
pub fn assert_promtool_clean(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-deps.sh installs it)");
    let mut stdin = promtool.stdin.take().unwrap();
    // Written beside the reads: promtool may answer before it has read a large text whole.
    let text = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let checked = promtool.wait_with_output().unwrap();
    let lint = String::from_utf8_lossy(&checked.stdout) + String::from_utf8_lossy(&checked.stderr);
    assert!(
        checked.status.success() && lint.trim().is_empty(),
        "promtool: {lint}"
    );
    writer
        .join()
        .unwrap()
        .expect("promtool read the whole text");
}

/// The body of a GET of `url`, which must answer 200, and its content type.
pub async fn get_text(client: &awc::Client, url: &str, accept: &str) -> (String, String) {
    let mut response = client
        .get(url)
        .insert_header(("Accept", accept))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    let kind = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.body().limit(64 << 20).await.unwrap();
    (String::from_utf8(body.to_vec()).unwrap(), kind)
}

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of Prometheus's text format (comments skipped; label values unescaped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("unparsable sample: {line}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let (name, mut rest) = match head.split_once('{') {
        Some((name, rest)) => (name, rest),
        None => (head, "}"),
    };
    let mut labels = BTreeMap::new();
    while let Some((key, after)) = rest.split_once("=\"") {
        let key = key.trim_start_matches(',');
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = &after[end + 1..];
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: value.parse().ok()?,
    })
}

/// The samples of one scrape of the service at `address`.
pub async fn scrape(client: &awc::Client, address: &str) -> Vec<Sample> {
    let url = format!("{address}/metrics");
    parse(&get_text(client, &url, "text/plain").await.0)
}

/// The sample of `samples` with the name of `like` and all its labels (and maybe more).
pub fn matching<'a>(samples: &'a [Sample], like: &Sample) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == like.name && like.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
    })
}

/// The value of the sample `name` whose labels include `labels`, if one is in `samples`.
pub fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })?;
    Some(sample.value)
}

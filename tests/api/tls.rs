//! `https://` InfluxDB URLs: certificates are checked by default, against the system's CA store,
//! and an operator's own CA can be trusted there or with `influx_ca_file`. The server is Python's `http.server` over TLS, answering 204
//! to every write like InfluxDB.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, TestDomain, TestNode, spawn_writing_to, wait_for};
use crate::support::DiesWithTest;
use crate::support::certs::certificates;
use crate::support::service::ServiceProcess;

const HTTPS_SERVER: &str = r#"
import http.server, ssl, sys
class Write(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Write)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("server.pem", "server.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

struct TlsServer {
    url: String,
    child: Child,
}

impl TlsServer {
    fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-c", HTTPS_SERVER, &port.to_string()])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .dies_with_test()
            .spawn()
            .expect("python3 starts");
        std::thread::sleep(Duration::from_millis(500));
        TlsServer {
            url: format!("https://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a certificate it signed (in the returned directory, as `ca.pem`), an https server
/// presenting that certificate, and a host of one VM to write about.
fn https_server_and_node() -> (tempfile::TempDir, TlsServer, TestNode) {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let server = TlsServer::start(dir.path());
    let node = TestNode::new(&[TestDomain::new("a", 1, 1)]);
    (dir, server, node)
}

async fn app_writing_to(server: &TlsServer, node: &TestNode, ca_file: &str) -> TestApp {
    let env = [
        ("VMTELEMETRY_INFLUX_CA_FILE", ca_file),
        ("VMTELEMETRY_INFLUX_GZIP", "false"),
    ];
    spawn_writing_to(&node.uri, &server.url, "v1", &env).await
}

#[actix_web::test]
async fn an_unknown_certificate_is_refused() {
    let (_dir, server, node) = https_server_and_node();
    let app = app_writing_to(&server, &node, "").await;
    let status = app
        .status_when("a refused write", Duration::from_secs(10), |status| {
            Some(status["writer"]["failed_writes"].as_u64()? > 0)
        })
        .await;
    assert_eq!(status["total_metrics_written"], json!(0));
    let error = status["writer"]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("issuer"),
        "{error}"
    );
}

#[actix_web::test]
async fn a_trusted_ca_makes_https_work() {
    let (dir, server, node) = https_server_and_node();
    let ca = dir.path().join("ca.pem");
    let app = app_writing_to(&server, &node, ca.to_str().unwrap()).await;
    app.status_when("a write over https", Duration::from_secs(10), |status| {
        Some(status["total_metrics_written"].as_u64()? > 0)
    })
    .await;
}

/// A CA in the system's store is trusted with no `influx_ca_file`, as on a host where
/// `update-ca-certificates` installed it. The store is the file `SSL_CERT_FILE` names (which
/// the store honours), given to the service's own process so that no other test sees it.
#[actix_web::test]
async fn a_ca_in_the_system_store_is_trusted_without_a_ca_file() {
    let (dir, server, node) = https_server_and_node();
    let ca = dir.path().join("ca.pem");
    let service = ServiceProcess::start(&[
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ("VMTELEMETRY_LIBVIRT_URI", &node.uri),
        ("VMTELEMETRY_INFLUX_URL", &server.url),
        ("VMTELEMETRY_INFLUX_GZIP", "false"),
        ("VMTELEMETRY_POLL_INTERVAL", "0.2"),
        ("VMTELEMETRY_BATCH_MAX_SEC", "0.1"),
        ("VMTELEMETRY_STATS_GROUPS", ""),
        ("VMTELEMETRY_HOST_METRICS", "false"),
    ]);
    wait_for("a write over https", Duration::from_secs(10), || async {
        (service.status()?["total_metrics_written"].as_u64()? > 0).then_some(())
    })
    .await;
}

/// Where the system has no CA store (a bare container), an https URL says so once at start and
/// falls back to Mozilla's roots; a plain-http URL never reads the store, and says nothing.
#[test]
fn a_missing_system_store_is_told_only_for_https() {
    let logs = |url: &str| {
        let spool = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmtelemetry"))
            .envs([
                ("VMTELEMETRY_LIBVIRT_URI", "test:///default"),
                ("VMTELEMETRY_LISTEN", "127.0.0.1:0"),
                ("VMTELEMETRY_SPOOL_DIR", spool.path().to_str().unwrap()),
                ("VMTELEMETRY_INFLUX_URL", url),
                ("VMTELEMETRY_LOG_FORMAT", "json"),
                ("RUST_LOG", "info"),
                ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
                ("SSL_CERT_DIR", "/nonexistent/certs"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .dies_with_test()
            .spawn()
            .expect("the binary runs");
        // Everything up to the start: the store is read before the service listens.
        let mut logs = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            logs.push_str(&line);
            logs.push('\n');
            if line.contains("vmtelemetry started") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        logs
    };
    let https = logs("https://127.0.0.1:9");
    assert!(https.contains("vmtelemetry started"), "{https}");
    assert!(
        https.contains("no CA certificate in the system store"),
        "{https}"
    );
    let http = logs("http://127.0.0.1:9");
    assert!(http.contains("vmtelemetry started"), "{http}");
    assert!(!http.contains("system store"), "{http}");
}

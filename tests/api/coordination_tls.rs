//! `coordination = "etcd"` over TLS, against a real etcd of the test's own that asks every
//! client for a certificate signed by its CA (`--client-cert-auth`): a replica with the CA, its
//! certificate and its key joins and collects; one trusting another CA, and one without a
//! client certificate, stay joining and say why in their status and `/ready`, without a panic.

use serde_json::json;

use crate::coordination::{Fleet, Replicas, refused_status, wait_shared};
use crate::helpers::Influx;
use crate::support::certs::{ca, certificates, signed};
use crate::support::etcd::OwnEtcd;

#[actix_web::test]
async fn a_replica_joins_etcd_over_tls_with_its_certificate_and_says_why_when_refused() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    certificates(dir);
    signed(dir, "ca", "client");
    ca(dir, "other-ca");
    let etcd = OwnEtcd::start_tls(dir);
    assert!(etcd.url.starts_with("https://"), "{}", etcd.url);
    let fleet = Fleet::new(1, 1, 4000);
    let influx = Influx::new_database().await;
    let file = |name: &str| dir.join(name).display().to_string();
    let with_tls = |cacert: &str, client: bool| {
        let mut settings = Replicas::new(&etcd.url, "tls", &fleet, &influx, 3);
        let mut tls = vec![("VMTELEMETRY_ETCD_CACERT", file(cacert))];
        if client {
            tls.push(("VMTELEMETRY_ETCD_CERT", file("client.pem")));
            tls.push(("VMTELEMETRY_ETCD_KEY", file("client.key")));
        }
        (settings.env).extend(tls.into_iter().map(|(k, v)| (k.to_owned(), v)));
        settings
    };
    let member = with_tls("ca.pem", true).start(0);
    wait_shared("the host collected over TLS", &[&member], 1, 1).await;

    // Another CA: etcd's certificate is refused. No client certificate: etcd refuses the replica.
    let wrong_ca = with_tls("other-ca.pem", true).start(1);
    let no_certificate = with_tls("ca.pem", false).start(2);
    for (replica, why) in [
        (&wrong_ca, "invalid peer certificate: UnknownIssuer"),
        // etcd's alert or the connection it closed, as the handshake's timing has it.
        (&no_certificate, "etcd: "),
    ] {
        let status = refused_status(replica, why).await;
        let coordination = &status["coordination"];
        assert_eq!(coordination["state"], json!("joining"), "{status}");
        assert_eq!(coordination["panics"], json!(0), "{status}");
        let error = coordination["last_error"].as_str().unwrap();
        println!("refused: {error}");
        assert!(error.contains(why), "{error}");
        let (code, body) = replica.request("GET", "/ready", None);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            code == 503 && message.contains("not a member yet") && message.contains(why),
            "{code} {body}"
        );
    }
    // The member was never disturbed.
    assert!(member.status().unwrap()["coordination"]["collecting"] == json!([fleet.uris()]));
}

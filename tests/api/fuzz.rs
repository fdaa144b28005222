//! Every API parameter, fuzzed: arbitrary strings (any unicode, control characters, quotes,
//! huge numbers) answer 4xx or 2xx, never 5xx, and the service keeps serving.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{Influx, TestApp, TestDomain, TestNode, collecting};

const CASES: usize = 300;
const TOKEN: &str = "fuzz-token-3e7a19c5d0f28b64e1a7c93d";

/// Strings an attacker or a confused script might send.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-+0-9a-zA-Z:.T ]{0,30}",
        "-?[0-9]{1,25}(s|m|h|d|y|ms|ns)?",
        Just("x' OR '1'='1".to_owned()),
        Just("\"; DROP MEASUREMENT vm_metrics; --".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("0001-01-01T00:00:00Z".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("vm_metrics".to_owned()),
        Just("memory_used_kb,state".to_owned()),
        Just(String::new()),
    ]
}

/// A request: an endpoint and some of its parameters (documented or not) with awkward values.
fn request() -> impl Strategy<Value = (usize, Vec<(String, String)>, String)> {
    let names = prop::sample::select(vec![
        "vm",
        "host",
        "state",
        "name",
        "measurement",
        "fields",
        "start",
        "end",
        "every",
        "limit",
        "colour",
    ]);
    (
        0..5usize,
        prop::collection::vec((names.prop_map(str::to_owned), awkward()), 0..6),
        awkward(),
    )
}

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn fuzzed_app() -> (TestApp, Influx, TestNode) {
    let domains = [
        TestDomain::new("web", 1, 1),
        TestDomain::new("x' OR '1'='1", 3, 2),
    ];
    let (app, influx, node) = collecting(&domains, &[("VMTELEMETRY_ADMIN_TOKEN", TOKEN)]).await;
    influx.features_stored(2).await;
    (app, influx, node)
}

#[actix_web::test]
async fn no_parameter_makes_the_api_fail() {
    let (app, _influx, _node) = fuzzed_app().await;
    let mut runner = TestRunner::new(Config::default());
    let strategy = request();
    for _ in 0..CASES {
        let (endpoint, params, path_value) = strategy.new_tree(&mut runner).unwrap().current();
        let query = encode(&params);
        let (method, path, token) = match endpoint {
            0 => ("GET", format!("/api/telemetry/vms?{query}"), None),
            1 => (
                "GET",
                format!("/api/telemetry/stats/{}?{query}", segment(&path_value)),
                None,
            ),
            2 => ("GET", format!("/api/telemetry/history?{query}"), None),
            3 => ("GET", format!("/api/telemetry/status?{query}"), None),
            _ => (
                "POST",
                format!("/api/admin/actors/{}/restart", segment(&path_value)),
                Some(TOKEN),
            ),
        };
        let answer = app.request(method, &path, token).await;
        assert!(
            answer.status < 500,
            "{method} {path} answered {}: {}",
            answer.status,
            answer.body
        );
        if answer.status >= 400 {
            assert!(
                answer.body["error"]["code"].is_string(),
                "{path}: {}",
                answer.body
            );
        }
    }
    let (code, _) = app.get("/health").await;
    assert_eq!(code, 200);
}

//! The encoder's output as the real InfluxDB (1.x) reads it: floats of every magnitude, some
//! written with an exponent, come back exactly; a backslash in a name comes back as it was.

use std::time::Duration;

use serde_json::json;
use vmtelemetry::influx::line_protocol::{Lines, VmTags, vm_features};
use vmtelemetry::influx::schema::{vm_features as features, vm_metrics};
use vmtelemetry::sample::{DomainSample, MemoryFeatures, VmState};

use crate::helpers::{Influx, TestDomain, collecting};
use crate::support::settings::influx_url;

#[actix_rt::test]
async fn floats_of_every_magnitude_are_stored_exactly() {
    let influx = Influx::new_database().await;
    let rates = [
        1e-7,
        -2.5e-300,
        5e-324,
        1.5e300,
        1e21,
        -12.375,
        0.1 + 0.2,
        0.0,
    ];
    let mut lines = Lines::default();
    let mut tags = VmTags::default();
    for (i, rate) in rates.iter().enumerate() {
        let domain = DomainSample {
            id: Some(1),
            name: format!("vm {i}").into(),
            uuid: uuid::Uuid::from_u128(0x4000_8000_0000_0000_0000 + i as u128),
            state: VmState::Running,
            cpu_count: 1,
            memory_max_kb: 1024,
            memory_used_kb: 512,
            cputime_ns: 1,
            timestamp_ns: 1_700_000_000_000_000_000,
        };
        let features = MemoryFeatures {
            memory_rate_kb_per_sec: *rate,
            memory_angle_deg: 45.0,
        };
        tags.set("kvm1", domain.id, &domain.name, &domain.uuid)
            .unwrap();
        vm_features(&mut lines, &tags, &domain, &features).unwrap();
    }
    let text = std::str::from_utf8(lines.as_bytes()).unwrap();
    assert!(text.contains("e-7") && text.contains("e+300"), "{text}");
    let mut response = awc::Client::default()
        .post(format!("{}/write?db={}", influx_url(), influx.db))
        .send_body(lines.as_bytes().to_vec())
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        204,
        "{:?}",
        response.body().await
    );

    let rows = influx
        .rows(&format!(
            "SELECT {}, \"name\" FROM {}",
            features::MEMORY_RATE_KB_PER_SEC,
            features::MEASUREMENT
        ))
        .await;
    assert_eq!(rows.len(), rates.len());
    for row in rows {
        let i: usize = row["name"].as_str().unwrap()[3..].parse().unwrap();
        let stored = row[features::MEMORY_RATE_KB_PER_SEC].as_f64().unwrap();
        assert_eq!(stored.to_bits(), rates[i].to_bits(), "{row:?}");
    }
}

/// With `influx_api = "v1"`, a backslash before an ordinary character is written as it is and
/// InfluxDB 1.x stores the name as it was; before a space, comma or `=` it is doubled, which
/// InfluxDB 3 halves and 1.x keeps.
#[actix_web::test]
async fn a_name_with_a_backslash_is_stored_as_it_is() {
    let domains = [
        TestDomain::new(r"back\slash", 1, 1),
        TestDomain::new(r"\lead and back\ space", 1, 2),
    ];
    let [slash, before_space] = &domains;
    let (app, influx, _node) = collecting(&domains, &[("VMTELEMETRY_INFLUX_API", "v1")]).await;
    let select = format!("SELECT * FROM {}", vm_metrics::MEASUREMENT);
    let rows = influx
        .rows_when(
            "both domains in InfluxDB",
            Duration::from_secs(15),
            &select,
            |rows| {
                let stored = |uuid: &str| rows.iter().any(|row| row["uuid"] == json!(uuid));
                stored(&slash.uuid) && stored(&before_space.uuid)
            },
        )
        .await;
    let name_of = |uuid: &str| {
        let row = rows.iter().find(|row| row["uuid"] == json!(uuid)).unwrap();
        row["name"].as_str().unwrap().to_owned()
    };
    assert_eq!(name_of(&slash.uuid), r"back\slash");
    assert_eq!(name_of(&before_space.uuid), r"\lead and back\\ space");

    // Found by its name: the history query binds it as it is.
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("vm", r"back\slash"), ("fields", vm_metrics::STATE)])
        .finish();
    let (code, history) = app.get(&format!("/api/telemetry/history?{query}")).await;
    assert_eq!(code, 200, "{history}");
    assert_eq!(history["vm"], json!(slash.uuid));
    assert!(
        !history["points"].as_array().unwrap().is_empty(),
        "{history}"
    );
}

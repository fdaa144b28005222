//! What the replay reads back from InfluxDB: each VM's `vm_metrics` points and its `vm_memory`
//! and `vm_disk` points, turned into the readings the service's cycles hand the insights, and
//! its `vm_guest_fs` points, into the guest agent's answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::extended::{DomainStatsSample, StatsRow, VM_DISK, VM_MEMORY};
use crate::influx::query::{QueryError, QueryTarget};
use crate::insights::forecast::fill::GuestFill;
use crate::insights::signals::{ExtendedReading, VmReading};
use crate::sample::{DomainSample, VmState};

/// Four statements, one answer each: the seed's fields, the balloon's, the disks' and the guest
/// filesystems'.
const QUERY: &str = "\
SELECT \"state\", \"cpu_count\", \"memory_max_kb\", \"cputime_ns\" FROM \"vm_metrics\" \
WHERE time >= $start AND time < $end GROUP BY \"host\", \"uuid\", \"name\", \"VMID\"; \
SELECT \"available_kb\", \"usable_kb\", \"unused_kb\" FROM \"vm_memory\" \
WHERE time >= $start AND time < $end GROUP BY \"host\", \"uuid\"; \
SELECT \"allocation_bytes\", \"capacity_bytes\" FROM \"vm_disk\" \
WHERE time >= $start AND time < $end GROUP BY \"host\", \"uuid\", \"device\"; \
SELECT \"used_bytes\", \"total_bytes\" FROM \"vm_guest_fs\" \
WHERE time >= $start AND time < $end GROUP BY \"host\", \"uuid\", \"mountpoint\"";

/// `QUERY` over `params` (`start`, `end` in nanoseconds): InfluxDB's whole JSON answer, and
/// its size in bytes.
pub async fn read(
    target: &QueryTarget,
    client: &awc::Client,
    params: &Value,
) -> Result<(Value, usize), QueryError> {
    let sent = target.request(client).send_form(&[
        ("db", target.db()),
        ("q", QUERY),
        ("epoch", "ns"),
        ("params", &params.to_string()),
    ]);
    let body = target.exchange(sent).await?;
    let answer = serde_json::from_slice(&body).map_err(|e| QueryError::BadReply(e.to_string()))?;
    Ok((answer, body.len()))
}

/// One VM's history in a span: its readings and its guest agent's answers, each in time order,
/// with its host.
pub struct VmHistory {
    pub host: Arc<str>,
    pub readings: Vec<VmReading>,
    pub guests: Vec<GuestFill>,
}

type Key = (String, String);

/// The VMs of InfluxDB's answer to `QUERY` whose host and name `keep` accepts.
pub fn vms(
    answer: &Value,
    keep: impl Fn(&str, &str) -> bool,
) -> Result<Vec<VmHistory>, QueryError> {
    let results = answer["results"]
        .as_array()
        .ok_or_else(|| QueryError::BadReply("no `results` in the answer".into()))?;
    if let Some(error) = results.iter().find_map(|r| r["error"].as_str()) {
        return Err(QueryError::Failed {
            status: 200,
            message: error.to_owned(),
        });
    }
    let mut stats: HashMap<Key, BTreeMap<i64, Vec<StatsRow>>> = HashMap::new();
    for (i, measurement) in [(1, VM_MEMORY), (2, VM_DISK)] {
        for (tags, row) in rows(&results[i]) {
            let key = (tag(tags, "host"), tag(tags, "uuid"));
            let Some(t) = row.get("time").copied().and_then(Value::as_i64) else {
                continue;
            };
            let device = tags.get("device").and_then(Value::as_str);
            let counters = row
                .iter()
                .filter(|(field, _)| **field != "time")
                .filter_map(|(field, value)| Some((static_field(field)?, value.as_u64()?)))
                .collect();
            stats
                .entry(key)
                .or_default()
                .entry(t)
                .or_default()
                .push(StatsRow {
                    measurement,
                    key: device.map(|d| ("device", d.to_owned())),
                    source: None,
                    counters,
                });
        }
    }
    let mut vms: BTreeMap<Key, VmHistory> = BTreeMap::new();
    for (tags, row) in rows(&results[0]) {
        let (host, name) = (tag(tags, "host"), tag(tags, "name"));
        let Ok(uuid) = tag(tags, "uuid").parse::<Uuid>() else {
            continue;
        };
        if !keep(&host, &name) {
            continue;
        }
        let key = (host.clone(), uuid.to_string());
        let Some(reading) = reading(uuid, &name, tags, &row) else {
            continue;
        };
        vms.entry(key)
            .or_insert_with(|| VmHistory {
                host: host.as_str().into(),
                readings: Vec::new(),
                guests: Vec::new(),
            })
            .readings
            .push(reading);
    }
    let mut filesystems = filesystems(&results[3]);
    for ((host, uuid), vm) in &mut vms {
        vm.readings.sort_by_key(|r| r.vm.timestamp_ns);
        let key = (host.clone(), uuid.clone());
        if let Some(answers) = filesystems.remove(&key) {
            vm.guests = guest_fills(vm.readings[0].vm.uuid, answers);
        }
        if let Some(samples) = stats.remove(&key) {
            attach(&mut vm.readings, samples);
        }
    }
    Ok(vms.into_values().collect())
}

/// A guest agent's answers by time: each filesystem's (mountpoint, used, total).
type Answers = BTreeMap<i64, Vec<(String, u64, u64)>>;

/// Per VM, its guest agent's answers.
fn filesystems(result: &Value) -> HashMap<Key, Answers> {
    let mut answers: HashMap<Key, Answers> = HashMap::new();
    for (tags, row) in rows(result) {
        let int = |field: &str| row.get(field).copied().and_then(Value::as_u64);
        let (Some(t), Some(used), Some(total)) = (
            row.get("time").copied().and_then(Value::as_i64),
            int("used_bytes"),
            int("total_bytes"),
        ) else {
            continue;
        };
        let key = (tag(tags, "host"), tag(tags, "uuid"));
        let level = (tag(tags, "mountpoint"), used, total);
        answers
            .entry(key)
            .or_default()
            .entry(t)
            .or_default()
            .push(level);
    }
    answers
}

fn guest_fills(uuid: Uuid, answers: Answers) -> Vec<GuestFill> {
    (answers.into_iter())
        .map(|(t, levels)| {
            let levels = levels
                .iter()
                .map(|(m, used, total)| (m.as_str(), *used, *total));
            GuestFill::from_levels(uuid, t, levels)
        })
        .collect()
}

/// Gives each reading the latest extended sample at or before it.
fn attach(readings: &mut [VmReading], samples: BTreeMap<i64, Vec<StatsRow>>) {
    let mut samples = samples.into_iter().peekable();
    let mut latest: Option<ExtendedReading> = None;
    for reading in readings {
        while let Some((t, _)) = samples.peek()
            && *t <= reading.vm.timestamp_ns
        {
            let (t, rows) = samples.next().expect("peeked");
            let sample = DomainStatsSample {
                uuid: reading.vm.uuid,
                name: reading.vm.name.to_string(),
                timestamp_ns: t,
                vcpus: None,
                rows,
                derived: Vec::new(),
                carried: Vec::new(),
            };
            latest = Some(ExtendedReading::from_stats(&sample));
        }
        reading.extended.clone_from(&latest);
    }
}

fn reading(
    uuid: Uuid,
    name: &str,
    tags: &serde_json::Map<String, Value>,
    row: &Row,
) -> Option<VmReading> {
    let int = |field: &str| row.get(field).copied().and_then(Value::as_u64);
    let timestamp_ns = row.get("time")?.as_i64()?;
    // Only whether it ran matters to the outlook.
    let running = row.get("state").copied().and_then(Value::as_str) == Some("running");
    Some(VmReading {
        vm: DomainSample {
            uuid,
            name: name.into(),
            id: tag(tags, "VMID").parse().ok(),
            state: if running {
                VmState::Running
            } else {
                VmState::Stopped
            },
            cpu_count: u32::try_from(int("cpu_count")?).ok()?,
            memory_max_kb: int("memory_max_kb")?,
            memory_used_kb: 0,
            cputime_ns: int("cputime_ns")?,
            timestamp_ns,
        },
        memory_rate_kb_per_sec: None,
        extended: None,
    })
}

type Row<'a> = BTreeMap<&'a str, &'a Value>;

/// Every row of a statement's series, with the series' tags.
fn rows(result: &Value) -> Vec<(&serde_json::Map<String, Value>, Row<'_>)> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    let mut rows = Vec::new();
    for series in result["series"].as_array().into_iter().flatten() {
        let tags = series["tags"]
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default));
        let columns: Vec<&str> = series["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for values in series["values"].as_array().into_iter().flatten() {
            let values = values.as_array().into_iter().flatten();
            let row: Row = columns
                .iter()
                .copied()
                .zip(values)
                .filter(|(_, v)| !v.is_null())
                .collect();
            rows.push((tags, row));
        }
    }
    rows
}

fn tag(tags: &serde_json::Map<String, Value>, key: &str) -> String {
    tags.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The counters `Fill` reads, by the names they are written under.
fn static_field(field: &str) -> Option<&'static str> {
    [
        "available_kb",
        "usable_kb",
        "unused_kb",
        "allocation_bytes",
        "capacity_bytes",
    ]
    .into_iter()
    .find(|known| *known == field)
}

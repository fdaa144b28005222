//! Every measurement as InfluxDB line protocol: the seed's two, the extended ones and
//! `host_metrics`.
//!
//! Written by hand, every line of a cycle into one buffer. InfluxDB's own builder (`influxdb-line-protocol`,
//! from InfluxDB 3's source tree) was used first and measured at 0.5 M lines/s per core, ten times
//! short of the target, as it formats every piece through `fmt`. The escaping here is the
//! builder's, and the tests check every line with the same crate's parser. That parser also shows
//! what no escape can carry in a tag value: a newline or a tab ends the value whatever precedes
//! it, and a value ending in a backslash is refused even when escaped. Such values are refused
//! here with an error rather than written corrupt.

use uuid::Uuid;

use crate::extended::{DomainStatsSample, StatsRow};
use crate::sample::{DomainSample, MemoryFeatures, NodeSample};

/// `VMID` of a domain that is not running: libvirt gives inactive domains no id, and
/// `virsh list --all` shows them as `-`.
pub const INACTIVE_VMID: &str = "-";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error(
        "tag `{key}` of VM {uuid} is {value:?}: line protocol cannot carry an empty tag value, a newline, a tab or a trailing backslash"
    )]
    UnrepresentableTag {
        key: &'static str,
        value: String,
        uuid: String,
    },
    #[error("field `{field}` of VM {uuid} is {value}, beyond a signed 64-bit integer")]
    IntegerOverflow {
        field: &'static str,
        value: u64,
        uuid: String,
    },
}

/// Lines back to back, each ending with `\n`: what one cycle encodes, in one buffer, so a line
/// costs no allocation of its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lines {
    bytes: Vec<u8>,
    count: usize,
}

impl Lines {
    pub fn with_capacity(bytes: usize) -> Self {
        Lines {
            bytes: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    /// Each line, with its `\n`.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.bytes.split_inclusive(|&b| b == b'\n')
    }

    /// Runs of at most `lines` whole lines, with their line counts.
    pub fn chunks(&self, lines: usize) -> impl Iterator<Item = (&[u8], usize)> {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (mut end, mut count) = (0, 0);
            while count < lines.max(1) && end < rest.len() {
                end += rest[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len() - end, |at| at + 1);
                count += 1;
            }
            let (chunk, tail) = rest.split_at(end);
            rest = tail;
            Some((chunk, count))
        })
    }
}

impl<'a> FromIterator<&'a [u8]> for Lines {
    /// Lines that already end with `\n`.
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Self {
        let mut all = Lines::default();
        for line in lines {
            debug_assert!(line.ends_with(b"\n"));
            all.bytes.extend_from_slice(line);
            all.count += 1;
        }
        all
    }
}

/// What a byte needs in a tag value: nothing, a backslash before it (as InfluxDB's builder
/// escapes), or no escape can carry it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    Plain,
    Escaped,
    Unrepresentable,
}

const fn classes(escaped: &[u8], unrepresentable: &[u8]) -> [Byte; 256] {
    let mut table = [Byte::Plain; 256];
    let mut i = 0;
    while i < escaped.len() {
        table[escaped[i] as usize] = Byte::Escaped;
        i += 1;
    }
    let mut i = 0;
    while i < unrepresentable.len() {
        table[unrepresentable[i] as usize] = Byte::Unrepresentable;
        i += 1;
    }
    table
}

/// A newline or a tab ends a tag value whatever precedes it (InfluxDB 3's parser).
const TAG: [Byte; 256] = classes(b",= \\", b"\n\t");

/// Whether a byte may be other than plain in a tag value: a test the compiler vectorizes, unlike
/// a table lookup. It is true for every byte `TAG` does not call plain (below `-`, `=`, `\\`).
fn may_need_tag_escape(byte: u8) -> bool {
    byte < b'-' || byte == b'=' || byte == b'\\'
}

/// Appends `text` escaped as a tag value; `None`, with `out` partly written, when a byte has no
/// escape. Text with no byte `may_need_tag_escape` flags (nearly all of it) is copied whole after
/// one vectorized pass; the rest goes byte by byte through `TAG`.
fn escape_tag_into(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let bytes = text.as_bytes();
    // `|` rather than `any`: no early exit, so the loop vectorizes.
    if !bytes
        .iter()
        .fold(false, |flagged, &b| flagged | may_need_tag_escape(b))
    {
        out.extend_from_slice(bytes);
        return Some(());
    }
    let mut plain_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        match TAG[byte as usize] {
            Byte::Plain => {}
            // Escapes are ASCII, so escaping byte by byte keeps UTF-8 intact.
            Byte::Escaped => {
                out.extend_from_slice(&bytes[plain_from..at]);
                out.push(b'\\');
                plain_from = at;
            }
            Byte::Unrepresentable => return None,
        }
    }
    out.extend_from_slice(&bytes[plain_from..]);
    Some(())
}

/// Appends `,key=value`, or refuses a value no escape can carry: empty, with a newline or a tab,
/// or ending in a backslash (refused by the parser even when escaped). `vm` is formatted only
/// into the error.
fn tag_into(
    out: &mut Vec<u8>,
    key: &'static str,
    value: &str,
    vm: &dyn std::fmt::Display,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(b',');
    out.extend_from_slice(plain(key).as_bytes());
    out.push(b'=');
    if value.is_empty() || value.ends_with('\\') || escape_tag_into(out, value).is_none() {
        out.truncate(start);
        return Err(EncodeError::UnrepresentableTag {
            key,
            value: value.to_owned(),
            uuid: vm.to_string(),
        });
    }
    Ok(())
}

/// Appends `,key=value` for a value formatted here (a number, `-`, a UUID), which never needs an
/// escape, so it is not checked for one.
#[inline(always)]
fn formatted_tag_into(out: &mut Vec<u8>, key: &'static str, value: &[u8]) {
    debug_assert!(!value.is_empty() && !value.iter().copied().any(may_need_tag_escape));
    out.push(b',');
    out.extend_from_slice(plain(key).as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}

/// Measurements, tag keys and field keys are this crate's constants, none of which needs an
/// escape: they are written as they are.
#[inline(always)]
fn plain(name: &'static str) -> &'static str {
    debug_assert!(
        !name.is_empty() && !name.bytes().any(|b| b",= \\\"\n\t".contains(&b)),
        "{name:?} needs escaping"
    );
    name
}

/// The tags of every line of one VM — `VMID`, `host`, `name`, `uuid` — checked and escaped once
/// for all of its lines. Reused from VM to VM, so it costs no allocation either.
#[derive(Debug, Default)]
pub struct VmTags {
    /// `,VMID=…,host=…,name=…,uuid=…`
    text: Vec<u8>,
    /// Where each tag starts in `text`, in `KEYS` order, for a row's own tag to go in key order.
    starts: [usize; 4],
    /// The VM an error of a row's own tag names.
    uuid: Uuid,
    /// The last host and its `,host=…`, checked and escaped once for every VM of that host
    /// (checking all four tags took 28 % of `cargo bench --bench encode` under `perf`).
    host: Option<(String, Vec<u8>)>,
}

impl VmTags {
    const KEYS: [&'static str; 4] = ["VMID", "host", "name", "uuid"];

    /// Sets the tags of the VM whose lines come next.
    pub fn set(
        &mut self,
        host: &str,
        id: Option<u32>,
        name: &str,
        uuid: &Uuid,
    ) -> Result<(), EncodeError> {
        self.uuid = *uuid;
        let mut uuid_text = Uuid::encode_buffer();
        uuid.hyphenated().encode_lower(&mut uuid_text);
        // Always 36 bytes: copied at a length the compiler knows, without a call to memcpy.
        let uuid_text = &uuid_text[..uuid::fmt::Hyphenated::LENGTH];
        let mut id_text = itoa::Buffer::new();
        let vmid = match id {
            Some(n) => id_text.format(n),
            None => INACTIVE_VMID,
        };
        self.text.clear();
        let [vmid_key, host_key, name_key, uuid_key] = Self::KEYS;
        self.starts[0] = 0;
        formatted_tag_into(&mut self.text, vmid_key, vmid.as_bytes());
        self.starts[1] = self.text.len();
        let host_tag = match &mut self.host {
            Some((cached, tag)) if cached == host => tag,
            _ => {
                let mut tag = Vec::new();
                tag_into(&mut tag, host_key, host, uuid)?;
                &self.host.insert((host.to_owned(), tag)).1
            }
        };
        self.text.extend_from_slice(host_tag);
        self.starts[2] = self.text.len();
        tag_into(&mut self.text, name_key, name, uuid)?;
        self.starts[3] = self.text.len();
        formatted_tag_into(&mut self.text, uuid_key, uuid_text);
        Ok(())
    }

    /// Tags in key order (InfluxDB stores series fastest that way), with the row's own if any.
    fn write(
        &self,
        out: &mut Vec<u8>,
        extra: Option<(&'static str, &str)>,
    ) -> Result<(), EncodeError> {
        let Some((key, value)) = extra else {
            out.extend_from_slice(&self.text);
            return Ok(());
        };
        let position = Self::KEYS.iter().position(|k| *k > key);
        let at = position.map_or(self.text.len(), |i| self.starts[i]);
        out.extend_from_slice(&self.text[..at]);
        tag_into(out, key, value, &self.uuid)?;
        out.extend_from_slice(&self.text[at..]);
        Ok(())
    }
}

/// Appends one line: the measurement, then tags, then fields, then the timestamp. Dropped
/// without `finish`, or finished without a field, it leaves `lines` as it was.
struct LineWriter<'a> {
    lines: &'a mut Lines,
    start: usize,
    fields: usize,
}

/// Every writer method is inlined into the line it writes, where its key and measurement are
/// constants: their bytes are then stored at a known length rather than through a call to memcpy
/// (with `formatted_tag_into`, `plain` and the UUID's fixed length: 1.17× the lines/s, median of 8
/// paired runs of `cargo bench --bench encode`, one per core at once).
impl LineWriter<'_> {
    #[inline(always)]
    fn key(&mut self, key: &'static str) {
        let out = &mut self.lines.bytes;
        out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        out.extend_from_slice(plain(key).as_bytes());
        out.push(b'=');
    }

    #[inline(always)]
    fn int(&mut self, key: &'static str, value: i64) {
        self.key(key);
        let out = &mut self.lines.bytes;
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        out.push(b'i');
    }

    /// The shortest text that reads back as the same `f64` (`zmij`, also serde_json's): always
    /// with a `.` or an exponent (`1e-7`, `1.5e+20`), both of which InfluxDB 1.x and 3 parse as
    /// floats, and never with `i`. Only finite values have a text, so others are left out.
    #[inline(always)]
    fn float(&mut self, key: &'static str, value: f64) {
        if value.is_finite() {
            self.key(key);
            let mut text = zmij::Buffer::new();
            let text = text.format_finite(value).as_bytes();
            self.lines.bytes.extend_from_slice(text);
        }
    }

    /// A string this crate names (a state), which needs no escape.
    #[inline(always)]
    fn constant_string(&mut self, key: &'static str, value: &'static str) {
        self.key(key);
        let out = &mut self.lines.bytes;
        out.push(b'"');
        out.extend_from_slice(plain(value).as_bytes());
        out.push(b'"');
    }

    /// False, with nothing written, when the line has no field: a line needs at least one.
    #[inline(always)]
    fn finish(self, timestamp_ns: i64) -> bool {
        let out = &mut self.lines.bytes;
        if self.fields == 0 {
            out.truncate(self.start);
            return false;
        }
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(timestamp_ns).as_bytes());
        out.push(b'\n');
        self.lines.count += 1;
        true
    }

    /// Leaves `lines` as it was.
    fn abandon(self) {
        self.lines.bytes.truncate(self.start);
    }
}

impl Lines {
    #[inline(always)]
    fn start(&mut self, measurement: &'static str) -> LineWriter<'_> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(plain(measurement).as_bytes());
        LineWriter {
            lines: self,
            start,
            fields: 0,
        }
    }

    /// A line with a VM's tags and the row's own tag if any (`device`, `interface`, `vcpu`).
    fn vm_line(
        &mut self,
        measurement: &'static str,
        tags: &VmTags,
        extra: Option<(&'static str, &str)>,
    ) -> Result<LineWriter<'_>, EncodeError> {
        let line = self.start(measurement);
        match tags.write(&mut line.lines.bytes, extra) {
            Ok(()) => Ok(line),
            Err(error) => {
                line.abandon();
                Err(error)
            }
        }
    }
}

/// `vm_metrics,VMID=..,host=..,name=..,uuid=.. state="..",cpu_count=..i,memory_max_kb=..i,memory_used_kb=..i,cputime_ns=..i <ns>`
/// `tags` must be set for `domain`.
pub fn vm_metrics(
    lines: &mut Lines,
    tags: &VmTags,
    domain: &DomainSample,
) -> Result<(), EncodeError> {
    let integer = |field, value: u64| {
        i64::try_from(value).map_err(|_| EncodeError::IntegerOverflow {
            field,
            value,
            uuid: domain.uuid.to_string(),
        })
    };
    let memory_max_kb = integer("memory_max_kb", domain.memory_max_kb)?;
    let memory_used_kb = integer("memory_used_kb", domain.memory_used_kb)?;
    let cputime_ns = integer("cputime_ns", domain.cputime_ns)?;
    let mut line = lines.vm_line("vm_metrics", tags, None)?;
    line.constant_string("state", domain.state.as_str());
    line.int("cpu_count", i64::from(domain.cpu_count));
    line.int("memory_max_kb", memory_max_kb);
    line.int("memory_used_kb", memory_used_kb);
    line.int("cputime_ns", cputime_ns);
    line.finish(domain.timestamp_ns);
    Ok(())
}

/// `vm_features,<same tags> memory_rate_kb_per_sec=..,memory_angle_deg=.. <ns>`
pub fn vm_features(
    lines: &mut Lines,
    tags: &VmTags,
    domain: &DomainSample,
    features: &MemoryFeatures,
) -> Result<(), EncodeError> {
    let mut line = lines.vm_line("vm_features", tags, None)?;
    line.float("memory_rate_kb_per_sec", features.memory_rate_kb_per_sec);
    line.float("memory_angle_deg", features.memory_angle_deg);
    line.finish(domain.timestamp_ns);
    Ok(())
}

/// One extended row (`vm_cpu`, `vm_memory`, `vm_disk`, `vm_net`): the VM's tags plus the row's
/// own, its counters as integers and what was derived from them as floats. `Ok(false)`, with
/// nothing written, when the row has no field at all. A counter beyond `i64` (never seen) is
/// left out rather than retyped.
pub fn stats_row(
    lines: &mut Lines,
    tags: &VmTags,
    domain: &DomainStatsSample,
    row: &StatsRow,
    derived: &[(&'static str, f64)],
) -> Result<bool, EncodeError> {
    let extra = row.key.as_ref().map(|(k, v)| (*k, v.as_str()));
    let mut line = lines.vm_line(row.measurement, tags, extra)?;
    for (field, value) in &row.counters {
        if let Ok(value) = i64::try_from(*value) {
            line.int(field, value);
        }
    }
    for (field, value) in derived {
        line.float(field, *value);
    }
    Ok(line.finish(domain.timestamp_ns))
}

/// `host_metrics,host=.. cpus=..i,memory_total_kb=..i,memory_free_kb=..i,domains=..i,
/// domains_running=..i,…,collection_duration_sec=.. <ns>`
pub fn host_metrics(lines: &mut Lines, host: &str, node: &NodeSample) -> Result<(), EncodeError> {
    let mut line = lines.start("host_metrics");
    if let Err(error) = tag_into(&mut line.lines.bytes, "host", host, &"-") {
        line.abandon();
        return Err(error);
    }
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if let Some(cpus) = node.cpus {
        line.int("cpus", cpus.into());
    }
    if let Some(total) = node.memory_total_kb {
        line.int("memory_total_kb", int(total));
    }
    if let Some(free) = node.memory_free_kb {
        line.int("memory_free_kb", int(free));
    }
    line.int("domains", int(node.domains));
    line.int("domains_running", int(node.domains_running));
    line.int("domains_paused", int(node.domains_paused));
    line.int("domains_stopped", int(node.domains_stopped));
    line.int("domains_other", int(node.domains_other));
    line.float("collection_duration_sec", node.collection_duration_sec);
    line.finish(node.timestamp_ns);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::VmState;
    use influxdb_line_protocol::{FieldValue, parse_lines};

    fn domain(name: &str) -> DomainSample {
        DomainSample {
            id: Some(1),
            name: name.into(),
            uuid: Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000),
            state: VmState::Running,
            cpu_count: 2,
            memory_max_kb: 2_097_152,
            memory_used_kb: 1_048_576,
            cputime_ns: 5_000_000_000,
            timestamp_ns: 1_699_868_400_000_000_000,
        }
    }

    // One-line forms of the encoders, with the VM's tags set for that one line.
    fn vm_metrics(lines: &mut Lines, host: &str, domain: &DomainSample) -> Result<(), EncodeError> {
        let mut tags = VmTags::default();
        tags.set(host, domain.id, &domain.name, &domain.uuid)?;
        super::vm_metrics(lines, &tags, domain)
    }

    fn vm_features(
        lines: &mut Lines,
        host: &str,
        domain: &DomainSample,
        features: &MemoryFeatures,
    ) -> Result<(), EncodeError> {
        let mut tags = VmTags::default();
        tags.set(host, domain.id, &domain.name, &domain.uuid)?;
        super::vm_features(lines, &tags, domain, features)
    }

    fn stats_row(
        lines: &mut Lines,
        host: &str,
        id: Option<u32>,
        domain: &DomainStatsSample,
        row: &StatsRow,
        derived: &[(&'static str, f64)],
    ) -> Result<bool, EncodeError> {
        let mut tags = VmTags::default();
        tags.set(host, id, &domain.name, &domain.uuid)?;
        super::stats_row(lines, &tags, domain, row, derived)
    }

    fn text(lines: Lines) -> String {
        String::from_utf8(lines.as_bytes().to_vec()).unwrap()
    }

    /// One call's output as text.
    fn encoded<T>(
        encode: impl FnOnce(&mut Lines) -> Result<T, EncodeError>,
    ) -> Result<(T, String), EncodeError> {
        let mut lines = Lines::default();
        let result = encode(&mut lines)?;
        Ok((result, text(lines)))
    }

    fn metrics(host: &str, domain: &DomainSample) -> Result<String, EncodeError> {
        encoded(|lines| vm_metrics(lines, host, domain)).map(|(_, text)| text)
    }

    #[test]
    fn vm_metrics_matches_the_seed_example_plus_host() {
        let line = metrics("kvm1", &domain("ubuntu-vm")).unwrap();
        assert_eq!(
            line,
            "vm_metrics,VMID=1,host=kvm1,name=ubuntu-vm,uuid=550e8400-e29b-41d4-a716-446655440000 \
             state=\"running\",cpu_count=2i,memory_max_kb=2097152i,memory_used_kb=1048576i,\
             cputime_ns=5000000000i 1699868400000000000\n"
        );
    }

    #[test]
    fn vm_features_are_floats_even_when_whole() {
        let features = MemoryFeatures {
            memory_rate_kb_per_sec: 0.0,
            memory_angle_deg: 45.0,
        };
        let line = encoded(|l| vm_features(l, "kvm1", &domain("ubuntu-vm"), &features))
            .unwrap()
            .1;
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.series.measurement.as_str(), "vm_features");
        assert_eq!(
            parsed.field_value("memory_rate_kb_per_sec"),
            Some(&FieldValue::F64(0.0))
        );
        assert_eq!(
            parsed.field_value("memory_angle_deg"),
            Some(&FieldValue::F64(45.0))
        );
    }

    #[test]
    fn an_inactive_domain_reads_as_dash() {
        let mut stopped = domain("off");
        stopped.id = None;
        stopped.state = VmState::Stopped;
        let line = metrics("kvm1", &stopped).unwrap();
        assert!(line.starts_with("vm_metrics,VMID=-,"), "{line}");
        assert!(line.contains("state=\"stopped\""), "{line}");
    }

    #[test]
    fn every_awkward_name_round_trips_through_influxdbs_parser() {
        let names = [
            "with space",
            "with,comma",
            "with=equals",
            "with\"double\"quotes",
            "with'single'quotes",
            r"back\slash",
            r"\\double\\ inside",
            r"esc\ aped\,already\=",
            "ünïcødé €",
            "日本語のVM",
            "emoji 🚀",
            " leading and trailing ",
            "x' OR '1'='1",
        ];
        for name in names {
            let line = metrics("host with space,comma", &domain(name)).unwrap();
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            assert_eq!(parsed.tag_value("name").unwrap().as_str(), name, "{line}");
            assert_eq!(
                parsed.tag_value("host").unwrap().as_str(),
                "host with space,comma"
            );
            assert_eq!(
                parsed.field_value("state"),
                Some(&FieldValue::String("running".into()))
            );
            assert_eq!(
                parsed.field_value("cputime_ns"),
                Some(&FieldValue::I64(5_000_000_000))
            );
            assert_eq!(parsed.timestamp, Some(1_699_868_400_000_000_000));
        }
    }

    #[test]
    fn unrepresentable_names_are_refused_not_corrupted() {
        for name in ["line\nbreak", "tab\there", r"trailing\", ""] {
            let error = metrics("kvm1", &domain(name)).unwrap_err();
            assert!(
                matches!(&error, EncodeError::UnrepresentableTag { key: "name", uuid, .. }
                    if uuid == "550e8400-e29b-41d4-a716-446655440000"),
                "{error}"
            );
        }
    }

    #[test]
    fn reused_tags_follow_each_vms_host_and_refuse_a_bad_one_every_time() {
        let vm = domain("web");
        let mut tags = VmTags::default();
        let line = |tags: &VmTags| {
            encoded(|lines| super::vm_metrics(lines, tags, &vm))
                .unwrap()
                .1
        };
        tags.set("kvm1", vm.id, &vm.name, &vm.uuid).unwrap();
        assert!(line(&tags).contains(",host=kvm1,"));
        tags.set("kvm 2", vm.id, &vm.name, &vm.uuid).unwrap();
        assert!(line(&tags).contains(r",host=kvm\ 2,"));
        for bad in ["", "new\nline", "", r"ends\"] {
            let error = tags.set(bad, vm.id, &vm.name, &vm.uuid).unwrap_err();
            assert!(
                matches!(&error, EncodeError::UnrepresentableTag { key: "host", .. }),
                "{bad:?}: {error}"
            );
        }
        tags.set("kvm 2", vm.id, &vm.name, &vm.uuid).unwrap();
        assert!(line(&tags).contains(r",host=kvm\ 2,"));
        tags.set("kvm1", None, &vm.name, &vm.uuid).unwrap();
        assert_eq!(
            line(&tags),
            metrics(
                "kvm1",
                &DomainSample {
                    id: None,
                    ..domain("web")
                }
            )
            .unwrap()
        );
    }

    #[test]
    fn the_fast_check_flags_every_byte_the_tag_table_escapes_or_refuses() {
        for byte in 0..=u8::MAX {
            if TAG[usize::from(byte)] != Byte::Plain {
                assert!(may_need_tag_escape(byte), "tag byte {byte:#04x}");
            }
        }
        // A flagged byte that needs nothing is copied as it is, by the slow path.
        let line = metrics("kvm-1", &domain("it's(1)+#2")).unwrap();
        assert!(line.contains(",host=kvm-1,name=it's(1)+#2,"), "{line}");
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        let mut huge = domain("big");
        huge.cputime_ns = u64::MAX;
        assert!(matches!(
            metrics("kvm1", &huge),
            Err(EncodeError::IntegerOverflow {
                field: "cputime_ns",
                ..
            })
        ));
    }

    #[test]
    fn extended_rows_have_the_vm_tags_plus_their_own_integers_and_floats() {
        use crate::extended::{DomainStatsSample, StatsRow};
        let sample = DomainStatsSample {
            uuid: Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000),
            name: "web 1".into(),
            timestamp_ns: 1_699_868_400_000_000_000,
            vcpus: Some(2),
            rows: vec![],
        };
        let row = StatsRow {
            measurement: "vm_disk",
            key: Some(("device", "vda".into())),
            counters: vec![
                ("read_bytes", 4096),
                ("write_bytes", 0),
                ("errors", u64::MAX),
            ],
        };
        let derived = [("read_bytes_per_sec", 2.0), ("read_iops", f64::NAN)];
        let (written, line) =
            encoded(|l| stats_row(l, "kvm1", Some(4), &sample, &row, &derived)).unwrap();
        assert!(written);
        assert!(
            line.starts_with("vm_disk,VMID=4,device=vda,host=kvm1,name=web\\ 1,uuid="),
            "{line}"
        );
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(
            parsed.field_value("read_bytes"),
            Some(&FieldValue::I64(4096))
        );
        assert_eq!(parsed.field_value("write_bytes"), Some(&FieldValue::I64(0)));
        // Whole rates stay floats; what cannot be written is left out, never retyped.
        assert_eq!(
            parsed.field_value("read_bytes_per_sec"),
            Some(&FieldValue::F64(2.0))
        );
        assert_eq!(parsed.field_value("errors"), None);
        assert_eq!(parsed.field_value("read_iops"), None);
        assert_eq!(parsed.timestamp, Some(1_699_868_400_000_000_000));

        let vcpu = StatsRow {
            measurement: "vm_cpu",
            key: Some(("vcpu", "1".into())),
            counters: vec![("vcpu_time_ns", 5)],
        };
        let (_, line) = encoded(|l| stats_row(l, "kvm1", None, &sample, &vcpu, &[])).unwrap();
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.tag_value("VMID").unwrap().as_str(), "-");
        assert_eq!(parsed.tag_value("vcpu").unwrap().as_str(), "1");
        let empty = StatsRow {
            measurement: "vm_net",
            key: Some(("interface", "tap0".into())),
            counters: vec![],
        };
        // A row without a field writes nothing, even after other lines.
        let mut lines = Lines::default();
        stats_row(&mut lines, "kvm1", None, &sample, &vcpu, &[]).unwrap();
        let before = lines.clone();
        assert_eq!(
            stats_row(&mut lines, "kvm1", None, &sample, &empty, &[]),
            Ok(false)
        );
        assert_eq!(lines, before);
        let bad = StatsRow {
            measurement: "vm_net",
            key: Some(("interface", "tab\there".into())),
            counters: vec![("rx_bytes", 1)],
        };
        assert!(matches!(
            stats_row(&mut lines, "kvm1", None, &sample, &bad, &[]),
            Err(EncodeError::UnrepresentableTag {
                key: "interface",
                uuid,
                ..
            }) if uuid == "550e8400-e29b-41d4-a716-446655440000"
        ));
        assert_eq!(lines, before, "a refused row leaves no trace");
    }

    #[test]
    fn host_metrics_counts_are_integers_and_the_duration_a_float() {
        let node = NodeSample {
            cpus: Some(16),
            memory_total_kb: Some(3_145_728),
            memory_free_kb: None,
            domains: 3,
            domains_running: 1,
            domains_paused: 1,
            domains_stopped: 1,
            domains_other: 0,
            collection_duration_sec: 0.0,
            timestamp_ns: 7,
        };
        let line = encoded(|l| host_metrics(l, "kvm 1", &node)).unwrap().1;
        let parsed = parse_lines(&line).next().unwrap().unwrap();
        assert_eq!(parsed.series.measurement.as_str(), "host_metrics");
        assert_eq!(parsed.tag_value("host").unwrap().as_str(), "kvm 1");
        assert_eq!(parsed.field_value("cpus"), Some(&FieldValue::I64(16)));
        assert_eq!(parsed.field_value("memory_free_kb"), None);
        assert_eq!(
            parsed.field_value("domains_other"),
            Some(&FieldValue::I64(0))
        );
        assert_eq!(
            parsed.field_value("collection_duration_sec"),
            Some(&FieldValue::F64(0.0))
        );
    }

    fn features(rate: f64, angle: f64) -> MemoryFeatures {
        MemoryFeatures {
            memory_rate_kb_per_sec: rate,
            memory_angle_deg: angle,
        }
    }

    #[test]
    fn floats_of_every_magnitude_read_back_exactly() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -12.375,
            1e-7,
            -2.5e-300,
            f64::MIN_POSITIVE,
            5e-324,
            1e15,
            1.5e16,
            1e21,
            -1.7976931348623157e308,
            f64::MAX,
            0.1 + 0.2,
        ];
        for value in values {
            let (_, line) =
                encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(value, 45.0))).unwrap();
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            match parsed.field_value("memory_rate_kb_per_sec") {
                Some(FieldValue::F64(read)) => {
                    assert_eq!(read.to_bits(), value.to_bits(), "{line}")
                }
                other => panic!("{value} read as {other:?} from {line}"),
            }
        }
    }

    #[test]
    fn non_finite_floats_are_left_out() {
        let (_, line) =
            encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(f64::NAN, f64::INFINITY)))
                .unwrap();
        assert_eq!(line, "", "a line without a field is no line");
        let (_, line) =
            encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(f64::NAN, 1.5))).unwrap();
        assert!(line.contains(" memory_angle_deg=1.5 "), "{line}");
        assert!(!line.contains("memory_rate_kb_per_sec"), "{line}");
    }

    #[test]
    fn lines_share_one_buffer_and_a_refused_line_leaves_no_trace() {
        let mut lines = Lines::default();
        vm_metrics(&mut lines, "kvm1", &domain("a")).unwrap();
        let one = lines.clone();
        assert!(vm_metrics(&mut lines, "kvm1", &domain("tab\there")).is_err());
        let mut huge = domain("b");
        huge.memory_used_kb = u64::MAX;
        assert!(vm_metrics(&mut lines, "kvm1", &huge).is_err());
        assert_eq!(lines, one);
        vm_metrics(&mut lines, "kvm1", &domain("b")).unwrap();
        vm_metrics(&mut lines, "kvm1", &domain("c")).unwrap();
        assert_eq!(lines.len(), 3);
        let names: Vec<String> = lines
            .iter()
            .map(|line| {
                let text = std::str::from_utf8(line).unwrap();
                assert!(text.ends_with('\n'));
                let parsed = parse_lines(text).next().unwrap().unwrap();
                parsed.tag_value("name").unwrap().to_string()
            })
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn chunks_hold_whole_lines_in_order() {
        let text = "m v=1i 1\nm v=22i 2\nm v=333i 3\nm v=4i 4\nm v=5i 5\n";
        let lines: Lines = text.as_bytes().split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 5);
        let chunks: Vec<(&str, usize)> = lines
            .chunks(2)
            .map(|(bytes, count)| (std::str::from_utf8(bytes).unwrap(), count))
            .collect();
        assert_eq!(
            chunks,
            [
                ("m v=1i 1\nm v=22i 2\n", 2),
                ("m v=333i 3\nm v=4i 4\n", 2),
                ("m v=5i 5\n", 1)
            ]
        );
        assert_eq!(lines.chunks(10).count(), 1);
        assert_eq!(Lines::default().chunks(3).count(), 0);
    }

    #[test]
    fn a_row_tag_takes_its_place_in_key_order() {
        let sample = crate::extended::DomainStatsSample {
            uuid: Uuid::from_u128(1),
            name: "n".into(),
            timestamp_ns: 1,
            vcpus: Some(1),
            rows: vec![],
        };
        for (key, expected) in [
            (
                "device",
                "m,VMID=-,device=x,host=h,name=n,uuid=00000000-0000-0000-0000-000000000001 ",
            ),
            (
                "interface",
                "m,VMID=-,host=h,interface=x,name=n,uuid=00000000-0000-0000-0000-000000000001 ",
            ),
            (
                "vcpu",
                "m,VMID=-,host=h,name=n,uuid=00000000-0000-0000-0000-000000000001,vcpu=x ",
            ),
        ] {
            let row = StatsRow {
                measurement: "m",
                key: Some((key, "x".into())),
                counters: vec![("c", 1)],
            };
            let (_, line) = encoded(|l| stats_row(l, "h", None, &sample, &row, &[])).unwrap();
            assert!(line.starts_with(expected), "{line}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_finite_float_reads_back_exactly(bits: u64) {
            let value = f64::from_bits(bits);
            proptest::prop_assume!(value.is_finite());
            let (_, line) =
                encoded(|l| vm_features(l, "kvm1", &domain("vm"), &features(value, 0.5))).unwrap();
            let parsed = parse_lines(&line).next().unwrap().unwrap();
            proptest::prop_assert_eq!(
                parsed.field_value("memory_rate_kb_per_sec"),
                Some(&FieldValue::F64(value))
            );
        }
    }

    #[test]
    fn tags_set_for_one_vm_carry_nothing_of_the_previous() {
        let mut tags = VmTags::default();
        let mut lines = Lines::default();
        let long = domain("a-much-longer-name with space");
        tags.set("host,one", long.id, &long.name, &long.uuid)
            .unwrap();
        super::vm_metrics(&mut lines, &tags, &long).unwrap();
        let mut short = domain("b");
        short.id = None;
        short.uuid = Uuid::from_u128(1);
        tags.set("h2", short.id, &short.name, &short.uuid).unwrap();
        super::vm_metrics(&mut lines, &tags, &short).unwrap();
        let text = text(lines);
        let second = text.lines().nth(1).unwrap();
        assert!(
            second.starts_with(
                "vm_metrics,VMID=-,host=h2,name=b,uuid=00000000-0000-0000-0000-000000000001 state="
            ),
            "{second}"
        );
    }
}

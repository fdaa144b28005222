//! libvirt's bulk `virConnectGetAllDomainStats` (and `virDomainListGetStats`, its form for a given
//! list of domains): every requested stats group of every domain in one round trip.
//!
//! `virt` 0.5 wraps this call as `Connect::all_domain_stats`, but hands back raw record pointers
//! and frees only the outer array, so every call leaks the records, their typed parameters and
//! their domain references. This module calls `virt::sys` itself, copies everything into owned
//! Rust values and always frees the list with `virDomainStatsRecordListFree`. With `guest_info`
//! and `block_stats`, which decode their parameters with `decode_param`, and `dirty_rate`'s one
//! call, it is the only place in the crate with `unsafe`; each block says why it is sound.

use std::ffi::{CStr, c_char};
use std::ops::{BitOr, BitOrAssign};
use std::ptr;

use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

/// Flags for [`all_domain_stats`], OR-ed together. The state filters (`ACTIVE`…`OTHER`) narrow
/// which domains are reported; `NOWAIT` skips groups whose job would have to wait for a busy
/// domain (a stale or missing value rather than a stall); `ENFORCE_STATS` makes unknown groups an
/// error instead of being ignored.
pub use sys::{
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE, VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING,
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS, VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE,
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT, VIR_CONNECT_GET_ALL_DOMAINS_STATS_OTHER,
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_PAUSED, VIR_CONNECT_GET_ALL_DOMAINS_STATS_PERSISTENT,
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING, VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF,
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_TRANSIENT,
};

/// The stats groups to ask for (`virDomainStatsTypes`). The empty set asks libvirt for every
/// group the driver supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StatsGroups(u32);

impl StatsGroups {
    pub const STATE: Self = Self(sys::VIR_DOMAIN_STATS_STATE);
    pub const CPU_TOTAL: Self = Self(sys::VIR_DOMAIN_STATS_CPU_TOTAL);
    pub const BALLOON: Self = Self(sys::VIR_DOMAIN_STATS_BALLOON);
    pub const VCPU: Self = Self(sys::VIR_DOMAIN_STATS_VCPU);
    pub const INTERFACE: Self = Self(sys::VIR_DOMAIN_STATS_INTERFACE);
    pub const BLOCK: Self = Self(sys::VIR_DOMAIN_STATS_BLOCK);
    pub const PERF: Self = Self(sys::VIR_DOMAIN_STATS_PERF);
    pub const IOTHREAD: Self = Self(sys::VIR_DOMAIN_STATS_IOTHREAD);
    pub const MEMORY: Self = Self(sys::VIR_DOMAIN_STATS_MEMORY);
    pub const DIRTYRATE: Self = Self(sys::VIR_DOMAIN_STATS_DIRTYRATE);
    /// Since libvirt 8.9.
    pub const VM: Self = Self(sys::VIR_DOMAIN_STATS_VM);
    /// Every group named above. Without `ENFORCE_STATS`, libvirt ignores those a driver lacks.
    pub const ALL: Self = Self(
        sys::VIR_DOMAIN_STATS_STATE
            | sys::VIR_DOMAIN_STATS_CPU_TOTAL
            | sys::VIR_DOMAIN_STATS_BALLOON
            | sys::VIR_DOMAIN_STATS_VCPU
            | sys::VIR_DOMAIN_STATS_INTERFACE
            | sys::VIR_DOMAIN_STATS_BLOCK
            | sys::VIR_DOMAIN_STATS_PERF
            | sys::VIR_DOMAIN_STATS_IOTHREAD
            | sys::VIR_DOMAIN_STATS_MEMORY
            | sys::VIR_DOMAIN_STATS_DIRTYRATE
            | sys::VIR_DOMAIN_STATS_VM,
    );

    pub const fn empty() -> Self {
        Self(0)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Any bits, including groups newer than this list.
    pub const fn from_bits_retain(bits: u32) -> Self {
        Self(bits)
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl BitOr for StatsGroups {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for StatsGroups {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// One typed parameter's value, as libvirt tagged it.
#[derive(Clone, Debug, PartialEq)]
pub enum StatValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Boolean(bool),
    String(String),
}

impl StatValue {
    /// Any integer type that fits in a `u64` (negatives give `None`).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            StatValue::Int(v) => u64::try_from(v).ok(),
            StatValue::UInt(v) => Some(v.into()),
            StatValue::LLong(v) => u64::try_from(v).ok(),
            StatValue::ULLong(v) => Some(v),
            _ => None,
        }
    }
}

/// One domain's record, copied out of libvirt's memory.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainStats {
    /// None, and the name empty, only if libvirt gave a record without a domain (not seen in
    /// practice).
    pub uuid: Option<Uuid>,
    pub name: String,
    /// In libvirt's order, e.g. `("state.state", Int(1))`, `("cpu.time", ULLong(…))`.
    pub params: Vec<(String, StatValue)>,
    /// Parameters left out: an unknown type tag, an empty or unterminated name, a null string.
    pub skipped: usize,
}

impl DomainStats {
    pub fn get(&self, field: &str) -> Option<&StatValue> {
        self.params.iter().find(|(f, _)| f == field).map(|(_, v)| v)
    }

    /// Any integer type that fits in a `u64` (negatives give `None`).
    pub fn get_u64(&self, field: &str) -> Option<u64> {
        self.get(field)?.as_u64()
    }

    /// Any integer type that fits in an `i64`.
    pub fn get_i64(&self, field: &str) -> Option<i64> {
        match *self.get(field)? {
            StatValue::Int(v) => Some(v.into()),
            StatValue::UInt(v) => Some(v.into()),
            StatValue::LLong(v) => Some(v),
            StatValue::ULLong(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A double, or any integer (converted, so values above 2^53 round).
    pub fn get_f64(&self, field: &str) -> Option<f64> {
        match *self.get(field)? {
            StatValue::Double(v) => Some(v),
            StatValue::Int(v) => Some(v.into()),
            StatValue::UInt(v) => Some(v.into()),
            StatValue::LLong(v) => Some(v as f64),
            StatValue::ULLong(v) => Some(v as f64),
            _ => None,
        }
    }

    pub fn get_bool(&self, field: &str) -> Option<bool> {
        match *self.get(field)? {
            StatValue::Boolean(v) => Some(v),
            _ => None,
        }
    }

    pub fn get_str(&self, field: &str) -> Option<&str> {
        match self.get(field)? {
            StatValue::String(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
impl DomainStats {
    /// A record of the domain `uuid` (named `vm`) with these parameters.
    pub fn of(uuid: u128, params: &[(&str, StatValue)]) -> Self {
        DomainStats {
            uuid: Some(Uuid::from_u128(uuid)),
            name: "vm".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            skipped: 0,
        }
    }
}

/// Every domain's requested stats groups in one call (`virConnectGetAllDomainStats`). `flags`
/// takes the `VIR_CONNECT_GET_ALL_DOMAINS_STATS_*` constants re-exported here.
pub fn all_domain_stats(
    connect: &Connect,
    groups: StatsGroups,
    flags: u32,
) -> Result<Vec<DomainStats>, Error> {
    let mut records: *mut sys::virDomainStatsRecordPtr = ptr::null_mut();
    // SAFETY: `connect` is borrowed, so its pointer stays valid for the call; `records` is a
    // valid out-pointer that libvirt sets to a list it allocates (or leaves null on failure).
    let count = unsafe {
        sys::virConnectGetAllDomainStats(connect.as_ptr(), groups.bits(), &mut records, flags)
    };
    // SAFETY: `records` and `count` are what the call above returned.
    unsafe { decode_list(records, count) }
}

/// The requested stats groups of the given domains only, in one call (`virDomainListGetStats`).
/// The domains must all come from the same connection. Of the flags only `NOWAIT`, `BACKING` and
/// `ENFORCE_STATS` are meant for it (libvirt may refuse the state filters). No domains, no call.
pub fn list_domain_stats(
    domains: &[Domain],
    groups: StatsGroups,
    flags: u32,
) -> Result<Vec<DomainStats>, Error> {
    if domains.is_empty() {
        return Ok(Vec::new());
    }
    // SAFETY: each pointer belongs to a `Domain` borrowed for the whole call, so it stays valid.
    let mut doms: Vec<sys::virDomainPtr> = domains.iter().map(|d| unsafe { d.as_ptr() }).collect();
    doms.push(ptr::null_mut()); // libvirt reads up to this terminator
    let mut records: *mut sys::virDomainStatsRecordPtr = ptr::null_mut();
    // SAFETY: `doms` is a null-terminated array of live domain pointers that libvirt only reads;
    // `records` is a valid out-pointer, as above.
    let count = unsafe {
        sys::virDomainListGetStats(doms.as_mut_ptr(), groups.bits(), &mut records, flags)
    };
    // SAFETY: `records` and `count` are what the call above returned.
    unsafe { decode_list(records, count) }
}

/// Copies a record list out and frees it, whatever happens.
///
/// # Safety
/// `records` and `count` must be what one `virConnectGetAllDomainStats` or `virDomainListGetStats`
/// call just returned on this thread (a negative count: it failed).
unsafe fn decode_list(
    records: *mut sys::virDomainStatsRecordPtr,
    count: std::ffi::c_int,
) -> Result<Vec<DomainStats>, Error> {
    // Owns the list from here on, so every return path below frees it.
    let list = RecordList(records);
    let Ok(count) = usize::try_from(count) else {
        // libvirt's error is per thread and set by the call that just failed.
        return Err(Error::last_error());
    };
    if list.0.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: on success libvirt returns an array of `count` record pointers (plus a null
    // terminator), alive until `list` drops at the end of this function; the slice does not
    // escape it.
    let records = unsafe { std::slice::from_raw_parts(list.0, count) };
    let mut out = Vec::with_capacity(count);
    for &record in records {
        if record.is_null() {
            break; // the terminator came early: never read past it
        }
        // SAFETY: a non-null entry of the list above, read before the list is freed.
        out.push(unsafe { decode_record(&*record) }?);
    }
    Ok(out)
}

/// Frees a record list, its typed parameters (strings included) and its domain references.
struct RecordList(*mut sys::virDomainStatsRecordPtr);

impl Drop for RecordList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from virConnectGetAllDomainStats and is freed only here,
            // once; nothing borrowed from it outlives this guard (all data was copied).
            unsafe { sys::virDomainStatsRecordListFree(self.0) }
        }
    }
}

/// # Safety
/// `record` must be a record of a list returned by libvirt and not yet freed.
unsafe fn decode_record(record: &sys::virDomainStatsRecord) -> Result<DomainStats, Error> {
    let (uuid, name) = if record.dom.is_null() {
        // libvirt always sets it; no identity beats a crash if it ever does not.
        (None, String::new())
    } else {
        // SAFETY: `dom` is a live reference held by the list; libvirt returns the name as a
        // pointer into the domain object (not to be freed), valid while the domain is.
        let name = unsafe { sys::virDomainGetName(record.dom) };
        if name.is_null() {
            return Err(Error::last_error());
        }
        // SAFETY: non-null and NUL-terminated (libvirt's contract); copied before the list,
        // and so the domain, is freed.
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        let mut uuid = [0; sys::VIR_UUID_BUFLEN as usize];
        // SAFETY: libvirt writes exactly VIR_UUID_BUFLEN (16) bytes.
        if unsafe { sys::virDomainGetUUID(record.dom, uuid.as_mut_ptr()) } < 0 {
            return Err(Error::last_error());
        }
        (Some(Uuid::from_bytes(uuid)), name)
    };

    let mut params = Vec::new();
    let mut skipped = 0;
    let nparams = usize::try_from(record.nparams).unwrap_or(0);
    if !record.params.is_null() && nparams > 0 {
        // SAFETY: libvirt allocated `nparams` contiguous parameters at `params`, which stay
        // alive with the list; the slice is not kept beyond this function.
        let raw = unsafe { std::slice::from_raw_parts(record.params, nparams) };
        params.reserve(raw.len());
        for p in raw {
            // SAFETY: a parameter from libvirt: a STRING one holds null or a C string it owns.
            match unsafe { decode_param(p) } {
                Some(param) => params.push(param),
                None => skipped += 1,
            }
        }
    }
    Ok(DomainStats {
        uuid,
        name,
        params,
        skipped,
    })
}

/// `None` for an unknown type tag, an empty or unterminated name, or a null string.
///
/// # Safety
/// If `p.type_` is `VIR_TYPED_PARAM_STRING`, `p.value.s` must be null or point to a
/// NUL-terminated string that stays valid for the duration of the call.
pub(super) unsafe fn decode_param(p: &sys::virTypedParameter) -> Option<(String, StatValue)> {
    let field = c_chars_to_string(&p.field).filter(|f| !f.is_empty())?;
    let tag = u32::try_from(p.type_).ok()?;
    // SAFETY: each arm reads the union member its `type_` tag names, the one libvirt wrote;
    // every member is plain data except `s`, checked for null and valid by the caller's word.
    let value = unsafe {
        match tag {
            sys::VIR_TYPED_PARAM_INT => StatValue::Int(p.value.i),
            sys::VIR_TYPED_PARAM_UINT => StatValue::UInt(p.value.ui),
            sys::VIR_TYPED_PARAM_LLONG => StatValue::LLong(p.value.l),
            sys::VIR_TYPED_PARAM_ULLONG => StatValue::ULLong(p.value.ul),
            sys::VIR_TYPED_PARAM_DOUBLE => StatValue::Double(p.value.d),
            sys::VIR_TYPED_PARAM_BOOLEAN => StatValue::Boolean(p.value.b != 0),
            sys::VIR_TYPED_PARAM_STRING => {
                let s = p.value.s;
                if s.is_null() {
                    return None;
                }
                // Copied now: the string is freed with the list.
                StatValue::String(CStr::from_ptr(s).to_string_lossy().into_owned())
            }
            _ => return None,
        }
    };
    Some((field, value))
}

/// A fixed-size C char buffer up to its first NUL (`None` if it has none), UTF-8 lossily.
fn c_chars_to_string(buf: &[c_char]) -> Option<String> {
    // `c_char` is i8 or u8 depending on the target; `as u8` keeps the byte either way.
    let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&bytes[..nul]).into_owned())
}

#[cfg(test)]
mod tests {
    use std::ffi::{CString, c_int};

    use super::*;

    /// The test driver's one running domain.
    const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    fn connect() -> Connect {
        virt::error::clear_error_callback();
        Connect::open(Some("test:///default")).expect("test:///default opens")
    }

    fn param(
        field: &str,
        type_: u32,
        value: sys::_virTypedParameterValue,
    ) -> sys::virTypedParameter {
        let mut p = sys::virTypedParameter {
            field: [0; sys::VIR_TYPED_PARAM_FIELD_LENGTH as usize],
            type_: type_ as c_int,
            value,
        };
        for (dst, src) in p.field.iter_mut().zip(field.bytes()) {
            *dst = src as c_char;
        }
        p
    }

    #[test]
    fn state_group_of_the_test_domain() {
        let conn = connect();
        let stats = all_domain_stats(&conn, StatsGroups::STATE, 0).unwrap();
        assert_eq!(stats.len(), 1, "{stats:?}");
        let test = &stats[0];
        assert_eq!(test.name, "test");
        assert_eq!(test.uuid, Some(TEST_UUID.parse().unwrap()));
        assert_eq!(test.get("state.state"), Some(&StatValue::Int(1)));
        assert_eq!(test.get_u64("state.state"), Some(1)); // VIR_DOMAIN_RUNNING
        assert_eq!(test.get_f64("state.state"), Some(1.0));
        assert!(test.get_u64("state.reason").is_some());
        assert_eq!(test.get_str("state.state"), None);
        assert_eq!(test.skipped, 0);
    }

    #[test]
    fn all_groups_and_the_empty_set_work_on_the_test_driver() {
        let conn = connect();
        for groups in [StatsGroups::ALL, StatsGroups::empty()] {
            let stats = all_domain_stats(&conn, groups, 0).unwrap();
            assert_eq!(stats.len(), 1, "{groups:?}: {stats:?}");
            assert_eq!(stats[0].get_u64("state.state"), Some(1), "{groups:?}");
            assert_eq!(stats[0].skipped, 0);
        }
    }

    #[test]
    fn a_domain_list_gives_the_same_records_as_the_whole_host() {
        let conn = connect();
        let domains = conn.list_all_domains(0).unwrap();
        assert_eq!(domains.len(), 1);
        let listed = list_domain_stats(&domains, StatsGroups::ALL, 0).unwrap();
        let all = all_domain_stats(&conn, StatsGroups::ALL, 0).unwrap();
        assert_eq!(listed, all);
        let nowait = VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
        let listed = list_domain_stats(&domains, StatsGroups::STATE, nowait).unwrap();
        assert_eq!(listed[0].uuid, Some(TEST_UUID.parse().unwrap()));
        assert_eq!(listed[0].get_u64("state.state"), Some(1));
        assert!(
            list_domain_stats(&[], StatsGroups::ALL, 0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn flags_filter_domains() {
        let conn = connect();
        let running = VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING;
        assert_eq!(
            all_domain_stats(&conn, StatsGroups::STATE, running)
                .unwrap()
                .len(),
            1
        );
        let shutoff = VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF;
        assert!(
            all_domain_stats(&conn, StatsGroups::STATE, shutoff)
                .unwrap()
                .is_empty()
        );
        let nowait = VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
        assert_eq!(
            all_domain_stats(&conn, StatsGroups::ALL, nowait)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_libvirt_error_is_returned_not_panicked() {
        let conn = connect();
        // A group this libvirt does not know, with ENFORCE_STATS, is refused.
        let unknown = StatsGroups::from_bits_retain(1 << 30);
        let enforce = VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS;
        let bad_group = all_domain_stats(&conn, unknown, enforce);
        assert!(bad_group.is_err(), "{bad_group:?}");
        // The connection is still usable afterwards.
        assert_eq!(
            all_domain_stats(&conn, StatsGroups::STATE, 0)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn every_value_type_decodes() {
        let text = CString::new("vda").unwrap();
        let cases = [
            (
                sys::VIR_TYPED_PARAM_INT,
                sys::_virTypedParameterValue { i: -7 },
                StatValue::Int(-7),
            ),
            (
                sys::VIR_TYPED_PARAM_UINT,
                sys::_virTypedParameterValue { ui: u32::MAX },
                StatValue::UInt(u32::MAX),
            ),
            (
                sys::VIR_TYPED_PARAM_LLONG,
                sys::_virTypedParameterValue { l: i64::MIN },
                StatValue::LLong(i64::MIN),
            ),
            (
                sys::VIR_TYPED_PARAM_ULLONG,
                sys::_virTypedParameterValue { ul: u64::MAX },
                StatValue::ULLong(u64::MAX),
            ),
            (
                sys::VIR_TYPED_PARAM_DOUBLE,
                sys::_virTypedParameterValue { d: 0.25 },
                StatValue::Double(0.25),
            ),
            (
                sys::VIR_TYPED_PARAM_BOOLEAN,
                sys::_virTypedParameterValue { b: 1 },
                StatValue::Boolean(true),
            ),
            (
                sys::VIR_TYPED_PARAM_BOOLEAN,
                sys::_virTypedParameterValue { b: 0 },
                StatValue::Boolean(false),
            ),
            (
                sys::VIR_TYPED_PARAM_STRING,
                sys::_virTypedParameterValue {
                    s: text.as_ptr().cast_mut(),
                },
                StatValue::String("vda".into()),
            ),
        ];
        for (type_, value, expected) in cases {
            let p = param("block.0.name", type_, value);
            // SAFETY: the only string pointer is `text`, alive until the end of the test.
            let decoded = unsafe { decode_param(&p) };
            assert_eq!(decoded, Some(("block.0.name".to_owned(), expected)));
        }
    }

    #[test]
    fn malformed_parameters_are_skipped_or_replaced() {
        let zero = sys::_virTypedParameterValue { ul: 0 };
        // SAFETY: no parameter here holds a non-null string pointer except
        // `bad_utf8`'s, alive until the end of the test.
        unsafe {
            assert_eq!(decode_param(&param("x", 0, zero)), None);
            assert_eq!(decode_param(&param("x", 99, zero)), None);
            let mut negative = param("x", 0, zero);
            negative.type_ = -1;
            assert_eq!(decode_param(&negative), None);
            assert_eq!(
                decode_param(&param("", sys::VIR_TYPED_PARAM_INT, zero)),
                None
            );
            let null_string = sys::_virTypedParameterValue { s: ptr::null_mut() };
            assert_eq!(
                decode_param(&param("s", sys::VIR_TYPED_PARAM_STRING, null_string)),
                None
            );
            let mut unterminated = param("", sys::VIR_TYPED_PARAM_INT, zero);
            unterminated.field = [b'a' as c_char; sys::VIR_TYPED_PARAM_FIELD_LENGTH as usize];
            assert_eq!(decode_param(&unterminated), None);

            let bad_utf8 = CString::new(vec![b'a', 0xff, b'b']).unwrap();
            let value = sys::_virTypedParameterValue {
                s: bad_utf8.as_ptr().cast_mut(),
            };
            let mut p = param("n\u{e9}t", sys::VIR_TYPED_PARAM_STRING, value);
            p.field[0] = 0xfe_u8 as c_char;
            let (field, value) = decode_param(&p).unwrap();
            assert_eq!(field, "\u{fffd}\u{e9}t");
            assert_eq!(value, StatValue::String("a\u{fffd}b".into()));
        }
    }

    #[test]
    fn getters_convert_between_integer_types() {
        let stats = DomainStats {
            uuid: None,
            name: String::new(),
            params: vec![
                ("i".into(), StatValue::Int(-1)),
                ("u".into(), StatValue::UInt(7)),
                ("l".into(), StatValue::LLong(1 << 40)),
                ("ul".into(), StatValue::ULLong(u64::MAX)),
                ("d".into(), StatValue::Double(1.5)),
                ("b".into(), StatValue::Boolean(true)),
                ("s".into(), StatValue::String("x".into())),
            ],
            skipped: 0,
        };
        assert_eq!(stats.get_u64("i"), None);
        assert_eq!(stats.get_i64("i"), Some(-1));
        assert_eq!(stats.get_u64("u"), Some(7));
        assert_eq!(stats.get_u64("l"), Some(1 << 40));
        assert_eq!(stats.get_u64("ul"), Some(u64::MAX));
        assert_eq!(stats.get_i64("ul"), None);
        assert_eq!(stats.get_u64("d"), None);
        assert_eq!(stats.get_f64("d"), Some(1.5));
        assert_eq!(stats.get_f64("u"), Some(7.0));
        assert_eq!(stats.get_bool("b"), Some(true));
        assert_eq!(stats.get_str("s"), Some("x"));
        assert_eq!(stats.get_u64("missing"), None);
    }

    #[test]
    fn groups_combine_like_bitflags() {
        let g = StatsGroups::STATE | StatsGroups::CPU_TOTAL;
        assert_eq!(
            g.bits(),
            sys::VIR_DOMAIN_STATS_STATE | sys::VIR_DOMAIN_STATS_CPU_TOTAL
        );
        assert!(g.contains(StatsGroups::STATE));
        assert!(!g.contains(StatsGroups::BLOCK));
        assert!(StatsGroups::ALL.contains(g | StatsGroups::DIRTYRATE | StatsGroups::VM));
        assert!(StatsGroups::empty().is_empty());
        assert_eq!(
            g.without(StatsGroups::STATE | StatsGroups::BLOCK),
            StatsGroups::CPU_TOTAL
        );
    }
}

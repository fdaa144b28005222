//! The guest agent's view of a domain (`virDomainGetGuestInfo`) and the bound on its answer
//! (`virDomainAgentSetResponseTimeout`), neither wrapped by `virt` 0.5. As in `bulk_stats`, the
//! typed parameters libvirt allocates are copied into owned values and always freed here. Both
//! calls need a read-write connection: libvirt refuses them on a read-only one.

use std::ffi::c_int;
use std::ptr;

use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

use super::bulk_stats::{StatValue, decode_param};

/// The agent commands to ask for: filesystems, OS, hostname and users (one agent command each;
/// disks, timezone and interfaces are not read, as no measurement carries them).
pub const GUEST_TYPES: u32 = sys::VIR_DOMAIN_GUEST_INFO_FILESYSTEM
    | sys::VIR_DOMAIN_GUEST_INFO_OS
    | sys::VIR_DOMAIN_GUEST_INFO_HOSTNAME
    | sys::VIR_DOMAIN_GUEST_INFO_USERS;

/// The typed parameters of one answer, and how many were left out (unknown type, no name, null
/// string).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GuestParams {
    pub params: Vec<(String, StatValue)>,
    pub skipped: usize,
}

/// `types` (the `VIR_DOMAIN_GUEST_INFO_*` bits) of `domain`, as its guest agent answers them.
pub fn guest_info(domain: &Domain, types: u32) -> Result<GuestParams, Error> {
    let mut params: sys::virTypedParameterPtr = ptr::null_mut();
    let mut nparams: c_int = 0;
    // SAFETY: the domain is borrowed, so its pointer stays valid for the call; `params` and
    // `nparams` are valid out-pointers libvirt sets to an array it allocates (or leaves as is on
    // failure).
    let result =
        unsafe { sys::virDomainGetGuestInfo(domain.as_ptr(), types, &mut params, &mut nparams, 0) };
    // Owns the array from here on, so it is freed on every path below.
    let owned = TypedParams(params, nparams);
    if result < 0 {
        // libvirt's error is per thread and set by the call that just failed.
        return Err(Error::last_error());
    }
    Ok(owned.decode())
}

/// Bounds every later agent call on `domain` to `seconds` (libvirt keeps it with the running
/// domain, until it stops).
pub fn set_agent_timeout(domain: &Domain, seconds: i32) -> Result<(), Error> {
    // SAFETY: the domain is borrowed for the call; the call only reads its pointer.
    let result = unsafe { sys::virDomainAgentSetResponseTimeout(domain.as_ptr(), seconds, 0) };
    if result < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// An array of typed parameters libvirt allocated, freed (strings included) on drop.
struct TypedParams(sys::virTypedParameterPtr, c_int);

impl TypedParams {
    fn decode(&self) -> GuestParams {
        let mut out = GuestParams::default();
        let len = usize::try_from(self.1).unwrap_or(0);
        if self.0.is_null() || len == 0 {
            return out;
        }
        // SAFETY: libvirt allocated `len` contiguous parameters at the pointer, alive until this
        // guard drops; the slice does not outlive `self`.
        let raw = unsafe { std::slice::from_raw_parts(self.0, len) };
        for p in raw {
            // SAFETY: a parameter from libvirt: a STRING one holds null or a C string it owns.
            match unsafe { decode_param(p) } {
                Some(param) => out.params.push(param),
                None => out.skipped += 1,
            }
        }
        out
    }
}

impl Drop for TypedParams {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the array and its count came from one virDomainGetGuestInfo call and are
            // freed only here, once; everything was copied out of it.
            unsafe { sys::virTypedParamsFree(self.0, self.1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CString, c_int};

    use uuid::Uuid;

    use super::*;
    use crate::guest::{GuestSample, MAX_FILESYSTEMS, MAX_TEXT};
    use crate::libvirt::bulk_stats::DomainStats;

    /// Typed parameters made by libvirt's own functions, as `virDomainGetGuestInfo` makes its
    /// answer, and freed as it is (`TypedParams`).
    struct Answer {
        params: sys::virTypedParameterPtr,
        n: c_int,
        max: c_int,
    }

    impl Default for Answer {
        fn default() -> Self {
            Answer {
                params: ptr::null_mut(),
                n: 0,
                max: 0,
            }
        }
    }

    impl Answer {
        fn add(&mut self, name: &str, value: Value) {
            let name = CString::new(name).unwrap();
            let (params, n, max) = (&mut self.params, &mut self.n, &mut self.max);
            // SAFETY: the array and its counts are libvirt's own, grown by each call; the name
            // and string are copied by libvirt before the call returns.
            let added = unsafe {
                match value {
                    Value::UInt(v) => sys::virTypedParamsAddUInt(params, n, max, name.as_ptr(), v),
                    Value::ULLong(v) => {
                        sys::virTypedParamsAddULLong(params, n, max, name.as_ptr(), v)
                    }
                    Value::LLong(v) => {
                        sys::virTypedParamsAddLLong(params, n, max, name.as_ptr(), v)
                    }
                    Value::Text(v) => {
                        let v = CString::new(v).unwrap();
                        sys::virTypedParamsAddString(params, n, max, name.as_ptr(), v.as_ptr())
                    }
                }
            };
            assert_eq!(added, 0, "{name:?}");
        }

        fn filesystem(&mut self, n: usize, mount: &str, total: Option<Value>, used: Value) {
            self.add(&format!("fs.{n}.mountpoint"), Value::Text(mount.into()));
            self.add(&format!("fs.{n}.name"), Value::Text("vda1".into()));
            self.add(&format!("fs.{n}.fstype"), Value::Text("ext4".into()));
            if let Some(total) = total {
                self.add(&format!("fs.{n}.total-bytes"), total);
            }
            self.add(&format!("fs.{n}.used-bytes"), used);
        }

        /// Read as the service reads an agent's answer.
        fn parse(self) -> GuestSample {
            let decoded = TypedParams(self.params, self.n).decode();
            let stats = DomainStats {
                uuid: Some(Uuid::from_u128(5)),
                name: "vm".into(),
                params: decoded.params,
                skipped: decoded.skipped,
            };
            GuestSample::from_params(&stats, Some(1), 0).unwrap()
        }
    }

    enum Value {
        UInt(u32),
        ULLong(u64),
        LLong(i64),
        Text(String),
    }

    #[test]
    fn an_agent_answering_nonsense_in_libvirts_own_shapes_is_bounded_and_counted() {
        let mut answer = Answer::default();
        // More filesystems than it lists, and thousands listed.
        let listed = 2000;
        answer.add("fs.count", Value::UInt(u32::MAX));
        let awkward = "/a b,c=\"d\"\\é日本";
        answer.filesystem(0, awkward, Some(Value::ULLong(10)), Value::ULLong(4));
        answer.filesystem(1, "/over", Some(Value::ULLong(10)), Value::ULLong(11));
        answer.filesystem(2, "/no-total", None, Value::ULLong(1));
        answer.filesystem(3, "/negative", Some(Value::LLong(-1)), Value::ULLong(0));
        answer.filesystem(4, awkward, Some(Value::ULLong(20)), Value::ULLong(1));
        for n in 5..listed {
            let mount = format!("/m{n}");
            answer.filesystem(n, &mount, Some(Value::ULLong(8)), Value::ULLong(1));
        }
        answer.add("hostname", Value::Text("h".repeat(MAX_TEXT + 44)));
        answer.add("user.count", Value::UInt(2));
        let sample = answer.parse();
        assert_eq!(sample.filesystems.len(), MAX_FILESYSTEMS - 4);
        let first = &sample.filesystems[0];
        assert_eq!(
            (first.mountpoint.as_str(), first.total_bytes),
            (awkward, 10)
        );
        assert_eq!(sample.filesystems[1].mountpoint, "/m5");
        // Four nonsensical, and all but the first 64 of the u32::MAX listed.
        let beyond = u32::MAX as usize - MAX_FILESYSTEMS;
        assert_eq!(sample.rejected, 4 + beyond);
        assert_eq!(sample.info.hostname.map(|h| h.len()), Some(MAX_TEXT));
        assert_eq!(sample.info.users, Some(2));
    }
}

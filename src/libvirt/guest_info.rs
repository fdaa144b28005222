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

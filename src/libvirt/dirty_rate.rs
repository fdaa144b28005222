//! The dirty-rate calculation's start (`virDomainStartDirtyRateCalc`, which `virt` 0.5 does not
//! wrap): QEMU measures a running domain's memory dirty rate over some seconds, in the
//! background, and the `dirtyrate` stats group reads it afterwards. It needs a read-write
//! connection.

use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;
use virt::domain::Domain;
use virt::enumutil::Enum;
use virt::error::{Error, ErrorNumber};
use virt::sys;

use super::LibvirtError;
use super::cadence::DIRTY_RATE_CALC_SEC;
use super::crew::{Crew, Failed};
use super::heartbeat::Heartbeat;
use super::stats::{side_by_side, split, stats_threads};

const CALL: &str = "virDomainStartDirtyRateCalc";

/// What starting the calculations of a cycle's running domains gave.
#[derive(Default)]
pub struct Started {
    /// The domains measuring now: their rates are read later.
    pub domains: HashSet<Uuid>,
    /// The first failure, other than a domain gone or a QEMU without the command.
    pub failed: Option<LibvirtError>,
    /// A call was left behind: it still holds a request on the connection.
    pub left_behind: bool,
}

/// Starts the calculation of each running one of `domains`, side by side as the bulk calls are
/// (a QEMU that does not answer its monitor holds one thread, left behind after `patience`).
pub fn start_all(
    crew: &mut Crew,
    domains: Vec<Domain>,
    patience: Duration,
    heartbeat: &Heartbeat,
) -> Started {
    let running: Vec<Domain> = domains.into_iter().filter(|d| d.id().is_some()).collect();
    let threads = stats_threads(running.len());
    let jobs: Vec<_> = split(running, threads)
        .into_iter()
        .map(|share| {
            let heartbeat = heartbeat.clone();
            move || start_share(&share, &heartbeat)
        })
        .collect();
    let mut started = Started::default();
    let mut dismissed = Vec::new();
    for (index, part) in side_by_side(crew, jobs, patience, heartbeat)
        .into_iter()
        .enumerate()
    {
        let error = match part {
            Some(Ok((domains, error))) => {
                started.domains.extend(domains);
                error
            }
            Some(Err(Failed::GaveUp)) => {
                dismissed.push(index);
                Some(failed(format!(
                    "no answer within {patience:?}: left behind"
                )))
            }
            Some(Err(_)) => Some(failed("the thread starting it failed".into())),
            None => None,
        };
        if let Some(error) = error {
            started.failed.get_or_insert(error);
        }
    }
    crew.dismiss(&dismissed);
    started.left_behind = !dismissed.is_empty();
    started
}

fn failed(message: String) -> LibvirtError {
    LibvirtError::Call {
        call: CALL,
        message,
    }
}

/// The domains of `share` now measuring, and the first failure that counts.
fn start_share(share: &[Domain], heartbeat: &Heartbeat) -> (Vec<Uuid>, Option<LibvirtError>) {
    let (mut started, mut error) = (Vec::with_capacity(share.len()), None);
    for domain in share {
        let Ok(uuid) = domain.uuid() else { continue };
        match heartbeat.call(|| start_dirty_rate_calc(domain, DIRTY_RATE_CALC_SEC)) {
            Ok(()) => started.push(uuid),
            // Stopped or gone since the list, or a QEMU without the command: no rate, no error.
            Err(e) if quiet(&e) => {}
            Err(e) => {
                error.get_or_insert(LibvirtError::call(CALL, e));
            }
        }
    }
    (started, error)
}

fn quiet(e: &Error) -> bool {
    matches!(
        e.code(),
        Enum::Known(
            ErrorNumber::NoDomain
                | ErrorNumber::OperationInvalid
                | ErrorNumber::NoSupport
                | ErrorNumber::OperationUnsupported
        )
    )
}

/// Starts measuring `domain`'s dirty rate over `seconds`, by page sampling (what QEMU 7.2 does
/// without a dirty ring or bitmap set up for it).
pub fn start_dirty_rate_calc(domain: &Domain, seconds: i32) -> Result<(), Error> {
    let mode = sys::VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING;
    // SAFETY: the domain is borrowed for the call, which only reads its pointer and allocates
    // nothing the caller must free.
    let result = unsafe { sys::virDomainStartDirtyRateCalc(domain.as_ptr(), seconds, mode) };
    if result < 0 {
        // libvirt's error is per thread and set by the call that just failed.
        return Err(Error::last_error());
    }
    Ok(())
}

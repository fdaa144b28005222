//! libvirt's default event loop, run on a thread of its own. Remote connections need it for
//! keepalive (without one, `virConnectSetKeepAlive` fails), so it starts with the first of them.
//! Local sockets go without: every call on a connection it watches wakes its thread twice, and a
//! closed daemon socket shows anyway, as the next call's error.

use std::sync::Once;
use std::sync::mpsc;
use std::time::Duration;

/// The event thread's name, as `/proc/<pid>/task/<tid>/comm` shows it.
pub const THREAD_NAME: &str = "libvirt-events";

/// Registers the event loop and starts its thread, once per process. libvirt only hands it the
/// connections opened after registration, so this runs before any connection is opened.
pub fn ensure_running() {
    static START: Once = Once::new();
    START.call_once(|| {
        let (registered, wait) = mpsc::channel();
        // Registered on the thread that runs it, so that a failed spawn leaves none registered
        // and never running: libvirt would then still work, only without keepalive.
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let result = virt::event::event_register_default_impl();
                let ok = result.is_ok();
                let _ = registered.send(result);
                if ok {
                    run();
                }
            });
        let failure = match spawned.map(|_| wait.recv()) {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(format!("cannot register it: {e}")),
            Ok(Err(_)) => Some("its thread died".to_owned()),
            Err(e) => Some(format!("cannot start its thread: {e}")),
        };
        if let Some(error) = failure {
            tracing::error!(%error, "no libvirt event loop, so no keepalive");
        }
    });
}

fn run() -> ! {
    loop {
        // Blocks in poll() until a watched socket or a timer needs attention.
        if let Err(e) = virt::event::event_run_default_impl() {
            tracing::warn!(error = %e, "libvirt event loop iteration failed");
            // An error that repeats at once must not turn into a busy loop.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

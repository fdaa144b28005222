//! One blocking connection to one libvirt host, and the seed's fields of every domain on it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;

use super::bulk_stats::{self, StatsGroups, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT};
use super::{Cycle, LibvirtError, StatsCycle, event_loop};
use crate::configuration::{CollectionConfig, HostConfig};
use crate::domain_filter::DomainFilter;
use crate::extended::{DomainStatsSample, StatsSample};
use crate::sample::{DomainSample, HostSample, NodeSample, VmState};

/// Keepalive on remote connections: a ping after 5 s without traffic, the connection closed (and
/// any call blocked on it failed) after 5 unanswered ones.
const KEEPALIVE_INTERVAL_SEC: i32 = 5;
const KEEPALIVE_COUNT: u32 = 5;

pub struct Sampler {
    uri: Arc<str>,
    remote: bool,
    name: Option<Arc<str>>,
    connection: Option<Connection>,
    filter: Arc<DomainFilter>,
    groups: StatsGroups,
    host_metrics: bool,
    /// Counts finished libvirt calls, so a watchdog can tell a slow cycle from a stuck call.
    progress: Arc<AtomicU64>,
}

struct Connection {
    connect: Connect,
    host: Arc<str>,
}

impl Sampler {
    pub fn new(host: &HostConfig, collection: &CollectionConfig, progress: Arc<AtomicU64>) -> Self {
        Sampler {
            uri: host.uri.as_str().into(),
            remote: is_remote(&host.uri),
            name: host.name.as_deref().map(Arc::from),
            connection: None,
            filter: Arc::new(collection.filter.clone()),
            groups: collection.stats_groups,
            host_metrics: collection.host_metrics,
            progress,
        }
    }

    /// Reads every domain, active or not. A failed list drops the connection, so the next cycle
    /// opens a new one.
    pub fn sample(&mut self) -> Result<Cycle, LibvirtError> {
        let started = Instant::now();
        let progress = self.progress.clone();
        let filter = self.filter.clone();
        let host_metrics = self.host_metrics;
        let connection = self.connection()?;
        let host = connection.host.clone();
        let listed = connection.connect.list_all_domains(0);
        progress.fetch_add(1, Ordering::Relaxed);
        let domains = match listed {
            Ok(domains) => domains,
            Err(e) => {
                self.disconnect();
                return Err(call_error("virConnectListAllDomains", e));
            }
        };
        let mut samples = Vec::with_capacity(domains.len());
        let mut domain_errors = Vec::new();
        let mut vanished = 0;
        for domain in &domains {
            // The name is cached client-side: filtering costs no round trip.
            if !filter.is_open() && !domain.name().is_ok_and(|name| filter.allows(&name)) {
                continue;
            }
            match read(domain, &progress) {
                Ok(sample) => samples.push(sample),
                // It went away between listing and reading: not an error.
                Err(e) if e.code().is_known_and(|c| c == ErrorNumber::NoDomain) => vanished += 1,
                Err(e) => domain_errors.push(format!(
                    "{}: {}",
                    domain.name().unwrap_or_default(),
                    e.message()
                )),
            }
        }
        let node = host_metrics.then(|| node(&connection.connect, &progress, &samples, started));
        let duration = started.elapsed();
        Ok(Cycle {
            sample: HostSample {
                uri: self.uri.clone(),
                host,
                domains: samples,
                node,
            },
            domain_errors,
            vanished,
            duration,
        })
    }

    /// The configured stats groups of every (filtered) domain, in one bulk call with NOWAIT: a
    /// domain whose job lock is held gives what it can rather than stalling the host's cycle.
    pub fn stats(&mut self) -> Result<StatsCycle, LibvirtError> {
        let started = Instant::now();
        let progress = self.progress.clone();
        let groups = self.groups;
        let connection = self.connection()?;
        let host = connection.host.clone();
        let stats = bulk_stats::all_domain_stats(
            &connection.connect,
            groups,
            VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT,
        );
        progress.fetch_add(1, Ordering::Relaxed);
        let duration = started.elapsed();
        let stats = stats.map_err(|e| call_error("virConnectGetAllDomainStats", e))?;
        let timestamp_ns = now_ns();
        Ok(StatsCycle {
            sample: StatsSample {
                uri: self.uri.clone(),
                host,
                domains: stats
                    .iter()
                    .filter(|d| !d.uuid.is_empty() && self.filter.allows(&d.name))
                    .map(|d| DomainStatsSample::from_bulk(d, timestamp_ns))
                    .collect(),
            },
            duration,
        })
    }

    fn connection(&mut self) -> Result<&Connection, LibvirtError> {
        let reusable = match self.connection.take() {
            Some(connection) => {
                let alive = connection.connect.is_alive();
                self.progress.fetch_add(1, Ordering::Relaxed);
                if matches!(alive, Ok(true)) {
                    Some(connection)
                } else {
                    close(connection.connect);
                    None
                }
            }
            None => None,
        };
        let connection = match reusable {
            Some(connection) => connection,
            None => self.open()?,
        };
        Ok(self.connection.insert(connection))
    }

    fn open(&self) -> Result<Connection, LibvirtError> {
        let connect_error = |e: virt::error::Error| LibvirtError::Connect {
            uri: self.uri.to_string(),
            message: e.message().to_owned(),
        };
        event_loop::ensure_running();
        // Read-only: collection never changes a domain.
        let connect = Connect::open_read_only(Some(&self.uri)).map_err(connect_error)?;
        self.progress.fetch_add(1, Ordering::Relaxed);
        if self.remote {
            // Frees a call blocked on a peer that went silent, which no socket error may ever do.
            let keepalive = connect.set_keep_alive(KEEPALIVE_INTERVAL_SEC, KEEPALIVE_COUNT);
            self.progress.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = keepalive {
                let error = e.message();
                tracing::warn!(uri = %self.uri, error, "no keepalive on this connection");
            }
        }
        let host = match &self.name {
            Some(name) => name.clone(),
            None => {
                let hostname = connect.hostname();
                self.progress.fetch_add(1, Ordering::Relaxed);
                match hostname {
                    Ok(hostname) => hostname.into(),
                    Err(e) => {
                        close(connect);
                        return Err(connect_error(e));
                    }
                }
            }
        };
        Ok(Connection { connect, host })
    }

    fn disconnect(&mut self) {
        if let Some(connection) = self.connection.take() {
            close(connection.connect);
        }
    }
}

/// A URI naming another machine, or a transport other than a local socket (ssh, tls, tcp, ext…).
fn is_remote(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    let transport = url.scheme().split_once('+').map(|(_, transport)| transport);
    url.host_str().is_some_and(|host| !host.is_empty())
        || transport.is_some_and(|transport| transport != "unix")
}

/// `host_metrics`: two calls for the host itself, then the cycle's domains and duration. A driver
/// that cannot say (the call fails) leaves its fields out; that is not a collection error.
fn node(
    connect: &Connect,
    progress: &AtomicU64,
    domains: &[DomainSample],
    started: Instant,
) -> NodeSample {
    let info = connect.node_info();
    progress.fetch_add(1, Ordering::Relaxed);
    let free = connect.free_memory();
    progress.fetch_add(1, Ordering::Relaxed);
    let mut node = NodeSample {
        cpus: info.as_ref().ok().map(|i| i.cpus),
        memory_total_kb: info.as_ref().ok().map(|i| i.memory),
        memory_free_kb: free.ok().map(|bytes| bytes / 1024),
        domains: 0,
        domains_running: 0,
        domains_paused: 0,
        domains_stopped: 0,
        domains_other: 0,
        collection_duration_sec: started.elapsed().as_secs_f64(),
        timestamp_ns: now_ns(),
    };
    node.count(domains);
    node
}

fn read(domain: &Domain, progress: &AtomicU64) -> Result<DomainSample, virt::error::Error> {
    // Name, UUID and id are cached client-side; `info` is the one round trip per domain.
    let info = domain.info();
    progress.fetch_add(1, Ordering::Relaxed);
    let info = info?;
    Ok(DomainSample {
        id: domain.id(),
        name: domain.name()?,
        uuid: domain.uuid_string()?,
        state: match info.state {
            Enum::Known(state) => vm_state(state),
            Enum::Unknown(_) => VmState::Unknown,
        },
        cpu_count: info.nr_virt_cpu,
        memory_max_kb: info.max_mem,
        memory_used_kb: info.memory,
        cputime_ns: info.cpu_time,
        timestamp_ns: now_ns(),
    })
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// `virt` panics when `virConnectClose` fails; a connection being thrown away is not worth a thread.
fn close(connect: Connect) {
    let _ = catch_unwind(AssertUnwindSafe(|| drop(connect)));
}

fn call_error(call: &'static str, e: virt::error::Error) -> LibvirtError {
    LibvirtError::Call {
        call,
        message: e.message().to_owned(),
    }
}

fn vm_state(state: DomainState) -> VmState {
    match state {
        DomainState::NoState => VmState::NoState,
        DomainState::Running => VmState::Running,
        DomainState::Blocked => VmState::Blocked,
        DomainState::Paused => VmState::Paused,
        DomainState::Shutdown => VmState::Shutdown,
        DomainState::Shutoff => VmState::Stopped,
        DomainState::Crashed => VmState::Crashed,
        DomainState::PMSuspended => VmState::PmSuspended,
    }
}

fn now_ns() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::is_remote;

    #[test]
    fn remote_uris_name_a_host_or_a_network_transport() {
        for uri in [
            "qemu+tcp://kvm2/system",
            "qemu+ssh://root@kvm2:2222/system?keyfile=/k",
            "qemu+tls://kvm2.example.com/system",
            "qemu://kvm2/system",
            "test+tcp://127.0.0.1:16509/default",
            "qemu+ext:///system?command=/opt/tunnel",
        ] {
            assert!(is_remote(uri), "{uri}");
        }
        for uri in [
            "qemu:///system",
            "qemu:///session",
            "test:///default",
            "test+unix:///tmp/node.xml?socket=/tmp/s/libvirt-sock",
            "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
            "not a uri",
        ] {
            assert!(!is_remote(uri), "{uri}");
        }
    }
}

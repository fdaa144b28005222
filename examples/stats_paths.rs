//! What reading the seed's fields (list + info), the host's, and the extended groups (cpu_total,
//! vcpu, balloon, block, interface) of every domain costs, path by path, against real guests: wall time, and CPU of this process, of libvirtd and
//! of the guests' QEMU processes. Every candidate runs once per round, in a new random order each
//! round, so that load from elsewhere falls on all of them alike; medians over the rounds.
//!
//!     stats_paths [--uri URI] [--rounds N] [--prefix NAME_PREFIX] [--libvirtd-pid PID]
//!                 [--exporter BIN --exporter-port PORT] [--only SUBSTRING]... [--event-loop]
//!
//! Domains: those whose name starts with NAME_PREFIX (default: all). The bulk calls over the
//! whole host read every domain; the others read only these. With `--exporter`, Debian's
//! prometheus-libvirt-exporter is started on 127.0.0.1:PORT and one scrape is one more candidate
//! (its CPU is the exporter's own). With `--event-loop`, libvirt's default event loop is
//! registered and run before any connection opens, as the service does for remote hosts. Run as
//! root (reads /proc of libvirtd and QEMU).
//!
//! CPU: per cycle from the schedulers' nanosecond counters (this process: CLOCK_PROCESS_CPUTIME_ID;
//! libvirtd, QEMU, the exporter: the sum of /proc/PID/task/*/schedstat), medians; and, as a check,
//! /proc/PID/stat utime+stime summed over all rounds, per cycle (10 ms ticks, so only the mean is
//! meaningful).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::Domain;
use vmtelemetry::libvirt::bulk_stats::{
    self, StatsGroups, VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING,
    VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT,
};

const NOWAIT: u32 = VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;

/// The five groups the service's `stats_groups` can name.
const FIVE: StatsGroups = StatsGroups::from_bits_retain(
    StatsGroups::CPU_TOTAL.bits()
        | StatsGroups::VCPU.bits()
        | StatsGroups::BALLOON.bits()
        | StatsGroups::BLOCK.bits()
        | StatsGroups::INTERFACE.bits(),
);

/// Per-domain API calls, one kind per group.
#[derive(Clone, Copy, PartialEq)]
enum Call {
    /// virDomainGetInfo: the seed's fields.
    Info,
    /// virDomainGetCPUStats(-1): cpu.time/user/system (`virt` asks the count first: 2 calls).
    CpuStats,
    /// The same, room for 3 parameters given at once: 1 call.
    CpuStats1,
    /// virDomainGetVcpus: per vCPU state and time.
    Vcpus,
    /// virDomainMemoryStats: the balloon's guest statistics and rss.
    MemoryStats,
    /// virDomainBlockStats per disk: requests, bytes, errors.
    BlockStats,
    /// virDomainGetBlockInfo per disk: capacity, allocation, physical.
    BlockInfo,
    /// virDomainInterfaceStats per NIC.
    InterfaceStats,
}

enum Path {
    /// virConnectGetAllDomainStats: every domain on the host.
    Bulk(StatsGroups, u32),
    /// virDomainListGetStats on k slices of the domains, from k threads, over one connection or
    /// k connections. The domains are listed each cycle (on each connection).
    Split {
        groups: StatsGroups,
        flags: u32,
        k: usize,
        own_connections: bool,
    },
    /// Per-domain calls, the domains split over k threads on one connection; and, if `groups`
    /// is not empty, those groups first, in one virDomainListGetStats call per thread.
    PerDomain {
        calls: Vec<Call>,
        k: usize,
        groups: StatsGroups,
    },
    /// list + info over k connections side by side, each listing its own domains and reading
    /// every k-th of them in UUID order.
    SeedConnections(usize),
    /// The service's block counters between the sizes' cycles: per thread, a slice of the
    /// domains, the interface group of it in one virDomainListGetStats call (NOWAIT) and
    /// virDomainBlockStats per disk, the bulk call first or last; over one connection or k.
    DiskCounters {
        k: usize,
        bulk_first: bool,
        own_connections: bool,
    },
    /// virNodeGetInfo + virNodeGetFreeMemory: what host_metrics asks of the host.
    Node,
    /// The service's full cycle against the exporter's fields: list + info, then list + bulk
    /// block,interface (NOWAIT) from 4 threads; or, `side_by_side`, one list, then the info calls
    /// from one thread beside the 4 bulk calls.
    FullCycle { side_by_side: bool },
    /// One scrape of prometheus-libvirt-exporter.
    Exporter,
}

struct Candidate {
    name: String,
    path: Path,
    samples: Vec<Sample>,
    /// Ticks over all rounds (this process / exporter, libvirtd).
    ticks_own: u64,
    ticks_libvirtd: u64,
    /// What the last run read: domains, parameters (or metric lines).
    read: (usize, usize),
}

#[derive(Clone, Copy, Default)]
struct Sample {
    wall_ms: f64,
    own_ms: f64,
    libvirtd_ms: f64,
    qemu_ms: f64,
}

struct Setup {
    prefix: String,
    main: Connect,
    /// Extra connections for the k-connection splits.
    extra: Vec<Connect>,
    /// Disk targets and NIC names per domain name.
    devices: HashMap<String, (Vec<String>, Vec<String>)>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stats_paths: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut uri = "qemu:///system".to_owned();
    let mut rounds = 25;
    let mut prefix = String::new();
    let mut libvirtd_pid = None;
    let mut exporter_bin = None;
    let mut exporter_port = 18377u16;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--uri" => uri = value()?,
            "--rounds" => rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--prefix" => prefix = value()?,
            "--libvirtd-pid" => {
                libvirtd_pid = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--libvirtd-pid: {e}"))?,
                )
            }
            "--exporter" => exporter_bin = Some(value()?),
            "--exporter-port" => {
                exporter_port = value()?
                    .parse()
                    .map_err(|e| format!("--exporter-port: {e}"))?
            }
            "--only" => only.push(value()?),
            // libvirt's event loop, registered before any connection (the service's default).
            "--event-loop" => {
                virt::event::event_register_default_impl().map_err(|e| e.to_string())?;
                std::thread::spawn(|| {
                    loop {
                        let _ = virt::event::event_run_default_impl();
                    }
                });
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let libvirtd_pid: u32 = match libvirtd_pid {
        Some(pid) => pid,
        None => std::fs::read_to_string("/run/libvirtd.pid")
            .map_err(|e| format!("/run/libvirtd.pid: {e} (give --libvirtd-pid)"))?
            .trim()
            .parse()
            .map_err(|e| format!("/run/libvirtd.pid: {e}"))?,
    };

    virt::error::clear_error_callback();
    let open = || Connect::open_read_only(Some(&uri)).map_err(|e| format!("{uri}: {e}"));
    let main = open()?;
    let extra = (0..6).map(|_| open()).collect::<Result<Vec<_>, _>>()?;
    let mut setup = Setup {
        prefix,
        main,
        extra,
        devices: HashMap::new(),
    };
    let doms = setup.domains(&setup.main)?;
    if doms.is_empty() {
        return Err(format!("no domain named {}* on {uri}", setup.prefix));
    }
    // Device names, once: what a service would keep from the domain XML or a first bulk call.
    for d in bulk_stats::list_domain_stats(&doms, StatsGroups::BLOCK | StatsGroups::INTERFACE, 0)
        .map_err(|e| e.to_string())?
    {
        let names = |group: &str| {
            let n = d.get_u64(&format!("{group}.count")).unwrap_or(0);
            (0..n)
                .filter_map(|i| d.get_str(&format!("{group}.{i}.name")).map(str::to_owned))
                .collect::<Vec<_>>()
        };
        setup
            .devices
            .insert(d.name.clone(), (names("block"), names("net")));
    }
    let qemu_pids: Vec<u32> = doms
        .iter()
        .filter_map(|d| {
            let name = d.name().ok()?;
            std::fs::read_to_string(format!("/run/libvirt/qemu/{name}.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    let all_on_host = setup
        .main
        .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        .map_err(|e| e.to_string())?
        .len();
    println!(
        "{} domains named {}* ({} QEMU pids found), {all_on_host} active on the host; libvirtd pid {libvirtd_pid}; {rounds} rounds",
        doms.len(),
        setup.prefix,
        qemu_pids.len(),
    );
    drop(doms);
    let idle_from = Counters::read(None, libvirtd_pid, &qemu_pids, false);
    std::thread::sleep(Duration::from_secs(2));
    let idle_to = Counters::read(None, libvirtd_pid, &qemu_pids, true);
    // QEMU's own CPU while nobody asks it anything (guest timers, firmware), per ms of wall.
    let qemu_idle_per_ms = (idle_to.qemu_ns - idle_from.qemu_ns) as f64 / 1e6 / 2000.0;
    println!(
        "idle: QEMU {:.1} ms CPU/s (all guests), libvirtd {:.1} ms CPU/s",
        qemu_idle_per_ms * 1000.0,
        (idle_to.libvirtd_ns - idle_from.libvirtd_ns) as f64 / 1e6 / 2.0
    );

    let mut candidates = candidates(exporter_bin.is_some());
    if !only.is_empty() {
        candidates.retain(|c| only.iter().any(|o| c.name.contains(o.as_str())));
    }
    let mut exporter = match &exporter_bin {
        Some(bin) => Some(Exporter::start(bin, exporter_port, &uri)?),
        None => None,
    };

    // Warm-up: one run of each, not recorded.
    for c in &mut candidates {
        c.read = run_path(&setup, &c.path, exporter.as_mut())?;
    }
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    for round in 0..rounds {
        fastrand::shuffle(&mut order);
        for &i in &order {
            let c = &mut candidates[i];
            // Let libvirtd and the guests settle from the previous candidate.
            std::thread::sleep(Duration::from_millis(30));
            let own_pid = match (&c.path, &exporter) {
                (Path::Exporter, Some(e)) => Some(e.child.id()),
                _ => None,
            };
            let before = Counters::read(own_pid, libvirtd_pid, &qemu_pids, false);
            let started = Instant::now();
            c.read = run_path(&setup, &c.path, exporter.as_mut())?;
            let wall = started.elapsed();
            let after = Counters::read(own_pid, libvirtd_pid, &qemu_pids, true);
            c.samples.push(Sample {
                wall_ms: wall.as_secs_f64() * 1e3,
                own_ms: (after.own_ns - before.own_ns) as f64 / 1e6,
                libvirtd_ms: (after.libvirtd_ns - before.libvirtd_ns) as f64 / 1e6,
                qemu_ms: (after.qemu_ns - before.qemu_ns) as f64 / 1e6,
            });
            c.ticks_own += after.own_ticks - before.own_ticks;
            c.ticks_libvirtd += after.libvirtd_ticks - before.libvirtd_ticks;
        }
        eprint!("\rround {}/{rounds}", round + 1);
    }
    eprintln!();
    if let Some(e) = exporter.take() {
        e.stop();
    }

    let hz = 100.0; // USER_HZ on Linux
    println!(
        "\n| path | domains, params | wall ms | client CPU ms | libvirtd CPU ms | client + libvirtd ms | QEMU CPU ms (less idle) | ticks: client + libvirtd ms (mean) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for c in &candidates {
        let med = |f: fn(&Sample) -> f64| median(c.samples.iter().map(f).collect());
        let n = c.samples.len().max(1) as f64;
        println!(
            "| {} | {}, {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} + {:.1} |",
            c.name,
            c.read.0,
            c.read.1,
            med(|s| s.wall_ms),
            med(|s| s.own_ms),
            med(|s| s.libvirtd_ms),
            med(|s| s.own_ms + s.libvirtd_ms),
            median(
                c.samples
                    .iter()
                    .map(|s| s.qemu_ms - qemu_idle_per_ms * s.wall_ms)
                    .collect()
            ),
            c.ticks_own as f64 * 1e3 / hz / n,
            c.ticks_libvirtd as f64 * 1e3 / hz / n,
        );
    }
    Ok(())
}

fn candidates(exporter: bool) -> Vec<Candidate> {
    use Call::*;
    let g = |name: &str| match name {
        "cpu_total" => StatsGroups::CPU_TOTAL,
        "vcpu" => StatsGroups::VCPU,
        "balloon" => StatsGroups::BALLOON,
        "block" => StatsGroups::BLOCK,
        _ => StatsGroups::INTERFACE,
    };
    let mut paths: Vec<(String, Path)> = vec![
        ("bulk 5 groups".into(), Path::Bulk(FIVE, 0)),
        ("bulk 5 groups NOWAIT".into(), Path::Bulk(FIVE, NOWAIT)),
        (
            "bulk 5 groups NOWAIT|BACKING".into(),
            Path::Bulk(FIVE, NOWAIT | VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING),
        ),
        (
            "bulk state only NOWAIT".into(),
            Path::Bulk(StatsGroups::STATE, NOWAIT),
        ),
    ];
    for name in ["cpu_total", "vcpu", "balloon", "block", "interface"] {
        paths.push((format!("bulk {name} NOWAIT"), Path::Bulk(g(name), NOWAIT)));
    }
    for (name, calls) in [
        ("cpu_total (2 calls)", vec![CpuStats]),
        ("cpu_total (1 call)", vec![CpuStats1]),
        ("vcpu", vec![Vcpus]),
        ("balloon", vec![MemoryStats]),
        ("block", vec![BlockStats]),
        ("block + block_info", vec![BlockStats, BlockInfo]),
        ("interface", vec![InterfaceStats]),
    ] {
        paths.push((
            format!("per-domain {name}"),
            Path::PerDomain {
                calls,
                k: 1,
                groups: StatsGroups::empty(),
            },
        ));
    }
    for k in [1, 2, 3, 4, 6] {
        for own_connections in [false, true] {
            if k == 1 && own_connections {
                continue;
            }
            let conns = if own_connections {
                format!("{k} connections")
            } else {
                "1 connection".into()
            };
            paths.push((
                format!("split 5 groups NOWAIT, {k} threads, {conns}"),
                Path::Split {
                    groups: FIVE,
                    flags: NOWAIT,
                    k,
                    own_connections,
                },
            ));
        }
    }
    for k in [1, 2, 4] {
        paths.push((
            format!("per-domain all 5 (exporter style), {k} threads"),
            Path::PerDomain {
                calls: vec![
                    CpuStats1,
                    Vcpus,
                    MemoryStats,
                    BlockStats,
                    BlockInfo,
                    InterfaceStats,
                ],
                k,
                groups: StatsGroups::empty(),
            },
        ));
    }
    // The same fields as the five groups, without the vCPU query-stats that cpu_total makes
    // for its haltpoll times: cpu_total per domain, the rest listed.
    let four =
        StatsGroups::VCPU | StatsGroups::BALLOON | StatsGroups::BLOCK | StatsGroups::INTERFACE;
    // And without vcpu's query-stats either (vcpu wait and delay lost): vcpus per domain.
    let three = StatsGroups::BALLOON | StatsGroups::BLOCK | StatsGroups::INTERFACE;
    for k in [1, 2, 3, 4] {
        paths.push((
            format!("hybrid A: list(vcpu, balloon, block, interface) + per-domain cpu_total, {k} threads"),
            Path::PerDomain {
                calls: vec![CpuStats1],
                k,
                groups: four,
            },
        ));
        paths.push((
            format!("hybrid B: list(balloon, block, interface) + per-domain cpu_total, vcpus, {k} threads"),
            Path::PerDomain {
                calls: vec![CpuStats1, Vcpus],
                k,
                groups: three,
            },
        ));
    }
    paths.push(("node info + free memory".into(), Path::Node));
    for k in [2, 3, 4, 6] {
        paths.push((
            format!("seed: list + info, {k} connections"),
            Path::SeedConnections(k),
        ));
    }
    for k in [1, 2, 4] {
        paths.push((
            format!("seed: list + info, {k} threads"),
            Path::PerDomain {
                calls: vec![Info],
                k,
                groups: StatsGroups::empty(),
            },
        ));
        paths.push((
            format!("exporter's fields per domain: list + info, block, interface, {k} threads"),
            Path::PerDomain {
                calls: vec![Info, BlockStats, InterfaceStats],
                k,
                groups: StatsGroups::empty(),
            },
        ));
        paths.push((
            format!("per-domain block + interface, {k} threads"),
            Path::PerDomain {
                calls: vec![BlockStats, InterfaceStats],
                k,
                groups: StatsGroups::empty(),
            },
        ));
        // The floor of issue #33's target: the block counters alone, by their cheapest call.
        paths.push((
            format!("block counters alone: per disk, {k} threads"),
            Path::PerDomain {
                calls: vec![BlockStats],
                k,
                groups: StatsGroups::empty(),
            },
        ));
        paths.push((
            format!("per-domain block + bulk interface, {k} threads"),
            Path::PerDomain {
                calls: vec![BlockStats],
                k,
                groups: StatsGroups::INTERFACE,
            },
        ));
        paths.push((
            format!("split block,interface NOWAIT, {k} threads, 1 connection"),
            Path::Split {
                groups: StatsGroups::BLOCK | StatsGroups::INTERFACE,
                flags: NOWAIT,
                k,
                own_connections: false,
            },
        ));
    }
    for (bulk_first, own_connections) in [(true, false), (false, false), (true, true)] {
        let order = if bulk_first {
            "bulk interface, then per disk"
        } else {
            "per disk, then bulk interface"
        };
        let conns = if own_connections { 4 } else { 1 };
        paths.push((
            format!("block counters: {order}, 4 threads, {conns} connection(s)"),
            Path::DiskCounters {
                k: 4,
                bulk_first,
                own_connections,
            },
        ));
    }
    paths.push((
        "full cycle: list + info, then list + bulk block,interface NOWAIT, 4 threads".into(),
        Path::FullCycle {
            side_by_side: false,
        },
    ));
    paths.push((
        "full cycle: one list, info beside bulk block,interface NOWAIT, 4 threads".into(),
        Path::FullCycle { side_by_side: true },
    ));
    if exporter {
        paths.push(("prometheus-libvirt-exporter scrape".into(), Path::Exporter));
    }
    paths
        .into_iter()
        .map(|(name, path)| Candidate {
            name,
            path,
            samples: Vec::new(),
            ticks_own: 0,
            ticks_libvirtd: 0,
            read: (0, 0),
        })
        .collect()
}

impl Setup {
    fn domains(&self, connect: &Connect) -> Result<Vec<Domain>, String> {
        let mut doms = connect
            .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            .map_err(|e| format!("list: {e}"))?;
        // Names are cached client-side: no round trip.
        doms.retain(|d| d.name().is_ok_and(|n| n.starts_with(&self.prefix)));
        Ok(doms)
    }
}

/// Runs one cycle of `path`: (domains read, parameters or metric lines read).
fn run_path(
    setup: &Setup,
    path: &Path,
    exporter: Option<&mut Exporter>,
) -> Result<(usize, usize), String> {
    match *path {
        Path::Bulk(groups, flags) => {
            let stats = bulk_stats::all_domain_stats(&setup.main, groups, flags)
                .map_err(|e| format!("bulk: {e}"))?;
            Ok(count(&stats))
        }
        Path::Split {
            groups,
            flags,
            k,
            own_connections,
        } => {
            if !own_connections {
                return split_stats(setup.domains(&setup.main)?, groups, flags, k);
            }
            let results: Vec<Result<(usize, usize), String>> = std::thread::scope(|s| {
                let handles: Vec<_> = setup.extra[..k]
                    .iter()
                    .enumerate()
                    .map(|(i, conn)| {
                        s.spawn(move || {
                            let doms = setup.domains(conn)?;
                            let mine: Vec<Domain> = slice(doms, k, i);
                            let stats = bulk_stats::list_domain_stats(&mine, groups, flags)
                                .map_err(|e| format!("list stats: {e}"))?;
                            Ok(count(&stats))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            sum(results)
        }
        Path::FullCycle { side_by_side } => {
            let groups = StatsGroups::BLOCK | StatsGroups::INTERFACE;
            let doms = setup.domains(&setup.main)?;
            if side_by_side {
                std::thread::scope(|s| {
                    let seed = s.spawn(|| info_each(&doms));
                    let stats = split_stats(doms.clone(), groups, NOWAIT, 4);
                    seed.join().unwrap()?;
                    stats
                })
            } else {
                info_each(&doms)?;
                split_stats(setup.domains(&setup.main)?, groups, NOWAIT, 4)
            }
        }
        Path::PerDomain {
            ref calls,
            k,
            groups,
        } => {
            let doms = setup.domains(&setup.main)?;
            let mut total = (doms.len(), 0);
            let chunks = chunks(doms, k);
            let results: Vec<Result<usize, String>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunks
                    .iter()
                    .map(|chunk| {
                        s.spawn(move || {
                            let mut n = 0;
                            if !groups.is_empty() {
                                let stats = bulk_stats::list_domain_stats(chunk, groups, NOWAIT)
                                    .map_err(|e| format!("list stats: {e}"))?;
                                n += count(&stats).1;
                            }
                            for d in chunk {
                                n += per_domain(setup, d, calls)?;
                            }
                            Ok(n)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in results {
                total.1 += r?;
            }
            Ok(total)
        }
        Path::DiskCounters {
            k,
            bulk_first,
            own_connections,
        } => {
            let main = setup.domains(&setup.main)?;
            let results: Vec<Result<(usize, usize), String>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..k)
                    .map(|i| {
                        let listed = (!own_connections).then(|| slice(main.clone(), k, i));
                        s.spawn(move || {
                            let mine = match listed {
                                Some(mine) => mine,
                                None => slice(setup.domains(&setup.extra[i])?, k, i),
                            };
                            disk_counters(setup, &mine, bulk_first)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            sum(results)
        }
        Path::SeedConnections(k) => {
            let results: Vec<Result<(usize, usize), String>> = std::thread::scope(|s| {
                let handles: Vec<_> = setup.extra[..k]
                    .iter()
                    .enumerate()
                    .map(|(i, conn)| {
                        s.spawn(move || {
                            let mut read = (0, 0);
                            let mut doms = setup.domains(conn)?;
                            // The same domains on every connection: every k-th by UUID is mine.
                            doms.sort_by_cached_key(|d| d.uuid().ok());
                            for d in doms.iter().skip(i).step_by(k) {
                                read.0 += 1;
                                read.1 += per_domain(setup, d, &[Call::Info])?;
                            }
                            Ok(read)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            sum(results)
        }
        Path::Node => {
            let info = setup
                .main
                .node_info()
                .map_err(|e| format!("node info: {e}"))?;
            setup
                .main
                .free_memory()
                .map_err(|e| format!("free memory: {e}"))?;
            Ok((0, usize::try_from(info.cpus).unwrap_or(0)))
        }
        Path::Exporter => {
            let exporter = exporter.ok_or("no exporter")?;
            let body = exporter.scrape()?;
            let lines = body.lines().filter(|l| l.starts_with("libvirt_")).count();
            let domains = body
                .lines()
                .filter(|l| l.starts_with("libvirt_domain_info_virtual_cpus{"))
                .count();
            Ok((domains, lines))
        }
    }
}

/// The interface group of `doms` in one bulk call and their disks' counters one by one, in
/// the order asked.
fn disk_counters(
    setup: &Setup,
    doms: &[Domain],
    bulk_first: bool,
) -> Result<(usize, usize), String> {
    let bulk = || {
        bulk_stats::list_domain_stats(doms, StatsGroups::INTERFACE, NOWAIT)
            .map(|stats| count(&stats).1)
            .map_err(|e| format!("list stats: {e}"))
    };
    let mut n = if bulk_first { bulk()? } else { 0 };
    for d in doms {
        n += per_domain(setup, d, &[Call::BlockStats])?;
    }
    if !bulk_first {
        n += bulk()?;
    }
    Ok((doms.len(), n))
}

/// The values one domain's calls gave.
fn per_domain(setup: &Setup, d: &Domain, calls: &[Call]) -> Result<usize, String> {
    let name = d.name().map_err(|e| e.to_string())?;
    let (disks, nics) = setup
        .devices
        .get(&name)
        .ok_or_else(|| format!("{name}: devices unknown"))?;
    let e = |call: &'static str| {
        let name = name.clone();
        move |err: virt::error::Error| format!("{name}: {call}: {err}")
    };
    let mut n = 0;
    for call in calls {
        match call {
            Call::Info => {
                d.info().map_err(e("virDomainGetInfo"))?;
                n += 5
            }
            Call::CpuStats => {
                n += d
                    .cpu_stats(-1, 1, 0)
                    .map_err(e("virDomainGetCPUStats"))?
                    .len()
                    * 3
            }
            Call::CpuStats1 => n += cpu_total(d).map_err(e("virDomainGetCPUStats"))?,
            Call::Vcpus => n += vcpus(d).map_err(e("virDomainGetVcpus"))? * 3,
            Call::MemoryStats => n += d.memory_stats(0).map_err(e("virDomainMemoryStats"))?.len(),
            Call::BlockStats => {
                for disk in disks {
                    d.block_stats(disk).map_err(e("virDomainBlockStats"))?;
                    n += 5;
                }
            }
            Call::BlockInfo => {
                for disk in disks {
                    d.block_info(disk, 0).map_err(e("virDomainGetBlockInfo"))?;
                    n += 3;
                }
            }
            Call::InterfaceStats => {
                for nic in nics {
                    d.interface_stats(nic)
                        .map_err(e("virDomainInterfaceStats"))?;
                    n += 8;
                }
            }
        }
    }
    Ok(n)
}

/// virDomainGetVcpus, which `virt` 0.5 does not wrap: the number of vCPUs read.
fn vcpus(d: &Domain) -> Result<usize, virt::error::Error> {
    const MAX: usize = 64;
    // SAFETY: plain-data structs that libvirt fills in; all-zero is a valid value for them.
    let mut info: [virt::sys::virVcpuInfo; MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: `d` is alive for the call; `info` holds MAX entries; no CPU maps asked for (null,
    // length 0).
    let n = unsafe {
        virt::sys::virDomainGetVcpus(
            d.as_ptr(),
            info.as_mut_ptr(),
            MAX as i32,
            std::ptr::null_mut(),
            0,
        )
    };
    usize::try_from(n).map_err(|_| virt::error::Error::last_error())
}

/// virDomainGetCPUStats for the whole domain in one call (`virt` 0.5 makes two): the number
/// of parameters read (cpu_time, user_time, system_time).
fn cpu_total(d: &Domain) -> Result<usize, virt::error::Error> {
    const ROOM: usize = 8;
    // SAFETY: plain-data structs that libvirt fills in; all-zero is a valid value for them.
    let mut params: [virt::sys::virTypedParameter; ROOM] = unsafe { std::mem::zeroed() };
    // SAFETY: `d` is alive for the call; `params` has room for ROOM parameters, all numeric for
    // this call (nothing to free).
    let n = unsafe {
        virt::sys::virDomainGetCPUStats(d.as_ptr(), params.as_mut_ptr(), ROOM as u32, -1, 1, 0)
    };
    usize::try_from(n).map_err(|_| virt::error::Error::last_error())
}

/// The i-th of k near-equal slices of `doms` (in listing order).
/// Domains and parameters read, over every thread's result; the first failure fails the lot.
/// Domains and parameters a bulk call read.
fn count(stats: &[bulk_stats::DomainStats]) -> (usize, usize) {
    (
        stats.len(),
        stats.iter().map(|d| d.params.len()).sum::<usize>(),
    )
}

/// virDomainListGetStats on k slices of `doms`, from k threads over their one connection.
fn split_stats(
    doms: Vec<Domain>,
    groups: StatsGroups,
    flags: u32,
    k: usize,
) -> Result<(usize, usize), String> {
    let chunks = chunks(doms, k);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || {
                    let stats = bulk_stats::list_domain_stats(chunk, groups, flags)
                        .map_err(|e| format!("list stats: {e}"))?;
                    Ok(count(&stats))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    sum(results)
}

/// virDomainGetInfo of each of `doms`, one after the other.
fn info_each(doms: &[Domain]) -> Result<(), String> {
    for d in doms {
        d.info().map_err(|e| format!("info: {e}"))?;
    }
    Ok(())
}

fn sum(results: Vec<Result<(usize, usize), String>>) -> Result<(usize, usize), String> {
    let mut total = (0, 0);
    for r in results {
        let (d, p) = r?;
        total.0 += d;
        total.1 += p;
    }
    Ok(total)
}

fn slice(doms: Vec<Domain>, k: usize, i: usize) -> Vec<Domain> {
    chunks(doms, k).into_iter().nth(i).unwrap_or_default()
}

fn chunks(doms: Vec<Domain>, k: usize) -> Vec<Vec<Domain>> {
    let mut out: Vec<Vec<Domain>> = (0..k).map(|_| Vec::new()).collect();
    for (i, d) in doms.into_iter().enumerate() {
        out[i % k].push(d);
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Counters {
    own_ns: u64,
    own_ticks: u64,
    libvirtd_ns: u64,
    libvirtd_ticks: u64,
    qemu_ns: u64,
}

impl Counters {
    /// `own`: whose CPU counts as the client's (None: this process). Reading /proc costs this
    /// process CPU too: its own counter is read last before a cycle (`own_first` false) and
    /// first after it, so that cost stays out.
    fn read(own: Option<u32>, libvirtd: u32, qemu: &[u32], own_first: bool) -> Self {
        let read_own = || match own {
            Some(pid) => (schedstat_ns(pid), stat_ticks(pid)),
            None => (process_cpu_ns(), stat_ticks(std::process::id())),
        };
        let mut own_now = own_first.then(read_own);
        let libvirtd_ns = schedstat_ns(libvirtd);
        let libvirtd_ticks = stat_ticks(libvirtd);
        let qemu_ns = qemu.iter().map(|&pid| schedstat_ns(pid)).sum();
        let (own_ns, own_ticks) = *own_now.get_or_insert_with(read_own);
        Counters {
            own_ns,
            own_ticks,
            libvirtd_ns,
            libvirtd_ticks,
            qemu_ns,
        }
    }
}

/// CPU time of this process, every thread (those ended included), in ns.
fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Time on CPU of every live thread of `pid`, in ns (the first field of each schedstat).
fn schedstat_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| {
            let path = t.ok()?.path().join("schedstat");
            std::fs::read_to_string(path)
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// utime + stime of `pid` (ended threads included), in clock ticks.
fn stat_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name, which may hold spaces and ends with ')'.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

struct Exporter {
    child: Child,
    port: u16,
}

impl Exporter {
    fn start(bin: &str, port: u16, uri: &str) -> Result<Self, String> {
        let child = Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--libvirt.uri={uri}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        let mut exporter = Exporter { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match exporter.scrape() {
                Ok(_) => return Ok(exporter),
                Err(e) if Instant::now() > deadline => {
                    exporter.stop();
                    return Err(format!("the exporter did not answer: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn scrape(&mut self) -> Result<String, String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("connect: {e}"))?;
        write!(
            stream,
            "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        if !response.starts_with("HTTP/1.0 200") && !response.starts_with("HTTP/1.1 200") {
            return Err(response.lines().next().unwrap_or("").to_owned());
        }
        Ok(response)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

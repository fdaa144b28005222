//! Transient guests on `qemu:///system`, destroyed on drop: a real booted one (Debian's cloud
//! kernel and busybox, built by `tests/guest/build-guest.sh`) running `vmt.work` workloads, or a
//! firmware-only one that boots nothing and needs no kernel.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::run;

/// A booted guest's memory.
pub const MEMORY_KIB: u64 = 160 * 1024;
const MARKER: &str = "VMT-GUEST-UP";
/// TCG boots this kernel in a few seconds; much slack for a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// libvirt picks the host end's socket path itself.
const AGENT_CHANNEL: &str = "<channel type='unix'>\
     <target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
/// The virtio-serial port on which `vmt.after=go` waits for its "go" (tests/guest/init).
const GO_CHANNEL: &str = "vmt.go";
/// The prefix of booted guests' names, by which orphans are found.
const BOOTED_PREFIX: &str = "vmt-real-guest-";

pub struct Guest {
    pub name: String,
    /// A booted guest's network interface on the host; removed with it.
    tap: Option<String>,
    /// A booted guest's serial console log.
    console: Option<PathBuf>,
    /// The host end of its `vmt.go` port, connected once booted (the guest then waits without
    /// polling).
    go: Option<UnixStream>,
    /// Disk, console log and domain XML; removed after the destroy.
    dir: tempfile::TempDir,
}

/// How to boot a guest beyond its workloads: `Guest::options(work).arg(..).pin_vcpu(..).start()`.
pub struct GuestOptions {
    work: String,
    /// More `key=value` words for the kernel command line (`vmt.after=15`: tests/guest/init).
    args: Vec<String>,
    /// The host CPU its vCPU is pinned to (`<vcpupin>`).
    host_cpu: Option<u32>,
    /// Its CPU weight against the other guests' 1024 (`<shares>`).
    cpu_shares: Option<u32>,
    /// A virtio-serial channel `org.qemu.guest_agent.0`, for `vmt.agent=1`'s qemu-ga.
    agent_channel: bool,
    /// A virtio-serial channel `vmt.go`, for `vmt.after=go`.
    go_channel: bool,
    /// The disk's I/O operations per second once booted, at most (`virsh blkdeviotune`).
    disk_iops: Option<u32>,
    /// The host bridge its NIC is plugged into, instead of a bare tap.
    bridge: Option<String>,
    vcpus: u32,
    memory_kib: u64,
}

impl GuestOptions {
    pub fn arg(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.args.push(format!("{key}={value}"));
        self
    }

    pub fn pin_vcpu(mut self, host_cpu: u32) -> Self {
        self.host_cpu = Some(host_cpu);
        self
    }

    /// `shares` against the other guests' 1024 where they want the same host CPU.
    pub fn cpu_shares(mut self, shares: u32) -> Self {
        self.cpu_shares = Some(shares);
        self
    }

    /// A disk that serves at most `iops` reads and writes a second once the guest is up (its
    /// boot would wait on them): requests beyond queue.
    pub fn disk_iops(mut self, iops: u32) -> Self {
        self.disk_iops = Some(iops);
        self
    }

    /// The guest agent's channel, and `vmt.agent=1` to start the agent on it.
    pub fn guest_agent(mut self) -> Self {
        self.agent_channel = true;
        self.arg("vmt.agent", 1)
    }

    /// `vcpus` vCPUs (idle ones cost TCG little) instead of one.
    pub fn vcpus(mut self, vcpus: u32) -> Self {
        self.vcpus = vcpus;
        self
    }

    /// `mib` MiB of memory instead of `MEMORY_KIB` (QEMU allocates only what the guest touches).
    pub fn memory_mib(mut self, mib: u64) -> Self {
        self.memory_kib = mib * 1024;
        self
    }

    /// Its workloads' onset at `Guest::go` rather than a number of seconds after boot.
    pub fn onset_on_go(mut self) -> Self {
        self.go_channel = true;
        self.arg("vmt.after", "go")
    }

    /// Its NIC on the host bridge `bridge` (which must exist).
    pub fn bridge(mut self, bridge: &str) -> Self {
        self.bridge = Some(bridge.to_owned());
        self
    }

    /// Boots the guest and waits for its init's marker line.
    pub fn start(self) -> Guest {
        Guest::boot(&self)
    }
}

impl Guest {
    /// Boots a guest running `vmt.work={work}` and waits for its init's marker line.
    pub fn start(work: &str) -> Self {
        Self::options(work).start()
    }

    pub fn options(work: &str) -> GuestOptions {
        GuestOptions {
            work: work.to_owned(),
            args: Vec::new(),
            host_cpu: None,
            cpu_shares: None,
            agent_channel: false,
            go_channel: false,
            disk_iops: None,
            bridge: None,
            vcpus: 1,
            memory_kib: MEMORY_KIB,
        }
    }

    fn boot(options: &GuestOptions) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let (kernel, initrd) = guest_files();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("{BOOTED_PREFIX}{pid}-{n}");
        // Interface names have at most 15 bytes.
        let tap = format!("vmtg{pid}x{n}");
        assert!(tap.len() <= 15, "{tap}");
        let dir = guest_dir(BOOTED_PREFIX);
        let disk = raw_disk(&dir, 8 << 20);
        let console = dir.path().join("console.log");
        let shares = options.cpu_shares.map(|s| format!("<shares>{s}</shares>"));
        let pin = options
            .host_cpu
            .map(|cpu| format!("<vcpupin vcpu='0' cpuset='{cpu}'/>"));
        let cputune = match [shares, pin].into_iter().flatten().collect::<String>() {
            tune if tune.is_empty() => tune,
            tune => format!("<cputune>{tune}</cputune>"),
        };
        let go_socket = dir.path().join("go.sock");
        let mut channel = match options.agent_channel {
            true => AGENT_CHANNEL.to_owned(),
            false => String::new(),
        };
        if options.go_channel {
            channel += &format!(
                "<channel type='unix'><source mode='bind' path='{}'/>\
                 <target type='virtio' name='{GO_CHANNEL}'/></channel>",
                go_socket.display()
            );
        }
        let (nic, source) = match &options.bridge {
            Some(bridge) => ("bridge", format!("<source bridge='{bridge}'/>")),
            None => ("ethernet", String::new()),
        };
        let cmdline = std::iter::once(format!("vmt.work={}", options.work))
            .chain(options.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        // TCG ('qemu'): this kernel hangs at "Probing EDD" under nested KVM here. The tap is
        // created (and removed) by libvirt itself: no libvirt network, no iptables.
        let xml = format!(
            "<domain type='qemu'><name>{name}</name>\
             <memory unit='KiB'>{memory}</memory>\
             <currentMemory unit='KiB'>{memory}</currentMemory><vcpu>{vcpus}</vcpu>{cputune}\
             <os><type arch='x86_64' machine='pc'>hvm</type>\
             <kernel>{kernel}</kernel><initrd>{initrd}</initrd>\
             <cmdline>console=ttyS0 edd=off {cmdline}</cmdline></os>\
             <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>\
             <on_crash>destroy</on_crash>\
             <devices><controller type='usb' model='none'/>{disk}\
             <interface type='{nic}'>{source}<target dev='{tap}'/><model type='virtio'/></interface>\
             <serial type='file'><source path='{console}'/><target port='0'/></serial>\
             <memballoon model='virtio'><stats period='1'/></memballoon>{channel}\
             </devices></domain>",
            kernel = kernel.display(),
            initrd = initrd.display(),
            disk = disk_xml(&disk),
            console = console.display(),
            memory = options.memory_kib,
            vcpus = options.vcpus,
        );
        let mut guest = Guest::create(name, xml, dir, Some(tap), Some(console));
        guest.wait_up();
        if options.go_channel {
            let stream = UnixStream::connect(&go_socket);
            guest.go = Some(stream.unwrap_or_else(|e| panic!("{}: {e}", go_socket.display())));
        }
        if let Some(iops) = options.disk_iops {
            let iops = iops.to_string();
            virsh(&[
                "blkdeviotune",
                &guest.name,
                "vda",
                "--total-iops-sec",
                &iops,
                "--live",
            ]);
        }
        guest
    }

    /// Firmware only: it boots nothing, so needs no disk or kernel.
    pub fn firmware(name: &str) -> Self {
        Self::firmware_guest(name, false)
    }

    /// Firmware only, with a 1 MiB raw virtio disk, so that the `block` group asks its QEMU.
    pub fn firmware_with_disk(name: &str) -> Self {
        Self::firmware_guest(name, true)
    }

    fn firmware_guest(name: &str, with_disk: bool) -> Self {
        let dir = guest_dir("vmt-kvm-guest-");
        let disk = with_disk.then(|| disk_xml(&raw_disk(&dir, 1 << 20)));
        // KVM where the machine offers it, else QEMU's TCG emulation.
        let domain_type = if Path::new("/dev/kvm").exists() {
            "kvm"
        } else {
            "qemu"
        };
        let xml = format!(
            "<domain type='{domain_type}'><name>{name}</name>\
             <memory unit='MiB'>48</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices><controller type='usb' model='none'/>{disk}<memballoon model='none'/>\
             </devices></domain>",
            disk = disk.unwrap_or_default(),
        );
        Guest::create(name.to_owned(), xml, dir, None, None)
    }

    fn create(
        name: String,
        xml: String,
        dir: tempfile::TempDir,
        tap: Option<String>,
        console: Option<PathBuf>,
    ) -> Self {
        let xml_path = dir.path().join("domain.xml");
        std::fs::write(&xml_path, xml).expect("domain XML written");
        virsh(&["create", xml_path.to_str().unwrap()]);
        // From here on Drop cleans up, whatever fails next.
        Guest {
            name,
            tap,
            console,
            go: None,
            dir,
        }
    }

    /// Starts the workloads of a guest booted `onset_on_go`: its init prints their onset lines.
    pub fn go(&self) {
        let mut port = self.go.as_ref().expect("a guest booted onset_on_go");
        port.write_all(b"go\n")
            .expect("go written to the guest's port");
    }

    pub fn tap(&self) -> &str {
        self.tap.as_deref().expect("a booted guest has a tap")
    }

    /// Powers the guest off and boots it again as the same domain (same UUID, name, disk and
    /// tap): a new QEMU process, so every counter starts again from zero.
    pub fn power_cycle(&self) {
        let xml = virsh(&["dumpxml", &self.name]);
        let xml_path = self.dir.path().join("domain-again.xml");
        std::fs::write(&xml_path, &xml.stdout).expect("domain XML written");
        virsh(&["destroy", &self.name]);
        if let Some(console) = &self.console {
            let _ = std::fs::remove_file(console);
        }
        virsh(&["create", xml_path.to_str().unwrap()]);
        self.wait_up();
    }

    /// Stops its QEMU process (SIGSTOP) until the returned guard drops: the guest still shows as
    /// running, but its monitor answers nothing, as a QEMU stuck on its storage does.
    pub fn stop_qemu(&self) -> StoppedQemu {
        let pid = self.qemu_pid();
        signal("-STOP", &pid);
        StoppedQemu { pid }
    }

    fn qemu_pid(&self) -> String {
        let pid_file = format!("/run/libvirt/qemu/{}.pid", self.name);
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        pid.trim().to_owned()
    }

    /// How long its first vCPU's thread has waited for a host CPU, in nanoseconds: the kernel's
    /// own count (`run_delay` in `/proc/PID/task/TID/schedstat`), read without libvirt.
    pub fn vcpu_wait_ns(&self) -> u64 {
        let tasks = Path::new("/proc").join(self.qemu_pid()).join("task");
        let vcpu = std::fs::read_dir(&tasks)
            .unwrap()
            .map(|task| task.unwrap().path())
            .find(|task| {
                let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
                comm.starts_with("CPU 0/")
            })
            .unwrap_or_else(|| panic!("{}: no vCPU thread in {}", self.name, tasks.display()));
        let schedstat = std::fs::read_to_string(vcpu.join("schedstat")).unwrap();
        let waited = schedstat.split_whitespace().nth(1);
        waited.and_then(|n| n.parse().ok()).expect("run_delay")
    }

    pub fn destroy(&self) {
        virsh(&["destroy", &self.name]);
    }

    /// `virsh domstats` of the groups the service reads, as `key -> value`.
    pub fn domstats(&self) -> BTreeMap<String, String> {
        self.domstats_of(&["--cpu-total", "--balloon", "--block", "--interface"])
    }

    /// `virsh domstats` of these groups (`--vcpu`, ...), as `key -> value`.
    pub fn domstats_of(&self, groups: &[&str]) -> BTreeMap<String, String> {
        let output = virsh(&[&["domstats", self.name.as_str()], groups].concat());
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    pub fn console_text(&self) -> String {
        self.console
            .as_ref()
            .and_then(|console| std::fs::read(console).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let text = self.console_text();
            // Whole lines only: the serial console writes one a character at a time.
            let mut whole = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
            if let Some(line) = whole.find(|l| l.starts_with(MARKER)) {
                assert!(!text.contains("VMT-GUEST-ERROR"), "{text}");
                assert!(
                    line.contains("disk=yes"),
                    "no /dev/vda in the guest:\n{text}"
                );
                return;
            }
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            assert!(
                Instant::now() < deadline,
                "{} printed no {MARKER} within {BOOT_TIMEOUT:?}; console ends:\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // Best effort, also after a failed assertion. libvirt removes the tap on destroy; this
        // covers a libvirt that did not.
        let _ = Command::new("timeout")
            .args(["30", "virsh", "-c", "qemu:///system", "destroy", &self.name])
            .output();
        if let Some(tap) = &self.tap
            && Path::new("/sys/class/net").join(tap).exists()
        {
            let _ = Command::new("ip").args(["link", "delete", tap]).output();
        }
    }
}

pub struct StoppedQemu {
    pid: String,
}

impl Drop for StoppedQemu {
    fn drop(&mut self) {
        signal("-CONT", &self.pid);
    }
}

/// The kernel and initramfs, built once per test process (the script's fast path makes later
/// processes cheap) into `$VMT_TEST_STATE/guest`.
fn guest_files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let state = std::env::var("VMT_TEST_STATE")
            .unwrap_or_else(|_| "/var/tmp/vmtelemetry-test".to_owned());
        let out = Path::new(&state).join("guest");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guest/build-guest.sh");
        run(Command::new("bash").arg(script).arg(&out));
        destroy_orphans();
        (out.join("vmlinuz"), out.join("initramfs.gz"))
    })
}

/// Booted guests of test processes that were killed before their Drop ran still run (they are
/// transient: destroying them removes them).
fn destroy_orphans() {
    let output = virsh(&["list", "--name"]);
    for name in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(pid) = name
            .strip_prefix(BOOTED_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("timeout")
                .args(["30", "virsh", "-c", "qemu:///system", "destroy", name])
                .output();
        }
    }
}

fn guest_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}

/// A sparse raw image of `bytes` in `dir`.
fn raw_disk(dir: &tempfile::TempDir, bytes: u64) -> PathBuf {
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .and_then(|file| file.set_len(bytes))
        .expect("a disk image");
    disk
}

fn disk_xml(disk: &Path) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vda' bus='virtio'/></disk>",
        disk.display()
    )
}

fn signal(signal: &str, pid: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// A `virsh` command on qemu:///system that must succeed; bounded, so a stuck libvirtd fails the
/// test instead of hanging it.
/// Settings that collect only the guests `names` (comma-separated; other tests' guests come and
/// go meanwhile), a cycle every `interval` seconds, each with the stats groups `groups`.
pub fn only_guests<'a>(
    names: &'a str,
    interval: &'a str,
    groups: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("VMTELEMETRY_POLL_INTERVAL", interval),
        ("VMTELEMETRY_STATS_INTERVAL", interval),
        ("VMTELEMETRY_STATS_GROUPS", groups),
        ("VMTELEMETRY_DOMAIN_INCLUDE", names),
    ]
}

pub fn virsh(args: &[&str]) -> Output {
    run(Command::new("timeout")
        .args(["60", "virsh", "-c", "qemu:///system"])
        .args(args))
}

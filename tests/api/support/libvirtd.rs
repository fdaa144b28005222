//! A libvirtd of the test's own, which a test may stop, restart, freeze or disconnect clients of
//! while the shared one serves the other tests.

use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{DiesWithTest, run, signal};

const LIBVIRTD: &str = "/usr/sbin/libvirtd";

/// A libvirtd of the test's own: foreground child, sockets and pid file in a temporary
/// directory. `LIBVIRT_DRIVER_DIR` points at an empty directory, so it loads no stateful driver
/// (QEMU, network, storage…) whose locks and state under /run the shared libvirtd holds; it
/// serves the test driver, which is all these tests need.
pub struct PrivateLibvirtd {
    dir: tempfile::TempDir,
    pub tcp_port: Option<u16>,
    child: Option<Child>,
}

impl PrivateLibvirtd {
    pub fn start(tcp: bool) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::fs::create_dir(dir.path().join("no-drivers")).unwrap();
        let tcp_port = tcp.then(|| {
            // Free now; libvirtd binds it a moment later.
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        });
        let mut conf = format!(
            "unix_sock_dir = \"{}\"\nauth_unix_ro = \"none\"\nauth_unix_rw = \"none\"\n\
             log_outputs = \"3:stderr\"\n",
            dir.path().join("run").display()
        );
        if let Some(port) = tcp_port {
            conf.push_str(&format!(
                "listen_tcp = 1\nlisten_tls = 0\nlisten_addr = \"127.0.0.1\"\n\
                 tcp_port = \"{port}\"\nauth_tcp = \"none\"\n"
            ));
        }
        std::fs::write(dir.path().join("libvirtd.conf"), conf).unwrap();
        let mut daemon = PrivateLibvirtd {
            dir,
            tcp_port,
            child: None,
        };
        daemon.run();
        daemon
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/libvirt-sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("libvirtd.log")).unwrap_or_default()
    }

    /// Starts the daemon (again) and waits until its sockets accept connections.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "libvirtd already runs");
        let path = |name: &str| self.dir.path().join(name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path("libvirtd.log"))
            .unwrap();
        let mut command = Command::new(LIBVIRTD);
        command
            .arg("-f")
            .arg(path("libvirtd.conf"))
            .arg("-p")
            .arg(path("libvirtd.pid"))
            .env("LIBVIRT_DRIVER_DIR", path("no-drivers"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if self.tcp_port.is_some() {
            command.arg("--listen");
        }
        let child = command.dies_with_test().spawn().expect("libvirtd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none(),
                "libvirtd exited: {exited:?}\n{}",
                self.log()
            );
            let unix = UnixStream::connect(self.socket()).is_ok();
            let tcp = self
                .tcp_port
                .is_none_or(|port| TcpStream::connect(("127.0.0.1", port)).is_ok());
            if unix && tcp {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not listen within 20 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// As `systemctl stop libvirtd` would: SIGTERM, then wait for the exit.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("libvirtd runs");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("libvirtd ignored SIGTERM for 15 s\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ids of the clients of its `libvirtd` server, as `virt-admin` lists them.
    pub fn clients(&self) -> Vec<u64> {
        self.admin(&["srv-clients-list", "libvirtd"])
            .lines()
            .filter_map(|line| line.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// Closes one client's connection from the daemon's side.
    pub fn disconnect(&self, client: u64) {
        self.admin(&["client-disconnect", "libvirtd", &client.to_string()]);
    }

    fn admin(&self, args: &[&str]) -> String {
        let socket = self.dir.path().join("run/libvirt-admin-sock");
        let output = run(Command::new("virt-admin")
            .arg("-c")
            .arg(format!("libvirtd:///system?socket={}", socket.display()))
            .args(args));
        String::from_utf8(output.stdout).expect("virt-admin writes UTF-8")
    }

    /// SIGSTOP: its sockets stay open and accept connections, but nothing answers.
    pub fn freeze(&self) {
        signal(self.child.as_ref().unwrap().id(), "STOP");
    }

    pub fn thaw(&self) {
        signal(self.child.as_ref().unwrap().id(), "CONT");
    }
}

impl Drop for PrivateLibvirtd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

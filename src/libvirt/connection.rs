//! A connection's life: opened read-only (with keepalive if remote), checked before each cycle,
//! closed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use virt::connect::Connect;

use super::heartbeat::Heartbeat;
use super::node::NodeInfo;
use super::{LibvirtError, event_loop};
use crate::configuration::{HostConfig, Keepalive};

/// Opens connections to one host.
pub struct Connector {
    uri: Arc<str>,
    remote: bool,
    /// The host's name in the samples; `None`: the one libvirt gives.
    name: Option<Arc<str>>,
    /// Of remote connections: a ping after `interval_sec` without traffic, the connection closed
    /// (and any call blocked on it failed) after `count` unanswered ones.
    keepalive: Keepalive,
    heartbeat: Heartbeat,
    /// Open read-write: the guest group's calls are refused on a read-only connection.
    read_write: bool,
}

/// The connection a host's cycles run on.
pub struct Connection {
    pub connect: Connect,
    pub host: Arc<str>,
    pub node: NodeInfo,
}

impl Connector {
    pub fn new(
        host: &HostConfig,
        keepalive: Keepalive,
        heartbeat: Heartbeat,
        read_write: bool,
    ) -> Self {
        Connector {
            uri: host.uri.as_str().into(),
            remote: is_remote(&host.uri),
            name: host.name.as_deref().map(Arc::from),
            keepalive,
            heartbeat,
            read_write,
        }
    }

    pub fn uri(&self) -> &Arc<str> {
        &self.uri
    }

    /// `previous` if it is still alive, else a new connection.
    pub fn reuse_or_open(&self, previous: Option<Connection>) -> Result<Connection, LibvirtError> {
        match previous {
            Some(connection) if self.is_alive(&connection.connect) => Ok(connection),
            Some(dead) => {
                dead.close();
                self.open()
            }
            None => self.open(),
        }
    }

    pub fn is_alive(&self, connect: &Connect) -> bool {
        matches!(self.heartbeat.call(|| connect.is_alive()), Ok(true))
    }

    /// A connection, read-only (collection never changes a domain) unless the guest group needs it
    /// read-write, with keepalive if remote.
    pub fn connect(&self) -> Result<Connect, LibvirtError> {
        // Only keepalive needs libvirt's event loop, and it makes every call on every connection
        // opened after it dearer (each wakes the loop's thread twice): local sockets go without.
        if self.remote {
            event_loop::ensure_running();
        }
        let connect = self
            .heartbeat
            .call(|| match self.read_write {
                true => Connect::open(Some(&self.uri)),
                false => Connect::open_read_only(Some(&self.uri)),
            })
            .map_err(|e| self.connect_error(e))?;
        if self.remote {
            // Frees a call blocked on a peer that went silent, which no socket error may ever do.
            let (interval, count) = (self.keepalive.interval_sec, self.keepalive.count);
            let keepalive = self
                .heartbeat
                .call(|| connect.set_keep_alive(interval, count));
            if let Err(e) = keepalive {
                let error = e.message();
                tracing::warn!(uri = %self.uri, error, "no keepalive on this connection");
            }
        }
        Ok(connect)
    }

    fn open(&self) -> Result<Connection, LibvirtError> {
        let connect = self.connect()?;
        let host = match &self.name {
            Some(name) => name.clone(),
            None => match self.heartbeat.call(|| connect.hostname()) {
                Ok(hostname) => hostname.into(),
                Err(e) => {
                    close(connect);
                    return Err(self.connect_error(e));
                }
            },
        };
        Ok(Connection {
            connect,
            host,
            node: NodeInfo::default(),
        })
    }

    fn connect_error(&self, e: virt::error::Error) -> LibvirtError {
        LibvirtError::Connect {
            uri: self.uri.to_string(),
            message: e.message().to_owned(),
        }
    }
}

impl Connection {
    pub fn close(self) {
        close(self.connect);
    }
}

/// `virt` panics when `virConnectClose` fails; a connection being thrown away is not worth a thread.
pub fn close(connect: Connect) {
    let _ = catch_unwind(AssertUnwindSafe(|| drop(connect)));
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

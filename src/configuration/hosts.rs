//! The libvirt hosts to collect, and this replica's share of them.

use serde::Deserialize;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::positive_count;

/// A host as written: a bare URI, or a URI with a name for the `host` tag.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HostEntry {
    Uri(String),
    Named { uri: String, name: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    pub uri: String,
    /// Overrides the hostname libvirt reports, for the `host` tag.
    pub name: Option<String>,
}

/// Replica `index` of `count` collects the hosts whose position in the list is `index` modulo
/// `count`, so every host is collected by exactly one replica sharing the same list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let count = positive_count("shard_count", settings.shard_count)?;
        let index = usize::try_from(settings.shard_index)
            .ok()
            .filter(|index| *index < count)
            .ok_or_else(|| {
                invalid(
                    "shard_index",
                    format!(
                        "must be from 0 to shard_count - 1 ({}), got {}",
                        count - 1,
                        settings.shard_index
                    ),
                )
            })?;
        Ok(Shard { index, count })
    }

    fn collects(self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl HostConfig {
    /// `shard`'s part of the configured hosts: `hosts`, or else the one `libvirt_uri`.
    pub fn list_from_settings(settings: &Settings, shard: Shard) -> Result<Vec<Self>, ConfigError> {
        let hosts = configured_hosts(settings)?
            .into_iter()
            .enumerate()
            .filter(|(position, _)| shard.collects(*position))
            .map(|(_, host)| host)
            .collect();
        Ok(hosts)
    }

    fn checked(entry: HostEntry) -> Result<Self, ConfigError> {
        let host = match entry {
            HostEntry::Uri(uri) => HostConfig { uri, name: None },
            HostEntry::Named { uri, name } => HostConfig { uri, name },
        };
        let uri = host.uri.trim();
        if uri.is_empty() || !uri.contains(':') {
            return Err(invalid(
                "hosts",
                format!("`{}` is not a libvirt URI", host.uri),
            ));
        }
        if host.name.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("hosts", format!("the name of `{uri}` is empty")));
        }
        Ok(host)
    }
}

fn configured_hosts(settings: &Settings) -> Result<Vec<HostConfig>, ConfigError> {
    let entries = match (&settings.hosts, &settings.host_name) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "host_name",
                "names the `libvirt_uri` host; with `hosts`, name each entry instead",
            ));
        }
        (Some(hosts), None) => hosts.clone(),
        (None, name) => vec![HostEntry::Named {
            uri: settings.libvirt_uri.clone(),
            name: name.clone(),
        }],
    };
    if entries.is_empty() {
        return Err(invalid(
            "hosts",
            "the list is empty: name at least one libvirt URI",
        ));
    }
    let mut hosts: Vec<HostConfig> = Vec::with_capacity(entries.len());
    for entry in entries {
        let host = HostConfig::checked(entry)?;
        if hosts.iter().any(|known| known.uri == host.uri) {
            return Err(invalid(
                "hosts",
                format!("`{}` is listed twice", host.uri.trim()),
            ));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

//! The HTTP face's keys: which Host names it answers for, and how many connections it serves at
//! once.

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::whole_number_in;

/// Far above what one service's API needs, far below what would exhaust its memory.
const MAX_CONNECTIONS: usize = 1_000_000;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub allowed_hosts: AllowedHosts,
    /// Connections served at once, over all workers; more wait in the listen backlog.
    pub max_connections: usize,
}

/// Host names the API answers for, besides IP literals, which DNS rebinding cannot use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    any: bool,
    /// Lowercase; a leading dot stands for that domain and every name under it.
    names: Vec<String>,
}

impl HttpConfig {
    pub(super) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(HttpConfig {
            allowed_hosts: AllowedHosts::parse(&settings.allowed_hosts)?,
            max_connections: whole_number_in(
                "http_max_connections",
                settings.http_max_connections,
                1..=MAX_CONNECTIONS,
            )?,
        })
    }
}

impl AllowedHosts {
    /// `*` allows any name, `.example.net` example.net and its subdomains, anything else itself.
    fn parse(entries: &[String]) -> Result<Self, ConfigError> {
        let mut hosts = AllowedHosts::default();
        for entry in entries {
            if entry == "*" {
                hosts.any = true;
                continue;
            }
            let name = entry.trim_end_matches('.').to_ascii_lowercase();
            let label = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if name.trim_start_matches('.').is_empty()
                || !name.chars().all(|c| label(c) || c == '.')
            {
                return Err(invalid(
                    "allowed_hosts",
                    format!("`{entry}` is not a host name (no port, no scheme; `*` allows any)"),
                ));
            }
            hosts.names.push(name);
        }
        Ok(hosts)
    }

    /// Adds one name, as given (the machine's own hostname).
    pub fn with(mut self, name: &str) -> Self {
        self.names
            .push(name.trim_end_matches('.').to_ascii_lowercase());
        self
    }

    /// Whether `name` (lowercase, without port or final dot) is allowed.
    pub fn allows(&self, name: &str) -> bool {
        self.any
            || self
                .names
                .iter()
                .any(|allowed| match allowed.strip_prefix('.') {
                    Some(domain) => {
                        name == domain
                            || name
                                .strip_suffix(domain)
                                .is_some_and(|sub| sub.ends_with('.'))
                    }
                    None => name == allowed,
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn names_subdomains_and_any() {
        let allowed = hosts(&["Vmt.Example.NET.", ".svc.local"]).with("kvm1");
        for name in ["vmt.example.net", "svc.local", "a.b.svc.local", "kvm1"] {
            assert!(allowed.allows(name), "{name}");
        }
        for name in [
            "example.net",
            "evilsvc.local",
            "kvm1.evil",
            "x.vmt.example.net",
        ] {
            assert!(!allowed.allows(name), "{name}");
        }
        assert!(hosts(&["*"]).allows("anything.example"));
        assert!(!hosts(&[]).allows("localhost"));
    }

    #[test]
    fn ports_schemes_and_empty_names_are_refused() {
        for bad in ["vmt:8080", "http://vmt", "", ".", "a b"] {
            let message = AllowedHosts::parse(&[bad.to_owned()])
                .unwrap_err()
                .to_string();
            assert!(message.contains("`allowed_hosts`"), "{message}");
        }
    }
}

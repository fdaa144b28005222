//! How replicas share the hosts: `static` (each takes its `shard_index`, fixed) or `etcd`
//! (membership and host ownership on etcd, so a dead replica's hosts are taken over).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use super::Settings;
use super::error::{ConfigError, invalid};
use super::values::whole_number_in;

/// etcd refuses leases shorter than about 1.5 s (its election timeout); an hour is plenty.
const MEMBER_TTL_SECS: std::ops::RangeInclusive<u64> = 2..=3600;
const MAX_MEMBER_NAME: usize = 128;

#[derive(Debug, Clone)]
pub enum Coordination {
    Static,
    Etcd(EtcdConfig),
}

#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `http://` or `https://` URLs, one scheme for all.
    pub endpoints: Vec<String>,
    /// Every key of this fleet starts with it; ends with `/`.
    pub prefix: String,
    pub member_ttl: Duration,
    /// This replica's name among the members: unique in the fleet.
    pub member_name: String,
    /// With `https://` endpoints.
    pub tls: Option<EtcdTls>,
    pub user: Option<(String, SecretString)>,
}

/// PEM files read at start, so a missing file stops start-up rather than the first connection.
#[derive(Clone)]
pub struct EtcdTls {
    pub ca_pem: Option<Vec<u8>>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<SecretString>,
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.cert_pem.is_some())
            .finish()
    }
}

impl Coordination {
    pub(super) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        match settings.coordination.as_str() {
            "static" => Ok(Coordination::Static),
            "etcd" => {
                if settings.shard_count != 1 {
                    return Err(invalid(
                        "shard_count",
                        "static shards and coordination = \"etcd\" exclude each other: with \
                         etcd every replica takes its share of the whole host list (leave \
                         shard_count = 1)",
                    ));
                }
                EtcdConfig::from_settings(settings).map(Coordination::Etcd)
            }
            other => Err(invalid(
                "coordination",
                format!("unknown value `{other}` (expected static or etcd)"),
            )),
        }
    }

    pub fn etcd(&self) -> Option<&EtcdConfig> {
        match self {
            Coordination::Static => None,
            Coordination::Etcd(etcd) => Some(etcd),
        }
    }
}

impl EtcdConfig {
    fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let tls = EtcdTls::from_settings(settings)?;
        let endpoints = endpoints(&settings.etcd_endpoints, tls.is_some())?;
        let secure = endpoints.iter().any(|e| e.starts_with("https://"));
        if tls.is_some() && !secure {
            return Err(invalid(
                "etcd_endpoints",
                "etcd_cacert, etcd_cert and etcd_key need https:// endpoints",
            ));
        }
        let ttl = whole_number_in("etcd_member_ttl", settings.etcd_member_ttl, MEMBER_TTL_SECS)?;
        Ok(EtcdConfig {
            tls: tls.or_else(|| secure.then(EtcdTls::system_roots)),
            endpoints,
            prefix: prefix(&settings.etcd_prefix)?,
            member_ttl: Duration::from_secs(ttl),
            member_name: member_name(&settings.member_name)?,
            user: user(settings)?,
        })
    }
}

impl EtcdTls {
    fn system_roots() -> Self {
        EtcdTls {
            ca_pem: None,
            cert_pem: None,
            key_pem: None,
        }
    }

    fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let (cert, key) = (&settings.etcd_cert, &settings.etcd_key);
        if cert.is_empty() != key.is_empty() {
            let key_name = if cert.is_empty() {
                "etcd_cert"
            } else {
                "etcd_key"
            };
            return Err(invalid(
                key_name,
                "etcd_cert and etcd_key go together: set both (a client certificate) or neither",
            ));
        }
        if settings.etcd_cacert.is_empty() && cert.is_empty() {
            return Ok(None);
        }
        let key_pem = match key.is_empty() {
            true => None,
            false => Some(
                String::from_utf8(pem("etcd_key", key)?)
                    .map_err(|_| invalid("etcd_key", format!("`{key}` is not a PEM file")))?,
            ),
        };
        Ok(Some(EtcdTls {
            ca_pem: (!settings.etcd_cacert.is_empty())
                .then(|| pem("etcd_cacert", &settings.etcd_cacert))
                .transpose()?,
            cert_pem: (!cert.is_empty())
                .then(|| pem("etcd_cert", cert))
                .transpose()?,
            key_pem: key_pem.map(SecretString::from),
        }))
    }
}

fn pem(key: &'static str, path: &str) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(Path::new(path))
        .map_err(|e| invalid(key, format!("cannot read `{path}`: {e}")))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(invalid(key, format!("`{path}` is not a PEM file")));
    }
    Ok(bytes)
}

/// Each endpoint as a URL: a bare `host:port` (as etcdctl takes it) gets `http://`, or
/// `https://` with TLS files.
fn endpoints(entries: &[String], tls: bool) -> Result<Vec<String>, ConfigError> {
    if entries.is_empty() {
        return Err(invalid(
            "etcd_endpoints",
            "coordination = \"etcd\" needs at least one endpoint (e.g. http://127.0.0.1:2379)",
        ));
    }
    let mut urls = Vec::with_capacity(entries.len());
    for entry in entries {
        let entry = entry.trim();
        let text = match entry.contains("://") {
            true => entry.to_owned(),
            false if tls => format!("https://{entry}"),
            false => format!("http://{entry}"),
        };
        let url = url::Url::parse(&text).ok().filter(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && url.username().is_empty()
        });
        if url.is_none() {
            return Err(invalid(
                "etcd_endpoints",
                format!(
                    "`{entry}` is not an etcd endpoint (http://host:port or https://host:port)"
                ),
            ));
        }
        urls.push(text.trim_end_matches('/').to_owned());
    }
    let secure = urls.iter().filter(|u| u.starts_with("https://")).count();
    if secure != 0 && secure != urls.len() {
        return Err(invalid(
            "etcd_endpoints",
            "mixes http:// and https://: use one scheme for every endpoint",
        ));
    }
    Ok(urls)
}

fn prefix(text: &str) -> Result<String, ConfigError> {
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(invalid(
            "etcd_prefix",
            "must be a non-empty key prefix without control characters (e.g. /vmtelemetry/)",
        ));
    }
    Ok(match text.ends_with('/') {
        true => text.to_owned(),
        false => format!("{text}/"),
    })
}

/// The configured name, or `<hostname>-<pid>`: unique per process, and readable in the status.
fn member_name(text: &str) -> Result<String, ConfigError> {
    let name = match text.is_empty() {
        false => text.to_owned(),
        true => {
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_else(|_| "vmtelemetry".to_owned());
            format!("{}-{}", hostname.trim(), std::process::id())
        }
    };
    let fine = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if name.len() > MAX_MEMBER_NAME || !name.chars().all(fine) {
        return Err(invalid(
            "member_name",
            format!(
                "`{name}`: use at most {MAX_MEMBER_NAME} letters, digits, `-`, `_`, `.` or `:`"
            ),
        ));
    }
    Ok(name)
}

fn user(settings: &Settings) -> Result<Option<(String, SecretString)>, ConfigError> {
    match (settings.etcd_user.is_empty(), &settings.etcd_password) {
        (true, None) => Ok(None),
        (false, Some(password)) => Ok(Some((settings.etcd_user.clone(), password.clone()))),
        (true, Some(_)) => Err(invalid("etcd_user", "etcd_password is set: name its user")),
        (false, None) => Err(invalid(
            "etcd_password",
            "etcd_user is set: give its password (VMTELEMETRY_ETCD_PASSWORD)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::load_with_env;
    use std::io::Write;

    fn load(pairs: &[(&str, &str)]) -> Result<Coordination, String> {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load_with_env(None, env)
            .map(|config| config.coordination)
            .map_err(|e| e.to_string())
    }

    fn etcd(pairs: &[(&str, &str)]) -> EtcdConfig {
        let with_etcd = [&[("VMTELEMETRY_COORDINATION", "etcd")][..], pairs].concat();
        match load(&with_etcd).unwrap() {
            Coordination::Etcd(etcd) => etcd,
            Coordination::Static => panic!("static"),
        }
    }

    #[test]
    fn static_is_the_default_and_etcd_takes_its_keys() {
        assert!(matches!(load(&[]).unwrap(), Coordination::Static));
        let config = etcd(&[
            (
                "VMTELEMETRY_ETCD_ENDPOINTS",
                "127.0.0.1:2379,http://10.0.0.2:2379/",
            ),
            ("VMTELEMETRY_ETCD_PREFIX", "/fleet-a"),
            ("VMTELEMETRY_ETCD_MEMBER_TTL", "5"),
            ("VMTELEMETRY_MEMBER_NAME", "vmtelemetry-0"),
            ("VMTELEMETRY_ETCD_USER", "collector"),
            ("VMTELEMETRY_ETCD_PASSWORD", "pw"),
        ]);
        assert_eq!(
            config.endpoints,
            ["http://127.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(config.prefix, "/fleet-a/");
        assert_eq!(config.member_ttl, Duration::from_secs(5));
        assert_eq!(config.member_name, "vmtelemetry-0");
        assert_eq!(config.user.as_ref().unwrap().0, "collector");
        assert!(config.tls.is_none());
        assert!(!format!("{config:?}").contains("pw"));
        let default = etcd(&[("VMTELEMETRY_ETCD_ENDPOINTS", "127.0.0.1:2379")]);
        assert_eq!(default.prefix, "/vmtelemetry/");
        assert_eq!(default.member_ttl, Duration::from_secs(10));
        assert!(
            default
                .member_name
                .ends_with(&format!("-{}", std::process::id()))
        );
        let secure = etcd(&[("VMTELEMETRY_ETCD_ENDPOINTS", "https://etcd:2379")]);
        assert!(secure.tls.is_some_and(|tls| tls.ca_pem.is_none()));
    }

    #[test]
    fn tls_files_are_read_at_start() {
        let mut ca = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
        )
        .unwrap();
        let ca_path = ca.path().display().to_string();
        let config = etcd(&[
            ("VMTELEMETRY_ETCD_ENDPOINTS", "etcd-0:2379"),
            ("VMTELEMETRY_ETCD_CACERT", &ca_path),
        ]);
        assert_eq!(config.endpoints, ["https://etcd-0:2379"]);
        assert!(config.tls.unwrap().ca_pem.is_some());
    }

    #[test]
    fn bad_coordination_settings_name_their_key() {
        let mut not_pem = tempfile::NamedTempFile::new().unwrap();
        writeln!(not_pem, "hello").unwrap();
        let not_pem = not_pem.path().display().to_string();
        let ep = ("VMTELEMETRY_ETCD_ENDPOINTS", "127.0.0.1:2379");
        let etcd = ("VMTELEMETRY_COORDINATION", "etcd");
        for (pairs, key) in [
            (
                vec![("VMTELEMETRY_COORDINATION", "zookeeper")],
                "coordination",
            ),
            (vec![etcd], "etcd_endpoints"),
            (
                vec![etcd, ("VMTELEMETRY_ETCD_ENDPOINTS", "ftp://x:1")],
                "etcd_endpoints",
            ),
            (
                vec![etcd, ("VMTELEMETRY_ETCD_ENDPOINTS", "http://a:1/v3")],
                "etcd_endpoints",
            ),
            (
                vec![
                    etcd,
                    ("VMTELEMETRY_ETCD_ENDPOINTS", "http://a:1,https://b:1"),
                ],
                "etcd_endpoints",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_MEMBER_TTL", "1")],
                "etcd_member_ttl",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_MEMBER_TTL", "3601")],
                "etcd_member_ttl",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_PREFIX", "")],
                "etcd_prefix",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_SHARD_COUNT", "2")],
                "shard_count",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_MEMBER_NAME", "a/b")],
                "member_name",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_CERT", &not_pem)],
                "etcd_key",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_CACERT", &not_pem)],
                "etcd_cacert",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_CACERT", "/nonexistent")],
                "etcd_cacert",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_USER", "u")],
                "etcd_password",
            ),
            (
                vec![etcd, ep, ("VMTELEMETRY_ETCD_PASSWORD", "p")],
                "etcd_user",
            ),
        ] {
            let message = load(&pairs).unwrap_err();
            assert!(
                message.contains(&format!("`{key}`")),
                "{pairs:?}: `{message}` does not name {key}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }
}

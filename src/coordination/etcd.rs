//! The few etcd calls coordination makes, each bounded by a timeout: the lease and its
//! keepalive, the membership key, one consistent read of members and owners, and the
//! ownership keys taken and given up in transactions on the lease.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::configuration::EtcdConfig;

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("etcd: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("this replica's lease is gone (expired or revoked)")]
    LeaseGone,
    #[error(
        "member name `{0}` is held by another live replica (or by this one's previous run, \
         until its lease expires)"
    )]
    NameTaken(String),
}

impl EtcdError {
    /// etcd did not answer at all (as opposed to refusing what was asked).
    pub fn unreachable(&self) -> bool {
        use etcd_client::Error::{GRpcStatus, TransportError};
        match self {
            EtcdError::Timeout(_) | EtcdError::Client(TransportError(_)) => true,
            EtcdError::Client(GRpcStatus(status)) => matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ),
            _ => false,
        }
    }
}

/// A member's record under `members/<name>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberRecord {
    #[serde(default)]
    pub draining: bool,
    /// Hosts handed over by hand: the assignment gives each to another member.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub declined: BTreeSet<String>,
}

/// An ownership key: the member holding a host, and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub member: String,
    pub lease: i64,
}

/// Members and owners, read together at one revision.
#[derive(Debug, Default)]
pub struct View {
    /// By name.
    pub members: BTreeMap<String, MemberRecord>,
    /// By host URI.
    pub owners: BTreeMap<String, Owner>,
}

/// The client, with the keys under this fleet's prefix.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    prefix: String,
    timeout: Duration,
}

/// This replica's lease and its keepalive stream.
pub struct Lease {
    pub id: i64,
    ttl: Duration,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    /// etcd keeps the lease at least until then: the last keepalive it answered was sent at
    /// `expires - ttl`, and it counts the TTL from when it got it.
    pub expires: Instant,
}

async fn within<T, E>(
    timeout: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, EtcdError>
where
    EtcdError: From<E>,
{
    match actix_rt::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(EtcdError::from),
        Err(_) => Err(EtcdError::Timeout(timeout)),
    }
}

/// etcd's answer for a lease it no longer has.
/// Puts `key` on `lease` only if no one has created it: a member name or a host ownership taken.
fn create_on(key: String, value: impl Into<Vec<u8>>, lease: i64) -> Txn {
    Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )])
}

fn lease_gone(error: EtcdError) -> EtcdError {
    let gone = match &error {
        EtcdError::Client(etcd_client::Error::GRpcStatus(status)) => {
            status.message().contains("lease not found")
        }
        EtcdError::Client(etcd_client::Error::LeaseKeepAliveError(message)) => {
            message.contains("lease not found")
        }
        _ => false,
    };
    if gone { EtcdError::LeaseGone } else { error }
}

fn options(config: &EtcdConfig, timeout: Duration) -> ConnectOptions {
    let mut options = ConnectOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(timeout)
        .with_keep_alive(timeout * 2, timeout);
    if let Some((user, password)) = &config.user {
        options = options.with_user(user.clone(), password.expose_secret().to_owned());
    }
    if let Some(tls) = &config.tls {
        let mut settings = TlsOptions::new().with_native_roots();
        if let Some(ca) = &tls.ca_pem {
            settings = settings.ca_certificate(Certificate::from_pem(ca));
        }
        if let (Some(cert), Some(key)) = (&tls.cert_pem, &tls.key_pem) {
            settings = settings.identity(Identity::from_pem(cert, key.expose_secret()));
        }
        options = options.with_tls(settings);
    }
    options
}

impl Etcd {
    /// A client of `config`'s endpoints. Without a user it connects lazily, so this succeeds
    /// while etcd is down; with one it authenticates first.
    pub async fn connect(config: &EtcdConfig, timeout: Duration) -> Result<Self, EtcdError> {
        let connect = Client::connect(&config.endpoints, Some(options(config, timeout)));
        Ok(Etcd {
            client: within(timeout, connect).await?,
            prefix: config.prefix.clone(),
            timeout,
        })
    }

    fn member_key(&self, name: &str) -> String {
        format!("{}members/{name}", self.prefix)
    }

    fn owner_key(&self, host: &str) -> String {
        format!("{}owners/{host}", self.prefix)
    }

    /// A new lease holding the member key `name`, created only if no live lease holds it.
    pub async fn join(
        &mut self,
        name: &str,
        ttl: Duration,
        record: &MemberRecord,
    ) -> Result<Lease, EtcdError> {
        let granted_at = Instant::now();
        let grant = self.client.lease_grant(ttl.as_secs() as i64, None);
        let id = within(self.timeout, grant).await?.id();
        let key = self.member_key(name);
        let value = serde_json::to_vec(record).unwrap_or_default();
        let created = within(self.timeout, self.client.txn(create_on(key, value, id))).await;
        if !created.as_ref().is_ok_and(|answer| answer.succeeded()) {
            let _ = self.revoke(id).await;
            created?;
            return Err(EtcdError::NameTaken(name.to_owned()));
        }
        Ok(Lease {
            id,
            ttl,
            keeper: None,
            expires: granted_at + ttl,
        })
    }

    /// Rewrites this member's record (its draining flag and declined hosts), while the key is on `lease`.
    pub async fn update_member(
        &mut self,
        name: &str,
        lease: i64,
        record: &MemberRecord,
    ) -> Result<(), EtcdError> {
        let key = self.member_key(name);
        let value = serde_json::to_vec(record).unwrap_or_default();
        let update = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        match within(self.timeout, self.client.txn(update))
            .await?
            .succeeded()
        {
            true => Ok(()),
            false => Err(EtcdError::LeaseGone),
        }
    }

    /// Revokes a lease: its keys go at once. A lease etcd no longer has is revoked already.
    pub async fn revoke(&mut self, id: i64) -> Result<(), EtcdError> {
        match within(self.timeout, self.client.lease_revoke(id))
            .await
            .map_err(lease_gone)
        {
            Ok(_) | Err(EtcdError::LeaseGone) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Renews `lease`; `LeaseGone` when etcd let it expire.
    pub async fn keep_alive(&mut self, lease: &mut Lease) -> Result<(), EtcdError> {
        let sent = Instant::now();
        let answer = match lease.keeper.as_mut() {
            // Opening the stream sends a first keepalive and checks its answer.
            None => {
                let open = self.client.lease_keep_alive(lease.id);
                let keeper = within(self.timeout, open).await.map_err(lease_gone)?;
                lease.keeper = Some(keeper);
                Ok(Some(1))
            }
            Some((keeper, stream)) => {
                let renew = async {
                    keeper.keep_alive().await?;
                    Ok::<_, etcd_client::Error>(stream.message().await?.map(|r| r.ttl()))
                };
                within(self.timeout, renew).await
            }
        };
        match answer {
            Ok(Some(ttl)) if ttl > 0 => {
                lease.expires = sent + lease.ttl;
                Ok(())
            }
            Ok(_) => Err(EtcdError::LeaseGone),
            Err(error) => {
                // A late answer must not be taken for the next one: open a new stream.
                lease.keeper = None;
                Err(error)
            }
        }
    }

    /// Members and owners at one revision.
    pub async fn read(&mut self) -> Result<View, EtcdError> {
        let (members, owners) = (self.member_key(""), self.owner_key(""));
        let read = Txn::new().and_then([
            TxnOp::get(members.clone(), Some(GetOptions::new().with_prefix())),
            TxnOp::get(owners.clone(), Some(GetOptions::new().with_prefix())),
        ]);
        let answer = within(self.timeout, self.client.txn(read)).await?;
        let mut view = View::default();
        for (n, response) in answer.op_responses().into_iter().enumerate() {
            let TxnOpResponse::Get(get) = response else {
                continue;
            };
            for kv in get.kvs() {
                let key = String::from_utf8_lossy(kv.key());
                let value = String::from_utf8_lossy(kv.value());
                if n == 0 {
                    let name = key
                        .strip_prefix(members.as_str())
                        .unwrap_or(key.as_ref())
                        .to_owned();
                    let record = serde_json::from_str(&value).unwrap_or_default();
                    view.members.insert(name, record);
                } else {
                    let host = key
                        .strip_prefix(owners.as_str())
                        .unwrap_or(key.as_ref())
                        .to_owned();
                    let owner = Owner {
                        member: value.into_owned(),
                        lease: kv.lease(),
                    };
                    view.owners.insert(host, owner);
                }
            }
        }
        Ok(view)
    }

    /// Takes `host`'s ownership key on `lease` if nobody holds it; whether it did.
    pub async fn take(&mut self, host: &str, member: &str, lease: i64) -> Result<bool, EtcdError> {
        let key = self.owner_key(host);
        Ok(
            within(self.timeout, self.client.txn(create_on(key, member, lease)))
                .await?
                .succeeded(),
        )
    }

    /// Gives `host`'s ownership key up, if it is still on `lease`.
    pub async fn release(&mut self, host: &str, lease: i64) -> Result<(), EtcdError> {
        let key = self.owner_key(host);
        let release = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
            .and_then([TxnOp::delete(key, None)]);
        within(self.timeout, self.client.txn(release)).await?;
        Ok(())
    }
}

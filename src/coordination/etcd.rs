//! The few etcd calls coordination makes, each bounded by a timeout: the lease and its
//! keepalive, the membership key, one consistent read of members and owners and the watch from
//! there, and the ownership keys taken and given up in transactions on the lease.

use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchOptions,
};
use secrecy::ExposeSecret;

pub use super::error::EtcdError;
use super::view::{MemberRecord, View, Watched};
use crate::configuration::EtcdConfig;

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

/// Puts `value` at `key` on `lease`, if no one holds the key.
fn create_on_lease(key: String, value: impl Into<Vec<u8>>, lease: i64) -> Txn {
    Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )])
}

/// The store's revision when etcd answered: that of a transaction's write, if it wrote.
fn revision(answer: &TxnResponse) -> i64 {
    answer.header().map_or(0, |header| header.revision())
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
        let create = create_on_lease(key, value, id);
        let created = within(self.timeout, self.client.txn(create)).await;
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

    /// Rewrites this member's record (its draining flag and declined hosts), while the key is on
    /// `lease`; the revision it did it at.
    pub async fn update_member(
        &mut self,
        name: &str,
        lease: i64,
        record: &MemberRecord,
    ) -> Result<i64, EtcdError> {
        let key = self.member_key(name);
        let value = serde_json::to_vec(record).unwrap_or_default();
        let update = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let answer = within(self.timeout, self.client.txn(update)).await?;
        match answer.succeeded() {
            true => Ok(revision(&answer)),
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

    /// Members and owners read at one revision, and watched from the next.
    pub async fn watch(&mut self) -> Result<Watched, EtcdError> {
        let (members, owners) = (self.member_key(""), self.owner_key(""));
        let read = Txn::new().and_then([
            TxnOp::get(members, Some(GetOptions::new().with_prefix())),
            TxnOp::get(owners, Some(GetOptions::new().with_prefix())),
        ]);
        let answer = within(self.timeout, self.client.txn(read)).await?;
        let revision = revision(&answer);
        let mut view = View::default();
        for response in answer.op_responses() {
            let TxnOpResponse::Get(get) = response else {
                continue;
            };
            for kv in get.kvs() {
                let key = String::from_utf8_lossy(kv.key());
                if let Some(rest) = key.strip_prefix(self.prefix.as_str()) {
                    view.apply(rest, Some(kv));
                }
            }
        }
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let watch = self.client.watch(self.prefix.as_str(), Some(options));
        let stream = within(self.timeout, watch).await?;
        Ok(Watched::new(view, self.prefix.clone(), stream, revision))
    }

    /// Takes `host`'s ownership key on `lease` if nobody holds it; the revision it did it at.
    pub async fn take(
        &mut self,
        host: &str,
        member: &str,
        lease: i64,
    ) -> Result<Option<i64>, EtcdError> {
        let take = create_on_lease(self.owner_key(host), member, lease);
        let answer = within(self.timeout, self.client.txn(take)).await?;
        Ok(answer.succeeded().then(|| revision(&answer)))
    }

    /// Gives `host`'s ownership key up, if it is still on `lease`; the revision it did it at.
    pub async fn release(&mut self, host: &str, lease: i64) -> Result<Option<i64>, EtcdError> {
        let key = self.owner_key(host);
        let release = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
            .and_then([TxnOp::delete(key, None)]);
        let answer = within(self.timeout, self.client.txn(release)).await?;
        Ok(answer.succeeded().then(|| revision(&answer)))
    }
}

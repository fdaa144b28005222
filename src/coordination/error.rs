//! What can go wrong with etcd, and whether etcd answered at all.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("etcd: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("the watch on members and owners ended: {0}")]
    WatchEnded(&'static str),
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

//! Collection that survives a replica's death (`coordination = "etcd"`): membership and host
//! ownership on etcd. `rendezvous` says which member collects which host, `plan` what a replica
//! does about it, `etcd` the calls (`error` their failures), `view` and `follow` the members and
//! owners it watches, `replica` one replica's state between ticks, `control` its hold on the
//! host actors, `timing` its ticks, `deadline` when their cycles must stop, `status` what it
//! says.

pub mod control;
pub mod deadline;
pub mod error;
pub mod etcd;
pub mod follow;
pub mod plan;
pub mod rendezvous;
pub mod replica;
pub mod status;
pub mod timing;
pub mod view;

pub use control::HostControl;
pub use deadline::CollectDeadline;
pub use replica::Replica;
pub use status::CoordinationStatus;
pub use timing::Timing;

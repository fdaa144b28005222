//! Collection that survives a replica's death (`coordination = "etcd"`): membership and host
//! ownership on etcd. `rendezvous` says which member collects which host, `plan` what a replica
//! does about it, `etcd` the calls, `replica` one replica's state between ticks, `timing` its
//! ticks and deadlines, `status` what it says.

pub mod etcd;
pub mod plan;
pub mod rendezvous;
pub mod replica;
pub mod status;
pub mod timing;

pub use replica::{HostControl, Replica};
pub use status::CoordinationStatus;
pub use timing::Timing;

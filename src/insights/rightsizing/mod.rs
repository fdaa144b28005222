//! Right-sizing, the Kubernetes VPA recommender's way, for VMs: `histogram` (VPA's decaying
//! histogram, sparse), `estimator` (percentiles, margin, confidence, minimums), `vm` (one VM's
//! samples), `recommend` (rounded to vCPUs and MiB, and classed), `summary` (per host and fleet,
//! and the API's shapes).

pub mod estimator;
pub mod histogram;
pub mod recommend;
pub mod summary;
pub mod vm;

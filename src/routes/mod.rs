//! HTTP resources, one file each; errors map to responses in `error`.

mod error;
mod health;
mod status;

pub use error::ApiError;
pub use health::{health, ready};
pub use status::telemetry_status;

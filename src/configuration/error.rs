//! The one error a bad setting gives: it names the key, in one line.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    /// A value of the wrong type; `key` is its path, e.g. `hosts.1.name`.
    #[error("configuration key `{key}`: {message}")]
    Type { key: String, message: String },
}

pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

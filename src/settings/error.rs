use std::fmt;

/// A configuration value that stops start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// An environment variable holds a value that cannot be parsed.
    #[error("invalid value for {var}: {value:?} (accepted: {accepted})")]
    InvalidEnv {
        /// The variable, with its prefix.
        var: String,
        /// The value found (`<redacted>` for secrets).
        value: String,
        /// What the variable accepts.
        accepted: &'static str,
    },
    /// A setting is well-formed but unsafe or inconsistent.
    #[error("{setting}: {reason}")]
    Rejected {
        /// The setting or variable at fault.
        setting: &'static str,
        /// Why, and how to fix it.
        reason: String,
    },
    /// The `.env` file exists but cannot be read.
    #[error(".env: {0}")]
    DotEnv(String),
}

impl SettingsError {
    pub(crate) fn rejected(setting: &'static str, reason: impl fmt::Display) -> Self {
        Self::Rejected { setting, reason: reason.to_string() }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default; for machines).
    #[default]
    Json,
    /// Coloured, human-readable lines (for a terminal).
    Pretty,
}

/// Logging and metrics settings (the spec's `ObservabilitySettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ObservabilitySettings {
    /// The `service` field of every log line (default: the service name).
    pub service_name: String,
    /// `trace`, `debug`, `info` (default), `warn` or `error`; or a full
    /// `tracing` filter directive.
    pub log_level: String,
    /// JSON or pretty.
    pub log_format: LogFormat,
}

impl Default for ObservabilitySettings {
    fn default() -> Self {
        Self { service_name: "app".into(), log_level: "info".into(), log_format: LogFormat::Json }
    }
}

//! Structured logs through `tracing`: JSON (one object per line) or pretty.
//!
//! Every line written while a request is served carries that request's
//! `request_id` (and `user_id` once known), read from the request context (see
//! [`request_id`](super::request_id)). Secrets are `secrecy` types and never reach
//! a log line. Lines reach standard output through a buffer: see
//! [`log_sink`](super::log_sink).

use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::{fmt, EnvFilter};

use super::log_format::{JsonLine, PrettyLine};
use super::log_sink::BufferedStdout;
use super::{LogFormat, ObservabilitySettings};

/// Installs the global subscriber. Returns `false` if one was already installed
/// (by the app or an earlier service in this process), which is left in place.
pub fn init(settings: &ObservabilitySettings) -> bool {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(BufferedStdout::start());
    match settings.log_format {
        LogFormat::Json => {
            let installed = builder.fmt_fields(JsonFields::new()).event_format(JsonLine).try_init().is_ok();
            if installed {
                super::log_format::KERNEL_JSON_INSTALLED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            installed
        }
        LogFormat::Pretty => builder.with_ansi(false).event_format(PrettyLine::default()).try_init().is_ok(),
    }
}

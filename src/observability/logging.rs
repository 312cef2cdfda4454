//! Structured logs through `tracing`: JSON (one object per line) or pretty.
//!
//! Every line written while a request is served carries that request's
//! `request_id` (and `user_id` once known), read from the request context (see
//! [`request_id`](super::request_id)). Secrets are `secrecy` types and never reach
//! a log line. Lines reach standard output through a buffer: see
//! [`log_sink`](super::log_sink).

use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{fmt, EnvFilter};

use super::log_format::{JsonLine, PrettyLine};
use super::log_sink::BufferedStdout;
use super::{LogFormat, ObservabilitySettings};

/// Installs the global subscriber. Returns `false` if one was already installed
/// (by the app or an earlier service in this process), which is left in place.
/// With OTLP export on (feature `otel`), it also exports the app's `tracing` spans.
pub fn init(settings: &ObservabilitySettings) -> bool {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(BufferedStdout::start());
    match settings.log_format {
        LogFormat::Json => {
            let subscriber = builder.fmt_fields(JsonFields::new()).event_format(JsonLine).finish();
            let installed = subscriber.with(super::otel::layer()).try_init().is_ok();
            if installed {
                super::log_format::KERNEL_JSON_INSTALLED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            installed
        }
        LogFormat::Pretty => {
            let subscriber = builder.with_ansi(false).event_format(PrettyLine::default()).finish();
            subscriber.with(super::otel::layer()).try_init().is_ok()
        }
    }
}

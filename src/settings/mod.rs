//! Frozen configuration: [`KernelSettings`] and its parts, [`ServiceConfig`], the
//! environment table.
//!
//! Settings are plain data. Each concept owns its part ([`AuthSettings`],
//! [`DatabaseSettings`], ...); [`KernelSettings`] composes them and
//! [`ServiceConfig`] is the spec's flat, friendly form that converts into it.
//! Once a service is built the settings live behind an `Arc` and are only ever
//! handed out as `&KernelSettings`: nothing can change them at run time.
//!
//! Environment variables are read in one place, [`env`](mod@env), from one table
//! ([`env::ENV_VARS`]). A bad value stops start-up with a [`SettingsError`] that
//! names the variable, the value and what is accepted.

pub mod env;
mod error;
mod kernel;
mod server;
mod service_config;

pub use crate::auth::{AuthMode, AuthSettings, JwtAlgorithm};
pub use crate::db::{DatabaseKind, DatabaseSettings, SchemaLimits, SchemaPolicy, SqliteSynchronous};
pub use crate::jobs::JobSettings;
pub use crate::observability::{LogFormat, ObservabilitySettings};
pub use crate::reliability::ReliabilitySettings;
pub use crate::streaming::StreamingSettings;
pub use error::SettingsError;
pub use kernel::{KernelSettings, RedisSettings};
pub use server::{
    CorsSettings, FeatureSettings, MetricsProtection, SecurityHeadersSettings, ServerSettings, StackSettings,
};
pub use service_config::ServiceConfig;

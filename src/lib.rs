#![doc = include_str!("../README.md")]

/// `$part` as an extractor that takes it from the router's state (axum's `FromRef`
/// sub-state): a router whose state cannot give it does not compile.
macro_rules! state_extractor {
    ($part:ty) => {
        impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $part
        where
            $part: axum::extract::FromRef<S>,
        {
            type Rejection = std::convert::Infallible;

            async fn from_request_parts(_parts: &mut http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
                Ok(<$part as axum::extract::FromRef<S>>::from_ref(state))
            }
        }
    };
}

pub mod api_doc;
pub mod auth;
pub(crate) mod client_addr;
pub mod db;
pub mod error;
pub mod jobs;
pub mod observability;
pub(crate) mod random;
#[cfg(feature = "redis")]
pub(crate) mod redis_conn;
pub mod reliability;
pub(crate) mod response_hook;
pub(crate) mod retry;
pub mod service;
pub mod settings;
pub mod streaming;
/// The test kit (`test-util` feature); it lives beside the service it builds.
#[cfg(feature = "test-util")]
pub use service::testing;
pub(crate) mod timestamp;

/// A hash map for the kernel's in-process caches (tables, columns, statements,
/// identities): foldhash hashes a short key several times faster than std's SipHash,
/// and its seed is still random per process.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use app_kernel_macros::migrations;
pub use db::Db;
pub use error::ApiError;
pub use service::{BootError, Kernel, Routes, Service};
pub use settings::{KernelSettings, ServiceConfig};

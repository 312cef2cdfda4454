#![doc = include_str!("../README.md")]

pub mod auth;
pub mod db;
pub mod error;
pub mod jobs;
pub mod observability;
#[cfg(feature = "redis")]
pub(crate) mod redis_conn;
pub mod reliability;
pub mod service;
pub mod settings;
pub mod streaming;

pub use db::Db;
pub use error::{ApiError, BootError};
pub use service::{Kernel, Service};
pub use settings::{KernelSettings, ServiceConfig};

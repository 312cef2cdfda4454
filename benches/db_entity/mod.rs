//! What both entity benchmarks share: the engines, the operations and the
//! hand-written baselines (`engines`), and each engine's side of them.

pub(crate) mod engines;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
pub(crate) mod sqlite_raw;

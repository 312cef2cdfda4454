//! Identity and authentication: who is calling, and may they.
//!
//! This module owns the auth settings and the identity extractors. A request's
//! identity comes from exactly one place (the configured [`AuthMode`]); tokens are
//! verified with one pinned algorithm.

mod settings;

pub use settings::{AuthMode, AuthSettings, JwtAlgorithm};

/// Stream lease limits (the spec's `StreamingSettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamingSettings {
    /// Open streams one user may hold across all instances (default 5).
    pub max_concurrent_per_user: u32,
    /// Seconds a lease lives unless refreshed (default 180).
    pub lease_ttl_seconds: u64,
}

impl Default for StreamingSettings {
    fn default() -> Self {
        Self { max_concurrent_per_user: 5, lease_ttl_seconds: 180 }
    }
}

/// Rate limiting and idempotency (the spec's `ReliabilitySettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReliabilitySettings {
    /// Apply the rate limit to `api_prefix` routes (default on).
    pub rate_limit_enabled: bool,
    /// Requests allowed per window (default 100).
    pub rate_limit_requests: u32,
    /// Window length in seconds (default 60).
    pub rate_limit_window_seconds: u64,
    /// Honour `Idempotency-Key` on POST/PUT/PATCH (default on).
    pub idempotency_enabled: bool,
    /// How long a stored response is replayed, in seconds (default 24 h).
    pub idempotency_ttl_seconds: u64,
}

impl Default for ReliabilitySettings {
    fn default() -> Self {
        Self {
            rate_limit_enabled: true,
            rate_limit_requests: 100,
            rate_limit_window_seconds: 60,
            idempotency_enabled: true,
            idempotency_ttl_seconds: 24 * 3600,
        }
    }
}

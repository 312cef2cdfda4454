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
    /// The largest response kept for replay, headers and body, in bytes (default
    /// 64 KiB): a larger one is answered but kept as its status only, and a repeat
    /// gets 409 `idempotency_response_not_kept` instead of running again.
    pub idempotency_max_record_bytes: usize,
    /// Keys kept per caller (default 1000): past it, the caller's oldest record goes.
    pub idempotency_max_keys_per_caller: usize,
}

impl Default for ReliabilitySettings {
    fn default() -> Self {
        Self {
            rate_limit_enabled: true,
            rate_limit_requests: 100,
            rate_limit_window_seconds: 60,
            idempotency_enabled: true,
            idempotency_ttl_seconds: 24 * 3600,
            idempotency_max_record_bytes: super::DEFAULT_MAX_RECORD_BYTES,
            idempotency_max_keys_per_caller: super::DEFAULT_MAX_KEYS_PER_CALLER,
        }
    }
}

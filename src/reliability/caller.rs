//! Who is calling, for the limits and records kept per caller.

use crate::auth::Auth;
use crate::client_addr::{bucket, client_ip, TrustedProxies};
use crate::error::ApiError;

/// How a layer tells callers apart: by user id when their credentials are good
/// (checked by `auth`), else by address (looked up behind the trusted proxies).
/// Without `auth`, every caller counts by address. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    auth: Option<Auth>,
    proxies: TrustedProxies,
}

impl Callers {
    /// Callers identified by `auth` (if any), addresses read behind `trusted_proxies`.
    pub fn new(auth: Option<Auth>, trusted_proxies: &[ipnet::IpNet]) -> Self {
        Self { auth, proxies: TrustedProxies::new(trusted_proxies) }
    }

    /// `user:<id>` for a caller whose credentials are good, else `ip:<address bucket>`.
    pub(crate) async fn caller(&self, parts: &mut http::request::Parts) -> String {
        if let Some(auth) = &self.auth {
            if let Ok(Some(user)) = crate::auth::identify(parts, auth).await {
                return ["user:", &user.id].concat();
            }
        }
        self.address(parts)
    }

    /// As [`caller`](Self::caller), except that credentials which cannot be checked
    /// because the user store is unreachable are that 503, not the address: a record
    /// kept per caller must not fall to the address of a user it cannot see (and the
    /// request would only wait for the same database again in its handler).
    pub(crate) async fn caller_or_unavailable(&self, parts: &mut http::request::Parts) -> Result<String, ApiError> {
        if let Some(auth) = &self.auth {
            match crate::auth::identify(parts, auth).await {
                Ok(Some(user)) => return Ok(["user:", &user.id].concat()),
                Err(e) if e.status() == http::StatusCode::SERVICE_UNAVAILABLE => return Err(e),
                Ok(None) | Err(_) => {}
            }
        }
        Ok(self.address(parts))
    }

    /// `ip:<address bucket>`, whatever credentials the caller sent.
    pub(crate) fn address(&self, parts: &http::request::Parts) -> String {
        match client_ip(parts, &self.proxies) {
            Some(ip) => format!("ip:{}", bucket(ip)),
            None => "ip:unknown".to_owned(),
        }
    }
}

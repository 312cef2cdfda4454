//! Who is calling, for the limits and records kept per caller.

/// `user:<id>` for a caller whose credentials are good, else `ip:<address bucket>`.
pub(crate) async fn caller(parts: &mut http::request::Parts) -> String {
    if let Ok(Some(user)) = crate::auth::identify(parts, &()).await {
        return ["user:", &user.id].concat();
    }
    address(parts)
}

/// `ip:<address bucket>`, whatever credentials the caller sent.
pub(crate) fn address(parts: &http::request::Parts) -> String {
    match crate::client_addr::client_ip(parts) {
        Some(ip) => format!("ip:{}", crate::client_addr::bucket(ip)),
        None => "ip:unknown".to_owned(),
    }
}

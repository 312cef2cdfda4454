//! Who is calling, for the limits and records kept per caller.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

/// `user:<id>` for a caller whose credentials are good, else `ip:<address bucket>`.
pub(crate) async fn caller(parts: &mut http::request::Parts) -> String {
    if let Ok(Some(user)) = crate::auth::identify(parts, &()).await {
        return ["user:", &user.id].concat();
    }
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", crate::client_addr::bucket(addr.ip())),
        None => "ip:unknown".to_owned(),
    }
}

//! The client's address, and which bucket it counts in for the limits keyed by
//! address (the login throttle, the API rate limit).
//!
//! The address is the peer's, unless the peer is one of
//! [`ServerSettings::trusted_proxies`](crate::settings::ServerSettings::trusted_proxies),
//! given as [`TrustedProxies`]:
//! then it is the last address in `X-Forwarded-For` that is not a trusted proxy.
//! Each proxy appends the address it received from, so that entry is the one no
//! client could forge; entries left of it are the client's word. A malformed entry
//! ends the walk at the last address known.
//!
//! Buckets: an IPv4 address alone, an IPv4-mapped IPv6 address as its IPv4 address,
//! any other IPv6 address by its /64, the block one host usually holds (so a host
//! cannot escape a limit by walking its own addresses).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::request::Parts;
use http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` entries are believed. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(std::sync::Arc<[IpNet]>);

impl TrustedProxies {
    /// Believes the proxies in `nets`.
    pub(crate) fn new(nets: &[IpNet]) -> Self {
        Self(nets.into())
    }
}

/// The client's address for this request (`None` without connect info).
pub(crate) fn client_ip(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(behind(peer, &trusted.0, &parts.headers))
}

/// The client behind `peer`, given the proxies `trusted`.
fn behind(peer: IpAddr, trusted: &[IpNet], headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    let mut client = peer;
    if !is_trusted(client) {
        return client;
    }
    // Several header lines read as one list, in order.
    for line in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(line) = line.to_str() else { return client };
        for hop in line.rsplit(',') {
            let hop = hop.trim();
            let Some(ip) = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())) else {
                return client;
            };
            client = ip;
            if !is_trusted(ip) {
                return ip;
            }
        }
    }
    client
}

/// The bucket of `ip`, as text.
pub(crate) fn bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{behind, bucket};
    use http::HeaderMap;

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", line.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_peer_is_looked_behind() {
        let trusted = ["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let spoofed = forwarded(&["1.1.1.1"]);
        // A client that is not a proxy cannot name another address.
        assert_eq!(behind("203.0.113.9".parse().unwrap(), &trusted, &spoofed).to_string(), "203.0.113.9");
        // Behind a trusted proxy: the last entry that is not a trusted proxy.
        let chain = forwarded(&["6.6.6.6, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(behind("10.0.0.1".parse().unwrap(), &trusted, &chain).to_string(), "203.0.113.9");
        assert_eq!(
            behind("::1".parse().unwrap(), &trusted, &forwarded(&["198.51.100.7:4711"])).to_string(),
            "198.51.100.7"
        );
        // Only proxies, or nothing: the first proxy; a malformed entry ends the walk.
        assert_eq!(behind("10.0.0.1".parse().unwrap(), &trusted, &forwarded(&["10.0.0.5"])).to_string(), "10.0.0.5");
        assert_eq!(behind("10.0.0.1".parse().unwrap(), &trusted, &HeaderMap::new()).to_string(), "10.0.0.1");
        assert_eq!(
            behind("10.0.0.1".parse().unwrap(), &trusted, &forwarded(&["1.2.3.4, junk"])).to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(bucket("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(bucket("::ffff:203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(bucket("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:db8:1:2:bbbb::9".parse().unwrap()), bucket("2001:db8:1:2::1".parse().unwrap()));
    }
}

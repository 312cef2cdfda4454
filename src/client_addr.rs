//! Which bucket a client address counts in, for the limits keyed by address (the
//! login throttle, the API rate limit): an IPv4 address alone, an IPv4-mapped IPv6
//! address as its IPv4 address, any other IPv6 address by its /64, the block one host
//! usually holds (so a host cannot escape a limit by walking its own addresses).

use std::net::IpAddr;

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
    use super::bucket;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(bucket("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(bucket("::ffff:203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(bucket("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:db8:1:2:bbbb::9".parse().unwrap()), bucket("2001:db8:1:2::1".parse().unwrap()));
    }
}

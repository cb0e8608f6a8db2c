//! Address strings ("host:port:family[-group]") and their socket addresses.
//!
//! This module owns the text form of a node address as Elliptics 2.26 writes it in configs
//! and on command lines, and its resolution to a [`SocketAddr`]. It does not own the 32-byte
//! `dnet_addr` wire layout (that is the protocol's) and never opens a socket.
//!
//! Syntax: `host:port:family` or `host:port:family-N`, split at the LAST two ':' so an
//! IPv6 host keeps its colons (`::1:1025:10`). `family` is 2 (AF_INET) or 10 (AF_INET6);
//! `N` is the route group used by nodes with several NICs. The host may be a name, an IPv4
//! literal, or an IPv6 literal with or without brackets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// AF_INET as Elliptics writes it in address strings.
pub const FAMILY_INET: u16 = 2;
/// AF_INET6 as Elliptics writes it in address strings.
pub const FAMILY_INET6: u16 = 10;

/// Why an address string could not be parsed or resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text does not have the `host:port:family` shape.
    #[error("expected \"host:port:family\" (e.g. \"127.0.0.1:1025:2\"), got {text:?}")]
    Syntax { text: String },
    /// The port is not a number in 1..=65535.
    #[error("bad port {port:?} in address {text:?}: expected a number in 1..=65535")]
    Port { text: String, port: String },
    /// The family is not 2 or 10.
    #[error("bad family {family:?} in address {text:?}: expected 2 (IPv4) or 10 (IPv6)")]
    Family { text: String, family: String },
    /// The route group after '-' is not an unsigned number.
    #[error("bad route group {group:?} in address {text:?}: expected \"host:port:family-N\"")]
    RouteGroup { text: String, group: String },
    /// getaddrinfo failed for the host.
    #[error("cannot resolve host {host:?}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The host resolved, but to no address of the requested family.
    #[error("host {host:?} has no {family_name} address (family {family})")]
    NoAddressOfFamily {
        host: String,
        family: u16,
        family_name: &'static str,
    },
}

/// A parsed address string: where a node listens or which peer to dial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddrSpec {
    /// Host name or IP literal, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// 2 (AF_INET) or 10 (AF_INET6).
    pub family: u16,
    /// The `-N` suffix of config addresses: the NIC route group, if given.
    pub route_group: Option<u32>,
}

impl AddrSpec {
    /// Parse `host:port:family` or `host:port:family-N`.
    pub fn parse(text: &str) -> Result<AddrSpec, AddressError> {
        let syntax = || AddressError::Syntax {
            text: text.to_string(),
        };
        let mut parts = text.trim().rsplitn(3, ':');
        let family_part = parts.next().ok_or_else(syntax)?;
        let port_part = parts.next().ok_or_else(syntax)?;
        let host_part = parts.next().ok_or_else(syntax)?;
        let host = strip_brackets(host_part);
        if host.is_empty() {
            return Err(syntax());
        }
        let port = match port_part.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(AddressError::Port {
                    text: text.to_string(),
                    port: port_part.to_string(),
                })
            }
        };
        let (family_text, group_text) = match family_part.split_once('-') {
            Some((family, group)) => (family, Some(group)),
            None => (family_part, None),
        };
        let family = match family_text.parse::<u16>() {
            Ok(family @ (FAMILY_INET | FAMILY_INET6)) => family,
            _ => {
                return Err(AddressError::Family {
                    text: text.to_string(),
                    family: family_text.to_string(),
                })
            }
        };
        let route_group = match group_text {
            None => None,
            Some(group) => Some(group.parse::<u32>().map_err(|_| AddressError::RouteGroup {
                text: text.to_string(),
                group: group.to_string(),
            })?),
        };
        Ok(AddrSpec {
            host: host.to_string(),
            port,
            family,
            route_group,
        })
    }

    /// The spec of a resolved socket address (no route group).
    pub fn from_socket_addr(addr: SocketAddr) -> AddrSpec {
        let family = if addr.is_ipv4() {
            FAMILY_INET
        } else {
            FAMILY_INET6
        };
        AddrSpec {
            host: addr.ip().to_string(),
            port: addr.port(),
            family,
            route_group: None,
        }
    }

    /// Resolve to one socket address of the requested family, as getaddrinfo would.
    /// "localhost" is 127.0.0.1 (family 2) or ::1 (family 10) without asking the resolver,
    /// so the advertised address matches what clients dial.
    pub fn resolve(&self) -> Result<SocketAddr, AddressError> {
        if self.host.eq_ignore_ascii_case("localhost") {
            let ip = if self.family == FAMILY_INET6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            };
            return Ok(SocketAddr::new(ip, self.port));
        }
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            if self.family_matches(&ip) {
                return Ok(SocketAddr::new(ip, self.port));
            }
            return Err(self.no_address_of_family());
        }
        let candidates = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|source| AddressError::Resolve {
                host: self.host.clone(),
                source,
            })?;
        candidates
            .into_iter()
            .find(|addr| self.family_matches(&addr.ip()))
            .ok_or_else(|| self.no_address_of_family())
    }

    fn family_matches(&self, ip: &IpAddr) -> bool {
        match self.family {
            FAMILY_INET => ip.is_ipv4(),
            FAMILY_INET6 => ip.is_ipv6(),
            _ => false,
        }
    }

    fn no_address_of_family(&self) -> AddressError {
        AddressError::NoAddressOfFamily {
            host: self.host.clone(),
            family: self.family,
            family_name: if self.family == FAMILY_INET6 {
                "IPv6"
            } else {
                "IPv4"
            },
        }
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
}

impl fmt::Display for AddrSpec {
    /// `host:port:family`, the form `dnet_ioclient -r` takes; the route group is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.port, self.family)
    }
}

impl std::str::FromStr for AddrSpec {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        AddrSpec::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_address_with_route_group_parses() {
        let spec = AddrSpec::parse("localhost:1025:2-0").unwrap();
        assert_eq!(spec.host, "localhost");
        assert_eq!(spec.port, 1025);
        assert_eq!(spec.family, 2);
        assert_eq!(spec.route_group, Some(0));
        assert_eq!(spec.to_string(), "localhost:1025:2");
    }

    #[test]
    fn ipv6_host_keeps_its_colons() {
        let spec = AddrSpec::parse("::1:1025:10").unwrap();
        assert_eq!(spec.host, "::1");
        assert_eq!(spec.resolve().unwrap(), "[::1]:1025".parse().unwrap());
        let bracketed = AddrSpec::parse("[fe80::1]:2000:10-3").unwrap();
        assert_eq!(bracketed.host, "fe80::1");
        assert_eq!(bracketed.route_group, Some(3));
    }

    #[test]
    fn localhost_resolves_to_loopback_of_the_family() {
        let v4 = AddrSpec::parse("localhost:1025:2").unwrap().resolve();
        assert_eq!(v4.unwrap(), "127.0.0.1:1025".parse().unwrap());
        let v6 = AddrSpec::parse("localhost:1025:10").unwrap().resolve();
        assert_eq!(v6.unwrap(), "[::1]:1025".parse().unwrap());
    }

    #[test]
    fn literal_of_the_wrong_family_is_refused() {
        let err = AddrSpec::parse("127.0.0.1:1025:10").unwrap().resolve();
        assert!(matches!(
            err,
            Err(AddressError::NoAddressOfFamily { family: 10, .. })
        ));
    }

    #[test]
    fn malformed_addresses_name_the_bad_part() {
        let cases = [
            ("localhost:1025", "expected \"host:port:family\""),
            (":1025:2", "expected \"host:port:family\""),
            ("h:0:2", "bad port \"0\""),
            ("h:70000:2", "bad port \"70000\""),
            ("h:1025:3", "bad family \"3\""),
            ("h:1025:2-x", "bad route group \"x\""),
        ];
        for (text, needle) in cases {
            let message = AddrSpec::parse(text).unwrap_err().to_string();
            assert!(message.contains(needle), "{text}: {message}");
        }
    }

    #[test]
    fn socket_addr_round_trips_through_the_spec() {
        let addr: SocketAddr = "127.0.0.2:1026".parse().unwrap();
        let spec = AddrSpec::from_socket_addr(addr);
        assert_eq!(spec.to_string(), "127.0.0.2:1026:2");
        assert_eq!(spec.resolve().unwrap(), addr);
    }
}

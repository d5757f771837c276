//! [`RpcEndpoint`]: `HOST:PORT`, checked in Rust before ggml sees it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::str::FromStr;

use super::{error, RpcProblem};
use crate::error::{Error, Result};

/// The host part of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RpcHost {
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets). The pinned ggml-rpc cannot use it.
    Ipv6(Ipv6Addr),
    /// A host name (resolved to an IPv4 address before use).
    Name(String),
}

impl fmt::Display for RpcHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcHost::Ipv4(ip) => write!(f, "{ip}"),
            RpcHost::Ipv6(ip) => write!(f, "[{ip}]"),
            RpcHost::Name(name) => f.write_str(name),
        }
    }
}

/// An RPC server's address: `HOST:PORT`, where HOST is an IPv4 address, a host name, or an
/// IPv6 address in brackets, and PORT is 1..=65535.
///
/// ```
/// use gguf_loader::rpc::RpcEndpoint;
/// let endpoint: RpcEndpoint = "127.0.0.1:50052".parse()?;
/// assert_eq!(endpoint.port(), 50052);
/// assert!(endpoint.is_loopback());
/// assert!("[::1]:50052".parse::<RpcEndpoint>().is_ok());
/// assert!("::1:50052".parse::<RpcEndpoint>().is_err()); // IPv6 needs brackets
/// # Ok::<(), gguf_loader::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RpcEndpoint {
    host: RpcHost,
    port: u16,
}

impl RpcEndpoint {
    /// An endpoint from an IPv4 address and a port.
    pub fn ipv4(ip: Ipv4Addr, port: u16) -> Self {
        RpcEndpoint {
            host: RpcHost::Ipv4(ip),
            port,
        }
    }

    /// Parses `HOST:PORT`.
    ///
    /// # Errors
    /// [`Error::Rpc`] with [`RpcProblem::Malformed`], naming the text.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| error(format!("{text:?}"), RpcProblem::Malformed, reason);
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address opened with `[` is not closed with `]`"))?;
            let ip: Ipv6Addr = inside
                .parse()
                .map_err(|_| bad(&format!("{inside:?} is not an IPv6 address")))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("no `:PORT` after the bracketed address"))?;
            (RpcHost::Ipv6(ip), port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| bad("no `:PORT` (write HOST:PORT)"))?;
            if host.contains(':') {
                return Err(bad("IPv6 addresses go in brackets: [ADDR]:PORT"));
            }
            if host.is_empty() {
                return Err(bad("the host is empty"));
            }
            let host = match host.parse::<Ipv4Addr>() {
                Ok(ip) => RpcHost::Ipv4(ip),
                Err(_) => {
                    check_host_name(host).map_err(|reason| bad(&reason))?;
                    RpcHost::Name(host.to_ascii_lowercase())
                }
            };
            (host, port)
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
            return Err(bad(&format!("port {port:?} is not a number 1..=65535")));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(&format!("port {port} is outside 1..=65535")))?;
        Ok(RpcEndpoint { host, port })
    }

    /// Parses a comma-separated list (`HOST:PORT,HOST:PORT`); empty items are refused.
    ///
    /// # Errors
    /// As [`Self::parse`], for the first bad item.
    pub fn parse_list(text: &str) -> Result<Vec<Self>> {
        text.split(',')
            .map(|item| Self::parse(item.trim()))
            .collect()
    }

    /// The host.
    pub fn host(&self) -> &RpcHost {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            RpcHost::Ipv4(ip) => ip.is_loopback(),
            RpcHost::Ipv6(ip) => ip.is_loopback(),
            RpcHost::Name(name) => name == "localhost",
        }
    }

    /// The IPv4 socket address ggml-rpc would connect to: the address itself, or the first
    /// IPv4 address the name resolves to.
    ///
    /// # Errors
    /// `Unsupported` for IPv6, `Unreachable` for a name without an IPv4 address.
    pub fn resolve(&self) -> Result<SocketAddrV4> {
        match &self.host {
            RpcHost::Ipv4(ip) => Ok(SocketAddrV4::new(*ip, self.port)),
            RpcHost::Ipv6(_) => Err(error(
                self,
                RpcProblem::Unsupported,
                "the pinned ggml-rpc connects and listens over IPv4 only (its endpoint parser splits at the first `:`)",
            )),
            RpcHost::Name(name) => {
                let addresses = (name.as_str(), self.port).to_socket_addrs().map_err(|e| {
                    error(self, RpcProblem::Unreachable, format!("cannot resolve {name}: {e}"))
                })?;
                addresses
                    .filter_map(|a| match a {
                        SocketAddr::V4(v4) => Some(v4),
                        SocketAddr::V6(_) => None,
                    })
                    .next()
                    .ok_or_else(|| {
                        error(
                            self,
                            RpcProblem::Unreachable,
                            format!("{name} has no IPv4 address (the pinned ggml-rpc speaks IPv4 only)"),
                        )
                    })
            }
        }
    }
}

/// A DNS name: labels of letters, digits and `-` (not at either end), 1..=63 bytes each,
/// at most 253 bytes in all.
fn check_host_name(host: &str) -> Result<(), String> {
    if host.len() > 253 {
        return Err(format!("host name of {} bytes (at most 253)", host.len()));
    }
    for label in host.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!(
                "{host:?} is neither an IPv4 address nor a host name (letters, digits, `-` and `.`)"
            ));
        }
    }
    Ok(())
}

impl FromStr for RpcEndpoint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for RpcEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl TryFrom<String> for RpcEndpoint {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        Self::parse(&text)
    }
}

impl From<RpcEndpoint> for String {
    fn from(endpoint: RpcEndpoint) -> String {
        endpoint.to_string()
    }
}

impl From<SocketAddrV4> for RpcEndpoint {
    fn from(address: SocketAddrV4) -> Self {
        RpcEndpoint::ipv4(*address.ip(), address.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_print() {
        for (text, shown) in [
            ("127.0.0.1:50052", "127.0.0.1:50052"),
            ("Localhost:1", "localhost:1"),
            ("rpc-1.example.org:65535", "rpc-1.example.org:65535"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            assert_eq!(RpcEndpoint::parse(text).unwrap().to_string(), shown);
        }
        for bad in [
            "",
            "host",
            "host:",
            ":1",
            "host:0",
            "host:65536",
            "host:+5",
            "host:5x",
            "::1:5",
            "[::1]",
            "[::1]5",
            "[nope]:5",
            "a b:1",
            "-a:1",
            "a..b:1",
            "host:1:2",
        ] {
            let error = RpcEndpoint::parse(bad).unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::Rpc {
                        problem: RpcProblem::Malformed,
                        ..
                    }
                ),
                "{bad:?}: {error}"
            );
        }
        let list = RpcEndpoint::parse_list("127.0.0.1:1, 127.0.0.1:2").unwrap();
        assert_eq!(list.len(), 2);
        assert!(RpcEndpoint::parse_list("127.0.0.1:1,").is_err());
        assert!(matches!(
            RpcEndpoint::parse("[::1]:5").unwrap().resolve(),
            Err(Error::Rpc {
                problem: RpcProblem::Unsupported,
                ..
            })
        ));
        assert!(RpcEndpoint::parse("10.0.0.1:5").unwrap().resolve().is_ok());
        assert!(!RpcEndpoint::parse("10.0.0.1:5").unwrap().is_loopback());
    }
}

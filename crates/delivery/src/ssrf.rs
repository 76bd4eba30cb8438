//! The SSRF guard: outbound requests to private, loopback, link-local, unspecified, multicast and
//! similar non-public addresses are refused unless the host name or the address is allowlisted.
//!
//! The check runs on the addresses a name *resolves to*, inside the HTTP client's resolver
//! ([`GuardedResolver`]), so the address checked is the address connected to and a DNS rebinding
//! cannot slip past it; literal-IP URLs, which skip the resolver, are checked by
//! [`SsrfPolicy::check_url_host`] before sending. The classification itself is pure.
//!
//! Must not know templates, retries or storage.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use leadwire_liquid::{FetchError, FetchRequest, FetchResponse, Fetcher};

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restricted {
    Private,
    Loopback,
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
    /// 100.64.0.0/10, carrier-grade NAT.
    SharedAddressSpace,
    /// 0.0.0.0/8, 240.0.0.0/4 and similar ranges that no public host uses.
    Reserved,
}

impl std::fmt::Display for Restricted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Restricted::Private => "a private address",
            Restricted::Loopback => "a loopback address",
            Restricted::LinkLocal => "a link-local address",
            Restricted::Unspecified => "the unspecified address",
            Restricted::Multicast => "a multicast address",
            Restricted::Broadcast => "the broadcast address",
            Restricted::SharedAddressSpace => "a carrier-grade NAT address",
            Restricted::Reserved => "a reserved address",
        })
    }
}

/// Classifies `ip`; `None` means public. IPv4-mapped IPv6 addresses are judged as their IPv4.
pub fn classify_ip(ip: IpAddr) -> Option<Restricted> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Restricted> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() {
        Some(Restricted::Unspecified)
    } else if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if ip.is_private() {
        Some(Restricted::Private)
    } else if ip.is_link_local() {
        Some(Restricted::LinkLocal)
    } else if ip.is_multicast() {
        Some(Restricted::Multicast)
    } else if ip.is_broadcast() {
        Some(Restricted::Broadcast)
    } else if a == 100 && (64..128).contains(&b) {
        Some(Restricted::SharedAddressSpace)
    } else if a == 0 || a >= 240 {
        Some(Restricted::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Restricted> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some(Restricted::Unspecified)
    } else if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if ip.is_multicast() {
        Some(Restricted::Multicast)
    } else if first & 0xfe00 == 0xfc00 {
        Some(Restricted::Private)
    } else if first & 0xffc0 == 0xfe80 {
        Some(Restricted::LinkLocal)
    } else if first & 0xffc0 == 0xfec0 {
        // Deprecated site-local, still routed privately in places.
        Some(Restricted::Private)
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-compatible ::a.b.c.d (deprecated) carries an IPv4 address too.
        classify_v4(v4).map(|_| Restricted::Reserved)
    } else {
        None
    }
}

/// A network in CIDR form, for the allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IP address or CIDR network")]
pub struct BadNetwork(String);

impl std::str::FromStr for IpNet {
    type Err = BadNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadNetwork(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A refused destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused to connect to {host} ({ip}): it is {kind}; allowlist the host to permit it")]
pub struct Blocked {
    pub host: String,
    pub ip: IpAddr,
    pub kind: Restricted,
}

/// Which destinations are allowed despite not being public.
#[derive(Debug, Clone, Default)]
pub struct SsrfPolicy {
    hosts: HashSet<String>,
    nets: Vec<IpNet>,
    /// Disables the guard entirely (never in production configuration).
    disabled: bool,
}

impl SsrfPolicy {
    /// Refuses every non-public address.
    pub fn strict() -> SsrfPolicy {
        SsrfPolicy::default()
    }

    /// Allows nothing to be refused; for embedding in trusted test rigs only.
    pub fn disabled() -> SsrfPolicy {
        SsrfPolicy {
            disabled: true,
            ..SsrfPolicy::default()
        }
    }

    /// Allows a host name (matched case-insensitively, exactly) whatever it resolves to.
    pub fn allow_host(mut self, host: &str) -> SsrfPolicy {
        self.hosts
            .insert(host.trim_end_matches('.').to_ascii_lowercase());
        self
    }

    /// Allows an address or network.
    pub fn allow_net(mut self, net: IpNet) -> SsrfPolicy {
        self.nets.push(net);
        self
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.disabled
            || self
                .hosts
                .contains(&host.trim_end_matches('.').to_ascii_lowercase())
    }

    /// Checks the addresses `host` resolved to: all must be public or allowlisted.
    pub fn check(&self, host: &str, ips: &[IpAddr]) -> Result<(), Blocked> {
        if self.host_allowed(host) {
            return Ok(());
        }
        for &ip in ips {
            if let Some(kind) = classify_ip(ip)
                && !self.nets.iter().any(|n| n.contains(ip))
            {
                return Err(Blocked {
                    host: host.to_owned(),
                    ip,
                    kind,
                });
            }
        }
        Ok(())
    }

    /// Checks a URL host that is an IP literal (`127.0.0.1`, `[::1]`); names pass here and are
    /// checked when resolved.
    pub fn check_url_host(&self, host: &str) -> Result<(), Blocked> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check(host, &[ip]),
            Err(_) => Ok(()),
        }
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver and refuses names that
/// resolve to restricted addresses. Install with `reqwest::ClientBuilder::dns_resolver`.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<SsrfPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<SsrfPolicy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            policy.check(&host, &ips)?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Finds a [`Blocked`] refusal in an error's source chain (reqwest wraps the resolver's error).
pub fn find_blocked<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        current = e.source();
    }
    None
}

/// Wraps a connected_content [`Fetcher`] so literal-IP URLs obey the policy too (names are
/// checked by the client's [`GuardedResolver`] when the fetcher's client was built with one).
pub struct GuardedFetcher {
    inner: Arc<dyn Fetcher>,
    policy: Arc<SsrfPolicy>,
}

impl GuardedFetcher {
    pub fn new(inner: Arc<dyn Fetcher>, policy: Arc<SsrfPolicy>) -> GuardedFetcher {
        GuardedFetcher { inner, policy }
    }
}

impl Fetcher for GuardedFetcher {
    fn fetch(&self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        if let Ok(url) = reqwest::Url::parse(&request.url)
            && let Some(host) = url.host_str()
        {
            self.policy
                .check_url_host(host)
                .map_err(|b| FetchError::Refused(b.to_string()))?;
        }
        self.inner.fetch(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn restricted_ranges() {
        let cases = [
            ("10.1.2.3", Some(Restricted::Private)),
            ("172.16.0.1", Some(Restricted::Private)),
            ("172.31.255.255", Some(Restricted::Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Restricted::Private)),
            ("127.0.0.1", Some(Restricted::Loopback)),
            ("127.255.0.9", Some(Restricted::Loopback)),
            ("169.254.169.254", Some(Restricted::LinkLocal)),
            ("0.0.0.0", Some(Restricted::Unspecified)),
            ("0.1.2.3", Some(Restricted::Reserved)),
            ("224.0.0.1", Some(Restricted::Multicast)),
            ("255.255.255.255", Some(Restricted::Broadcast)),
            ("100.64.0.1", Some(Restricted::SharedAddressSpace)),
            ("100.128.0.1", None),
            ("8.8.8.8", None),
            ("::1", Some(Restricted::Loopback)),
            ("::", Some(Restricted::Unspecified)),
            ("fc00::1", Some(Restricted::Private)),
            ("fdff:ffff::1", Some(Restricted::Private)),
            ("fe80::1", Some(Restricted::LinkLocal)),
            ("febf::1", Some(Restricted::LinkLocal)),
            ("ff02::1", Some(Restricted::Multicast)),
            ("::ffff:127.0.0.1", Some(Restricted::Loopback)),
            ("::ffff:10.0.0.1", Some(Restricted::Private)),
            ("::ffff:8.8.8.8", None),
            ("2606:4700::1111", None),
        ];
        for (addr, expected) in cases {
            assert_eq!(classify_ip(ip(addr)), expected, "{addr}");
        }
    }

    #[test]
    fn networks_parse_and_match() {
        let net: IpNet = "127.0.0.0/8".parse().expect("net");
        assert!(net.contains(ip("127.9.9.9")));
        assert!(net.contains(ip("::ffff:127.0.0.2")));
        assert!(!net.contains(ip("128.0.0.1")));
        let one: IpNet = "::1".parse().expect("single");
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: IpNet = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("10.0.0.1")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("localhost".parse::<IpNet>().is_err());
    }

    #[test]
    fn policy_refuses_unless_allowlisted() {
        let strict = SsrfPolicy::strict();
        let err = strict
            .check("internal.example", &[ip("8.8.8.8"), ip("10.0.0.5")])
            .expect_err("one private address is enough to refuse");
        assert_eq!(err.kind, Restricted::Private);
        assert!(err.to_string().contains("allowlist"), "{err}");
        assert!(strict.check("dns.google", &[ip("8.8.8.8")]).is_ok());
        assert!(strict.check_url_host("[::1]").is_err());
        assert!(strict.check_url_host("example.com").is_ok());

        let by_host = SsrfPolicy::strict().allow_host("LocalHost");
        assert!(by_host.check("localhost.", &[ip("127.0.0.1")]).is_ok());
        assert!(by_host.check("evil.example", &[ip("127.0.0.1")]).is_err());

        let by_net = SsrfPolicy::strict().allow_net("127.0.0.1".parse().expect("ip"));
        assert!(by_net.check_url_host("127.0.0.1").is_ok());
        assert!(by_net.check_url_host("127.0.0.2").is_err());
        assert!(SsrfPolicy::disabled().check_url_host("10.0.0.1").is_ok());
    }

    #[tokio::test]
    async fn resolver_checks_resolved_addresses() {
        use reqwest::dns::Resolve as _;
        let name = |s: &str| s.parse::<reqwest::dns::Name>().expect("name");
        let strict = GuardedResolver::new(Arc::new(SsrfPolicy::strict()));
        let err = match strict.resolve(name("localhost")).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        let blocked = find_blocked(err.as_ref()).expect("a Blocked error");
        assert_eq!(blocked.kind, Restricted::Loopback);
        let allowed = GuardedResolver::new(Arc::new(SsrfPolicy::strict().allow_host("localhost")));
        let addrs: Vec<SocketAddr> = allowed
            .resolve(name("localhost"))
            .await
            .expect("allowlisted")
            .collect();
        assert!(!addrs.is_empty());
    }
}

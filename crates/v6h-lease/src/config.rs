//! The engine's configuration: links with address and prefix pools, lifetimes, reservations.
//!
//! These are plain values (also readable from TOML through serde) that
//! [`Engine::new`](crate::Engine::new) validates: pools must not overlap each other once their
//! exclusions are applied, and no resource may be reserved for two clients.

use crate::types::{Prefix, Resource};
use serde::Deserialize;
use std::net::Ipv6Addr;

/// Lifetimes handed out with a lease, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime (at least `preferred`).
    pub valid: u32,
    /// T1 override; default is 0.5 × preferred.
    #[serde(default)]
    pub t1: Option<u32>,
    /// T2 override; default is 0.8 × preferred.
    #[serde(default)]
    pub t2: Option<u32>,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            preferred: 3600,
            valid: 7200,
            t1: None,
            t2: None,
        }
    }
}

impl Lifetimes {
    /// T1: the override or half the preferred lifetime.
    pub fn t1(&self) -> u32 {
        self.t1.unwrap_or(self.preferred / 2)
    }

    /// T2: the override or 0.8 × the preferred lifetime.
    pub fn t2(&self) -> u32 {
        self.t2
            .unwrap_or(((u64::from(self.preferred) * 4) / 5) as u32)
    }
}

/// An IA_NA address pool: the range `first..=last` minus `exclude`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaPoolConfig {
    /// First address of the range.
    pub first: Ipv6Addr,
    /// Last address of the range.
    pub last: Ipv6Addr,
    /// Addresses or prefixes never handed out (e.g. the router's own addresses).
    #[serde(default)]
    pub exclude: Vec<Prefix>,
}

impl NaPoolConfig {
    /// A pool covering a whole prefix.
    pub fn from_prefix(p: Prefix, exclude: Vec<Prefix>) -> Self {
        NaPoolConfig {
            first: Ipv6Addr::from(p.first()),
            last: Ipv6Addr::from(p.last()),
            exclude,
        }
    }
}

/// An IA_PD pool: `prefix` carved into prefixes of `delegated_len`, minus any that overlap
/// `exclude` (e.g. the /56 covering the LAN /64).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdPoolConfig {
    /// The prefix to carve, e.g. the routed /48.
    pub prefix: Prefix,
    /// Length of each delegated prefix, e.g. 56.
    pub delegated_len: u8,
    /// Sub-prefixes never delegated; any delegated prefix overlapping one is left out.
    #[serde(default)]
    pub exclude: Vec<Prefix>,
}

/// One link (an interface, or a relay's link) with its pools.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Name used in leases and on the command line (interface name or relay label).
    pub name: String,
    /// Address pools.
    #[serde(default)]
    pub na_pools: Vec<NaPoolConfig>,
    /// Prefix delegation pools.
    #[serde(default)]
    pub pd_pools: Vec<PdPoolConfig>,
    /// Prefixes on-link for Confirm and relay link selection; default: the NA pools' ranges.
    #[serde(default)]
    pub on_link: Vec<Prefix>,
    /// Lifetimes of addresses.
    #[serde(default)]
    pub na_lifetimes: Lifetimes,
    /// Lifetimes of delegated prefixes.
    #[serde(default)]
    pub pd_lifetimes: Lifetimes,
    /// Whether Solicit with Rapid Commit may commit directly.
    #[serde(default)]
    pub rapid_commit: bool,
}

impl LinkConfig {
    /// A link with no pools and default lifetimes.
    pub fn new(name: &str) -> Self {
        LinkConfig {
            name: name.to_string(),
            na_pools: Vec::new(),
            pd_pools: Vec::new(),
            on_link: Vec::new(),
            na_lifetimes: Lifetimes::default(),
            pd_lifetimes: Lifetimes::default(),
            rapid_commit: false,
        }
    }
}

/// A host reservation: resources only the client with `duid` may get, on `link`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    /// The link (by name) the reservation applies to.
    pub link: String,
    /// The client's DUID (raw bytes; in TOML an array of numbers).
    pub duid: Vec<u8>,
    /// Reserved addresses, each given to one IA_NA of this client.
    #[serde(default)]
    pub addresses: Vec<Ipv6Addr>,
    /// Reserved prefixes, each given to one IA_PD of this client.
    #[serde(default)]
    pub prefixes: Vec<Prefix>,
}

impl Reservation {
    /// The reserved resources.
    pub fn resources(&self) -> impl Iterator<Item = Resource> + '_ {
        self.addresses
            .iter()
            .map(|a| Resource::Addr(*a))
            .chain(self.prefixes.iter().map(|p| Resource::Prefix(*p)))
    }
}

/// Everything the engine needs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The links served.
    pub links: Vec<LinkConfig>,
    /// Host reservations.
    #[serde(default)]
    pub reservations: Vec<Reservation>,
    /// At most this many bound leases (addresses and prefixes together) per client DUID on
    /// one link; further IAs get NoAddrsAvail/NoPrefixAvail. 0 means no limit. Default
    /// [`DEFAULT_MAX_LEASES_PER_CLIENT`].
    #[serde(default = "default_max_leases_per_client")]
    pub max_leases_per_client: u32,
    /// How long a declined address or prefix is quarantined (seconds).
    #[serde(default = "default_quarantine")]
    pub decline_quarantine_secs: u64,
    /// Whether Renew/Rebind for an unknown IA re-creates the binding when its leases are free
    /// and appropriate (RFC 8415 §18.3.4–5 allow it); otherwise Renew gets NoBinding.
    #[serde(default = "default_true")]
    pub recreate_unknown: bool,
    /// Lifetimes of individual reserved addresses and prefixes (dhcp6s.conf `host` blocks
    /// give each its own); other leases get their link's. Each entry must name a resource
    /// of [`EngineConfig::reservations`]. Set by the DHCPv6 front end; not read from TOML.
    #[serde(skip)]
    pub reserved_lifetimes: Vec<(Resource, Lifetimes)>,
    /// Lifetimes for one client's pool addresses (dhcp6s.conf `host { address-pool P pl vl; }`):
    /// an IA_NA address inside the range, leased to that DUID, gets these instead of the
    /// link's. Set by the DHCPv6 front end; not read from TOML.
    #[serde(skip)]
    pub host_pool_lifetimes: Vec<HostPoolLifetimes>,
}

/// Lifetimes for the addresses one client gets from one address range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPoolLifetimes {
    /// The client's DUID.
    pub duid: Vec<u8>,
    /// First address of the range.
    pub first: Ipv6Addr,
    /// Last address of the range.
    pub last: Ipv6Addr,
    /// The lifetimes to send.
    pub lifetimes: Lifetimes,
}

/// Default of [`EngineConfig::max_leases_per_client`]: a home router asks for one or two
/// IA_NA and one IA_PD per upstream link, and no common client uses more than a few IAs; 16
/// leaves room for multi-IA setups while one DUID can take no more than 16 units of a pool.
pub const DEFAULT_MAX_LEASES_PER_CLIENT: u32 = 16;

fn default_max_leases_per_client() -> u32 {
    DEFAULT_MAX_LEASES_PER_CLIENT
}
fn default_quarantine() -> u64 {
    86_400
}
fn default_true() -> bool {
    true
}

impl EngineConfig {
    /// A config with these links, no reservations and default timers.
    pub fn new(links: Vec<LinkConfig>) -> Self {
        EngineConfig {
            links,
            reservations: Vec::new(),
            max_leases_per_client: DEFAULT_MAX_LEASES_PER_CLIENT,
            decline_quarantine_secs: default_quarantine(),
            recreate_unknown: true,
            reserved_lifetimes: Vec::new(),
            host_pool_lifetimes: Vec::new(),
        }
    }
}

/// A configuration the engine refuses, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two links share a name.
    #[error("link '{0}' is defined twice")]
    DuplicateLink(String),
    /// An NA pool's first address is above its last.
    #[error("link '{link}': address pool {first}..{last} is empty (first > last)")]
    EmptyRange {
        /// Link name.
        link: String,
        /// First address.
        first: Ipv6Addr,
        /// Last address.
        last: Ipv6Addr,
    },
    /// An NA pool covers the whole address space.
    #[error("link '{0}': address pool covers all of IPv6")]
    HugeRange(String),
    /// A PD pool's delegated length does not fit.
    #[error(
        "link '{link}': pd pool {prefix} cannot delegate /{delegated_len} (must be longer than the pool and at most 64 bits more)"
    )]
    DelegatedLen {
        /// Link name.
        link: String,
        /// The pool prefix.
        prefix: Prefix,
        /// The delegated length.
        delegated_len: u8,
    },
    /// A pool has no usable entry after exclusions.
    #[error("link '{link}': pool {pool} has nothing left after exclusions")]
    EmptyPool {
        /// Link name.
        link: String,
        /// The pool, as text.
        pool: String,
    },
    /// Two pools (on the same or different links) hand out overlapping space.
    #[error("pools overlap: {a} and {b} (exclude the shared part from one of them)")]
    PoolOverlap {
        /// First pool, as `link: range`.
        a: String,
        /// Second pool, as `link: range`.
        b: String,
    },
    /// Lifetimes are inconsistent.
    #[error("link '{link}': {what}")]
    Lifetimes {
        /// Link name.
        link: String,
        /// What is wrong.
        what: String,
    },
    /// A reservation names a link that does not exist.
    #[error("reservation for DUID {duid} names unknown link '{link}'")]
    UnknownLink {
        /// The link name.
        link: String,
        /// The DUID in hex.
        duid: String,
    },
    /// A reservation has an empty DUID.
    #[error("reservation on link '{0}' has an empty DUID")]
    EmptyDuid(String),
    /// The same (or an overlapping) resource is reserved twice.
    #[error("{0} is reserved twice (or overlaps another reservation)")]
    ReservationConflict(String),
    /// Lifetimes are given for an address or prefix that no reservation holds.
    #[error("lifetimes given for {0}, which is not reserved")]
    UnreservedLifetimes(String),
}

pub(crate) fn check_lifetimes(link: &str, kind: &str, l: &Lifetimes) -> Result<(), ConfigError> {
    let err = |what: String| {
        Err(ConfigError::Lifetimes {
            link: link.to_string(),
            what,
        })
    };
    if l.preferred > l.valid {
        return err(format!(
            "{kind} preferred lifetime {} exceeds valid lifetime {}",
            l.preferred, l.valid
        ));
    }
    if l.t1() > l.t2() {
        return err(format!("{kind} T1 {} exceeds T2 {}", l.t1(), l.t2()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t1_t2_defaults_and_overrides() {
        let l = Lifetimes {
            preferred: 1000,
            valid: 2000,
            t1: None,
            t2: None,
        };
        assert_eq!((l.t1(), l.t2()), (500, 800));
        let l = Lifetimes {
            t1: Some(10),
            t2: Some(20),
            ..l
        };
        assert_eq!((l.t1(), l.t2()), (10, 20));
        let big = Lifetimes {
            preferred: u32::MAX,
            valid: u32::MAX,
            t1: None,
            t2: None,
        };
        assert_eq!(big.t2(), (u64::from(u32::MAX) * 4 / 5) as u32);
    }

    #[test]
    fn toml_config() {
        let text = r#"
            max_leases_per_client = 4
            [[links]]
            name = "lan0"
            na_pools = [{ first = "2001:db8:1234::100", last = "2001:db8:1234::1ff", exclude = ["2001:db8:1234::101/128"] }]
            pd_pools = [{ prefix = "2001:db8:1234::/48", delegated_len = 56, exclude = ["2001:db8:1234::/64"] }]
            [[reservations]]
            link = "lan0"
            duid = [0, 3, 0, 1, 2, 3, 4, 5, 6, 7]
            addresses = ["2001:db8:1234::99"]
        "#;
        let c: EngineConfig = toml::from_str(text).unwrap();
        assert_eq!(c.max_leases_per_client, 4);
        assert_eq!(c.decline_quarantine_secs, 86_400);
        assert!(c.recreate_unknown);
        assert_eq!(c.links[0].pd_pools[0].delegated_len, 56);
        assert_eq!(c.links[0].na_pools[0].exclude[0].len(), 128);
        assert_eq!(c.reservations[0].duid.len(), 10);
        let e = crate::Engine::new(c).unwrap();
        // 256 addresses minus one excluded; 256 /56s minus the LAN's.
        let u = e.pool_usage();
        assert_eq!((u[0].size, u[1].size), (255, 255));
        let bad = text.replace("delegated_len = 56", "delegated_len = 40");
        let c: EngineConfig = toml::from_str(&bad).unwrap();
        assert!(matches!(
            crate::Engine::new(c),
            Err(ConfigError::DelegatedLen { .. })
        ));
        assert!(toml::from_str::<EngineConfig>("links = []\nbogus = 1").is_err());
    }

    /// Reserved resources carry their own lifetimes (and T1/T2 from them); lifetimes for an
    /// unreserved resource or inconsistent ones are refused.
    #[test]
    fn reserved_lifetimes_apply_to_their_reservation_only() {
        use crate::{Engine, IaKind, IaRequest, Status};
        let mut lan = LinkConfig::new("lan0");
        lan.na_pools.push(NaPoolConfig {
            first: "2001:db8::100".parse().unwrap(),
            last: "2001:db8::1ff".parse().unwrap(),
            exclude: Vec::new(),
        });
        let mut c = EngineConfig::new(vec![lan]);
        let host: Ipv6Addr = "2001:db8::99".parse().unwrap();
        c.reservations.push(Reservation {
            link: "lan0".into(),
            duid: vec![0, 3, 0, 1, 9],
            addresses: vec![host],
            prefixes: Vec::new(),
        });
        let own = Lifetimes {
            preferred: 100,
            valid: 200,
            t1: None,
            t2: None,
        };
        c.reserved_lifetimes.push((Resource::Addr(host), own));
        let mut e = Engine::new(c.clone()).unwrap();
        let link = e.link_id("lan0").unwrap();
        let req = |duid: &'static [u8]| IaRequest {
            link,
            duid,
            kind: IaKind::Na,
            iaid: 1,
            leases: &[],
        };
        let r = e.request(0, &req(&[0, 3, 0, 1, 9]));
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.leases[0].resource, Resource::Addr(host));
        assert_eq!((r.leases[0].preferred, r.leases[0].valid), (100, 200));
        assert_eq!((r.t1, r.t2), (50, 80));
        let r = e.request(0, &req(&[0, 3, 0, 1, 8]));
        assert_eq!((r.leases[0].preferred, r.leases[0].valid), (3600, 7200));
        assert_eq!((r.t1, r.t2), (1800, 2880));
        let mut bad = c.clone();
        bad.reserved_lifetimes[0].0 = Resource::Addr("2001:db8::98".parse().unwrap());
        assert!(matches!(
            Engine::new(bad),
            Err(ConfigError::UnreservedLifetimes(_))
        ));
        let mut bad = c;
        bad.reserved_lifetimes[0].1.preferred = 300;
        assert!(matches!(
            Engine::new(bad),
            Err(ConfigError::Lifetimes { .. })
        ));
    }
}

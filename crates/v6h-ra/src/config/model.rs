//! The typed model of a radvd.conf file, with every default resolved.
//!
//! A [`Config`] is what the parser ([`super::parse_str`]) and the TOML loader
//! ([`super::from_toml`]) produce after validation. Every value is the
//! effective one: defaults that radvd computes from `MaxRtrAdvInterval` are
//! already filled in (including the order-dependent defaults of spec §1.7), so
//! consumers never have to apply radvd's default rules themselves.
//!
//! Lists keep configuration order, which is wire order for prefixes, routes,
//! RDNSS, DNSSL and PREF64. `clients` and `AdvRASrcAddress` also keep
//! configuration order (radvd reverses them; v6home does not, see
//! `docs/radvd-compat.md`).

use serde::{Deserialize, Serialize};
use std::net::Ipv6Addr;

/// A lifetime in seconds where `0xFFFF_FFFF` means "infinity".
///
/// In TOML it is written as an integer or the string `"infinity"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lifetime(pub u32);

impl Lifetime {
    /// The `infinity` value (all ones).
    pub const INFINITY: Lifetime = Lifetime(u32::MAX);

    /// Whether this is the `infinity` value.
    pub fn is_infinite(self) -> bool {
        self.0 == u32::MAX
    }

    /// The value in seconds (`u32::MAX` for infinity).
    pub fn secs(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for Lifetime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_infinite() {
            f.write_str("infinity")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl Serialize for Lifetime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_infinite() {
            s.serialize_str("infinity")
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Lifetime;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of seconds (0..=4294967295) or \"infinity\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Lifetime, E> {
                u32::try_from(v)
                    .map(Lifetime)
                    .map_err(|_| E::custom(format!("lifetime {v} is above 4294967295")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Lifetime, E> {
                u32::try_from(v)
                    .map(Lifetime)
                    .map_err(|_| E::custom(format!("lifetime {v} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Lifetime, E> {
                if v.eq_ignore_ascii_case("infinity") {
                    Ok(Lifetime::INFINITY)
                } else {
                    Err(E::custom(format!("expected \"infinity\", found \"{v}\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Router / route preference (RFC 4191 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    /// `low` (-1), wire bits 11.
    Low,
    /// `medium` (0), wire bits 00.
    #[default]
    Medium,
    /// `high` (1), wire bits 01.
    High,
}

impl Preference {
    /// The 2-bit wire encoding (RFC 4191: 01 high, 00 medium, 11 low).
    pub fn bits(self) -> u8 {
        match self {
            Preference::Low => 0b11,
            Preference::Medium => 0b00,
            Preference::High => 0b01,
        }
    }

    /// The radvd.conf keyword (`low`, `medium`, `high`).
    pub fn keyword(self) -> &'static str {
        match self {
            Preference::Low => "low",
            Preference::Medium => "medium",
            Preference::High => "high",
        }
    }
}

/// A whole radvd.conf: one or more interface definitions, in file order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `interface NAME { … };` blocks, in file order; names are unique.
    #[serde(rename = "interface")]
    pub interfaces: Vec<Interface>,
}

/// One `interface NAME { … };` block with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Interface name (1–15 bytes).
    pub name: String,
    /// `IgnoreIfMissing` (default on): a missing interface is not fatal.
    pub ignore_if_missing: bool,
    /// `AdvSendAdvert` (default off): send RAs on this interface at all.
    pub adv_send_advert: bool,
    /// `UnicastOnly` (default off): never multicast RAs (NBMA links).
    pub unicast_only: bool,
    /// `UnrestrictedUnicast` (default off): answer RSs of hosts not in `clients`.
    pub unrestricted_unicast: bool,
    /// `AdvRASolicitedUnicast` (default on): answer RSs by unicast (RFC 7772).
    pub adv_ra_solicited_unicast: bool,
    /// `MaxRtrAdvInterval` in seconds (default 600).
    pub max_rtr_adv_interval: f64,
    /// `MinRtrAdvInterval` in seconds (default max(3, 0.33 × Max), at most 0.75 × Max).
    pub min_rtr_adv_interval: f64,
    /// `MinDelayBetweenRAs` in seconds (default 3).
    pub min_delay_between_ras: f64,
    /// `AdvManagedFlag` (M flag, default off).
    pub adv_managed_flag: bool,
    /// `AdvOtherConfigFlag` (O flag, default off).
    pub adv_other_config_flag: bool,
    /// `AdvLinkMTU` (default 0 = no MTU option); 0 or ≥ 1280.
    pub adv_link_mtu: u32,
    /// `AdvRAMTU` (default 1280): the RA size budget, clamped to 1280–131072.
    pub adv_ra_mtu: u32,
    /// `AdvReachableTime` in milliseconds (default 0 = unspecified), ≤ 3 600 000.
    pub adv_reachable_time: u32,
    /// `AdvRetransTimer` in milliseconds (default 0 = unspecified).
    pub adv_retrans_timer: u32,
    /// `AdvCurHopLimit` (default 64).
    pub adv_cur_hop_limit: u8,
    /// `AdvDefaultLifetime` in seconds (default 3 × Max, at least 1, at most 65535);
    /// 0 or Max … 65535.
    pub adv_default_lifetime: u16,
    /// `AdvDefaultPreference` (default medium).
    pub adv_default_preference: Preference,
    /// `AdvSourceLLAddress` (default on): include the SLLAO.
    pub adv_source_ll_address: bool,
    /// `RemoveAdvOnExit` (default on): send final RAs on shutdown.
    pub remove_adv_on_exit: bool,
    /// `AdvHomeAgentFlag` (H flag, default off).
    pub adv_home_agent_flag: bool,
    /// `AdvHomeAgentInfo` (default off): send the Home Agent Information option.
    pub adv_home_agent_info: bool,
    /// `HomeAgentLifetime` in seconds (default = AdvDefaultLifetime).
    pub home_agent_lifetime: u16,
    /// `HomeAgentPreference` (default 0).
    pub home_agent_preference: u16,
    /// `AdvMobRtrSupportFlag` (default off): mobile-router bit in the HA option.
    pub adv_mob_rtr_support_flag: bool,
    /// `AdvIntervalOpt` (default off): send the Advertisement Interval option.
    pub adv_interval_opt: bool,
    /// `AdvCaptivePortalAPI "URL"` (RFC 8910), quotes stripped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adv_captive_portal_api: Option<String>,
    /// `AdvSNACRouterFlag` (default off): the SNAC router flag (radvd HEAD).
    pub adv_snac_router_flag: bool,
    /// `prefix` blocks, in wire order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<Prefix>,
    /// `route` blocks (RFC 4191 RIO), in wire order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<Route>,
    /// `RDNSS` blocks (RFC 8106), in wire order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdnss: Vec<Rdnss>,
    /// `DNSSL` blocks (RFC 8106), in wire order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dnssl: Vec<Dnssl>,
    /// `clients { … };` entries in configuration order; empty = multicast as usual.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<Client>,
    /// `AdvRASrcAddress { … };` candidates in configuration order (first present wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adv_ra_src_address: Vec<Ipv6Addr>,
    /// `nat64prefix` blocks (RFC 8781 PREF64), in wire order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nat64prefix: Vec<Nat64Prefix>,
    /// `autoignoreprefixes { … };`: prefixes removed from auto (`::/N`) prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoignoreprefixes: Vec<IgnorePrefix>,
    /// `abro` blocks (RFC 6775); only the first is advertised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abro: Vec<Abro>,
    /// `lowpanco` blocks (RFC 6775 6CO); only the first is advertised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lowpanco: Vec<LowpanCo>,
}

impl Interface {
    /// An interface with radvd's defaults for `MaxRtrAdvInterval` 600.
    pub fn new(name: &str) -> Interface {
        let max = DEFAULT_MAX_RTR_ADV_INTERVAL;
        let dl = default_lifetime_for(max);
        Interface {
            name: name.to_string(),
            ignore_if_missing: true,
            adv_send_advert: false,
            unicast_only: false,
            unrestricted_unicast: false,
            adv_ra_solicited_unicast: true,
            max_rtr_adv_interval: max,
            min_rtr_adv_interval: default_min_for(max, false),
            min_delay_between_ras: 3.0,
            adv_managed_flag: false,
            adv_other_config_flag: false,
            adv_link_mtu: 0,
            adv_ra_mtu: 1280,
            adv_reachable_time: 0,
            adv_retrans_timer: 0,
            adv_cur_hop_limit: 64,
            adv_default_lifetime: dl,
            adv_default_preference: Preference::Medium,
            adv_source_ll_address: true,
            remove_adv_on_exit: true,
            adv_home_agent_flag: false,
            adv_home_agent_info: false,
            home_agent_lifetime: dl,
            home_agent_preference: 0,
            adv_mob_rtr_support_flag: false,
            adv_interval_opt: false,
            adv_captive_portal_api: None,
            adv_snac_router_flag: false,
            prefix: Vec::new(),
            route: Vec::new(),
            rdnss: Vec::new(),
            dnssl: Vec::new(),
            clients: Vec::new(),
            adv_ra_src_address: Vec::new(),
            nat64prefix: Vec::new(),
            autoignoreprefixes: Vec::new(),
            abro: Vec::new(),
            lowpanco: Vec::new(),
        }
    }

    /// Mobile IPv6 mode (relaxed interval minimums): AdvHomeAgentFlag,
    /// AdvHomeAgentInfo, AdvIntervalOpt, or any prefix with AdvRouterAddr.
    pub fn mipv6(&self) -> bool {
        self.adv_home_agent_flag
            || self.adv_home_agent_info
            || self.adv_interval_opt
            || self.prefix.iter().any(|p| p.adv_router_addr)
    }
}

/// Default `MaxRtrAdvInterval` (seconds).
pub const DEFAULT_MAX_RTR_ADV_INTERVAL: f64 = 600.0;

/// `3 × Max` truncated to whole seconds, as radvd computes block lifetimes
/// (`3 × 4.5 → 13`).
pub fn three_times(max: f64) -> u32 {
    let v = (3.0 * max).trunc();
    if v.is_nan() || v <= 0.0 {
        0
    } else if v >= f64::from(u32::MAX) {
        u32::MAX - 1
    } else {
        v as u32
    }
}

/// Default `AdvDefaultLifetime` for a given Max: 3 × Max, at least 1, at most 65535.
pub fn default_lifetime_for(max: f64) -> u16 {
    u16::try_from(three_times(max).max(1)).unwrap_or(u16::MAX)
}

/// Default `MinRtrAdvInterval` for a given Max: 0.33 × Max, raised to the
/// minimum (3 s, or 0.03 s in MIPv6 mode) but never above 0.75 × Max.
pub fn default_min_for(max: f64, mipv6: bool) -> f64 {
    let lo = if mipv6 { 0.03 } else { 3.0 };
    (max * 33.0 / 100.0).max(lo).min(max * 0.75)
}

/// `prefix ADDR/LEN [{ … }];`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    /// The prefix exactly as configured (host bits not cleared; see [`Prefix::advertised`]).
    pub prefix: Ipv6Addr,
    /// Prefix length, 0–128.
    pub len: u8,
    /// `AdvOnLink` (L flag, default on).
    pub adv_on_link: bool,
    /// `AdvAutonomous` (A flag, default on).
    pub adv_autonomous: bool,
    /// `AdvRouterAddr` (R flag, default off).
    pub adv_router_addr: bool,
    /// `AdvDHCPv6PDPreferred` (P flag, RFC 9762, default off).
    pub adv_dhcpv6_pd_preferred: bool,
    /// `AdvValidLifetime` (default 86400).
    pub adv_valid_lifetime: Lifetime,
    /// `AdvPreferredLifetime` (default 14400), never above the valid lifetime.
    pub adv_preferred_lifetime: Lifetime,
    /// `DeprecatePrefix` (default off): final RA with preferred 0, valid ≤ 7200.
    pub deprecate_prefix: bool,
    /// `DecrementLifetimes` (default off): count lifetimes down between RAs.
    pub decrement_lifetimes: bool,
    /// `Base6Interface IF`: advertise IF's non-link-local prefixes (needs /64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base6_interface: Option<String>,
    /// `Base6to4Interface IF`: 2002:<IPv4 of IF> + configured bytes 6–15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base6to4_interface: Option<String>,
}

impl Prefix {
    /// A prefix with radvd's defaults.
    pub fn new(prefix: Ipv6Addr, len: u8) -> Prefix {
        Prefix {
            prefix,
            len,
            adv_on_link: true,
            adv_autonomous: true,
            adv_router_addr: false,
            adv_dhcpv6_pd_preferred: false,
            adv_valid_lifetime: Lifetime(86400),
            adv_preferred_lifetime: Lifetime(14400),
            deprecate_prefix: false,
            decrement_lifetimes: false,
            base6_interface: None,
            base6to4_interface: None,
        }
    }

    /// An all-zero prefix (`::/64`, `::/0`…): advertise every non-link-local
    /// prefix of the interface instead (minus `autoignoreprefixes`).
    pub fn is_auto(&self) -> bool {
        self.prefix.is_unspecified()
    }

    /// The prefix as v6home puts it on the wire: host bits cleared unless
    /// `AdvRouterAddr` is on (RFC 6275 §7.2 carries the full router address).
    pub fn advertised(&self) -> Ipv6Addr {
        if self.adv_router_addr {
            self.prefix
        } else {
            mask(self.prefix, self.len)
        }
    }
}

/// Clear all bits after the first `len` bits (`len` ≥ 128 keeps everything).
pub fn mask(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let m = if len == 0 {
        0
    } else if len >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    Ipv6Addr::from(bits & m)
}

/// `route ADDR/LEN { … };` (RFC 4191 Route Information Option).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The route prefix as configured (v6home masks host bits on the wire).
    pub prefix: Ipv6Addr,
    /// Prefix length, 0–128.
    pub len: u8,
    /// `AdvRoutePreference` (default medium).
    pub adv_route_preference: Preference,
    /// `AdvRouteLifetime` (default 3 × Max as set when the block was read).
    pub adv_route_lifetime: Lifetime,
    /// `RemoveRoute` (default on): lifetime 0 in final RAs.
    pub remove_route: bool,
}

/// `RDNSS ADDR… { … };` (RFC 8106 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rdnss {
    /// 1–127 server addresses, in configuration order.
    pub addresses: Vec<Ipv6Addr>,
    /// `AdvRDNSSLifetime` (default 3 × Max as set when the block was read).
    pub adv_rdnss_lifetime: Lifetime,
    /// `FlushRDNSS` (default on): lifetime 0 in final RAs.
    pub flush_rdnss: bool,
}

/// `DNSSL NAME… { … };` (RFC 8106 §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dnssl {
    /// Search domains as written (`[A-Za-z0-9.-]`, a trailing dot allowed).
    pub suffixes: Vec<String>,
    /// `AdvDNSSLLifetime` (default 3 × Max as set when the block was read).
    pub adv_dnssl_lifetime: Lifetime,
    /// `FlushDNSSL` (default on): lifetime 0 in final RAs.
    pub flush_dnssl: bool,
}

/// One entry of a `clients { … };` block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client's (usually link-local) address.
    pub address: Ipv6Addr,
    /// `!ADDR`: this host never gets RAs.
    #[serde(default)]
    pub excluded: bool,
}

/// `nat64prefix ADDR/LEN [{ AdvValidLifetime N; }];` (RFC 8781 PREF64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat64Prefix {
    /// The NAT64 prefix (not all-zero).
    pub prefix: Ipv6Addr,
    /// One of 32, 40, 48, 56, 64, 96.
    pub len: u8,
    /// `AdvValidLifetime` in seconds, ≤ 65528 (default min(65528, 3 × Max)).
    pub adv_valid_lifetime: u16,
}

/// One `ADDR/LEN` entry of `autoignoreprefixes { … };`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnorePrefix {
    /// The prefix to ignore (matched exactly, with its length).
    pub prefix: Ipv6Addr,
    /// Prefix length, 0–128.
    pub len: u8,
}

/// `abro ADDR [/LEN] { … };` (RFC 6775 §4.3 Authoritative Border Router).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abro {
    /// The 6LBR address.
    pub address: Ipv6Addr,
    /// The deprecated, ignored `/LEN` (kept for a lossless round trip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u8>,
    /// `AdvVersionLow` (default 0).
    pub adv_version_low: u16,
    /// `AdvVersionHigh` (default 0).
    pub adv_version_high: u16,
    /// `AdvValidLifetime` (60 s units on the wire, default 0).
    pub adv_valid_lifetime: u16,
}

/// `lowpanco { … };` (RFC 6775 §4.2 6LoWPAN Context Option; prefix always `::`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowpanCo {
    /// `AdvContextLength`, 0–128 (default 0).
    pub adv_context_length: u8,
    /// `AdvContextCompressionFlag` (C flag, default off).
    pub adv_context_compression_flag: bool,
    /// `AdvContextID` (default 0; the wire has 4 bits, larger values warn).
    pub adv_context_id: u8,
    /// `AdvLifeTime` (60 s units on the wire, default 0).
    pub adv_life_time: u16,
}

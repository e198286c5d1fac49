//! The option keywords of every radvd.conf block: radvd spelling, TOML name and value kind.

/// The block an option belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    Iface,
    Prefix,
    Route,
    Rdnss,
    Dnssl,
    Nat64,
    Abro,
    Lowpanco,
}

impl Block {
    /// How the block is named in "expected …" messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Block::Iface => "an interface option or block",
            Block::Prefix => "a prefix option",
            Block::Route => "a route option",
            Block::Rdnss => "an RDNSS option",
            Block::Dnssl => "a DNSSL option",
            Block::Nat64 => "`AdvValidLifetime`",
            Block::Abro => "an abro option",
            Block::Lowpanco => "a lowpanco option",
        }
    }
}

/// The value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `on` / `off`.
    Bool,
    /// NUMBER or DECIMAL (seconds).
    Decimal,
    /// NUMBER.
    Number,
    /// NUMBER or `infinity`.
    NumOrInf,
    /// `low` / `medium` / `high` / negative number.
    Pref,
    /// STRING (bare or quoted).
    Str,
}

impl Kind {
    pub(crate) fn what(self) -> &'static str {
        match self {
            Kind::Bool => "`on` or `off`",
            Kind::Decimal => "a number of seconds",
            Kind::Number => "a number",
            Kind::NumOrInf => "a number or `infinity`",
            Kind::Pref => "`low`, `medium` or `high`",
            Kind::Str => "a string",
        }
    }
}

/// Every scalar option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::enum_variant_names)]
pub(crate) enum Key {
    IgnoreIfMissing,
    AdvSendAdvert,
    UnicastOnly,
    UnrestrictedUnicast,
    AdvRASolicitedUnicast,
    MaxRtrAdvInterval,
    MinRtrAdvInterval,
    MinDelayBetweenRAs,
    AdvManagedFlag,
    AdvOtherConfigFlag,
    AdvLinkMTU,
    AdvRAMTU,
    AdvReachableTime,
    AdvRetransTimer,
    AdvCurHopLimit,
    AdvDefaultLifetime,
    AdvDefaultPreference,
    AdvSourceLLAddress,
    RemoveAdvOnExit,
    AdvHomeAgentFlag,
    AdvHomeAgentInfo,
    HomeAgentLifetime,
    HomeAgentPreference,
    AdvMobRtrSupportFlag,
    AdvIntervalOpt,
    AdvCaptivePortalAPI,
    AdvSNACRouterFlag,
    // prefix
    AdvOnLink,
    AdvAutonomous,
    AdvRouterAddr,
    AdvDHCPv6PDPreferred,
    PrefixValidLifetime,
    AdvPreferredLifetime,
    DeprecatePrefix,
    DecrementLifetimes,
    Base6Interface,
    Base6to4Interface,
    // route
    AdvRoutePreference,
    AdvRouteLifetime,
    RemoveRoute,
    // RDNSS
    AdvRDNSSLifetime,
    FlushRDNSS,
    AdvRDNSSPreference,
    AdvRDNSSOpen,
    // DNSSL
    AdvDNSSLLifetime,
    FlushDNSSL,
    // nat64prefix
    Nat64ValidLifetime,
    // abro
    AdvVersionLow,
    AdvVersionHigh,
    AbroValidLifetime,
    // lowpanco
    AdvContextLength,
    AdvContextCompressionFlag,
    AdvContextID,
    AdvLifeTime,
}

/// (key, block, radvd spelling, TOML name, kind)
pub(crate) struct KeyInfo {
    pub(crate) key: Key,
    pub(crate) block: Block,
    pub(crate) radvd: &'static str,
    pub(crate) toml: &'static str,
    pub(crate) kind: Kind,
}

macro_rules! k {
    ($key:ident, $block:ident, $radvd:literal, $toml:literal, $kind:ident) => {
        KeyInfo {
            key: Key::$key,
            block: Block::$block,
            radvd: $radvd,
            toml: $toml,
            kind: Kind::$kind,
        }
    };
}

pub(crate) static KEYS: &[KeyInfo] = &[
    k!(
        IgnoreIfMissing,
        Iface,
        "IgnoreIfMissing",
        "ignore_if_missing",
        Bool
    ),
    k!(
        AdvSendAdvert,
        Iface,
        "AdvSendAdvert",
        "adv_send_advert",
        Bool
    ),
    k!(UnicastOnly, Iface, "UnicastOnly", "unicast_only", Bool),
    k!(
        UnrestrictedUnicast,
        Iface,
        "UnrestrictedUnicast",
        "unrestricted_unicast",
        Bool
    ),
    k!(
        AdvRASolicitedUnicast,
        Iface,
        "AdvRASolicitedUnicast",
        "adv_ra_solicited_unicast",
        Bool
    ),
    k!(
        MaxRtrAdvInterval,
        Iface,
        "MaxRtrAdvInterval",
        "max_rtr_adv_interval",
        Decimal
    ),
    k!(
        MinRtrAdvInterval,
        Iface,
        "MinRtrAdvInterval",
        "min_rtr_adv_interval",
        Decimal
    ),
    k!(
        MinDelayBetweenRAs,
        Iface,
        "MinDelayBetweenRAs",
        "min_delay_between_ras",
        Decimal
    ),
    k!(
        AdvManagedFlag,
        Iface,
        "AdvManagedFlag",
        "adv_managed_flag",
        Bool
    ),
    k!(
        AdvOtherConfigFlag,
        Iface,
        "AdvOtherConfigFlag",
        "adv_other_config_flag",
        Bool
    ),
    k!(AdvLinkMTU, Iface, "AdvLinkMTU", "adv_link_mtu", Number),
    k!(AdvRAMTU, Iface, "AdvRAMTU", "adv_ra_mtu", Number),
    k!(
        AdvReachableTime,
        Iface,
        "AdvReachableTime",
        "adv_reachable_time",
        Number
    ),
    k!(
        AdvRetransTimer,
        Iface,
        "AdvRetransTimer",
        "adv_retrans_timer",
        Number
    ),
    k!(
        AdvCurHopLimit,
        Iface,
        "AdvCurHopLimit",
        "adv_cur_hop_limit",
        Number
    ),
    k!(
        AdvDefaultLifetime,
        Iface,
        "AdvDefaultLifetime",
        "adv_default_lifetime",
        Number
    ),
    k!(
        AdvDefaultPreference,
        Iface,
        "AdvDefaultPreference",
        "adv_default_preference",
        Pref
    ),
    k!(
        AdvSourceLLAddress,
        Iface,
        "AdvSourceLLAddress",
        "adv_source_ll_address",
        Bool
    ),
    k!(
        RemoveAdvOnExit,
        Iface,
        "RemoveAdvOnExit",
        "remove_adv_on_exit",
        Bool
    ),
    k!(
        AdvHomeAgentFlag,
        Iface,
        "AdvHomeAgentFlag",
        "adv_home_agent_flag",
        Bool
    ),
    k!(
        AdvHomeAgentInfo,
        Iface,
        "AdvHomeAgentInfo",
        "adv_home_agent_info",
        Bool
    ),
    k!(
        HomeAgentLifetime,
        Iface,
        "HomeAgentLifetime",
        "home_agent_lifetime",
        Number
    ),
    k!(
        HomeAgentPreference,
        Iface,
        "HomeAgentPreference",
        "home_agent_preference",
        Number
    ),
    k!(
        AdvMobRtrSupportFlag,
        Iface,
        "AdvMobRtrSupportFlag",
        "adv_mob_rtr_support_flag",
        Bool
    ),
    k!(
        AdvIntervalOpt,
        Iface,
        "AdvIntervalOpt",
        "adv_interval_opt",
        Bool
    ),
    k!(
        AdvCaptivePortalAPI,
        Iface,
        "AdvCaptivePortalAPI",
        "adv_captive_portal_api",
        Str
    ),
    k!(
        AdvSNACRouterFlag,
        Iface,
        "AdvSNACRouterFlag",
        "adv_snac_router_flag",
        Bool
    ),
    k!(AdvOnLink, Prefix, "AdvOnLink", "adv_on_link", Bool),
    k!(
        AdvAutonomous,
        Prefix,
        "AdvAutonomous",
        "adv_autonomous",
        Bool
    ),
    k!(
        AdvRouterAddr,
        Prefix,
        "AdvRouterAddr",
        "adv_router_addr",
        Bool
    ),
    k!(
        AdvDHCPv6PDPreferred,
        Prefix,
        "AdvDHCPv6PDPreferred",
        "adv_dhcpv6_pd_preferred",
        Bool
    ),
    k!(
        PrefixValidLifetime,
        Prefix,
        "AdvValidLifetime",
        "adv_valid_lifetime",
        NumOrInf
    ),
    k!(
        AdvPreferredLifetime,
        Prefix,
        "AdvPreferredLifetime",
        "adv_preferred_lifetime",
        NumOrInf
    ),
    k!(
        DeprecatePrefix,
        Prefix,
        "DeprecatePrefix",
        "deprecate_prefix",
        Bool
    ),
    k!(
        DecrementLifetimes,
        Prefix,
        "DecrementLifetimes",
        "decrement_lifetimes",
        Bool
    ),
    k!(
        Base6Interface,
        Prefix,
        "Base6Interface",
        "base6_interface",
        Str
    ),
    k!(
        Base6to4Interface,
        Prefix,
        "Base6to4Interface",
        "base6to4_interface",
        Str
    ),
    k!(
        AdvRoutePreference,
        Route,
        "AdvRoutePreference",
        "adv_route_preference",
        Pref
    ),
    k!(
        AdvRouteLifetime,
        Route,
        "AdvRouteLifetime",
        "adv_route_lifetime",
        NumOrInf
    ),
    k!(RemoveRoute, Route, "RemoveRoute", "remove_route", Bool),
    k!(
        AdvRDNSSLifetime,
        Rdnss,
        "AdvRDNSSLifetime",
        "adv_rdnss_lifetime",
        NumOrInf
    ),
    k!(FlushRDNSS, Rdnss, "FlushRDNSS", "flush_rdnss", Bool),
    k!(
        AdvRDNSSPreference,
        Rdnss,
        "AdvRDNSSPreference",
        "adv_rdnss_preference",
        Number
    ),
    k!(AdvRDNSSOpen, Rdnss, "AdvRDNSSOpen", "adv_rdnss_open", Bool),
    k!(
        AdvDNSSLLifetime,
        Dnssl,
        "AdvDNSSLLifetime",
        "adv_dnssl_lifetime",
        NumOrInf
    ),
    k!(FlushDNSSL, Dnssl, "FlushDNSSL", "flush_dnssl", Bool),
    k!(
        Nat64ValidLifetime,
        Nat64,
        "AdvValidLifetime",
        "adv_valid_lifetime",
        Number
    ),
    k!(
        AdvVersionLow,
        Abro,
        "AdvVersionLow",
        "adv_version_low",
        Number
    ),
    k!(
        AdvVersionHigh,
        Abro,
        "AdvVersionHigh",
        "adv_version_high",
        Number
    ),
    k!(
        AbroValidLifetime,
        Abro,
        "AdvValidLifetime",
        "adv_valid_lifetime",
        Number
    ),
    k!(
        AdvContextLength,
        Lowpanco,
        "AdvContextLength",
        "adv_context_length",
        Number
    ),
    k!(
        AdvContextCompressionFlag,
        Lowpanco,
        "AdvContextCompressionFlag",
        "adv_context_compression_flag",
        Bool
    ),
    k!(
        AdvContextID,
        Lowpanco,
        "AdvContextID",
        "adv_context_id",
        Number
    ),
    k!(
        AdvLifeTime,
        Lowpanco,
        "AdvLifeTime",
        "adv_life_time",
        Number
    ),
];

/// Block-introducing keywords of the interface body, plus `interface` itself.
pub(crate) static STRUCTURE: &[&str] = &[
    "interface",
    "prefix",
    "route",
    "RDNSS",
    "DNSSL",
    "clients",
    "AdvRASrcAddress",
    "nat64prefix",
    "autoignoreprefixes",
    "abro",
    "lowpanco",
    // A keyword of radvd's scanner that no grammar rule uses.
    "AdvContextPrefix",
];

impl Key {
    pub(crate) fn info(self) -> &'static KeyInfo {
        // Every Key has exactly one entry in KEYS (checked by a unit test).
        KEYS.iter().find(|k| k.key == self).unwrap_or(&KEYS[0])
    }

    pub(crate) fn radvd(self) -> &'static str {
        self.info().radvd
    }

    pub(crate) fn kind(self) -> Kind {
        self.info().kind
    }
}

/// Find an option of `block` by its radvd spelling (caseless, like radvd ≥ 2.20).
pub(crate) fn lookup_radvd(block: Block, word: &str) -> Option<Key> {
    KEYS.iter()
        .find(|k| k.block == block && k.radvd.eq_ignore_ascii_case(word))
        .map(|k| k.key)
}

/// Find an option of `block` by its TOML name (exact).
pub(crate) fn lookup_toml(block: Block, name: &str) -> Option<Key> {
    KEYS.iter()
        .find(|k| k.block == block && k.toml == name)
        .map(|k| k.key)
}

/// Whether `word` is any radvd keyword (so it can't be a name or a value).
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYS.iter().any(|k| k.radvd.eq_ignore_ascii_case(word))
        || STRUCTURE.iter().any(|s| s.eq_ignore_ascii_case(word))
        || ["on", "off", "infinity", "low", "medium", "high"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_once_per_block() {
        for (i, a) in KEYS.iter().enumerate() {
            assert_eq!(a.key.info().radvd, a.radvd);
            for b in &KEYS[i + 1..] {
                assert_ne!(a.key, b.key);
                if a.block == b.block {
                    assert!(!a.radvd.eq_ignore_ascii_case(b.radvd), "{}", a.radvd);
                    assert_ne!(a.toml, b.toml);
                }
            }
        }
    }
}

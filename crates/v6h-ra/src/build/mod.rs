//! Building the RA(s) of one interface from its configuration and the live link state.
//!
//! Pure: everything that depends on the system (MTU, MAC, addresses, forwarding, the time since
//! DecrementLifetimes was reset) comes in through [`LinkContext`]. Options are emitted in radvd's
//! order (radvd.md §3): PIO, PREF64, RIO, RDNSS, DNSSL, MTU, SLLAO, Advertisement Interval,
//! Home Agent Information, 6CO, ABRO, Captive Portal; then split by the MTU budget.

use crate::config::{self, Interface, Lifetime};
use crate::wire::{
    self, CaptivePortal, DnsName, HomeAgentInfo, NdOptionRepr, Pref64, Preference, PrefixInfo,
    RaHeader, RouteInfo, SplitResult, option_type,
};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One IPv6 address configured on an interface, as netlink reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Remaining valid lifetime in seconds (`u32::MAX` = forever, as for static addresses).
    pub valid: u32,
    /// Remaining preferred lifetime in seconds.
    pub preferred: u32,
}

impl IfAddr {
    /// A static address (infinite lifetimes).
    pub fn permanent(addr: Ipv6Addr, prefix_len: u8) -> Self {
        IfAddr {
            addr,
            prefix_len,
            valid: u32::MAX,
            preferred: u32::MAX,
        }
    }
}

/// Addresses of another interface, for `Base6Interface` and `Base6to4Interface`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherIface {
    /// Its first IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 addresses.
    pub ipv6: Vec<IfAddr>,
}

/// The live state of the link an RA is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkContext {
    /// Device MTU (also bounds the RA size budget).
    pub mtu: u32,
    /// Link-layer address for the SLLAO (none on links without one).
    pub mac: Option<Vec<u8>>,
    /// IPv6 addresses of the interface (for `::/N` auto prefixes and the lifetime cap).
    pub addresses: Vec<IfAddr>,
    /// Whether IPv6 forwarding is on for the interface; off → router lifetime 0 (radvd.md §5.3).
    pub forwarding: bool,
    /// Seconds since DecrementLifetimes counters were (re)set.
    pub decrement_elapsed: u32,
    /// Other interfaces by name (only those named by Base6Interface / Base6to4Interface matter).
    pub others: BTreeMap<String, OtherIface>,
}

impl Default for LinkContext {
    fn default() -> Self {
        LinkContext {
            mtu: 1500,
            mac: None,
            addresses: Vec::new(),
            forwarding: true,
            decrement_elapsed: 0,
            others: BTreeMap::new(),
        }
    }
}

/// What kind of RA to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A normal periodic or solicited RA.
    Normal,
    /// A final RA (shutdown, interface disabled): router lifetime 0, Prf medium, and the
    /// RemoveRoute / FlushRDNSS / FlushDNSSL / DeprecatePrefix options applied.
    Final,
}

fn wire_pref(p: config::Preference) -> Preference {
    match p {
        config::Preference::Low => Preference::Low,
        config::Preference::Medium => Preference::Medium,
        config::Preference::High => Preference::High,
    }
}

/// The RA header for `iface`.
pub fn header(iface: &Interface, ctx: &LinkContext, mode: Mode) -> RaHeader {
    let lifetime = if mode == Mode::Final || !ctx.forwarding {
        0
    } else {
        iface.adv_default_lifetime
    };
    RaHeader {
        cur_hop_limit: iface.adv_cur_hop_limit,
        managed: iface.adv_managed_flag,
        other: iface.adv_other_config_flag,
        home_agent: iface.adv_home_agent_flag,
        // RFC 4191 §2.2: Prf MUST be 00 when the router lifetime is 0 (radvd.md §9.10).
        preference: if lifetime == 0 {
            Preference::Medium
        } else {
            wire_pref(iface.adv_default_preference)
        },
        snac: iface.adv_snac_router_flag,
        router_lifetime: lifetime,
        reachable_time: iface.adv_reachable_time,
        retrans_timer: iface.adv_retrans_timer,
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn in_prefix(a: &Ipv6Addr, p: &Ipv6Addr, len: u8) -> bool {
    config::mask(*a, len) == config::mask(*p, len)
}

/// Remaining lifetime after `elapsed` seconds (infinity never decrements).
fn decremented(l: Lifetime, elapsed: u32, on: bool) -> u32 {
    if !on || l.is_infinite() {
        l.secs()
    } else {
        l.secs().saturating_sub(elapsed)
    }
}

/// The Prefix Information options for the interface, auto prefixes expanded in place.
fn prefix_options(iface: &Interface, ctx: &LinkContext, mode: Mode) -> Vec<PrefixInfo> {
    let mut out: Vec<PrefixInfo> = Vec::new();
    for p in &iface.prefix {
        let mut valid = decremented(
            p.adv_valid_lifetime,
            ctx.decrement_elapsed,
            p.decrement_lifetimes,
        );
        let mut preferred = decremented(
            p.adv_preferred_lifetime,
            ctx.decrement_elapsed,
            p.decrement_lifetimes,
        );
        if p.decrement_lifetimes && !p.adv_preferred_lifetime.is_infinite() && preferred == 0 {
            // radvd.md §1.4: a decremented prefix is dropped once its preferred lifetime is 0.
            continue;
        }
        if mode == Mode::Final && p.deprecate_prefix {
            preferred = 0;
            valid = valid.min(7200);
        }
        let base = PrefixInfo {
            prefix_len: p.len,
            on_link: p.adv_on_link,
            autonomous: p.adv_autonomous,
            router_addr: p.adv_router_addr,
            pd_preferred: p.adv_dhcpv6_pd_preferred,
            valid_lifetime: valid,
            preferred_lifetime: preferred,
            prefix: p.advertised(),
        };
        // Candidate (prefix, len) pairs for the special forms.
        let derived: Option<Vec<(Ipv6Addr, u8)>> = if let Some(ifname) = &p.base6to4_interface {
            let v4 = ctx.others.get(ifname).and_then(|o| o.ipv4);
            Some(match v4 {
                Some(v4) => {
                    let mut o = p.prefix.octets();
                    o[0] = 0x20;
                    o[1] = 0x02;
                    o[2..6].copy_from_slice(&v4.octets());
                    vec![(config::mask(Ipv6Addr::from(o), 64), 64)]
                }
                None => Vec::new(),
            })
        } else if let Some(ifname) = &p.base6_interface {
            let addrs = ctx
                .others
                .get(ifname)
                .map(|o| o.ipv6.as_slice())
                .unwrap_or(&[]);
            Some(
                addrs
                    .iter()
                    .filter(|a| !is_link_local(&a.addr))
                    .map(|a| (config::mask(a.addr, a.prefix_len), a.prefix_len))
                    .collect(),
            )
        } else if p.is_auto() {
            Some(
                ctx.addresses
                    .iter()
                    .filter(|a| !is_link_local(&a.addr) && a.prefix_len <= 128)
                    .map(|a| (config::mask(a.addr, a.prefix_len), a.prefix_len))
                    .filter(|(pfx, len)| {
                        !iface
                            .autoignoreprefixes
                            .iter()
                            .any(|ig| ig.len == *len && config::mask(ig.prefix, ig.len) == *pfx)
                    })
                    .collect(),
            )
        } else {
            None
        };
        match derived {
            Some(list) => {
                for (pfx, len) in list {
                    let pi = PrefixInfo {
                        prefix: pfx,
                        prefix_len: len,
                        ..base
                    };
                    // No duplicates (radvd.md §9.12).
                    if !out.iter().any(|o| o.prefix == pfx && o.prefix_len == len) {
                        out.push(cap_by_addresses(pi, ctx));
                    }
                }
            }
            None => out.push(cap_by_addresses(base, ctx)),
        }
    }
    out
}

/// radvd 2.20+: advertise at most the largest lifetime of any address of the link inside the
/// prefix (static addresses are infinite, so they never cap).
fn cap_by_addresses(mut pi: PrefixInfo, ctx: &LinkContext) -> PrefixInfo {
    let inside: Vec<&IfAddr> = ctx
        .addresses
        .iter()
        .filter(|a| !is_link_local(&a.addr) && in_prefix(&a.addr, &pi.prefix, pi.prefix_len))
        .collect();
    if let (Some(v), Some(p)) = (
        inside.iter().map(|a| a.valid).max(),
        inside.iter().map(|a| a.preferred).max(),
    ) {
        pi.valid_lifetime = pi.valid_lifetime.min(v);
        pi.preferred_lifetime = pi.preferred_lifetime.min(p).min(pi.valid_lifetime);
    }
    pi
}

/// Position of an option kind in radvd's order; unknown kinds go last.
pub fn order_rank(kind: u8) -> u8 {
    use option_type as t;
    match kind {
        t::PREFIX => 0,
        t::PREF64 => 1,
        t::ROUTE => 2,
        t::RDNSS => 3,
        t::DNSSL => 4,
        t::MTU => 5,
        t::SLLA => 6,
        t::ADV_INTERVAL => 7,
        t::HA_INFO => 8,
        t::SIXCO => 9,
        t::ABRO => 10,
        t::CAPTIVE_PORTAL => 11,
        _ => 12,
    }
}

/// All options of the interface's RA, in radvd's order.
pub fn options(iface: &Interface, ctx: &LinkContext, mode: Mode) -> Vec<NdOptionRepr> {
    let fin = mode == Mode::Final;
    let mut v: Vec<NdOptionRepr> = prefix_options(iface, ctx, mode)
        .into_iter()
        .map(NdOptionRepr::Prefix)
        .collect();
    for n in &iface.nat64prefix {
        v.push(NdOptionRepr::Pref64(Pref64::from_lifetime_secs(
            u32::from(n.adv_valid_lifetime),
            n.len,
            config::mask(n.prefix, n.len),
        )));
    }
    for r in &iface.route {
        v.push(NdOptionRepr::Route(RouteInfo {
            prefix_len: r.len,
            preference: wire_pref(r.adv_route_preference),
            lifetime: if fin && r.remove_route {
                0
            } else {
                r.adv_route_lifetime.secs()
            },
            prefix: config::mask(r.prefix, r.len),
        }));
    }
    for r in &iface.rdnss {
        // The wire allows 127 addresses per option; longer lists become several options.
        for chunk in r.addresses.chunks(127) {
            v.push(NdOptionRepr::Rdnss(wire::Rdnss {
                lifetime: if fin && r.flush_rdnss {
                    0
                } else {
                    r.adv_rdnss_lifetime.secs()
                },
                servers: chunk.to_vec(),
            }));
        }
    }
    for d in &iface.dnssl {
        let domains: Vec<DnsName> = d
            .suffixes
            .iter()
            .filter_map(|s| DnsName::new(s).ok())
            .collect();
        if domains.is_empty() {
            continue;
        }
        v.push(NdOptionRepr::Dnssl(wire::Dnssl {
            lifetime: if fin && d.flush_dnssl {
                0
            } else {
                d.adv_dnssl_lifetime.secs()
            },
            domains,
        }));
    }
    if iface.adv_link_mtu != 0 {
        v.push(NdOptionRepr::Mtu(iface.adv_link_mtu));
    }
    if iface.adv_source_ll_address
        && let Some(mac) = &ctx.mac
        && !mac.is_empty()
    {
        v.push(NdOptionRepr::SourceLinkAddr(mac.clone()));
    }
    if iface.adv_interval_opt {
        let max = iface.max_rtr_adv_interval;
        let mut ms = (max * 1000.0).clamp(0.0, f64::from(u32::MAX)) as u32;
        if max < 0.2 {
            ms = ms.saturating_add(20);
        }
        v.push(NdOptionRepr::AdvInterval(ms));
    }
    if iface.adv_home_agent_info
        && (iface.home_agent_preference != 0
            || iface.home_agent_lifetime != iface.adv_default_lifetime
            || iface.adv_mob_rtr_support_flag)
    {
        v.push(NdOptionRepr::HomeAgentInfo(HomeAgentInfo {
            mobile_router: iface.adv_mob_rtr_support_flag,
            preference: iface.home_agent_preference,
            lifetime: iface.home_agent_lifetime,
        }));
    }
    if let Some(c) = iface.lowpanco.first() {
        v.push(NdOptionRepr::SixCo(wire::SixCo {
            context_len: c.adv_context_length.min(128),
            compression: c.adv_context_compression_flag,
            cid: c.adv_context_id & 0x0f,
            lifetime: c.adv_life_time,
            prefix: Ipv6Addr::UNSPECIFIED,
        }));
    }
    if let Some(a) = iface.abro.first() {
        v.push(NdOptionRepr::Abro(wire::Abro {
            version_low: a.adv_version_low,
            version_high: a.adv_version_high,
            lifetime: a.adv_valid_lifetime,
            address: a.address,
        }));
    }
    if let Some(uri) = &iface.adv_captive_portal_api {
        v.push(NdOptionRepr::CaptivePortal(CaptivePortal {
            uri: uri.clone(),
        }));
    }
    v
}

/// Merges zero-lifetime withdrawal options (from a reload) into `opts`, each placed after the
/// configured options of its kind so radvd's order is kept.
pub fn merge_withdrawn(
    mut opts: Vec<NdOptionRepr>,
    withdrawn: &[NdOptionRepr],
) -> Vec<NdOptionRepr> {
    opts.extend(withdrawn.iter().cloned());
    opts.sort_by_key(|o| order_rank(o.kind()));
    opts
}

/// The RA size budget for the interface (radvd.md §3).
pub fn budget(iface: &Interface, ctx: &LinkContext) -> usize {
    wire::ra_budget(iface.adv_ra_mtu.min(ctx.mtu.max(1280)))
}

/// Builds the complete RA(s) for `iface`: header, options in radvd order (plus `withdrawn`),
/// split across several RAs when they exceed the MTU budget.
pub fn build_ras(
    iface: &Interface,
    ctx: &LinkContext,
    mode: Mode,
    withdrawn: &[NdOptionRepr],
) -> SplitResult {
    let h = header(iface, ctx, mode);
    let opts = merge_withdrawn(options(iface, ctx, mode), withdrawn);
    wire::split_ras(&h, &opts, budget(iface, ctx))
}

/// Whether two options are the same kind of prefix-carrying option for the same prefix.
fn same_prefix(a: &NdOptionRepr, b: &NdOptionRepr) -> bool {
    match (a, b) {
        (NdOptionRepr::Prefix(x), NdOptionRepr::Prefix(y)) => {
            x.prefix == y.prefix && x.prefix_len == y.prefix_len
        }
        (NdOptionRepr::Route(x), NdOptionRepr::Route(y)) => {
            x.prefix == y.prefix && x.prefix_len == y.prefix_len
        }
        (NdOptionRepr::Pref64(x), NdOptionRepr::Pref64(y)) => {
            x.prefix == y.prefix && x.prefix_len == y.prefix_len
        }
        _ => false,
    }
}

/// Zero-lifetime versions of what was in `old` but is gone from `new` (SIGHUP reload,
/// radvd.md §5.5): PIO valid/preferred 0 with L/A kept; RIO and PREF64 lifetime 0; one RDNSS
/// (DNSSL) option at lifetime 0 listing only the servers (domains) no new option carries, so a
/// server that merely moved between options is not withdrawn.
pub fn removed_options(old: &[NdOptionRepr], new: &[NdOptionRepr]) -> Vec<NdOptionRepr> {
    let mut out = Vec::new();
    let new_servers: Vec<Ipv6Addr> = new
        .iter()
        .filter_map(|o| match o {
            NdOptionRepr::Rdnss(r) => Some(r.servers.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let new_domains: Vec<DnsName> = new
        .iter()
        .filter_map(|o| match o {
            NdOptionRepr::Dnssl(d) => Some(d.domains.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut gone_servers: Vec<Ipv6Addr> = Vec::new();
    let mut gone_domains: Vec<DnsName> = Vec::new();
    for o in old {
        match o {
            NdOptionRepr::Prefix(p) if !new.iter().any(|n| same_prefix(n, o)) => {
                out.push(NdOptionRepr::Prefix(PrefixInfo {
                    valid_lifetime: 0,
                    preferred_lifetime: 0,
                    ..*p
                }));
            }
            NdOptionRepr::Route(r) if !new.iter().any(|n| same_prefix(n, o)) => {
                out.push(NdOptionRepr::Route(RouteInfo { lifetime: 0, ..*r }));
            }
            NdOptionRepr::Pref64(p) if !new.iter().any(|n| same_prefix(n, o)) => {
                out.push(NdOptionRepr::Pref64(Pref64 {
                    scaled_lifetime: 0,
                    ..*p
                }));
            }
            NdOptionRepr::Rdnss(r) => {
                for s in &r.servers {
                    if !new_servers.contains(s) && !gone_servers.contains(s) {
                        gone_servers.push(*s);
                    }
                }
            }
            NdOptionRepr::Dnssl(d) => {
                for n in &d.domains {
                    if !new_domains.contains(n) && !gone_domains.contains(n) {
                        gone_domains.push(n.clone());
                    }
                }
            }
            _ => {}
        }
    }
    for chunk in gone_servers.chunks(127) {
        out.push(NdOptionRepr::Rdnss(wire::Rdnss {
            lifetime: 0,
            servers: chunk.to_vec(),
        }));
    }
    if !gone_domains.is_empty() {
        out.push(NdOptionRepr::Dnssl(wire::Dnssl {
            lifetime: 0,
            domains: gone_domains,
        }));
    }
    out
}

/// The longest lifetime (seconds) among `opts`, capped at 2 h: how long withdrawals repeat.
pub fn withdrawal_horizon(old: &[NdOptionRepr]) -> u32 {
    old.iter()
        .map(|o| match o {
            NdOptionRepr::Prefix(p) => p.valid_lifetime,
            NdOptionRepr::Route(r) => r.lifetime,
            NdOptionRepr::Pref64(p) => p.lifetime_secs(),
            NdOptionRepr::Rdnss(r) => r.lifetime,
            NdOptionRepr::Dnssl(d) => d.lifetime,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
        .min(7200)
}

#[cfg(test)]
pub(crate) mod tests;

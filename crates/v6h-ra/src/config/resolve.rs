//! Defaults and validation: [`RawConfig`] → [`Config`] plus warnings.
//!
//! Reproduces radvd's defaults (including the order-dependent ones of spec §1.7,
//! with a warning) and runs every range check at load time, radvd's parse-time
//! and interface-setup checks alike, plus the stricter checks of spec §2.

use super::keys::Key;
use super::lexer::is_bare_string;
use super::model::*;
use super::raw::{RawBlock, RawConfig, RawIface, RawItem, RawNet, RawOpt, RawVal};
use super::{ConfigError, Loaded, Pos, Warning};
use std::collections::HashMap;
use std::net::Ipv6Addr;

type R<T> = Result<T, ConfigError>;

/// Budget for one RA's options with a 1280-byte MTU (spec §3): 1280 − 14 − 40 − 16.
pub(crate) const RA_BUDGET: usize = 1210;
/// Largest ND option: 255 × 8 bytes.
pub(crate) const MAX_OPTION: usize = 255 * 8;

struct Ctx<'a> {
    path: &'a str,
    warnings: Vec<Warning>,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: self.path.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        });
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.path, pos, message)
    }

    fn bool(&self, o: &RawOpt) -> R<bool> {
        match o.val {
            RawVal::Bool(b) => Ok(b),
            _ => Err(self.err(o.vpos, format!("{} needs on or off", o.key.radvd()))),
        }
    }

    fn dec(&self, o: &RawOpt) -> R<f64> {
        match o.val {
            RawVal::Dec(d) if d.is_finite() => Ok(d),
            RawVal::Num(n) => Ok(n as f64),
            _ => Err(self.err(
                o.vpos,
                format!("{} needs a finite number of seconds", o.key.radvd()),
            )),
        }
    }

    fn num(&self, o: &RawOpt, lo: u64, hi: u64) -> R<u64> {
        match o.val {
            RawVal::Num(n) if (lo..=hi).contains(&n) => Ok(n),
            RawVal::Num(n) => Err(self.err(
                o.vpos,
                format!("{} must be between {lo} and {hi}, found {n}", o.key.radvd()),
            )),
            _ => Err(self.err(o.vpos, format!("{} needs a number", o.key.radvd()))),
        }
    }

    fn lifetime(&self, o: &RawOpt) -> R<Lifetime> {
        match o.val {
            RawVal::Inf => Ok(Lifetime::INFINITY),
            RawVal::Num(n) => u32::try_from(n).map(Lifetime).map_err(|_| {
                self.err(
                    o.vpos,
                    format!("{} must be at most 4294967295, found {n}", o.key.radvd()),
                )
            }),
            _ => Err(self.err(
                o.vpos,
                format!("{} needs a number or infinity", o.key.radvd()),
            )),
        }
    }

    fn pref(&self, o: &RawOpt) -> R<Preference> {
        match o.val {
            RawVal::Pref(-1) => Ok(Preference::Low),
            RawVal::Pref(0) => Ok(Preference::Medium),
            RawVal::Pref(1) => Ok(Preference::High),
            RawVal::Pref(v) => Err(self.err(
                o.vpos,
                format!(
                    "{} must be low, medium or high (-1 to 1), found {v}",
                    o.key.radvd()
                ),
            )),
            _ => Err(self.err(
                o.vpos,
                format!("{} needs low, medium or high", o.key.radvd()),
            )),
        }
    }

    fn string(&self, o: &RawOpt) -> R<String> {
        match &o.val {
            RawVal::Str(s) => Ok(s.clone()),
            _ => Err(self.err(o.vpos, format!("{} needs a string", o.key.radvd()))),
        }
    }

    fn ifname(&self, o: &RawOpt) -> R<String> {
        let s = self.string(o)?;
        check_ifname(self, &s, o.vpos)?;
        Ok(s)
    }

    /// Warn about repeated options in one block; returns the options by key (last wins).
    fn collect<'o>(&mut self, opts: &'o [RawOpt], what: &str) -> HashMap<Key, &'o RawOpt> {
        let mut m: HashMap<Key, &RawOpt> = HashMap::new();
        for o in opts {
            if let Some(prev) = m.insert(o.key, o) {
                self.warn(
                    o.pos,
                    format!(
                        "{} repeated in {what} (first at line {}); the last value wins",
                        o.key.radvd(),
                        prev.pos.line
                    ),
                );
            }
        }
        m
    }
}

fn check_ifname(c: &Ctx<'_>, name: &str, pos: Pos) -> R<()> {
    if name.is_empty() || name.len() > 15 {
        return Err(c.err(
            pos,
            format!(
                "interface name `{name}` must be 1 to 15 bytes long, found {}",
                name.len()
            ),
        ));
    }
    if !is_bare_string(name) {
        return Err(c.err(
            pos,
            format!("interface name `{name}` cannot be written in radvd.conf (a keyword, number, address or special characters)"),
        ));
    }
    Ok(())
}

fn prefix_len(c: &Ctx<'_>, net: &RawNet, what: &str) -> R<u8> {
    match net.len {
        Some(l) if l <= 128 => Ok(l as u8),
        Some(l) => Err(c.err(
            net.len_pos,
            format!("invalid {what} length {l} (must be 0 to 128)"),
        )),
        None => Err(c.err(net.addr_pos, format!("{what} needs a length"))),
    }
}

fn net_of<'a>(c: &Ctx<'_>, b: &'a RawBlock) -> R<&'a RawNet> {
    b.net.as_ref().ok_or_else(|| c.err(b.pos, "missing prefix"))
}

/// Every finding: all errors (sorted by position) and warnings; `config` only
/// when there is no error.
pub(crate) struct Findings {
    pub(crate) config: Option<Config>,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<Warning>,
}

/// Resolve defaults and validate, collecting every error.
pub(crate) fn check(path: &str, raw: &RawConfig) -> Findings {
    let mut c = Ctx {
        path,
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    let mut interfaces = Vec::new();
    if raw.ifaces.is_empty() {
        let e = c.err(
            raw.end,
            "no interface defined (a configuration needs at least one)",
        );
        c.errors.push(e);
    }
    for ri in &raw.ifaces {
        if let Err(e) = check_ifname(&c, &ri.name, ri.name_pos) {
            c.errors.push(e);
            continue;
        }
        if let Some(first) = seen.insert(&ri.name, ri.name_pos) {
            let e = c.err(
                ri.name_pos,
                format!(
                    "duplicate interface definition for {} (first at line {}, column {})",
                    ri.name, first.line, first.col
                ),
            );
            c.errors.push(e);
            continue;
        }
        match resolve_iface(&mut c, ri) {
            Ok(it) => interfaces.push(it),
            Err(e) => c.errors.push(e),
        }
    }
    c.errors.sort_by_key(|e| e.pos());
    Findings {
        config: c.errors.is_empty().then_some(Config { interfaces }),
        errors: c.errors,
        warnings: c.warnings,
    }
}

/// Resolve defaults and validate; the error is the first one in the file.
pub(crate) fn resolve(path: &str, raw: &RawConfig) -> R<Loaded> {
    let f = check(path, raw);
    match (f.errors.into_iter().next(), f.config) {
        (Some(e), _) => Err(e),
        (None, Some(config)) => Ok(Loaded {
            config,
            warnings: f.warnings,
        }),
        (None, None) => Err(ConfigError::invalid(
            path,
            Pos::default(),
            "internal: no configuration",
        )),
    }
}

/// A block default computed from MaxRtrAdvInterval as set at that point (§1.7).
struct OrderDefault {
    pos: Pos,
    what: &'static str,
    key: Key,
    max_then: f64,
    value: u32,
}

fn resolve_iface(c: &mut Ctx<'_>, ri: &RawIface) -> R<Interface> {
    let mut it = Interface::new(&ri.name);
    let mut cur_max = DEFAULT_MAX_RTR_ADV_INTERVAL;
    let mut scalars: HashMap<Key, &RawOpt> = HashMap::new();
    let mut order_defaults: Vec<OrderDefault> = Vec::new();
    let mut rdnss_pos = Vec::new();
    let mut dnssl_pos = Vec::new();
    let mut route_pos = Vec::new();
    let mut seen_prefix: HashMap<(Ipv6Addr, u8), u32> = HashMap::new();
    let mut seen_route: HashMap<(Ipv6Addr, u8), u32> = HashMap::new();
    let mut seen_rdnss: HashMap<Ipv6Addr, u32> = HashMap::new();
    let mut seen_dnssl: HashMap<String, u32> = HashMap::new();
    let mut seen_client: HashMap<Ipv6Addr, u32> = HashMap::new();
    let mut seen_src: HashMap<Ipv6Addr, u32> = HashMap::new();
    let mut abro_pos = None;
    let mut lowpanco_pos = None;

    for item in &ri.items {
        // An error in one item does not hide the findings of the others.
        let step = (|| -> R<()> {
            match item {
                RawItem::Opt(o) => {
                    if let Some(prev) = scalars.insert(o.key, o) {
                        c.warn(
                            o.pos,
                            format!(
                                "{} repeated (first at line {}); the last value wins",
                                o.key.radvd(),
                                prev.pos.line
                            ),
                        );
                    }
                    // A bad value is reported once, by apply_scalars.
                    if o.key == Key::MaxRtrAdvInterval
                        && let Ok(m) = c.dec(o)
                    {
                        cur_max = m;
                    }
                }
                RawItem::Prefix(b) => {
                    let net = net_of(c, b)?;
                    let len = prefix_len(c, net, "prefix")?;
                    let p = resolve_prefix(c, b, net, len)?;
                    if let Some(line) = seen_prefix.insert((p.prefix, p.len), b.pos.line) {
                        c.warn(
                            b.pos,
                            format!(
                                "duplicate prefix {}/{} (also at line {line})",
                                p.prefix, p.len
                            ),
                        );
                    }
                    it.prefix.push(p);
                }
                RawItem::Route(b) => {
                    let net = net_of(c, b)?;
                    let len = prefix_len(c, net, "route")?;
                    let m = c.collect(&b.opts, "route");
                    let mut r = Route {
                        prefix: net.addr,
                        len,
                        adv_route_preference: Preference::Medium,
                        adv_route_lifetime: Lifetime(three_times(cur_max)),
                        remove_route: true,
                    };
                    if let Some(o) = m.get(&Key::AdvRoutePreference) {
                        r.adv_route_preference = c.pref(o)?;
                    }
                    match m.get(&Key::AdvRouteLifetime) {
                        Some(o) => r.adv_route_lifetime = c.lifetime(o)?,
                        None => order_defaults.push(OrderDefault {
                            pos: b.pos,
                            what: "route",
                            key: Key::AdvRouteLifetime,
                            max_then: cur_max,
                            value: r.adv_route_lifetime.0,
                        }),
                    }
                    if let Some(o) = m.get(&Key::RemoveRoute) {
                        r.remove_route = c.bool(o)?;
                    }
                    let masked = mask(r.prefix, len);
                    if masked != r.prefix {
                        c.warn(
                            net.addr_pos,
                            format!(
                                "route {}/{len} has host bits set; v6home advertises {masked}/{len} (radvd sends them unmasked)",
                                r.prefix
                            ),
                        );
                    }
                    if let Some(line) = seen_route.insert((r.prefix, len), b.pos.line) {
                        c.warn(
                            b.pos,
                            format!("duplicate route {}/{len} (also at line {line})", r.prefix),
                        );
                    }
                    route_pos.push(b.pos);
                    it.route.push(r);
                }
                RawItem::Rdnss { pos, addrs, opts } => {
                    if let Some((_, p)) = addrs.get(127) {
                        return Err(
                            c.err(*p, "too many addresses in one RDNSS block (at most 127)")
                        );
                    }
                    if addrs.is_empty() {
                        return Err(c.err(*pos, "RDNSS needs at least one address"));
                    }
                    for (a, p) in addrs {
                        if a.is_multicast() {
                            c.warn(*p, format!("RDNSS address {a} is multicast"));
                        } else if a.is_unspecified() || a.is_loopback() {
                            c.warn(
                                *p,
                                format!("RDNSS address {a} is not a usable server address"),
                            );
                        }
                        if let Some(line) = seen_rdnss.insert(*a, p.line) {
                            c.warn(
                                *p,
                                format!("duplicate RDNSS address {a} (also at line {line})"),
                            );
                        }
                    }
                    let m = c.collect(opts, "RDNSS");
                    let mut r = Rdnss {
                        addresses: addrs.iter().map(|(a, _)| *a).collect(),
                        adv_rdnss_lifetime: Lifetime(three_times(cur_max)),
                        flush_rdnss: true,
                    };
                    match m.get(&Key::AdvRDNSSLifetime) {
                        Some(o) => r.adv_rdnss_lifetime = c.lifetime(o)?,
                        None => order_defaults.push(OrderDefault {
                            pos: *pos,
                            what: "RDNSS",
                            key: Key::AdvRDNSSLifetime,
                            max_then: cur_max,
                            value: r.adv_rdnss_lifetime.0,
                        }),
                    }
                    if let Some(o) = m.get(&Key::FlushRDNSS) {
                        r.flush_rdnss = c.bool(o)?;
                    }
                    for k in [Key::AdvRDNSSPreference, Key::AdvRDNSSOpen] {
                        if let Some(o) = m.get(&k) {
                            if k == Key::AdvRDNSSPreference {
                                c.num(o, 0, u64::from(u32::MAX))?;
                            } else {
                                c.bool(o)?;
                            }
                            c.warn(o.pos, format!("{} is deprecated and ignored", k.radvd()));
                        }
                    }
                    let size = 8 + 16 * r.addresses.len();
                    if size > RA_BUDGET {
                        c.warn(
                            *pos,
                            format!("RDNSS option is {size} bytes, above the {RA_BUDGET}-byte option budget of a 1280-byte RA; it is skipped on links whose budget is smaller (radvd sends it fragmented)"),
                        );
                    }
                    rdnss_pos.push(*pos);
                    it.rdnss.push(r);
                }
                RawItem::Dnssl { pos, names, opts } => {
                    let mut wire = 0usize;
                    for (n, p) in names {
                        wire += check_domain(c, n, *p)?;
                        let key = n.trim_end_matches('.').to_ascii_lowercase();
                        if let Some(line) = seen_dnssl.insert(key, p.line) {
                            c.warn(
                                *p,
                                format!("duplicate DNSSL suffix {n} (also at line {line})"),
                            );
                        }
                    }
                    let size = (8 + wire).div_ceil(8) * 8;
                    if size > MAX_OPTION {
                        return Err(c.err(
                            *pos,
                            format!("DNSSL option would be {size} bytes, above the {MAX_OPTION}-byte limit of an ND option"),
                        ));
                    }
                    if size > RA_BUDGET {
                        c.warn(
                            *pos,
                            format!("DNSSL option is {size} bytes, above the {RA_BUDGET}-byte option budget of a 1280-byte RA; it is skipped on links whose budget is smaller (radvd sends it fragmented)"),
                        );
                    }
                    let m = c.collect(opts, "DNSSL");
                    let mut d = Dnssl {
                        suffixes: names.iter().map(|(n, _)| n.clone()).collect(),
                        adv_dnssl_lifetime: Lifetime(three_times(cur_max)),
                        flush_dnssl: true,
                    };
                    match m.get(&Key::AdvDNSSLLifetime) {
                        Some(o) => d.adv_dnssl_lifetime = c.lifetime(o)?,
                        None => order_defaults.push(OrderDefault {
                            pos: *pos,
                            what: "DNSSL",
                            key: Key::AdvDNSSLLifetime,
                            max_then: cur_max,
                            value: d.adv_dnssl_lifetime.0,
                        }),
                    }
                    if let Some(o) = m.get(&Key::FlushDNSSL) {
                        d.flush_dnssl = c.bool(o)?;
                    }
                    dnssl_pos.push(*pos);
                    it.dnssl.push(d);
                }
                RawItem::Clients { entries } => {
                    for (a, excluded, p) in entries {
                        if let Some(line) = seen_client.insert(*a, p.line) {
                            c.warn(*p, format!("duplicate client {a} (also at line {line})"));
                        }
                        it.clients.push(Client {
                            address: *a,
                            excluded: *excluded,
                        });
                    }
                }
                RawItem::SrcAddr { addrs } => {
                    for (a, p) in addrs {
                        if !a.is_unicast_link_local() {
                            c.warn(
                                *p,
                                format!("AdvRASrcAddress {a} is not link-local; RFC 4861 requires a link-local RA source"),
                            );
                        }
                        if let Some(line) = seen_src.insert(*a, p.line) {
                            c.warn(
                                *p,
                                format!("duplicate AdvRASrcAddress {a} (also at line {line})"),
                            );
                        }
                        it.adv_ra_src_address.push(*a);
                    }
                }
                RawItem::Nat64(b) => {
                    let net = net_of(c, b)?;
                    let len = prefix_len(c, net, "nat64prefix")?;
                    if ![32, 40, 48, 56, 64, 96].contains(&len) {
                        return Err(c.err(
                            net.len_pos,
                            format!(
                                "nat64prefix length must be 32, 40, 48, 56, 64 or 96, found {len}"
                            ),
                        ));
                    }
                    if net.addr.is_unspecified() {
                        return Err(c.err(net.addr_pos, "nat64prefix must not be all-zero"));
                    }
                    if mask(net.addr, len) != net.addr {
                        c.warn(
                            net.addr_pos,
                            format!(
                                "nat64prefix {}/{len} has bits set beyond its length",
                                net.addr
                            ),
                        );
                    }
                    let m = c.collect(&b.opts, "nat64prefix");
                    let lt = match m.get(&Key::Nat64ValidLifetime) {
                        Some(o) => c.num(o, 0, 65528)? as u16,
                        None => {
                            let v = three_times(cur_max).min(65528);
                            order_defaults.push(OrderDefault {
                                pos: b.pos,
                                what: "nat64prefix",
                                key: Key::Nat64ValidLifetime,
                                max_then: cur_max,
                                value: v,
                            });
                            v as u16
                        }
                    };
                    it.nat64prefix.push(Nat64Prefix {
                        prefix: net.addr,
                        len,
                        adv_valid_lifetime: lt,
                    });
                }
                RawItem::AutoIgnore { nets } => {
                    for net in nets {
                        let len = prefix_len(c, net, "autoignoreprefixes")?;
                        it.autoignoreprefixes.push(IgnorePrefix {
                            prefix: net.addr,
                            len,
                        });
                    }
                }
                RawItem::Abro(b) => {
                    let net = net_of(c, b)?;
                    let len = match net.len {
                        Some(_) => {
                            let l = prefix_len(c, net, "abro")?;
                            c.warn(
                                net.len_pos,
                                "the abro prefix length is deprecated and ignored",
                            );
                            Some(l)
                        }
                        None => None,
                    };
                    let m = c.collect(&b.opts, "abro");
                    let mut a = Abro {
                        address: net.addr,
                        len,
                        adv_version_low: 0,
                        adv_version_high: 0,
                        adv_valid_lifetime: 0,
                    };
                    if let Some(o) = m.get(&Key::AdvVersionLow) {
                        a.adv_version_low = c.num(o, 0, 65535)? as u16;
                    }
                    if let Some(o) = m.get(&Key::AdvVersionHigh) {
                        a.adv_version_high = c.num(o, 0, 65535)? as u16;
                    }
                    if let Some(o) = m.get(&Key::AbroValidLifetime) {
                        a.adv_valid_lifetime = c.num(o, 0, 65535)? as u16;
                    }
                    match abro_pos {
                        Some(first) => c.warn(
                            b.pos,
                            format!("only the first abro block (line {first}) is advertised"),
                        ),
                        None => abro_pos = Some(b.pos.line),
                    }
                    it.abro.push(a);
                }
                RawItem::Lowpanco(b) => {
                    let m = c.collect(&b.opts, "lowpanco");
                    let mut l = LowpanCo {
                        adv_context_length: 0,
                        adv_context_compression_flag: false,
                        adv_context_id: 0,
                        adv_life_time: 0,
                    };
                    if let Some(o) = m.get(&Key::AdvContextLength) {
                        l.adv_context_length = c.num(o, 0, 128)? as u8;
                    }
                    if let Some(o) = m.get(&Key::AdvContextCompressionFlag) {
                        l.adv_context_compression_flag = c.bool(o)?;
                    }
                    if let Some(o) = m.get(&Key::AdvContextID) {
                        l.adv_context_id = c.num(o, 0, 255)? as u8;
                        if l.adv_context_id > 15 {
                            c.warn(
                                o.vpos,
                                format!(
                                    "AdvContextID {} does not fit the 4-bit CID field (0 to 15); radvd sends it unmasked",
                                    l.adv_context_id
                                ),
                            );
                        }
                    }
                    if let Some(o) = m.get(&Key::AdvLifeTime) {
                        l.adv_life_time = c.num(o, 0, 65535)? as u16;
                    }
                    match lowpanco_pos {
                        Some(first) => c.warn(
                            b.pos,
                            format!("only the first lowpanco block (line {first}) is advertised"),
                        ),
                        None => lowpanco_pos = Some(b.pos.line),
                    }
                    it.lowpanco.push(l);
                }
            }
            Ok(())
        })();
        if let Err(e) = step {
            c.errors.push(e);
        }
    }

    apply_scalars(c, ri, &mut it, &scalars)?;

    let max = it.max_rtr_adv_interval;
    for d in order_defaults {
        if d.max_then != max {
            c.warn(
                d.pos,
                format!(
                    "{} {} defaults to {} s (3 × MaxRtrAdvInterval {} as set when this block was read), \
                     but MaxRtrAdvInterval is {} in the end; set {} explicitly",
                    d.what,
                    d.key.radvd(),
                    d.value,
                    d.max_then,
                    max,
                    d.key.radvd()
                ),
            );
        }
    }
    for (r, pos) in it.rdnss.iter().zip(&rdnss_pos) {
        let lt = r.adv_rdnss_lifetime.0;
        if lt != 0 && f64::from(lt) < max {
            c.warn(
                *pos,
                format!("AdvRDNSSLifetime {lt} is shorter than MaxRtrAdvInterval {max}; hosts may drop the servers between RAs"),
            );
        }
    }
    for (d, pos) in it.dnssl.iter().zip(&dnssl_pos) {
        let lt = d.adv_dnssl_lifetime.0;
        if lt != 0 && f64::from(lt) < max {
            c.warn(
                *pos,
                format!("AdvDNSSLLifetime {lt} is shorter than MaxRtrAdvInterval {max}; hosts may drop the search list between RAs"),
            );
        }
    }
    for (r, pos) in it.route.iter().zip(&route_pos) {
        if r.len == 0 && (r.adv_route_lifetime.0 == 0) != (it.adv_default_lifetime == 0) {
            c.warn(
                *pos,
                "route ::/0 has lifetime 0 exactly when AdvDefaultLifetime does not; default routes will flap",
            );
        }
    }
    Ok(it)
}

fn resolve_prefix(c: &mut Ctx<'_>, b: &RawBlock, net: &RawNet, len: u8) -> R<Prefix> {
    let m = c.collect(&b.opts, "prefix");
    let mut p = Prefix::new(net.addr, len);
    for (k, f) in [
        (Key::AdvOnLink, &mut p.adv_on_link),
        (Key::AdvAutonomous, &mut p.adv_autonomous),
        (Key::AdvRouterAddr, &mut p.adv_router_addr),
        (Key::AdvDHCPv6PDPreferred, &mut p.adv_dhcpv6_pd_preferred),
        (Key::DeprecatePrefix, &mut p.deprecate_prefix),
        (Key::DecrementLifetimes, &mut p.decrement_lifetimes),
    ] {
        if let Some(o) = m.get(&k) {
            *f = c.bool(o)?;
        }
    }
    if let Some(o) = m.get(&Key::PrefixValidLifetime) {
        p.adv_valid_lifetime = c.lifetime(o)?;
    }
    if let Some(o) = m.get(&Key::AdvPreferredLifetime) {
        p.adv_preferred_lifetime = c.lifetime(o)?;
    }
    if let Some(o) = m.get(&Key::Base6Interface) {
        p.base6_interface = Some(c.ifname(o)?);
        if len != 64 {
            return Err(c.err(
                net.len_pos,
                format!("Base6Interface needs a /64 prefix, found /{len}"),
            ));
        }
    }
    if let Some(o) = m.get(&Key::Base6to4Interface) {
        p.base6to4_interface = Some(c.ifname(o)?);
    }
    if p.adv_preferred_lifetime > p.adv_valid_lifetime {
        let pos = m
            .get(&Key::PrefixValidLifetime)
            .or_else(|| m.get(&Key::AdvPreferredLifetime))
            .map(|o| o.vpos)
            .unwrap_or(b.pos);
        return Err(c.err(
            pos,
            format!(
                "AdvValidLifetime ({}) must not be less than AdvPreferredLifetime ({})",
                p.adv_valid_lifetime, p.adv_preferred_lifetime
            ),
        ));
    }
    if !p.is_auto() {
        let masked = mask(p.prefix, len);
        if masked != p.prefix && !p.adv_router_addr {
            c.warn(
                net.addr_pos,
                format!(
                    "prefix {}/{len} has host bits set; v6home advertises {masked}/{len} (radvd sends them unmasked; use AdvRouterAddr on to send a router address)",
                    p.prefix
                ),
            );
        }
        if p.adv_autonomous
            && len != 64
            && p.base6_interface.is_none()
            && p.base6to4_interface.is_none()
        {
            c.warn(
                net.len_pos,
                format!("AdvAutonomous on with a /{len} prefix: SLAAC needs /64, hosts will ignore the A flag"),
            );
        }
    }
    Ok(p)
}

/// Check a DNSSL suffix; returns its RFC 1035 wire length (labels plus the root).
fn check_domain(c: &Ctx<'_>, name: &str, pos: Pos) -> R<usize> {
    if let Some(bad) = name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || *ch == '.' || *ch == '-'))
    {
        return Err(c.err(
            pos,
            format!(
                "invalid character `{bad}` in DNSSL suffix `{name}` (allowed: A-Z a-z 0-9 . -)"
            ),
        ));
    }
    if !is_bare_string(name) {
        return Err(c.err(
            pos,
            format!("DNSSL suffix `{name}` cannot be written in radvd.conf (it reads as a number or keyword)"),
        ));
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err(c.err(pos, format!("DNSSL suffix `{name}` is empty")));
    }
    if body.len() > 253 {
        return Err(c.err(
            pos,
            format!(
                "DNSSL suffix is {} characters long, the limit is 253",
                body.len()
            ),
        ));
    }
    let mut wire = 1;
    for label in body.split('.') {
        if label.is_empty() {
            return Err(c.err(pos, format!("empty label in DNSSL suffix `{name}`")));
        }
        if label.len() > 63 {
            return Err(c.err(
                pos,
                format!(
                    "label `{label}` in DNSSL suffix is {} characters long, the limit is 63",
                    label.len()
                ),
            ));
        }
        wire += 1 + label.len();
    }
    Ok(wire)
}

/// Apply the interface's scalar options and run the interface checks. Each
/// independent check reports its own error; checks that depend on a bad value
/// (MinRtrAdvInterval and AdvDefaultLifetime on a bad Max) are skipped.
fn apply_scalars(
    c: &mut Ctx<'_>,
    ri: &RawIface,
    it: &mut Interface,
    s: &HashMap<Key, &RawOpt>,
) -> R<()> {
    fn keep(c: &mut Ctx<'_>, r: R<()>) -> bool {
        match r {
            Ok(()) => true,
            Err(e) => {
                c.errors.push(e);
                false
            }
        }
    }
    for (k, f) in [
        (Key::IgnoreIfMissing, &mut it.ignore_if_missing),
        (Key::AdvSendAdvert, &mut it.adv_send_advert),
        (Key::UnicastOnly, &mut it.unicast_only),
        (Key::UnrestrictedUnicast, &mut it.unrestricted_unicast),
        (Key::AdvRASolicitedUnicast, &mut it.adv_ra_solicited_unicast),
        (Key::AdvManagedFlag, &mut it.adv_managed_flag),
        (Key::AdvOtherConfigFlag, &mut it.adv_other_config_flag),
        (Key::AdvSourceLLAddress, &mut it.adv_source_ll_address),
        (Key::RemoveAdvOnExit, &mut it.remove_adv_on_exit),
        (Key::AdvHomeAgentFlag, &mut it.adv_home_agent_flag),
        (Key::AdvHomeAgentInfo, &mut it.adv_home_agent_info),
        (Key::AdvMobRtrSupportFlag, &mut it.adv_mob_rtr_support_flag),
        (Key::AdvIntervalOpt, &mut it.adv_interval_opt),
        (Key::AdvSNACRouterFlag, &mut it.adv_snac_router_flag),
    ] {
        if let Some(o) = s.get(&k) {
            let r = c.bool(o).map(|b| *f = b);
            keep(c, r);
        }
    }
    let pos = |k: Key| s.get(&k).map(|o| o.vpos).unwrap_or(ri.name_pos);
    if let Some(o) = s.get(&Key::AdvLinkMTU) {
        let r = c.num(o, 0, u64::from(u32::MAX)).and_then(|v| {
            if v != 0 && v < 1280 {
                return Err(c.err(
                    o.vpos,
                    format!("AdvLinkMTU must be 0 or at least 1280, found {v}"),
                ));
            }
            it.adv_link_mtu = v as u32;
            Ok(())
        });
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::AdvRAMTU) {
        match c.num(o, 0, u64::from(u32::MAX)) {
            Ok(v) => {
                let clamped = v.clamp(1280, 131072);
                if clamped != v {
                    c.warn(
                        o.vpos,
                        format!("AdvRAMTU {v} clamped to {clamped} (1280 to 131072)"),
                    );
                }
                it.adv_ra_mtu = clamped as u32;
            }
            Err(e) => c.errors.push(e),
        }
    }
    if let Some(o) = s.get(&Key::AdvReachableTime) {
        let r = c
            .num(o, 0, 3_600_000)
            .map(|v| it.adv_reachable_time = v as u32);
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::AdvRetransTimer) {
        let r = c
            .num(o, 0, u64::from(u32::MAX))
            .map(|v| it.adv_retrans_timer = v as u32);
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::AdvCurHopLimit) {
        let r = c.num(o, 0, 255).map(|v| it.adv_cur_hop_limit = v as u8);
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::AdvDefaultPreference) {
        let r = c.pref(o).map(|p| it.adv_default_preference = p);
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::HomeAgentPreference) {
        let r = c
            .num(o, 0, 65535)
            .map(|v| it.home_agent_preference = v as u16);
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::AdvCaptivePortalAPI) {
        let r = captive_portal(c, o).map(|url| it.adv_captive_portal_api = Some(url));
        keep(c, r);
    }

    // Intervals: MIPv6 mode relaxes the minimums.
    let mipv6 = it.mipv6();
    let (max_lo, min_lo, delay_lo) = if mipv6 {
        (0.07, 0.03, 0.03)
    } else {
        (4.0, 3.0, 3.0)
    };
    let mut max_ok = true;
    if let Some(o) = s.get(&Key::MaxRtrAdvInterval) {
        let r = c.dec(o).map(|m| it.max_rtr_adv_interval = m);
        max_ok = keep(c, r);
    }
    let max = it.max_rtr_adv_interval;
    if max_ok && !(max_lo..=65535.0).contains(&max) {
        let e = c.err(
            pos(Key::MaxRtrAdvInterval),
            format!("MaxRtrAdvInterval must be between {max_lo} and 65535, found {max}"),
        );
        c.errors.push(e);
        max_ok = false;
    }
    it.min_rtr_adv_interval = default_min_for(max, mipv6);
    if let Some(o) = s.get(&Key::MinRtrAdvInterval)
        && max_ok
    {
        let hi = 0.75 * max;
        let r = c.dec(o).and_then(|min| {
            if !(min_lo..=hi).contains(&min) {
                return Err(c.err(
                    o.vpos,
                    format!(
                        "MinRtrAdvInterval must be between {min_lo} and 0.75 × MaxRtrAdvInterval ({hi}), found {min}"
                    ),
                ));
            }
            it.min_rtr_adv_interval = min;
            Ok(())
        });
        keep(c, r);
    }
    if let Some(o) = s.get(&Key::MinDelayBetweenRAs) {
        let r = c.dec(o).and_then(|d| {
            if !(delay_lo..=65535.0).contains(&d) {
                return Err(c.err(
                    o.vpos,
                    format!("MinDelayBetweenRAs must be between {delay_lo} and 65535, found {d}"),
                ));
            }
            it.min_delay_between_ras = d;
            Ok(())
        });
        keep(c, r);
    }
    it.adv_default_lifetime = default_lifetime_for(max);
    if let Some(o) = s.get(&Key::AdvDefaultLifetime)
        && max_ok
    {
        let r = c.num(o, 0, 65535).and_then(|v| {
            if v != 0 && (v as f64) < max {
                return Err(c.err(
                    o.vpos,
                    format!(
                        "AdvDefaultLifetime must be 0 or between MaxRtrAdvInterval ({max}) and 65535, found {v}"
                    ),
                ));
            }
            it.adv_default_lifetime = v as u16;
            Ok(())
        });
        keep(c, r);
    }
    if it.adv_default_lifetime == 0 && it.adv_default_preference != Preference::Medium {
        c.warn(
            pos(Key::AdvDefaultPreference),
            format!(
                "AdvDefaultPreference {} has no effect with AdvDefaultLifetime 0: RFC 4191 §2.2 requires Prf 00, \
                 which v6home sends (radvd sends the configured value)",
                it.adv_default_preference.keyword()
            ),
        );
    }
    it.home_agent_lifetime = it.adv_default_lifetime;
    let mut hal_ok = true;
    if let Some(o) = s.get(&Key::HomeAgentLifetime) {
        let r = c
            .num(o, 0, 65535)
            .map(|v| it.home_agent_lifetime = v as u16);
        hal_ok = keep(c, r);
    }
    if it.adv_home_agent_info {
        if hal_ok && !(1..=65520).contains(&it.home_agent_lifetime) {
            let e = c.err(
                pos(Key::HomeAgentLifetime),
                format!(
                    "HomeAgentLifetime must be between 1 and 65520 with AdvHomeAgentInfo on, found {}",
                    it.home_agent_lifetime
                ),
            );
            c.errors.push(e);
        }
        if !it.adv_home_agent_flag {
            let e = c.err(
                pos(Key::AdvHomeAgentInfo),
                "AdvHomeAgentInfo on needs AdvHomeAgentFlag on",
            );
            c.errors.push(e);
        }
    }
    if it.adv_mob_rtr_support_flag && !it.adv_home_agent_info {
        let e = c.err(
            pos(Key::AdvMobRtrSupportFlag),
            "AdvMobRtrSupportFlag on needs AdvHomeAgentInfo on",
        );
        c.errors.push(e);
    }
    Ok(())
}

fn captive_portal(c: &mut Ctx<'_>, o: &RawOpt) -> R<String> {
    let url = c.string(o)?;
    if url.contains('"') || url.chars().any(char::is_control) {
        return Err(c.err(
            o.vpos,
            "AdvCaptivePortalAPI must not contain `\"` or control characters",
        ));
    }
    if url.is_empty() {
        return Err(c.err(o.vpos, "AdvCaptivePortalAPI needs a non-empty URL"));
    }
    let size = (2 + url.len()).div_ceil(8) * 8;
    if size > MAX_OPTION {
        return Err(c.err(
            o.vpos,
            format!(
                "AdvCaptivePortalAPI URL is {} bytes, the option allows at most 2038",
                url.len()
            ),
        ));
    }
    if size > RA_BUDGET {
        c.warn(
            o.vpos,
            format!("captive portal option is {size} bytes, above the {RA_BUDGET}-byte RA budget"),
        );
    }
    Ok(url)
}

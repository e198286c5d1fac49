//! radvdump: turn a received RA into a radvd.conf `interface` block.
//!
//! Pure conversion from [`RaRepr`] to the config model, printed with the model's own radvd.conf
//! writer, so what `v6home ra dump` prints can be fed back to `v6home ra -C`.

use crate::config::{self, Abro, Interface, Lifetime, LowpanCo, Nat64Prefix, Prefix};
use crate::wire::{NdOptionRepr, Preference, RaRepr};
use std::net::Ipv6Addr;

fn pref(p: Preference) -> config::Preference {
    match p {
        Preference::High => config::Preference::High,
        Preference::Low => config::Preference::Low,
        Preference::Medium | Preference::Reserved => config::Preference::Medium,
    }
}

/// The configuration that would produce `ra` on interface `ifname` (as radvdump prints it).
///
/// Fields an RA does not carry (intervals, flags of the daemon) keep radvd's defaults, except
/// that `AdvSendAdvert` is on and, when the RA has an Advertisement Interval option,
/// `MaxRtrAdvInterval` is taken from it.
pub fn interface_from_ra(ifname: &str, ra: &RaRepr) -> Interface {
    let mut i = Interface::new(ifname);
    let h = &ra.header;
    i.adv_send_advert = true;
    i.adv_cur_hop_limit = h.cur_hop_limit;
    i.adv_managed_flag = h.managed;
    i.adv_other_config_flag = h.other;
    i.adv_home_agent_flag = h.home_agent;
    i.adv_default_preference = pref(h.preference);
    i.adv_snac_router_flag = h.snac;
    i.adv_default_lifetime = h.router_lifetime;
    if h.router_lifetime != 0 {
        // An RA does not carry the interval; pick the radvd default ratio (lifetime = 3 × Max)
        // so the printed configuration passes the AdvDefaultLifetime ≥ Max range check.
        i.max_rtr_adv_interval = f64::from(h.router_lifetime / 3).clamp(4.0, 1800.0);
        i.min_rtr_adv_interval = config::default_min_for(i.max_rtr_adv_interval, false);
    }
    i.home_agent_lifetime = h.router_lifetime;
    i.adv_reachable_time = h.reachable_time;
    i.adv_retrans_timer = h.retrans_timer;
    i.adv_source_ll_address = false;
    for o in &ra.options {
        match o {
            NdOptionRepr::SourceLinkAddr(_) => i.adv_source_ll_address = true,
            NdOptionRepr::Prefix(p) => {
                let mut c = Prefix::new(p.prefix, p.prefix_len);
                c.adv_on_link = p.on_link;
                c.adv_autonomous = p.autonomous;
                c.adv_router_addr = p.router_addr;
                c.adv_dhcpv6_pd_preferred = p.pd_preferred;
                c.adv_valid_lifetime = Lifetime(p.valid_lifetime);
                c.adv_preferred_lifetime = Lifetime(p.preferred_lifetime);
                i.prefix.push(c);
            }
            NdOptionRepr::Mtu(m) => i.adv_link_mtu = *m,
            NdOptionRepr::AdvInterval(ms) => {
                i.adv_interval_opt = true;
                i.max_rtr_adv_interval = f64::from(*ms) / 1000.0;
                i.min_rtr_adv_interval = config::default_min_for(i.max_rtr_adv_interval, true);
            }
            NdOptionRepr::HomeAgentInfo(ha) => {
                i.adv_home_agent_info = true;
                i.adv_mob_rtr_support_flag = ha.mobile_router;
                i.home_agent_preference = ha.preference;
                i.home_agent_lifetime = ha.lifetime;
            }
            NdOptionRepr::Route(r) => i.route.push(config::Route {
                prefix: r.prefix,
                len: r.prefix_len,
                adv_route_preference: pref(r.preference),
                adv_route_lifetime: Lifetime(r.lifetime),
                remove_route: true,
            }),
            NdOptionRepr::Rdnss(r) => i.rdnss.push(config::Rdnss {
                addresses: r.servers.clone(),
                adv_rdnss_lifetime: Lifetime(r.lifetime),
                flush_rdnss: true,
            }),
            NdOptionRepr::Dnssl(d) => i.dnssl.push(config::Dnssl {
                suffixes: d.domains.iter().map(|n| n.as_str().to_string()).collect(),
                adv_dnssl_lifetime: Lifetime(d.lifetime),
                flush_dnssl: true,
            }),
            NdOptionRepr::SixCo(c) => i.lowpanco.push(LowpanCo {
                adv_context_length: c.context_len,
                adv_context_compression_flag: c.compression,
                adv_context_id: c.cid,
                adv_life_time: c.lifetime,
            }),
            NdOptionRepr::Abro(a) => i.abro.push(Abro {
                address: a.address,
                len: None,
                adv_version_low: a.version_low,
                adv_version_high: a.version_high,
                adv_valid_lifetime: a.lifetime,
            }),
            NdOptionRepr::CaptivePortal(c) => i.adv_captive_portal_api = Some(c.uri.clone()),
            NdOptionRepr::Pref64(p) => i.nat64prefix.push(Nat64Prefix {
                prefix: p.prefix,
                len: p.prefix_len,
                adv_valid_lifetime: u16::try_from(p.lifetime_secs()).unwrap_or(u16::MAX),
            }),
            NdOptionRepr::TargetLinkAddr(_) | NdOptionRepr::Unknown { .. } => {}
        }
    }
    i
}

/// radvdump-style text for one RA: a comment naming the sender, then the interface block.
pub fn dump_text(ifname: &str, src: &Ipv6Addr, ra: &RaRepr) -> String {
    let cfg = config::Config {
        interfaces: vec![interface_from_ra(ifname, ra)],
    };
    let mut out = format!(
        "#\n# radvd configuration generated by v6home ra dump\n# based on Router Advertisement from {src}\n# received by interface {ifname}\n#\n"
    );
    out.push_str(&cfg.to_radvd_conf());
    let unknown: Vec<u8> = ra
        .options
        .iter()
        .filter_map(|o| match o {
            NdOptionRepr::Unknown { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        out.push_str(&format!("# unknown options (types): {unknown:?}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{self, LinkContext, Mode};

    #[test]
    fn dump_of_home_router_ra_reparses_to_the_same_ra() {
        let iface = crate::build::tests::home_router();
        let ctx = LinkContext {
            mac: Some(vec![2, 0, 0, 0, 0, 1]),
            ..Default::default()
        };
        let bytes = build::build_ras(&iface, &ctx, Mode::Normal, &[])
            .packets
            .remove(0);
        let ra = RaRepr::parse(&bytes).unwrap();
        let text = dump_text("eth0", &"fe80::1".parse().unwrap(), &ra);
        assert!(text.contains("fe80::1"));
        let loaded = config::parse_str("dump", &text).unwrap();
        let back = &loaded.config.interfaces[0];
        assert_eq!(back.name, "eth0");
        let again = build::build_ras(back, &ctx, Mode::Normal, &[]).packets;
        assert_eq!(again, vec![bytes]);
    }
}

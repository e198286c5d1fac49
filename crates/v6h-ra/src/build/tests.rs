//! Tests of RA construction from the config model.

use super::*;
use crate::config::{Abro, Client, IgnorePrefix, LowpanCo, Nat64Prefix, Prefix, Rdnss, Route};
use crate::wire::RaRepr;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];

/// home-router-target.conf (radvd.md §8) as a resolved model.
pub(crate) fn home_router() -> Interface {
    let mut i = Interface::new("eth0");
    i.adv_send_advert = true;
    i.max_rtr_adv_interval = 30.0;
    i.min_rtr_adv_interval = 9.9;
    i.adv_default_lifetime = 90;
    i.home_agent_lifetime = 90;
    i.adv_other_config_flag = true;
    i.prefix.push(Prefix::new(a("2001:db8:1234::"), 64));
    i.rdnss.push(Rdnss {
        addresses: vec![a("2001:14b8:0:3401::6"), a("2001:1418:10:2::2")],
        adv_rdnss_lifetime: Lifetime(90),
        flush_rdnss: true,
    });
    i
}

fn ctx() -> LinkContext {
    LinkContext {
        mac: Some(MAC.to_vec()),
        ..Default::default()
    }
}

#[test]
fn home_router_ra_is_radvd_byte_exact() {
    let r = build_ras(&home_router(), &ctx(), Mode::Normal, &[]);
    assert!(r.skipped.is_empty());
    assert_eq!(r.packets.len(), 1);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x86, 0x00, 0x00, 0x00, 0x40, 0x40, 0x00, 0x5a, 0, 0, 0, 0, 0, 0, 0, 0,
        0x03, 0x04, 0x40, 0xc0, 0x00, 0x01, 0x51, 0x80, 0x00, 0x00, 0x38, 0x40, 0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x19, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5a,
        0x20, 0x01, 0x14, 0xb8, 0x00, 0x00, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x06,
        0x20, 0x01, 0x14, 0x18, 0x00, 0x10, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x01, 0x01, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,
    ];
    assert_eq!(r.packets[0], expected);
}

#[test]
fn final_ra_zeroes_router_and_dns_keeps_pio() {
    let r = build_ras(&home_router(), &ctx(), Mode::Final, &[]);
    let ra = RaRepr::parse(&r.packets[0]).unwrap();
    assert_eq!(ra.header.router_lifetime, 0);
    assert_eq!(ra.header.preference, Preference::Medium);
    match &ra.options[0] {
        NdOptionRepr::Prefix(p) => {
            assert_eq!((p.valid_lifetime, p.preferred_lifetime), (86400, 14400))
        }
        o => panic!("unexpected {o:?}"),
    }
    match &ra.options[1] {
        NdOptionRepr::Rdnss(r) => assert_eq!(r.lifetime, 0),
        o => panic!("unexpected {o:?}"),
    }
}

#[test]
fn final_ra_deprecates_and_removes_routes() {
    let mut i = home_router();
    i.prefix[0].deprecate_prefix = true;
    i.prefix[0].adv_valid_lifetime = Lifetime::INFINITY;
    i.rdnss[0].flush_rdnss = false;
    i.route.push(Route {
        prefix: a("2001:db8:ffff::"),
        len: 48,
        adv_route_preference: config::Preference::High,
        adv_route_lifetime: Lifetime(1800),
        remove_route: true,
    });
    i.route.push(Route {
        prefix: a("2001:db8:eeee::"),
        len: 48,
        adv_route_preference: config::Preference::Low,
        adv_route_lifetime: Lifetime(1800),
        remove_route: false,
    });
    let opts = options(&i, &ctx(), Mode::Final);
    let NdOptionRepr::Prefix(p) = &opts[0] else {
        panic!()
    };
    assert_eq!((p.valid_lifetime, p.preferred_lifetime), (7200, 0));
    let NdOptionRepr::Route(r1) = &opts[1] else {
        panic!()
    };
    let NdOptionRepr::Route(r2) = &opts[2] else {
        panic!()
    };
    assert_eq!((r1.lifetime, r2.lifetime), (0, 1800));
    let NdOptionRepr::Rdnss(d) = &opts[3] else {
        panic!()
    };
    assert_eq!(d.lifetime, 90);
}

#[test]
fn forwarding_off_means_lifetime_zero_and_medium_preference() {
    let mut i = home_router();
    i.adv_default_preference = config::Preference::High;
    let mut c = ctx();
    assert_eq!(header(&i, &c, Mode::Normal).preference, Preference::High);
    c.forwarding = false;
    let h = header(&i, &c, Mode::Normal);
    assert_eq!(h.router_lifetime, 0);
    assert_eq!(h.preference, Preference::Medium);
    // AdvDefaultLifetime 0 with preference low (radvd.md §9.10): Prf cleared too.
    i.adv_default_lifetime = 0;
    i.adv_default_preference = config::Preference::Low;
    assert_eq!(
        header(&i, &ctx(), Mode::Normal).preference,
        Preference::Medium
    );
}

#[test]
fn option_order_is_radvds() {
    let mut i = home_router();
    i.adv_link_mtu = 1400;
    i.adv_interval_opt = true;
    i.adv_home_agent_info = true;
    i.home_agent_preference = 3;
    i.adv_captive_portal_api = Some("https://example.org/cp".into());
    i.dnssl.push(config::Dnssl {
        suffixes: vec!["home.example.org".into()],
        adv_dnssl_lifetime: Lifetime(90),
        flush_dnssl: true,
    });
    i.route.push(Route {
        prefix: a("2001:db8:ffff::"),
        len: 48,
        adv_route_preference: config::Preference::High,
        adv_route_lifetime: Lifetime(90),
        remove_route: true,
    });
    i.nat64prefix.push(Nat64Prefix {
        prefix: a("64:ff9b::"),
        len: 96,
        adv_valid_lifetime: 90,
    });
    i.abro.push(Abro {
        address: a("2001:db8::1"),
        len: None,
        adv_version_low: 1,
        adv_version_high: 0,
        adv_valid_lifetime: 10,
    });
    i.lowpanco.push(LowpanCo {
        adv_context_length: 64,
        adv_context_compression_flag: true,
        adv_context_id: 1,
        adv_life_time: 5,
    });
    let kinds: Vec<u8> = options(&i, &ctx(), Mode::Normal)
        .iter()
        .map(NdOptionRepr::kind)
        .collect();
    assert_eq!(kinds, vec![3, 38, 24, 25, 31, 5, 1, 7, 8, 34, 35, 37]);
    let r = build_ras(&i, &ctx(), Mode::Normal, &[]);
    assert_eq!(r.packets.len(), 1);
    let ra = RaRepr::parse(&r.packets[0]).unwrap();
    assert_eq!(ra.options.len(), 12);
    assert!(ra.options.contains(&NdOptionRepr::AdvInterval(30_000)));
}

#[test]
fn auto_prefixes_expand_from_addresses() {
    let mut i = home_router();
    i.prefix = vec![Prefix::new(Ipv6Addr::UNSPECIFIED, 64)];
    i.autoignoreprefixes.push(IgnorePrefix {
        prefix: a("2001:db8:9::"),
        len: 64,
    });
    let mut c = ctx();
    c.addresses = vec![
        IfAddr::permanent(a("fe80::1"), 64),
        IfAddr::permanent(a("2001:db8:1::1"), 64),
        IfAddr::permanent(a("2001:db8:1::2"), 64), // same /64: no duplicate PIO
        IfAddr::permanent(a("2001:db8:2::1"), 56),
        IfAddr::permanent(a("2001:db8:9::1"), 64), // ignored
    ];
    let pios: Vec<(Ipv6Addr, u8)> = options(&i, &c, Mode::Normal)
        .iter()
        .filter_map(|o| match o {
            NdOptionRepr::Prefix(p) => Some((p.prefix, p.prefix_len)),
            _ => None,
        })
        .collect();
    assert_eq!(pios, vec![(a("2001:db8:1::"), 64), (a("2001:db8:2::"), 56)]);
}

#[test]
fn host_bits_masked_unless_router_addr() {
    let mut i = home_router();
    i.prefix = vec![Prefix::new(a("2001:db8:1234::1"), 64)];
    let NdOptionRepr::Prefix(p) = &options(&i, &ctx(), Mode::Normal)[0] else {
        panic!()
    };
    assert_eq!(p.prefix, a("2001:db8:1234::"));
    i.prefix[0].adv_router_addr = true;
    let NdOptionRepr::Prefix(p) = &options(&i, &ctx(), Mode::Normal)[0] else {
        panic!()
    };
    assert_eq!(p.prefix, a("2001:db8:1234::1"));
    assert!(p.router_addr);
}

#[test]
fn lifetimes_capped_by_dynamic_addresses() {
    let i = home_router();
    let mut c = ctx();
    c.addresses = vec![IfAddr {
        addr: a("2001:db8:1234::1"),
        prefix_len: 64,
        valid: 3000,
        preferred: 1000,
    }];
    let NdOptionRepr::Prefix(p) = &options(&i, &c, Mode::Normal)[0] else {
        panic!()
    };
    assert_eq!((p.valid_lifetime, p.preferred_lifetime), (3000, 1000));
}

#[test]
fn decrement_lifetimes_count_down_and_drop() {
    let mut i = home_router();
    i.prefix[0].decrement_lifetimes = true;
    let mut c = ctx();
    c.decrement_elapsed = 400;
    let NdOptionRepr::Prefix(p) = &options(&i, &c, Mode::Normal)[0] else {
        panic!()
    };
    assert_eq!((p.valid_lifetime, p.preferred_lifetime), (86000, 14000));
    c.decrement_elapsed = 14400;
    assert!(
        !options(&i, &c, Mode::Normal)
            .iter()
            .any(|o| matches!(o, NdOptionRepr::Prefix(_)))
    );
}

#[test]
fn removed_items_withdrawn_with_zero_lifetime() {
    let old_i = {
        let mut i = home_router();
        i.prefix.push(Prefix::new(a("2001:db8:5678::"), 64));
        i
    };
    let mut new_i = home_router();
    new_i.rdnss[0].addresses.truncate(1);
    let old = options(&old_i, &ctx(), Mode::Normal);
    let new = options(&new_i, &ctx(), Mode::Normal);
    let w = removed_options(&old, &new);
    assert_eq!(w.len(), 2);
    let NdOptionRepr::Prefix(p) = &w[0] else {
        panic!()
    };
    assert_eq!(p.prefix, a("2001:db8:5678::"));
    assert_eq!((p.valid_lifetime, p.preferred_lifetime), (0, 0));
    assert!(p.on_link && p.autonomous);
    let NdOptionRepr::Rdnss(r) = &w[1] else {
        panic!()
    };
    assert_eq!(r.servers, vec![a("2001:1418:10:2::2")]);
    assert_eq!(r.lifetime, 0);
    assert_eq!(withdrawal_horizon(&old), 7200);
    // Merged after the configured options of the same kind.
    let r = build_ras(&new_i, &ctx(), Mode::Normal, &w);
    let ra = RaRepr::parse(&r.packets[0]).unwrap();
    let kinds: Vec<u8> = ra.options.iter().map(NdOptionRepr::kind).collect();
    assert_eq!(kinds, vec![3, 3, 25, 25, 1]);
}

#[test]
fn base6to4_prefix() {
    let mut i = home_router();
    let mut p = Prefix::new(a("0:0:0:1234::"), 64);
    p.base6to4_interface = Some("ppp0".into());
    i.prefix = vec![p];
    let mut c = ctx();
    assert!(options(&i, &c, Mode::Normal).iter().all(|o| o.kind() != 3));
    c.others.insert(
        "ppp0".into(),
        OtherIface {
            ipv4: Some("192.0.2.7".parse().unwrap()),
            ipv6: vec![],
        },
    );
    let NdOptionRepr::Prefix(p) = &options(&i, &c, Mode::Normal)[0] else {
        panic!()
    };
    assert_eq!(p.prefix, a("2002:c000:207:1234::"));
}

#[test]
fn clients_field_is_model_only() {
    // `clients` does not change RA content, only destinations (the scheduler's job).
    let mut i = home_router();
    i.clients.push(Client {
        address: a("fe80::2"),
        excluded: false,
    });
    assert_eq!(
        build_ras(&i, &ctx(), Mode::Normal, &[]),
        build_ras(&home_router(), &ctx(), Mode::Normal, &[])
    );
}

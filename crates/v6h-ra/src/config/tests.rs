//! Unit tests: every option, every range check (error text and position),
//! every warning, the TOML form, and proptest round trips.

use super::*;
use std::net::Ipv6Addr;

/// Wrap `body` in `interface eth0 { … };` (so the body starts on line 2).
fn wrap(body: &str) -> String {
    format!("interface eth0 {{\n{body}\n}};\n")
}

fn ok(body: &str) -> Interface {
    match parse_str("t.conf", &wrap(body)) {
        Ok(l) => l.config.interfaces.into_iter().next().unwrap(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn err(body: &str) -> String {
    match parse_str("t.conf", &wrap(body)) {
        Ok(l) => panic!("unexpected success: {:?}", l.config),
        Err(e) => e.to_string(),
    }
}

fn warns(body: &str) -> Vec<String> {
    match parse_str("t.conf", &wrap(body)) {
        Ok(l) => l.warnings.iter().map(|w| w.to_string()).collect(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn defaults() {
    let i = ok("");
    assert_eq!(i, Interface::new("eth0"));
    assert!(
        i.ignore_if_missing && !i.adv_send_advert && !i.unicast_only && !i.unrestricted_unicast
    );
    assert!(i.adv_ra_solicited_unicast && i.adv_source_ll_address && i.remove_adv_on_exit);
    assert_eq!(i.max_rtr_adv_interval, 600.0);
    assert_eq!(i.min_rtr_adv_interval, 198.0);
    assert_eq!(i.min_delay_between_ras, 3.0);
    assert_eq!(
        (
            i.adv_link_mtu,
            i.adv_ra_mtu,
            i.adv_reachable_time,
            i.adv_retrans_timer
        ),
        (0, 1280, 0, 0)
    );
    assert_eq!(
        (
            i.adv_cur_hop_limit,
            i.adv_default_lifetime,
            i.home_agent_lifetime
        ),
        (64, 1800, 1800)
    );
    assert_eq!(i.adv_default_preference, Preference::Medium);
    assert!(!i.adv_home_agent_flag && !i.adv_home_agent_info && !i.adv_mob_rtr_support_flag);
    assert!(!i.adv_interval_opt && !i.adv_snac_router_flag && i.adv_captive_portal_api.is_none());
}

#[test]
fn max_dependent_defaults() {
    let i = ok("MaxRtrAdvInterval 30;");
    assert_eq!(
        (
            i.min_rtr_adv_interval,
            i.adv_default_lifetime,
            i.home_agent_lifetime
        ),
        (9.9, 90, 90)
    );
    // 0.33 × 5 < 3: v6home raises the default Min to 3 (radvd would fail at runtime).
    let i = ok("MaxRtrAdvInterval 5;");
    assert_eq!(i.min_rtr_adv_interval, 3.0);
    // Decimal Max is truncated for lifetimes: 3 × 4.5 → 13.
    let i = ok(
        "MaxRtrAdvInterval 4.5; route 2001:db8::/48 {}; RDNSS 2001:db8::1 {}; DNSSL a.example {};",
    );
    assert_eq!(i.adv_default_lifetime, 13);
    assert_eq!(i.route[0].adv_route_lifetime, Lifetime(13));
    assert_eq!(i.rdnss[0].adv_rdnss_lifetime, Lifetime(13));
    assert_eq!(i.dnssl[0].adv_dnssl_lifetime, Lifetime(13));
    // Large Max: default lifetime capped at 65535, PREF64 at 65528.
    let i = ok("MaxRtrAdvInterval 65535; nat64prefix 64:ff9b::/96;");
    assert_eq!(i.adv_default_lifetime, 65535);
    assert_eq!(i.nat64prefix[0].adv_valid_lifetime, 65528);
    // HomeAgentLifetime follows an explicit AdvDefaultLifetime.
    assert_eq!(ok("AdvDefaultLifetime 0;").home_agent_lifetime, 0);
}

#[test]
fn order_dependent_defaults_reproduced_and_warned() {
    let body = "RDNSS 2001:db8::1 {};\nMaxRtrAdvInterval 30;\nDNSSL a.example {};";
    let i = ok(body);
    assert_eq!(i.rdnss[0].adv_rdnss_lifetime, Lifetime(1800));
    assert_eq!(i.dnssl[0].adv_dnssl_lifetime, Lifetime(90));
    assert_eq!(
        warns(body),
        vec![
            "t.conf:2:1: warning: RDNSS AdvRDNSSLifetime defaults to 1800 s (3 × MaxRtrAdvInterval 600 as set \
             when this block was read), but MaxRtrAdvInterval is 30 in the end; set AdvRDNSSLifetime explicitly"
        ]
    );
    let w = warns("route ::/0 {};\nnat64prefix 64:ff9b::/96;\nMaxRtrAdvInterval 30;");
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("t.conf:2:1: warning: route AdvRouteLifetime defaults to 1800 s"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("t.conf:3:1: warning: nat64prefix AdvValidLifetime defaults to 1800 s"),
        "{w:?}"
    );
}

#[test]
fn every_interface_option() {
    let i = ok("IgnoreIfMissing off; AdvSendAdvert on; UnicastOnly on; UnrestrictedUnicast on;
        AdvRASolicitedUnicast off; MaxRtrAdvInterval 100.5; MinRtrAdvInterval 50.25; MinDelayBetweenRAs 3.5;
        AdvManagedFlag on; AdvOtherConfigFlag on; AdvLinkMTU 1500; AdvRAMTU 9000; AdvReachableTime 3600000;
        AdvRetransTimer 4294967295; AdvCurHopLimit 255; AdvDefaultLifetime 9000; AdvDefaultPreference high;
        AdvSourceLLAddress off; RemoveAdvOnExit off; AdvHomeAgentFlag on; AdvHomeAgentInfo on;
        HomeAgentLifetime 65520; HomeAgentPreference 65535; AdvMobRtrSupportFlag on; AdvIntervalOpt on;
        AdvCaptivePortalAPI \"https://portal.example/api\"; AdvSNACRouterFlag on;");
    assert!(!i.ignore_if_missing && i.adv_send_advert && i.unicast_only && i.unrestricted_unicast);
    assert!(!i.adv_ra_solicited_unicast);
    assert_eq!(
        (
            i.max_rtr_adv_interval,
            i.min_rtr_adv_interval,
            i.min_delay_between_ras
        ),
        (100.5, 50.25, 3.5)
    );
    assert!(i.adv_managed_flag && i.adv_other_config_flag);
    assert_eq!(
        (i.adv_link_mtu, i.adv_ra_mtu, i.adv_reachable_time),
        (1500, 9000, 3_600_000)
    );
    assert_eq!(
        (
            i.adv_retrans_timer,
            i.adv_cur_hop_limit,
            i.adv_default_lifetime
        ),
        (u32::MAX, 255, 9000)
    );
    assert_eq!(i.adv_default_preference, Preference::High);
    assert!(!i.adv_source_ll_address && !i.remove_adv_on_exit);
    assert!(i.adv_home_agent_flag && i.adv_home_agent_info && i.adv_mob_rtr_support_flag);
    assert_eq!(
        (i.home_agent_lifetime, i.home_agent_preference),
        (65520, 65535)
    );
    assert!(i.adv_interval_opt && i.adv_snac_router_flag);
    assert_eq!(
        i.adv_captive_portal_api.as_deref(),
        Some("https://portal.example/api")
    );
    assert!(i.mipv6());
}

#[test]
fn every_block_option() {
    let i = ok("prefix 2001:db8:1::/64 { AdvOnLink off; AdvAutonomous off; AdvRouterAddr on;
            AdvDHCPv6PDPreferred on; AdvValidLifetime infinity; AdvPreferredLifetime 100;
            DeprecatePrefix on; DecrementLifetimes on; Base6Interface ppp0; };
        prefix 0:0:0:1234::/64 { Base6to4Interface ppp1; };
        prefix ::/64;
        route 2001:db8:2::/48 { AdvRoutePreference low; AdvRouteLifetime infinity; RemoveRoute off; };
        RDNSS 2001:db8::53 2001:db8::54 { AdvRDNSSLifetime 0; FlushRDNSS off; };
        DNSSL example.com sub.example. { AdvDNSSLLifetime infinity; FlushDNSSL off; };
        clients { fe80::1; !fe80::2; };
        AdvRASrcAddress { fe80::a; fe80::b; };
        nat64prefix 64:ff9b::/96 { AdvValidLifetime 65528; };
        autoignoreprefixes { 2001:db8:9::/48; fd00::/8; };
        abro fe80::1 { AdvVersionLow 1; AdvVersionHigh 2; AdvValidLifetime 65535; };
        lowpanco { AdvContextLength 64; AdvContextCompressionFlag on; AdvContextID 15; AdvLifeTime 65535; };");
    let p = &i.prefix[0];
    assert!(!p.adv_on_link && !p.adv_autonomous && p.adv_router_addr && p.adv_dhcpv6_pd_preferred);
    assert_eq!(
        (p.adv_valid_lifetime, p.adv_preferred_lifetime),
        (Lifetime::INFINITY, Lifetime(100))
    );
    assert!(p.deprecate_prefix && p.decrement_lifetimes);
    assert_eq!(p.base6_interface.as_deref(), Some("ppp0"));
    assert_eq!(i.prefix[1].base6to4_interface.as_deref(), Some("ppp1"));
    assert!(i.prefix[2].is_auto() && !i.prefix[0].is_auto());
    let r = &i.route[0];
    assert_eq!(
        (r.prefix, r.len, r.adv_route_preference),
        (a("2001:db8:2::"), 48, Preference::Low)
    );
    assert!(r.adv_route_lifetime.is_infinite() && !r.remove_route);
    assert_eq!(
        i.rdnss[0].addresses,
        vec![a("2001:db8::53"), a("2001:db8::54")]
    );
    assert_eq!(i.rdnss[0].adv_rdnss_lifetime, Lifetime(0));
    assert!(!i.rdnss[0].flush_rdnss);
    assert_eq!(i.dnssl[0].suffixes, vec!["example.com", "sub.example."]);
    assert!(i.dnssl[0].adv_dnssl_lifetime.is_infinite() && !i.dnssl[0].flush_dnssl);
    assert_eq!(
        i.clients,
        vec![
            Client {
                address: a("fe80::1"),
                excluded: false
            },
            Client {
                address: a("fe80::2"),
                excluded: true
            }
        ]
    );
    assert_eq!(i.adv_ra_src_address, vec![a("fe80::a"), a("fe80::b")]);
    assert_eq!(
        i.nat64prefix,
        vec![Nat64Prefix {
            prefix: a("64:ff9b::"),
            len: 96,
            adv_valid_lifetime: 65528
        }]
    );
    assert_eq!(
        i.autoignoreprefixes[1],
        IgnorePrefix {
            prefix: a("fd00::"),
            len: 8
        }
    );
    assert_eq!(
        i.abro,
        vec![Abro {
            address: a("fe80::1"),
            len: None,
            adv_version_low: 1,
            adv_version_high: 2,
            adv_valid_lifetime: 65535
        }]
    );
    assert_eq!(
        i.lowpanco,
        vec![LowpanCo {
            adv_context_length: 64,
            adv_context_compression_flag: true,
            adv_context_id: 15,
            adv_life_time: 65535
        }]
    );
}

#[test]
fn lexical_forms() {
    // Caseless keywords, comments, CRLF, blanks before `;`, `eth0#x` is a name.
    let text = "# head\r\nINTERFACE eth0#x { # c\r\n advsendadvert ON ;\r\n PREFIX 2001:DB8::/64 {};\r\n};\r\n";
    let l = parse_str("t", text).unwrap();
    assert_eq!(l.config.interfaces[0].name, "eth0#x");
    assert!(l.config.interfaces[0].adv_send_advert);
    // The 2.19 spelling of the abro lifetime works since keywords are caseless.
    assert_eq!(
        ok("abro fe80::1 { AdvValidLifeTime 7; };").abro[0].adv_valid_lifetime,
        7
    );
    // VLAN names and several interfaces.
    let l = parse_str("t", "interface eth2.60 {};\ninterface br-lan { };").unwrap();
    assert_eq!(l.config.interfaces.len(), 2);
    assert_eq!(l.config.interfaces[0].name, "eth2.60");
}

#[test]
fn syntax_errors_have_position_and_expectation() {
    let cases: &[(&str, &str)] = &[
        ("AdvSendAdvert on", "t.conf:3:1: expected `;`, found `}`"),
        (
            "AdvSendAdvert yes;",
            "t.conf:2:15: expected `on` or `off` after AdvSendAdvert, found string `yes`",
        ),
        (
            "AdvDefaultPreference 1;",
            "t.conf:2:22: expected `low`, `medium` or `high` after AdvDefaultPreference, found number `1`",
        ),
        (
            "MaxRtrAdvInterval 1.5.5;",
            "t.conf:2:19: expected a number of seconds after MaxRtrAdvInterval, found string `1.5.5`",
        ),
        (
            "AdvLinkMTU 1.5;",
            "t.conf:2:12: expected a number after AdvLinkMTU, found number `1.5`",
        ),
        (
            "AdvLinkMTU infinity;",
            "t.conf:2:12: expected a number after AdvLinkMTU, found `infinity`",
        ),
        (
            "Foo on;",
            "t.conf:2:1: expected an interface option or block or `}`, found string `Foo`",
        ),
        (
            "prefix 2001:db8::/64",
            "t.conf:3:1: expected `;`, found `}`",
        ),
        (
            "prefix 2001:db8:: { };",
            "t.conf:2:19: expected `/` and a prefix length, found `{`",
        ),
        (
            "prefix eth0/64;",
            "t.conf:2:8: expected an IPv6 address, found string `eth0`",
        ),
        (
            "prefix 2001:db8::/64 { AdvSendAdvert on; };",
            "t.conf:2:24: expected a prefix option or `}`, found keyword `AdvSendAdvert` (`AdvSendAdvert` belongs directly in the interface block; is a `};` missing?)",
        ),
        (
            "route 2001:db8::/64;",
            "t.conf:2:20: expected `{`, found `;`",
        ),
        (
            "RDNSS 2001:db8::1;",
            "t.conf:2:18: expected an IPv6 address or `{`, found `;`",
        ),
        (
            "RDNSS { };",
            "t.conf:2:7: expected an IPv6 address, found `{`",
        ),
        (
            "DNSSL { };",
            "t.conf:2:7: expected a domain name, found `{`",
        ),
        (
            "clients { };",
            "t.conf:2:11: expected an IPv6 address or `!address`, found `}`",
        ),
        (
            "clients { fe80::1 };",
            "t.conf:2:19: expected `;`, found `}`",
        ),
        (
            "AdvRASrcAddress { };",
            "t.conf:2:19: expected an IPv6 address, found `}`",
        ),
        (
            "autoignoreprefixes { };",
            "t.conf:2:22: expected a prefix, found `}`",
        ),
        (
            "lowpanco { AdvContextPrefix ::; };",
            "t.conf:2:12: expected a lowpanco option or `}`, found keyword `AdvContextPrefix` (radvd has no grammar rule for AdvContextPrefix; the 6CO prefix is always ::)",
        ),
        (
            "nat64prefix 64:ff9b::/96 { AdvOnLink on; };",
            "t.conf:2:28: expected `AdvValidLifetime` or `}`, found keyword `AdvOnLink`",
        ),
        (
            "RDNSS 2001:db8:LAN::1 { };",
            "t.conf:2:7: expected an IPv6 address, found string `2001:db8:LAN::1` (not a valid IPv6 address; template not expanded?)",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(err(body), *want, "{body}");
    }
    assert_eq!(
        parse_str("t", "interface ${LAN_IF} {};")
            .unwrap_err()
            .to_string(),
        "t:1:13: expected an interface option or block or `}`, found string `LAN_IF` (template not expanded?)"
    );
    assert_eq!(
        parse_str("t", "interface eth0 {}").unwrap_err().to_string(),
        "t:1:18: expected `;`, found end of file"
    );
    assert_eq!(
        parse_str("t", "interface on {};").unwrap_err().to_string(),
        "t:1:11: expected an interface name, found `on`"
    );
    assert_eq!(
        parse_str("t", "interface 123 {};").unwrap_err().to_string(),
        "t:1:11: expected an interface name, found number `123`"
    );
    assert_eq!(
        parse_str("t", "").unwrap_err().to_string(),
        "t:1:1: expected `interface` (a configuration needs at least one interface), found end of file"
    );
    assert_eq!(
        parse_str("t", "prefix ::/64;").unwrap_err().to_string(),
        "t:1:1: expected `interface`, found keyword `prefix`"
    );
}

#[test]
fn range_checks_have_position_and_message() {
    let cases: &[(&str, &str)] = &[
        (
            "MaxRtrAdvInterval 3;",
            "t.conf:2:19: MaxRtrAdvInterval must be between 4 and 65535, found 3",
        ),
        (
            "MaxRtrAdvInterval 70000;",
            "t.conf:2:19: MaxRtrAdvInterval must be between 4 and 65535, found 70000",
        ),
        (
            "AdvIntervalOpt on; MaxRtrAdvInterval 0.05;",
            "t.conf:2:38: MaxRtrAdvInterval must be between 0.07 and 65535, found 0.05",
        ),
        (
            "MinRtrAdvInterval 2;",
            "t.conf:2:19: MinRtrAdvInterval must be between 3 and 0.75 × MaxRtrAdvInterval (450), found 2",
        ),
        (
            "MaxRtrAdvInterval 30; MinRtrAdvInterval 25;",
            "t.conf:2:41: MinRtrAdvInterval must be between 3 and 0.75 × MaxRtrAdvInterval (22.5), found 25",
        ),
        (
            "MinDelayBetweenRAs 2.5;",
            "t.conf:2:20: MinDelayBetweenRAs must be between 3 and 65535, found 2.5",
        ),
        (
            "AdvLinkMTU 1000;",
            "t.conf:2:12: AdvLinkMTU must be 0 or at least 1280, found 1000",
        ),
        (
            "AdvReachableTime 3600001;",
            "t.conf:2:18: AdvReachableTime must be between 0 and 3600000, found 3600001",
        ),
        (
            "AdvCurHopLimit 300;",
            "t.conf:2:16: AdvCurHopLimit must be between 0 and 255, found 300",
        ),
        (
            "AdvDefaultLifetime 10;",
            "t.conf:2:20: AdvDefaultLifetime must be 0 or between MaxRtrAdvInterval (600) and 65535, found 10",
        ),
        (
            "AdvDefaultLifetime 65536;",
            "t.conf:2:20: AdvDefaultLifetime must be between 0 and 65535, found 65536",
        ),
        (
            "AdvDefaultPreference -2;",
            "t.conf:2:22: AdvDefaultPreference must be low, medium or high (-1 to 1), found -2",
        ),
        (
            "HomeAgentPreference 65536;",
            "t.conf:2:21: HomeAgentPreference must be between 0 and 65535, found 65536",
        ),
        (
            "HomeAgentLifetime 70000;",
            "t.conf:2:19: HomeAgentLifetime must be between 0 and 65535, found 70000",
        ),
        (
            "AdvHomeAgentFlag on; AdvHomeAgentInfo on; HomeAgentLifetime 65521;",
            "t.conf:2:61: HomeAgentLifetime must be between 1 and 65520 with AdvHomeAgentInfo on, found 65521",
        ),
        (
            "AdvHomeAgentFlag on; AdvHomeAgentInfo on; AdvDefaultLifetime 0;",
            "t.conf:1:11: HomeAgentLifetime must be between 1 and 65520 with AdvHomeAgentInfo on, found 0",
        ),
        (
            "AdvHomeAgentInfo on;",
            "t.conf:2:18: AdvHomeAgentInfo on needs AdvHomeAgentFlag on",
        ),
        (
            "AdvMobRtrSupportFlag on;",
            "t.conf:2:22: AdvMobRtrSupportFlag on needs AdvHomeAgentInfo on",
        ),
        (
            "AdvCaptivePortalAPI \"\";",
            "t.conf:2:21: AdvCaptivePortalAPI needs a non-empty URL",
        ),
        (
            "prefix 2001:db8::/129;",
            "t.conf:2:19: invalid prefix length 129 (must be 0 to 128)",
        ),
        (
            "prefix 2001:db8::/64 { AdvValidLifetime 300; };",
            "t.conf:2:41: AdvValidLifetime (300) must not be less than AdvPreferredLifetime (14400)",
        ),
        (
            "prefix 2001:db8::/64 { AdvPreferredLifetime infinity; };",
            "t.conf:2:45: AdvValidLifetime (86400) must not be less than AdvPreferredLifetime (infinity)",
        ),
        (
            "prefix 2001:db8::/48 { Base6Interface ppp0; };",
            "t.conf:2:19: Base6Interface needs a /64 prefix, found /48",
        ),
        (
            "prefix ::/64 { Base6to4Interface averyveryverylongname; };",
            "t.conf:2:34: interface name `averyveryverylongname` must be 1 to 15 bytes long, found 21",
        ),
        (
            "route 2001:db8::/200 { };",
            "t.conf:2:18: invalid route length 200 (must be 0 to 128)",
        ),
        (
            "route ::/0 { AdvRoutePreference -3; };",
            "t.conf:2:33: AdvRoutePreference must be low, medium or high (-1 to 1), found -3",
        ),
        (
            "DNSSL ex_ample.com { };",
            "t.conf:2:7: invalid character `_` in DNSSL suffix `ex_ample.com` (allowed: A-Z a-z 0-9 . -)",
        ),
        (
            "DNSSL a..example { };",
            "t.conf:2:7: empty label in DNSSL suffix `a..example`",
        ),
        ("DNSSL . { };", "t.conf:2:7: DNSSL suffix `.` is empty"),
        (
            "DNSSL a.example 1234 { };",
            "t.conf:2:17: expected a domain name or `{`, found number `1234`",
        ),
        (
            "DNSSL \"x.example\" { };",
            "t.conf:2:7: expected a domain name, found string `\"x.example\"`",
        ),
        (
            "nat64prefix 64:ff9b::/60;",
            "t.conf:2:23: nat64prefix length must be 32, 40, 48, 56, 64 or 96, found 60",
        ),
        (
            "nat64prefix ::/96;",
            "t.conf:2:13: nat64prefix must not be all-zero",
        ),
        (
            "nat64prefix 64:ff9b::/96 { AdvValidLifetime 65529; };",
            "t.conf:2:45: AdvValidLifetime must be between 0 and 65528, found 65529",
        ),
        (
            "autoignoreprefixes { ::/200; };",
            "t.conf:2:25: invalid autoignoreprefixes length 200 (must be 0 to 128)",
        ),
        (
            "autoignoreprefixes { ::/4000; };",
            "t.conf:2:25: invalid autoignoreprefixes length 4000 (must be 0 to 128)",
        ),
        (
            "abro fe80::1/129 { };",
            "t.conf:2:14: invalid abro length 129 (must be 0 to 128)",
        ),
        (
            "abro fe80::1 { AdvVersionLow 65536; };",
            "t.conf:2:30: AdvVersionLow must be between 0 and 65535, found 65536",
        ),
        (
            "abro fe80::1 { AdvVersionHigh 65536; };",
            "t.conf:2:31: AdvVersionHigh must be between 0 and 65535, found 65536",
        ),
        (
            "abro fe80::1 { AdvValidLifetime 65536; };",
            "t.conf:2:33: AdvValidLifetime must be between 0 and 65535, found 65536",
        ),
        (
            "lowpanco { AdvContextLength 129; };",
            "t.conf:2:29: AdvContextLength must be between 0 and 128, found 129",
        ),
        (
            "lowpanco { AdvContextID 256; };",
            "t.conf:2:25: AdvContextID must be between 0 and 255, found 256",
        ),
        (
            "lowpanco { AdvLifeTime 65536; };",
            "t.conf:2:24: AdvLifeTime must be between 0 and 65535, found 65536",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(err(body), *want, "{body}");
    }
    // Relaxed minimums in MIPv6 mode.
    let i = ok(
        "AdvHomeAgentFlag on; MaxRtrAdvInterval 0.5; MinRtrAdvInterval 0.05; MinDelayBetweenRAs 0.03;",
    );
    assert_eq!(
        (
            i.max_rtr_adv_interval,
            i.min_rtr_adv_interval,
            i.min_delay_between_ras
        ),
        (0.5, 0.05, 0.03)
    );
    let i = ok("prefix 2001:db8::1/64 { AdvRouterAddr on; }; MaxRtrAdvInterval 1;");
    assert_eq!(i.min_rtr_adv_interval, 0.33);
    assert_eq!(ok("AdvDefaultLifetime 0;").adv_default_lifetime, 0);
}

#[test]
fn check_reports_every_error_in_file_order() {
    let text = "interface eth0 {
    AdvCurHopLimit 300;
    prefix 2001:db8::/129;
    route 2001:db8::1/48 {};
    autoignoreprefixes { ::/200; };
};
interface eth0 {};
interface averyveryverylongname {};
interface eth1 { RDNSS ff02::1 { AdvRDNSSLifetime 1; }; nat64prefix 64:ff9b::/60; };
";
    let c = check_str("t", text);
    assert!(c.config.is_none());
    let errors: Vec<String> = c.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "t:2:20: AdvCurHopLimit must be between 0 and 255, found 300",
            "t:3:23: invalid prefix length 129 (must be 0 to 128)",
            "t:5:29: invalid autoignoreprefixes length 200 (must be 0 to 128)",
            "t:7:11: duplicate interface definition for eth0 (first at line 1, column 11)",
            "t:8:11: interface name `averyveryverylongname` must be 1 to 15 bytes long, found 21",
            "t:9:79: nat64prefix length must be 32, 40, 48, 56, 64 or 96, found 60",
        ]
    );
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        vec![
            "t:4:11: warning: route 2001:db8::1/48 has host bits set; v6home advertises 2001:db8::/48 (radvd sends them unmasked)",
            "t:9:24: warning: RDNSS address ff02::1 is multicast",
            "t:9:18: warning: AdvRDNSSLifetime 1 is shorter than MaxRtrAdvInterval 600; hosts may drop the servers between RAs",
        ]
    );
    // parse_str reports the first of them.
    assert_eq!(parse_str("t", text).unwrap_err().to_string(), errors[0]);
    // A syntax error stops parsing and comes alone.
    let c = check_str(
        "t",
        "interface eth0 { AdvCurHopLimit 300; prefix ::/64 }; };",
    );
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].to_string(), "t:1:51: expected `;`, found `}`");
    // A clean file.
    let c = check_str("t", "interface eth0 { AdvSendAdvert on; };");
    assert!(c.errors.is_empty() && c.warnings.is_empty());
    assert_eq!(c.config.unwrap().interfaces[0].name, "eth0");
    // The TOML form too.
    // A bad Max is reported once, and its dependent checks are skipped.
    let c = check_str(
        "t",
        "interface eth0 { MaxRtrAdvInterval 2; MinRtrAdvInterval 2; AdvDefaultLifetime 1; };",
    );
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    let c = check_toml(
        "t.toml",
        "[[interface]]\nname = \"eth0\"\nmax_rtr_adv_interval = nan\n",
    );
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    let c = check_toml(
        "t.toml",
        "[[interface]]\nname = \"eth0\"\nadv_cur_hop_limit = 256\nadv_link_mtu = 3\n",
    );
    let errors: Vec<String> = c.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "t.toml:3:21: AdvCurHopLimit must be between 0 and 255, found 256",
            "t.toml:4:16: AdvLinkMTU must be 0 or at least 1280, found 3",
        ]
    );
}

#[test]
fn error_message_without_location() {
    let e = parse_str("t", "interface eth0 { AdvCurHopLimit 300; };").unwrap_err();
    assert_eq!(
        e.message(),
        "AdvCurHopLimit must be between 0 and 255, found 300"
    );
    assert_eq!(e.path(), "t");
    let e = parse_str("t", "interface eth0 {}").unwrap_err();
    assert_eq!(e.message(), "expected `;`, found end of file");
    assert_eq!(e.pos(), Some(Pos { line: 1, col: 18 }));
}

#[test]
fn interface_name_and_duplicate_checks() {
    assert_eq!(
        parse_str("t", "interface abcdefghijklmnop {};")
            .unwrap_err()
            .to_string(),
        "t:1:11: interface name `abcdefghijklmnop` must be 1 to 15 bytes long, found 16"
    );
    assert_eq!(
        parse_str("t", "interface eth0 {};\ninterface eth0 {};")
            .unwrap_err()
            .to_string(),
        "t:2:11: duplicate interface definition for eth0 (first at line 1, column 11)"
    );
}

#[test]
fn rdnss_address_limit() {
    let addrs: Vec<String> = (1..=128).map(|n| format!("2001:db8::{n:x}")).collect();
    let e = err(&format!("RDNSS {} {{ }};", addrs.join(" ")));
    assert!(e.starts_with("t.conf:2:"), "{e}");
    assert!(
        e.ends_with(": too many addresses in one RDNSS block (at most 127)"),
        "{e}"
    );
    let i = ok(&format!("RDNSS {} {{ }};", addrs[..127].join(" ")));
    assert_eq!(i.rdnss[0].addresses.len(), 127);
    let w = warns(&format!("RDNSS {} {{ }};", addrs[..76].join(" ")));
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("RDNSS option is 1224 bytes, above the 1210-byte option budget"),
        "{w:?}"
    );
}

#[test]
fn dnssl_length_limits() {
    let l64 = "a".repeat(64);
    assert_eq!(
        err(&format!("DNSSL {l64}.example {{ }};")),
        format!("t.conf:2:7: label `{l64}` in DNSSL suffix is 64 characters long, the limit is 63")
    );
    let long = vec!["abcdefghi"; 26].join("."); // 259 characters
    assert_eq!(
        err(&format!("DNSSL {long} {{ }};")),
        "t.conf:2:7: DNSSL suffix is 259 characters long, the limit is 253"
    );
    // 42 names of 50 bytes each: over 255 × 8 bytes.
    let names: Vec<String> = (0..42)
        .map(|n| format!("{}{n:02}.example", "x".repeat(38)))
        .collect();
    assert_eq!(
        err(&format!("DNSSL {} {{ }};", names.join(" "))),
        "t.conf:2:1: DNSSL option would be 2112 bytes, above the 2040-byte limit of an ND option"
    );
}

#[test]
fn ra_mtu_is_clamped_with_a_warning() {
    assert_eq!(ok("AdvRAMTU 1000;").adv_ra_mtu, 1280);
    assert_eq!(ok("AdvRAMTU 200000;").adv_ra_mtu, 131072);
    assert_eq!(
        warns("AdvRAMTU 1000;"),
        vec!["t.conf:2:10: warning: AdvRAMTU 1000 clamped to 1280 (1280 to 131072)"]
    );
}

#[test]
fn warnings() {
    let cases: &[(&str, &[&str])] = &[
        (
            "prefix 2001:db8:1234::1/64 {};",
            &[
                "t.conf:2:8: warning: prefix 2001:db8:1234::1/64 has host bits set; v6home advertises 2001:db8:1234::/64 (radvd sends them unmasked; use AdvRouterAddr on to send a router address)",
            ],
        ),
        ("prefix 2001:db8:1234::1/64 { AdvRouterAddr on; };", &[]),
        (
            "prefix 2001:db8::/48;",
            &[
                "t.conf:2:19: warning: AdvAutonomous on with a /48 prefix: SLAAC needs /64, hosts will ignore the A flag",
            ],
        ),
        ("prefix 2001:db8::/48 { AdvAutonomous off; };", &[]),
        ("prefix ::/0;", &[]),
        (
            "prefix 2001:db8::/64;\nprefix 2001:db8::/64;",
            &["t.conf:3:1: warning: duplicate prefix 2001:db8::/64 (also at line 2)"],
        ),
        (
            "route 2001:db8::/48 {};\nroute 2001:db8::/48 {};",
            &["t.conf:3:1: warning: duplicate route 2001:db8::/48 (also at line 2)"],
        ),
        (
            "route 2001:db8::1/48 {};",
            &[
                "t.conf:2:7: warning: route 2001:db8::1/48 has host bits set; v6home advertises 2001:db8::/48 (radvd sends them unmasked)",
            ],
        ),
        (
            "RDNSS 2001:db8::1 2001:db8::1 {};",
            &["t.conf:2:19: warning: duplicate RDNSS address 2001:db8::1 (also at line 2)"],
        ),
        (
            "RDNSS ff02::1 {};",
            &["t.conf:2:7: warning: RDNSS address ff02::1 is multicast"],
        ),
        (
            "RDNSS :: {};",
            &["t.conf:2:7: warning: RDNSS address :: is not a usable server address"],
        ),
        (
            "DNSSL example.com example.com. {};",
            &["t.conf:2:19: warning: duplicate DNSSL suffix example.com. (also at line 2)"],
        ),
        (
            "clients { fe80::1; fe80::1; };",
            &["t.conf:2:20: warning: duplicate client fe80::1 (also at line 2)"],
        ),
        (
            "AdvRASrcAddress { 2001:db8::1; };",
            &[
                "t.conf:2:19: warning: AdvRASrcAddress 2001:db8::1 is not link-local; RFC 4861 requires a link-local RA source",
            ],
        ),
        (
            "AdvRASrcAddress { fe80::1; fe80::1; };",
            &["t.conf:2:28: warning: duplicate AdvRASrcAddress fe80::1 (also at line 2)"],
        ),
        (
            "AdvSendAdvert on;\nAdvSendAdvert off;",
            &["t.conf:3:1: warning: AdvSendAdvert repeated (first at line 2); the last value wins"],
        ),
        (
            "prefix ::/64 { AdvOnLink on; AdvOnLink off; };",
            &[
                "t.conf:2:30: warning: AdvOnLink repeated in prefix (first at line 2); the last value wins",
            ],
        ),
        (
            "RDNSS 2001:db8::1 { AdvRDNSSPreference 8; AdvRDNSSOpen on; };",
            &[
                "t.conf:2:21: warning: AdvRDNSSPreference is deprecated and ignored",
                "t.conf:2:43: warning: AdvRDNSSOpen is deprecated and ignored",
            ],
        ),
        (
            "RDNSS 2001:db8::1 { AdvRDNSSLifetime 100; };",
            &[
                "t.conf:2:1: warning: AdvRDNSSLifetime 100 is shorter than MaxRtrAdvInterval 600; hosts may drop the servers between RAs",
            ],
        ),
        ("RDNSS 2001:db8::1 { AdvRDNSSLifetime 0; };", &[]),
        (
            "route ::/0 { AdvRouteLifetime 0; };",
            &[
                "t.conf:2:1: warning: route ::/0 has lifetime 0 exactly when AdvDefaultLifetime does not; default routes will flap",
            ],
        ),
        (
            "AdvDefaultLifetime 0; route ::/0 { AdvRouteLifetime 0; };",
            &[],
        ),
        (
            "AdvDefaultLifetime 0; AdvDefaultPreference low;",
            &[
                "t.conf:2:44: warning: AdvDefaultPreference low has no effect with AdvDefaultLifetime 0: RFC 4191 §2.2 requires Prf 00, which v6home sends (radvd sends the configured value)",
            ],
        ),
        (
            "nat64prefix 64:ff9b::1/96;",
            &["t.conf:2:13: warning: nat64prefix 64:ff9b::1/96 has bits set beyond its length"],
        ),
        (
            "abro fe80::1 {};\nabro fe80::2 {};",
            &["t.conf:3:1: warning: only the first abro block (line 2) is advertised"],
        ),
        (
            "lowpanco {};\nlowpanco {};",
            &["t.conf:3:1: warning: only the first lowpanco block (line 2) is advertised"],
        ),
    ];
    for (body, want) in cases {
        assert_eq!(warns(body), want.to_vec(), "{body}");
    }
}

#[test]
fn prefix_advertised_masks_unless_router_addr() {
    let i = ok(
        "prefix 2001:db8::1/64 { AdvAutonomous off; }; prefix 2001:db8:1::1/64 { AdvRouterAddr on; };",
    );
    assert_eq!(i.prefix[0].advertised(), a("2001:db8::"));
    assert_eq!(i.prefix[1].advertised(), a("2001:db8:1::1"));
    assert_eq!(mask(a("ffff::ffff"), 0), Ipv6Addr::UNSPECIFIED);
    assert_eq!(mask(a("2001:db8:ffff::"), 36), a("2001:db8:f000::"));
}

#[test]
fn emitted_radvd_conf_is_stable() {
    let l = parse_str(
        "t",
        &wrap("MaxRtrAdvInterval 30; prefix 2001:db8::/64 {}; RDNSS 2001:db8::1 {};"),
    )
    .unwrap();
    let text = l.config.to_radvd_conf();
    assert!(
        text.starts_with("interface eth0 {\n\tIgnoreIfMissing on;\n"),
        "{text}"
    );
    assert!(text.contains("\tMinRtrAdvInterval 9.9;\n"), "{text}");
    assert!(
        text.contains(
            "\n\tRDNSS 2001:db8::1 {\n\t\tAdvRDNSSLifetime 90;\n\t\tFlushRDNSS on;\n\t};\n"
        ),
        "{text}"
    );
    let again = parse_str("t2", &text).unwrap();
    assert_eq!(again.config, l.config);
    assert_eq!(again.config.to_radvd_conf(), text);
}

#[test]
fn toml_minimal_takes_defaults_without_order_dependence() {
    let t = r#"
[[interface]]
name = "eth0"
adv_send_advert = true
adv_default_preference = "high"

[[interface.rdnss]]
addresses = ["2001:db8::53"]

[[interface.prefix]]
prefix = "2001:db8:1234::"
len = 64
adv_valid_lifetime = "infinity"
adv_preferred_lifetime = "infinity"

[[interface]]
name = "eth1"
max_rtr_adv_interval = 30
"#;
    // max_rtr_adv_interval placed after the blocks in eth1 has no effect on order.
    let l = from_toml("t.toml", t).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let i = &l.config.interfaces[0];
    assert!(i.adv_send_advert);
    assert_eq!(i.adv_default_preference, Preference::High);
    assert_eq!(i.rdnss[0].adv_rdnss_lifetime, Lifetime(1800));
    assert!(i.prefix[0].adv_valid_lifetime.is_infinite() && i.prefix[0].adv_on_link);
    assert_eq!(l.config.interfaces[1].min_rtr_adv_interval, 9.9);
    let back = from_toml("t.toml", &l.config.to_toml()).unwrap();
    assert_eq!(back.config, l.config);
}

#[test]
fn toml_errors_have_positions() {
    let cases: &[(&str, &str)] = &[
        (
            "[[interface]]\nname = \"eth0\"\nbogus = 1\n",
            "t.toml:3:1: unknown key `bogus` (an interface option or block expected)",
        ),
        (
            "[[interface]]\nname = \"eth0\"\nadv_send_advert = 1\n",
            "t.toml:3:19: expected true or false, found integer",
        ),
        (
            "[[interface]]\nname = \"eth0\"\nmax_rtr_adv_interval = 2\n",
            "t.toml:3:24: MaxRtrAdvInterval must be between 4 and 65535, found 2",
        ),
        (
            "[[interface]]\nname = \"eth0\"\nmax_rtr_adv_interval = nan\n",
            "t.toml:3:24: MaxRtrAdvInterval needs a finite number of seconds",
        ),
        (
            "[[interface]]\nname = \"eth0\"\nadv_cur_hop_limit = -1\n",
            "t.toml:3:21: expected a non-negative integer, found -1",
        ),
        (
            "[[interface]]\nname = \"on\"\n",
            "t.toml:2:8: interface name `on` cannot be written in radvd.conf (a keyword, number, address or special characters)",
        ),
        (
            "[[interface]]\nadv_send_advert = true\n",
            "t.toml:1:1: missing key `name`",
        ),
        (
            "[[interface]]\nname = \"eth0\"\n[[interface.prefix]]\nprefix = \"2001:db8::\"\nlen = 300\n",
            "t.toml:5:7: invalid prefix length 300 (must be 0 to 128)",
        ),
        (
            "[[interface]]\nname = \"eth0\"\n[[interface.rdnss]]\naddresses = [\"nope\"]\n",
            "t.toml:4:14: invalid IPv6 address `nope`",
        ),
        (
            "[[interface]]\nname = \"eth0\"\nadv_captive_portal_api = \"a\\\"b\"\n",
            "t.toml:3:26: AdvCaptivePortalAPI must not contain `\"` or control characters",
        ),
        (
            "[[interface]]\nname = \"eth0\"\n[[interface.dnssl]]\nsuffixes = [\"123\"]\n",
            "t.toml:4:13: DNSSL suffix `123` cannot be written in radvd.conf (it reads as a number or keyword)",
        ),
        ("x = [", "t.toml:1:6: invalid TOML: "),
        (
            "other = 1\n",
            "t.toml:1:1: unknown key `other` (expected `interface`)",
        ),
        (
            "",
            "t.toml:1:1: no interface defined (a configuration needs at least one)",
        ),
    ];
    for (text, want) in cases {
        let got = from_toml("t.toml", text).unwrap_err().to_string();
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
    }
}

mod prop {
    use super::super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    fn addr() -> impl Strategy<Value = Ipv6Addr> {
        prop_oneof![
            any::<u128>().prop_map(Ipv6Addr::from),
            (any::<u16>(), any::<u16>())
                .prop_map(|(a, b)| Ipv6Addr::new(0x2001, 0xdb8, a, 0, 0, 0, 0, b)),
            Just(Ipv6Addr::UNSPECIFIED),
        ]
    }

    fn lifetime() -> impl Strategy<Value = Lifetime> {
        prop_oneof![Just(Lifetime::INFINITY), any::<u32>().prop_map(Lifetime)]
    }

    fn pref() -> impl Strategy<Value = Preference> {
        prop_oneof![
            Just(Preference::Low),
            Just(Preference::Medium),
            Just(Preference::High)
        ]
    }

    fn ifname() -> impl Strategy<Value = String> {
        "(eth|wlan|br-|ppp|tun_)[0-9]{1,3}(\\.[0-9]{1,3})?"
    }

    fn prefix() -> impl Strategy<Value = Prefix> {
        (
            addr(),
            0u8..=128,
            any::<[bool; 6]>(),
            any::<(u32, u32)>(),
            any::<bool>(),
            proptest::option::of(ifname()),
            proptest::option::of(ifname()),
        )
            .prop_map(|(a, len, f, (x, y), inf, b6, b64)| {
                let mut p = Prefix::new(a, len);
                p.adv_on_link = f[0];
                p.adv_autonomous = f[1];
                p.adv_router_addr = f[2];
                p.adv_dhcpv6_pd_preferred = f[3];
                p.deprecate_prefix = f[4];
                p.decrement_lifetimes = f[5];
                p.adv_valid_lifetime = if inf {
                    Lifetime::INFINITY
                } else {
                    Lifetime(x.max(y))
                };
                p.adv_preferred_lifetime = Lifetime(x.min(y));
                p.base6_interface = if len == 64 { b6 } else { None };
                p.base6to4_interface = b64;
                p
            })
    }

    fn domain() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,12}(\\.[a-z0-9-]{1,12}){0,3}\\.?"
            .prop_filter("must read back as a bare string", |s| {
                super::super::lexer::is_bare_string(s)
            })
    }

    fn iface(name: String) -> impl Strategy<Value = Interface> {
        let scalars = (
            any::<[bool; 14]>(),
            4004u32..=65_535_000,
            any::<u32>(),
            (3000u32..=65_535_000, any::<u32>()),
            (
                prop_oneof![Just(0u32), 1280u32..=9000],
                1280u32..=131072,
                0u32..=3_600_000,
                any::<u32>(),
                any::<u8>(),
            ),
            (any::<u32>(), pref(), 1u16..=65520, any::<u16>()),
            proptest::option::of("https://[a-z]{1,20}\\.example/[a-z]{0,10}"),
        );
        let blocks = (
            proptest::collection::vec(prefix(), 0..3),
            proptest::collection::vec((addr(), 0u8..=128, pref(), lifetime(), any::<bool>()), 0..3),
            proptest::collection::vec(
                (
                    proptest::collection::vec(addr(), 1..4),
                    lifetime(),
                    any::<bool>(),
                ),
                0..3,
            ),
            proptest::collection::vec(
                (
                    proptest::collection::vec(domain(), 1..4),
                    lifetime(),
                    any::<bool>(),
                ),
                0..3,
            ),
            proptest::collection::vec((addr(), any::<bool>()), 0..3),
            proptest::collection::vec(addr(), 0..3),
            proptest::collection::vec((any::<u128>(), 0usize..6, 0u16..=65528), 0..2),
            proptest::collection::vec((addr(), 0u8..=128), 0..3),
            proptest::collection::vec(
                (addr(), proptest::option::of(0u8..=128), any::<[u16; 3]>()),
                0..2,
            ),
            proptest::collection::vec((0u8..=128, any::<bool>(), any::<u8>(), any::<u16>()), 0..2),
        );
        (scalars, blocks).prop_map(move |(s, b)| {
            let (
                f,
                max_ms,
                min_r,
                (delay_ms, dl_r),
                (mtu, ramtu, reach, retrans, hop),
                (ha_r, dpref, hal, hap),
                portal,
            ) = s;
            let mut i = Interface::new(&name);
            i.ignore_if_missing = f[0];
            i.adv_send_advert = f[1];
            i.unicast_only = f[2];
            i.unrestricted_unicast = f[3];
            i.adv_ra_solicited_unicast = f[4];
            i.adv_managed_flag = f[5];
            i.adv_other_config_flag = f[6];
            i.adv_source_ll_address = f[7];
            i.remove_adv_on_exit = f[8];
            i.adv_home_agent_flag = f[9] || f[10];
            i.adv_home_agent_info = f[10];
            i.adv_mob_rtr_support_flag = f[10] && f[11];
            i.adv_interval_opt = f[12];
            i.adv_snac_router_flag = f[13];
            i.max_rtr_adv_interval = f64::from(max_ms) / 1000.0;
            let min_hi = (max_ms / 4) * 3 - 1;
            i.min_rtr_adv_interval = f64::from(3000 + min_r % (min_hi - 3000 + 1)) / 1000.0;
            i.min_delay_between_ras = f64::from(delay_ms) / 1000.0;
            let lo = max_ms.div_ceil(1000);
            i.adv_default_lifetime = if dl_r % 5 == 0 {
                0
            } else {
                (lo + dl_r % (65535 - lo + 1)) as u16
            };
            i.adv_link_mtu = mtu;
            i.adv_ra_mtu = ramtu;
            i.adv_reachable_time = reach;
            i.adv_retrans_timer = retrans;
            i.adv_cur_hop_limit = hop;
            i.adv_default_preference = dpref;
            i.home_agent_lifetime = if i.adv_home_agent_info {
                hal
            } else {
                (ha_r % 65536) as u16
            };
            i.home_agent_preference = hap;
            i.adv_captive_portal_api = portal;
            let (prefixes, routes, rdnss, dnssl, clients, src, nat64, ign, abro, lowpan) = b;
            i.prefix = prefixes;
            i.route = routes
                .into_iter()
                .map(
                    |(prefix, len, adv_route_preference, adv_route_lifetime, remove_route)| Route {
                        prefix,
                        len,
                        adv_route_preference,
                        adv_route_lifetime,
                        remove_route,
                    },
                )
                .collect();
            i.rdnss = rdnss
                .into_iter()
                .map(|(addresses, adv_rdnss_lifetime, flush_rdnss)| Rdnss {
                    addresses,
                    adv_rdnss_lifetime,
                    flush_rdnss,
                })
                .collect();
            i.dnssl = dnssl
                .into_iter()
                .map(|(suffixes, adv_dnssl_lifetime, flush_dnssl)| Dnssl {
                    suffixes,
                    adv_dnssl_lifetime,
                    flush_dnssl,
                })
                .collect();
            i.clients = clients
                .into_iter()
                .map(|(address, excluded)| Client { address, excluded })
                .collect();
            i.adv_ra_src_address = src;
            i.nat64prefix = nat64
                .into_iter()
                .map(|(bits, l, adv_valid_lifetime)| Nat64Prefix {
                    prefix: Ipv6Addr::from(bits | 1 << 127),
                    len: [32, 40, 48, 56, 64, 96][l],
                    adv_valid_lifetime,
                })
                .collect();
            i.autoignoreprefixes = ign
                .into_iter()
                .map(|(prefix, len)| IgnorePrefix { prefix, len })
                .collect();
            i.abro = abro
                .into_iter()
                .map(|(address, len, v)| Abro {
                    address,
                    len,
                    adv_version_low: v[0],
                    adv_version_high: v[1],
                    adv_valid_lifetime: v[2],
                })
                .collect();
            i.lowpanco = lowpan
                .into_iter()
                .map(
                    |(
                        adv_context_length,
                        adv_context_compression_flag,
                        adv_context_id,
                        adv_life_time,
                    )| LowpanCo {
                        adv_context_length,
                        adv_context_compression_flag,
                        adv_context_id,
                        adv_life_time,
                    },
                )
                .collect();
            i
        })
    }

    fn config() -> impl Strategy<Value = Config> {
        proptest::collection::btree_set(ifname(), 1..3)
            .prop_flat_map(|names| names.into_iter().map(iface).collect::<Vec<_>>())
            .prop_map(|interfaces| Config { interfaces })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn radvd_conf_round_trip(cfg in config()) {
            let text = cfg.to_radvd_conf();
            let back = parse_str("p.conf", &text);
            prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), text);
            prop_assert_eq!(back.unwrap().config, cfg);
        }

        #[test]
        fn toml_round_trip(cfg in config()) {
            let text = cfg.to_toml();
            let back = from_toml("p.toml", &text);
            prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), text);
            prop_assert_eq!(back.unwrap().config, cfg);
        }

        #[test]
        fn installed_radvd_accepts_emitted_conf(cfg in config()) {
            // Differential check against the real radvd (skipped where it is not installed).
            let Some(radvd) = ["/usr/sbin/radvd", "/usr/local/sbin/radvd"].iter().find(|p| std::path::Path::new(p).exists()) else {
                return Ok(());
            };
            let mut cfg = cfg;
            // Features radvd 2.19 (Debian 12) lacks.
            for i in &mut cfg.interfaces {
                i.unrestricted_unicast = false;
                i.remove_adv_on_exit = true;
                i.adv_snac_router_flag = false;
                i.adv_captive_portal_api = None;
                i.nat64prefix.clear();
                i.autoignoreprefixes.clear();
                i.clients.iter_mut().for_each(|c| c.excluded = false);
                i.prefix.iter_mut().for_each(|p| p.adv_dhcpv6_pd_preferred = false);
            }
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let file = std::env::temp_dir().join(format!("v6h-raconf-prop-{}-{n}.conf", std::process::id()));
            let text = cfg.to_radvd_conf();
            std::fs::write(&file, &text).unwrap();
            let out = std::process::Command::new(radvd).args(["-c", "-C"]).arg(&file).output().unwrap();
            let _ = std::fs::remove_file(&file);
            prop_assert!(out.status.success(), "radvd -c failed: {}\n{}", String::from_utf8_lossy(&out.stderr), text);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "[ -~\\t\\n]{0,200}") {
            let _ = parse_str("f", &s);
            let _ = from_toml("f", &s);
        }

        #[test]
        fn token_soup_never_panics(words in proptest::collection::vec(prop_oneof![
            Just("interface"), Just("eth0"), Just("{"), Just("}"), Just(";"), Just("/"), Just("prefix"),
            Just("2001:db8::"), Just("64"), Just("200"), Just("on"), Just("infinity"), Just("RDNSS"), Just("DNSSL"),
            Just("a.example"), Just("clients"), Just("!fe80::1"), Just("abro"), Just("lowpanco"), Just("route"),
            Just("autoignoreprefixes"), Just("nat64prefix"), Just("AdvValidLifetime"), Just("MaxRtrAdvInterval"),
            Just("4.5"), Just("-1"), Just("high"), Just("\"x\""), Just("#c\n"), Just("\n"),
        ], 0..60)) {
            let _ = parse_str("f", &words.join(" "));
        }
    }
}

#[test]
fn columns_count_characters_and_long_lines_tokenize_in_linear_time() {
    // Before the fix every token's column was found by counting the characters from the start
    // of its line: a file on one line took quadratic time (minutes for a few hundred kB).
    let n = 200_000;
    let text = format!("\"é\" {}\u{1}", "a ".repeat(n));
    let started = std::time::Instant::now();
    let e = parse_str("f", &text).unwrap_err();
    let want_col = u32::try_from(4 + 2 * n + 1).unwrap();
    assert_eq!(
        e.pos(),
        Some(Pos {
            line: 1,
            col: want_col
        }),
        "{e}"
    );
    assert!(e.to_string().contains("control character U+0001"), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // Characters, not bytes: `é` and `€` are one column each.
    let e = parse_str("f", "# é€\n\"é€\" ;\u{2}").unwrap_err();
    assert_eq!(e.pos(), Some(Pos { line: 2, col: 7 }), "{e}");
}

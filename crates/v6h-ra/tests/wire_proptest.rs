//! Property tests: parse(emit(x)) == x for RAs, RSs and every option; the parser never panics.

use proptest::prelude::*;
use std::net::Ipv6Addr;
use v6h_ra::wire::*;

fn addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn pref() -> impl Strategy<Value = Preference> {
    prop_oneof![
        Just(Preference::Medium),
        Just(Preference::High),
        Just(Preference::Low),
        Just(Preference::Reserved)
    ]
}

fn dns_name() -> impl Strategy<Value = DnsName> {
    prop::collection::vec("[a-z0-9][a-z0-9-]{0,20}", 1..5)
        .prop_map(|labels| DnsName::new(&labels.join(".")).unwrap())
}

fn option() -> impl Strategy<Value = NdOptionRepr> {
    prop_oneof![
        prop_oneof![
            prop::collection::vec(any::<u8>(), 6..=6),
            prop::collection::vec(any::<u8>(), 14..=14)
        ]
        .prop_map(NdOptionRepr::SourceLinkAddr),
        (
            0u8..=128,
            any::<[bool; 4]>(),
            any::<u32>(),
            any::<u32>(),
            addr()
        )
            .prop_map(|(l, f, v, p, a)| NdOptionRepr::Prefix(PrefixInfo {
                prefix_len: l,
                on_link: f[0],
                autonomous: f[1],
                router_addr: f[2],
                pd_preferred: f[3],
                valid_lifetime: v,
                preferred_lifetime: p,
                prefix: a,
            })),
        any::<u32>().prop_map(NdOptionRepr::Mtu),
        any::<u32>().prop_map(NdOptionRepr::AdvInterval),
        (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(m, p, l)| {
            NdOptionRepr::HomeAgentInfo(HomeAgentInfo {
                mobile_router: m,
                preference: p,
                lifetime: l,
            })
        }),
        (0u8..=128, pref(), any::<u32>(), addr()).prop_map(|(l, p, t, a)| {
            // Only the prefix's own bits survive (RFC 4191 §2.3: the rest are ignored).
            let keep = u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0);
            NdOptionRepr::Route(RouteInfo {
                prefix_len: l,
                preference: p,
                lifetime: t,
                prefix: Ipv6Addr::from(u128::from(a) & keep),
            })
        }),
        (any::<u32>(), prop::collection::vec(addr(), 1..10)).prop_map(
            |(l, s)| NdOptionRepr::Rdnss(Rdnss {
                lifetime: l,
                servers: s
            })
        ),
        (any::<u32>(), prop::collection::vec(dns_name(), 1..6)).prop_map(|(l, d)| {
            NdOptionRepr::Dnssl(Dnssl {
                lifetime: l,
                domains: d,
            })
        }),
        (0u8..=128, any::<bool>(), 0u8..16, any::<u16>(), addr()).prop_map(|(l, c, i, t, a)| {
            NdOptionRepr::SixCo(SixCo {
                context_len: l,
                compression: c,
                cid: i,
                lifetime: t,
                prefix: a,
            })
        }),
        (any::<u16>(), any::<u16>(), any::<u16>(), addr()).prop_map(|(lo, hi, t, a)| {
            NdOptionRepr::Abro(Abro {
                version_low: lo,
                version_high: hi,
                lifetime: t,
                address: a,
            })
        }),
        "[ -~]{0,100}".prop_map(|u| NdOptionRepr::CaptivePortal(CaptivePortal { uri: u })),
        (
            0u16..8192,
            prop::sample::select(vec![96u8, 64, 56, 48, 40, 32]),
            any::<[u8; 12]>()
        )
            .prop_map(|(s, l, p)| {
                let mut o = [0u8; 16];
                o[..12].copy_from_slice(&p);
                NdOptionRepr::Pref64(Pref64 {
                    scaled_lifetime: s,
                    prefix_len: l,
                    prefix: Ipv6Addr::from(o),
                })
            }),
        (
            prop::sample::select(vec![9u8, 30, 100, 144, 200, 255]),
            (0usize..4).prop_flat_map(|n| prop::collection::vec(any::<u8>(), n * 8 + 6))
        )
            .prop_map(|(k, d)| NdOptionRepr::Unknown { kind: k, data: d }),
    ]
}

fn header() -> impl Strategy<Value = RaHeader> {
    (
        any::<u8>(),
        any::<[bool; 4]>(),
        pref(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(h, f, p, l, r, t)| RaHeader {
            cur_hop_limit: h,
            managed: f[0],
            other: f[1],
            home_agent: f[2],
            preference: p,
            snac: f[3],
            router_lifetime: l,
            reachable_time: r,
            retrans_timer: t,
        })
}

proptest! {
    #[test]
    fn ra_roundtrip(h in header(), opts in prop::collection::vec(option(), 0..12)) {
        let ra = RaRepr { header: h, options: opts };
        let bytes = ra.emit().unwrap();
        prop_assert_eq!(bytes.len(), ra.buffer_len());
        prop_assert_eq!(bytes.len() % 8, 0);
        prop_assert_eq!(RaRepr::parse(&bytes).unwrap(), ra);
    }

    #[test]
    fn rs_roundtrip(opts in prop::collection::vec(option(), 0..4)) {
        let rs = RsRepr { options: opts };
        let bytes = rs.emit().unwrap();
        prop_assert_eq!(RsRepr::parse(&bytes).unwrap(), rs);
    }

    #[test]
    fn split_preserves_options(h in header(), opts in prop::collection::vec(option(), 0..80)) {
        let budget = RA_BUDGET_MIN;
        let r = split_ras(&h, &opts, budget);
        let mut got = Vec::new();
        for p in &r.packets {
            prop_assert!(p.len() <= budget);
            let ra = RaRepr::parse(p).unwrap();
            prop_assert_eq!(ra.header, h);
            got.extend(ra.options);
        }
        let kept: Vec<_> = opts.iter().filter(|o| 16 + o.buffer_len() <= budget).cloned().collect();
        prop_assert_eq!(got, kept);
    }

    #[test]
    fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = RaRepr::parse(&bytes);
        let _ = RsRepr::parse(&bytes);
        let mut b = bytes.clone();
        if b.len() >= 2 { b[0] = 134; b[1] = 0; }
        if let Ok(ra) = RaRepr::parse(&b) {
            // Anything that parses re-emits to something that parses to the same value.
            let again = ra.emit().unwrap();
            prop_assert_eq!(RaRepr::parse(&again).unwrap(), ra);
        }
    }
}

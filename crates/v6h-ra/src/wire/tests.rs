//! Golden-byte tests: every option against hand-assembled bytes from its RFC layout, and the
//! home-router RA of radvd.md §8.

use super::*;
use std::net::Ipv6Addr;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn emit1(o: &NdOptionRepr) -> Vec<u8> {
    let mut v = Vec::new();
    o.emit_into(&mut v).unwrap();
    assert_eq!(v.len(), o.buffer_len());
    // and back
    let view = OptionIter::new(&v).next().unwrap().unwrap();
    assert_eq!(&NdOptionRepr::parse(&view).unwrap(), o);
    v
}

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];

/// radvd.md §8: the expected RA for home-router-target.conf (RDNSS lifetime 90 as in 2.20+).
#[test]
fn golden_home_router_ra() {
    let ra = RaRepr {
        header: RaHeader {
            cur_hop_limit: 64,
            other: true,
            router_lifetime: 90,
            ..Default::default()
        },
        options: vec![
            NdOptionRepr::Prefix(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                router_addr: false,
                pd_preferred: false,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: a("2001:db8:1234::"),
            }),
            NdOptionRepr::Rdnss(Rdnss {
                lifetime: 90,
                servers: vec![a("2001:14b8:0:3401::6"), a("2001:1418:10:2::2")],
            }),
            NdOptionRepr::SourceLinkAddr(MAC.to_vec()),
        ],
    };
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
    let bytes = ra.emit().unwrap();
    assert_eq!(bytes.len(), 96);
    assert_eq!(bytes, expected);
    assert_eq!(RaRepr::parse(&bytes).unwrap(), ra);
    let view = RaPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.cur_hop_limit(), 64);
    assert!(view.other() && !view.managed());
    assert_eq!(view.router_lifetime(), 90);
    assert_eq!(view.preference(), Preference::Medium);
    assert_eq!(view.options().count(), 3);
}

#[test]
fn golden_sllao() {
    assert_eq!(
        emit1(&NdOptionRepr::SourceLinkAddr(MAC.to_vec())),
        [0x01, 0x01, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]
    );
}

#[test]
fn golden_pio_flags_and_infinity() {
    let o = NdOptionRepr::Prefix(PrefixInfo {
        prefix_len: 48,
        on_link: false,
        autonomous: false,
        router_addr: true,
        pd_preferred: true,
        valid_lifetime: u32::MAX,
        preferred_lifetime: 0,
        prefix: a("2001:db8:ab::"),
    });
    #[rustfmt::skip]
    let exp = [
        0x03, 0x04, 0x30, 0x30, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0xab, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(emit1(&o), exp);
}

#[test]
fn golden_mtu() {
    assert_eq!(
        emit1(&NdOptionRepr::Mtu(1480)),
        [0x05, 0x01, 0, 0, 0x00, 0x00, 0x05, 0xc8]
    );
}

#[test]
fn golden_adv_interval_and_ha_info() {
    assert_eq!(
        emit1(&NdOptionRepr::AdvInterval(600_000)),
        [0x07, 0x01, 0, 0, 0x00, 0x09, 0x27, 0xc0]
    );
    let ha = NdOptionRepr::HomeAgentInfo(HomeAgentInfo {
        mobile_router: true,
        preference: 5,
        lifetime: 1800,
    });
    assert_eq!(emit1(&ha), [0x08, 0x01, 0x80, 0x00, 0x00, 0x05, 0x07, 0x08]);
}

#[test]
fn golden_rio_lengths() {
    // /48 high, 1800 s: length 2, Prf 01 << 3.
    let r48 = NdOptionRepr::Route(RouteInfo {
        prefix_len: 48,
        preference: Preference::High,
        lifetime: 1800,
        prefix: a("2001:db8:ffff::"),
    });
    assert_eq!(
        emit1(&r48),
        [
            0x18, 0x02, 0x30, 0x08, 0x00, 0x00, 0x07, 0x08, 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0,
            0
        ]
    );
    // ::/0 medium: length 1, no prefix bytes.
    let r0 = NdOptionRepr::Route(RouteInfo {
        prefix_len: 0,
        preference: Preference::Medium,
        lifetime: 0,
        prefix: Ipv6Addr::UNSPECIFIED,
    });
    assert_eq!(emit1(&r0), [0x18, 0x01, 0x00, 0x00, 0, 0, 0, 0]);
    // /128 low: length 3, Prf 11 << 3.
    let r128 = NdOptionRepr::Route(RouteInfo {
        prefix_len: 128,
        preference: Preference::Low,
        lifetime: u32::MAX,
        prefix: a("2001:db8::1"),
    });
    let v = emit1(&r128);
    assert_eq!(&v[..8], &[0x18, 0x03, 0x80, 0x18, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(&v[8..], &a("2001:db8::1").octets());
}

#[test]
fn rio_bits_past_the_prefix_length_are_ignored() {
    // ::/0 sent with length 2 and junk in the prefix field (found by fuzzing): the junk is not
    // part of the route, so it must not survive parse -> emit -> parse.
    let mut wire = vec![0x18, 0x02, 0x00, 0x00, 0, 0, 0x07, 0x08];
    wire.extend_from_slice(&[1, 1, 1, 1, 1, 1, 1, 1]);
    let view = OptionIter::new(&wire).next().unwrap().unwrap();
    let NdOptionRepr::Route(r) = NdOptionRepr::parse(&view).unwrap() else {
        panic!("not a route option");
    };
    assert_eq!((r.prefix_len, r.prefix), (0, Ipv6Addr::UNSPECIFIED));
    // /33 with bits set past bit 33: masked.
    let mut wire = vec![0x18, 0x02, 33, 0x00, 0, 0, 0x07, 0x08];
    wire.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff]);
    let view = OptionIter::new(&wire).next().unwrap().unwrap();
    let NdOptionRepr::Route(r) = NdOptionRepr::parse(&view).unwrap() else {
        panic!("not a route option");
    };
    assert_eq!(r.prefix, a("2001:db8:8000::"));
}

#[test]
fn golden_rdnss() {
    let o = NdOptionRepr::Rdnss(Rdnss {
        lifetime: 90,
        servers: vec![a("2001:db8:ffff::53")],
    });
    let v = emit1(&o);
    assert_eq!(&v[..8], &[0x19, 0x03, 0, 0, 0, 0, 0, 0x5a]);
    assert_eq!(&v[8..], &a("2001:db8:ffff::53").octets());
}

#[test]
fn golden_dnssl() {
    // radvd.md §3: home.example.org = 04 home 07 example 03 org 00 (18 bytes) + 8 → 32, Len 4.
    let o = NdOptionRepr::Dnssl(Dnssl {
        lifetime: 90,
        domains: vec![DnsName::new("home.example.org.").unwrap()],
    });
    let mut exp = vec![0x1f, 0x04, 0, 0, 0, 0, 0, 0x5a, 4];
    exp.extend_from_slice(b"home");
    exp.push(7);
    exp.extend_from_slice(b"example");
    exp.push(3);
    exp.extend_from_slice(b"org");
    exp.push(0);
    exp.resize(32, 0);
    assert_eq!(emit1(&o), exp);
}

#[test]
fn dnssl_name_validation() {
    assert!(DnsName::new("a..b").is_err());
    assert!(DnsName::new("").is_err());
    assert!(DnsName::new(".").is_err());
    assert!(DnsName::new(&"x".repeat(64)).is_err());
    assert!(DnsName::new(&"x".repeat(63)).is_ok());
    assert!(DnsName::new(&["abcdefghi"; 26].join(".")).is_err()); // 259 bytes
    assert!(DnsName::new("b ad.org").is_err());
    // Compression pointers and labels past the end are rejected on parse.
    let bad = [0x1f, 0x02, 0, 0, 0, 0, 0, 1, 0xc0, 0x0c, 0, 0, 0, 0, 0, 0];
    assert!(RaRepr::parse(&[&ra_hdr()[..], &bad[..]].concat()).is_err());
    let overrun = [0x1f, 0x02, 0, 0, 0, 0, 0, 1, 9, b'a', b'b', 0, 0, 0, 0, 0];
    assert!(RaRepr::parse(&[&ra_hdr()[..], &overrun[..]].concat()).is_err());
}

#[test]
fn golden_sixco_and_abro() {
    let c = NdOptionRepr::SixCo(SixCo {
        context_len: 50,
        compression: true,
        cid: 4,
        lifetime: 1000,
        prefix: Ipv6Addr::UNSPECIFIED,
    });
    let mut exp = vec![0x22, 0x03, 0x32, 0x14, 0, 0, 0x03, 0xe8];
    exp.resize(24, 0);
    assert_eq!(emit1(&c), exp);
    let b = NdOptionRepr::Abro(Abro {
        version_low: 10,
        version_high: 2,
        lifetime: 2,
        address: a("fe80::a200:0:0:1"),
    });
    #[rustfmt::skip]
    let exp = [
        0x23, 0x03, 0x00, 0x0a, 0x00, 0x02, 0x00, 0x02,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xa2, 0x00, 0, 0, 0, 0, 0, 0x01,
    ];
    assert_eq!(emit1(&b), exp);
}

#[test]
fn golden_captive_portal() {
    // 20-byte URI: 2 + 20 = 22 → 24 bytes, Len 3, two NUL bytes of padding.
    let o = NdOptionRepr::CaptivePortal(CaptivePortal {
        uri: "https://example.org/".into(),
    });
    let mut exp = vec![0x25, 0x03];
    exp.extend_from_slice(b"https://example.org/");
    exp.extend_from_slice(&[0, 0]);
    assert_eq!(emit1(&o), exp);
}

#[test]
fn golden_pref64() {
    // 64:ff9b::/96, 1800 s → scaled 225, PLC 0: 225 << 3 = 0x0708.
    let o = NdOptionRepr::Pref64(Pref64::from_lifetime_secs(1800, 96, a("64:ff9b::")));
    #[rustfmt::skip]
    let exp = [0x26, 0x02, 0x07, 0x08, 0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(emit1(&o), exp);
    // /48, 601 s rounds up to 608 (76 units), PLC 3: 76 << 3 | 3 = 0x0263.
    let o = NdOptionRepr::Pref64(Pref64::from_lifetime_secs(601, 48, a("2001:db8:64::")));
    let v = emit1(&o);
    assert_eq!(&v[..8], &[0x26, 0x02, 0x02, 0x63, 0x20, 0x01, 0x0d, 0xb8]);
    if let NdOptionRepr::Pref64(p) = o {
        assert_eq!(p.lifetime_secs(), 608);
    }
    // Lifetimes above 65528 s are capped.
    assert_eq!(
        Pref64::from_lifetime_secs(100_000, 96, Ipv6Addr::UNSPECIFIED).lifetime_secs(),
        65528
    );
    // PLC 6 is invalid.
    let bad = [0x26, 0x02, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        RaRepr::parse(&[&ra_hdr()[..], &bad[..]].concat()),
        Err(WireError::BadPlc(6))
    );
}

#[test]
fn unknown_option_preserved() {
    let raw = [0x90, 0x01, 1, 2, 3, 4, 5, 6];
    let bytes = [&ra_hdr()[..], &raw[..]].concat();
    let ra = RaRepr::parse(&bytes).unwrap();
    assert_eq!(
        ra.options,
        vec![NdOptionRepr::Unknown {
            kind: 0x90,
            data: vec![1, 2, 3, 4, 5, 6]
        }]
    );
    assert_eq!(ra.emit().unwrap(), bytes);
}

fn ra_hdr() -> [u8; 16] {
    let mut h = [0u8; 16];
    RaHeader::default().emit(&mut h);
    h
}

#[test]
fn malformed_packets_rejected() {
    let h = ra_hdr();
    assert!(matches!(
        RaRepr::parse(&h[..15]),
        Err(WireError::Truncated { .. })
    ));
    let mut wrong = h;
    wrong[0] = 135;
    assert!(matches!(
        RaRepr::parse(&wrong),
        Err(WireError::WrongType { .. })
    ));
    let mut code = h;
    code[1] = 1;
    assert_eq!(RaRepr::parse(&code), Err(WireError::BadCode(1)));
    let zero = [&h[..], &[1, 0, 0, 0, 0, 0, 0, 0][..]].concat();
    assert_eq!(RaRepr::parse(&zero), Err(WireError::ZeroLengthOption(1)));
    let over = [&h[..], &[3, 4, 0, 0][..]].concat();
    assert!(matches!(
        RaRepr::parse(&over),
        Err(WireError::OptionOverrun { .. })
    ));
    let odd = [&h[..], &[3][..]].concat();
    assert!(matches!(
        RaRepr::parse(&odd),
        Err(WireError::Truncated { .. })
    ));
    // PIO with length 3.
    let pio = [&h[..], &[3u8, 3][..], &[0u8; 22][..]].concat();
    assert!(matches!(
        RaRepr::parse(&pio),
        Err(WireError::BadOptionLength { kind: 3, len: 3 })
    ));
    // RIO /65 with length 2.
    let rio = [&h[..], &[24u8, 2, 65, 0][..], &[0u8; 12][..]].concat();
    assert!(RaRepr::parse(&rio).is_err());
    // RDNSS with even length.
    let rd = [&h[..], &[25u8, 2][..], &[0u8; 14][..]].concat();
    assert!(RaRepr::parse(&rd).is_err());
}

#[test]
fn rs_with_sllao() {
    let rs = RsRepr {
        options: vec![NdOptionRepr::SourceLinkAddr(MAC.to_vec())],
    };
    let v = rs.emit().unwrap();
    assert_eq!(
        v,
        [
            0x85, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01
        ]
    );
    assert_eq!(RsRepr::parse(&v).unwrap(), rs);
    let p = RsPacket::new_checked(&v[..]).unwrap();
    assert_eq!(p.source_link_addr(), Some(&MAC[..]));
    assert!(RsRepr::parse(&v[..7]).is_err());
}

#[test]
fn split_at_budget() {
    let hdr = RaHeader {
        router_lifetime: 1800,
        ..Default::default()
    };
    let opts: Vec<_> = (0..40u16)
        .map(|i| {
            NdOptionRepr::Prefix(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                router_addr: false,
                pd_preferred: false,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0),
            })
        })
        .collect();
    assert_eq!(ra_budget(1500), 1430);
    assert_eq!(ra_budget(1000), RA_BUDGET_MIN);
    let r = split_ras(&hdr, &opts, RA_BUDGET_MIN);
    assert!(r.skipped.is_empty());
    assert_eq!(r.packets.len(), 2);
    assert_eq!(r.packets[0].len(), 16 + 37 * 32);
    assert_eq!(r.packets[1].len(), 16 + 3 * 32);
    // Same header on both, options in order.
    let p0 = RaRepr::parse(&r.packets[0]).unwrap();
    let p1 = RaRepr::parse(&r.packets[1]).unwrap();
    assert_eq!(p0.header, hdr);
    assert_eq!(p1.header, hdr);
    assert_eq!(p0.options[..], opts[..37]);
    assert_eq!(p1.options[..], opts[37..]);
    // Bigger MTU: one RA.
    assert_eq!(split_ras(&hdr, &opts, ra_budget(9000)).packets.len(), 1);
}

#[test]
fn split_skips_oversize_option() {
    // radvd test_dnssl4: 31 labels of 62 characters, far above the 1210-byte budget.
    let label = "a".repeat(62);
    let domains = (0..31)
        .map(|i| DnsName::new(&format!("{label}{}", i % 10)).unwrap_or_else(|_| unreachable!()))
        .collect::<Vec<_>>();
    // Each name here is one 63-byte label; 31 of them give 31 × 65 = 2015 bytes.
    let big = NdOptionRepr::Dnssl(Dnssl {
        lifetime: 600,
        domains,
    });
    assert!(big.buffer_len() > RA_BUDGET_MIN);
    let small = NdOptionRepr::Mtu(1280);
    let r = split_ras(&RaHeader::default(), &[big, small.clone()], RA_BUDGET_MIN);
    assert_eq!(r.skipped, vec![option_type::DNSSL]);
    assert_eq!(r.packets.len(), 1);
    assert_eq!(RaRepr::parse(&r.packets[0]).unwrap().options, vec![small]);
}

#[test]
fn checksum_verifies() {
    let src = a("fe80::1");
    let dst = a("ff02::1");
    let mut v = RaRepr {
        header: RaHeader {
            cur_hop_limit: 64,
            router_lifetime: 90,
            ..Default::default()
        },
        options: vec![NdOptionRepr::Mtu(1500)],
    }
    .emit()
    .unwrap();
    let c = icmpv6_checksum(&src, &dst, &v);
    v[2..4].copy_from_slice(&c.to_be_bytes());
    // The one's-complement sum over pseudo-header and message, checksum included, is 0xffff.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(v.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&v);
    let mut sum: u32 = pseudo
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    assert_eq!(sum, 0xffff);
}

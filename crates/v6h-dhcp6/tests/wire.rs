//! Codec tests: golden bytes (spec Appendix A), every malformed case of the spec (§5.2, §8.3),
//! relay nesting, and proptest round-trips.

use std::net::Ipv6Addr;

use proptest::prelude::*;
use v6h_dhcp6::wire::{
    Auth, ClientMessage, DecodeError, DhcpOption, Ia, IaAddr, IaPrefix, MAX_RELAY_DEPTH, Message,
    NtpSuboption, RelayMessage, code, msg,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const GOLDEN_IR: &str = "0b7b23c60001000a00030001fa028073d10200060008001700180027001f000800020000";
const GOLDEN_REPLY: &str = "077b23c60001000a00030001fa028073d1020002000e00010001329b5d62a24335f46c3a00170020200114b800003401000000000000000620011418001000020000000000000002";

#[test]
fn golden_information_request_decodes() {
    let m = Message::parse(&hex(GOLDEN_IR)).unwrap();
    let Message::Client(c) = &m else {
        panic!("not a client message")
    };
    assert_eq!(c.msg_type, msg::INFORMATION_REQUEST);
    assert_eq!(c.xid, [0x7b, 0x23, 0xc6]);
    assert_eq!(
        c.options,
        vec![
            DhcpOption::ClientId(hex("00030001fa028073d102")),
            DhcpOption::Oro(vec![23, 24, 39, 31]),
            DhcpOption::ElapsedTime(0),
        ]
    );
    assert_eq!(m.emit().unwrap(), hex(GOLDEN_IR));
}

#[test]
fn golden_reply_decodes_and_reencodes() {
    let m = Message::parse(&hex(GOLDEN_REPLY)).unwrap();
    let Message::Client(c) = &m else {
        panic!("not a client message")
    };
    assert_eq!(c.msg_type, msg::REPLY);
    assert_eq!(
        c.option(code::DNS_SERVERS),
        Some(&DhcpOption::Addresses {
            code: 23,
            addrs: vec![
                "2001:14b8:0:3401::6".parse().unwrap(),
                "2001:1418:10:2::2".parse().unwrap()
            ]
        })
    );
    assert_eq!(m.emit().unwrap(), hex(GOLDEN_REPLY));
}

fn err(h: &str) -> DecodeError {
    Message::parse(&hex(h)).unwrap_err()
}

// Spec §5.2 / §8.3 malformed cases: each is a typed error, never a panic or partial parse.
#[test]
fn status_code_len_0_and_1_rejected() {
    assert_eq!(
        err("0b000001 000d0000 0001000a00030001000c01020304"),
        DecodeError::TooShort {
            code: 13,
            len: 0,
            min: 2
        }
    );
    assert_eq!(
        err("0b000001 000d000100 0001000a00030001000c01020304"),
        DecodeError::TooShort {
            code: 13,
            len: 1,
            min: 2
        }
    );
}

#[test]
fn rapid_commit_len_2_rejected() {
    assert_eq!(
        err("01000001 000e0002abcd 0001000a00030001000c01020304 000800020000"),
        DecodeError::BadLength {
            code: 14,
            len: 2,
            expected: 0
        }
    );
}

#[test]
fn truncated_client_id_rejected() {
    assert_eq!(
        err("0b000001 000800020000 0001000a000300010000"),
        DecodeError::Overrun {
            code: 1,
            len: 10,
            remaining: 6
        }
    );
}

#[test]
fn elapsed_time_len_4_rejected() {
    assert_eq!(
        err("0b000001 0001000a00030001000c01020304 0008000400000000 000600020017"),
        DecodeError::BadLength {
            code: 8,
            len: 4,
            expected: 2
        }
    );
}

#[test]
fn dns_len_17_rejected() {
    assert_eq!(
        err("07000001 0001000a00030001000c01020304 00170011 20010db8000000000000000000000053 00"),
        DecodeError::NotMultiple {
            code: 23,
            len: 17,
            unit: 16
        }
    );
}

#[test]
fn ia_na_of_8_bytes_rejected() {
    assert_eq!(
        err("01000001 0001000a00030001000c01020304 00030008 0000000100000000 000800020000"),
        DecodeError::TooShort {
            code: 3,
            len: 8,
            min: 12
        }
    );
}

#[test]
fn other_fixed_sizes_and_minimums() {
    // Preference len 2, Unicast len 15, Reconf-Msg len 0, Reconf-Accept len 1, option 32 len 3.
    assert!(matches!(
        err("02000001 00070002 0000"),
        DecodeError::BadLength { code: 7, .. }
    ));
    assert!(matches!(
        err("07000001 000c000f 000000000000000000000000000000"),
        DecodeError::BadLength { code: 12, .. }
    ));
    assert!(matches!(
        err("0a000001 00130000"),
        DecodeError::BadLength { code: 19, .. }
    ));
    assert!(matches!(
        err("01000001 00140001 00"),
        DecodeError::BadLength { code: 20, .. }
    ));
    assert!(matches!(
        err("07000001 00200003 000000"),
        DecodeError::BadLength { code: 32, .. }
    ));
    assert!(matches!(
        err("07000001 00520002 0000"),
        DecodeError::BadLength { code: 82, .. }
    ));
    // DUID of 2 bytes, of 131 bytes.
    assert!(matches!(
        err("0b000001 00010002 0001"),
        DecodeError::TooShort { code: 1, .. }
    ));
    let long = format!("0b000001 00020083 {}", "00".repeat(131));
    assert!(matches!(err(&long), DecodeError::TooLong { code: 2, .. }));
    // IAADDR of 23 bytes inside an IA_NA; IAPREFIX with plen 129.
    let ia = format!(
        "01000001 00030027 000000010000000000000000 00050017 {}",
        "00".repeat(23)
    );
    assert!(matches!(err(&ia), DecodeError::TooShort { code: 5, .. }));
    let pd = format!(
        "01000001 00190029 000000010000000000000000 001a0019 0000000000000000 81 {}",
        "00".repeat(16)
    );
    assert_eq!(err(&pd), DecodeError::BadPrefixLen(129));
    // ORO odd, AUTH short, Vendor class short, empty DNS list.
    assert!(matches!(
        err("0b000001 00060003 001700"),
        DecodeError::NotMultiple { code: 6, .. }
    ));
    assert!(matches!(
        err("0b000001 000b0002 0000"),
        DecodeError::TooShort { code: 11, .. }
    ));
    assert!(matches!(
        err("0b000001 00100003 000000"),
        DecodeError::TooShort { code: 16, .. }
    ));
    assert!(matches!(
        err("07000001 00170000"),
        DecodeError::NotMultiple { code: 23, .. }
    ));
}

#[test]
fn truncated_last_option_and_header_rejected() {
    // The last option claims 4 bytes but has 2: an error, not a silent drop.
    assert!(matches!(
        err("0b000001 0001000a00030001000c01020304 000600040017"),
        DecodeError::Overrun { code: 6, .. }
    ));
    // 3 stray bytes after the last option.
    assert!(matches!(
        err("0b000001 0001000a00030001000c01020304 000600"),
        DecodeError::TruncatedHeader { remaining: 3 }
    ));
    assert!(matches!(err("0b00"), DecodeError::ShortHeader { .. }));
    assert!(matches!(err(""), DecodeError::ShortHeader { .. }));
}

#[test]
fn bad_utf8_and_bad_names_rejected() {
    assert_eq!(err("07000001 000d0003 0000ff"), DecodeError::BadUtf8);
    // Domain list: compression pointer, label overrun, unterminated, non-printable.
    assert!(matches!(
        err("07000001 00180002 c00c"),
        DecodeError::BadName { code: 24, .. }
    ));
    assert!(matches!(
        err("07000001 00180003 056162"),
        DecodeError::BadName { .. }
    ));
    assert!(matches!(
        err("07000001 00180003 026162"),
        DecodeError::BadName { .. }
    ));
    assert!(matches!(
        err("07000001 00180004 02610a00"),
        DecodeError::BadName { .. }
    ));
}

#[test]
fn user_and_vendor_class_items_checked() {
    // User class with one item of 3 bytes: fine; item length overrun: error.
    let ok = Message::parse(&hex("01000001 000f0005 0003616263")).unwrap();
    let Message::Client(c) = ok else { panic!() };
    assert_eq!(
        c.options,
        vec![DhcpOption::UserClass(vec![b"abc".to_vec()])]
    );
    assert!(matches!(
        err("01000001 000f0005 0004616263"),
        DecodeError::BadItem { code: 15, .. }
    ));
    assert!(matches!(
        err("01000001 00110009 00000009 0001000500"),
        DecodeError::BadItem { code: 17, .. }
    ));
}

#[test]
fn duplicates_rejected() {
    assert_eq!(
        err("0b000001 0001000a00030001000c01020304 0001000a00030001000c01020304"),
        DecodeError::Duplicate { code: 1 }
    );
    assert_eq!(
        err("0b000001 000800020000 000800020000"),
        DecodeError::Duplicate { code: 8 }
    );
    assert_eq!(
        err("01000001 0003000c 000000010000000000000000 0003000c 000000010000000000000000"),
        DecodeError::DuplicateIaid { code: 3, iaid: 1 }
    );
    // The same IAID in IA_NA and IA_PD is fine.
    assert!(
        Message::parse(&hex(
            "01000001 0003000c 000000010000000000000000 0019000c 000000010000000000000000"
        ))
        .is_ok()
    );
}

fn ir() -> Vec<u8> {
    hex("0b000001 0001000a00030001000c01020304 000600020017")
}

fn relay_forw(inner: &[u8], hop: u8) -> Vec<u8> {
    let mut v = vec![12, hop];
    v.extend_from_slice(&[0u8; 32]);
    v.extend_from_slice(&9u16.to_be_bytes());
    v.extend_from_slice(&u16::try_from(inner.len()).unwrap().to_be_bytes());
    v.extend_from_slice(inner);
    v
}

#[test]
fn relays_nest_up_to_the_limit() {
    let mut b = ir();
    for i in 0..MAX_RELAY_DEPTH {
        b = relay_forw(&b, u8::try_from(i).unwrap());
    }
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.emit().unwrap(), b);
    let bomb = relay_forw(&b, 99);
    assert_eq!(
        Message::parse(&bomb).unwrap_err(),
        DecodeError::RelayTooDeep
    );
}

#[test]
fn relay_needs_relay_msg_and_full_header() {
    let mut v = vec![12, 0];
    v.extend_from_slice(&[0u8; 32]);
    assert_eq!(
        Message::parse(&v).unwrap_err(),
        DecodeError::MissingRelayMsg
    );
    assert!(matches!(
        Message::parse(&v[..33]).unwrap_err(),
        DecodeError::ShortHeader { need: 34, .. }
    ));
    // Relay message holding a truncated inner message.
    let bad = relay_forw(&hex("0b0000"), 0);
    assert!(matches!(
        Message::parse(&bad).unwrap_err(),
        DecodeError::ShortHeader { .. }
    ));
}

#[test]
fn max_size_junk_never_panics() {
    let mut b = vec![0xffu8; 65535];
    b[0] = 1;
    assert!(Message::parse(&b).is_err());
    // An option flood: 16383 empty unknown options is valid and decodes fully.
    let mut f = vec![1u8, 0, 0, 1];
    for _ in 0..16383 {
        f.extend_from_slice(&[0xff, 0xf0, 0, 0]);
    }
    let Message::Client(c) = Message::parse(&f).unwrap() else {
        panic!()
    };
    assert_eq!(c.options.len(), 16383);
}

// ---- proptest round-trips ----

fn addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn duid() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 3..=130)
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,20}"
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|v| v.join("."))
}

fn leaf_option() -> impl Strategy<Value = DhcpOption> {
    prop_oneof![
        any::<u8>().prop_map(DhcpOption::Preference),
        (any::<u16>(), "[ -~]{0,30}")
            .prop_map(|(status, message)| DhcpOption::StatusCode { status, message }),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4)
            .prop_map(DhcpOption::UserClass),
        (
            any::<u32>(),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4)
        )
            .prop_map(|(enterprise, data)| DhcpOption::VendorClass { enterprise, data }),
        (
            any::<u32>(),
            prop::collection::vec(
                (any::<u16>(), prop::collection::vec(any::<u8>(), 0..8)),
                0..4
            )
        )
            .prop_map(|(enterprise, options)| DhcpOption::VendorOpts {
                enterprise,
                options
            }),
        prop::collection::vec(any::<u8>(), 1..20).prop_map(DhcpOption::InterfaceId),
        any::<u8>().prop_map(DhcpOption::ReconfMsg),
        Just(DhcpOption::ReconfAccept),
        addr().prop_map(DhcpOption::Unicast),
        (
            prop::sample::select(vec![21u16, 24, 29, 30, 33]),
            prop::collection::vec(name(), 1..4)
        )
            .prop_map(|(code, names)| DhcpOption::Names { code, names }),
        (
            prop::sample::select(vec![22u16, 23, 27, 28, 31, 34]),
            prop::collection::vec(addr(), 1..4)
        )
            .prop_map(|(code, addrs)| DhcpOption::Addresses { code, addrs }),
        any::<u32>().prop_map(DhcpOption::InformationRefreshTime),
        any::<u32>().prop_map(DhcpOption::SolMaxRt),
        any::<u32>().prop_map(DhcpOption::InfMaxRt),
        prop::collection::vec(
            prop_oneof![
                addr().prop_map(NtpSuboption::Address),
                addr().prop_map(NtpSuboption::Multicast),
                name().prop_map(NtpSuboption::Fqdn),
            ],
            1..4
        )
        .prop_map(DhcpOption::NtpServer),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(
                |(protocol, algorithm, rdm, replay, info)| DhcpOption::Auth(Auth {
                    protocol,
                    algorithm,
                    rdm,
                    replay,
                    info
                })
            ),
        (1000u16..2000, prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(code, data)| DhcpOption::Unknown { code, data }),
    ]
}

fn ia_sub() -> impl Strategy<Value = DhcpOption> {
    prop_oneof![
        (addr(), any::<u32>(), any::<u32>()).prop_map(|(addr, preferred, valid)| {
            DhcpOption::IaAddr(IaAddr {
                addr,
                preferred,
                valid,
                options: vec![],
            })
        }),
        (any::<u32>(), any::<u32>(), 0u8..=128, addr()).prop_map(
            |(preferred, valid, prefix_len, prefix)| DhcpOption::IaPrefix(IaPrefix {
                preferred,
                valid,
                prefix_len,
                prefix,
                options: vec![DhcpOption::StatusCode {
                    status: 0,
                    message: "ok".into()
                }],
            })
        ),
        (any::<u16>(), "[a-z ]{0,10}")
            .prop_map(|(status, message)| DhcpOption::StatusCode { status, message }),
    ]
}

/// An option list obeying the uniqueness rules: singletons first, then IAs with distinct IAIDs.
fn options() -> impl Strategy<Value = Vec<DhcpOption>> {
    (
        prop::option::of(duid()),
        prop::option::of(duid()),
        prop::option::of(prop::collection::vec(any::<u16>(), 0..6)),
        prop::option::of(any::<u16>()),
        any::<bool>(),
        prop::collection::btree_set(any::<u32>(), 0..3),
        prop::collection::vec(ia_sub(), 0..3),
        prop::collection::vec(leaf_option(), 0..6),
    )
        .prop_map(|(cid, sid, oro, et, rc, iaids, subs, leaves)| {
            let mut v = Vec::new();
            if let Some(d) = cid {
                v.push(DhcpOption::ClientId(d));
            }
            if let Some(d) = sid {
                v.push(DhcpOption::ServerId(d));
            }
            if let Some(o) = oro {
                v.push(DhcpOption::Oro(o));
            }
            if let Some(e) = et {
                v.push(DhcpOption::ElapsedTime(e));
            }
            if rc {
                v.push(DhcpOption::RapidCommit);
            }
            for (i, iaid) in iaids.into_iter().enumerate() {
                let ia = Ia {
                    iaid,
                    t1: 1,
                    t2: 2,
                    options: subs.clone(),
                };
                v.push(match i % 3 {
                    0 => DhcpOption::IaNa(ia),
                    1 => DhcpOption::IaPd(ia),
                    _ => DhcpOption::IaTa {
                        iaid,
                        options: subs.clone(),
                    },
                });
            }
            v.extend(leaves);
            v
        })
}

fn client_message() -> impl Strategy<Value = Message> {
    ((1u8..=11), any::<[u8; 3]>(), options()).prop_map(|(msg_type, xid, options)| {
        Message::Client(ClientMessage {
            msg_type,
            xid,
            options,
        })
    })
}

fn message() -> impl Strategy<Value = Message> {
    client_message().prop_recursive(3, 8, 1, |inner| {
        (
            12u8..=13,
            any::<u8>(),
            addr(),
            addr(),
            inner,
            prop::option::of(prop::collection::vec(any::<u8>(), 1..8)),
        )
            .prop_map(
                |(msg_type, hop_count, link_address, peer_address, m, iid)| {
                    let mut options = Vec::new();
                    if let Some(i) = iid {
                        options.push(DhcpOption::InterfaceId(i));
                    }
                    options.push(DhcpOption::RelayMsg(Box::new(m)));
                    Message::Relay(RelayMessage {
                        msg_type,
                        hop_count,
                        link_address,
                        peer_address,
                        options,
                    })
                },
            )
    })
}

proptest! {
    #[test]
    fn parse_emit_round_trip(m in message()) {
        let bytes = m.emit().unwrap();
        let back = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.emit().unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_exactly(b in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::parse(&b) {
            // Whatever is accepted re-encodes to the same bytes: nothing was dropped.
            prop_assert_eq!(m.emit().unwrap(), b);
        }
    }

    #[test]
    fn mutated_golden_never_panics(pos in 0usize..36, val in any::<u8>()) {
        let mut b = hex(GOLDEN_IR);
        b[pos] = val;
        if let Ok(m) = Message::parse(&b) {
            prop_assert_eq!(m.emit().map_err(|e| format!("{e} {m:?}")).unwrap(), b);
        }
    }
}

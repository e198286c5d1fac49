//! Deterministic tests of the sans-IO server core: golden Reply, ORO, RFC 8415 §16
//! validation, stateless statuses, relaying and counters.

use std::net::{Ipv6Addr, SocketAddrV6};

use v6h_dhcp6::config::dhcp6s::parse_str;
use v6h_dhcp6::server::{ALL_SERVERS_AND_RELAYS, DropReason, LinkInfo, Reply, Server};
use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Message, RelayMessage, code, msg, status};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const IFINDEX: u32 = 7;
const SERVER_DUID: &str = "00010001329b5d62a24335f46c3a";
const CLIENT: &str = "fe80::f802:80ff:fe73:d102";

fn server(conf: &str) -> Server {
    let (cfg, _) = parse_str("t.conf", conf).unwrap();
    let mut s = Server::stateless(hex(SERVER_DUID), cfg);
    s.add_link(IFINDEX, "eth0");
    s
}

fn dns_server() -> Server {
    server("option domain-name-servers 2001:14b8:0:3401::6 2001:1418:10:2::2;")
}

fn from_client() -> LinkInfo {
    LinkInfo {
        ifindex: IFINDEX,
        src: SocketAddrV6::new(CLIENT.parse().unwrap(), 546, 0, IFINDEX),
        dst: ALL_SERVERS_AND_RELAYS,
    }
}

fn one(s: &mut Server, b: &[u8], l: &LinkInfo) -> Reply {
    let mut r = s.handle(0, b, l);
    assert_eq!(r.len(), 1, "expected one reply");
    r.remove(0)
}

fn decode(r: &Reply) -> ClientMessage {
    match Message::parse(&r.bytes).unwrap() {
        Message::Client(c) => c,
        Message::Relay(_) => panic!("relay"),
    }
}

fn codes(m: &ClientMessage) -> Vec<u16> {
    m.options.iter().map(DhcpOption::code).collect()
}

fn drop_count(s: &Server, r: DropReason) -> u64 {
    s.counters(IFINDEX).unwrap().dropped_for(r)
}

/// Builds a client message from options.
fn client_msg(t: u8, options: Vec<DhcpOption>) -> Vec<u8> {
    Message::Client(ClientMessage {
        msg_type: t,
        xid: [1, 2, 3],
        options,
    })
    .emit()
    .unwrap()
}

fn cid() -> DhcpOption {
    DhcpOption::ClientId(hex("0003000100 0c01020304"))
}

fn sid() -> DhcpOption {
    DhcpOption::ServerId(hex(SERVER_DUID))
}

fn ia_na(iaid: u32) -> DhcpOption {
    DhcpOption::IaNa(v6h_dhcp6::wire::Ia {
        iaid,
        t1: 0,
        t2: 0,
        options: vec![],
    })
}

fn ia_pd(iaid: u32) -> DhcpOption {
    DhcpOption::IaPd(v6h_dhcp6::wire::Ia {
        iaid,
        t1: 0,
        t2: 0,
        options: vec![],
    })
}

fn ia_status(o: &DhcpOption) -> Option<u16> {
    let subs = match o {
        DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => &i.options,
        _ => return None,
    };
    subs.iter().find_map(|s| match s {
        DhcpOption::StatusCode { status, .. } => Some(*status),
        _ => None,
    })
}

fn top_status(m: &ClientMessage) -> Option<u16> {
    m.options.iter().find_map(|s| match s {
        DhcpOption::StatusCode { status, .. } => Some(*status),
        _ => None,
    })
}

#[test]
fn golden_reply_matches_appendix_a_from_port_547_to_client_port() {
    let mut s = dns_server();
    let ir = hex("0b7b23c60001000a00030001fa028073d10200060008001700180027001f000800020000");
    let r = one(&mut s, &ir, &from_client());
    assert_eq!(
        r.bytes,
        hex(
            "077b23c60001000a00030001fa028073d1020002000e00010001329b5d62a24335f46c3a00170020200114b800003401000000000000000620011418001000020000000000000002"
        )
    );
    assert_eq!(
        r.to,
        SocketAddrV6::new(CLIENT.parse().unwrap(), 546, 0, IFINDEX)
    );
    assert_eq!(r.ifindex, IFINDEX);
    let c = s.counters(IFINDEX).unwrap();
    assert_eq!(c.received[usize::from(msg::INFORMATION_REQUEST)], 1);
    assert_eq!(c.sent[usize::from(msg::REPLY)], 1);
}

const RICH: &str = "option domain-name-servers 2001:db8::53;\noption domain-name \"home.example\";\n\
    option refreshtime 3600;\noption ntp-servers 2001:db8::123;\noption sip-server-address 2001:db8::5;\n\
    interface eth0 { preference 7; allow rapid-commit; };";

#[test]
fn oro_selects_options_dns_always() {
    let mut s = server(RICH);
    // No ORO: only 23.
    let r = decode(&one(
        &mut s,
        &client_msg(msg::INFORMATION_REQUEST, vec![cid()]),
        &from_client(),
    ));
    assert_eq!(codes(&r), vec![1, 2, 23]);
    // ORO {23}: no 24 and no 32 (spec §8.3 scenario 3).
    let r = decode(&one(
        &mut s,
        &client_msg(
            msg::INFORMATION_REQUEST,
            vec![cid(), DhcpOption::Oro(vec![23])],
        ),
        &from_client(),
    ));
    assert_eq!(codes(&r), vec![1, 2, 23]);
    // ORO {24, 32, 56, 22}: those, in code order; 31 only if asked.
    let r = decode(&one(
        &mut s,
        &client_msg(
            msg::INFORMATION_REQUEST,
            vec![cid(), DhcpOption::Oro(vec![56, 32, 24, 22])],
        ),
        &from_client(),
    ));
    assert_eq!(codes(&r), vec![1, 2, 22, 23, 24, 32, 56]);
    assert!(
        r.options
            .contains(&DhcpOption::InformationRefreshTime(3600))
    );
    // Option 32 never goes into an Advertise.
    let r = decode(&one(
        &mut s,
        &client_msg(
            msg::SOLICIT,
            vec![cid(), DhcpOption::Oro(vec![24, 32]), ia_na(1)],
        ),
        &from_client(),
    ));
    assert_eq!(r.msg_type, msg::ADVERTISE);
    assert!(codes(&r).contains(&24) && !codes(&r).contains(&32));
}

#[test]
fn information_request_validation() {
    let mut s = dns_server();
    let l = from_client();
    // Without Client ID: answered, without Client ID.
    let r = decode(&one(
        &mut s,
        &client_msg(msg::INFORMATION_REQUEST, vec![]),
        &l,
    ));
    assert_eq!(codes(&r), vec![2, 23]);
    // With our Server ID: answered.
    assert_eq!(
        s.handle(
            0,
            &client_msg(msg::INFORMATION_REQUEST, vec![cid(), sid()]),
            &l
        )
        .len(),
        1
    );
    // Foreign Server ID, IA option, unicast destination: dropped and counted.
    let foreign = DhcpOption::ServerId(hex("000300010000000000aa"));
    assert!(
        s.handle(
            0,
            &client_msg(msg::INFORMATION_REQUEST, vec![cid(), foreign]),
            &l
        )
        .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::ForeignServerId), 1);
    assert!(
        s.handle(
            0,
            &client_msg(msg::INFORMATION_REQUEST, vec![cid(), ia_na(1)]),
            &l
        )
        .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::IaInInformationRequest), 1);
    let uni = LinkInfo {
        dst: "2001:db8::1".parse().unwrap(),
        ..l
    };
    assert!(
        s.handle(0, &client_msg(msg::INFORMATION_REQUEST, vec![cid()]), &uni)
            .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::Unicast), 1);
}

#[test]
fn solicit_without_pools_gets_ia_level_status() {
    let mut s = server(RICH);
    let l = from_client();
    let r = decode(&one(
        &mut s,
        &client_msg(msg::SOLICIT, vec![cid(), ia_na(1), ia_pd(2)]),
        &l,
    ));
    assert_eq!(r.msg_type, msg::ADVERTISE);
    assert_eq!(r.xid, [1, 2, 3]);
    let ias: Vec<_> = r.options.iter().filter(|o| o.iaid().is_some()).collect();
    assert_eq!(ias.len(), 2);
    assert_eq!(ia_status(ias[0]), Some(status::NO_ADDRS_AVAIL));
    assert_eq!(ia_status(ias[1]), Some(status::NO_PREFIX_AVAIL));
    assert!(r.options.contains(&DhcpOption::Preference(7)));
    assert!(r.options.contains(&sid()) && r.options.contains(&cid()));
    // Rapid Commit allowed on eth0: Reply with Rapid Commit, no Preference.
    let r = decode(&one(
        &mut s,
        &client_msg(msg::SOLICIT, vec![cid(), ia_na(1), DhcpOption::RapidCommit]),
        &l,
    ));
    assert_eq!(r.msg_type, msg::REPLY);
    assert!(r.options.contains(&DhcpOption::RapidCommit));
    assert!(!codes(&r).contains(&code::PREFERENCE));
    // No IA at all: top-level NoAddrsAvail.
    let r = decode(&one(&mut s, &client_msg(msg::SOLICIT, vec![cid()]), &l));
    assert_eq!(top_status(&r), Some(status::NO_ADDRS_AVAIL));
    // Discards.
    assert!(
        s.handle(0, &client_msg(msg::SOLICIT, vec![ia_na(1)]), &l)
            .is_empty()
    );
    assert!(
        s.handle(
            0,
            &client_msg(msg::SOLICIT, vec![cid(), sid(), ia_na(1)]),
            &l
        )
        .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::NoClientId), 1);
    assert_eq!(drop_count(&s, DropReason::UnexpectedServerId), 1);
}

#[test]
fn solicit_without_rapid_commit_permission_gets_advertise() {
    let mut s = dns_server();
    let r = decode(&one(
        &mut s,
        &client_msg(msg::SOLICIT, vec![cid(), ia_na(1), DhcpOption::RapidCommit]),
        &from_client(),
    ));
    assert_eq!(r.msg_type, msg::ADVERTISE);
    assert!(!codes(&r).contains(&code::RAPID_COMMIT));
    assert!(
        !codes(&r).contains(&code::PREFERENCE),
        "no preference unless configured"
    );
}

#[test]
fn request_renew_rebind_release_decline_confirm() {
    let mut s = dns_server();
    let l = from_client();
    let r = decode(&one(
        &mut s,
        &client_msg(msg::REQUEST, vec![cid(), sid(), ia_na(1)]),
        &l,
    ));
    assert_eq!(r.msg_type, msg::REPLY);
    assert_eq!(
        ia_status(r.options.iter().find(|o| o.iaid().is_some()).unwrap()),
        Some(status::NO_ADDRS_AVAIL)
    );
    // Request without / with foreign Server ID: dropped.
    assert!(
        s.handle(0, &client_msg(msg::REQUEST, vec![cid(), ia_na(1)]), &l)
            .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::NoServerId), 1);
    let foreign = DhcpOption::ServerId(hex("000300010000000000aa"));
    assert!(
        s.handle(
            0,
            &client_msg(msg::RENEW, vec![cid(), foreign, ia_na(1)]),
            &l
        )
        .is_empty()
    );
    // Renew: NoBinding.
    let r = decode(&one(
        &mut s,
        &client_msg(msg::RENEW, vec![cid(), sid(), ia_pd(4)]),
        &l,
    ));
    assert_eq!(ia_status(&r.options[2]), Some(status::NO_BINDING));
    // Rebind with an address: returned with zero lifetimes.
    let with_addr = DhcpOption::IaNa(v6h_dhcp6::wire::Ia {
        iaid: 9,
        t1: 10,
        t2: 20,
        options: vec![DhcpOption::IaAddr(v6h_dhcp6::wire::IaAddr {
            addr: "2001:db8::99".parse().unwrap(),
            preferred: 100,
            valid: 200,
            options: vec![],
        })],
    });
    let r = decode(&one(
        &mut s,
        &client_msg(msg::REBIND, vec![cid(), with_addr]),
        &l,
    ));
    let DhcpOption::IaNa(ia) = &r.options[2] else {
        panic!("{r:?}")
    };
    let DhcpOption::IaAddr(a) = &ia.options[0] else {
        panic!()
    };
    assert_eq!((a.preferred, a.valid, ia.t1, ia.t2), (0, 0, 0, 0));
    // Release: top-level Success and IA-level NoBinding.
    let r = decode(&one(
        &mut s,
        &client_msg(msg::RELEASE, vec![cid(), sid(), ia_na(1)]),
        &l,
    ));
    assert_eq!(top_status(&r), Some(status::SUCCESS));
    assert_eq!(ia_status(&r.options[2]), Some(status::NO_BINDING));
    let r = decode(&one(
        &mut s,
        &client_msg(msg::DECLINE, vec![cid(), sid(), ia_na(1)]),
        &l,
    ));
    assert_eq!(top_status(&r), Some(status::SUCCESS));
    // Confirm: cannot tell without pools: no reply.
    assert!(
        s.handle(0, &client_msg(msg::CONFIRM, vec![cid(), ia_na(1)]), &l)
            .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::ConfirmUndetermined), 1);
    // Unicast Request: UseMulticast with both IDs.
    let uni = LinkInfo {
        dst: "2001:db8::1".parse().unwrap(),
        ..l
    };
    let r = decode(&one(
        &mut s,
        &client_msg(msg::REQUEST, vec![cid(), sid(), ia_na(1)]),
        &uni,
    ));
    assert_eq!(codes(&r), vec![1, 2, 13]);
    assert_eq!(top_status(&r), Some(status::USE_MULTICAST));
    // Unicast Rebind: dropped.
    assert!(
        s.handle(0, &client_msg(msg::REBIND, vec![cid(), ia_na(1)]), &uni)
            .is_empty()
    );
}

#[test]
fn server_messages_unknown_types_and_junk_are_dropped() {
    let mut s = dns_server();
    let l = from_client();
    for t in [msg::ADVERTISE, msg::REPLY, msg::RECONFIGURE, 14, 200] {
        assert!(
            s.handle(0, &client_msg(t, vec![cid(), sid()]), &l)
                .is_empty()
        );
    }
    assert_eq!(drop_count(&s, DropReason::NotForServer), 5);
    assert!(s.handle(0, &hex("0b000001 000d0000"), &l).is_empty());
    assert_eq!(drop_count(&s, DropReason::Malformed), 1);
    // Unserved interface.
    let other = LinkInfo { ifindex: 99, ..l };
    assert!(
        s.handle(
            0,
            &client_msg(msg::INFORMATION_REQUEST, vec![cid()]),
            &other
        )
        .is_empty()
    );
    assert_eq!(s.unserved(), 1);
    assert_eq!(s.counters(IFINDEX).unwrap().datagrams, 6);
}

fn relay(
    inner: Message,
    hop: u8,
    link: &str,
    peer: &str,
    iid: Option<&[u8]>,
    extra: Vec<DhcpOption>,
) -> Message {
    let mut options = extra;
    if let Some(i) = iid {
        options.push(DhcpOption::InterfaceId(i.to_vec()));
    }
    options.push(DhcpOption::RelayMsg(Box::new(inner)));
    Message::Relay(RelayMessage {
        msg_type: msg::RELAY_FORW,
        hop_count: hop,
        link_address: link.parse().unwrap(),
        peer_address: peer.parse().unwrap(),
        options,
    })
}

#[test]
fn relayed_information_request_answered_through_nested_relays() {
    let mut s = dns_server();
    let ir = Message::parse(&client_msg(msg::INFORMATION_REQUEST, vec![cid()])).unwrap();
    let inner = relay(ir, 0, "2001:db8:1::1", CLIENT, Some(b"port7"), vec![]);
    let outer = relay(inner, 1, "::", "2001:db8:2::2", None, vec![]);
    let relay_src: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
    // Relays unicast to the server: that is allowed.
    let l = LinkInfo {
        ifindex: IFINDEX,
        src: SocketAddrV6::new(relay_src, 547, 0, 0),
        dst: "2001:db8:2::5".parse().unwrap(),
    };
    let r = one(&mut s, &outer.emit().unwrap(), &l);
    assert_eq!(r.to, SocketAddrV6::new(relay_src, 547, 0, 0));
    let Message::Relay(o) = Message::parse(&r.bytes).unwrap() else {
        panic!()
    };
    assert_eq!((o.msg_type, o.hop_count), (msg::RELAY_REPL, 1));
    assert_eq!(o.peer_address, "2001:db8:2::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(o.interface_id(), None);
    let Some(Message::Relay(i)) = o.relay_msg() else {
        panic!()
    };
    assert_eq!((i.msg_type, i.hop_count), (msg::RELAY_REPL, 0));
    assert_eq!(i.link_address, "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(i.peer_address, CLIENT.parse::<Ipv6Addr>().unwrap());
    assert_eq!(i.interface_id(), Some(&b"port7"[..]));
    let Some(Message::Client(c)) = i.relay_msg() else {
        panic!()
    };
    assert_eq!(c.msg_type, msg::REPLY);
    assert_eq!(codes(c), vec![1, 2, 23]);
    let cn = s.counters(IFINDEX).unwrap();
    assert_eq!(cn.received[12], 1);
    assert_eq!(cn.sent[13], 1);
}

#[test]
fn relay_source_port_and_relay_repl_input() {
    let mut s = dns_server();
    let ir = Message::parse(&client_msg(msg::INFORMATION_REQUEST, vec![cid()])).unwrap();
    let m = relay(
        ir.clone(),
        0,
        "::",
        CLIENT,
        None,
        vec![DhcpOption::Unknown {
            code: code::RELAY_SOURCE_PORT,
            data: vec![0, 0],
        }],
    );
    let l = LinkInfo {
        ifindex: IFINDEX,
        src: SocketAddrV6::new("fe80::1".parse().unwrap(), 40000, 0, IFINDEX),
        dst: ALL_SERVERS_AND_RELAYS,
    };
    let r = one(&mut s, &m.emit().unwrap(), &l);
    assert_eq!(
        r.to,
        SocketAddrV6::new("fe80::1".parse().unwrap(), 40000, 0, IFINDEX)
    );
    // A Relay-Repl sent to the server is dropped.
    let Message::Relay(mut rr) = relay(ir, 0, "::", CLIENT, None, vec![]) else {
        panic!()
    };
    rr.msg_type = msg::RELAY_REPL;
    assert!(
        s.handle(0, &Message::Relay(rr).emit().unwrap(), &l)
            .is_empty()
    );
    assert_eq!(drop_count(&s, DropReason::NotForServer), 1);
}

#[test]
fn reload_changes_options_and_keeps_counters() {
    let mut s = dns_server();
    let l = from_client();
    one(
        &mut s,
        &client_msg(msg::INFORMATION_REQUEST, vec![cid()]),
        &l,
    );
    let (cfg, _) = parse_str("t.conf", "option domain-name-servers 2001:db8:ffff::53;").unwrap();
    s.set_config(cfg);
    let r = decode(&one(
        &mut s,
        &client_msg(msg::INFORMATION_REQUEST, vec![cid()]),
        &l,
    ));
    assert_eq!(
        r.options[2],
        DhcpOption::Addresses {
            code: 23,
            addrs: vec!["2001:db8:ffff::53".parse().unwrap()]
        }
    );
    assert_eq!(s.counters(IFINDEX).unwrap().received[11], 2);
}

//! Sans-IO tests of links behind relays (RFC 8415 §13.1, §19.3): the link is chosen by the
//! innermost relay's link-address (then its Interface-ID, then the next outer relay, then
//! the arrival interface), each `[[link]]` serves its own pools, lifetimes, Rapid Commit and
//! preference, unknown link-addresses get NoAddrsAvail/NoPrefixAvail and are counted. Also:
//! host-block lifetimes on the wire, and a reclaimed lease going to another client.

mod common;
use common::{addrs, duid, ia_status, msg_status, na, prefixes};

use std::net::{Ipv6Addr, SocketAddrV6};

use v6h_dhcp6::config::Config;
use v6h_dhcp6::config::dhcp6s::parse_str;
use v6h_dhcp6::server::{ALL_SERVERS_AND_RELAYS, LinkInfo, Server};
use v6h_dhcp6::stateful::{EngineBindings, engine_config};
use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Ia, Message, RelayMessage, msg, status};

const IFINDEX: u32 = 3;
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 0xa2, 0x43, 0x35, 0xf4, 0x6c, 0x3a];
/// Fake clock start (Unix seconds).
const T0: u64 = 1_800_000_000;

const TOML: &str = r#"
[options]
dns_servers = ["2001:db8:1234::1"]

[[pool]]
name = "lan"
start = "2001:db8:1234::100"
end = "2001:db8:1234::1ff"

[[pool]]
name = "office"
start = "2001:db8:1234:10::100"
end = "2001:db8:1234:10::1ff"

[[pool]]
name = "lab"
start = "2001:db8:1234:20::100"
end = "2001:db8:1234:20::103"

[[interface]]
name = "eth0"
prefix = "2001:db8:1234::/64"
address_pools = [{ pool = "lan", preferred = 3600, valid = 7200 }]

[[link]]
name = "office"
prefix = "2001:db8:1234:10::/64"
address_pools = [{ pool = "office", preferred = 1800, valid = 3600 }]
rapid_commit = true
preference = 7
[[link.pd_pool]]
prefix = "2001:db8:1234:8000::/49"
delegated_len = 60
preferred = 900
valid = 1800

[[link]]
name = "lab"
prefix = "2001:db8:1234:20::/64"
interface_id = "vlan20"
address_pools = [{ pool = "lab", preferred = 600, valid = 1200 }]

[[host]]
name = "nas"
duid = "00:03:00:01:00:00:00:00:00:99"
link = "office"
addresses = [{ address = "2001:db8:1234:10::99", preferred = 100, valid = 200 }]
prefixes = [{ prefix = "2001:db8:1234:ff00::", prefix_len = 56, preferred = 300, valid = 600 }]
"#;

type Stateful = Server<EngineBindings>;

fn server_from(cfg: Config) -> Stateful {
    cfg.validate().unwrap();
    let ec = engine_config(&cfg, &["eth0".to_string()])
        .unwrap()
        .expect("pools configured");
    let mut s = Server::new(SERVER_DUID.to_vec(), cfg, EngineBindings::new(ec).unwrap());
    s.add_link(IFINDEX, "eth0");
    s
}

fn server() -> Stateful {
    server_from(Config::from_toml("t.toml".as_ref(), TOML).unwrap())
}

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn pd(iaid: u32) -> DhcpOption {
    DhcpOption::IaPd(Ia {
        iaid,
        t1: 0,
        t2: 0,
        options: Vec::new(),
    })
}

/// A relay layer: link-address, optional Interface-ID.
struct Hop<'a> {
    link: &'a str,
    iid: Option<&'a [u8]>,
}

fn hop(link: &str) -> Hop<'_> {
    Hop { link, iid: None }
}

fn client_msg(t: u8, client: u8, mut options: Vec<DhcpOption>) -> Message {
    options.insert(0, DhcpOption::ClientId(duid(client)));
    if matches!(t, msg::REQUEST | msg::RENEW | msg::RELEASE | msg::DECLINE) {
        options.insert(1, DhcpOption::ServerId(SERVER_DUID.to_vec()));
    }
    Message::Client(ClientMessage {
        msg_type: t,
        xid: [1, 2, 3],
        options,
    })
}

/// Sends a message from `client` through `hops` (outermost first; empty = direct) and
/// returns the client message inside the answer, after checking the Relay-Repl nesting
/// mirrors the request.
fn send(
    s: &mut Stateful,
    now: u64,
    t: u8,
    client: u8,
    options: Vec<DhcpOption>,
    hops: &[Hop<'_>],
) -> Option<ClientMessage> {
    let mut m = client_msg(t, client, options);
    for (depth, h) in hops.iter().enumerate().rev() {
        let mut options = Vec::new();
        if let Some(i) = h.iid {
            options.push(DhcpOption::InterfaceId(i.to_vec()));
        }
        options.push(DhcpOption::RelayMsg(Box::new(m)));
        m = Message::Relay(RelayMessage {
            msg_type: msg::RELAY_FORW,
            hop_count: u8::try_from(depth).unwrap(),
            link_address: ip(h.link),
            peer_address: ip("fe80::c"),
            options,
        });
    }
    let (src, dst) = if hops.is_empty() {
        (
            SocketAddrV6::new(ip("fe80::c"), 546, 0, IFINDEX),
            ALL_SERVERS_AND_RELAYS,
        )
    } else {
        (
            SocketAddrV6::new(ip("2001:db8:1234::2"), 547, 0, 0),
            ip("2001:db8:1234::1"),
        )
    };
    let info = LinkInfo {
        ifindex: IFINDEX,
        src,
        dst,
    };
    let mut r = s.handle(now, &m.emit().unwrap(), &info);
    assert!(r.len() <= 1);
    let r = r.pop()?;
    assert_eq!(r.to, src, "answers go back to where the request came from");
    let mut m = Message::parse(&r.bytes).unwrap();
    for h in hops {
        let Message::Relay(rr) = m else {
            panic!("expected a Relay-Repl")
        };
        assert_eq!(rr.msg_type, msg::RELAY_REPL);
        assert_eq!(rr.link_address, ip(h.link));
        assert_eq!(rr.interface_id(), h.iid);
        m = rr.relay_msg().expect("relay message").clone();
    }
    match m {
        Message::Client(c) => Some(c),
        Message::Relay(_) => panic!("more relay layers than sent"),
    }
}

fn ias(m: &ClientMessage) -> Vec<&Ia> {
    m.options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn in_range(a: Ipv6Addr, first: &str, last: &str) -> bool {
    (u128::from(ip(first))..=u128::from(ip(last))).contains(&u128::from(a))
}

fn office(a: Ipv6Addr) -> bool {
    in_range(a, "2001:db8:1234:10::100", "2001:db8:1234:10::1ff")
}

fn lan(a: Ipv6Addr) -> bool {
    in_range(a, "2001:db8:1234::100", "2001:db8:1234::1ff")
}

fn preference(m: &ClientMessage) -> Option<u8> {
    m.options.iter().find_map(|o| match o {
        DhcpOption::Preference(p) => Some(*p),
        _ => None,
    })
}

/// A Solicit relayed from the office link is answered from the office pool, with the
/// office link's lifetimes, T1/T2 and preference, in a Relay-Repl.
#[test]
fn relayed_solicit_is_served_from_the_relay_links_pool() {
    let mut s = server();
    let hops = [hop("2001:db8:1234:10::1")];
    let adv = send(&mut s, T0, msg::SOLICIT, 1, vec![na(1, &[]), pd(2)], &hops).unwrap();
    assert_eq!(adv.msg_type, msg::ADVERTISE);
    assert_eq!(preference(&adv), Some(7));
    let got = ias(&adv);
    let a = addrs(got[0]);
    assert_eq!(a.len(), 1);
    assert!(office(a[0].0), "{} is not from the office pool", a[0].0);
    assert_eq!((a[0].1, a[0].2), (1800, 3600));
    assert_eq!((got[0].t1, got[0].t2), (900, 1440));
    let p = prefixes(got[1]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].1, 60);
    assert!(in_range(
        p[0].0,
        "2001:db8:1234:8000::",
        "2001:db8:1234:ffff::"
    ));
    assert_eq!((p[0].2, p[0].3), (900, 1800));
    // The same client directly on eth0 gets a LAN address and no preference.
    let adv = send(&mut s, T0, msg::SOLICIT, 1, vec![na(1, &[])], &[]).unwrap();
    assert_eq!(preference(&adv), None);
    let a = addrs(ias(&adv)[0]);
    assert!(lan(a[0].0), "{} is not from the LAN pool", a[0].0);
    assert_eq!((a[0].1, a[0].2), (3600, 7200));
    assert_eq!(s.counters(IFINDEX).unwrap().relay_unknown_link, 0);
}

/// Direct messages are served on the arrival interface: Request, Renew and Confirm.
#[test]
fn direct_messages_use_the_interface_link() {
    let mut s = server();
    let r = send(&mut s, T0, msg::REQUEST, 2, vec![na(1, &[])], &[]).unwrap();
    let a = addrs(ias(&r)[0])[0].0;
    assert!(lan(a));
    let r = send(&mut s, T0 + 10, msg::RENEW, 2, vec![na(1, &[a])], &[]).unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(a, 3600, 7200)]);
    // The interface prefix makes Confirm judge by it, not only by the pool range.
    let r = send(
        &mut s,
        T0,
        msg::CONFIRM,
        2,
        vec![na(1, &[ip("2001:db8:1234::5")])],
        &[],
    )
    .unwrap();
    assert_eq!(msg_status(&r), Some(status::SUCCESS));
    let r = send(
        &mut s,
        T0,
        msg::CONFIRM,
        2,
        vec![na(1, &[ip("2001:db8:1234:10::5")])],
        &[],
    )
    .unwrap();
    assert_eq!(msg_status(&r), Some(status::NOT_ON_LINK));
}

/// Nested relays: the innermost relay's link-address wins; an unspecified one falls back to
/// the next outer relay; all unspecified falls back to the arrival interface.
#[test]
fn nested_relays_use_the_innermost_specified_link_address() {
    let mut s = server();
    // Innermost says office, outer says LAN: office.
    let hops = [hop("2001:db8:1234::1"), hop("2001:db8:1234:10::1")];
    let r = send(&mut s, T0, msg::SOLICIT, 3, vec![na(1, &[])], &hops).unwrap();
    assert!(office(addrs(ias(&r)[0])[0].0));
    // Innermost unspecified, outer says office: office.
    let hops = [hop("2001:db8:1234:10::1"), hop("::")];
    let r = send(&mut s, T0, msg::SOLICIT, 4, vec![na(1, &[])], &hops).unwrap();
    assert!(office(addrs(ias(&r)[0])[0].0));
    // All unspecified: the arrival interface (eth0, the LAN pool).
    let hops = [hop("::"), hop("::")];
    let r = send(&mut s, T0, msg::SOLICIT, 5, vec![na(1, &[])], &hops).unwrap();
    assert!(lan(addrs(ias(&r)[0])[0].0));
    // A link-address in the interface's own prefix (a relay on the LAN) selects eth0.
    let r = send(
        &mut s,
        T0,
        msg::SOLICIT,
        6,
        vec![na(1, &[])],
        &[hop("2001:db8:1234::77")],
    )
    .unwrap();
    assert!(lan(addrs(ias(&r)[0])[0].0));
}

/// An unspecified link-address with a configured Interface-ID selects that link.
#[test]
fn interface_id_selects_a_link_when_the_link_address_is_unspecified() {
    let mut s = server();
    let hops = [Hop {
        link: "::",
        iid: Some(b"vlan20"),
    }];
    let r = send(&mut s, T0, msg::REQUEST, 7, vec![na(1, &[])], &hops).unwrap();
    let a = addrs(ias(&r)[0]);
    assert!(in_range(
        a[0].0,
        "2001:db8:1234:20::100",
        "2001:db8:1234:20::103"
    ));
    assert_eq!((a[0].1, a[0].2), (600, 1200));
    // An unknown Interface-ID falls back to the arrival interface.
    let hops = [Hop {
        link: "::",
        iid: Some(b"vlan99"),
    }];
    let r = send(&mut s, T0, msg::REQUEST, 8, vec![na(1, &[])], &hops).unwrap();
    assert!(lan(addrs(ias(&r)[0])[0].0));
}

/// A link-address on no configured link: NoAddrsAvail and NoPrefixAvail, nothing
/// committed, counted; Information-Requests are still answered.
#[test]
fn unknown_link_address_gets_no_addrs_and_no_prefix_avail() {
    let mut s = server();
    let hops = [hop("2001:db8:9999::1")];
    for t in [msg::SOLICIT, msg::REQUEST] {
        let r = send(&mut s, T0, t, 9, vec![na(1, &[]), pd(2)], &hops).unwrap();
        let got = ias(&r);
        assert_eq!(got.len(), 2);
        assert_eq!(ia_status(got[0]), status::NO_ADDRS_AVAIL);
        assert_eq!(ia_status(got[1]), status::NO_PREFIX_AVAIL);
        assert!(addrs(got[0]).is_empty() && prefixes(got[1]).is_empty());
        assert_eq!((got[0].t1, got[0].t2), (0, 0));
    }
    // Renew of an office lease from an unknown link: NoBinding.
    let r = send(
        &mut s,
        T0,
        msg::RENEW,
        9,
        vec![na(1, &[ip("2001:db8:1234:10::100")])],
        &hops,
    )
    .unwrap();
    assert_eq!(ia_status(ias(&r)[0]), status::NO_BINDING);
    assert!(s.bindings().take_changes().is_empty(), "nothing committed");
    let r = send(&mut s, T0, msg::INFORMATION_REQUEST, 9, vec![], &hops).unwrap();
    assert_eq!(r.msg_type, msg::REPLY);
    assert!(r.options.iter().any(
        |o| matches!(o, DhcpOption::Addresses { addrs, .. } if addrs == &[ip("2001:db8:1234::1")])
    ));
    assert_eq!(s.counters(IFINDEX).unwrap().relay_unknown_link, 4);
}

/// Request, Renew, Rebind and Release through the relay keep the lease on the office link; a
/// Renew of the office lease sent directly on eth0 does not extend it.
#[test]
fn renew_rebind_release_through_the_relay() {
    let mut s = server();
    let hops = [hop("2001:db8:1234:10::1")];
    let adv = send(&mut s, T0, msg::SOLICIT, 10, vec![na(4, &[])], &hops).unwrap();
    let offered = addrs(ias(&adv)[0])[0].0;
    let r = send(&mut s, T0, msg::REQUEST, 10, vec![na(4, &[offered])], &hops).unwrap();
    assert_eq!(r.msg_type, msg::REPLY);
    assert_eq!(addrs(ias(&r)[0]), vec![(offered, 1800, 3600)]);
    assert!(
        !s.bindings().take_changes().is_empty(),
        "the lease is committed"
    );
    let r = send(
        &mut s,
        T0 + 900,
        msg::RENEW,
        10,
        vec![na(4, &[offered])],
        &hops,
    )
    .unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(offered, 1800, 3600)]);
    assert_eq!((ias(&r)[0].t1, ias(&r)[0].t2), (900, 1440));
    let r = send(
        &mut s,
        T0 + 1500,
        msg::REBIND,
        10,
        vec![na(4, &[offered])],
        &hops,
    )
    .unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(offered, 1800, 3600)]);
    // The same client directly on eth0: the office address is wrong there.
    let r = send(
        &mut s,
        T0 + 1600,
        msg::RENEW,
        10,
        vec![na(4, &[offered])],
        &[],
    )
    .unwrap();
    assert!(
        addrs(ias(&r)[0])
            .iter()
            .all(|&(a, _, valid)| a != offered || valid == 0),
        "the office lease is not extended on the LAN"
    );
    // Release through the relay frees it: another office client can get it.
    let r = send(
        &mut s,
        T0 + 1700,
        msg::RELEASE,
        10,
        vec![na(4, &[offered])],
        &hops,
    )
    .unwrap();
    assert_eq!(msg_status(&r), Some(status::SUCCESS));
    assert!(ias(&r).is_empty(), "only IAs without a binding are listed");
    let r = send(
        &mut s,
        T0 + 1800,
        msg::REQUEST,
        11,
        vec![na(1, &[offered])],
        &hops,
    )
    .unwrap();
    assert_eq!(addrs(ias(&r)[0])[0].0, offered);
}

/// Rapid Commit is the relayed link's setting: allowed on the office link, not on eth0.
#[test]
fn rapid_commit_follows_the_relayed_link() {
    let mut s = server();
    let hops = [hop("2001:db8:1234:10::1")];
    let r = send(
        &mut s,
        T0,
        msg::SOLICIT,
        12,
        vec![na(1, &[]), DhcpOption::RapidCommit],
        &hops,
    )
    .unwrap();
    assert_eq!(r.msg_type, msg::REPLY);
    assert!(r.options.contains(&DhcpOption::RapidCommit));
    assert!(office(addrs(ias(&r)[0])[0].0));
    assert!(!s.bindings().take_changes().is_empty());
    let r = send(
        &mut s,
        T0,
        msg::SOLICIT,
        13,
        vec![na(1, &[]), DhcpOption::RapidCommit],
        &[],
    )
    .unwrap();
    assert_eq!(r.msg_type, msg::ADVERTISE);
}

/// Confirm through a relay is judged against the relayed link.
#[test]
fn confirm_through_the_relay() {
    let mut s = server();
    let office_hops = [hop("2001:db8:1234:10::1")];
    let on = ip("2001:db8:1234:10::42");
    let r = send(
        &mut s,
        T0,
        msg::CONFIRM,
        14,
        vec![na(1, &[on])],
        &office_hops,
    )
    .unwrap();
    assert_eq!(msg_status(&r), Some(status::SUCCESS));
    let lan_addr = ip("2001:db8:1234::150");
    let r = send(
        &mut s,
        T0,
        msg::CONFIRM,
        14,
        vec![na(1, &[lan_addr])],
        &office_hops,
    )
    .unwrap();
    assert_eq!(msg_status(&r), Some(status::NOT_ON_LINK));
    // From an unknown link: an address of a known link has moved (NotOnLink) ...
    let unknown = [hop("2001:db8:9999::1")];
    let r = send(&mut s, T0, msg::CONFIRM, 14, vec![na(1, &[on])], &unknown).unwrap();
    assert_eq!(msg_status(&r), Some(status::NOT_ON_LINK));
    // ... an address on no known link cannot be judged: no reply (RFC 8415 §18.3.3).
    let r = send(
        &mut s,
        T0,
        msg::CONFIRM,
        14,
        vec![na(1, &[ip("2001:db8:7777::1")])],
        &unknown,
    );
    assert!(r.is_none());
}

/// The `[[link]]` table is validated: pools inside the prefix, unique names, no overlapping
/// prefixes, hosts naming existing links; TOML round trip keeps it.
#[test]
fn relay_link_configuration_is_validated() {
    let cfg = Config::from_toml("t.toml".as_ref(), TOML).unwrap();
    cfg.validate().unwrap();
    let again = Config::from_toml("t.toml".as_ref(), &cfg.to_toml().unwrap()).unwrap();
    assert_eq!(again, cfg);
    let bad = |from: &str, to: &str, want: &str| {
        let text = TOML.replacen(from, to, 1);
        assert_ne!(text, TOML, "{from} not found");
        let e = Config::from_toml("t.toml".as_ref(), &text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e:?} does not contain {want:?}");
    };
    bad(
        "prefix = \"2001:db8:1234:10::/64\"",
        "prefix = \"2001:db8:1234:11::/64\"",
        "is not inside the link prefix",
    );
    bad(
        "name = \"lab\"\nprefix",
        "name = \"office\"\nprefix",
        "already used",
    );
    bad(
        "prefix = \"2001:db8:1234:20::/64\"",
        "prefix = \"2001:db8:1234::/48\"",
        "overlapping prefixes",
    );
    bad("link = \"office\"", "link = \"attic\"", "\"attic\"");
    assert!(Config::from_toml("t.toml".as_ref(), "[[link]]\nname = \"x\"\n").is_err());
}

/// dhcp6s.conf host lifetimes (`address A pltime vltime;`, `prefix P/L pltime vltime;`)
/// are what the client receives, with T1/T2 from them, in Advertise, Reply and Renew.
#[test]
fn dhcp6s_host_lifetimes_are_sent() {
    let conf = r#"
interface eth0 { address-pool lan 3600 7200; };
pool lan { range 2001:db8:1234::100 to 2001:db8:1234::103; };
host printer {
    duid 00:03:00:01:00:00:00:00:00:99;
    address 2001:db8:1234::99 100 200;
    prefix 2001:db8:1234:ff00::/56 300 600;
};
"#;
    let mut s = server_from(parse_str("t.conf", conf).unwrap().0);
    let adv = send(&mut s, T0, msg::SOLICIT, 0x99, vec![na(1, &[]), pd(2)], &[]).unwrap();
    let got = ias(&adv);
    assert_eq!(addrs(got[0]), vec![(ip("2001:db8:1234::99"), 100, 200)]);
    assert_eq!(
        prefixes(got[1]),
        vec![(ip("2001:db8:1234:ff00::"), 56, 300, 600)]
    );
    let r = send(&mut s, T0, msg::REQUEST, 0x99, vec![na(1, &[]), pd(2)], &[]).unwrap();
    let got = ias(&r);
    assert_eq!(addrs(got[0]), vec![(ip("2001:db8:1234::99"), 100, 200)]);
    assert_eq!((got[0].t1, got[0].t2), (50, 80));
    assert_eq!(
        prefixes(got[1]),
        vec![(ip("2001:db8:1234:ff00::"), 56, 300, 600)]
    );
    assert_eq!((got[1].t1, got[1].t2), (150, 240));
    // The lease expires after the host's valid lifetime, not the pool's.
    let listed = s.bindings().engine().list(T0);
    assert!(listed.iter().any(|l| l.expires == T0 + 200));
    let r = send(
        &mut s,
        T0 + 60,
        msg::RENEW,
        0x99,
        vec![na(1, &[ip("2001:db8:1234::99")])],
        &[],
    )
    .unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(ip("2001:db8:1234::99"), 100, 200)]);
    // A pool client still gets the interface's lifetimes.
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[])], &[]).unwrap();
    let a = addrs(ias(&r)[0]);
    assert_eq!((a[0].1, a[0].2), (3600, 7200));
    assert_eq!((ias(&r)[0].t1, ias(&r)[0].t2), (1800, 2880));
}

/// The TOML host form (reserved on a relay link) sends its own lifetimes too.
#[test]
fn toml_host_lifetimes_are_sent_through_the_relay() {
    let mut s = server();
    let hops = [hop("2001:db8:1234:10::1")];
    let r = send(
        &mut s,
        T0,
        msg::REQUEST,
        0x99,
        vec![na(1, &[]), pd(2)],
        &hops,
    )
    .unwrap();
    let got = ias(&r);
    assert_eq!(addrs(got[0]), vec![(ip("2001:db8:1234:10::99"), 100, 200)]);
    assert_eq!((got[0].t1, got[0].t2), (50, 80));
    assert_eq!(
        prefixes(got[1]),
        vec![(ip("2001:db8:1234:ff00::"), 56, 300, 600)]
    );
}

/// On the fake clock: an unrenewed lease is reclaimed by expiry, handed to another client,
/// and the old owner's late Renew gets NoBinding (RFC 8415 §18.3.4: the server cannot
/// re-create the binding, the address is someone else's) without disturbing the new owner.
#[test]
fn reclaimed_lease_goes_to_another_client_and_old_owner_gets_no_binding() {
    let mut s = server();
    let hops = [hop("2001:db8:1234:20::1")];
    // The lab pool has 4 addresses; fill it.
    let mut held = Vec::new();
    for c in 20..24 {
        let r = send(&mut s, T0, msg::REQUEST, c, vec![na(1, &[])], &hops).unwrap();
        held.push(addrs(ias(&r)[0])[0].0);
    }
    let old = held[0];
    // Clients 21..23 renew; client 20 does not.
    for c in 21..24 {
        let a = held[usize::from(c - 20)];
        send(&mut s, T0 + 1000, msg::RENEW, c, vec![na(1, &[a])], &hops).unwrap();
    }
    s.bindings().take_changes();
    // Valid lifetime 1200 s: at T0 + 1201 the engine reclaims it.
    assert_eq!(s.bindings().engine().expire(T0 + 1201), 1);
    let r = send(&mut s, T0 + 1202, msg::REQUEST, 30, vec![na(1, &[])], &hops).unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(old, 600, 1200)]);
    let r = send(
        &mut s,
        T0 + 1203,
        msg::RENEW,
        20,
        vec![na(1, &[old])],
        &hops,
    )
    .unwrap();
    let ia = ias(&r)[0];
    assert_eq!(ia_status(ia), status::NO_BINDING);
    assert!(addrs(ia).iter().all(|&(_, _, valid)| valid == 0));
    let r = send(
        &mut s,
        T0 + 1204,
        msg::RENEW,
        30,
        vec![na(1, &[old])],
        &hops,
    )
    .unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(old, 600, 1200)]);
    s.bindings().engine().check_invariants().unwrap();
}

/// Which link a reply came from, by the address the client was given.
fn served_link(r: &ClientMessage) -> &'static str {
    let ia = ias(r)[0];
    match addrs(ia).first() {
        None => {
            assert_eq!(ia_status(ia), status::NO_ADDRS_AVAIL);
            "unknown"
        }
        Some(&(a, _, _)) if office(a) => "office",
        Some(&(a, _, _)) if lan(a) => "eth0",
        Some(&(a, _, _)) if in_range(a, "2001:db8:1234:20::100", "2001:db8:1234:20::103") => "lab",
        Some(&(a, _, _)) => panic!("{a} is from no pool"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

    /// For any nesting of up to four relays with any mix of link-addresses (unspecified,
    /// on a configured link, on no link) and Interface-IDs, the server picks the link the
    /// RFC 8415 §19.3 rule gives: the innermost relay with a specified link-address decides,
    /// an unspecified one defers to its Interface-ID, then to the next outer relay, then to
    /// the arrival interface.
    #[test]
    fn link_choice_follows_the_innermost_relay(
        layers in proptest::collection::vec((0usize..5, proptest::prelude::any::<bool>()), 0..5)
    ) {
        const ADDRS: [(&str, &str); 5] = [
            ("::", ""),
            ("2001:db8:1234:10::1", "office"),
            ("2001:db8:1234::9", "eth0"),
            ("2001:db8:1234:20::1", "lab"),
            ("2001:db8:9999::1", "unknown"),
        ];
        let hops: Vec<Hop<'_>> = layers
            .iter()
            .map(|&(i, iid)| Hop {
                link: ADDRS[i].0,
                iid: iid.then_some(b"vlan20".as_slice()),
            })
            .collect();
        let mut expected = "eth0";
        for &(i, iid) in layers.iter().rev() {
            if i != 0 {
                expected = ADDRS[i].1;
                break;
            }
            if iid {
                expected = "lab";
                break;
            }
        }
        let mut s = server();
        let r = send(&mut s, T0, msg::SOLICIT, 40, vec![na(1, &[])], &hops).unwrap();
        proptest::prop_assert_eq!(served_link(&r), expected);
        let unknown = u64::from(expected == "unknown");
        proptest::prop_assert_eq!(s.counters(IFINDEX).unwrap().relay_unknown_link, unknown);
    }
}

/// A dhcp6s.conf host block's `address-pool P pltime vltime;` gives that client's addresses
/// from pool P those lifetimes (and T1/T2 from them); other clients keep the interface's.
#[test]
fn dhcp6s_host_address_pool_lifetimes_are_sent() {
    let conf = r#"
interface eth0 { address-pool lan 3600 7200; };
pool lan { range 2001:db8:1234::100 to 2001:db8:1234::103; };
host laptop {
    duid 00:03:00:01:00:00:00:00:00:42;
    address-pool lan 500 1000;
};
"#;
    let mut s = server_from(parse_str("t.conf", conf).unwrap().0);
    let adv = send(&mut s, T0, msg::SOLICIT, 0x42, vec![na(1, &[])], &[]).unwrap();
    let a = addrs(ias(&adv)[0]);
    assert!(lan(a[0].0));
    assert_eq!((a[0].1, a[0].2), (500, 1000));
    let r = send(&mut s, T0, msg::REQUEST, 0x42, vec![na(1, &[])], &[]).unwrap();
    let ia = ias(&r)[0];
    assert_eq!(addrs(ia), vec![(a[0].0, 500, 1000)]);
    assert_eq!((ia.t1, ia.t2), (250, 400));
    let r = send(
        &mut s,
        T0 + 200,
        msg::RENEW,
        0x42,
        vec![na(1, &[a[0].0])],
        &[],
    )
    .unwrap();
    assert_eq!(addrs(ias(&r)[0]), vec![(a[0].0, 500, 1000)]);
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[])], &[]).unwrap();
    let other = addrs(ias(&r)[0]);
    assert_eq!((other[0].1, other[0].2), (3600, 7200));
}

//! Sans-IO tests of the stateful service: the server core with [`EngineBindings`], every
//! message type and status code, T1/T2, reservations, PD pools from TOML, expiry on a fake
//! clock, and leases surviving a restart through the journal.

mod common;
use common::{addrs, duid, ia_status, msg_status, na, prefixes};

use std::net::{Ipv6Addr, SocketAddrV6};

use v6h_dhcp6::config::Config;
use v6h_dhcp6::config::dhcp6s::parse_str;
use v6h_dhcp6::server::{ALL_SERVERS_AND_RELAYS, LinkInfo, Server};
use v6h_dhcp6::stateful::{EngineBindings, engine_config};
use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Ia, IaPrefix, Message, code, msg, status};
use v6h_lease::{JournalStore, LeaseStore};

const IFINDEX: u32 = 7;
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 0xa2, 0x43, 0x35, 0xf4, 0x6c, 0x3a];
/// Fake clock start (Unix seconds).
const T0: u64 = 1_800_000_000;

const CONF: &str = r#"
option domain-name-servers 2001:db8:1234::1;
interface eth0 { address-pool lan 3600 7200; allow rapid-commit; preference 200; };
pool lan { range 2001:db8:1234::100 to 2001:db8:1234::103; };
host printer {
    duid 00:03:00:01:00:00:00:00:00:99;
    address 2001:db8:1234::99 3600;
    prefix 2001:db8:1234:ff00::/56 3600 7200;
};
"#;

const TOML: &str = r#"
[[interface]]
name = "eth0"
[[interface.pd_pool]]
prefix = "2001:db8:1234::/48"
delegated_len = 56
exclude = ["2001:db8:1234::/56"]
preferred = 1000
valid = 2000
"#;

type Stateful = Server<EngineBindings>;

fn server_from(cfg: Config) -> Stateful {
    let ec = engine_config(&cfg, &["eth0".to_string()])
        .unwrap()
        .expect("pools configured");
    let mut s = Server::new(SERVER_DUID.to_vec(), cfg, EngineBindings::new(ec).unwrap());
    s.add_link(IFINDEX, "eth0");
    s
}

fn na_server() -> Stateful {
    server_from(parse_str("t.conf", CONF).unwrap().0)
}

fn pd_server() -> Stateful {
    server_from(Config::from_toml("t.toml".as_ref(), TOML).unwrap())
}

fn link() -> LinkInfo {
    LinkInfo {
        ifindex: IFINDEX,
        src: SocketAddrV6::new("fe80::1".parse().unwrap(), 546, 0, IFINDEX),
        dst: ALL_SERVERS_AND_RELAYS,
    }
}

fn pd(iaid: u32, prefixes: &[(Ipv6Addr, u8)]) -> DhcpOption {
    DhcpOption::IaPd(Ia {
        iaid,
        t1: 0,
        t2: 0,
        options: prefixes
            .iter()
            .map(|(p, l)| {
                DhcpOption::IaPrefix(IaPrefix {
                    preferred: 0,
                    valid: 0,
                    prefix_len: *l,
                    prefix: *p,
                    options: Vec::new(),
                })
            })
            .collect(),
    })
}

/// Sends one message from client `n` at `now`; returns the decoded answer, if any.
fn send(
    s: &mut Stateful,
    now: u64,
    t: u8,
    client: u8,
    mut options: Vec<DhcpOption>,
) -> Option<ClientMessage> {
    options.insert(0, DhcpOption::ClientId(duid(client)));
    if matches!(t, msg::REQUEST | msg::RENEW | msg::RELEASE | msg::DECLINE) {
        options.insert(1, DhcpOption::ServerId(SERVER_DUID.to_vec()));
    }
    let bytes = Message::Client(ClientMessage {
        msg_type: t,
        xid: [9, 8, 7],
        options,
    })
    .emit()
    .unwrap();
    let mut r = s.handle(now, &bytes, &link());
    assert!(r.len() <= 1);
    let r = r.pop()?;
    match Message::parse(&r.bytes).unwrap() {
        Message::Client(c) => Some(c),
        Message::Relay(_) => panic!("relay reply"),
    }
}

/// The first IA (NA or PD) of a reply.
fn ia_of(m: &ClientMessage) -> &Ia {
    m.options
        .iter()
        .find_map(|o| match o {
            DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => Some(i),
            _ => None,
        })
        .expect("an IA in the reply")
}

fn pool_addr(a: Ipv6Addr) -> bool {
    (u128::from("2001:db8:1234::100".parse::<Ipv6Addr>().unwrap())
        ..=u128::from("2001:db8:1234::103".parse::<Ipv6Addr>().unwrap()))
        .contains(&u128::from(a))
}

/// Solicit → Advertise (preference, T1/T2, no commit), Request → Reply (same address, committed).
#[test]
fn solicit_advertise_request_reply_na() {
    let mut s = na_server();
    let adv = send(&mut s, T0, msg::SOLICIT, 1, vec![na(5, &[])]).unwrap();
    assert_eq!(adv.msg_type, msg::ADVERTISE);
    assert!(adv.options.contains(&DhcpOption::Preference(200)));
    let ia = ia_of(&adv);
    assert_eq!((ia.iaid, ia.t1, ia.t2), (5, 1800, 2880));
    let offered = addrs(ia);
    assert_eq!(offered.len(), 1);
    assert!(pool_addr(offered[0].0));
    assert_eq!((offered[0].1, offered[0].2), (3600, 7200));
    assert!(
        s.bindings().take_changes().is_empty(),
        "an Advertise commits nothing"
    );
    let rep = send(
        &mut s,
        T0 + 1,
        msg::REQUEST,
        1,
        vec![na(5, &[offered[0].0])],
    )
    .unwrap();
    assert_eq!(rep.msg_type, msg::REPLY);
    let ia = ia_of(&rep);
    assert_eq!(ia_status(ia), status::SUCCESS);
    assert_eq!(addrs(ia)[0].0, offered[0].0);
    assert_eq!(
        s.bindings().take_changes().len(),
        1,
        "the lease is to be committed"
    );
    // A second client gets a different address.
    let rep2 = send(&mut s, T0 + 2, msg::REQUEST, 2, vec![na(5, &[])]).unwrap();
    let other = addrs(ia_of(&rep2))[0].0;
    assert!(pool_addr(other) && other != offered[0].0);
}

/// Solicit with Rapid Commit on a link that allows it: Reply with Rapid Commit, committed.
#[test]
fn rapid_commit_solicit_replies_and_commits() {
    let mut s = na_server();
    let rep = send(
        &mut s,
        T0,
        msg::SOLICIT,
        1,
        vec![DhcpOption::RapidCommit, na(1, &[])],
    )
    .unwrap();
    assert_eq!(rep.msg_type, msg::REPLY);
    assert!(rep.options.contains(&DhcpOption::RapidCommit));
    assert_eq!(addrs(ia_of(&rep)).len(), 1);
    assert_eq!(s.bindings().take_changes().len(), 1);
}

/// A full pool answers NoAddrsAvail; a full PD pool NoPrefixAvail.
#[test]
fn exhausted_pools_no_addrs_and_no_prefix_avail() {
    let mut s = na_server();
    for c in 1..=4 {
        let r = send(&mut s, T0, msg::REQUEST, c, vec![na(1, &[])]).unwrap();
        assert_eq!(ia_status(ia_of(&r)), status::SUCCESS);
    }
    let r = send(&mut s, T0, msg::REQUEST, 5, vec![na(1, &[])]).unwrap();
    let ia = ia_of(&r);
    assert_eq!(ia_status(ia), status::NO_ADDRS_AVAIL);
    assert!(addrs(ia).is_empty());
    let r = send(&mut s, T0, msg::SOLICIT, 5, vec![na(1, &[])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_ADDRS_AVAIL);
    // No PD pool on this link (only a reservation for another DUID).
    let r = send(&mut s, T0, msg::REQUEST, 5, vec![pd(1, &[])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_PREFIX_AVAIL);
}

/// IA_PD from the TOML pool: /56s from the /48, never the excluded LAN /56, own lifetimes.
#[test]
fn pd_pool_from_toml_delegates_56s() {
    let mut s = pd_server();
    let lan: v6h_lease::Prefix = "2001:db8:1234::/56".parse().unwrap();
    let mut seen = Vec::new();
    for c in 1..=20 {
        let r = send(&mut s, T0, msg::REQUEST, c, vec![pd(c.into(), &[])]).unwrap();
        let ia = ia_of(&r);
        assert_eq!((ia.t1, ia.t2), (500, 800));
        let p = prefixes(ia);
        assert_eq!(p.len(), 1);
        let (addr, len, pref, valid) = p[0];
        assert_eq!((len, pref, valid), (56, 1000, 2000));
        assert!(!lan.contains(addr), "{addr} is the LAN's /56");
        assert!(addr.segments()[..3] == [0x2001, 0xdb8, 0x1234]);
        assert!(!seen.contains(&addr));
        seen.push(addr);
    }
    // Both IA kinds in one Request: the NA gets NoAddrsAvail (no NA pool), the PD a prefix.
    let r = send(&mut s, T0, msg::REQUEST, 99, vec![na(1, &[]), pd(2, &[])]).unwrap();
    let ias: Vec<&DhcpOption> = r
        .options
        .iter()
        .filter(|o| o.code() == code::IA_NA || o.code() == code::IA_PD)
        .collect();
    assert_eq!(ias.len(), 2);
}

/// Renew extends a known binding; Renew of an unknown, empty IA gets NoBinding.
#[test]
fn renew_extends_and_unknown_gets_no_binding() {
    let mut s = na_server();
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[])]).unwrap();
    let a = addrs(ia_of(&r))[0].0;
    s.bindings().take_changes();
    let r = send(&mut s, T0 + 1800, msg::RENEW, 1, vec![na(1, &[a])]).unwrap();
    let ia = ia_of(&r);
    assert_eq!(ia_status(ia), status::SUCCESS);
    assert_eq!(addrs(ia), vec![(a, 3600, 7200)]);
    assert_eq!((ia.t1, ia.t2), (1800, 2880));
    assert!(
        !s.bindings().take_changes().is_empty(),
        "the renewed expiry is persisted"
    );
    let r = send(&mut s, T0, msg::RENEW, 2, vec![na(9, &[])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_BINDING);
}

/// Rebind extends a known binding; an address off the link comes back with zero lifetimes
/// and NotOnLink; an empty unknown IA gets no IA at all (the server cannot tell).
#[test]
fn rebind_known_and_not_on_link() {
    let mut s = na_server();
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[])]).unwrap();
    let a = addrs(ia_of(&r))[0].0;
    let r = send(&mut s, T0 + 3000, msg::REBIND, 1, vec![na(1, &[a])]).unwrap();
    assert_eq!(r.msg_type, msg::REPLY);
    assert_eq!(addrs(ia_of(&r)), vec![(a, 3600, 7200)]);
    let off: Ipv6Addr = "2001:db8:9999::1".parse().unwrap();
    let r = send(&mut s, T0, msg::REBIND, 2, vec![na(1, &[off])]).unwrap();
    let ia = ia_of(&r);
    assert_eq!(ia_status(ia), status::NOT_ON_LINK);
    assert_eq!(addrs(ia), vec![(off, 0, 0)]);
}

/// Release frees the address (message Success, no IA); a Release of an unknown IA lists it
/// with NoBinding.
#[test]
fn release_frees_and_unknown_gets_no_binding() {
    let mut s = na_server();
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[])]).unwrap();
    let a = addrs(ia_of(&r))[0].0;
    s.bindings().take_changes();
    let r = send(&mut s, T0 + 5, msg::RELEASE, 1, vec![na(1, &[a])]).unwrap();
    assert_eq!(msg_status(&r), Some(status::SUCCESS));
    assert!(!r.options.iter().any(|o| o.code() == code::IA_NA));
    assert!(
        !s.bindings().take_changes().is_empty(),
        "the release is persisted"
    );
    let r = send(&mut s, T0 + 6, msg::RENEW, 1, vec![na(1, &[])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_BINDING);
    let r = send(&mut s, T0 + 7, msg::RELEASE, 3, vec![na(4, &[a])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_BINDING);
}

/// A declined address is quarantined: the next client gets another one.
#[test]
fn decline_quarantines_the_address() {
    let mut s = na_server();
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[])]).unwrap();
    let a = addrs(ia_of(&r))[0].0;
    let r = send(&mut s, T0 + 1, msg::DECLINE, 1, vec![na(1, &[a])]).unwrap();
    assert_eq!(msg_status(&r), Some(status::SUCCESS));
    for c in 2..=4 {
        let r = send(&mut s, T0 + 2, msg::REQUEST, c, vec![na(1, &[])]).unwrap();
        let got = addrs(ia_of(&r));
        assert_eq!(got.len(), 1);
        assert_ne!(got[0].0, a, "declined address handed out again");
    }
    let r = send(&mut s, T0 + 2, msg::REQUEST, 5, vec![na(1, &[])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_ADDRS_AVAIL);
    let r = send(&mut s, T0 + 3, msg::DECLINE, 6, vec![na(1, &[a])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_BINDING);
}

/// Confirm: on-link addresses get Success, others NotOnLink.
#[test]
fn confirm_success_and_not_on_link() {
    let mut s = na_server();
    let on: Ipv6Addr = "2001:db8:1234::101".parse().unwrap();
    let r = send(&mut s, T0, msg::CONFIRM, 1, vec![na(1, &[on])]).unwrap();
    assert_eq!(msg_status(&r), Some(status::SUCCESS));
    let off: Ipv6Addr = "2001:db8:4321::1".parse().unwrap();
    let r = send(&mut s, T0, msg::CONFIRM, 1, vec![na(1, &[off])]).unwrap();
    assert_eq!(msg_status(&r), Some(status::NOT_ON_LINK));
}

/// On the fake clock, an unrenewed lease expires and its address goes to someone else.
#[test]
fn expiry_reclaims_leases() {
    let mut s = na_server();
    let mut held = Vec::new();
    for c in 1..=4 {
        let r = send(&mut s, T0, msg::REQUEST, c, vec![na(1, &[])]).unwrap();
        held.push(addrs(ia_of(&r))[0].0);
    }
    let r = send(&mut s, T0 + 7199, msg::REQUEST, 5, vec![na(1, &[])]).unwrap();
    assert_eq!(ia_status(ia_of(&r)), status::NO_ADDRS_AVAIL);
    let r = send(&mut s, T0 + 7201, msg::REQUEST, 5, vec![na(1, &[])]).unwrap();
    let got = addrs(ia_of(&r));
    assert_eq!(got.len(), 1);
    assert!(held.contains(&got[0].0));
}

/// A dhcp6s.conf host block reserves its address and prefix for its DUID only.
#[test]
fn host_reservation_by_duid() {
    let mut s = na_server();
    let r = send(&mut s, T0, msg::REQUEST, 0x99, vec![na(1, &[]), pd(2, &[])]).unwrap();
    let ias: Vec<&Ia> = r
        .options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(
        addrs(ias[0])[0].0,
        "2001:db8:1234::99".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        (prefixes(ias[1])[0].0, prefixes(ias[1])[0].1),
        ("2001:db8:1234:ff00::".parse::<Ipv6Addr>().unwrap(), 56)
    );
    // Another client asking for the reserved address does not get it.
    let reserved: Ipv6Addr = "2001:db8:1234::99".parse().unwrap();
    let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[reserved])]).unwrap();
    assert!(addrs(ia_of(&r)).iter().all(|a| a.0 != reserved || a.2 == 0));
}

/// Without pools or hosts the stateless fast path is kept.
#[test]
fn no_pools_means_stateless() {
    let (cfg, _) = parse_str("t.conf", "option domain-name-servers 2001:db8::1;").unwrap();
    assert!(
        engine_config(&cfg, &["eth0".to_string()])
            .unwrap()
            .is_none()
    );
}

/// Leases committed to the journal survive a restart: the restored server renews the same
/// address and prefix.
#[test]
fn leases_survive_restart_through_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let text = format!("{TOML}\n");
    let mut cfg = Config::from_toml("t.toml".as_ref(), &text).unwrap();
    let (na_cfg, _) = parse_str("t.conf", CONF).unwrap();
    cfg.pools = na_cfg.pools.clone();
    cfg.interfaces[0].address_pools = na_cfg.interfaces[0].address_pools.clone();
    let (a, p) = {
        let store = JournalStore::open(&path).unwrap();
        let mut s = server_from(cfg.clone());
        let r = send(&mut s, T0, msg::REQUEST, 1, vec![na(1, &[]), pd(2, &[])]).unwrap();
        store.commit(s.bindings().take_changes()).unwrap();
        let ias: Vec<&Ia> = r
            .options
            .iter()
            .filter_map(|o| match o {
                DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => Some(i),
                _ => None,
            })
            .collect();
        (addrs(ias[0])[0].0, prefixes(ias[1])[0])
    };
    let store = JournalStore::open(&path).unwrap();
    assert_eq!(store.load().len(), 2);
    let mut s = server_from(cfg);
    let rep = s.bindings().engine().restore(T0 + 100, store.load());
    assert_eq!(rep.loaded, 2);
    // Another client cannot take them; the owner renews them unchanged.
    let r = send(&mut s, T0 + 100, msg::REQUEST, 2, vec![na(1, &[a])]).unwrap();
    assert_ne!(addrs(ia_of(&r))[0].0, a);
    let r = send(
        &mut s,
        T0 + 200,
        msg::RENEW,
        1,
        vec![na(1, &[a]), pd(2, &[(p.0, p.1)])],
    )
    .unwrap();
    let ias: Vec<&Ia> = r
        .options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(addrs(ias[0]), vec![(a, 3600, 7200)]);
    assert_eq!(prefixes(ias[1])[0].0, p.0);
    assert_eq!(prefixes(ias[1])[0].2, 1000);
}

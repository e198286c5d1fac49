//! Greedy and flooding clients (issue 12, items 5 and 6), sans-IO on a fake clock: IAs per
//! message and leases per client are capped (the rest get NoAddrsAvail/NoPrefixAvail inside
//! the IA), and Solicits, which hold nothing, cannot starve a client's Request.

mod common;
use common::{addrs, duid, ia_status, na};

use std::net::SocketAddrV6;

use v6h_dhcp6::config::{Config, DEFAULT_MAX_IAS_PER_MESSAGE};
use v6h_dhcp6::server::{ALL_SERVERS_AND_RELAYS, LinkInfo, Server};
use v6h_dhcp6::stateful::{EngineBindings, engine_config};
use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Ia, Message, msg, status};

const IFINDEX: u32 = 3;
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 0xa2, 0x43, 0x35, 0xf4, 0x6c, 0x3a];
const T0: u64 = 1_800_000_000;

/// The report's setup: a 4096-address pool with Rapid Commit.
const TOML: &str = r#"
[[interface]]
name = "eth0"
rapid_commit = true
address_pools = [{ pool = "lan", preferred = 3600, valid = 7200 }]
[[interface.pd_pool]]
prefix = "2001:db8:1234:8000::/49"
delegated_len = 56
[[pool]]
name = "lan"
start = "2001:db8:1234::1000"
end = "2001:db8:1234::1fff"
"#;

type Stateful = Server<EngineBindings>;

fn server(extra: &str) -> Stateful {
    let cfg = Config::from_toml("t.toml".as_ref(), &format!("{extra}\n{TOML}")).unwrap();
    cfg.validate().unwrap();
    let ec = engine_config(&cfg, &["eth0".to_string()]).unwrap().unwrap();
    let mut s = Server::new(SERVER_DUID.to_vec(), cfg, EngineBindings::new(ec).unwrap());
    s.add_link(IFINDEX, "eth0");
    s
}

fn link() -> LinkInfo {
    LinkInfo {
        ifindex: IFINDEX,
        src: SocketAddrV6::new("fe80::1".parse().unwrap(), 546, 0, IFINDEX),
        dst: ALL_SERVERS_AND_RELAYS,
    }
}

fn pd(iaid: u32) -> DhcpOption {
    DhcpOption::IaPd(Ia {
        iaid,
        t1: 0,
        t2: 0,
        options: Vec::new(),
    })
}

/// Sends a message from `client`; returns the request size, the reply size and the reply.
fn send(
    s: &mut Stateful,
    now: u64,
    t: u8,
    client: &[u8],
    mut options: Vec<DhcpOption>,
) -> (usize, usize, ClientMessage) {
    options.insert(0, DhcpOption::ClientId(client.to_vec()));
    if t == msg::REQUEST {
        options.insert(1, DhcpOption::ServerId(SERVER_DUID.to_vec()));
    }
    let bytes = Message::Client(ClientMessage {
        msg_type: t,
        xid: [1, 2, 3],
        options,
    })
    .emit()
    .unwrap();
    let r = s.handle(now, &bytes, &link()).pop().expect("a reply");
    let Message::Client(c) = Message::parse(&r.bytes).unwrap() else {
        panic!("relay reply")
    };
    (bytes.len(), r.bytes.len(), c)
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

/// Number of IAs in `m` that got a lease, and number that got `st`.
fn served_and(m: &ClientMessage, st: u16) -> (usize, usize) {
    let v = ias(m);
    (
        v.iter().filter(|i| ia_status(i) == status::SUCCESS).count(),
        v.iter().filter(|i| ia_status(i) == st).count(),
    )
}

fn solicit_1000(rapid: bool) -> Vec<DhcpOption> {
    let mut o: Vec<DhcpOption> = (0..1000).map(|i| na(i, &[])).collect();
    if rapid {
        o.push(DhcpOption::RapidCommit);
    }
    o
}

/// Before: a 44 KB Advertise offering 1000 addresses. Now: 8 are served, the other 992 IAs
/// get NoAddrsAvail without a message text, and the Advertise is barely larger than the
/// Solicit.
#[test]
fn a_solicit_with_1000_ia_nas_is_served_8_and_refused_the_rest() {
    let mut s = server("");
    let (req, rep, adv) = send(&mut s, T0, msg::SOLICIT, &duid(1), solicit_1000(false));
    assert_eq!(adv.msg_type, msg::ADVERTISE);
    assert_eq!(ias(&adv).len(), 1000, "every IA is answered");
    assert_eq!(
        served_and(&adv, status::NO_ADDRS_AVAIL),
        (DEFAULT_MAX_IAS_PER_MESSAGE as usize, 992)
    );
    for ia in &ias(&adv)[8..] {
        assert!(addrs(ia).is_empty() && (ia.t1, ia.t2) == (0, 0));
    }
    eprintln!("Solicit with 1000 IA_NAs: {req} B; Advertise: {rep} B");
    assert!(rep * 10 < req * 15, "reply {rep} B for a {req} B request");
    assert_eq!(s.counters(IFINDEX).unwrap().ia_limit, 992);
    assert!(s.bindings().take_changes().is_empty());
}

/// Before: five Rapid Commit Solicits of 1000 IA_NAs committed the whole pool for 2 hours.
/// Now each commits at most 8, and one DUID at most 16 in all; a real client is then served.
#[test]
fn rapid_commit_floods_commit_at_most_the_caps() {
    let mut s = server("");
    let mut committed = 0;
    for round in 0..5 {
        let (_, _, r) = send(&mut s, T0 + round, msg::SOLICIT, &duid(1), {
            // New IAIDs each round, as an attacker would.
            let mut o: Vec<DhcpOption> = (0..1000)
                .map(|i| na(round as u32 * 1000 + i, &[]))
                .collect();
            o.push(DhcpOption::RapidCommit);
            o
        });
        assert_eq!(r.msg_type, msg::REPLY);
        committed += served_and(&r, status::NO_ADDRS_AVAIL).0;
    }
    assert_eq!(committed, 16, "max_leases_per_client");
    // IA_PD counts against the same per-client cap.
    let (_, _, r) = send(
        &mut s,
        T0 + 9,
        msg::SOLICIT,
        &duid(1),
        vec![pd(1), DhcpOption::RapidCommit],
    );
    assert_eq!(served_and(&r, status::NO_PREFIX_AVAIL), (0, 1));
    // A real client.
    let (_, _, r) = send(
        &mut s,
        T0 + 10,
        msg::SOLICIT,
        &duid(2),
        vec![na(1, &[]), pd(2), DhcpOption::RapidCommit],
    );
    assert_eq!(served_and(&r, status::NO_ADDRS_AVAIL), (2, 0));
}

/// The limits come from TOML `[limits]`; 0 switches a limit off.
#[test]
fn limits_are_configurable() {
    let mut s = server("[limits]\nmax_ias_per_message = 2\nmax_leases_per_client = 3");
    let (_, _, r) = send(&mut s, T0, msg::SOLICIT, &duid(1), solicit_1000(true));
    assert_eq!(served_and(&r, status::NO_ADDRS_AVAIL), (2, 998));
    let (_, _, r) = send(&mut s, T0, msg::SOLICIT, &duid(1), {
        let mut o = vec![na(5000, &[]), na(5001, &[])];
        o.push(DhcpOption::RapidCommit);
        o
    });
    assert_eq!(served_and(&r, status::NO_ADDRS_AVAIL), (1, 1));
    let mut s = server("[limits]\nmax_ias_per_message = 0\nmax_leases_per_client = 0");
    let (_, _, r) = send(&mut s, T0, msg::SOLICIT, &duid(1), solicit_1000(false));
    assert_eq!(served_and(&r, status::NO_ADDRS_AVAIL), (1000, 0));
    // Defaults are not written out by `convert`.
    let cfg = Config::from_toml("t.toml".as_ref(), TOML).unwrap();
    assert!(!cfg.to_toml().unwrap().contains("limits"));
}

/// Issue 12 item 6: 50,000 Solicits from random DUIDs (12 times the pool) are all answered,
/// but hold nothing, so a client's Request right after them is served.
#[test]
fn a_random_duid_solicit_flood_does_not_starve_a_request() {
    let mut s = server("");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in 0..50_000u32 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut d = vec![0, 4];
        d.extend_from_slice(&rng.to_be_bytes());
        let (_, _, adv) = send(
            &mut s,
            T0 + u64::from(i / 1000),
            msg::SOLICIT,
            &d,
            vec![na(1, &[])],
        );
        assert_eq!(
            served_and(&adv, status::NO_ADDRS_AVAIL),
            (1, 0),
            "solicit {i}"
        );
    }
    assert!(s.bindings().take_changes().is_empty());
    let usage = s.bindings().engine().pool_usage();
    assert_eq!(usage[0].free, 4096, "offers hold nothing");
    let (_, _, adv) = send(&mut s, T0 + 60, msg::SOLICIT, &duid(9), vec![na(1, &[])]);
    let offered = addrs(ias(&adv)[0])[0].0;
    let (_, _, rep) = send(
        &mut s,
        T0 + 60,
        msg::REQUEST,
        &duid(9),
        vec![na(1, &[offered])],
    );
    assert_eq!(rep.msg_type, msg::REPLY);
    assert_eq!(
        addrs(ias(&rep)[0])[0].0,
        offered,
        "the advertised address is bound"
    );
    assert_eq!(s.bindings().engine().stats().pool_exhausted, 0);
}

/// When the pool really is exhausted the refusal is counted (the daemon logs it at WARN).
#[test]
fn pool_exhaustion_is_counted() {
    let small = TOML.replace("2001:db8:1234::1fff", "2001:db8:1234::1003");
    let cfg = Config::from_toml("t.toml".as_ref(), &small).unwrap();
    let ec = engine_config(&cfg, &["eth0".to_string()]).unwrap().unwrap();
    let mut s = Server::new(SERVER_DUID.to_vec(), cfg, EngineBindings::new(ec).unwrap());
    s.add_link(IFINDEX, "eth0");
    for c in 0..6u8 {
        let (_, _, r) = send(
            &mut s,
            T0,
            msg::SOLICIT,
            &duid(c),
            vec![na(1, &[]), DhcpOption::RapidCommit],
        );
        let want = if c < 4 { (1, 0) } else { (0, 1) };
        assert_eq!(served_and(&r, status::NO_ADDRS_AVAIL), want, "client {c}");
    }
    assert_eq!(s.bindings().engine().stats().pool_exhausted, 2);
}

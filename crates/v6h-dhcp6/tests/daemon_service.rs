//! The daemon service in-process on the loopback interface (no root needed): a relay-style client sends
//! Relay-Forw messages to `[::1]:<port>` with the Relay Source Port option, so replies come back
//! to its own socket. Covers the SIGHUP switch between stateless and stateful service and the
//! expiry timer.
//!
//! One test sends SIGHUP to the whole process; the other daemons here then reload an unchanged
//! file, which must not disturb them.

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use v6h_dhcp6::daemon::{DaemonOptions, run};
use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Ia, Message, RelayMessage, code, msg};
use v6h_lease::{JournalStore, LeaseStore};

const STATELESS: &str = r#"
[options]
dns_servers = ["2001:db8::53"]
[[interface]]
name = "lo"
"#;

const STATEFUL: &str = r#"
[options]
dns_servers = ["2001:db8::53"]
[[interface]]
name = "lo"
rapid_commit = true
address_pools = [{ pool = "p", preferred = 300, valid = 600 }]
[[pool]]
name = "p"
start = "2001:db8:5::100"
end = "2001:db8:5::1ff"
"#;

/// A free UDP port on ::1 (bound and released; good enough for a test).
fn free_port() -> u16 {
    let s = UdpSocket::bind("[::1]:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Wraps `inner` in a Relay-Forw that asks for replies to the relay's source port.
fn relayed(inner: ClientMessage) -> Vec<u8> {
    Message::Relay(RelayMessage {
        msg_type: msg::RELAY_FORW,
        hop_count: 0,
        link_address: Ipv6Addr::UNSPECIFIED,
        peer_address: "fe80::42".parse().unwrap(),
        options: vec![
            DhcpOption::Unknown {
                code: code::RELAY_SOURCE_PORT,
                data: vec![0, 0],
            },
            DhcpOption::RelayMsg(Box::new(Message::Client(inner))),
        ],
    })
    .emit()
    .unwrap()
}

/// Sends `m` through the fake relay and returns the inner reply, if one comes in time.
fn exchange(sock: &UdpSocket, server: SocketAddrV6, m: ClientMessage) -> Option<ClientMessage> {
    let xid = m.xid;
    sock.send_to(&relayed(m), server).ok()?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        let Ok(n) = sock.recv(&mut buf) else { continue };
        if let Ok(Message::Relay(r)) = Message::parse(&buf[..n])
            && let Some(Message::Client(c)) = r.relay_msg()
            && c.xid == xid
        {
            return Some(c.clone());
        }
    }
    None
}

fn client_id() -> DhcpOption {
    DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 7])
}

fn information_request(xid: u8) -> ClientMessage {
    ClientMessage {
        msg_type: msg::INFORMATION_REQUEST,
        xid: [1, 0, xid],
        options: vec![
            client_id(),
            DhcpOption::Oro(vec![code::DNS_SERVERS]),
            DhcpOption::ElapsedTime(0),
        ],
    }
}

/// A Solicit with Rapid Commit for one IA_NA.
fn rapid_solicit(xid: u8) -> ClientMessage {
    ClientMessage {
        msg_type: msg::SOLICIT,
        xid: [2, 0, xid],
        options: vec![
            client_id(),
            DhcpOption::RapidCommit,
            DhcpOption::ElapsedTime(0),
            DhcpOption::IaNa(Ia {
                iaid: 9,
                t1: 0,
                t2: 0,
                options: Vec::new(),
            }),
        ],
    }
}

/// The address a Reply (not an Advertise) bound in its IA_NA, if any.
fn bound_address(c: &ClientMessage) -> Option<Ipv6Addr> {
    if c.msg_type != msg::REPLY {
        return None;
    }
    c.options.iter().find_map(|o| match o {
        DhcpOption::IaNa(i) => i.options.iter().find_map(|s| match s {
            DhcpOption::IaAddr(a) if a.valid > 0 => Some(a.addr),
            _ => None,
        }),
        _ => None,
    })
}

fn has_dns(c: &ClientMessage) -> bool {
    c.options.iter().any(|o| {
        matches!(
            o,
            DhcpOption::Addresses {
                code: code::DNS_SERVERS,
                ..
            }
        )
    })
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn hup() {
    nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGHUP).unwrap();
}

/// Retries `f` until it returns `Some` or `secs` pass.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Starts the daemon on `lo` with `config` in `dir`; returns the config path and server address.
fn start(dir: &Path, config: &str) -> (std::path::PathBuf, SocketAddrV6) {
    let conf = dir.join("dhcp6.toml");
    write(&conf, config);
    let port = free_port();
    let opts = DaemonOptions {
        config_path: conf.clone(),
        interfaces: vec!["lo".into()],
        duid_file: dir.join("duid"),
        import_dhcp6s_duid: None,
        port,
        lease_file: dir.join("leases.journal"),
        stats: None,
        reload: None,
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(opts))
    });
    (conf, SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0))
}

/// A client socket on ::1 with a short receive timeout.
fn client() -> UdpSocket {
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    sock
}

#[test]
fn sighup_switches_between_stateless_and_stateful_on_the_same_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, server) = start(dir.path(), STATELESS);
    let sock = client();

    // Stateless: Information-Request answered with DNS; a Solicit binds nothing.
    let ir = eventually(10, || exchange(&sock, server, information_request(1)))
        .expect("stateless server did not answer");
    assert!(has_dns(&ir), "{ir:?}");
    let stateless_answer = exchange(&sock, server, rapid_solicit(1));
    assert_eq!(stateless_answer.as_ref().and_then(bound_address), None);

    // SIGHUP with pools: the same socket now hands out addresses from the pool.
    write(&conf, STATEFUL);
    hup();
    let addr = eventually(10, || {
        exchange(&sock, server, rapid_solicit(2)).and_then(|c| bound_address(&c))
    })
    .expect("no address after switching to stateful");
    let pool = u128::from("2001:db8:5::100".parse::<Ipv6Addr>().unwrap())
        ..=u128::from("2001:db8:5::1ff".parse::<Ipv6Addr>().unwrap());
    assert!(pool.contains(&u128::from(addr)), "{addr} not from the pool");
    assert!(
        std::fs::metadata(dir.path().join("leases.journal"))
            .unwrap()
            .len()
            > 0,
        "lease not in the journal"
    );
    // Information-Request still works in stateful mode.
    assert!(exchange(&sock, server, information_request(3)).is_some_and(|c| has_dns(&c)));

    // An invalid file is refused and the stateful service goes on.
    write(
        &conf,
        "[[interface]]\nname = \"lo\"\naddress_pools = [{ pool = \"missing\" }]\n",
    );
    hup();
    std::thread::sleep(Duration::from_millis(300));
    let again = exchange(&sock, server, rapid_solicit(2)).and_then(|c| bound_address(&c));
    assert_eq!(again, Some(addr), "same client, same lease, still stateful");

    // SIGHUP without pools: back to stateless on the same socket.
    write(&conf, STATELESS);
    hup();
    let back = eventually(10, || {
        let c = exchange(&sock, server, rapid_solicit(3))?;
        bound_address(&c).is_none().then_some(c)
    });
    assert!(back.is_some(), "still stateful after removing the pools");
    assert!(exchange(&sock, server, information_request(4)).is_some_and(|c| has_dns(&c)));
}

#[test]
fn expired_leases_are_reclaimed_by_the_timer_and_leave_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let short = STATEFUL.replace("preferred = 300, valid = 600", "preferred = 1, valid = 2");
    let (_conf, server) = start(dir.path(), &short);
    let sock = client();
    let addr = eventually(10, || {
        exchange(&sock, server, rapid_solicit(7)).and_then(|c| bound_address(&c))
    })
    .expect("no address from the pool");
    let journal = dir.path().join("leases.journal");
    let in_journal = |a: Ipv6Addr| {
        JournalStore::read(&journal)
            .unwrap()
            .iter()
            .any(|r| r.resource == v6h_lease::Resource::Addr(a))
    };
    assert!(in_journal(addr), "bound lease not in the journal");
    // No further message arrives: only the daemon's timer can remove it (valid = 2 s).
    let gone = eventually(8, || (!in_journal(addr)).then_some(()));
    assert!(
        gone.is_some(),
        "{addr} still in the journal after its valid lifetime"
    );
}

/// Issue 12 item 7 through the daemon: a journal with one flipped byte in the middle. The
/// daemon keeps every valid lease (a client after the damage renews its address with
/// Rebind), hands none of them to a new client, and leaves a copy of the damaged file.
#[test]
fn a_damaged_journal_keeps_its_valid_leases_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("leases.journal");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let base = u128::from("2001:db8:5::100".parse::<Ipv6Addr>().unwrap());
    let duid_of = |i: u32| vec![0, 3, 0, 1, 3, 0, 0, 0, (i >> 8) as u8, i as u8];
    let addr_of = |i: u32| Ipv6Addr::from(base + u128::from(i));
    {
        let s = JournalStore::open(&journal).unwrap();
        let puts = (0..200)
            .map(|i| {
                v6h_lease::Change::Put(v6h_lease::LeaseRecord {
                    link: "lo".into(),
                    duid: duid_of(i),
                    iaid: 9,
                    resource: v6h_lease::Resource::Addr(addr_of(i)),
                    state: v6h_lease::LeaseState::Bound,
                    preferred: 300,
                    valid: 600,
                    expires: now + 500,
                })
            })
            .collect();
        s.commit(puts).unwrap();
    }
    let mut bytes = std::fs::read(&journal).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&journal, &bytes).unwrap();

    let (_conf, server) = start(dir.path(), STATEFUL);
    let sock = client();
    // Client 150 (its record is after the damaged one) rebinds its address.
    let rebind = |xid: u8| ClientMessage {
        msg_type: msg::REBIND,
        xid: [3, 0, xid],
        options: vec![
            DhcpOption::ClientId(duid_of(150)),
            DhcpOption::ElapsedTime(0),
            DhcpOption::IaNa(Ia {
                iaid: 9,
                t1: 0,
                t2: 0,
                options: vec![DhcpOption::IaAddr(v6h_dhcp6::wire::IaAddr {
                    addr: addr_of(150),
                    preferred: 0,
                    valid: 0,
                    options: Vec::new(),
                })],
            }),
        ],
    };
    let got = eventually(10, || {
        exchange(&sock, server, rebind(1)).and_then(|c| bound_address(&c))
    });
    assert_eq!(
        got,
        Some(addr_of(150)),
        "the lease after the damage was kept"
    );
    // 199 of the 200 leases are live; a new client gets none of them.
    let kept: Vec<Ipv6Addr> = JournalStore::read(&journal)
        .unwrap()
        .iter()
        .filter_map(|r| match r.resource {
            v6h_lease::Resource::Addr(a) => Some(a),
            v6h_lease::Resource::Prefix(_) => None,
        })
        .collect();
    assert_eq!(kept.len(), 199);
    let fresh = exchange(&sock, server, rapid_solicit(9))
        .and_then(|c| bound_address(&c))
        .expect("a new client is served");
    assert!(!kept.contains(&fresh), "{fresh} was handed out again");
    let copies: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(copies.len(), 1, "one copy of the damaged journal");
    assert_eq!(std::fs::read(copies[0].path()).unwrap(), bytes);
}

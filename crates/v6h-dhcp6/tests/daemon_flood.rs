//! Issue 12 item 6 against the real daemon, in-process on loopback (no root needed): a
//! bounded flood of 50,000 Solicits from random DUIDs, sent through a relay-style socket to
//! `[::1]:<port>`. Every Solicit is answered, nothing is held for the Advertises, so the
//! process's resident memory stays flat and a real client's Request right after the flood
//! is served from the pool. Prints the RSS figures (run with `--nocapture` to see them).

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

use v6h_dhcp6::daemon::{DaemonOptions, run};
use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Ia, IaAddr, Message, RelayMessage, code, msg};

/// A /112 pool (65,536 addresses): larger than the flood, so held offers would have grown
/// with every Solicit.
const CONF: &str = r#"
[[interface]]
name = "lo"
address_pools = [{ pool = "p", preferred = 300, valid = 600 }]
[[pool]]
name = "p"
start = "2001:db8:6::"
end = "2001:db8:6::ffff"
"#;

const FLOOD: u32 = 50_000;

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

fn ia_na(addr: Option<Ipv6Addr>) -> DhcpOption {
    DhcpOption::IaNa(Ia {
        iaid: 1,
        t1: 0,
        t2: 0,
        options: addr
            .map(|a| {
                DhcpOption::IaAddr(IaAddr {
                    addr: a,
                    preferred: 0,
                    valid: 0,
                    options: Vec::new(),
                })
            })
            .into_iter()
            .collect(),
    })
}

fn solicit(duid: Vec<u8>, xid: [u8; 3]) -> Vec<u8> {
    relayed(ClientMessage {
        msg_type: msg::SOLICIT,
        xid,
        options: vec![
            DhcpOption::ClientId(duid),
            DhcpOption::ElapsedTime(0),
            ia_na(None),
        ],
    })
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The inner message of a Relay-Repl.
fn inner(buf: &[u8]) -> Option<ClientMessage> {
    match Message::parse(buf).ok()? {
        Message::Relay(r) => match r.relay_msg()? {
            Message::Client(c) => Some(c.clone()),
            Message::Relay(_) => None,
        },
        Message::Client(_) => None,
    }
}

fn first_addr(c: &ClientMessage) -> Option<Ipv6Addr> {
    c.options.iter().find_map(|o| match o {
        DhcpOption::IaNa(i) => i.options.iter().find_map(|s| match s {
            DhcpOption::IaAddr(a) if a.valid > 0 => Some(a.addr),
            _ => None,
        }),
        _ => None,
    })
}

/// Sends `n` Solicits from random DUIDs, keeping at most `window` unanswered; returns the
/// number of Advertises received.
fn flood(sock: &UdpSocket, server: SocketAddrV6, first: u32, n: u32, window: u32) -> u32 {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(first);
    let mut buf = [0u8; 2048];
    let (mut sent, mut got) = (0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(120);
    while got < n && Instant::now() < deadline {
        while sent < n && sent - got < window {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut duid = vec![0, 4];
            duid.extend_from_slice(&rng.to_be_bytes());
            duid.extend_from_slice(&rng.rotate_left(17).to_be_bytes());
            let i = first + sent;
            sock.send_to(
                &solicit(duid, [(i >> 16) as u8, (i >> 8) as u8, i as u8]),
                server,
            )
            .unwrap();
            sent += 1;
        }
        match sock.recv(&mut buf) {
            Ok(len) => {
                if inner(&buf[..len]).is_some_and(|c| c.msg_type == msg::ADVERTISE) {
                    got += 1;
                }
            }
            // A lost datagram: allow the window to move on.
            Err(_) => got = got.max(sent.saturating_sub(window / 2)).min(sent),
        }
    }
    got
}

#[test]
fn a_random_duid_solicit_flood_leaves_memory_flat_and_the_pool_free() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dhcp6.toml");
    std::fs::write(&conf, CONF).unwrap();
    let port = UdpSocket::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = DaemonOptions {
        config_path: conf,
        interfaces: vec!["lo".into()],
        duid_file: dir.path().join("duid"),
        import_dhcp6s_duid: None,
        port,
        lease_file: dir.path().join("leases.journal"),
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
    let server = SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0);
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = sock.set_nonblocking(false);

    // Warm up (allocator, socket buffers, first batches) before the baseline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut warm = 0;
    while warm == 0 && Instant::now() < deadline {
        warm = flood(&sock, server, 0, 1, 1);
    }
    assert_eq!(warm, 1, "daemon did not answer");
    flood(&sock, server, 1, 2_000, 64);
    let before = rss_kib();
    let started = Instant::now();
    let answered = flood(&sock, server, 10_000, FLOOD, 64);
    let secs = started.elapsed().as_secs_f64();
    let after = rss_kib();
    eprintln!(
        "flood: {answered}/{FLOOD} Solicits answered in {secs:.1} s; RSS {before} KiB before, \
         {after} KiB after (+{} KiB)",
        after.saturating_sub(before)
    );
    assert!(answered >= FLOOD * 99 / 100, "{answered} answered");
    // Held offers took ~550 bytes each (50k: ~27 MB); nothing is held now.
    assert!(
        after.saturating_sub(before) < 4 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    // Nothing was written to the journal for the Advertises.
    let leases = v6h_lease::JournalStore::read(dir.path().join("leases.journal")).unwrap();
    assert!(
        leases.is_empty(),
        "{} leases after Advertises",
        leases.len()
    );

    // A real client right after the flood: Solicit, then Request of the advertised address.
    let duid = vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 9];
    sock.send_to(&solicit(duid.clone(), [7, 7, 7]), server)
        .unwrap();
    let mut buf = [0u8; 2048];
    let adv = loop {
        let len = sock.recv(&mut buf).expect("advertise");
        if let Some(c) = inner(&buf[..len])
            && c.xid == [7, 7, 7]
        {
            break c;
        }
    };
    let offered = first_addr(&adv).expect("an address offered");
    let server_id = adv
        .options
        .iter()
        .find(|o| matches!(o, DhcpOption::ServerId(_)))
        .unwrap()
        .clone();
    let req = relayed(ClientMessage {
        msg_type: msg::REQUEST,
        xid: [8, 8, 8],
        options: vec![
            DhcpOption::ClientId(duid),
            server_id,
            DhcpOption::ElapsedTime(0),
            ia_na(Some(offered)),
        ],
    });
    sock.send_to(&req, server).unwrap();
    let reply = loop {
        let len = sock.recv(&mut buf).expect("reply");
        if let Some(c) = inner(&buf[..len])
            && c.xid == [8, 8, 8]
        {
            break c;
        }
    };
    assert_eq!(reply.msg_type, msg::REPLY);
    assert_eq!(first_addr(&reply), Some(offered));
}

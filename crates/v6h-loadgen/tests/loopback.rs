//! The IO loop end to end over the loopback interface: a fake DHCPv6 server thread (built on
//! the server crate's codec) answers on `[::1]`, the generator sends unicast to it from an
//! ephemeral port. Needs no namespace and no privileges beyond `SO_BINDTODEVICE` on `lo`
//! (unprivileged since Linux 5.7); skipped with a message where that is refused.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use v6h_dhcp6::wire::{self as dw, DhcpOption, Ia, IaAddr, Message};
use v6h_loadgen::core::{Config, Generator};
use v6h_loadgen::io::{self, IoError, IoOptions};
use v6h_loadgen::wire::{DuidKind, Mode};

/// Answers Solicits with Advertise and Requests with Reply (one address each); ignores
/// every `skip_every`-th Solicit (0: none). Returns the port and a stop flag.
fn fake_server(skip_every: u64) -> (u16, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut solicits = 0u64;
        let mut next_addr = 1u16;
        while !stop2.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(Message::Client(c)) = Message::parse(&buf[..n]) else {
                continue;
            };
            let ty = match c.msg_type {
                dw::msg::SOLICIT => {
                    solicits += 1;
                    if skip_every > 0 && solicits.is_multiple_of(skip_every) {
                        continue;
                    }
                    dw::msg::ADVERTISE
                }
                dw::msg::REQUEST => dw::msg::REPLY,
                _ => continue,
            };
            next_addr = next_addr.wrapping_add(1);
            let reply = Message::Client(dw::ClientMessage {
                msg_type: ty,
                xid: c.xid,
                options: vec![
                    DhcpOption::ServerId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
                    c.option(dw::code::CLIENTID).unwrap().clone(),
                    DhcpOption::IaNa(Ia {
                        iaid: 1,
                        t1: 1000,
                        t2: 2000,
                        options: vec![DhcpOption::IaAddr(IaAddr {
                            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, next_addr),
                            preferred: 3000,
                            valid: 4000,
                            options: vec![],
                        })],
                    }),
                ],
            })
            .emit()
            .unwrap();
            let _ = sock.send_to(&reply, from);
        }
    });
    (port, stop, h)
}

fn run(skip_every: u64, wake_on_rx: bool) -> Option<(v6h_loadgen::core::Stats, io::IoReport)> {
    let (port, stop, h) = fake_server(skip_every);
    let mut g = Generator::new(Config {
        mode: Mode::AddressOnly,
        rate: 2000,
        duration_us: 250_000,
        timeout_us: 300_000,
        duid: DuidKind::Ll,
        first_client: 0,
        max_pending: 100_000,
        max_burst: 4096,
        xid_seed: 7,
    });
    let opts = IoOptions {
        interface: "lo".into(),
        bind_port: 0,
        server: Some(Ipv6Addr::LOCALHOST),
        server_port: port,
        slice_us: 1000,
        wake_on_rx,
    };
    let res = io::run(&mut g, &opts);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    match res {
        Ok(rep) => Some((g.stats().clone(), rep)),
        Err(IoError::Socket {
            what: "SO_BINDTODEVICE",
            error,
        }) => {
            eprintln!("skipping: SO_BINDTODEVICE on lo refused: {error}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn loopback_exchanges_complete() {
    // The fake server must see IPv6 loopback.
    if UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let Some((s, rep)) = run(0, false) else {
        return;
    };
    assert_eq!(s.solicits, 500);
    assert_eq!((s.advertises, s.requests, s.replies), (500, 500, 500));
    assert_eq!((s.solicit_drops, s.request_drops, s.rejected), (0, 0, 0));
    assert_eq!(s.drops_pct(), 0.0);
    assert!((s.completed_per_s(250_000) - 2000.0).abs() < 1e-9);
    assert_eq!(rep.received, 1000);
    assert_eq!(rep.send_errors, 0);
    // Done as soon as everything is answered, not after the timeout.
    assert!(rep.elapsed_us < 250_000 + 200_000, "{}", rep.elapsed_us);
}

#[test]
fn loopback_counts_ignored_solicits_as_drops() {
    if UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let Some((s, _)) = run(10, true) else { return };
    assert_eq!(s.solicits, 500);
    assert_eq!(s.solicit_drops, 50);
    assert_eq!((s.advertises, s.requests, s.replies), (450, 450, 450));
    assert_eq!(s.request_drops, 0);
    assert!((s.drops_pct() - 100.0 * 50.0 / 950.0).abs() < 1e-9);
}

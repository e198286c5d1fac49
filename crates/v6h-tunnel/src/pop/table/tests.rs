use super::*;
use proptest::prelude::*;

const PW: &str = "0123456789abcdef0123456789abcdef";
const EPOCH: u64 = 0x6b08a151;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Spec §10.1 forward sent by AICCU (client ::2 → PoP ::1, echo reply).
const FWD_10_1: &str = "415211296b08a15120010db802ff00010000000000000002c0529bf91c52a862ecf94ef65038348f0bf24759\
                        6003d21d00123a4020010db802ff0001000000000000000220010db802ff000100000000000000018100c7004242000161796979612d74657374";
/// Spec §10.1 keepalive.
const KA_10_1: &str =
    "4152103b6b08a15120010db802ff00010000000000000002d5d2f2cc6cb658ae96fd295f1d7fcb1f8348b076";
/// Spec §10.2 PoP → client forward.
const FWD_10_2: &str = "415211296b08a15120010db802ff0001000000000000000109bdaf6cb3b7205602a59b1c17a8191c55ff3689\
                        6000000000123a4020010db802ff0001000000000000000120010db802ff00010000000000000002\
                        8000c8004242000161796979612d74657374";

fn t1() -> Tunnel {
    Tunnel {
        id: 1,
        owner: "lab".into(),
        prefix: "2001:db8:2ff:1::/64".parse().unwrap(),
        subnets: vec!["2001:db8:1234::/48".parse().unwrap()],
        mtu: 1280,
        heartbeat: 60,
        password: PW.into(),
        admin: AdminState::Enabled,
        name: None,
    }
}

fn t2(admin: AdminState) -> Tunnel {
    Tunnel {
        id: 2,
        prefix: "2001:db8:2ff:2::/64".parse().unwrap(),
        subnets: vec!["2001:db8:1234:8000::/49".parse().unwrap()],
        admin,
        password: "other".into(),
        ..t1()
    }
}

fn ep(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new([198, 51, 100, 2].into(), port)
}

fn client_addr() -> Ipv6Addr {
    "2001:db8:2ff:1::2".parse().unwrap()
}

fn ipv6(src: &str, dst: &str, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(40)];
    p[0] = 0x60;
    let pl = u16::try_from(p.len() - 40).unwrap();
    p[4..6].copy_from_slice(&pl.to_be_bytes());
    p[6] = 59;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    p
}

#[test]
fn spec_vectors_are_accepted_and_learn_endpoint() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let fwd = unhex(FWD_10_1);
    match t.handle_datagram(EPOCH, ep(40000), &fwd) {
        InAction::Deliver(inner) => assert_eq!(inner, &fwd[44..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.state(0), Some(TunnelState::Up));
    assert_eq!(t.endpoint(0), Some(ep(40000)));
    let ka = unhex(KA_10_1);
    assert_eq!(
        t.handle_datagram(EPOCH + 1, ep(40001), &ka),
        InAction::Consumed
    );
    assert_eq!(t.endpoint(0), Some(ep(40001)), "NAT rebinding re-learned");
    let c = t.counters(0).unwrap();
    assert_eq!(
        (c.packets_in, c.beats, c.endpoint_changes, c.bytes_in),
        (2, 1, 1, 58)
    );
}

#[test]
fn encapsulate_matches_spec_vector_10_2() {
    let mut t = PopTable::new(&[t1()], 120, None);
    t.handle_datagram(EPOCH, ep(40000), &unhex(KA_10_1));
    let want = unhex(FWD_10_2);
    let inner = &want[44..];
    let mut icmp = [0u8; 1280];
    let OutAction::Send { tunnel, endpoint } = t.route_outbound(inner, &mut icmp) else {
        panic!("not routed");
    };
    assert_eq!((tunnel, endpoint), (0, ep(40000)));
    let mut buf = vec![0u8; 44 + inner.len()];
    buf[44..].copy_from_slice(inner);
    assert!(t.encapsulate(tunnel, EPOCH, &mut buf));
    assert_eq!(buf, want);
    assert_eq!(t.counters(0).unwrap().packets_out, 1);
}

#[test]
fn attacks_are_dropped_and_counted_without_learning() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let good = unhex(FWD_10_1);
    // Forged signature.
    let mut forged = good.clone();
    forged[30] ^= 1;
    assert_eq!(
        t.handle_datagram(EPOCH, ep(1), &forged),
        InAction::Drop(PopDrop::Ayiya(DropReason::BadSignature))
    );
    // Stale epoch (signature recomputed so only the clock is wrong).
    let key = SigningKey::from_password(PW.as_bytes());
    let stale = client_datagram(&key, client_addr(), (EPOCH - 121) as u32, Some(&good[44..]));
    assert_eq!(
        t.handle_datagram(EPOCH, ep(1), &stale),
        InAction::Drop(PopDrop::Ayiya(DropReason::ClockSkew))
    );
    let edge = client_datagram(&key, client_addr(), (EPOCH - 120) as u32, None);
    assert_eq!(
        t.handle_datagram(EPOCH, ep(7), &edge),
        InAction::Consumed,
        "exactly 120 s passes"
    );
    let mut t = PopTable::new(&[t1()], 120, None);
    // Unknown identity.
    let unknown = client_datagram(
        &key,
        "2001:db8:2ff:9::2".parse().unwrap(),
        EPOCH as u32,
        None,
    );
    assert_eq!(
        t.handle_datagram(EPOCH, ep(1), &unknown),
        InAction::Drop(PopDrop::Ayiya(DropReason::UnknownTunnel))
    );
    // Truncated at every length 0..=44 (and inner-truncated up to 83).
    for n in 0..84 {
        assert!(
            matches!(
                t.handle_datagram(EPOCH, ep(1), &good[..n]),
                InAction::Drop(_)
            ),
            "len {n}"
        );
    }
    // Spoofed inner source.
    let spoof = ipv6("2001:db8:666::1", "2001:db8:ffff::80", 60);
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&spoof));
    assert_eq!(
        t.handle_datagram(EPOCH, ep(9), &d),
        InAction::Drop(PopDrop::SpoofedSource)
    );
    // Nothing was learned from the invalid packets; the spoofed one was signed, so it was.
    assert_eq!(t.endpoint(0), Some(ep(9)));
    let c = t.counters(0).unwrap();
    assert_eq!(c.drops.get(PopDrop::SpoofedSource), 1);
    let g = t.global_drops();
    assert_eq!(g.get(PopDrop::Ayiya(DropReason::UnknownTunnel)), 1);
    assert!(g.get(PopDrop::Ayiya(DropReason::Truncated)) >= 45);
    let st = t.status(EPOCH);
    assert_eq!(st.tunnels[0].drops.get("spoofed_source"), Some(&1));
    assert!(st.global_drops.contains_key("truncated"));
}

#[test]
fn forged_packet_never_moves_endpoint() {
    let mut t = PopTable::new(&[t1()], 120, None);
    t.handle_datagram(EPOCH, ep(1000), &unhex(KA_10_1));
    let mut forged = unhex(KA_10_1);
    forged[43] ^= 0xff;
    t.handle_datagram(EPOCH, ep(6666), &forged);
    assert_eq!(t.endpoint(0), Some(ep(1000)));
}

#[test]
fn routed_subnet_and_link_local_sources() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let from_lan = ipv6("2001:db8:1234::10", "2001:db8:ffff::80", 80);
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&from_lan));
    assert!(matches!(
        t.handle_datagram(EPOCH, ep(1), &d),
        InAction::Deliver(_)
    ));
    // Router solicitation from the kernel's link-local to ff02::2: valid, consumed.
    let rs = ipv6("fe80::1", "ff02::2", 56);
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&rs));
    assert_eq!(t.handle_datagram(EPOCH, ep(1), &d), InAction::Consumed);
    assert_eq!(t.counters(0).unwrap().drops.total(), 0);
}

#[test]
fn longest_prefix_match() {
    let t = PopTable::new(&[t1(), t2(AdminState::Enabled)], 120, None);
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    assert_eq!(t.lookup_route(a("2001:db8:2ff:1::2")), Some(0));
    assert_eq!(t.lookup_route(a("2001:db8:2ff:2::77")), Some(1));
    assert_eq!(t.lookup_route(a("2001:db8:1234:1::1")), Some(0));
    assert_eq!(
        t.lookup_route(a("2001:db8:1234:8001::1")),
        Some(1),
        "/49 beats /48"
    );
    assert_eq!(t.lookup_route(a("2001:db8:2ff:3::1")), None);
    assert_eq!(t.lookup_identity(a("2001:db8:2ff:2::2")), Some(1));
    assert_eq!(
        t.lookup_identity(a("2001:db8:2ff:2::3")),
        None,
        "full 128-bit identity"
    );
}

#[test]
fn unreachable_and_too_big() {
    let fallback: Ipv6Addr = "2001:db8:ff00::1".parse().unwrap();
    let mut t = PopTable::new(&[t1(), t2(AdminState::Disabled)], 120, Some(fallback));
    let mut icmp = [0u8; 1500];
    let to = |dst: &str, len: usize| ipv6("2001:db8:ffff::80", dst, len);
    // Down: code 0 from the tunnel's ::1.
    let p = to("2001:db8:2ff:1::2", 100);
    let OutAction::Icmp { len, reason } = t.route_outbound(&p, &mut icmp) else {
        panic!()
    };
    assert_eq!(reason, PopDrop::TunnelDown);
    assert_eq!((icmp[40], icmp[41]), (1, 0));
    assert_eq!(
        &icmp[8..24],
        &"2001:db8:2ff:1::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(&icmp[24..40], &p[8..24]);
    assert_eq!(len, 48 + 100);
    // Disabled: code 1.
    let OutAction::Icmp { reason, .. } = t.route_outbound(&to("2001:db8:2ff:2::2", 100), &mut icmp)
    else {
        panic!()
    };
    assert_eq!((reason, icmp[41]), (PopDrop::TunnelDisabled, 1));
    // No tunnel: code 3 from the fallback address.
    let OutAction::Icmp { reason, .. } = t.route_outbound(&to("2001:db8:2ff:3::2", 100), &mut icmp)
    else {
        panic!()
    };
    assert_eq!((reason, icmp[41]), (PopDrop::NoTunnel, 3));
    assert_eq!(&icmp[8..24], &fallback.octets());
    // Up, oversize: Packet Too Big with the tunnel MTU.
    t.handle_datagram(EPOCH, ep(5), &unhex(KA_10_1));
    let OutAction::Icmp { reason, .. } =
        t.route_outbound(&to("2001:db8:2ff:1::2", 1281), &mut icmp)
    else {
        panic!()
    };
    assert_eq!((reason, icmp[40]), (PopDrop::TooBig, 2));
    assert_eq!(&icmp[44..48], &1280u32.to_be_bytes());
    assert!(matches!(
        t.route_outbound(&to("2001:db8:2ff:1::2", 1280), &mut icmp),
        OutAction::Send { .. }
    ));
    // Garbage from the TUN.
    assert_eq!(
        t.route_outbound(&[0x45; 60], &mut icmp),
        OutAction::Drop(PopDrop::BadOutbound)
    );
    // Disabled tunnels ignore even valid AYIYA.
    let key = SigningKey::from_password(b"other");
    let d = client_datagram(
        &key,
        "2001:db8:2ff:2::2".parse().unwrap(),
        EPOCH as u32,
        None,
    );
    assert_eq!(
        t.handle_datagram(EPOCH, ep(5), &d),
        InAction::Drop(PopDrop::Ayiya(DropReason::TunnelDisabled))
    );
}

/// Fake-clock simulation: beats every 60 s keep the tunnel up; after the client stops, the
/// tunnel goes down exactly at lastbeat + 120 and traffic then gets ICMPv6 no-route.
#[test]
fn simulation_up_then_down_after_missed_beats() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let mut now = EPOCH;
    assert_eq!(t.poll_timeout(), None);
    let mut last = now;
    for _ in 0..10 {
        let ka = client_datagram(&key, client_addr(), now as u32, None);
        assert_eq!(t.handle_datagram(now, ep(2000), &ka), InAction::Consumed);
        last = now;
        assert_eq!(t.poll_timeout(), Some(now + 120));
        now += 60;
        assert_eq!(t.handle_timeout(now), 0);
        assert_eq!(t.state(0), Some(TunnelState::Up));
    }
    // Client stops. Step the clock one second at a time.
    while now < last + 119 {
        now += 1;
        assert_eq!(t.handle_timeout(now), 0, "at {}", now - last);
    }
    now += 1;
    assert_eq!(t.handle_timeout(now), 1);
    assert_eq!(t.state(0), Some(TunnelState::Down));
    assert_eq!(t.poll_timeout(), None);
    let mut icmp = [0u8; 1280];
    let p = ipv6("2001:db8:ffff::80", "2001:db8:1234::10", 64);
    assert!(matches!(
        t.route_outbound(&p, &mut icmp),
        OutAction::Icmp {
            reason: PopDrop::TunnelDown,
            ..
        }
    ));
    // A beat from a new NAT port brings it back.
    let ka = client_datagram(&key, client_addr(), now as u32, None);
    t.handle_datagram(now, ep(2001), &ka);
    assert_eq!(t.state(0), Some(TunnelState::Up));
    assert!(
        matches!(t.route_outbound(&p, &mut icmp), OutAction::Send { endpoint, .. } if endpoint == ep(2001))
    );
}

#[test]
fn reload_keeps_live_state() {
    let mut t = PopTable::new(&[t1()], 120, None);
    t.handle_datagram(EPOCH, ep(5), &unhex(KA_10_1));
    t.reload(&[t1(), t2(AdminState::Enabled)]);
    assert_eq!(t.len(), 2);
    assert_eq!(t.state(0), Some(TunnelState::Up));
    assert_eq!(t.endpoint(0), Some(ep(5)));
    assert_eq!(t.state(1), Some(TunnelState::Down));
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic_or_learn(data in proptest::collection::vec(any::<u8>(), 0..200), port in any::<u16>()) {
        let mut t = PopTable::new(&[t1()], 120, None);
        let r = t.handle_datagram(EPOCH, ep(port), &data);
        prop_assert!(matches!(r, InAction::Drop(_)));
        prop_assert_eq!(t.endpoint(0), None);
        let mut icmp = [0u8; 1280];
        let _ = t.route_outbound(&data, &mut icmp);
    }

    #[test]
    fn any_signed_inner_from_own_prefix_is_delivered(iid in any::<u64>(), len in 40usize..1300) {
        let mut t = PopTable::new(&[t1()], 120, None);
        let key = SigningKey::from_password(PW.as_bytes());
        let src = Ipv6Addr::from((u128::from("2001:db8:1234::".parse::<Ipv6Addr>().unwrap())) | u128::from(iid));
        let inner = ipv6(&src.to_string(), "2001:db8:ffff::80", len);
        let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&inner));
        prop_assert_eq!(t.handle_datagram(EPOCH + 5, ep(1), &d), InAction::Deliver(&d[44..]));
    }
}

/// Issue 12: a keepalive captured from the client and replayed from another IPv4 address
/// within the ±120 s window used to move the endpoint to the attacker. Now it is dropped and
/// counted as `replay`, whether it is an exact duplicate or just older than the newest packet.
#[test]
fn replayed_packet_from_another_address_never_moves_endpoint() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let attacker = SocketAddrV4::new([203, 0, 113, 66].into(), 5555);
    let captured = client_datagram(&key, client_addr(), EPOCH as u32, None);
    assert_eq!(
        t.handle_datagram(EPOCH, ep(40000), &captured),
        InAction::Consumed
    );
    // Exact duplicate, same second.
    assert_eq!(
        t.handle_datagram(EPOCH, attacker, &captured),
        InAction::Drop(PopDrop::Replay)
    );
    assert_eq!(t.endpoint(0), Some(ep(40000)));
    // The client goes on; replays of the captured packet later in the window are older.
    for s in 1..=120 {
        let ka = client_datagram(&key, client_addr(), (EPOCH + s) as u32, None);
        assert_eq!(
            t.handle_datagram(EPOCH + s, ep(40000), &ka),
            InAction::Consumed
        );
        assert_eq!(
            t.handle_datagram(EPOCH + s, attacker, &captured),
            InAction::Drop(PopDrop::Replay),
            "at +{s} s"
        );
        assert_eq!(t.endpoint(0), Some(ep(40000)));
    }
    // A forward repeated from the client's own address is not delivered twice; it is a
    // duplicate (hosts send byte-identical packets, e.g. TCP resets), not a replay attack.
    let inner = ipv6("2001:db8:2ff:1::2", "2001:db8:ffff::80", 60);
    let fwd = client_datagram(&key, client_addr(), (EPOCH + 120) as u32, Some(&inner));
    assert!(matches!(
        t.handle_datagram(EPOCH + 120, ep(40000), &fwd),
        InAction::Deliver(_)
    ));
    assert_eq!(
        t.handle_datagram(EPOCH + 120, ep(40000), &fwd),
        InAction::Drop(PopDrop::Duplicate)
    );
    let c = t.counters(0).unwrap();
    assert_eq!(c.drops.get(PopDrop::Replay), 121);
    assert_eq!(c.drops.get(PopDrop::Duplicate), 1);
    assert_eq!(c.endpoint_changes, 0);
    assert_eq!(c.beats, 121, "replays are not counted as beats");
    assert_eq!(t.status(EPOCH).tunnels[0].drops.get("replay"), Some(&121));
    assert_eq!(t.status(EPOCH).tunnels[0].drops.get("duplicate"), Some(&1));
    // The broker's status keeps showing the client, and outbound traffic goes there.
    let mut icmp = [0u8; 1280];
    let p = ipv6("2001:db8:ffff::80", "2001:db8:2ff:1::2", 64);
    assert!(matches!(
        t.route_outbound(&p, &mut icmp),
        OutAction::Send { endpoint, .. } if endpoint == ep(40000)
    ));
}

/// Real NAT rebinding still moves the endpoint with the client's first fresh packet from the
/// new port, also within the same second as its last packet from the old port.
#[test]
fn nat_rebinding_moves_endpoint_at_once() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let inner = |n: u8| {
        let mut p = ipv6("2001:db8:1234::10", "2001:db8:ffff::80", 64);
        p[50] = n;
        p
    };
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&inner(1)));
    assert!(matches!(
        t.handle_datagram(EPOCH, ep(40000), &d),
        InAction::Deliver(_)
    ));
    // Same second, new port, new packet: moves.
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&inner(2)));
    assert!(matches!(
        t.handle_datagram(EPOCH, ep(40001), &d),
        InAction::Deliver(_)
    ));
    assert_eq!(t.endpoint(0), Some(ep(40001)));
    // Next second, yet another port (conntrack flushed again): moves.
    let d = client_datagram(&key, client_addr(), (EPOCH + 1) as u32, None);
    assert_eq!(
        t.handle_datagram(EPOCH + 1, ep(40002), &d),
        InAction::Consumed
    );
    assert_eq!(t.endpoint(0), Some(ep(40002)));
    assert_eq!(t.counters(0).unwrap().endpoint_changes, 2);
    assert_eq!(t.counters(0).unwrap().drops.total(), 0);
}

/// Unmodified AICCU stamps whole seconds and sends many packets per second: all of them are
/// delivered, and replaying any of them from elsewhere never takes the endpoint.
#[test]
fn aiccu_many_packets_per_second_flow_and_replays_do_not_steal() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let attacker = SocketAddrV4::new([203, 0, 113, 66].into(), 5555);
    let mut sent = Vec::new();
    for s in 0..3u64 {
        for n in 0..200u16 {
            let mut p = ipv6("2001:db8:1234::10", "2001:db8:ffff::80", 64);
            p[48..50].copy_from_slice(&n.to_be_bytes());
            let d = client_datagram(&key, client_addr(), (EPOCH + s) as u32, Some(&p));
            assert!(
                matches!(
                    t.handle_datagram(EPOCH + s, ep(40000), &d),
                    InAction::Deliver(_)
                ),
                "packet {n} of second {s}"
            );
            sent.push(d);
            // The attacker replays each packet right after it was captured.
            let r = t.handle_datagram(EPOCH + s, attacker, sent.last().unwrap());
            assert!(
                matches!(r, InAction::Drop(PopDrop::Replay) | InAction::Deliver(_)),
                "{r:?}"
            );
            assert_eq!(t.endpoint(0), Some(ep(40000)));
        }
    }
    // Later, every captured packet is refused: older seconds are stale, and the last second
    // is past its grace.
    for d in &sent {
        assert_eq!(
            t.handle_datagram(EPOCH + 5, attacker, d),
            InAction::Drop(PopDrop::Replay)
        );
    }
    assert_eq!(t.endpoint(0), Some(ep(40000)));
    assert_eq!(t.counters(0).unwrap().endpoint_changes, 0);
    assert!(t.counters(0).unwrap().bytes_in >= 600 * 64);
}

/// A validly signed packet whose inner source is the PoP's own tunnel address is dropped.
#[test]
fn inner_source_of_the_pop_itself_is_dropped_and_counted() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let p = ipv6("2001:db8:2ff:1::1", "2001:db8:ffff::80", 60);
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&p));
    assert_eq!(
        t.handle_datagram(EPOCH, ep(1), &d),
        InAction::Drop(PopDrop::PopSource)
    );
    assert_eq!(t.counters(0).unwrap().drops.get(PopDrop::PopSource), 1);
    assert_eq!(t.status(EPOCH).tunnels[0].drops.get("pop_source"), Some(&1));
    // Other addresses of the /64 are still the client's.
    let p = ipv6("2001:db8:2ff:1::3", "2001:db8:ffff::80", 60);
    let d = client_datagram(&key, client_addr(), EPOCH as u32, Some(&p));
    assert!(matches!(
        t.handle_datagram(EPOCH, ep(1), &d),
        InAction::Deliver(_)
    ));
}

#[test]
fn drop_labels_are_distinct_and_indexed() {
    let all = PopDrop::all();
    for (i, d) in all.iter().enumerate() {
        assert_eq!(d.index(), i, "{d:?}");
    }
    let labels: std::collections::HashSet<&str> = all.iter().map(PopDrop::as_str).collect();
    assert_eq!(labels.len(), DROP_KINDS);
}

#[test]
fn replay_memory_per_tunnel_is_small() {
    let n = std::mem::size_of::<EndpointGuard<SocketAddrV4>>();
    assert!(n <= 112, "{n} bytes");
}

/// AICCU's three back-to-back keepalives at start are byte-identical (same second): all three
/// count as beats from the client's address, while the same bytes from elsewhere are replays.
#[test]
fn identical_start_keepalives_are_beats_not_replays() {
    let mut t = PopTable::new(&[t1()], 120, None);
    let key = SigningKey::from_password(PW.as_bytes());
    let ka = client_datagram(&key, client_addr(), EPOCH as u32, None);
    for _ in 0..3 {
        assert_eq!(t.handle_datagram(EPOCH, ep(40000), &ka), InAction::Consumed);
    }
    let attacker = SocketAddrV4::new([203, 0, 113, 66].into(), 5555);
    assert_eq!(
        t.handle_datagram(EPOCH, attacker, &ka),
        InAction::Drop(PopDrop::Replay)
    );
    let c = t.counters(0).unwrap();
    assert_eq!((c.beats, c.drops.get(PopDrop::Replay)), (3, 1));
    assert_eq!(t.endpoint(0), Some(ep(40000)));
}

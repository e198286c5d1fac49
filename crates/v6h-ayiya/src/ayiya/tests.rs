//! Unit tests: spec §10.1, §10.2, §10.5 vectors, negatives, and proptest round-trips.

use super::*;
use proptest::prelude::*;

const PASSWORD: &[u8] = b"0123456789abcdef0123456789abcdef";
const EPOCH: u32 = 0x6b08a151;
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 2);
const POP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 1);

const KEEPALIVE_HEX: &str =
    "4152103b6b08a15120010db802ff00010000000000000002d5d2f2cc6cb658ae96fd295f1d7fcb1f8348b076";
const FORWARD_HEX: &str = concat!(
    "415211296b08a15120010db802ff00010000000000000002c0529bf91c52a862ecf94ef65038348f0bf24759",
    "6003d21d00123a4020010db802ff0001000000000000000220010db802ff000100000000000000018100c7004242000161796979612d74657374"
);
const POP_FORWARD_HEX: &str = concat!(
    "415211296b08a15120010db802ff00010000000000000001",
    "09bdaf6cb3b7205602a59b1c17a8191c55ff3689",
    "6000000000123a4020010db802ff0001000000000000000120010db802ff00010000000000000002",
    "8000c8004242000161796979612d74657374"
);

fn key() -> SigningKey {
    SigningKey::from_password(PASSWORD)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn v10_1_key_derivation() {
    assert_eq!(
        hex::encode(key().as_bytes()),
        "b1775a785f09a6ebaf2dc33d6eaeb98974d9cdb8"
    );
}

#[test]
fn v10_1_keepalive_emit_and_sign_matches_aiccu() {
    let mut buf = [0u8; HEADER_LEN];
    key()
        .seal(&Repr::keepalive(CLIENT, EPOCH), &mut buf)
        .unwrap();
    assert_eq!(hex::encode(buf), KEEPALIVE_HEX);
    assert!(key().verify(&buf));
    assert_eq!(key().keepalive(CLIENT, EPOCH), buf);
    assert_eq!(SigningKey::from_key_bytes(*key().as_bytes()), key());
}

#[test]
fn v10_1_forward_encapsulate_in_place_matches_aiccu() {
    let expected = unhex(FORWARD_HEX);
    assert_eq!(expected.len(), 102);
    // Inner packet already in the buffer after 44 bytes of headroom.
    let mut buf = vec![0xffu8; 102];
    buf[HEADER_LEN..].copy_from_slice(&expected[HEADER_LEN..]);
    key()
        .seal(&Repr::forward6(CLIENT, EPOCH), &mut buf)
        .unwrap();
    assert_eq!(buf, expected);
}

#[test]
fn v10_1_forward_parse_fields() {
    let bytes = unhex(FORWARD_HEX);
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(p.id_len(), 4);
    assert_eq!(p.id_type(), IdType::Integer);
    assert_eq!(p.sig_len(), 5);
    assert_eq!(p.hash_method(), HashMethod::Sha1);
    assert_eq!(p.auth_method(), AuthMethod::SharedSecret);
    assert_eq!(p.opcode(), OpCode::Forward);
    assert_eq!(p.next_header(), NextHeader::Ipv6);
    assert_eq!(p.epoch(), 1795727697);
    assert_eq!(p.identity(), CLIENT);
    assert_eq!(
        hex::encode(p.signature()),
        "c0529bf91c52a862ecf94ef65038348f0bf24759"
    );
    assert_eq!(p.payload().len(), 58);
    assert_eq!(Repr::parse(&p).unwrap(), Repr::forward6(CLIENT, EPOCH));
}

#[test]
fn v10_2_pop_forward_and_client_accepts() {
    let expected = unhex(POP_FORWARD_HEX);
    assert_eq!(expected.len(), 102);
    let mut buf = expected.clone();
    buf[..HEADER_LEN].fill(0);
    key().seal(&Repr::forward6(POP, EPOCH), &mut buf).unwrap();
    assert_eq!(buf, expected);
    let v = validate_from_pop(&expected, EPOCH as u64, POP, &key()).unwrap();
    assert_eq!(v.repr, Repr::forward6(POP, EPOCH));
    assert_eq!(v.delivery, Delivery::Ipv6(&expected[HEADER_LEN..]));
}

#[test]
fn pop_accepts_client_forward_and_keepalive() {
    let fwd = unhex(FORWARD_HEX);
    let p = parse_header_checks(&fwd).unwrap();
    assert_eq!(p.identity(), CLIENT);
    let v = finish_checks(p, EPOCH as u64 + 5, &key()).unwrap();
    assert_eq!(v.delivery, Delivery::Ipv6(&fwd[HEADER_LEN..]));

    let ka = unhex(KEEPALIVE_HEX);
    let p = parse_header_checks(&ka).unwrap();
    let v = finish_checks(p, EPOCH as u64, &key()).unwrap();
    assert_eq!(v.repr.opcode, OpCode::Noop);
    assert_eq!(v.delivery, Delivery::LivenessOnly);
}

/// Re-signs after a mutation so that only the mutated property is wrong.
fn resign(mut b: Vec<u8>) -> Vec<u8> {
    key().sign(&mut b).unwrap();
    b
}

#[test]
fn v10_1_negative_table_client_side() {
    // From the PoP vector (identity = POP), as the client receives it.
    let good = unhex(POP_FORWARD_HEX);
    let now = EPOCH as u64;
    // Signature zeroed -> "Incorrect Hash received".
    let mut b = good.clone();
    b[24..44].fill(0);
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()),
        Err(DropReason::BadSignature)
    );
    // Opcode 0 -> "Dropping invalid AYIYA packet".
    let mut b = good.clone();
    b[2] = 0x10;
    assert_eq!(
        validate_from_pop(&resign(b), now, POP, &key()),
        Err(DropReason::BadOpcode)
    );
    // Epoch - 300 s -> "Time is 301 seconds off" (AICCU's clock was 1 s later).
    let mut b = good.clone();
    b[4..8].copy_from_slice(&(EPOCH - 300).to_be_bytes());
    let b = resign(b);
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()),
        Err(DropReason::ClockSkew)
    );
    assert_eq!(
        check_epoch(now + 1, EPOCH - 300),
        Err(ClockSkew { secs: 301 })
    );
    // Identity = the client's own address -> "Received packet from a wrong identity".
    let b = resign(unhex(FORWARD_HEX));
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()),
        Err(DropReason::WrongIdentity)
    );
    // Opcode 3 -> accepted and written to the TUN.
    let mut b = good.clone();
    b[2] = 0x13;
    let b = resign(b);
    let v = validate_from_pop(&b, now, POP, &key()).unwrap();
    assert_eq!(v.repr.opcode, OpCode::EchoRequestForward);
    assert!(matches!(v.delivery, Delivery::Ipv6(_)));
    // Opcode 2 also accepted; opcode 4 dropped.
    let mut b = good.clone();
    b[2] = 0x12;
    assert!(validate_from_pop(&resign(b), now, POP, &key()).is_ok());
    let mut b = good.clone();
    b[2] = 0x14;
    assert_eq!(
        validate_from_pop(&resign(b), now, POP, &key()),
        Err(DropReason::BadOpcode)
    );
    // Wrong key.
    let other = SigningKey::from_password(b"other");
    assert_eq!(
        validate_from_pop(&good, now, POP, &other),
        Err(DropReason::BadSignature)
    );
}

#[test]
fn client_side_structural_drops() {
    let good = unhex(POP_FORWARD_HEX);
    let now = EPOCH as u64;
    assert_eq!(
        validate_from_pop(&good[..43], now, POP, &key()),
        Err(DropReason::Truncated)
    );
    assert_eq!(
        validate_from_pop(&good[..83], now, POP, &key()),
        Err(DropReason::Truncated)
    );
    let mut b = good.clone();
    b[1] = 0x51; // MD5
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()),
        Err(DropReason::BadHeader)
    );
    let mut b = good.clone();
    b[0] = 0x31;
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()),
        Err(DropReason::BadHeader)
    );
    let mut b = good.clone();
    b[3] = 4; // client does not accept IPv4
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()),
        Err(DropReason::BadNextHeader)
    );
    let mut b = good.clone();
    b[44] = 0x45; // version 4 under nh 41
    assert_eq!(
        validate_from_pop(&resign(b), now, POP, &key()),
        Err(DropReason::BadInnerVersion)
    );
    // Opcode 1 with nh 59 and no payload: accepted, nothing to write.
    let mut b = vec![0u8; HEADER_LEN];
    key()
        .seal(
            &Repr {
                opcode: OpCode::Forward,
                next_header: NextHeader::NoNextHeader,
                epoch: EPOCH,
                identity: POP,
            },
            &mut b,
        )
        .unwrap();
    assert_eq!(
        validate_from_pop(&b, now, POP, &key()).unwrap().delivery,
        Delivery::LivenessOnly
    );
}

#[test]
fn pop_side_drops() {
    let fwd = unhex(FORWARD_HEX);
    assert_eq!(
        parse_header_checks(&fwd[..10]).unwrap_err(),
        DropReason::Truncated
    );
    let mut b = fwd.clone();
    b[2] = 0x15;
    assert_eq!(parse_header_checks(&b).unwrap_err(), DropReason::BadOpcode);
    let mut b = fwd.clone();
    b[3] = 17;
    assert_eq!(
        parse_header_checks(&b).unwrap_err(),
        DropReason::BadNextHeader
    );
    let mut b = fwd.clone();
    b[3] = 4; // IPv4 under nh 4 but payload is IPv6
    assert_eq!(
        parse_header_checks(&b).unwrap_err(),
        DropReason::BadInnerVersion
    );
    // Clock and signature at step 2.
    let p = parse_header_checks(&fwd).unwrap();
    assert_eq!(
        finish_checks(p, EPOCH as u64 + 121, &key()).unwrap_err(),
        DropReason::ClockSkew
    );
    let p = parse_header_checks(&fwd).unwrap();
    assert_eq!(
        finish_checks(p, EPOCH as u64, &SigningKey::from_password(b"x")).unwrap_err(),
        DropReason::BadSignature
    );
    // Opcode 3 from the client is liveness only at the PoP.
    let mut b = fwd.clone();
    b[2] = 0x13;
    let b = resign(b);
    let v = finish_checks(parse_header_checks(&b).unwrap(), EPOCH as u64, &key()).unwrap();
    assert_eq!(v.delivery, Delivery::LivenessOnly);
    // IPv4 inside (nh 4, opcode 1) is routed as IPv4.
    let mut b = vec![0u8; HEADER_LEN + 20];
    b[HEADER_LEN] = 0x45;
    key()
        .seal(
            &Repr {
                opcode: OpCode::Forward,
                next_header: NextHeader::Ipv4,
                epoch: EPOCH,
                identity: CLIENT,
            },
            &mut b,
        )
        .unwrap();
    let v = finish_checks(parse_header_checks(&b).unwrap(), EPOCH as u64, &key()).unwrap();
    assert_eq!(v.delivery, Delivery::Ipv4(&b[HEADER_LEN..]));
}

#[test]
fn clock_rule_boundaries() {
    let e = 1_000_000u32;
    assert!(check_epoch(e as u64 + 120, e).is_ok());
    assert!(check_epoch(e as u64 - 120, e).is_ok());
    assert_eq!(check_epoch(e as u64 + 121, e), Err(ClockSkew { secs: 121 }));
    assert_eq!(check_epoch(e as u64 - 121, e), Err(ClockSkew { secs: 121 }));
    // Wrapping: now just past 2^32, epoch just before it.
    assert!(check_epoch((1u64 << 32) + 10, u32::MAX - 5).is_ok());
    assert!(check_epoch(0, u32::MAX).is_ok());
}

const NOW: u64 = EPOCH as u64;

fn sig(n: u8) -> [u8; SIGNATURE_LEN] {
    [n; SIGNATURE_LEN]
}

#[test]
fn endpoint_guard_refuses_replays_from_other_addresses() {
    use std::net::SocketAddrV4;
    let client: SocketAddrV4 = "192.0.2.10:40000".parse().unwrap();
    let rebound: SocketAddrV4 = "192.0.2.10:40001".parse().unwrap();
    let attacker: SocketAddrV4 = "203.0.113.66:5555".parse().unwrap();
    let mut g = EndpointGuard::new();
    assert_eq!(g.endpoint(), None);
    assert_eq!(
        g.observe(client, EPOCH, &sig(1), NOW),
        EndpointUpdate::Learned
    );
    assert_eq!(
        g.observe(client, EPOCH + 5, &sig(2), NOW),
        EndpointUpdate::Same
    );
    // An older packet from the client itself (reordering) keeps the newest epoch.
    assert_eq!(
        g.observe(client, EPOCH + 1, &sig(3), NOW),
        EndpointUpdate::Same
    );
    assert_eq!(g.newest_epoch(), EPOCH + 5);
    // Replays of anything captured so far, from elsewhere: older ones are stale, the newest
    // one is a duplicate. None moves the endpoint.
    assert_eq!(
        g.observe(attacker, EPOCH, &sig(1), NOW),
        EndpointUpdate::Stale
    );
    assert_eq!(
        g.observe(attacker, EPOCH + 1, &sig(3), NOW),
        EndpointUpdate::Stale
    );
    assert_eq!(
        g.observe(attacker, EPOCH + 5, &sig(2), NOW),
        EndpointUpdate::Duplicate
    );
    assert!(EndpointUpdate::Duplicate.is_replay() && EndpointUpdate::Stale.is_replay());
    assert_eq!(g.endpoint(), Some(client));
    // An exact duplicate from the client's own address is dropped too.
    assert_eq!(
        g.observe(client, EPOCH + 5, &sig(2), NOW),
        EndpointUpdate::Duplicate
    );
    // NAT rebinding within the same second: a fresh (unseen) packet from the new port moves
    // the endpoint at once.
    assert_eq!(
        g.observe(rebound, EPOCH + 5, &sig(4), NOW),
        EndpointUpdate::Moved
    );
    assert_eq!(g.endpoint(), Some(rebound));
    // ...and the old port's packets cannot move it back once they are older.
    assert_eq!(
        g.observe(rebound, EPOCH + 6, &sig(5), NOW),
        EndpointUpdate::Same
    );
    assert_eq!(
        g.observe(client, EPOCH + 5, &sig(6), NOW),
        EndpointUpdate::Stale
    );
    assert_eq!(
        g.observe(client, EPOCH + 6, &sig(5), NOW),
        EndpointUpdate::Duplicate
    );
    assert_eq!(g.endpoint(), Some(rebound));
    // Wrapping order across 2^32.
    let mut g = EndpointGuard::new();
    g.observe(client, u32::MAX - 1, &sig(1), NOW);
    assert_eq!(g.observe(attacker, 3, &sig(2), NOW), EndpointUpdate::Moved);
    g.reset();
    assert_eq!(g.endpoint(), None);
}

/// AICCU stamps whole seconds and sends many packets per second: every distinct packet of the
/// newest second is accepted from the current endpoint, and a replay of any of them from
/// elsewhere is refused, also when the second holds more packets than the guard remembers.
#[test]
fn endpoint_guard_many_packets_per_second() {
    use std::net::SocketAddrV4;
    let client: SocketAddrV4 = "198.51.100.2:40000".parse().unwrap();
    let attacker: SocketAddrV4 = "203.0.113.66:5555".parse().unwrap();
    let mut g = EndpointGuard::new();
    for n in 0..100u8 {
        let u = g.observe(client, EPOCH, &sig(n), NOW);
        assert!(!u.is_replay(), "packet {n}: {u:?}");
    }
    for n in 0..100u8 {
        let u = g.observe(attacker, EPOCH, &sig(n), NOW);
        assert!(
            matches!(u, EndpointUpdate::Duplicate | EndpointUpdate::Kept),
            "replay {n}: {u:?}"
        );
        assert_eq!(g.endpoint(), Some(client));
    }
    // Once the grace has passed, unprovable packets of that epoch are replays, from anywhere.
    let later = NOW + SAME_EPOCH_GRACE + 1;
    for n in 0..100u8 {
        assert!(
            g.observe(attacker, EPOCH, &sig(n), later).is_replay(),
            "{n}"
        );
        assert!(g.observe(client, EPOCH, &sig(n), later).is_replay(), "{n}");
    }
    // The next second, the client keeps its endpoint and the old packets are all stale.
    assert_eq!(
        g.observe(client, EPOCH + 1, &sig(200), NOW + 1),
        EndpointUpdate::Same
    );
    for n in 0..100u8 {
        assert_eq!(
            g.observe(attacker, EPOCH, &sig(n), NOW + 1),
            EndpointUpdate::Stale
        );
    }
    assert_eq!(g.endpoint(), Some(client));
}

proptest! {
    /// Whatever the interleaving, a packet that was already observed never moves the
    /// endpoint, and neither does one older than the newest accepted.
    #[test]
    fn endpoint_guard_replays_never_move(
        ops in proptest::collection::vec((0u8..3, 0u32..6, 0u8..12), 1..80)
    ) {
        use std::collections::HashSet;
        let mut g = EndpointGuard::new();
        let mut seen: HashSet<(u32, u8)> = HashSet::new();
        let mut newest: Option<u32> = None;
        for (src, e, s) in ops {
            let epoch = EPOCH + e;
            let before = g.endpoint();
            // Distinct (epoch, signature byte) pairs give distinct signatures.
            let mut signature = sig(s);
            signature[..4].copy_from_slice(&epoch.to_be_bytes());
            let dup = seen.contains(&(epoch, s));
            let older = newest.is_some_and(|n| epoch < n);
            let u = g.observe(src, epoch, &signature, NOW);
            if before.is_some() && before != Some(src) && (dup || older) {
                prop_assert_eq!(g.endpoint(), before, "{:?}", u);
            }
            if u == EndpointUpdate::Moved || u == EndpointUpdate::Learned {
                prop_assert_eq!(g.endpoint(), Some(src));
            }
            if !u.is_replay() {
                seen.insert((epoch, s));
                newest = Some(newest.map_or(epoch, |n| n.max(epoch)));
            }
        }
    }
}

#[test]
fn v10_5_derived_link_local() {
    assert_eq!(
        derived_link_local(CLIENT),
        "fe80::cb8:2ff:1:2".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn address_plan() {
    let (pop, client) = tunnel_addresses("2001:db8:2ff::".parse().unwrap(), 1).unwrap();
    assert_eq!((pop, client), (POP, CLIENT));
    let (pop, _) = tunnel_addresses("2001:db8:2ff:ffff::".parse().unwrap(), 0x2ae).unwrap();
    assert_eq!(pop, "2001:db8:2ff:2ae::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(tunnel_addresses(POP, 0), Err(PlanError::BadTid(0)));
    assert_eq!(
        tunnel_addresses(POP, 0x8000),
        Err(PlanError::BadTid(0x8000))
    );
}

#[test]
fn enums_all_values_roundtrip() {
    for v in 0u8..16 {
        assert_eq!(u8::from(OpCode::from(v)), v);
        assert_eq!(u8::from(IdType::from(v)), v);
        assert_eq!(u8::from(HashMethod::from(v)), v);
        assert_eq!(u8::from(AuthMethod::from(v)), v);
    }
    assert_eq!(OpCode::from(8), OpCode::Unknown(8));
    assert_eq!(OpCode::from(7), OpCode::QueryResponse);
    for v in 0u8..=255 {
        assert_eq!(u8::from(NextHeader::from(v)), v);
    }
    let labels: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), DropReason::ALL.len());
}

#[test]
fn emit_into_short_buffer_is_error() {
    let mut b = [0u8; 43];
    assert_eq!(
        Repr::keepalive(CLIENT, 1).emit(&mut b),
        Err(WireError::Truncated)
    );
    assert_eq!(key().sign(&mut b), Err(WireError::Truncated));
    assert!(!key().verify(&b));
}

fn arb_opcode() -> impl Strategy<Value = OpCode> {
    (0u8..16).prop_map(OpCode::from)
}

fn arb_repr() -> impl Strategy<Value = (Repr, Vec<u8>)> {
    (
        arb_opcode(),
        prop_oneof![Just(4u8), Just(41), Just(59), any::<u8>()],
        any::<u32>(),
        any::<[u8; 16]>(),
        proptest::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(|(opcode, nh, epoch, id, mut payload)| {
            let next_header = NextHeader::from(nh);
            match next_header {
                NextHeader::Ipv6 => {
                    payload.resize(payload.len().max(40), 0);
                    payload[0] = 0x60 | (payload[0] & 0x0f);
                }
                NextHeader::Ipv4 => {
                    payload.resize(payload.len().max(20), 0);
                    payload[0] = 0x40 | (payload[0] & 0x0f);
                }
                _ => {}
            }
            (
                Repr {
                    opcode,
                    next_header,
                    epoch,
                    identity: Ipv6Addr::from(id),
                },
                payload,
            )
        })
}

proptest! {
    #[test]
    fn repr_roundtrip((repr, payload) in arb_repr(), pw in proptest::collection::vec(any::<u8>(), 0..40)) {
        let k = SigningKey::from_password(&pw);
        let mut buf = vec![0u8; HEADER_LEN + payload.len()];
        buf[HEADER_LEN..].copy_from_slice(&payload);
        k.seal(&repr, &mut buf).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert!(k.verify(&buf));
        // Any single-bit flip breaks the signature.
        let mut bad = buf.clone();
        let i = (repr.epoch as usize) % bad.len();
        bad[i] ^= 1;
        prop_assert!(!k.verify(&bad));
    }

    #[test]
    fn validators_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), now in any::<u64>()) {
        let k = key();
        let _ = validate_from_pop(&data, now, POP, &k);
        if let Ok(p) = parse_header_checks(&data) {
            let _ = p.identity();
            let _ = finish_checks(p, now, &k);
        }
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = Repr::parse(&p);
            let _ = (p.epoch(), p.signature(), p.payload());
        }
    }
}

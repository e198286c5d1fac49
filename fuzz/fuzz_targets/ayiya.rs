//! Fuzz the AYIYA wire view, `Repr` round-trip and both receive validators.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use v6h_ayiya::ayiya::{
    HEADER_LEN, Packet, Repr, SigningKey, finish_checks, parse_header_checks, validate_from_pop,
};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_password(b"0123456789abcdef0123456789abcdef");
    let pop = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 1);
    // Use the packet's own epoch as "now" half of the time so clock checks pass too.
    let now = match data.get(4..8) {
        Some(e) if data.len() % 2 == 0 => u64::from(u32::from_be_bytes([e[0], e[1], e[2], e[3]])),
        _ => 1_795_727_697,
    };
    let _ = validate_from_pop(data, now, pop, &key);
    if let Ok(p) = parse_header_checks(data) {
        let _ = p.identity();
        let _ = finish_checks(p, now, &key);
    }
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.opcode(), p.next_header(), p.signature(), p.payload());
        if let Ok(repr) = Repr::parse(&p) {
            // Re-emitting the header and re-signing must reproduce a packet that parses to the
            // same Repr and verifies.
            let mut buf = data.to_vec();
            key.seal(&repr, &mut buf).expect("buffer holds a header");
            assert_eq!(buf[..24], data[..24]);
            assert_eq!(buf[HEADER_LEN..], data[HEADER_LEN..]);
            let p2 = Packet::new_checked(&buf[..]).expect("still valid");
            assert_eq!(Repr::parse(&p2), Ok(repr));
            assert!(key.verify(&buf));
        }
    }
});

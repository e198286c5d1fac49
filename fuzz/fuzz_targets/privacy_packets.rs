//! Fuzzes the packet inputs of `v6home privacy agent` and its lab DAD attacker: RAs as the
//! agent validates them, and Ethernet frames as the attacker inspects them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (hop, rest) = data
        .split_first()
        .map_or((255, data), |(h, r)| (i32::from(*h), r));
    let src: std::net::Ipv6Addr = "fe80::1".parse().unwrap();
    let _ = v6h_privacy::agent::ra_events(rest, src, hop);
    let _ = v6h_privacy::dadforge::dad_probe_target(data);
});

//! Fuzzes the PoP's sans-IO tunnel table: arbitrary datagrams (plus a validly signed variant
//! carrying the fuzz input as inner packet) through `handle_datagram`, the input as an
//! outbound packet through `route_outbound` (ICMPv6 errors must checksum), and `broker.toml`
//! text through the config parser. Nothing may panic.
#![no_main]

use std::net::{Ipv6Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use v6h_tunnel::pop::{OutAction, PopTable};
use v6h_tunnel::pop::table::client_datagram;
use v6h_tunnel::registry::{AdminState, BrokerConfig, Tunnel};
use v6h_tunnel::v6h_ayiya::ayiya::SigningKey;

fuzz_target!(|data: &[u8]| {
    let t = Tunnel {
        id: 1,
        owner: "lab".into(),
        prefix: "2001:db8:2ff:1::/64".parse().unwrap(),
        subnets: vec!["2001:db8:1234::/48".parse().unwrap()],
        mtu: 1280,
        heartbeat: 60,
        password: "pw".into(),
        admin: AdminState::Enabled,
        name: None,
    };
    let fallback: Ipv6Addr = "2001:db8:ff00::1".parse().unwrap();
    let mut table = PopTable::new(&[t], 120, Some(fallback));
    let src = SocketAddrV4::new([198, 51, 100, 2].into(), 40000);
    let now = 1_795_727_697u64;
    let _ = table.handle_datagram(now, src, data);
    let key = SigningKey::from_password(b"pw");
    let me: Ipv6Addr = "2001:db8:2ff:1::2".parse().unwrap();
    let signed = client_datagram(&key, me, now as u32, Some(data));
    let _ = table.handle_datagram(now, src, &signed);
    let mut icmp = [0u8; 1280];
    match table.route_outbound(data, &mut icmp) {
        OutAction::Icmp { len, .. } => assert!(len <= 1280 && len >= 48),
        OutAction::Send { tunnel, .. } => {
            let mut buf = vec![0u8; 44 + data.len()];
            buf[44..].copy_from_slice(data);
            assert!(table.encapsulate(tunnel, now, &mut buf));
        }
        OutAction::Drop(_) => {}
    }
    table.handle_timeout(now + 200);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = BrokerConfig::parse(text, std::path::Path::new("fuzz.toml"));
        let _ = text.parse::<v6h_tunnel::prefix::Prefix6>();
    }
});

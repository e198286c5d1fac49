//! Fuzz the strict DHCPv6 decoder and the server core: never panic; whatever decodes
//! re-encodes to the same bytes; the server answers at most once per datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddrV6;
use v6h_dhcp6::server::{ALL_SERVERS_AND_RELAYS, LinkInfo, Server};
use v6h_dhcp6::wire::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let out = m.emit().expect("a decoded message re-encodes");
        assert_eq!(out, data, "decode/encode must be lossless");
    }
    let mut cfg = v6h_dhcp6::config::Config::default();
    cfg.options.dns_servers = vec!["2001:db8:ffff::53".parse().unwrap()];
    let mut s = Server::stateless(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1], cfg);
    s.add_link(2, "eth0");
    let link = LinkInfo {
        ifindex: 2,
        src: SocketAddrV6::new("fe80::1".parse().unwrap(), 546, 0, 2),
        dst: ALL_SERVERS_AND_RELAYS,
    };
    let replies = s.handle(0, data, &link);
    assert!(replies.len() <= 1);
    for r in replies {
        Message::parse(&r.bytes).expect("our replies decode");
    }
});

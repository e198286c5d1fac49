//! Fuzz the stateful server with relay links: any datagram (direct, or Relay-Forw nests with
//! arbitrary link-addresses and Interface-IDs) from a client or a relay never panics, gets at
//! most one answer that decodes, and leaves the lease engine consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddrV6;
use v6h_dhcp6::config::Config;
use v6h_dhcp6::server::{ALL_SERVERS_AND_RELAYS, LinkInfo, Server};
use v6h_dhcp6::stateful::{EngineBindings, engine_config};
use v6h_dhcp6::wire::Message;

const TOML: &str = r#"
[[pool]]
name = "lan"
start = "2001:db8:1234::100"
end = "2001:db8:1234::103"
[[pool]]
name = "office"
start = "2001:db8:1234:10::100"
end = "2001:db8:1234:10::103"
[[interface]]
name = "eth0"
prefix = "2001:db8:1234::/64"
address_pools = [{ pool = "lan", preferred = 60, valid = 120 }]
[[link]]
name = "office"
prefix = "2001:db8:1234:10::/64"
interface_id = "v10"
rapid_commit = true
address_pools = [{ pool = "office", preferred = 60, valid = 120 }]
[[link.pd_pool]]
prefix = "2001:db8:1234:8000::/60"
delegated_len = 62
"#;

fuzz_target!(|data: &[u8]| {
    let cfg = Config::from_toml("fuzz.toml".as_ref(), TOML).expect("valid config");
    let ec = engine_config(&cfg, &["eth0".to_string()])
        .expect("valid")
        .expect("pools");
    let duid = vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
    let mut s = Server::new(duid, cfg, EngineBindings::new(ec).expect("engine"));
    s.add_link(2, "eth0");
    // The first byte picks the sender (a client on the link, or a relay by unicast), the rest
    // is the datagram; it is sent twice, a minute apart, to exercise existing bindings.
    let Some((&who, datagram)) = data.split_first() else {
        return;
    };
    let link = if who & 1 == 0 {
        LinkInfo {
            ifindex: 2,
            src: SocketAddrV6::new("fe80::1".parse().unwrap(), 546, 0, 2),
            dst: ALL_SERVERS_AND_RELAYS,
        }
    } else {
        LinkInfo {
            ifindex: 2,
            src: SocketAddrV6::new("2001:db8:1234::2".parse().unwrap(), 547, 0, 0),
            dst: "2001:db8:1234::1".parse().unwrap(),
        }
    };
    for now in [1_800_000_000, 1_800_000_060] {
        let replies = s.handle(now, datagram, &link);
        assert!(replies.len() <= 1);
        for r in replies {
            Message::parse(&r.bytes).expect("our replies decode");
        }
        s.bindings().take_changes();
        s.bindings()
            .engine()
            .check_invariants()
            .expect("engine invariants");
    }
});

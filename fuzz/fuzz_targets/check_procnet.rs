//! Fuzzes the `/proc/net/if_inet6` and `/proc/net/ipv6_route` parsers of `v6home check`: they
//! never panic, and every entry they accept, printed back in the kernel's format, parses to
//! the same entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_check::procnet::{IfAddr, Route, parse_if_inet6, parse_ipv6_route};

fn if_inet6_line(a: &IfAddr) -> String {
    format!(
        "{:032x} {:02x} {:02x} {:02x} {:02x} {:>8}\n",
        u128::from(a.addr),
        a.ifindex,
        a.prefix_len,
        a.scope,
        a.flags,
        a.ifname
    )
}

fn route_line(r: &Route) -> String {
    format!(
        "{:032x} {:02x} {:032x} 00 {:032x} {:08x} 00000001 00000000 {:08x} {:>8}\n",
        u128::from(r.dest),
        r.dest_len,
        0u128,
        u128::from(r.gateway),
        r.metric,
        r.flags,
        r.ifname
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for a in parse_if_inet6(text) {
        assert!(a.prefix_len <= 128);
        let again = parse_if_inet6(&if_inet6_line(&a));
        assert_eq!(again, vec![a]);
    }
    for r in parse_ipv6_route(text) {
        assert!(r.dest_len <= 128);
        let _ = r.is_default_via_router();
        let again = parse_ipv6_route(&route_line(&r));
        assert_eq!(again, vec![r]);
    }
});

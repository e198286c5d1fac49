//! Fuzzes the broker's registry tables (`[[user]]`, `[[tunnel]]` in broker.toml) and their
//! validation.
//!
//! Two modes, chosen by the first byte: TOML text through `parse_registry` (as the broker
//! reads its file), or tables built field by field from the bytes and passed to `validate`
//! (which reaches the overlap, MTU, heartbeat, password and owner rules far more often than
//! random text does). Whatever validates must then hold up: it round-trips through TOML, no
//! two prefixes overlap, the next allocation is valid, every tunnel is found by its identity
//! and address in the PoP table, and its aiccu.conf parses. Nothing may panic.
#![no_main]

use std::net::Ipv6Addr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use v6h_tunnel::pop::PopTable;
use v6h_tunnel::prefix::Prefix6;
use v6h_tunnel::registry::{
    AdminState, RegistryData, Tunnel, UserEntry, allocate, parse_registry, registry_to_toml,
    render_aiccu_conf, validate,
};
use v6h_tunnel::v6h_ayiya::aiccu_conf::AiccuConfig;

/// Reads the fuzz input as a stream of small numbers.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn text(&mut self, max: usize) -> String {
        let n = usize::from(self.byte()) % (max + 1);
        (0..n).map(|_| char::from(self.byte() % 96 + 32)).collect()
    }
}

fn prefix(b: &mut Bytes<'_>) -> Prefix6 {
    // Mostly inside 2001:db8::/32 so prefixes collide and nest.
    let hi = 0x2001_0db8_0000_0000_0000_0000_0000_0000u128;
    let bits = (u128::from(b.u16()) << 80) | (u128::from(b.byte()) << 64);
    let len = match b.byte() % 4 {
        0 => 64,
        1 => 48,
        2 => b.byte() % 129,
        _ => 56,
    };
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    let a = Ipv6Addr::from((hi | bits) & mask);
    Prefix6::new(a, len).expect("masked address, length at most 128")
}

fn built(data: &[u8]) -> (Vec<UserEntry>, Vec<Tunnel>) {
    let mut b = Bytes(data);
    let users: Vec<UserEntry> = (0..b.byte() % 4)
        .map(|i| UserEntry {
            name: if b.byte() % 8 == 0 {
                b.text(8)
            } else {
                format!("u{i}")
            },
            password_md5: (b.byte() % 4 == 0).then(|| b.text(34)),
            password: (b.byte() % 4 != 1).then(|| b.text(12)),
        })
        .collect();
    let tunnels = (0..b.byte() % 6)
        .map(|_| Tunnel {
            id: u32::from(b.byte() % 8),
            owner: format!("u{}", b.byte() % 4),
            prefix: prefix(&mut b),
            subnets: (0..b.byte() % 3).map(|_| prefix(&mut b)).collect(),
            mtu: 1270 + b.u16() % 220,
            heartbeat: u32::from(b.byte() % 4),
            password: if b.byte() % 5 == 0 {
                b.text(6)
            } else {
                "0123456789abcdef".into()
            },
            admin: if b.byte() % 2 == 0 {
                AdminState::Enabled
            } else {
                AdminState::Disabled
            },
            name: (b.byte() % 3 == 0).then(|| b.text(10)),
        })
        .collect();
    (users, tunnels)
}

fn check(data: &RegistryData) {
    let text = registry_to_toml(data).expect("valid data serialises");
    let again =
        parse_registry(&text, Path::new("roundtrip.toml")).expect("serialised data reads back");
    assert_eq!(again.tunnels, data.tunnels);
    assert_eq!(again.users.len(), data.users.len());
    let all: Vec<Prefix6> = data
        .tunnels
        .iter()
        .flat_map(|t| std::iter::once(t.prefix).chain(t.subnets.iter().copied()))
        .collect();
    for (i, p) in all.iter().enumerate() {
        for q in &all[i + 1..] {
            assert!(!p.overlaps(q), "{p} overlaps {q}");
        }
    }
    let table = PopTable::new(&data.tunnels, 120, None);
    for (slot, t) in data.tunnels.iter().enumerate() {
        assert_eq!(table.lookup_identity(t.client_addr()), Some(slot));
        assert_eq!(table.lookup_route(t.pop_addr()), Some(slot));
        if let Some(u) = data.user(&t.owner) {
            let conf = render_aiccu_conf(u, t, "198.51.100.1");
            if u.password_plain
                .as_deref()
                .is_some_and(|p| !p.contains(['\n', '\r']))
            {
                let _ = AiccuConfig::parse("generated.conf", &conf);
            }
        }
    }
    let from: Prefix6 = "2001:db8:2ff::/48".parse().expect("literal");
    if let Ok((id, p)) = allocate(data, from) {
        assert!(data.tunnels.iter().all(|t| t.id != id && t.prefix != p));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parsed = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => parse_registry(text, Path::new("fuzz.toml")),
            Err(_) => return,
        }
    } else {
        let (users, tunnels) = built(rest);
        validate(&users, &tunnels)
    };
    if let Ok(d) = parsed {
        check(&d);
    }
});

//! The allocation engine alone (no I/O): nanoseconds per Solicit+Request pair for fresh
//! clients, and per Renew, with 200,000 clients, for addresses (/64 pool) and /56 prefixes
//! (from a /33), as in the DHCPv6 saturation benchmark.
//!
//! Run: `cargo bench -p v6h-lease --bench engine`

use std::time::Instant;

use v6h_lease::{
    Engine, EngineConfig, IaKind, IaRequest, LinkConfig, LinkId, NaPoolConfig, PdPoolConfig,
    Resource,
};

const CLIENTS: u32 = 200_000;

fn engine() -> Engine {
    let mut l = LinkConfig::new("lan0");
    l.na_pools.push(NaPoolConfig::from_prefix(
        "2001:db8:1234::/64".parse().unwrap(),
        vec![],
    ));
    l.pd_pools.push(PdPoolConfig {
        prefix: "2001:db8:8000::/33".parse().unwrap(),
        delegated_len: 56,
        exclude: vec![],
    });
    Engine::new(EngineConfig::new(vec![l])).unwrap()
}

fn duid(n: u32) -> [u8; 14] {
    let mut d = [0u8, 1, 0, 1, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    d[10..].copy_from_slice(&n.to_be_bytes());
    d
}

/// ns per Solicit+Request pair, then ns per Renew, for `kind`.
fn run(kind: IaKind) -> (f64, f64) {
    let mut e = engine();
    let mut granted: Vec<Resource> = Vec::with_capacity(CLIENTS as usize);
    let t = Instant::now();
    for n in 0..CLIENTS {
        let d = duid(n);
        let ia = IaRequest {
            link: LinkId(0),
            duid: &d,
            kind,
            iaid: 1,
            leases: &[],
        };
        let now = 1_000_000 + u64::from(n / 10_000);
        e.solicit(now, &ia, false);
        let r = e.request(now, &ia);
        if let Some(l) = r.leases.first() {
            granted.push(l.resource);
        }
        e.take_changes();
    }
    let pair = t.elapsed().as_nanos() as f64 / f64::from(CLIENTS);
    assert_eq!(granted.len(), CLIENTS as usize, "every client got a lease");
    let t = Instant::now();
    for (n, r) in granted.iter().enumerate() {
        let n = n as u32;
        let d = duid(n);
        let leases = [*r];
        let ia = IaRequest {
            link: LinkId(0),
            duid: &d,
            kind,
            iaid: 1,
            leases: &leases,
        };
        e.renew(1_000_100, &ia);
        e.take_changes();
    }
    let renew = t.elapsed().as_nanos() as f64 / f64::from(CLIENTS);
    (pair, renew)
}

fn main() {
    println!("engine, {CLIENTS} clients, no I/O");
    for (name, kind) in [("addresses", IaKind::Na), ("prefixes", IaKind::Pd)] {
        let (pair, renew) = run(kind);
        println!("  {name:<10} Solicit+Request {pair:>7.0} ns/pair   Renew {renew:>6.0} ns");
    }
}

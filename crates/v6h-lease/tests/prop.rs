//! Property test: across random sequences of Solicit/Request/Renew/Rebind/Release/Decline,
//! time passing and restarts (restore from the persisted changes), no address or prefix is
//! ever held by two clients at once, reservations go only to their owner, and every live
//! binding survives a restart.

use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv6Addr;
use v6h_lease::*;

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}
fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const OWNER: u8 = 0; // client 0 owns the reservations

fn duid(c: u8) -> Vec<u8> {
    vec![0, 3, 0, 1, 0xc0, c]
}

fn reserved() -> Vec<Resource> {
    vec![
        Resource::Addr(a("2001:db8:a::13")),
        Resource::Prefix(p("2001:db8:a:f0::/62")),
    ]
}

/// Variant 1 moves link b's pools (partly overlapping the old ones) and drops the reservation.
fn config_variant(v: u8) -> EngineConfig {
    let mut c = config();
    if v == 1 {
        c.links[1].na_pools[0] = NaPoolConfig::from_prefix(p("2001:db8:b::4/126"), vec![]);
        c.links[1].pd_pools[0].prefix = p("2001:db8:b:140::/58");
        c.reservations.clear();
    }
    c
}

fn config() -> EngineConfig {
    let lt = |v| Lifetimes {
        preferred: v / 2,
        valid: v,
        t1: None,
        t2: None,
    };
    let mut la = LinkConfig::new("a");
    la.na_pools.push(NaPoolConfig {
        first: a("2001:db8:a::10"),
        last: a("2001:db8:a::17"),
        exclude: vec![p("2001:db8:a::11/128")],
    });
    // /62s from a /56, minus the /62 covering the LAN /64: 3 per /60... 64 total minus 1.
    la.pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:a::/56"),
        delegated_len: 62,
        exclude: vec![p("2001:db8:a::/64")],
    });
    // A second, disjoint PD pool with a different delegated length on the same link.
    la.pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:a:100::/60"),
        delegated_len: 61,
        exclude: vec![],
    });
    la.na_lifetimes = lt(1000);
    la.pd_lifetimes = lt(1500);
    la.rapid_commit = true;
    let mut lb = LinkConfig::new("b");
    lb.na_pools
        .push(NaPoolConfig::from_prefix(p("2001:db8:b::/125"), vec![]));
    lb.pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:b:100::/58"),
        delegated_len: 60,
        exclude: vec![],
    });
    lb.na_lifetimes = lt(800);
    lb.pd_lifetimes = lt(900);
    let mut c = EngineConfig::new(vec![la, lb]);
    c.decline_quarantine_secs = 200;
    c.reservations.push(Reservation {
        link: "a".into(),
        duid: duid(OWNER),
        addresses: vec![a("2001:db8:a::13")],
        prefixes: vec![p("2001:db8:a:f0::/62")],
    });
    c
}

#[derive(Clone, Debug)]
enum Op {
    Solicit { rapid: bool },
    Request,
    Renew,
    Rebind,
    Release,
    Decline,
    Wait(u64),
    Restart,
    Reload(u8),
    Delete,
}

fn op() -> impl Strategy<Value = (Op, u8, u8, bool, u8, Option<u8>)> {
    let op = prop_oneof![
        3 => any::<bool>().prop_map(|rapid| Op::Solicit { rapid }),
        4 => Just(Op::Request),
        2 => Just(Op::Renew),
        2 => Just(Op::Rebind),
        1 => Just(Op::Release),
        1 => Just(Op::Decline),
        2 => (0u64..1200).prop_map(Op::Wait),
        1 => Just(Op::Restart),
        1 => (0u8..2).prop_map(Op::Reload),
        1 => Just(Op::Delete),
    ];
    // (op, client, iaid, pd?, link, hint index into a small candidate list)
    (
        op,
        0u8..10,
        0u8..2,
        any::<bool>(),
        0u8..2,
        proptest::option::of(0u8..12),
    )
}

fn hint(link: u8, pd: bool, i: u8) -> Resource {
    let i = u128::from(i);
    match (link, pd) {
        (0, false) => Resource::Addr(Ipv6Addr::from(u128::from(a("2001:db8:a::10")) + i)),
        (0, true) => Resource::Prefix(Prefix::containing(
            Ipv6Addr::from(u128::from(a("2001:db8:a::")) + (i << 66)),
            62,
        )),
        (_, false) => Resource::Addr(Ipv6Addr::from(u128::from(a("2001:db8:b::")) + i)),
        (_, true) => Resource::Prefix(Prefix::containing(
            Ipv6Addr::from(u128::from(a("2001:db8:b:100::")) + (i << 68)),
            60,
        )),
    }
}

type Key = (u8, u8, u8, bool); // link, client, iaid, pd

/// What clients believe they hold: resource -> (key, expiry).
#[derive(Default)]
struct Believed(HashMap<Resource, (Key, u64)>);

impl Believed {
    fn expire(&mut self, now: u64) {
        self.0.retain(|_, (_, t)| *t > now);
    }
    fn grant(
        &mut self,
        k: Key,
        l: &Lease,
        now: u64,
        reservations: bool,
    ) -> Result<(), TestCaseError> {
        if l.valid == 0 {
            self.0.remove(&l.resource);
            return Ok(());
        }
        for (r, (owner, _)) in &self.0 {
            if *owner != k && r.overlaps(&l.resource) {
                return Err(TestCaseError::fail(format!(
                    "{} given to {k:?} while {r} is held by {owner:?}",
                    l.resource
                )));
            }
        }
        if reservations && k.1 != OWNER {
            for r in reserved() {
                prop_assert!(!r.overlaps(&l.resource), "reserved {r} given to {k:?}");
            }
        }
        self.0.insert(l.resource, (k, now + u64::from(l.valid)));
        Ok(())
    }
    fn drop_key(&mut self, k: Key, listed: &[Resource]) {
        self.0
            .retain(|r, (o, _)| !(*o == k && (listed.is_empty() || listed.contains(r))));
    }
    fn of(&self, k: Key) -> Vec<Resource> {
        let mut v: Vec<Resource> = self
            .0
            .iter()
            .filter(|(_, (o, _))| *o == k)
            .map(|(r, _)| *r)
            .collect();
        v.sort();
        v
    }
}

fn persist(store: &mut HashMap<Resource, LeaseRecord>, changes: Vec<Change>) {
    for c in changes {
        match c {
            Change::Put(r) => {
                store.insert(r.resource, r);
            }
            Change::Remove(r) => {
                store.remove(&r);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn never_two_clients_on_one_address(ops in proptest::collection::vec(op(), 1..120)) {
        let mut e = Engine::new(config()).unwrap();
        let mut store: HashMap<Resource, LeaseRecord> = HashMap::new();
        let mut believed = Believed::default();
        let mut now = 1_000u64;
        let mut variant = 0u8;
        for (op, client, iaid, pd, link, h) in ops {
            let k: Key = (link, client, iaid, pd);
            let d = duid(client);
            let kind = if pd { IaKind::Pd } else { IaKind::Na };
            believed.expire(now);
            // Renew/Rebind/Release/Decline list what the client believes it holds, or a hint.
            let mut listed = believed.of(k);
            if let Some(i) = h
                && (listed.is_empty() || matches!(op, Op::Solicit { .. } | Op::Request))
            {
                listed = vec![hint(link, pd, i)];
            }
            let ia = IaRequest { link: LinkId(u32::from(link)), duid: &d, kind, iaid: u32::from(iaid), leases: &listed };
            let reply = match op {
                Op::Solicit { rapid } => {
                    let commits = rapid && e.rapid_commit_allowed(ia.link);
                    let r = e.solicit(now, &ia, rapid);
                    if commits { Some(r) } else { None }
                }
                Op::Request => Some(e.request(now, &ia)),
                Op::Renew => Some(e.renew(now, &ia)),
                Op::Rebind => e.rebind(now, &ia),
                Op::Release => {
                    let r = e.release(now, &ia);
                    if r.status == Status::Success { believed.drop_key(k, &listed); }
                    None
                }
                Op::Decline => {
                    let r = e.decline(now, &ia);
                    if r.status == Status::Success { believed.drop_key(k, &listed); }
                    None
                }
                Op::Delete => {
                    if let Some(r) = believed.of(k).first().copied() {
                        prop_assert!(e.delete(&r));
                        believed.drop_key(k, &[r]);
                    }
                    None
                }
                Op::Reload(v) => {
                    variant = v;
                    e.reload(now, config_variant(v)).unwrap();
                    None
                }
                Op::Wait(s) => {
                    now += s;
                    e.expire(now);
                    None
                }
                Op::Restart => {
                    persist(&mut store, e.take_changes());
                    e = Engine::new(config_variant(variant)).unwrap();
                    e.restore(now, store.values().cloned().collect::<Vec<_>>());
                    // Every binding a client believes it holds is back.
                    for (r, (owner, _)) in &believed.0 {
                        let (l, c, i, pd) = *owner;
                        let kind = if pd { IaKind::Pd } else { IaKind::Na };
                        let v = e.lookup_ia(LinkId(u32::from(l)), &duid(c), kind, u32::from(i), now);
                        prop_assert!(v.iter().any(|x| x.lease == r.to_string()), "{r} of {owner:?} lost on restart");
                    }
                    None
                }
            };
            if let Some(r) = reply {
                // Zero lifetimes withdraw a lease whatever the IA status is.
                for l in r.leases.iter().filter(|l| l.valid == 0) {
                    believed.grant(k, l, now, variant == 0)?;
                }
                if r.status == Status::Success || r.status == Status::NotOnLink {
                    for l in &r.leases {
                        believed.grant(k, l, now, variant == 0)?;
                    }
                } else {
                    prop_assert!(r.leases.iter().all(|l| l.valid == 0));
                }
                if r.status == Status::NoBinding {
                    believed.drop_key(k, &[]);
                }
            }
            persist(&mut store, e.take_changes());
            if let Err(m) = e.check_invariants() {
                return Err(TestCaseError::fail(m));
            }
            // The engine's own view never overlaps either.
            let mut held: Vec<(u128, u128)> = e
                .list(now)
                .iter()
                .map(|v| {
                    let r = match v.lease.parse::<Prefix>() {
                        Ok(p) => Resource::Prefix(p),
                        Err(_) => Resource::Addr(v.lease.parse().unwrap()),
                    };
                    (r.first(), r.last())
                })
                .collect();
            held.sort();
            for w in held.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
        }
    }
}

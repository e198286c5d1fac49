//! Deterministic simulations of the sans-IO SLAAC/privacy core with a fake clock: days of RAs,
//! timers and DAD outcomes in milliseconds of test time.

use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use v6h_privacy::iid::{StableIdentity, is_reserved_iid};
use v6h_privacy::slaac::{
    Action, AddrKind, Agent, Event, INFINITE, MAX_PREFIXES, Params, PrefixInfo, two_hour_rule,
};

const P1: &str = "2001:db8:1:2::";
const P2: &str = "2001:db8:1:3::";

fn ident() -> StableIdentity {
    StableIdentity {
        secret: vec![0x42; 32],
        net_iface: b"02:00:00:00:00:04".to_vec(),
        network_id: Vec::new(),
    }
}

fn p(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn iid_of(a: &Ipv6Addr) -> u64 {
    u64::from_be_bytes(a.octets()[8..].try_into().unwrap())
}

type DadFn = Box<dyn FnMut(u64, Ipv6Addr, AddrKind) -> bool>;

/// A fake kernel: records addresses, answers DAD one second after an add.
struct Sim {
    agent: Agent<StdRng>,
    now: u64,
    pending_dad: Vec<(u64, Ipv6Addr, bool)>,
    /// Decides DAD outcome: true = passes.
    dad: DadFn,
    actions: Vec<(u64, Action)>,
    kernel: BTreeMap<Ipv6Addr, (u32, u32)>,
    sources: BTreeMap<Ipv6Addr, Option<Ipv6Addr>>,
    saved_counters: BTreeMap<Ipv6Addr, u32>,
}

impl Sim {
    fn new(params: Params, seed: u64) -> Self {
        Self::with_counters(params, seed, vec![])
    }
    fn with_counters(params: Params, seed: u64, counters: Vec<(Ipv6Addr, u32)>) -> Self {
        Sim {
            agent: Agent::new(params, ident(), counters, StdRng::seed_from_u64(seed)).unwrap(),
            now: 0,
            pending_dad: vec![],
            dad: Box::new(|_, _, _| true),
            actions: vec![],
            kernel: BTreeMap::new(),
            sources: BTreeMap::new(),
            saved_counters: BTreeMap::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(a) = self.agent.poll_action() {
            match &a {
                Action::AddAddress {
                    addr,
                    preferred,
                    valid,
                    kind,
                    replace,
                } => {
                    assert!(*valid > 0, "valid lifetime 0 is EINVAL");
                    assert!(*valid != INFINITE, "spec A1: finite lifetimes only");
                    assert!(preferred <= valid, "preferred > valid is EINVAL");
                    assert!(!is_reserved_iid(iid_of(addr)), "reserved IID {addr}");
                    if !replace {
                        let ok = (self.dad)(self.now, *addr, *kind);
                        self.pending_dad.push((self.now + 1000, *addr, ok));
                    }
                    self.kernel.insert(*addr, (*preferred, *valid));
                }
                Action::RemoveAddress { addr } => {
                    self.kernel.remove(addr);
                }
                Action::SetPreferredSource { prefix, source } => {
                    if let Some(s) = source {
                        let snap = self.agent.snapshot();
                        let info = snap
                            .iter()
                            .flat_map(|p| p.addrs.iter())
                            .find(|a| a.addr == *s)
                            .expect("source is a managed address");
                        assert_eq!(info.kind, AddrKind::Temporary);
                        assert!(!info.tentative, "a tentative src is refused by Linux");
                    }
                    self.sources.insert(*prefix, *source);
                }
                Action::SaveDadCounter { prefix, counter } => {
                    self.saved_counters.insert(*prefix, *counter);
                }
            }
            self.actions.push((self.now, a));
        }
    }

    fn event(&mut self, ev: Event) {
        self.agent.handle(self.now, ev);
        self.drain();
    }

    /// Advances to `until`, firing timers and DAD results; `ra` is called at each RA instant.
    fn run(
        &mut self,
        until: u64,
        ra_every: u64,
        mut ra: impl FnMut(&mut Sim),
        mut check: impl FnMut(&Sim),
    ) {
        let mut next_ra = self.now;
        while self.now < until {
            let next_dad = self
                .pending_dad
                .iter()
                .map(|d| d.0)
                .min()
                .unwrap_or(u64::MAX);
            let next_timer = self.agent.poll_timeout().unwrap_or(u64::MAX);
            let t = next_ra.min(next_dad).min(next_timer).min(until);
            assert!(t >= self.now, "time went backwards");
            self.now = t;
            if t == next_dad {
                let due: Vec<_> = self
                    .pending_dad
                    .iter()
                    .filter(|d| d.0 <= t)
                    .cloned()
                    .collect();
                self.pending_dad.retain(|d| d.0 > t);
                for (_, addr, ok) in due {
                    if !ok {
                        self.kernel.remove(&addr);
                    }
                    self.event(Event::DadResult { addr, ok });
                }
            }
            if t == next_timer {
                self.event(Event::Timeout);
            }
            if t == next_ra {
                ra(self);
                next_ra = t + ra_every;
            }
            check(self);
        }
    }

    fn ra(&mut self, prefix: &str, valid: u32, preferred: u32) {
        self.event(Event::RaPrefix {
            prefix: p(prefix),
            prefix_len: 64,
            autonomous: true,
            valid,
            preferred,
        });
    }

    fn prefix(&self, prefix: &str) -> Option<PrefixInfo> {
        self.agent
            .snapshot()
            .into_iter()
            .find(|x| x.prefix == p(prefix))
    }

    fn temps(&self, prefix: &str) -> Vec<v6h_privacy::slaac::AddrInfo> {
        self.prefix(prefix)
            .map(|x| {
                x.addrs
                    .into_iter()
                    .filter(|a| a.kind == AddrKind::Temporary)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn non_deprecated_temps(&self, prefix: &str) -> Vec<v6h_privacy::slaac::AddrInfo> {
        let now = self.now;
        self.temps(prefix)
            .into_iter()
            .filter(|a| a.preferred_until > now)
            .collect()
    }
}

/// Checks the RFC 8981 §3.5 schedule: at most one non-deprecated temporary per prefix except
/// during the REGEN_ADVANCE overlap, and at least one whenever the prefix is preferred.
fn schedule_invariants(sim: &Sim, prefix: &str, regen_ms: u64) {
    let nd = sim.non_deprecated_temps(prefix);
    assert!(
        !nd.is_empty(),
        "no non-deprecated temporary at t={}",
        sim.now
    );
    assert!(
        nd.len() <= 2,
        "{} non-deprecated temporaries at t={}",
        nd.len(),
        sim.now
    );
    if nd.len() == 2 {
        let older = nd.iter().min_by_key(|a| a.created).unwrap();
        assert!(
            older.preferred_until - sim.now <= regen_ms,
            "two non-deprecated temporaries outside the REGEN_ADVANCE overlap at t={}",
            sim.now
        );
    }
}

/// Over `days` simulated days, checks the schedule and that each successor is created exactly
/// REGEN_ADVANCE before its predecessor's deprecation; returns the creation times.
fn run_schedule(
    params: Params,
    seed: u64,
    days: u64,
    ra_every_s: u64,
    valid: u32,
    preferred: u32,
) -> Vec<u64> {
    let regen_ms = u64::from(params.regen_advance) * 1000;
    let temp_valid_ms = u64::from(params.temp_valid_lft) * 1000;
    let temp_pref_ms = u64::from(params.temp_preferred_lft) * 1000;
    let max_desync_ms = u64::from(params.max_desync) * 1000;
    let mut sim = Sim::new(params, seed);
    sim.ra(P1, valid, preferred);
    let mut created: Vec<(u64, u64)> = Vec::new(); // (created, preferred_until)
    sim.run(
        days * 86_400_000,
        ra_every_s * 1000,
        |s| s.ra(P1, valid, preferred),
        |s| {
            schedule_invariants(s, P1, regen_ms);
            for t in s.temps(P1) {
                assert!(t.valid_until - t.created <= temp_valid_ms);
                assert!(t.preferred_until - t.created <= temp_pref_ms);
                assert!(
                    t.preferred_until - t.created + max_desync_ms
                        >= temp_pref_ms.min(u64::from(preferred) * 1000),
                    "DESYNC larger than MAX_DESYNC_FACTOR"
                );
                if !created.iter().any(|c| c.0 == t.created) {
                    if let Some(prev) = created.last() {
                        assert_eq!(
                            prev.1 - t.created,
                            regen_ms,
                            "successor not created REGEN_ADVANCE before deprecation"
                        );
                    }
                    created.push((t.created, t.preferred_until));
                } else if let Some(c) = created.iter_mut().find(|c| c.0 == t.created) {
                    c.1 = t.preferred_until;
                }
            }
            // The preferred source is always the newest temporary that passed DAD.
            let info = s.prefix(P1).unwrap();
            if let Some(src) = info.source {
                let cur = info
                    .addrs
                    .iter()
                    .filter(|a| {
                        a.kind == AddrKind::Temporary && !a.tentative && a.preferred_until > s.now
                    })
                    .max_by_key(|a| a.preferred_until)
                    .unwrap();
                assert_eq!(cur.addr, src);
            }
        },
    );
    assert!(sim.sources.get(&p(P1)).copied().flatten().is_some());
    created.iter().map(|c| c.0).collect()
}

#[test]
fn rfc8981_schedule_seven_days_default_lifetimes() {
    for seed in 0..3 {
        let created = run_schedule(Params::default(), seed, 7, 600, 2_592_000, 604_800);
        // One per (TEMP_PREFERRED − DESYNC − REGEN_ADVANCE) ≥ 1 day − 0.4 day: 7 to 12 in 7 days.
        assert!(
            (7..=13).contains(&created.len()),
            "{} temporaries",
            created.len()
        );
    }
}

#[test]
fn rfc8981_schedule_seven_days_infinite_prefix() {
    let created = run_schedule(Params::default(), 9, 7, 1800, INFINITE, INFINITE);
    assert!(created.len() >= 7);
}

#[test]
fn rfc8981_schedule_lab_lifetimes_60s() {
    // The lab's 60 s / 300 s temporaries with a 600/300 prefix, RAs every 5 s, for 2 hours.
    let mut params = Params::with_lifetimes(60, 300);
    params.max_temporaries = 8;
    let regen_ms = 5000;
    let mut sim = Sim::new(params, 3);
    sim.ra(P1, 600, 300);
    let mut max_seen = 0;
    sim.run(
        7_200_000,
        5000,
        |s| s.ra(P1, 600, 300),
        |s| {
            schedule_invariants(s, P1, regen_ms);
            max_seen = max_seen.max(s.temps(P1).len());
        },
    );
    assert!(max_seen <= 8, "cap exceeded: {max_seen}");
    let n_new = sim
        .actions
        .iter()
        .filter(|(_, a)| {
            matches!(
                a,
                Action::AddAddress {
                    kind: AddrKind::Temporary,
                    replace: false,
                    ..
                }
            )
        })
        .count();
    // One every 31..55 s over 2 hours.
    assert!((130..=235).contains(&n_new), "{n_new} temporaries");
}

#[test]
fn two_hour_rule_cases() {
    // Advertised > 2 h: taken.
    assert_eq!(two_hour_rule(10_800, 100), 10_800);
    // Advertised > remaining: taken.
    assert_eq!(two_hour_rule(3600, 1800), 3600);
    // Remaining ≤ 2 h and advertised smaller: unchanged.
    assert_eq!(two_hour_rule(60, 3600), 3600);
    assert_eq!(two_hour_rule(0, 7200), 7200);
    // Remaining > 2 h and advertised ≤ 2 h: 2 h.
    assert_eq!(two_hour_rule(60, 86_400), 7200);
    assert_eq!(two_hour_rule(0, u64::MAX), 7200);
    // Infinity advertised.
    assert_eq!(two_hour_rule(u64::MAX, 10), u64::MAX);
}

#[test]
fn two_hour_rule_applied_to_addresses() {
    let mut sim = Sim::new(Params::default(), 5);
    sim.ra(P1, 86_400, 3600);
    sim.run(2000, 1_000_000, |_| {}, |_| {});
    // A forged RA with valid lifetime 0 cannot kill the addresses: remaining becomes 2 h.
    sim.ra(P1, 0, 0);
    let info = sim.prefix(P1).unwrap();
    for a in &info.addrs {
        assert_eq!(a.valid_until, sim.now + 7_200_000, "{a:?}");
        assert_eq!(
            a.preferred_until, sim.now,
            "preferred is taken as advertised"
        );
    }
    // The refresh actions carry valid 7200 s and preferred 0.
    let last: Vec<_> = sim
        .actions
        .iter()
        .rev()
        .filter(|(_, a)| matches!(a, Action::AddAddress { .. }))
        .take(2)
        .collect();
    for (_, a) in last {
        assert!(
            matches!(
                a,
                Action::AddAddress {
                    valid: 7200,
                    preferred: 0,
                    replace: true,
                    ..
                }
            ),
            "{a:?}"
        );
    }
    // Deprecated prefix: no source, no new temporary.
    assert_eq!(info.source, None);
    // With networkd behaviour the short lifetime is honoured.
    let params = Params {
        honor_short_valid_lifetime: true,
        ..Params::default()
    };
    let mut sim = Sim::new(params, 5);
    sim.ra(P1, 86_400, 3600);
    sim.ra(P1, 60, 0);
    for a in sim.prefix(P1).unwrap().addrs {
        assert_eq!(a.valid_until, sim.now + 60_000);
    }
}

#[test]
fn two_hour_rule_short_remaining_unchanged() {
    let mut sim = Sim::new(Params::default(), 5);
    sim.ra(P1, 3600, 1800);
    sim.now = 1_000_000;
    sim.ra(P1, 600, 600);
    // Remaining was 2600 s ≤ 2 h and 600 < 2600: valid unchanged.
    let st = sim.prefix(P1).unwrap();
    let stable = st
        .addrs
        .iter()
        .find(|a| a.kind == AddrKind::Stable)
        .unwrap();
    assert_eq!(stable.valid_until, 3_600_000);
}

#[test]
fn ignored_prefix_information() {
    let mut sim = Sim::new(Params::default(), 1);
    // A flag clear, link-local, preferred > valid, /48, new with valid 0: all ignored.
    sim.event(Event::RaPrefix {
        prefix: p(P1),
        prefix_len: 64,
        autonomous: false,
        valid: 600,
        preferred: 300,
    });
    sim.event(Event::RaPrefix {
        prefix: p("fe80::"),
        prefix_len: 64,
        autonomous: true,
        valid: 600,
        preferred: 300,
    });
    sim.event(Event::RaPrefix {
        prefix: p(P1),
        prefix_len: 64,
        autonomous: true,
        valid: 300,
        preferred: 600,
    });
    sim.event(Event::RaPrefix {
        prefix: p(P1),
        prefix_len: 48,
        autonomous: true,
        valid: 600,
        preferred: 300,
    });
    sim.event(Event::RaPrefix {
        prefix: p(P1),
        prefix_len: 64,
        autonomous: true,
        valid: 0,
        preferred: 0,
    });
    assert!(sim.agent.snapshot().is_empty());
    assert!(sim.actions.is_empty());
}

#[test]
fn preferred_zero_prefix_gets_no_temporary_and_is_no_failure() {
    let mut sim = Sim::new(Params::with_lifetimes(60, 300), 2);
    sim.ra(P1, 600, 0);
    sim.run(
        120_000,
        5000,
        |s| s.ra(P1, 600, 0),
        |s| {
            assert!(s.temps(P1).is_empty(), "temporary for a deprecated prefix");
        },
    );
    // The stable address exists, deprecated (RFC 4862 (d)).
    let info = sim.prefix(P1).unwrap();
    assert_eq!(info.addrs.len(), 1);
    assert_eq!(info.addrs[0].kind, AddrKind::Stable);
    assert!(!info.degraded);
    // A healthy prefix added later is served at once.
    sim.ra(P2, 600, 300);
    assert_eq!(sim.temps(P2).len(), 1);
    sim.run(125_000, 5000, |s| s.ra(P2, 600, 300), |_| {});
    assert!(sim.sources.get(&p(P2)).copied().flatten().is_some());
}

#[test]
fn forged_dad_backs_off_per_prefix_and_recovers() {
    let mut params = Params::with_lifetimes(60, 300);
    params.backoff_min = 60;
    let mut sim = Sim::new(params, 7);
    let attack_until = 200_000;
    // Every temporary in P1 "fails" DAD while the attack lasts; stable addresses and P2 pass.
    let prefix1 = p(P1);
    sim.dad = Box::new(move |now, addr, kind| {
        !(kind == AddrKind::Temporary
            && now < attack_until
            && (u128::from(addr) >> 64) == (u128::from(prefix1) >> 64))
    });
    sim.ra(P1, 600, 300);
    sim.ra(P2, 600, 300);
    let mut degraded_seen = false;
    sim.run(
        attack_until + 300_000,
        5000,
        |s| {
            s.ra(P1, 600, 300);
            s.ra(P2, 600, 300);
        },
        |s| {
            // Other prefix unaffected throughout.
            if s.now > 2000 {
                assert!(
                    s.sources.get(&p(P2)).copied().flatten().is_some(),
                    "P2 lost its temporary"
                );
            }
            if s.prefix(P1).unwrap().degraded {
                degraded_seen = true;
            }
            // Stable addresses are never touched.
            assert!(
                s.prefix(P1)
                    .unwrap()
                    .addrs
                    .iter()
                    .any(|a| a.kind == AddrKind::Stable)
            );
        },
    );
    assert!(degraded_seen);
    // Attempts during the attack: bursts of 3, separated by backoff (60 s, 120 s ± 20 %).
    let attempts: Vec<u64> = sim
        .actions
        .iter()
        .filter_map(|(t, a)| match a {
            Action::AddAddress {
                addr,
                kind: AddrKind::Temporary,
                replace: false,
                ..
            } if (u128::from(*addr) >> 64) == (u128::from(p(P1)) >> 64) && *t < attack_until => {
                Some(*t)
            }
            _ => None,
        })
        .collect();
    assert!(attempts.len() >= 6 && attempts.len() <= 12, "{attempts:?}");
    assert_eq!(attempts[0], 0);
    assert_eq!(attempts[1], 1000);
    assert_eq!(attempts[2], 2000);
    let gap = attempts[3] - attempts[2];
    assert!((48_000..=73_000).contains(&gap), "first backoff {gap} ms");
    // Recovered unattended after the attack.
    assert!(sim.sources.get(&p(P1)).copied().flatten().is_some());
    assert!(!sim.prefix(P1).unwrap().degraded);
}

#[test]
fn stable_dad_conflict_increments_and_persists_counter() {
    let mut sim = Sim::new(Params::default(), 4);
    let first = std::cell::Cell::new(None::<Ipv6Addr>);
    let shared = std::rc::Rc::new(first);
    let s2 = shared.clone();
    // The first stable address is taken by another node.
    sim.dad = Box::new(move |_, addr, kind| {
        if kind == AddrKind::Stable && s2.get().is_none() {
            s2.set(Some(addr));
            return false;
        }
        true
    });
    sim.ra(P1, 86_400, 14_400);
    sim.run(5000, 1_000_000, |_| {}, |_| {});
    let taken = shared.get().unwrap();
    let info = sim.prefix(P1).unwrap();
    assert_eq!(info.dad_counter, 1);
    let stable = info
        .addrs
        .iter()
        .find(|a| a.kind == AddrKind::Stable)
        .unwrap();
    assert_ne!(stable.addr, taken);
    assert!(!stable.tentative);
    assert_eq!(sim.saved_counters.get(&p(P1)), Some(&1));
    // The counter was saved before the retry address was added, and the retry waited 1 s.
    let save_idx = sim
        .actions
        .iter()
        .position(|(_, a)| matches!(a, Action::SaveDadCounter { .. }))
        .unwrap();
    let add_idx = sim
        .actions
        .iter()
        .position(|(_, a)| matches!(a, Action::AddAddress { addr, replace: false, .. } if *addr == stable.addr))
        .unwrap();
    assert!(save_idx < add_idx);
    assert_eq!(sim.actions[add_idx].0, 2000);
    // After a restart with the stored counter the same address returns without a conflict.
    let mut sim2 = Sim::with_counters(Params::default(), 99, vec![(p(P1), 1)]);
    sim2.ra(P1, 86_400, 14_400);
    let again = sim2.prefix(P1).unwrap();
    assert_eq!(
        again
            .addrs
            .iter()
            .find(|a| a.kind == AddrKind::Stable)
            .unwrap()
            .addr,
        stable.addr
    );
    assert!(sim2.saved_counters.is_empty());
}

#[test]
fn late_timer_after_suspend_still_has_a_preferred_temporary() {
    let mut sim = Sim::new(Params::default(), 8);
    sim.ra(P1, INFINITE, INFINITE);
    sim.run(2000, 1_000_000, |_| {}, |_| {});
    // Sleep three days without timers, then one late Timeout.
    sim.now += 3 * 86_400_000;
    sim.event(Event::Timeout);
    let nd = sim.non_deprecated_temps(P1);
    assert_eq!(nd.len(), 1);
    assert!(nd[0].tentative);
    sim.run(sim.now + 2000, 1_000_000, |_| {}, |_| {});
    assert_eq!(sim.sources.get(&p(P1)).copied().flatten(), Some(nd[0].addr));
}

#[test]
fn infinite_prefix_gets_finite_refreshed_stable_lifetimes() {
    let mut sim = Sim::new(Params::default(), 8);
    sim.ra(P1, INFINITE, INFINITE);
    // No more RAs for three days: the stable address is re-sent every 12 h with 1-day lifetimes.
    sim.run(3 * 86_400_000, u64::MAX / 4, |_| {}, |_| {});
    let refreshes: Vec<u64> = sim
        .actions
        .iter()
        .filter_map(|(t, a)| match a {
            Action::AddAddress {
                kind: AddrKind::Stable,
                replace: true,
                valid,
                preferred,
                ..
            } => {
                assert_eq!((*valid, *preferred), (86_400, 86_400));
                Some(*t)
            }
            _ => None,
        })
        .collect();
    assert_eq!(refreshes.len(), 6, "{refreshes:?}");
    for w in refreshes.windows(2) {
        assert_eq!(w[1] - w[0], 43_200_000);
    }
}

#[test]
fn removed_addresses_are_recreated_without_counting_as_dad_failure() {
    let mut sim = Sim::new(Params::default(), 11);
    sim.ra(P1, 86_400, 14_400);
    sim.run(2000, 1_000_000, |_| {}, |_| {});
    let before = sim.prefix(P1).unwrap();
    let stable = before
        .addrs
        .iter()
        .find(|a| a.kind == AddrKind::Stable)
        .unwrap()
        .addr;
    let temp = before.source.unwrap();
    // Someone deletes both addresses.
    sim.kernel.remove(&stable);
    sim.kernel.remove(&temp);
    sim.event(Event::AddressRemoved { addr: stable });
    sim.event(Event::AddressRemoved { addr: temp });
    sim.run(5000, 1_000_000, |_| {}, |_| {});
    let after = sim.prefix(P1).unwrap();
    // Same stable address (same counter), a fresh temporary, no backoff, source restored.
    assert_eq!(after.dad_counter, 0);
    assert!(
        after
            .addrs
            .iter()
            .any(|a| a.kind == AddrKind::Stable && a.addr == stable && !a.tentative)
    );
    assert!(!after.degraded);
    let src = after.source.unwrap();
    assert_ne!(src, temp);
    assert!(sim.kernel.contains_key(&stable) && sim.kernel.contains_key(&src));
}

#[test]
fn ra_flood_of_distinct_prefixes_is_bounded() {
    let mut sim = Sim::new(Params::with_lifetimes(60, 300), 9);
    sim.ra(P1, 30, 20);
    for i in 0..1000u16 {
        sim.ra(&format!("2001:db8:ff:{i:x}::"), 600, 300);
    }
    let snap = sim.agent.snapshot();
    assert_eq!(snap.len(), MAX_PREFIXES);
    assert!(
        sim.kernel.len() <= MAX_PREFIXES * 3,
        "{} addresses",
        sim.kernel.len()
    );
    // Once a prefix expires, a new one is accepted again.
    sim.run(40_000, 1_000_000, |_| {}, |_| {});
    assert!(sim.prefix(P1).is_none());
    sim.ra(P2, 600, 300);
    assert!(sim.prefix(P2).is_some());
    assert_eq!(sim.agent.snapshot().len(), MAX_PREFIXES);
}

#[test]
fn expired_prefix_is_forgotten() {
    let mut sim = Sim::new(Params::with_lifetimes(60, 300), 8);
    sim.ra(P1, 30, 20);
    sim.run(40_000, 1_000_000, |_| {}, |_| {});
    assert!(sim.prefix(P1).is_none());
    assert_eq!(sim.sources.get(&p(P1)).copied().flatten(), None);
}

#[test]
fn bad_params_rejected() {
    assert!(
        Agent::new(
            Params::with_lifetimes(5, 300),
            ident(),
            vec![],
            StdRng::seed_from_u64(0)
        )
        .is_err()
    );
    assert!(
        Agent::new(
            Params::with_lifetimes(600, 300),
            ident(),
            vec![],
            StdRng::seed_from_u64(0)
        )
        .is_err()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Reserved IIDs are never chosen, whatever the seed (the harness asserts on every add).
    #[test]
    fn reserved_iids_never_chosen_in_simulation(seed in proptest::prelude::any::<u64>()) {
        let mut sim = Sim::new(Params::with_lifetimes(60, 300), seed);
        sim.ra(P1, 600, 300);
        sim.run(600_000, 5000, |s| s.ra(P1, 600, 300), |_| {});
        for (_, a) in &sim.actions {
            if let Action::AddAddress { addr, .. } = a {
                proptest::prop_assert!(!is_reserved_iid(iid_of(addr)));
            }
        }
    }
}

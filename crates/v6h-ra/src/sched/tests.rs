//! Fake-clock simulations of the scheduler.

use super::*;
use crate::build::tests::home_router;
use crate::config::{Client, Prefix};
use crate::wire::{NdOptionRepr, RaRepr, RsRepr};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

fn host(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16 | 0x100)
}

fn ctx() -> LinkContext {
    LinkContext {
        mac: Some(vec![2, 0, 0, 0, 0, 1]),
        ..Default::default()
    }
}

fn sched(seed: u64, iface: Interface) -> Scheduler<SmallRng> {
    let mut s = Scheduler::new(iface, ctx(), SmallRng::seed_from_u64(seed), 0);
    s.handle(0, Event::LinkUp);
    s
}

/// Runs the scheduler until `until`, returning (time, transmit) pairs.
fn run(s: &mut Scheduler<SmallRng>, from: Millis, until: Millis) -> Vec<(Millis, Transmit)> {
    let mut out = Vec::new();
    let mut now = from;
    loop {
        while let Some(t) = s.poll_transmit(now) {
            out.push((now, t));
        }
        match s.poll_timeout() {
            Some(t) if t <= until => now = now.max(t),
            _ => break,
        }
    }
    out
}

fn rs_bytes() -> Vec<u8> {
    RsRepr {
        options: vec![NdOptionRepr::SourceLinkAddr(vec![2, 0, 0, 0, 0, 9])],
    }
    .emit()
    .unwrap()
}

fn rs_bare() -> Vec<u8> {
    RsRepr::default().emit().unwrap()
}

fn multicast_times(tx: &[(Millis, Transmit)]) -> Vec<Millis> {
    tx.iter()
        .filter(|(_, t)| t.dst == ALL_NODES)
        .map(|(n, _)| *n)
        .collect()
}

#[test]
fn waits_for_dad_then_initial_ras_with_jitter() {
    let mut initial_gaps = Vec::new();
    for seed in 0..20 {
        let mut s = sched(seed, home_router());
        // Link up but the link-local is still tentative: nothing is sent.
        assert!(run(&mut s, 0, 5_000).is_empty());
        assert_eq!(s.state(), State::WaitingReady);
        s.handle(5_000, Event::Ready { source: LL });
        let tx = run(&mut s, 5_000, 5_000 + 600_000);
        let times = multicast_times(&tx);
        assert_eq!(times[0], 5_000, "first RA right after DAD");
        assert!(tx.iter().all(|(_, t)| t.src == LL));
        let gaps: Vec<Millis> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // Two more within the initial phase: min(U[9.9, 30], 16) s.
        for g in &gaps[..2] {
            assert!((9_900..=16_000).contains(g), "initial gap {g}");
        }
        // Then U[Min, Max].
        for g in &gaps[2..] {
            assert!((9_900..=30_000).contains(g), "steady gap {g}");
        }
        initial_gaps.extend_from_slice(&gaps[..2]);
        // Every RA is the home-router RA.
        let ra = RaRepr::parse(&tx[0].1.bytes).unwrap();
        assert_eq!(ra.header.router_lifetime, 90);
    }
    // Jitter: radvd uses exactly 16 s; we do not.
    initial_gaps.sort_unstable();
    initial_gaps.dedup();
    assert!(
        initial_gaps.len() > 10,
        "initial gaps not jittered: {initial_gaps:?}"
    );
}

#[test]
fn steady_intervals_within_min_max_and_spread() {
    let mut s = sched(7, home_router());
    s.handle(0, Event::Ready { source: LL });
    let tx = run(&mut s, 0, 24 * 3600 * 1000);
    let times = multicast_times(&tx);
    let gaps: Vec<Millis> = times.windows(2).skip(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 3000);
    assert!(gaps.iter().all(|g| (9_900..=30_000).contains(g)));
    let mean = gaps.iter().sum::<u64>() / gaps.len() as u64;
    assert!((18_500..=21_400).contains(&mean), "mean {mean}");
    assert!(*gaps.iter().min().unwrap() < 11_000);
    assert!(*gaps.iter().max().unwrap() > 29_000);
    assert_eq!(s.counters().ra_sent_multicast, times.len() as u64);
}

#[test]
fn rs_reply_is_unicast_after_random_delay() {
    let mut delays = Vec::new();
    for seed in 0..30 {
        let mut s = sched(seed, home_router());
        s.handle(0, Event::Ready { source: LL });
        run(&mut s, 0, 5_000); // the first RA goes out at 0
        let rs = rs_bytes();
        s.handle(
            5_000,
            Event::Received {
                src: host(1),
                hop_limit: 255,
                bytes: &rs,
            },
        );
        let tx = run(&mut s, 5_000, 5_600);
        let uni: Vec<_> = tx.iter().filter(|(_, t)| t.dst == host(1)).collect();
        assert_eq!(uni.len(), 1);
        let d = uni[0].0 - 5_000;
        assert!(d <= MAX_RA_DELAY_TIME);
        delays.push(d);
    }
    delays.sort_unstable();
    delays.dedup();
    assert!(delays.len() > 15, "RS delays not random: {delays:?}");
}

#[test]
fn rs_flood_is_rate_limited() {
    // 1,000 RS/s for 10 s, each from a different host.
    let mut s = sched(1, home_router());
    s.handle(0, Event::Ready { source: LL });
    let mut tx = run(&mut s, 0, 20_000);
    let rs = rs_bytes();
    let start = 20_000;
    for i in 0..10_000u32 {
        let now = start + Millis::from(i);
        s.handle(
            now,
            Event::Received {
                src: host(i),
                hop_limit: 255,
                bytes: &rs,
            },
        );
        while let Some(t) = s.poll_transmit(now) {
            tx.push((now, t));
        }
    }
    tx.extend(run(&mut s, start + 10_000, start + 11_000));
    let during: Vec<&(Millis, Transmit)> = tx
        .iter()
        .filter(|(n, _)| *n >= start && *n <= start + 11_000)
        .collect();
    let unicast = during.iter().filter(|(_, t)| t.dst != ALL_NODES).count();
    let multicast: Vec<Millis> = during
        .iter()
        .filter(|(_, t)| t.dst == ALL_NODES)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(s.counters().rs_received, 10_000);
    // Token bucket: burst 10 plus 10/s over ~10.5 s.
    assert!(unicast <= 10 + 106, "unicast replies {unicast}");
    assert!(unicast >= 50, "unicast replies {unicast}");
    // Excess RSs are answered by multicast RAs at most every MinDelayBetweenRAs (3 s).
    assert!(multicast.len() <= 4, "multicast {multicast:?}");
    assert!(!multicast.is_empty());
    let all_mc = multicast_times(&tx);
    assert!(all_mc.windows(2).all(|w| w[1] - w[0] >= 3_000));
    // Every RS the bucket refused is counted and reported (the daemon logs them, gated).
    let limited = s.counters().rs_rate_limited;
    // (A unicast reply that a multicast RA overtakes is not sent, so `unicast` is a floor.)
    assert!(limited <= 10_000 - unicast as u64, "rate-limited {limited}");
    assert!(limited >= 9_800, "rate-limited {limited}");
    let mut reported = 0;
    while let Some(n) = s.poll_notice() {
        if matches!(n, Notice::RateLimited { .. }) {
            reported += 1;
        }
    }
    assert_eq!(reported, limited);
}

#[test]
fn multicast_reply_respects_min_delay() {
    let mut iface = home_router();
    iface.adv_ra_solicited_unicast = false;
    let mut s = sched(3, iface);
    s.handle(0, Event::Ready { source: LL });
    let first = run(&mut s, 0, 1_000);
    assert_eq!(multicast_times(&first), vec![0]);
    let rs = rs_bytes();
    s.handle(
        1_000,
        Event::Received {
            src: host(1),
            hop_limit: 255,
            bytes: &rs,
        },
    );
    let tx = run(&mut s, 1_000, 3_600);
    let times = multicast_times(&tx);
    assert_eq!(times.len(), 1);
    assert!((3_000..=3_500).contains(&times[0]), "{times:?}");
    assert!(tx.iter().all(|(_, t)| t.dst == ALL_NODES));
}

#[test]
fn rs_from_unspecified_gets_multicast() {
    let mut s = sched(4, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 10_000);
    let rs = rs_bare();
    s.handle(
        10_000,
        Event::Received {
            src: Ipv6Addr::UNSPECIFIED,
            hop_limit: 255,
            bytes: &rs,
        },
    );
    let tx = run(&mut s, 10_000, 10_500);
    assert_eq!(multicast_times(&tx).len(), 1);
}

#[test]
fn invalid_rs_and_ra_are_dropped_and_counted() {
    let mut s = sched(5, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 1_000);
    let rs = rs_bytes();
    let cases: [(Ipv6Addr, u8, Vec<u8>, DropReason); 6] = [
        (host(1), 64, rs.clone(), DropReason::HopLimit),
        (
            "2001:db8::5".parse().unwrap(),
            255,
            rs.clone(),
            DropReason::Source,
        ),
        (
            Ipv6Addr::UNSPECIFIED,
            255,
            rs.clone(),
            DropReason::SllaoFromUnspecified,
        ),
        (
            host(1),
            255,
            vec![133, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            DropReason::Malformed,
        ),
        (
            host(1),
            255,
            vec![133, 1, 0, 0, 0, 0, 0, 0],
            DropReason::Malformed,
        ),
        (
            "2001:db8::6".parse().unwrap(),
            255,
            s_ra(),
            DropReason::Source,
        ),
    ];
    for (src, hl, bytes, _) in &cases {
        s.handle(
            1_000,
            Event::Received {
                src: *src,
                hop_limit: *hl,
                bytes,
            },
        );
    }
    assert!(run(&mut s, 1_000, 2_000).is_empty());
    let d = &s.counters().drops;
    assert_eq!(d[&DropReason::HopLimit], 1);
    assert_eq!(d[&DropReason::Source], 2);
    assert_eq!(d[&DropReason::SllaoFromUnspecified], 1);
    assert_eq!(d[&DropReason::Malformed], 2);
    assert_eq!(s.counters().rs_received, 0);
    // Each drop is reported with its reason and hop limit, so the daemon can log it
    // (radvd's "invalid hoplimit").
    let dropped: Vec<(Ipv6Addr, u8, u8, DropReason)> = std::iter::from_fn(|| s.poll_notice())
        .filter_map(|n| match n {
            Notice::Dropped {
                src,
                kind,
                hop_limit,
                reason,
            } => Some((src, kind, hop_limit, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), cases.len());
    assert_eq!(
        dropped[0],
        (
            host(1),
            crate::wire::ICMPV6_ROUTER_SOLICIT,
            64,
            DropReason::HopLimit
        )
    );
    for ((src, _, hl, reason), (csrc, chl, _, creason)) in dropped.iter().zip(&cases) {
        assert_eq!((src, hl, reason), (csrc, chl, creason));
    }
}

#[test]
fn drop_reasons_have_stable_names() {
    assert_eq!(DropReason::HopLimit.as_str(), "hop_limit");
    assert_eq!(DropReason::RateLimited.as_str(), "rate_limited");
    assert!(DropReason::HopLimit.describe().contains("hop limit"));
}

fn s_ra() -> Vec<u8> {
    crate::build::build_ras(&home_router(), &ctx(), Mode::Normal, &[]).packets[0].clone()
}

#[test]
fn final_ras_on_shutdown() {
    let mut s = sched(6, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 100_000);
    s.handle(100_000, Event::Shutdown);
    let tx = run(&mut s, 100_000, 200_000);
    let times: Vec<Millis> = tx.iter().map(|(n, _)| *n).collect();
    assert_eq!(times, vec![100_000, 103_000, 106_000]);
    for (_, t) in &tx {
        assert_eq!(t.dst, ALL_NODES);
        let ra = RaRepr::parse(&t.bytes).unwrap();
        assert_eq!(ra.header.router_lifetime, 0);
        for o in &ra.options {
            match o {
                NdOptionRepr::Rdnss(r) => assert_eq!(r.lifetime, 0),
                NdOptionRepr::Prefix(p) => assert_eq!(p.valid_lifetime, 86400),
                _ => {}
            }
        }
    }
    assert!(s.is_done());
    assert_eq!(s.counters().ra_sent_final, 3);
    assert_eq!(s.poll_notice(), Some(Notice::Finished));
    // A second signal cuts the goodbye short.
    let mut s = sched(6, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 1_000);
    s.handle(1_000, Event::Shutdown);
    assert_eq!(run(&mut s, 1_000, 1_000).len(), 1);
    s.handle(1_500, Event::Shutdown);
    assert!(s.is_done());
    assert!(run(&mut s, 1_500, 10_000).is_empty());
}

#[test]
fn no_final_ra_when_remove_adv_on_exit_off_or_not_ready() {
    let mut i = home_router();
    i.remove_adv_on_exit = false;
    let mut s = sched(8, i);
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 1_000);
    s.handle(1_000, Event::Shutdown);
    assert!(s.is_done());
    assert!(run(&mut s, 1_000, 10_000).is_empty());
    let mut s = sched(8, home_router());
    s.handle(0, Event::Shutdown);
    assert!(s.is_done());
}

#[test]
fn reload_withdraws_removed_prefix_and_restarts_initial_phase() {
    let mut old = home_router();
    old.prefix
        .push(Prefix::new("2001:db8:5678::".parse().unwrap(), 64));
    let mut s = sched(9, old);
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 200_000);
    s.handle(200_000, Event::Reload(Box::new(home_router())));
    let tx = run(&mut s, 200_000, 200_000 + 8_000_000);
    let times = multicast_times(&tx);
    assert_eq!(times[0], 200_000, "RA right after a changing reload");
    assert!(times[1] - times[0] <= 16_000, "new initial phase");
    let withdrawn_in = |bytes: &[u8]| {
        RaRepr::parse(bytes).unwrap().options.iter().any(|o| {
            matches!(o, NdOptionRepr::Prefix(p)
                if p.prefix == "2001:db8:5678::".parse::<Ipv6Addr>().unwrap()
                    && p.valid_lifetime == 0 && p.preferred_lifetime == 0)
        })
    };
    assert!(withdrawn_in(&tx[0].1.bytes));
    // Repeated until the old lifetime (capped at 2 h) would have passed, then dropped.
    let last_with = tx
        .iter()
        .filter(|(_, t)| withdrawn_in(&t.bytes))
        .map(|(n, _)| *n)
        .max();
    let last_with = last_with.unwrap();
    assert!((200_000 + 7_170_000..200_000 + 7_200_000).contains(&last_with));
    assert!(!withdrawn_in(&tx.last().unwrap().1.bytes));
}

#[test]
fn unchanged_reload_leaves_schedule_alone() {
    let mut s = sched(10, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 100_000);
    let before = s.poll_timeout();
    s.handle(100_000, Event::Reload(Box::new(home_router())));
    assert_eq!(s.poll_timeout(), before);
}

#[test]
fn reload_disabling_sends_final_ras() {
    let mut s = sched(11, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 100_000);
    let mut off = home_router();
    off.adv_send_advert = false;
    s.handle(100_000, Event::Reload(Box::new(off)));
    let tx = run(&mut s, 100_000, 200_000);
    assert_eq!(tx.len(), 3);
    assert!(s.is_done());
    // Enabling again restarts.
    s.handle(300_000, Event::Reload(Box::new(home_router())));
    assert_eq!(s.state(), State::Running);
    assert_eq!(
        multicast_times(&run(&mut s, 300_000, 300_000)),
        vec![300_000]
    );
}

#[test]
fn link_down_stops_and_link_up_waits_for_ready() {
    let mut s = sched(12, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 50_000);
    s.handle(50_000, Event::LinkDown);
    assert!(run(&mut s, 50_000, 500_000).is_empty());
    s.handle(500_000, Event::LinkUp);
    s.handle(500_000, Event::NotReady);
    assert!(run(&mut s, 500_000, 501_000).is_empty());
    s.handle(501_000, Event::Ready { source: LL });
    let tx = run(&mut s, 501_000, 501_000);
    assert_eq!(multicast_times(&tx), vec![501_000]);
}

#[test]
fn clients_get_unicast_and_others_are_ignored() {
    let mut i = home_router();
    i.clients = vec![
        Client {
            address: host(1),
            excluded: false,
        },
        Client {
            address: host(2),
            excluded: true,
        },
    ];
    let mut s = sched(13, i);
    s.handle(0, Event::Ready { source: LL });
    let tx = run(&mut s, 0, 100_000);
    assert!(!tx.is_empty());
    assert!(tx.iter().all(|(_, t)| t.dst == host(1)));
    let rs = rs_bytes();
    for h in [host(2), host(3)] {
        s.handle(
            100_000,
            Event::Received {
                src: h,
                hop_limit: 255,
                bytes: &rs,
            },
        );
    }
    assert_eq!(s.counters().drops[&DropReason::NotClient], 2);
}

#[test]
fn unicast_only_sends_no_periodic_ras() {
    let mut i = home_router();
    i.unicast_only = true;
    let mut s = sched(14, i);
    s.handle(0, Event::Ready { source: LL });
    assert!(run(&mut s, 0, 1_000_000).is_empty());
    let rs = rs_bytes();
    s.handle(
        1_000_000,
        Event::Received {
            src: host(1),
            hop_limit: 255,
            bytes: &rs,
        },
    );
    let tx = run(&mut s, 1_000_000, 1_001_000);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].1.dst, host(1));
}

#[test]
fn consistency_checks_count_and_report() {
    let mut s = sched(15, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 1_000);
    let mut other = home_router();
    other.adv_other_config_flag = false;
    other.prefix[0].adv_valid_lifetime = crate::config::Lifetime(3600);
    other.rdnss[0].addresses = vec!["2001:db8:ffff::53".parse().unwrap()];
    let ra = crate::build::build_ras(&other, &ctx(), Mode::Normal, &[]).packets[0].clone();
    let peer: Ipv6Addr = "fe80::99".parse().unwrap();
    s.handle(
        1_000,
        Event::Received {
            src: peer,
            hop_limit: 255,
            bytes: &ra,
        },
    );
    let mut seen = Vec::new();
    while let Some(n) = s.poll_notice() {
        if let Notice::Inconsistent { peer: p, what } = n {
            assert_eq!(p, peer);
            seen.push(what);
        }
    }
    assert!(seen.contains(&Inconsistency::Other { ours: true }));
    assert!(seen.iter().any(|w| matches!(
        w,
        Inconsistency::PrefixValid {
            ours: 86400,
            theirs: 3600,
            ..
        }
    )));
    assert!(seen.contains(&Inconsistency::UnknownRdnss(
        "2001:db8:ffff::53".parse().unwrap()
    )));
    assert_eq!(s.counters().inconsistencies, seen.len() as u64);
    // Our own RA looped back is ignored.
    s.handle(
        1_000,
        Event::Received {
            src: LL,
            hop_limit: 255,
            bytes: &s_ra(),
        },
    );
    assert_eq!(s.counters().drops[&DropReason::Own], 1);
}

#[test]
fn forwarding_off_sends_lifetime_zero() {
    let mut s = sched(16, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 100_000);
    let mut c = ctx();
    c.forwarding = false;
    s.handle(100_000, Event::Context(c));
    assert_eq!(s.poll_notice(), Some(Notice::Forwarding(false)));
    let tx = run(&mut s, 100_000, 100_000);
    assert_eq!(tx.len(), 1);
    assert_eq!(
        RaRepr::parse(&tx[0].1.bytes)
            .unwrap()
            .header
            .router_lifetime,
        0
    );
}

#[test]
fn vanished_auto_prefix_is_withdrawn() {
    let mut i = home_router();
    i.prefix = vec![Prefix::new(Ipv6Addr::UNSPECIFIED, 64)];
    let mut c = ctx();
    c.addresses = vec![crate::build::IfAddr::permanent(
        "2001:db8:77::1".parse().unwrap(),
        64,
    )];
    let mut s = Scheduler::new(i, c, SmallRng::seed_from_u64(17), 0);
    s.handle(0, Event::LinkUp);
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 100_000);
    s.handle(100_000, Event::Context(ctx()));
    let tx = run(&mut s, 100_000, 100_000);
    let ra = RaRepr::parse(&tx[0].1.bytes).unwrap();
    assert!(
        ra.options
            .iter()
            .any(|o| matches!(o, NdOptionRepr::Prefix(p) if p.valid_lifetime == 0))
    );
}

#[test]
fn decrement_lifetimes_and_reset() {
    let mut i = home_router();
    i.prefix[0].decrement_lifetimes = true;
    let mut s = sched(18, i);
    s.handle(0, Event::Ready { source: LL });
    let tx = run(&mut s, 0, 1_000_000);
    let (n, t) = tx.last().unwrap();
    let pv = |b: &[u8]| match &RaRepr::parse(b).unwrap().options[0] {
        NdOptionRepr::Prefix(p) => p.valid_lifetime,
        _ => panic!(),
    };
    assert_eq!(pv(&t.bytes), 86400 - (*n / 1000) as u32);
    s.handle(1_000_000, Event::ResetDecrement);
    let rs = rs_bytes();
    s.handle(
        1_000_000,
        Event::Received {
            src: host(1),
            hop_limit: 255,
            bytes: &rs,
        },
    );
    let tx = run(&mut s, 1_000_000, 1_000_600);
    let uni = tx.iter().find(|(_, t)| t.dst == host(1)).unwrap();
    assert_eq!(pv(&uni.1.bytes), 86400);
}

#[test]
fn send_failure_retries_with_backoff() {
    let mut s = sched(19, home_router());
    s.handle(0, Event::Ready { source: LL });
    run(&mut s, 0, 0);
    s.handle(0, Event::SendFailed);
    assert_eq!(s.poll_timeout(), Some(500));
    run(&mut s, 0, 500);
    s.handle(500, Event::SendFailed);
    assert_eq!(s.poll_timeout(), Some(1_500));
    assert_eq!(s.counters().send_failures, 2);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever RSs arrive (any times, sources, hop limits), multicast RAs stay at least
        /// MinDelayBetweenRAs apart, every packet parses as an RA, and unicast replies respect
        /// the token bucket.
        #[test]
        fn invariants_under_random_rs(
            seed in any::<u64>(),
            rs in prop::collection::vec((0u64..120_000, 0u32..50, prop::bool::weighted(0.9)), 0..400),
        ) {
            let mut rs = rs;
            rs.sort_by_key(|r| r.0);
            let mut s = sched(seed, home_router());
            s.handle(0, Event::Ready { source: LL });
            let bytes = rs_bytes();
            let mut tx: Vec<(Millis, Transmit)> = Vec::new();
            let mut now = 0;
            for (t, h, ok) in rs {
                tx.extend(run(&mut s, now, t));
                now = now.max(t);
                s.handle(now, Event::Received {
                    src: host(h),
                    hop_limit: if ok { 255 } else { 64 },
                    bytes: &bytes,
                });
            }
            tx.extend(run(&mut s, now, 130_000));
            let mc = multicast_times(&tx);
            prop_assert!(mc.windows(2).all(|w| w[1] - w[0] >= 3_000), "{:?}", mc);
            for (_, t) in &tx {
                prop_assert!(RaRepr::parse(&t.bytes).is_ok());
                prop_assert_eq!(t.src, LL);
            }
            let unicast = tx.iter().filter(|(_, t)| t.dst != ALL_NODES).count() as u64;
            prop_assert!(unicast <= u64::from(UNICAST_BURST) + 130 * u64::from(UNICAST_RATE));
        }
    }
}

//! Fake-clock tests of every engine operation and status code.

use std::net::Ipv6Addr;
use v6h_lease::*;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}
fn addr(s: &str) -> Resource {
    Resource::Addr(a(s))
}
fn pfx(s: &str) -> Resource {
    Resource::Prefix(p(s))
}

const LAN: &str = "lan0";

/// A /64 LAN with a small NA range, and /56s from the routed /48 minus the LAN's /56.
fn config() -> EngineConfig {
    let mut l = LinkConfig::new(LAN);
    l.na_pools.push(NaPoolConfig {
        first: a("2001:db8:1234::100"),
        last: a("2001:db8:1234::103"),
        exclude: vec![p("2001:db8:1234::101/128")],
    });
    l.pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:1234::/48"),
        delegated_len: 56,
        exclude: vec![p("2001:db8:1234::/64")],
    });
    l.on_link = vec![p("2001:db8:1234::/64")];
    l.na_lifetimes = Lifetimes {
        preferred: 1000,
        valid: 2000,
        t1: None,
        t2: None,
    };
    l.pd_lifetimes = Lifetimes {
        preferred: 3000,
        valid: 4000,
        t1: Some(1000),
        t2: Some(2000),
    };
    l.rapid_commit = true;
    let mut c = EngineConfig::new(vec![l]);
    c.decline_quarantine_secs = 500;
    c
}

fn engine() -> (Engine, LinkId) {
    let e = Engine::new(config()).unwrap();
    let id = e.link_id(LAN).unwrap();
    (e, id)
}

fn ia<'a>(
    link: LinkId,
    duid: &'a [u8],
    kind: IaKind,
    iaid: u32,
    leases: &'a [Resource],
) -> IaRequest<'a> {
    IaRequest {
        link,
        duid,
        kind,
        iaid,
        leases,
    }
}

const D1: &[u8] = &[0, 3, 0, 1, 1, 1, 1, 1, 1, 1];
const D2: &[u8] = &[0, 3, 0, 1, 2, 2, 2, 2, 2, 2];
const D3: &[u8] = &[0, 3, 0, 1, 3, 3, 3, 3, 3, 3];
const D4: &[u8] = &[0, 3, 0, 1, 4, 4, 4, 4, 4, 4];

#[test]
fn solicit_offers_without_committing_then_request_commits_the_offer() {
    let (mut e, l) = engine();
    let r = e.solicit(100, &ia(l, D1, IaKind::Na, 1, &[]), false);
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.leases.len(), 1);
    assert_eq!(
        (r.t1, r.t2),
        (500, 800),
        "T1/T2 default to 0.5/0.8 of preferred"
    );
    assert_eq!((r.leases[0].preferred, r.leases[0].valid), (1000, 2000));
    assert!(
        e.take_changes().is_empty(),
        "an Advertise never touches the store"
    );
    assert_eq!(e.binding_count(), 0);
    let offered = r.leases[0].resource;
    // Nothing is held for an Advertise (as Kea): another client hinting at the address is
    // offered it too; whoever requests first gets it.
    let r2 = e.solicit(101, &ia(l, D2, IaKind::Na, 1, &[offered]), false);
    assert_eq!(r2.leases[0].resource, offered);
    assert_eq!(e.list(101).len(), 0, "an offer holds nothing");
    // The same client soliciting again gets the same (hash-chosen) offer.
    let again = e.solicit(102, &ia(l, D1, IaKind::Na, 1, &[]), false);
    assert_eq!(again.leases[0].resource, offered);
    let q = e.request(103, &ia(l, D1, IaKind::Na, 1, &[]));
    assert_eq!(q.status, Status::Success);
    assert_eq!(q.leases[0].resource, offered);
    let ch = e.take_changes();
    assert_eq!(ch.len(), 1);
    match &ch[0] {
        Change::Put(r) => {
            assert_eq!(r.resource, offered);
            assert_eq!(r.expires, 103 + 2000);
            assert_eq!(r.state, LeaseState::Bound);
            assert_eq!(r.link, LAN);
        }
        c => panic!("unexpected {c:?}"),
    }
    assert_eq!(e.binding_count(), 1);
    assert_eq!(e.lease_counts(), (1, 0), "one bound lease, none declined");
    e.check_invariants().unwrap();
}

#[test]
fn excluded_addresses_are_never_offered_and_exhaustion_gives_no_addrs_avail() {
    let (mut e, l) = engine();
    let duids: Vec<Vec<u8>> = (0..4u8).map(|i| vec![0, 3, 0, 1, i]).collect();
    let mut got = Vec::new();
    for d in &duids[..3] {
        let r = e.request(10, &ia(l, d, IaKind::Na, 0, &[]));
        assert_eq!(r.status, Status::Success);
        got.push(r.leases[0].resource);
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            addr("2001:db8:1234::100"),
            addr("2001:db8:1234::102"),
            addr("2001:db8:1234::103")
        ]
    );
    let r = e.request(10, &ia(l, &duids[3], IaKind::Na, 0, &[]));
    assert_eq!(r.status, Status::NoAddrsAvail);
    assert!(r.leases.is_empty());
    assert_eq!((r.t1, r.t2), (0, 0));
    let r = e.solicit(10, &ia(l, &duids[3], IaKind::Na, 0, &[]), false);
    assert_eq!(r.status, Status::NoAddrsAvail);
    e.check_invariants().unwrap();
}

#[test]
fn prefix_delegation_skips_the_lan_56_and_reports_no_prefix_avail() {
    let mut c = config();
    c.links[0].pd_pools[0].prefix = p("2001:db8:1234::/54");
    let mut e = Engine::new(c).unwrap();
    let l = e.link_id(LAN).unwrap();
    let mut got = Vec::new();
    for i in 0..3u8 {
        let d = [9, i];
        let r = e.request(0, &ia(l, &d, IaKind::Pd, 1, &[]));
        assert_eq!(r.status, Status::Success);
        assert_eq!((r.t1, r.t2), (1000, 2000), "configured T1/T2");
        assert_eq!((r.leases[0].preferred, r.leases[0].valid), (3000, 4000));
        got.push(r.leases[0].resource);
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            pfx("2001:db8:1234:100::/56"),
            pfx("2001:db8:1234:200::/56"),
            pfx("2001:db8:1234:300::/56")
        ]
    );
    let r = e.request(0, &ia(l, &[9, 9], IaKind::Pd, 1, &[]));
    assert_eq!(r.status, Status::NoPrefixAvail);
    let r = e.solicit(0, &ia(l, &[9, 9], IaKind::Pd, 1, &[]), false);
    assert_eq!(r.status, Status::NoPrefixAvail);
}

#[test]
fn rapid_commit_commits_only_when_the_link_allows_it() {
    let (mut e, l) = engine();
    let r = e.solicit(0, &ia(l, D1, IaKind::Pd, 7, &[]), true);
    assert_eq!(r.status, Status::Success);
    assert_eq!(e.take_changes().len(), 1);
    assert_eq!(e.binding_count(), 1);
    let mut c = config();
    c.links[0].rapid_commit = false;
    let mut e = Engine::new(c).unwrap();
    let r = e.solicit(0, &ia(l, D1, IaKind::Pd, 7, &[]), true);
    assert_eq!(r.status, Status::Success);
    assert!(e.take_changes().is_empty());
    assert_eq!(e.binding_count(), 0);
}

#[test]
fn hints_are_honoured_when_free_and_in_pool() {
    let (mut e, l) = engine();
    let want = pfx("2001:db8:1234:ab00::/56");
    let r = e.request(0, &ia(l, D1, IaKind::Pd, 1, &[want]));
    assert_eq!(r.leases[0].resource, want);
    // The same hint from another client is not honoured.
    let r = e.request(0, &ia(l, D2, IaKind::Pd, 1, &[want]));
    assert_ne!(r.leases[0].resource, want);
    // An out-of-pool or excluded hint is ignored.
    let r = e.request(
        0,
        &ia(
            l,
            D3,
            IaKind::Pd,
            1,
            &[pfx("2001:db8:1234::/56"), pfx("2001:db8:9999::/56")],
        ),
    );
    assert_eq!(r.status, Status::Success);
    let got = r.leases[0].resource;
    assert_ne!(got, pfx("2001:db8:1234::/56"));
    assert!(p("2001:db8:1234::/48").contains(Ipv6Addr::from(got.first())));
    e.check_invariants().unwrap();
}

#[test]
fn renew_extends_and_gives_new_t1_t2() {
    let (mut e, l) = engine();
    let r = e.request(0, &ia(l, D1, IaKind::Na, 1, &[]));
    let got = r.leases[0].resource;
    e.take_changes();
    let n = e.renew(900, &ia(l, D1, IaKind::Na, 1, &[got]));
    assert_eq!(n.status, Status::Success);
    assert_eq!(
        n.leases,
        vec![Lease {
            resource: got,
            preferred: 1000,
            valid: 2000
        }]
    );
    assert_eq!((n.t1, n.t2), (500, 800));
    let ch = e.take_changes();
    assert!(matches!(&ch[..], [Change::Put(r)] if r.expires == 2900));
    // Still bound past the original expiry.
    assert_eq!(e.expire(2500), 0);
    assert_eq!(e.lookup_ia(l, D1, IaKind::Na, 1, 2500).len(), 1);
    let b = e.rebind(2600, &ia(l, D1, IaKind::Na, 1, &[got])).unwrap();
    assert_eq!(b.status, Status::Success);
    assert_eq!(b.leases[0].valid, 2000);
}

#[test]
fn renew_of_unknown_ia_recreates_when_free_or_says_no_binding() {
    let (mut e, l) = engine();
    let x = addr("2001:db8:1234::102");
    let r = e.renew(0, &ia(l, D1, IaKind::Na, 1, &[x]));
    assert_eq!(
        r.status,
        Status::Success,
        "free and appropriate: re-created"
    );
    assert_eq!(r.leases[0].resource, x);
    // Another client claiming the same address by Renew gets NoBinding, no leases.
    let r = e.renew(0, &ia(l, D2, IaKind::Na, 1, &[x]));
    assert_eq!(r.status, Status::NoBinding);
    assert!(r.leases.is_empty());
    // Nothing listed: NoBinding.
    let r = e.renew(0, &ia(l, D3, IaKind::Na, 1, &[]));
    assert_eq!(r.status, Status::NoBinding);
    // Policy off: NoBinding even when free.
    let mut c = config();
    c.recreate_unknown = false;
    let mut e = Engine::new(c).unwrap();
    let r = e.renew(0, &ia(l, D1, IaKind::Na, 1, &[x]));
    assert_eq!(r.status, Status::NoBinding);
    assert!(e.take_changes().is_empty());
}

#[test]
fn rebind_of_unknown_ia_not_on_link_no_binding_or_dropped() {
    let (mut e, l) = engine();
    let foreign = addr("2001:db8:ffff::1");
    let r = e.rebind(0, &ia(l, D1, IaKind::Na, 1, &[foreign])).unwrap();
    assert_eq!(r.status, Status::NotOnLink);
    assert_eq!(
        r.leases,
        vec![Lease {
            resource: foreign,
            preferred: 0,
            valid: 0
        }]
    );
    assert_eq!((r.t1, r.t2), (0, 0));
    assert!(
        e.rebind(0, &ia(l, D1, IaKind::Na, 1, &[])).is_none(),
        "cannot tell: drop"
    );
    let x = addr("2001:db8:1234::100");
    e.request(0, &ia(l, D2, IaKind::Na, 1, &[x]));
    let r = e.rebind(0, &ia(l, D1, IaKind::Na, 1, &[x])).unwrap();
    assert_eq!(r.status, Status::NoBinding, "held by another client");
    let r = e
        .rebind(0, &ia(l, D3, IaKind::Na, 1, &[addr("2001:db8:1234::103")]))
        .unwrap();
    assert_eq!(
        r.status,
        Status::Success,
        "free and appropriate: re-created"
    );
}

#[test]
fn renew_returns_stale_leases_with_zero_lifetimes_after_renumbering() {
    // Bindings from an old configuration (restored) are withdrawn and replaced.
    let (mut old, l) = engine();
    let got = old.request(0, &ia(l, D1, IaKind::Pd, 1, &[])).leases[0].resource;
    let recs: Vec<LeaseRecord> = old
        .take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::Put(r) => Some(r),
            Change::Remove(_) => None,
        })
        .collect();
    let mut c = config();
    c.links[0].pd_pools[0].prefix = p("2001:db8:5678::/48");
    c.links[0].pd_pools[0].exclude.clear();
    let mut e = Engine::new(c).unwrap();
    let rep = e.restore(10, recs);
    assert_eq!(rep.loaded, 1);
    let r = e.renew(20, &ia(l, D1, IaKind::Pd, 1, &[got]));
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.leases.len(), 2);
    assert_eq!(
        r.leases[0],
        Lease {
            resource: got,
            preferred: 0,
            valid: 0
        }
    );
    assert!(p("2001:db8:5678::/48").contains(Ipv6Addr::from(r.leases[1].resource.first())));
    assert_eq!(r.leases[1].valid, 4000);
    let ch = e.take_changes();
    assert!(ch.contains(&Change::Remove(got)));
    assert_eq!(ch.len(), 2);
    // A Renew listing an address the server never gave, outside the link: zero lifetimes.
    let n = e.renew(30, &ia(l, D1, IaKind::Pd, 1, &[pfx("2001:db8:9::/56")]));
    assert!(n.leases.contains(&Lease {
        resource: pfx("2001:db8:9::/56"),
        preferred: 0,
        valid: 0
    }));
    e.check_invariants().unwrap();
}

#[test]
fn release_frees_and_the_client_gets_the_same_address_back() {
    let (mut e, l) = engine();
    let got = e.request(0, &ia(l, D1, IaKind::Pd, 1, &[])).leases[0].resource;
    e.take_changes();
    let r = e.release(5, &ia(l, D1, IaKind::Pd, 1, &[got]));
    assert_eq!(r.status, Status::Success);
    assert_eq!(e.take_changes(), vec![Change::Remove(got)]);
    assert_eq!(e.binding_count(), 0);
    assert_eq!(
        e.release(6, &ia(l, D1, IaKind::Pd, 1, &[got])).status,
        Status::NoBinding
    );
    // Sticky: the returning client gets its previous prefix.
    let again = e.request(7, &ia(l, D1, IaKind::Pd, 1, &[])).leases[0].resource;
    assert_eq!(again, got);
    e.check_invariants().unwrap();
}

#[test]
fn decline_quarantines_until_the_configured_time() {
    let mut c = config();
    c.links[0].na_pools[0].last = a("2001:db8:1234::100");
    let mut e = Engine::new(c).unwrap();
    let l = e.link_id(LAN).unwrap();
    let got = e.request(0, &ia(l, D1, IaKind::Na, 1, &[])).leases[0].resource;
    e.take_changes();
    let r = e.decline(10, &ia(l, D1, IaKind::Na, 1, &[got]));
    assert_eq!(r.status, Status::Success);
    let ch = e.take_changes();
    assert!(
        matches!(&ch[..], [Change::Put(r)] if r.state == LeaseState::Declined && r.expires == 510)
    );
    assert_eq!(
        e.lease_counts(),
        (0, 1),
        "the declined address is counted as declined"
    );
    assert_eq!(
        e.lookup_address(a("2001:db8:1234::100"), 10).unwrap().state,
        "declined"
    );
    // The only address is quarantined: nobody gets it, not even the decliner.
    assert_eq!(
        e.request(20, &ia(l, D2, IaKind::Na, 1, &[got])).status,
        Status::NoAddrsAvail
    );
    assert_eq!(
        e.request(20, &ia(l, D1, IaKind::Na, 1, &[])).status,
        Status::NoAddrsAvail
    );
    assert_eq!(
        e.request(509, &ia(l, D2, IaKind::Na, 1, &[])).status,
        Status::NoAddrsAvail
    );
    assert_eq!(
        e.decline(20, &ia(l, D3, IaKind::Na, 1, &[got])).status,
        Status::NoBinding
    );
    let r = e.request(510, &ia(l, D2, IaKind::Na, 1, &[]));
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.leases[0].resource, got);
    assert!(e.take_changes().contains(&Change::Remove(got)));
}

#[test]
fn confirm_checks_on_link_prefixes() {
    let (e, l) = engine();
    assert_eq!(
        e.confirm(l, &[a("2001:db8:1234::55")]),
        ConfirmOutcome::Success
    );
    assert_eq!(
        e.confirm(l, &[a("2001:db8:1234::55"), a("2001:db8:99::1")]),
        ConfirmOutcome::NotOnLink
    );
    assert_eq!(e.confirm(l, &[]), ConfirmOutcome::NoReply);
    assert_eq!(
        e.confirm(LinkId(99), &[a("2001:db8:1234::55")]),
        ConfirmOutcome::NoReply
    );
    let mut c = EngineConfig::new(vec![LinkConfig::new("empty")]);
    c.links[0].pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:7::/48"),
        delegated_len: 60,
        exclude: vec![],
    });
    let e = Engine::new(c).unwrap();
    assert_eq!(
        e.confirm(LinkId(0), &[a("2001:db8:7::1")]),
        ConfirmOutcome::NoReply,
        "no on-link info"
    );
}

#[test]
fn expiry_reclaims_leases_on_the_fake_clock() {
    let (mut e, l) = engine();
    e.solicit(0, &ia(l, D1, IaKind::Na, 1, &[]), false);
    assert_eq!(e.poll_timeout(), None, "an offer sets no timer");
    let got = e.request(100, &ia(l, D2, IaKind::Na, 1, &[])).leases[0].resource;
    e.take_changes();
    assert_eq!(e.poll_timeout(), Some(2100));
    assert_eq!(e.expire(2099), 0);
    assert_eq!(e.expire(2100), 1);
    assert_eq!(e.take_changes(), vec![Change::Remove(got)]);
    assert_eq!(
        e.renew(2101, &ia(l, D2, IaKind::Na, 1, &[])).status,
        Status::NoBinding
    );
    assert_eq!(e.poll_timeout(), None);
    e.check_invariants().unwrap();
}

/// Issue 12 item 6: a flood of Solicits from random DUIDs (more than the pool holds) used
/// to tie up the whole pool with offers for 60 s, so a real client got NoAddrsAvail. Offers
/// now hold nothing: the pool stays free and the real client is served.
#[test]
fn a_solicit_flood_neither_ties_up_the_pool_nor_grows_state() {
    let mut lan = LinkConfig::new(LAN);
    lan.na_pools.push(NaPoolConfig {
        first: a("2001:db8:1234::1000"),
        last: a("2001:db8:1234::1fff"),
        exclude: vec![],
    });
    let mut e = Engine::new(EngineConfig::new(vec![lan])).unwrap();
    let l = e.link_id(LAN).unwrap();
    for i in 0..20_000u32 {
        let d = [
            0,
            4,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
            0xaa,
        ];
        let r = e.solicit(10, &ia(l, &d, IaKind::Na, 1, &[]), false);
        assert_eq!(r.status, Status::Success, "solicit {i}");
    }
    assert!(e.take_changes().is_empty());
    assert!(e.list(10).is_empty());
    assert_eq!(e.pool_usage()[0].free, 4096);
    let r = e.request(11, &ia(l, D1, IaKind::Na, 1, &[]));
    assert_eq!(r.status, Status::Success);
    e.check_invariants().unwrap();
}

/// Issue 12 item 5: one client cannot take more than `max_leases_per_client` leases on a
/// link, whatever number of IAs it asks for; Renew of what it has keeps working, and a
/// released lease makes room again.
#[test]
fn one_client_gets_at_most_the_per_client_cap() {
    let mut c = config();
    c.max_leases_per_client = 3;
    let mut e = Engine::new(c).unwrap();
    let l = e.link_id(LAN).unwrap();
    let mut got = Vec::new();
    for iaid in 0..10 {
        let r = e.request(5, &ia(l, D1, IaKind::Na, iaid, &[]));
        if iaid < 2 {
            assert_eq!(r.status, Status::Success);
            got.push(r.leases[0].resource);
        } else {
            assert_eq!(r.status, Status::NoAddrsAvail, "iaid {iaid}");
            assert!(r.leases.is_empty());
        }
        // An IA_PD counts too.
        if iaid == 1 {
            let p = e.request(5, &ia(l, D1, IaKind::Pd, 1, &[]));
            assert_eq!(p.status, Status::Success);
        }
    }
    // Solicit and Rapid Commit are refused the same way, with NoPrefixAvail for IA_PD.
    let s = e.solicit(6, &ia(l, D1, IaKind::Pd, 7, &[]), true);
    assert_eq!(s.status, Status::NoPrefixAvail);
    let s = e.solicit(6, &ia(l, D1, IaKind::Na, 7, &[]), false);
    assert_eq!(s.status, Status::NoAddrsAvail);
    assert_eq!(e.client_lease_count(l, D1), 3);
    assert_eq!(e.stats().client_limit, 10);
    assert_eq!(e.stats().pool_exhausted, 0);
    // Other clients are not affected; renewals are not refused.
    assert_eq!(
        e.request(6, &ia(l, D2, IaKind::Na, 1, &[])).status,
        Status::Success
    );
    assert_eq!(
        e.renew(7, &ia(l, D1, IaKind::Na, 0, &[got[0]])).status,
        Status::Success
    );
    e.release(8, &ia(l, D1, IaKind::Na, 0, &[]));
    assert_eq!(e.client_lease_count(l, D1), 2);
    assert_eq!(
        e.request(9, &ia(l, D1, IaKind::Na, 5, &[])).status,
        Status::Success
    );
    e.check_invariants().unwrap();
}

#[test]
fn reservations_go_only_to_their_duid() {
    let mut c = config();
    c.reservations.push(Reservation {
        link: LAN.into(),
        duid: D4.to_vec(),
        addresses: vec![a("2001:db8:1234::102")],
        prefixes: vec![p("2001:db8:1234:4200::/56"), p("2001:db8:abcd::/48")],
    });
    let mut e = Engine::new(c).unwrap();
    let l = e.link_id(LAN).unwrap();
    // Others never get the reserved address, even when asking for it.
    for d in [D1, D2] {
        let r = e.request(0, &ia(l, d, IaKind::Na, 1, &[addr("2001:db8:1234::102")]));
        assert_ne!(r.leases[0].resource, addr("2001:db8:1234::102"));
        let r = e.request(
            0,
            &ia(l, d, IaKind::Pd, 1, &[pfx("2001:db8:1234:4200::/56")]),
        );
        assert_ne!(r.leases[0].resource, pfx("2001:db8:1234:4200::/56"));
    }
    assert_eq!(
        e.request(0, &ia(l, D3, IaKind::Na, 1, &[])).status,
        Status::NoAddrsAvail
    );
    let r = e.request(0, &ia(l, D4, IaKind::Na, 1, &[]));
    assert_eq!(r.leases[0].resource, addr("2001:db8:1234::102"));
    let r = e.request(0, &ia(l, D4, IaKind::Pd, 1, &[]));
    assert_eq!(r.leases[0].resource, pfx("2001:db8:1234:4200::/56"));
    let r = e.request(0, &ia(l, D4, IaKind::Pd, 2, &[]));
    assert_eq!(
        r.leases[0].resource,
        pfx("2001:db8:abcd::/48"),
        "out-of-pool reservation"
    );
    let r = e.renew(10, &ia(l, D4, IaKind::Pd, 2, &[]));
    assert_eq!(
        r.leases[0].valid, 4000,
        "a reservation outside pools is appropriate for its owner"
    );
    e.check_invariants().unwrap();
}

#[test]
fn config_errors_are_reported() {
    let mut c = config();
    c.links.push(LinkConfig::new(LAN));
    assert_eq!(
        Engine::new(c).unwrap_err(),
        ConfigError::DuplicateLink(LAN.into())
    );
    let mut c = config();
    let mut l2 = LinkConfig::new("lan1");
    l2.pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:1234:8000::/49"),
        delegated_len: 60,
        exclude: vec![],
    });
    c.links.push(l2);
    assert!(matches!(
        Engine::new(c),
        Err(ConfigError::PoolOverlap { .. })
    ));
    // The NA /64 inside the PD /48 is fine only because the /48 excludes the LAN's /56.
    let mut c = config();
    c.links[0].pd_pools[0].exclude.clear();
    assert!(matches!(
        Engine::new(c),
        Err(ConfigError::PoolOverlap { .. })
    ));
    let mut c = config();
    c.links[0].na_pools[0].first = a("2001:db8:1234::200");
    assert!(matches!(
        Engine::new(c),
        Err(ConfigError::EmptyRange { .. })
    ));
    let mut c = config();
    c.links[0].na_lifetimes.preferred = 5000;
    assert!(matches!(Engine::new(c), Err(ConfigError::Lifetimes { .. })));
    let mut c = config();
    c.links[0].na_pools[0]
        .exclude
        .push(p("2001:db8:1234::/119"));
    assert!(matches!(Engine::new(c), Err(ConfigError::EmptyPool { .. })));
    let mut c = config();
    c.reservations.push(Reservation {
        link: "nope".into(),
        duid: D1.to_vec(),
        addresses: vec![],
        prefixes: vec![],
    });
    assert!(matches!(
        Engine::new(c),
        Err(ConfigError::UnknownLink { .. })
    ));
    let mut c = config();
    for d in [D1, D2] {
        c.reservations.push(Reservation {
            link: LAN.into(),
            duid: d.to_vec(),
            addresses: vec![a("2001:db8:1234::5")],
            prefixes: vec![],
        });
    }
    assert!(matches!(
        Engine::new(c),
        Err(ConfigError::ReservationConflict(_))
    ));
}

#[test]
fn restore_brings_back_bindings_and_drops_expired() {
    let (mut e, l) = engine();
    let na = e.request(0, &ia(l, D1, IaKind::Na, 1, &[])).leases[0].resource;
    let pd = e.request(0, &ia(l, D1, IaKind::Pd, 2, &[])).leases[0].resource;
    let short = e.request(0, &ia(l, D2, IaKind::Na, 1, &[])).leases[0].resource;
    let mut recs: Vec<LeaseRecord> = e
        .take_changes()
        .into_iter()
        .filter_map(|c| {
            if let Change::Put(r) = c {
                Some(r)
            } else {
                None
            }
        })
        .collect();
    for r in &mut recs {
        if r.resource == short {
            r.expires = 50;
        }
    }
    let mut dup = recs[0].clone();
    dup.duid = D3.to_vec();
    recs.push(dup);
    let mut e2 = Engine::new(config()).unwrap();
    let rep = e2.restore(100, recs);
    assert_eq!(
        rep,
        RestoreReport {
            loaded: 2,
            expired: 1,
            conflicts: 1,
            unknown_link: 0
        }
    );
    assert_eq!(e2.take_changes(), vec![Change::Remove(short)]);
    let r = e2.renew(100, &ia(l, D1, IaKind::Na, 1, &[na]));
    assert_eq!(
        r.leases,
        vec![Lease {
            resource: na,
            preferred: 1000,
            valid: 2000
        }]
    );
    let r = e2.rebind(100, &ia(l, D1, IaKind::Pd, 2, &[pd])).unwrap();
    assert_eq!(r.leases[0].resource, pd);
    // The restored address is not handed to anybody else.
    for i in 0..3u8 {
        let r = e2.request(100, &ia(l, &[7, i], IaKind::Na, 1, &[na]));
        assert!(r.leases.iter().all(|x| x.resource != na));
    }
    e2.check_invariants().unwrap();
}

#[test]
fn listing_and_lookups() {
    let (mut e, l) = engine();
    e.request(0, &ia(l, D1, IaKind::Na, 1, &[addr("2001:db8:1234::103")]));
    e.solicit(
        0,
        &ia(l, D2, IaKind::Pd, 1, &[pfx("2001:db8:1234:100::/56")]),
        false,
    );
    let v = e.list(10);
    // The offer (Solicit) holds nothing: only the bound lease is listed.
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].lease, "2001:db8:1234::103");
    assert_eq!(v[0].state, "bound");
    assert_eq!(v[0].remaining, 1990);
    e.request(
        0,
        &ia(l, D2, IaKind::Pd, 1, &[pfx("2001:db8:1234:100::/56")]),
    );
    let v = e.list(10);
    assert_eq!(v[1].state, "bound");
    let t = format_table(&v);
    assert!(t.contains("2001:db8:1234:100::/56"));
    assert_eq!(
        e.lookup_address(a("2001:db8:1234:1ff::1"), 10)
            .unwrap()
            .lease,
        "2001:db8:1234:100::/56"
    );
    assert_eq!(e.link_for_address(a("2001:db8:1234::1")), Some(l));
    assert_eq!(e.link_for_address(a("2001:db8:1::1")), None);
    let u = e.pool_usage();
    assert_eq!((u[0].size, u[0].free), (3, 2));
    assert_eq!((u[1].size, u[1].free), (255, 254));
}

#[test]
fn huge_pools_allocate_in_logarithmic_time() {
    let mut l = LinkConfig::new(LAN);
    l.na_pools.push(NaPoolConfig::from_prefix(
        p("2001:db8:1234::/64"),
        vec![p("2001:db8:1234::1/128")],
    ));
    l.pd_pools.push(PdPoolConfig {
        prefix: p("2001:db8:8000::/33"),
        delegated_len: 56,
        exclude: vec![],
    });
    let mut e = Engine::new(EngineConfig::new(vec![l])).unwrap();
    let t = std::time::Instant::now();
    for i in 0..20_000u32 {
        let d = i.to_be_bytes();
        assert_eq!(
            e.request(0, &ia(LinkId(0), &d, IaKind::Na, 1, &[])).status,
            Status::Success
        );
        assert_eq!(
            e.request(0, &ia(LinkId(0), &d, IaKind::Pd, 1, &[])).status,
            Status::Success
        );
    }
    e.check_invariants().unwrap();
    // Generous bound: 40,000 commits, far from any linear-scan behaviour even in debug builds.
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}

#[test]
fn reload_keeps_bindings_and_withdraws_leases_outside_the_new_pools() {
    let (mut e, l) = engine();
    let na = e
        .request(0, &ia(l, D1, IaKind::Na, 1, &[addr("2001:db8:1234::102")]))
        .leases[0]
        .resource;
    let pd = e.request(0, &ia(l, D1, IaKind::Pd, 1, &[])).leases[0].resource;
    e.take_changes();
    // A bad config is refused and changes nothing.
    let mut bad = config();
    bad.links[0].pd_pools[0].delegated_len = 40;
    assert!(e.reload(10, bad).is_err());
    assert_eq!(e.binding_count(), 2);
    // New config: the PD pool moves, and D2 now has a reservation on D1's address.
    let mut c = config();
    c.links[0].pd_pools[0].prefix = p("2001:db8:4321::/48");
    c.links[0].pd_pools[0].exclude.clear();
    c.reservations.push(Reservation {
        link: LAN.into(),
        duid: D2.to_vec(),
        addresses: vec![a("2001:db8:1234::102")],
        prefixes: vec![],
    });
    let rep = e.reload(10, c).unwrap();
    assert_eq!(rep.loaded, 2);
    assert_eq!(e.binding_count(), 2);
    // Until D1 renews, nobody else gets its address, not even the new reservation's owner.
    let r = e.request(20, &ia(l, D2, IaKind::Na, 1, &[]));
    assert_ne!(r.leases[0].resource, na);
    e.release(21, &ia(l, D2, IaKind::Na, 1, &[]));
    // D1's Renew withdraws both stale leases and hands out new ones.
    let r = e.renew(30, &ia(l, D1, IaKind::Na, 1, &[na]));
    assert_eq!(
        r.leases[0],
        Lease {
            resource: na,
            preferred: 0,
            valid: 0
        }
    );
    assert_ne!(r.leases[1].resource, na);
    let r = e.renew(30, &ia(l, D1, IaKind::Pd, 1, &[pd]));
    assert_eq!(
        r.leases[0],
        Lease {
            resource: pd,
            preferred: 0,
            valid: 0
        }
    );
    assert!(p("2001:db8:4321::/48").contains(Ipv6Addr::from(r.leases[1].resource.first())));
    // Now the reservation owner gets it.
    let r = e.request(40, &ia(l, D2, IaKind::Na, 2, &[]));
    assert_eq!(r.leases[0].resource, na);
    e.check_invariants().unwrap();
}

#[test]
fn length_only_hints_are_ignored() {
    let (mut e, l) = engine();
    let hint = [pfx("::/56")];
    let r = e.solicit(0, &ia(l, D1, IaKind::Pd, 1, &hint), false);
    assert_eq!(r.status, Status::Success);
    assert_ne!(r.leases[0].resource, hint[0]);
    assert!(
        e.rebind(0, &ia(l, D2, IaKind::Pd, 1, &hint)).is_none(),
        "nothing concrete: drop"
    );
    assert_eq!(
        e.renew(0, &ia(l, D2, IaKind::Pd, 1, &hint)).status,
        Status::NoBinding
    );
    let got = e.request(0, &ia(l, D1, IaKind::Pd, 1, &hint)).leases[0].resource;
    assert_eq!(got, r.leases[0].resource);
    let n = e.renew(10, &ia(l, D1, IaKind::Pd, 1, &[got, hint[0]]));
    assert_eq!(n.leases.len(), 1, "no zero-lifetime echo of ::/56");
}

#[test]
fn operator_delete_frees_the_lease() {
    let (mut e, l) = engine();
    let got = e.request(0, &ia(l, D1, IaKind::Pd, 1, &[])).leases[0].resource;
    e.take_changes();
    assert!(!e.delete(&pfx("2001:db8:1234:ff00::/60")), "no such lease");
    assert!(e.delete(&got));
    assert_eq!(e.take_changes(), vec![Change::Remove(got)]);
    assert_eq!(e.binding_count(), 0);
    assert_eq!(
        e.renew(1, &ia(l, D1, IaKind::Pd, 1, &[])).status,
        Status::NoBinding
    );
    // The prefix is free again: another client may ask for it.
    assert_eq!(
        e.request(2, &ia(l, D2, IaKind::Pd, 1, &[got])).leases[0].resource,
        got
    );
    e.check_invariants().unwrap();
}

fn put_of(c: &[Change]) -> LeaseRecord {
    c.iter()
        .find_map(|c| match c {
            Change::Put(r) => Some(r.clone()),
            Change::Remove(_) => None,
        })
        .expect("a Put")
}

/// A failed commit (e.g. a full disk) is undone in memory: a grant the disk never got frees
/// its address, a failed renewal or decline goes back to what the disk holds, and nothing is
/// touched once the engine has moved on.
#[test]
fn reconcile_undoes_changes_whose_commit_failed() {
    let (mut e, l) = engine();
    // A failed grant: the address is free again, for anyone.
    let r = e.request(10, &ia(l, D1, IaKind::Na, 1, &[]));
    let failed = put_of(&e.take_changes());
    assert!(e.reconcile(&failed, None));
    assert!(e.take_changes().is_empty(), "the disk never had it");
    assert_eq!(e.binding_count(), 0);
    assert_eq!(e.client_lease_count(l, D1), 0);
    let other = e.request(11, &ia(l, D2, IaKind::Na, 1, &[r.leases[0].resource]));
    assert_eq!(other.leases[0].resource, r.leases[0].resource);
    let durable = put_of(&e.take_changes());
    e.check_invariants().unwrap();

    // A failed renewal: back to the durable expiry.
    e.renew(500, &ia(l, D2, IaKind::Na, 1, &[durable.resource]));
    let failed = put_of(&e.take_changes());
    assert_eq!(failed.expires, 500 + 2000);
    assert!(e.reconcile(&failed, Some(&durable)));
    let v = e
        .lookup_address(a(&durable.resource.to_string()), 500)
        .unwrap();
    assert_eq!(v.expires, durable.expires);
    assert_eq!(e.poll_timeout(), Some(durable.expires));
    e.check_invariants().unwrap();

    // A failed decline: bound again, renewable.
    e.decline(600, &ia(l, D2, IaKind::Na, 1, &[]));
    let failed = put_of(&e.take_changes());
    assert_eq!(failed.state, LeaseState::Declined);
    assert!(e.reconcile(&failed, Some(&durable)));
    assert_eq!(e.binding_count(), 1);
    assert_eq!(
        e.renew(700, &ia(l, D2, IaKind::Na, 1, &[])).leases[0].resource,
        durable.resource
    );
    e.take_changes();
    e.check_invariants().unwrap();

    // Moved on: the failed grant was requested again (another expiry) before the undo.
    let r = e.request(800, &ia(l, D3, IaKind::Na, 1, &[]));
    let failed = put_of(&e.take_changes());
    e.renew(801, &ia(l, D3, IaKind::Na, 1, &[r.leases[0].resource]));
    e.take_changes();
    assert!(!e.reconcile(&failed, None));
    assert_eq!(e.client_lease_count(l, D3), 1);
    e.check_invariants().unwrap();
}

//! Lease journal tests: durability across reopen, torn-tail recovery at every byte offset,
//! corruption, compaction, concurrency, and the engine's Renew/Rebind after a restart.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use v6h_lease::*;

fn rec(i: u32, expires: u64) -> LeaseRecord {
    LeaseRecord {
        link: "lan0".into(),
        duid: vec![0, 3, 0, 1, (i >> 8) as u8, i as u8],
        iaid: i,
        resource: Resource::Addr(Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i),
        )),
        state: LeaseState::Bound,
        preferred: 100,
        valid: 200,
        expires,
    }
}

fn model(changes: &[Change]) -> BTreeMap<Resource, LeaseRecord> {
    let mut m = BTreeMap::new();
    for c in changes {
        match c {
            Change::Put(r) => {
                m.insert(r.resource, r.clone());
            }
            Change::Remove(r) => {
                m.remove(r);
            }
        }
    }
    m
}

fn as_map(v: Vec<LeaseRecord>) -> BTreeMap<Resource, LeaseRecord> {
    v.into_iter().map(|r| (r.resource, r)).collect()
}

#[test]
fn commit_reopen_gives_identical_leases_and_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let mut all = Vec::new();
    {
        let s = JournalStore::open(&path).unwrap();
        for i in 0..50 {
            let c = vec![Change::Put(rec(i, 1000 + u64::from(i)))];
            all.extend(c.clone());
            s.commit(c).unwrap();
        }
        let c = vec![
            Change::Remove(rec(3, 0).resource),
            Change::Put(rec(4, 9999)),
        ];
        all.extend(c.clone());
        s.commit(c).unwrap();
        assert_eq!(as_map(s.load()), model(&all));
    }
    let s = JournalStore::open(&path).unwrap();
    assert_eq!(as_map(s.load()), model(&all));
    assert_eq!(s.get(&rec(4, 0).resource).unwrap().expires, 9999);
    assert!(s.get(&rec(3, 0).resource).is_none());
    let r = rec(7, 0);
    let got = s.by_client("lan0", &r.duid, IaKind::Na, 7);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].expires, 1007);
    assert_eq!(
        s.expired(1010).len(),
        9,
        "expiries 1000..=1010 except the removed 3 and renewed 4"
    );
    assert_eq!(as_map(JournalStore::read(&path).unwrap()), model(&all));
    assert_eq!(s.list(1000).len(), 49);
}

#[test]
fn torn_tail_at_every_byte_offset_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let mut before = Vec::new();
    let (l0, l1, last) = {
        let s = JournalStore::open(&path).unwrap();
        for i in 0..5 {
            let c = Change::Put(rec(i, 500));
            before.push(c.clone());
            s.commit(vec![c]).unwrap();
        }
        before.push(Change::Remove(rec(1, 0).resource));
        s.commit(vec![Change::Remove(rec(1, 0).resource)]).unwrap();
        let l0 = s.journal_len();
        let mut big = rec(2, 777);
        big.duid = vec![0xab; 100];
        let last = Change::Put(big);
        s.commit(vec![last.clone()]).unwrap();
        (l0, s.journal_len(), last)
    };
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, l1);
    let mut after = before.clone();
    after.push(last);
    for cut in l0..=l1 {
        let p = dir.path().join(format!("cut{cut}"));
        std::fs::write(&p, &bytes[..cut as usize]).unwrap();
        let s = JournalStore::open(&p).unwrap();
        let want = if cut == l1 {
            model(&after)
        } else {
            model(&before)
        };
        assert_eq!(as_map(s.load()), want, "cut at {cut}");
        // The repaired journal keeps working: a new commit after the cut survives a reopen.
        s.commit(vec![Change::Put(rec(40, 1))]).unwrap();
        drop(s);
        let s = JournalStore::open(&p).unwrap();
        let mut want = want;
        want.insert(rec(40, 1).resource, rec(40, 1));
        assert_eq!(as_map(s.load()), want, "after repair at {cut}");
    }
}

#[test]
fn corrupt_last_record_is_dropped_and_others_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let l0 = {
        let s = JournalStore::open(&path).unwrap();
        s.commit(vec![Change::Put(rec(1, 5))]).unwrap();
        let l0 = s.journal_len();
        s.commit(vec![Change::Put(rec(2, 5))]).unwrap();
        l0
    };
    let mut bytes = std::fs::read(&path).unwrap();
    for i in l0 as usize..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x40;
        std::fs::write(&path, &b).unwrap();
        let s = JournalStore::open(&path).unwrap();
        assert_eq!(
            as_map(s.load()),
            model(&[Change::Put(rec(1, 5))]),
            "flip at {i}"
        );
    }
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        JournalStore::open(&path),
        Err(StoreError::BadMagic(_))
    ));
}

#[test]
fn a_second_writer_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let s = JournalStore::open(&path).unwrap();
    assert!(matches!(
        JournalStore::open(&path),
        Err(StoreError::Locked(_))
    ));
    // Readers (e.g. `v6home dhcp6 leases`) are not blocked.
    assert!(JournalStore::read(&path).unwrap().is_empty());
    drop(s);
    assert!(JournalStore::open(&path).is_ok());
}

#[test]
fn compaction_keeps_the_live_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let s = JournalStore::open(&path).unwrap();
    let mut all = Vec::new();
    for round in 0..20u64 {
        let c: Vec<Change> = (0..30).map(|i| Change::Put(rec(i, round))).collect();
        all.extend(c.clone());
        s.commit(c).unwrap();
    }
    let before = s.journal_len();
    s.compact().unwrap();
    assert!(
        s.journal_len() < before / 10,
        "{} -> {}",
        before,
        s.journal_len()
    );
    s.commit(vec![Change::Remove(rec(0, 0).resource)]).unwrap();
    all.push(Change::Remove(rec(0, 0).resource));
    assert_eq!(s.stats().compactions, 1);
    drop(s);
    let s = JournalStore::open(&path).unwrap();
    assert_eq!(as_map(s.load()), model(&all));
}

#[test]
fn many_threads_commit_concurrently_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let s = Arc::new(JournalStore::open(&path).unwrap());
    let threads: Vec<_> = (0..16u32)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    s.commit(vec![Change::Put(rec(t * 100 + i, 10))]).unwrap();
                    // Once commit returns, the lease is visible to lookups.
                    assert!(s.get(&rec(t * 100 + i, 0).resource).is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let st = s.stats();
    assert_eq!(st.commits, 800);
    assert_eq!(st.records, 800);
    assert!(st.fsyncs <= 800 && st.fsyncs == st.batches);
    eprintln!(
        "16 threads x 50 commits: {} fsyncs, largest batch {}",
        st.fsyncs, st.max_batch
    );
    drop(s);
    let s = JournalStore::open(&path).unwrap();
    assert_eq!(s.load().len(), 800);
}

#[test]
fn engine_renew_and_rebind_work_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let mut l = LinkConfig::new("lan0");
    l.na_pools.push(NaPoolConfig::from_prefix(
        "2001:db8:1234::/64".parse().unwrap(),
        vec![],
    ));
    l.pd_pools.push(PdPoolConfig {
        prefix: "2001:db8:1234::/48".parse().unwrap(),
        delegated_len: 56,
        exclude: vec!["2001:db8:1234::/64".parse().unwrap()],
    });
    let cfg = EngineConfig::new(vec![l]);
    let mut held = Vec::new();
    {
        let store = JournalStore::open(&path).unwrap();
        let mut e = Engine::new(cfg.clone()).unwrap();
        for i in 0..200u32 {
            let d = i.to_be_bytes();
            for kind in [IaKind::Na, IaKind::Pd] {
                let ia = IaRequest {
                    link: LinkId(0),
                    duid: &d,
                    kind,
                    iaid: 1,
                    leases: &[],
                };
                let r = e.request(1_000, &ia);
                store.commit(e.take_changes()).unwrap();
                held.push((i, kind, r.leases[0].resource));
            }
        }
    }
    let store = JournalStore::open(&path).unwrap();
    let mut e = Engine::new(cfg).unwrap();
    let rep = e.restore(2_000, store.load());
    assert_eq!(rep.loaded, 400);
    for (n, (i, kind, res)) in held.iter().enumerate() {
        let d = i.to_be_bytes();
        let ia = IaRequest {
            link: LinkId(0),
            duid: &d,
            kind: *kind,
            iaid: 1,
            leases: std::slice::from_ref(res),
        };
        let r = if n % 2 == 0 {
            e.renew(2_000, &ia)
        } else {
            e.rebind(2_000, &ia).unwrap()
        };
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.leases.len(), 1);
        assert_eq!(r.leases[0].resource, *res);
        assert!(r.leases[0].valid > 0);
    }
    store.commit(e.take_changes()).unwrap();
    assert_eq!(store.get(&held[0].2).unwrap().expires, 2_000 + 7200);
    e.check_invariants().unwrap();
}

/// A small domain (4 addresses, 2 prefixes, 2 links, 2 DUIDs, 2 IAIDs, 6 expiries) so that
/// renewals, moves between IAs and removals are frequent.
fn small_resource(i: u8) -> Resource {
    if i < 4 {
        Resource::Addr(Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(i)))
    } else {
        Resource::Prefix(Prefix::containing(
            Ipv6Addr::from((0x2001_0db8_0001_u128 << 80) | (u128::from(i) << 72)),
            56,
        ))
    }
}

fn small_change() -> impl proptest::strategy::Strategy<Value = Change> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0u8..6, 0u8..2, 0u8..2, 0u32..2, 0u64..6).prop_map(|(i, l, d, iaid, expires)| {
            Change::Put(LeaseRecord {
                link: format!("lan{l}"),
                duid: vec![0, 3, d],
                iaid,
                resource: small_resource(i),
                state: LeaseState::Bound,
                preferred: 1,
                valid: 2,
                expires,
            })
        }),
        1 => (0u8..6).prop_map(|i| Change::Remove(small_resource(i))),
    ]
}

/// Checks every lookup of `s` against the naive model of `all` (by_client as a set: the
/// order within one IA is checked by the unit test against the original index).
fn assert_store_matches(s: &JournalStore, all: &[Change]) {
    let m = model(all);
    assert_eq!(as_map(s.load()), m);
    for i in 0..6 {
        let r = small_resource(i);
        assert_eq!(s.get(&r).as_ref(), m.get(&r));
    }
    for l in 0..2u8 {
        for d in 0..2u8 {
            for kind in [IaKind::Na, IaKind::Pd] {
                for iaid in 0..2 {
                    let link = format!("lan{l}");
                    let duid = [0, 3, d];
                    let mut got = s.by_client(&link, &duid, kind, iaid);
                    got.sort_by_key(|r| r.resource);
                    let want: Vec<LeaseRecord> = m
                        .values()
                        .filter(|r| {
                            r.link == link && r.duid == duid && r.kind() == kind && r.iaid == iaid
                        })
                        .cloned()
                        .collect();
                    assert_eq!(got, want, "by_client {link} {duid:?} {kind} {iaid}");
                }
            }
        }
    }
    for now in 0..7 {
        let mut want: Vec<(u64, Resource)> = m
            .values()
            .filter(|r| r.expires <= now)
            .map(|r| (r.expires, r.resource))
            .collect();
        want.sort();
        let want: Vec<Resource> = want.into_iter().map(|(_, r)| r).collect();
        assert_eq!(s.expired(now), want, "expired({now})");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any sequence of committed batches leaves the store answering load/get/by_client/
    /// expired like the naive model, both live and after a reopen (journal replay).
    #[test]
    fn store_lookups_match_model_live_and_after_reopen(
        batches in proptest::collection::vec(proptest::collection::vec(small_change(), 0..8), 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.journal");
        let mut all = Vec::new();
        {
            let s = JournalStore::open(&path).unwrap();
            for b in batches {
                all.extend(b.clone());
                s.commit(b).unwrap();
                assert_store_matches(&s, &all);
            }
        }
        let s = JournalStore::open(&path).unwrap();
        assert_store_matches(&s, &all);
    }
}

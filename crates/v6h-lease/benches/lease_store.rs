//! Lease store micro-benchmark: durable commits per second, journal (group commit) vs redb,
//! with 1 and 64 leases per fsync, plus the allocation engine's Request rate.
//!
//! Run: `cargo bench -p v6h-lease --bench lease_store` (env `LEASE_BENCH_DIR` picks the
//! directory, default the system temp dir; use the real disk, not tmpfs, for fsync costs).

use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use v6h_lease::*;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leases");

fn rec(i: u32) -> Change {
    Change::Put(LeaseRecord {
        link: "lan0".into(),
        duid: vec![
            0,
            1,
            0,
            1,
            0x5e,
            0x11,
            0x22,
            0x33,
            0,
            0x0c,
            0x29,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ],
        iaid: i,
        resource: Resource::Addr(Ipv6Addr::from(
            0x2001_0db8_1234_0000_0000_0000_0001_0000u128 + u128::from(i),
        )),
        state: LeaseState::Bound,
        preferred: 3600,
        valid: 7200,
        expires: 1_800_000_000,
    })
}

fn dir() -> tempfile::TempDir {
    match std::env::var_os("LEASE_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

const WINDOW: Duration = Duration::from_secs(2);

/// Journal, one waiter at a time: every commit is its own fsync.
fn journal_serial() -> f64 {
    let d = dir();
    let s = JournalStore::open(d.path().join("j")).unwrap();
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < WINDOW {
        s.commit(vec![rec(n)]).unwrap();
        n += 1;
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

/// Journal with `waiters` commits in flight (as a server answering many clients): the commit
/// thread batches them into one fsync.
fn journal_grouped(waiters: u32) -> (f64, StoreStats) {
    let d = dir();
    let s = JournalStore::open(d.path().join("j")).unwrap();
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < WINDOW {
        let tickets: Vec<_> = (0..waiters).map(|i| s.submit(vec![rec(n + i)])).collect();
        for k in tickets {
            k.wait().unwrap();
        }
        n += waiters;
    }
    (f64::from(n) / t.elapsed().as_secs_f64(), s.stats())
}

/// redb, `per_txn` leases per durable (Immediate) write transaction.
fn redb(per_txn: u32) -> f64 {
    let d = dir();
    let db = Database::create(d.path().join("r.redb")).unwrap();
    let t = Instant::now();
    let mut n = 0u32;
    let mut buf = Vec::new();
    while t.elapsed() < WINDOW {
        let mut tx = db.begin_write().unwrap();
        tx.set_durability(Durability::Immediate).unwrap();
        {
            let mut table = tx.open_table(TABLE).unwrap();
            for i in 0..per_txn {
                let c = rec(n + i);
                buf.clear();
                v6h_lease::record::encode(&c, &mut buf);
                let key = c.resource().first().to_be_bytes();
                table.insert(&key[..], &buf[..]).unwrap();
            }
        }
        tx.commit().unwrap();
        n += per_txn;
    }
    let rate = f64::from(n) / t.elapsed().as_secs_f64();
    let rtx = db.begin_read().unwrap();
    assert!(rtx.open_table(TABLE).is_ok());
    rate
}

/// The engine alone: Request for fresh clients from a /64 (no I/O).
fn engine_requests() -> f64 {
    let mut l = LinkConfig::new("lan0");
    l.na_pools.push(NaPoolConfig::from_prefix(
        "2001:db8:1234::/64".parse().unwrap(),
        vec![],
    ));
    let mut e = Engine::new(EngineConfig::new(vec![l])).unwrap();
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < WINDOW {
        for _ in 0..1000 {
            let d = n.to_be_bytes();
            let ia = IaRequest {
                link: LinkId(0),
                duid: &d,
                kind: IaKind::Na,
                iaid: 1,
                leases: &[],
            };
            e.solicit(u64::from(n), &ia, false);
            e.request(u64::from(n), &ia);
            e.take_changes();
            n += 1;
        }
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

fn main() {
    let j1 = journal_serial();
    let (j64, st) = journal_grouped(64);
    let r1 = redb(1);
    let r64 = redb(64);
    println!(
        "lease store, durable commits/s ({}s each)",
        WINDOW.as_secs()
    );
    println!("  journal, 1 per fsync        {j1:>10.0}");
    println!(
        "  journal, 64 waiters grouped {j64:>10.0}  ({} fsyncs for {} commits, max batch {}, mean fsync {} us)",
        st.fsyncs,
        st.commits,
        st.max_batch,
        st.fsync_micros_total / st.fsyncs.max(1)
    );
    println!("  redb, 1 per txn             {r1:>10.0}");
    println!("  redb, 64 per txn            {r64:>10.0}");
    println!(
        "  ratio journal/redb: batch 1 {:.2}x, batch 64 {:.2}x",
        j1 / r1,
        j64 / r64
    );
    println!(
        "engine Solicit+Request pairs/s (no I/O): {:.0}",
        engine_requests()
    );
}

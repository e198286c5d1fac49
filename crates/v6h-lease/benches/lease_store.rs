//! Lease store micro-benchmark: durable commits per second, journal (group commit) vs redb,
//! with 1 and 64 leases per fsync, plus the allocation engine's Request rate.
//!
//! Run: `cargo bench -p v6h-lease --bench lease_store` (env `LEASE_BENCH_DIR` picks the
//! directory, default the system temp dir; use the real disk, not tmpfs, for fsync costs).
//!
//! `cargo bench -p v6h-lease --bench lease_store -- index` runs only the in-memory index
//! benchmark: realistic change streams for 200k leases (new leases, renewals with a later
//! expiry, removals plus new clients) replayed into the store's index (journal replay on
//! open, minus the frame decoding measured alone), and the same streams through the commit
//! thread in large batches on tmpfs, in nanoseconds per applied change.

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

/// Number of leases in the index benchmark.
const INDEX_LEASES: u32 = 200_000;

/// A realistic lease for client `i` (several links, 14-byte DUID-LLT-like ids, NA and PD).
fn index_rec(i: u32, expires: u64) -> LeaseRecord {
    let resource = if i % 8 == 7 {
        Resource::Prefix(Prefix::containing(
            Ipv6Addr::from(0x2001_0db8_8000_0000_0000_0000_0000_0000u128 + (u128::from(i) << 72)),
            56,
        ))
    } else {
        Resource::Addr(Ipv6Addr::from(
            0x2001_0db8_1234_0000_0000_0000_0000_0000u128 + u128::from(i),
        ))
    };
    LeaseRecord {
        link: format!("lan{}", i % 4),
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
        iaid: 1,
        resource,
        state: LeaseState::Bound,
        preferred: 1800,
        valid: 3600,
        expires,
    }
}

/// The three phases of the index benchmark for `n` leases.
fn index_streams(n: u32) -> Vec<(&'static str, Vec<Change>)> {
    let base = 1_800_000_000u64;
    // Expiries spread over an hour, as clients arrive over time.
    let exp = |i: u32| base + u64::from(i.wrapping_mul(2_654_435_761) % 3600);
    let fill = (0..n).map(|i| Change::Put(index_rec(i, exp(i)))).collect();
    let renew = (0..n)
        .map(|i| Change::Put(index_rec(i, exp(i) + 1800)))
        .collect();
    // Churn: every other client leaves (Remove) and a new client takes a fresh lease.
    let churn = (0..n / 2)
        .flat_map(|k| {
            let i = k * 2;
            [
                Change::Remove(index_rec(i, 0).resource),
                Change::Put(index_rec(n + k, exp(n + k) + 3600)),
            ]
        })
        .collect();
    vec![("new", fill), ("renew", renew), ("remove+new", churn)]
}

fn journal_bytes(changes: &[Change]) -> Vec<u8> {
    let mut b = b"V6HLJ\0\0\x01".to_vec();
    let mut p = Vec::new();
    for c in changes {
        p.clear();
        v6h_lease::record::encode(c, &mut p);
        b.extend_from_slice(&(p.len() as u32).to_le_bytes());
        b.extend_from_slice(&v6h_lease::crc32c::crc32c(&p).to_le_bytes());
        b.extend_from_slice(&p);
    }
    b
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut best = f();
    for _ in 1..runs {
        let r = f();
        if r.0 < best.0 {
            best = r;
        }
    }
    best
}

/// ns per change to replay `prefix + stream` on open minus replaying `prefix`, minus the
/// decode cost of `stream`'s frames: the index's share of the replay.
fn index_replay(prefix: &[Change], stream: &[Change]) -> (f64, f64) {
    let d = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| dir());
    let mut all = prefix.to_vec();
    all.extend_from_slice(stream);
    let open_ns = |changes: &[Change], name: &str| {
        let path = d.path().join(name);
        std::fs::write(&path, journal_bytes(changes)).unwrap();
        best_of(5, || {
            let t = Instant::now();
            let s = JournalStore::open(&path).unwrap();
            let e = t.elapsed();
            (e, s.journal_len())
        })
        .0
        .as_nanos() as f64
    };
    let before = if prefix.is_empty() {
        open_ns(&[], "empty")
    } else {
        open_ns(prefix, "prefix")
    };
    let after = open_ns(&all, "all");
    let body = journal_bytes(stream);
    let decode = best_of(5, || {
        let t = Instant::now();
        let n = v6h_lease::store::frames(&body[8..])
            .filter(Result::is_ok)
            .count();
        (t.elapsed(), n)
    })
    .0
    .as_nanos() as f64;
    let n = stream.len() as f64;
    ((after - before) / n, (after - before - decode) / n)
}

/// ns per change through the commit thread (frame, write, fdatasync on tmpfs, apply), in
/// batches of 1000 changes, for each phase in order on one store.
fn index_commit(streams: &[(&'static str, Vec<Change>)]) -> Vec<f64> {
    let d = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| dir());
    let s = JournalStore::open(d.path().join("j")).unwrap();
    streams
        .iter()
        .map(|(_, changes)| {
            let batches: Vec<Vec<Change>> = changes.chunks(1000).map(<[Change]>::to_vec).collect();
            let t = Instant::now();
            for batch in batches {
                s.commit(batch).unwrap();
            }
            t.elapsed().as_nanos() as f64 / changes.len() as f64
        })
        .collect()
}

fn index_bench() {
    let streams = index_streams(INDEX_LEASES);
    println!("lease store index, {INDEX_LEASES} leases, ns per applied change (best of 5)");
    let mut prefix: Vec<Change> = Vec::new();
    for (name, stream) in &streams {
        let (replay, index) = index_replay(&prefix, stream);
        println!("  replay {name:<11} {replay:>7.0} ns/change, of which index {index:>6.0}");
        prefix.extend_from_slice(stream);
    }
    let commit = index_commit(&streams);
    for ((name, _), ns) in streams.iter().zip(commit) {
        println!("  commit {name:<11} {ns:>7.0} ns/change (batches of 1000, tmpfs)");
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if filter.iter().any(|f| f == "index") {
        index_bench();
        return;
    }
    index_bench();
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

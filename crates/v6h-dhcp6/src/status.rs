//! What a running DHCPv6 server reports about itself: per-link message and drop counters,
//! leases by state, pool use and the lease journal's fsync times. The daemon refreshes a
//! [`Stats`] once a second; `v6home dhcp6 status` reads it from a status file and the metrics
//! endpoint renders it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::server::{Counters, DropReason};

/// DHCPv6 message type names (RFC 8415 §7.3), index = type; 0 is "unknown".
pub const MESSAGE_NAMES: [&str; 14] = [
    "unknown",
    "solicit",
    "advertise",
    "request",
    "confirm",
    "renew",
    "rebind",
    "reply",
    "release",
    "decline",
    "reconfigure",
    "information_request",
    "relay_forw",
    "relay_repl",
];

/// One served link's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Interface (or `[[link]]`) name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// Datagrams received, valid or not.
    pub datagrams: u64,
    /// Messages received, by type name (only non-zero counts).
    pub received: BTreeMap<String, u64>,
    /// Messages sent, by type name (only non-zero counts).
    pub sent: BTreeMap<String, u64>,
    /// Datagrams dropped, by reason (every reason, zero included).
    pub dropped: BTreeMap<String, u64>,
    /// IAs over `max_ias_per_message`.
    pub ia_limit: u64,
    /// Relayed messages from a link no configuration matches.
    pub relay_unknown_link: u64,
}

impl LinkStatus {
    /// The status of one link from its counters.
    pub fn new(ifindex: u32, name: &str, c: &Counters) -> Self {
        let by_type = |a: &[u64; 14]| {
            a.iter()
                .zip(MESSAGE_NAMES)
                .filter(|(n, _)| **n > 0)
                .map(|(n, t)| (t.to_string(), *n))
                .collect()
        };
        LinkStatus {
            name: name.to_string(),
            ifindex,
            datagrams: c.datagrams,
            received: by_type(&c.received),
            sent: by_type(&c.sent),
            dropped: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_string(), c.dropped_for(*r)))
                .collect(),
            ia_limit: c.ia_limit,
            relay_unknown_link: c.relay_unknown_link,
        }
    }
}

/// Use of one address or prefix pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Link name.
    pub link: String,
    /// The pool as text (`first-last`, or `prefix /len`).
    pub pool: String,
    /// Addresses or prefixes in the pool (saturated at `u64::MAX`).
    pub size: u64,
    /// Of them, not leased or declined.
    pub free: u64,
}

/// The lease journal's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalStatus {
    /// `fdatasync` calls.
    pub fsyncs: u64,
    /// Caller commits completed.
    pub commits: u64,
    /// Records written.
    pub records: u64,
    /// Compactions.
    pub compactions: u64,
    /// Total write + fsync time, in microseconds.
    pub fsync_micros_total: u64,
    /// Longest write + fsync, in microseconds.
    pub fsync_micros_max: u64,
    /// Histogram upper bounds in microseconds (a last, unbounded bucket follows).
    pub fsync_bucket_micros: Vec<u64>,
    /// Syncs per bucket (not cumulative), one more entry than `fsync_bucket_micros`.
    pub fsync_bucket_counts: Vec<u64>,
    /// Damaged regions skipped when the journal was opened.
    pub corrupt_regions: u64,
}

impl JournalStatus {
    /// From the store's counters.
    pub fn new(s: &v6h_lease::StoreStats) -> Self {
        JournalStatus {
            fsyncs: s.fsyncs,
            commits: s.commits,
            records: s.records,
            compactions: s.compactions,
            fsync_micros_total: s.fsync_micros_total,
            fsync_micros_max: s.fsync_micros_max,
            fsync_bucket_micros: v6h_lease::store::FSYNC_BUCKETS_MICROS.to_vec(),
            fsync_bucket_counts: s.fsync_buckets.to_vec(),
            corrupt_regions: s.corrupt_regions,
        }
    }

    /// Cumulative buckets `(upper bound in seconds, count ≤ bound)` for a Prometheus
    /// histogram, without the unbounded one (its count is `fsyncs`).
    pub fn cumulative_seconds(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.fsync_bucket_micros
            .iter()
            .zip(&self.fsync_bucket_counts)
            .map(|(le, n)| {
                total += n;
                (*le as f64 / 1e6, total)
            })
            .collect()
    }
}

/// Everything the server reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Process ID.
    pub pid: u32,
    /// Configuration file.
    pub config: String,
    /// Pools or reservations configured (leases are kept).
    pub stateful: bool,
    /// Served links.
    pub links: Vec<LinkStatus>,
    /// Datagrams from interfaces that are not served.
    pub unserved: u64,
    /// Leases bound now.
    pub leases_bound: u64,
    /// Addresses or prefixes declined (quarantined) now.
    pub leases_declined: u64,
    /// Pools.
    pub pools: Vec<PoolStatus>,
    /// IAs refused because a pool was exhausted.
    pub pool_exhausted: u64,
    /// IAs refused because the client was at its lease cap.
    pub client_limit: u64,
    /// The lease journal (stateful only).
    pub journal: Option<JournalStatus>,
    /// Replies the kernel did not accept.
    pub send_failures: u64,
    /// Replies not sent because their leases could not be written.
    pub commit_failures: u64,
    /// Unix time of the daemon's start.
    pub started_unix: u64,
    /// Unix time of this snapshot.
    pub updated_unix: u64,
}

/// A shared view of the latest [`Snapshot`], refreshed by the daemon once a second.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<Snapshot>>,
}

impl Stats {
    /// The latest snapshot.
    pub fn get(&self) -> Snapshot {
        self.inner
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the snapshot.
    pub fn set(&self, s: Snapshot) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *g = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_status_names_types_and_every_drop_reason() {
        let mut c = Counters::default();
        c.received[1] = 3;
        c.received[11] = 2;
        c.sent[2] = 3;
        c.dropped[0] = 1;
        let l = LinkStatus::new(4, "eth0", &c);
        assert_eq!(l.received.get("solicit"), Some(&3));
        assert_eq!(l.received.get("information_request"), Some(&2));
        assert_eq!(l.sent.get("advertise"), Some(&3));
        assert!(!l.sent.contains_key("reply"));
        assert_eq!(l.dropped.len(), DropReason::ALL.len());
        assert_eq!(l.dropped.get("malformed"), Some(&1));
    }

    #[test]
    fn histogram_buckets_become_cumulative_seconds() {
        let j = JournalStatus {
            fsyncs: 4,
            fsync_bucket_micros: vec![100, 1000],
            fsync_bucket_counts: vec![1, 2, 1],
            ..JournalStatus::default()
        };
        assert_eq!(j.cumulative_seconds(), vec![(0.0001, 1), (0.001, 3)]);
    }
}

//! The sans-IO allocation engine: pools, reservations, bindings, holds and quarantine.
//!
//! Every operation takes `now` (seconds, normally Unix time so stored expiries survive a
//! restart) and one IA of one client, and returns what the server should put in that IA.
//! Durable effects are queued as [`Change`]s; the caller drains them with
//! [`Engine::take_changes`], commits them to a [`LeaseStore`](crate::LeaseStore), and only
//! then sends its Reply.
//!
//! # Data structures
//! * `held`: a `BTreeMap` from the first address of every held resource (bound or
//!   declined) to its state. Held resources never overlap, so one predecessor lookup answers
//!   "is any of `a..=b` held?" in O(log n); this map is the final arbiter of the
//!   no-double-binding invariant, including prefixes of different lengths.
//! * `bindings`: a `HashMap` from `(link, DUID, IA kind, IAID)` to the bound resources.
//! * **Advertise holds nothing** (as Kea): a Solicit is answered with what a Request would
//!   get now (the client's reservation, a free hint, its last lease, else the free unit at or
//!   after the hash of its DUID and IAID), without taking it. A Solicit flood therefore
//!   neither ties up the pool nor allocates memory; the same client is offered the same
//!   address again, and its Request takes it if it is still free (else the next free one).
//! * `client_leases`: bound leases per (link, DUID), for the per-client cap
//!   ([`EngineConfig::max_leases_per_client`]).
//! * Each pool keeps its free units (addresses, or delegated-prefix indices) as a
//!   [`FreeSet`] of intervals. A client's start point is a hash of its DUID and IAID; the engine
//!   takes that unit or the next free one in O(log n), and exhaustion is O(1) from the free
//!   count. Exclusions and reservations are removed from the free sets at start.
//! * `timers`: a `BTreeSet` of `(expiry, first address)` for O(log n) reclaim.
//! * `sticky`: each IA's last resource after release or expiry, preferred when it returns
//!   (bounded to [`STICKY_MAX`] entries; an entry is consumed when the IA is next served).

use crate::config::{ConfigError, EngineConfig, Lifetimes, check_lifetimes};
use crate::freeset::FreeSet;
use crate::record::{Change, LeaseRecord, LeaseState};
use crate::types::{IaKind, Prefix, Resource, Status};
use crate::view::LeaseView;
use std::collections::{BTreeMap, BTreeSet};

/// Hash map with a randomly keyed hasher (ahash): faster than SipHash on the per-message
/// path and still safe against clients choosing DUIDs that collide.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
use std::net::Ipv6Addr;

/// At most this many released/expired IAs remember their last lease (memory bound).
pub const STICKY_MAX: usize = 1 << 18;

/// Index of a link in the engine's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u32);

/// Identifies one IA of one client on one link.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BindingKey {
    /// The link.
    pub link: LinkId,
    /// The client's DUID.
    pub duid: Vec<u8>,
    /// IA_NA or IA_PD.
    pub kind: IaKind,
    /// The IAID.
    pub iaid: u32,
}

/// One IA from a client message.
#[derive(Clone, Copy, Debug)]
pub struct IaRequest<'a> {
    /// The link the message arrived on (or the relay's link).
    pub link: LinkId,
    /// The client's DUID.
    pub duid: &'a [u8],
    /// IA_NA or IA_PD.
    pub kind: IaKind,
    /// The IAID.
    pub iaid: u32,
    /// Addresses/prefixes the client put in the IA (hints, or the leases it renews);
    /// length-only hints such as `::/56` are ignored.
    pub leases: &'a [Resource],
}

/// One lease in an answer, with the lifetimes to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The address or prefix.
    pub resource: Resource,
    /// Preferred lifetime to send (0 when the lease is withdrawn).
    pub preferred: u32,
    /// Valid lifetime to send (0 when the lease is withdrawn).
    pub valid: u32,
}

/// What the server puts in the IA of its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IaReply {
    /// IA-level status. `NotOnLink` means the listed leases are wrong for the link and are
    /// returned with zero lifetimes.
    pub status: Status,
    /// Leases to include (some may have zero lifetimes).
    pub leases: Vec<Lease>,
    /// T1 to send (0 when no lease is live).
    pub t1: u32,
    /// T2 to send (0 when no lease is live).
    pub t2: u32,
}

impl IaReply {
    fn status(status: Status) -> Self {
        IaReply {
            status,
            leases: Vec::new(),
            t1: 0,
            t2: 0,
        }
    }
}

/// The answer to a Confirm (RFC 8415 §18.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// All addresses are on-link: reply with Success.
    Success,
    /// Some address is not on-link: reply with NotOnLink.
    NotOnLink,
    /// No addresses, or the link's prefixes are unknown: send no reply.
    NoReply,
}

/// What [`Engine::restore`] did with the records it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Records loaded as live leases.
    pub loaded: usize,
    /// Records already expired (a removal was queued for them).
    pub expired: usize,
    /// Records that overlap an earlier one and were dropped.
    pub conflicts: usize,
    /// Records for links that are no longer configured (held until expiry, not renewable).
    pub unknown_link: usize,
}

/// Counts for one pool, for metrics and the lease listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// Link name.
    pub link: String,
    /// The pool as text.
    pub pool: String,
    /// Units (addresses or delegated prefixes) in the pool after exclusions.
    pub size: u128,
    /// Units currently free.
    pub free: u128,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolRef {
    Na(usize),
    Pd(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Pool(LinkId, PoolRef, u128),
    Reserved,
    Stale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeldState {
    Bound,
    Declined,
}

/// Counters of IAs the engine could not serve, for the daemon's stats and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// IAs answered NoAddrsAvail/NoPrefixAvail because no pool of their link had a free
    /// address or prefix for them.
    pub pool_exhausted: u64,
    /// IAs answered NoAddrsAvail/NoPrefixAvail because their client already holds
    /// [`EngineConfig::max_leases_per_client`] leases on the link.
    pub client_limit: u64,
}

#[derive(Clone, Debug)]
struct Held {
    resource: Resource,
    key: BindingKey,
    link_name: Option<String>,
    state: HeldState,
    expires: u64,
    preferred: u32,
    valid: u32,
    origin: Origin,
}

#[derive(Debug)]
struct NaPool {
    first: u128,
    last: u128,
    excluded: Vec<(u128, u128)>,
    size: u128,
    free: FreeSet,
}

#[derive(Debug)]
struct PdPool {
    prefix: Prefix,
    delegated_len: u8,
    excluded: Vec<(u128, u128)>,
    size: u128,
    free: FreeSet,
}

impl PdPool {
    fn shift(&self) -> u32 {
        128 - u32::from(self.delegated_len)
    }
    fn resource(&self, idx: u128) -> Resource {
        let a = self.prefix.first() + (idx << self.shift());
        Resource::Prefix(Prefix::containing(Ipv6Addr::from(a), self.delegated_len))
    }
    fn last_index(&self) -> u128 {
        (self.prefix.last() - self.prefix.first()) >> self.shift()
    }
    /// Indices of delegated prefixes that overlap `a..=b`.
    fn index_range(&self, a: u128, b: u128) -> Option<(u128, u128)> {
        let a = a.max(self.prefix.first());
        let b = b.min(self.prefix.last());
        (a <= b).then(|| {
            (
                (a - self.prefix.first()) >> self.shift(),
                (b - self.prefix.first()) >> self.shift(),
            )
        })
    }
}

impl NaPool {
    fn resource(&self, idx: u128) -> Resource {
        Resource::Addr(Ipv6Addr::from(self.first + idx))
    }
    fn index_range(&self, a: u128, b: u128) -> Option<(u128, u128)> {
        let a = a.max(self.first);
        let b = b.min(self.last);
        (a <= b).then(|| (a - self.first, b - self.first))
    }
}

#[derive(Debug)]
struct Link {
    name: String,
    na: Vec<NaPool>,
    pd: Vec<PdPool>,
    on_link: Vec<(u128, u128)>,
    na_lifetimes: Lifetimes,
    pd_lifetimes: Lifetimes,
    rapid_commit: bool,
}

impl Link {
    fn lifetimes(&self, kind: IaKind) -> Lifetimes {
        match kind {
            IaKind::Na => self.na_lifetimes,
            IaKind::Pd => self.pd_lifetimes,
        }
    }
    fn free(&mut self, p: PoolRef) -> &mut FreeSet {
        match p {
            PoolRef::Na(i) => &mut self.na[i].free,
            PoolRef::Pd(i) => &mut self.pd[i].free,
        }
    }
    fn pool_resource(&self, p: PoolRef, idx: u128) -> Resource {
        match p {
            PoolRef::Na(i) => self.na[i].resource(idx),
            PoolRef::Pd(i) => self.pd[i].resource(idx),
        }
    }
    /// The pool unit that is exactly `r`, if `r` is a (non-excluded) unit of a pool here.
    fn unit_of(&self, r: &Resource) -> Option<(PoolRef, u128)> {
        let outside = |ex: &[(u128, u128)], i: u128| !ex.iter().any(|&(a, b)| a <= i && i <= b);
        match r {
            Resource::Addr(a) => {
                let a = u128::from(*a);
                self.na.iter().enumerate().find_map(|(n, p)| {
                    (a >= p.first && a <= p.last && outside(&p.excluded, a - p.first))
                        .then(|| (PoolRef::Na(n), a - p.first))
                })
            }
            Resource::Prefix(x) => self.pd.iter().enumerate().find_map(|(n, p)| {
                if x.len() != p.delegated_len || !p.prefix.contains(x.addr()) {
                    return None;
                }
                let i = (x.first() - p.prefix.first()) >> p.shift();
                outside(&p.excluded, i).then_some((PoolRef::Pd(n), i))
            }),
        }
    }
}

/// The stateful DHCPv6 allocation engine (sans-IO, deterministic).
#[derive(Debug)]
pub struct Engine {
    links: Vec<Link>,
    link_names: HashMap<String, LinkId>,
    /// Reservations by DUID: `(link, resource)` pairs.
    reservations: HashMap<Vec<u8>, Vec<(LinkId, Resource)>>,
    /// Reserved space by first address: `(last address, owner DUID)`; never overlapping.
    reserved_space: BTreeMap<u128, (u128, Vec<u8>)>,
    /// Boxed so B-tree node splits and shifts move pointers, not whole entries.
    held: BTreeMap<u128, Box<Held>>,
    bindings: HashMap<BindingKey, Vec<u128>>,
    /// Bound leases per client and link, keyed by a randomly keyed hash of (link, DUID).
    client_leases: HashMap<u64, u32>,
    client_hasher: ahash::RandomState,
    max_leases_per_client: u32,
    stats: EngineStats,
    timers: BTreeSet<(u64, u128)>,
    sticky: HashMap<BindingKey, Resource>,
    changes: Vec<Change>,
    quarantine: u64,
    recreate_unknown: bool,
    /// Per-resource lifetimes of reservations (override the link's).
    reserved_lifetimes: HashMap<Resource, Lifetimes>,
    /// Per-client lifetimes for addresses in a range: DUID → `(first, last, lifetimes)`.
    host_pool_lifetimes: HashMap<Vec<u8>, Vec<(u128, u128, Lifetimes)>>,
}

fn fnv(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The durable record of a held entry.
fn record_of(h: &Held) -> LeaseRecord {
    LeaseRecord {
        link: h.link_name.clone().unwrap_or_default(),
        duid: h.key.duid.clone(),
        iaid: h.key.iaid,
        resource: h.resource,
        state: if h.state == HeldState::Declined {
            LeaseState::Declined
        } else {
            LeaseState::Bound
        },
        preferred: h.preferred,
        valid: h.valid,
        expires: h.expires,
    }
}

impl Engine {
    /// Validates `cfg` and builds an engine with no leases.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        let mut links = Vec::new();
        let mut link_names = HashMap::default();
        // Address-space runs each pool can hand out, for the overlap check.
        let mut spans: Vec<(u128, u128, String)> = Vec::new();
        for (li, lc) in cfg.links.iter().enumerate() {
            let id = LinkId(li as u32);
            if link_names.insert(lc.name.clone(), id).is_some() {
                return Err(ConfigError::DuplicateLink(lc.name.clone()));
            }
            check_lifetimes(&lc.name, "address", &lc.na_lifetimes)?;
            check_lifetimes(&lc.name, "prefix", &lc.pd_lifetimes)?;
            let mut na = Vec::new();
            for pc in &lc.na_pools {
                let (first, last) = (u128::from(pc.first), u128::from(pc.last));
                if first > last {
                    return Err(ConfigError::EmptyRange {
                        link: lc.name.clone(),
                        first: pc.first,
                        last: pc.last,
                    });
                }
                if first == 0 && last == u128::MAX {
                    return Err(ConfigError::HugeRange(lc.name.clone()));
                }
                let mut pool = NaPool {
                    first,
                    last,
                    excluded: Vec::new(),
                    size: 0,
                    free: FreeSet::full(last - first),
                };
                for x in &pc.exclude {
                    if let Some((a, b)) = pool.index_range(x.first(), x.last()) {
                        pool.free.remove_range(a, b);
                        pool.excluded.push((a, b));
                    }
                }
                pool.size = pool.free.count();
                let label = format!("{}: {}-{}", lc.name, pc.first, pc.last);
                if pool.size == 0 {
                    return Err(ConfigError::EmptyPool {
                        link: lc.name.clone(),
                        pool: label,
                    });
                }
                for (s, e) in pool.free.runs() {
                    spans.push((first + s, first + e, label.clone()));
                }
                na.push(pool);
            }
            let mut pd = Vec::new();
            for pc in &lc.pd_pools {
                let (plen, dlen) = (pc.prefix.len(), pc.delegated_len);
                if dlen <= plen || dlen > 128 || dlen - plen > 64 {
                    return Err(ConfigError::DelegatedLen {
                        link: lc.name.clone(),
                        prefix: pc.prefix,
                        delegated_len: dlen,
                    });
                }
                let mut pool = PdPool {
                    prefix: pc.prefix,
                    delegated_len: dlen,
                    excluded: Vec::new(),
                    size: 0,
                    free: FreeSet::default(),
                };
                pool.free = FreeSet::full(pool.last_index());
                for x in &pc.exclude {
                    if let Some((a, b)) = pool.index_range(x.first(), x.last()) {
                        pool.free.remove_range(a, b);
                        pool.excluded.push((a, b));
                    }
                }
                pool.size = pool.free.count();
                let label = format!("{}: {} /{}", lc.name, pc.prefix, dlen);
                if pool.size == 0 {
                    return Err(ConfigError::EmptyPool {
                        link: lc.name.clone(),
                        pool: label,
                    });
                }
                let shift = pool.shift();
                for (s, e) in pool.free.runs() {
                    let a = pc.prefix.first() + (s << shift);
                    let b = pc.prefix.first() + (e << shift) + !mask_shift(shift);
                    spans.push((a, b, label.clone()));
                }
                pd.push(pool);
            }
            let on_link = if lc.on_link.is_empty() {
                na.iter().map(|p| (p.first, p.last)).collect()
            } else {
                lc.on_link.iter().map(|p| (p.first(), p.last())).collect()
            };
            links.push(Link {
                name: lc.name.clone(),
                na,
                pd,
                on_link,
                na_lifetimes: lc.na_lifetimes,
                pd_lifetimes: lc.pd_lifetimes,
                rapid_commit: lc.rapid_commit,
            });
        }
        spans.sort();
        for w in spans.windows(2) {
            if w[1].0 <= w[0].1 {
                return Err(ConfigError::PoolOverlap {
                    a: w[0].2.clone(),
                    b: w[1].2.clone(),
                });
            }
        }
        let mut reservations: HashMap<Vec<u8>, Vec<(LinkId, Resource)>> = HashMap::default();
        let mut reserved_space = BTreeMap::new();
        let mut reserved: Vec<(u128, u128, String)> = Vec::new();
        for r in &cfg.reservations {
            let Some(&id) = link_names.get(&r.link) else {
                return Err(ConfigError::UnknownLink {
                    link: r.link.clone(),
                    duid: hex::encode(&r.duid),
                });
            };
            if r.duid.is_empty() {
                return Err(ConfigError::EmptyDuid(r.link.clone()));
            }
            for res in r.resources() {
                reserved.push((res.first(), res.last(), res.to_string()));
                // Reserved space is never handed out from any pool.
                for link in &mut links {
                    for p in &mut link.na {
                        if let Some((a, b)) = p.index_range(res.first(), res.last()) {
                            p.free.remove_range(a, b);
                        }
                    }
                    for p in &mut link.pd {
                        if let Some((a, b)) = p.index_range(res.first(), res.last()) {
                            p.free.remove_range(a, b);
                        }
                    }
                }
                reservations
                    .entry(r.duid.clone())
                    .or_default()
                    .push((id, res));
                reserved_space.insert(res.first(), (res.last(), r.duid.clone()));
            }
        }
        reserved.sort();
        for w in reserved.windows(2) {
            if w[1].0 <= w[0].1 {
                return Err(ConfigError::ReservationConflict(w[1].2.clone()));
            }
        }
        let mut reserved_lifetimes = HashMap::default();
        for (r, lt) in &cfg.reserved_lifetimes {
            if !reserved_space.contains_key(&r.first())
                || !reservations.values().flatten().any(|(_, x)| x == r)
            {
                return Err(ConfigError::UnreservedLifetimes(r.to_string()));
            }
            let what = match r {
                Resource::Addr(_) => "reserved address",
                Resource::Prefix(_) => "reserved prefix",
            };
            check_lifetimes(&r.to_string(), what, lt)?;
            reserved_lifetimes.insert(*r, *lt);
        }
        let mut host_pool_lifetimes: HashMap<Vec<u8>, Vec<(u128, u128, Lifetimes)>> =
            HashMap::default();
        for h in &cfg.host_pool_lifetimes {
            let (first, last) = (u128::from(h.first), u128::from(h.last));
            if first > last {
                return Err(ConfigError::EmptyRange {
                    link: format!("host pool of DUID {}", hex::encode(&h.duid)),
                    first: h.first,
                    last: h.last,
                });
            }
            check_lifetimes(
                &format!("host pool of DUID {}", hex::encode(&h.duid)),
                "address",
                &h.lifetimes,
            )?;
            host_pool_lifetimes
                .entry(h.duid.clone())
                .or_default()
                .push((first, last, h.lifetimes));
        }
        Ok(Engine {
            links,
            link_names,
            reservations,
            reserved_space,
            held: BTreeMap::new(),
            bindings: HashMap::default(),
            client_leases: HashMap::default(),
            client_hasher: ahash::RandomState::new(),
            max_leases_per_client: cfg.max_leases_per_client,
            stats: EngineStats::default(),
            timers: BTreeSet::new(),
            sticky: HashMap::default(),
            changes: Vec::new(),
            quarantine: cfg.decline_quarantine_secs,
            recreate_unknown: cfg.recreate_unknown,
            reserved_lifetimes,
            host_pool_lifetimes,
        })
    }

    /// The link with this name.
    pub fn link_id(&self, name: &str) -> Option<LinkId> {
        self.link_names.get(name).copied()
    }

    /// The name of a link.
    pub fn link_name(&self, id: LinkId) -> Option<&str> {
        self.links.get(id.0 as usize).map(|l| l.name.as_str())
    }

    /// The link whose on-link prefixes or pools contain `addr` (a relay's link-address).
    pub fn link_for_address(&self, addr: Ipv6Addr) -> Option<LinkId> {
        let a = u128::from(addr);
        self.links
            .iter()
            .position(|l| {
                l.on_link.iter().any(|&(s, e)| s <= a && a <= e)
                    || l.na.iter().any(|p| p.first <= a && a <= p.last)
            })
            .map(|i| LinkId(i as u32))
    }

    /// Whether the link allows Rapid Commit.
    pub fn rapid_commit_allowed(&self, link: LinkId) -> bool {
        self.links
            .get(link.0 as usize)
            .is_some_and(|l| l.rapid_commit)
    }

    /// Drains the durable changes made since the last call. Commit them before replying.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The earliest time at which [`Engine::expire`] has work to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.iter().next().map(|&(t, _)| t)
    }

    /// Number of committed bindings (IAs with at least one bound lease).
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// Leases held now, by state: `(bound, declined)` (addresses and prefixes). O(n): for a
    /// once-a-second status snapshot, not the packet path.
    pub fn lease_counts(&self) -> (u64, u64) {
        self.held.values().fold((0, 0), |(b, d), h| match h.state {
            HeldState::Bound => (b + 1, d),
            HeldState::Declined => (b, d + 1),
        })
    }

    /// Counters of IAs that could not be served (pool exhausted, per-client cap).
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Bound leases `duid` holds on `link`.
    pub fn client_lease_count(&self, link: LinkId, duid: &[u8]) -> u32 {
        let h = self.client_hash(link, duid);
        self.client_leases.get(&h).copied().unwrap_or(0)
    }

    fn client_hash(&self, link: LinkId, duid: &[u8]) -> u64 {
        self.client_hasher.hash_one((link.0, duid))
    }

    /// Whether `key`'s client may get `more` new leases on its link (the per-client cap).
    fn under_client_cap(&self, key: &BindingKey, more: u32) -> bool {
        self.max_leases_per_client == 0
            || self
                .client_lease_count(key.link, &key.duid)
                .saturating_add(more)
                <= self.max_leases_per_client
    }

    /// Counts one more (`up`) or one fewer bound lease for `key`'s client.
    fn count_client(&mut self, key: &BindingKey, up: bool) {
        let h = self.client_hash(key.link, &key.duid);
        if up {
            *self.client_leases.entry(h).or_insert(0) += 1;
        } else if let Some(n) = self.client_leases.get_mut(&h) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.client_leases.remove(&h);
            }
        }
    }

    /// The status for an IA that gets nothing new, counted by cause.
    fn refuse(&mut self, kind: IaKind, cap: bool) -> Status {
        if cap {
            self.stats.client_limit += 1;
        } else {
            self.stats.pool_exhausted += 1;
        }
        Self::no_avail(kind)
    }

    /// Per-pool size and free counts.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let mut out = Vec::new();
        for l in &self.links {
            for p in &l.na {
                out.push(PoolUsage {
                    link: l.name.clone(),
                    pool: format!("{}-{}", Ipv6Addr::from(p.first), Ipv6Addr::from(p.last)),
                    size: p.size,
                    free: p.free.count(),
                });
            }
            for p in &l.pd {
                out.push(PoolUsage {
                    link: l.name.clone(),
                    pool: format!("{} /{}", p.prefix, p.delegated_len),
                    size: p.size,
                    free: p.free.count(),
                });
            }
        }
        out
    }

    fn key(&self, ia: &IaRequest<'_>) -> BindingKey {
        BindingKey {
            link: ia.link,
            duid: ia.duid.to_vec(),
            kind: ia.kind,
            iaid: ia.iaid,
        }
    }

    /// The held entry overlapping `r`, if any.
    fn overlapping(&self, r: &Resource) -> Option<&Held> {
        let (_, h) = self.held.range(..=r.last()).next_back()?;
        (h.resource.last() >= r.first()).then_some(h)
    }

    fn set_timer(&mut self, start: u128, old: Option<u64>, new: u64) {
        if let Some(o) = old {
            self.timers.remove(&(o, start));
        }
        self.timers.insert((new, start));
    }

    fn reserved_for(&self, link: LinkId, duid: &[u8], r: &Resource) -> bool {
        self.reservations
            .get(duid)
            .is_some_and(|v| v.contains(&(link, *r)))
    }

    /// The lifetimes for `r` in `key`'s IA: the reservation's own, else the link's `base`.
    /// For a pool address, a host's own pool lifetimes apply (see
    /// [`EngineConfig::host_pool_lifetimes`]).
    fn lt_for(&self, key: &BindingKey, r: &Resource, base: Lifetimes) -> Lifetimes {
        if !self.reserved_lifetimes.is_empty()
            && let Some(lt) = self.reserved_lifetimes.get(r)
            && self.reserved_for(key.link, &key.duid, r)
        {
            return *lt;
        }
        if !self.host_pool_lifetimes.is_empty()
            && let Resource::Addr(a) = r
            && let Some(ranges) = self.host_pool_lifetimes.get(&key.duid)
        {
            let a = u128::from(*a);
            if let Some(&(_, _, lt)) = ranges.iter().find(|&&(f, l, _)| f <= a && a <= l) {
                return lt;
            }
        }
        base
    }

    /// `r` as offered to `key` (not committed), with its lifetimes.
    fn offer_lease(&self, key: &BindingKey, r: Resource, base: Lifetimes) -> Lease {
        let lt = self.lt_for(key, &r, base);
        Lease {
            resource: r,
            preferred: lt.preferred,
            valid: lt.valid,
        }
    }

    /// Whether any part of `r` is reserved for a client other than `duid`.
    fn reserved_for_other(&self, duid: &[u8], r: &Resource) -> bool {
        self.reserved_space
            .range(..=r.last())
            .next_back()
            .is_some_and(|(_, (last, owner))| *last >= r.first() && owner.as_slice() != duid)
    }

    /// Whether `r` may be used by this client on this link: a pool unit of the link that is
    /// not reserved for someone else, or one of the client's reservations on the link.
    fn appropriate(&self, link: LinkId, duid: &[u8], r: &Resource) -> bool {
        let Some(l) = self.links.get(link.0 as usize) else {
            return false;
        };
        (l.unit_of(r).is_some() && !self.reserved_for_other(duid, r))
            || self.reserved_for(link, duid, r)
    }

    /// Takes a specific resource for `key` if it is free (not held) and appropriate.
    fn take_specific(&mut self, key: &BindingKey, r: Resource) -> Option<Origin> {
        if r.kind() != key.kind {
            return None;
        }
        if self.overlapping(&r).is_some() {
            return None;
        }
        if self.reserved_for(key.link, &key.duid, &r) {
            return Some(Origin::Reserved);
        }
        let link = self.links.get_mut(key.link.0 as usize)?;
        let (p, idx) = link.unit_of(&r)?;
        link.free(p)
            .take(idx)
            .then_some(Origin::Pool(key.link, p, idx))
    }

    /// Picks a new resource for `key`: reservation, hints, sticky, then a hashed pool unit.
    fn pick(&mut self, key: &BindingKey, hints: &[Resource]) -> Option<(Resource, Origin)> {
        if let Some(res) = self.reservations.get(&key.duid) {
            let mine: Vec<Resource> = res
                .iter()
                .filter(|(l, r)| *l == key.link && r.kind() == key.kind)
                .map(|(_, r)| *r)
                .collect();
            for r in mine {
                if self.overlapping(&r).is_none() {
                    return Some((r, Origin::Reserved));
                }
            }
        }
        let sticky = self.sticky.remove(key);
        for r in hints.iter().copied().chain(sticky) {
            if let Some(o) = self.take_specific(key, r) {
                return Some((r, o));
            }
        }
        let li = key.link.0 as usize;
        let (n, h) = self.hashed(key)?;
        for k in 0..n {
            let Some((p, start)) = self.hashed_start(key, li, n, h, k) else {
                continue;
            };
            let mut parked = Vec::new();
            let mut found = None;
            while let Some(idx) = self.links[li].free(p).take_near(start) {
                let r = self.links[li].pool_resource(p, idx);
                if self.overlapping(&r).is_none() {
                    found = Some((r, Origin::Pool(key.link, p, idx)));
                    break;
                }
                // Only leases restored from an older configuration can overlap a free unit.
                parked.push(idx);
                if parked.len() >= 64 {
                    break;
                }
            }
            for idx in parked {
                self.links[li].free(p).give(idx);
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The number of pools of `key`'s kind on its link, and the hash of its DUID and IAID
    /// that chooses the pool and the starting unit in it.
    fn hashed(&self, key: &BindingKey) -> Option<(usize, u128)> {
        let li = key.link.0 as usize;
        let n = match key.kind {
            IaKind::Na => self.links.get(li)?.na.len(),
            IaKind::Pd => self.links.get(li)?.pd.len(),
        };
        let kind_byte = [key.kind as u8];
        let iaid = key.iaid.to_be_bytes();
        let h = (u128::from(fnv(1, &[&key.duid, &iaid, &kind_byte])) << 64)
            | u128::from(fnv(2, &[&key.duid, &iaid, &kind_byte]));
        Some((n, h))
    }

    /// The `k`-th pool to try for `key` and the unit to start at, or `None` if it is full.
    fn hashed_start(
        &self,
        key: &BindingKey,
        li: usize,
        n: usize,
        h: u128,
        k: usize,
    ) -> Option<(PoolRef, u128)> {
        let pi = (k + (h as usize) % n.max(1)) % n;
        let p = match key.kind {
            IaKind::Na => PoolRef::Na(pi),
            IaKind::Pd => PoolRef::Pd(pi),
        };
        let l = &self.links[li];
        let (size_last, free) = match p {
            PoolRef::Na(i) => (l.na[i].last - l.na[i].first, l.na[i].free.count()),
            PoolRef::Pd(i) => (l.pd[i].last_index(), l.pd[i].free.count()),
        };
        if free == 0 {
            return None;
        }
        let start = match size_last.checked_add(1) {
            Some(sz) => h % sz,
            None => h,
        };
        Some((p, start))
    }

    /// Whether `r` could be taken for `key` now ([`Engine::take_specific`] without taking).
    fn free_for(&self, key: &BindingKey, r: &Resource) -> bool {
        if r.kind() != key.kind || self.overlapping(r).is_some() {
            return false;
        }
        if self.reserved_for(key.link, &key.duid, r) {
            return true;
        }
        let Some(link) = self.links.get(key.link.0 as usize) else {
            return false;
        };
        link.unit_of(r).is_some_and(|(p, idx)| match p {
            PoolRef::Na(i) => link.na[i].free.contains(idx),
            PoolRef::Pd(i) => link.pd[i].free.contains(idx),
        })
    }

    /// What [`Engine::pick`] would choose for `key`, without taking it (for an Advertise):
    /// reservation, free hint, sticky lease, then the free unit at or after the hash.
    fn peek(&self, key: &BindingKey, hints: &[Resource]) -> Option<Resource> {
        if let Some(res) = self.reservations.get(&key.duid)
            && let Some((_, r)) = res.iter().find(|(l, r)| {
                *l == key.link && r.kind() == key.kind && self.overlapping(r).is_none()
            })
        {
            return Some(*r);
        }
        let sticky = self.sticky.get(key).copied();
        if let Some(r) = hints
            .iter()
            .copied()
            .chain(sticky)
            .find(|r| self.free_for(key, r))
        {
            return Some(r);
        }
        let li = key.link.0 as usize;
        let (n, h) = self.hashed(key)?;
        for k in 0..n {
            let Some((p, start)) = self.hashed_start(key, li, n, h, k) else {
                continue;
            };
            let link = &self.links[li];
            let free = match p {
                PoolRef::Na(i) => &link.na[i].free,
                PoolRef::Pd(i) => &link.pd[i].free,
            };
            let mut at = start;
            // As in `pick`: only leases restored from an older configuration can overlap a
            // free unit, so a few probes suffice.
            for _ in 0..64 {
                let Some(idx) = free.peek_near(at) else {
                    break;
                };
                let r = link.pool_resource(p, idx);
                if self.overlapping(&r).is_none() {
                    return Some(r);
                }
                at = idx.checked_add(1).unwrap_or(0);
            }
        }
        None
    }

    fn insert_held(
        &mut self,
        key: &BindingKey,
        r: Resource,
        origin: Origin,
        state: HeldState,
        expires: u64,
        lt: Lifetimes,
    ) {
        let start = r.first();
        let lt = self.lt_for(key, &r, lt);
        let link_name = self.link_name(key.link).map(str::to_string);
        self.held.insert(
            start,
            Box::new(Held {
                resource: r,
                key: key.clone(),
                link_name,
                state,
                expires,
                preferred: lt.preferred,
                valid: lt.valid,
                origin,
            }),
        );
        self.set_timer(start, None, expires);
    }

    /// Frees a held entry: removes it, its timer, and returns its pool unit.
    fn free_held(&mut self, start: u128) -> Option<Box<Held>> {
        let h = self.held.remove(&start)?;
        self.timers.remove(&(h.expires, start));
        if let Origin::Pool(l, p, idx) = h.origin
            && let Some(link) = self.links.get_mut(l.0 as usize)
        {
            link.free(p).give(idx);
        }
        Some(h)
    }

    fn record(&self, h: &Held) -> LeaseRecord {
        record_of(h)
    }

    /// Marks `start` bound to its key until `now + valid`, queueing the durable change.
    fn bind(&mut self, now: u64, start: u128, lt: Lifetimes) -> Option<Lease> {
        let lt = {
            let h = self.held.get(&start)?;
            self.lt_for(&h.key, &h.resource, lt)
        };
        let expires = now.saturating_add(u64::from(lt.valid));
        let (old, key, rec) = {
            let h = self.held.get_mut(&start)?;
            let old = h.expires;
            h.state = HeldState::Bound;
            h.expires = expires;
            h.preferred = lt.preferred;
            h.valid = lt.valid;
            (old, h.key.clone(), record_of(h))
        };
        let resource = rec.resource;
        self.set_timer(start, Some(old), expires);
        let added = match self.bindings.get_mut(&key) {
            Some(b) if !b.contains(&start) => {
                b.push(start);
                Some(key)
            }
            Some(_) => None,
            None => {
                self.count_client(&key, true);
                self.bindings.insert(key, vec![start]);
                None
            }
        };
        if let Some(k) = added {
            self.count_client(&k, true);
        }
        self.changes.push(Change::Put(rec));
        Some(Lease {
            resource,
            preferred: lt.preferred,
            valid: lt.valid,
        })
    }

    fn no_avail(kind: IaKind) -> Status {
        match kind {
            IaKind::Na => Status::NoAddrsAvail,
            IaKind::Pd => Status::NoPrefixAvail,
        }
    }

    /// The IA answer. T1/T2 come from the link's lifetimes `lt`, unless a live lease has
    /// its own (reserved) lifetimes: then from the shortest live preferred lifetime
    /// (0.5 and 0.8 of it, RFC 8415 §21.4).
    fn finish(leases: Vec<Lease>, lt: Lifetimes, status: Status) -> IaReply {
        let mut live = leases.iter().filter(|l| l.valid > 0).peekable();
        let (t1, t2) = if live.peek().is_none() {
            (0, 0)
        } else if leases
            .iter()
            .filter(|l| l.valid > 0)
            .all(|l| l.preferred == lt.preferred && l.valid == lt.valid)
        {
            (lt.t1(), lt.t2())
        } else {
            let shortest = live.map(|l| l.preferred).min().unwrap_or(0);
            let own = Lifetimes {
                preferred: shortest,
                valid: shortest,
                t1: None,
                t2: None,
            };
            (own.t1(), own.t2())
        };
        IaReply {
            status,
            t1,
            t2,
            leases,
        }
    }

    fn lifetimes(&self, key: &BindingKey) -> Option<Lifetimes> {
        self.links
            .get(key.link.0 as usize)
            .map(|l| l.lifetimes(key.kind))
    }

    /// Solicit: offer what a Request would get now, without taking it (an Advertise
    /// promises nothing, RFC 8415 §18.3.1, and holds nothing: a flood of Solicits can
    /// neither tie up the pool nor grow memory). With `rapid_commit` (and a link that allows
    /// it) this is a Request.
    pub fn solicit(&mut self, now: u64, ia: &IaRequest<'_>, rapid_commit: bool) -> IaReply {
        let leases = concrete(ia.leases);
        let ia = &IaRequest {
            leases: &leases,
            ..*ia
        };
        if rapid_commit && self.rapid_commit_allowed(ia.link) {
            return self.request(now, ia);
        }
        self.expire(now);
        let key = self.key(ia);
        let Some(lt) = self.lifetimes(&key) else {
            return IaReply::status(Self::no_avail(ia.kind));
        };
        if let Some(b) = self.bindings.get(&key) {
            let leases: Vec<Lease> = b
                .iter()
                .map(|s| self.offer_lease(&key, self.held[s].resource, lt))
                .collect();
            return Self::finish(leases, lt, Status::Success);
        }
        if !self.under_client_cap(&key, 1) {
            return IaReply::status(self.refuse(ia.kind, true));
        }
        match self.peek(&key, ia.leases) {
            Some(r) => {
                let lease = self.offer_lease(&key, r, lt);
                Self::finish(vec![lease], lt, Status::Success)
            }
            None => IaReply::status(self.refuse(ia.kind, false)),
        }
    }

    /// Request (or Rapid-Commit Solicit): assign and commit.
    pub fn request(&mut self, now: u64, ia: &IaRequest<'_>) -> IaReply {
        let leases = concrete(ia.leases);
        let ia = &IaRequest {
            leases: &leases,
            ..*ia
        };
        self.expire(now);
        let key = self.key(ia);
        let Some(lt) = self.lifetimes(&key) else {
            return IaReply::status(Self::no_avail(ia.kind));
        };
        if self.bindings.contains_key(&key) {
            return self.extend(now, &key, ia.leases, lt);
        }
        if !self.under_client_cap(&key, 1) {
            return IaReply::status(self.refuse(ia.kind, true));
        }
        let mut leases = Vec::new();
        match self.pick(&key, ia.leases) {
            Some((r, origin)) => {
                self.insert_held(&key, r, origin, HeldState::Bound, now, lt);
                leases.extend(self.bind(now, r.first(), lt));
            }
            None => return IaReply::status(self.refuse(ia.kind, false)),
        }
        Self::finish(leases, lt, Status::Success)
    }

    /// Extends a known binding: appropriate leases get new lifetimes, others are withdrawn
    /// (returned with zero lifetimes and freed). If nothing is left, a new lease is assigned.
    fn extend(
        &mut self,
        now: u64,
        key: &BindingKey,
        listed: &[Resource],
        lt: Lifetimes,
    ) -> IaReply {
        let starts = self.bindings.get(key).cloned().unwrap_or_default();
        let mut leases = Vec::new();
        let mut live = 0;
        for s in starts {
            let r = self.held[&s].resource;
            if self.appropriate(key.link, &key.duid, &r) {
                leases.extend(self.bind(now, s, lt));
                live += 1;
            } else {
                self.drop_bound(s);
                leases.push(Lease {
                    resource: r,
                    preferred: 0,
                    valid: 0,
                });
            }
        }
        // Leases the client lists that we do not hold for it and that are wrong for the link.
        for r in listed {
            if r.kind() == key.kind
                && !leases.iter().any(|l| l.resource == *r)
                && !self.appropriate(key.link, &key.duid, r)
            {
                leases.push(Lease {
                    resource: *r,
                    preferred: 0,
                    valid: 0,
                });
            }
        }
        if live == 0 {
            if !self.under_client_cap(key, 1) {
                let st = self.refuse(key.kind, true);
                return Self::finish(leases, lt, st);
            }
            if let Some((r, origin)) = self.pick(key, &[]) {
                self.insert_held(key, r, origin, HeldState::Bound, now, lt);
                leases.extend(self.bind(now, r.first(), lt));
            } else {
                let st = self.refuse(key.kind, false);
                return Self::finish(leases, lt, st);
            }
        }
        Self::finish(leases, lt, Status::Success)
    }

    /// Removes a bound lease from its binding and frees it (queues the removal).
    fn drop_bound(&mut self, start: u128) -> Option<Box<Held>> {
        let h = self.free_held(start)?;
        self.unlink(&h.key, start);
        if self.sticky.len() < STICKY_MAX {
            self.sticky.insert(h.key.clone(), h.resource);
        }
        self.changes.push(Change::Remove(h.resource));
        Some(h)
    }

    fn unlink(&mut self, key: &BindingKey, start: u128) {
        let mut removed = false;
        if let Some(v) = self.bindings.get_mut(key) {
            let before = v.len();
            v.retain(|&s| s != start);
            removed = v.len() < before;
            if v.is_empty() {
                self.bindings.remove(key);
            }
        }
        if removed {
            self.count_client(key, false);
        }
    }

    /// Tries to re-create an unknown binding from the leases the client lists.
    fn recreate(
        &mut self,
        now: u64,
        key: &BindingKey,
        listed: &[Resource],
        lt: Lifetimes,
    ) -> Option<IaReply> {
        let mine: Vec<Resource> = listed
            .iter()
            .filter(|r| r.kind() == key.kind)
            .copied()
            .collect();
        if !self.recreate_unknown || mine.is_empty() {
            return None;
        }
        if !self.under_client_cap(key, u32::try_from(mine.len()).unwrap_or(u32::MAX)) {
            self.stats.client_limit += 1;
            return None;
        }
        if !mine
            .iter()
            .all(|r| self.appropriate(key.link, &key.duid, r))
        {
            return None;
        }
        let mut taken = Vec::new();
        for r in &mine {
            match self.take_specific(key, *r) {
                Some(o) => taken.push((*r, o)),
                None => {
                    // Give back what we took; someone else holds one of them.
                    for (_, o) in taken {
                        if let Origin::Pool(l, p, idx) = o {
                            self.links[l.0 as usize].free(p).give(idx);
                        }
                    }
                    return None;
                }
            }
        }
        let mut leases = Vec::new();
        for (r, o) in taken {
            self.insert_held(key, r, o, HeldState::Bound, now, lt);
            leases.extend(self.bind(now, r.first(), lt));
        }
        Some(Self::finish(leases, lt, Status::Success))
    }

    /// Renew (RFC 8415 §18.3.4): extend a known binding (stale leases come back with zero
    /// lifetimes); an unknown IA is re-created if allowed and free, else NoBinding.
    pub fn renew(&mut self, now: u64, ia: &IaRequest<'_>) -> IaReply {
        let leases = concrete(ia.leases);
        let ia = &IaRequest {
            leases: &leases,
            ..*ia
        };
        self.expire(now);
        let key = self.key(ia);
        let Some(lt) = self.lifetimes(&key) else {
            return IaReply::status(Status::NoBinding);
        };
        if self.bindings.contains_key(&key) {
            return self.extend(now, &key, ia.leases, lt);
        }
        self.recreate(now, &key, ia.leases, lt)
            .unwrap_or_else(|| IaReply::status(Status::NoBinding))
    }

    /// Rebind (RFC 8415 §18.3.5): as Renew for a known binding. For an unknown IA: leases
    /// wrong for the link come back with zero lifetimes and NotOnLink; appropriate free ones
    /// re-create the binding if allowed, else NoBinding; with no leases listed the message
    /// is dropped (`None`), since the server cannot tell.
    pub fn rebind(&mut self, now: u64, ia: &IaRequest<'_>) -> Option<IaReply> {
        let leases = concrete(ia.leases);
        let ia = &IaRequest {
            leases: &leases,
            ..*ia
        };
        self.expire(now);
        let key = self.key(ia);
        let lt = self.lifetimes(&key)?;
        if self.bindings.contains_key(&key) {
            return Some(self.extend(now, &key, ia.leases, lt));
        }
        let mine: Vec<Resource> = ia
            .leases
            .iter()
            .filter(|r| r.kind() == ia.kind)
            .copied()
            .collect();
        if mine.is_empty() {
            return None;
        }
        let wrong: Vec<Lease> = mine
            .iter()
            .filter(|r| !self.appropriate(key.link, &key.duid, r))
            .map(|r| Lease {
                resource: *r,
                preferred: 0,
                valid: 0,
            })
            .collect();
        if !wrong.is_empty() {
            return Some(Self::finish(wrong, lt, Status::NotOnLink));
        }
        Some(
            self.recreate(now, &key, &mine, lt)
                .unwrap_or_else(|| IaReply::status(Status::NoBinding)),
        )
    }

    fn targets(&self, key: &BindingKey, listed: &[Resource]) -> Option<Vec<u128>> {
        let b = self.bindings.get(key)?;
        let mine: Vec<u128> = if listed.is_empty() {
            b.clone()
        } else {
            b.iter()
                .copied()
                .filter(|s| listed.contains(&self.held[s].resource))
                .collect()
        };
        Some(mine)
    }

    /// Release (RFC 8415 §18.3.7): frees the listed leases of the IA (all of them if none are
    /// listed). Unknown IA: NoBinding.
    pub fn release(&mut self, now: u64, ia: &IaRequest<'_>) -> IaReply {
        let leases = concrete(ia.leases);
        let ia = &IaRequest {
            leases: &leases,
            ..*ia
        };
        self.expire(now);
        let key = self.key(ia);
        let Some(targets) = self.targets(&key, ia.leases) else {
            return IaReply::status(Status::NoBinding);
        };
        for s in targets {
            self.drop_bound(s);
        }
        IaReply::status(Status::Success)
    }

    /// Decline (RFC 8415 §18.3.8): the listed leases (all if none listed) are quarantined for
    /// the configured time and not handed out again until then. Unknown IA: NoBinding.
    pub fn decline(&mut self, now: u64, ia: &IaRequest<'_>) -> IaReply {
        let leases = concrete(ia.leases);
        let ia = &IaRequest {
            leases: &leases,
            ..*ia
        };
        self.expire(now);
        let key = self.key(ia);
        let Some(targets) = self.targets(&key, ia.leases) else {
            return IaReply::status(Status::NoBinding);
        };
        let until = now.saturating_add(self.quarantine);
        for s in targets {
            self.unlink(&key, s);
            let old = match self.held.get_mut(&s) {
                Some(h) => {
                    let old = h.expires;
                    h.state = HeldState::Declined;
                    h.expires = until;
                    h.preferred = 0;
                    h.valid = 0;
                    old
                }
                None => continue,
            };
            self.set_timer(s, Some(old), until);
            let rec = self.record(&self.held[&s]);
            self.changes.push(Change::Put(rec));
            self.sticky.remove(&key);
        }
        IaReply::status(Status::Success)
    }

    /// Confirm (RFC 8415 §18.3.3): are these addresses on-link for `link`?
    pub fn confirm(&self, link: LinkId, addrs: &[Ipv6Addr]) -> ConfirmOutcome {
        let Some(l) = self.links.get(link.0 as usize) else {
            return ConfirmOutcome::NoReply;
        };
        if addrs.is_empty() || l.on_link.is_empty() {
            return ConfirmOutcome::NoReply;
        }
        let on = |a: &Ipv6Addr| {
            let a = u128::from(*a);
            l.on_link.iter().any(|&(s, e)| s <= a && a <= e)
        };
        if addrs.iter().all(on) {
            ConfirmOutcome::Success
        } else {
            ConfirmOutcome::NotOnLink
        }
    }

    /// Reclaims every lease and quarantine that has expired by `now`; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut n = 0;
        while let Some(&(t, start)) = self.timers.iter().next() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, start));
            let Some(h) = self.held.get(&start) else {
                continue;
            };
            if h.expires != t {
                continue;
            }
            let state = h.state;
            match state {
                HeldState::Bound => {
                    self.drop_bound(start);
                }
                HeldState::Declined => {
                    if let Some(h) = self.free_held(start) {
                        self.changes.push(Change::Remove(h.resource));
                    }
                }
            }
            n += 1;
        }
        if n > 0 {
            // Give memory back after a wave of expiries (e.g. a Rapid Commit flood).
            shrink_sparse(&mut self.bindings);
            shrink_sparse(&mut self.client_leases);
            shrink_sparse(&mut self.sticky);
        }
        n
    }

    /// Loads leases from the store (at start-up). Expired ones are dropped with a queued
    /// removal; overlapping ones after the first are dropped.
    pub fn restore(
        &mut self,
        now: u64,
        records: impl IntoIterator<Item = LeaseRecord>,
    ) -> RestoreReport {
        let mut rep = RestoreReport::default();
        for rec in records {
            if rec.expires <= now {
                rep.expired += 1;
                self.changes.push(Change::Remove(rec.resource));
                continue;
            }
            if self.overlapping(&rec.resource).is_some() {
                rep.conflicts += 1;
                continue;
            }
            let link = self.link_id(&rec.link);
            let key = BindingKey {
                link: link.unwrap_or(LinkId(u32::MAX)),
                duid: rec.duid.clone(),
                kind: rec.kind(),
                iaid: rec.iaid,
            };
            let mut origin = Origin::Stale;
            for (li, l) in self.links.iter_mut().enumerate() {
                if let Some((p, idx)) = l.unit_of(&rec.resource) {
                    if l.free(p).take(idx) {
                        origin = Origin::Pool(LinkId(li as u32), p, idx);
                    }
                    break;
                }
            }
            if origin == Origin::Stale
                && link.is_some_and(|id| self.reserved_for(id, &rec.duid, &rec.resource))
            {
                origin = Origin::Reserved;
            }
            let start = rec.resource.first();
            let state = match rec.state {
                LeaseState::Bound => HeldState::Bound,
                LeaseState::Declined => HeldState::Declined,
            };
            self.held.insert(
                start,
                Box::new(Held {
                    resource: rec.resource,
                    key: key.clone(),
                    link_name: Some(rec.link.clone()),
                    state,
                    expires: rec.expires,
                    preferred: rec.preferred,
                    valid: rec.valid,
                    origin,
                }),
            );
            self.set_timer(start, None, rec.expires);
            if link.is_none() {
                rep.unknown_link += 1;
            } else if state == HeldState::Bound {
                self.count_client(&key, true);
                self.bindings.entry(key).or_default().push(start);
            }
            rep.loaded += 1;
        }
        rep
    }

    /// Deletes the lease (bound or declined) for exactly this address or prefix, as
    /// an operator action; the removal is queued for the store. Returns whether one existed.
    pub fn delete(&mut self, resource: &Resource) -> bool {
        let start = resource.first();
        let Some(h) = self.held.get(&start) else {
            return false;
        };
        if h.resource != *resource {
            return false;
        }
        let Some(h) = self.free_held(start) else {
            return false;
        };
        self.unlink(&h.key, start);
        self.changes.push(Change::Remove(h.resource));
        true
    }

    /// Undoes in memory a change whose commit failed, so the engine agrees with the store:
    /// `failed` is the record that did not reach the disk and `durable` what the store holds
    /// for that resource. A lease the store does not have is freed (no change is queued: the
    /// disk never had it), so a failed grant does not keep its address from other clients;
    /// a lease the store has for the same IA gets the store's state, expiry and lifetimes
    /// back. Nothing happens if the engine has moved on (the resource now belongs to another
    /// IA, or was bound again with another expiry). Call it between batches (no changes
    /// pending) and only when no commit is in flight. Returns whether anything changed.
    pub fn reconcile(&mut self, failed: &LeaseRecord, durable: Option<&LeaseRecord>) -> bool {
        let start = failed.resource.first();
        let Some(h) = self.held.get(&start) else {
            return false;
        };
        let same_ia = |r: &LeaseRecord| {
            h.key.duid == r.duid && h.key.iaid == r.iaid && h.link_name.as_deref() == Some(&r.link)
        };
        if h.resource != failed.resource || !same_ia(failed) || h.expires != failed.expires {
            return false;
        }
        match durable {
            None => {
                if let Some(h) = self.free_held(start) {
                    self.unlink(&h.key, start);
                }
                true
            }
            Some(d) if d.resource == failed.resource && same_ia(d) => {
                let key = h.key.clone();
                let (old, was) = (h.expires, h.state);
                let state = match d.state {
                    LeaseState::Bound => HeldState::Bound,
                    LeaseState::Declined => HeldState::Declined,
                };
                if let Some(h) = self.held.get_mut(&start) {
                    h.expires = d.expires;
                    h.preferred = d.preferred;
                    h.valid = d.valid;
                    h.state = state;
                }
                self.set_timer(start, Some(old), d.expires);
                match (was, state) {
                    (HeldState::Declined, HeldState::Bound) => {
                        self.count_client(&key, true);
                        self.bindings.entry(key).or_default().push(start);
                    }
                    (HeldState::Bound, HeldState::Declined) => self.unlink(&key, start),
                    _ => {}
                }
                true
            }
            Some(_) => false,
        }
    }

    /// Applies a new configuration (e.g. on SIGHUP): validates it, rebuilds the pools and
    /// re-attaches every bound and declined lease. Leases the new configuration does not cover
    /// stay held (never handed to anyone else) until their client's next Renew/Rebind, which
    /// withdraws them with zero lifetimes, or until they expire. On error
    /// the engine is left unchanged.
    pub fn reload(&mut self, now: u64, cfg: EngineConfig) -> Result<RestoreReport, ConfigError> {
        let mut next = Engine::new(cfg)?;
        let records: Vec<LeaseRecord> = self.held.values().map(|h| self.record(h)).collect();
        let report = next.restore(now, records);
        for (k, r) in self.sticky.drain() {
            let name = self.links.get(k.link.0 as usize).map(|l| l.name.as_str());
            if let Some(id) = name.and_then(|n| next.link_names.get(n)) {
                next.sticky.insert(BindingKey { link: *id, ..k }, r);
            }
        }
        let mut changes = std::mem::take(&mut self.changes);
        changes.append(&mut next.changes);
        next.changes = changes;
        next.stats = self.stats;
        *self = next;
        Ok(report)
    }

    fn view(&self, h: &Held, now: u64) -> LeaseView {
        LeaseView::new(&self.record(h), false, now)
    }

    /// The leases of one IA (bound ones), O(1).
    pub fn lookup_ia(
        &self,
        link: LinkId,
        duid: &[u8],
        kind: IaKind,
        iaid: u32,
        now: u64,
    ) -> Vec<LeaseView> {
        let key = BindingKey {
            link,
            duid: duid.to_vec(),
            kind,
            iaid,
        };
        self.bindings
            .get(&key)
            .map(|v| v.iter().map(|s| self.view(&self.held[s], now)).collect())
            .unwrap_or_default()
    }

    /// The held lease (bound or declined) containing this address, O(log n).
    pub fn lookup_address(&self, addr: Ipv6Addr, now: u64) -> Option<LeaseView> {
        self.overlapping(&Resource::Addr(addr))
            .map(|h| self.view(h, now))
    }

    /// Every held lease (bound and declined), ordered by address.
    pub fn list(&self, now: u64) -> Vec<LeaseView> {
        self.held.values().map(|h| self.view(h, now)).collect()
    }

    /// Checks internal consistency (used by tests): no overlap, indexes agree, free sets do
    /// not contain held units. Returns a description of the first problem.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut prev: Option<&Held> = None;
        for (s, h) in &self.held {
            if *s != h.resource.first() {
                return Err(format!("held key mismatch at {}", h.resource));
            }
            if let Some(p) = prev
                && p.resource.last() >= h.resource.first()
            {
                return Err(format!("{} overlaps {}", p.resource, h.resource));
            }
            if !self.timers.contains(&(h.expires, *s)) {
                return Err(format!("no timer for {}", h.resource));
            }
            if let Origin::Pool(l, p, idx) = h.origin {
                let link = &self.links[l.0 as usize];
                let free = match p {
                    PoolRef::Na(i) => link.na[i].free.contains(idx),
                    PoolRef::Pd(i) => link.pd[i].free.contains(idx),
                };
                if free {
                    return Err(format!("{} is held and free", h.resource));
                }
            }
            prev = Some(h);
        }
        let mut per_client: HashMap<u64, u32> = HashMap::default();
        for (k, v) in &self.bindings {
            *per_client
                .entry(self.client_hash(k.link, &k.duid))
                .or_default() += u32::try_from(v.len()).unwrap_or(u32::MAX);
            for s in v {
                match self.held.get(s) {
                    Some(h) if &h.key == k => {}
                    _ => return Err(format!("index entry for {k:?} points to a wrong lease")),
                }
            }
        }
        if per_client != self.client_leases {
            return Err("per-client lease counts differ from the bindings".into());
        }
        if self.timers.len() != self.held.len() {
            return Err("timer count differs from held count".into());
        }
        Ok(())
    }
}

/// The leases a client listed, without length-only hints (`::/56`, or `::`), which name no
/// address or prefix.
fn concrete(leases: &[Resource]) -> Vec<Resource> {
    leases
        .iter()
        .filter(|r| match r {
            Resource::Addr(a) => !a.is_unspecified(),
            Resource::Prefix(p) => !p.addr().is_unspecified(),
        })
        .copied()
        .collect()
}

/// Shrinks a map whose capacity is more than four times its length (amortised O(1): after a
/// shrink the length must halve again before the next one).
fn shrink_sparse<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 64 && m.len() * 4 < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}

fn mask_shift(shift: u32) -> u128 {
    if shift >= 128 { 0 } else { u128::MAX << shift }
}

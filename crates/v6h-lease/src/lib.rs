//! Stateful DHCPv6 engine for v6home: IA_NA address pools, IA_PD prefix pools, host
//! reservations, RFC 8415 binding semantics, and a durable lease journal with group commit.
//!
//! * [`config`]: links, pools, lifetimes and reservations ([`EngineConfig`]);
//! * [`engine`]: the sans-IO allocation core ([`Engine`]): Solicit/Request/Renew/Rebind/
//!   Release/Decline/Confirm per IA, expiry, and the [`Change`]s to persist;
//! * [`store`]: the [`LeaseStore`] trait and [`JournalStore`], an append-only, CRC-framed
//!   journal that fsyncs batches of commits (group commit) before any Reply may go out;
//! * [`view`]: lease listings ([`LeaseView`], [`format_table`]).
//!
//! The crate does not depend on the DHCPv6 codec: it speaks in DUID bytes, IAIDs,
//! addresses, prefixes and seconds. Pass `now` as Unix seconds: lease expiries are stored
//! as absolute times and must mean the same after a restart.
//!
//! ```
//! use v6h_lease::*;
//! let dir = tempfile::tempdir().unwrap();
//! let store = JournalStore::open(dir.path().join("leases.journal")).unwrap();
//! let mut lan = LinkConfig::new("lan0");
//! lan.pd_pools.push(PdPoolConfig {
//!     prefix: "2001:db8:1234::/48".parse().unwrap(),
//!     delegated_len: 56,
//!     exclude: vec!["2001:db8:1234::/64".parse().unwrap()],
//! });
//! let mut engine = Engine::new(EngineConfig::new(vec![lan])).unwrap();
//! let now = 1_700_000_000;
//! engine.restore(now, store.load()); // bindings from before a restart
//! let ia = IaRequest {
//!     link: engine.link_id("lan0").unwrap(),
//!     duid: &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
//!     kind: IaKind::Pd,
//!     iaid: 1,
//!     leases: &[],
//! };
//! let reply = engine.request(now, &ia);
//! store.commit(engine.take_changes()).unwrap(); // on disk before the Reply is sent
//! assert_eq!(reply.status, Status::Success);
//! let Resource::Prefix(p) = reply.leases[0].resource else { unreachable!() };
//! assert_eq!(p.len(), 56);
//! assert_eq!(store.list(now).len(), 1);
//! ```

#![forbid(unsafe_code)]

pub mod config;
pub mod crc32c;
pub mod engine;
pub mod freeset;
pub mod record;
pub mod store;
pub mod types;
pub mod view;

pub use config::{
    ConfigError, DEFAULT_MAX_LEASES_PER_CLIENT, EngineConfig, HostPoolLifetimes, Lifetimes,
    LinkConfig, NaPoolConfig, PdPoolConfig, Reservation,
};
pub use engine::{
    BindingKey, ConfirmOutcome, Engine, EngineStats, IaReply, IaRequest, Lease, LinkId, PoolUsage,
    RestoreReport,
};
pub use record::{Change, LeaseRecord, LeaseState};
pub use store::{JournalStore, LeaseStore, Recovery, StoreError, StoreStats};
pub use types::{IaKind, Prefix, PrefixError, Resource, Status};
pub use view::{LeaseView, format_table};

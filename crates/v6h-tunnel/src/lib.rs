//! AYIYA PoP, TIC server and AICCU-compatible client (IO shells), plus the sans-IO PoP
//! tunnel table.
//!
//! * [`prefix`]: IPv6 prefixes.
//! * [`registry`]: `broker.toml`, the user and tunnel types and their validation rules.
//! * [`store`]: the registry in SQLite or PostgreSQL (sqlx), with import from old TOML tables.
//! * [`icmp6`]: ICMPv6 error packets (Destination Unreachable, Packet Too Big), pure functions.
//! * [`pop`]: the sans-IO PoP core: tunnel table, liveness, routing, anti-spoofing, counters.

#![forbid(unsafe_code)]

pub mod batch;
pub mod broker;
pub mod client;
pub mod icmp6;
pub mod pop;
pub mod prefix;
pub mod registry;
pub mod store;
pub mod tundev;

/// The sans-IO protocol crate this one builds on (re-exported for tools and tests).
pub use v6h_ayiya;

//! Privacy addresses for v6home: correct, persistent privacy-extension configuration on any
//! distro (`v6home privacy enable|disable|status`) and a userspace SLAAC agent with RFC 7217
//! stable and RFC 8981 temporary addresses that an attacker cannot switch off
//! (`v6home privacy agent`).
//!
//! Layout: [`iid`] and [`slaac`] are the pure, sans-IO cores; [`lifetime`] and [`sysconf`]
//! are pure configuration logic (parsing, validation, file generation); [`system`],
//! [`store`] and [`agent`] are the thin IO shells.

#![forbid(unsafe_code)]

pub mod agent;
pub mod dadforge;
pub mod iid;
pub mod lifetime;
pub mod slaac;
pub mod store;
pub mod sysconf;
pub mod system;

//! Router advertisements: radvd.conf, wire formats, scheduler and daemon.
//!
//! * [`wire`]: RA/RS packets and ND options (zero-copy views and owned reprs);
//! * [`config`]: radvd.conf / TOML model, parser and validation;
//! * [`build`]: the RA(s) of an interface from its config and live link state;
//! * [`sched`]: the sans-IO per-interface scheduler (timing, RS replies, final RAs, reloads);
//! * [`daemon`]: the radvd-compatible daemon around the schedulers (sockets, signals, links);
//! * [`dump`]: radvdump, a received RA printed as radvd.conf.

#![forbid(unsafe_code)]

pub mod build;
pub mod daemon;
pub mod dump;
pub mod sched;
pub mod wire;

pub mod config;

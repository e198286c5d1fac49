//! `v6h-dhcp6-load`: an open-loop DHCPv6 load generator that drives stateful servers to
//! saturation with Solicit/Advertise/Request/Reply (SARR) exchanges, each from a new client.
//!
//! perfdhcp tops out at about 12–16k exchanges/s on a 2-vCPU machine, below what the servers
//! can take; this generator batches its socket calls so one core drives well over 100k
//! datagrams/s. Layers: [`wire`] (build Solicit/Request, scan replies without allocating),
//! [`core`] (sans-IO pacing, exchange state and drop accounting), [`io`] (socket loop).

#![forbid(unsafe_code)]

pub mod core;
pub mod io;
pub mod wire;

//! DHCPv6 server for v6home: a strict wire codec, the dhcp6s.conf and TOML configuration,
//! a sans-IO server core (`Server::handle(now, bytes, link) -> Vec<Reply>`) and the daemon
//! that binds UDP port 547 on the served interfaces.
//!
//! Layers, from pure to IO: [`wire`] (codec), [`duid`] (server DUIDs), [`config`]
//! (configuration model and parsers), [`server`] (protocol logic), [`stateful`] (leases
//! from `v6h-lease` behind the server's `Bindings`), [`status`] (what a running server
//! reports), [`daemon`] (sockets,
//! signals, state directory).

#![forbid(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod duid;
pub mod server;
pub mod stateful;
pub mod status;
pub mod wire;

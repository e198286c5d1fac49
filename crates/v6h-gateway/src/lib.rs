//! `v6home gateway`: the whole home router from one file. This crate holds the parts that are
//! the gateway's own: the `gateway.toml` model ([`config`]), IPv6 forwarding ([`forwarding`]),
//! systemd notification ([`notify`]) and the Prometheus endpoint ([`metrics`]). The tunnel,
//! RA and DHCPv6 engines are the components' own crates.

#![forbid(unsafe_code)]

pub mod config;
pub mod forwarding;
pub mod metrics;
pub mod notify;

//! Linux networking shells shared by v6home daemons: netlink and ICMPv6 sockets.

#![forbid(unsafe_code)]

pub mod addr;
pub mod icmp6;
pub mod netlink;

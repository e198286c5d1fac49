//! Linux networking shells shared by v6home daemons: netlink, ICMPv6 sockets and rate-limited
//! logging.

#![forbid(unsafe_code)]

pub mod addr;
pub mod icmp6;
pub mod loggate;
pub mod netlink;

//! DHCPv6 server: codec, dhcp6s.conf, sans-IO server core and daemon.

#![forbid(unsafe_code)]

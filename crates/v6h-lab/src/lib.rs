//! The v6home lab: the IPv6-at-home network built from network namespaces.

#![forbid(unsafe_code)]

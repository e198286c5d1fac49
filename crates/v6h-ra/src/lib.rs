//! Router advertisements: radvd.conf, wire formats, scheduler and daemon.

#![forbid(unsafe_code)]

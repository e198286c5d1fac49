//! Sans-IO AYIYA, TIC and heartbeat protocol cores.

#![forbid(unsafe_code)]

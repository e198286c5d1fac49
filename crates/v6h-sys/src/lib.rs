//! The one home of unsafe syscalls in v6home.
//!
//! Every `unsafe` block in v6home must live in this crate, each with a `// SAFETY:` comment;
//! every other crate has `#![forbid(unsafe_code)]`. Today the crate is empty: the safe
//! wrappers of nix (recvmmsg/sendmmsg, setns, cmsgs, sockopts), socket2, tun-rs and rtnetlink
//! cover every syscall v6home makes.

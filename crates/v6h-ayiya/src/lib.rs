//! Sans-IO AYIYA, TIC and heartbeat protocol cores for v6home.
//!
//! Everything here is pure and deterministic: functions take `now` (Unix seconds or an
//! [`std::time::Instant`] supplied by the caller) and bytes or lines, and return results or
//! actions. Nothing reads a clock, a random source or a socket. The IO shells live in
//! `v6h-tunnel`. The wire rules are those of AICCU 2007.01.15 and SixXS's PoPs (AYIYA,
//! draft-massar-v6ops-ayiya; TIC as AICCU speaks it), as described on each module.
//!
//! # API overview
//!
//! * [`ayiya`] — AYIYA datagrams (UDP 5072).
//!   * [`ayiya::Packet`]: zero-copy view over `&[u8]` / `&mut [u8]` with field accessors and
//!     setters; [`ayiya::Repr`]: owned header with `parse`/`emit` (emit writes the 44-byte header
//!     in place in front of a payload already in the buffer).
//!   * [`ayiya::SigningKey`]: `from_password`, `sign` (in place), `verify` (streamed SHA-1,
//!     constant-time compare), `seal` (emit + sign).
//!   * Receive validation, cheap checks first and SHA-1 last:
//!     client side [`ayiya::validate_from_pop`]; PoP side [`ayiya::parse_header_checks`], then the
//!     caller's tunnel lookup by identity, then [`ayiya::finish_checks`]. Failures are a
//!     [`ayiya::DropReason`] (`as_str()` gives a metrics label).
//!   * [`ayiya::EndpointGuard`]: PoP-side endpoint learning that replays (exact duplicates,
//!     older packets) cannot move.
//!   * [`ayiya::check_epoch`] (the ±120 s clock rule), [`ayiya::derived_link_local`],
//!     [`ayiya::tunnel_addresses`] (SixXS address plan).
//! * [`heartbeat`] — the `HEARTBEAT TUNNEL …` datagram (UDP 3740): [`heartbeat::Heartbeat`]
//!   `new_signed`/`parse`/`to_string`, then `verify(now, src, password)` after the lookup.
//! * [`tic`] — TIC (TCP 3874).
//!   * [`tic::LineFramer`] (line framing with a length cap), [`tic::Reply`],
//!     [`tic::TunnelListEntry`], [`tic::TunnelInfo`] (`parse_lines` / `format_lines`).
//!   * [`tic::server::Session`]: server state machine over a [`tic::server::Directory`];
//!     [`tic::server::LoginLimiter`]: failed-login back-off per (user, source);
//!     [`tic::server::ConnTable`]: connection slots (per-source cap, shedding when full).
//!   * [`tic::client::Login`]: AICCU-identical client (`poll_send` / `handle_line` /
//!     `outcome`).
//! * [`aiccu_conf`] — `aiccu.conf` parser and writer ([`aiccu_conf::AiccuConfig`]).
//! * [`keepalive`] — [`keepalive::Keepalive`]: client beat scheduler (3 at start, then one per
//!   `Heartbeat_Interval`).

#![forbid(unsafe_code)]

pub mod aiccu_conf;
pub mod ayiya;
pub mod heartbeat;
pub mod keepalive;
pub mod tic;

/// Maximum clock difference, in seconds, accepted by AYIYA, heartbeat and TIC (`get unixtime`).
/// Exactly 120 passes.
pub const MAX_CLOCK_OFF: u32 = 120;

/// Signed clock offset helper: the absolute difference between `now` and `then` in seconds,
/// computed in 32-bit wrapping arithmetic as the spec recommends (§2.7).
pub fn clock_offset(now_unix: u64, then: u32) -> u32 {
    // Truncation to u32 is intended: the wire carries 32-bit seconds and the difference is
    // computed modulo 2^32 (sign-extended), which is correct across the 2106 wrap.
    let d = (now_unix as u32).wrapping_sub(then) as i32;
    d.unsigned_abs()
}

/// Lowercase hex MD5 of `data` (32 characters), as used by TIC logins and heartbeats.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

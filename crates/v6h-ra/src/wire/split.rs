//! Packing an option list into one or more RAs bounded by the link MTU (radvd `send_ra` style).

use super::{NdOptionRepr, RA_HEADER_LEN, RaHeader};

/// The smallest budget: IPv6 minimum MTU 1280 − 14 (Ethernet) − 40 (IPv6) − 16 = 1210.
pub const RA_BUDGET_MIN: usize = 1210;

/// radvd's RA size budget for a link MTU: max(mtu, 1280) − 14 − 40 − 16.
///
/// radvd compares header + options against this number, so an RA carries at most
/// `budget` bytes of ICMPv6 message.
pub fn ra_budget(mtu: u32) -> usize {
    let mtu = usize::try_from(mtu.max(1280)).unwrap_or(usize::MAX);
    mtu.saturating_sub(14 + 40 + 16)
}

/// The result of [`split_ras`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitResult {
    /// The RAs to send, in order, each a complete ICMPv6 message (checksum zero).
    pub packets: Vec<Vec<u8>>,
    /// Types of options that were dropped because they cannot fit any RA within the budget
    /// (radvd would send them fragmented, which RFC 6980 receivers discard) or failed to encode.
    pub skipped: Vec<u8>,
}

/// Packs `options` greedily in order into RAs of at most `budget` bytes, each with `header`.
///
/// When the next option does not fit, the current RA is closed and a new one with the same
/// header starts. An option that alone exceeds the budget is skipped and reported.
/// Always returns at least one RA (possibly with no options).
pub fn split_ras(header: &RaHeader, options: &[NdOptionRepr], budget: usize) -> SplitResult {
    let mut h = [0u8; RA_HEADER_LEN];
    header.emit(&mut h);
    let mut res = SplitResult::default();
    let mut cur = h.to_vec();
    for o in options {
        let len = o.buffer_len();
        if RA_HEADER_LEN + len > budget {
            res.skipped.push(o.kind());
            continue;
        }
        if cur.len() + len > budget {
            res.packets.push(std::mem::replace(&mut cur, h.to_vec()));
        }
        if o.emit_into(&mut cur).is_err() {
            res.skipped.push(o.kind());
        }
    }
    res.packets.push(cur);
    res
}

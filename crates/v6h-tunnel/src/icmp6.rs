//! ICMPv6 error packets the PoP sends for traffic it cannot deliver (RFC 4443).
//!
//! Pure functions that write a complete IPv6 packet into a caller-provided buffer (no
//! allocation): Destination Unreachable (codes 0 no route, 1 administratively prohibited,
//! 3 address unreachable) and Packet Too Big. The offending packet is quoted as far as the
//! result stays within the IPv6 minimum MTU of 1280 bytes. Errors are never sent about ICMPv6
//! error messages, multicast destinations (except Packet Too Big) or unspecified/multicast
//! sources.

use std::net::Ipv6Addr;

/// IPv6 header length.
pub const IPV6_HDR: usize = 40;
/// ICMPv6 next-header value.
pub const NH_ICMPV6: u8 = 58;
/// Largest error packet we build (IPv6 minimum MTU).
pub const MAX_ERROR_LEN: usize = 1280;

/// ICMPv6 Destination Unreachable type.
pub const TYPE_DEST_UNREACH: u8 = 1;
/// ICMPv6 Packet Too Big type.
pub const TYPE_PACKET_TOO_BIG: u8 = 2;

/// Destination Unreachable codes used by the PoP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UnreachCode {
    /// 0: no route to destination (tunnel down).
    NoRoute = 0,
    /// 1: communication administratively prohibited (tunnel disabled).
    AdminProhibited = 1,
    /// 3: address unreachable (no such tunnel).
    AddressUnreachable = 3,
}

/// The one's-complement Internet checksum of ICMPv6 `msg` with the IPv6 pseudo-header.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for a in [src.octets(), dst.octets()] {
        for c in a.chunks_exact(2) {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
    }
    sum += msg.len() as u64; // upper-layer length (u32 in the pseudo-header)
    sum += u64::from(NH_ICMPV6);
    let mut chunks = msg.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // `sum` fits in 16 bits after folding.
    !(u16::try_from(sum).unwrap_or(0xffff))
}

fn addr_at(p: &[u8], off: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = p.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

/// Whether an ICMPv6 error may be sent about `offending` (RFC 4443 §2.4 (e)).
///
/// Returns the address to send the error to.
pub fn error_target(offending: &[u8], allow_multicast_dst: bool) -> Option<Ipv6Addr> {
    if offending.len() < IPV6_HDR || offending[0] >> 4 != 6 {
        return None;
    }
    let src = addr_at(offending, 8)?;
    let dst = addr_at(offending, 24)?;
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return None;
    }
    if dst.is_multicast() && !allow_multicast_dst {
        return None;
    }
    // Never answer an ICMPv6 error message (types 0..=127) carried directly after the header.
    if offending[6] == NH_ICMPV6 && offending.get(IPV6_HDR).is_some_and(|t| *t < 128) {
        return None;
    }
    Some(src)
}

fn build(
    out: &mut [u8],
    src: Ipv6Addr,
    ty: u8,
    code: u8,
    word: u32,
    offending: &[u8],
    allow_multicast_dst: bool,
) -> Option<usize> {
    let dst = error_target(offending, allow_multicast_dst)?;
    let room = out.len().min(MAX_ERROR_LEN).checked_sub(IPV6_HDR + 8)?;
    let quote = offending.len().min(room);
    let icmp_len = 8 + quote;
    let total = IPV6_HDR + icmp_len;
    let payload_len = u16::try_from(icmp_len).ok()?;
    let o = out.get_mut(..total)?;
    o[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    o[4..6].copy_from_slice(&payload_len.to_be_bytes());
    o[6] = NH_ICMPV6;
    o[7] = 64;
    o[8..24].copy_from_slice(&src.octets());
    o[24..40].copy_from_slice(&dst.octets());
    let m = &mut o[IPV6_HDR..];
    m[0] = ty;
    m[1] = code;
    m[2..4].copy_from_slice(&[0, 0]);
    m[4..8].copy_from_slice(&word.to_be_bytes());
    m[8..].copy_from_slice(&offending[..quote]);
    let ck = checksum(src, dst, m);
    m[2..4].copy_from_slice(&ck.to_be_bytes());
    Some(total)
}

/// Writes an ICMPv6 Destination Unreachable about `offending` into `out`, sourced from `src`.
///
/// Returns the packet length, or `None` when no error may be sent or `out` is too small
/// (it needs at least 48 bytes; 1280 gives the fullest quote).
pub fn dest_unreachable(
    out: &mut [u8],
    src: Ipv6Addr,
    code: UnreachCode,
    offending: &[u8],
) -> Option<usize> {
    build(out, src, TYPE_DEST_UNREACH, code as u8, 0, offending, false)
}

/// Writes an ICMPv6 Packet Too Big (with `mtu`) about `offending` into `out`.
pub fn packet_too_big(out: &mut [u8], src: Ipv6Addr, mtu: u32, offending: &[u8]) -> Option<usize> {
    build(out, src, TYPE_PACKET_TOO_BIG, 0, mtu, offending, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Spec §10.1 inner packet: ICMPv6 echo reply ::2 -> ::1, checksum 0xc700.
    const ECHO_REPLY: &str = "6003d21d00123a4020010db802ff0001000000000000000220010db802ff0001\
                              000000000000000181 00c7004242000161796979612d74657374";
    /// Spec §10.2 inner packet: echo request ::1 -> ::2, checksum 0xc800.
    const ECHO_REQ: &str = "6000000000123a4020010db802ff0001000000000000000120010db802ff0001\
                            00000000000000028000c8004242000161796979612d74657374";

    fn verify(pkt: &[u8]) -> bool {
        let src = addr_at(pkt, 8).unwrap();
        let dst = addr_at(pkt, 24).unwrap();
        checksum(src, dst, &pkt[40..]) == 0
    }

    #[test]
    fn checksum_matches_spec_vectors() {
        for (hex, want) in [(ECHO_REPLY, 0xc700u16), (ECHO_REQ, 0xc800)] {
            let mut p = unhex(hex);
            assert!(verify(&p));
            p[42] = 0;
            p[43] = 0;
            let src = addr_at(&p, 8).unwrap();
            let dst = addr_at(&p, 24).unwrap();
            assert_eq!(checksum(src, dst, &p[40..]), want);
        }
    }

    #[test]
    fn dest_unreachable_golden() {
        // Offending: the §10.2 echo request (::1 -> ::2) seen as coming from ::1; we answer
        // from 2001:db8:ff00::1 with code 0.
        let off = unhex(ECHO_REQ);
        let pop: Ipv6Addr = "2001:db8:ff00::1".parse().unwrap();
        let mut out = [0u8; 1500];
        let n = dest_unreachable(&mut out, pop, UnreachCode::NoRoute, &off).unwrap();
        let want = unhex(
            "60000000 0042 3a 40 20010db8ff0000000000000000000001 \
             20010db802ff00010000000000000001 \
             01 00 0708 00000000",
        );
        assert_eq!(n, 40 + 8 + off.len());
        assert_eq!(&out[..40], &want[..40], "IPv6 header");
        assert_eq!(&out[40..42], &[1, 0]);
        assert_eq!(&out[44..48], &[0, 0, 0, 0]);
        assert_eq!(&out[48..n], &off[..]);
        assert!(verify(&out[..n]));
        // Checksum computed independently (Python, RFC 4443 pseudo-header).
        assert_eq!(&out[42..44], &want[42..44], "golden checksum");
    }

    #[test]
    fn packet_too_big_quotes_to_1280() {
        let mut off = vec![0u8; 1400];
        off[..40].copy_from_slice(&unhex(ECHO_REQ)[..40]);
        off[4..6].copy_from_slice(&1360u16.to_be_bytes());
        off[6] = 59; // no next header: not an ICMPv6 error
        let pop: Ipv6Addr = "2001:db8:2ff:1::1".parse().unwrap();
        let mut out = [0u8; 2048];
        let n = packet_too_big(&mut out, pop, 1280, &off).unwrap();
        assert_eq!(n, 1280);
        assert_eq!(out[40], TYPE_PACKET_TOO_BIG);
        assert_eq!(&out[44..48], &1280u32.to_be_bytes());
        assert_eq!(&out[48..1280], &off[..1232]);
        assert!(verify(&out[..n]));
    }

    #[test]
    fn no_error_about_errors_or_multicast() {
        let pop: Ipv6Addr = "2001:db8:2ff:1::1".parse().unwrap();
        let mut out = [0u8; 1280];
        let mut p = unhex(ECHO_REQ);
        p[40] = 1; // now it is a Destination Unreachable itself
        assert!(dest_unreachable(&mut out, pop, UnreachCode::NoRoute, &p).is_none());
        let mut p = unhex(ECHO_REQ);
        p[24] = 0xff; // multicast destination
        assert!(dest_unreachable(&mut out, pop, UnreachCode::NoRoute, &p).is_none());
        assert!(packet_too_big(&mut out, pop, 1280, &p).is_some());
        let mut p = unhex(ECHO_REQ);
        p[8..24].fill(0); // unspecified source
        assert!(dest_unreachable(&mut out, pop, UnreachCode::NoRoute, &p).is_none());
        assert!(dest_unreachable(&mut out, pop, UnreachCode::NoRoute, &[0x60; 39]).is_none());
        assert!(
            dest_unreachable(&mut out[..47], pop, UnreachCode::NoRoute, &unhex(ECHO_REQ)).is_none()
        );
    }

    proptest! {
        #[test]
        fn any_input_never_panics_and_checksums(data in proptest::collection::vec(any::<u8>(), 0..1600), code in 0usize..3) {
            let codes = [UnreachCode::NoRoute, UnreachCode::AdminProhibited, UnreachCode::AddressUnreachable];
            let mut out = [0u8; 1280];
            if let Some(n) = dest_unreachable(&mut out, Ipv6Addr::LOCALHOST, codes[code], &data) {
                prop_assert!(n <= 1280);
                prop_assert!(verify(&out[..n]));
                prop_assert_eq!(u16::from_be_bytes([out[4], out[5]]) as usize, n - 40);
            }
        }
    }
}

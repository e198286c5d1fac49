//! ICMPv6 Router Advertisement / Router Solicitation wire formats (RFC 4861 and friends).
//!
//! Two layers, in the style of smoltcp's `wire`:
//! * zero-copy views ([`RaPacket`], [`RsPacket`], [`NdOptionView`], [`OptionIter`]) that validate
//!   lengths once and then read fields straight out of a borrowed buffer, never allocating;
//! * owned representations ([`RaRepr`], [`RsRepr`], [`NdOptionRepr`]) with `parse` and `emit`
//!   that round-trip exactly.
//!
//! The ICMPv6 checksum is left zero on emit: Linux raw ICMPv6 sockets always compute it.

mod option;
mod split;

pub use option::{
    Abro, CaptivePortal, DnsName, Dnssl, HomeAgentInfo, NdOptionRepr, NdOptionView, OptionIter,
    Pref64, PrefixInfo, Rdnss, RouteInfo, SixCo, option_type,
};
pub use split::{RA_BUDGET_MIN, SplitResult, ra_budget, split_ras};

use thiserror::Error;

/// ICMPv6 type of a Router Solicitation.
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
/// Length of the fixed RA header (type, code, checksum, hop limit, flags, lifetime, timers).
pub const RA_HEADER_LEN: usize = 16;
/// Length of the fixed RS header (type, code, checksum, reserved).
pub const RS_HEADER_LEN: usize = 8;

/// Errors found while parsing RA/RS packets and Neighbor Discovery options.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The buffer is shorter than the structure it must hold.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The ICMPv6 type is not the one expected.
    #[error("ICMPv6 type {found}, expected {expected}")]
    WrongType {
        /// Type expected.
        expected: u8,
        /// Type found.
        found: u8,
    },
    /// The ICMPv6 code is not 0 (RFC 4861 §6.1).
    #[error("ICMPv6 code {0}, expected 0")]
    BadCode(u8),
    /// An option has length field 0 (RFC 4861 §4.6: the packet must be dropped).
    #[error("option type {0} with zero length")]
    ZeroLengthOption(u8),
    /// An option's length field runs past the end of the packet.
    #[error("option type {kind} claims {len} bytes, only {have} left")]
    OptionOverrun {
        /// Option type.
        kind: u8,
        /// Bytes the length field claims.
        len: usize,
        /// Bytes left in the packet.
        have: usize,
    },
    /// A known option has a length its RFC does not allow.
    #[error("option type {kind}: invalid length {len} (units of 8 bytes)")]
    BadOptionLength {
        /// Option type.
        kind: u8,
        /// The length field.
        len: u8,
    },
    /// A prefix length above 128 (or not allowed for the option).
    #[error("option type {kind}: invalid prefix length {len}")]
    BadPrefixLength {
        /// Option type.
        kind: u8,
        /// The prefix length found.
        len: u8,
    },
    /// A DNSSL domain name is malformed.
    #[error("DNSSL: {0}")]
    BadDomainName(&'static str),
    /// The captive portal URI is not UTF-8 or contains NUL in the middle.
    #[error("captive portal URI is not valid UTF-8 text")]
    BadUri,
    /// PREF64 prefix length code above 5.
    #[error("PREF64: invalid prefix length code {0}")]
    BadPlc(u8),
    /// An option that is too long to fit the 8-bit length field.
    #[error("option too long: {0} bytes (max 2040)")]
    OptionTooLong(usize),
}

/// Default router preference / route preference (RFC 4191 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Preference {
    /// 00: medium (default).
    #[default]
    Medium,
    /// 01: high.
    High,
    /// 11: low.
    Low,
    /// 10: reserved (receivers treat it as medium; never sent by v6home).
    Reserved,
}

impl Preference {
    /// Decodes the two-bit field (already shifted to bits 0–1).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => Preference::Medium,
            0b01 => Preference::High,
            0b11 => Preference::Low,
            _ => Preference::Reserved,
        }
    }
    /// Encodes as the two-bit field (bits 0–1).
    pub fn bits(self) -> u8 {
        match self {
            Preference::Medium => 0b00,
            Preference::High => 0b01,
            Preference::Low => 0b11,
            Preference::Reserved => 0b10,
        }
    }
    /// From radvd's signed number (`low` = −1, `medium` = 0, `high` = 1).
    pub fn from_radvd(n: i64) -> Option<Self> {
        match n {
            -1 => Some(Preference::Low),
            0 => Some(Preference::Medium),
            1 => Some(Preference::High),
            _ => None,
        }
    }
    /// radvd.conf keyword for this preference.
    pub fn keyword(self) -> &'static str {
        match self {
            Preference::High => "high",
            Preference::Low => "low",
            Preference::Medium | Preference::Reserved => "medium",
        }
    }
}

/// Reads a big-endian u16 at `at`; caller guarantees bounds.
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// Reads a big-endian u32 at `at`; caller guarantees bounds.
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Zero-copy view of an ICMPv6 Router Advertisement (RFC 4861 §4.2).
#[derive(Debug, Clone, Copy)]
pub struct RaPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> RaPacket<T> {
    /// Wraps `buf` after checking type 134, code 0, the header length and every option length.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < RA_HEADER_LEN {
            return Err(WireError::Truncated {
                need: RA_HEADER_LEN,
                have: b.len(),
            });
        }
        if b[0] != ICMPV6_ROUTER_ADVERT {
            return Err(WireError::WrongType {
                expected: ICMPV6_ROUTER_ADVERT,
                found: b[0],
            });
        }
        if b[1] != 0 {
            return Err(WireError::BadCode(b[1]));
        }
        for opt in OptionIter::new(&b[RA_HEADER_LEN..]) {
            opt?;
        }
        Ok(RaPacket { buf })
    }
    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    /// ICMPv6 checksum field as received.
    pub fn checksum(&self) -> u16 {
        be16(self.b(), 2)
    }
    /// Cur Hop Limit (0 = unspecified).
    pub fn cur_hop_limit(&self) -> u8 {
        self.b()[4]
    }
    /// The raw flags byte.
    pub fn flags_byte(&self) -> u8 {
        self.b()[5]
    }
    /// Managed address configuration flag (M).
    pub fn managed(&self) -> bool {
        self.flags_byte() & 0x80 != 0
    }
    /// Other configuration flag (O).
    pub fn other(&self) -> bool {
        self.flags_byte() & 0x40 != 0
    }
    /// Default router preference.
    pub fn preference(&self) -> Preference {
        Preference::from_bits(self.flags_byte() >> 3)
    }
    /// Router Lifetime in seconds.
    pub fn router_lifetime(&self) -> u16 {
        be16(self.b(), 6)
    }
    /// Reachable Time in milliseconds.
    pub fn reachable_time(&self) -> u32 {
        be32(self.b(), 8)
    }
    /// Retrans Timer in milliseconds.
    pub fn retrans_timer(&self) -> u32 {
        be32(self.b(), 12)
    }
    /// Iterates over the options (already validated by `new_checked`).
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter::new(&self.b()[RA_HEADER_LEN..])
    }
}

/// Zero-copy view of an ICMPv6 Router Solicitation (RFC 4861 §4.1).
#[derive(Debug, Clone, Copy)]
pub struct RsPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> RsPacket<T> {
    /// Wraps `buf` after checking type 133, code 0, the header length and every option length.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < RS_HEADER_LEN {
            return Err(WireError::Truncated {
                need: RS_HEADER_LEN,
                have: b.len(),
            });
        }
        if b[0] != ICMPV6_ROUTER_SOLICIT {
            return Err(WireError::WrongType {
                expected: ICMPV6_ROUTER_SOLICIT,
                found: b[0],
            });
        }
        if b[1] != 0 {
            return Err(WireError::BadCode(b[1]));
        }
        for opt in OptionIter::new(&b[RS_HEADER_LEN..]) {
            opt?;
        }
        Ok(RsPacket { buf })
    }
    /// Iterates over the options (already validated by `new_checked`).
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter::new(&self.buf.as_ref()[RS_HEADER_LEN..])
    }
    /// The Source Link-Layer Address option's address bytes, if present.
    pub fn source_link_addr(&self) -> Option<&[u8]> {
        self.options()
            .flatten()
            .find(|o| o.kind() == option_type::SLLA)
            .map(|o| o.sllao_bytes())
    }
}

/// The fixed part of an RA (everything but the options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RaHeader {
    /// Cur Hop Limit.
    pub cur_hop_limit: u8,
    /// M flag.
    pub managed: bool,
    /// O flag.
    pub other: bool,
    /// H flag (Mobile IPv6 home agent, RFC 6275).
    pub home_agent: bool,
    /// Default router preference.
    pub preference: Preference,
    /// SNAC router flag (draft-ietf-6man-snac-router-ra-flag), bit 0x02.
    pub snac: bool,
    /// Router Lifetime in seconds.
    pub router_lifetime: u16,
    /// Reachable Time in ms.
    pub reachable_time: u32,
    /// Retrans Timer in ms.
    pub retrans_timer: u32,
}

impl RaHeader {
    /// The flags byte as sent.
    pub fn flags_byte(&self) -> u8 {
        let mut f = 0u8;
        if self.managed {
            f |= 0x80;
        }
        if self.other {
            f |= 0x40;
        }
        if self.home_agent {
            f |= 0x20;
        }
        f |= self.preference.bits() << 3;
        if self.snac {
            f |= 0x02;
        }
        f
    }
    /// Writes the 16-byte header (checksum zero) into `out[..16]`.
    pub fn emit(&self, out: &mut [u8; RA_HEADER_LEN]) {
        out[0] = ICMPV6_ROUTER_ADVERT;
        out[1] = 0;
        out[2] = 0;
        out[3] = 0;
        out[4] = self.cur_hop_limit;
        out[5] = self.flags_byte();
        out[6..8].copy_from_slice(&self.router_lifetime.to_be_bytes());
        out[8..12].copy_from_slice(&self.reachable_time.to_be_bytes());
        out[12..16].copy_from_slice(&self.retrans_timer.to_be_bytes());
    }
    /// Reads the header from a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &RaPacket<T>) -> Self {
        let f = p.flags_byte();
        RaHeader {
            cur_hop_limit: p.cur_hop_limit(),
            managed: f & 0x80 != 0,
            other: f & 0x40 != 0,
            home_agent: f & 0x20 != 0,
            preference: Preference::from_bits(f >> 3),
            snac: f & 0x02 != 0,
            router_lifetime: p.router_lifetime(),
            reachable_time: p.reachable_time(),
            retrans_timer: p.retrans_timer(),
        }
    }
}

/// Owned Router Advertisement: header plus options in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RaRepr {
    /// Fixed header fields.
    pub header: RaHeader,
    /// Options in the order they appear on the wire.
    pub options: Vec<NdOptionRepr>,
}

impl RaRepr {
    /// Parses an RA from raw ICMPv6 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let p = RaPacket::new_checked(bytes)?;
        let header = RaHeader::parse(&p);
        let mut options = Vec::new();
        for o in p.options() {
            options.push(NdOptionRepr::parse(&o?)?);
        }
        Ok(RaRepr { header, options })
    }
    /// Total length of the emitted packet.
    pub fn buffer_len(&self) -> usize {
        RA_HEADER_LEN
            + self
                .options
                .iter()
                .map(NdOptionRepr::buffer_len)
                .sum::<usize>()
    }
    /// Emits the RA (checksum zero) into a new vector.
    pub fn emit(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        let mut h = [0u8; RA_HEADER_LEN];
        self.header.emit(&mut h);
        out.extend_from_slice(&h);
        for o in &self.options {
            o.emit_into(&mut out)?;
        }
        Ok(out)
    }
}

/// Owned Router Solicitation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RsRepr {
    /// Options in wire order (normally at most one SLLAO).
    pub options: Vec<NdOptionRepr>,
}

impl RsRepr {
    /// Parses an RS from raw ICMPv6 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let p = RsPacket::new_checked(bytes)?;
        let mut options = Vec::new();
        for o in p.options() {
            options.push(NdOptionRepr::parse(&o?)?);
        }
        Ok(RsRepr { options })
    }
    /// Emits the RS (checksum zero).
    pub fn emit(&self) -> Result<Vec<u8>, WireError> {
        let mut out = vec![ICMPV6_ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        for o in &self.options {
            o.emit_into(&mut out)?;
        }
        Ok(out)
    }
}

/// Computes the ICMPv6 checksum over the pseudo-header and `msg` (checksum field taken as zero).
pub fn icmpv6_checksum(src: &std::net::Ipv6Addr, dst: &std::net::Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum = sum.wrapping_add(u32::from(w));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, 58]);
    if msg.len() >= 4 {
        add(&msg[..2]);
        add(&msg[4..]);
    } else {
        add(msg);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests;

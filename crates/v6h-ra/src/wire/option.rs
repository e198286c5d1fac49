//! Neighbor Discovery options carried in RAs and RSs: views, owned reprs, parse and emit.

use super::{Preference, WireError, be16, be32};
use std::net::Ipv6Addr;

/// ND option type numbers.
pub mod option_type {
    /// Source Link-Layer Address (RFC 4861 §4.6.1).
    pub const SLLA: u8 = 1;
    /// Target Link-Layer Address (RFC 4861 §4.6.1).
    pub const TLLA: u8 = 2;
    /// Prefix Information (RFC 4861 §4.6.2).
    pub const PREFIX: u8 = 3;
    /// Redirected Header (RFC 4861 §4.6.3).
    pub const REDIRECTED: u8 = 4;
    /// MTU (RFC 4861 §4.6.4).
    pub const MTU: u8 = 5;
    /// Advertisement Interval (RFC 6275 §7.3).
    pub const ADV_INTERVAL: u8 = 7;
    /// Home Agent Information (RFC 6275 §7.4).
    pub const HA_INFO: u8 = 8;
    /// Route Information (RFC 4191 §2.3).
    pub const ROUTE: u8 = 24;
    /// Recursive DNS Server (RFC 8106 §5.1).
    pub const RDNSS: u8 = 25;
    /// DNS Search List (RFC 8106 §5.2).
    pub const DNSSL: u8 = 31;
    /// 6LoWPAN Context (RFC 6775 §4.2).
    pub const SIXCO: u8 = 34;
    /// Authoritative Border Router (RFC 6775 §4.3).
    pub const ABRO: u8 = 35;
    /// Captive Portal (RFC 8910 §2.3).
    pub const CAPTIVE_PORTAL: u8 = 37;
    /// PREF64 (RFC 8781 §4).
    pub const PREF64: u8 = 38;
}

/// Largest option: length field 255 × 8 bytes.
pub const MAX_OPTION_LEN: usize = 255 * 8;

/// Zero-copy view of one option (type, length and body, all inside the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOptionView<'a> {
    bytes: &'a [u8],
}

impl<'a> NdOptionView<'a> {
    /// Option type.
    pub fn kind(&self) -> u8 {
        self.bytes[0]
    }
    /// Length field (units of 8 bytes).
    pub fn len_units(&self) -> u8 {
        self.bytes[1]
    }
    /// The whole option including type and length bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Bytes after type and length.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[2..]
    }
    /// For a (S|T)LLAO: the link-layer address (6 bytes for length 1, all bytes otherwise).
    pub fn sllao_bytes(&self) -> &'a [u8] {
        if self.len_units() == 1 {
            &self.bytes[2..8]
        } else {
            &self.bytes[2..]
        }
    }
}

/// Iterator over the options of an RA/RS body; yields an error and stops on a malformed option.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates over `bytes`, which start at the first option.
    pub fn new(bytes: &'a [u8]) -> Self {
        OptionIter {
            rest: bytes,
            failed: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<NdOptionView<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let fail = |s: &mut Self, e| {
            s.failed = true;
            Some(Err(e))
        };
        if self.rest.len() < 2 {
            return fail(
                self,
                WireError::Truncated {
                    need: 2,
                    have: self.rest.len(),
                },
            );
        }
        let kind = self.rest[0];
        let len = usize::from(self.rest[1]) * 8;
        if len == 0 {
            return fail(self, WireError::ZeroLengthOption(kind));
        }
        if len > self.rest.len() {
            let have = self.rest.len();
            return fail(self, WireError::OptionOverrun { kind, len, have });
        }
        let (this, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(NdOptionView { bytes: this }))
    }
}

/// Prefix Information option (type 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// Prefix length (0–128).
    pub prefix_len: u8,
    /// L: on-link.
    pub on_link: bool,
    /// A: autonomous address configuration.
    pub autonomous: bool,
    /// R: router address (RFC 6275).
    pub router_addr: bool,
    /// P: DHCPv6-PD preferred (RFC 9762).
    pub pd_preferred: bool,
    /// Valid lifetime, seconds (0xFFFFFFFF = infinity).
    pub valid_lifetime: u32,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

/// Route Information option (type 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Prefix length (0–128).
    pub prefix_len: u8,
    /// Route preference.
    pub preference: Preference,
    /// Route lifetime, seconds.
    pub lifetime: u32,
    /// The prefix; only the first ⌈len/64⌉ × 8 bytes go on the wire.
    pub prefix: Ipv6Addr,
}

impl RouteInfo {
    /// Option length in 8-byte units as radvd 2.20+ sends it: 1 for /0, 2 up to /64, else 3.
    pub fn len_units(&self) -> u8 {
        match self.prefix_len {
            0 => 1,
            1..=64 => 2,
            _ => 3,
        }
    }
}

/// Recursive DNS Server option (type 25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdnss {
    /// Lifetime, seconds.
    pub lifetime: u32,
    /// Server addresses (1–127).
    pub servers: Vec<Ipv6Addr>,
}

/// A validated DNS name for DNSSL: labels of 1–63 bytes from `[A-Za-z0-9-_]`, ≤ 253 bytes of text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// Validates a dotted name; one trailing dot is accepted and dropped.
    pub fn new(s: &str) -> Result<Self, WireError> {
        let t = s.strip_suffix('.').unwrap_or(s);
        if t.is_empty() {
            return Err(WireError::BadDomainName("empty name"));
        }
        if t.len() > 253 {
            return Err(WireError::BadDomainName("name longer than 253 bytes"));
        }
        for label in t.split('.') {
            if label.is_empty() {
                return Err(WireError::BadDomainName("empty label"));
            }
            if label.len() > 63 {
                return Err(WireError::BadDomainName("label longer than 63 bytes"));
            }
            if !label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(WireError::BadDomainName("invalid character in label"));
            }
        }
        Ok(DnsName(t.to_string()))
    }
    /// The name without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Encoded length on the wire (labels with length bytes plus the root byte).
    pub fn wire_len(&self) -> usize {
        self.0.len() + 2
    }
    fn emit_into(&self, out: &mut Vec<u8>) {
        for label in self.0.split('.') {
            // Labels are ≤ 63 bytes by construction.
            out.push(u8::try_from(label.len()).unwrap_or(63));
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }
}

impl std::fmt::Display for DnsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// DNS Search List option (type 31).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnssl {
    /// Lifetime, seconds.
    pub lifetime: u32,
    /// Search domains in order.
    pub domains: Vec<DnsName>,
}

/// Home Agent Information option (type 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeAgentInfo {
    /// Mobile router support flag (0x8000).
    pub mobile_router: bool,
    /// Home agent preference.
    pub preference: u16,
    /// Home agent lifetime, seconds.
    pub lifetime: u16,
}

/// 6LoWPAN Context option (type 34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SixCo {
    /// Context length in bits (0–128).
    pub context_len: u8,
    /// C: valid for compression.
    pub compression: bool,
    /// Context ID (0–15).
    pub cid: u8,
    /// Valid lifetime in units of 60 s.
    pub lifetime: u16,
    /// Context prefix.
    pub prefix: Ipv6Addr,
}

/// Authoritative Border Router option (type 35).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abro {
    /// Version low 16 bits.
    pub version_low: u16,
    /// Version high 16 bits.
    pub version_high: u16,
    /// Valid lifetime in units of 60 s.
    pub lifetime: u16,
    /// 6LBR address.
    pub address: Ipv6Addr,
}

/// Captive Portal option (type 37): the API URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptivePortal {
    /// The URI (no NUL bytes).
    pub uri: String,
}

/// PREF64 option (type 38).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pref64 {
    /// Scaled lifetime: lifetime in units of 8 s (0–8191).
    pub scaled_lifetime: u16,
    /// Prefix length: 96, 64, 56, 48, 40 or 32.
    pub prefix_len: u8,
    /// The NAT64 prefix (only the top 96 bits are sent).
    pub prefix: Ipv6Addr,
}

impl Pref64 {
    /// Builds from a lifetime in seconds, rounding up to 8 s units and capping at 65528 s.
    pub fn from_lifetime_secs(secs: u32, prefix_len: u8, prefix: Ipv6Addr) -> Self {
        let units = secs.div_ceil(8).min(8191);
        Pref64 {
            scaled_lifetime: u16::try_from(units).unwrap_or(8191),
            prefix_len,
            prefix,
        }
    }
    /// The lifetime in seconds.
    pub fn lifetime_secs(&self) -> u32 {
        u32::from(self.scaled_lifetime) * 8
    }
    /// Prefix length code (RFC 8781 §4), `None` for a length that has none.
    pub fn plc(&self) -> Option<u8> {
        match self.prefix_len {
            96 => Some(0),
            64 => Some(1),
            56 => Some(2),
            48 => Some(3),
            40 => Some(4),
            32 => Some(5),
            _ => None,
        }
    }
}

/// Owned representation of one ND option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdOptionRepr {
    /// Source link-layer address (6 bytes for Ethernet; longer forms keep all body bytes).
    SourceLinkAddr(Vec<u8>),
    /// Target link-layer address (never in RA/RS, but parsed).
    TargetLinkAddr(Vec<u8>),
    /// Prefix Information.
    Prefix(PrefixInfo),
    /// MTU.
    Mtu(u32),
    /// Advertisement Interval in ms.
    AdvInterval(u32),
    /// Home Agent Information.
    HomeAgentInfo(HomeAgentInfo),
    /// Route Information.
    Route(RouteInfo),
    /// Recursive DNS Server.
    Rdnss(Rdnss),
    /// DNS Search List.
    Dnssl(Dnssl),
    /// 6LoWPAN Context.
    SixCo(SixCo),
    /// Authoritative Border Router.
    Abro(Abro),
    /// Captive Portal.
    CaptivePortal(CaptivePortal),
    /// PREF64.
    Pref64(Pref64),
    /// Any other option, kept verbatim (body after type and length).
    Unknown {
        /// Option type.
        kind: u8,
        /// Body bytes (length + 2 is a multiple of 8).
        data: Vec<u8>,
    },
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        o.copy_from_slice(s);
    }
    Ipv6Addr::from(o)
}

fn bad_len(o: &NdOptionView<'_>) -> WireError {
    WireError::BadOptionLength {
        kind: o.kind(),
        len: o.len_units(),
    }
}

/// Pads `out` (which holds one option starting at `start`) to 8 bytes and fills in the length.
fn finish(out: &mut Vec<u8>, start: usize) -> Result<(), WireError> {
    let len = out.len() - start;
    let padded = len.div_ceil(8) * 8;
    if padded > MAX_OPTION_LEN {
        out.truncate(start);
        return Err(WireError::OptionTooLong(padded));
    }
    out.resize(start + padded, 0);
    out[start + 1] = u8::try_from(padded / 8).map_err(|_| WireError::OptionTooLong(padded))?;
    Ok(())
}

impl NdOptionRepr {
    /// The option type number.
    pub fn kind(&self) -> u8 {
        use option_type as t;
        match self {
            NdOptionRepr::SourceLinkAddr(_) => t::SLLA,
            NdOptionRepr::TargetLinkAddr(_) => t::TLLA,
            NdOptionRepr::Prefix(_) => t::PREFIX,
            NdOptionRepr::Mtu(_) => t::MTU,
            NdOptionRepr::AdvInterval(_) => t::ADV_INTERVAL,
            NdOptionRepr::HomeAgentInfo(_) => t::HA_INFO,
            NdOptionRepr::Route(_) => t::ROUTE,
            NdOptionRepr::Rdnss(_) => t::RDNSS,
            NdOptionRepr::Dnssl(_) => t::DNSSL,
            NdOptionRepr::SixCo(_) => t::SIXCO,
            NdOptionRepr::Abro(_) => t::ABRO,
            NdOptionRepr::CaptivePortal(_) => t::CAPTIVE_PORTAL,
            NdOptionRepr::Pref64(_) => t::PREF64,
            NdOptionRepr::Unknown { kind, .. } => *kind,
        }
    }

    /// Parses one option from its view.
    pub fn parse(o: &NdOptionView<'_>) -> Result<Self, WireError> {
        use option_type as t;
        let b = o.as_bytes();
        let units = o.len_units();
        Ok(match o.kind() {
            t::SLLA => NdOptionRepr::SourceLinkAddr(o.sllao_bytes().to_vec()),
            t::TLLA => NdOptionRepr::TargetLinkAddr(o.sllao_bytes().to_vec()),
            t::PREFIX => {
                if units != 4 {
                    return Err(bad_len(o));
                }
                let prefix_len = b[2];
                if prefix_len > 128 {
                    return Err(WireError::BadPrefixLength {
                        kind: t::PREFIX,
                        len: prefix_len,
                    });
                }
                NdOptionRepr::Prefix(PrefixInfo {
                    prefix_len,
                    on_link: b[3] & 0x80 != 0,
                    autonomous: b[3] & 0x40 != 0,
                    router_addr: b[3] & 0x20 != 0,
                    pd_preferred: b[3] & 0x10 != 0,
                    valid_lifetime: be32(b, 4),
                    preferred_lifetime: be32(b, 8),
                    prefix: addr_at(b, 16),
                })
            }
            t::MTU => {
                if units != 1 {
                    return Err(bad_len(o));
                }
                NdOptionRepr::Mtu(be32(b, 4))
            }
            t::ADV_INTERVAL => {
                if units != 1 {
                    return Err(bad_len(o));
                }
                NdOptionRepr::AdvInterval(be32(b, 4))
            }
            t::HA_INFO => {
                if units != 1 {
                    return Err(bad_len(o));
                }
                NdOptionRepr::HomeAgentInfo(HomeAgentInfo {
                    mobile_router: be16(b, 2) & 0x8000 != 0,
                    preference: be16(b, 4),
                    lifetime: be16(b, 6),
                })
            }
            t::ROUTE => {
                let prefix_len = b[2];
                let ok = match units {
                    1 => prefix_len == 0,
                    2 => prefix_len <= 64,
                    3 => prefix_len <= 128,
                    _ => false,
                };
                if !ok {
                    if prefix_len > 128 {
                        return Err(WireError::BadPrefixLength {
                            kind: t::ROUTE,
                            len: prefix_len,
                        });
                    }
                    return Err(bad_len(o));
                }
                let mut p = [0u8; 16];
                let n = (usize::from(units) - 1) * 8;
                p[..n].copy_from_slice(&b[8..8 + n]);
                // RFC 4191 §2.3: bits past the prefix length are reserved and ignored.
                let keep = u128::MAX
                    .checked_shl(128 - u32::from(prefix_len))
                    .unwrap_or(0);
                NdOptionRepr::Route(RouteInfo {
                    prefix_len,
                    preference: Preference::from_bits(b[3] >> 3),
                    lifetime: be32(b, 4),
                    prefix: Ipv6Addr::from(u128::from_be_bytes(p) & keep),
                })
            }
            t::RDNSS => {
                if units < 3 || units.is_multiple_of(2) {
                    return Err(bad_len(o));
                }
                let servers = b[8..].chunks_exact(16).map(|c| addr_at(c, 0)).collect();
                NdOptionRepr::Rdnss(Rdnss {
                    lifetime: be32(b, 4),
                    servers,
                })
            }
            t::DNSSL => {
                if units < 2 {
                    return Err(bad_len(o));
                }
                NdOptionRepr::Dnssl(Dnssl {
                    lifetime: be32(b, 4),
                    domains: parse_dnssl_names(&b[8..])?,
                })
            }
            t::SIXCO => {
                if units != 2 && units != 3 {
                    return Err(bad_len(o));
                }
                let context_len = b[2];
                if context_len > 128 {
                    return Err(WireError::BadPrefixLength {
                        kind: t::SIXCO,
                        len: context_len,
                    });
                }
                let mut p = [0u8; 16];
                let n = (usize::from(units) - 1) * 8;
                p[..n].copy_from_slice(&b[8..8 + n]);
                NdOptionRepr::SixCo(SixCo {
                    context_len,
                    compression: b[3] & 0x10 != 0,
                    cid: b[3] & 0x0f,
                    lifetime: be16(b, 6),
                    prefix: Ipv6Addr::from(p),
                })
            }
            t::ABRO => {
                if units != 3 {
                    return Err(bad_len(o));
                }
                NdOptionRepr::Abro(Abro {
                    version_low: be16(b, 2),
                    version_high: be16(b, 4),
                    lifetime: be16(b, 6),
                    address: addr_at(b, 8),
                })
            }
            t::CAPTIVE_PORTAL => {
                let body = &b[2..];
                let end = body.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
                let text = &body[..end];
                if text.contains(&0) {
                    return Err(WireError::BadUri);
                }
                let uri = std::str::from_utf8(text).map_err(|_| WireError::BadUri)?;
                NdOptionRepr::CaptivePortal(CaptivePortal {
                    uri: uri.to_string(),
                })
            }
            t::PREF64 => {
                if units != 2 {
                    return Err(bad_len(o));
                }
                let w = be16(b, 2);
                let plc = u8::try_from(w & 7).unwrap_or(7);
                let prefix_len = match plc {
                    0 => 96,
                    1 => 64,
                    2 => 56,
                    3 => 48,
                    4 => 40,
                    5 => 32,
                    _ => return Err(WireError::BadPlc(plc)),
                };
                let mut p = [0u8; 16];
                p[..12].copy_from_slice(&b[4..16]);
                NdOptionRepr::Pref64(Pref64 {
                    scaled_lifetime: w >> 3,
                    prefix_len,
                    prefix: Ipv6Addr::from(p),
                })
            }
            kind => NdOptionRepr::Unknown {
                kind,
                data: o.data().to_vec(),
            },
        })
    }

    /// Emitted length in bytes (a multiple of 8).
    pub fn buffer_len(&self) -> usize {
        let raw = match self {
            NdOptionRepr::SourceLinkAddr(a) | NdOptionRepr::TargetLinkAddr(a) => 2 + a.len(),
            NdOptionRepr::Prefix(_) => 32,
            NdOptionRepr::Mtu(_)
            | NdOptionRepr::AdvInterval(_)
            | NdOptionRepr::HomeAgentInfo(_) => 8,
            NdOptionRepr::Route(r) => usize::from(r.len_units()) * 8,
            NdOptionRepr::Rdnss(r) => 8 + 16 * r.servers.len(),
            NdOptionRepr::Dnssl(d) => 8 + d.domains.iter().map(DnsName::wire_len).sum::<usize>(),
            NdOptionRepr::SixCo(_) | NdOptionRepr::Abro(_) => 24,
            NdOptionRepr::CaptivePortal(c) => 2 + c.uri.len(),
            NdOptionRepr::Pref64(_) => 16,
            NdOptionRepr::Unknown { data, .. } => 2 + data.len(),
        };
        raw.div_ceil(8) * 8
    }

    /// Appends the option to `out`. Fails (leaving `out` unchanged) if it cannot be encoded.
    pub fn emit_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        out.push(self.kind());
        out.push(0);
        match self {
            NdOptionRepr::SourceLinkAddr(a) | NdOptionRepr::TargetLinkAddr(a) => {
                out.extend_from_slice(a)
            }
            NdOptionRepr::Prefix(p) => {
                if p.prefix_len > 128 {
                    out.truncate(start);
                    return Err(WireError::BadPrefixLength {
                        kind: option_type::PREFIX,
                        len: p.prefix_len,
                    });
                }
                let mut f = 0u8;
                if p.on_link {
                    f |= 0x80;
                }
                if p.autonomous {
                    f |= 0x40;
                }
                if p.router_addr {
                    f |= 0x20;
                }
                if p.pd_preferred {
                    f |= 0x10;
                }
                out.push(p.prefix_len);
                out.push(f);
                out.extend_from_slice(&p.valid_lifetime.to_be_bytes());
                out.extend_from_slice(&p.preferred_lifetime.to_be_bytes());
                out.extend_from_slice(&[0; 4]);
                out.extend_from_slice(&p.prefix.octets());
            }
            NdOptionRepr::Mtu(m) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&m.to_be_bytes());
            }
            NdOptionRepr::AdvInterval(ms) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ms.to_be_bytes());
            }
            NdOptionRepr::HomeAgentInfo(h) => {
                let f: u16 = if h.mobile_router { 0x8000 } else { 0 };
                out.extend_from_slice(&f.to_be_bytes());
                out.extend_from_slice(&h.preference.to_be_bytes());
                out.extend_from_slice(&h.lifetime.to_be_bytes());
            }
            NdOptionRepr::Route(r) => {
                if r.prefix_len > 128 {
                    out.truncate(start);
                    return Err(WireError::BadPrefixLength {
                        kind: option_type::ROUTE,
                        len: r.prefix_len,
                    });
                }
                out.push(r.prefix_len);
                out.push(r.preference.bits() << 3);
                out.extend_from_slice(&r.lifetime.to_be_bytes());
                let n = (usize::from(r.len_units()) - 1) * 8;
                out.extend_from_slice(&r.prefix.octets()[..n]);
            }
            NdOptionRepr::Rdnss(r) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&r.lifetime.to_be_bytes());
                for s in &r.servers {
                    out.extend_from_slice(&s.octets());
                }
            }
            NdOptionRepr::Dnssl(d) => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&d.lifetime.to_be_bytes());
                for n in &d.domains {
                    n.emit_into(out);
                }
            }
            NdOptionRepr::SixCo(c) => {
                out.push(c.context_len);
                out.push((if c.compression { 0x10 } else { 0 }) | (c.cid & 0x0f));
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&c.lifetime.to_be_bytes());
                out.extend_from_slice(&c.prefix.octets());
            }
            NdOptionRepr::Abro(a) => {
                out.extend_from_slice(&a.version_low.to_be_bytes());
                out.extend_from_slice(&a.version_high.to_be_bytes());
                out.extend_from_slice(&a.lifetime.to_be_bytes());
                out.extend_from_slice(&a.address.octets());
            }
            NdOptionRepr::CaptivePortal(c) => {
                if c.uri.as_bytes().contains(&0) {
                    out.truncate(start);
                    return Err(WireError::BadUri);
                }
                out.extend_from_slice(c.uri.as_bytes());
            }
            NdOptionRepr::Pref64(p) => {
                let Some(plc) = p.plc() else {
                    out.truncate(start);
                    return Err(WireError::BadPrefixLength {
                        kind: option_type::PREF64,
                        len: p.prefix_len,
                    });
                };
                let w = (p.scaled_lifetime.min(8191) << 3) | u16::from(plc);
                out.extend_from_slice(&w.to_be_bytes());
                out.extend_from_slice(&p.prefix.octets()[..12]);
            }
            NdOptionRepr::Unknown { data, .. } => out.extend_from_slice(data),
        }
        finish(out, start)
    }
}

/// Decodes the DNSSL name area: uncompressed names, each ended by a root label, then zero padding.
fn parse_dnssl_names(mut b: &[u8]) -> Result<Vec<DnsName>, WireError> {
    let mut names = Vec::new();
    loop {
        // Padding: only zero bytes may remain, and it must be shorter than 8 bytes... RFC 8106
        // only says "padded with zeros", so accept any run of zeros at the end.
        if b.iter().all(|&c| c == 0) {
            break;
        }
        let mut name = String::new();
        loop {
            let Some((&l, rest)) = b.split_first() else {
                return Err(WireError::BadDomainName("name runs past the option"));
            };
            b = rest;
            if l == 0 {
                break;
            }
            if l > 63 {
                return Err(WireError::BadDomainName(
                    "label longer than 63 bytes or compression pointer",
                ));
            }
            let l = usize::from(l);
            let Some(label) = b.get(..l) else {
                return Err(WireError::BadDomainName("label runs past the option"));
            };
            let text =
                std::str::from_utf8(label).map_err(|_| WireError::BadDomainName("non-ASCII"))?;
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(text);
            b = &b[l..];
        }
        if name.is_empty() {
            return Err(WireError::BadDomainName("empty name"));
        }
        names.push(DnsName::new(&name)?);
    }
    if names.is_empty() {
        return Err(WireError::BadDomainName("no names"));
    }
    Ok(names)
}

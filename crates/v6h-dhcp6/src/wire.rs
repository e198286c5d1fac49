//! DHCPv6 wire format (RFC 8415 §8, §9, §21): a strict decoder and an encoder.
//!
//! This is v6home's own codec; dhcproto is not used for decoding because of the defects
//! listed in the spec (§5.2: panics on short status codes, desync on fixed-size options with a
//! wrong length, silently dropped trailing data). Every length is checked: an option must fit
//! the bytes that remain, fixed-size options must have their exact size, lists must be whole
//! multiples of their item size, and the datagram (and every nested option area) must be
//! consumed exactly. Any violation is a typed [`DecodeError`]; decoding never panics.
//!
//! [`Message::parse`] turns bytes into an owned representation; [`Message::emit`] writes it
//! back. For every valid input, `emit(parse(b)) == b` (options keep their order).

use std::net::Ipv6Addr;

use thiserror::Error;

/// Maximum nesting of Relay-Forw/Relay-Repl messages accepted (RFC 8415 §7.6 HOP_COUNT_LIMIT
/// is 8; the spec allows up to 32 levels of nesting).
pub const MAX_RELAY_DEPTH: usize = 32;

/// Message type codes (RFC 8415 §7.3).
pub mod msg {
    /// Solicit.
    pub const SOLICIT: u8 = 1;
    /// Advertise.
    pub const ADVERTISE: u8 = 2;
    /// Request.
    pub const REQUEST: u8 = 3;
    /// Confirm.
    pub const CONFIRM: u8 = 4;
    /// Renew.
    pub const RENEW: u8 = 5;
    /// Rebind.
    pub const REBIND: u8 = 6;
    /// Reply.
    pub const REPLY: u8 = 7;
    /// Release.
    pub const RELEASE: u8 = 8;
    /// Decline.
    pub const DECLINE: u8 = 9;
    /// Reconfigure.
    pub const RECONFIGURE: u8 = 10;
    /// Information-Request.
    pub const INFORMATION_REQUEST: u8 = 11;
    /// Relay-Forw.
    pub const RELAY_FORW: u8 = 12;
    /// Relay-Repl.
    pub const RELAY_REPL: u8 = 13;
}

/// Option codes used by the server (RFC 8415 §21 and the RFCs named in the spec).
pub mod code {
    /// Client Identifier.
    pub const CLIENTID: u16 = 1;
    /// Server Identifier.
    pub const SERVERID: u16 = 2;
    /// Identity Association for Non-temporary Addresses.
    pub const IA_NA: u16 = 3;
    /// Identity Association for Temporary Addresses (deprecated).
    pub const IA_TA: u16 = 4;
    /// IA Address.
    pub const IAADDR: u16 = 5;
    /// Option Request.
    pub const ORO: u16 = 6;
    /// Preference.
    pub const PREFERENCE: u16 = 7;
    /// Elapsed Time.
    pub const ELAPSED_TIME: u16 = 8;
    /// Relay Message.
    pub const RELAY_MSG: u16 = 9;
    /// Authentication.
    pub const AUTH: u16 = 11;
    /// Server Unicast.
    pub const UNICAST: u16 = 12;
    /// Status Code.
    pub const STATUS_CODE: u16 = 13;
    /// Rapid Commit.
    pub const RAPID_COMMIT: u16 = 14;
    /// User Class.
    pub const USER_CLASS: u16 = 15;
    /// Vendor Class.
    pub const VENDOR_CLASS: u16 = 16;
    /// Vendor-specific Information.
    pub const VENDOR_OPTS: u16 = 17;
    /// Interface-Id.
    pub const INTERFACE_ID: u16 = 18;
    /// Reconfigure Message.
    pub const RECONF_MSG: u16 = 19;
    /// Reconfigure Accept.
    pub const RECONF_ACCEPT: u16 = 20;
    /// SIP servers domain name list (RFC 3319).
    pub const SIP_SERVER_D: u16 = 21;
    /// SIP servers IPv6 address list (RFC 3319).
    pub const SIP_SERVER_A: u16 = 22;
    /// DNS recursive name servers (RFC 3646).
    pub const DNS_SERVERS: u16 = 23;
    /// Domain search list (RFC 3646).
    pub const DOMAIN_LIST: u16 = 24;
    /// Identity Association for Prefix Delegation.
    pub const IA_PD: u16 = 25;
    /// IA Prefix.
    pub const IAPREFIX: u16 = 26;
    /// NIS servers (RFC 3898).
    pub const NIS_SERVERS: u16 = 27;
    /// NIS+ servers (RFC 3898).
    pub const NISP_SERVERS: u16 = 28;
    /// NIS domain name (RFC 3898).
    pub const NIS_DOMAIN_NAME: u16 = 29;
    /// NIS+ domain name (RFC 3898).
    pub const NISP_DOMAIN_NAME: u16 = 30;
    /// SNTP servers (RFC 4075).
    pub const SNTP_SERVERS: u16 = 31;
    /// Information Refresh Time.
    pub const INFORMATION_REFRESH_TIME: u16 = 32;
    /// BCMCS controller domain name list (RFC 4280).
    pub const BCMCS_SERVER_D: u16 = 33;
    /// BCMCS controller IPv6 address list (RFC 4280).
    pub const BCMCS_SERVER_A: u16 = 34;
    /// NTP server (RFC 5908).
    pub const NTP_SERVER: u16 = 56;
    /// SOL_MAX_RT.
    pub const SOL_MAX_RT: u16 = 82;
    /// INF_MAX_RT.
    pub const INF_MAX_RT: u16 = 83;
    /// Relay Source Port (RFC 8357).
    pub const RELAY_SOURCE_PORT: u16 = 135;
}

/// Status codes (RFC 8415 §21.13).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Unspecified failure.
    pub const UNSPEC_FAIL: u16 = 1;
    /// No addresses available.
    pub const NO_ADDRS_AVAIL: u16 = 2;
    /// No binding for the IA.
    pub const NO_BINDING: u16 = 3;
    /// Address not on link.
    pub const NOT_ON_LINK: u16 = 4;
    /// Use multicast.
    pub const USE_MULTICAST: u16 = 5;
    /// No prefixes available.
    pub const NO_PREFIX_AVAIL: u16 = 6;
}

/// Why a datagram or option was rejected by the strict decoder.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The datagram is shorter than a message header.
    #[error("message of {len} bytes is shorter than its {need}-byte header")]
    ShortHeader {
        /// Bytes present.
        len: usize,
        /// Header size for the message type.
        need: usize,
    },
    /// An option header does not fit the remaining bytes.
    #[error("truncated option header: {remaining} byte(s) left")]
    TruncatedHeader {
        /// Bytes left when the header was expected.
        remaining: usize,
    },
    /// An option's length runs past the end of its enclosing area.
    #[error("option {code} claims {len} bytes but only {remaining} remain")]
    Overrun {
        /// Option code.
        code: u16,
        /// Claimed length.
        len: usize,
        /// Bytes available.
        remaining: usize,
    },
    /// A fixed-size option has the wrong length.
    #[error("option {code} must be {expected} bytes long, got {len}")]
    BadLength {
        /// Option code.
        code: u16,
        /// Actual length.
        len: usize,
        /// Required length.
        expected: usize,
    },
    /// An option is shorter than its minimum.
    #[error("option {code} must be at least {min} bytes long, got {len}")]
    TooShort {
        /// Option code.
        code: u16,
        /// Actual length.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// An option is longer than its maximum.
    #[error("option {code} must be at most {max} bytes long, got {len}")]
    TooLong {
        /// Option code.
        code: u16,
        /// Actual length.
        len: usize,
        /// Maximum length.
        max: usize,
    },
    /// A list option is empty or not a whole number of items.
    #[error("option {code} length {len} is not a non-zero multiple of {unit}")]
    NotMultiple {
        /// Option code.
        code: u16,
        /// Actual length.
        len: usize,
        /// Item size.
        unit: usize,
    },
    /// An option that may appear once appears again at the same level.
    #[error("option {code} appears more than once")]
    Duplicate {
        /// Option code.
        code: u16,
    },
    /// Two IAs of the same type share an IAID.
    #[error("IA option {code} repeats IAID {iaid}")]
    DuplicateIaid {
        /// IA option code.
        code: u16,
        /// Repeated IAID.
        iaid: u32,
    },
    /// A prefix length above 128.
    #[error("IAPREFIX prefix length {0} exceeds 128")]
    BadPrefixLen(u8),
    /// A status message that is not UTF-8.
    #[error("status code message is not valid UTF-8")]
    BadUtf8,
    /// A malformed DNS name (RFC 8415 §10, RFC 1035 §3.1).
    #[error("option {code}: malformed domain name ({why})")]
    BadName {
        /// Option code.
        code: u16,
        /// What is wrong.
        why: &'static str,
    },
    /// A malformed sub-item inside a class, vendor or NTP option.
    #[error("option {code}: malformed item ({why})")]
    BadItem {
        /// Option code.
        code: u16,
        /// What is wrong.
        why: &'static str,
    },
    /// Relay messages nested deeper than [`MAX_RELAY_DEPTH`].
    #[error("relay messages nested deeper than {MAX_RELAY_DEPTH}")]
    RelayTooDeep,
    /// A relay message without a Relay Message option (RFC 8415 §9).
    #[error("relay message without a Relay Message option")]
    MissingRelayMsg,
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// An option's data exceeds 65535 bytes.
    #[error("option {code} data of {len} bytes exceeds 65535")]
    OptionTooLong {
        /// Option code.
        code: u16,
        /// Data length.
        len: usize,
    },
    /// A value cannot be represented (e.g. a domain label over 63 bytes).
    #[error("option {code}: cannot encode ({why})")]
    Invalid {
        /// Option code.
        code: u16,
        /// What is wrong.
        why: &'static str,
    },
}

/// A DHCPv6 message: client/server or relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Any message type other than 12 and 13.
    Client(ClientMessage),
    /// Relay-Forw (12) or Relay-Repl (13).
    Relay(RelayMessage),
}

/// A client/server message (RFC 8415 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// Message type.
    pub msg_type: u8,
    /// Transaction id (24 bits).
    pub xid: [u8; 3],
    /// Options, in wire order.
    pub options: Vec<DhcpOption>,
}

/// A relay agent/server message (RFC 8415 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMessage {
    /// 12 (Relay-Forw) or 13 (Relay-Repl).
    pub msg_type: u8,
    /// Hop count.
    pub hop_count: u8,
    /// Link address (`::` when the relay leaves it unspecified).
    pub link_address: Ipv6Addr,
    /// Address of the client or relay the message came from.
    pub peer_address: Ipv6Addr,
    /// Options, in wire order; exactly one is [`DhcpOption::RelayMsg`].
    pub options: Vec<DhcpOption>,
}

/// A decoded option. Options the server does not interpret are kept as [`DhcpOption::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    /// 1: the client's DUID.
    ClientId(Vec<u8>),
    /// 2: the server's DUID.
    ServerId(Vec<u8>),
    /// 3: IA_NA.
    IaNa(Ia),
    /// 4: IA_TA (IAID and sub-options only).
    IaTa {
        /// IAID.
        iaid: u32,
        /// Sub-options.
        options: Vec<DhcpOption>,
    },
    /// 5: IA Address.
    IaAddr(IaAddr),
    /// 6: Option Request.
    Oro(Vec<u16>),
    /// 7: Preference.
    Preference(u8),
    /// 8: Elapsed Time in 1/100 s.
    ElapsedTime(u16),
    /// 9: Relay Message: an encapsulated message.
    RelayMsg(Box<Message>),
    /// 11: Authentication.
    Auth(Auth),
    /// 12: Server Unicast.
    Unicast(Ipv6Addr),
    /// 13: Status Code.
    StatusCode {
        /// Status code.
        status: u16,
        /// UTF-8 message.
        message: String,
    },
    /// 14: Rapid Commit.
    RapidCommit,
    /// 15: User Class: opaque items.
    UserClass(Vec<Vec<u8>>),
    /// 16: Vendor Class.
    VendorClass {
        /// Enterprise number.
        enterprise: u32,
        /// Opaque items.
        data: Vec<Vec<u8>>,
    },
    /// 17: Vendor-specific Information.
    VendorOpts {
        /// Enterprise number.
        enterprise: u32,
        /// Vendor sub-options `(code, data)`.
        options: Vec<(u16, Vec<u8>)>,
    },
    /// 18: Interface-Id (opaque; echoed back by the server).
    InterfaceId(Vec<u8>),
    /// 19: Reconfigure Message (the message type the client should send).
    ReconfMsg(u8),
    /// 20: Reconfigure Accept.
    ReconfAccept,
    /// 22, 23, 27, 28, 31, 34: a list of IPv6 addresses.
    Addresses {
        /// Option code.
        code: u16,
        /// Addresses in order.
        addrs: Vec<Ipv6Addr>,
    },
    /// 21, 24, 29, 30, 33: a list of DNS names (dotted, without the trailing dot).
    Names {
        /// Option code.
        code: u16,
        /// Names in order.
        names: Vec<String>,
    },
    /// 25: IA_PD.
    IaPd(Ia),
    /// 26: IA Prefix.
    IaPrefix(IaPrefix),
    /// 32: Information Refresh Time in seconds.
    InformationRefreshTime(u32),
    /// 56: NTP server sub-options.
    NtpServer(Vec<NtpSuboption>),
    /// 82: SOL_MAX_RT.
    SolMaxRt(u32),
    /// 83: INF_MAX_RT.
    InfMaxRt(u32),
    /// Any other option, kept verbatim.
    Unknown {
        /// Option code.
        code: u16,
        /// Raw data.
        data: Vec<u8>,
    },
}

/// IA_NA / IA_PD body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ia {
    /// IAID.
    pub iaid: u32,
    /// T1 in seconds.
    pub t1: u32,
    /// T2 in seconds.
    pub t2: u32,
    /// Sub-options (IAADDR/IAPREFIX, Status Code, ...).
    pub options: Vec<DhcpOption>,
}

/// IAADDR body (RFC 8415 §21.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaAddr {
    /// Address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
    /// Sub-options.
    pub options: Vec<DhcpOption>,
}

/// IAPREFIX body (RFC 8415 §21.22); note the lifetimes come first on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPrefix {
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// Prefix.
    pub prefix: Ipv6Addr,
    /// Sub-options.
    pub options: Vec<DhcpOption>,
}

/// Authentication option body (RFC 8415 §21.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Protocol.
    pub protocol: u8,
    /// Algorithm.
    pub algorithm: u8,
    /// Replay detection method.
    pub rdm: u8,
    /// Replay detection value.
    pub replay: u64,
    /// Authentication information.
    pub info: Vec<u8>,
}

/// An NTP server sub-option (RFC 5908 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtpSuboption {
    /// 1: unicast server address.
    Address(Ipv6Addr),
    /// 2: multicast address.
    Multicast(Ipv6Addr),
    /// 3: server FQDN (dotted).
    Fqdn(String),
}

/// The options that may appear at most once per option area (spec §5.3, plus Relay Message).
const SINGLETONS: [u16; 6] = [
    code::RELAY_MSG,
    code::CLIENTID,
    code::SERVERID,
    code::ORO,
    code::ELAPSED_TIME,
    code::RAPID_COMMIT,
];

/// Codes whose body is a non-empty list of IPv6 addresses.
pub fn is_address_list(c: u16) -> bool {
    matches!(
        c,
        code::SIP_SERVER_A
            | code::DNS_SERVERS
            | code::NIS_SERVERS
            | code::NISP_SERVERS
            | code::SNTP_SERVERS
            | code::BCMCS_SERVER_A
    )
}

/// Codes whose body is a list of DNS names.
pub fn is_name_list(c: u16) -> bool {
    matches!(
        c,
        code::SIP_SERVER_D
            | code::DOMAIN_LIST
            | code::NIS_DOMAIN_NAME
            | code::NISP_DOMAIN_NAME
            | code::BCMCS_SERVER_D
    )
}

/// A bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }
    fn addr(&mut self) -> Option<Ipv6Addr> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Some(Ipv6Addr::from(a))
    }
}

impl Message {
    /// Decodes and strictly validates one datagram.
    pub fn parse(buf: &[u8]) -> Result<Message, DecodeError> {
        parse_message(buf, 0)
    }

    /// The message type byte.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Client(m) => m.msg_type,
            Message::Relay(r) => r.msg_type,
        }
    }

    /// Encodes the message.
    pub fn emit(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.emit_into(&mut out)?;
        Ok(out)
    }

    /// Encodes the message, appending to `out`.
    pub fn emit_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Message::Client(m) => {
                out.push(m.msg_type);
                out.extend_from_slice(&m.xid);
                emit_options(&m.options, out)
            }
            Message::Relay(r) => {
                out.push(r.msg_type);
                out.push(r.hop_count);
                out.extend_from_slice(&r.link_address.octets());
                out.extend_from_slice(&r.peer_address.octets());
                emit_options(&r.options, out)
            }
        }
    }
}

impl ClientMessage {
    /// The first option with `code`, if any.
    pub fn option(&self, c: u16) -> Option<&DhcpOption> {
        self.options.iter().find(|o| o.code() == c)
    }
}

impl RelayMessage {
    /// The encapsulated message.
    pub fn relay_msg(&self) -> Option<&Message> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::RelayMsg(m) => Some(m.as_ref()),
            _ => None,
        })
    }
    /// The Interface-Id option's data, if present.
    pub fn interface_id(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::InterfaceId(d) => Some(d.as_slice()),
            _ => None,
        })
    }
}

fn parse_message(buf: &[u8], depth: usize) -> Result<Message, DecodeError> {
    let Some(&ty) = buf.first() else {
        return Err(DecodeError::ShortHeader { len: 0, need: 4 });
    };
    if ty == msg::RELAY_FORW || ty == msg::RELAY_REPL {
        if depth >= MAX_RELAY_DEPTH {
            return Err(DecodeError::RelayTooDeep);
        }
        if buf.len() < 34 {
            return Err(DecodeError::ShortHeader {
                len: buf.len(),
                need: 34,
            });
        }
        let mut r = Reader { buf };
        let msg_type = r.u8().unwrap_or(ty);
        let hop_count = r.u8().unwrap_or(0);
        let link_address = r.addr().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let peer_address = r.addr().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let options = parse_options(r.buf, depth + 1)?;
        if !options.iter().any(|o| matches!(o, DhcpOption::RelayMsg(_))) {
            return Err(DecodeError::MissingRelayMsg);
        }
        Ok(Message::Relay(RelayMessage {
            msg_type,
            hop_count,
            link_address,
            peer_address,
            options,
        }))
    } else {
        if buf.len() < 4 {
            return Err(DecodeError::ShortHeader {
                len: buf.len(),
                need: 4,
            });
        }
        let options = parse_options(&buf[4..], depth + 1)?;
        Ok(Message::Client(ClientMessage {
            msg_type: ty,
            xid: [buf[1], buf[2], buf[3]],
            options,
        }))
    }
}

/// Parses an option area that must be consumed exactly, checking singletons and IAIDs.
fn parse_options(buf: &[u8], depth: usize) -> Result<Vec<DhcpOption>, DecodeError> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    let mut seen_single = [false; SINGLETONS.len()];
    while !r.buf.is_empty() {
        let remaining = r.buf.len();
        let (Some(c), Some(len)) = (r.u16(), r.u16()) else {
            return Err(DecodeError::TruncatedHeader { remaining });
        };
        let len = usize::from(len);
        let Some(data) = r.take(len) else {
            return Err(DecodeError::Overrun {
                code: c,
                len,
                remaining: r.buf.len(),
            });
        };
        if let Some(i) = SINGLETONS.iter().position(|&s| s == c) {
            if seen_single[i] {
                return Err(DecodeError::Duplicate { code: c });
            }
            seen_single[i] = true;
        }
        let opt = parse_option(c, data, depth)?;
        if let Some(iaid) = opt.iaid()
            && out
                .iter()
                .any(|o: &DhcpOption| o.code() == c && o.iaid() == Some(iaid))
        {
            return Err(DecodeError::DuplicateIaid { code: c, iaid });
        }
        out.push(opt);
    }
    Ok(out)
}

fn exact(c: u16, data: &[u8], n: usize) -> Result<(), DecodeError> {
    if data.len() != n {
        return Err(DecodeError::BadLength {
            code: c,
            len: data.len(),
            expected: n,
        });
    }
    Ok(())
}

fn at_least(c: u16, data: &[u8], n: usize) -> Result<(), DecodeError> {
    if data.len() < n {
        return Err(DecodeError::TooShort {
            code: c,
            len: data.len(),
            min: n,
        });
    }
    Ok(())
}

fn duid(c: u16, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    at_least(c, data, 3)?;
    if data.len() > 130 {
        return Err(DecodeError::TooLong {
            code: c,
            len: data.len(),
            max: 130,
        });
    }
    Ok(data.to_vec())
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn parse_option(c: u16, data: &[u8], depth: usize) -> Result<DhcpOption, DecodeError> {
    let mut r = Reader { buf: data };
    let short = || DecodeError::TooShort {
        code: c,
        len: data.len(),
        min: 0,
    };
    Ok(match c {
        code::CLIENTID => DhcpOption::ClientId(duid(c, data)?),
        code::SERVERID => DhcpOption::ServerId(duid(c, data)?),
        code::IA_NA | code::IA_PD => {
            at_least(c, data, 12)?;
            let ia = Ia {
                iaid: be32(&data[0..4]),
                t1: be32(&data[4..8]),
                t2: be32(&data[8..12]),
                options: parse_options(&data[12..], depth)?,
            };
            if c == code::IA_NA {
                DhcpOption::IaNa(ia)
            } else {
                DhcpOption::IaPd(ia)
            }
        }
        code::IA_TA => {
            at_least(c, data, 4)?;
            DhcpOption::IaTa {
                iaid: be32(&data[0..4]),
                options: parse_options(&data[4..], depth)?,
            }
        }
        code::IAADDR => {
            at_least(c, data, 24)?;
            let addr = r.addr().ok_or_else(short)?;
            let preferred = r.u32().ok_or_else(short)?;
            let valid = r.u32().ok_or_else(short)?;
            DhcpOption::IaAddr(IaAddr {
                addr,
                preferred,
                valid,
                options: parse_options(r.buf, depth)?,
            })
        }
        code::IAPREFIX => {
            at_least(c, data, 25)?;
            let preferred = r.u32().ok_or_else(short)?;
            let valid = r.u32().ok_or_else(short)?;
            let prefix_len = r.u8().ok_or_else(short)?;
            if prefix_len > 128 {
                return Err(DecodeError::BadPrefixLen(prefix_len));
            }
            let prefix = r.addr().ok_or_else(short)?;
            DhcpOption::IaPrefix(IaPrefix {
                preferred,
                valid,
                prefix_len,
                prefix,
                options: parse_options(r.buf, depth)?,
            })
        }
        code::ORO => {
            if !data.len().is_multiple_of(2) {
                return Err(DecodeError::NotMultiple {
                    code: c,
                    len: data.len(),
                    unit: 2,
                });
            }
            DhcpOption::Oro(
                data.chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                    .collect(),
            )
        }
        code::PREFERENCE => {
            exact(c, data, 1)?;
            DhcpOption::Preference(data[0])
        }
        code::ELAPSED_TIME => {
            exact(c, data, 2)?;
            DhcpOption::ElapsedTime(u16::from_be_bytes([data[0], data[1]]))
        }
        code::RELAY_MSG => DhcpOption::RelayMsg(Box::new(parse_message(data, depth)?)),
        code::AUTH => {
            at_least(c, data, 11)?;
            let protocol = r.u8().ok_or_else(short)?;
            let algorithm = r.u8().ok_or_else(short)?;
            let rdm = r.u8().ok_or_else(short)?;
            let replay = r.u64().ok_or_else(short)?;
            DhcpOption::Auth(Auth {
                protocol,
                algorithm,
                rdm,
                replay,
                info: r.buf.to_vec(),
            })
        }
        code::UNICAST => {
            exact(c, data, 16)?;
            DhcpOption::Unicast(r.addr().ok_or_else(short)?)
        }
        code::STATUS_CODE => {
            at_least(c, data, 2)?;
            let status = u16::from_be_bytes([data[0], data[1]]);
            let message = std::str::from_utf8(&data[2..])
                .map_err(|_| DecodeError::BadUtf8)?
                .to_owned();
            DhcpOption::StatusCode { status, message }
        }
        code::RAPID_COMMIT => {
            exact(c, data, 0)?;
            DhcpOption::RapidCommit
        }
        code::RECONF_ACCEPT => {
            exact(c, data, 0)?;
            DhcpOption::ReconfAccept
        }
        code::USER_CLASS => DhcpOption::UserClass(parse_items(c, data)?),
        code::VENDOR_CLASS => {
            at_least(c, data, 4)?;
            DhcpOption::VendorClass {
                enterprise: be32(data),
                data: parse_items(c, &data[4..])?,
            }
        }
        code::VENDOR_OPTS => {
            at_least(c, data, 4)?;
            let mut r = Reader { buf: &data[4..] };
            let mut options = Vec::new();
            while !r.buf.is_empty() {
                let (Some(sc), Some(sl)) = (r.u16(), r.u16()) else {
                    return Err(DecodeError::BadItem {
                        code: c,
                        why: "truncated sub-option header",
                    });
                };
                let Some(sd) = r.take(usize::from(sl)) else {
                    return Err(DecodeError::BadItem {
                        code: c,
                        why: "sub-option overruns the option",
                    });
                };
                options.push((sc, sd.to_vec()));
            }
            DhcpOption::VendorOpts {
                enterprise: be32(data),
                options,
            }
        }
        code::INTERFACE_ID => {
            at_least(c, data, 1)?;
            DhcpOption::InterfaceId(data.to_vec())
        }
        code::RECONF_MSG => {
            exact(c, data, 1)?;
            DhcpOption::ReconfMsg(data[0])
        }
        code::INFORMATION_REFRESH_TIME => {
            exact(c, data, 4)?;
            DhcpOption::InformationRefreshTime(be32(data))
        }
        code::SOL_MAX_RT => {
            exact(c, data, 4)?;
            DhcpOption::SolMaxRt(be32(data))
        }
        code::INF_MAX_RT => {
            exact(c, data, 4)?;
            DhcpOption::InfMaxRt(be32(data))
        }
        code::NTP_SERVER => {
            let mut r = Reader { buf: data };
            let mut subs = Vec::new();
            if data.is_empty() {
                return Err(DecodeError::TooShort {
                    code: c,
                    len: 0,
                    min: 4,
                });
            }
            while !r.buf.is_empty() {
                let (Some(sc), Some(sl)) = (r.u16(), r.u16()) else {
                    return Err(DecodeError::BadItem {
                        code: c,
                        why: "truncated sub-option header",
                    });
                };
                let Some(sd) = r.take(usize::from(sl)) else {
                    return Err(DecodeError::BadItem {
                        code: c,
                        why: "sub-option overruns the option",
                    });
                };
                let addr16 = |sd: &[u8]| -> Result<Ipv6Addr, DecodeError> {
                    let a: [u8; 16] = sd.try_into().map_err(|_| DecodeError::BadItem {
                        code: c,
                        why: "address sub-option is not 16 bytes",
                    })?;
                    Ok(Ipv6Addr::from(a))
                };
                subs.push(match sc {
                    1 => NtpSuboption::Address(addr16(sd)?),
                    2 => NtpSuboption::Multicast(addr16(sd)?),
                    3 => {
                        let names = parse_names(c, sd)?;
                        match <[String; 1]>::try_from(names) {
                            Ok([n]) => NtpSuboption::Fqdn(n),
                            Err(_) => {
                                return Err(DecodeError::BadItem {
                                    code: c,
                                    why: "FQDN sub-option must hold one name",
                                });
                            }
                        }
                    }
                    _ => {
                        return Err(DecodeError::BadItem {
                            code: c,
                            why: "unknown sub-option",
                        });
                    }
                });
            }
            DhcpOption::NtpServer(subs)
        }
        c if is_address_list(c) => {
            if data.is_empty() || !data.len().is_multiple_of(16) {
                return Err(DecodeError::NotMultiple {
                    code: c,
                    len: data.len(),
                    unit: 16,
                });
            }
            let addrs = data
                .chunks_exact(16)
                .map(|b| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    Ipv6Addr::from(a)
                })
                .collect();
            DhcpOption::Addresses { code: c, addrs }
        }
        c if is_name_list(c) => DhcpOption::Names {
            code: c,
            names: parse_names(c, data)?,
        },
        _ => DhcpOption::Unknown {
            code: c,
            data: data.to_vec(),
        },
    })
}

/// Parses `{len:u16, data}` items (User Class, Vendor Class; RFC 8415 §21.15).
fn parse_items(c: u16, data: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut r = Reader { buf: data };
    let mut items = Vec::new();
    while !r.buf.is_empty() {
        let Some(len) = r.u16() else {
            return Err(DecodeError::BadItem {
                code: c,
                why: "truncated item length",
            });
        };
        let Some(d) = r.take(usize::from(len)) else {
            return Err(DecodeError::BadItem {
                code: c,
                why: "item overruns the option",
            });
        };
        items.push(d.to_vec());
    }
    Ok(items)
}

/// True if `b` may appear in a label of a name we represent as dotted text.
fn label_byte_ok(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'.' && b != b'\\'
}

/// Parses a list of uncompressed, fully qualified DNS names (RFC 8415 §10).
fn parse_names(c: u16, data: &[u8]) -> Result<Vec<String>, DecodeError> {
    let bad = |why| DecodeError::BadName { code: c, why };
    if data.is_empty() {
        return Err(bad("empty list"));
    }
    let mut names = Vec::new();
    let mut i = 0usize;
    while i < data.len() {
        let start = i;
        let mut name = String::new();
        loop {
            let Some(&len) = data.get(i) else {
                return Err(bad("name not terminated by a zero-length label"));
            };
            i += 1;
            if len == 0 {
                break;
            }
            if len > 63 {
                return Err(bad("label longer than 63 bytes or compressed"));
            }
            let Some(label) = data.get(i..i + usize::from(len)) else {
                return Err(bad("label runs past the end"));
            };
            if !label.iter().all(|&b| label_byte_ok(b)) {
                return Err(bad("label holds a byte that is not printable ASCII"));
            }
            if !name.is_empty() {
                name.push('.');
            }
            name.extend(label.iter().map(|&b| char::from(b)));
            i += usize::from(len);
        }
        if i - start > 255 {
            return Err(bad("name longer than 255 bytes"));
        }
        names.push(name);
    }
    Ok(names)
}

/// Encodes a dotted name (no trailing dot; "" is the root) as an uncompressed wire name.
pub fn encode_name(c: u16, name: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let name = name.strip_suffix('.').unwrap_or(name);
    if !name.is_empty() {
        for label in name.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l));
            let Some(len) = len else {
                return Err(EncodeError::Invalid {
                    code: c,
                    why: "label empty or longer than 63 bytes",
                });
            };
            if !label.bytes().all(label_byte_ok) {
                return Err(EncodeError::Invalid {
                    code: c,
                    why: "label holds a byte that is not printable ASCII",
                });
            }
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        return Err(EncodeError::Invalid {
            code: c,
            why: "name longer than 255 bytes",
        });
    }
    Ok(())
}

impl DhcpOption {
    /// The option code.
    pub fn code(&self) -> u16 {
        match self {
            DhcpOption::ClientId(_) => code::CLIENTID,
            DhcpOption::ServerId(_) => code::SERVERID,
            DhcpOption::IaNa(_) => code::IA_NA,
            DhcpOption::IaTa { .. } => code::IA_TA,
            DhcpOption::IaAddr(_) => code::IAADDR,
            DhcpOption::Oro(_) => code::ORO,
            DhcpOption::Preference(_) => code::PREFERENCE,
            DhcpOption::ElapsedTime(_) => code::ELAPSED_TIME,
            DhcpOption::RelayMsg(_) => code::RELAY_MSG,
            DhcpOption::Auth(_) => code::AUTH,
            DhcpOption::Unicast(_) => code::UNICAST,
            DhcpOption::StatusCode { .. } => code::STATUS_CODE,
            DhcpOption::RapidCommit => code::RAPID_COMMIT,
            DhcpOption::UserClass(_) => code::USER_CLASS,
            DhcpOption::VendorClass { .. } => code::VENDOR_CLASS,
            DhcpOption::VendorOpts { .. } => code::VENDOR_OPTS,
            DhcpOption::InterfaceId(_) => code::INTERFACE_ID,
            DhcpOption::ReconfMsg(_) => code::RECONF_MSG,
            DhcpOption::ReconfAccept => code::RECONF_ACCEPT,
            DhcpOption::Addresses { code, .. } => *code,
            DhcpOption::Names { code, .. } => *code,
            DhcpOption::IaPd(_) => code::IA_PD,
            DhcpOption::IaPrefix(_) => code::IAPREFIX,
            DhcpOption::InformationRefreshTime(_) => code::INFORMATION_REFRESH_TIME,
            DhcpOption::NtpServer(_) => code::NTP_SERVER,
            DhcpOption::SolMaxRt(_) => code::SOL_MAX_RT,
            DhcpOption::InfMaxRt(_) => code::INF_MAX_RT,
            DhcpOption::Unknown { code, .. } => *code,
        }
    }

    /// The IAID of an IA option (3, 4, 25).
    pub fn iaid(&self) -> Option<u32> {
        match self {
            DhcpOption::IaNa(ia) | DhcpOption::IaPd(ia) => Some(ia.iaid),
            DhcpOption::IaTa { iaid, .. } => Some(*iaid),
            _ => None,
        }
    }

    /// Encodes the option (header and body), appending to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let c = self.code();
        let hdr = out.len();
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        let body = out.len();
        match self {
            DhcpOption::ClientId(d) | DhcpOption::ServerId(d) | DhcpOption::InterfaceId(d) => {
                out.extend_from_slice(d)
            }
            DhcpOption::IaNa(ia) | DhcpOption::IaPd(ia) => {
                out.extend_from_slice(&ia.iaid.to_be_bytes());
                out.extend_from_slice(&ia.t1.to_be_bytes());
                out.extend_from_slice(&ia.t2.to_be_bytes());
                emit_options(&ia.options, out)?;
            }
            DhcpOption::IaTa { iaid, options } => {
                out.extend_from_slice(&iaid.to_be_bytes());
                emit_options(options, out)?;
            }
            DhcpOption::IaAddr(a) => {
                out.extend_from_slice(&a.addr.octets());
                out.extend_from_slice(&a.preferred.to_be_bytes());
                out.extend_from_slice(&a.valid.to_be_bytes());
                emit_options(&a.options, out)?;
            }
            DhcpOption::Oro(codes) => {
                for c in codes {
                    out.extend_from_slice(&c.to_be_bytes());
                }
            }
            DhcpOption::Preference(v) | DhcpOption::ReconfMsg(v) => out.push(*v),
            DhcpOption::ElapsedTime(v) => out.extend_from_slice(&v.to_be_bytes()),
            DhcpOption::RelayMsg(m) => m.emit_into(out)?,
            DhcpOption::Auth(a) => {
                out.extend_from_slice(&[a.protocol, a.algorithm, a.rdm]);
                out.extend_from_slice(&a.replay.to_be_bytes());
                out.extend_from_slice(&a.info);
            }
            DhcpOption::Unicast(a) => out.extend_from_slice(&a.octets()),
            DhcpOption::StatusCode { status, message } => {
                out.extend_from_slice(&status.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
            DhcpOption::RapidCommit | DhcpOption::ReconfAccept => {}
            DhcpOption::UserClass(items) => emit_items(c, items, out)?,
            DhcpOption::VendorClass { enterprise, data } => {
                out.extend_from_slice(&enterprise.to_be_bytes());
                emit_items(c, data, out)?;
            }
            DhcpOption::VendorOpts {
                enterprise,
                options,
            } => {
                out.extend_from_slice(&enterprise.to_be_bytes());
                for (sc, sd) in options {
                    out.extend_from_slice(&sc.to_be_bytes());
                    out.extend_from_slice(&len16(c, sd.len())?.to_be_bytes());
                    out.extend_from_slice(sd);
                }
            }
            DhcpOption::Addresses { addrs, .. } => {
                for a in addrs {
                    out.extend_from_slice(&a.octets());
                }
            }
            DhcpOption::Names { names, .. } => {
                for n in names {
                    encode_name(c, n, out)?;
                }
            }
            DhcpOption::IaPrefix(p) => {
                out.extend_from_slice(&p.preferred.to_be_bytes());
                out.extend_from_slice(&p.valid.to_be_bytes());
                out.push(p.prefix_len);
                out.extend_from_slice(&p.prefix.octets());
                emit_options(&p.options, out)?;
            }
            DhcpOption::InformationRefreshTime(v)
            | DhcpOption::SolMaxRt(v)
            | DhcpOption::InfMaxRt(v) => out.extend_from_slice(&v.to_be_bytes()),
            DhcpOption::NtpServer(subs) => {
                for s in subs {
                    let (sc, start) = match s {
                        NtpSuboption::Address(_) => (1u16, out.len()),
                        NtpSuboption::Multicast(_) => (2, out.len()),
                        NtpSuboption::Fqdn(_) => (3, out.len()),
                    };
                    out.extend_from_slice(&sc.to_be_bytes());
                    out.extend_from_slice(&[0, 0]);
                    match s {
                        NtpSuboption::Address(a) | NtpSuboption::Multicast(a) => {
                            out.extend_from_slice(&a.octets())
                        }
                        NtpSuboption::Fqdn(n) => encode_name(c, n, out)?,
                    }
                    let l = len16(c, out.len() - start - 4)?;
                    out[start + 2..start + 4].copy_from_slice(&l.to_be_bytes());
                }
            }
            DhcpOption::Unknown { data, .. } => out.extend_from_slice(data),
        }
        let l = len16(c, out.len() - body)?;
        out[hdr + 2..hdr + 4].copy_from_slice(&l.to_be_bytes());
        Ok(())
    }
}

fn len16(c: u16, len: usize) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::OptionTooLong { code: c, len })
}

fn emit_items(c: u16, items: &[Vec<u8>], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    for it in items {
        out.extend_from_slice(&len16(c, it.len())?.to_be_bytes());
        out.extend_from_slice(it);
    }
    Ok(())
}

/// Encodes a list of options in order, appending to `out`.
pub fn emit_options(opts: &[DhcpOption], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    for o in opts {
        o.emit(out)?;
    }
    Ok(())
}

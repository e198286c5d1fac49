//! TIC (Tunnel Information and Control, TCP 3874, spec §4): line framing, reply codes,
//! `tunnel list` lines and the `tunnel show` key/value block, plus the sans-IO server
//! ([`server::Session`]) and client ([`client::Login`]) state machines.
//!
//! Lines handed to and returned from this module carry no line terminator; the IO layer
//! appends `\n` when sending and uses [`LineFramer`] when receiving.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

pub mod client;
pub mod server;

/// IANA TCP port of TIC.
pub const PORT: u16 = 3874;
/// Longest accepted line, in bytes, without its terminator.
pub const MAX_LINE_LEN: usize = 1000;
/// Every reply block must stay below this many bytes (AICCU's receive buffer).
pub const MAX_BLOCK_LEN: usize = 1000;

/// TIC errors (framing, parsing and login outcomes).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TicError {
    /// A line longer than [`MAX_LINE_LEN`] bytes without a newline.
    #[error("line longer than {max} bytes without a newline")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A line that is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    /// A reply line without a 3-digit code.
    #[error("malformed reply line: {0:?}")]
    BadReply(String),
    /// A malformed `tunnel list` line.
    #[error("malformed tunnel list line: {0:?}")]
    BadListLine(String),
    /// A required `tunnel show` key is missing.
    #[error("tunnel information lacks required key {0:?}")]
    MissingKey(&'static str),
    /// A `tunnel show` value is malformed or out of range.
    #[error("bad value for {key:?}: {value:?}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The offending value.
        value: String,
    },
    /// A reply block would reach [`MAX_BLOCK_LEN`] bytes.
    #[error("reply block of {0} bytes is too large for AICCU")]
    BlockTooLarge(usize),
    /// The server's clock differs from ours by more than 120 s.
    #[error("clock is off by {secs} seconds")]
    ClockOff {
        /// Absolute difference in seconds.
        secs: u32,
    },
    /// `starttls` was refused and `requiretls` is set.
    #[error("TIC server does not support TLS and TLS is required")]
    TlsRequired,
    /// The username or the MD5 response was refused.
    #[error("TIC login failed: {0}")]
    AuthFailed(String),
    /// `tunnel show` was refused.
    #[error("no such tunnel: {0}")]
    NoSuchTunnel(String),
    /// `tunnel list` was empty.
    #[error("no tunnels available")]
    NoTunnels,
    /// Several tunnels exist and no `tunnel_id` was configured.
    #[error("{0} tunnels available; configure tunnel_id to select one")]
    MustSelectTunnel(usize),
    /// UserState or AdminState is not `enabled`.
    #[error("tunnel is not enabled (user state {user_state:?}, admin state {admin_state:?})")]
    TunnelDisabled {
        /// UserState.
        user_state: String,
        /// AdminState.
        admin_state: String,
    },
    /// Any other protocol violation (unexpected reply, error code, closed dialogue).
    #[error("TIC protocol error: {0}")]
    Protocol(String),
}

/// Incremental line splitter with a length cap: push received bytes, pop complete lines.
/// Accepts `\n` and `\r\n`. Memory is bounded by `MAX_LINE_LEN` plus one pushed chunk, and
/// each byte is scanned a constant number of times.
#[derive(Debug, Default, Clone)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    start: usize,
    /// Bytes from `start` known to contain no newline.
    scanned: usize,
    /// Bytes after the last newline in `buf` (the unterminated tail).
    tail: usize,
    failed: bool,
}

impl LineFramer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes. Returns [`TicError::LineTooLong`] as soon as the unterminated
    /// tail exceeds the cap (the caller should then close the connection); the framer then
    /// stays failed.
    pub fn push(&mut self, data: &[u8]) -> Result<(), TicError> {
        if self.failed {
            return Err(TicError::LineTooLong { max: MAX_LINE_LEN });
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.tail = match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => data.len() - i - 1,
            None => self.tail + data.len(),
        };
        self.buf.extend_from_slice(data);
        if self.tail > MAX_LINE_LEN + 1 {
            self.failed = true;
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
            self.tail = 0;
            return Err(TicError::LineTooLong { max: MAX_LINE_LEN });
        }
        Ok(())
    }

    /// The next complete line without its terminator, if any.
    pub fn next_line(&mut self) -> Option<Result<String, TicError>> {
        let from = self.start + self.scanned;
        let Some(rel) = self.buf.get(from..)?.iter().position(|&b| b == b'\n') else {
            self.scanned = self.buf.len() - self.start;
            return None;
        };
        let end = from + rel;
        let mut line = &self.buf[self.start..end];
        self.start = end + 1;
        self.scanned = 0;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.len() > MAX_LINE_LEN {
            return Some(Err(TicError::LineTooLong { max: MAX_LINE_LEN }));
        }
        Some(String::from_utf8(line.to_vec()).map_err(|_| TicError::InvalidUtf8))
    }

    /// Bytes buffered but not yet returned.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// A single reply line: 3-digit code and text (from offset 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The numeric code, 100..=999.
    pub code: u16,
    /// The text after `<code> `, possibly empty.
    pub text: String,
}

impl Reply {
    /// Parses `NNN text` or `NNN`.
    pub fn parse(line: &str) -> Result<Reply, TicError> {
        let bad = || TicError::BadReply(line.chars().take(80).collect());
        let b = line.as_bytes();
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || b[0] == b'0' {
            return Err(bad());
        }
        let text = match b.get(3) {
            None => "",
            Some(b' ') => &line[4..],
            Some(_) => return Err(bad()),
        };
        let code = line[..3].parse().map_err(|_| bad())?;
        Ok(Reply {
            code,
            text: text.to_string(),
        })
    }

    /// True for 2xx (AICCU checks only the first digit).
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// The IPv4 Endpoint field: `ayiya`, `heartbeat`, or a static address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv4Endpoint {
    /// AYIYA tunnel (the endpoint is learned).
    Ayiya,
    /// Heartbeat tunnel (the endpoint is learned).
    Heartbeat,
    /// Static 6in4 endpoint.
    Static(Ipv4Addr),
}

impl std::str::FromStr for Ipv4Endpoint {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ayiya" => Ok(Ipv4Endpoint::Ayiya),
            "heartbeat" => Ok(Ipv4Endpoint::Heartbeat),
            _ => s.parse().map(Ipv4Endpoint::Static).map_err(|_| ()),
        }
    }
}

impl fmt::Display for Ipv4Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ipv4Endpoint::Ayiya => f.write_str("ayiya"),
            Ipv4Endpoint::Heartbeat => f.write_str("heartbeat"),
            Ipv4Endpoint::Static(a) => write!(f, "{a}"),
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// One `tunnel list` line: `<TunnelId> <IPv6 Endpoint> <IPv4 Endpoint> <POP name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TunnelListEntry {
    /// Tunnel id, e.g. `T12345`.
    pub id: String,
    /// Client inner address.
    pub ipv6_endpoint: Ipv6Addr,
    /// `ayiya`, `heartbeat` or a dotted quad.
    pub ipv4_endpoint: Ipv4Endpoint,
    /// PoP name.
    pub pop_name: String,
}

impl TunnelListEntry {
    /// Parses exactly four fields separated by single spaces (AICCU rejects anything else).
    pub fn parse(line: &str) -> Result<TunnelListEntry, TicError> {
        let bad = || TicError::BadListLine(line.chars().take(120).collect());
        let f: Vec<&str> = line.split(' ').collect();
        let [id, v6, v4, pop] = f.as_slice() else {
            return Err(bad());
        };
        if !is_token(id) || !is_token(pop) {
            return Err(bad());
        }
        Ok(TunnelListEntry {
            id: id.to_string(),
            ipv6_endpoint: v6.parse().map_err(|_| bad())?,
            ipv4_endpoint: v4.parse().map_err(|_| bad())?,
            pop_name: pop.to_string(),
        })
    }

    /// Formats the line; errors if the id or PoP name is empty or contains whitespace.
    pub fn format(&self) -> Result<String, TicError> {
        let line = format!(
            "{} {} {} {}",
            self.id, self.ipv6_endpoint, self.ipv4_endpoint, self.pop_name
        );
        if !is_token(&self.id) || !is_token(&self.pop_name) {
            return Err(TicError::BadListLine(line));
        }
        Ok(line)
    }
}

/// Tunnel type (`Type:` key), lower case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    /// `ayiya`.
    Ayiya,
    /// `6in4-heartbeat`.
    Heartbeat,
    /// `6in4-static`.
    Static,
    /// `l2tp`.
    L2tp,
}

impl TunnelType {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            TunnelType::Ayiya => "ayiya",
            TunnelType::Heartbeat => "6in4-heartbeat",
            TunnelType::Static => "6in4-static",
            TunnelType::L2tp => "l2tp",
        }
    }
    fn parse(s: &str) -> Option<TunnelType> {
        [
            TunnelType::Ayiya,
            TunnelType::Heartbeat,
            TunnelType::Static,
            TunnelType::L2tp,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Everything `tunnel show` carries (§4.6).
///
/// Required keys when parsing: `Type`, `IPv6 Endpoint`, `IPv6 POP`, `IPv4 POP`, `UserState`,
/// `AdminState` (AICCU crashes without them). Others default like AICCU: empty strings, and 0
/// for integers. Integers are parsed strictly (AICCU uses `atoi`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TunnelInfo {
    /// `TunnelId`, e.g. `T12345`.
    pub id: String,
    /// `Type`.
    pub tunnel_type: TunnelType,
    /// `IPv6 Endpoint`: the client's address and AYIYA identity.
    pub ipv6_endpoint: Ipv6Addr,
    /// `IPv6 POP`: the PoP's address, AYIYA identity and default-route next hop.
    pub ipv6_pop: Ipv6Addr,
    /// `IPv6 PrefixLength`.
    pub prefix_len: u8,
    /// `POP Id`.
    pub pop_id: String,
    /// `IPv4 Endpoint`: `ayiya`, `heartbeat` or a dotted quad (kept as text).
    pub ipv4_endpoint: String,
    /// `IPv4 POP`: AYIYA / heartbeat destination.
    pub ipv4_pop: Ipv4Addr,
    /// `UserState` (`enabled` to run).
    pub user_state: String,
    /// `AdminState` (`enabled` to run).
    pub admin_state: String,
    /// `Password`: the per-tunnel secret (AYIYA SHA-1 key, heartbeat MD5).
    pub password: String,
    /// `Heartbeat_Interval` in seconds (must be > 0 to run).
    pub heartbeat_interval: u32,
    /// `Tunnel MTU` (1280..=1480 to run).
    pub mtu: u16,
    /// `Tunnel Name` (free text).
    pub name: String,
    /// `Routed Prefixes`: the subnets routed to the client (a v6home key; AICCU's parser
    /// ignores it, and no AICCU title is a prefix of it). Empty when not sent.
    pub routed: Vec<(Ipv6Addr, u8)>,
}

/// The v6home extension key listing the routed subnets, space-separated `addr/len`.
pub const ROUTED_KEY: &str = "Routed Prefixes";

fn parse_routed(value: &str) -> Result<Vec<(Ipv6Addr, u8)>, TicError> {
    value
        .split_whitespace()
        .map(|item| {
            let (a, l) = item.split_once('/').ok_or_else(|| bad(ROUTED_KEY, item))?;
            let addr: Ipv6Addr = a.parse().map_err(|_| bad(ROUTED_KEY, item))?;
            let len: u8 = l
                .parse()
                .ok()
                .filter(|l| *l <= 128)
                .ok_or_else(|| bad(ROUTED_KEY, item))?;
            Ok((addr, len))
        })
        .collect()
}

/// The keys in the order the formatter writes them. None is a prefix of another.
const KEYS: [&str; 14] = [
    "TunnelId",
    "Type",
    "IPv6 Endpoint",
    "IPv6 POP",
    "IPv6 PrefixLength",
    "POP Id",
    "IPv4 Endpoint",
    "IPv4 POP",
    "UserState",
    "AdminState",
    "Password",
    "Heartbeat_Interval",
    "Tunnel MTU",
    "Tunnel Name",
];

fn bad(key: &'static str, value: &str) -> TicError {
    TicError::BadValue {
        key,
        value: value.chars().take(80).collect(),
    }
}

impl TunnelInfo {
    /// True when both UserState and AdminState are `enabled`.
    pub fn is_enabled(&self) -> bool {
        self.user_state == "enabled" && self.admin_state == "enabled"
    }

    /// The `tunnel list` line for this tunnel.
    pub fn list_entry(&self) -> Result<TunnelListEntry, TicError> {
        Ok(TunnelListEntry {
            id: self.id.clone(),
            ipv6_endpoint: self.ipv6_endpoint,
            ipv4_endpoint: self
                .ipv4_endpoint
                .parse()
                .map_err(|_| bad("IPv4 Endpoint", &self.ipv4_endpoint))?,
            pop_name: self.pop_id.clone(),
        })
    }

    /// Checks the values a client needs to bring the tunnel up: MTU 1280..=1480, interval > 0,
    /// prefix length ≤ 128, non-empty whitespace-free password for AYIYA and heartbeat.
    pub fn validate(&self) -> Result<(), TicError> {
        if !(1280..=1480).contains(&self.mtu) {
            return Err(bad("Tunnel MTU", &self.mtu.to_string()));
        }
        if self.heartbeat_interval == 0 {
            return Err(bad("Heartbeat_Interval", "0"));
        }
        if self.prefix_len > 128 {
            return Err(bad("IPv6 PrefixLength", &self.prefix_len.to_string()));
        }
        if matches!(self.tunnel_type, TunnelType::Ayiya | TunnelType::Heartbeat)
            && !is_token(&self.password)
        {
            return Err(bad("Password", "<empty or with whitespace>"));
        }
        Ok(())
    }

    /// Parses the data lines of a `tunnel show` block (without the 201/202 lines) with AICCU's
    /// rules: trailing CR/LF/tab/space trimmed, split at the first `": "`, case-sensitive prefix
    /// match of the title against the key, unknown keys ignored, last occurrence wins.
    pub fn parse_lines<'a, I: IntoIterator<Item = &'a str>>(
        lines: I,
    ) -> Result<TunnelInfo, TicError> {
        let mut vals: [Option<&'a str>; 14] = [None; 14];
        let mut routed = None;
        for raw in lines {
            let line = raw.trim_end_matches(['\r', '\n', '\t', ' ']);
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            if let Some(i) = KEYS.iter().position(|t| key.starts_with(t)) {
                vals[i] = Some(value);
            } else if key == ROUTED_KEY {
                routed = Some(value);
            }
        }
        let req = |i: usize| vals[i].ok_or(TicError::MissingKey(KEYS[i]));
        let opt = |i: usize| vals[i].unwrap_or("");
        fn num<T: std::str::FromStr + Default>(
            key: &'static str,
            v: Option<&str>,
        ) -> Result<T, TicError> {
            match v {
                None => Ok(T::default()),
                Some(s) => s.trim().parse().map_err(|_| bad(key, s)),
            }
        }
        let ty = req(1)?;
        Ok(TunnelInfo {
            id: opt(0).to_string(),
            tunnel_type: TunnelType::parse(ty).ok_or_else(|| bad("Type", ty))?,
            ipv6_endpoint: req(2)?.parse().map_err(|_| bad("IPv6 Endpoint", opt(2)))?,
            ipv6_pop: req(3)?.parse().map_err(|_| bad("IPv6 POP", opt(3)))?,
            prefix_len: num("IPv6 PrefixLength", vals[4])?,
            pop_id: opt(5).to_string(),
            ipv4_endpoint: opt(6).to_string(),
            ipv4_pop: req(7)?.parse().map_err(|_| bad("IPv4 POP", opt(7)))?,
            user_state: req(8)?.to_string(),
            admin_state: req(9)?.to_string(),
            password: opt(10).to_string(),
            heartbeat_interval: num("Heartbeat_Interval", vals[11])?,
            mtu: num("Tunnel MTU", vals[12])?,
            name: opt(13).to_string(),
            routed: routed.map(parse_routed).transpose()?.unwrap_or_default(),
        })
    }

    /// Formats the data lines (every key of §4.6, spelled exactly, `Heartbeat_Interval`
    /// always). Errors if a value would break AICCU's parser (line breaks, a text value with
    /// leading/trailing whitespace, an empty required text), if [`TunnelInfo::validate`] fails,
    /// or if the whole block with a 40-byte 201/202 pair would reach [`MAX_BLOCK_LEN`].
    pub fn format_lines(&self) -> Result<Vec<String>, TicError> {
        self.validate()?;
        let texts: [(&'static str, &str, bool); 7] = [
            ("TunnelId", &self.id, true),
            ("POP Id", &self.pop_id, true),
            ("IPv4 Endpoint", &self.ipv4_endpoint, true),
            ("UserState", &self.user_state, true),
            ("AdminState", &self.admin_state, true),
            ("Password", &self.password, false),
            ("Tunnel Name", &self.name, false),
        ];
        for (key, v, required) in texts {
            let broken = v.contains(['\r', '\n', '\0']) || v.trim() != v;
            if broken || (required && v.is_empty()) {
                return Err(bad(key, v));
            }
        }
        let values: [String; 14] = [
            self.id.clone(),
            self.tunnel_type.as_str().to_string(),
            self.ipv6_endpoint.to_string(),
            self.ipv6_pop.to_string(),
            self.prefix_len.to_string(),
            self.pop_id.clone(),
            self.ipv4_endpoint.clone(),
            self.ipv4_pop.to_string(),
            self.user_state.clone(),
            self.admin_state.clone(),
            self.password.clone(),
            self.heartbeat_interval.to_string(),
            self.mtu.to_string(),
            self.name.clone(),
        ];
        let mut lines: Vec<String> = KEYS
            .iter()
            .zip(values)
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if !self.routed.is_empty() {
            let list: Vec<String> = self
                .routed
                .iter()
                .map(|(a, l)| format!("{a}/{l}"))
                .collect();
            lines.push(format!("{ROUTED_KEY}: {}", list.join(" ")));
        }
        let size: usize = lines.iter().map(|l| l.len() + 1).sum::<usize>() + 80;
        if size >= MAX_BLOCK_LEN {
            return Err(TicError::BlockTooLarge(size));
        }
        Ok(lines)
    }
}

/// Lowercase `md5hex(challenge ‖ md5hex(password))` for `authenticate md5` (§4.3), given the
/// already hashed `md5hex(password)`.
pub fn md5_response(challenge: &str, password_md5hex: &str) -> String {
    let mut s = String::with_capacity(challenge.len() + password_md5hex.len());
    s.push_str(challenge);
    s.push_str(password_md5hex);
    crate::md5_hex(s.as_bytes())
}

#[cfg(test)]
mod tests;

//! The heartbeat datagram of `6in4-heartbeat` tunnels (UDP 3740, spec §5).
//!
//! `HEARTBEAT TUNNEL <IPv6 Endpoint> <sender|ipv4> <unixtime> <md5hex>` with no newline, where
//! `md5hex = md5hex("HEARTBEAT TUNNEL <IPv6 Endpoint> <sender|ipv4> <unixtime> <password>")`.
//!
//! Receive order (as sixxsd): [`Heartbeat::parse`] (length, trim, prefix, fields), then the
//! caller's tunnel lookup by [`Heartbeat::endpoint`], then [`Heartbeat::verify`] (sender, clock,
//! MD5).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use subtle::ConstantTimeEq;
use thiserror::Error;

/// UDP port of the heartbeat protocol.
pub const PORT: u16 = 3740;
/// Datagrams of this length or longer are rejected.
pub const MAX_LEN: usize = 256;
const PREFIX: &str = "HEARTBEAT TUNNEL ";

/// Heartbeat parse and verification errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeartbeatError {
    /// 256 bytes or more.
    #[error("heartbeat datagram too long ({0} bytes)")]
    TooLong(usize),
    /// Not ASCII/UTF-8 or not starting with `HEARTBEAT TUNNEL `.
    #[error("not a heartbeat datagram")]
    BadPrefix,
    /// Wrong number of fields or a malformed field.
    #[error("malformed heartbeat field: {0}")]
    BadField(&'static str),
    /// The second field is an address other than the UDP source.
    #[error("sender field {field} does not match source {source_addr}")]
    SenderMismatch {
        /// The address in the datagram.
        field: Ipv4Addr,
        /// The UDP source address.
        source_addr: IpAddr,
    },
    /// More than 120 s off.
    #[error("time is {0} seconds off")]
    ClockSkew(u32),
    /// MD5 mismatch.
    #[error("incorrect heartbeat hash")]
    BadHash,
}

/// The second field of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// The literal `sender` (AICCU always sends this): the UDP source is the endpoint.
    Sender,
    /// An explicit IPv4 address, which must equal the UDP source.
    Ipv4(Ipv4Addr),
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::Sender => f.write_str("sender"),
            Sender::Ipv4(a) => write!(f, "{a}"),
        }
    }
}

/// A parsed (or built) heartbeat datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    endpoint_text: String,
    endpoint: Ipv6Addr,
    sender: Sender,
    time: u64,
    digest: [u8; 16],
}

fn compute_digest(endpoint_text: &str, sender: Sender, time: u64, password: &[u8]) -> [u8; 16] {
    use md5::Digest;
    let mut h = md5::Md5::new();
    h.update(format!("{PREFIX}{endpoint_text} {sender} {time} ").as_bytes());
    h.update(password);
    let mut d = [0u8; 16];
    d.copy_from_slice(&h.finalize());
    d
}

impl Heartbeat {
    /// Builds a signed heartbeat as AICCU does (`sender` is normally [`Sender::Sender`]).
    pub fn new_signed(endpoint: Ipv6Addr, sender: Sender, time: u64, password: &[u8]) -> Heartbeat {
        let endpoint_text = endpoint.to_string();
        let digest = compute_digest(&endpoint_text, sender, time, password);
        Heartbeat {
            endpoint_text,
            endpoint,
            sender,
            time,
            digest,
        }
    }

    /// Parses a received datagram: length < 256, trailing CR/LF trimmed, prefix, then exactly
    /// four single-space-separated fields with a decimal time and 32 lowercase hex digits.
    pub fn parse(datagram: &[u8]) -> Result<Heartbeat, HeartbeatError> {
        if datagram.len() >= MAX_LEN {
            return Err(HeartbeatError::TooLong(datagram.len()));
        }
        let text = std::str::from_utf8(datagram).map_err(|_| HeartbeatError::BadPrefix)?;
        let text = text.trim_end_matches(['\r', '\n']);
        let rest = text.strip_prefix(PREFIX).ok_or(HeartbeatError::BadPrefix)?;
        let mut it = rest.split(' ');
        let (Some(ep), Some(snd), Some(tm), Some(md), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err(HeartbeatError::BadField("field count"));
        };
        let endpoint: Ipv6Addr = ep
            .parse()
            .map_err(|_| HeartbeatError::BadField("endpoint"))?;
        let sender = if snd == "sender" {
            Sender::Sender
        } else {
            Sender::Ipv4(
                snd.parse()
                    .map_err(|_| HeartbeatError::BadField("sender"))?,
            )
        };
        if tm.is_empty() || !tm.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HeartbeatError::BadField("time"));
        }
        let time: u64 = tm.parse().map_err(|_| HeartbeatError::BadField("time"))?;
        if md.len() != 32 || !md.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(HeartbeatError::BadField("hash"));
        }
        let mut digest = [0u8; 16];
        hex::decode_to_slice(md, &mut digest).map_err(|_| HeartbeatError::BadField("hash"))?;
        Ok(Heartbeat {
            endpoint_text: ep.to_string(),
            endpoint,
            sender,
            time,
            digest,
        })
    }

    /// The tunnel's IPv6 endpoint (the lookup key).
    pub fn endpoint(&self) -> Ipv6Addr {
        self.endpoint
    }
    /// The second field.
    pub fn sender(&self) -> Sender {
        self.sender
    }
    /// The sender's Unix time.
    pub fn time(&self) -> u64 {
        self.time
    }
    /// The MD5 digest carried in the datagram.
    pub fn digest(&self) -> [u8; 16] {
        self.digest
    }

    /// Checks, after the tunnel lookup, in sixxsd's order: an explicit sender must equal
    /// `source`; `|now − time| ≤ 120`; MD5 over the fields (time re-printed) and `password`.
    pub fn verify(
        &self,
        now_unix: u64,
        source: IpAddr,
        password: &[u8],
    ) -> Result<(), HeartbeatError> {
        match self.sender {
            Sender::Ipv4(a) if IpAddr::V4(a) != source => {
                return Err(HeartbeatError::SenderMismatch {
                    field: a,
                    source_addr: source,
                });
            }
            _ => {}
        }
        let diff = now_unix.abs_diff(self.time);
        if diff > u64::from(crate::MAX_CLOCK_OFF) {
            return Err(HeartbeatError::ClockSkew(
                u32::try_from(diff).unwrap_or(u32::MAX),
            ));
        }
        let want = compute_digest(&self.endpoint_text, self.sender, self.time, password);
        if bool::from(want.ct_eq(&self.digest)) {
            Ok(())
        } else {
            Err(HeartbeatError::BadHash)
        }
    }
}

impl fmt::Display for Heartbeat {
    /// The exact datagram text (no newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{} {} {} {}",
            self.endpoint_text,
            self.sender,
            self.time,
            hex::encode(self.digest)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PW: &[u8] = b"0123456789abcdef0123456789abcdef";
    const EP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 2);
    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

    #[test]
    fn v10_4_vectors() {
        let a =
            "HEARTBEAT TUNNEL 2001:db8:2ff:1::2 sender 1795727759 0fe8f6be2d00296f85140342662b9999";
        let b =
            "HEARTBEAT TUNNEL 2001:db8:2ff:1::2 sender 1795727764 c622f7a719d568d94bba8c64f9b0351c";
        assert_eq!(a.len(), 85);
        assert_eq!(
            Heartbeat::new_signed(EP, Sender::Sender, 1795727759, PW).to_string(),
            a
        );
        assert_eq!(
            Heartbeat::new_signed(EP, Sender::Sender, 1795727764, PW).to_string(),
            b
        );
        assert_eq!(
            crate::md5_hex(b"HEARTBEAT TUNNEL 2001:db8:2ff:1::2 sender 1795727759 0123456789abcdef0123456789abcdef"),
            "0fe8f6be2d00296f85140342662b9999"
        );
        let hb = Heartbeat::parse(a.as_bytes()).unwrap();
        assert_eq!(hb.endpoint(), EP);
        assert_eq!(hb.time(), 1795727759);
        hb.verify(1795727759 + 120, SRC, PW).unwrap();
        // Trailing CRLF is trimmed.
        Heartbeat::parse(format!("{b}\r\n").as_bytes())
            .unwrap()
            .verify(1795727764, SRC, PW)
            .unwrap();
    }

    #[test]
    fn check_order_and_failures() {
        let hb = Heartbeat::new_signed(EP, Sender::Sender, 1000, PW);
        assert_eq!(
            hb.verify(1121, SRC, PW),
            Err(HeartbeatError::ClockSkew(121))
        );
        assert_eq!(hb.verify(1000, SRC, b"wrong"), Err(HeartbeatError::BadHash));
        let other = Ipv4Addr::new(198, 51, 100, 7);
        let hb = Heartbeat::new_signed(EP, Sender::Ipv4(other), 1000, PW);
        hb.verify(1000, IpAddr::V4(other), PW).unwrap();
        // Sender mismatch is reported before the clock.
        assert!(matches!(
            hb.verify(5000, SRC, PW),
            Err(HeartbeatError::SenderMismatch { .. })
        ));
    }

    #[test]
    fn parse_rejects_malformed() {
        let good = Heartbeat::new_signed(EP, Sender::Sender, 1795727759, PW).to_string();
        assert_eq!(
            Heartbeat::parse(&[b'A'; 256]),
            Err(HeartbeatError::TooLong(256))
        );
        assert_eq!(
            Heartbeat::parse(b"HEARTBEAT tunnel x"),
            Err(HeartbeatError::BadPrefix)
        );
        assert_eq!(
            Heartbeat::parse(b"\xff\xfe"),
            Err(HeartbeatError::BadPrefix)
        );
        let upper = good.replace("0fe8f6be", "0FE8F6BE");
        assert_eq!(
            Heartbeat::parse(upper.as_bytes()),
            Err(HeartbeatError::BadField("hash"))
        );
        let dbl = good.replace(" sender", "  sender");
        assert!(Heartbeat::parse(dbl.as_bytes()).is_err());
        let extra = format!("{good} x");
        assert_eq!(
            Heartbeat::parse(extra.as_bytes()),
            Err(HeartbeatError::BadField("field count"))
        );
        let neg = good.replace("1795727759", "-1");
        assert_eq!(
            Heartbeat::parse(neg.as_bytes()),
            Err(HeartbeatError::BadField("time"))
        );
        let ep = good.replace("2001:db8:2ff:1::2", "192.0.2.1");
        assert_eq!(
            Heartbeat::parse(ep.as_bytes()),
            Err(HeartbeatError::BadField("endpoint"))
        );
    }

    #[test]
    fn non_canonical_endpoint_text_is_hashed_as_sent() {
        let text_ep = "2001:0db8:02ff:0001::2";
        let msg = format!("HEARTBEAT TUNNEL {text_ep} sender 77 ");
        let mut full = msg.clone().into_bytes();
        full.extend_from_slice(PW);
        let dgram = format!("{msg}{}", crate::md5_hex(&full));
        let hb = Heartbeat::parse(dgram.as_bytes()).unwrap();
        assert_eq!(hb.endpoint(), EP);
        hb.verify(77, SRC, PW).unwrap();
        assert_eq!(hb.to_string(), dgram);
    }

    proptest! {
        #[test]
        fn roundtrip(ep in any::<[u8; 16]>(), v4 in proptest::option::of(any::<[u8; 4]>()), t in any::<u64>(), pw in "[ -~]{0,40}") {
            let sender = v4.map_or(Sender::Sender, |a| Sender::Ipv4(Ipv4Addr::from(a)));
            let hb = Heartbeat::new_signed(Ipv6Addr::from(ep), sender, t, pw.as_bytes());
            let text = hb.to_string();
            let back = Heartbeat::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&back, &hb);
            let src = match sender { Sender::Ipv4(a) => IpAddr::V4(a), Sender::Sender => SRC };
            prop_assert!(back.verify(t, src, pw.as_bytes()).is_ok());
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(hb) = Heartbeat::parse(&data) {
                let _ = hb.verify(0, SRC, PW);
            }
        }
    }
}

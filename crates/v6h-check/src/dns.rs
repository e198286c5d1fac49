//! A minimal DNS codec for AAAA look-ups (RFC 1035, RFC 3596): build a query, read the
//! answers. Sans-IO and strict: every length is checked and compression loops are bounded.

use std::net::Ipv6Addr;

/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
/// Compression pointers followed at most per name.
const MAX_POINTERS: usize = 16;

/// Why a DNS message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name cannot be encoded.
    #[error("invalid DNS name {0:?}")]
    BadName(String),
    /// The message ends early.
    #[error("DNS message truncated at byte {0}")]
    Truncated(usize),
    /// A compression pointer loops or points forward.
    #[error("bad compression pointer at byte {0}")]
    BadPointer(usize),
    /// The answer is not for our query.
    #[error("DNS answer does not match the query (id or question)")]
    Mismatch,
    /// The server answered with an error code.
    #[error("DNS server answered {0}")]
    Rcode(Rcode),
    /// The answer was truncated (TC bit); UDP is all the check does.
    #[error("DNS answer truncated (TC bit set)")]
    TruncatedAnswer,
}

/// A DNS response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rcode(pub u8);

impl std::fmt::Display for Rcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            _ => return write!(f, "RCODE {}", self.0),
        };
        f.write_str(name)
    }
}

/// Builds a recursive query for `name`/`qtype` with id `id`.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT=1
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(DnsError::BadName(name.to_string()));
    }
    for label in trimmed.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))
            .ok_or_else(|| DnsError::BadName(name.to_string()))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Reads the name at `pos`; returns it (lower-case, dotted) and the position after it.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated(pos))?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((name, end.unwrap_or(pos + 1)));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len as usize)
                    .ok_or(DnsError::Truncated(pos))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
                if name.len() > 255 {
                    return Err(DnsError::BadPointer(pos));
                }
                pos += 1 + len as usize;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated(pos))?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                jumps += 1;
                if jumps > MAX_POINTERS || target >= pos {
                    return Err(DnsError::BadPointer(pos));
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(DnsError::BadPointer(pos)),
        }
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(DnsError::Truncated(pos))
}

/// Reads the AAAA answers to query `id` for `name`, following CNAMEs inside the answer.
pub fn parse_aaaa_response(msg: &[u8], id: u16, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Truncated(msg.len()));
    }
    let flags = u16_at(msg, 2)?;
    if u16_at(msg, 0)? != id || flags & 0x8000 == 0 {
        return Err(DnsError::Mismatch);
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::TruncatedAnswer);
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != 0 {
        return Err(DnsError::Rcode(Rcode(rcode)));
    }
    let qdcount = u16_at(msg, 4)?;
    let ancount = u16_at(msg, 6)?;
    let want = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let mut pos = HEADER_LEN;
    for _ in 0..qdcount {
        let (qname, after) = read_name(msg, pos)?;
        if qname != want {
            return Err(DnsError::Mismatch);
        }
        pos = after + 4;
    }
    let mut owner = want;
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        let (rname, after) = read_name(msg, pos)?;
        let rtype = u16_at(msg, after)?;
        let rdlen = usize::from(u16_at(msg, after + 8)?);
        let rdata_at = after + 10;
        let rdata = msg
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Truncated(rdata_at))?;
        if rname == owner {
            match rtype {
                TYPE_AAAA if rdlen == 16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(rdata);
                    addrs.push(Ipv6Addr::from(a));
                }
                TYPE_CNAME => owner = read_name(msg, rdata_at)?.0,
                _ => {}
            }
        }
        pos = rdata_at + rdlen;
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answer(id: u16, name: &str, addrs: &[Ipv6Addr], rcode: u8) -> Vec<u8> {
        let mut m = build_query(id, name, TYPE_AAAA).unwrap();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[7] = addrs.len() as u8;
        for a in addrs {
            m.extend_from_slice(&[0xc0, 12]); // pointer to the question name
            m.extend_from_slice(&TYPE_AAAA.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 16]);
            m.extend_from_slice(&a.octets());
        }
        m
    }

    #[test]
    fn query_golden_bytes() {
        let q = build_query(0x1234, "www.v6home.test", TYPE_AAAA).unwrap();
        let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03www\x06v6home\x04test\x00\x00\x1c\x00\x01");
        assert_eq!(q, want);
    }

    #[test]
    fn reads_aaaa_answers_with_compression() {
        let a: Ipv6Addr = "2001:db8:ffff::80".parse().unwrap();
        let m = answer(7, "www.v6home.test", &[a], 0);
        assert_eq!(
            parse_aaaa_response(&m, 7, "WWW.v6home.test.").unwrap(),
            vec![a]
        );
    }

    #[test]
    fn errors_are_reported() {
        let m = answer(7, "x.test", &[], 3);
        assert_eq!(
            parse_aaaa_response(&m, 7, "x.test"),
            Err(DnsError::Rcode(Rcode(3)))
        );
        assert_eq!(Rcode(3).to_string(), "NXDOMAIN");
        let m = answer(7, "x.test", &[], 0);
        assert_eq!(
            parse_aaaa_response(&m, 8, "x.test"),
            Err(DnsError::Mismatch)
        );
        assert_eq!(
            parse_aaaa_response(&m, 7, "y.test"),
            Err(DnsError::Mismatch)
        );
        assert!(build_query(1, "a..b", TYPE_AAAA).is_err());
        assert!(build_query(1, &"a".repeat(64), TYPE_AAAA).is_err());
    }

    #[test]
    fn pointer_loops_are_refused() {
        let mut m = answer(7, "x.test", &[], 0);
        m[7] = 1;
        m.extend_from_slice(&[0xc0, 30]); // points at itself
        m.extend_from_slice(&[0; 10]);
        assert!(parse_aaaa_response(&m, 7, "x.test").is_err());
    }

    proptest! {
        #[test]
        fn answers_round_trip(addrs in proptest::collection::vec(any::<[u8; 16]>(), 0..5),
                              name in "[a-z]{1,10}(\\.[a-z0-9]{1,10}){0,3}", id: u16) {
            let addrs: Vec<Ipv6Addr> = addrs.into_iter().map(Ipv6Addr::from).collect();
            let m = answer(id, &name, &addrs, 0);
            prop_assert_eq!(parse_aaaa_response(&m, id, &name).unwrap(), addrs);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_aaaa_response(&bytes, 0, "x");
        }
    }
}

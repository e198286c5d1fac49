//! The few DHCPv6 bytes the generator needs (RFC 8415): it builds Solicit and Request
//! directly into a buffer and scans server replies without allocating.
//!
//! [`scan`] is a zero-copy view over a received datagram: it checks every option header
//! against the datagram length and records where the options the generator cares about are,
//! so an Advertise's Server Identifier and IA options can be copied verbatim into the Request.

use std::ops::Range;

use thiserror::Error;

/// Message type: Solicit.
pub const SOLICIT: u8 = 1;
/// Message type: Advertise.
pub const ADVERTISE: u8 = 2;
/// Message type: Request.
pub const REQUEST: u8 = 3;
/// Message type: Reply.
pub const REPLY: u8 = 7;

/// Option code: Client Identifier.
pub const OPT_CLIENTID: u16 = 1;
/// Option code: Server Identifier.
pub const OPT_SERVERID: u16 = 2;
/// Option code: IA_NA.
pub const OPT_IA_NA: u16 = 3;
/// Option code: IA Address.
pub const OPT_IAADDR: u16 = 5;
/// Option code: Option Request.
pub const OPT_ORO: u16 = 6;
/// Option code: Elapsed Time.
pub const OPT_ELAPSED_TIME: u16 = 8;
/// Option code: Status Code.
pub const OPT_STATUS_CODE: u16 = 13;
/// Option code: DNS Recursive Name Server.
pub const OPT_DNS_SERVERS: u16 = 23;
/// Option code: IA_PD.
pub const OPT_IA_PD: u16 = 25;
/// Option code: IA Prefix.
pub const OPT_IAPREFIX: u16 = 26;

/// IAID the generator uses for its IA_NA.
pub const IAID_NA: u32 = 1;
/// IAID the generator uses for its IA_PD.
pub const IAID_PD: u32 = 2;

/// Which IAs each client asks for (perfdhcp `-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IA_NA only.
    AddressOnly,
    /// IA_PD only.
    PrefixOnly,
    /// IA_NA and IA_PD.
    AddressAndPrefix,
}

impl Mode {
    /// Whether an IA_NA is requested.
    pub fn wants_na(self) -> bool {
        matches!(self, Mode::AddressOnly | Mode::AddressAndPrefix)
    }
    /// Whether an IA_PD is requested.
    pub fn wants_pd(self) -> bool {
        matches!(self, Mode::PrefixOnly | Mode::AddressAndPrefix)
    }
}

/// Why a received datagram could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// Shorter than the 4-byte message header.
    #[error("datagram of {0} bytes is shorter than the DHCPv6 header")]
    Short(usize),
    /// An option header or body runs past the end of the datagram.
    #[error("option at offset {0} runs past the end of the datagram")]
    Truncated(usize),
}

/// Where the interesting options of a server message are (byte ranges of whole options,
/// header included, within the scanned datagram). Only the first of each kind is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Message type.
    pub msg_type: u8,
    /// Transaction id as a 24-bit number.
    pub xid: u32,
    /// Client Identifier option.
    pub client_id: Option<Range<usize>>,
    /// Server Identifier option.
    pub server_id: Option<Range<usize>>,
    /// IA_NA option.
    pub ia_na: Option<Range<usize>>,
    /// IA_PD option.
    pub ia_pd: Option<Range<usize>>,
    /// Message-level Status Code value, if present and well formed.
    pub status: Option<u16>,
}

/// Walks the options in `buf[start..]`, calling `f(code, whole_option_range)` for each.
fn walk(buf: &[u8], start: usize, mut f: impl FnMut(u16, Range<usize>)) -> Result<(), ScanError> {
    let mut at = start;
    while at < buf.len() {
        let hdr = buf.get(at..at + 4).ok_or(ScanError::Truncated(at))?;
        let code = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        let end = at + 4 + len;
        if end > buf.len() {
            return Err(ScanError::Truncated(at));
        }
        f(code, at..end);
        at = end;
    }
    Ok(())
}

/// Scans a server message. Relay messages are not expected on a direct link and scan as
/// their type with no options of interest.
pub fn scan(buf: &[u8]) -> Result<Scan, ScanError> {
    let hdr = buf.get(..4).ok_or(ScanError::Short(buf.len()))?;
    let mut s = Scan {
        msg_type: hdr[0],
        xid: u32::from_be_bytes([0, hdr[1], hdr[2], hdr[3]]),
        client_id: None,
        server_id: None,
        ia_na: None,
        ia_pd: None,
        status: None,
    };
    if s.msg_type == 12 || s.msg_type == 13 {
        return Ok(s);
    }
    walk(buf, 4, |code, r| match code {
        OPT_CLIENTID if s.client_id.is_none() => s.client_id = Some(r),
        OPT_SERVERID if s.server_id.is_none() => s.server_id = Some(r),
        OPT_IA_NA if s.ia_na.is_none() => s.ia_na = Some(r),
        OPT_IA_PD if s.ia_pd.is_none() => s.ia_pd = Some(r),
        OPT_STATUS_CODE if s.status.is_none() => s.status = status_value(buf, &r),
        _ => {}
    })?;
    Ok(s)
}

/// The status value of a Status Code option at `r` (None if its body is shorter than 2).
fn status_value(buf: &[u8], r: &Range<usize>) -> Option<u16> {
    let b = buf.get(r.start + 4..r.start + 6)?;
    if r.end < r.start + 6 {
        return None;
    }
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Whether the IA option (IA_NA or IA_PD, header included) grants something: it has no
/// non-Success Status Code and at least one IA Address / IA Prefix with a non-zero valid
/// lifetime and no non-Success Status Code of its own. Malformed IAs are not granted.
pub fn ia_granted(opt: &[u8]) -> bool {
    let Some(code) = opt.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return false;
    };
    let (lease_code, min_len, valid_at) = match code {
        OPT_IA_NA => (OPT_IAADDR, 24, 20),
        OPT_IA_PD => (OPT_IAPREFIX, 25, 4),
        _ => return false,
    };
    // Header (4) + IAID, T1, T2 (12).
    if opt.len() < 16 {
        return false;
    }
    let mut refused = false;
    let mut leases = 0usize;
    let ok = walk(opt, 16, |c, r| {
        let Some(body) = opt.get(r.start + 4..r.end) else {
            refused = true;
            return;
        };
        if c == OPT_STATUS_CODE {
            if body.len() < 2 || body[..2] != [0, 0] {
                refused = true;
            }
        } else if c == lease_code {
            if body.len() < min_len {
                refused = true;
                return;
            }
            let valid = body
                .get(valid_at..valid_at + 4)
                .map_or(0, |v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
            let mut sub_ok = true;
            let subs = walk(body, min_len, |sc, sr| {
                let success =
                    sr.end >= sr.start + 6 && body.get(sr.start + 4..sr.start + 6) == Some(&[0, 0]);
                if sc == OPT_STATUS_CODE && !success {
                    sub_ok = false;
                }
            });
            if valid > 0 && sub_ok && subs.is_ok() {
                leases += 1;
            }
        }
    });
    ok.is_ok() && !refused && leases > 0
}

/// Appends an option header with `code` and a body of `len` bytes (the body follows).
fn put_hdr(out: &mut Vec<u8>, code: u16, len: u16) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

/// Appends an empty IA (IAID, T1 = T2 = 0, no sub-options) with option `code`.
fn put_empty_ia(out: &mut Vec<u8>, code: u16, iaid: u32) {
    put_hdr(out, code, 12);
    out.extend_from_slice(&iaid.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
}

/// Appends the header, Client Identifier, Elapsed Time and ORO shared by both messages.
fn put_common(out: &mut Vec<u8>, msg_type: u8, xid: u32, duid: &[u8], elapsed_cs: u16) {
    let x = xid.to_be_bytes();
    out.extend_from_slice(&[msg_type, x[1], x[2], x[3]]);
    // DUIDs built by this crate are at most 20 bytes.
    let dlen = u16::try_from(duid.len()).unwrap_or(u16::MAX);
    put_hdr(out, OPT_CLIENTID, dlen);
    out.extend_from_slice(duid.get(..usize::from(dlen)).unwrap_or(duid));
    put_hdr(out, OPT_ELAPSED_TIME, 2);
    out.extend_from_slice(&elapsed_cs.to_be_bytes());
    put_hdr(out, OPT_ORO, 2);
    out.extend_from_slice(&OPT_DNS_SERVERS.to_be_bytes());
}

/// Appends a Solicit: Client Identifier, Elapsed Time 0, ORO (DNS servers) and the empty
/// IA_NA and/or IA_PD of `mode`.
pub fn build_solicit(out: &mut Vec<u8>, xid: u32, duid: &[u8], mode: Mode) {
    put_common(out, SOLICIT, xid, duid, 0);
    if mode.wants_na() {
        put_empty_ia(out, OPT_IA_NA, IAID_NA);
    }
    if mode.wants_pd() {
        put_empty_ia(out, OPT_IA_PD, IAID_PD);
    }
}

/// Appends a Request answering the Advertise `adv` (scanned as `s`): Client Identifier,
/// the Advertise's Server Identifier, Elapsed Time, ORO, and per requested IA the
/// Advertise's IA copied verbatim (an empty IA when the Advertise lacks it).
/// Returns `false` (and appends nothing) when the Advertise has no Server Identifier.
pub fn build_request(
    out: &mut Vec<u8>,
    xid: u32,
    duid: &[u8],
    mode: Mode,
    elapsed_cs: u16,
    adv: &[u8],
    s: &Scan,
) -> bool {
    let Some(sid) = s.server_id.clone().and_then(|r| adv.get(r)) else {
        return false;
    };
    put_common(out, REQUEST, xid, duid, elapsed_cs);
    out.extend_from_slice(sid);
    for (wanted, code, iaid, range) in [
        (mode.wants_na(), OPT_IA_NA, IAID_NA, &s.ia_na),
        (mode.wants_pd(), OPT_IA_PD, IAID_PD, &s.ia_pd),
    ] {
        if !wanted {
            continue;
        }
        match range.clone().and_then(|r| adv.get(r)) {
            Some(ia) => out.extend_from_slice(ia),
            None => put_empty_ia(out, code, iaid),
        }
    }
    true
}

/// DUID kind of the simulated clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuidKind {
    /// DUID-LLT (type 1): Ethernet, a time field, and the client's MAC.
    Llt {
        /// The time field (seconds since 2000-01-01), shared by all clients of a run.
        time: u32,
    },
    /// DUID-LL (type 3): Ethernet and the client's MAC.
    Ll,
}

/// The MAC of client number `n`: locally administered unicast `02:` then the low 40 bits
/// of `n`.
pub fn client_mac(n: u64) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// Writes client `n`'s DUID into `out` (cleared first).
pub fn client_duid(out: &mut Vec<u8>, kind: DuidKind, n: u64) {
    out.clear();
    match kind {
        DuidKind::Llt { time } => {
            out.extend_from_slice(&[0, 1, 0, 1]);
            out.extend_from_slice(&time.to_be_bytes());
        }
        DuidKind::Ll => out.extend_from_slice(&[0, 3, 0, 1]),
    }
    out.extend_from_slice(&client_mac(n));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;
    use v6h_dhcp6::wire::{self as dw, DhcpOption, Ia, IaAddr, IaPrefix, Message};

    fn client(m: &Message) -> &dw::ClientMessage {
        match m {
            Message::Client(c) => c,
            Message::Relay(_) => panic!("relay message"),
        }
    }

    fn empty_ia(iaid: u32) -> Ia {
        Ia {
            iaid,
            t1: 0,
            t2: 0,
            options: vec![],
        }
    }

    fn emit_opt(o: &DhcpOption) -> Vec<u8> {
        let mut v = Vec::new();
        o.emit(&mut v).unwrap();
        v
    }

    fn na_with(addr_valid: u32, status: Option<u16>) -> DhcpOption {
        let mut options = vec![DhcpOption::IaAddr(IaAddr {
            addr: "2001:db8:1::1:5".parse().unwrap(),
            preferred: 3000,
            valid: addr_valid,
            options: vec![],
        })];
        if let Some(s) = status {
            options.push(DhcpOption::StatusCode {
                status: s,
                message: "x".into(),
            });
        }
        DhcpOption::IaNa(Ia {
            iaid: IAID_NA,
            t1: 1000,
            t2: 2000,
            options,
        })
    }

    fn pd_with(valid: u32) -> DhcpOption {
        DhcpOption::IaPd(Ia {
            iaid: IAID_PD,
            t1: 1000,
            t2: 2000,
            options: vec![DhcpOption::IaPrefix(IaPrefix {
                preferred: 3000,
                valid,
                prefix_len: 56,
                prefix: "2001:db8:8000:100::".parse().unwrap(),
                options: vec![],
            })],
        })
    }

    /// Golden bytes: a Solicit for IA_NA from a DUID-LL client, laid out per RFC 8415
    /// §8 (header) and §21.2/21.9/21.7/21.4 (Client Identifier, Elapsed Time, ORO, IA_NA).
    #[test]
    fn solicit_golden_bytes() {
        let mut duid = Vec::new();
        client_duid(&mut duid, DuidKind::Ll, 0x01_0203_0405);
        let mut out = Vec::new();
        build_solicit(&mut out, 0x00ab_cdef, &duid, Mode::AddressOnly);
        let expected: Vec<u8> = vec![
            1, 0xab, 0xcd, 0xef, // Solicit, xid
            0, 1, 0, 10, 0, 3, 0, 1, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, // Client Identifier
            0, 8, 0, 2, 0, 0, // Elapsed Time 0
            0, 6, 0, 2, 0, 23, // ORO: DNS servers
            0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // IA_NA iaid 1, T1 = T2 = 0
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn duids_match_the_server_codec() {
        let mac = client_mac(77);
        let mut d = Vec::new();
        client_duid(&mut d, DuidKind::Llt { time: 1234 }, 77);
        assert_eq!(
            d,
            v6h_dhcp6::duid::llt_ethernet(mac, 1234 + v6h_dhcp6::duid::DUID_EPOCH_UNIX)
        );
        client_duid(&mut d, DuidKind::Ll, 77);
        assert_eq!(d, v6h_dhcp6::duid::ll_ethernet(mac));
        // Different clients, different DUIDs.
        let mut e = Vec::new();
        client_duid(&mut e, DuidKind::Ll, 78);
        assert_ne!(d, e);
    }

    #[test]
    fn request_copies_server_id_and_ias_and_parses_back() {
        let sid = vec![0, 3, 0, 1, 0xfa, 0x02, 0x80, 0x73, 0xd1, 0x01];
        let mut duid = Vec::new();
        client_duid(&mut duid, DuidKind::Llt { time: 9 }, 5);
        let adv = Message::Client(dw::ClientMessage {
            msg_type: dw::msg::ADVERTISE,
            xid: [1, 2, 3],
            options: vec![
                DhcpOption::ServerId(sid.clone()),
                DhcpOption::ClientId(duid.clone()),
                na_with(4000, None),
                pd_with(4000),
            ],
        })
        .emit()
        .unwrap();
        let s = scan(&adv).unwrap();
        assert_eq!((s.msg_type, s.xid), (ADVERTISE, 0x010203));
        let mut out = Vec::new();
        assert!(build_request(
            &mut out,
            0x0a0b0c,
            &duid,
            Mode::AddressAndPrefix,
            42,
            &adv,
            &s
        ));
        let m = Message::parse(&out).unwrap();
        let c = client(&m);
        assert_eq!(c.msg_type, dw::msg::REQUEST);
        assert_eq!(c.xid, [0x0a, 0x0b, 0x0c]);
        assert_eq!(
            c.option(dw::code::CLIENTID),
            Some(&DhcpOption::ClientId(duid))
        );
        assert_eq!(
            c.option(dw::code::SERVERID),
            Some(&DhcpOption::ServerId(sid))
        );
        assert_eq!(
            c.option(dw::code::ELAPSED_TIME),
            Some(&DhcpOption::ElapsedTime(42))
        );
        assert_eq!(c.option(dw::code::IA_NA), Some(&na_with(4000, None)));
        assert_eq!(c.option(dw::code::IA_PD), Some(&pd_with(4000)));

        // Only the IAs of the mode are copied; a missing one is asked for empty.
        let adv_na_only = Message::Client(dw::ClientMessage {
            msg_type: dw::msg::ADVERTISE,
            xid: [1, 2, 3],
            options: vec![DhcpOption::ServerId(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6])],
        })
        .emit()
        .unwrap();
        let s = scan(&adv_na_only).unwrap();
        out.clear();
        assert!(build_request(
            &mut out,
            7,
            &[0, 3, 0, 1, 1, 1, 1, 1, 1, 1],
            Mode::PrefixOnly,
            0,
            &adv_na_only,
            &s
        ));
        let m = Message::parse(&out).unwrap();
        let c = client(&m);
        assert_eq!(c.option(dw::code::IA_NA), None);
        assert_eq!(
            c.option(dw::code::IA_PD),
            Some(&DhcpOption::IaPd(empty_ia(IAID_PD)))
        );
    }

    #[test]
    fn request_needs_a_server_id() {
        let adv = [2, 0, 0, 1, 0, 23, 0, 0];
        let s = scan(&adv).unwrap();
        let mut out = vec![9];
        assert!(!build_request(
            &mut out,
            1,
            &[0, 3, 0, 1, 1, 2, 3, 4, 5, 6],
            Mode::AddressOnly,
            0,
            &adv,
            &s
        ));
        assert_eq!(out, vec![9]);
    }

    #[test]
    fn scan_rejects_short_and_truncated() {
        assert_eq!(scan(&[2, 0, 0]), Err(ScanError::Short(3)));
        assert_eq!(scan(&[2, 0, 0, 1, 0, 2, 0]), Err(ScanError::Truncated(4)));
        assert_eq!(
            scan(&[2, 0, 0, 1, 0, 2, 0, 5, 1, 2]),
            Err(ScanError::Truncated(4))
        );
        let ok = scan(&[7, 0, 0, 1, 0, 13, 0, 2, 0, 6]).unwrap();
        assert_eq!(ok.status, Some(6));
        // A status code with a short body has no value.
        assert_eq!(scan(&[7, 0, 0, 1, 0, 13, 0, 1, 0]).unwrap().status, None);
    }

    #[test]
    fn ia_granted_judges_leases() {
        assert!(ia_granted(&emit_opt(&na_with(4000, None))));
        assert!(ia_granted(&emit_opt(&na_with(4000, Some(0)))));
        assert!(!ia_granted(&emit_opt(&na_with(4000, Some(2)))));
        assert!(!ia_granted(&emit_opt(&na_with(0, None))));
        assert!(ia_granted(&emit_opt(&pd_with(4000))));
        assert!(!ia_granted(&emit_opt(&pd_with(0))));
        assert!(!ia_granted(&emit_opt(&DhcpOption::IaNa(empty_ia(1)))));
        assert!(!ia_granted(&emit_opt(&DhcpOption::IaPd(Ia {
            iaid: 2,
            t1: 0,
            t2: 0,
            options: vec![DhcpOption::StatusCode {
                status: 6,
                message: "NoPrefixAvail".into()
            }],
        }))));
        // A lease whose own status is not Success does not count.
        let refused_addr = DhcpOption::IaNa(Ia {
            iaid: 1,
            t1: 0,
            t2: 0,
            options: vec![DhcpOption::IaAddr(IaAddr {
                addr: Ipv6Addr::LOCALHOST,
                preferred: 1,
                valid: 1,
                options: vec![DhcpOption::StatusCode {
                    status: 4,
                    message: String::new(),
                }],
            })],
        });
        assert!(!ia_granted(&emit_opt(&refused_addr)));
        assert!(!ia_granted(&[]));
        assert!(!ia_granted(&[0, 3, 0, 0]));
        assert!(!ia_granted(&[
            0, 1, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0
        ]));
    }

    fn mode() -> impl Strategy<Value = Mode> {
        prop_oneof![
            Just(Mode::AddressOnly),
            Just(Mode::PrefixOnly),
            Just(Mode::AddressAndPrefix)
        ]
    }

    proptest! {
        #[test]
        fn solicit_round_trips(n in any::<u64>(), xid in 0u32..0x100_0000, m in mode(), llt in any::<bool>(), t in any::<u32>()) {
            let kind = if llt { DuidKind::Llt { time: t } } else { DuidKind::Ll };
            let mut duid = Vec::new();
            client_duid(&mut duid, kind, n);
            let mut out = Vec::new();
            build_solicit(&mut out, xid, &duid, m);
            let msg = Message::parse(&out).unwrap();
            let c = client(&msg);
            prop_assert_eq!(c.msg_type, dw::msg::SOLICIT);
            prop_assert_eq!(u32::from_be_bytes([0, c.xid[0], c.xid[1], c.xid[2]]), xid);
            prop_assert_eq!(c.option(dw::code::CLIENTID), Some(&DhcpOption::ClientId(duid)));
            prop_assert_eq!(c.option(dw::code::ELAPSED_TIME), Some(&DhcpOption::ElapsedTime(0)));
            prop_assert_eq!(c.option(dw::code::ORO), Some(&DhcpOption::Oro(vec![23])));
            prop_assert_eq!(c.option(dw::code::IA_NA).is_some(), m.wants_na());
            prop_assert_eq!(c.option(dw::code::IA_PD).is_some(), m.wants_pd());
            if m.wants_na() {
                prop_assert_eq!(c.option(dw::code::IA_NA), Some(&DhcpOption::IaNa(empty_ia(IAID_NA))));
            }
            if m.wants_pd() {
                prop_assert_eq!(c.option(dw::code::IA_PD), Some(&DhcpOption::IaPd(empty_ia(IAID_PD))));
            }
            // The scanner agrees with the codec.
            let s = scan(&out).unwrap();
            prop_assert_eq!(s.xid, xid);
            prop_assert_eq!(s.ia_na.is_some(), m.wants_na());
            prop_assert_eq!(s.ia_pd.is_some(), m.wants_pd());
        }

        #[test]
        fn scan_and_judge_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(s) = scan(&bytes) {
                for r in [s.client_id, s.server_id, s.ia_na, s.ia_pd].into_iter().flatten() {
                    let o = bytes.get(r).unwrap();
                    let _ = ia_granted(o);
                }
            }
            let _ = ia_granted(&bytes);
        }
    }
}

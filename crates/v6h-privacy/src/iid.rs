//! Interface identifiers: RFC 7217 stable opaque IIDs, RFC 8981 random IIDs and the reserved
//! IID list (RFC 5453, RFC 2526, RFC 6543).
//!
//! The stable IID is frozen as version `v1` (spec A4):
//! `RID = HMAC-SHA-256(secret, "v6home-rfc7217-v1" ‖ prefix[8] ‖ len‖Net_Iface ‖
//! len‖Network_ID ‖ DAD_Counter as u32 big-endian)`, with one-byte lengths, and the IID is the
//! last 8 bytes of the RID (its least-significant bits).

use sha2::{Digest, Sha256};
use std::net::Ipv6Addr;

/// Domain-separation label hashed in front of every stable IID input.
pub const STABLE_IID_LABEL: &[u8] = b"v6home-rfc7217-v1";

/// Errors while computing an interface identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IidError {
    /// Net_Iface or Network_ID does not fit in the one-byte length prefix.
    #[error("{what} is {len} bytes long; at most 255 bytes are allowed")]
    TooLong {
        /// Which input was too long.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The secret key is shorter than the 128 bits RFC 7217 §5 requires.
    #[error("the secret key is {0} bytes; RFC 7217 needs at least 16")]
    ShortSecret(usize),
}

/// True if `iid` is a reserved interface identifier that must never be used.
///
/// Reserved: the Subnet-Router anycast IID 0 (RFC 4291), `0200:5EFF:FE00:0000` to
/// `0200:5EFF:FEFF:FFFF` (RFC 5453, including Proxy Mobile IPv6 `…:5213`, RFC 6543) and the
/// subnet anycast range `FDFF:FFFF:FFFF:FF80` to `FFFF:FFFF:FFFF:FFFF` (RFC 2526).
pub fn is_reserved_iid(iid: u64) -> bool {
    iid == 0 || iid >> 24 == 0x02_00_5E_FF_FE || iid >= 0xFDFF_FFFF_FFFF_FF80
}

/// HMAC-SHA-256 (RFC 2104) of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        let d = Sha256::digest(key);
        k[..32].copy_from_slice(&d);
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in msg {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    let out = outer.finalize();
    let mut res = [0u8; 32];
    res.copy_from_slice(&out);
    res
}

/// The inputs of RFC 7217's function F that stay fixed for one interface on one network.
#[derive(Clone, PartialEq, Eq)]
pub struct StableIdentity {
    /// The secret key (at least 16 bytes; v6home makes 32).
    pub secret: Vec<u8>,
    /// Net_Iface: a stable identifier of the interface (permanent MAC, else its name).
    pub net_iface: Vec<u8>,
    /// Network_ID: empty, or e.g. the SSID.
    pub network_id: Vec<u8>,
}

impl std::fmt::Debug for StableIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("StableIdentity")
            .field("secret", &"<redacted>")
            .field("net_iface", &self.net_iface)
            .field("network_id", &self.network_id)
            .finish()
    }
}

impl StableIdentity {
    /// The RFC 7217 IID for `prefix` (its first 64 bits) and `dad_counter` (may be reserved:
    /// callers skip reserved results by incrementing the counter).
    pub fn iid(&self, prefix: &Ipv6Addr, dad_counter: u32) -> Result<u64, IidError> {
        if self.secret.len() < 16 {
            return Err(IidError::ShortSecret(self.secret.len()));
        }
        let ni = u8::try_from(self.net_iface.len()).map_err(|_| IidError::TooLong {
            what: "Net_Iface",
            len: self.net_iface.len(),
        })?;
        let nid = u8::try_from(self.network_id.len()).map_err(|_| IidError::TooLong {
            what: "Network_ID",
            len: self.network_id.len(),
        })?;
        let p = prefix.octets();
        let rid = hmac_sha256(
            &self.secret,
            &[
                STABLE_IID_LABEL,
                &p[..8],
                &[ni],
                &self.net_iface,
                &[nid],
                &self.network_id,
                &dad_counter.to_be_bytes(),
            ],
        );
        let mut last = [0u8; 8];
        last.copy_from_slice(&rid[24..]);
        Ok(u64::from_be_bytes(last))
    }
}

/// The first 64 bits of `addr` (the /64 prefix) as a fixed array.
pub fn prefix64(addr: &Ipv6Addr) -> [u8; 8] {
    let o = addr.octets();
    let mut p = [0u8; 8];
    p.copy_from_slice(&o[..8]);
    p
}

/// The /64 prefix `prefix` with interface identifier `iid`.
pub fn with_iid(prefix: &[u8; 8], iid: u64) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..8].copy_from_slice(prefix);
    o[8..].copy_from_slice(&iid.to_be_bytes());
    Ipv6Addr::from(o)
}

/// Draws a random, non-reserved IID from `rng` (RFC 8981 §3.3.1), also avoiding `in_use`.
///
/// Gives up (returns `None`) only after 64 draws in a row were all unusable, which with a
/// working RNG does not happen.
pub fn random_iid<R: rand::Rng + ?Sized>(rng: &mut R, in_use: &[u64]) -> Option<u64> {
    (0..64)
        .map(|_| rng.next_u64())
        .find(|iid| !is_reserved_iid(*iid) && !in_use.contains(iid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn ident() -> StableIdentity {
        StableIdentity {
            secret: (0u8..32).collect(),
            net_iface: b"eth0".to_vec(),
            network_id: Vec::new(),
        }
    }

    #[test]
    fn hmac_rfc4231_case_1_and_2() {
        // RFC 4231 test case 1.
        let key = [0x0bu8; 20];
        let mac = hmac_sha256(&key, &[b"Hi There"]);
        assert_eq!(
            hex(&mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2, message split in two parts.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block size.
        let key = [0xaau8; 131];
        let mac = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn stable_iid_vectors_v1() {
        // Frozen vectors for v1; computed independently with Python's hmac module.
        let id = ident();
        let p: Ipv6Addr = "2001:db8:1:2::".parse().unwrap();
        assert_eq!(id.iid(&p, 0).unwrap(), VEC_0);
        assert_eq!(id.iid(&p, 1).unwrap(), VEC_1);
        let id2 = StableIdentity {
            network_id: b"HomeWiFi".to_vec(),
            ..ident()
        };
        assert_eq!(id2.iid(&p, 0).unwrap(), VEC_SSID);
    }

    const VEC_0: u64 = 0x01bb_c917_9dc3_3a83;
    const VEC_1: u64 = 0x2af4_8230_d3e7_fc41;
    const VEC_SSID: u64 = 0xb32b_29cc_8070_0a30;

    #[test]
    fn stable_iid_same_inputs_same_iid_and_counter_changes_it() {
        let id = ident();
        let p: Ipv6Addr = "2001:db8:1:2::".parse().unwrap();
        let q: Ipv6Addr = "2001:db8:1:2:ffff::1".parse().unwrap(); // same /64, other host bits
        let a = id.iid(&p, 0).unwrap();
        assert_eq!(a, id.iid(&p, 0).unwrap());
        assert_eq!(a, id.iid(&q, 0).unwrap());
        assert_ne!(a, id.iid(&p, 1).unwrap());
        let other_prefix: Ipv6Addr = "2001:db8:1:3::".parse().unwrap();
        assert_ne!(a, id.iid(&other_prefix, 0).unwrap());
        let other_if = StableIdentity {
            net_iface: b"eth1".to_vec(),
            ..ident()
        };
        assert_ne!(a, other_if.iid(&p, 0).unwrap());
        let other_secret = StableIdentity {
            secret: vec![7u8; 32],
            ..ident()
        };
        assert_ne!(a, other_secret.iid(&p, 0).unwrap());
    }

    #[test]
    fn stable_iid_rejects_bad_inputs() {
        let p: Ipv6Addr = "2001:db8::".parse().unwrap();
        let short = StableIdentity {
            secret: vec![1; 15],
            ..ident()
        };
        assert_eq!(short.iid(&p, 0), Err(IidError::ShortSecret(15)));
        let long = StableIdentity {
            net_iface: vec![b'x'; 256],
            ..ident()
        };
        assert!(matches!(long.iid(&p, 0), Err(IidError::TooLong { .. })));
    }

    #[test]
    fn reserved_list() {
        assert!(is_reserved_iid(0));
        assert!(is_reserved_iid(0x0200_5EFF_FE00_0000));
        assert!(is_reserved_iid(0x0200_5EFF_FE00_5213));
        assert!(is_reserved_iid(0x0200_5EFF_FEFF_FFFF));
        assert!(is_reserved_iid(0xFDFF_FFFF_FFFF_FF80));
        assert!(is_reserved_iid(u64::MAX));
        assert!(!is_reserved_iid(1));
        assert!(!is_reserved_iid(0x0200_5EFF_FD00_0000));
        assert!(!is_reserved_iid(0x0200_5EFF_FF00_0000));
        assert!(!is_reserved_iid(0xFDFF_FFFF_FFFF_FF7F));
    }

    /// An RNG that returns reserved values first, to show they are skipped.
    struct Scripted(Vec<u64>);
    impl rand::TryRng for Scripted {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.0.pop().unwrap_or(7) as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(self.0.pop().unwrap_or(7))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(7);
            Ok(())
        }
    }

    #[test]
    fn random_iid_skips_reserved_and_in_use() {
        let mut r = Scripted(vec![42, 5, 0xFDFF_FFFF_FFFF_FFF0, 0x0200_5EFF_FE00_5213, 0]);
        assert_eq!(random_iid(&mut r, &[5]), Some(42));
    }

    proptest! {
        #[test]
        fn random_iid_never_reserved(seed in any::<u64>(), used in proptest::collection::vec(any::<u64>(), 0..4)) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for _ in 0..64 {
                let iid = random_iid(&mut rng, &used).unwrap();
                prop_assert!(!is_reserved_iid(iid));
                prop_assert!(!used.contains(&iid));
            }
        }

        #[test]
        fn reserved_matches_definition(iid in any::<u64>()) {
            let by_range = iid == 0
                || (0x0200_5EFF_FE00_0000..=0x0200_5EFF_FEFF_FFFF).contains(&iid)
                || iid >= 0xFDFF_FFFF_FFFF_FF80;
            prop_assert_eq!(is_reserved_iid(iid), by_range);
        }
    }
}

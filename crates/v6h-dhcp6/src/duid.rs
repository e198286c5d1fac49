//! Server DUIDs (RFC 8415 §11): construction, text form, and the dhcp6s on-disk format.
//!
//! Pure functions only; reading and writing the DUID file is done by [`crate::daemon`].

use thiserror::Error;

/// Seconds between the Unix epoch and 2000-01-01T00:00:00Z (the DUID-LLT epoch).
pub const DUID_EPOCH_UNIX: u64 = 946_684_800;

/// Errors for DUID text or files.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DuidError {
    /// Not `hh(:hh)*`.
    #[error("DUID {0:?} is not colon-separated hex bytes")]
    BadHex(String),
    /// A DUID must be 3..=130 bytes (type plus 1..=128 bytes).
    #[error("DUID of {0} bytes; it must be 3 to 130 bytes")]
    BadLength(usize),
    /// A dhcp6s DUID file whose length prefix does not match its content.
    #[error("dhcp6s DUID file: length prefix {prefix} but {actual} bytes follow")]
    BadFile {
        /// Length stored in the file.
        prefix: usize,
        /// Bytes following the prefix.
        actual: usize,
    },
}

/// A DUID-LLT (type 1) for Ethernet: hwtype 1, `time` seconds since 2000 (mod 2³²), MAC.
pub fn llt_ethernet(mac: [u8; 6], unix_seconds: u64) -> Vec<u8> {
    let t = (unix_seconds.saturating_sub(DUID_EPOCH_UNIX) & 0xffff_ffff) as u32;
    let mut d = vec![0, 1, 0, 1];
    d.extend_from_slice(&t.to_be_bytes());
    d.extend_from_slice(&mac);
    d
}

/// A DUID-LL (type 3) for Ethernet.
pub fn ll_ethernet(mac: [u8; 6]) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}

/// A DUID-UUID (type 4, RFC 6355) from 16 random bytes, for interfaces without a MAC.
pub fn uuid(bytes: [u8; 16]) -> Vec<u8> {
    let mut d = vec![0, 4];
    d.extend_from_slice(&bytes);
    d
}

/// Checks the DUID length rule (3..=130 bytes).
pub fn validate(d: &[u8]) -> Result<(), DuidError> {
    if (3..=130).contains(&d.len()) {
        Ok(())
    } else {
        Err(DuidError::BadLength(d.len()))
    }
}

/// Formats a DUID as `hh:hh:...`.
pub fn to_text(d: &[u8]) -> String {
    let mut s = String::with_capacity(d.len() * 3);
    for (i, b) in d.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses `hh(:hh)*` (each byte one or two hex digits, as dhcp6s accepts) and validates length.
pub fn from_text(s: &str) -> Result<Vec<u8>, DuidError> {
    let s = s.trim();
    let mut out = Vec::new();
    for part in s.split(':') {
        if part.is_empty() || part.len() > 2 {
            return Err(DuidError::BadHex(s.to_owned()));
        }
        let b = u8::from_str_radix(part, 16).map_err(|_| DuidError::BadHex(s.to_owned()))?;
        out.push(b);
    }
    validate(&out)?;
    Ok(out)
}

/// Decodes dhcp6s's `dhcp6s_duid` file: a u16 length in host (little-endian on the
/// platforms Debian ships dhcp6s for) byte order, then the DUID.
pub fn from_dhcp6s_file(bytes: &[u8]) -> Result<Vec<u8>, DuidError> {
    let (Some(&a), Some(&b)) = (bytes.first(), bytes.get(1)) else {
        return Err(DuidError::BadFile {
            prefix: 0,
            actual: 0,
        });
    };
    let prefix = usize::from(u16::from_ne_bytes([a, b]));
    let rest = &bytes[2..];
    if rest.len() != prefix {
        return Err(DuidError::BadFile {
            prefix,
            actual: rest.len(),
        });
    }
    validate(rest)?;
    Ok(rest.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llt_matches_appendix_a_layout() {
        // Appendix A: 0001 0001 329b5d62 a24335f46c3a
        let t = DUID_EPOCH_UNIX + 0x329b_5d62;
        let d = llt_ethernet([0xa2, 0x43, 0x35, 0xf4, 0x6c, 0x3a], t);
        assert_eq!(to_text(&d), "00:01:00:01:32:9b:5d:62:a2:43:35:f4:6c:3a");
        assert_eq!(d.len(), 14);
    }

    #[test]
    fn text_round_trip_and_errors() {
        let d = ll_ethernet([0xfa, 2, 0x80, 0x73, 0xd1, 2]);
        assert_eq!(from_text(&to_text(&d)).unwrap(), d);
        assert_eq!(
            from_text("0:3:0:1:fa:2").unwrap(),
            vec![0, 3, 0, 1, 0xfa, 2]
        );
        assert!(matches!(from_text("00:01"), Err(DuidError::BadLength(2))));
        assert!(matches!(from_text("00:zz:01"), Err(DuidError::BadHex(_))));
        assert!(matches!(from_text("00::01:02"), Err(DuidError::BadHex(_))));
        assert!(matches!(from_text("000:01:02"), Err(DuidError::BadHex(_))));
    }

    #[test]
    fn dhcp6s_file_import() {
        let d = llt_ethernet([1, 2, 3, 4, 5, 6], DUID_EPOCH_UNIX + 5);
        let mut f = u16::try_from(d.len()).unwrap().to_ne_bytes().to_vec();
        f.extend_from_slice(&d);
        assert_eq!(from_dhcp6s_file(&f).unwrap(), d);
        assert!(from_dhcp6s_file(&f[..5]).is_err());
        assert!(from_dhcp6s_file(&[]).is_err());
    }
}

//! IPv6 prefixes (`2001:db8::/32`) with parsing, containment and serde as strings.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// Error parsing a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/len` part.
    #[error("prefix {0:?} has no /length")]
    NoLength(String),
    /// The address part is not an IPv6 address.
    #[error("prefix {0:?}: bad IPv6 address")]
    BadAddr(String),
    /// The length is not a number in 0..=128.
    #[error("prefix {0:?}: length must be 0..=128")]
    BadLength(String),
    /// Bits set beyond the prefix length.
    #[error("prefix {0:?}: host bits are set")]
    HostBits(String),
}

/// An IPv6 prefix: network address (host bits zero) and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix6 {
    addr: Ipv6Addr,
    len: u8,
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Prefix6 {
    /// Builds a prefix, rejecting lengths above 128 and set host bits.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 128 {
            return Err(PrefixError::BadLength(format!("{addr}/{len}")));
        }
        if u128::from(addr) & !mask(len) != 0 {
            return Err(PrefixError::HostBits(format!("{addr}/{len}")));
        }
        Ok(Prefix6 { addr, len })
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is `::/0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `a` lies inside the prefix.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        (u128::from(a) ^ u128::from(self.addr)) & mask(self.len) == 0
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn covers(&self, other: &Prefix6) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Prefix6) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// The address with interface identifier `iid` in the low 64 bits (for /64s).
    pub fn host(&self, iid: u64) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) | u128::from(iid))
    }
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix6 {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::NoLength(s.to_string()))?;
        let addr: Ipv6Addr = a.parse().map_err(|_| PrefixError::BadAddr(s.to_string()))?;
        let len: u8 = l
            .parse()
            .map_err(|_| PrefixError::BadLength(s.to_string()))?;
        Prefix6::new(addr, len).map_err(|e| match e {
            PrefixError::HostBits(_) => PrefixError::HostBits(s.to_string()),
            _ => PrefixError::BadLength(s.to_string()),
        })
    }
}

impl serde::Serialize for Prefix6 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Prefix6 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_contain() {
        let p: Prefix6 = "2001:db8:1234::/48".parse().unwrap();
        assert!(p.contains("2001:db8:1234:5::1".parse().unwrap()));
        assert!(!p.contains("2001:db8:1235::1".parse().unwrap()));
        assert_eq!(p.to_string(), "2001:db8:1234::/48");
        assert!(matches!(
            "2001:db8::1/64".parse::<Prefix6>(),
            Err(PrefixError::HostBits(_))
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Prefix6>(),
            Err(PrefixError::BadLength(_))
        ));
        assert!(matches!(
            "2001:db8::".parse::<Prefix6>(),
            Err(PrefixError::NoLength(_))
        ));
        assert!(matches!(
            "zz/3".parse::<Prefix6>(),
            Err(PrefixError::BadAddr(_))
        ));
        let all: Prefix6 = "::/0".parse().unwrap();
        assert!(all.contains(Ipv6Addr::LOCALHOST));
        assert!(all.covers(&p) && !p.covers(&all) && p.overlaps(&all));
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(a in any::<u128>(), len in 0u8..=128) {
            let net = Ipv6Addr::from(a & mask(len));
            let p = Prefix6::new(net, len).unwrap();
            prop_assert_eq!(p.to_string().parse::<Prefix6>().unwrap(), p);
            prop_assert!(p.contains(Ipv6Addr::from(a)));
        }
    }
}

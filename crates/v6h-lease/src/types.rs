//! Plain value types shared by the engine and the store: prefixes, resources, IA kinds, status.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// An IPv6 prefix in canonical form (no bits set past `len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix {
    addr: Ipv6Addr,
    len: u8,
}

/// Why a prefix could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The length is above 128.
    #[error("prefix length {0} is above 128")]
    Length(u8),
    /// Bits are set past the prefix length.
    #[error("{0}/{1} has host bits set (did you mean {2}/{1}?)")]
    HostBits(Ipv6Addr, u8, Ipv6Addr),
    /// The text is not `address/length`.
    #[error("'{0}' is not an IPv6 prefix like 2001:db8::/48")]
    Syntax(String),
}

/// The mask of a prefix length as a `u128` (length 0 gives 0).
pub fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Prefix {
    /// A prefix; rejects lengths above 128 and set host bits.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 128 {
            return Err(PrefixError::Length(len));
        }
        let bits = u128::from(addr) & mask(len);
        if bits != u128::from(addr) {
            return Err(PrefixError::HostBits(addr, len, Ipv6Addr::from(bits)));
        }
        Ok(Prefix { addr, len })
    }

    /// The prefix of length `len` that contains `addr` (host bits cleared).
    pub fn containing(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Prefix {
            addr: Ipv6Addr::from(u128::from(addr) & mask(len)),
            len,
        }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// The first address as a number.
    pub fn first(&self) -> u128 {
        u128::from(self.addr)
    }

    /// The last address as a number.
    pub fn last(&self) -> u128 {
        self.first() | !mask(self.len)
    }

    /// Whether `a` lies in this prefix.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        let a = u128::from(a);
        a >= self.first() && a <= self.last()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PrefixError::Syntax(s.to_string());
        let (a, l) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        Prefix::new(addr, len)
    }
}

impl TryFrom<String> for Prefix {
    type Error = PrefixError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Prefix> for String {
    fn from(p: Prefix) -> String {
        p.to_string()
    }
}

/// The kind of identity association.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IaKind {
    /// IA_NA: non-temporary addresses.
    Na,
    /// IA_PD: delegated prefixes.
    Pd,
}

impl fmt::Display for IaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IaKind::Na => "na",
            IaKind::Pd => "pd",
        })
    }
}

/// What a lease holds: one address (IA_NA) or one prefix (IA_PD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// An address of an IA_NA.
    Addr(Ipv6Addr),
    /// A delegated prefix of an IA_PD.
    Prefix(Prefix),
}

impl Resource {
    /// The first address covered.
    pub fn first(&self) -> u128 {
        match self {
            Resource::Addr(a) => u128::from(*a),
            Resource::Prefix(p) => p.first(),
        }
    }

    /// The last address covered.
    pub fn last(&self) -> u128 {
        match self {
            Resource::Addr(a) => u128::from(*a),
            Resource::Prefix(p) => p.last(),
        }
    }

    /// The IA kind that carries this resource.
    pub fn kind(&self) -> IaKind {
        match self {
            Resource::Addr(_) => IaKind::Na,
            Resource::Prefix(_) => IaKind::Pd,
        }
    }

    /// Whether the two resources share any address.
    pub fn overlaps(&self, other: &Resource) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Addr(a) => write!(f, "{a}"),
            Resource::Prefix(p) => write!(f, "{p}"),
        }
    }
}

/// DHCPv6 status codes an IA-level or message-level answer can carry (RFC 8415 §21.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Status {
    /// 0: success.
    Success,
    /// 1: unspecified failure.
    UnspecFail,
    /// 2: no addresses available for this IA.
    NoAddrsAvail,
    /// 3: the client's binding is unknown.
    NoBinding,
    /// 4: the address is not appropriate for the link.
    NotOnLink,
    /// 6: no prefixes available for this IA_PD.
    NoPrefixAvail,
}

impl Status {
    /// The numeric status code on the wire.
    pub fn code(self) -> u16 {
        match self {
            Status::Success => 0,
            Status::UnspecFail => 1,
            Status::NoAddrsAvail => 2,
            Status::NoBinding => 3,
            Status::NotOnLink => 4,
            Status::NoPrefixAvail => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_and_bounds() {
        let p: Prefix = "2001:db8:1200::/40".parse().unwrap();
        assert_eq!(p.len(), 40);
        assert_eq!(
            p.first(),
            u128::from("2001:db8:1200::".parse::<Ipv6Addr>().unwrap())
        );
        assert_eq!(
            Ipv6Addr::from(p.last()),
            "2001:db8:12ff:ffff:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert!(matches!(
            "2001:db8::1/64".parse::<Prefix>(),
            Err(PrefixError::HostBits(..))
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Prefix>(),
            Err(PrefixError::Length(129))
        ));
        assert!(matches!(
            "2001:db8::".parse::<Prefix>(),
            Err(PrefixError::Syntax(_))
        ));
        assert_eq!(
            Prefix::new(Ipv6Addr::UNSPECIFIED, 0).unwrap().last(),
            u128::MAX
        );
        assert_eq!(
            Prefix::containing("2001:db8::1".parse().unwrap(), 128).len(),
            128
        );
        assert_eq!(Status::NoPrefixAvail.code(), 6);
    }
}

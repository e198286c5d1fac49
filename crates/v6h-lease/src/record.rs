//! What the engine asks the store to persist: lease records and removals, with a compact,
//! versioned binary encoding used by the journal.

use crate::types::{IaKind, Prefix, Resource};
use serde::Serialize;
use std::net::Ipv6Addr;

/// The durable state of a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    /// Bound to a client's IA.
    Bound,
    /// Declined by the client; quarantined until it expires.
    Declined,
}

/// One lease as stored on disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseRecord {
    /// Name of the link the lease belongs to.
    pub link: String,
    /// The client's DUID.
    pub duid: Vec<u8>,
    /// The client's IAID.
    pub iaid: u32,
    /// The address or prefix.
    pub resource: Resource,
    /// Bound or declined.
    pub state: LeaseState,
    /// Preferred lifetime granted (seconds).
    pub preferred: u32,
    /// Valid lifetime granted (seconds).
    pub valid: u32,
    /// Absolute expiry (seconds on the caller's clock, normally Unix time).
    pub expires: u64,
}

impl LeaseRecord {
    /// The IA kind of the lease.
    pub fn kind(&self) -> IaKind {
        self.resource.kind()
    }
}

/// A change to the durable lease set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// Insert or replace the lease for `record.resource`.
    Put(LeaseRecord),
    /// The lease for this resource is gone (released or expired).
    Remove(Resource),
}

impl Change {
    /// The resource the change is about.
    pub fn resource(&self) -> Resource {
        match self {
            Change::Put(r) => r.resource,
            Change::Remove(r) => *r,
        }
    }
}

/// A record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ended early.
    #[error("record truncated")]
    Truncated,
    /// Unknown record tag.
    #[error("unknown record tag {0}")]
    Tag(u8),
    /// Bad field value.
    #[error("bad field: {0}")]
    Field(&'static str),
    /// Bytes left over after the record.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

const TAG_PUT_ADDR: u8 = 1;
const TAG_PUT_PREFIX: u8 = 2;
const TAG_REMOVE_ADDR: u8 = 3;
const TAG_REMOVE_PREFIX: u8 = 4;

/// Whether `tag` can start an encoded change (a cheap filter before a CRC check).
pub fn plausible_tag(tag: u8) -> bool {
    matches!(
        tag,
        TAG_PUT_ADDR | TAG_PUT_PREFIX | TAG_REMOVE_ADDR | TAG_REMOVE_PREFIX
    )
}

/// Appends the encoding of `c` to `out`.
pub fn encode(c: &Change, out: &mut Vec<u8>) {
    match c {
        Change::Put(r) => {
            match r.resource {
                Resource::Addr(a) => {
                    out.push(TAG_PUT_ADDR);
                    out.extend_from_slice(&a.octets());
                }
                Resource::Prefix(p) => {
                    out.push(TAG_PUT_PREFIX);
                    out.extend_from_slice(&p.addr().octets());
                    out.push(p.len());
                }
            }
            out.push(match r.state {
                LeaseState::Bound => 0,
                LeaseState::Declined => 1,
            });
            out.extend_from_slice(&r.iaid.to_be_bytes());
            out.extend_from_slice(&r.preferred.to_be_bytes());
            out.extend_from_slice(&r.valid.to_be_bytes());
            out.extend_from_slice(&r.expires.to_be_bytes());
            put_bytes(out, r.link.as_bytes());
            put_bytes(out, &r.duid);
        }
        Change::Remove(Resource::Addr(a)) => {
            out.push(TAG_REMOVE_ADDR);
            out.extend_from_slice(&a.octets());
        }
        Change::Remove(Resource::Prefix(p)) => {
            out.push(TAG_REMOVE_PREFIX);
            out.extend_from_slice(&p.addr().octets());
            out.push(p.len());
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Links and DUIDs are short (a DUID is at most 130 bytes); longer input is cut, never
    // wrapped, so the length prefix always matches.
    let n = b.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&b[..n]);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn addr(&mut self) -> Result<Ipv6Addr, DecodeError> {
        Ok(Ipv6Addr::from(self.arr::<16>()?))
    }
    fn prefix(&mut self) -> Result<Prefix, DecodeError> {
        let a = self.addr()?;
        let l = self.u8()?;
        Prefix::new(a, l).map_err(|_| DecodeError::Field("prefix"))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = u16::from_be_bytes(self.arr::<2>()?);
        self.take(usize::from(n))
    }
}

/// Decodes one change from exactly `b`.
pub fn decode(b: &[u8]) -> Result<Change, DecodeError> {
    let mut r = Reader(b);
    let tag = r.u8()?;
    let c = match tag {
        TAG_PUT_ADDR | TAG_PUT_PREFIX => {
            let resource = if tag == TAG_PUT_ADDR {
                Resource::Addr(r.addr()?)
            } else {
                Resource::Prefix(r.prefix()?)
            };
            let state = match r.u8()? {
                0 => LeaseState::Bound,
                1 => LeaseState::Declined,
                _ => return Err(DecodeError::Field("state")),
            };
            let iaid = u32::from_be_bytes(r.arr()?);
            let preferred = u32::from_be_bytes(r.arr()?);
            let valid = u32::from_be_bytes(r.arr()?);
            let expires = u64::from_be_bytes(r.arr()?);
            let link = std::str::from_utf8(r.bytes()?)
                .map_err(|_| DecodeError::Field("link"))?
                .to_string();
            let duid = r.bytes()?.to_vec();
            Change::Put(LeaseRecord {
                link,
                duid,
                iaid,
                resource,
                state,
                preferred,
                valid,
                expires,
            })
        }
        TAG_REMOVE_ADDR => Change::Remove(Resource::Addr(r.addr()?)),
        TAG_REMOVE_PREFIX => Change::Remove(Resource::Prefix(r.prefix()?)),
        t => return Err(DecodeError::Tag(t)),
    };
    if !r.0.is_empty() {
        return Err(DecodeError::Trailing(r.0.len()));
    }
    Ok(c)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn arb_resource() -> impl Strategy<Value = Resource> {
        prop_oneof![
            any::<u128>().prop_map(|a| Resource::Addr(Ipv6Addr::from(a))),
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| Resource::Prefix(Prefix::containing(Ipv6Addr::from(a), l))),
        ]
    }

    pub(crate) fn arb_change() -> impl Strategy<Value = Change> {
        prop_oneof![
            (
                "[a-z0-9]{0,12}",
                proptest::collection::vec(any::<u8>(), 0..40),
                any::<u32>(),
                arb_resource(),
                any::<bool>(),
                any::<u32>(),
                any::<u32>(),
                any::<u64>()
            )
                .prop_map(
                    |(link, duid, iaid, resource, d, preferred, valid, expires)| {
                        Change::Put(LeaseRecord {
                            link,
                            duid,
                            iaid,
                            resource,
                            state: if d {
                                LeaseState::Declined
                            } else {
                                LeaseState::Bound
                            },
                            preferred,
                            valid,
                            expires,
                        })
                    }
                ),
            arb_resource().prop_map(Change::Remove),
        ]
    }

    #[test]
    fn golden_remove_addr() {
        let c = Change::Remove(Resource::Addr("2001:db8::1".parse().unwrap()));
        let mut b = Vec::new();
        encode(&c, &mut b);
        assert_eq!(hex::encode(&b), "0320010db8000000000000000000000001");
        assert_eq!(decode(&b).unwrap(), c);
        assert_eq!(decode(&b[..5]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[9]), Err(DecodeError::Tag(9)));
        b.push(0);
        assert_eq!(decode(&b), Err(DecodeError::Trailing(1)));
    }

    proptest! {
        #[test]
        fn roundtrip(c in arb_change()) {
            let mut b = Vec::new();
            encode(&c, &mut b);
            prop_assert_eq!(decode(&b).unwrap(), c);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&b);
        }
    }
}

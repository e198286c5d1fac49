//! IPv6 addresses with lifetimes and flags over rtnetlink, routes with a preferred source,
//! and address-event monitoring (tentative → ok, `dadfailed`, deprecated).
//!
//! Used by `v6home privacy agent` (a userspace SLAAC agent) and `v6home privacy enable` (the
//! repair of `mngtmpaddr` parents). Message building and parsing are pure functions
//! ([`build_addr_message`], [`AddrEntry::from_message`]) so they are unit-tested without a
//! socket; [`AddrControl`] and [`AddrMonitor`] are the thin IO shells.
//!
//! Kernel rules this module follows (spec privacy.md §2.4): add with CREATE|EXCL, refresh with
//! CREATE|REPLACE resending *all* flags and the protocol; `valid = 0` or `preferred > valid` is
//! EINVAL; userspace cannot set `IFA_F_TEMPORARY`; a failed DAD shows as RTM_DELADDR with
//! `IFA_F_DADFAILED`.

use std::net::{IpAddr, Ipv6Addr};

use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressProtocol, CacheInfo,
};
use netlink_packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::{AddressMessageBuilder, Handle, MulticastGroup, RouteMessageBuilder};

/// `IFA_F_SECONDARY`, which for IPv6 is `IFA_F_TEMPORARY`.
pub const IFA_F_TEMPORARY: u32 = 0x01;
/// `IFA_F_NODAD`.
pub const IFA_F_NODAD: u32 = 0x02;
/// `IFA_F_DADFAILED`.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_DEPRECATED`.
pub const IFA_F_DEPRECATED: u32 = 0x20;
/// `IFA_F_TENTATIVE`.
pub const IFA_F_TENTATIVE: u32 = 0x40;
/// `IFA_F_PERMANENT`.
pub const IFA_F_PERMANENT: u32 = 0x80;
/// `IFA_F_MANAGETEMPADDR`.
pub const IFA_F_MANAGETEMPADDR: u32 = 0x100;
/// `IFA_F_NOPREFIXROUTE`.
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// Lifetime value meaning "forever".
pub const FOREVER: u32 = u32::MAX;

/// Errors of address and route operations.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// Opening the netlink socket failed.
    #[error("cannot open rtnetlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// Lifetimes the kernel would refuse with EINVAL.
    #[error("invalid lifetimes for {addr}: preferred {preferred}s, valid {valid}s")]
    Lifetimes {
        /// The address.
        addr: Ipv6Addr,
        /// Preferred lifetime.
        preferred: u32,
        /// Valid lifetime.
        valid: u32,
    },
    /// The kernel refused the request.
    #[error("{op}: {source} (errno {errno})")]
    Kernel {
        /// What was attempted.
        op: String,
        /// The positive errno, 0 if unknown.
        errno: i32,
        /// The underlying error.
        #[source]
        source: rtnetlink::Error,
    },
}

impl AddrError {
    /// The errno of a kernel refusal (e.g. 17 EEXIST, 99 EADDRNOTAVAIL), if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            AddrError::Kernel { errno, .. } if *errno != 0 => Some(*errno),
            _ => None,
        }
    }
}

fn kernel(op: String, source: rtnetlink::Error) -> AddrError {
    let errno = match &source {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()).unwrap_or(0),
        _ => 0,
    };
    AddrError::Kernel { op, errno, source }
}

/// An address to add or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrSpec {
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Preferred lifetime, seconds ([`FOREVER`] = forever; 0 = deprecated).
    pub preferred: u32,
    /// Valid lifetime, seconds ([`FOREVER`] = forever; must be > 0).
    pub valid: u32,
    /// IFA_F_* flags to set (only NODAD, MANAGETEMPADDR, NOPREFIXROUTE, … are accepted).
    pub flags: u32,
    /// Ownership tag (`IFA_PROTO`), e.g. 0x76 for v6home.
    pub proto: Option<u8>,
}

/// Builds the RTM_NEWADDR message for `spec` on interface `index` (pure; checks lifetimes).
pub fn build_addr_message(index: u32, spec: &AddrSpec) -> Result<AddressMessage, AddrError> {
    if spec.valid == 0 || spec.preferred > spec.valid {
        return Err(AddrError::Lifetimes {
            addr: spec.addr,
            preferred: spec.preferred,
            valid: spec.valid,
        });
    }
    let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
        .index(index)
        .address(spec.addr, spec.prefix_len)
        .build();
    let mut ci = CacheInfo::default();
    ci.ifa_preferred = spec.preferred;
    ci.ifa_valid = spec.valid;
    msg.attributes.push(AddressAttribute::CacheInfo(ci));
    msg.attributes
        .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
            spec.flags,
        )));
    if let Some(p) = spec.proto {
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(p)));
    }
    Ok(msg)
}

/// One IPv6 address as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrEntry {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// All IFA_F_* flags (the u32 attribute when present, else the header byte).
    pub flags: u32,
    /// Remaining preferred lifetime, seconds ([`FOREVER`] if none reported).
    pub preferred: u32,
    /// Remaining valid lifetime, seconds ([`FOREVER`] if none reported).
    pub valid: u32,
    /// `IFA_PROTO`, if reported.
    pub proto: Option<u8>,
}

impl AddrEntry {
    /// Parses an address message; `None` for non-IPv6 or address-less messages.
    pub fn from_message(msg: &AddressMessage) -> Option<AddrEntry> {
        let mut addr = None;
        let mut flags = u32::from(msg.header.flags.bits());
        let (mut preferred, mut valid) = (FOREVER, FOREVER);
        let mut proto = None;
        for a in &msg.attributes {
            match a {
                AddressAttribute::Address(IpAddr::V6(x)) => addr = Some(*x),
                AddressAttribute::Local(IpAddr::V6(x)) if addr.is_none() => addr = Some(*x),
                AddressAttribute::Flags(f) => flags = f.bits(),
                AddressAttribute::CacheInfo(ci) => {
                    preferred = ci.ifa_preferred;
                    valid = ci.ifa_valid;
                }
                AddressAttribute::Protocol(p) => proto = Some(u8::from(*p)),
                _ => {}
            }
        }
        Some(AddrEntry {
            index: msg.header.index,
            addr: addr?,
            prefix_len: msg.header.prefix_len,
            flags,
            preferred,
            valid,
            proto,
        })
    }

    /// DAD still running.
    pub fn tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }
    /// DAD failed.
    pub fn dadfailed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }
    /// Preferred lifetime over.
    pub fn deprecated(&self) -> bool {
        self.flags & IFA_F_DEPRECATED != 0
    }
    /// A kernel-made temporary address.
    pub fn temporary(&self) -> bool {
        self.flags & IFA_F_TEMPORARY != 0
    }
    /// A parent of kernel temporaries (`mngtmpaddr`).
    pub fn managetempaddr(&self) -> bool {
        self.flags & IFA_F_MANAGETEMPADDR != 0
    }
}

/// An address event from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrEvent {
    /// RTM_NEWADDR (added or changed; check `tentative()`/`deprecated()`).
    New(AddrEntry),
    /// RTM_DELADDR (check `dadfailed()`).
    Del(AddrEntry),
}

/// An IPv6 route with an optional preferred source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination (`::` with length 0 for default).
    pub dst: Ipv6Addr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Gateway, if any.
    pub via: Option<Ipv6Addr>,
    /// Preferred source (`RTA_PREFSRC`, `ip route … src`).
    pub prefsrc: Option<Ipv6Addr>,
    /// Metric.
    pub metric: u32,
    /// Route protocol (`proto`), e.g. 0x76.
    pub proto: u8,
}

/// Builds the route message for `r` out of interface `index` (pure).
pub fn build_route_message(index: u32, r: &RouteSpec) -> RouteMessage {
    let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
        .destination_prefix(r.dst, r.prefix_len)
        .output_interface(index)
        .priority(r.metric)
        .protocol(RouteProtocol::from(r.proto));
    if let Some(g) = r.via {
        b = b.gateway(g);
    }
    if let Some(s) = r.prefsrc {
        b = b.pref_source(s);
    }
    b.build()
}

/// Address and route operations on one rtnetlink connection.
#[derive(Debug, Clone)]
pub struct AddrControl {
    handle: Handle,
}

impl AddrControl {
    /// Opens a connection; must run inside a tokio runtime (the connection task is spawned).
    pub fn new() -> Result<Self, AddrError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(AddrError::Socket)?;
        tokio::spawn(conn);
        Ok(AddrControl { handle })
    }

    /// Adds (`replace == false`: CREATE|EXCL, DAD runs unless NODAD) or refreshes
    /// (`replace == true`: CREATE|REPLACE with all flags and the protocol) an address.
    pub async fn add(&self, index: u32, spec: &AddrSpec, replace: bool) -> Result<(), AddrError> {
        let msg = build_addr_message(index, spec)?;
        let mut req = self
            .handle
            .address()
            .add(index, IpAddr::V6(spec.addr), spec.prefix_len);
        *req.message_mut() = msg;
        let req = if replace { req.replace() } else { req };
        req.execute().await.map_err(|e| {
            kernel(
                format!(
                    "{} address {}/{}",
                    if replace { "replace" } else { "add" },
                    spec.addr,
                    spec.prefix_len
                ),
                e,
            )
        })
    }

    /// Deletes an address.
    pub async fn del(&self, index: u32, addr: Ipv6Addr, prefix_len: u8) -> Result<(), AddrError> {
        let msg = AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(addr, prefix_len)
            .build();
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(|e| kernel(format!("delete address {addr}/{prefix_len}"), e))
    }

    /// Lists IPv6 addresses (of one interface, or all).
    pub async fn list(&self, index: Option<u32>) -> Result<Vec<AddrEntry>, AddrError> {
        let mut req = self.handle.address().get();
        if let Some(i) = index {
            req = req.set_link_index_filter(i);
        }
        let mut s = req.execute();
        let mut out = Vec::new();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| kernel("list addresses".into(), e))?
        {
            if let Some(e) = AddrEntry::from_message(&m)
                && index.is_none_or(|i| i == e.index)
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Adds or replaces a route (CREATE|REPLACE).
    pub async fn replace_route(&self, index: u32, r: &RouteSpec) -> Result<(), AddrError> {
        self.handle
            .route()
            .add(build_route_message(index, r))
            .replace()
            .execute()
            .await
            .map_err(|e| kernel(format!("replace route {}/{}", r.dst, r.prefix_len), e))
    }

    /// Deletes a route.
    pub async fn del_route(&self, index: u32, r: &RouteSpec) -> Result<(), AddrError> {
        self.handle
            .route()
            .del(build_route_message(index, r))
            .execute()
            .await
            .map_err(|e| kernel(format!("delete route {}/{}", r.dst, r.prefix_len), e))
    }
}

/// A subscription to IPv6 address events (RTNLGRP_IPV6_IFADDR).
pub struct AddrMonitor {
    rx: futures::channel::mpsc::UnboundedReceiver<(
        netlink_packet_core::NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    _handle: Handle,
}

impl std::fmt::Debug for AddrMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddrMonitor")
    }
}

impl AddrMonitor {
    /// Subscribes; must run inside a tokio runtime.
    pub fn new() -> Result<Self, AddrError> {
        let (conn, handle, rx) = rtnetlink::new_multicast_connection(&[MulticastGroup::Ipv6Ifaddr])
            .map_err(AddrError::Socket)?;
        tokio::spawn(conn);
        Ok(AddrMonitor {
            rx,
            _handle: handle,
        })
    }

    /// The next address event, or `None` when the connection closed.
    pub async fn next(&mut self) -> Option<AddrEvent> {
        loop {
            let (msg, _) = self.rx.next().await?;
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                    if let Some(e) = AddrEntry::from_message(&m) {
                        return Some(AddrEvent::New(e));
                    }
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                    if let Some(e) = AddrEntry::from_message(&m) {
                        return Some(AddrEvent::Del(e));
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AddrSpec {
        AddrSpec {
            addr: "2001:db8:1:2::1234".parse().unwrap(),
            prefix_len: 64,
            preferred: 300,
            valid: 600,
            flags: IFA_F_NOPREFIXROUTE,
            proto: Some(0x76),
        }
    }

    #[test]
    fn message_carries_lifetimes_flags_and_proto() {
        let m = build_addr_message(7, &spec()).unwrap();
        assert_eq!(m.header.index, 7);
        assert_eq!(m.header.prefix_len, 64);
        let e = AddrEntry::from_message(&m).unwrap();
        assert_eq!(e.addr, spec().addr);
        assert_eq!((e.preferred, e.valid), (300, 600));
        assert_eq!(e.flags, IFA_F_NOPREFIXROUTE);
        assert_eq!(e.proto, Some(0x76));
        assert!(!e.tentative() && !e.temporary() && !e.managetempaddr());
    }

    #[test]
    fn einval_lifetimes_rejected_before_sending() {
        let mut s = spec();
        s.valid = 0;
        assert!(matches!(
            build_addr_message(1, &s),
            Err(AddrError::Lifetimes { .. })
        ));
        let mut s = spec();
        s.preferred = 601;
        assert!(build_addr_message(1, &s).is_err());
        let mut s = spec();
        s.preferred = 0; // deprecated is fine
        assert!(build_addr_message(1, &s).is_ok());
    }

    #[test]
    fn flags_decoded() {
        let mut s = spec();
        s.flags = IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TEMPORARY;
        let e = AddrEntry::from_message(&build_addr_message(1, &s).unwrap()).unwrap();
        assert!(e.tentative() && e.dadfailed() && e.deprecated() && e.temporary());
    }

    #[test]
    fn route_message_has_prefsrc_metric_proto() {
        use netlink_packet_route::route::RouteAttribute;
        let r = RouteSpec {
            dst: Ipv6Addr::UNSPECIFIED,
            prefix_len: 0,
            via: Some("fe80::1".parse().unwrap()),
            prefsrc: Some("2001:db8:1:2::99".parse().unwrap()),
            metric: 1023,
            proto: 0x76,
        };
        let m = build_route_message(3, &r);
        assert_eq!(u8::from(m.header.protocol), 0x76);
        assert!(m.attributes.contains(&RouteAttribute::Priority(1023)));
        assert!(m.attributes.contains(&RouteAttribute::Oif(3)));
        assert!(
            m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::PrefSource(_)))
        );
    }
}

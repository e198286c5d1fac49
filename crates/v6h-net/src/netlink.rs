//! Typed rtnetlink helpers: link up/down and MTU, IPv6 addresses and routes.
//!
//! A thin async shell over `rtnetlink` for the operations the v6home daemons need, acting on
//! whatever network namespace the calling process runs in. Every failure is a [`NetlinkError`]
//! naming the operation and the interface; "already exists" is reported separately so callers
//! can treat re-adding an address or route as success.

use std::net::{IpAddr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMetric, RouteProtocol,
};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

/// Errors of the netlink helpers.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening the netlink socket failed.
    #[error("cannot open rtnetlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// No interface has the given name.
    #[error("no such interface: {0}")]
    NoSuchLink(String),
    /// The object (address or route) already exists.
    #[error("{op} on {link}: already exists")]
    Exists {
        /// The operation, e.g. "add route 2001:db8::/64".
        op: String,
        /// The interface name.
        link: String,
    },
    /// The kernel rejected the request.
    #[error("{op} on {link}: {source}")]
    Kernel {
        /// The operation, e.g. "set mtu 1280".
        op: String,
        /// The interface name.
        link: String,
        /// The rtnetlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// A prefix length above 128.
    #[error("invalid IPv6 prefix length {0}")]
    PrefixLen(u8),
}

/// An IPv6 address assigned to an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr6 {
    /// The interface index.
    pub index: u32,
    /// The address.
    pub addr: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// An IPv6 route to add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route6 {
    /// Destination prefix (`::` with length 0 for the default route).
    pub dst: Ipv6Addr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Next hop, if any.
    pub via: Option<Ipv6Addr>,
    /// Route MTU (`mtu` metric), if any.
    pub mtu: Option<u32>,
}

impl Route6 {
    /// The default route via `gw`.
    pub fn default_via(gw: Ipv6Addr) -> Self {
        Route6 {
            dst: Ipv6Addr::UNSPECIFIED,
            prefix_len: 0,
            via: Some(gw),
            mtu: None,
        }
    }

    /// A directly connected prefix (no gateway).
    pub fn prefix(dst: Ipv6Addr, prefix_len: u8) -> Self {
        Route6 {
            dst,
            prefix_len,
            via: None,
            mtu: None,
        }
    }
}

const EEXIST: i32 = 17;

fn classify(op: String, link: &str, source: rtnetlink::Error) -> NetlinkError {
    if let rtnetlink::Error::NetlinkError(m) = &source
        && m.code.map(|c| c.get().abs()) == Some(EEXIST)
    {
        return NetlinkError::Exists {
            op,
            link: link.to_string(),
        };
    }
    NetlinkError::Kernel {
        op,
        link: link.to_string(),
        source,
    }
}

/// A connection to rtnetlink in the current network namespace.
///
/// Must be created inside a tokio runtime: the connection task is spawned on it.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a netlink socket and spawns its connection task on the current tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Resolves an interface name to its index.
    pub async fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(msg.header.index),
            Ok(None) => Err(NetlinkError::NoSuchLink(name.to_string())),
            Err(rtnetlink::Error::NetlinkError(m)) if m.code.map(|c| c.get().abs()) == Some(19) => {
                Err(NetlinkError::NoSuchLink(name.to_string()))
            }
            Err(e) => Err(classify("get link".into(), name, e)),
        }
    }

    /// Reads an interface's MTU.
    pub async fn link_mtu(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = links
            .try_next()
            .await
            .map_err(|e| classify("get link".into(), name, e))?
            .ok_or_else(|| NetlinkError::NoSuchLink(name.to_string()))?;
        Ok(msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        }))
    }

    /// Sets an interface administratively up or down.
    pub async fn set_link_up(&self, name: &str, up: bool) -> Result<(), NetlinkError> {
        let index = self.link_index(name).await?;
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.handle.link().set(msg).execute().await.map_err(|e| {
            classify(
                format!("set link {}", if up { "up" } else { "down" }),
                name,
                e,
            )
        })
    }

    /// Sets an interface's MTU.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let index = self.link_index(name).await?;
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| classify(format!("set mtu {mtu}"), name, e))
    }

    /// Adds an IPv6 address with a prefix length; `nodad` skips duplicate address detection.
    pub async fn add_addr6(
        &self,
        name: &str,
        addr: Ipv6Addr,
        prefix_len: u8,
        nodad: bool,
    ) -> Result<(), NetlinkError> {
        if prefix_len > 128 {
            return Err(NetlinkError::PrefixLen(prefix_len));
        }
        let index = self.link_index(name).await?;
        let mut req = self
            .handle
            .address()
            .add(index, IpAddr::V6(addr), prefix_len);
        if nodad {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(|e| classify(format!("add address {addr}/{prefix_len}"), name, e))
    }

    /// Lists the IPv6 addresses of an interface (all interfaces when `name` is `None`).
    pub async fn addrs6(&self, name: Option<&str>) -> Result<Vec<IfAddr6>, NetlinkError> {
        let mut req = self.handle.address().get();
        if let Some(n) = name {
            req = req.set_link_index_filter(self.link_index(n).await?);
        }
        let mut stream = req.execute();
        let mut out = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| classify("list addresses".into(), name.unwrap_or("*"), e))?
        {
            for a in &msg.attributes {
                if let AddressAttribute::Address(IpAddr::V6(addr)) = a {
                    out.push(IfAddr6 {
                        index: msg.header.index,
                        addr: *addr,
                        prefix_len: msg.header.prefix_len,
                    });
                }
            }
        }
        Ok(out)
    }

    fn route_msg(index: u32, r: &Route6) -> netlink_packet_route::route::RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(r.dst, r.prefix_len)
            .output_interface(index);
        if let Some(gw) = r.via {
            b = b.gateway(gw);
        }
        let mut m = b.build();
        if let Some(mtu) = r.mtu {
            m.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        m
    }

    /// Adds an IPv6 route out of interface `name`.
    pub async fn add_route6(&self, name: &str, r: Route6) -> Result<(), NetlinkError> {
        if r.prefix_len > 128 {
            return Err(NetlinkError::PrefixLen(r.prefix_len));
        }
        let index = self.link_index(name).await?;
        self.handle
            .route()
            .add(Self::route_msg(index, &r))
            .execute()
            .await
            .map_err(|e| classify(format!("add route {}/{}", r.dst, r.prefix_len), name, e))
    }

    /// Deletes IPv6 address `addr/prefix_len` from interface `name` (no error when absent).
    pub async fn del_addr6(
        &self,
        name: &str,
        addr: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let index = self.link_index(name).await?;
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut found = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| classify("list addresses".into(), name, e))?
        {
            let matches = msg.header.prefix_len == prefix_len
                && msg
                    .attributes
                    .iter()
                    .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V6(x)) if *x == addr));
            if matches {
                found.push(msg);
            }
        }
        for msg in found {
            self.handle
                .address()
                .del(msg)
                .execute()
                .await
                .map_err(|e| classify(format!("del address {addr}/{prefix_len}"), name, e))?;
        }
        Ok(())
    }

    /// Lists the static IPv6 routes (protocol `static`, main table) out of interface `name`:
    /// the routes [`Netlink::add_route6`] installs, not the kernel's own.
    pub async fn static_routes6(&self, name: &str) -> Result<Vec<Route6>, NetlinkError> {
        let index = self.link_index(name).await?;
        let mut stream = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| classify("list routes".into(), name, e))?
        {
            if msg.header.table != RouteHeader::RT_TABLE_MAIN
                || msg.header.protocol != RouteProtocol::Static
                || !msg.attributes.contains(&RouteAttribute::Oif(index))
            {
                continue;
            }
            let mut r = Route6::prefix(Ipv6Addr::UNSPECIFIED, msg.header.destination_prefix_length);
            for a in &msg.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet6(d)) => r.dst = *d,
                    RouteAttribute::Gateway(RouteAddress::Inet6(g)) => r.via = Some(*g),
                    RouteAttribute::Metrics(ms) => {
                        for m in ms {
                            if let RouteMetric::Mtu(v) = m {
                                r.mtu = Some(*v);
                            }
                        }
                    }
                    _ => {}
                }
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Deletes an IPv6 route out of interface `name`.
    pub async fn del_route6(&self, name: &str, r: Route6) -> Result<(), NetlinkError> {
        if r.prefix_len > 128 {
            return Err(NetlinkError::PrefixLen(r.prefix_len));
        }
        let index = self.link_index(name).await?;
        self.handle
            .route()
            .del(Self::route_msg(index, &r))
            .execute()
            .await
            .map_err(|e| classify(format!("del route {}/{}", r.dst, r.prefix_len), name, e))
    }
}

/// Treats [`NetlinkError::Exists`] as success (for idempotent set-up).
pub fn ignore_exists(r: Result<(), NetlinkError>) -> Result<(), NetlinkError> {
    match r {
        Err(NetlinkError::Exists { .. }) => Ok(()),
        other => other,
    }
}

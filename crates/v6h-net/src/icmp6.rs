//! A raw ICMPv6 socket for Neighbor Discovery (RS/RA), usable from tokio.
//!
//! Opens `socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)` (needs CAP_NET_RAW) and sets it up as
//! RFC 4861 requires: hop limit 255 for unicast and multicast, multicast loop off, and the
//! IPV6_RECVHOPLIMIT / IPV6_RECVPKTINFO ancillary data so each received packet reports its hop
//! limit, destination and arrival interface. The kernel fills in the ICMPv6 checksum. The
//! kernel ICMPv6 type filter (ICMP6_FILTER) has no safe wrapper, so [`Icmp6Socket::recv`]
//! filters by type in user space instead. Everything goes through socket2 and nix; no `unsafe`.

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use thiserror::Error;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The all-routers link-local multicast group ff02::2.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// The all-nodes link-local multicast group ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Errors of the ICMPv6 socket.
#[derive(Debug, Error)]
pub enum Icmp6Error {
    /// Creating or configuring the socket failed (`what` says which step).
    #[error("icmp6 socket: {what}: {source}")]
    Setup {
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Sending or receiving failed.
    #[error("icmp6 socket I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Icmp6Error {
    /// The errno of the underlying OS error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Icmp6Error::Setup { source, .. } | Icmp6Error::Io(source) => source.raw_os_error(),
        }
    }
}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> Icmp6Error {
    move |source| Icmp6Error::Setup { what, source }
}

fn nix_io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// What the kernel told us about one received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes of ICMPv6 message received.
    pub len: usize,
    /// IPv6 source address.
    pub src: Ipv6Addr,
    /// IPv6 hop limit of the packet (0 if the kernel did not report it).
    pub hop_limit: u8,
    /// Destination address (from IPV6_PKTINFO; unspecified if not reported).
    pub dst: Ipv6Addr,
    /// Arrival interface index (from IPV6_PKTINFO, else the source scope id).
    pub ifindex: u32,
}

/// A non-blocking raw ICMPv6 socket registered with tokio.
#[derive(Debug)]
pub struct Icmp6Socket {
    fd: UdpSocket,
    types: Vec<u8>,
}

impl Icmp6Socket {
    /// Opens the socket; `types` lists the ICMPv6 types [`Icmp6Socket::recv`] returns
    /// (empty = all). Must be called inside a tokio runtime.
    pub fn open(types: &[u8]) -> Result<Self, Icmp6Error> {
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(setup("socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)"))?;
        s.set_nonblocking(true).map_err(setup("O_NONBLOCK"))?;
        s.set_unicast_hops_v6(255)
            .map_err(setup("IPV6_UNICAST_HOPS"))?;
        s.set_multicast_hops_v6(255)
            .map_err(setup("IPV6_MULTICAST_HOPS"))?;
        s.set_multicast_loop_v6(false)
            .map_err(setup("IPV6_MULTICAST_LOOP"))?;
        setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|e| setup("IPV6_RECVPKTINFO")(nix_io(e)))?;
        setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| setup("IPV6_RECVHOPLIMIT")(nix_io(e)))?;
        // tokio's UdpSocket only registers the fd with the reactor; all I/O below goes
        // through recvmsg/sendmsg on the raw fd inside `async_io`, so it is never used as UDP.
        let fd = UdpSocket::from_std(std::net::UdpSocket::from(s))
            .map_err(setup("register with tokio"))?;
        Ok(Icmp6Socket {
            fd,
            types: types.to_vec(),
        })
    }

    /// Restricts the socket to one interface (SO_BINDTODEVICE).
    pub fn bind_device(&self, ifname: &str) -> Result<(), Icmp6Error> {
        socket2::SockRef::from(&self.fd)
            .bind_device(Some(ifname.as_bytes()))
            .map_err(setup("SO_BINDTODEVICE"))
    }

    /// Joins a multicast group on an interface.
    pub fn join(&self, group: &Ipv6Addr, ifindex: u32) -> Result<(), Icmp6Error> {
        socket2::SockRef::from(&self.fd)
            .join_multicast_v6(group, ifindex)
            .map_err(setup("IPV6_ADD_MEMBERSHIP"))
    }

    /// Leaves a multicast group on an interface.
    pub fn leave(&self, group: &Ipv6Addr, ifindex: u32) -> Result<(), Icmp6Error> {
        socket2::SockRef::from(&self.fd)
            .leave_multicast_v6(group, ifindex)
            .map_err(setup("IPV6_DROP_MEMBERSHIP"))
    }

    /// Joins ff02::2 (all-routers) on `ifindex`, as an advertising interface must.
    pub fn join_all_routers(&self, ifindex: u32) -> Result<(), Icmp6Error> {
        self.join(&ALL_ROUTERS, ifindex)
    }

    /// Receives the next packet of an accepted type into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<RecvMeta, Icmp6Error> {
        loop {
            let meta = self
                .fd
                .async_io(Interest::READABLE, || Self::recv_once(&self.fd, buf))
                .await?;
            let ty = buf.get(..meta.len).and_then(|b| b.first().copied());
            match ty {
                Some(t) if self.types.is_empty() || self.types.contains(&t) => return Ok(meta),
                _ => continue,
            }
        }
    }

    fn recv_once(s: &UdpSocket, buf: &mut [u8]) -> std::io::Result<RecvMeta> {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrIn6>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(nix_io)?;
        let (src, scope) = msg
            .address
            .map(|a| (a.ip(), a.scope_id()))
            .unwrap_or((Ipv6Addr::UNSPECIFIED, 0));
        let mut meta = RecvMeta {
            len: msg.bytes,
            src,
            hop_limit: 0,
            dst: Ipv6Addr::UNSPECIFIED,
            ifindex: scope,
        };
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6HopLimit(h) => {
                        meta.hop_limit = u8::try_from(h).unwrap_or(0);
                    }
                    ControlMessageOwned::Ipv6PacketInfo(pi) => {
                        meta.dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr);
                        meta.ifindex = pi.ipi6_ifindex;
                    }
                    _ => {}
                }
            }
        }
        Ok(meta)
    }

    /// Sends `bytes` to `dst` out of interface `ifindex`, from `src` if given (IPV6_PKTINFO),
    /// with hop limit 255.
    pub async fn send_to(
        &self,
        bytes: &[u8],
        dst: Ipv6Addr,
        ifindex: u32,
        src: Option<Ipv6Addr>,
    ) -> Result<usize, Icmp6Error> {
        let addr = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, ifindex));
        let pktinfo = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.unwrap_or(Ipv6Addr::UNSPECIFIED).octets(),
            },
            ipi6_ifindex: ifindex,
        };
        let n = self
            .fd
            .async_io(Interest::WRITABLE, || {
                let iov = [IoSlice::new(bytes)];
                let cmsgs = [ControlMessage::Ipv6PacketInfo(&pktinfo)];
                sendmsg(
                    self.fd.as_raw_fd(),
                    &iov,
                    &cmsgs,
                    MsgFlags::empty(),
                    Some(&addr),
                )
                .map_err(nix_io)
            })
            .await?;
        Ok(n)
    }
}

//! The check's probes: the real sockets. Each probe is bounded in time and packets.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Message};
use v6h_ra::wire::{NdOptionRepr, RaRepr, RsRepr};

const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const ALL_DHCP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
const ICMPV6_RA: u8 = 134;
const IPV6_HEADER: usize = 40;

/// What a router advertised, as far as the check cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaSeen {
    /// The router's link-local address.
    pub router: Ipv6Addr,
    /// Router lifetime in seconds (0: not a default router).
    pub router_lifetime: u16,
    /// The O flag: "ask DHCPv6 for other configuration".
    pub other_config: bool,
    /// RDNSS servers.
    pub dns: Vec<Ipv6Addr>,
    /// Advertised prefixes as `prefix/len`.
    pub prefixes: Vec<String>,
    /// MTU option, if any.
    pub mtu: Option<u32>,
}

/// `recvfrom` into a plain byte buffer (socket2 wants uninitialised memory; nix's safe wrapper
/// takes `&mut [u8]`). Honors the socket's read timeout.
fn recv_from(sock: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    use nix::sys::socket::{SockaddrIn6, SockaddrLike};
    use std::os::fd::AsRawFd;
    let (n, from) = nix::sys::socket::recvfrom::<SockaddrIn6>(sock.as_raw_fd(), buf)
        .map_err(std::io::Error::from)?;
    let from = from
        .filter(|a| a.family() == Some(nix::sys::socket::AddressFamily::Inet6))
        .ok_or_else(|| std::io::Error::other("recvfrom returned no IPv6 source"))?;
    Ok((n, SocketAddr::V6(SocketAddrV6::from(from))))
}

/// Sends a Router Solicitation on `ifindex` and waits up to `wait` for a Router Advertisement.
pub fn solicit_ra(ifindex: u32, wait: Duration) -> std::io::Result<Option<RaSeen>> {
    let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    sock.set_multicast_hops_v6(255)?;
    sock.set_unicast_hops_v6(255)?;
    sock.set_multicast_if_v6(ifindex)?;
    let rs = RsRepr::default()
        .emit()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let to = SocketAddrV6::new(ALL_ROUTERS, 0, 0, ifindex);
    sock.send_to(&rs, &to.into())?;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sock.set_read_timeout(Some(left))?;
        let (n, from) = match recv_from(&sock, &mut buf) {
            Ok(r) => r,
            Err(e) if is_timeout(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let IpAddr::V6(router) = from.ip() else {
            continue;
        };
        if buf.first() != Some(&ICMPV6_RA) || (router.segments()[0] & 0xffc0) != 0xfe80 {
            continue;
        }
        let Ok(ra) = RaRepr::parse(&buf[..n]) else {
            continue;
        };
        let mut seen = RaSeen {
            router,
            router_lifetime: ra.header.router_lifetime,
            other_config: ra.header.other,
            dns: Vec::new(),
            prefixes: Vec::new(),
            mtu: None,
        };
        for opt in &ra.options {
            match opt {
                NdOptionRepr::Rdnss(r) if r.lifetime > 0 => seen.dns.extend(&r.servers),
                NdOptionRepr::Prefix(p) => {
                    seen.prefixes.push(format!("{}/{}", p.prefix, p.prefix_len))
                }
                NdOptionRepr::Mtu(m) => seen.mtu = Some(*m),
                _ => {}
            }
        }
        return Ok(Some(seen));
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Sends a DHCPv6 Information-Request on `ifindex` and returns the DNS servers of the Reply.
/// Tries twice, `wait` each.
pub fn dhcpv6_dns(
    ifindex: u32,
    mac: &[u8],
    wait: Duration,
) -> std::io::Result<Option<Vec<Ipv6Addr>>> {
    let sock = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_only_v6(true)?;
    sock.set_multicast_if_v6(ifindex)?;
    // Clients send from port 546; fall back to any port when a DHCP client holds it.
    let bound = sock
        .bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0).into())
        .or_else(|_| sock.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0).into()));
    bound?;
    let sock: UdpSocket = sock.into();
    let xid: [u8; 3] = rand::random();
    // DUID-LL (type 3, hardware type 1) from the interface's MAC.
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(mac);
    let request = Message::Client(ClientMessage {
        msg_type: 11,
        xid,
        options: vec![
            DhcpOption::ClientId(duid),
            DhcpOption::ElapsedTime(0),
            DhcpOption::Oro(vec![23, 24]),
        ],
    })
    .emit()
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let to = SocketAddrV6::new(ALL_DHCP, 547, 0, ifindex);
    let mut buf = [0u8; 1500];
    for _ in 0..2 {
        sock.send_to(&request, to)?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            let n = match sock.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(e) if is_timeout(&e) => break,
                Err(e) => return Err(e),
            };
            let Ok(Message::Client(reply)) = Message::parse(&buf[..n]) else {
                continue;
            };
            if reply.msg_type != 7 || reply.xid != xid {
                continue;
            }
            let dns = reply
                .options
                .iter()
                .filter_map(|o| match o {
                    DhcpOption::Addresses { code: 23, addrs } => Some(addrs.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            return Ok(Some(dns));
        }
    }
    Ok(None)
}

/// Asks `server` (UDP port 53) for the AAAA records of `name`.
pub fn resolve_aaaa(server: Ipv6Addr, name: &str, wait: Duration) -> Result<Vec<Ipv6Addr>, String> {
    let sock = UdpSocket::bind("[::]:0").map_err(|e| e.to_string())?;
    sock.connect((server, 53)).map_err(|e| e.to_string())?;
    let id: u16 = rand::random();
    let query =
        crate::dns::build_query(id, name, crate::dns::TYPE_AAAA).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    for _ in 0..2 {
        sock.send(&query).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match sock.recv(&mut buf) {
            Ok(n) => match crate::dns::parse_aaaa_response(&buf[..n], id, name) {
                Err(crate::dns::DnsError::Mismatch) => continue,
                other => return other.map_err(|e| e.to_string()),
            },
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(format!("{server}: {e}")),
        }
    }
    Err(format!(
        "no answer from {server} within {} s",
        2 * wait.as_secs()
    ))
}

/// The source address the kernel picks for new connections to `dst`.
pub fn source_for(dst: Ipv6Addr) -> std::io::Result<Ipv6Addr> {
    let sock = UdpSocket::bind("[::]:0")?;
    sock.connect((dst, 9))?;
    match sock.local_addr()?.ip() {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(_) => Err(std::io::Error::other("IPv4 source for an IPv6 destination")),
    }
}

/// The result of an HTTP GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResult {
    /// The status code.
    pub status: u16,
    /// The source address of the connection.
    pub source: IpAddr,
    /// Time to the status line.
    pub elapsed: Duration,
}

/// Fetches `path` from `addr`, sending `host_header`; returns the status and source address.
pub fn http_get(
    addr: SocketAddr,
    host_header: &str,
    path: &str,
    wait: Duration,
) -> Result<HttpResult, String> {
    let started = Instant::now();
    let mut conn =
        TcpStream::connect_timeout(&addr, wait).map_err(|e| format!("connect to {addr}: {e}"))?;
    let source = conn.local_addr().map_err(|e| e.to_string())?.ip();
    conn.set_read_timeout(Some(wait))
        .map_err(|e| e.to_string())?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: v6home-check\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match conn.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..got]);
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer from {addr}: {line:?}"))?;
    Ok(HttpResult {
        status,
        source,
        elapsed: started.elapsed(),
    })
}

/// An ICMPv6 socket for echo requests to one target, with fragmentation off.
pub struct Pinger {
    sock: Socket,
    target: Ipv6Addr,
    ident: u16,
    seq: u16,
}

/// What came back for one echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// An echo reply after this long.
    Reply(Duration),
    /// A Packet Too Big with this MTU (from a router on the way).
    TooBig(u32),
    /// The kernel already knows the path is smaller (EMSGSIZE on send).
    TooBigLocal,
    /// Nothing within the wait.
    Lost,
}

impl Pinger {
    /// Opens the socket (needs root or CAP_NET_RAW).
    pub fn new(target: Ipv6Addr) -> std::io::Result<Pinger> {
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Ipv6DontFrag, &true)
            .map_err(std::io::Error::from)?;
        Ok(Pinger {
            sock,
            target,
            ident: rand::random(),
            seq: 0,
        })
    }

    /// Sends one echo request making an IPv6 packet of `size` bytes, and waits for the answer.
    pub fn echo(&mut self, size: usize, wait: Duration) -> std::io::Result<Echo> {
        self.seq = self.seq.wrapping_add(1);
        let len = size.saturating_sub(IPV6_HEADER).max(8);
        let mut msg = vec![0u8; len];
        msg[0] = ICMPV6_ECHO_REQUEST;
        msg[4..6].copy_from_slice(&self.ident.to_be_bytes());
        msg[6..8].copy_from_slice(&self.seq.to_be_bytes());
        let started = Instant::now();
        let to = SocketAddrV6::new(self.target, 0, 0, 0);
        match self.sock.send_to(&msg, &to.into()) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE) => {
                return Ok(Echo::TooBigLocal);
            }
            Err(e) => return Err(e),
        }
        let deadline = started + wait;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Echo::Lost);
            }
            self.sock.set_read_timeout(Some(left))?;
            let (n, _from) = match recv_from(&self.sock, &mut buf) {
                Ok(r) => r,
                Err(e) if is_timeout(&e) => return Ok(Echo::Lost),
                Err(e) => return Err(e),
            };
            let pkt = &buf[..n];
            match pkt.first() {
                Some(&ICMPV6_ECHO_REPLY)
                    if pkt.get(4..6) == Some(&self.ident.to_be_bytes()[..])
                        && pkt.get(6..8) == Some(&self.seq.to_be_bytes()[..]) =>
                {
                    return Ok(Echo::Reply(started.elapsed()));
                }
                Some(&ICMPV6_PACKET_TOO_BIG) if n >= 8 + IPV6_HEADER + 8 => {
                    // The quoted packet: our echo request to the target.
                    let quoted_dst = &pkt[8 + 24..8 + 40];
                    let quoted_icmp = &pkt[8 + IPV6_HEADER..];
                    if quoted_dst == self.target.octets()
                        && quoted_icmp.get(4..6) == Some(&self.ident.to_be_bytes()[..])
                    {
                        let mtu = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
                        return Ok(Echo::TooBig(mtu));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The outcome of a path MTU probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMtu {
    /// Packets of this size get through; bigger ones were answered with Packet Too Big.
    Known(usize),
    /// Packets up to `works` get through, packets of `lost` vanish without Packet Too Big.
    BlackHole {
        /// Largest size that got an answer.
        works: usize,
        /// Smallest size that vanished.
        lost: usize,
    },
    /// Not even 1280-byte packets get an answer.
    Unreachable,
}

/// Probes the path MTU to the pinger's target: starts at 1500 and follows Packet Too Big,
/// and tells an MTU black hole (big packets silently dropped) apart.
pub fn probe_path_mtu(pinger: &mut Pinger, wait: Duration) -> std::io::Result<PathMtu> {
    const SIZES: [usize; 8] = [1500, 1480, 1452, 1428, 1420, 1400, 1380, 1280];
    let mut size = 1500;
    let mut lost_at = None;
    for _ in 0..12 {
        match pinger.echo(size, wait)? {
            Echo::Reply(_) => {
                return Ok(match lost_at {
                    Some(lost) => PathMtu::BlackHole { works: size, lost },
                    None => PathMtu::Known(size),
                });
            }
            Echo::TooBig(mtu) => {
                let mtu = (mtu as usize).clamp(1280, size.saturating_sub(1).max(1280));
                size = mtu;
            }
            Echo::TooBigLocal => {
                size = SIZES.iter().copied().find(|s| *s < size).unwrap_or(1280);
            }
            Echo::Lost => {
                if size == 1280 {
                    return Ok(PathMtu::Unreachable);
                }
                lost_at.get_or_insert(size);
                size = 1280;
            }
        }
    }
    Ok(PathMtu::Unreachable)
}

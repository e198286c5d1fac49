//! The DHCPv6 daemon: the IO shell around [`crate::server::Server`].
//!
//! One UDP socket bound to `[::]:547` with `IPV6_RECVPKTINFO`, joined to ff02::1:2 on every
//! served interface; replies leave from the same socket, so from port 547 (dhcp6s replies
//! from an ephemeral port). The server DUID is kept in a file (created once, never
//! regenerated; imported from dhcp6s's `dhcp6s_duid` when present). SIGHUP reloads the
//! configuration and keeps the old one if the new one is invalid; SIGUSR1 logs the counters;
//! SIGTERM/SIGINT stop the daemon.

use std::io::IoSliceMut;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, ConfigError, Warning};
use crate::duid;
use crate::server::{ALL_SERVERS_AND_RELAYS, DropReason, LinkInfo, Server};

/// Default location of the server DUID.
pub const DEFAULT_DUID_FILE: &str = "/var/lib/v6home/dhcp6-duid";
/// Where dhcp6s keeps its DUID (imported on first start).
pub const DHCP6S_DUID_FILE: &str = "/var/lib/dhcpv6/dhcp6s_duid";

/// Daemon failures.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An interface given on the command line does not exist.
    #[error("interface {name}: {source}")]
    Interface {
        /// Interface name.
        name: String,
        /// Lookup error.
        source: nix::Error,
    },
    /// Socket setup or IO failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The DUID file is unusable.
    #[error("DUID file {}: {msg}", path.display())]
    Duid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// No interface was given.
    #[error("no interface given: name at least one interface to serve")]
    NoInterfaces,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// What the daemon serves and where it keeps state.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Configuration file (`*.toml` native, anything else dhcp6s.conf).
    pub config_path: PathBuf,
    /// Interfaces to serve.
    pub interfaces: Vec<String>,
    /// Server DUID file (hex text).
    pub duid_file: PathBuf,
    /// A dhcp6s DUID file to import when `duid_file` does not exist yet.
    pub import_dhcp6s_duid: Option<PathBuf>,
    /// Port to bind (547; tests may use another).
    pub port: u16,
}

/// Detaches from the terminal (fork, setsid) like dhcp6s without `-f`. Call it before any
/// runtime or thread is started. Stderr is kept so logs still go where they went.
pub fn daemonize() -> Result<(), DaemonError> {
    nix::unistd::daemon(true, true).map_err(|e| DaemonError::Io {
        what: "daemon".into(),
        source: e.into(),
    })
}

/// Writes the process id to `path` (as dhcp6s `-P`).
pub fn write_pid_file(path: &Path) -> Result<(), DaemonError> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .map_err(io_err(format!("write pid file {}", path.display())))
}

/// Reads the MAC address of `ifname`, if it has an Ethernet-style one.
pub fn interface_mac(ifname: &str) -> Option<[u8; 6]> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name != ifname {
            continue;
        }
        if let Some(mac) = a
            .address
            .as_ref()
            .and_then(|s| s.as_link_addr())
            .and_then(|l| l.addr())
            && mac != [0; 6]
        {
            return Some(mac);
        }
    }
    None
}

/// Loads the server DUID from `path`, else imports dhcp6s's, else creates a DUID-LLT from the
/// first interface with a MAC (DUID-UUID if none has one) and writes it to `path`.
pub fn load_or_create_duid(
    path: &Path,
    import: Option<&Path>,
    interfaces: &[String],
) -> Result<Vec<u8>, DaemonError> {
    let derr = |msg: String| DaemonError::Duid {
        path: path.to_owned(),
        msg,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return duid::from_text(&text).map_err(|e| derr(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(derr(e.to_string())),
    }
    let imported = import.and_then(|p| {
        let bytes = std::fs::read(p).ok()?;
        match duid::from_dhcp6s_file(&bytes) {
            Ok(d) => {
                tracing::info!(file = %p.display(), duid = %duid::to_text(&d), "imported dhcp6s server DUID");
                Some(d)
            }
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "ignoring unreadable dhcp6s DUID file");
                None
            }
        }
    });
    let d = match imported {
        Some(d) => d,
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(duid::DUID_EPOCH_UNIX);
            match interfaces.iter().find_map(|i| interface_mac(i)) {
                Some(mac) => duid::llt_ethernet(mac, now),
                None => {
                    let mut r = [0u8; 16];
                    let bytes = std::fs::read("/proc/sys/kernel/random/uuid")
                        .map_err(|e| derr(format!("no MAC and no random source: {e}")))?;
                    let hexs: Vec<u8> = bytes.into_iter().filter(u8::is_ascii_hexdigit).collect();
                    for (i, b) in r.iter_mut().enumerate() {
                        let pair = hexs.get(2 * i..2 * i + 2).unwrap_or(b"00");
                        let s = std::str::from_utf8(pair).unwrap_or("00");
                        *b = u8::from_str_radix(s, 16).unwrap_or(0);
                    }
                    duid::uuid(r)
                }
            }
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| derr(e.to_string()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", duid::to_text(&d))).map_err(|e| derr(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| derr(e.to_string()))?;
    tracing::info!(file = %path.display(), duid = %duid::to_text(&d), "created server DUID");
    Ok(d)
}

/// Opens the server socket: `[::]:port`, IPv6 only, packet info on, ff02::1:2 joined on each
/// interface index, non-blocking.
pub fn open_socket(port: u16, ifindexes: &[u32]) -> Result<Socket, DaemonError> {
    let s =
        Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).map_err(io_err("socket"))?;
    s.set_only_v6(true).map_err(io_err("IPV6_V6ONLY"))?;
    s.set_reuse_address(true).map_err(io_err("SO_REUSEADDR"))?;
    setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true).map_err(|e| DaemonError::Io {
        what: "IPV6_RECVPKTINFO".into(),
        source: e.into(),
    })?;
    // Room for bursts (the kernel caps this at rmem_max).
    let _ = s.set_recv_buffer_size(4 << 20);
    let bind = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
    s.bind(&SockAddr::from(bind))
        .map_err(io_err(format!("bind [::]:{port}")))?;
    for &ix in ifindexes {
        s.join_multicast_v6(&ALL_SERVERS_AND_RELAYS, ix)
            .map_err(io_err(format!("join ff02::1:2 on ifindex {ix}")))?;
    }
    s.set_multicast_loop_v6(false)
        .map_err(io_err("IPV6_MULTICAST_LOOP"))?;
    s.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
    Ok(s)
}

/// One received datagram's metadata.
struct Received {
    len: usize,
    link: LinkInfo,
}

/// Receives one datagram; `Ok(None)` when nothing is pending.
fn recv_one(fd: i32, buf: &mut [u8], cmsg: &mut [u8]) -> std::io::Result<Option<Received>> {
    let mut iov = [IoSliceMut::new(buf)];
    let r = match recvmsg::<SockaddrIn6>(fd, &mut iov, Some(cmsg), MsgFlags::MSG_TRUNC) {
        Ok(r) => r,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(src) = r.address else {
        return Ok(Some(Received {
            len: 0,
            link: LinkInfo {
                ifindex: 0,
                src: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
                dst: Ipv6Addr::UNSPECIFIED,
            },
        }));
    };
    let mut ifindex = 0;
    let mut dst = Ipv6Addr::UNSPECIFIED;
    if let Ok(cmsgs) = r.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::Ipv6PacketInfo(pi) = c {
                ifindex = pi.ipi6_ifindex;
                dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr);
            }
        }
    }
    let truncated = r.flags.contains(MsgFlags::MSG_TRUNC);
    let src = SocketAddrV6::new(src.ip(), src.port(), src.flowinfo(), src.scope_id());
    Ok(Some(Received {
        // A truncated datagram is passed as length 0, which the decoder rejects.
        len: if truncated { 0 } else { r.bytes },
        link: LinkInfo { ifindex, src, dst },
    }))
}

/// Logs the counters of every link.
pub fn log_counters<B: crate::server::Bindings>(server: &Server<B>) {
    for (ix, name, c) in server.links() {
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter(|r| c.dropped_for(**r) > 0)
            .map(|r| format!("{}={}", r.name(), c.dropped_for(*r)))
            .collect();
        tracing::info!(
            interface = name,
            ifindex = ix,
            datagrams = c.datagrams,
            received = ?c.received,
            sent = ?c.sent,
            dropped = %drops.join(","),
            "counters"
        );
    }
    if server.unserved() > 0 {
        tracing::info!(
            datagrams = server.unserved(),
            "datagrams from unserved interfaces"
        );
    }
}

fn log_warnings(w: &[Warning]) {
    for w in w {
        tracing::warn!("{w}");
    }
}

fn check_interfaces(cfg: &Config, served: &[String]) {
    for i in &cfg.interfaces {
        if !served.contains(&i.name) {
            tracing::warn!(interface = %i.name, "interface block for an interface that is not served");
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Must be called inside a tokio runtime.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    if opts.interfaces.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    let (cfg, warnings) = Config::load(&opts.config_path)?;
    log_warnings(&warnings);
    check_interfaces(&cfg, &opts.interfaces);
    let mut ifindexes = Vec::new();
    for name in &opts.interfaces {
        let ix = nix::net::if_::if_nametoindex(name.as_str()).map_err(|source| {
            DaemonError::Interface {
                name: name.clone(),
                source,
            }
        })?;
        ifindexes.push(ix);
    }
    let duid = load_or_create_duid(
        &opts.duid_file,
        opts.import_dhcp6s_duid.as_deref(),
        &opts.interfaces,
    )?;
    let mut server = Server::stateless(duid, cfg);
    for (name, ix) in opts.interfaces.iter().zip(&ifindexes) {
        server.add_link(*ix, name);
    }
    let sock = open_socket(opts.port, &ifindexes)?;
    let udp =
        UdpSocket::from_std(std::net::UdpSocket::from(sock)).map_err(io_err("register socket"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io_err("SIGHUP handler"))?;
    let mut term = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(io_err("SIGUSR1 handler"))?;
    tracing::info!(
        interfaces = ?opts.interfaces,
        port = opts.port,
        duid = %duid::to_text(server.duid()),
        "dhcp6 server listening on ff02::1:2"
    );
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
    loop {
        tokio::select! {
            ready = udp.readable() => {
                ready.map_err(io_err("poll socket"))?;
                let fd = udp.as_raw_fd();
                // Drain the queue; nothing is allocated per message except the reply.
                loop {
                    let rx = udp.try_io(Interest::READABLE, || {
                        recv_one(fd, &mut buf, &mut cmsg)?
                            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::WouldBlock))
                    });
                    match rx {
                        Ok(rx) => {
                            let now = start.elapsed().as_secs();
                            let data = buf.get(..rx.len).unwrap_or_default();
                            for reply in server.handle(now, data, &rx.link) {
                                if let Err(e) = udp.try_send_to(&reply.bytes, SocketAddr::V6(reply.to)) {
                                    tracing::debug!(to = %reply.to, error = %e, "send failed");
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "recvmsg failed");
                            break;
                        }
                    }
                }
            }
            _ = hup.recv() => {
                match Config::load(&opts.config_path) {
                    Ok((cfg, warnings)) => {
                        log_warnings(&warnings);
                        check_interfaces(&cfg, &opts.interfaces);
                        server.set_config(cfg);
                        tracing::info!(file = %opts.config_path.display(), "configuration reloaded");
                    }
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the old configuration"),
                }
            }
            _ = usr1.recv() => log_counters(&server),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    log_counters(&server);
    tracing::info!("dhcp6 server stopped");
    Ok(())
}

//! The IO shell: one UDP socket, batched `sendmmsg`/`recvmmsg`, and a loop that wakes every
//! slice (1 ms by default) to send the Solicits that are due and drain what arrived.
//!
//! By default the loop sleeps a whole slice instead of waking per datagram, which keeps the
//! generator's own CPU cost low (one `recvmmsg` returns everything that arrived during the
//! slice); the price is that measured round trips include up to one slice of batching delay
//! and Requests leave in one burst per slice. With [`IoOptions::wake_on_rx`] it waits in
//! `ppoll` instead and answers each Advertise as soon as it arrives (more CPU, true round
//! trips). Neither changes what counts as a drop (the timeout is far longer than a slice).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::socket::{
    MsgFlags, MultiHeaders, SockaddrIn6, recvmmsg, sendmmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;

use crate::core::Generator;

/// All DHCP relay agents and servers (RFC 8415 §7.1).
pub const ALL_SERVERS_AND_RELAYS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Datagrams per `sendmmsg`/`recvmmsg` call.
pub const BATCH: usize = 64;
/// Receive buffer per datagram; larger server messages are counted as malformed.
const RX_BUF: usize = 4096;
/// Receive batches per wake-up at most, so a flood cannot starve the pacer.
const MAX_RX_BATCHES: usize = 256;
/// Socket buffer size requested (forced past `rmem_max` when the process may).
const SOCK_BUF: usize = 8 << 20;

/// IO failures.
#[derive(Debug, Error)]
pub enum IoError {
    /// The interface does not exist.
    #[error("interface {name}: {error}")]
    Interface {
        /// Interface name.
        name: String,
        /// Lookup error.
        error: nix::Error,
    },
    /// A socket call failed.
    #[error("{what}: {error}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        error: std::io::Error,
    },
    /// Receiving (or waiting to receive) failed with something other than "nothing to read".
    #[error("receive: {0}")]
    Recv(nix::Error),
}

/// Where and how the generator talks.
#[derive(Debug, Clone)]
pub struct IoOptions {
    /// Interface to send on.
    pub interface: String,
    /// Local UDP port (546: servers answer direct clients there).
    pub bind_port: u16,
    /// Unicast server address; `None` sends to ff02::1:2 on the interface.
    pub server: Option<Ipv6Addr>,
    /// Server UDP port (547).
    pub server_port: u16,
    /// Wake-up period of the loop, microseconds.
    pub slice_us: u64,
    /// Wake as soon as a datagram arrives instead of sleeping the whole slice.
    pub wake_on_rx: bool,
}

/// What the IO loop observed besides the generator's counters.
#[derive(Debug, Clone, Default)]
pub struct IoReport {
    /// Wall time of the run, microseconds.
    pub elapsed_us: u64,
    /// CPU time (user + system) the generator thread used, nanoseconds, if readable.
    pub cpu_ns: Option<u64>,
    /// Datagrams the kernel refused to send (they then count as drops).
    pub send_errors: u64,
    /// Datagrams received.
    pub received: u64,
    /// Truncated datagrams received.
    pub truncated: u64,
}

impl IoReport {
    /// Generator CPU use in percent of one core.
    pub fn cpu_pct(&self) -> Option<f64> {
        let ns = self.cpu_ns?;
        (self.elapsed_us > 0).then(|| ns as f64 / (self.elapsed_us as f64 * 10.0))
    }
}

fn sock_err(what: &'static str) -> impl FnOnce(std::io::Error) -> IoError {
    move |error| IoError::Socket { what, error }
}

/// On-CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`).
pub fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Opens the client socket: `[::]:bind_port`, bound to the interface, multicast out of it,
/// blocking (receives use `MSG_DONTWAIT`).
pub fn open_socket(opts: &IoOptions, ifindex: u32) -> Result<Socket, IoError> {
    let s =
        Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).map_err(sock_err("socket"))?;
    s.set_only_v6(true).map_err(sock_err("IPV6_V6ONLY"))?;
    s.bind_device(Some(opts.interface.as_bytes()))
        .map_err(sock_err("SO_BINDTODEVICE"))?;
    if setsockopt(&s, sockopt::RcvBufForce, &SOCK_BUF).is_err() {
        let _ = s.set_recv_buffer_size(SOCK_BUF);
    }
    if setsockopt(&s, sockopt::SndBufForce, &SOCK_BUF).is_err() {
        let _ = s.set_send_buffer_size(SOCK_BUF);
    }
    s.set_multicast_if_v6(ifindex)
        .map_err(sock_err("IPV6_MULTICAST_IF"))?;
    s.set_multicast_loop_v6(false)
        .map_err(sock_err("IPV6_MULTICAST_LOOP"))?;
    let bind = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, opts.bind_port, 0, 0);
    s.bind(&SockAddr::from(bind)).map_err(sock_err("bind"))?;
    Ok(s)
}

/// Reusable batch buffers.
struct Batch {
    bufs: Vec<Vec<u8>>,
    rx_hdrs: MultiHeaders<SockaddrIn6>,
    tx_hdrs: MultiHeaders<SockaddrIn6>,
    lens: Vec<usize>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bufs: (0..BATCH).map(|_| vec![0u8; RX_BUF]).collect(),
            rx_hdrs: MultiHeaders::preallocate(BATCH, None),
            tx_hdrs: MultiHeaders::preallocate(BATCH, None),
            lens: Vec::with_capacity(BATCH),
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; lengths go to `self.lens`
    /// (0 for a truncated datagram).
    fn recv(&mut self, fd: RawFd, report: &mut IoReport) -> Result<usize, IoError> {
        self.lens.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let res = recvmmsg(
            fd,
            &mut self.rx_hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            None,
        );
        let msgs = match res {
            Ok(m) => m,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(0),
            Err(e) => return Err(IoError::Recv(e)),
        };
        for r in msgs {
            if r.flags.contains(MsgFlags::MSG_TRUNC) || r.bytes > RX_BUF {
                report.truncated += 1;
                self.lens.push(0);
            } else {
                self.lens.push(r.bytes);
            }
        }
        report.received += self.lens.len() as u64;
        Ok(self.lens.len())
    }

    /// Sends every datagram of `generator`'s queue to `to` and clears the queue. Partial sends
    /// are retried; errors are counted and the rest of the chunk is skipped.
    fn send_all(
        &mut self,
        fd: RawFd,
        generator: &mut Generator,
        to: SockaddrIn6,
        report: &mut IoReport,
    ) {
        let all: Vec<&[u8]> = generator.transmit().iter().collect();
        for chunk in all.chunks(BATCH) {
            let mut done = 0;
            let mut retries = 0;
            while done < chunk.len() {
                let rest = chunk.get(done..).unwrap_or_default();
                let iovs: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|d| [IoSlice::new(d)]).collect();
                let addrs = vec![Some(to); rest.len()];
                match sendmmsg(
                    fd,
                    &mut self.tx_hdrs,
                    iovs.iter(),
                    &addrs,
                    [],
                    MsgFlags::empty(),
                ) {
                    Ok(r) => {
                        let n = r.count();
                        if n == 0 {
                            report.send_errors += rest.len() as u64;
                            break;
                        }
                        done += n;
                    }
                    Err(Errno::EINTR) => {}
                    Err(Errno::ENOBUFS | Errno::EAGAIN) if retries < 100 => {
                        retries += 1;
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    Err(_) => {
                        // The first datagram of `rest` failed; skip it and go on.
                        report.send_errors += 1;
                        done += 1;
                    }
                }
            }
        }
        generator.clear_transmit();
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Runs `generator` to completion over a fresh socket and returns what the IO side saw.
pub fn run(generator: &mut Generator, opts: &IoOptions) -> Result<IoReport, IoError> {
    let ifindex = nix::net::if_::if_nametoindex(opts.interface.as_str()).map_err(|error| {
        IoError::Interface {
            name: opts.interface.clone(),
            error,
        }
    })?;
    let sock = open_socket(opts, ifindex)?;
    let fd = sock.as_raw_fd();
    let dst_ip = opts.server.unwrap_or(ALL_SERVERS_AND_RELAYS);
    let scope = if dst_ip.is_multicast() || dst_ip.is_unicast_link_local() {
        ifindex
    } else {
        0
    };
    let to = SockaddrIn6::from(SocketAddrV6::new(dst_ip, opts.server_port, 0, scope));
    let slice = opts.slice_us.max(1);
    let mut batch = Batch::new();
    let mut report = IoReport::default();
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let mut now = 0;
    loop {
        generator.poll_transmit(now);
        batch.send_all(fd, generator, to, &mut report);
        // Drain what arrived, but hand back to the pacer after a bounded number of batches.
        for _ in 0..MAX_RX_BATCHES {
            let n = batch.recv(fd, &mut report)?;
            let t = micros(start);
            for (buf, &len) in batch.bufs.iter().zip(&batch.lens) {
                generator.handle(t, buf.get(..len).unwrap_or_default());
            }
            if !generator.transmit().is_empty() {
                batch.send_all(fd, generator, to, &mut report);
            }
            if n < BATCH {
                break;
            }
        }
        now = micros(start);
        if generator.is_done(now) {
            break;
        }
        // Wait for the next slice boundary (or, with wake_on_rx, the next datagram).
        let next = (now / slice + 1) * slice;
        let wait = Duration::from_micros(next.saturating_sub(now));
        if opts.wake_on_rx {
            let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
            match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(IoError::Recv(e)),
            }
        } else {
            std::thread::sleep(wait);
        }
        now = micros(start);
    }
    generator.finish(now);
    report.elapsed_us = micros(start);
    report.cpu_ns = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(report)
}

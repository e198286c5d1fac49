//! The DHCPv6 daemon: the IO shell around [`crate::server::Server`].
//!
//! One UDP socket bound to `[::]:547` with `IPV6_RECVPKTINFO`, joined to ff02::1:2 on every
//! served interface; replies leave from the same socket, so from port 547 (dhcp6s replies
//! from an ephemeral port). The server DUID is kept in a file (created once, never
//! regenerated; imported from dhcp6s's `dhcp6s_duid` when present). SIGHUP reloads the
//! configuration and keeps the old one if the new one is invalid (adding pools to a stateless
//! server or removing all pools switches the kind of server on the same socket); SIGUSR1 logs
//! the counters; SIGTERM/SIGINT stop the daemon.
//!
//! With pools or host reservations configured the daemon is stateful: leases come from
//! [`crate::stateful::EngineBindings`], are restored from the lease journal at start, and each
//! batch's lease changes are submitted to the journal's group commit. Advertises leave at once;
//! every other reply of a batch that changed leases (or that follows such a batch still being
//! written) is sent by the commit thread right after its `fdatasync`, so the receive loop never
//! waits for the disk and one fsync covers every batch that arrived meanwhile. Expired leases
//! are reclaimed once a second. Without pools the stateless path sends at once.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn6, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, ConfigError, Warning};
use crate::duid;
use crate::server::{
    ALL_SERVERS_AND_RELAYS, Bindings, DropReason, IaContext, LinkInfo, NoBindings, Reply, Server,
};
use crate::stateful::{EngineBindings, StatefulError, engine_config};
use crate::status::{JournalStatus, LinkStatus, PoolStatus, Snapshot};
use crate::wire::DhcpOption;
use v6h_lease::{EngineStats, JournalStore, LeaseStore, StoreError};
use v6h_net::gated_log;
use v6h_net::loggate::LogGate;

/// Default location of the server DUID.
pub const DEFAULT_DUID_FILE: &str = "/var/lib/v6home/dhcp6-duid";
/// Default location of the lease journal.
pub const DEFAULT_LEASE_FILE: &str = "/var/lib/v6home/dhcp6-leases.journal";
/// Where dhcp6s keeps its DUID (imported on first start).
pub const DHCP6S_DUID_FILE: &str = "/var/lib/dhcpv6/dhcp6s_duid";

/// Daemon failures.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An interface given on the command line does not exist.
    #[error("interface {name}: {error}")]
    Interface {
        /// Interface name.
        name: String,
        /// Lookup error.
        error: nix::Error,
    },
    /// Socket setup or IO failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        error: std::io::Error,
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
    /// The pools or reservations are invalid.
    #[error(transparent)]
    Stateful(#[from] StatefulError),
    /// The lease store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |error| DaemonError::Io { what, error }
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
    /// Lease journal, used when pools or reservations are configured.
    pub lease_file: PathBuf,
    /// Refreshed once a second with the counters, leases and journal figures (for a status
    /// file or a metrics endpoint); `None`: not collected.
    pub stats: Option<crate::status::Stats>,
    /// When set, reloads come from here instead of SIGHUP: each new value is the file to
    /// load (an embedding program such as `v6home gateway` checks its whole configuration
    /// first, then hands the DHCPv6 part over). SIGHUP itself is then ignored.
    pub reload: Option<tokio::sync::watch::Receiver<PathBuf>>,
}

/// Batches of Replies waiting for their lease commit at most; beyond this the receive loop
/// waits for the journal (back-pressure instead of unbounded memory).
const MAX_INFLIGHT_BATCHES: usize = 4096;

/// Sends replies from the receive loop or, once their leases are on disk, from the
/// lease-commit thread.
#[derive(Clone)]
struct Outbox {
    sock: Arc<Socket>,
    /// Batches submitted to the journal whose replies are not sent yet.
    inflight: Arc<AtomicUsize>,
    /// Replies the kernel did not accept.
    send_failures: Arc<AtomicU64>,
    /// Replies dropped because their lease commit failed.
    commit_failures: Arc<AtomicU64>,
    /// Rate limits for error lines that can repeat per packet or per commit.
    gates: Arc<Mutex<Gates>>,
}

/// One [`LogGate`] per kind of repeated error line: each logs at most once a second, with
/// the count of lines suppressed since the last one.
#[derive(Debug, Default)]
struct Gates {
    /// A group commit failed (disk full, I/O error): its replies are dropped.
    commit: LogGate,
    /// The journal write of expired leases failed.
    expiry: LogGate,
    /// `recvmmsg` failed.
    recv: LogGate,
    /// IAs refused because a pool is exhausted.
    exhausted: LogGate,
    /// IAs refused by the per-client lease cap.
    client_limit: LogGate,
    /// Leases undone after failed commits.
    undo: LogGate,
}

fn gates(g: &Mutex<Gates>) -> std::sync::MutexGuard<'_, Gates> {
    g.lock().unwrap_or_else(|e| e.into_inner())
}

/// Logs a failed lease commit through `gate` (at most once a second, with the number of
/// failures suppressed since); returns whether a line was written.
fn log_commit_failure(
    gate: &mut LogGate,
    now: Instant,
    error: &StoreError,
    dropped: usize,
) -> bool {
    match gate.admit(now) {
        Some(suppressed) => {
            tracing::error!(suppressed, error = %error, dropped, "lease commit failed; replies not sent");
            true
        }
        None => false,
    }
}

thread_local! {
    /// `sendmmsg` headers of the current thread (they hold raw pointers, so they are not `Send`).
    static TX_HDRS: std::cell::RefCell<MultiHeaders<SockaddrIn6>> =
        std::cell::RefCell::new(MultiHeaders::preallocate(BATCH, None));
}

impl Outbox {
    fn new(sock: Socket) -> Self {
        Outbox {
            sock: Arc::new(sock),
            inflight: Arc::new(AtomicUsize::new(0)),
            send_failures: Arc::new(AtomicU64::new(0)),
            commit_failures: Arc::new(AtomicU64::new(0)),
            gates: Arc::new(Mutex::new(Gates::default())),
        }
    }

    /// Sends `replies` with one `sendmmsg` per [`BATCH`]; failures are counted.
    fn send_now(&self, replies: &[Reply]) {
        if replies.is_empty() {
            return;
        }
        let fd = self.sock.as_raw_fd();
        let failed = TX_HDRS.with(|h| send_batches(fd, &mut h.borrow_mut(), replies));
        if failed > 0 {
            let total = self
                .send_failures
                .fetch_add(u64::try_from(failed).unwrap_or(u64::MAX), Ordering::Relaxed);
            tracing::debug!(failed, total, "replies not sent");
        }
    }

    /// Sends `replies` once `commit` has completed (called on the commit thread).
    fn send_committed(&self, result: Result<(), StoreError>, replies: &[Reply]) {
        match result {
            Ok(()) => self.send_now(replies),
            Err(e) => {
                self.commit_failures.fetch_add(
                    u64::try_from(replies.len()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                log_commit_failure(
                    &mut gates(&self.gates).commit,
                    Instant::now(),
                    &e,
                    replies.len(),
                );
            }
        }
    }
}

/// What the receive loop needs from the lease service besides [`Bindings`].
trait Service: Bindings {
    /// Sends the replies of one batch: at once, or after the batch's lease changes (and every
    /// earlier batch's) are on disk.
    fn dispatch(&mut self, replies: Vec<Reply>, out: &Outbox);
    /// Applies a reloaded configuration to the pools; `SwitchMode` when pools were added to a
    /// stateless server or all removed from a stateful one.
    fn reload(&mut self, now: u64, cfg: &Config, served: &[String]) -> Result<Reloaded, String>;
    /// Called before each received batch is handled.
    fn before_batch(&mut self, _out: &Outbox) {}
    /// Reclaims expired leases (called every second).
    fn on_timer(&mut self, now: u64, out: &Outbox);
    /// Current time in the service's clock, given the daemon start.
    fn now(&self, start: Instant) -> u64;
    /// Logs the service's own counters.
    fn log_stats(&self) {}
    /// Adds the service's leases, pools and journal figures to a status snapshot.
    fn fill(&mut self, _snap: &mut Snapshot) {}
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reloaded {
    /// The new configuration is in place.
    Applied,
    /// The server must change between stateless and stateful.
    SwitchMode,
}

impl Service for NoBindings {
    fn dispatch(&mut self, replies: Vec<Reply>, out: &Outbox) {
        out.send_now(&replies);
    }
    fn reload(&mut self, _now: u64, cfg: &Config, served: &[String]) -> Result<Reloaded, String> {
        match engine_config(cfg, served) {
            Ok(None) => Ok(Reloaded::Applied),
            Ok(Some(_)) => Ok(Reloaded::SwitchMode),
            Err(e) => Err(e.to_string()),
        }
    }
    fn on_timer(&mut self, _now: u64, _out: &Outbox) {}
    fn now(&self, start: Instant) -> u64 {
        start.elapsed().as_secs()
    }
}

/// The stateful service: engine plus lease journal, committed before every Reply.
struct Durable {
    bindings: EngineBindings,
    store: JournalStore,
    /// Refusal counters already logged.
    seen: EngineStats,
    gates: Arc<Mutex<Gates>>,
    /// Changes whose group commit failed, to be undone in the engine.
    failed: Arc<FailedCommits>,
}

/// Lease changes whose commit failed (filled on the commit thread, drained by the receive
/// loop). `any` lets the receive loop check for them without taking the lock.
#[derive(Default)]
struct FailedCommits {
    any: std::sync::atomic::AtomicBool,
    changes: Mutex<Vec<v6h_lease::Change>>,
}

impl FailedCommits {
    fn push(&self, mut changes: Vec<v6h_lease::Change>) {
        let mut g = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        g.append(&mut changes);
        self.any.store(true, Ordering::Release);
    }

    fn take(&self) -> Vec<v6h_lease::Change> {
        let mut g = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        self.any.store(false, Ordering::Release);
        std::mem::take(&mut *g)
    }
}

impl Durable {
    /// Undoes in the engine the grants, renewals and declines whose commit failed (e.g. on a
    /// full disk), so they do not hold addresses the disk never recorded. Only while no
    /// commit is in flight: the store then holds everything that will ever be durable of
    /// them, and the engine has no changes pending (called between batches).
    fn undo_failed(&mut self, out: &Outbox) {
        if !self.failed.any.load(Ordering::Acquire) || out.inflight.load(Ordering::Acquire) != 0 {
            return;
        }
        let mut undone = 0u64;
        for c in self.failed.take() {
            if let v6h_lease::Change::Put(r) = c {
                let durable = self.store.get(&r.resource);
                if self.bindings.engine().reconcile(&r, durable.as_ref()) {
                    undone += 1;
                }
            }
        }
        if undone > 0 {
            gated_log!(
                gates(&self.gates).undo,
                Instant::now(),
                warn,
                undone,
                "leases whose commit failed were undone in memory (their replies were not sent)"
            );
        }
    }

    /// Logs (at WARN, at most once a second each) IAs refused since the last call because a
    /// pool is exhausted or a client reached its lease cap. O(1): compares two counters.
    fn log_refusals(&mut self) {
        let st = self.bindings.stats();
        if st == self.seen {
            return;
        }
        let now = Instant::now();
        let mut g = gates(&self.gates);
        if st.pool_exhausted > self.seen.pool_exhausted {
            gated_log!(
                g.exhausted,
                now,
                warn,
                refused = st.pool_exhausted - self.seen.pool_exhausted,
                total = st.pool_exhausted,
                "address or prefix pool exhausted: IAs answered NoAddrsAvail/NoPrefixAvail"
            );
        }
        if st.client_limit > self.seen.client_limit {
            gated_log!(
                g.client_limit,
                now,
                warn,
                refused = st.client_limit - self.seen.client_limit,
                total = st.client_limit,
                "clients at max_leases_per_client: IAs answered NoAddrsAvail/NoPrefixAvail"
            );
        }
        self.seen = st;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An Advertise promises nothing (RFC 8415 §18.3.1), so it need not wait for the journal.
fn is_advertise(r: &Reply) -> bool {
    r.bytes.first() == Some(&crate::wire::msg::ADVERTISE)
}

impl Bindings for Durable {
    fn answer_ia(&mut self, now: u64, ctx: &IaContext<'_>, ia: &DhcpOption) -> Option<DhcpOption> {
        self.bindings.answer_ia(now, ctx, ia)
    }
    fn confirm(&mut self, now: u64, link: &str, addrs: &[Ipv6Addr]) -> Option<bool> {
        self.bindings.confirm(now, link, addrs)
    }
}

impl Service for Durable {
    fn dispatch(&mut self, mut replies: Vec<Reply>, out: &Outbox) {
        self.log_refusals();
        let changes = self.bindings.take_changes();
        // Advertises go at once; every other reply may confirm a lease of this batch or of an
        // earlier one still being written, so it waits for the journal.
        let (now, waiting): (Vec<Reply>, Vec<Reply>) = replies.drain(..).partition(is_advertise);
        out.send_now(&now);
        if waiting.is_empty() && changes.is_empty() {
            return;
        }
        if changes.is_empty() && out.inflight.load(Ordering::Acquire) == 0 {
            out.send_now(&waiting);
            return;
        }
        while out.inflight.load(Ordering::Acquire) >= MAX_INFLIGHT_BATCHES {
            // Back-pressure: the journal is far behind; let it catch up.
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        out.inflight.fetch_add(1, Ordering::AcqRel);
        let o = out.clone();
        let failed = self.failed.clone();
        self.store.submit_then_returning(changes, move |result| {
            let result = result.map_err(|(e, changes)| {
                // Recorded before `inflight` drops, so the receive loop sees them first.
                failed.push(changes);
                e
            });
            o.send_committed(result, &waiting);
            o.inflight.fetch_sub(1, Ordering::AcqRel);
        });
    }
    fn reload(&mut self, now: u64, cfg: &Config, served: &[String]) -> Result<Reloaded, String> {
        match engine_config(cfg, served) {
            Ok(Some(ec)) => self
                .bindings
                .engine()
                .reload(now, ec)
                .map(|_| Reloaded::Applied)
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(Reloaded::SwitchMode),
            Err(e) => Err(e.to_string()),
        }
    }
    fn before_batch(&mut self, out: &Outbox) {
        self.undo_failed(out);
    }
    fn on_timer(&mut self, now: u64, out: &Outbox) {
        self.undo_failed(out);
        let reclaimed = self.bindings.engine().expire(now);
        let changes = self.bindings.take_changes();
        if reclaimed > 0 {
            tracing::debug!(reclaimed, "expired leases reclaimed");
        }
        if !changes.is_empty() {
            let g = self.gates.clone();
            self.store.submit_then(changes, move |r| {
                if let Err(e) = r {
                    gated_log!(
                        gates(&g).expiry,
                        Instant::now(),
                        error,
                        error = %e,
                        "journal write of expired leases failed"
                    );
                }
            });
        }
    }
    fn now(&self, _start: Instant) -> u64 {
        unix_now()
    }
    fn fill(&mut self, snap: &mut Snapshot) {
        snap.stateful = true;
        let engine = self.bindings.engine();
        (snap.leases_bound, snap.leases_declined) = engine.lease_counts();
        snap.pools = engine
            .pool_usage()
            .into_iter()
            .map(|p| PoolStatus {
                link: p.link,
                pool: p.pool,
                size: u64::try_from(p.size).unwrap_or(u64::MAX),
                free: u64::try_from(p.free).unwrap_or(u64::MAX),
            })
            .collect();
        let e = self.bindings.stats();
        snap.pool_exhausted = e.pool_exhausted;
        snap.client_limit = e.client_limit;
        snap.journal = Some(JournalStatus::new(&self.store.stats()));
    }
    fn log_stats(&self) {
        let s = self.store.stats();
        tracing::info!(
            fsyncs = s.fsyncs,
            commits = s.commits,
            records = s.records,
            max_commits_per_fsync = s.max_batch,
            fsync_micros_avg = s.fsync_micros_total.checked_div(s.fsyncs).unwrap_or(0),
            fsync_micros_max = s.fsync_micros_max,
            compactions = s.compactions,
            corrupt_regions = s.corrupt_regions,
            corrupt_bytes = s.corrupt_bytes,
            torn_tail_bytes = s.torn_tail_bytes,
            "lease journal"
        );
        let e = self.bindings.stats();
        tracing::info!(
            bindings = self.bindings.binding_count(),
            pool_exhausted = e.pool_exhausted,
            client_limit = e.client_limit,
            "lease engine"
        );
    }
}

/// Detaches from the terminal (fork, setsid) like dhcp6s without `-f`. Call it before any
/// runtime or thread is started. Stderr is kept so logs still go where they went.
pub fn daemonize() -> Result<(), DaemonError> {
    nix::unistd::daemon(true, true).map_err(|e| DaemonError::Io {
        what: "daemon".into(),
        error: e.into(),
    })
}

/// Writes the process id to `path` (as dhcp6s `-P`).
pub fn write_pid_file(path: &Path) -> Result<(), DaemonError> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .map_err(io_err(format!("write pid file {}", path.display())))
}

/// Looks up the index of every interface; a missing one is an error.
pub fn resolve_interfaces(names: &[String]) -> Result<Vec<u32>, DaemonError> {
    names
        .iter()
        .map(|name| {
            nix::net::if_::if_nametoindex(name.as_str()).map_err(|error| DaemonError::Interface {
                name: name.clone(),
                error,
            })
        })
        .collect()
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
        error: e.into(),
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

/// Datagrams received and replies sent per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: the largest UDP payload over IPv6 fits.
const DATAGRAM_MAX: usize = 65536;

/// Reusable buffers for batched receive (`recvmmsg`).
struct BatchIo {
    bufs: Vec<Vec<u8>>,
    rx_hdrs: MultiHeaders<SockaddrIn6>,
    /// `(length, link)` of each datagram of the current batch.
    meta: Vec<(usize, LinkInfo)>,
}

impl BatchIo {
    fn new() -> Self {
        BatchIo {
            bufs: (0..BATCH).map(|_| vec![0u8; DATAGRAM_MAX]).collect(),
            rx_hdrs: MultiHeaders::preallocate(
                BATCH,
                Some(nix::cmsg_space!(nix::libc::in6_pktinfo)),
            ),
            meta: Vec::with_capacity(BATCH),
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking into `self.meta`.
    fn recv(&mut self, fd: i32) -> std::io::Result<usize> {
        self.meta.clear();
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
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            Err(e) => return Err(e.into()),
        };
        for r in msgs {
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
            let src = r
                .address
                .map_or(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0), |a| {
                    SocketAddrV6::new(a.ip(), a.port(), a.flowinfo(), a.scope_id())
                });
            // A truncated datagram (or one without a source) is passed as length 0, which
            // the decoder rejects and counts.
            let ok = !r.flags.contains(MsgFlags::MSG_TRUNC) && r.address.is_some();
            let len = if ok { r.bytes.min(DATAGRAM_MAX) } else { 0 };
            self.meta.push((len, LinkInfo { ifindex, src, dst }));
        }
        Ok(self.meta.len())
    }
}

/// Sends `replies` with one `sendmmsg` per [`BATCH`]; returns how many were not sent.
fn send_batches(fd: i32, hdrs: &mut MultiHeaders<SockaddrIn6>, replies: &[Reply]) -> usize {
    let mut failed = 0;
    for chunk in replies.chunks(BATCH) {
        let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|r| [IoSlice::new(&r.bytes)]).collect();
        let addrs: Vec<Option<SockaddrIn6>> = chunk
            .iter()
            .map(|r| Some(SockaddrIn6::from(r.to)))
            .collect();
        let sent = sendmmsg(fd, hdrs, iovs.iter(), &addrs, [], MsgFlags::MSG_DONTWAIT)
            .map(|r| r.count())
            .unwrap_or(0);
        failed += chunk.len() - sent.min(chunk.len());
    }
    failed
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
            interface = %name,
            ifindex = ix,
            datagrams = c.datagrams,
            received = ?c.received,
            sent = ?c.sent,
            dropped = %drops.join(","),
            ia_limit = c.ia_limit,
            relay_unknown_link = c.relay_unknown_link,
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

/// The signals the daemon reacts to, registered once for its lifetime.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, DaemonError> {
        Ok(Signals {
            hup: signal(SignalKind::hangup()).map_err(io_err("SIGHUP handler"))?,
            term: signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?,
            int: signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?,
            usr1: signal(SignalKind::user_defined1()).map_err(io_err("SIGUSR1 handler"))?,
        })
    }
}

/// Everything that outlives one configuration: socket, buffers, signals.
struct Shell<'a> {
    opts: &'a DaemonOptions,
    /// The file the configuration was last loaded from (the reload channel may change it).
    config_path: PathBuf,
    /// Reloads handed over by an embedding program (see [`DaemonOptions::reload`]).
    reload: Option<tokio::sync::watch::Receiver<PathBuf>>,
    started_unix: u64,
    ifindexes: &'a [u32],
    udp: UdpSocket,
    out: Outbox,
    io: BatchIo,
    signals: Signals,
    start: Instant,
}

/// Why [`serve`] returned.
enum Next {
    /// SIGTERM or SIGINT.
    Stop,
    /// A reload needs the other kind of server (stateless ↔ stateful).
    Switch(Box<Config>),
}

/// Opens the lease journal and restores the leases into a new engine.
fn open_stateful(
    opts: &DaemonOptions,
    duid: Vec<u8>,
    cfg: Config,
    ec: v6h_lease::EngineConfig,
) -> Result<Server<Durable>, DaemonError> {
    let mut bindings = EngineBindings::new(ec)?;
    let store = JournalStore::open(&opts.lease_file)?;
    let now = unix_now();
    log_recovery(&opts.lease_file, store.recovery());
    let report = bindings.engine().restore(now, store.load());
    store.commit(bindings.take_changes())?;
    tracing::info!(
        file = %opts.lease_file.display(),
        loaded = report.loaded,
        expired = report.expired,
        conflicts = report.conflicts,
        unknown_link = report.unknown_link,
        "leases restored"
    );
    Ok(Server::new(
        duid,
        cfg,
        Durable {
            bindings,
            store,
            seen: EngineStats::default(),
            gates: Arc::new(Mutex::new(Gates::default())),
            failed: Arc::new(FailedCommits::default()),
        },
    ))
}

/// Logs what the journal replay skipped: damaged regions at ERROR (leases were lost), a torn
/// tail at WARN (a crash mid-write; at most the record being written).
fn log_recovery(file: &Path, r: &v6h_lease::Recovery) {
    if r.corrupt() {
        tracing::error!(
            file = %file.display(),
            skipped_bytes = r.skipped_bytes,
            skipped_records_at_least = r.skipped_regions,
            kept_records = r.records,
            damaged_copy = %r.corrupt_copy.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
            "lease journal damaged: skipped the unreadable frames and kept every valid record; the leases in the skipped bytes are lost"
        );
    }
    if r.torn_tail_bytes > 0 {
        tracing::warn!(
            file = %file.display(),
            bytes = r.torn_tail_bytes,
            "lease journal had a torn tail (an interrupted write); cut off"
        );
    }
}

/// Serves `cfg` with the kind of server it needs until a stop or a mode switch.
async fn serve_config(
    shell: &mut Shell<'_>,
    duid: &[u8],
    cfg: Config,
) -> Result<Next, DaemonError> {
    match engine_config(&cfg, &shell.opts.interfaces)? {
        None => serve(shell, Server::stateless(duid.to_vec(), cfg)).await,
        Some(ec) => {
            let server = open_stateful(shell.opts, duid.to_vec(), cfg, ec)?;
            serve(shell, server).await
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Must be called inside a tokio runtime.
///
/// A SIGHUP that adds pools to a stateless server (or removes all from a stateful one)
/// switches the kind of server on the same socket; if the new kind cannot start (e.g. the
/// lease journal cannot be opened), the old configuration is served again.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    if opts.interfaces.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    let (cfg, warnings) = Config::load(&opts.config_path)?;
    log_warnings(&warnings);
    check_interfaces(&cfg, &opts.interfaces);
    let ifindexes = resolve_interfaces(&opts.interfaces)?;
    let duid = load_or_create_duid(
        &opts.duid_file,
        opts.import_dhcp6s_duid.as_deref(),
        &opts.interfaces,
    )?;
    // Validate the pools before the socket is opened, so a bad config fails fast.
    engine_config(&cfg, &opts.interfaces)?;
    let sock = open_socket(opts.port, &ifindexes)?;
    let rx = sock.try_clone().map_err(io_err("dup socket"))?;
    let udp =
        UdpSocket::from_std(std::net::UdpSocket::from(rx)).map_err(io_err("register socket"))?;
    let mut shell = Shell {
        opts: &opts,
        config_path: opts.config_path.clone(),
        reload: opts.reload.clone(),
        started_unix: unix_now(),
        ifindexes: &ifindexes,
        udp,
        out: Outbox::new(sock),
        io: BatchIo::new(),
        signals: Signals::new()?,
        start: Instant::now(),
    };
    tracing::info!(
        interfaces = ?opts.interfaces,
        port = opts.port,
        duid = %duid::to_text(&duid),
        "dhcp6 server listening on ff02::1:2"
    );
    let mut current = cfg.clone();
    let mut next = serve_config(&mut shell, &duid, cfg).await?;
    while let Next::Switch(new_cfg) = next {
        tracing::info!(
            stateful = engine_config(&new_cfg, &opts.interfaces)
                .ok()
                .flatten()
                .is_some(),
            "switching server mode"
        );
        next = match serve_config(&mut shell, &duid, (*new_cfg).clone()).await {
            Ok(n) => {
                current = *new_cfg;
                n
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed; serving the old configuration again");
                serve_config(&mut shell, &duid, current.clone()).await?
            }
        };
    }
    let failures = shell.out.send_failures.load(Ordering::Relaxed);
    if failures > 0 {
        tracing::warn!(
            send_failures = failures,
            "replies the kernel did not accept"
        );
    }
    let dropped = shell.out.commit_failures.load(Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(
            replies = dropped,
            "replies not sent because their leases could not be written"
        );
    }
    tracing::info!("dhcp6 server stopped");
    Ok(())
}

/// The receive loop for one kind of service.
async fn serve<B: Service>(
    shell: &mut Shell<'_>,
    mut server: Server<B>,
) -> Result<Next, DaemonError> {
    for (name, ix) in shell.opts.interfaces.iter().zip(shell.ifindexes) {
        server.add_link(*ix, name);
    }
    let start = shell.start;
    let mut expiry = tokio::time::interval(std::time::Duration::from_secs(1));
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let next = loop {
        tokio::select! {
            ready = shell.udp.readable() => {
                ready.map_err(io_err("poll socket"))?;
                let fd = shell.udp.as_raw_fd();
                // Drain the queue in batches: one recvmmsg per batch; replies go out at once
                // or, when they confirm leases, from the commit thread once those are on disk.
                loop {
                    let io = &mut shell.io;
                    match shell.udp.try_io(Interest::READABLE, || io.recv(fd)) {
                        Ok(_) => {
                            let now = server.bindings().now(start);
                            server.bindings().before_batch(&shell.out);
                            let mut replies: Vec<Reply> = Vec::with_capacity(io.meta.len());
                            for (i, (len, link)) in io.meta.iter().enumerate() {
                                let data = io.bufs.get(i).and_then(|b| b.get(..*len)).unwrap_or_default();
                                replies.extend(server.handle(now, data, link));
                            }
                            server.bindings().dispatch(replies, &shell.out);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            gated_log!(gates(&shell.out.gates).recv, Instant::now(), warn, error = %e, "recvmmsg failed");
                            break;
                        }
                    }
                }
            }
            _ = expiry.tick() => {
                let now = server.bindings().now(start);
                server.bindings().on_timer(now, &shell.out);
                publish(shell, &mut server);
            }
            r = reload_requested(&mut shell.reload) => {
                match r {
                    Some(path) => {
                        tracing::info!(file = %path.display(), "reload requested");
                        shell.config_path = path;
                        if let Some(next) = reload(shell, &mut server) {
                            break next;
                        }
                    }
                    // The sender is gone: no more reloads from there.
                    None => shell.reload = None,
                }
            }
            _ = shell.signals.hup.recv(), if shell.opts.reload.is_none() => {
                if let Some(next) = reload(shell, &mut server) {
                    break next;
                }
            }
            _ = shell.signals.usr1.recv() => {
                log_counters(&server);
                server.bindings().log_stats();
            }
            _ = shell.signals.term.recv() => break Next::Stop,
            _ = shell.signals.int.recv() => break Next::Stop,
        }
    };
    log_counters(&server);
    server.bindings().log_stats();
    publish(shell, &mut server);
    Ok(next)
}

/// Waits for a reload request from the embedding program (forever when there is none);
/// `None` when its sender is gone.
async fn reload_requested(
    r: &mut Option<tokio::sync::watch::Receiver<PathBuf>>,
) -> Option<PathBuf> {
    match r {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Re-reads the configuration file and applies it; an invalid one is logged and the running
/// configuration stays. `Some` when the kind of server must change.
fn reload<B: Service>(shell: &mut Shell<'_>, server: &mut Server<B>) -> Option<Next> {
    match Config::load(&shell.config_path) {
        Ok((cfg, warnings)) => {
            log_warnings(&warnings);
            check_interfaces(&cfg, &shell.opts.interfaces);
            let now = server.bindings().now(shell.start);
            match server.bindings().reload(now, &cfg, &shell.opts.interfaces) {
                Ok(Reloaded::Applied) => {
                    server.set_config(cfg);
                    tracing::info!(file = %shell.config_path.display(), "configuration reloaded");
                    None
                }
                Ok(Reloaded::SwitchMode) => Some(Next::Switch(Box::new(cfg))),
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the old configuration");
                    None
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the old configuration");
            None
        }
    }
}

/// Refreshes the shared status snapshot, when one is collected.
fn publish<B: Service>(shell: &Shell<'_>, server: &mut Server<B>) {
    let Some(stats) = &shell.opts.stats else {
        return;
    };
    let mut snap = Snapshot {
        pid: std::process::id(),
        config: shell.config_path.display().to_string(),
        links: server
            .links()
            .map(|(ix, name, c)| LinkStatus::new(ix, name, c))
            .collect(),
        unserved: server.unserved(),
        send_failures: shell.out.send_failures.load(Ordering::Relaxed),
        commit_failures: shell.out.commit_failures.load(Ordering::Relaxed),
        started_unix: shell.started_unix,
        updated_unix: unix_now(),
        ..Snapshot::default()
    };
    server.bindings().fill(&mut snap);
    stats.set(snap);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Issue 12 item 8: a full disk failed 3,640 commits in 7 s and logged 3,640 ERROR lines.
    /// Through the gate the same failures give one line a second (7), each with the count of
    /// those suppressed, and no failure goes uncounted.
    #[test]
    fn a_commit_failure_storm_logs_once_a_second() {
        let mut gate = LogGate::per_second();
        let start = Instant::now();
        let err = StoreError::Commit("No space left on device (os error 28)".into());
        let n = 3640u64;
        let logged = (0..n)
            .filter(|i| {
                let at = start + Duration::from_micros(i * 7_000_000 / n);
                log_commit_failure(&mut gate, at, &err, 1)
            })
            .count();
        assert_eq!(logged, 7);
        // The next line reports the failures held back since the last one (the 7th second's).
        let held = gate.suppressed();
        assert!((500..=530).contains(&held), "{held}");
        assert_eq!(gate.admit(start + Duration::from_secs(8)), Some(held));
    }
}

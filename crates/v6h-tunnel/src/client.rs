//! The AICCU-compatible client (`v6home tunnel start|tunnels|test`).
//!
//! Reads aiccu.conf (or the same keys in TOML), logs in over TIC with tcore's sans-IO
//! `Login` (retrying with exponential backoff while the server is unreachable), creates the
//! TUN interface with the tunnel's MTU, link-local and endpoint addresses (and a default route
//! via the PoP when `defaultroute`), and runs the AYIYA datapath on two threads with batched
//! I/O. Beats follow `v6h_ayiya::keepalive::Keepalive` (three at start, then one per
//! `Heartbeat_Interval`); they also re-learn the NAT mapping at the PoP. After three hard
//! send errors in a row the UDP socket is replaced by a freshly connected one. SIGTERM/SIGINT
//! set the link down and return.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};
use v6h_ayiya::aiccu_conf::AiccuConfig;
use v6h_ayiya::ayiya::{self, Delivery, HEADER_LEN, Repr, SigningKey};
use v6h_ayiya::keepalive::Keepalive;
use v6h_ayiya::tic::client::{Login, LoginOutcome, LoginParams};
use v6h_ayiya::tic::{LineFramer, TunnelInfo, TunnelListEntry, TunnelType};
use v6h_net::gated_log;
use v6h_net::loggate::LogGate;
use v6h_net::netlink::{Netlink, Route6, ignore_exists};

use crate::batch::{BATCH, GroReceiver, Segment, UdpBatch};
use crate::tundev::{self, Buffers, HEADROOM, unix_now};

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The config file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is invalid (message names file, line and key).
    #[error("{0}")]
    Config(String),
    /// TIC failed (login refused, tunnel not enabled, protocol error).
    #[error("TIC: {0}")]
    Tic(String),
    /// TIC server unreachable after all retries.
    #[error("TIC server {server} unreachable: {source}")]
    Unreachable {
        /// The server.
        server: String,
        /// The last error.
        #[source]
        source: std::io::Error,
    },
    /// Socket, TUN or runtime failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Interface configuration failed.
    #[error(transparent)]
    Netlink(#[from] v6h_net::netlink::NetlinkError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClientError {
    let what = what.into();
    move |source| ClientError::Io { what, source }
}

/// Loads aiccu.conf, or TOML with the same keys when the name ends in `.toml`.
/// Warnings (ignored keys, prefix matches) are logged.
pub fn load_config(path: &Path) -> Result<AiccuConfig, ClientError> {
    let bytes = std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let text = AiccuConfig::decode(&name, bytes).map_err(|e| ClientError::Config(e.to_string()))?;
    let text = if path.extension().is_some_and(|e| e == "toml") {
        toml_to_aiccu(&name, &text)?
    } else {
        text
    };
    let (cfg, warnings) =
        AiccuConfig::parse(&name, &text).map_err(|e| ClientError::Config(e.to_string()))?;
    for w in warnings {
        warn!("{w}");
    }
    if cfg.username.is_empty() || cfg.password.is_empty() {
        return Err(ClientError::Config(format!(
            "{name}: username and password are required"
        )));
    }
    Ok(cfg)
}

/// Keys of aiccu.conf that a program accepts but does not use, with the reason, for
/// [`warn_unused_keys`].
pub type Unused<'a> = &'a [(&'a str, &'a str)];

/// What `tunnel start` does not use although AICCU's parser accepts it (beyond the keys
/// AICCU itself ignores, which [`AiccuConfig::parse`] warns about): `local_ipv4_override`
/// replaces TIC's IPv4 Endpoint, which AICCU uses only for 6in4 tunnels and `aiccu test`.
pub const UNUSED_BY_START: Unused<'static> = &[(
    "local_ipv4_override",
    "'local_ipv4_override' changes nothing for an AYIYA tunnel (AICCU uses it only for 6in4 and `aiccu test`; `v6home tunnel test` pings it)",
)];

/// Logs one WARN line, `path:line: warning: reason`, for each of `keys` set in the aiccu.conf
/// at `path` (a `.toml` file gets no line numbers). `set` says whether a key is in effect
/// (e.g. `daemonize false` is not worth a warning).
pub fn warn_unused_keys(path: &Path, keys: Unused<'_>, set: impl Fn(&str) -> bool) {
    let text = std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let toml = path.extension().is_some_and(|e| e == "toml");
    for (key, why) in keys {
        if !set(key) {
            continue;
        }
        match AiccuConfig::key_line(&text, key) {
            Some(line) if !toml => warn!("{}:{line}: warning: {why}", path.display()),
            // Not written in the file (a default): nothing to warn about.
            None if !toml => {}
            _ => warn!("{}: warning: {why}", path.display()),
        }
    }
}

/// Converts a flat TOML table of aiccu.conf keys into aiccu.conf text.
pub fn toml_to_aiccu(name: &str, text: &str) -> Result<String, ClientError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ClientError::Config(format!("{name}: {e}")))?;
    let mut out = String::new();
    for (k, v) in table {
        match v {
            toml::Value::String(s) if !s.contains(['"', '\n', '\r']) => {
                out.push_str(&format!("{k} \"{s}\"\n"))
            }
            toml::Value::Boolean(b) => out.push_str(&format!("{k} {b}\n")),
            other => {
                return Err(ClientError::Config(format!(
                    "{name}: key {k:?}: expected a one-line string or a boolean, got {}",
                    other.type_str()
                )));
            }
        }
    }
    Ok(out)
}

fn system_string() -> String {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux/{}", rel.trim())
}

fn server_addr(server: &str) -> String {
    if server.contains(':') && !server.starts_with('[') && server.matches(':').count() > 1 {
        format!("[{server}]:{}", v6h_ayiya::tic::PORT)
    } else if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:{}", v6h_ayiya::tic::PORT)
    }
}

/// One TIC session (no retry).
pub async fn tic_once(cfg: &AiccuConfig, list_only: bool) -> Result<LoginOutcome, ClientError> {
    let addr = server_addr(&cfg.server);
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| ClientError::Unreachable {
        server: addr.clone(),
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"),
    })?
    .map_err(|source| ClientError::Unreachable {
        server: addr.clone(),
        source,
    })?;
    let mut login = Login::new(LoginParams {
        username: cfg.username.clone(),
        password: cfg.password.clone(),
        tunnel_id: cfg.tunnel_id.clone(),
        try_tls: false,
        require_tls: cfg.requiretls,
        system: system_string(),
        list_only,
    });
    let mut framer = LineFramer::new();
    let mut buf = [0u8; 2048];
    loop {
        while let Some(line) = login.poll_send() {
            if cfg.verbose {
                debug!("TIC > {line}");
            }
            conn.write_all(format!("{line}\n").as_bytes())
                .await
                .map_err(io("TIC write"))?;
        }
        if let Some(out) = login.outcome() {
            return out.map_err(|e| ClientError::Tic(e.to_string()));
        }
        if login.wants_tls() {
            return Err(ClientError::Tic(
                "server offered TLS, which this build does not do".into(),
            ));
        }
        if let Some(line) = framer.next_line() {
            let line = line.map_err(|e| ClientError::Tic(e.to_string()))?;
            if cfg.verbose {
                debug!("TIC < {line}");
            }
            // Errors are also recorded as the outcome; the loop reports them.
            let _ = login.handle_line(unix_now(), &line);
            continue;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut buf))
            .await
            .map_err(|_| ClientError::Tic("TIC server timed out".into()))?
            .map_err(io("TIC read"))?;
        if n == 0 {
            login.handle_eof();
            continue;
        }
        framer
            .push(&buf[..n])
            .map_err(|e| ClientError::Tic(e.to_string()))?;
    }
}

/// TIC with exponential backoff (1 s doubling to 60 s) while the server is unreachable, up to
/// `attempts` tries. Login and protocol errors are not retried.
pub async fn tic_with_retry(
    cfg: &AiccuConfig,
    list_only: bool,
    attempts: u32,
) -> Result<LoginOutcome, ClientError> {
    let mut delay = Duration::from_secs(1);
    let mut n = 0;
    loop {
        n += 1;
        match tic_once(cfg, list_only).await {
            Err(ClientError::Unreachable { server, source }) if n < attempts => {
                warn!("TIC server {server} unreachable ({source}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
            other => return other,
        }
    }
}

/// Formats `tunnel list` entries as AICCU's `tunnels` verb does: `id ipv6 ipv4 pop`.
pub fn format_tunnels(list: &[TunnelListEntry]) -> String {
    list.iter()
        .map(|t| {
            format!(
                "{} {} {} {}\n",
                t.id, t.ipv6_endpoint, t.ipv4_endpoint, t.pop_name
            )
        })
        .collect()
}

/// The client's connected UDP socket, replaceable when it keeps failing (e.g. the local IPv4
/// address changed): threads pick up the new one at their next batch.
#[derive(Debug)]
struct SockCell {
    cur: std::sync::RwLock<Arc<Socket>>,
    pop: SocketAddrV4,
    failures: std::sync::atomic::AtomicU32,
    /// Gates the reconnect warning, which a persistent error would repeat every third send.
    warn_gate: std::sync::Mutex<LogGate>,
    /// Set by [`Running::close`]: the datapath threads return at their next wake-up.
    stopping: std::sync::atomic::AtomicBool,
}

impl SockCell {
    fn get(&self) -> Arc<Socket> {
        self.cur.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Connects a fresh socket, swaps it in and shuts the old one down (which wakes the
    /// receiving thread).
    fn reconnect(&self) -> Result<(), ClientError> {
        let new = Arc::new(connect_udp(self.pop)?);
        let old = std::mem::replace(
            &mut *self.cur.write().unwrap_or_else(|p| p.into_inner()),
            new,
        );
        let _ = old.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    /// Counts a send result; after 3 hard failures in a row, reconnects.
    fn note(&self, r: &std::io::Result<usize>) {
        use std::sync::atomic::Ordering::Relaxed;
        match r {
            Err(e) if !transient(e) => {
                if self.failures.fetch_add(1, Relaxed) + 1 >= 3 {
                    self.failures.store(0, Relaxed);
                    let result = self.reconnect();
                    let mut gate = self.warn_gate.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(()) => gated_log!(
                            gate,
                            Instant::now(),
                            warn,
                            "UDP socket kept failing ({e}); reconnected to {}",
                            self.pop
                        ),
                        Err(e2) => gated_log!(
                            gate,
                            Instant::now(),
                            warn,
                            "UDP socket kept failing ({e}); reconnect failed: {e2}"
                        ),
                    }
                }
            }
            _ => self.failures.store(0, Relaxed),
        }
    }
}

/// A running tunnel: the TUN device, the socket and the datapath threads.
#[derive(Debug)]
pub struct Running {
    ifname: String,
    info: TunnelInfo,
    sock: Arc<SockCell>,
    /// The datapath threads (they hold the TUN device).
    threads: Vec<std::thread::JoinHandle<()>>,
    key: SigningKey,
    noconfigure: bool,
}

fn connect_udp(pop: SocketAddrV4) -> Result<Socket, ClientError> {
    let s =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io("UDP socket"))?;
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.connect(&SocketAddr::V4(pop).into())
        .map_err(io(format!("connect UDP {pop}")))?;
    Ok(s)
}

/// Sets up the interface and starts the datapath threads.
pub async fn start(
    cfg: &AiccuConfig,
    info: TunnelInfo,
    offload: bool,
) -> Result<Running, ClientError> {
    if info.tunnel_type != TunnelType::Ayiya {
        return Err(ClientError::Tic(format!(
            "tunnel {} is of type {:?}; only AYIYA is supported",
            info.id, info.tunnel_type
        )));
    }
    if !info.is_enabled() {
        return Err(ClientError::Tic(format!(
            "tunnel {} is not enabled (UserState {}, AdminState {})",
            info.id, info.user_state, info.admin_state
        )));
    }
    let ifname = cfg.ipv6_interface.clone();
    let tun = Arc::new(
        tundev::open_tun(&ifname, info.mtu, offload).map_err(io(format!("create TUN {ifname}")))?,
    );
    let nl = Netlink::new()?;
    nl.set_mtu(&ifname, u32::from(info.mtu)).await?;
    nl.set_link_up(&ifname, true).await?;
    let ll = ayiya::derived_link_local(info.ipv6_endpoint);
    ignore_exists(nl.add_addr6(&ifname, ll, 64, true).await)?;
    ignore_exists(
        nl.add_addr6(&ifname, info.ipv6_endpoint, info.prefix_len, true)
            .await,
    )?;
    if cfg.defaultroute {
        ignore_exists(
            nl.add_route6(&ifname, Route6::default_via(info.ipv6_pop))
                .await,
        )?;
    }
    info!(
        "tunnel {} up on {ifname}: {}/{} via {} (MTU {}, PoP {})",
        info.id, info.ipv6_endpoint, info.prefix_len, info.ipv6_pop, info.mtu, info.ipv4_pop
    );
    let pop = SocketAddrV4::new(info.ipv4_pop, ayiya::PORT);
    let sock = Arc::new(SockCell {
        cur: std::sync::RwLock::new(Arc::new(connect_udp(pop)?)),
        pop,
        failures: std::sync::atomic::AtomicU32::new(0),
        warn_gate: std::sync::Mutex::new(LogGate::per_second()),
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    let key = SigningKey::from_password(info.password.as_bytes());
    let outbound = {
        let (tun, sock, key, id) = (tun.clone(), sock.clone(), key.clone(), info.ipv6_endpoint);
        std::thread::Builder::new()
            .name("tun-to-udp".into())
            .spawn(move || tun_to_udp(&tun, &sock, &key, id))
            .map_err(io("spawn thread"))?
    };
    let inbound = {
        let (tun, sock, key, pop6) = (tun.clone(), sock.clone(), key.clone(), info.ipv6_pop);
        std::thread::Builder::new()
            .name("udp-to-tun".into())
            .spawn(move || udp_to_tun(&tun, &sock, &key, pop6))
            .map_err(io("spawn thread"))?
    };
    Ok(Running {
        ifname,
        info,
        sock,
        threads: vec![outbound, inbound],
        key,
        noconfigure: cfg.noconfigure,
    })
}

impl Running {
    /// The tunnel information from TIC.
    pub fn info(&self) -> &TunnelInfo {
        &self.info
    }

    /// Sends one signed keepalive (44 bytes, opcode 0, next header 59).
    pub fn beat(&self) {
        let mut ka = [0u8; HEADER_LEN];
        // Wire epoch is 32-bit by protocol.
        let repr = Repr::keepalive(self.info.ipv6_endpoint, unix_now() as u32);
        if self.key.seal(&repr, &mut ka).is_ok() {
            let r = self.sock.get().send(&ka);
            if let Err(e) = &r {
                debug!("keepalive send: {e}");
            }
            self.sock.note(&r);
        }
    }

    /// Runs the beat loop until SIGTERM/SIGINT; SIGUSR1 toggles beats.
    pub async fn run_until_signal(&self, makebeats: bool) -> Result<(), ClientError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
        let mut usr1 = signal(SignalKind::user_defined1()).map_err(io("SIGUSR1 handler"))?;
        let mut ka = Keepalive::from_secs(Instant::now(), self.info.heartbeat_interval, makebeats)
            .map_err(|e| ClientError::Tic(e.to_string()))?;
        loop {
            for _ in 0..ka.handle_timeout(Instant::now()) {
                self.beat();
            }
            let wake = ka
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = term.recv() => { info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { info!("SIGINT: stopping"); break; }
                _ = usr1.recv() => { info!("beats {}", if ka.toggle() { "enabled" } else { "disabled" }); }
            }
        }
        Ok(())
    }

    /// Sets the interface down (unless `noconfigure`); beats stop with the beat loop. The
    /// datapath threads end with the process, which closes the TUN device.
    pub async fn stop(self) -> Result<(), ClientError> {
        if !self.noconfigure {
            let nl = Netlink::new()?;
            nl.set_link_up(&self.ifname, false).await?;
        }
        info!("{} down", self.ifname);
        Ok(())
    }
}

impl Running {
    /// Takes the tunnel down for good, in this process: the datapath threads stop and close
    /// the TUN device (so the interface goes), which lets a new tunnel be set up with the same
    /// interface name (`v6home gateway` re-establishing it with new settings on SIGHUP).
    /// The inbound thread is woken by shutting its socket down, the outbound one by a single
    /// UDP datagram to the PoP's inner address through the tunnel (read, not forwarded).
    pub async fn close(self) -> Result<(), ClientError> {
        use std::sync::atomic::Ordering;
        self.sock.stopping.store(true, Ordering::SeqCst);
        let _ = self.sock.get().shutdown(std::net::Shutdown::Both);
        let wake = || -> std::io::Result<()> {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.bind_device(Some(self.ifname.as_bytes()))?;
            let dst = SocketAddr::new(std::net::IpAddr::V6(self.info.ipv6_pop), 9);
            s.send_to(b"v6home: closing the tunnel", &dst.into())?;
            Ok(())
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut threads = self.threads;
        while !threads.iter().all(|t| t.is_finished()) {
            if Instant::now() > deadline {
                return Err(ClientError::Tic(format!(
                    "the datapath of {} did not stop within 3 s",
                    self.ifname
                )));
            }
            if let Err(e) = wake() {
                debug!("waking the TUN reader: {e}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for t in threads.drain(..) {
            let _ = t.join();
        }
        info!("{} closed", self.ifname);
        Ok(())
    }
}

fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED)
            | Some(libc::EHOSTUNREACH)
            | Some(libc::ENETUNREACH)
            | Some(libc::EINTR)
    )
}

fn tun_to_udp(tun: &tun_rs::SyncDevice, cell: &SockCell, key: &SigningKey, identity: Ipv6Addr) {
    let mut sock = cell.get();
    let mut batch = UdpBatch::new(&*sock);
    let mut b = Buffers::default();
    let mut send_gate = LogGate::per_second();
    let mut read_gate = LogGate::per_second();
    loop {
        tundev::reset_all(&mut b.bufs);
        let got = tun.recv_multiple(&mut b.raw, &mut b.bufs, &mut b.sizes, HEADROOM);
        if cell.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let n = match got {
            Ok(n) => n,
            Err(e) => {
                if e.raw_os_error() == Some(libc::EBADFD) {
                    return;
                }
                gated_log!(read_gate, Instant::now(), debug, "TUN read: {e}");
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        // Wire epoch is 32-bit by protocol.
        let repr = Repr::forward6(identity, unix_now() as u32);
        let mut count = 0;
        for i in 0..n {
            let end = HEADROOM + b.sizes[i];
            let dg = &mut b.bufs[i].as_mut()[..end];
            if b.sizes[i] < 40 || dg[HEADROOM] >> 4 != 6 {
                continue;
            }
            if key.seal(&repr, dg).is_ok() {
                b.bufs[i].set_len(end);
                count += 1;
            } else {
                b.bufs[i].set_len(0);
            }
        }
        if count == 0 {
            continue;
        }
        let pkts: Vec<&[u8]> = b.bufs[..n]
            .iter()
            .zip(b.sizes.iter())
            .filter(|(buf, s)| buf.as_ref().len() == HEADROOM + **s && **s >= 40)
            .map(|(buf, _)| buf.as_ref())
            .collect();
        let cur = cell.get();
        if !Arc::ptr_eq(&cur, &sock) {
            sock = cur;
            batch = UdpBatch::new(&*sock);
        }
        let r = batch.send_gso(&pkts, None);
        cell.note(&r);
        if let Err(e) = r
            && !transient(&e)
        {
            gated_log!(send_gate, Instant::now(), warn, "AYIYA send: {e}");
        }
    }
}

fn udp_to_tun(tun: &tun_rs::SyncDevice, cell: &SockCell, key: &SigningKey, pop: Ipv6Addr) {
    let mut sock = cell.get();
    let mut rx = GroReceiver::new(&*sock);
    let mut inb: Vec<tundev::PktBuf> = (0..BATCH).map(|_| tundev::PktBuf::new(65536)).collect();
    let mut segs: Vec<Segment> = Vec::with_capacity(BATCH * 64);
    let mut w = tundev::TunWriter::default();
    let mut recv_gate = LogGate::per_second();
    let mut write_gate = LogGate::per_second();
    let mut forged_gate = LogGate::per_second();
    let mut drop_gate = LogGate::per_second();
    loop {
        let cur = cell.get();
        if !Arc::ptr_eq(&cur, &sock) {
            sock = cur;
            rx = GroReceiver::new(&*sock);
        }
        tundev::reset_all(&mut inb);
        let got = rx.recv(&mut inb, &mut segs);
        if cell.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Err(e) = got {
            if !transient(&e) {
                gated_log!(recv_gate, Instant::now(), debug, "AYIYA recv: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        let now = unix_now();
        let clock = Instant::now();
        for s in &segs {
            let dg = &inb[s.buf].as_ref()[s.off..s.off + s.len];
            match ayiya::validate_from_pop(dg, now, pop, key) {
                Ok(v) => {
                    if let Delivery::Ipv6(inner) = v.delivery
                        && let Err(e) = w.push(tun, inner)
                    {
                        gated_log!(write_gate, clock, debug, "TUN write: {e}");
                    }
                }
                Err(r @ (ayiya::DropReason::BadSignature | ayiya::DropReason::ClockSkew)) => {
                    // Forged packets, or a clock more than 120 s off: worth a (gated) warning.
                    gated_log!(forged_gate, clock, warn, src = %s.src, reason = r.as_str(), "dropped AYIYA datagram from the PoP's address");
                }
                Err(r) => {
                    gated_log!(drop_gate, clock, debug, src = %s.src, reason = r.as_str(), "dropped datagram from PoP");
                }
            }
        }
        if let Err(e) = w.flush(tun) {
            gated_log!(write_gate, clock, debug, "TUN write: {e}");
        }
    }
}

/// `tunnel start`: TIC (with retry), set-up, beats until a signal, link down.
pub fn run_start(config: &Path, offload: bool) -> Result<(), ClientError> {
    let cfg = load_config(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let info = match tic_with_retry(&cfg, false, u32::MAX).await? {
            LoginOutcome::Tunnel(t) => t,
            LoginOutcome::List(_) => return Err(ClientError::Tic("no tunnel selected".into())),
        };
        let running = start(&cfg, info, offload).await?;
        running.run_until_signal(cfg.makebeats).await?;
        running.stop().await
    })
}

/// `tunnels`: TIC login and `tunnel list`.
pub fn run_tunnels(config: &Path) -> Result<Vec<TunnelListEntry>, ClientError> {
    let cfg = load_config(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        match tic_with_retry(&cfg, true, 3).await? {
            LoginOutcome::List(l) => Ok(l),
            LoginOutcome::Tunnel(t) => Ok(vec![TunnelListEntry {
                id: t.id,
                ipv6_endpoint: t.ipv6_endpoint,
                ipv4_endpoint: v6h_ayiya::tic::Ipv4Endpoint::Ayiya,
                pop_name: t.pop_id,
            }]),
        }
    })
}

/// One step of `tunnel test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStep {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Details (command output or error).
    pub detail: String,
}

fn ping(args: &[&str]) -> TestStep {
    let out = std::process::Command::new("ping").args(args).output();
    let name = format!("ping {}", args.join(" "));
    match out {
        Ok(o) => TestStep {
            name,
            ok: o.status.success(),
            detail: String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("transmitted") || l.contains("rtt"))
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(e) => TestStep {
            name,
            ok: false,
            detail: e.to_string(),
        },
    }
}

/// `tunnel test`, like `aiccu test`: (1) TIC login and `tunnel show`; (2) ping the PoP's
/// IPv4 address; (3) bring the tunnel up and send the initial beats; (4) ping the PoP's inner
/// IPv6 address through the tunnel; (5) ping the tunnel's own address; (6) tear down.
pub fn run_test(config: &Path, offload: bool) -> Result<Vec<TestStep>, ClientError> {
    let cfg = load_config(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut steps = Vec::new();
        let info = match tic_with_retry(&cfg, false, 3).await {
            Ok(LoginOutcome::Tunnel(t)) => {
                steps.push(TestStep {
                    name: "TIC login and tunnel show".into(),
                    ok: true,
                    detail: format!("{} {} via {}", t.id, t.ipv6_endpoint, t.ipv4_pop),
                });
                t
            }
            Ok(LoginOutcome::List(_)) => return Err(ClientError::Tic("no tunnel selected".into())),
            Err(e) => {
                steps.push(TestStep {
                    name: "TIC login and tunnel show".into(),
                    ok: false,
                    detail: e.to_string(),
                });
                return Ok(steps);
            }
        };
        let pop4 = info.ipv4_pop.to_string();
        let pop6 = info.ipv6_pop.to_string();
        let me6 = info.ipv6_endpoint.to_string();
        // As `aiccu test`: the local IPv4 endpoint first, which `local_ipv4_override`
        // replaces (TIC's is `ayiya` for an AYIYA tunnel: nothing to ping without it).
        if let Some(me4) = &cfg.local_ipv4_override {
            steps.push(ping(&["-4", "-c", "3", "-i", "0.2", "-W", "2", me4]));
        }
        steps.push(ping(&["-4", "-c", "3", "-i", "0.2", "-W", "2", &pop4]));
        let running = start(&cfg, info, offload).await?;
        for _ in 0..3 {
            running.beat();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ifname = cfg.ipv6_interface.clone();
        steps.push(ping(&[
            "-6", "-c", "3", "-i", "0.2", "-W", "2", "-I", &ifname, &pop6,
        ]));
        steps.push(ping(&["-6", "-c", "1", "-W", "2", &me6]));
        running.stop().await?;
        Ok(steps)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_config_maps_to_aiccu_keys() {
        let text = "username = \"lab\"\npassword = \"labpass\"\nserver = \"198.51.100.1\"\n\
                    ipv6_interface = \"sixxs\"\ndefaultroute = false\n";
        let conf = toml_to_aiccu("x.toml", text).unwrap();
        let (c, _) = AiccuConfig::parse("x.toml", &conf).unwrap();
        assert_eq!(c.username, "lab");
        assert_eq!(c.ipv6_interface, "sixxs");
        assert!(!c.defaultroute);
        let e = toml_to_aiccu("x.toml", "username = 3\n").unwrap_err();
        assert!(e.to_string().contains("username"), "{e}");
    }

    #[test]
    fn config_errors_name_the_file_and_the_example_loads() {
        let dir = std::env::temp_dir().join(format!("v6h-tio-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("aiccu.conf");
        std::fs::write(&bad, "username lab\ndefaultroute maybe\n").unwrap();
        let e = load_config(&bad).unwrap_err().to_string();
        assert!(e.contains("aiccu.conf"), "{e}");
        let missing = load_config(&dir.join("nope.conf")).unwrap_err().to_string();
        assert!(missing.contains("nope.conf"), "{missing}");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab/aiccu.conf");
        let c = load_config(&example).unwrap();
        assert_eq!(
            (
                c.username.as_str(),
                c.server.as_str(),
                c.ipv6_interface.as_str()
            ),
            ("lab", "198.51.100.1", "sixxs")
        );
        assert_eq!(c.tunnel_id.as_deref(), Some("T1"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tunnels_listing_format() {
        let l = vec![TunnelListEntry {
            id: "T1".into(),
            ipv6_endpoint: "2001:db8:2ff:1::2".parse().unwrap(),
            ipv4_endpoint: v6h_ayiya::tic::Ipv4Endpoint::Ayiya,
            pop_name: "pop01".into(),
        }];
        assert_eq!(format_tunnels(&l), "T1 2001:db8:2ff:1::2 ayiya pop01\n");
    }

    #[test]
    fn socket_is_replaced_after_repeated_hard_errors() {
        let pop = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(pop_addr) = pop.local_addr().unwrap() else {
            unreachable!()
        };
        let cell = SockCell {
            cur: std::sync::RwLock::new(Arc::new(connect_udp(pop_addr).unwrap())),
            pop: pop_addr,
            failures: std::sync::atomic::AtomicU32::new(0),
            warn_gate: std::sync::Mutex::new(LogGate::per_second()),
            stopping: std::sync::atomic::AtomicBool::new(false),
        };
        let first = cell.get();
        let hard = Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        let soft = Err(std::io::Error::from_raw_os_error(libc::ECONNREFUSED));
        cell.note(&hard);
        cell.note(&soft);
        cell.note(&hard);
        cell.note(&Ok(1));
        cell.note(&hard);
        cell.note(&hard);
        assert!(
            Arc::ptr_eq(&first, &cell.get()),
            "no reconnect before 3 hard errors in a row"
        );
        cell.note(&hard);
        let second = cell.get();
        assert!(!Arc::ptr_eq(&first, &second), "reconnected");
        second.send(b"hello").unwrap();
        let mut buf = [0u8; 16];
        let n = pop.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(first.send(b"x").is_err(), "the old socket is shut down");
    }

    #[test]
    fn server_address_forms() {
        assert_eq!(server_addr("198.51.100.1"), "198.51.100.1:3874");
        assert_eq!(server_addr("198.51.100.1:13874"), "198.51.100.1:13874");
        assert_eq!(server_addr("tic.example"), "tic.example:3874");
        assert_eq!(server_addr("2001:db8::1"), "[2001:db8::1]:3874");
    }
}

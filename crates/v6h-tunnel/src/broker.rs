//! The broker daemon (`v6home broker`): TIC server on TCP, AYIYA PoP on one UDP socket, and a
//! TUN device with routes for every tunnel /64 and routed subnet.
//!
//! Threads: `ayiya-rx` (UDP → table → TUN, batched with `recvmmsg` and GRO writes), `tun-rx`
//! (TUN → table → UDP, GSO-split reads and `sendmmsg`), plus a small tokio runtime for TIC,
//! netlink, the liveness timer and the status file. All protocol decisions are made by the
//! sans-IO [`crate::pop::PopTable`] and `v6h_ayiya::tic::server::Session`.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};
use v6h_ayiya::tic::server::{Directory, LoginLimiter, Session, SessionConfig};
use v6h_ayiya::tic::{LineFramer, TunnelInfo, TunnelType};
use v6h_net::netlink::{Netlink, Route6, ignore_exists};

use crate::batch::{BATCH, UdpBatch};
use crate::pop::{InAction, OutAction, PopStatus, PopTable};
use crate::registry::{BrokerConfig, Registry, RegistryData, RegistryError, TomlRegistry};
use crate::tundev::{self, Buffers, HEADROOM, unix_now};

/// Errors that stop the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Configuration or registry problem.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A socket, TUN or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Netlink set-up failed.
    #[error(transparent)]
    Netlink(#[from] v6h_net::netlink::NetlinkError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BrokerError {
    let what = what.into();
    move |source| BrokerError::Io { what, source }
}

/// Path of the status file inside `run_dir`.
pub fn status_path(cfg: &BrokerConfig) -> PathBuf {
    cfg.run_dir.join("status.json")
}

/// Reads the status file the daemon writes every second.
pub fn read_status(cfg: &BrokerConfig) -> Result<PopStatus, BrokerError> {
    let p = status_path(cfg);
    let text = std::fs::read_to_string(&p).map_err(io(format!("read {}", p.display())))?;
    serde_json::from_str(&text).map_err(|e| BrokerError::Io {
        what: format!("parse {}", p.display()),
        source: std::io::Error::other(e),
    })
}

/// Renders a status snapshot as a human-readable table.
pub fn format_status(s: &PopStatus) -> String {
    let mut out = format!(
        "{:<6} {:<8} {:<22} {:<22} {:>8} {:>10} {:>8} {:>10} {:>8}  drops\n",
        "id",
        "state",
        "prefix",
        "endpoint",
        "pkts_in",
        "bytes_in",
        "pkts_out",
        "bytes_out",
        "beat_age"
    );
    for t in &s.tunnels {
        let drops: Vec<String> = t.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{:<6} {:<8} {:<22} {:<22} {:>8} {:>10} {:>8} {:>10} {:>8}  {}\n",
            t.id,
            format!("{:?}", t.state).to_lowercase(),
            t.prefix,
            t.endpoint.as_deref().unwrap_or("-"),
            t.packets_in,
            t.bytes_in,
            t.packets_out,
            t.bytes_out,
            t.last_beat_age.map_or("-".into(), |a| format!("{a}s")),
            drops.join(",")
        ));
    }
    let g: Vec<String> = s
        .global_drops
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.push_str(&format!(
        "global drops: {}\n",
        if g.is_empty() {
            "none".into()
        } else {
            g.join(",")
        }
    ));
    out
}

/// Adapter from the registry to tcore's TIC [`Directory`].
#[derive(Debug, Clone)]
pub struct RegistryDirectory {
    data: RegistryData,
    pop_id: String,
    ipv4_pop: std::net::Ipv4Addr,
}

impl RegistryDirectory {
    /// Serves `data` as PoP `pop_id` reachable at `ipv4_pop`.
    pub fn new(data: RegistryData, pop_id: String, ipv4_pop: std::net::Ipv4Addr) -> Self {
        RegistryDirectory {
            data,
            pop_id,
            ipv4_pop,
        }
    }
}

impl Directory for RegistryDirectory {
    fn password_md5hex(&self, username: &str) -> Option<String> {
        self.data.user(username).map(|u| u.password_md5.clone())
    }

    fn tunnels(&self, username: &str) -> Vec<TunnelInfo> {
        self.data
            .tunnels_of(username)
            .map(|t| TunnelInfo {
                id: t.tic_id(),
                tunnel_type: TunnelType::Ayiya,
                ipv6_endpoint: t.client_addr(),
                ipv6_pop: t.pop_addr(),
                prefix_len: 64,
                pop_id: self.pop_id.clone(),
                ipv4_endpoint: "ayiya".into(),
                ipv4_pop: self.ipv4_pop,
                user_state: "enabled".into(),
                admin_state: t.admin.as_str().into(),
                password: t.password.clone(),
                heartbeat_interval: t.heartbeat,
                mtu: t.mtu,
                name: t.name.clone().unwrap_or_else(|| t.tic_id()),
            })
            .collect()
    }
}

fn lock(t: &Mutex<PopTable>) -> MutexGuard<'_, PopTable> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Path of `broker.toml`.
    pub config: PathBuf,
    /// Use TUN offloads (TSO/GRO); disable for debugging.
    pub offload: bool,
}

/// Rate limiter for log lines about bad input: at most one line per `every` seconds per key.
#[derive(Debug, Default)]
struct LogLimit {
    last: std::collections::HashMap<&'static str, u64>,
}

impl LogLimit {
    fn allow(&mut self, key: &'static str, now: u64) -> bool {
        match self.last.get(key) {
            Some(t) if now < t + 10 => false,
            _ => {
                self.last.insert(key, now);
                true
            }
        }
    }
}

fn ayiya_socket(addr: SocketAddr) -> Result<Socket, BrokerError> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(io("create UDP socket"))?;
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
    s.bind(&addr.into()).map_err(io(format!("bind {addr}")))?;
    Ok(s)
}

/// Runs the broker until SIGTERM or SIGINT.
pub fn run(opts: BrokerOptions) -> Result<(), BrokerError> {
    let cfg = BrokerConfig::load(&opts.config)?;
    let registry = cfg.registry(&opts.config);
    let data = registry.load()?;
    info!(
        tunnels = data.tunnels.len(),
        users = data.users.len(),
        "broker {} starting",
        cfg.server_name
    );
    std::fs::create_dir_all(&cfg.run_dir)
        .map_err(io(format!("create {}", cfg.run_dir.display())))?;

    let tun_mtu = data
        .tunnels
        .iter()
        .map(|t| t.mtu)
        .max()
        .unwrap_or(1280)
        .max(1280);
    let tun = Arc::new(
        tundev::open_tun(
            &cfg.tun_name,
            crate::registry::MTU_MAX.max(tun_mtu),
            opts.offload,
        )
        .map_err(io(format!("create TUN {}", cfg.tun_name)))?,
    );
    let sock = Arc::new(ayiya_socket(cfg.ayiya_listen)?);
    let table = Arc::new(Mutex::new(PopTable::new(
        &data.tunnels,
        cfg.liveness_timeout,
        None,
    )));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;

    rt.block_on(setup_routes(&cfg, &data))?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let (tun, sock, table) = (tun.clone(), sock.clone(), table.clone());
        std::thread::Builder::new()
            .name("ayiya-rx".into())
            .spawn(move || ayiya_rx(&sock, &tun, &table))
            .map_err(io("spawn ayiya-rx"))?;
    }
    {
        let (tun, sock, table) = (tun.clone(), sock.clone(), table.clone());
        std::thread::Builder::new()
            .name("tun-rx".into())
            .spawn(move || tun_rx(&sock, &tun, &table))
            .map_err(io("spawn tun-rx"))?;
    }

    let result = rt.block_on(async {
        let limiter = Arc::new(Mutex::new(LoginLimiter::default()));
        let listener = tokio::net::TcpListener::bind(cfg.tic_listen)
            .await
            .map_err(io(format!("bind TIC {}", cfg.tic_listen)))?;
        info!(
            "TIC on {}, AYIYA on {}, TUN {}",
            cfg.tic_listen, cfg.ayiya_listen, cfg.tun_name
        );
        let tic = tokio::spawn(tic_server(
            listener,
            cfg.clone(),
            registry.clone(),
            limiter,
            table.clone(),
        ));
        let timer = tokio::spawn(timer_task(cfg.clone(), table.clone(), stop.clone()));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("SIGTERM handler"))?;
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: stopping"),
        }
        stop.store(true, Ordering::Relaxed);
        tic.abort();
        timer.abort();
        write_status(&cfg, &lock(&table).status(unix_now()));
        Ok::<(), BrokerError>(())
    });
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn setup_routes(cfg: &BrokerConfig, data: &RegistryData) -> Result<(), BrokerError> {
    let nl = Netlink::new()?;
    let dev = cfg.tun_name.as_str();
    nl.set_link_up(dev, true).await?;
    for t in &data.tunnels {
        ignore_exists(nl.add_addr6(dev, t.pop_addr(), 128, true).await)?;
        for p in std::iter::once(t.prefix).chain(t.subnets.iter().copied()) {
            let r = Route6 {
                mtu: Some(u32::from(t.mtu)),
                ..Route6::prefix(p.addr(), p.len())
            };
            ignore_exists(nl.add_route6(dev, r).await)?;
        }
    }
    Ok(())
}

fn write_status(cfg: &BrokerConfig, s: &PopStatus) {
    let path = status_path(cfg);
    let tmp = path.with_extension("json.tmp");
    let ok = serde_json::to_vec_pretty(s)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = ok {
        warn!("cannot write {}: {e}", path.display());
    }
}

async fn timer_task(cfg: BrokerConfig, table: Arc<Mutex<PopTable>>, stop: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = unix_now();
        let status = {
            let mut t = lock(&table);
            let n = t.handle_timeout(now);
            if n > 0 {
                info!(
                    "{n} tunnel(s) went down (no valid packet for {} s)",
                    cfg.liveness_timeout
                );
            }
            t.status(now)
        };
        write_status(&cfg, &status);
    }
}

async fn tic_server(
    listener: tokio::net::TcpListener,
    cfg: BrokerConfig,
    registry: TomlRegistry,
    limiter: Arc<Mutex<LoginLimiter>>,
    table: Arc<Mutex<PopTable>>,
) {
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("TIC accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Reload the registry per connection so `broker tunnel add` needs no restart.
        let data = match registry.load() {
            Ok(d) => {
                lock(&table).reload(&d.tunnels);
                d
            }
            Err(e) => {
                warn!("registry reload failed, closing TIC connection: {e}");
                continue;
            }
        };
        let dir = RegistryDirectory::new(data, cfg.server_name.clone(), cfg.ipv4_pop);
        let sc = SessionConfig {
            server_name: cfg.server_name.clone(),
            peer: peer.ip(),
            challenge: rand::random(),
            tls_available: false,
        };
        let limiter = limiter.clone();
        tokio::spawn(async move {
            if let Err(e) = tic_conn(conn, peer.ip(), sc, dir, limiter).await {
                debug!(%peer, "TIC connection ended: {e}");
            }
        });
    }
}

async fn tic_conn(
    mut conn: tokio::net::TcpStream,
    peer: IpAddr,
    sc: SessionConfig,
    dir: RegistryDirectory,
    limiter: Arc<Mutex<LoginLimiter>>,
) -> std::io::Result<()> {
    let mut session = Session::new(sc);
    let mut framer = LineFramer::new();
    conn.write_all(format!("{}\n", session.greeting()).as_bytes())
        .await?;
    let mut buf = [0u8; 2048];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), conn.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = framer.push(&buf[..n]) {
            let _ = conn.write_all(b"400 Line too long\n").await;
            return Err(std::io::Error::other(e.to_string()));
        }
        while let Some(line) = framer.next_line() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    let _ = conn.write_all(b"400 Bad line\n").await;
                    return Err(std::io::Error::other(e.to_string()));
                }
            };
            let replies = {
                let mut l = limiter.lock().unwrap_or_else(|p| p.into_inner());
                session.handle_line_limited(unix_now(), &line, &dir, &mut l)
            };
            let mut out = String::new();
            for r in replies {
                out.push_str(&r);
                out.push('\n');
            }
            if !out.is_empty() {
                conn.write_all(out.as_bytes()).await?;
            }
            if session.take_starttls() {
                // No certificate is configured, so the session never accepts STARTTLS.
                return Ok(());
            }
            if session.is_finished() {
                debug!(%peer, "TIC session finished");
                return Ok(());
            }
        }
    }
}

/// UDP → table → TUN.
fn ayiya_rx(sock: &Socket, tun: &tun_rs::SyncDevice, table: &Mutex<PopTable>) {
    let mut batch = UdpBatch::new(sock);
    let mut b = Buffers::default();
    let mut lens = [0usize; BATCH];
    let mut srcs: [Option<SocketAddrV4>; BATCH] = [None; BATCH];
    let mut deliver = [false; BATCH];
    let mut loglimit = LogLimit::default();
    loop {
        tundev::reset_all(&mut b.bufs[..BATCH]);
        let n = match batch.recv(&mut b.bufs[..BATCH], &mut lens, &mut srcs) {
            Ok(n) => n,
            Err(e) => {
                if loglimit.allow("udp_recv", unix_now()) {
                    warn!("AYIYA recv: {e}");
                }
                continue;
            }
        };
        let now = unix_now();
        {
            let mut t = lock(table);
            for i in 0..n {
                deliver[i] = false;
                let Some(src) = srcs[i] else { continue };
                let dg = &b.bufs[i].as_ref()[..lens[i]];
                match t.handle_datagram(now, src, dg) {
                    InAction::Deliver(inner) => {
                        deliver[i] = true;
                        lens[i] = HEADROOM + inner.len();
                    }
                    InAction::Consumed => {}
                    InAction::Drop(reason) => {
                        if loglimit.allow(reason.as_str(), now) {
                            debug!(%src, reason = reason.as_str(), "dropped AYIYA datagram");
                        }
                    }
                }
            }
        }
        let mut out: Vec<&mut tundev::PktBuf> = Vec::with_capacity(n);
        for (i, buf) in b.bufs.iter_mut().enumerate().take(n) {
            if deliver[i] {
                buf.set_len(lens[i]);
                out.push(buf);
            }
        }
        if !out.is_empty()
            && let Err(e) = tun.send_multiple(&mut b.gro, &mut out, HEADROOM)
            && loglimit.allow("tun_write", now)
        {
            warn!("TUN write: {e}");
        }
    }
}

/// TUN → table → UDP.
fn tun_rx(sock: &Socket, tun: &tun_rs::SyncDevice, table: &Mutex<PopTable>) {
    let mut batch = UdpBatch::new(sock);
    let mut b = Buffers::default();
    let mut icmp = vec![0u8; 1280];
    let mut dsts: Vec<SocketAddrV4> = Vec::with_capacity(b.bufs.len());
    let mut send: Vec<bool> = vec![false; b.bufs.len()];
    let mut loglimit = LogLimit::default();
    loop {
        tundev::reset_all(&mut b.bufs);
        let n = match tun.recv_multiple(&mut b.raw, &mut b.bufs, &mut b.sizes, HEADROOM) {
            Ok(n) => n,
            Err(e) => {
                if loglimit.allow("tun_read", unix_now()) {
                    warn!("TUN read: {e}");
                }
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        let now = unix_now();
        dsts.clear();
        {
            let mut t = lock(table);
            for (i, flag) in send.iter_mut().enumerate().take(n) {
                *flag = false;
                let len = b.sizes[i];
                let end = HEADROOM + len;
                match t.route_outbound(&b.bufs[i].as_ref()[HEADROOM..end], &mut icmp) {
                    OutAction::Send { tunnel, endpoint } => {
                        let dg = &mut b.bufs[i].as_mut()[..end];
                        if t.encapsulate(tunnel, now, dg) {
                            *flag = true;
                            dsts.push(endpoint);
                        }
                    }
                    OutAction::Icmp { len, reason } => {
                        if let Err(e) = tun.send(&icmp[..len]) {
                            debug!("ICMPv6 error write: {e}");
                        }
                        if loglimit.allow(reason.as_str(), now) {
                            debug!(reason = reason.as_str(), "outbound packet refused");
                        }
                    }
                    OutAction::Drop(reason) => {
                        if loglimit.allow(reason.as_str(), now) {
                            debug!(reason = reason.as_str(), "outbound packet dropped");
                        }
                    }
                }
            }
        }
        let pkts: Vec<&[u8]> = (0..n)
            .filter(|i| send[*i])
            .map(|i| &b.bufs[i].as_ref()[..HEADROOM + b.sizes[i]])
            .collect();
        if !pkts.is_empty()
            && let Err(e) = batch.send(&pkts, Some(&dsts))
            && loglimit.allow("udp_send", now)
        {
            warn!("AYIYA send: {e}");
        }
    }
}

/// `v6home broker tunnel add`: allocates a tunnel and returns a ready aiccu.conf.
pub fn add_tunnel(
    config: &Path,
    user: &str,
    subnets: Vec<crate::prefix::Prefix6>,
) -> Result<(crate::registry::Tunnel, String), BrokerError> {
    let cfg = BrokerConfig::load(config)?;
    let reg = cfg.registry(config);
    let req = crate::registry::NewTunnel {
        owner: user.to_string(),
        subnets,
        from: cfg.tunnel_prefix,
        mtu: cfg.default_mtu,
        heartbeat: cfg.default_heartbeat,
        password: None,
    };
    let t = reg.add_tunnel(&req)?;
    let data = reg.load()?;
    let u = data
        .user(user)
        .ok_or_else(|| RegistryError::Invalid(format!("unknown user {user:?}")))?;
    let conf = crate::registry::render_aiccu_conf(u, &t, &cfg.tic_server_name());
    Ok((t, conf))
}

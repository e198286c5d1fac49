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

use crate::batch::{BATCH, GroReceiver, Segment, UdpBatch};
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

/// Renders a status snapshot as a human-readable table (with a warning when it is stale).
pub fn format_status(s: &PopStatus) -> String {
    let age = unix_now().saturating_sub(s.now);
    let stale = if age > 5 {
        format!("warning: this snapshot is {age} s old; is the broker running?\n")
    } else {
        String::new()
    };
    let mut out = stale;
    out += &format!(
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
                routed: t.subnets.iter().map(|p| (p.addr(), p.len())).collect(),
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
            TicLimits::default(),
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

/// Resource limits of the TIC server, which anyone reaching its port can connect to.
#[derive(Debug, Clone, Copy)]
struct TicLimits {
    /// Most connections served at once; further ones get `400` and are closed. Without a cap
    /// each connection holds a task, buffers and a socket for as long as its peer likes.
    max_connections: usize,
    /// Longest a session may last (a real login takes well under a second). Bounds peers that
    /// trickle lines or never read the replies, which would otherwise keep a slot forever.
    session_timeout: Duration,
}

impl Default for TicLimits {
    fn default() -> Self {
        TicLimits {
            max_connections: 256,
            session_timeout: Duration::from_secs(300),
        }
    }
}

async fn tic_server(
    listener: tokio::net::TcpListener,
    cfg: BrokerConfig,
    registry: TomlRegistry,
    limiter: Arc<Mutex<LoginLimiter>>,
    table: Arc<Mutex<PopTable>>,
    limits: TicLimits,
) {
    let max_connections = limits.max_connections;
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("TIC accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "TIC: {max_connections} connections open; refusing");
            let _ = conn.try_write(b"400 Too many connections\n");
            continue;
        };
        // Reload the registry per connection so `broker tunnel add` needs no restart.
        let data = match registry.load() {
            Ok(d) => {
                let changed = {
                    let mut t = lock(&table);
                    let changed = t.len() != d.tunnels.len()
                        || (0..t.len()).any(|i| t.tunnel(i) != d.tunnels.get(i));
                    if changed {
                        t.reload(&d.tunnels);
                    }
                    changed
                };
                if changed {
                    info!("registry changed: {} tunnel(s)", d.tunnels.len());
                    if let Err(e) = setup_routes(&cfg, &d).await {
                        warn!("routes for the new registry: {e}");
                    }
                }
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
            let _permit = permit;
            let session = tic_conn(conn, peer.ip(), sc, dir, limiter);
            let result = tokio::time::timeout(limits.session_timeout, session)
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "session time limit",
                    ))
                });
            if let Err(e) = result {
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

/// UDP (GRO batches) → table → TUN (GRO-coalesced writes).
fn ayiya_rx(sock: &Socket, tun: &tun_rs::SyncDevice, table: &Mutex<PopTable>) {
    let mut rx = GroReceiver::new(sock);
    info!(udp_gro = rx.gro_enabled(), "AYIYA receive path ready");
    let mut inb: Vec<tundev::PktBuf> = (0..BATCH).map(|_| tundev::PktBuf::new(65536)).collect();
    let mut segs: Vec<Segment> = Vec::with_capacity(BATCH * 64);
    let mut w = tundev::TunWriter::default();
    let mut loglimit = LogLimit::default();
    loop {
        tundev::reset_all(&mut inb);
        if let Err(e) = rx.recv(&mut inb, &mut segs) {
            if loglimit.allow("udp_recv", unix_now()) {
                warn!("AYIYA recv: {e}");
            }
            continue;
        }
        let now = unix_now();
        let mut t = lock(table);
        for s in &segs {
            let dg = &inb[s.buf].as_ref()[s.off..s.off + s.len];
            match t.handle_datagram(now, s.src, dg) {
                InAction::Deliver(inner) => {
                    if let Err(e) = w.push(tun, inner)
                        && loglimit.allow("tun_write", now)
                    {
                        warn!("TUN write: {e}");
                    }
                }
                InAction::Consumed => {}
                InAction::Drop(reason) => {
                    if loglimit.allow(reason.as_str(), now) {
                        debug!(src = %s.src, len = s.len, off = s.off, reason = reason.as_str(), "dropped AYIYA datagram");
                    }
                }
            }
        }
        drop(t);
        if let Err(e) = w.flush(tun)
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
            && let Err(e) = batch.send_gso(&pkts, Some(&dsts))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{AdminState, Tunnel, UserEntry, validate};
    use v6h_ayiya::tic::client::{Login, LoginOutcome, LoginParams};

    fn dir() -> RegistryDirectory {
        let users = [UserEntry {
            name: "lab".into(),
            password_md5: None,
            password: Some("labpass".into()),
        }];
        let t = Tunnel {
            id: 1,
            owner: "lab".into(),
            prefix: "2001:db8:2ff:1::/64".parse().unwrap(),
            subnets: vec![],
            mtu: 1280,
            heartbeat: 5,
            password: "0123456789abcdef0123456789abcdef".into(),
            admin: AdminState::Enabled,
            name: None,
        };
        let data = validate(&users, &[t]).unwrap();
        RegistryDirectory::new(data, "pop01".into(), "198.51.100.1".parse().unwrap())
    }

    /// Runs tcore's client `Login` against tcore's server `Session` over our directory,
    /// in memory with a fake clock.
    fn dialogue(password: &str, list_only: bool) -> Result<LoginOutcome, String> {
        let now = 1_795_727_697;
        let d = dir();
        let mut server = Session::new(SessionConfig {
            server_name: "pop01".into(),
            peer: "198.51.100.2".parse().unwrap(),
            challenge: [7; 16],
            tls_available: false,
        });
        let mut client = Login::new(LoginParams {
            username: "lab".into(),
            password: password.into(),
            tunnel_id: Some("T1".into()),
            try_tls: false,
            require_tls: false,
            system: "Linux/6.1".into(),
            list_only,
        });
        let mut to_client = vec![server.greeting()];
        let mut limiter = LoginLimiter::default();
        for _ in 0..100 {
            for l in std::mem::take(&mut to_client) {
                let _ = client.handle_line(now, &l);
            }
            if let Some(o) = client.outcome() {
                return o.map_err(|e| e.to_string());
            }
            while let Some(l) = client.poll_send() {
                to_client.extend(server.handle_line_limited(now, &l, &d, &mut limiter));
            }
        }
        Err("no outcome".into())
    }

    #[test]
    fn tic_login_through_registry_directory() {
        let LoginOutcome::Tunnel(t) = dialogue("labpass", false).unwrap() else {
            panic!("expected a tunnel")
        };
        assert_eq!(t.id, "T1");
        assert_eq!(
            t.ipv6_endpoint,
            "2001:db8:2ff:1::2".parse::<std::net::Ipv6Addr>().unwrap()
        );
        assert_eq!(
            t.ipv6_pop,
            "2001:db8:2ff:1::1".parse::<std::net::Ipv6Addr>().unwrap()
        );
        assert_eq!((t.mtu, t.heartbeat_interval, t.prefix_len), (1280, 5, 64));
        assert_eq!(
            t.ipv4_pop,
            "198.51.100.1".parse::<std::net::Ipv4Addr>().unwrap()
        );
        assert!(t.is_enabled());
        let LoginOutcome::List(l) = dialogue("labpass", true).unwrap() else {
            panic!("expected a list")
        };
        assert_eq!(l.len(), 1);
        assert!(dialogue("wrong", false).is_err());
    }

    #[tokio::test]
    async fn tic_server_caps_concurrent_connections() {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let path = std::env::temp_dir().join(format!(
            "v6h-broker-cap-{}-{}.toml",
            std::process::id(),
            unix_now()
        ));
        std::fs::write(
            &path,
            "ipv4_pop = \"198.51.100.1\"\ntunnel_prefix = \"2001:db8:2ff::/48\"\n",
        )
        .unwrap();
        let cfg = BrokerConfig::load(&path).unwrap();
        let registry = cfg.registry(&path);
        let table = Arc::new(Mutex::new(PopTable::new(&[], 120, None)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limiter = Arc::new(Mutex::new(LoginLimiter::default()));
        let limits = TicLimits {
            max_connections: 2,
            session_timeout: Duration::from_secs(2),
        };
        let server = tokio::spawn(tic_server(listener, cfg, registry, limiter, table, limits));
        let first_line = |c: tokio::net::TcpStream| async move {
            let mut line = String::new();
            let mut r = BufReader::new(c);
            r.read_line(&mut line).await.unwrap();
            (line, r)
        };
        let (g1, c1) = first_line(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
        let (g2, _c2) = first_line(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
        assert!(
            g1.starts_with("200") && g2.starts_with("200"),
            "{g1:?} {g2:?}"
        );
        let (g3, _) = first_line(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
        assert_eq!(g3, "400 Too many connections\n");
        // Closing one frees its slot.
        drop(c1);
        let mut admitted = false;
        for _ in 0..50 {
            let (g, _c) = first_line(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
            if g.starts_with("200") {
                admitted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(admitted);
        // A peer that stays silent is cut off by the session limit, well before the idle one.
        let (g, mut idle) = first_line(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
        assert!(g.starts_with("200"), "{g:?}");
        let mut rest = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), idle.read_line(&mut rest))
            .await
            .expect("closed by the session limit")
            .unwrap();
        assert_eq!(n, 0, "{rest:?}");
        server.abort();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn status_table_mentions_every_tunnel_and_drop() {
        let mut table = PopTable::new(&[], 120, None);
        let mut icmp = [0u8; 1280];
        let _ = table.route_outbound(&[0u8; 10], &mut icmp);
        let mut s = table.status(unix_now());
        let text = format_status(&s);
        assert!(text.contains("global drops: bad_outbound=1"), "{text}");
        s.now = 0;
        assert!(format_status(&s).starts_with("warning:"));
    }
}

//! The broker daemon (`v6home broker`): TIC server on TCP, AYIYA PoP on one UDP socket, and a
//! TUN device with routes for every tunnel /64 and routed subnet.
//!
//! Threads: `ayiya-rx` (UDP → table → TUN, batched with `recvmmsg` and GRO writes), `tun-rx`
//! (TUN → table → UDP, GSO-split reads and `sendmmsg`), plus a small tokio runtime for TIC,
//! netlink, the liveness timer and the status file. All protocol decisions are made by the
//! sans-IO [`crate::pop::PopTable`] and `v6h_ayiya::tic::server::Session`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use v6h_ayiya::ayiya::{DropReason, Packet};
use v6h_ayiya::tic::server::{
    Admission, AuthEvent, ConnId, ConnLimits, ConnTable, Directory, LoginFailure, LoginLimiter,
    LoginPolicy, Session, SessionConfig,
};
use v6h_ayiya::tic::{LineFramer, TunnelInfo, TunnelType};
use v6h_net::gated_log;
use v6h_net::loggate::LogGate;
use v6h_net::netlink::{Netlink, Route6, ignore_exists};

use crate::batch::{BATCH, GroReceiver, Segment, UdpBatch};
use crate::pop::reconcile::{self, Change, Installed, TunRoute};
use crate::pop::{InAction, OutAction, PopDrop, PopStatus, PopTable, TicCounters};
use crate::registry::{BrokerConfig, RegistryData, RegistryError, TicSettings};
use crate::store::{Store, StoreError};
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
    /// The registry database failed or holds invalid data.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    let c = &s.tic;
    out.push_str(&format!(
        "tic: logins ok={} failed={} (throttled={}); connections={} refused_per_source={} \
         refused_full={} shed={} idle_closed={}\n",
        c.logins_ok,
        c.logins_failed,
        c.logins_throttled,
        c.connections,
        c.refused_per_source,
        c.refused_full,
        c.shed,
        c.idle_closed
    ));
    out
}

/// Adapter from the registry to tcore's TIC [`Directory`].
#[derive(Debug, Clone)]
pub struct RegistryDirectory {
    data: Arc<RegistryData>,
    pop_id: String,
    ipv4_pop: std::net::Ipv4Addr,
}

impl RegistryDirectory {
    /// Serves `data` as PoP `pop_id` reachable at `ipv4_pop`.
    pub fn new(data: Arc<RegistryData>, pop_id: String, ipv4_pop: std::net::Ipv4Addr) -> Self {
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

/// One [`LogGate`] per kind of repeated error: each kind gets at most one line a second, with
/// the count of the lines it held back.
#[derive(Debug, Default)]
pub struct LogGates {
    gates: HashMap<&'static str, LogGate>,
}

impl LogGates {
    /// The gate for `kind`.
    pub fn gate(&mut self, kind: &'static str) -> &mut LogGate {
        self.gates.entry(kind).or_default()
    }
}

/// Whether an inbound drop is worth a WARN line (attacks and misconfigured clients) rather
/// than a DEBUG one (noise such as stray or truncated datagrams).
fn drop_is_warning(d: PopDrop) -> bool {
    matches!(
        d,
        PopDrop::Replay
            | PopDrop::PopSource
            | PopDrop::SpoofedSource
            | PopDrop::Ayiya(DropReason::BadSignature | DropReason::ClockSkew)
    )
}

/// Logs one dropped inbound datagram through its kind's gate: WARN for attacks (replays,
/// forged signatures, spoofed inner sources) and clock errors, DEBUG otherwise.
fn log_inbound_drop(
    gates: &mut LogGates,
    now: Instant,
    table: &PopTable,
    src: SocketAddrV4,
    datagram: &[u8],
    reason: PopDrop,
) {
    let gate = gates.gate(reason.as_str());
    if !drop_is_warning(reason) {
        gated_log!(gate, now, debug, src = %src, len = datagram.len(), reason = reason.as_str(), "dropped AYIYA datagram");
        return;
    }
    // Warnings come only after the header checks, so the identity is there to read.
    let identity = (datagram.len() >= v6h_ayiya::ayiya::HEADER_LEN)
        .then(|| Packet::new_unchecked(datagram).identity());
    let tunnel = identity
        .and_then(|i| table.lookup_identity(i))
        .and_then(|slot| table.tunnel(slot))
        .map_or_else(|| "-".to_string(), |t| t.tic_id());
    let what = match reason {
        PopDrop::Replay => "replayed AYIYA packet dropped (endpoint kept)",
        PopDrop::Ayiya(DropReason::BadSignature) => "AYIYA packet with a forged signature dropped",
        PopDrop::Ayiya(DropReason::ClockSkew) => {
            "AYIYA packet outside the 120 s clock window dropped"
        }
        _ => "AYIYA packet with a spoofed inner source dropped",
    };
    gated_log!(gate, now, warn, tunnel = %tunnel, src = %src, reason = reason.as_str(), "{what}");
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

/// The registry snapshot the TIC server answers from; replaced whole on every reload.
pub type SharedRegistry = Arc<Mutex<Arc<RegistryData>>>;

/// How often the daemon checks the registry's change counter.
pub const REGISTRY_POLL: Duration = Duration::from_millis(250);

/// Runs the broker until SIGTERM or SIGINT.
pub fn run(opts: BrokerOptions) -> Result<(), BrokerError> {
    let cfg = BrokerConfig::load(&opts.config)?;
    cfg.check_no_tables(&opts.config)?;
    std::fs::create_dir_all(&cfg.run_dir)
        .map_err(io(format!("create {}", cfg.run_dir.display())))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;

    let (store, version, data) = rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        store
            .register_pop(&cfg.server_name, cfg.ipv4_pop, cfg.tunnel_prefix)
            .await?;
        let (version, data) = store.load_pop(&cfg.server_name).await?;
        Ok::<_, StoreError>((store, version, data))
    })?;
    info!(
        tunnels = data.tunnels.len(),
        users = data.users.len(),
        "broker {} starting (registry {})",
        cfg.server_name,
        store.url()
    );

    let tun = Arc::new(
        tundev::open_tun(&cfg.tun_name, crate::registry::MTU_MAX, opts.offload)
            .map_err(io(format!("create TUN {}", cfg.tun_name)))?,
    );
    let sock = Arc::new(ayiya_socket(cfg.ayiya_listen)?);
    let table = Arc::new(Mutex::new(PopTable::new(
        &reconcile::served(&data.tunnels),
        cfg.liveness_timeout,
        None,
    )));

    rt.block_on(async {
        let nl = Netlink::new()?;
        nl.set_link_up(&cfg.tun_name, true).await?;
        reconcile_routes(&nl, &cfg, &data).await
    })?;
    let registry: SharedRegistry = Arc::new(Mutex::new(Arc::new(data)));

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

    let tic_shared = Arc::new(TicShared::new(cfg.tic));
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(cfg.tic_listen)
            .await
            .map_err(io(format!("bind TIC {}", cfg.tic_listen)))?;
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(io("SIGHUP handler"))?;
        info!(
            "TIC on {}, AYIYA on {}, TUN {}",
            cfg.tic_listen, cfg.ayiya_listen, cfg.tun_name
        );
        let tic = tokio::spawn(tic_server(
            listener,
            cfg.clone(),
            registry.clone(),
            tic_shared.clone(),
        ));
        let timer = tokio::spawn(timer_task(
            cfg.clone(),
            table.clone(),
            tic_shared.clone(),
            stop.clone(),
        ));
        let reloader = tokio::spawn(reload_task(
            cfg.clone(),
            store.clone(),
            version,
            registry.clone(),
            table.clone(),
            hup,
        ));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("SIGTERM handler"))?;
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: stopping"),
        }
        stop.store(true, Ordering::Relaxed);
        tic.abort();
        timer.abort();
        reloader.abort();
        let mut status = lock(&table).status(unix_now());
        status.tic = tic_shared.counters();
        write_status(&cfg, &status);
        store.close().await;
        Ok::<(), BrokerError>(())
    });
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

/// Reads the addresses and static routes on the TUN device, and applies
/// [`reconcile::plan`]'s changes so they match `data` exactly: leftovers (from a crash, a
/// deleted or a disabled tunnel) go, missing ones are added. Returns the changes applied.
async fn reconcile_routes(
    nl: &Netlink,
    cfg: &BrokerConfig,
    data: &RegistryData,
) -> Result<Vec<Change>, BrokerError> {
    let dev = cfg.tun_name.as_str();
    let installed = Installed {
        addrs: nl
            .addrs6(Some(dev))
            .await?
            .into_iter()
            .filter(|a| a.prefix_len == 128)
            .map(|a| a.addr)
            .collect(),
        routes: nl
            .static_routes6(dev)
            .await?
            .into_iter()
            .filter(|r| r.via.is_none())
            .filter_map(|r| {
                crate::prefix::Prefix6::new(r.dst, r.prefix_len)
                    .ok()
                    .map(|prefix| TunRoute { prefix, mtu: r.mtu })
            })
            .collect(),
    };
    let changes = reconcile::plan(&installed, &data.tunnels);
    for c in &changes {
        let route = |r: &TunRoute| Route6 {
            mtu: r.mtu,
            ..Route6::prefix(r.prefix.addr(), r.prefix.len())
        };
        match c {
            Change::DelRoute(r) => nl.del_route6(dev, route(r)).await?,
            Change::DelAddr(a) => nl.del_addr6(dev, *a, 128).await?,
            Change::AddAddr(a) => ignore_exists(nl.add_addr6(dev, *a, 128, true).await)?,
            Change::AddRoute(r) => ignore_exists(nl.add_route6(dev, route(r)).await)?,
        }
    }
    Ok(changes)
}

/// Polls the registry's change counter every [`REGISTRY_POLL`] (and reloads at once on
/// SIGHUP). A new registry replaces the TIC snapshot and the PoP table, and the routes are
/// reconciled; a registry that fails to load or validate is logged and the running one kept.
async fn reload_task(
    cfg: BrokerConfig,
    store: Store,
    mut version: i64,
    registry: SharedRegistry,
    table: Arc<Mutex<PopTable>>,
    mut hup: tokio::signal::unix::Signal,
) {
    let nl = match Netlink::new() {
        Ok(nl) => nl,
        Err(e) => {
            warn!("registry reload disabled: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(REGISTRY_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gate = LogGate::per_second();
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = hup.recv() => true,
        };
        if forced {
            info!("SIGHUP: reloading the registry");
        } else {
            match store.version().await {
                Ok(v) if v == version => continue,
                Ok(_) => {}
                Err(e) => {
                    gated_log!(gate, Instant::now(), warn, "registry poll failed: {e}");
                    continue;
                }
            }
        }
        let t0 = Instant::now();
        let (v, data) = match store.load_pop(&cfg.server_name).await {
            Ok(x) => x,
            Err(e) => {
                gated_log!(
                    gate,
                    Instant::now(),
                    warn,
                    "registry reload failed, keeping the running registry: {e}"
                );
                continue;
            }
        };
        version = v;
        let served = reconcile::served(&data.tunnels);
        lock(&table).reload(&served);
        *registry.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(data.clone());
        match reconcile_routes(&nl, &cfg, &data).await {
            Ok(changes) => info!(
                version,
                tunnels = data.tunnels.len(),
                served = served.len(),
                route_changes = changes.len(),
                "registry reloaded in {:?}",
                t0.elapsed()
            ),
            Err(e) => warn!("routes for the new registry: {e}"),
        }
    }
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

async fn timer_task(
    cfg: BrokerConfig,
    table: Arc<Mutex<PopTable>>,
    tic: Arc<TicShared>,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = unix_now();
        let mut status = {
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
        status.tic = tic.counters();
        write_status(&cfg, &status);
    }
}

/// State shared by the TIC server's connections: slots, the failed-login throttle and the
/// counters `broker status` shows.
#[derive(Debug)]
pub struct TicShared {
    settings: TicSettings,
    /// Connection slots and, per admitted connection, the signal that closes it when shed.
    slots: Mutex<(ConnTable, HashMap<ConnId, Arc<Notify>>)>,
    limiter: Mutex<LoginLimiter>,
    counters: Mutex<TicCounters>,
}

impl TicShared {
    /// Fresh state for these limits.
    pub fn new(settings: TicSettings) -> Self {
        TicShared {
            settings,
            slots: Mutex::new((
                ConnTable::new(ConnLimits {
                    max_total: settings.max_connections,
                    max_per_source: settings.max_connections_per_source,
                }),
                HashMap::new(),
            )),
            limiter: Mutex::new(LoginLimiter::new(LoginPolicy {
                free_failures: settings.login_free_failures,
                base_delay: settings.login_backoff_base,
                max_delay: settings.login_backoff_max,
                forget_after: settings.login_forget_after,
                ..LoginPolicy::default()
            })),
            counters: Mutex::new(TicCounters::default()),
        }
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> TicCounters {
        *self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut TicCounters)) {
        f(&mut self.counters.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn slots(&self) -> MutexGuard<'_, (ConnTable, HashMap<ConnId, Arc<Notify>>)> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `peer`: its id and close signal, or the refusal line.
    fn admit(&self, peer: IpAddr) -> Result<(ConnId, Arc<Notify>), &'static str> {
        let mut g = self.slots();
        let (table, kills) = &mut *g;
        match table.admit(peer) {
            Admission::Admit { id, shed } => {
                if let Some(old) = shed
                    && let Some(k) = kills.remove(&old)
                {
                    k.notify_one();
                    self.count(|c| c.shed += 1);
                }
                let kill = Arc::new(Notify::new());
                kills.insert(id, kill.clone());
                self.count(|c| c.connections += 1);
                Ok((id, kill))
            }
            Admission::SourceFull => {
                self.count(|c| c.refused_per_source += 1);
                Err("400 Too many connections from your address\n")
            }
            Admission::Full => {
                self.count(|c| c.refused_full += 1);
                Err("400 Too many connections\n")
            }
        }
    }

    fn release(&self, id: ConnId) {
        let mut g = self.slots();
        g.0.close(id);
        g.1.remove(&id);
    }

    /// Logs and counts a login outcome; a logged-in connection is no longer shed.
    fn auth_event(&self, id: ConnId, peer: IpAddr, ev: AuthEvent) {
        match ev {
            AuthEvent::LoggedIn { user } => {
                self.slots().0.set_authenticated(id);
                self.count(|c| c.logins_ok += 1);
                info!(source = %peer, user = %user, "TIC login");
            }
            AuthEvent::Failed {
                user,
                reason,
                retry_after,
            } => {
                self.count(|c| {
                    c.logins_failed += 1;
                    if reason == LoginFailure::Throttled {
                        c.logins_throttled += 1;
                    }
                });
                // One fixed format for fail2ban (docs/fail2ban.md): the source comes before
                // the client-chosen user name, which cannot contain spaces.
                warn!(
                    "{} source={peer} user={user} reason={} retry_after={retry_after}",
                    LOGIN_FAILED,
                    reason.as_str()
                );
            }
        }
    }
}

/// The fixed start of the WARN line logged for every failed TIC login:
/// `tic login failed source=<ip> user=<name> reason=<why> retry_after=<secs>`.
pub const LOGIN_FAILED: &str = "tic login failed";

/// Frees a connection's slot when its task ends, however it ends.
struct SlotGuard {
    shared: Arc<TicShared>,
    id: ConnId,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared.release(self.id);
    }
}

/// The address as logged and limited: IPv4-mapped IPv6 shown as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn tic_server(
    listener: tokio::net::TcpListener,
    cfg: BrokerConfig,
    registry: SharedRegistry,
    shared: Arc<TicShared>,
) {
    let settings = shared.settings;
    let mut refuse_gate = LogGate::per_second();
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("TIC accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = canonical(peer.ip());
        let (id, kill) = match shared.admit(ip) {
            Ok(x) => x,
            Err(line) => {
                gated_log!(refuse_gate, Instant::now(), warn, source = %ip, "TIC connection refused: {}", line.trim_end());
                let _ = conn.try_write(line.as_bytes());
                continue;
            }
        };
        let guard = SlotGuard {
            shared: shared.clone(),
            id,
        };
        // The snapshot the reload task keeps current: no file or database read here.
        let data = registry.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let dir = RegistryDirectory::new(data, cfg.server_name.clone(), cfg.ipv4_pop);
        let sc = SessionConfig {
            server_name: cfg.server_name.clone(),
            peer: ip,
            challenge: rand::random(),
            tls_available: false,
        };
        tokio::spawn(async move {
            let shared = guard.shared.clone();
            let session = tic_conn(conn, sc, dir, &shared, id, kill);
            let limit = Duration::from_secs(settings.session_timeout);
            let result = tokio::time::timeout(limit, session)
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
            drop(guard);
        });
    }
}

async fn tic_conn(
    mut conn: tokio::net::TcpStream,
    sc: SessionConfig,
    dir: RegistryDirectory,
    shared: &TicShared,
    id: ConnId,
    kill: Arc<Notify>,
) -> std::io::Result<()> {
    let peer = sc.peer;
    let idle = Duration::from_secs(shared.settings.idle_timeout);
    let mut session = Session::new(sc);
    let mut framer = LineFramer::new();
    conn.write_all(format!("{}\n", session.greeting()).as_bytes())
        .await?;
    let mut buf = [0u8; 2048];
    // Only a complete command moves this: empty lines and partial lines do not keep a
    // connection open.
    let mut last_command = tokio::time::Instant::now();
    loop {
        let read = tokio::time::timeout_at(last_command + idle, conn.read(&mut buf));
        let n = tokio::select! {
            r = read => match r {
                Ok(r) => r?,
                Err(_) => {
                    shared.count(|c| c.idle_closed += 1);
                    let _ = conn.write_all(b"400 Idle timeout, closing connection\n").await;
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"));
                }
            },
            _ = kill.notified() => {
                let _ = conn.write_all(b"400 Server full, closing the oldest connection that has not logged in\n").await;
                return Err(std::io::Error::other("shed to make room"));
            }
        };
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
            if !line.trim().is_empty() {
                last_command = tokio::time::Instant::now();
            }
            let (replies, event) = {
                let mut l = shared.limiter.lock().unwrap_or_else(|p| p.into_inner());
                let r = session.handle_line_limited(unix_now(), &line, &dir, &mut l);
                (r, session.take_auth_event())
            };
            if let Some(ev) = event {
                shared.auth_event(id, peer, ev);
            }
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
    let mut gates = LogGates::default();
    loop {
        tundev::reset_all(&mut inb);
        if let Err(e) = rx.recv(&mut inb, &mut segs) {
            gated_log!(
                gates.gate("udp_recv"),
                Instant::now(),
                warn,
                "AYIYA recv: {e}"
            );
            continue;
        }
        let now = unix_now();
        let clock = Instant::now();
        let mut t = lock(table);
        for s in &segs {
            let dg = &inb[s.buf].as_ref()[s.off..s.off + s.len];
            match t.handle_datagram(now, s.src, dg) {
                InAction::Deliver(inner) => {
                    if let Err(e) = w.push(tun, inner) {
                        gated_log!(gates.gate("tun_write"), clock, warn, "TUN write: {e}");
                    }
                }
                InAction::Consumed => {}
                InAction::Drop(reason) => {
                    log_inbound_drop(&mut gates, clock, &t, s.src, dg, reason);
                }
            }
        }
        drop(t);
        if let Err(e) = w.flush(tun) {
            gated_log!(gates.gate("tun_write"), clock, warn, "TUN write: {e}");
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
    let mut gates = LogGates::default();
    loop {
        tundev::reset_all(&mut b.bufs);
        let n = match tun.recv_multiple(&mut b.raw, &mut b.bufs, &mut b.sizes, HEADROOM) {
            Ok(n) => n,
            Err(e) => {
                gated_log!(
                    gates.gate("tun_read"),
                    Instant::now(),
                    warn,
                    "TUN read: {e}"
                );
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        let now = unix_now();
        let clock = Instant::now();
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
                            gated_log!(
                                gates.gate("icmp_write"),
                                clock,
                                debug,
                                "ICMPv6 error write: {e}"
                            );
                        }
                        gated_log!(
                            gates.gate(reason.as_str()),
                            clock,
                            debug,
                            reason = reason.as_str(),
                            "outbound packet refused"
                        );
                    }
                    OutAction::Drop(reason) => {
                        gated_log!(
                            gates.gate(reason.as_str()),
                            clock,
                            debug,
                            reason = reason.as_str(),
                            "outbound packet dropped"
                        );
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
        {
            gated_log!(gates.gate("udp_send"), clock, warn, "AYIYA send: {e}");
        }
    }
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
        RegistryDirectory::new(
            Arc::new(data),
            "pop01".into(),
            "198.51.100.1".parse().unwrap(),
        )
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

    /// A TIC server on 127.0.0.1 with `settings`; sources are distinguished by binding the
    /// client end to other loopback addresses.
    async fn test_server(
        settings: TicSettings,
    ) -> (
        SocketAddr,
        Arc<TicShared>,
        tokio::task::JoinHandle<()>,
        PathBuf,
    ) {
        let path = std::env::temp_dir().join(format!(
            "v6h-broker-tic-{}-{}.toml",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(
            &path,
            "ipv4_pop = \"198.51.100.1\"\ntunnel_prefix = \"2001:db8:2ff::/48\"\n\
             [[user]]\nname = \"lab\"\npassword = \"labpass\"\n",
        )
        .unwrap();
        let cfg = BrokerConfig::load(&path).unwrap();
        let data = crate::registry::parse_registry(&std::fs::read_to_string(&path).unwrap(), &path)
            .unwrap();
        let registry: SharedRegistry = Arc::new(Mutex::new(Arc::new(data)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(TicShared::new(settings));
        let server = tokio::spawn(tic_server(listener, cfg, registry, shared.clone()));
        (addr, shared, server, path)
    }

    type Reader = tokio::io::BufReader<tokio::net::TcpStream>;

    /// Connects from `from` (a loopback address) and reads the first line.
    async fn connect_from(from: [u8; 4], to: SocketAddr) -> (String, Reader) {
        use tokio::io::AsyncBufReadExt;
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::from((from, 0))).unwrap();
        let c = sock.connect(to).await.unwrap();
        let mut r = tokio::io::BufReader::new(c);
        let mut line = String::new();
        let _ = r.read_line(&mut line).await;
        (line, r)
    }

    /// Reads until EOF (or 10 s); returns what was read.
    async fn read_rest(r: &mut Reader) -> String {
        let mut rest = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_string(&mut rest)).await;
        rest
    }

    /// Issue 12: 256 idle connections from one address used to fill the global cap, and real
    /// logins got `400 Too many connections`. Now one source gets a few slots, and a full
    /// source or server sheds its oldest connection that has not logged in.
    #[tokio::test]
    async fn tic_caps_per_source_and_sheds_the_oldest_idle_connection() {
        let (addr, shared, server, path) = test_server(TicSettings {
            max_connections: 3,
            max_connections_per_source: 2,
            ..TicSettings::default()
        })
        .await;
        let attacker = [127, 0, 0, 2];
        let (g1, mut c1) = connect_from(attacker, addr).await;
        let (g2, mut c2) = connect_from(attacker, addr).await;
        assert!(
            g1.starts_with("200") && g2.starts_with("200"),
            "{g1:?} {g2:?}"
        );
        // A third from the same source pushes out that source's oldest idle connection.
        let (g3, _c3) = connect_from(attacker, addr).await;
        assert!(g3.starts_with("200"), "{g3:?}");
        let shed = read_rest(&mut c1).await;
        assert!(shed.starts_with("400 Server full"), "{shed:?}");
        let (g4, _c4) = connect_from([127, 0, 0, 3], addr).await;
        assert!(g4.starts_with("200"), "{g4:?}");
        // Full (3): the gateway is admitted, the oldest idle connection (c2) is shed.
        let (g5, mut gw) = connect_from([127, 0, 0, 4], addr).await;
        assert!(g5.starts_with("200"), "{g5:?}");
        let shed = read_rest(&mut c2).await;
        assert!(shed.starts_with("400 Server full"), "{shed:?}");
        // The gateway logs in; from then on it is never shed.
        let login = login_lines(&mut gw, "labpass").await;
        assert!(login.starts_with("200 Successfully"), "{login:?}");
        let c = shared.counters();
        assert_eq!((c.connections, c.shed, c.logins_ok), (5, 2, 1));
        for i in 0..5 {
            let (g, _c) = connect_from([127, 0, 0, 10 + i], addr).await;
            assert!(g.starts_with("200"), "{g:?}");
        }
        use tokio::io::AsyncWriteExt;
        gw.get_mut().write_all(b"tunnel list\n").await.unwrap();
        let mut line = String::new();
        use tokio::io::AsyncBufReadExt;
        gw.read_line(&mut line).await.unwrap();
        assert!(
            line.starts_with("201"),
            "the logged-in gateway still works: {line:?}"
        );
        server.abort();
        let _ = std::fs::remove_file(&path);
    }

    /// Sends a login as user `lab` with `password`; returns the `authenticate` reply.
    async fn login_lines(r: &mut Reader, password: &str) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut line = String::new();
        for cmd in ["client test", "username lab", "challenge md5"] {
            r.get_mut()
                .write_all(format!("{cmd}\n").as_bytes())
                .await
                .unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
        }
        let challenge = line.trim_start_matches("200 ").trim().to_string();
        let resp = v6h_ayiya::tic::md5_response(&challenge, &crate::registry::md5_hex(password));
        r.get_mut()
            .write_all(format!("authenticate md5 {resp}\n").as_bytes())
            .await
            .unwrap();
        line.clear();
        r.read_line(&mut line).await.unwrap();
        line
    }

    /// Issue 12: an empty line every 30 s used to keep a connection past the idle timeout.
    /// Only complete commands reset the timer now; empty and partial lines do not.
    #[tokio::test]
    async fn tic_idle_timer_ignores_empty_and_partial_lines() {
        use tokio::io::AsyncWriteExt;
        let (addr, shared, server, path) = test_server(TicSettings {
            idle_timeout: 1,
            ..TicSettings::default()
        })
        .await;
        let t0 = Instant::now();
        let (g, mut r) = connect_from([127, 0, 0, 1], addr).await;
        assert!(g.starts_with("200"));
        let (_, mut partial) = connect_from([127, 0, 0, 1], addr).await;
        let (_, mut busy) = connect_from([127, 0, 0, 1], addr).await;
        for _ in 0..4 {
            let _ = r.get_mut().write_all(b"\n").await;
            let _ = partial.get_mut().write_all(b"cli").await;
            let _ = busy.get_mut().write_all(b"get unixtime\n").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let rest = read_rest(&mut r).await;
        assert!(
            rest.ends_with("400 Idle timeout, closing connection\n"),
            "{rest:?}"
        );
        let elapsed = t0.elapsed();
        assert!(elapsed < Duration::from_millis(1900), "{elapsed:?}");
        assert!(read_rest(&mut partial).await.contains("400 Idle timeout"));
        // The one sending commands outlived the others and only times out once it stops.
        let rest = read_rest(&mut busy).await;
        assert!(rest.contains("400 Idle timeout"), "{rest:?}");
        assert!(
            // Its last command went at about 0.9 s.
            t0.elapsed() >= Duration::from_millis(1800),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(shared.counters().idle_closed, 3);
        server.abort();
        let _ = std::fs::remove_file(&path);
    }

    /// Failed logins are counted (and throttled per user and source); the right password from
    /// the same address for another user still works.
    #[tokio::test]
    async fn tic_failed_logins_are_counted() {
        let (addr, shared, server, path) = test_server(TicSettings {
            login_free_failures: 1,
            ..TicSettings::default()
        })
        .await;
        for _ in 0..3 {
            let (_, mut r) = connect_from([127, 0, 0, 1], addr).await;
            let reply = login_lines(&mut r, "wrong").await;
            assert!(reply.starts_with("400"), "{reply:?}");
        }
        let c = shared.counters();
        assert_eq!((c.logins_failed, c.logins_throttled), (3, 1), "{c:?}");
        // Same user from another address: not throttled.
        let (_, mut r) = connect_from([127, 0, 0, 9], addr).await;
        assert!(
            login_lines(&mut r, "labpass")
                .await
                .starts_with("200 Successfully")
        );
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
        assert!(text.contains("tic: logins ok=0 failed=0"), "{text}");
        s.tic.logins_failed = 7;
        assert!(format_status(&s).contains("failed=7 (throttled=0)"));
        s.now = 0;
        assert!(format_status(&s).starts_with("warning:"));
    }
}

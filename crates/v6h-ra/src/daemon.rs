//! The RA daemon: wires one [`Scheduler`] per configured interface to a raw ICMPv6 socket,
//! the link state (sysfs + rtnetlink addresses), the clock and Unix signals.
//!
//! * Link state is polled once a second and whenever rtnetlink reports an address change,
//!   so the first RA follows DAD of the link-local address closely.
//! * SIGHUP re-reads the configuration; an invalid one is logged and the old one kept.
//! * SIGTERM/SIGINT send final RAs (a second signal cuts them short), then return.
//! * SIGUSR1 restarts DecrementLifetimes counters.
//! * Forwarding: while `/proc/sys/net/ipv6/conf/IF/forwarding` is 0, RAs carry router
//!   lifetime 0 (unless the check is disabled); transitions are logged (docs/ra.md).

use crate::build::{IfAddr, LinkContext, OtherIface};
use crate::config::{self, Config, ConfigError, Interface, Loaded};
use crate::sched::{Counters, Event, Millis, Notice, Scheduler, State};
use crate::wire::{ICMPV6_ROUTER_ADVERT, ICMPV6_ROUTER_SOLICIT};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, error, info, warn};
use v6h_net::addr::{AddrControl, AddrMonitor};
use v6h_net::gated_log;
use v6h_net::icmp6::Icmp6Socket;
use v6h_net::loggate::LogGate;

/// Errors that stop the daemon.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration file is writable by others.
    #[error("{0}: refusing a world-writable configuration file")]
    WorldWritable(String),
    /// An interface with IgnoreIfMissing off does not exist.
    #[error("interface {0} does not exist and IgnoreIfMissing is off")]
    MissingInterface(String),
    /// Socket setup failed.
    #[error(transparent)]
    Socket(#[from] v6h_net::icmp6::Icmp6Error),
    /// Netlink setup failed.
    #[error(transparent)]
    Netlink(#[from] v6h_net::addr::AddrError),
    /// Signal handler setup or detaching failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Daemon settings from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// radvd.conf (or `.toml`) path.
    pub config: PathBuf,
    /// Final RAs on shutdown (1–3).
    pub final_count: u8,
    /// Send router lifetime 0 while forwarding is off (default true).
    pub forwarding_check: bool,
    /// radvd `-d` level: ≥ 3 logs every RA sent and RS received.
    pub debug: u8,
    /// Upstream liveness (e.g. the tunnel), when known: while it reads `false`, RAs carry
    /// router lifetime 0 like with forwarding off (radvd.md §10: no default route without
    /// upstream). `None`: upstream is not watched.
    pub upstream: Option<tokio::sync::watch::Receiver<bool>>,
    /// Set to `true` to stop like SIGTERM (final RAs, then return): an embedding program
    /// that gives up after the daemon started (e.g. `v6home gateway` rolling back) uses it.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// When set, reloads come from here instead of SIGHUP: each new value is the file to
    /// load (an embedding program such as `v6home gateway` checks its whole configuration
    /// first, then hands the RA part over). SIGHUP itself is then ignored.
    pub reload: Option<tokio::sync::watch::Receiver<PathBuf>>,
}

/// Loads radvd.conf, or the TOML form when the file name ends in `.toml`; refuses a
/// world-writable file like radvd.
pub fn load(path: &Path) -> Result<Loaded, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Io {
        path: name.clone(),
        source,
    })?;
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(DaemonError::WorldWritable(name));
    }
    if path.extension().is_some_and(|e| e == "toml") {
        let text = config::read_text(path)?;
        Ok(config::from_toml(&name, &text)?)
    } else {
        Ok(config::load_file(path)?)
    }
}

/// Fails when an interface with IgnoreIfMissing off does not exist (before any socket is
/// opened, so a daemon can check it before detaching).
pub fn check_interfaces(cfg: &Config) -> Result<(), DaemonError> {
    for i in &cfg.interfaces {
        if !i.ignore_if_missing && sysfs_u32(&i.name, "ifindex").is_none() {
            return Err(DaemonError::MissingInterface(i.name.clone()));
        }
    }
    Ok(())
}

/// Checks that need the live interface (radvd's runtime `check_iface`), for `-c`.
///
/// Returns messages `file: interface IF: …` for every violation found on interfaces that exist.
pub fn live_checks(path: &str, cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for i in &cfg.interfaces {
        let Some(mtu) = sysfs_u32(&i.name, "mtu") else {
            if !i.ignore_if_missing {
                out.push(format!(
                    "{path}: interface {}: does not exist and IgnoreIfMissing is off",
                    i.name
                ));
            }
            continue;
        };
        if i.adv_link_mtu != 0 && i.adv_link_mtu > mtu {
            out.push(format!(
                "{path}: interface {}: AdvLinkMTU {} is above the link MTU {mtu}",
                i.name, i.adv_link_mtu
            ));
        }
    }
    out
}

fn sysfs(ifname: &str, file: &str) -> Option<String> {
    if ifname.contains('/') || ifname.starts_with('.') {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn sysfs_u32(ifname: &str, file: &str) -> Option<u32> {
    sysfs(ifname, file)?.parse().ok()
}

fn parse_mac(s: &str) -> Option<Vec<u8>> {
    let v: Option<Vec<u8>> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    v.filter(|v| !v.is_empty() && v.iter().any(|b| *b != 0))
}

/// Whether IPv6 forwarding is on for `ifname` (per-interface sysctl).
pub fn forwarding_on(ifname: &str) -> bool {
    if ifname.contains('/') {
        return false;
    }
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|s| matches!(s.trim(), "1" | "2"))
        .unwrap_or(false)
}

/// A snapshot of one interface's state as seen by the OS.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    ifindex: u32,
    up: bool,
    source: Option<Ipv6Addr>,
    ctx: LinkContext,
}

async fn snapshot(
    nl: &AddrControl,
    iface: &Interface,
    forwarding_check: bool,
    upstream_up: bool,
) -> Option<Snapshot> {
    let ifindex = sysfs_u32(&iface.name, "ifindex")?;
    let flags = sysfs(&iface.name, "flags")
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let oper = sysfs(&iface.name, "operstate").unwrap_or_default();
    let up = flags & 1 != 0 && matches!(oper.as_str(), "up" | "unknown");
    let entries = nl.list(Some(ifindex)).await.unwrap_or_default();
    let usable = |e: &&v6h_net::addr::AddrEntry| !e.tentative() && !e.dadfailed();
    let link_locals: Vec<Ipv6Addr> = entries
        .iter()
        .filter(usable)
        .map(|e| e.addr)
        .filter(|a| a.segments()[0] & 0xffc0 == 0xfe80)
        .collect();
    let all_usable: Vec<Ipv6Addr> = entries.iter().filter(usable).map(|e| e.addr).collect();
    let source = if iface.adv_ra_src_address.is_empty() {
        link_locals.first().copied()
    } else {
        iface
            .adv_ra_src_address
            .iter()
            .find(|a| all_usable.contains(a))
            .copied()
    };
    let addresses = entries
        .iter()
        .filter(usable)
        .map(|e| IfAddr {
            addr: e.addr,
            prefix_len: e.prefix_len,
            valid: e.valid,
            preferred: e.preferred,
        })
        .collect();
    let mut others = BTreeMap::new();
    for p in &iface.prefix {
        for name in [&p.base6_interface, &p.base6to4_interface]
            .into_iter()
            .flatten()
        {
            if let Some(idx) = sysfs_u32(name, "ifindex") {
                let v6 = nl.list(Some(idx)).await.unwrap_or_default();
                others.insert(
                    name.clone(),
                    OtherIface {
                        ipv4: first_ipv4(name),
                        ipv6: v6
                            .iter()
                            .map(|e| IfAddr {
                                addr: e.addr,
                                prefix_len: e.prefix_len,
                                valid: e.valid,
                                preferred: e.preferred,
                            })
                            .collect(),
                    },
                );
            }
        }
    }
    Some(Snapshot {
        ifindex,
        up,
        source,
        ctx: LinkContext {
            mtu: sysfs_u32(&iface.name, "mtu").unwrap_or(1280),
            mac: sysfs(&iface.name, "address").and_then(|m| parse_mac(&m)),
            addresses,
            forwarding: upstream_up && (!forwarding_check || forwarding_on(&iface.name)),
            decrement_elapsed: 0,
            others,
        },
    })
}

/// The first IPv4 address of `ifname` (for Base6to4Interface).
fn first_ipv4(ifname: &str) -> Option<std::net::Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| a.interface_name == ifname)
        .find_map(|a| a.address.and_then(|s| s.as_sockaddr_in().map(|v4| v4.ip())))
}

/// Per-interface runtime state.
struct Iface {
    sched: Scheduler<SmallRng>,
    snap: Option<Snapshot>,
    joined: Option<u32>,
    retiring: bool,
}

/// A shared view of the daemon's counters, per interface name.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<BTreeMap<String, (State, Counters)>>>,
}

impl Stats {
    /// A snapshot: interface name → (scheduler state, counters).
    pub fn get(&self) -> BTreeMap<String, (State, Counters)> {
        self.inner.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Most (interface, peer, field) keys remembered for rate-limiting inconsistency logs.
const MAX_LOGGED_KEYS: usize = 1024;

/// Whether an inconsistency log for `key` is due (at most one per key per minute); records it.
/// The peer comes from unauthenticated RAs, so stale keys are pruned and the map is capped:
/// when full of keys logged within the last minute, further new keys are not logged.
fn rate_limit_log<K: Ord>(logged: &mut BTreeMap<K, Millis>, key: K, now: Millis) -> bool {
    if logged.get(&key).is_some_and(|t| now < t + 60_000) {
        return false;
    }
    if logged.len() >= MAX_LOGGED_KEYS && !logged.contains_key(&key) {
        logged.retain(|_, t| now < *t + 60_000);
        if logged.len() >= MAX_LOGGED_KEYS {
            return false;
        }
    }
    logged.insert(key, now);
    true
}

fn new_iface(i: Interface, opts: &Options, now: Millis, seed: u64) -> Iface {
    let mut s = Scheduler::new(
        i,
        LinkContext::default(),
        SmallRng::seed_from_u64(seed),
        now,
    );
    s.set_final_count(opts.final_count);
    Iface {
        sched: s,
        snap: None,
        joined: None,
        retiring: false,
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Only the low bits matter for a seed; truncating the nanosecond count is intended.
    (t as u64) ^ (u64::from(std::process::id()) << 32)
}

/// Runs the daemon until SIGTERM/SIGINT and the final RAs are out. `stats` is updated as it runs.
pub async fn run(opts: Options, stats: Stats) -> Result<(), DaemonError> {
    let loaded = load(&opts.config)?;
    for w in &loaded.warnings {
        warn!("{w}");
    }
    check_interfaces(&loaded.config)?;
    let sock = Icmp6Socket::open(&[ICMPV6_ROUTER_SOLICIT, ICMPV6_ROUTER_ADVERT])?;
    let nl = AddrControl::new()?;
    let mut monitor = AddrMonitor::new()?;
    let io = |what: &str| {
        let what = what.to_string();
        move |source| DaemonError::Io { what, source }
    };
    let mut hup = signal(SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
    let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(io("SIGUSR1 handler"))?;

    let start = Instant::now();
    let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut seed = seed();
    let mut ifaces: Vec<Iface> = Vec::new();
    for i in loaded.config.interfaces {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        info!(iface = %i.name, advertise = i.adv_send_advert, "interface configured");
        ifaces.push(new_iface(i, &opts, now_ms(), seed));
    }
    let mut upstream = opts.upstream.clone();
    let mut stop = opts.stop.clone();
    let mut reload_rx = opts.reload.clone();
    let mut config_path = opts.config.clone();
    // Per-packet errors and drops: at most one line a second each, with a count of the rest.
    let mut gates = Gates::default();
    let mut shutting_down = false;
    let mut next_refresh: Millis = 0;
    let mut buf = vec![0u8; 65536];
    let mut last_state: BTreeMap<String, bool> = BTreeMap::new();
    // Inconsistency logs: at most one per (interface, peer, field) per minute; all are counted.
    let mut logged: BTreeMap<(String, Ipv6Addr, String), Millis> = BTreeMap::new();

    loop {
        let now = now_ms();
        if now >= next_refresh {
            for f in ifaces.iter_mut() {
                refresh(&nl, &sock, f, now, &opts).await;
            }
            next_refresh = now + 1000;
        }
        // Transmit what is due, log notices.
        for f in ifaces.iter_mut() {
            let name = f.sched.interface().name.clone();
            while let Some(t) = f.sched.poll_transmit(now) {
                let Some(idx) = f.snap.as_ref().map(|s| s.ifindex) else {
                    continue;
                };
                match sock.send_to(&t.bytes, t.dst, idx, Some(t.src)).await {
                    Ok(_) => {
                        if opts.debug >= 3 {
                            info!(iface = %name, dst = %t.dst, len = t.bytes.len(), "sent RA");
                        }
                    }
                    Err(e) => {
                        gated_log!(gates.send, Instant::now(), warn, iface = %name, dst = %t.dst, "sending RA failed: {e}");
                        if t.dst.is_multicast() {
                            f.sched.handle(now, Event::SendFailed);
                        }
                    }
                }
            }
            while let Some(n) = f.sched.poll_notice() {
                match n {
                    Notice::Inconsistent { peer, what } => {
                        let field = format!("{what:?}");
                        let field = field.split([' ', '(']).next().unwrap_or("").to_string();
                        let key = (name.clone(), peer, field);
                        if rate_limit_log(&mut logged, key, now) {
                            warn!(iface = %name, %peer, "inconsistent RA from another router: {what:?}");
                        }
                    }
                    Notice::OptionsSkipped(k) => {
                        let types: Vec<String> = k.iter().map(u8::to_string).collect();
                        gated_log!(gates.skipped, Instant::now(), warn, iface = %name, "options of types {} do not fit in an RA; not sent", types.join(", "));
                    }
                    Notice::Forwarding(on) => {
                        if on {
                            info!(iface = %name, "forwarding on and upstream up: router lifetime restored");
                        } else {
                            warn!(iface = %name, "IPv6 forwarding is off or upstream down: advertising router lifetime 0");
                        }
                    }
                    Notice::Finished => debug!(iface = %name, "interface finished"),
                    Notice::Dropped {
                        src,
                        kind,
                        hop_limit,
                        reason,
                    } => {
                        let what = if kind == ICMPV6_ROUTER_SOLICIT {
                            "RS"
                        } else {
                            "RA"
                        };
                        let gate = gates.drops.entry(reason).or_default();
                        gated_log!(gate, Instant::now(), debug, iface = %name, %src, hop_limit, reason = reason.as_str(), "ignored {what}: {}", reason.describe());
                    }
                    Notice::RateLimited { src } => {
                        gated_log!(gates.rate_limited, Instant::now(), debug, iface = %name, %src, "RS replies rate-limited: one multicast RA answers");
                    }
                }
            }
            let running = f.sched.state() == State::Running;
            if last_state.insert(name.clone(), running) != Some(running) {
                if running {
                    info!(iface = %name, "now advertising");
                } else {
                    info!(iface = %name, state = ?f.sched.state(), "not advertising");
                }
            }
        }
        ifaces.retain(|f| !(f.retiring && f.sched.is_done()));
        if let Ok(mut g) = stats.inner.lock() {
            g.clear();
            for f in &ifaces {
                g.insert(
                    f.sched.interface().name.clone(),
                    (f.sched.state(), f.sched.counters().clone()),
                );
            }
        }
        if shutting_down && ifaces.iter().all(|f| f.sched.is_done()) {
            info!("all final RAs sent; exiting");
            return Ok(());
        }
        let mut deadline = next_refresh;
        for f in &ifaces {
            if let Some(t) = f.sched.poll_timeout() {
                deadline = deadline.min(t);
            }
        }
        let sleep = Duration::from_millis(deadline.saturating_sub(now_ms()));
        tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(meta) => {
                    let now = now_ms();
                    let bytes = buf.get(..meta.len).unwrap_or(&[]);
                    if let Some(f) = ifaces.iter_mut().find(|f| f.snap.as_ref().map(|s| s.ifindex) == Some(meta.ifindex)) {
                        if opts.debug >= 3 {
                            info!(iface = %f.sched.interface().name, src = %meta.src, hop_limit = meta.hop_limit, kind = bytes.first().copied().unwrap_or(0), "received");
                        }
                        f.sched.handle(now, Event::Received { src: meta.src, hop_limit: meta.hop_limit, bytes });
                    }
                }
                Err(e) => gated_log!(gates.recv, Instant::now(), warn, "receive failed: {e}"),
            },
            _ = tokio::time::sleep(sleep) => {}
            _ = monitor.next() => { next_refresh = now_ms(); }
            r = upstream_changed(&mut upstream) => {
                if r.is_err() {
                    // The sender is gone: stop watching, keep the last value.
                    upstream = None;
                }
                next_refresh = now_ms();
            }
            r = stop_requested(&mut stop) => {
                // Asked once (or the sender is gone): stop watching.
                stop = None;
                if r.is_ok() && !shutting_down {
                    info!("stop requested");
                    shutdown(&mut ifaces, now_ms(), &mut shutting_down);
                }
            }
            r = reload_requested(&mut reload_rx) => {
                match r {
                    Some(path) => {
                        info!(config = %path.display(), "reload requested");
                        config_path = path;
                        match load(&config_path) {
                            Err(e) => error!("reload failed, keeping the running configuration: {e}"),
                            Ok(new) => {
                                for w in &new.warnings { warn!("{w}"); }
                                let now = now_ms();
                                apply_reload(&mut ifaces, new.config, &opts, now, &mut seed);
                                next_refresh = now;
                            }
                        }
                    }
                    // The sender is gone: no more reloads from there.
                    None => reload_rx = None,
                }
            }
            _ = hup.recv(), if opts.reload.is_none() => {
                info!(config = %config_path.display(), "SIGHUP: reloading");
                match load(&config_path) {
                    Err(e) => error!("reload failed, keeping the running configuration: {e}"),
                    Ok(new) => {
                        for w in &new.warnings { warn!("{w}"); }
                        let now = now_ms();
                        apply_reload(&mut ifaces, new.config, &opts, now, &mut seed);
                        next_refresh = now;
                    }
                }
            }
            _ = term.recv() => { shutdown(&mut ifaces, now_ms(), &mut shutting_down); }
            _ = int.recv() => { shutdown(&mut ifaces, now_ms(), &mut shutting_down); }
            _ = usr1.recv() => {
                info!("SIGUSR1: resetting DecrementLifetimes counters");
                let now = now_ms();
                for f in ifaces.iter_mut() { f.sched.handle(now, Event::ResetDecrement); }
            }
        }
    }
}

/// Waits for a reload request (forever when nobody can ask); `None` once the sender is gone.
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

/// Waits for the upstream flag to change (forever when it is not watched).
async fn upstream_changed(
    u: &mut Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match u {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

/// Waits until a stop is requested (forever when nobody can ask).
async fn stop_requested(
    s: &mut Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match s {
        Some(rx) => rx.wait_for(|stop| *stop).await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Log gates of the per-packet lines.
#[derive(Default)]
struct Gates {
    send: LogGate,
    recv: LogGate,
    rate_limited: LogGate,
    skipped: LogGate,
    drops: BTreeMap<crate::sched::DropReason, LogGate>,
}

fn shutdown(ifaces: &mut [Iface], now: Millis, shutting_down: &mut bool) {
    if *shutting_down {
        info!("second signal: stopping final RAs");
    } else {
        info!("shutting down: sending final RAs");
    }
    *shutting_down = true;
    for f in ifaces.iter_mut() {
        f.sched.handle(now, Event::Shutdown);
    }
}

fn apply_reload(ifaces: &mut Vec<Iface>, cfg: Config, opts: &Options, now: Millis, seed: &mut u64) {
    let names: Vec<String> = cfg.interfaces.iter().map(|i| i.name.clone()).collect();
    for f in ifaces.iter_mut() {
        if !f.retiring && !names.contains(&f.sched.interface().name) {
            info!(iface = %f.sched.interface().name, "removed by reload: sending final RAs");
            f.retiring = true;
            f.sched.handle(now, Event::Shutdown);
        }
    }
    for i in cfg.interfaces {
        match ifaces
            .iter_mut()
            .find(|f| !f.retiring && f.sched.interface().name == i.name)
        {
            Some(f) => f.sched.handle(now, Event::Reload(Box::new(i))),
            None => {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                info!(iface = %i.name, "added by reload");
                ifaces.push(new_iface(i, opts, now, *seed));
            }
        }
    }
}

async fn refresh(nl: &AddrControl, sock: &Icmp6Socket, f: &mut Iface, now: Millis, opts: &Options) {
    let iface = f.sched.interface().clone();
    let upstream_up = opts.upstream.as_ref().is_none_or(|u| *u.borrow());
    let snap = snapshot(nl, &iface, opts.forwarding_check, upstream_up).await;
    let old = f.snap.clone();
    match (&old, &snap) {
        (_, None) => {
            if old.is_some() {
                info!(iface = %iface.name, "interface disappeared");
                f.sched.handle(now, Event::LinkDown);
            }
            f.joined = None;
        }
        (_, Some(s)) => {
            if f.joined != Some(s.ifindex) {
                match sock.join_all_routers(s.ifindex) {
                    Ok(()) => f.joined = Some(s.ifindex),
                    Err(e) => warn!(iface = %iface.name, "joining ff02::2: {e}"),
                }
            }
            if old.as_ref().map(|o| &o.ctx) != Some(&s.ctx) {
                if old.is_none() && !s.ctx.forwarding && iface.adv_default_lifetime != 0 {
                    warn!(iface = %iface.name, "IPv6 forwarding is off (or upstream down): advertising router lifetime 0");
                }
                f.sched.handle(now, Event::Context(s.ctx.clone()));
            }
            let was_up = old.as_ref().is_some_and(|o| o.up);
            if s.up && !was_up {
                f.sched.handle(now, Event::LinkUp);
            } else if !s.up && was_up {
                f.sched.handle(now, Event::LinkDown);
            }
            let old_src = old.as_ref().and_then(|o| o.source);
            if s.up && (s.source != old_src || !was_up) {
                match s.source {
                    Some(source) => f.sched.handle(now, Event::Ready { source }),
                    None => f.sched.handle(now, Event::NotReady),
                }
            }
            if s.up && s.source.is_none() && old_src.is_some() {
                f.sched.handle(now, Event::NotReady);
            }
        }
    }
    f.snap = snap;
}

/// Detaches into the background (radvd without `-n`). Call before starting any runtime.
pub fn daemonize() -> Result<(), DaemonError> {
    nix::unistd::daemon(false, false).map_err(|e| DaemonError::Io {
        what: "daemon()".into(),
        source: std::io::Error::from_raw_os_error(e as i32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            config: PathBuf::from("x.conf"),
            final_count: 3,
            forwarding_check: true,
            debug: 0,
            upstream: None,
            stop: None,
            reload: None,
        }
    }

    #[test]
    fn inconsistency_log_keys_are_bounded_under_ra_flood() {
        let mut logged = BTreeMap::new();
        for i in 0..10_000u32 {
            let due = rate_limit_log(&mut logged, i, 0);
            assert_eq!(due, (i as usize) < MAX_LOGGED_KEYS, "key {i}");
        }
        assert_eq!(logged.len(), MAX_LOGGED_KEYS);
        // Same key within a minute: suppressed; after it: logged again.
        assert!(!rate_limit_log(&mut logged, 0, 59_999));
        assert!(rate_limit_log(&mut logged, 0, 60_000));
        // Stale keys are pruned, so new peers are logged again and the map stays bounded.
        assert!(rate_limit_log(&mut logged, 20_000, 61_000));
        assert!(logged.len() <= MAX_LOGGED_KEYS);
    }

    #[test]
    fn reload_retires_removed_interfaces_with_final_ras_and_adds_new_ones() {
        let two = config::parse_str(
            "x.conf",
            "interface eth0 { AdvSendAdvert on; prefix 2001:db8:1::/64 { }; };\n\
             interface eth1 { AdvSendAdvert on; prefix 2001:db8:2::/64 { }; };\n",
        )
        .unwrap()
        .config;
        let mut ifaces: Vec<Iface> = two
            .interfaces
            .into_iter()
            .enumerate()
            .map(|(n, i)| new_iface(i, &opts(), 0, n as u64))
            .collect();
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        for f in ifaces.iter_mut() {
            f.sched.handle(0, Event::LinkUp);
            f.sched.handle(0, Event::Ready { source: ll });
            while f.sched.poll_transmit(0).is_some() {}
        }
        let next = config::parse_str(
            "x.conf",
            "interface eth0 { AdvSendAdvert on; };\ninterface eth2 { AdvSendAdvert on; };\n",
        )
        .unwrap()
        .config;
        let mut seed = 7;
        apply_reload(&mut ifaces, next, &opts(), 10_000, &mut seed);
        let names: Vec<(&str, bool)> = ifaces
            .iter()
            .map(|f| (f.sched.interface().name.as_str(), f.retiring))
            .collect();
        assert_eq!(
            names,
            vec![("eth0", false), ("eth1", true), ("eth2", false)]
        );
        // eth1 says goodbye: router lifetime 0.
        let t = ifaces[1].sched.poll_transmit(10_000).expect("final RA");
        let ra = crate::wire::RaRepr::parse(&t.bytes).unwrap();
        assert_eq!(ra.header.router_lifetime, 0);
        // eth0 withdraws its removed prefix at once.
        let t = ifaces[0]
            .sched
            .poll_transmit(10_000)
            .expect("RA after reload");
        let ra = crate::wire::RaRepr::parse(&t.bytes).unwrap();
        assert!(ra.options.iter().any(|o| matches!(o,
            crate::wire::NdOptionRepr::Prefix(p) if p.valid_lifetime == 0)));
    }

    #[test]
    fn ipv4_lookup_of_missing_interface_is_none() {
        assert_eq!(first_ipv4("v6hnosuchif0"), None);
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:5e:10:00:01"),
            Some(vec![2, 0, 0x5e, 0x10, 0, 1])
        );
        assert_eq!(parse_mac("00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("zz"), None);
    }

    #[test]
    fn world_writable_config_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("radvd.conf");
        std::fs::write(&p, "interface eth0 { AdvSendAdvert on; };\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&p).is_ok());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(load(&p), Err(DaemonError::WorldWritable(_))));
    }

    #[test]
    fn non_utf8_config_is_reported_once_at_its_position() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["radvd.conf", "ra.toml"] {
            let p = dir.path().join(name);
            std::fs::write(&p, b"interface eth0 {\n  AdvSendAdvert on; # caf\xe9\n};\n").unwrap();
            let e = load(&p).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "{}:2:26: invalid UTF-8 (byte 0xE9); the file must be UTF-8 text",
                    p.display()
                )
            );
        }
    }

    #[test]
    fn toml_config_loads_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("radvd.conf");
        std::fs::write(
            &conf,
            "interface eth0 { AdvSendAdvert on; prefix 2001:db8:1::/64 { }; };\n",
        )
        .unwrap();
        let l = load(&conf).unwrap();
        let toml = dir.path().join("ra.toml");
        std::fs::write(&toml, l.config.to_toml()).unwrap();
        assert_eq!(load(&toml).unwrap().config, l.config);
    }

    #[test]
    fn live_checks_flag_missing_interfaces() {
        let l = config::parse_str(
            "x.conf",
            "interface v6hnosuchif0 { IgnoreIfMissing off; AdvSendAdvert on; };\n",
        )
        .unwrap();
        let m = live_checks("x.conf", &l.config);
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("v6hnosuchif0"));
    }
}

//! `v6home gateway`: the whole home router from one `gateway.toml`, in one process.
//!
//! Start-up order: IPv6 forwarding, the router's LAN address, the tunnel (TIC login with
//! retries, TUN, beats), then router advertisements and DHCPv6. A liveness probe pings the
//! PoP's inner address through the tunnel; while it fails, the RAs carry router lifetime 0, so
//! hosts drop their default route instead of black-holing traffic, and they get it back when
//! the tunnel returns. SIGHUP reloads the RA and DHCPv6 configurations (a broken file keeps
//! the running one); SIGTERM sends the goodbye RAs and takes the tunnel down.

use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use v6h_gateway::config::{GatewayConfig, Source};
use v6h_gateway::metrics::{Family, Kind, Metrics};
use v6h_gateway::notify::{Notifier, watchdog_interval};

/// Arguments of `v6home gateway`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<GatewayCommand>,
    /// gateway.toml.
    #[arg(
        long,
        short = 'c',
        default_value = "/etc/v6home/gateway.toml",
        global = true
    )]
    config: PathBuf,
    /// Where the gateway keeps generated configs, the DHCPv6 DUID and its status file.
    #[arg(long, default_value = "/var/lib/v6home/gateway", global = true)]
    state_dir: PathBuf,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9641).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Also write a sysctl.d drop-in so forwarding survives a reboot.
    #[arg(long)]
    persist: bool,
    /// Seconds between liveness probes of the tunnel.
    #[arg(long, default_value_t = 2)]
    probe_interval: u64,
    /// Failed probes in a row before the tunnel counts as down.
    #[arg(long, default_value_t = 3)]
    probe_misses: u32,
}

#[derive(Debug, clap::Subcommand)]
enum GatewayCommand {
    /// Print a one-screen summary of a running gateway.
    Status {
        /// Print the status snapshot as JSON (numbers as numbers), with `running` and `age_s`.
        #[arg(long)]
        json: bool,
    },
}

/// What the gateway writes to `<state_dir>/status.json` for `gateway status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Status {
    pid: u32,
    config: String,
    tunnel_id: String,
    tunnel_interface: String,
    tunnel_local: String,
    tunnel_pop: String,
    tunnel_mtu: u16,
    tunnel_up: bool,
    tunnel_changes: u64,
    probes_sent: u64,
    probes_lost: u64,
    lan_interface: String,
    lan_prefix: String,
    lan_address: String,
    ra_multicast: u64,
    ra_unicast: u64,
    rs_received: u64,
    #[serde(default)]
    rs_rate_limited: u64,
    #[serde(default)]
    nd_dropped: u64,
    #[serde(default)]
    nd_dropped_hop_limit: u64,
    /// The RA daemon, per interface.
    #[serde(default)]
    ra: Vec<super::observe::RaInterfaceStatus>,
    /// The DHCPv6 server (absent when DHCPv6 is off).
    #[serde(default)]
    dhcp6: Option<v6h_dhcp6::status::Snapshot>,
    /// SIGHUP reloads applied.
    #[serde(default)]
    reloads: u64,
    /// SIGHUP reloads refused (the running configuration stayed).
    #[serde(default)]
    reload_failures: u64,
    /// What the last reload did, or why it was refused.
    #[serde(default)]
    last_reload: String,
    started_unix: u64,
    updated_unix: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `v6home gateway`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(GatewayCommand::Status { json }) = args.command {
        return print_status(&args.state_dir, json);
    }
    // Every file is read and checked before the system is touched: a mistake is reported
    // with its file:line:col and nothing changes.
    let config = GatewayConfig::load(&args.config)?;
    let aiccu = preflight(&config)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating {}", args.state_dir.display()))?;
    // One gateway per state directory (its generated configs, DUID, leases and status).
    let _pid = super::pidfile::PidFile::acquire(&args.state_dir.join("gateway.pid"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = rt.block_on(serve(args, config, aiccu));
    // The liveness prober sleeps in a blocking thread; do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

fn print_status(state_dir: &Path, json: bool) -> anyhow::Result<()> {
    let path = state_dir.join("status.json");
    let read = super::observe::read_status::<Status>(&path, "the gateway")?;
    if json {
        return super::observe::print_json(&read);
    }
    let (s, age, alive) = (&read.status, read.age, read.running);
    println!(
        "v6home gateway (pid {}, {}) — {}",
        s.pid,
        s.config,
        if alive {
            "running"
        } else {
            "NOT RUNNING (stale status)"
        }
    );
    println!(
        "  tunnel   {} on {}: {} <-> PoP {}, MTU {}, {} ({} changes; probes {} sent, {} lost)",
        s.tunnel_id,
        s.tunnel_interface,
        s.tunnel_local,
        s.tunnel_pop,
        s.tunnel_mtu,
        if s.tunnel_up { "UP" } else { "DOWN" },
        s.tunnel_changes,
        s.probes_sent,
        s.probes_lost
    );
    println!(
        "  lan      {} {} (router {})",
        s.lan_interface, s.lan_prefix, s.lan_address
    );
    println!(
        "  ra       {} multicast, {} unicast RAs sent; {} RS received; router lifetime {}",
        s.ra_multicast,
        s.ra_unicast,
        s.rs_received,
        if s.tunnel_up {
            "as configured"
        } else {
            "0 (tunnel down)"
        }
    );
    println!(
        "           {} RS rate-limited; {} RS/RA ignored ({} for hop limit != 255)",
        s.rs_rate_limited, s.nd_dropped, s.nd_dropped_hop_limit
    );
    if let Some(d) = &s.dhcp6 {
        println!("  dhcp6    {}", dhcp6_summary(d));
    }
    if s.reloads + s.reload_failures > 0 {
        println!(
            "  reload   {} applied, {} refused; last: {}",
            s.reloads, s.reload_failures, s.last_reload
        );
    }
    println!(
        "  uptime   {} s, status updated {age} s ago",
        unix_now().saturating_sub(s.started_unix)
    );
    Ok(())
}

/// One line about a DHCPv6 server: messages, drops, leases and pool use.
pub(crate) fn dhcp6_summary(d: &v6h_dhcp6::status::Snapshot) -> String {
    let received: u64 = d.links.iter().flat_map(|l| l.received.values()).sum();
    let sent: u64 = d.links.iter().flat_map(|l| l.sent.values()).sum();
    let dropped: u64 = d.links.iter().flat_map(|l| l.dropped.values()).sum();
    let mut line = format!("{received} messages received, {sent} sent, {dropped} dropped");
    if d.stateful {
        let size: u64 = d.pools.iter().map(|p| p.size).fold(0, u64::saturating_add);
        let used: u64 = d
            .pools
            .iter()
            .map(|p| p.size.saturating_sub(p.free))
            .fold(0, u64::saturating_add);
        line.push_str(&format!(
            "; leases {} bound, {} declined; pools {used}/{size} used",
            d.leases_bound, d.leases_declined
        ));
    } else {
        line.push_str("; stateless");
    }
    line
}

/// Writes a component's config where its daemon reads it: the user's file as it is, or the
/// text generated from inline settings.
fn materialise(source: &Source, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    match source {
        Source::File(p) => Ok(p.clone()),
        Source::Inline(text) => {
            let path = dir.join(name);
            // Atomically: a daemon reloading it never reads half a file.
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        }
    }
}

/// Reads and checks every configuration the gateway will use, the way each component's
/// daemon will: aiccu.conf, radvd.conf, dhcp6s.conf (the user's files, or the text generated
/// from inline settings) and the interfaces they name. Touches nothing. Returns the tunnel's
/// configuration.
fn preflight(config: &GatewayConfig) -> anyhow::Result<v6h_ayiya::aiccu_conf::AiccuConfig> {
    let aiccu = match config.tunnel_source() {
        Source::File(p) => {
            let cfg = v6h_tunnel::client::load_config(&p)?;
            v6h_tunnel::client::warn_unused_keys(&p, UNUSED_BY_GATEWAY, |k| match k {
                "daemonize" => cfg.daemonize,
                "pidfile" => cfg.pidfile != v6h_ayiya::aiccu_conf::AiccuConfig::default().pidfile,
                "local_ipv4_override" => cfg.local_ipv4_override.is_some(),
                _ => false,
            });
            cfg
        }
        Source::Inline(text) => {
            v6h_ayiya::aiccu_conf::AiccuConfig::parse("gateway.toml [tunnel]", &text)?.0
        }
    };
    let ra = match config.ra_source() {
        Source::File(p) => v6h_ra::daemon::load(&p)?,
        Source::Inline(text) => v6h_ra::config::parse_str("gateway.toml [ra]", &text)?,
    };
    v6h_ra::daemon::check_interfaces(&ra.config)?;
    if let Some(source) = config.dhcp6_source() {
        match source {
            Source::File(p) => v6h_dhcp6::config::Config::load(&p)?,
            Source::Inline(text) => {
                v6h_dhcp6::config::dhcp6s::parse_str("gateway.toml [dhcp6]", &text)?
            }
        };
    }
    v6h_dhcp6::daemon::resolve_interfaces(std::slice::from_ref(&config.lan.interface))?;
    Ok(aiccu)
}

/// aiccu.conf keys `v6home gateway` accepts but does not use (beyond those AICCU ignores).
const UNUSED_BY_GATEWAY: v6h_tunnel::client::Unused<'static> = &[
    (
        "daemonize",
        "'daemonize' is ignored by `v6home gateway`: it stays in the foreground (run it from its systemd unit)",
    ),
    (
        "pidfile",
        "'pidfile' is ignored by `v6home gateway`: it locks <state-dir>/gateway.pid instead",
    ),
    (
        "local_ipv4_override",
        "'local_ipv4_override' changes nothing for an AYIYA tunnel (AICCU uses it only for 6in4 and `aiccu test`)",
    ),
];

/// The RA daemon's task.
type RaTask = tokio::task::JoinHandle<Result<(), v6h_ra::daemon::DaemonError>>;

/// What start-up changed, so that a failure can put it back: forwarding's old value, the
/// sysctl.d drop-in, the router's LAN address, the tunnel and the RA daemon.
#[derive(Default)]
struct Undo {
    forwarding: Option<String>,
    drop_in: Option<PathBuf>,
    lan_addr: Option<(String, Ipv6Addr)>,
    tunnel: Option<Arc<v6h_tunnel::client::Running>>,
    tunnel_if: Option<String>,
    /// Tasks to stop (the beat task holds a handle on the tunnel).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The beat task (it holds a handle on the tunnel).
    beats: Option<tokio::task::JoinHandle<()>>,
    ra: Option<(watch::Sender<bool>, RaTask)>,
}

impl Undo {
    /// Undoes everything recorded, newest first; each step is logged, failures too.
    async fn rollback(mut self) {
        warn!("start-up failed: undoing what was changed");
        self.stop_tasks().await;
        if let Some((stop, task)) = self.ra.take() {
            // Goodbye RAs: hosts may already have the prefix and the default route.
            let _ = stop.send(true);
            match tokio::time::timeout(Duration::from_secs(8), task).await {
                Ok(Ok(Err(e))) => warn!("RA daemon: {e}"),
                Err(_) => warn!("RA daemon did not finish its goodbye RAs in 8 s"),
                _ => {}
            }
        }
        if let Some((iface, addr)) = self.lan_addr.take() {
            match remove_addr(&iface, addr).await {
                Ok(()) => info!(%addr, %iface, "removed the LAN address"),
                Err(e) => {
                    warn!(%addr, %iface, "removing the LAN address: {}", super::anyhow_text(&e))
                }
            }
        }
        if let Some(running) = self.tunnel.take() {
            match Arc::try_unwrap(running) {
                Ok(running) => {
                    if let Err(e) = running.stop().await {
                        warn!("taking the tunnel down: {}", super::error_text(&e));
                    }
                }
                Err(_) => warn!("tunnel still referenced"),
            }
            // The TUN interface is not persistent: it goes when the process closes it.
            if let Some(ifname) = &self.tunnel_if {
                info!(iface = %ifname, "tunnel interface removed with the process");
            }
        }
        if let Some(p) = self.drop_in.take() {
            match std::fs::remove_file(&p) {
                Ok(()) => info!(path = %p.display(), "removed the forwarding drop-in"),
                Err(e) => warn!(path = %p.display(), "removing the forwarding drop-in: {e}"),
            }
        }
        if let Some(before) = self.forwarding.take() {
            match v6h_gateway::forwarding::restore(Path::new("/"), &before) {
                Ok(()) => info!(value = %before, "IPv6 forwarding restored"),
                Err(e) => warn!("restoring IPv6 forwarding to {before}: {e}"),
            }
        }
    }
}

impl Undo {
    /// Stops the helper tasks and waits until they have dropped what they hold.
    async fn stop_tasks(&mut self) {
        for t in self.tasks.drain(..).chain(self.beats.take()) {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Removes `addr/64` from `iface`.
async fn remove_addr(iface: &str, addr: Ipv6Addr) -> anyhow::Result<()> {
    let nl = v6h_net::netlink::Netlink::new()?;
    let index = nl.link_index(iface).await?;
    let ctl = v6h_net::addr::AddrControl::new()?;
    ctl.del(index, addr, 64).await?;
    Ok(())
}

/// Shared live state for status and metrics.
#[derive(Debug, Default)]
struct Live {
    status: Mutex<Status>,
}

struct GatewayMetrics {
    live: Arc<Live>,
    tunnel_if: String,
}

/// The gateway's own (tunnel) metrics source with empty state, for listing metric names.
#[cfg(test)]
pub(crate) fn tunnel_metrics_source() -> Arc<dyn v6h_gateway::metrics::Source> {
    Arc::new(GatewayMetrics {
        live: Arc::default(),
        tunnel_if: String::new(),
    })
}

fn sysfs_counter(ifname: &str, name: &str) -> f64 {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{name}"))
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

impl v6h_gateway::metrics::Source for GatewayMetrics {
    fn snapshot(&self) -> Vec<Family> {
        let s = self
            .live
            .status
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        let dir = |d: &str| vec![("direction".to_string(), d.to_string())];
        let out = vec![
            Family {
                name: "tunnel_up",
                help: "1 while the tunnel's liveness probe succeeds.",
                kind: Kind::Gauge,
                samples: vec![(vec![], if s.tunnel_up { 1.0 } else { 0.0 })],
            },
            Family {
                name: "tunnel_state_changes",
                help: "Tunnel up/down transitions.",
                kind: Kind::Counter,
                samples: vec![(vec![], s.tunnel_changes as f64)],
            },
            Family {
                name: "tunnel_packets",
                help: "Packets through the tunnel interface.",
                kind: Kind::Counter,
                samples: vec![
                    (dir("in"), sysfs_counter(&self.tunnel_if, "rx_packets")),
                    (dir("out"), sysfs_counter(&self.tunnel_if, "tx_packets")),
                ],
            },
            Family {
                name: "tunnel_bytes",
                help: "Bytes through the tunnel interface.",
                kind: Kind::Counter,
                samples: vec![
                    (dir("in"), sysfs_counter(&self.tunnel_if, "rx_bytes")),
                    (dir("out"), sysfs_counter(&self.tunnel_if, "tx_bytes")),
                ],
            },
            Family {
                name: "tunnel_drops",
                help: "Packets the tunnel interface dropped, by direction.",
                kind: Kind::Counter,
                samples: vec![
                    (dir("in"), sysfs_counter(&self.tunnel_if, "rx_dropped")),
                    (dir("out"), sysfs_counter(&self.tunnel_if, "tx_dropped")),
                ],
            },
            Family {
                name: "tunnel_probes_lost",
                help: "Liveness probes of the PoP that got no answer.",
                kind: Kind::Counter,
                samples: vec![(vec![], s.probes_lost as f64)],
            },
        ];
        out
    }
}

async fn serve(
    args: Args,
    config: GatewayConfig,
    aiccu: v6h_ayiya::aiccu_conf::AiccuConfig,
) -> anyhow::Result<()> {
    let mut undo = Undo::default();
    match serve_inner(args, config, aiccu, &mut undo).await {
        Ok(()) => Ok(()),
        Err(e) => {
            undo.rollback().await;
            Err(e)
        }
    }
}

async fn serve_inner(
    args: Args,
    mut config: GatewayConfig,
    aiccu: v6h_ayiya::aiccu_conf::AiccuConfig,
    undo: &mut Undo,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let state_dir = args.state_dir.clone();
    let notifier = Notifier::from_env().context("opening $NOTIFY_SOCKET")?;

    // 1. Forwarding.
    let before = v6h_gateway::forwarding::enable(Path::new("/"))
        .context("turning on IPv6 forwarding (net.ipv6.conf.all.forwarding)")?;
    undo.forwarding = Some(before.clone());
    info!(previous = %before, "IPv6 forwarding on");
    if args.persist || config.forwarding.persist {
        let existed = Path::new("/")
            .join(v6h_gateway::forwarding::DROP_IN)
            .exists();
        let p = v6h_gateway::forwarding::persist(Path::new("/"))?;
        if !existed {
            undo.drop_in = Some(p.clone());
        }
        info!(path = %p.display(), "forwarding persisted");
    }

    // 3. The tunnel (first: the LAN prefix may come from it).
    // (aiccu.conf was read and checked by the preflight.)
    let outcome = v6h_tunnel::client::tic_with_retry(&aiccu, false, u32::MAX).await?;
    let v6h_ayiya::tic::client::LoginOutcome::Tunnel(tunnel_info) = outcome else {
        bail!(
            "TIC gave a tunnel list, not a tunnel, for {}",
            aiccu.username
        );
    };
    let tunnel_if = aiccu.ipv6_interface.clone();
    undo.tunnel_if = Some(tunnel_if.clone());
    let running = v6h_tunnel::client::start(&aiccu, tunnel_info, true).await?;
    let info = running.info().clone();
    let running = Arc::new(running);
    undo.tunnel = Some(Arc::clone(&running));
    info!(tunnel = %info.id, "tunnel up after {} ms", started.elapsed().as_millis());

    // 2. The LAN prefix (from [lan], or the tunnel's routed subnet) and the router's own
    // address on it.
    let lan_prefix = config
        .resolve_lan_prefix(&info.routed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    let (prefix, lan_addr) = config.lan_address();
    let nl = v6h_net::netlink::Netlink::new()?;
    let had_addr = nl
        .addrs6(Some(&config.lan.interface))
        .await?
        .iter()
        .any(|a| a.addr == lan_addr);
    v6h_net::netlink::ignore_exists(
        nl.add_addr6(&config.lan.interface, lan_addr, 64, true)
            .await,
    )
    .with_context(|| format!("adding {lan_addr}/64 to {}", config.lan.interface))?;
    if !had_addr {
        undo.lan_addr = Some((config.lan.interface.clone(), lan_addr));
    }
    info!(%prefix, %lan_addr, iface = %config.lan.interface, "LAN address");

    let live = Arc::new(Live::default());
    {
        let mut s = live.status.lock().unwrap_or_else(|e| e.into_inner());
        *s = Status {
            pid: std::process::id(),
            config: args.config.display().to_string(),
            tunnel_id: info.id.clone(),
            tunnel_interface: tunnel_if.clone(),
            tunnel_local: format!("{}/{}", info.ipv6_endpoint, info.prefix_len),
            tunnel_pop: info.ipv6_pop.to_string(),
            tunnel_mtu: info.mtu,
            tunnel_up: true,
            lan_interface: config.lan.interface.clone(),
            lan_prefix: lan_prefix.clone(),
            lan_address: lan_addr.to_string(),
            started_unix: unix_now(),
            ..Status::default()
        };
    }

    // 4. Liveness of the upstream: beats, and pings of the PoP through the tunnel.
    let (upstream_tx, upstream_rx) = watch::channel(true);
    if !aiccu.makebeats {
        info!("aiccu.conf makebeats false: no heartbeats are sent");
    }
    undo.beats = Some(spawn_beats(Arc::clone(&running), &info, aiccu.makebeats));
    let (pop_tx, pop_rx) = watch::channel(info.ipv6_pop);
    // A blocking thread: it cannot be aborted, it ends with the process (or when the RA
    // daemon, which watches it, is gone).
    let _prober = spawn_prober(
        pop_rx,
        Duration::from_secs(args.probe_interval.max(1)),
        args.probe_misses.max(1),
        upstream_tx,
        Arc::clone(&live),
    );

    // 5. Router advertisements and DHCPv6.
    let ra_path = materialise(&config.ra_source(), &state_dir, "radvd.conf")?;
    let ra_stats = v6h_ra::daemon::Stats::default();
    let (ra_stop, ra_stop_rx) = watch::channel(false);
    // Reloads go to the daemons only after the whole gateway.toml checked out (SIGHUP below).
    let (ra_reload, ra_reload_rx) = watch::channel(ra_path.clone());
    let ra_task = tokio::spawn(v6h_ra::daemon::run(
        v6h_ra::daemon::Options {
            config: ra_path,
            final_count: 3,
            forwarding_check: true,
            debug: 0,
            upstream: Some(upstream_rx),
            stop: Some(ra_stop_rx),
            reload: Some(ra_reload_rx),
        },
        ra_stats.clone(),
    ));
    undo.ra = Some((ra_stop, ra_task));
    // The DHCPv6 engine batches datagrams with buffers that stay on its own thread, so it runs
    // on a thread with its own single-threaded runtime; it sees SIGHUP/SIGTERM like the rest.
    let (dhcp_done_tx, mut dhcp_done) = tokio::sync::mpsc::channel::<String>(1);
    let dhcp_stats = v6h_dhcp6::status::Stats::default();
    let mut dhcp_reload: Option<watch::Sender<PathBuf>> = None;
    let dhcp_thread = match config.dhcp6_source() {
        Some(source) => {
            let path = materialise(&source, &state_dir, "dhcp6s.conf")?;
            let (tx, rx) = watch::channel(path.clone());
            dhcp_reload = Some(tx);
            let opts = v6h_dhcp6::daemon::DaemonOptions {
                config_path: path,
                interfaces: vec![config.lan.interface.clone()],
                duid_file: state_dir.join("dhcp6s_duid"),
                lease_file: state_dir.join("dhcp6-leases"),
                import_dhcp6s_duid: None,
                port: 547,
                stats: Some(dhcp_stats.clone()),
                reload: Some(rx),
            };
            Some(
                std::thread::Builder::new()
                    .name("dhcp6".into())
                    .spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build();
                        let failure = match rt {
                            Ok(rt) => rt
                                .block_on(v6h_dhcp6::daemon::run(opts))
                                .err()
                                .map(|e| super::error_text(&e)),
                            Err(e) => Some(format!("DHCPv6 runtime: {e}")),
                        };
                        if let Some(f) = failure {
                            let _ = dhcp_done_tx.blocking_send(f);
                        }
                    })
                    .context("starting the DHCPv6 thread")?,
            )
        }
        None => None,
    };

    // 6. Observability.
    if let Some(addr) = args.metrics {
        let mut metrics = Metrics::default();
        metrics.register(Arc::new(GatewayMetrics {
            live: Arc::clone(&live),
            tunnel_if: tunnel_if.clone(),
        }));
        metrics.register(Arc::new(super::observe::RaMetrics(ra_stats.clone())));
        if dhcp_thread.is_some() {
            metrics.register(Arc::new(super::observe::Dhcp6Metrics(dhcp_stats.clone())));
        }
        let bound = v6h_gateway::metrics::serve(addr, Arc::new(metrics))
            .with_context(|| format!("serving metrics on {addr}"))?;
        info!(%bound, "metrics on http://{bound}/metrics");
    }
    let status_path = state_dir.join("status.json");
    let status_writer: tokio::task::JoinHandle<()> = {
        let live = Arc::clone(&live);
        let ra_stats = ra_stats.clone();
        let dhcp_stats = dhcp_thread.is_some().then(|| dhcp_stats.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let snapshot = {
                    let mut s = live.status.lock().unwrap_or_else(|e| e.into_inner());
                    let (mut m, mut u, mut r) = (0, 0, 0);
                    let (mut limited, mut dropped, mut hop) = (0, 0, 0);
                    for (_, (_, c)) in ra_stats.get() {
                        m += c.ra_sent_multicast;
                        u += c.ra_sent_unicast;
                        r += c.rs_received;
                        limited += c.rs_rate_limited;
                        for (reason, n) in &c.drops {
                            if *reason != v6h_ra::sched::DropReason::OtherType {
                                dropped += n;
                            }
                            if *reason == v6h_ra::sched::DropReason::HopLimit {
                                hop += n;
                            }
                        }
                    }
                    (s.ra_multicast, s.ra_unicast, s.rs_received) = (m, u, r);
                    (s.rs_rate_limited, s.nd_dropped, s.nd_dropped_hop_limit) =
                        (limited, dropped, hop);
                    s.ra = super::observe::ra_interfaces(&ra_stats);
                    s.dhcp6 = dhcp_stats.as_ref().map(v6h_dhcp6::status::Stats::get);
                    s.updated_unix = unix_now();
                    s.clone()
                };
                if let Ok(text) = serde_json::to_string_pretty(&snapshot) {
                    let tmp = status_path.with_extension("tmp");
                    if std::fs::write(&tmp, text).is_ok() {
                        let _ = std::fs::rename(&tmp, &status_path);
                    }
                }
            }
        })
    };
    let _ = notifier.notify("READY=1\nSTATUS=tunnel up, advertising");
    info!(
        "gateway ready in {} ms: tunnel {} on {tunnel_if}, LAN {} on {}",
        started.elapsed().as_millis(),
        info.id,
        lan_prefix,
        config.lan.interface
    );
    let watchdog = watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let notifier = Notifier::from_env().ok();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Some(n) = &notifier {
                    let _ = n.notify("WATCHDOG=1");
                }
            }
        })
    });
    undo.tasks.push(status_writer);
    if let Some(w) = watchdog {
        undo.tasks.push(w);
    }

    // 7. Run until SIGTERM/SIGINT. The RA and DHCPv6 daemons see the same signals: they send
    // their goodbye RAs and stop; SIGHUP makes them reload their files.
    let mut running_config = RunningConfig {
        config: config.clone(),
        aiccu: aiccu.clone(),
    };
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let Some((ra_stop, mut ra_task)) = undo.ra.take() else {
        bail!("the RA daemon was not started");
    };
    // The tunnel, replaced when a reload re-establishes it (empty only after a fatal failure).
    let mut tunnel: Option<Arc<v6h_tunnel::client::Running>> = Some(running);
    let stopped: anyhow::Result<()> = loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: goodbye RAs, then the tunnel goes down"); break Ok(()); }
            _ = int.recv() => { info!("SIGINT: goodbye RAs, then the tunnel goes down"); break Ok(()); }
            _ = hup.recv() => {
                let t0 = Instant::now();
                let outcome = reload(&args, &state_dir, &mut running_config, &info.routed);
                match outcome {
                    Ok(mut plan) => {
                        // The daemons re-read their files now.
                        let _ = ra_reload.send(plan.ra.clone());
                        match (&dhcp_reload, &plan.dhcp6) {
                            (Some(tx), Some(p)) => { let _ = tx.send(p.clone()); }
                            (None, Some(_)) => plan.notes.push("[dhcp6] was turned on: restart the gateway to start the DHCPv6 server".into()),
                            (Some(_), None) => plan.notes.push("[dhcp6] was turned off: restart the gateway to stop the DHCPv6 server (it keeps serving)".into()),
                            (None, None) => {}
                        }
                        // The tunnel is touched only when its settings changed.
                        if let Some(new) = plan.tunnel.take() {
                            info!("SIGHUP: the tunnel settings changed: re-establishing the tunnel");
                            let Some(current) = tunnel.take() else {
                                break Err(anyhow::anyhow!("no tunnel to re-establish"));
                            };
                            match reestablish_tunnel(&new, &running_config.aiccu, current, undo).await {
                                Ok((r, result)) => {
                                    tunnel = Some(r);
                                    match result {
                                        Ok(t) => {
                                            running_config.aiccu = new;
                                            let _ = pop_tx.send(t.ipv6_pop);
                                            let mut s = live.status.lock().unwrap_or_else(|e| e.into_inner());
                                            s.tunnel_id = t.id.clone();
                                            s.tunnel_local = format!("{}/{}", t.ipv6_endpoint, t.prefix_len);
                                            s.tunnel_pop = t.ipv6_pop.to_string();
                                            s.tunnel_mtu = t.mtu;
                                            s.tunnel_changes += 1;
                                            info!(tunnel = %t.id, "tunnel re-established in {} ms", t0.elapsed().as_millis());
                                        }
                                        Err(why) => plan.notes.push(why),
                                    }
                                }
                                Err(e) => break Err(e.context("re-establishing the tunnel")),
                            }
                        }
                        // What a reload cannot apply is worth a warning of its own.
                        for n in &plan.notes {
                            warn!("SIGHUP: {n}");
                        }
                        let note = if plan.notes.is_empty() { "applied".to_string() } else { format!("applied; {}", plan.notes.join("; ")) };
                        info!(took_ms = t0.elapsed().as_millis() as u64, "SIGHUP: {}: {note}", args.config.display());
                        let mut s = live.status.lock().unwrap_or_else(|e| e.into_inner());
                        s.reloads += 1;
                        s.last_reload = note;
                    }
                    Err(e) => {
                        let why = super::anyhow_text(&e);
                        tracing::error!("SIGHUP: {why}; the running configuration stays");
                        let mut s = live.status.lock().unwrap_or_else(|e| e.into_inner());
                        s.reload_failures += 1;
                        s.last_reload = format!("refused: {why}");
                    }
                }
            }
            r = &mut ra_task => {
                // The RA daemon ends only on error outside a signal.
                let why = match r {
                    Ok(Err(e)) => super::error_text(&e),
                    Ok(Ok(())) => "it exited".to_string(),
                    Err(e) => format!("its task failed: {e}"),
                };
                break Err(anyhow::anyhow!("the RA daemon stopped: {why}"));
            }
            Some(why) = dhcp_done.recv() => {
                break Err(anyhow::anyhow!("the DHCPv6 server stopped: {why}"));
            }
        }
    };
    let _ = notifier.notify("STOPPING=1");
    if let Err(e) = stopped {
        // Put things back as they were: the RA daemon says goodbye in the rollback.
        undo.ra = Some((ra_stop, ra_task));
        return Err(e);
    }
    // A normal stop: forwarding and the LAN address stay (as with radvd and a sysctl).
    undo.tunnel = None;
    undo.lan_addr = None;
    undo.forwarding = None;
    undo.drop_in = None;
    drop(ra_stop);
    match tokio::time::timeout(Duration::from_secs(8), ra_task).await {
        Ok(Ok(Err(e))) => warn!("RA daemon: {e}"),
        Ok(Err(e)) => warn!("RA daemon task: {e}"),
        Err(_) => warn!("RA daemon did not finish its goodbye RAs in 8 s"),
        Ok(Ok(Ok(()))) => {}
    }
    // The DHCPv6 thread ends on the same SIGTERM; it holds no state that needs waiting for.
    drop(dhcp_thread);
    // Wait until the beat task has dropped its handle on the tunnel.
    undo.stop_tasks().await;
    match tunnel.map(Arc::try_unwrap) {
        Some(Ok(running)) => running.stop().await?,
        None => {}
        Some(Err(_)) => {
            warn!("tunnel still referenced; leaving {tunnel_if} to go with the process")
        }
    }
    info!("gateway stopped");
    Ok(())
}

/// The configuration the gateway runs with, to compare a reloaded one against.
struct RunningConfig {
    /// gateway.toml with the LAN prefix resolved.
    config: GatewayConfig,
    /// The tunnel's settings.
    aiccu: v6h_ayiya::aiccu_conf::AiccuConfig,
}

/// What a checked reload hands to the daemons.
#[derive(Debug)]
struct ReloadPlan {
    /// The RA configuration file to load.
    ra: PathBuf,
    /// The DHCPv6 configuration file to load (`None`: DHCPv6 is off in the new file).
    dhcp6: Option<PathBuf>,
    /// Changes that need a restart and were not applied (each logged at WARN).
    notes: Vec<String>,
    /// New tunnel settings, when they differ from the running ones: the tunnel is
    /// re-established with them.
    tunnel: Option<v6h_ayiya::aiccu_conf::AiccuConfig>,
}

/// SIGHUP: reads gateway.toml and every file it points at again and checks them all as at
/// start (nothing changes when one is wrong: the error carries its file:line:col). Then
/// writes the files generated from inline sections and returns what the RA and DHCPv6
/// daemons should load. The tunnel is never touched: when its settings changed, that is
/// noted (a restart applies them), as is a changed `[lan]` (the old one is kept).
fn reload(
    args: &Args,
    state_dir: &Path,
    running: &mut RunningConfig,
    routed: &[(Ipv6Addr, u8)],
) -> anyhow::Result<ReloadPlan> {
    let mut new = GatewayConfig::load(&args.config)?;
    let mut notes = Vec::new();
    new.resolve_lan_prefix(routed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    if new.lan != running.config.lan {
        notes.push(format!(
            "[lan] changed: restart the gateway to apply it (still {} {})",
            running.config.lan.interface,
            running.config.lan.prefix.as_deref().unwrap_or("")
        ));
        new.lan = running.config.lan.clone();
    }
    let aiccu = preflight(&new)?;
    let tunnel = (aiccu != running.aiccu).then_some(aiccu);
    if new.forwarding.persist && !running.config.forwarding.persist && !args.persist {
        let p = v6h_gateway::forwarding::persist(Path::new("/"))?;
        info!(path = %p.display(), "SIGHUP: forwarding persisted");
    }
    let ra = materialise(&new.ra_source(), state_dir, "radvd.conf")?;
    let dhcp6 = match new.dhcp6_source() {
        Some(source) => Some(materialise(&source, state_dir, "dhcp6s.conf")?),
        None => None,
    };
    running.config = new;
    Ok(ReloadPlan {
        ra,
        dhcp6,
        notes,
        tunnel,
    })
}

/// The heartbeats: three at start, then one per `Heartbeat_Interval`, as AICCU (none with
/// `makebeats false`).
fn spawn_beats(
    running: Arc<v6h_tunnel::client::Running>,
    info: &v6h_ayiya::tic::TunnelInfo,
    makebeats: bool,
) -> tokio::task::JoinHandle<()> {
    let interval = Duration::from_secs(u64::from(info.heartbeat_interval.max(1)));
    tokio::spawn(async move {
        if !makebeats {
            return;
        }
        for _ in 0..3 {
            running.beat();
        }
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            running.beat();
        }
    })
}

/// SIGHUP with new tunnel settings: logs in with them first (a refused login leaves the
/// running tunnel as it is), then closes the old tunnel and brings up the new one. If the new
/// one cannot start, the old settings are brought back. Returns the new tunnel information;
/// `Err(fatal)` only when no tunnel could be brought back at all.
async fn reestablish_tunnel(
    new: &v6h_ayiya::aiccu_conf::AiccuConfig,
    old: &v6h_ayiya::aiccu_conf::AiccuConfig,
    running: Arc<v6h_tunnel::client::Running>,
    undo: &mut Undo,
) -> anyhow::Result<(
    Arc<v6h_tunnel::client::Running>,
    Result<v6h_ayiya::tic::TunnelInfo, String>,
)> {
    use v6h_ayiya::tic::client::LoginOutcome;
    let login = |cfg: &v6h_ayiya::aiccu_conf::AiccuConfig| {
        let cfg = cfg.clone();
        async move {
            match v6h_tunnel::client::tic_with_retry(&cfg, false, 3).await {
                Ok(LoginOutcome::Tunnel(t)) => Ok(t),
                Ok(LoginOutcome::List(_)) => {
                    Err(format!("TIC gave a tunnel list for {}", cfg.username))
                }
                Err(e) => Err(super::error_text(&e)),
            }
        }
    };
    let info = match login(new).await {
        Ok(t) => t,
        Err(e) => {
            return Ok((
                running,
                Err(format!(
                    "TIC login with the new settings failed ({e}); the tunnel stays as it is"
                )),
            ));
        }
    };
    // The old tunnel goes: beats stop, the datapath closes the TUN.
    if let Some(b) = undo.beats.take() {
        b.abort();
        let _ = b.await;
    }
    undo.tunnel = None;
    let old_running = match Arc::try_unwrap(running) {
        Ok(r) => r,
        Err(arc) => {
            let info = arc.info().clone();
            undo.tunnel = Some(Arc::clone(&arc));
            undo.beats = Some(spawn_beats(Arc::clone(&arc), &info, old.makebeats));
            return Ok((arc, Err("the tunnel is still referenced; it stays".into())));
        }
    };
    old_running.close().await?;
    let (running, cfg, result) = match v6h_tunnel::client::start(new, info.clone(), true).await {
        Ok(r) => (Arc::new(r), new, Ok(info)),
        Err(e) => {
            let why = super::error_text(&e);
            warn!("the new tunnel did not start ({why}); bringing the old one back");
            let back = login(old).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let r = v6h_tunnel::client::start(old, back, true).await?;
            (
                Arc::new(r),
                old,
                Err(format!(
                    "the new tunnel did not start: {why}; the old settings run again"
                )),
            )
        }
    };
    undo.tunnel = Some(Arc::clone(&running));
    let info = running.info().clone();
    undo.beats = Some(spawn_beats(Arc::clone(&running), &info, cfg.makebeats));
    Ok((running, result))
}

/// Pings `pop` every `every`; after `misses` losses in a row the upstream counts as down, and
/// one answer brings it back.
fn spawn_prober(
    mut pop: watch::Receiver<Ipv6Addr>,
    every: Duration,
    misses: u32,
    upstream: watch::Sender<bool>,
    live: Arc<Live>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut target = *pop.borrow_and_update();
        let mut pinger = match v6h_check::probe::Pinger::new(target) {
            Ok(p) => p,
            Err(e) => {
                warn!("liveness probe disabled: {e}");
                return;
            }
        };
        let mut lost_in_row = 0u32;
        loop {
            let t0 = Instant::now();
            // A re-established tunnel may have another PoP.
            if pop.has_changed().unwrap_or(false) {
                let next = *pop.borrow_and_update();
                if next != target {
                    match v6h_check::probe::Pinger::new(next) {
                        Ok(p) => (pinger, target) = (p, next),
                        Err(e) => warn!("liveness probe of {next}: {e}"),
                    }
                }
            }
            let pop = target;
            let answered = matches!(
                pinger.echo(64, every.min(Duration::from_secs(2))),
                Ok(v6h_check::probe::Echo::Reply(_))
            );
            lost_in_row = if answered { 0 } else { lost_in_row + 1 };
            let up = lost_in_row < misses;
            {
                let mut s = live.status.lock().unwrap_or_else(|e| e.into_inner());
                s.probes_sent += 1;
                if !answered {
                    s.probes_lost += 1;
                }
                if s.tunnel_up != up {
                    s.tunnel_changes += 1;
                    s.tunnel_up = up;
                }
            }
            if *upstream.borrow() != up {
                if up {
                    info!(%pop, "tunnel is back: advertising the default route again");
                } else {
                    warn!(%pop, "tunnel down ({lost_in_row} probes lost): router lifetime 0");
                }
                if upstream.send(up).is_err() {
                    return;
                }
            }
            std::thread::sleep(every.saturating_sub(t0.elapsed()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        gateway: Args,
    }

    const TOML: &str = r#"[tunnel]
server = "198.51.100.1"
username = "lab"
password = "labpass"
tunnel_id = "T1"
[lan]
interface = "lo"
prefix = "2001:db8:1234::/64"
[ra]
rdnss = ["2001:db8:ffff::53"]
max_interval = 4
"#;

    /// A reload checks everything, writes the inline RA text, and says what it cannot apply
    /// ([tunnel], [lan]); a broken gateway.toml changes nothing and names file:line:col.
    #[test]
    fn reload_applies_inline_changes_and_names_what_needs_a_restart() {
        let dir = std::env::temp_dir().join(format!("v6h-gw-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(&path, TOML).unwrap();
        let args = Cli::parse_from([
            "x",
            "--config",
            path.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
        ])
        .gateway;
        let config = GatewayConfig::load(&path).unwrap();
        let aiccu = preflight(&config).unwrap();
        let mut running = RunningConfig { config, aiccu };

        // The RDNSS changes: applied, nothing to note.
        std::fs::write(&path, TOML.replace("ffff::53", "ffff::54")).unwrap();
        let plan = reload(&args, &dir, &mut running, &[]).unwrap();
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        let ra = std::fs::read_to_string(&plan.ra).unwrap();
        assert!(ra.contains("RDNSS 2001:db8:ffff::54"), "{ra}");
        assert!(plan.dhcp6.is_some());

        // A new tunnel password and another LAN prefix: the tunnel is to be re-established
        // with the new settings; the LAN change is noted and the old LAN kept.
        std::fs::write(
            &path,
            TOML.replace("labpass", "other")
                .replace("1234::/64", "1235::/64"),
        )
        .unwrap();
        let plan = reload(&args, &dir, &mut running, &[]).unwrap();
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(
            plan.notes[0].starts_with("[lan] changed"),
            "{:?}",
            plan.notes
        );
        assert_eq!(
            plan.tunnel.as_ref().map(|t| t.password.as_str()),
            Some("other")
        );
        assert_eq!(
            running.config.lan.prefix.as_deref(),
            Some("2001:db8:1234::/64")
        );
        let ra = std::fs::read_to_string(&plan.ra).unwrap();
        assert!(ra.contains("prefix 2001:db8:1234::/64"), "{ra}");

        // Broken: an error with the position; the generated file is left as it was.
        std::fs::write(
            &path,
            TOML.replace("max_interval = 4", "max_interval = \"four\""),
        )
        .unwrap();
        let e = reload(&args, &dir, &mut running, &[]).unwrap_err();
        let text = super::super::anyhow_text(&e);
        assert!(
            text.starts_with(&format!("{}:11:", path.display())),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(&plan.ra).unwrap(), ra);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

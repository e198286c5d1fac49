//! `v6home ra`: the radvd replacement (radvd-compatible flags), plus `dump` (radvdump) and
//! `convert` (radvd.conf → TOML).

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::Duration;
use v6h_ra::daemon::{self, Options, Stats};

use super::pidfile::PidFile;
use v6h_ra::wire::{ICMPV6_ROUTER_ADVERT, RaRepr};

/// Arguments of `v6home ra`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// `dump` or `convert`; without one, run the daemon.
    #[command(subcommand)]
    cmd: Option<Sub>,
    /// Configuration file: radvd.conf syntax, or the TOML form when it ends in `.toml`.
    #[arg(short = 'C', long = "config", default_value = "/etc/radvd.conf")]
    config: PathBuf,
    /// Check the configuration (syntax and every range check) and exit 0 or 1.
    #[arg(short = 'c', long = "configtest")]
    configtest: bool,
    /// Stay in the foreground.
    #[arg(short = 'n', long = "nodaemon")]
    nodaemon: bool,
    /// radvd debug level 0–5; 3 and above log every RA sent and packet received.
    #[arg(short = 'd', long = "debug", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=5))]
    debug: u8,
    /// Write the process ID to this file (removed on exit).
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Number of final RAs on shutdown, 3 s apart (1–3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    final_ras: u8,
    /// Keep the configured router lifetime even when IPv6 forwarding is off.
    #[arg(long)]
    no_forwarding_check: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9642).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Where the daemon writes its status once a second (read by `v6home ra status`).
    #[arg(long, default_value = DEFAULT_STATUS_FILE)]
    status_file: PathBuf,
}

/// Default status file of `v6home ra`.
const DEFAULT_STATUS_FILE: &str = "/run/v6home/ra.status.json";

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Print the RAs received on an interface in radvd.conf syntax (like radvdump).
    Dump(DumpArgs),
    /// Convert a radvd.conf file to the native TOML form (printed on stdout).
    Convert(ConvertArgs),
    /// Counters of a running daemon, per interface (from its status file).
    Status(StatusArgs),
}

/// Arguments of `v6home ra status`.
#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The daemon's status file.
    #[arg(long, default_value = DEFAULT_STATUS_FILE)]
    status_file: PathBuf,
    /// Print JSON (numbers as numbers), with `running` and `age_s`.
    #[arg(long)]
    json: bool,
}

/// Arguments of `v6home ra dump`.
#[derive(Debug, clap::Args)]
struct DumpArgs {
    /// Interface to listen on.
    iface: String,
    /// Stop after this many RAs (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
}

/// Arguments of `v6home ra convert`.
#[derive(Debug, clap::Args)]
struct ConvertArgs {
    /// The radvd.conf file.
    file: PathBuf,
}

/// Runs `v6home ra`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Some(Sub::Dump(d)) => return dump(d),
        Some(Sub::Convert(c)) => return convert(c),
        Some(Sub::Status(s)) => return status(s),
        None => {}
    }
    if args.configtest {
        configtest(&args);
    }
    // Everything that can be wrong with the configuration is found here, on the terminal,
    // before detaching: after it stderr is gone.
    let loaded = daemon::load(&args.config)?;
    daemon::check_interfaces(&loaded.config)?;
    // daemon(3) changes to `/`: keep a relative path working for SIGHUP reloads.
    let config = std::fs::canonicalize(&args.config)
        .with_context(|| format!("resolving {}", args.config.display()))?;
    let mut pid = args.pidfile.as_deref().map(PidFile::acquire).transpose()?;
    if !args.nodaemon {
        let syslog = super::syslog::Syslog::open()
            .context("detached, v6home ra logs to syslog (or run it with -n)")?;
        daemon::daemonize()?;
        syslog.install();
        tracing::info!(config = %config.display(), "detached");
        if let Some(p) = pid.as_mut() {
            p.rewrite()?;
        }
    }
    let stats = Stats::default();
    if let Some(addr) = args.metrics {
        let mut m = v6h_gateway::metrics::Metrics::default();
        m.register(std::sync::Arc::new(super::observe::RaMetrics(
            stats.clone(),
        )));
        let bound = v6h_gateway::metrics::serve(addr, std::sync::Arc::new(m))
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(%bound, "metrics on http://{bound}/metrics");
    }
    let _status = {
        let (stats, config, started) = (
            stats.clone(),
            config.display().to_string(),
            super::observe::unix_now(),
        );
        super::observe::StatusFile::spawn(args.status_file.clone(), move || {
            Some(super::observe::RaStatus {
                pid: std::process::id(),
                config: config.clone(),
                started_unix: started,
                updated_unix: super::observe::unix_now(),
                interfaces: super::observe::ra_interfaces(&stats),
            })
        })
    };
    let opts = Options {
        config,
        final_count: args.final_ras,
        forwarding_check: !args.no_forwarding_check,
        debug: args.debug,
        upstream: None,
        stop: None,
        reload: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = rt.block_on(daemon::run(opts, stats));
    drop(pid);
    result?;
    Ok(())
}

/// `-c`: prints every finding as `file:line:col: …` and exits 0 (valid) or 1.
fn configtest(args: &Args) -> ! {
    let path = args.config.display().to_string();
    match daemon::load(&args.config) {
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("{w}");
            }
            let live = daemon::live_checks(&path, &l.config);
            for m in &live {
                eprintln!("{m}");
            }
            if !live.is_empty() {
                std::process::exit(1);
            }
            eprintln!("{path}: configuration OK");
            std::process::exit(0);
        }
    }
}

/// `v6home ra status`: the running daemon's counters, per interface.
fn status(a: StatusArgs) -> anyhow::Result<()> {
    let r = super::observe::read_status::<super::observe::RaStatus>(&a.status_file, "v6home ra")?;
    if a.json {
        return super::observe::print_json(&r);
    }
    let s = &r.status;
    println!(
        "v6home ra (pid {}, {}) — {}, status updated {} s ago",
        s.pid,
        s.config,
        if r.running {
            "running"
        } else {
            "NOT RUNNING (stale status)"
        },
        r.age
    );
    for i in &s.interfaces {
        let drops: u64 = i.drops.values().sum();
        println!(
            "  {:<10} {:<12} RAs sent {} multicast, {} unicast, {} final; RSs {} received, {} rate-limited; {} ignored; {} send failures",
            i.name,
            i.state,
            i.ra_sent_multicast,
            i.ra_sent_unicast,
            i.ra_sent_final,
            i.rs_received,
            i.rs_rate_limited,
            drops,
            i.send_failures
        );
        for (reason, n) in i.drops.iter().filter(|(_, n)| **n > 0) {
            println!("  {:<10} ignored {reason}: {n}", "");
        }
    }
    Ok(())
}

fn convert(c: ConvertArgs) -> anyhow::Result<()> {
    let l = v6h_ra::config::load_file(&c.file)?;
    for w in &l.warnings {
        eprintln!("{w}");
    }
    print!("{}", l.config.to_toml());
    Ok(())
}

fn dump(d: DumpArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(async move {
        let sock = v6h_net::icmp6::Icmp6Socket::open(&[ICMPV6_ROUTER_ADVERT])?;
        sock.bind_device(&d.iface)?;
        let mut buf = vec![0u8; 65536];
        let mut seen = 0u64;
        let deadline = d
            .timeout
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        loop {
            if d.count.is_some_and(|c| seen >= c) {
                return Ok(());
            }
            let recv = sock.recv(&mut buf);
            let meta = match deadline {
                Some(t) => match tokio::time::timeout_at(t, recv).await {
                    Ok(r) => r?,
                    Err(_) => {
                        if seen == 0 {
                            bail!("no RA received on {} before the timeout", d.iface);
                        }
                        return Ok(());
                    }
                },
                None => recv.await?,
            };
            let bytes = buf.get(..meta.len).unwrap_or(&[]);
            if meta.hop_limit != 255 {
                eprintln!(
                    "# ignored RA from {} with hop limit {}",
                    meta.src, meta.hop_limit
                );
                continue;
            }
            match RaRepr::parse(bytes) {
                Ok(ra) => {
                    println!("{}", v6h_ra::dump::dump_text(&d.iface, &meta.src, &ra));
                    seen += 1;
                }
                Err(e) => eprintln!("# malformed RA from {}: {e}", meta.src),
            }
        }
    })
}

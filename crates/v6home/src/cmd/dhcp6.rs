//! `v6home dhcp6`: the DHCPv6 server (a dhcp6s replacement), and `v6home dhcp6 convert`.
//!
//! Command line compatible with dhcp6s: `v6home dhcp6 [-c FILE] [-dDf] [-k KEY] [-p PORT]
//! [-P PIDFILE] IFACE...`, with any number of interfaces.

use std::path::PathBuf;

use anyhow::Context;
use v6h_dhcp6::config::Config;
use v6h_dhcp6::daemon::{self, DaemonOptions};

/// Arguments of `v6home dhcp6`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Tools for configuration files instead of running the server.
    #[command(subcommand)]
    action: Option<Action>,
    /// Configuration file: dhcp6s.conf syntax, or the native form if it ends in `.toml`.
    #[arg(
        short = 'c',
        long = "config",
        default_value = "/etc/wide-dhcpv6/dhcp6s.conf"
    )]
    config: PathBuf,
    /// Stay in the foreground (without it the server detaches, as dhcp6s does).
    #[arg(short = 'f', long = "foreground")]
    foreground: bool,
    /// dhcp6s debug switch; accepted for compatibility. Use `--log-level debug` instead.
    #[arg(short = 'd')]
    debug: bool,
    /// dhcp6s verbose debug switch; accepted for compatibility. Use `--log-level trace`.
    #[arg(short = 'D')]
    verbose_debug: bool,
    /// dhcp6s control-key file; ignored (v6home has no TCP control port).
    #[arg(short = 'k', value_name = "CTLKEY")]
    ctlkey: Option<PathBuf>,
    /// dhcp6s control port; ignored (v6home has no TCP control port).
    #[arg(short = 'p', value_name = "CTLPORT")]
    ctlport: Option<String>,
    /// Write the process id to this file.
    #[arg(short = 'P', long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Where the server DUID is kept (created on first start, never regenerated).
    #[arg(long, default_value = daemon::DEFAULT_DUID_FILE)]
    duid_file: PathBuf,
    /// Do not import dhcp6s's DUID from /var/lib/dhcpv6/dhcp6s_duid on first start.
    #[arg(long)]
    no_import_dhcp6s_duid: bool,
    /// UDP port to serve (547 is the standard; other values are for tests).
    #[arg(long, default_value_t = 547)]
    port: u16,
    /// Lease journal (used when pools or host reservations are configured).
    #[arg(long, default_value = daemon::DEFAULT_LEASE_FILE)]
    lease_file: PathBuf,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9643).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Where the server writes its status once a second (read by `v6home dhcp6 status`).
    #[arg(long, default_value = DEFAULT_STATUS_FILE)]
    status_file: PathBuf,
    /// Interfaces to serve.
    #[arg(value_name = "IFACE")]
    interfaces: Vec<String>,
}

/// Default status file of `v6home dhcp6`.
const DEFAULT_STATUS_FILE: &str = "/run/v6home/dhcp6.status.json";

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Convert a dhcp6s.conf file to the native TOML form (printed on stdout).
    Convert {
        /// The dhcp6s.conf file.
        file: PathBuf,
    },
    /// Check a configuration file and print its warnings.
    Check {
        /// The configuration file (dhcp6s.conf or .toml).
        file: PathBuf,
    },
    /// List the leases in the lease journal (also while the server runs).
    Leases {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The lease journal.
        #[arg(long, default_value = daemon::DEFAULT_LEASE_FILE)]
        lease_file: PathBuf,
    },
    /// Counters, leases by state and pool use of a running server (from its status file).
    Status {
        /// The server's status file.
        #[arg(long, default_value = DEFAULT_STATUS_FILE)]
        status_file: PathBuf,
        /// Print JSON (numbers as numbers), with `running` and `age_s`.
        #[arg(long)]
        json: bool,
    },
}

/// `v6home dhcp6 status`.
fn status(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let r = super::observe::read_status::<v6h_dhcp6::status::Snapshot>(path, "v6home dhcp6")?;
    if json {
        return super::observe::print_json(&r);
    }
    let s = &r.status;
    println!(
        "v6home dhcp6 (pid {}, {}) — {}, status updated {} s ago",
        s.pid,
        s.config,
        if r.running {
            "running"
        } else {
            "NOT RUNNING (stale status)"
        },
        r.age
    );
    println!("  {}", super::gateway::dhcp6_summary(s));
    for l in &s.links {
        let list = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("  {:<10} received: {}", l.name, list(&l.received));
        println!("  {:<10} sent:     {}", "", list(&l.sent));
        println!("  {:<10} dropped:  {}", "", list(&l.dropped));
    }
    for p in &s.pools {
        println!(
            "  pool {} on {}: {} of {} used",
            p.pool,
            p.link,
            p.size.saturating_sub(p.free),
            p.size
        );
    }
    if let Some(j) = &s.journal {
        println!(
            "  journal  {} fsyncs for {} commits, mean {} µs, max {} µs",
            j.fsyncs,
            j.commits,
            j.fsync_micros_total.checked_div(j.fsyncs).unwrap_or(0),
            j.fsync_micros_max
        );
    }
    Ok(())
}

/// Prints the leases of `lease_file` as a table or JSON.
fn list_leases(lease_file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let bytes = match std::fs::read(lease_file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", lease_file.display())),
    };
    let (records, recovery) = v6h_lease::store::replay_bytes(&bytes).map_err(|e| match e {
        v6h_lease::StoreError::BadMagic(_) => {
            v6h_lease::StoreError::BadMagic(lease_file.to_path_buf())
        }
        e => e,
    })?;
    if recovery.corrupt() {
        // A torn tail is normal while the server writes; skipped frames are not.
        eprintln!(
            "warning: {}: damaged lease journal: {} bytes skipped (at least {} leases lost); \
             the server copies it aside and rewrites it at its next start",
            lease_file.display(),
            recovery.skipped_bytes,
            recovery.skipped_regions
        );
    }
    let rows: Vec<v6h_lease::LeaseView> = records
        .iter()
        .map(|r| v6h_lease::LeaseView::new(r, false, now))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", v6h_lease::format_table(&rows));
    }
    Ok(())
}

/// Runs `v6home dhcp6`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Some(Action::Convert { file }) => {
            let (cfg, warnings) = v6h_dhcp6::config::dhcp6s::parse_file(&file)?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", cfg.to_toml()?);
            return Ok(());
        }
        Some(Action::Check { file }) => {
            let (_, warnings) = Config::load(&file)?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: OK", file.display());
            return Ok(());
        }
        Some(Action::Leases { json, lease_file }) => return list_leases(&lease_file, json),
        Some(Action::Status { status_file, json }) => return status(&status_file, json),
        None => {}
    }
    if args.debug || args.verbose_debug {
        tracing::info!(
            "-d/-D are accepted for dhcp6s compatibility; set the level with --log-level"
        );
    }
    if args.ctlkey.is_some() || args.ctlport.is_some() {
        tracing::warn!("-k/-p ignored: v6home has no TCP control port");
    }
    let opts = DaemonOptions {
        config_path: args.config,
        interfaces: args.interfaces,
        duid_file: args.duid_file,
        import_dhcp6s_duid: (!args.no_import_dhcp6s_duid)
            .then(|| PathBuf::from(daemon::DHCP6S_DUID_FILE)),
        port: args.port,
        lease_file: args.lease_file,
        stats: Some(v6h_dhcp6::status::Stats::default()),
        reload: None,
    };
    // Fail early (before detaching) on a bad configuration or missing interface list.
    if opts.interfaces.is_empty() {
        anyhow::bail!("no interface given: name at least one interface to serve");
    }
    Config::load(&opts.config_path)?;
    daemon::resolve_interfaces(&opts.interfaces)?;
    // Locked for the daemon's life (see cmd/pidfile.rs); taken before detaching.
    let mut _pid = args
        .pid_file
        .as_deref()
        .map(super::pidfile::PidFile::acquire)
        .transpose()?;
    if !args.foreground {
        daemon::daemonize()?;
    }
    if let Some(p) = _pid.as_mut() {
        p.rewrite()?;
    }
    // Threads do not survive daemon(3): the metrics endpoint and status writer start here.
    let stats = opts.stats.clone().unwrap_or_default();
    if let Some(addr) = args.metrics {
        let mut m = v6h_gateway::metrics::Metrics::default();
        m.register(std::sync::Arc::new(super::observe::Dhcp6Metrics(
            stats.clone(),
        )));
        let bound = v6h_gateway::metrics::serve(addr, std::sync::Arc::new(m))
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(%bound, "metrics on http://{bound}/metrics");
    }
    let _status = super::observe::StatusFile::spawn(args.status_file.clone(), move || {
        let s = stats.get();
        // Nothing to show before the server's first snapshot (its PID is 0 until then).
        (s.pid != 0).then_some(s)
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(daemon::run(opts))?;
    Ok(())
}

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
    /// Interfaces to serve.
    #[arg(value_name = "IFACE")]
    interfaces: Vec<String>,
}

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
        None => {}
    }
    if args.debug || args.verbose_debug {
        tracing::info!(
            "-d/-D are accepted for dhcp6s compatibility; set the level with --log-level"
        );
    }
    if args.ctlkey.is_some() || args.ctlport.is_some() {
        tracing::info!("-k/-p ignored: v6home has no TCP control port");
    }
    let opts = DaemonOptions {
        config_path: args.config,
        interfaces: args.interfaces,
        duid_file: args.duid_file,
        import_dhcp6s_duid: (!args.no_import_dhcp6s_duid)
            .then(|| PathBuf::from(daemon::DHCP6S_DUID_FILE)),
        port: args.port,
        lease_file: args.lease_file,
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(daemon::run(opts))?;
    Ok(())
}

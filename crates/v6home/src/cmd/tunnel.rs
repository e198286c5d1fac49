//! `v6home tunnel`: the AICCU-compatible tunnel client (`start`, `tunnels`, `test`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Arguments of `v6home tunnel`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

/// AICCU's verbs.
#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Log in over TIC, bring the tunnel up and run until SIGTERM/SIGINT.
    Start(Common),
    /// List the user's tunnels: `id ipv6 ipv4 pop`.
    Tunnels(Common),
    /// Self-test like `aiccu test`: TIC, IPv4 ping of the PoP, tunnel up, ping6 of the PoP's
    /// inner address through the tunnel, teardown.
    Test(Common),
}

/// Options shared by the verbs.
#[derive(Debug, clap::Args)]
struct Common {
    /// aiccu.conf (or TOML with the same keys when it ends in `.toml`).
    #[arg(long, short = 'c', default_value = "/etc/aiccu.conf")]
    config: PathBuf,
    /// Disable TUN segmentation/GRO offloads (debugging).
    #[arg(long)]
    no_offload: bool,
}

/// The systemd variable that says systemd started this process (`INVOCATION_ID`, or
/// `NOTIFY_SOCKET` for `Type=notify`), if one is set: detaching there would only confuse it.
fn under_systemd() -> Option<&'static str> {
    ["INVOCATION_ID", "NOTIFY_SOCKET"]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Runs `v6home tunnel`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Start(c) => {
            let cfg = v6h_tunnel::client::load_config(&c.config)?;
            v6h_tunnel::client::warn_unused_keys(
                &c.config,
                v6h_tunnel::client::UNUSED_BY_START,
                |k| k == "local_ipv4_override" && cfg.local_ipv4_override.is_some(),
            );
            // `daemonize true`, as AICCU: aiccu.conf's `pidfile` is locked while the tunnel
            // runs, and the process detaches (logging to syslog) unless systemd runs it.
            let _pid = if cfg.daemonize {
                let mut pid = super::pidfile::PidFile::acquire(Path::new(&cfg.pidfile))?;
                if let Some(var) = under_systemd() {
                    tracing::info!(
                        "aiccu.conf daemonize true: started by systemd (${var} is set), so staying in the foreground"
                    );
                } else {
                    let syslog = super::syslog::Syslog::open().context(
                        "aiccu.conf daemonize true: detached, v6home tunnel logs to syslog \
                         (or set daemonize false)",
                    )?;
                    v6h_ra::daemon::daemonize()?;
                    syslog.install();
                    tracing::info!(config = %c.config.display(), "aiccu.conf daemonize true: detached");
                    pid.rewrite()?;
                }
                Some(pid)
            } else {
                None
            };
            v6h_tunnel::client::run_start(&c.config, !c.no_offload).context("tunnel start")
        }
        Verb::Tunnels(c) => {
            let list = v6h_tunnel::client::run_tunnels(&c.config)?;
            print!("{}", v6h_tunnel::client::format_tunnels(&list));
            Ok(())
        }
        Verb::Test(c) => {
            let steps = v6h_tunnel::client::run_test(&c.config, !c.no_offload)?;
            let mut failed = 0;
            for (i, s) in steps.iter().enumerate() {
                println!(
                    "[{}] {} {}: {}",
                    i + 1,
                    if s.ok { "ok  " } else { "FAIL" },
                    s.name,
                    s.detail
                );
                failed += usize::from(!s.ok);
            }
            anyhow::ensure!(failed == 0, "{failed} of {} checks failed", steps.len());
            Ok(())
        }
    }
}

//! `v6home tunnel`: the AICCU-compatible tunnel client (`start`, `tunnels`, `test`).

use std::path::PathBuf;

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

/// Runs `v6home tunnel`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Start(c) => {
            // aiccu.conf's `pidfile`, locked while the tunnel runs, with `daemonize true`.
            let cfg = v6h_tunnel::client::load_config(&c.config)?;
            let _pid = cfg
                .daemonize
                .then(|| super::pidfile::PidFile::acquire(std::path::Path::new(&cfg.pidfile)))
                .transpose()?;
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

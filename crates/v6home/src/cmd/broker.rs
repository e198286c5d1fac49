//! `v6home broker`: the tunnel broker (TIC server + AYIYA PoP), its status and its registry.

use std::path::PathBuf;

use anyhow::Context as _;
use v6h_tunnel::prefix::Prefix6;

/// Arguments of `v6home broker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path of broker.toml.
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "/etc/v6home/broker.toml"
    )]
    config: PathBuf,
    /// Disable TUN segmentation/GRO offloads (debugging).
    #[arg(long)]
    no_offload: bool,
    /// Without a subcommand the broker daemon runs in the foreground.
    #[command(subcommand)]
    cmd: Option<Sub>,
}

/// Broker subcommands.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Show per-tunnel state, endpoint, counters and drops from the running daemon.
    Status {
        /// Print the raw JSON snapshot.
        #[arg(long)]
        json: bool,
    },
    /// Manage tunnels in the registry.
    #[command(subcommand)]
    Tunnel(TunnelCmd),
}

/// `broker tunnel ...`.
#[derive(Debug, clap::Subcommand)]
enum TunnelCmd {
    /// Allocate the next tunnel for a user and print a ready aiccu.conf.
    Add {
        /// Owner (TIC user name, must exist in the registry).
        #[arg(long)]
        user: String,
        /// Routed subnet to delegate (repeatable), e.g. 2001:db8:1234::/48.
        #[arg(long)]
        subnet: Vec<Prefix6>,
    },
}

/// Runs `v6home broker`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.cmd {
        None => v6h_tunnel::broker::run(v6h_tunnel::broker::BrokerOptions {
            config: args.config,
            offload: !args.no_offload,
        })
        .context("broker"),
        Some(Sub::Status { json }) => {
            let cfg = v6h_tunnel::registry::BrokerConfig::load(&args.config)?;
            let s = v6h_tunnel::broker::read_status(&cfg)
                .context("no status (is the broker running?)")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", v6h_tunnel::broker::format_status(&s));
            }
            Ok(())
        }
        Some(Sub::Tunnel(TunnelCmd::Add { user, subnet })) => {
            let (t, conf) = v6h_tunnel::broker::add_tunnel(&args.config, &user, subnet)?;
            eprintln!("added {} ({}) for {user}", t.tic_id(), t.prefix);
            print!("{conf}");
            Ok(())
        }
    }
}

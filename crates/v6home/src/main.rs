//! `v6home`: real IPv6 at home over an IPv4-only ISP.
//!
//! One binary with one subcommand per part of the system. Each subcommand lives in
//! `cmd/<name>.rs` and exposes `Args` (clap) and `run(args) -> anyhow::Result<()>`.

#![forbid(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};

/// Command-line interface of the `v6home` binary.
#[derive(Debug, Parser)]
#[command(
    name = "v6home",
    version,
    about = "Real IPv6 at home over IPv4: tunnel, router, DHCPv6, privacy"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = cmd::LogFormat::Human)]
    log_format: cmd::LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. `debug` or `v6h_tunnel=trace`.
    #[arg(long, global = true, default_value = "info", env = "V6HOME_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each is documented in its module.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build, inspect and tear down the lab network in namespaces.
    Lab(cmd::lab::Args),
    /// DHCPv6 server (dhcp6s replacement); `dhcp6 convert FILE` turns dhcp6s.conf into TOML.
    Dhcp6(cmd::dhcp6::Args),
    /// Tell whether IPv6 works on this host, and if not, why.
    Check(cmd::check::Args),
    /// The whole home router from one gateway.toml: tunnel, forwarding, RA, DHCPv6.
    Gateway(cmd::gateway::Args),
    /// Privacy addresses: configure them right, check them, or run the SLAAC privacy agent.
    Privacy(cmd::privacy::Args),
    /// Router advertisements (radvd replacement): `-C radvd.conf`, `-c`, `dump IF`, `convert FILE`.
    Ra(cmd::ra::Args),
    /// Tunnel broker (TIC server + AYIYA PoP): run, `status`, `tunnel add`.
    Broker(cmd::broker::Args),
    /// AICCU-compatible tunnel client: `start`, `tunnels`, `test`.
    Tunnel(cmd::tunnel::Args),
}

fn main() {
    let cli = Cli::parse();
    cmd::init_logging(cli.log_format, &cli.log_level);
    if let Err(e) = dispatch(cli.command) {
        eprintln!("v6home: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Lab(args) => cmd::lab::run(args),
        Command::Dhcp6(args) => cmd::dhcp6::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Privacy(args) => cmd::privacy::run(args),
        Command::Ra(args) => cmd::ra::run(args),
        Command::Broker(args) => cmd::broker::run(args),
        Command::Tunnel(args) => cmd::tunnel::run(args),
    }
}

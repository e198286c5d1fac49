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
    #[arg(long, global = true, default_value = "info", env = "V6HOME_LOG",
          value_parser = cmd::parse_log_filter)]
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
    /// Tunnel broker (TIC server + AYIYA PoP): run, `status`, `user`/`tunnel` management, `import`.
    Broker(cmd::broker::Args),
    /// AICCU-compatible tunnel client: `start`, `tunnels`, `test`.
    Tunnel(cmd::tunnel::Args),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    Generate(cmd::generate::Args),
}

fn main() {
    exit_cleanly_on_stdout_errors();
    let cli = Cli::parse();
    cmd::init_logging(cli.log_format, &cli.log_level);
    if let Err(e) = dispatch(cli.command) {
        eprintln!("v6home: error: {}", cmd::anyhow_text(&e));
        std::process::exit(1);
    }
}

/// The text std's `print!`/`println!` panic with when stdout cannot be written.
const STDOUT_PANIC: &str = "failed printing to stdout: ";

/// Makes a failed write to stdout end the process cleanly instead of with a panic and a
/// backtrace, for every command at once: `v6home … | head` closing the pipe exits 0 quietly
/// (as ripgrep and friends do); any other stdout error (a full disk) is one error line and
/// exit 1. Every other panic keeps the default report.
fn exit_cleanly_on_stdout_errors() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        match text.and_then(|t| t.strip_prefix(STDOUT_PANIC)) {
            Some(reason) if reason.contains("Broken pipe") || reason.contains("os error 32") => {
                std::process::exit(0)
            }
            Some(reason) => {
                eprintln!("v6home: error: writing to stdout: {reason}");
                std::process::exit(1)
            }
            None => default(info),
        }
    }));
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
        Command::Generate(args) => cmd::generate::run(args),
    }
}

//! `v6home check`: does IPv6 work on this host, and if not, why.

use std::net::Ipv6Addr;
use std::time::Duration;

/// Arguments of `v6home check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to fetch; IPv6 literals work as they are: http://[2001:db8::1]:80/
    #[arg(long)]
    url: String,
    /// The name to resolve (default: the URL's host when it is a name).
    #[arg(long)]
    name: Option<String>,
    /// The interface (default: the one with the default route).
    #[arg(long)]
    iface: Option<String>,
    /// Extra DNS server to try after the ones learned from RDNSS and DHCPv6.
    #[arg(long)]
    dns: Vec<Ipv6Addr>,
    /// Seconds each probe waits for an answer.
    #[arg(long, default_value_t = 2)]
    wait: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `v6home check`; exits 1 when any check fails.
pub fn run(args: Args) -> anyhow::Result<()> {
    let report = v6h_check::run(&v6h_check::Options {
        url: args.url,
        name: args.name,
        iface: args.iface,
        dns: args.dns,
        wait: Duration::from_secs(args.wait.max(1)),
    })?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}

//! `v6h-dhcp6-load`: open-loop DHCPv6 SARR load at a fixed rate; prints perfdhcp-like
//! numbers and one machine-readable summary line.

use std::net::Ipv6Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use v6h_loadgen::core::{Config, Generator};
use v6h_loadgen::io::{self, IoOptions};
use v6h_loadgen::wire::{DuidKind, Mode};

/// Seconds from the Unix epoch to 2000-01-01 (the DUID-LLT epoch).
const DUID_EPOCH_UNIX: u64 = 946_684_800;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    /// IA_NA only.
    AddressOnly,
    /// IA_PD only.
    PrefixOnly,
    /// IA_NA and IA_PD.
    AddressAndPrefix,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DuidArg {
    /// DUID-LLT; the time field is the run's start, so runs never share clients.
    Llt,
    /// DUID-LL; use --first-client to keep runs apart.
    Ll,
}

/// Open-loop DHCPv6 Solicit/Advertise/Request/Reply load generator: every exchange is a new
/// client; drops are messages without an answer within the timeout, as in perfdhcp.
#[derive(Debug, Parser)]
#[command(name = "v6h-dhcp6-load", version)]
struct Args {
    /// Interface to send on (multicast to ff02::1:2 unless --server is given).
    #[arg(short = 'l', long)]
    interface: String,
    /// New exchanges (Solicits) per second.
    #[arg(short = 'r', long)]
    rate: u64,
    /// Seconds during which new messages are sent; the run then waits up to the timeout.
    #[arg(short = 'p', long, default_value_t = 5.0)]
    duration: f64,
    /// IAs each client asks for.
    #[arg(short = 'e', long, value_enum, default_value = "address-only")]
    mode: ModeArg,
    /// Milliseconds without an answer after which a message is a drop.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Unicast server address instead of ff02::1:2.
    #[arg(long)]
    server: Option<Ipv6Addr>,
    /// Server UDP port.
    #[arg(long, default_value_t = 547)]
    server_port: u16,
    /// Local UDP port (servers answer direct clients on 546).
    #[arg(long, default_value_t = 546)]
    port: u16,
    /// Client DUID kind.
    #[arg(long, value_enum, default_value = "llt")]
    duid: DuidArg,
    /// DUID-LLT time field (seconds since 2000); default: now.
    #[arg(long)]
    duid_time: Option<u32>,
    /// Number of the first client (its MAC is 02: and the low 40 bits of the number).
    #[arg(long, default_value_t = 0)]
    first_client: u64,
    /// Most exchanges in flight; further due Solicits are skipped (and reported).
    #[arg(long, default_value_t = 1_000_000)]
    max_pending: usize,
    /// Most Solicits sent per wake-up (catch-up after a stall is spread out).
    #[arg(long, default_value_t = 4096)]
    max_burst: usize,
    /// Wake-up period in microseconds.
    #[arg(long, default_value_t = 1000)]
    slice_us: u64,
    /// Wake as soon as a datagram arrives (Requests leave at once, round trips are exact)
    /// instead of sleeping whole slices; costs more generator CPU.
    #[arg(long)]
    wake_on_rx: bool,
    /// Print only the summary line.
    #[arg(short = 'q', long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if !a.duration.is_finite() || a.duration <= 0.0 || a.duration > 86_400.0 {
        bail!("--duration must be between 0 and 86400 seconds");
    }
    if a.rate == 0 || a.rate > 10_000_000 {
        bail!("--rate must be between 1 and 10000000 per second");
    }
    if a.timeout_ms == 0 || a.timeout_ms > 600_000 {
        bail!("--timeout-ms must be between 1 and 600000");
    }
    if a.slice_us == 0 || a.slice_us > 100_000 {
        bail!("--slice-us must be between 1 and 100000");
    }
    if a.max_pending == 0 || a.max_burst == 0 {
        bail!("--max-pending and --max-burst must be positive");
    }
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(DUID_EPOCH_UNIX, |d| d.as_secs());
    let duid = match a.duid {
        DuidArg::Llt => DuidKind::Llt {
            time: a.duid_time.unwrap_or_else(|| {
                u32::try_from(unix.saturating_sub(DUID_EPOCH_UNIX)).unwrap_or(u32::MAX)
            }),
        },
        DuidArg::Ll => DuidKind::Ll,
    };
    let mode = match a.mode {
        ModeArg::AddressOnly => Mode::AddressOnly,
        ModeArg::PrefixOnly => Mode::PrefixOnly,
        ModeArg::AddressAndPrefix => Mode::AddressAndPrefix,
    };
    // Duration was checked to be within a day, so the product fits.
    let duration_us = (a.duration * 1e6).round() as u64;
    let cfg = Config {
        mode,
        rate: a.rate,
        duration_us,
        timeout_us: a.timeout_ms * 1000,
        duid,
        first_client: a.first_client,
        max_pending: a.max_pending,
        max_burst: a.max_burst,
        xid_seed: u32::try_from(unix & 0xff_ffff).unwrap_or(0) ^ std::process::id(),
    };
    let opts = IoOptions {
        interface: a.interface.clone(),
        bind_port: a.port,
        server: a.server,
        server_port: a.server_port,
        slice_us: a.slice_us,
        wake_on_rx: a.wake_on_rx,
    };
    let mut generator = Generator::new(cfg);
    let rep = io::run(&mut generator, &opts).with_context(|| format!("load on {}", a.interface))?;
    let s = generator.stats();
    let completed = s.completed_per_s(duration_us);
    let cpu = rep.cpu_pct().unwrap_or(-1.0);
    if !a.quiet {
        println!(
            "offered {}/s for {:.3} s, {:?}, timeout {} ms",
            a.rate, a.duration, a.mode, a.timeout_ms
        );
        println!(
            "SOLICIT-ADVERTISE: sent {} received {} drops {}",
            s.solicits, s.advertises, s.solicit_drops
        );
        println!(
            "REQUEST-REPLY:     sent {} received {} drops {} rejected {}",
            s.requests, s.replies, s.request_drops, s.rejected
        );
        println!(
            "Rate: {completed:.0} 4-way exchanges/second; drops {:.3} %",
            s.drops_pct()
        );
        println!(
            "RTT: solicit-advertise mean {:.3} ms, request-reply mean {:.3} ms, max {:.3} ms (includes up to {} us batching)",
            s.sa_rtt_mean_us() / 1000.0,
            s.rr_rtt_mean_us() / 1000.0,
            s.rtt_max_us as f64 / 1000.0,
            if a.wake_on_rx { 0 } else { a.slice_us }
        );
        println!(
            "generator: {:.1} % of one CPU over {:.3} s, {} datagrams received",
            cpu,
            rep.elapsed_us as f64 / 1e6,
            rep.received
        );
    }
    println!(
        "completed_per_s={completed:.0} drops_pct={:.3} rejected={} solicits={} advertises={} requests={} replies={} skipped={} unexpected={} malformed={} send_errors={} gen_cpu_pct={cpu:.1}",
        s.drops_pct(),
        s.rejected,
        s.solicits,
        s.advertises,
        s.requests,
        s.replies,
        s.skipped,
        s.unexpected,
        s.malformed + rep.truncated,
        rep.send_errors,
    );
    Ok(())
}

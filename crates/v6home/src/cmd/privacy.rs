//! `v6home privacy`: privacy extensions configured right on any distro (`enable`, `disable`,
//! `status`), and a userspace SLAAC/privacy agent an attacker cannot switch off (`agent`).
//!
//! Lifetimes take units (`90s`, `30m`, `2h`, `2d`, `1d12h`); bare numbers are rejected
//! because sysctls count seconds and "7200 means minutes" is a classic mistake.

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;
use v6h_privacy::lifetime::Lifetime;
use v6h_privacy::slaac::Params;
use v6h_privacy::sysconf::{self, Prefer, Request};
use v6h_privacy::system::{self, Target};

/// Arguments of `v6home privacy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Turn privacy addresses on: sysctl drop-in (default + per-interface keys, never `all`),
    /// applied live and read back, plus the network manager's own setting.
    Enable(EnableArgs),
    /// Turn them off explicitly (so no manager turns them back on).
    Disable(Common),
    /// Per interface: the setting, temporaries present, the source new connections use,
    /// and the kernel's "privacy disabled" state with the repair.
    Status(Common),
    /// Run the userspace SLAAC + privacy agent on one interface (until SIGTERM).
    Agent(AgentArgs),
    /// Lab tool: answer DAD probes in a prefix with forged NAs (run only in lab namespaces).
    #[command(hide = true)]
    Dadforge(ForgeArgs),
}

#[derive(Debug, clap::Args)]
struct ForgeArgs {
    /// Interface to send the forged NAs from.
    #[arg(long)]
    iface: String,
    /// Prefix whose DAD probes are answered, e.g. 2001:db8:1234::/64.
    #[arg(long)]
    prefix: String,
    /// Addresses never answered (repeatable).
    #[arg(long)]
    exclude: Vec<std::net::Ipv6Addr>,
    /// Stop after this many answers.
    #[arg(long, default_value_t = 3)]
    max: usize,
    /// Stop after this long.
    #[arg(long, default_value = "1m")]
    duration: Lifetime,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Interface (repeatable); default: every interface that supports privacy addresses.
    #[arg(long = "iface")]
    ifaces: Vec<String>,
    /// Act on the file tree under DIR instead of `/` (no /proc writes, no commands).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PreferArg {
    /// New connections use the temporary address (`use_tempaddr = 2`).
    Temporary,
    /// Temporaries exist but the public address is preferred (`use_tempaddr = 1`).
    Public,
}

#[derive(Debug, clap::Args)]
struct EnableArgs {
    #[command(flatten)]
    common: Common,
    /// Which address new connections prefer.
    #[arg(long, value_enum, default_value = "temporary")]
    prefer: PreferArg,
    /// Preferred lifetime of each temporary (`temp_prefered_lft`), with a unit.
    #[arg(long, default_value = "1d")]
    preferred_lifetime: Lifetime,
    /// Valid lifetime of each temporary (`temp_valid_lft`), with a unit.
    #[arg(long, default_value = "2d")]
    valid_lifetime: Lifetime,
    /// Accept lifetimes below 10 minutes (labs and tests).
    #[arg(long)]
    force: bool,
    /// Print the planned file changes as a unified diff, the sysctls and the commands, and
    /// change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SourceStrategy {
    /// Steer the source with the route's preferred source (`ip route … src`).
    Prefsrc,
    /// Do not steer the source.
    None,
}

#[derive(Debug, clap::Args)]
struct AgentArgs {
    /// The interface to run SLAAC on.
    #[arg(long)]
    iface: String,
    /// Directory for the RFC 7217 secret and the DAD counters.
    #[arg(long, default_value = "/var/lib/v6home")]
    state_dir: PathBuf,
    /// Preferred lifetime of each temporary (TEMP_PREFERRED_LIFETIME), with a unit.
    #[arg(long, default_value = "1d")]
    preferred_lifetime: Lifetime,
    /// Valid lifetime of each temporary (TEMP_VALID_LIFETIME), with a unit.
    #[arg(long, default_value = "2d")]
    valid_lifetime: Lifetime,
    /// Accept lifetimes below 10 minutes (labs and tests).
    #[arg(long)]
    force: bool,
    /// How outgoing connections are steered to the current temporary.
    #[arg(long, value_enum, default_value = "prefsrc")]
    source_strategy: SourceStrategy,
    /// Network_ID for RFC 7217 stable addresses (e.g. the Wi-Fi SSID).
    #[arg(long, default_value = "")]
    network_id: String,
    /// Form only temporaries (no RFC 7217 stable address).
    #[arg(long)]
    no_stable: bool,
    /// First per-prefix backoff after 3 temporaries in a row failed DAD (doubles to 1h).
    #[arg(long, default_value = "1m")]
    backoff: Lifetime,
}

/// Runs `v6home privacy`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Sub::Enable(a) => {
            let req = Request::Enable {
                prefer: match a.prefer {
                    PreferArg::Temporary => Prefer::Temporary,
                    PreferArg::Public => Prefer::Public,
                },
                preferred: a.preferred_lifetime,
                valid: a.valid_lifetime,
                force: a.force,
            };
            if a.dry_run {
                return dry_run(&req, a.common);
            }
            configure(&req, a.common)
        }
        Sub::Disable(c) => configure(&Request::Disable, c),
        Sub::Status(c) => {
            let t = Target {
                root: c.root,
                ifaces: c.ifaces,
            };
            let st = system::status(&t)?;
            print!("{}", system::render_status(&st));
            Ok(())
        }
        Sub::Agent(a) => agent(a),
        Sub::Dadforge(a) => dadforge(a),
    }
}

fn dadforge(a: ForgeArgs) -> anyhow::Result<()> {
    let (p, l) = a
        .prefix
        .split_once('/')
        .context("--prefix needs a length, e.g. 2001:db8:1234::/64")?;
    let cfg = v6h_privacy::dadforge::ForgeConfig {
        iface: a.iface,
        prefix: p.parse().context("--prefix address")?,
        prefix_len: l.parse().context("--prefix length")?,
        exclude: a.exclude,
        max: a.max,
        duration: std::time::Duration::from_secs(u64::from(a.duration.0)),
        mac: [0x02, 0x00, 0x5e, 0x10, 0xda, 0xd0],
    };
    let answered = v6h_privacy::dadforge::run(&cfg)?;
    println!("forged {} NA(s)", answered.len());
    Ok(())
}

/// `enable --dry-run`: the diffs, sysctls and commands; nothing is changed.
fn dry_run(req: &Request, c: Common) -> anyhow::Result<()> {
    let t = Target {
        root: c.root,
        ifaces: c.ifaces,
    };
    let live = t.root.is_none();
    let d = system::dry_run(req, &t)?;
    let managers: Vec<String> = d.managers.iter().map(|m| m.to_string()).collect();
    println!(
        "# dry run: nothing is changed. Network manager: {}",
        if managers.is_empty() {
            "none".to_string()
        } else {
            managers.join(", ")
        }
    );
    if d.diffs.is_empty() {
        println!("# files: all already as planned");
    }
    for diff in &d.diffs {
        print!("{diff}");
    }
    for (p, now, new) in &d.live {
        println!(
            "# would set {} = {new} (now {})",
            p.display(),
            now.as_deref().unwrap_or("absent")
        );
    }
    for c in &d.plan.commands {
        println!("# would run: {}", c.join(" "));
    }
    if !live {
        println!("# (under --root no command runs and only existing /proc files are written)");
    }
    for n in &d.plan.notes {
        println!("# note: {n}");
    }
    Ok(())
}

fn configure(req: &Request, c: Common) -> anyhow::Result<()> {
    let t = Target {
        root: c.root,
        ifaces: c.ifaces,
    };
    let live = t.root.is_none();
    let rep = system::apply(req, &t)?;
    for f in &rep.plan.files {
        println!("wrote {}", f.path);
    }
    for (p, v) in &rep.applied {
        println!("set {} = {v} (read back)", p.display());
    }
    if !rep.skipped.is_empty() {
        println!(
            "{} live keys not present under --root (not applied)",
            rep.skipped.len()
        );
    }
    let managers: Vec<String> = rep.managers.iter().map(|m| m.to_string()).collect();
    println!(
        "network manager: {}",
        if managers.is_empty() {
            "none".to_string()
        } else {
            managers.join(", ")
        }
    );
    for (cmd, ok, err) in &rep.commands {
        if *ok {
            println!("ran `{cmd}`");
        } else {
            println!("warning: `{cmd}` failed: {err}");
        }
    }
    for n in &rep.plan.notes {
        println!("note: {n}");
    }
    if live && !rep.was_disabled.is_empty() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for i in &rep.was_disabled {
            let n = rt
                .block_on(system::repair_parents(i))
                .with_context(|| format!("re-adding mngtmpaddr addresses on {i}"))?;
            println!(
                "repaired {i}: the kernel had disabled privacy (use_tempaddr = -1); re-added {n} mngtmpaddr address(es)"
            );
        }
    }
    Ok(())
}

fn agent(a: AgentArgs) -> anyhow::Result<()> {
    if a.preferred_lifetime.0 <= sysconf::REGEN_ADVANCE + 1 {
        bail!(
            "preferred lifetime {} is not longer than REGEN_ADVANCE + 1 s",
            a.preferred_lifetime
        );
    }
    if a.valid_lifetime < a.preferred_lifetime {
        bail!(
            "valid lifetime {} is shorter than the preferred lifetime {}",
            a.valid_lifetime,
            a.preferred_lifetime
        );
    }
    if !a.force && a.preferred_lifetime.0 < sysconf::MIN_UNFORCED {
        bail!(
            "preferred lifetime {} is below 10m; add --force for labs",
            a.preferred_lifetime
        );
    }
    if !sysconf::valid_ifname(&a.iface) {
        bail!("invalid interface name `{}`", a.iface);
    }
    // One agent per interface and state directory: two would fight over the addresses.
    std::fs::create_dir_all(&a.state_dir)
        .with_context(|| format!("creating {}", a.state_dir.display()))?;
    let _pid = super::pidfile::PidFile::acquire(
        &a.state_dir.join(format!("privacy-agent-{}.pid", a.iface)),
    )?;
    let mut params = Params::with_lifetimes(a.preferred_lifetime.0, a.valid_lifetime.0);
    params.stable = !a.no_stable;
    params.backoff_min = a.backoff.0.max(1);
    params.backoff_max = params.backoff_max.max(params.backoff_min);
    let cfg = v6h_privacy::agent::AgentConfig {
        iface: a.iface,
        state_dir: a.state_dir,
        params,
        network_id: a.network_id.into_bytes(),
        prefsrc: a.source_strategy == SourceStrategy::Prefsrc,
        take_over: true,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(v6h_privacy::agent::run(cfg))?;
    Ok(())
}

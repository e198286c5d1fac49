//! `v6home broker`: the tunnel broker (TIC server + AYIYA PoP), its status and its registry.
//!
//! The management commands (`user …`, `tunnel …`, `import`) write to the registry database
//! directly, not through the daemon; a running broker picks every change up within a second.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use v6h_tunnel::prefix::Prefix6;
use v6h_tunnel::registry::{
    AdminState, BrokerConfig, NewTunnel, User, parse_registry, render_aiccu_conf,
    render_gateway_toml,
};
use v6h_tunnel::store::{Store, StoredTunnel, random_secret, tic_password_md5};

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
    /// Manage tunnels in the registry database.
    #[command(subcommand)]
    Tunnel(TunnelCmd),
    /// Manage TIC users in the registry database.
    #[command(subcommand)]
    User(UserCmd),
    /// Import `[[user]]` and `[[tunnel]]` tables of an old broker.toml into the database
    /// (idempotent), for this config's PoP.
    Import {
        /// The TOML file holding the tables (often broker.toml itself).
        file: PathBuf,
    },
}

/// How a command gets a TIC password.
#[derive(Debug, clap::Args)]
struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "generate")]
    password_stdin: bool,
    /// Generate a random password and print it once.
    #[arg(long)]
    generate: bool,
}

/// `broker user ...`.
#[derive(Debug, clap::Subcommand)]
enum UserCmd {
    /// Add a TIC user (password from stdin, or `--generate`).
    Add {
        /// TIC user name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set a user's TIC password.
    Passwd {
        /// TIC user name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Delete a user who owns no tunnel.
    Del {
        /// TIC user name.
        name: String,
    },
    /// List users and their tunnel counts.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `broker tunnel ...`.
#[derive(Debug, clap::Subcommand)]
enum TunnelCmd {
    /// Allocate the next tunnel for a user; print a ready aiccu.conf and gateway.toml section.
    Add {
        /// Owner (TIC user name, must exist).
        #[arg(long)]
        user: String,
        /// Routed subnet to delegate (repeatable), e.g. 2001:db8:1234::/48.
        #[arg(long)]
        subnet: Vec<Prefix6>,
        /// Tunnel MTU (default: `default_mtu`).
        #[arg(long)]
        mtu: Option<u16>,
        /// Heartbeat interval in seconds (default: `default_heartbeat`).
        #[arg(long)]
        heartbeat: Option<u32>,
        /// The PoP that serves it (default: this config's `server_name`).
        #[arg(long)]
        pop: Option<String>,
    },
    /// Delete a tunnel: it stops forwarding and its routes go.
    Del {
        /// Tunnel id (`T5` or `5`).
        id: String,
    },
    /// Disable a tunnel (kept in the registry, forwards nothing).
    Disable {
        /// Tunnel id.
        id: String,
    },
    /// Enable a disabled tunnel.
    Enable {
        /// Tunnel id.
        id: String,
    },
    /// List tunnels.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show one tunnel (without its secret).
    Show {
        /// Tunnel id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// A tunnel as `list --json` and `show --json` print it (no secret).
#[derive(Debug, Serialize)]
struct TunnelView {
    id: String,
    owner: String,
    pop: String,
    prefix: String,
    pop_address: String,
    client_address: String,
    subnets: Vec<String>,
    mtu: u16,
    heartbeat: u32,
    admin: &'static str,
    name: Option<String>,
}

impl From<&StoredTunnel> for TunnelView {
    fn from(s: &StoredTunnel) -> Self {
        let t = &s.tunnel;
        TunnelView {
            id: t.tic_id(),
            owner: t.owner.clone(),
            pop: s.pop.clone(),
            prefix: t.prefix.to_string(),
            pop_address: t.pop_addr().to_string(),
            client_address: t.client_addr().to_string(),
            subnets: t.subnets.iter().map(|p| p.to_string()).collect(),
            mtu: t.mtu,
            heartbeat: t.heartbeat,
            admin: t.admin.as_str(),
            name: t.name.clone(),
        }
    }
}

fn tunnel_id(s: &str) -> anyhow::Result<u32> {
    let digits = s.strip_prefix(['T', 't']).unwrap_or(s);
    digits
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("{s:?} is not a tunnel id (T<number>)"))
}

fn password(args: &PasswordArgs) -> anyhow::Result<(String, bool)> {
    if args.generate {
        return Ok((random_secret(), true));
    }
    if !args.password_stdin && std::io::stdin().is_terminal() {
        anyhow::bail!("give --password-stdin (and the password on standard input) or --generate");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("read the password from standard input")?;
    Ok((line.trim_end_matches(['\n', '\r']).to_string(), false))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

async fn open(cfg: &BrokerConfig) -> anyhow::Result<Store> {
    Ok(Store::open(&cfg.database_url()).await?)
}

fn print_tunnels(list: &[StoredTunnel], json: bool) -> anyhow::Result<()> {
    if json {
        let v: Vec<TunnelView> = list.iter().map(TunnelView::from).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<6} {:<12} {:<8} {:<9} {:<22} {:>5}  subnets",
        "id", "owner", "pop", "admin", "prefix", "mtu"
    );
    for s in list {
        let t = &s.tunnel;
        let subnets: Vec<String> = t.subnets.iter().map(|p| p.to_string()).collect();
        println!(
            "{:<6} {:<12} {:<8} {:<9} {:<22} {:>5}  {}",
            t.tic_id(),
            t.owner,
            s.pop,
            t.admin.as_str(),
            t.prefix.to_string(),
            t.mtu,
            subnets.join(",")
        );
    }
    Ok(())
}

/// Runs `v6home broker`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cmd = match args.cmd {
        None => {
            return v6h_tunnel::broker::run(v6h_tunnel::broker::BrokerOptions {
                config: args.config,
                offload: !args.no_offload,
            })
            .context("broker");
        }
        Some(cmd) => cmd,
    };
    let cfg = BrokerConfig::load(&args.config)?;
    match cmd {
        Sub::Status { json } => {
            let s = v6h_tunnel::broker::read_status(&cfg)
                .context("no status (is the broker running?)")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", v6h_tunnel::broker::format_status(&s));
            }
            Ok(())
        }
        Sub::Import { file } => runtime()?.block_on(import(&cfg, &file)),
        Sub::User(u) => runtime()?.block_on(user(&cfg, u)),
        Sub::Tunnel(t) => runtime()?.block_on(tunnel(&cfg, t)),
    }
}

async fn import(cfg: &BrokerConfig, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let data = parse_registry(&text, file)?;
    let store = open(cfg).await?;
    let r = store.import(&cfg.server_name, &data).await?;
    store.close().await;
    eprintln!(
        "imported into {} for PoP {}: {} user(s) added, {} updated; {} tunnel(s) added, {} \
         updated; {} unchanged",
        store.url(),
        cfg.server_name,
        r.users_added,
        r.users_updated,
        r.tunnels_added,
        r.tunnels_updated,
        r.unchanged
    );
    eprintln!(
        "now delete the [[user]] and [[tunnel]] tables (and any `registry` key) from {}: \
         they hold password-equivalent secrets (TIC password or its MD5, AYIYA keys), and the \
         broker refuses to start while broker.toml still has them",
        file.display()
    );
    Ok(())
}

async fn user(cfg: &BrokerConfig, cmd: UserCmd) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    match cmd {
        UserCmd::Add { name, password: p } => {
            let (pw, generated) = password(&p)?;
            store.add_user(&name, &tic_password_md5(&pw)?).await?;
            eprintln!("added user {name}");
            if generated {
                println!("{pw}");
            }
        }
        UserCmd::Passwd { name, password: p } => {
            let (pw, generated) = password(&p)?;
            store.set_password(&name, &tic_password_md5(&pw)?).await?;
            eprintln!("password of {name} changed");
            if generated {
                println!("{pw}");
            }
        }
        UserCmd::Del { name } => {
            store.del_user(&name).await?;
            eprintln!("deleted user {name}");
        }
        UserCmd::List { json } => {
            let users = store.users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!("{:<20} tunnels", "user");
                for u in users {
                    println!("{:<20} {}", u.name, u.tunnels);
                }
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn tunnel(cfg: &BrokerConfig, cmd: TunnelCmd) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    match cmd {
        TunnelCmd::Add {
            user,
            subnet,
            mtu,
            heartbeat,
            pop,
        } => {
            let req = NewTunnel {
                owner: user.clone(),
                subnets: subnet,
                from: cfg.tunnel_prefix,
                mtu: mtu.unwrap_or(cfg.default_mtu),
                heartbeat: heartbeat.unwrap_or(cfg.default_heartbeat),
                password: None,
            };
            let pop = pop.unwrap_or_else(|| cfg.server_name.clone());
            let t = store.add_tunnel(&pop, &req).await?;
            // The TIC password is stored only as its MD5, so the configs carry a placeholder.
            let u = User {
                name: user.clone(),
                password_md5: String::new(),
                password_plain: None,
            };
            let server = cfg.tic_server_name();
            eprintln!(
                "added {} ({}) for {user} on PoP {pop}; a running broker serves it within a \
                 second. Replace CHANGE-ME with {user}'s TIC password.",
                t.tic_id(),
                t.prefix
            );
            print!("{}", render_aiccu_conf(&u, &t, &server));
            println!();
            print!("{}", render_gateway_toml(&u, &t, &server));
        }
        TunnelCmd::Del { id } => {
            let t = store.del_tunnel(tunnel_id(&id)?).await?;
            eprintln!("deleted {} ({})", t.tic_id(), t.prefix);
        }
        TunnelCmd::Disable { id } => {
            let t = store
                .set_admin(tunnel_id(&id)?, AdminState::Disabled)
                .await?;
            eprintln!("disabled {} ({})", t.tic_id(), t.prefix);
        }
        TunnelCmd::Enable { id } => {
            let t = store
                .set_admin(tunnel_id(&id)?, AdminState::Enabled)
                .await?;
            eprintln!("enabled {} ({})", t.tic_id(), t.prefix);
        }
        TunnelCmd::List { json } => print_tunnels(&store.tunnels().await?, json)?,
        TunnelCmd::Show { id, json } => {
            let s = store.tunnel(tunnel_id(&id)?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&TunnelView::from(&s))?);
            } else {
                let v = TunnelView::from(&s);
                println!("id             {}", v.id);
                println!("owner          {}", v.owner);
                println!("pop            {}", v.pop);
                println!("admin          {}", v.admin);
                println!("prefix         {}", v.prefix);
                println!("pop address    {}", v.pop_address);
                println!("client address {}", v.client_address);
                println!("subnets        {}", v.subnets.join(", "));
                println!("mtu            {}", v.mtu);
                println!("heartbeat      {}", v.heartbeat);
                println!("name           {}", v.name.as_deref().unwrap_or("-"));
            }
        }
    }
    store.close().await;
    Ok(())
}

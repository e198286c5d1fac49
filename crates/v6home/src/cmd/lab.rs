//! `v6home lab`: build, inspect and remove the lab network, and run commands in its nodes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use v6h_lab::{Lab, Node};

/// Arguments of `v6home lab`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LabCommand {
    /// Build the lab (idempotent): namespaces, veths, bridge, NAT, DNS and web servers.
    Up {
        /// Lab name; namespaces are called v6h-<name>-<node>.
        #[arg(long, default_value = "demo")]
        name: String,
    },
    /// Remove a lab and everything it made (also after a crashed run).
    Down {
        /// Lab name.
        #[arg(default_value = "demo")]
        name: String,
    },
    /// Show every node with its interfaces and addresses.
    Status {
        /// Lab name; without it, every lab on this machine.
        name: Option<String>,
    },
    /// Run a command in a node, passing its exit code and output through.
    Exec {
        /// Lab name.
        name: String,
        /// Node: inet, pop, isp, gw or host.
        node: Node,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Run the demo: build the lab, prove each part of the home setup, and tear down.
    Demo {
        /// Leave the lab running afterwards.
        #[arg(long)]
        keep: bool,
        /// Lab name.
        #[arg(long, default_value = "demo")]
        name: String,
    },
    /// The lab's web server (started by `lab up` on inet).
    #[command(hide = true)]
    Httpd {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Access log to append to.
        #[arg(long)]
        access_log: PathBuf,
    },
}

/// Runs `v6home lab`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        LabCommand::Up { name } => {
            let started = Instant::now();
            let mut lab = Lab::up(&name)?;
            lab.keep();
            println!(
                "lab {name} is up ({} ms); `v6home lab status {name}` shows it, `v6home lab down {name}` removes it",
                started.elapsed().as_millis()
            );
            Ok(())
        }
        LabCommand::Down { name } => {
            let started = Instant::now();
            let report = v6h_lab::down(&name)?;
            if report.namespaces.is_empty() {
                println!("lab {name}: nothing to remove");
            } else {
                println!(
                    "lab {name} removed: {} namespaces, {} processes ({} ms)",
                    report.namespaces.len(),
                    report.processes,
                    started.elapsed().as_millis()
                );
            }
            Ok(())
        }
        LabCommand::Status { name } => {
            let names = match name {
                Some(n) => vec![n],
                None => v6h_lab::list_labs()?,
            };
            if names.is_empty() {
                println!("no lab is up");
            }
            for name in names {
                print_status(&name)?;
            }
            Ok(())
        }
        LabCommand::Exec {
            name,
            node,
            command,
        } => {
            let lab = Lab::attach(&name)?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &lab.ns(node)])
                .args(&command)
                .status()
                .with_context(|| format!("running {command:?} in {node}"))?;
            std::process::exit(status.code().unwrap_or(128));
        }
        LabCommand::Demo { keep, name } => demo(&name, keep),
        LabCommand::Httpd { listen, access_log } => v6h_lab::httpd::serve(listen, &access_log)
            .with_context(|| format!("serving HTTP on {listen}")),
    }
}

fn print_status(name: &str) -> anyhow::Result<()> {
    let rows = v6h_lab::status(name)?;
    println!("lab {name}");
    println!("  {:<5} {:<6} {:<8} addresses", "node", "iface", "state");
    let mut last = None;
    for row in rows {
        let node = if last == Some(row.node) {
            String::new()
        } else {
            row.node.to_string()
        };
        last = Some(row.node);
        println!(
            "  {:<5} {:<6} {:<8} {}",
            node,
            row.ifname,
            row.state,
            row.addresses.join(" ")
        );
    }
    Ok(())
}

/// One demo step: prints the title, runs the check, prints the verdict and the time.
fn step(title: &str, check: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<()> {
    print!("  {title:<58}");
    let _ = std::io::stdout().flush();
    let started = Instant::now();
    match check() {
        Ok(detail) => {
            println!("ok   {:>5} ms  {detail}", started.elapsed().as_millis());
            Ok(())
        }
        Err(e) => {
            println!("FAIL");
            Err(e.context(title.to_string()))
        }
    }
}

fn demo(name: &str, keep: bool) -> anyhow::Result<()> {
    println!("v6home lab demo: the \"IPv6 at Home\" network on one machine\n");
    println!("The network");
    let started = Instant::now();
    let mut lab = None;
    step("build inet, pop, isp (NAT modem), gw and host", || {
        lab = Some(Lab::up(name)?);
        Ok(format!("lab {name}"))
    })?;
    let Some(mut lab) = lab else {
        bail!("the lab did not come up")
    };
    if keep {
        lab.keep();
    }
    let result = demo_checks(&lab);
    println!();
    print_status(name)?;
    println!(
        "\nTotal {:.1} s. {}",
        started.elapsed().as_secs_f64(),
        if keep {
            format!("The lab stays up: `v6home lab down {name}` removes it.")
        } else {
            "Tearing the lab down.".to_string()
        }
    );
    if !keep {
        lab.teardown()?;
    }
    result
}

fn demo_checks(lab: &Lab) -> anyhow::Result<()> {
    use v6h_lab::addr;
    step("gw reaches the PoP over IPv4 through the NAT", || {
        lab.exec_ok(Node::Gw, &["ping", "-c1", "-W2", addr::POP_V4])?;
        Ok(format!("{} -> {}", addr::GW_V4, addr::POP_V4))
    })?;
    step(
        "the IPv6 internet answers from the PoP (DNS and web)",
        || {
            let answer = lab.exec_ok(
                Node::Pop,
                &[
                    "dig",
                    "+short",
                    "+time=2",
                    "AAAA",
                    addr::WEB_NAME,
                    &format!("@{}", addr::DNS_V6),
                ],
            )?;
            let answer = answer.trim().to_string();
            if answer != addr::WEB_V6 {
                bail!("DNS answered {answer:?}, expected {}", addr::WEB_V6);
            }
            let page = lab.exec_ok(
                Node::Pop,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "3",
                    &format!("http://[{}]/", addr::WEB_V6),
                ],
            )?;
            if !page.contains("IPv6 works") {
                bail!("unexpected page: {page}");
            }
            Ok(format!("{} AAAA {answer}", addr::WEB_NAME))
        },
    )?;
    step("before the tunnel, the home has no IPv6 path", || {
        for node in [Node::Gw, Node::Host] {
            let out = lab.exec(node, &["ip", "-6", "route", "get", addr::WEB_V6])?;
            if out.status.success() {
                bail!(
                    "{node} has a route to {}: {}",
                    addr::WEB_V6,
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        Ok("gw, host: no route to 2001:db8:ffff::80".to_string())
    })?;
    Ok(())
}

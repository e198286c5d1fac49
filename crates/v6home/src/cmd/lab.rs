//! `v6home lab`: build, inspect and remove the lab network, and run commands in its nodes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
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
    /// Run a command in a node: this process becomes the command (same PID, signals, exit
    /// code and output).
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
            use std::os::unix::process::CommandExt;
            let lab = Lab::attach(&name)?;
            // Become `ip netns exec`, which enters the namespace and becomes the command: one
            // process throughout, so a signal sent to `lab exec` reaches the command, and its
            // exit status is ours.
            let error = std::process::Command::new("ip")
                .args(["netns", "exec", &lab.ns(node)])
                .args(&command)
                .exec();
            Err(error).with_context(|| format!("running {command:?} in {node}"))
        }
        LabCommand::Demo { keep, name } => super::demo::run(&name, keep),
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

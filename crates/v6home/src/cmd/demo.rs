//! `v6home lab demo`: the whole "IPv6 at Home" setup, built and proven in the lab, with a report
//! in the blog's sections (The tunnel, The routing, Privacy extensions, Testing it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use v6h_lab::{Lab, LabChild, Node, addr};

/// The lab's tunnel broker registry (pop).
const BROKER_TOML: &str = include_str!("../../../../examples/lab/broker.toml");
/// The lab's registry (user `lab`, tunnel T1), imported into the broker's database.
const REGISTRY_TOML: &str = include_str!("../../../../examples/lab/registry.toml");
/// The lab's AICCU configuration (gw).
const AICCU_CONF: &str = include_str!("../../../../examples/lab/aiccu.conf");
/// The lab's radvd.conf (gw's LAN port).
const RADVD_CONF: &str = include_str!("../../../../examples/lab/radvd.conf");
/// The lab's dhcp6s.conf (gw's LAN port).
const DHCP6S_CONF: &str = include_str!("../../../../examples/lab/dhcp6s.conf");
/// The lab's gateway.toml, pointing at the three files above.
const GATEWAY_TOML: &str = include_str!("../../../../examples/lab/gateway.toml");

/// The width of the step column: the longest title, plus room. A longer title still gets a
/// space before its verdict (and a test keeps every title within it).
const TITLE_WIDTH: usize = 60;

/// Prints a step, runs it, prints the verdict with the time it took.
fn step<T>(title: &str, check: impl FnOnce() -> anyhow::Result<(T, String)>) -> anyhow::Result<T> {
    print!("  {title:<TITLE_WIDTH$} ");
    let _ = std::io::stdout().flush();
    let started = Instant::now();
    match check() {
        Ok((value, detail)) => {
            println!("ok  {:>6} ms  {detail}", started.elapsed().as_millis());
            Ok(value)
        }
        Err(e) => {
            println!("FAIL");
            Err(e.context(title.to_string()))
        }
    }
}

/// Polls `probe` every 50 ms until it returns `Some` or `timeout` passes.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_config(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The daemons of the demo, each with its node and name, kept so they can be detached
/// (`--keep`, recording each PID in [`Lab::pid_file`]) or stopped.
struct Daemons(Vec<(Node, &'static str, LabChild)>);

/// Runs the demo on lab `name`; tears down unless `keep`.
pub fn run(name: &str, keep: bool) -> anyhow::Result<()> {
    println!("v6home lab demo: real IPv6 at home over an IPv4-only ISP, on one machine\n");
    let started = Instant::now();
    println!("The network");
    let mut lab = step("build inet, pop, isp (IPv4 NAT), gw and host", || {
        let lab = Lab::up(name)?;
        Ok((lab, format!("namespaces v6h-{name}-*")))
    })?;
    if keep {
        lab.keep();
    }
    let mut daemons = Daemons(Vec::new());
    let result = scenario(&lab, &mut daemons, started);
    if keep {
        for (node, daemon, child) in daemons.0 {
            let pid = child.detach();
            if pid != 0
                && let Err(e) = lab.record_pid(node, daemon, pid)
            {
                eprintln!("v6home lab demo: {daemon} on {node} keeps running as PID {pid}: {e}");
            }
        }
        println!(
            "\nThe lab stays up: `v6home lab status {name}`, `v6home lab exec {name} host -- …`, `v6home lab down {name}`."
        );
    } else {
        drop(daemons);
        lab.teardown()?;
        println!("\nLab torn down.");
    }
    result
}

fn scenario(lab: &Lab, daemons: &mut Daemons, started: Instant) -> anyhow::Result<()> {
    let bin = v6h_lab::v6home_bin()?;
    let bin = bin.to_string_lossy().to_string();
    let dir = lab.run_dir().to_path_buf();
    step("gw reaches the PoP over IPv4, through the NAT", || {
        lab.exec_ok(Node::Gw, &["ping", "-c1", "-W2", addr::POP_V4])?;
        Ok(((), format!("{} -> {}", addr::GW_V4, addr::POP_V4)))
    })?;
    step("before the tunnel, the home has no IPv6 route", || {
        for node in [Node::Gw, Node::Host] {
            if lab
                .exec(node, &["ip", "-6", "route", "get", addr::WEB_V6])?
                .status
                .success()
            {
                bail!("{node} already has a route to {}", addr::WEB_V6);
            }
        }
        Ok(((), "gw, host: no route to 2001:db8:ffff::80".into()))
    })?;

    step("gw and host links are up (link-local DAD done)", || {
        for node in [Node::Gw, Node::Host] {
            wait_for("link-local DAD", Duration::from_secs(5), || {
                let out = lab
                    .exec_ok(
                        node,
                        &[
                            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
                        ],
                    )
                    .ok()?;
                (out.contains("fe80::") && !out.contains("tentative")).then_some(())
            })?;
        }
        Ok((
            (),
            "a booted home: the timings below start from here".into(),
        ))
    })?;

    println!("\nThe tunnel");
    // Per-lab state paths, so that labs can run side by side.
    let broker_text = BROKER_TOML
        .replace(
            "run_dir = \"/run/v6home/broker\"",
            &format!("run_dir = \"{}\"", dir.join("broker").display()),
        )
        .replace(
            "state_dir = \"/var/lib/v6home/broker\"",
            &format!("state_dir = \"{}\"", dir.join("broker-state").display()),
        );
    let aiccu_text = AICCU_CONF.replace(
        "pidfile /run/v6home/aiccu-lab.pid",
        &format!("pidfile {}", dir.join("aiccu.pid").display()),
    );
    let broker_conf = write_config(&dir, "broker.toml", &broker_text)?;
    write_config(&dir, "aiccu.conf", &aiccu_text)?;
    let registry = write_config(&dir, "registry.toml", REGISTRY_TOML)?;
    let broker_conf = broker_conf.to_string_lossy().to_string();
    let import = std::process::Command::new(&bin)
        .args(["broker", "--config", &broker_conf, "import"])
        .arg(&registry)
        .output()?;
    anyhow::ensure!(
        import.status.success(),
        "importing the lab registry: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    step(
        "pop runs the broker: TIC on tcp/3874, AYIYA on udp/5072",
        || {
            let child = lab.spawn(Node::Pop, &[&bin, "broker", "--config", &broker_conf])?;
            daemons.0.push((Node::Pop, "broker", child));
            wait_for("the broker listening", Duration::from_secs(10), || {
                let out = lab.exec(Node::Pop, &["ss", "-Hlntu"]).ok()?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                (text.contains(":3874") && text.contains(":5072")).then_some(())
            })?;
            // Ready when it also routes the tunnel /64 and the home's /48 into its TUN.
            wait_for(
                "the broker's tunnel routes",
                Duration::from_secs(10),
                || {
                    let routes = lab
                        .exec_ok(Node::Pop, &["ip", "-6", "route", "show"])
                        .ok()?;
                    (routes.contains("2001:db8:2ff:1::/64")
                        && routes.contains("2001:db8:1234::/48"))
                    .then_some(())
                },
            )?;
            Ok(((), format!("{}:3874, {}:5072", addr::POP_V4, addr::POP_V4)))
        },
    )?;
    write_config(&dir, "radvd.conf", RADVD_CONF)?;
    write_config(&dir, "dhcp6s.conf", DHCP6S_CONF)?;
    let gateway_conf = write_config(&dir, "gateway.toml", GATEWAY_TOML)?;
    let gateway_conf = gateway_conf.to_string_lossy().to_string();
    let state = dir.join("gateway").to_string_lossy().to_string();
    let gateway_started = Instant::now();
    step(
        "gw starts `v6home gateway`: TIC login, sixxs up (AYIYA)",
        || {
            let child = lab.spawn(
                Node::Gw,
                &[
                    &bin,
                    "gateway",
                    "--config",
                    &gateway_conf,
                    "--state-dir",
                    &state,
                ],
            )?;
            daemons.0.push((Node::Gw, "gateway", child));
            wait_for(
                "sixxs with 2001:db8:2ff:1::2",
                Duration::from_secs(20),
                || {
                    let out = lab
                        .exec(
                            Node::Gw,
                            &["ip", "-6", "-o", "addr", "show", "dev", "sixxs"],
                        )
                        .ok()?;
                    String::from_utf8_lossy(&out.stdout)
                        .contains("2001:db8:2ff:1::2/64")
                        .then_some(())
                },
            )?;
            let mtu = lab.exec_ok(Node::Gw, &["cat", "/sys/class/net/sixxs/mtu"])?;
            Ok(((), format!("2001:db8:2ff:1::2/64, MTU {}", mtu.trim())))
        },
    )?;
    let tunnel_up = step(
        "gw fetches http://[2001:db8:ffff::80]/ through the tunnel",
        || {
            let page = wait_for("HTTP over the tunnel", Duration::from_secs(15), || {
                lab.exec_ok(
                    Node::Gw,
                    &[
                        "curl",
                        "-sS",
                        "--max-time",
                        "1",
                        &format!("http://[{}]/", addr::WEB_V6),
                    ],
                )
                .ok()
            })?;
            let you = page
                .lines()
                .find(|l| l.starts_with("You are"))
                .unwrap_or("")
                .to_string();
            Ok((gateway_started.elapsed(), you))
        },
    )?;
    step("pop sees the AYIYA packets from the NAT's address", || {
        // The broker refreshes its status file every second.
        wait_for(
            "the broker's status showing the NAT address",
            Duration::from_secs(5),
            || {
                let out = lab
                    .exec_ok(
                        Node::Pop,
                        &[&bin, "broker", "status", "--config", &broker_conf],
                    )
                    .ok()?;
                out.contains(addr::ISP_WAN_V4).then_some(())
            },
        )?;
        Ok(((), format!("T1 up, endpoint {}", addr::ISP_WAN_V4)))
    })?;

    println!("\nThe routing");
    step(
        "gw forwards IPv6 and owns 2001:db8:1234::1/64 on eth0",
        || {
            let fwd = lab.exec_ok(Node::Gw, &["sysctl", "-n", "net.ipv6.conf.all.forwarding"])?;
            let lan = lab.exec_ok(Node::Gw, &["ip", "-6", "addr", "show", "dev", "eth0"])?;
            if fwd.trim() != "1" || !lan.contains("2001:db8:1234::1/64") {
                bail!("forwarding {} / eth0: {lan}", fwd.trim());
            }
            Ok(((), "net.ipv6.conf.all.forwarding=1".into()))
        },
    )?;
    step(
        "gw advertises 2001:db8:1234::/64 with RDNSS, answers DHCPv6",
        || {
            wait_for(
                "the DHCPv6 server listening",
                Duration::from_secs(10),
                || {
                    let out = lab.exec(Node::Gw, &["ss", "-Hlnu"]).ok()?;
                    String::from_utf8_lossy(&out.stdout)
                        .contains(":547")
                        .then_some(())
                },
            )?;
            Ok((
                (),
                "RA lifetime 90, O flag, RDNSS 2001:db8:ffff::53; DHCPv6 on udp/547".into(),
            ))
        },
    )?;
    let global = step(
        "host forms SLAAC and temporary addresses, default via gw",
        || {
            let temp = wait_for(
                "a temporary address on host",
                Duration::from_secs(20),
                || {
                    let out = lab
                        .exec(
                            Node::Host,
                            &[
                                "ip",
                                "-6",
                                "-o",
                                "addr",
                                "show",
                                "dev",
                                "eth0",
                                "scope",
                                "global",
                                "temporary",
                            ],
                        )
                        .ok()?;
                    // Only once DAD is over does the kernel use it as a source.
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    text.lines()
                        .find(|l| !l.contains("tentative"))?
                        .split_whitespace()
                        .skip_while(|w| *w != "inet6")
                        .nth(1)
                        .map(str::to_string)
                },
            )?;
            let route = wait_for("a default route on host", Duration::from_secs(10), || {
                let r = lab
                    .exec_ok(Node::Host, &["ip", "-6", "route", "show", "default"])
                    .ok()?;
                r.contains("via fe80::").then_some(r)
            })?;
            let via = route.split_whitespace().nth(2).unwrap_or("?").to_string();
            Ok((
                gateway_started.elapsed(),
                format!("temporary {temp}, default via {via}"),
            ))
        },
    )?;
    let connected = step("host reaches the IPv6 internet", || {
        wait_for("host's HTTP over IPv6", Duration::from_secs(10), || {
            lab.exec_ok(
                Node::Host,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "0.5",
                    &format!("http://[{}]/", addr::WEB_V6),
                ],
            )
            .ok()
        })?;
        Ok((
            gateway_started.elapsed(),
            format!("http://[{}]/", addr::WEB_V6),
        ))
    })?;

    println!("\nPrivacy extensions");
    step(
        "new connections from host use its temporary address",
        || {
            let page = lab.exec_ok(
                Node::Host,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "3",
                    &format!("http://{}/", addr::WEB_NAME),
                    "--resolve",
                    &format!("{}:80:{}", addr::WEB_NAME, addr::WEB_V6),
                ],
            )?;
            let seen = page
                .lines()
                .find_map(|l| l.strip_prefix("You are "))
                .unwrap_or("")
                .trim()
                .to_string();
            let temps = lab.exec_ok(
                Node::Host,
                &["ip", "-6", "-o", "addr", "show", "dev", "eth0", "temporary"],
            )?;
            if seen.is_empty() || !temps.contains(&format!("{seen}/")) {
                bail!("the web server saw {seen:?}, which is not a temporary address of host");
            }
            Ok(((), format!("the web server saw {seen}")))
        },
    )?;

    println!("\nTesting it (v6home check on host)");
    let out = lab.exec(
        Node::Host,
        &[
            &bin,
            "check",
            "--url",
            &format!("http://{}/", addr::WEB_NAME),
        ],
    )?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  {line}");
    }
    if !out.status.success() {
        bail!(
            "v6home check failed on host: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    println!("\nTimings");
    println!(
        "  gateway start to the tunnel carrying traffic           {:>6} ms",
        tunnel_up.as_millis()
    );
    println!(
        "  gateway start to host's temporary address and route  {:>6} ms",
        global.as_millis()
    );
    println!(
        "  gateway start to host's global IPv6 connectivity     {:>6} ms",
        connected.as_millis()
    );
    println!(
        "  whole demo, including building the lab               {:>6} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TITLE_WIDTH;

    /// Every step title fits its column (a title one character too long printed
    /// "through the tunnelok").
    #[test]
    fn step_titles_fit_the_column() {
        let whole = include_str!("demo.rs");
        // The steps, not this test.
        let source = &whole[..whole.rfind("#[cfg(test)]").unwrap()];
        let mut titles = Vec::new();
        for (i, _) in source.match_indices("step(") {
            let rest = source[i + 5..].trim_start();
            if let Some(body) = rest.strip_prefix('"') {
                titles.push(&body[..body.find('"').unwrap()]);
            }
        }
        assert!(titles.len() >= 12, "{titles:?}");
        for t in titles {
            assert!(
                t.chars().count() <= TITLE_WIDTH,
                "{t:?} is wider than {TITLE_WIDTH}"
            );
        }
    }
}

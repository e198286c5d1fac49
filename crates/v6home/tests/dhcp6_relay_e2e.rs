//! End-to-end test of `v6home dhcp6` behind a real DHCPv6 relay: three namespaces of our own,
//! `v6h-<unique>-{srv,rly,cli}`, in a line:
//!
//! ```text
//!  srv: rs0 2001:db8:1234::1/64 ── rs1 2001:db8:1234::2/64 :rly: rc0 2001:db8:1234:10::1/64 ── rc1 :cli
//!       v6home dhcp6 (rs0)           dnsmasq --dhcp-relay                                  dhclient -6
//! ```
//!
//! The server serves rs0's LAN pool directly and the office link (2001:db8:1234:10::/64,
//! a `[[link]]`) through the relay; the client must get an address and a prefix from the
//! office pools, chosen by the relay's link-address. A second run relays from a link the
//! server does not know (2001:db8:1234:30::1): dhclient must see NoAddrsAvail and bind nothing.
//! Root only: skipped without root unless `CI` is set. The namespaces are deleted on drop,
//! also when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{BIN, TempDir, file_contains_within, need_root, wait_until};

mod common;

/// The three namespaces and the processes started in them; all removed on drop.
struct Net {
    names: [String; 3],
    children: Vec<(String, Child, PathBuf)>,
}

const SRV: usize = 0;
const RLY: usize = 1;
const CLI: usize = 2;

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn output(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Net {
    /// Creates the namespaces, the two veth pairs (inside the namespaces, never in the
    /// host's) and the addresses; DAD is off so addresses are usable at once.
    fn up(relay_client_side: &str) -> Net {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "rl{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net {
            names: ["srv", "rly", "cli"].map(|n| format!("v6h-{unique}-{n}")),
            children: Vec::new(),
        };
        for ns in &net.names {
            run(&["ip", "netns", "add", ns]);
        }
        for ns in &net.names {
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ] {
                run(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", key]);
            }
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let [srv, rly, cli] = &net.names;
        run(&[
            "ip", "-n", srv, "link", "add", "rs0", "type", "veth", "peer", "name", "rs1", "netns",
            rly,
        ]);
        run(&[
            "ip", "-n", rly, "link", "add", "rc0", "type", "veth", "peer", "name", "rc1", "netns",
            cli,
        ]);
        for (ns, dev, addr) in [
            (srv, "rs0", Some("2001:db8:1234::1/64")),
            (rly, "rs1", Some("2001:db8:1234::2/64")),
            (rly, "rc0", Some(relay_client_side)),
            (cli, "rc1", None),
        ] {
            if let Some(a) = addr {
                run(&["ip", "-n", ns, "-6", "addr", "add", a, "dev", dev, "nodad"]);
            }
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        net
    }

    /// Starts `args` in namespace `which`, output to `<dir>/<tag>.log`.
    fn spawn(&mut self, which: usize, dir: &Path, tag: &str, args: &[&str]) {
        let log = dir.join(format!("{tag}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.names[which]])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
        self.children.push((tag.to_string(), child, log));
    }

    /// Every process log, for failure messages.
    fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(tag, _, log)| {
                format!(
                    "---- {tag}:\n{}\n",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.names {
            // Anything still running in our namespaces was started by this test.
            for pid in output(&["ip", "netns", "pids", ns]).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

const SERVER_TOML: &str = r#"
[options]
dns_servers = ["2001:db8:1234::53"]

[[pool]]
name = "lan"
start = "2001:db8:1234::100"
end = "2001:db8:1234::1ff"

[[pool]]
name = "office"
start = "2001:db8:1234:10::1000"
end = "2001:db8:1234:10::1fff"

[[interface]]
name = "rs0"
prefix = "2001:db8:1234::/64"
address_pools = [{ pool = "lan", preferred = 3600, valid = 7200 }]

[[link]]
name = "office"
prefix = "2001:db8:1234:10::/64"
address_pools = [{ pool = "office", preferred = 1800, valid = 3600 }]
[[link.pd_pool]]
prefix = "2001:db8:1234:8000::/49"
delegated_len = 56
"#;

/// The value of `var` in the first script run whose `reason` is `reason`.
fn env_var(log: &Path, reason: &str, var: &str) -> Option<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("----").find_map(|block| {
        if !block.lines().any(|l| l == format!("reason={reason}")) {
            return None;
        }
        block
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")).map(str::to_owned))
    })
}

/// One run: the namespaces and processes (dropped first), the scratch directory, and where
/// dhclient's script and the server's journal write.
struct Run {
    net: Net,
    tmp: TempDir,
    env_log: PathBuf,
    leases: PathBuf,
}

/// Builds the namespaces with the relay's client-side address `relay_addr` (no length),
/// starts the server, dnsmasq relaying from `relay_addr`, and `dhclient -6 -N -P`.
fn start(tag: &str, relay_addr: &str) -> Run {
    let tmp = TempDir::new(tag);
    let dir = tmp.path();
    // dnsmasq may drop privileges; keep the directory readable.
    run(&["chmod", "755", dir.to_str().unwrap()]);
    let conf = dir.join("server.toml");
    std::fs::write(&conf, SERVER_TOML).unwrap();
    let leases = dir.join("server.leases");
    let mut net = Net::up(&format!("{relay_addr}/64"));
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    net.spawn(
        SRV,
        dir,
        "server",
        &[
            BIN,
            "--log-level",
            "debug",
            "dhcp6",
            "-f",
            "-c",
            &d("server.toml"),
            "--duid-file",
            &d("server-duid"),
            "--no-import-dhcp6s-duid",
            "--lease-file",
            leases.to_str().unwrap(),
            "rs0",
        ],
    );
    assert!(
        file_contains_within(
            &dir.join("server.log"),
            "listening",
            Duration::from_secs(10)
        ),
        "server did not start:\n{}",
        net.logs()
    );
    net.spawn(
        RLY,
        dir,
        "relay",
        &[
            "dnsmasq",
            "--conf-file=/dev/null",
            "--keep-in-foreground",
            "--port=0",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--log-dhcp",
            "--log-facility=-",
            &format!("--dhcp-relay={relay_addr},2001:db8:1234::1"),
            &format!("--dhcp-leasefile={}", d("relay.leases")),
            &format!("--pid-file={}", d("relay.pid")),
        ],
    );
    // dnsmasq listens on 547 once started.
    let rly = net.names[RLY].clone();
    assert!(
        wait_until(Duration::from_secs(10), || {
            output(&[
                "ip", "netns", "exec", &rly, "ss", "-Hnlu", "sport", "= :547",
            ])
            .contains("547")
        }),
        "relay did not start:\n{}",
        net.logs()
    );
    let script = dir.join("env.sh");
    let env_log = dir.join("env.log");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv | sort >> {0}\necho ---- >> {0}\n",
            env_log.display()
        ),
    )
    .unwrap();
    run(&["chmod", "755", script.to_str().unwrap()]);
    std::fs::write(dir.join("dhclient.conf"), "").unwrap();
    net.spawn(
        CLI,
        dir,
        "dhclient",
        &[
            "timeout",
            "30",
            "dhclient",
            "-6",
            "-v",
            "-d",
            "-1",
            "-N",
            "-P",
            "-D",
            "LL",
            "-cf",
            &d("dhclient.conf"),
            "-lf",
            &d("dhclient.leases"),
            "-pf",
            &d("dhclient.pid"),
            "-sf",
            script.to_str().unwrap(),
            "rc1",
        ],
    );
    Run {
        net,
        tmp,
        env_log,
        leases,
    }
}

/// `v6home dhcp6 leases --json` of the run's journal.
fn leases_json(run: &Run) -> String {
    output(&[
        BIN,
        "dhcp6",
        "leases",
        "--json",
        "--lease-file",
        run.leases.to_str().unwrap(),
    ])
}

/// dhclient on the client link gets its address and its /56 from the office link's pools
/// (not the server interface's) through dnsmasq's relay, and the server's lease journal
/// records them on the office link.
#[test]
fn dhclient_through_dnsmasq_relay_gets_the_relayed_links_pool() {
    if !need_root() {
        return;
    }
    let run = start("dhcp6-relay-office", "2001:db8:1234:10::1");
    let (net, env_log) = (&run.net, &run.env_log);
    // dhclient runs its script once per lease: BOUND6 with the address, BOUND6 with the prefix.
    let bound = wait_until(Duration::from_secs(30), || {
        env_var(env_log, "BOUND6", "new_ip6_address").is_some()
            && env_var(env_log, "BOUND6", "new_ip6_prefix").is_some()
    });
    let addr = env_var(env_log, "BOUND6", "new_ip6_address");
    let prefix = env_var(env_log, "BOUND6", "new_ip6_prefix");
    assert!(
        bound && addr.is_some() && prefix.is_some(),
        "dhclient did not bind an address and a prefix through the relay.\nenv:\n{}\n{}",
        std::fs::read_to_string(env_log).unwrap_or_default(),
        net.logs()
    );
    let addr: std::net::Ipv6Addr = addr.unwrap().parse().unwrap();
    let first: std::net::Ipv6Addr = "2001:db8:1234:10::1000".parse().unwrap();
    let last: std::net::Ipv6Addr = "2001:db8:1234:10::1fff".parse().unwrap();
    assert!(
        (first..=last).contains(&addr),
        "{addr} is not from the office pool:\n{}",
        net.logs()
    );
    let prefix = prefix.unwrap();
    assert!(
        prefix.starts_with("2001:db8:1234:") && prefix.ends_with("/56"),
        "{prefix} is not a /56 of the office PD pool"
    );
    let p: v6h_lease::Prefix = prefix.parse().unwrap();
    assert!(
        "2001:db8:1234:8000::/49"
            .parse::<v6h_lease::Prefix>()
            .unwrap()
            .contains(p.addr()),
        "{prefix} is not inside 2001:db8:1234:8000::/49"
    );
    // The lease journal records both leases on the office link.
    let listed = wait_until(Duration::from_secs(5), || {
        let out = leases_json(&run);
        out.matches("\"office\"").count() >= 2 && out.contains(&addr.to_string())
    });
    assert!(listed, "leases: {}", leases_json(&run));
}

/// A relay whose link-address is on no configured link: dhclient's Advertise carries
/// NoAddrsAvail (dhclient discards it), nothing is bound and no lease is written.
#[test]
fn relay_from_an_unknown_link_gets_no_addrs_avail() {
    if !need_root() {
        return;
    }
    let run = start("dhcp6-relay-unknown", "2001:db8:1234:30::1");
    let dhclient_log = run.tmp.path().join("dhclient.log");
    assert!(
        file_contains_within(
            &dhclient_log,
            "Status code of no addrs, IA_NA discarded",
            Duration::from_secs(20),
        ),
        "dhclient saw no NoAddrsAvail:\n{}",
        run.net.logs()
    );
    assert!(
        !std::fs::read_to_string(&run.env_log)
            .unwrap_or_default()
            .contains("reason=BOUND6"),
        "bound on an unknown link:\n{}",
        run.net.logs()
    );
    assert!(
        !leases_json(&run).contains("2001:db8:1234"),
        "a lease was written: {}",
        leases_json(&run)
    );
}

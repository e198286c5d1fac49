//! `v6home gateway` end to end in the lab (root only): one process and one config bring up the
//! tunnel, forwarding, RAs and DHCPv6; the RAs follow the tunnel's state; SIGHUP with a broken
//! config keeps the service; SIGTERM sends the goodbye RAs.

use std::time::{Duration, Instant};

use common::{
    BIN, broker_conf, check, curl, default_route, example, link_local, need_root, nft_clear,
    nft_drop, start_broker, sysctl, verdict, wait_for,
};
use nix::sys::signal::Signal;
use v6h_lab::{Lab, LabChild, Node, addr};

mod common;

/// The gateway under test: broker on pop, gateway on gw, configs in the lab's run dir.
struct Setup {
    lab: Lab,
    gateway: LabChild,
    _broker: LabChild,
    config: String,
    state: String,
}

fn setup(prefix: &str) -> Setup {
    setup_with(prefix, GATEWAY_TOML, &example("dhcp6s.conf"))
}

/// RAs every few seconds so that state changes show quickly.
const GATEWAY_TOML: &str = r#"
[tunnel]
aiccu_conf = "aiccu.conf"
[lan]
# No prefix: the first /64 of the tunnel's routed subnet (2001:db8:1234::/48 from TIC).
interface = "eth0"
[ra]
rdnss = ["2001:db8:ffff::53"]
router_lifetime = 90
max_interval = 4
[dhcp6]
dhcp6s_conf = "dhcp6s.conf"
"#;

/// The lab, with the broker on pop and the gateway on gw, from these gateway.toml and
/// dhcp6s.conf texts.
fn setup_with(prefix: &str, gateway_toml: &str, dhcp6s_conf: &str) -> Setup {
    let lab = Lab::up(&v6h_lab::unique_name(prefix)).unwrap();
    let dir = lab.run_dir().to_path_buf();
    let broker_conf = broker_conf(&lab);
    let aiccu = example("aiccu.conf").replace(
        "pidfile /run/v6home/aiccu-lab.pid",
        &format!("pidfile {}", dir.join("aiccu.pid").display()),
    );
    std::fs::write(dir.join("aiccu.conf"), aiccu).unwrap();
    std::fs::write(dir.join("dhcp6s.conf"), dhcp6s_conf).unwrap();
    std::fs::write(dir.join("gateway.toml"), gateway_toml).unwrap();
    let broker = start_broker(&lab, &broker_conf);
    let config = dir.join("gateway.toml").display().to_string();
    let state = dir.join("gw-state").display().to_string();
    let gateway = lab
        .spawn(
            Node::Gw,
            &[
                BIN,
                "gateway",
                "--config",
                &config,
                "--state-dir",
                &state,
                "--metrics",
                "[::1]:9641",
                "--probe-interval",
                "1",
                "--probe-misses",
                "3",
            ],
        )
        .unwrap();
    Setup {
        lab,
        gateway,
        _broker: broker,
        config,
        state,
    }
}

/// Sends one RS from host's link-local address with IPv6 hop limit `hops`.
fn send_rs_hop_limit(lab: &Lab, hops: u8) {
    let src = link_local(lab, Node::Host, "eth0");
    let script = format!(
        "import socket,ipaddress,struct\n\
         i=socket.if_nametoindex('eth0')\n\
         s=socket.socket(socket.AF_INET6,socket.SOCK_RAW,socket.IPPROTO_ICMPV6)\n\
         s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_HOPS,{hops})\n\
         p=ipaddress.IPv6Address('{src}').packed+struct.pack('@I',i)\n\
         s.sendmsg([bytes([133,0,0,0,0,0,0,0])],[(socket.IPPROTO_IPV6,socket.IPV6_PKTINFO,p)],0,('ff02::2',0,0,i))\n"
    );
    lab.exec_ok(Node::Host, &["python3", "-c", &script])
        .expect("sending an RS");
}

fn host_default_route(lab: &Lab) -> bool {
    default_route(lab, Node::Host).contains("via fe80::")
}

fn host_fetches_web(lab: &Lab) -> bool {
    curl(lab, Node::Host, &format!("http://[{}]/", addr::WEB_V6), 2).is_some()
}

#[test]
fn gateway_brings_up_the_home_and_follows_the_tunnel() {
    if !need_root() {
        return;
    }
    let s = setup("gw");
    let lab = &s.lab;
    let t0 = Instant::now();
    wait_for(
        "host global connectivity through the gateway",
        Duration::from_secs(30),
        || host_fetches_web(lab),
    );
    eprintln!(
        "gateway start to host connectivity: {} ms",
        t0.elapsed().as_millis()
    );

    // Forwarding on, the router's LAN address, the tunnel interface.
    assert_eq!(sysctl(lab, Node::Gw, "net.ipv6.conf.all.forwarding"), "1");
    let lan = lab
        .exec_ok(Node::Gw, &["ip", "-6", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(lan.contains("2001:db8:1234::1/64"), "{lan}");
    let mtu = lab
        .exec_ok(Node::Gw, &["cat", "/sys/class/net/sixxs/mtu"])
        .unwrap();
    assert_eq!(mtu.trim(), "1280");

    // Stateless DHCPv6 from the same process.
    let (_, report) = check(lab, "http://www.v6home.test/");
    assert_eq!(report["ok"], true, "{report}");
    // `check --json` carries numbers beside the prose.
    let values = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["values"].clone())
            .unwrap_or_else(|| panic!("no {id} check: {report}"))
    };
    assert_eq!(values("ra")["router_lifetime_s"], 90, "{report}");
    assert_eq!(values("ra")["rdnss"][0], "2001:db8:ffff::53", "{report}");
    assert_eq!(values("pmtu")["mtu"], 1280, "{report}");
    assert!(values("ping")["rtt_ms"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(values("http-name")["status"], 200, "{report}");
    assert!(
        values("address")["addresses"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{report}"
    );

    // Status and metrics.
    let status = lab
        .exec_ok(
            Node::Gw,
            &[BIN, "gateway", "status", "--state-dir", &s.state],
        )
        .unwrap();
    assert!(
        status.contains("running") && status.contains("UP"),
        "{status}"
    );
    let metrics = lab
        .exec_ok(
            Node::Gw,
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                "http://[::1]:9641/metrics",
            ],
        )
        .unwrap();
    for needle in [
        "v6home_tunnel_up 1",
        "v6home_tunnel_packets_total{direction=\"out\"}",
        "v6home_ra_sent_total",
        "v6home_rs_received_total",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }

    // An RS with hop limit 64 (RFC 4861 §6.1.2: not from this link) is dropped and counted,
    // in the metrics and in `gateway status`.
    send_rs_hop_limit(lab, 64);
    let drops = wait_for(
        "the hop-limit drop in the metrics",
        Duration::from_secs(5),
        || {
            lab.exec_ok(
                Node::Gw,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "2",
                    "http://[::1]:9641/metrics",
                ],
            )
            .ok()
            .filter(|m| m.contains("reason=\"hop_limit\""))
        },
    );
    assert!(drops.contains("v6home_rs_rate_limited_total"), "{drops}");
    let status = wait_for(
        "the hop-limit drop in gateway status",
        Duration::from_secs(5),
        || {
            lab.exec_ok(
                Node::Gw,
                &[BIN, "gateway", "status", "--state-dir", &s.state],
            )
            .ok()
            .filter(|st| !st.contains("(0 for hop limit"))
        },
    );
    assert!(status.contains("for hop limit != 255"), "{status}");

    // The tunnel goes down: the modem drops AYIYA. RAs drop to router lifetime 0 and the
    // host loses its default route.
    nft_drop(lab, Node::Isp, "forward", "udp dport 5072 drop");
    let down = Instant::now();
    wait_for(
        "host drops its default route while the tunnel is down",
        Duration::from_secs(30),
        || !host_default_route(lab),
    );
    eprintln!(
        "tunnel blocked to host without default route: {} ms",
        down.elapsed().as_millis()
    );
    // The status file is rewritten every second.
    wait_for(
        "gateway status shows the tunnel DOWN",
        Duration::from_secs(5),
        || {
            lab.exec_ok(
                Node::Gw,
                &[BIN, "gateway", "status", "--state-dir", &s.state],
            )
            .ok()
            .filter(|st| st.contains("DOWN"))
        },
    );

    // The tunnel returns: everything recovers with no manual step.
    nft_clear(lab, Node::Isp);
    lab.exec_ok(Node::Isp, &["conntrack", "-F"]).ok();
    wait_for(
        "host's default route returns",
        Duration::from_secs(30),
        || host_default_route(lab),
    );
    wait_for(
        "host reaches the web again",
        Duration::from_secs(30),
        || host_fetches_web(lab),
    );
}

#[test]
fn sighup_with_a_broken_config_keeps_serving_and_sigterm_says_goodbye() {
    if !need_root() {
        return;
    }
    let mut s = setup("gwhup");
    let lab = &s.lab;
    wait_for("host default route", Duration::from_secs(30), || {
        host_default_route(lab)
    });

    // Break the DHCPv6 file and gateway.toml, then SIGHUP: the gateway keeps running.
    let dir = lab.run_dir().to_path_buf();
    std::fs::write(
        dir.join("dhcp6s.conf"),
        "option domain-name-servers not-an-address;\n",
    )
    .unwrap();
    let good = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, "[tunnel\n").unwrap();
    s.gateway.signal(Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        s.gateway.try_wait().unwrap().is_none(),
        "the gateway exited on SIGHUP:\n{}",
        s.gateway.log()
    );
    assert!(host_fetches_web(lab), "service dropped after a bad reload");
    let (_, report) = check(lab, "http://www.v6home.test/");
    assert_eq!(
        verdict(&report, "dhcpv6").0,
        "pass",
        "DHCPv6 kept the old config: {report}"
    );
    std::fs::write(&s.config, good).unwrap();

    // SIGTERM: goodbye RAs (router lifetime 0) and the tunnel goes down.
    s.gateway.signal(Signal::SIGTERM).unwrap();
    let status = s.gateway.wait_timeout(Duration::from_secs(15)).unwrap();
    assert!(
        status.is_some_and(|st| st.success()),
        "gateway did not exit cleanly:\n{}",
        s.gateway.log()
    );
    wait_for(
        "host's default route is gone after the goodbye RAs",
        Duration::from_secs(10),
        || !host_default_route(lab),
    );
    let link = lab
        .exec(Node::Gw, &["ip", "link", "show", "sixxs"])
        .unwrap();
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(
        !link.status.success() || !text.contains("state UP"),
        "sixxs still up: {text}"
    );
}

/// The state of gw that `v6home gateway` may change: forwarding, the LAN address, the TUN.
#[derive(Debug, PartialEq, Eq)]
struct GwState {
    forwarding: String,
    lan_address: bool,
    sixxs: bool,
}

fn gw_state(lab: &Lab) -> GwState {
    let lan = lab
        .exec_ok(Node::Gw, &["ip", "-6", "addr", "show", "dev", "eth0"])
        .unwrap();
    let sixxs = lab
        .exec(Node::Gw, &["ip", "link", "show", "sixxs"])
        .unwrap()
        .status
        .success();
    GwState {
        forwarding: sysctl(lab, Node::Gw, "net.ipv6.conf.all.forwarding"),
        lan_address: lan.contains("2001:db8:1234::1/64"),
        sixxs,
    }
}

/// A lab with the gateway's files in its run dir (as [`setup`], with `[lan] prefix` set and
/// radvd.conf as a file); `edit` changes them before the run. Returns the lab and the path of
/// gateway.toml.
fn files_lab(prefix: &str, edit: impl FnOnce(&std::path::Path)) -> (Lab, String) {
    let lab = Lab::up(&v6h_lab::unique_name(prefix)).unwrap();
    let dir = lab.run_dir().to_path_buf();
    let aiccu = example("aiccu.conf").replace(
        "pidfile /run/v6home/aiccu-lab.pid",
        &format!("pidfile {}", dir.join("aiccu.pid").display()),
    );
    std::fs::write(dir.join("aiccu.conf"), aiccu).unwrap();
    std::fs::write(dir.join("dhcp6s.conf"), example("dhcp6s.conf")).unwrap();
    std::fs::write(
        dir.join("radvd.conf"),
        "interface eth0 {\n    AdvSendAdvert on;\n    MaxRtrAdvInterval 4;\n    \
         prefix 2001:db8:1234::/64 {\n    };\n};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("gateway.toml"),
        "[tunnel]\naiccu_conf = \"aiccu.conf\"\n[lan]\ninterface = \"eth0\"\n\
         prefix = \"2001:db8:1234::/64\"\n[ra]\nradvd_conf = \"radvd.conf\"\n\
         [dhcp6]\ndhcp6s_conf = \"dhcp6s.conf\"\n",
    )
    .unwrap();
    edit(&dir);
    let config = dir.join("gateway.toml").display().to_string();
    (lab, config)
}

/// Runs the gateway on gw until it exits (60 s at most): (exit code, stderr).
fn run_gateway(lab: &Lab, config: &str, extra: &[&str]) -> (Option<i32>, String) {
    let state = lab.run_dir().join("gw-state").display().to_string();
    let mut argv = vec![
        "timeout",
        "60",
        BIN,
        "gateway",
        "--config",
        config,
        "--state-dir",
        &state,
    ];
    argv.extend_from_slice(extra);
    let out = lab.exec(Node::Gw, &argv).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_user_facing(err: &str) {
    for debug in ["Ok(", "Err(", "{ ..", "Invalid {", "Config("] {
        assert!(
            !err.contains(debug),
            "Rust debug text `{debug}` shown to the user:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn gateway_with_a_bad_radvd_conf_changes_nothing() {
    if !need_root() {
        return;
    }
    let (lab, config) = files_lab("gwbadra", |dir| {
        std::fs::write(
            dir.join("radvd.conf"),
            "interface eth0 {\n    AdvSendAdvert on;\n    prefix 2001:db8:1234::/200 {\n    };\n};\n",
        )
        .unwrap();
    });
    let before = gw_state(&lab);
    let (code, err) = run_gateway(&lab, &config, &[]);
    assert_eq!(code, Some(1), "{err}");
    let radvd = lab.run_dir().join("radvd.conf");
    assert!(
        err.contains(&format!("{}:3:28: ", radvd.display())),
        "no file:line:col:\n{err}"
    );
    assert_eq!(err.matches("invalid prefix length 200").count(), 1, "{err}");
    assert_user_facing(&err);
    // Nothing was started: no forwarding change, no TIC login, no address, no TUN.
    assert!(!err.contains("IPv6 forwarding on"), "{err}");
    assert!(!err.contains("tunnel up"), "{err}");
    assert_eq!(gw_state(&lab), before);
}

#[test]
fn gateway_with_a_bad_dhcp6s_conf_changes_nothing() {
    if !need_root() {
        return;
    }
    let (lab, config) = files_lab("gwbaddh", |dir| {
        std::fs::write(
            dir.join("dhcp6s.conf"),
            "option domain-name-servers 2001:db8:ffff::53;\noption domain-name-servers not-an-address;\n",
        )
        .unwrap();
    });
    let before = gw_state(&lab);
    let (code, err) = run_gateway(&lab, &config, &[]);
    assert_eq!(code, Some(1), "{err}");
    let dhcp = lab.run_dir().join("dhcp6s.conf");
    assert!(
        err.contains(&format!("{}:2:", dhcp.display())),
        "no file:line:col:\n{err}"
    );
    assert_user_facing(&err);
    // (aiccu.conf's accepted-but-ignored keys are warned about; nothing else may be.)
    assert!(
        !err.lines()
            .any(|l| l.contains("WARN") && !l.contains("aiccu.conf")),
        "runs on without DHCPv6?\n{err}"
    );
    assert_eq!(gw_state(&lab), before);
}

#[test]
fn gateway_with_a_non_utf8_file_names_the_byte_once() {
    if !need_root() {
        return;
    }
    let (lab, config) = files_lab("gwutf8", |dir| {
        std::fs::write(
            dir.join("aiccu.conf"),
            b"username lab\npassword labpass\nserver 198.51.100.1 # \xe9t\xe9\n",
        )
        .unwrap();
    });
    let before = gw_state(&lab);
    let (code, err) = run_gateway(&lab, &config, &[]);
    assert_eq!(code, Some(1), "{err}");
    let aiccu = lab.run_dir().join("aiccu.conf");
    assert!(
        err.contains(&format!(
            "{}:3:23: invalid UTF-8 (byte 0xE9)",
            aiccu.display()
        )),
        "{err}"
    );
    assert_eq!(err.matches("invalid UTF-8").count(), 1, "{err}");
    assert_eq!(gw_state(&lab), before);
}

#[test]
fn gateway_rolls_back_when_a_later_step_fails() {
    if !need_root() {
        return;
    }
    let (lab, config) = files_lab("gwroll", |_| {});
    let broker = start_broker(&lab, &broker_conf(&lab));
    let before = gw_state(&lab);
    assert_eq!(
        before.forwarding, "0",
        "the lab's gw starts without forwarding"
    );
    // The last start-up step fails: the metrics address is on no interface of gw. By then
    // forwarding is on, the tunnel is up, the LAN address is set and RAs are going out.
    let (code, err) = run_gateway(&lab, &config, &["--metrics", "192.0.2.1:9641"]);
    eprintln!("{err}");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("tunnel up"), "did not get that far:\n{err}");
    assert!(
        err.contains("v6home: error: serving metrics on 192.0.2.1:9641: "),
        "{err}"
    );
    assert!(err.contains("undoing what was changed"), "{err}");
    assert_user_facing(&err);
    assert_eq!(gw_state(&lab), before, "gw not restored:\n{err}");
    drop(broker);
}

#[test]
fn second_gateway_on_one_state_dir_is_refused() {
    if !need_root() {
        return;
    }
    let mut s = setup("gwtwice");
    wait_for("the first gateway is up", Duration::from_secs(30), || {
        s.gateway.log().contains("gateway ready")
    });
    let lab = &s.lab;
    let out = lab
        .exec(
            Node::Gw,
            &[
                "timeout",
                "30",
                BIN,
                "gateway",
                "--config",
                &s.config,
                "--state-dir",
                &s.state,
            ],
        )
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gateway.pid: already in use by a running instance (pid "),
        "{err}"
    );
    // The first one is untouched.
    assert!(host_default_route(lab) || wait_until_route(lab));
    assert!(s.gateway.try_wait().unwrap().is_none());
}

fn wait_until_route(lab: &Lab) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if host_default_route(lab) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

/// `v6home gateway status --json` on gw.
fn status_json(lab: &Lab, state: &str) -> serde_json::Value {
    let out = lab
        .exec_ok(
            Node::Gw,
            &[BIN, "gateway", "status", "--json", "--state-dir", state],
        )
        .unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
}

/// The RDNSS servers with a non-zero lifetime in one RA from gw, as host's rdisc6 prints
/// them (servers withdrawn by a reload are sent with lifetime 0 for a while and left out).
fn rdisc6_rdnss(lab: &Lab) -> Vec<String> {
    let Ok(out) = lab.exec(
        Node::Host,
        &["rdisc6", "-1", "-r", "3", "-w", "1500", "eth0"],
    ) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let value = |l: &str| l.split_once(':').map(|(_, v)| v.trim().to_string());
    let mut servers = Vec::new();
    let mut current: Option<String> = None;
    for l in text.lines().map(str::trim) {
        if l.starts_with("Recursive DNS server") {
            current = value(l);
        } else if l.starts_with("DNS server lifetime")
            && let Some(server) = current.take()
        {
            let secs = value(l).and_then(|v| v.split_whitespace().next().map(str::to_string));
            if secs.as_deref() != Some("0") {
                servers.push(server);
            }
        }
    }
    servers
}

#[test]
fn sighup_applies_a_changed_inline_rdnss_and_keeps_tunnel_leases_and_ras() {
    if !need_root() {
        return;
    }
    // A stateful DHCPv6 pool, so that a lease can be watched across the reload.
    let dhcp6s = "option domain-name-servers 2001:db8:ffff::53;\n\
                  pool lan { range 2001:db8:1234::1000 to 2001:db8:1234::10ff; };\n\
                  interface eth0 { address-pool lan 3600 7200; };\n";
    let mut s = setup_with("gwrl", GATEWAY_TOML, dhcp6s);
    let lab = &s.lab;
    assert!(
        common::wait_until(Duration::from_secs(30), || host_default_route(lab)),
        "no default route on host; gateway log:\n{}",
        s.gateway.log()
    );
    let ifindex = || {
        lab.exec_ok(Node::Gw, &["cat", "/sys/class/net/sixxs/ifindex"])
            .unwrap()
            .trim()
            .to_string()
    };
    let sixxs_before = ifindex();
    assert_eq!(
        rdisc6_rdnss(lab),
        ["2001:db8:ffff::53"],
        "the inline RDNSS before the reload"
    );

    // A DHCPv6 lease for host (dhclient -6, IA_NA).
    let dir = lab.run_dir().to_path_buf();
    let lf = dir.join("host.leases");
    let mut client = lab
        .spawn(
            Node::Host,
            &[
                "timeout",
                "20",
                "dhclient",
                "-6",
                "-v",
                "-d",
                "-1",
                "-lf",
                lf.to_str().unwrap(),
                "-pf",
                dir.join("dhclient.pid").to_str().unwrap(),
                "eth0",
            ],
        )
        .unwrap();
    let lease_file = format!("{}/dhcp6-leases", s.state);
    let leases = || {
        let out = lab
            .exec_ok(
                Node::Gw,
                &[
                    BIN,
                    "dhcp6",
                    "leases",
                    "--json",
                    "--lease-file",
                    &lease_file,
                ],
            )
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let before = wait_for("a DHCPv6 lease", Duration::from_secs(20), || {
        let l = leases();
        (l.as_array().is_some_and(|a| !a.is_empty())).then_some(l)
    });
    let leased = before[0]["lease"].as_str().unwrap().to_string();
    let _ = client.stop();
    wait_for(
        "the lease in gateway status --json",
        Duration::from_secs(5),
        || {
            let st = status_json(lab, &s.state);
            (st["dhcp6"]["leases_bound"].as_u64() == Some(1)).then_some(())
        },
    );
    let st = status_json(lab, &s.state);
    let ra_before = st["ra_multicast"].as_u64().unwrap();

    // Capture RAs on host across the reload, to measure the longest gap.
    let pcap = dir.join("ras.pcap");
    let mut cap = common::capture(lab, Node::Host, "eth0", "icmp6 and ip6[40] == 134", &pcap);
    std::thread::sleep(Duration::from_secs(5));

    // Change the inline RDNSS; SIGHUP the gateway (the PID this test started).
    let text = std::fs::read_to_string(&s.config).unwrap();
    let changed = text.replace("2001:db8:ffff::53", "2001:db8:ffff::54");
    assert_ne!(text, changed);
    std::fs::write(&s.config, &changed).unwrap();
    let hup = Instant::now();
    s.gateway.signal(Signal::SIGHUP).unwrap();
    let seen = wait_for("host sees the new RDNSS", Duration::from_secs(20), || {
        let r = rdisc6_rdnss(lab);
        r.contains(&"2001:db8:ffff::54".to_string()).then_some(r)
    });
    eprintln!(
        "reload: SIGHUP to new RDNSS in rdisc6: {} ms ({seen:?})",
        hup.elapsed().as_millis()
    );
    std::thread::sleep(Duration::from_secs(6));
    let _ = cap.stop();
    let times: Vec<f64> = common::tshark_fields(
        lab,
        Node::Host,
        &pcap,
        "icmpv6.type == 134 && ipv6.dst == ff02::1",
        &["frame.time_relative"],
    )
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect();
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    eprintln!(
        "reload: {} multicast RAs in the capture, longest gap {gap:.2} s (MaxRtrAdvInterval 4)",
        times.len()
    );
    assert!(times.len() >= 3, "RAs stopped around the reload: {times:?}");
    assert!(gap <= 4.5, "RA gap {gap} s across the reload: {times:?}");

    // The tunnel was not touched; the lease survived; the gateway counted the reload.
    assert_eq!(
        ifindex(),
        sixxs_before,
        "the tunnel interface was recreated"
    );
    assert!(host_fetches_web(lab), "no service after the reload");
    let after = leases();
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["lease"] == leased.as_str()),
        "lease {leased} lost: {after}"
    );
    let st = wait_for("the reload in the status", Duration::from_secs(5), || {
        Some(status_json(lab, &s.state)).filter(|st| st["reloads"] == 1)
    });
    assert_eq!(st["dhcp6"]["leases_bound"], 1, "{st}");
    assert!(st["ra_multicast"].as_u64().unwrap() > ra_before, "{st}");
    assert_eq!(st["running"], true, "{st}");
    eprintln!("reload: lease {leased} kept; tunnel ifindex {sixxs_before} unchanged");

    // A bad gateway.toml: the error names file:line:col, the old (new) RDNSS stays.
    let bad = changed.replace("router_lifetime = 90", "router_lifetime = \"ninety\"");
    assert_ne!(bad, changed);
    std::fs::write(&s.config, &bad).unwrap();
    s.gateway.signal(Signal::SIGHUP).unwrap();
    let line = bad.lines().position(|l| l.contains("ninety")).unwrap() + 1;
    let needle = format!("{}:{line}:", s.config);
    let log = wait_for(
        "the reload error in the log",
        Duration::from_secs(5),
        || {
            let log = s.gateway.log();
            log.contains(&needle).then_some(log)
        },
    );
    assert!(log.contains("the running configuration stays"), "{log}");
    assert!(
        s.gateway.try_wait().unwrap().is_none(),
        "the gateway exited on a bad reload:\n{log}"
    );
    assert_eq!(rdisc6_rdnss(lab), ["2001:db8:ffff::54"]);
    // The status file is rewritten every second.
    wait_for(
        "the refused reload in the status",
        Duration::from_secs(5),
        || Some(status_json(lab, &s.state)).filter(|st| st["reload_failures"] == 1),
    );
    assert_eq!(ifindex(), sixxs_before);
}

/// SIGHUP after aiccu.conf changed (here `verbose`): the gateway logs in with the new
/// settings, closes the old tunnel and brings up a new one (a new TUN, so a new ifindex); host
/// is back online by itself, the RAs went on and the DHCPv6 server kept running.
#[test]
fn sighup_with_changed_tunnel_settings_reestablishes_the_tunnel() {
    if !need_root() {
        return;
    }
    let s = setup("gwtun");
    let lab = &s.lab;
    assert!(
        common::wait_until(Duration::from_secs(30), || host_fetches_web(lab)),
        "no connectivity; gateway log:\n{}",
        s.gateway.log()
    );
    let ifindex = || {
        lab.exec_ok(Node::Gw, &["cat", "/sys/class/net/sixxs/ifindex"])
            .ok()
            .map(|s| s.trim().to_string())
    };
    let before = ifindex().unwrap();
    let aiccu = lab.run_dir().join("aiccu.conf");
    let text = std::fs::read_to_string(&aiccu).unwrap();
    assert!(text.contains("verbose false"), "{text}");
    std::fs::write(&aiccu, text.replace("verbose false", "verbose true")).unwrap();
    let hup = Instant::now();
    s.gateway.signal(Signal::SIGHUP).unwrap();
    let log = wait_for("the tunnel re-established", Duration::from_secs(20), || {
        let log = s.gateway.log();
        log.contains("tunnel re-established").then_some(log)
    });
    let after = wait_for("the new tunnel interface", Duration::from_secs(5), || {
        ifindex().filter(|i| *i != before)
    });
    assert!(
        common::wait_until(Duration::from_secs(30), || host_fetches_web(lab)),
        "no connectivity after the tunnel was re-established:\n{log}"
    );
    eprintln!(
        "tunnel re-established: sixxs ifindex {before} -> {after}; host fetched the web again {} ms after SIGHUP",
        hup.elapsed().as_millis()
    );
    // The status file is rewritten every second.
    let st = wait_for("the reload in the status", Duration::from_secs(5), || {
        Some(status_json(lab, &s.state)).filter(|st| st["reloads"] == 1)
    });
    assert_eq!(st["last_reload"], "applied", "{st}");
    assert_eq!(st["tunnel_id"], "T1", "{st}");
    assert_eq!(st["tunnel_changes"], 1, "{st}");
    assert_eq!(st["running"], true, "{st}");
    let (_, report) = check(lab, "http://www.v6home.test/");
    assert_eq!(report["ok"], true, "{report}");
}

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
    let lab = Lab::up(&v6h_lab::unique_name(prefix)).unwrap();
    let dir = lab.run_dir().to_path_buf();
    let broker_conf = broker_conf(&lab);
    let aiccu = example("aiccu.conf").replace(
        "pidfile /run/v6home/aiccu-lab.pid",
        &format!("pidfile {}", dir.join("aiccu.pid").display()),
    );
    std::fs::write(dir.join("aiccu.conf"), aiccu).unwrap();
    std::fs::write(dir.join("dhcp6s.conf"), example("dhcp6s.conf")).unwrap();
    // RAs every few seconds so that state changes show quickly.
    std::fs::write(
        dir.join("gateway.toml"),
        r#"
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
"#,
    )
    .unwrap();
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
    assert!(!err.contains("WARN"), "runs on without DHCPv6?\n{err}");
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

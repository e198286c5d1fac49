//! `v6home gateway` end to end in the lab (root only): one process and one config bring up the
//! tunnel, forwarding, RAs and DHCPv6; the RAs follow the tunnel's state; SIGHUP with a broken
//! config keeps the service; SIGTERM sends the goodbye RAs.

use std::time::{Duration, Instant};

use common::{
    BIN, broker_conf, check, curl, default_route, example, need_root, nft_clear, nft_drop,
    start_broker, sysctl, verdict, wait_for,
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

//! The demo end to end (root only), and `v6home check` failing for the right reason when a part
//! of the home setup breaks: no RA, no tunnel, DNS unreachable, an MTU black hole.

use std::process::Command;
use std::time::Duration;

use common::{
    BIN, agent_route_src, check, curl, default_route, need_root, nft_clear, nft_drop, poll,
    start_privacy_agent, verdict, wait_for,
};
use v6h_lab::{Lab, Node, Signal, addr};

mod common;

/// Runs the demo with `--keep` and returns a handle that tears the lab down on drop.
fn demo_kept(prefix: &str) -> Lab {
    let name = v6h_lab::unique_name(prefix);
    let out = Command::new(BIN)
        .args(["lab", "demo", "--keep", "--name", &name])
        .env("V6HOME_LOG", "warn")
        .output()
        .unwrap();
    // `Lab::up` adopts the kept lab as it is, and removes it when dropped, pass or fail.
    let lab = Lab::up(&name).unwrap();
    assert!(
        out.status.success(),
        "demo failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    lab
}

fn web_url() -> String {
    format!("http://{}/", addr::WEB_NAME)
}

#[test]
fn demo_runs_green_and_check_passes() {
    if !need_root() {
        return;
    }
    let lab = demo_kept("demo");
    let (ok, report) = check(&lab, &web_url());
    assert!(ok, "{report}");
    for id in [
        "address",
        "route",
        "ra",
        "dhcpv6",
        "dns",
        "source",
        "ping",
        "http-name",
        "http-literal",
        "pmtu",
    ] {
        assert_eq!(verdict(&report, id).0, "pass", "{id}: {report}");
    }
    let (_, pmtu) = verdict(&report, "pmtu");
    assert!(pmtu.contains("1280 bytes"), "{pmtu}");
    // The literal URL form works as it is, no -g needed.
    let (ok, _) = check(&lab, "http://[2001:db8:ffff::80]:80/");
    assert!(ok);
}

#[test]
fn check_names_the_cause_of_each_failure() {
    if !need_root() {
        return;
    }
    let lab = demo_kept("fail");

    // DNS unreachable: inet drops DNS.
    nft_drop(&lab, Node::Inet, "input", "udp dport 53 drop");
    let (ok, report) = check(&lab, &web_url());
    assert!(!ok);
    let (v, why) = verdict(&report, "dns");
    assert_eq!(v, "fail", "{why}");
    assert!(why.contains("no answer from 2001:db8:ffff::53"), "{why}");
    nft_clear(&lab, Node::Inet);

    // MTU black hole: host never hears the Packet Too Big that gw sends.
    nft_drop(&lab, Node::Host, "input", "icmpv6 type packet-too-big drop");
    lab.exec_ok(Node::Host, &["ip", "-6", "route", "flush", "cache"])
        .unwrap();
    let (ok, report) = check(&lab, "http://[2001:db8:ffff::80]/");
    assert!(!ok);
    let (v, why) = verdict(&report, "pmtu");
    assert_eq!(v, "fail", "{why}");
    assert!(why.contains("black hole"), "{why}");
    nft_clear(&lab, Node::Host);

    // No tunnel: the modem drops AYIYA; the gateway notices and withdraws the default route.
    nft_drop(&lab, Node::Isp, "forward", "udp dport 5072 drop");
    wait_for(
        "host drops its default route",
        Duration::from_secs(30),
        || !default_route(&lab, Node::Host).contains("via"),
    );
    let (ok, report) = check(&lab, "http://[2001:db8:ffff::80]/");
    assert!(!ok);
    let (v, why) = verdict(&report, "route");
    assert_eq!(v, "fail", "{why}");
    assert!(why.contains("router lifetime 0"), "{why}");
    let (v, why) = verdict(&report, "ra");
    assert_eq!(v, "warn", "{why}");
    assert!(why.contains("tunnel may be down"), "{why}");
    let (v, why) = verdict(&report, "http-literal");
    assert_eq!(v, "fail", "{why}");

    // No RA: stop the gateway on gw; it sends its goodbye RAs, then exits. Signalled by the
    // PID the demo recorded (never by name: that would also hit gateways outside this lab).
    let gateway = lab.recorded_pid(Node::Gw, "gateway").unwrap();
    lab.signal_pid(Node::Gw, gateway, Signal::SIGTERM).unwrap();
    wait_for("the gateway exits", Duration::from_secs(20), || {
        !lab.pids(Node::Gw).contains(&gateway)
    });
    let (ok, report) = check(&lab, "http://[2001:db8:ffff::80]/");
    assert!(!ok);
    let (v, why) = verdict(&report, "ra");
    assert_eq!(v, "fail", "{why}");
    assert!(why.contains("no answer to a Router Solicitation"), "{why}");
    let (v, why) = verdict(&report, "route");
    assert_eq!(v, "fail", "{why}");
}

#[test]
fn privacy_agent_temporary_is_the_source_toward_inet() {
    if !need_root() {
        return;
    }
    let lab = demo_kept("agent");
    let agent = start_privacy_agent(&lab, &lab.run_dir().join("agent-state"), &[]);
    // Ask gw for an RA now rather than waiting for the next periodic one.
    let temporary = poll(Duration::from_secs(40), || {
        let _ = lab.exec(Node::Host, &["rdisc6", "-1", "-w", "500", "eth0"]);
        agent_route_src(&lab, "default")
    })
    .unwrap_or_else(|| {
        panic!(
            "the agent installed no default route with a source:\n{}",
            agent.log()
        )
    });
    // A real fetch from the IPv6 internet, through the gateway and the tunnel: the web server
    // on inet sees the agent's temporary address.
    let page = curl(&lab, Node::Host, "http://[2001:db8:ffff::80]/", 5).expect("host fetches");
    assert!(page.contains(&format!("You are {temporary}")), "{page}");
    let log = std::fs::read_to_string(lab.http_log()).unwrap();
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with(&format!("{temporary} ")), "{last}");
    // It is the agent's address, not one of the kernel's (whose SLAAC is now off).
    let kernel_temps = lab
        .exec_ok(
            Node::Host,
            &["ip", "-6", "-o", "addr", "show", "dev", "eth0", "temporary"],
        )
        .unwrap();
    assert!(
        !kernel_temps.contains(&format!("{temporary}/")),
        "{kernel_temps}"
    );
}

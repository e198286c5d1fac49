//! The demo end to end (root only), and `v6home check` failing for the right reason when a part
//! of the home setup breaks: no RA, no tunnel, DNS unreachable, an MTU black hole.

use std::process::Command;
use std::time::Duration;

use v6h_lab::{Lab, Node, addr};

const BIN: &str = env!("CARGO_BIN_EXE_v6home");

fn need_root() -> bool {
    if v6h_lab::is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the lab tests are not running as root"
    );
    eprintln!("skipping: the lab tests need root");
    false
}

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

/// Runs `v6home check --json` on host and returns (exit ok, parsed report).
fn check(lab: &Lab, url: &str) -> (bool, serde_json::Value) {
    let out = lab
        .exec(
            Node::Host,
            &[BIN, "check", "--json", "--wait", "1", "--url", url],
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

fn verdict<'a>(report: &'a serde_json::Value, id: &str) -> (&'a str, String) {
    let line = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} line in {report}"));
    (
        line["verdict"].as_str().unwrap(),
        format!("{} / {}", line["detail"], line["hint"]),
    )
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
    lab.exec_ok(
        Node::Inet,
        &["sh", "-c", "nft add table inet v6h_t && nft 'add chain inet v6h_t in { type filter hook input priority 0; }' && nft add rule inet v6h_t in udp dport 53 drop"],
    )
    .unwrap();
    let (ok, report) = check(&lab, &web_url());
    assert!(!ok);
    let (v, why) = verdict(&report, "dns");
    assert_eq!(v, "fail", "{why}");
    assert!(why.contains("no answer from 2001:db8:ffff::53"), "{why}");
    lab.exec_ok(Node::Inet, &["nft", "delete table inet v6h_t"])
        .unwrap();

    // MTU black hole: host never hears the Packet Too Big that gw sends.
    lab.exec_ok(
        Node::Host,
        &["sh", "-c", "nft add table inet v6h_t && nft 'add chain inet v6h_t in { type filter hook input priority 0; }' && nft add rule inet v6h_t in icmpv6 type packet-too-big drop && ip -6 route flush cache"],
    )
    .unwrap();
    let (ok, report) = check(&lab, "http://[2001:db8:ffff::80]/");
    assert!(!ok);
    let (v, why) = verdict(&report, "pmtu");
    assert_eq!(v, "fail", "{why}");
    assert!(why.contains("black hole"), "{why}");
    lab.exec_ok(Node::Host, &["nft", "delete table inet v6h_t"])
        .unwrap();

    // No tunnel: the modem drops AYIYA; the gateway notices and withdraws the default route.
    lab.exec_ok(
        Node::Isp,
        &[
            "sh",
            "-c",
            "nft add table inet v6h_t && nft 'add chain inet v6h_t filt { type filter hook forward priority 0; }' && nft add rule inet v6h_t filt udp dport 5072 drop",
        ],
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lab
        .exec_ok(Node::Host, &["ip", "-6", "route", "show", "default"])
        .unwrap()
        .contains("via")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "host kept its default route"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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

    // No RA: stop the gateway on gw; it sends its goodbye RAs, then exits.
    lab.exec_ok(Node::Gw, &["pkill", "-TERM", "-f", "gateway --config"])
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lab
        .exec(Node::Gw, &["pgrep", "-f", "gateway --config"])
        .unwrap()
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not exit"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let state = lab.run_dir().join("agent-state");
    let state = state.to_string_lossy().to_string();
    let agent = lab
        .spawn(
            Node::Host,
            &[
                BIN,
                "privacy",
                "agent",
                "--iface",
                "eth0",
                "--state-dir",
                &state,
                "--preferred-lifetime",
                "60s",
                "--valid-lifetime",
                "5m",
                "--force",
            ],
        )
        .unwrap();
    // Ask gw for an RA now rather than waiting for the next periodic one.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let temporary = loop {
        let _ = lab.exec(Node::Host, &["rdisc6", "-1", "-w", "500", "eth0"]);
        let routes = lab
            .exec_ok(
                Node::Host,
                &["ip", "-6", "route", "show", "default", "proto", "118"],
            )
            .unwrap();
        let toks: Vec<&str> = routes.split_whitespace().collect();
        if let Some(src) = toks
            .iter()
            .position(|t| *t == "src")
            .and_then(|i| toks.get(i + 1))
        {
            break src.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent installed no default route with a source:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // A real fetch from the IPv6 internet, through the gateway and the tunnel: the web server
    // on inet sees the agent's temporary address.
    let page = lab
        .exec_ok(
            Node::Host,
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://[2001:db8:ffff::80]/",
            ],
        )
        .unwrap();
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

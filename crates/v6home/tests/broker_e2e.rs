//! End-to-end tests of live registry management on a running `v6home broker` (pop) with real
//! `v6home tunnel` clients (gw, behind the NAT): `broker tunnel add/del/disable/enable` write
//! to the database and the PoP follows within a second, with no restart; a refused change
//! leaves the running registry alone; SIGHUP reconciles leftover routes on ayiya0.
//!
//! Traffic is a 20 ms `ping -D` from gw to the PoP's tunnel address (`…::1`) through the
//! tunnel; times are taken from ping's own timestamps against the wall clock around the CLI.
//! The figures are printed (`cargo test -p v6home --test broker_e2e -- --nocapture`).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{BIN, broker_cli, broker_conf, example, lab_or_skip, start_broker, wait_for};
use v6h_lab::{Lab, LabChild, Node};

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Timestamps (Unix seconds) of the echo replies in a `ping -D` log.
fn reply_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

/// A `ping -D -i 0.02` from gw to `dst`, source `src`.
fn pinger(lab: &Lab, src: &str, dst: &str) -> LabChild {
    lab.spawn(
        Node::Gw,
        &["ping", "-D", "-n", "-i", "0.02", "-W", "1", "-I", src, dst],
    )
    .expect("spawn ping")
}

/// The first reply at or after `t` (Unix seconds), waiting up to `timeout`.
fn first_reply_after(p: &LabChild, t: f64, timeout: Duration) -> Option<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = reply_times(&p.log()).into_iter().find(|r| *r >= t) {
            return Some(r);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no reply has come for `quiet`, then returns the last reply's time.
fn last_reply_once_quiet(p: &LabChild, quiet: Duration, timeout: Duration) -> Option<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = reply_times(&p.log()).last().copied();
        if let Some(l) = last
            && now_unix() - l > quiet.as_secs_f64()
        {
            return Some(l);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn routes(lab: &Lab) -> String {
    lab.exec_ok(Node::Pop, &["ip", "-6", "route", "show", "dev", "ayiya0"])
        .unwrap()
}

/// Runs a registry command and returns (stdout, wall time when it started).
fn timed_cli(conf: &Path, args: &[&str]) -> (String, f64) {
    let t = now_unix();
    (broker_cli(conf, args), t)
}

/// aiccu.conf for `tid` on its own interface and pidfile, without the default route.
fn client_conf(lab: &Lab, tid: &str, iface: &str) -> PathBuf {
    let text = example("aiccu.conf")
        .replace("tunnel_id T1", &format!("tunnel_id {tid}"))
        .replace("ipv6_interface sixxs", &format!("ipv6_interface {iface}"))
        .replace("defaultroute true", "defaultroute false")
        .replace(
            "pidfile /run/v6home/aiccu-lab.pid",
            &format!(
                "pidfile {}",
                lab.run_dir().join(format!("{iface}.pid")).display()
            ),
        );
    let p = lab.run_dir().join(format!("aiccu-{tid}.conf"));
    std::fs::write(&p, text).unwrap();
    p
}

fn start_client(lab: &Lab, conf: &Path, tid: &str) -> LabChild {
    let c = lab
        .spawn(
            Node::Gw,
            &[BIN, "tunnel", "start", "--config", conf.to_str().unwrap()],
        )
        .expect("spawn client");
    c.wait_for_log(&format!("tunnel {tid} up"), Duration::from_secs(15))
        .expect("client up");
    c
}

fn status_ids(lab: &Lab, conf: &Path) -> Vec<String> {
    let out = lab
        .exec_ok(
            Node::Pop,
            &[
                BIN,
                "broker",
                "--config",
                conf.to_str().unwrap(),
                "status",
                "--json",
            ],
        )
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["tunnels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn registry_changes_reach_the_running_pop_within_a_second() {
    let Some(lab) = lab_or_skip("brk") else {
        return;
    };
    let bconf = broker_conf(&lab);
    let broker = start_broker(&lab, &bconf);
    let c1 = client_conf(&lab, "T1", "sixxs");
    let _client1 = start_client(&lab, &c1, "T1");

    // --- tunnel add: served (route on ayiya0, listed over TIC) without a restart.
    let (out, t_add) = timed_cli(&bconf, &["tunnel", "add", "--user", "lab"]);
    assert!(out.contains("tunnel_id T2\n"), "{out}");
    assert!(
        !out.contains("protocol") && !out.contains("automatic"),
        "{out}"
    );
    assert!(
        out.contains("[tunnel]\n") && out.contains("tunnel_id = \"T2\""),
        "{out}"
    );
    wait_for("T2's route on ayiya0", Duration::from_secs(5), || {
        routes(&lab).contains("2001:db8:2ff:2::/64")
    });
    let add_to_route = now_unix() - t_add;
    let c2 = client_conf(&lab, "T2", "sixxs2");
    wait_for("T2 listed over TIC", Duration::from_secs(5), || {
        lab.exec_ok(
            Node::Gw,
            &[BIN, "tunnel", "tunnels", "--config", c2.to_str().unwrap()],
        )
        .is_ok_and(|l| l.contains("T2 2001:db8:2ff:2::2"))
    });
    let add_to_tic = now_unix() - t_add;
    let client2 = start_client(&lab, &c2, "T2");
    let ping2 = pinger(&lab, "2001:db8:2ff:2::2", "2001:db8:2ff:2::1");
    let flow2 =
        first_reply_after(&ping2, t_add, Duration::from_secs(10)).expect("T2 carries traffic");
    let add_to_flow = flow2 - t_add;

    // --- a bad change is refused with a clear error; the running registry stays.
    let bad = std::process::Command::new(BIN)
        .args(["broker", "--config", bconf.to_str().unwrap()])
        .args([
            "tunnel",
            "add",
            "--user",
            "lab",
            "--subnet",
            "2001:db8:1234:7::/64",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("overlaps 2001:db8:1234::/48 of T1"),
        "{err}"
    );
    let bad = std::process::Command::new(BIN)
        .args(["broker", "--config", bconf.to_str().unwrap()])
        .args(["tunnel", "add", "--user", "nobody"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown user \"nobody\""));

    // --- tunnel del: traffic stops, the routes, address and table entry go.
    let (_, t_del) = timed_cli(&bconf, &["tunnel", "del", "T2"]);
    wait_for(
        "T2's route gone from ayiya0",
        Duration::from_secs(5),
        || !routes(&lab).contains("2001:db8:2ff:2::/64"),
    );
    let del_to_route_gone = now_unix() - t_del;
    let last = last_reply_once_quiet(&ping2, Duration::from_secs(1), Duration::from_secs(10))
        .expect("T2 traffic stops");
    let del_to_stop = (last - t_del).max(0.0);
    let addrs = lab
        .exec_ok(Node::Pop, &["ip", "-6", "addr", "show", "dev", "ayiya0"])
        .unwrap();
    assert!(!addrs.contains("2001:db8:2ff:2::1"), "{addrs}");
    wait_for("T2 gone from the PoP table", Duration::from_secs(3), || {
        let ids = status_ids(&lab, &bconf);
        !ids.is_empty() && !ids.contains(&"T2".to_string())
    });
    drop(ping2);
    drop(client2);

    // --- disable / enable T1 (the client keeps running).
    let ping1 = pinger(&lab, "2001:db8:2ff:1::2", "2001:db8:2ff:1::1");
    first_reply_after(&ping1, now_unix(), Duration::from_secs(5)).expect("T1 carries traffic");
    let (_, t_off) = timed_cli(&bconf, &["tunnel", "disable", "T1"]);
    let last = last_reply_once_quiet(&ping1, Duration::from_secs(1), Duration::from_secs(10))
        .expect("T1 traffic stops when disabled");
    let disable_to_stop = (last - t_off).max(0.0);
    assert!(!routes(&lab).contains("2001:db8:2ff:1::/64"));
    let (_, t_on) = timed_cli(&bconf, &["tunnel", "enable", "T1"]);
    let back = first_reply_after(&ping1, t_on, Duration::from_secs(10)).expect("T1 flows again");
    let enable_to_flow = back - t_on;
    assert!(routes(&lab).contains("2001:db8:1234::/48"));

    // --- reconcile: a leftover route on ayiya0 (as after a crash) goes on SIGHUP.
    lab.exec_ok(
        Node::Pop,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:2ff:99::/64",
            "dev",
            "ayiya0",
            "proto",
            "static",
        ],
    )
    .unwrap();
    broker.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for("leftover route removed", Duration::from_secs(3), || {
        !routes(&lab).contains("2001:db8:2ff:99::/64")
    });
    assert!(broker.log().contains("SIGHUP: reloading the registry"));

    // list/show --json.
    let list: serde_json::Value =
        serde_json::from_str(&broker_cli(&bconf, &["tunnel", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let show: serde_json::Value =
        serde_json::from_str(&broker_cli(&bconf, &["tunnel", "show", "T1", "--json"])).unwrap();
    assert_eq!(show["admin"], "enabled");
    assert!(show.get("password").is_none(), "no secret in show: {show}");

    eprintln!(
        "broker registry e2e: add->route {:.0} ms, add->TIC {:.0} ms, add->traffic (incl. client \
         start) {:.0} ms, del->traffic stopped {:.0} ms, del->route gone {:.0} ms, \
         disable->stopped {:.0} ms, enable->traffic {:.0} ms",
        add_to_route * 1e3,
        add_to_tic * 1e3,
        add_to_flow * 1e3,
        del_to_stop * 1e3,
        del_to_route_gone * 1e3,
        disable_to_stop * 1e3,
        enable_to_flow * 1e3,
    );
    assert!(add_to_route < 1.0, "add->route {add_to_route:.3} s");
    assert!(del_to_stop < 1.0, "del->stop {del_to_stop:.3} s");
    assert!(
        del_to_route_gone < 1.0,
        "del->route gone {del_to_route_gone:.3} s"
    );
    assert!(
        disable_to_stop < 1.0,
        "disable->stop {disable_to_stop:.3} s"
    );
}

#[test]
fn broker_refuses_registry_tables_in_broker_toml() {
    let Some(lab) = lab_or_skip("brt") else {
        return;
    };
    let conf = broker_conf(&lab);
    // An old-style broker.toml: settings plus the registry tables.
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&example("registry.toml"));
    std::fs::write(&conf, text).unwrap();
    let out = lab
        .exec(
            Node::Pop,
            &[BIN, "broker", "--config", conf.to_str().unwrap()],
        )
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("import {}", conf.display())) && err.contains("password-equivalent"),
        "{err}"
    );
    // The import it names works, and is idempotent.
    broker_cli(&conf, &["import", conf.to_str().unwrap()]);
    let list = broker_cli(&conf, &["user", "list", "--json"]);
    assert!(list.contains("\"lab\""), "{list}");
}

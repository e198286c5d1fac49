//! End-to-end tests of the lab itself (root only): topology, NAT, isolation and clean-up.

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, curl, need_root, sysctl, wait_for};
use v6h_lab::{Lab, Node, addr};

mod common;

fn namespaces_of(name: &str) -> Vec<String> {
    v6h_lab::existing_namespaces(name).unwrap()
}

/// The page of inet's web server, fetched from pop over IPv6 (pop -> inet is direct).
fn web_page_from_pop(lab: &Lab) -> String {
    curl(lab, Node::Pop, "http://[2001:db8:ffff::80]/", 3).expect("pop fetches inet's page")
}

fn root_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let mut links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|s| s.trim().to_string()))
        .collect();
    links.sort();
    links
}

#[test]
fn up_builds_every_node_and_drop_removes_everything() {
    if !need_root() {
        return;
    }
    let name = v6h_lab::unique_name("updown");
    let before = root_links();
    {
        let lab = Lab::up(&name).unwrap();
        assert_eq!(namespaces_of(&name).len(), 6);
        let gw = lab.exec_ok(Node::Gw, &["ip", "-br", "addr"]).unwrap();
        assert!(gw.contains("192.0.2.2/24"), "{gw}");
        let inet = lab.exec_ok(Node::Inet, &["ip", "-br", "addr"]).unwrap();
        assert!(inet.contains("2001:db8:ffff::80/128"), "{inet}");
        // The home's IPv6 settings: host does SLAAC with temporaries, gw does not.
        assert_eq!(
            sysctl(&lab, Node::Host, "net.ipv6.conf.eth0.use_tempaddr"),
            "2"
        );
        // The modem has no IPv6 at all.
        assert_eq!(
            sysctl(&lab, Node::Isp, "net.ipv6.conf.eth1.disable_ipv6"),
            "1"
        );
        assert_eq!(
            root_links(),
            before,
            "the lab must not create links in the host"
        );
    }
    assert!(namespaces_of(&name).is_empty());
    assert_eq!(root_links(), before);
    assert!(!std::path::Path::new(v6h_lab::RUN_ROOT).join(&name).exists());
}

#[test]
fn a_test_that_panics_still_tears_down() {
    if !need_root() {
        return;
    }
    let name = v6h_lab::unique_name("panic");
    let n2 = name.clone();
    let result = std::panic::catch_unwind(move || {
        let _lab = Lab::up(&n2).unwrap();
        assert_eq!(namespaces_of(&n2).len(), 6);
        panic!("deliberate panic mid-test");
    });
    assert!(result.is_err());
    assert!(namespaces_of(&name).is_empty());
}

#[test]
fn a_killed_lab_up_is_cleaned_by_lab_down() {
    if !need_root() {
        return;
    }
    let name = v6h_lab::unique_name("killed");
    for delay_ms in [30, 150] {
        let mut child = Command::new(BIN)
            .args(["lab", "up", "--name", &name])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = Command::new(BIN)
            .args(["lab", "down", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            namespaces_of(&name).is_empty(),
            "after a kill at {delay_ms} ms"
        );
    }
    // And `lab up` after a crash works again.
    let out = Command::new(BIN)
        .args(["lab", "up", "--name", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(BIN)
        .args(["lab", "down", &name])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(namespaces_of(&name).is_empty());
}

#[test]
fn lab_up_is_idempotent() {
    if !need_root() {
        return;
    }
    let name = v6h_lab::unique_name("idem");
    let lab = Lab::up(&name).unwrap();
    let gw_mac = lab
        .exec_ok(Node::Gw, &["cat", "/sys/class/net/eth0/address"])
        .unwrap();
    let started = Instant::now();
    let mut again = Lab::up(&name).unwrap();
    again.keep();
    assert!(started.elapsed() < Duration::from_secs(2));
    // Reused as it was: same interfaces, servers still answering.
    let gw_mac2 = lab
        .exec_ok(Node::Gw, &["cat", "/sys/class/net/eth0/address"])
        .unwrap();
    assert_eq!(gw_mac, gw_mac2);
    web_page_from_pop(&lab);
}

#[test]
fn nat_works_like_a_dsl_modem() {
    if !need_root() {
        return;
    }
    let lab = Lab::up(&v6h_lab::unique_name("nat")).unwrap();
    lab.exec_ok(Node::Gw, &["ping", "-c1", "-W2", addr::POP_V4])
        .unwrap();
    // A listener on pop reports the peer address it sees.
    let log = lab.run_dir().join("pop-listener.log");
    let log_arg = log.to_string_lossy().to_string();
    let _listener = lab
        .spawn(
            Node::Pop,
            &[
                BIN,
                "lab",
                "httpd",
                "--listen",
                "198.51.100.1:8080",
                "--access-log",
                &log_arg,
            ],
        )
        .unwrap();
    let page = wait_for("pop's listener answers", Duration::from_secs(5), || {
        curl(&lab, Node::Gw, "http://198.51.100.1:8080/", 2)
    });
    assert!(page.contains("You are 198.51.100.2"), "{page}");
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.starts_with("198.51.100.2 "), "pop saw {seen}");
    assert!(!seen.contains("192.0.2."), "the LAN address leaked: {seen}");
    // pop has no route back into the LAN: only the NAT makes replies work.
    let out = lab
        .exec(Node::Pop, &["ip", "route", "get", addr::GW_V4])
        .unwrap();
    assert!(!out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("via"));
}

#[test]
fn no_ipv6_path_exists_before_the_tunnel() {
    if !need_root() {
        return;
    }
    let lab = Lab::up(&v6h_lab::unique_name("nov6")).unwrap();
    for node in [Node::Gw, Node::Host] {
        let route = lab
            .exec(node, &["ip", "-6", "route", "get", addr::WEB_V6])
            .unwrap();
        assert!(!route.status.success(), "{node} has a route: {route:?}");
        let ping = lab
            .exec(node, &["ping", "-6", "-c1", "-W1", addr::WEB_V6])
            .unwrap();
        assert!(
            !ping.status.success(),
            "{node} reached the web server over IPv6"
        );
        let routes = lab.exec_ok(node, &["ip", "-6", "route"]).unwrap();
        assert!(!routes.contains("default"), "{node}: {routes}");
    }
}

#[test]
fn inet_web_and_dns_answer_from_pop() {
    if !need_root() {
        return;
    }
    let lab = Lab::up(&v6h_lab::unique_name("inet")).unwrap();
    let page = web_page_from_pop(&lab);
    assert!(page.contains("IPv6 works"), "{page}");
    assert!(page.contains("You are 2001:db8:ff00::1"), "{page}");
    let aaaa = lab
        .exec_ok(
            Node::Pop,
            &[
                "dig",
                "+short",
                "+time=2",
                "AAAA",
                addr::WEB_NAME,
                "@2001:db8:ffff::53",
            ],
        )
        .unwrap();
    assert_eq!(aaaa.trim(), addr::WEB_V6);
    let log = std::fs::read_to_string(lab.http_log()).unwrap();
    assert!(log.starts_with("2001:db8:ff00::1 "), "{log}");
}

#[test]
fn two_labs_run_at_once_without_interfering() {
    if !need_root() {
        return;
    }
    let names = [v6h_lab::unique_name("para"), v6h_lab::unique_name("para")];
    let handles: Vec<_> = names
        .iter()
        .cloned()
        .map(|n| std::thread::spawn(move || Lab::up(&n).unwrap()))
        .collect();
    let mut labs: Vec<Lab> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for lab in &labs {
        lab.exec_ok(Node::Gw, &["ping", "-c1", "-W2", addr::POP_V4])
            .unwrap();
        web_page_from_pop(lab);
    }
    // Each lab's web server logged only its own request.
    for lab in &labs {
        let log = std::fs::read_to_string(lab.http_log()).unwrap();
        assert_eq!(log.lines().count(), 1, "{}: {log}", lab.name());
    }
    // Removing one leaves the other working.
    let first = labs.remove(0);
    drop(first);
    assert!(namespaces_of(&names[0]).is_empty());
    assert_eq!(namespaces_of(&names[1]).len(), 6);
    web_page_from_pop(&labs[0]);
}

#[test]
fn lab_cli_status_exec_and_errors() {
    if !need_root() {
        return;
    }
    let name = v6h_lab::unique_name("cli");
    let lab = Lab::up(&name).unwrap();
    let out = Command::new(BIN)
        .args(["lab", "status", &name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "inet",
        "pop",
        "isp",
        "gw",
        "host",
        "198.51.100.1/24",
        "192.0.2.10/24",
    ] {
        assert!(text.contains(needle), "status lacks {needle}: {text}");
    }
    // exec passes the exit code through.
    let out = Command::new(BIN)
        .args(["lab", "exec", &name, "gw", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let out = Command::new(BIN)
        .args([
            "lab",
            "exec",
            &name,
            "host",
            "--",
            "cat",
            "/proc/sys/net/ipv6/conf/eth0/autoconf",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // Unknown lab and node names give clear errors.
    let out = Command::new(BIN)
        .args(["lab", "exec", "nosuchlab", "gw", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lab named \"nosuchlab\" is up"));
    let out = Command::new(BIN)
        .args(["lab", "exec", &name, "router", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown lab node"));
    drop(lab);
}

/// The PIDs of the processes in `node`'s namespace.
fn pids_in(lab: &Lab, node: Node) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", &lab.ns(node)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether process `pid` exists and runs `program` (by its /proc comm name).
fn runs(pid: u32, program: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == program)
}

#[test]
fn lab_exec_becomes_the_command_so_sigterm_reaches_it() {
    use std::os::unix::process::ExitStatusExt;
    if !need_root() {
        return;
    }
    let name = v6h_lab::unique_name("exec");
    let lab = Lab::up(&name).unwrap();
    assert!(pids_in(&lab, Node::Host).is_empty());
    let mut exec = Command::new(BIN)
        .args(["lab", "exec", &name, "host", "--", "sleep", "1000"])
        .spawn()
        .unwrap();
    let pid = exec.id();
    // The sleep runs in host: as the PID we started (exec), or, before the fix, as its child.
    let sleeping = wait_for("sleep runs in host", Duration::from_secs(5), || {
        let pids: Vec<u32> = pids_in(&lab, Node::Host)
            .into_iter()
            .filter(|p| runs(*p, "sleep"))
            .collect();
        (!pids.is_empty()).then_some(pids)
    });
    assert_eq!(
        sleeping,
        vec![pid],
        "`lab exec` must replace itself with the command"
    );
    // SIGTERM to the PID we know: the command gets it and is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = exec.wait().unwrap();
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert!(!runs(pid, "sleep"));
    assert!(
        wait_until_empty(&lab, Node::Host),
        "a process outlived `lab exec` in host: {:?}",
        pids_in(&lab, Node::Host)
    );
}

fn wait_until_empty(lab: &Lab, node: Node) -> bool {
    common::wait_until(Duration::from_secs(2), || pids_in(lab, node).is_empty())
}

#[test]
fn host_link_local_is_usable_as_soon_as_up_returns() {
    if !need_root() {
        return;
    }
    let lab = Lab::up(&v6h_lab::unique_name("dad")).unwrap();
    // No address on any node is still in duplicate address detection.
    for node in Node::HOSTS {
        let tentative = lab
            .exec_ok(node, &["ip", "-6", "-o", "addr", "show", "tentative"])
            .unwrap();
        assert!(tentative.trim().is_empty(), "{node}: {tentative}");
    }
    // So host reaches gw's link-local at once, from its own link-local.
    let gw = lab
        .exec_ok(
            Node::Gw,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
            ],
        )
        .unwrap();
    let gw_ll = gw
        .split_whitespace()
        .find_map(|t| t.strip_suffix("/64").filter(|a| a.starts_with("fe80")))
        .unwrap_or_else(|| panic!("no link-local on gw: {gw}"))
        .to_string();
    let out = lab
        .exec(
            Node::Host,
            &["ping", "-6", "-c1", "-W1", &format!("{gw_ll}%eth0")],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Tests, scripts and benchmarks signal only PIDs they started: nothing picks processes by
/// name, since namespaces do not isolate PIDs and a name matches processes outside the lab.
#[test]
fn nothing_signals_processes_by_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    // Spelled in pieces so that this file does not match itself.
    let banned = [
        ["pk", "ill"].concat(),
        ["kill", "all"].concat(),
        ["pid", "of"].concat(),
        ["pg", "rep -f"].concat(),
        ["\"pg", "rep\""].concat(),
    ];
    let mut files = Vec::new();
    for dir in ["crates", "scripts", "bench", ".ci", "fuzz"] {
        collect_files(&root.join(dir), &mut files);
    }
    let mut hits = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if banned.iter().any(|b| line.contains(b.as_str())) {
                hits.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(hits.is_empty(), "signalling by name:\n{}", hits.join("\n"));
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == "corpus" || name == "artifacts" {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn spawned_processes_are_signalled_by_pid_and_reaped_on_drop() {
    if !need_root() {
        return;
    }
    let lab = Lab::up(&v6h_lab::unique_name("pid")).unwrap();
    let sleeper = lab.spawn(Node::Gw, &["sleep", "1000"]).unwrap();
    let pid = sleeper.pid();
    // The handle's PID is the command itself (`ip netns exec` execs it), inside gw.
    wait_for(
        "sleep runs as the spawned PID",
        Duration::from_secs(5),
        || runs(pid, "sleep"),
    );
    assert_eq!(lab.pids(Node::Gw), vec![pid]);
    // A PID outside the node is refused, whatever it is: here, this test process.
    let me = std::process::id();
    let e = lab
        .signal_pid(Node::Gw, me, v6h_lab::Signal::SIGTERM)
        .unwrap_err();
    assert!(e.to_string().contains("does not run in lab node gw"), "{e}");
    assert!(
        lab.signal_pid(Node::Host, pid, v6h_lab::Signal::SIGCONT)
            .is_err()
    );
    lab.signal_pid(Node::Gw, pid, v6h_lab::Signal::SIGCONT)
        .unwrap();
    // Dropping the handle kills and reaps it: no zombie is left either.
    drop(sleeper);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(lab.pids(Node::Gw).is_empty());
    // A daemon left running is found again by its recorded PID and stopped by it.
    let kept = lab.spawn(Node::Gw, &["sleep", "1000"]).unwrap().detach();
    // (It is in gw once `ip netns exec` has entered the namespace.)
    wait_for("the kept sleep runs in gw", Duration::from_secs(5), || {
        lab.pids(Node::Gw).contains(&kept)
    });
    lab.record_pid(Node::Gw, "sleeper", kept).unwrap();
    let pid = lab.recorded_pid(Node::Gw, "sleeper").unwrap();
    assert_eq!(pid, kept);
    lab.signal_pid(Node::Gw, pid, v6h_lab::Signal::SIGTERM)
        .unwrap();
    assert!(wait_until_empty(&lab, Node::Gw));
}

//! End-to-end tests of `v6home ra` in the lab: gw advertises on its LAN port `eth0`, host's
//! kernel and rdisc6 receive. Root only: skipped (with a message) when not root, unless `CI` is
//! set, in which case they must run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{BIN as V6HOME, TempDir, default_route, example, link_local, wait_until};
use v6h_lab::{Lab, LabChild, Node};

mod common;

fn lab_or_skip(prefix: &str) -> Option<Lab> {
    let lab = common::lab_or_skip(prefix)?;
    // The gateway's forwarding is normally switched on by `v6home gateway`; without it
    // `v6home ra` (and the RFC) advertise router lifetime 0.
    lab.exec_ok(
        Node::Gw,
        &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
    )
    .expect("forwarding on gw");
    Some(lab)
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/radvd")
        .join(name)
}

fn example_conf() -> String {
    example("radvd.conf")
}

/// Writes a config file (mode 0644: radvd and v6home refuse world-writable ones).
fn write_conf(lab: &Lab, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = lab.run_dir().join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

fn start_v6home(lab: &Lab, conf: &Path) -> LabChild {
    let pid = lab.run_dir().join("v6home-ra.pid");
    let child = lab
        .spawn(
            Node::Gw,
            &[
                V6HOME,
                "ra",
                "-n",
                "-d",
                "3",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                pid.to_str().unwrap(),
            ],
        )
        .unwrap();
    child
        .wait_for_log("now advertising", Duration::from_secs(20))
        .expect("v6home ra starts advertising");
    child
}

/// rdisc6 on host, whitespace-collapsed lines ("Soliciting" and "Timed out." dropped).
/// Retries while host's link-local address is still tentative (EADDRNOTAVAIL).
fn rdisc6(lab: &Lab) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(15);
    let out = loop {
        let out = lab
            .exec(
                Node::Host,
                &["rdisc6", "-1", "-r", "5", "-w", "1500", "eth0"],
            )
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if stdout.contains("Hop limit") || Instant::now() > end {
            if !stdout.contains("Hop limit") {
                eprintln!(
                    "rdisc6 printed no RA ({}): {stdout} / {}\nhost: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr),
                    host_addrs(lab)
                );
            }
            break stdout;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    out.lines()
        .filter(|l| {
            !l.trim().is_empty() && !l.starts_with("Soliciting") && !l.starts_with("Timed out")
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// The lines of the prefix block for `prefix` in rdisc6 output.
fn prefix_block(lines: &[String], prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in lines {
        if l.starts_with("Prefix :") {
            inside = l == &format!("Prefix : {prefix}");
            continue;
        }
        if inside {
            if !(l.starts_with("On-link")
                || l.starts_with("Autonomous")
                || l.starts_with("Valid time")
                || l.starts_with("Pref. time")
                || l.starts_with("Pref"))
            {
                break;
            }
            out.push(l.clone());
        }
    }
    out
}

fn signal(child: &LabChild, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} failed");
}

fn host_addrs(lab: &Lab) -> String {
    lab.exec_ok(Node::Host, &["ip", "-6", "addr", "show", "dev", "eth0"])
        .unwrap_or_default()
}

fn host_default_route(lab: &Lab) -> String {
    default_route(lab, Node::Host)
}

fn gw_link_local(lab: &Lab) -> String {
    link_local(lab, Node::Gw, "eth0").to_string()
}

#[test]
fn ra_home_router_with_real_peers() {
    let Some(lab) = lab_or_skip("ra") else { return };
    let conf = write_conf(&lab, "radvd.conf", &example_conf());
    let mut ra = start_v6home(&lab, &conf);

    // rdisc6: router lifetime 90, O flag, the prefix with 86400/14400, the RDNSS.
    let lines = rdisc6(&lab);
    let text = lines.join("\n");
    assert!(has(&lines, "Router lifetime : 90 "), "{text}");
    assert!(has(&lines, "Stateful other conf. : Yes"), "{text}");
    assert!(has(&lines, "Stateful address conf. : No"), "{text}");
    assert!(has(&lines, "Hop limit : 64"), "{text}");
    let pb = prefix_block(&lines, "2001:db8:1234::/64");
    assert!(
        pb.iter().any(|l| l.starts_with("Valid time : 86400 ")),
        "{text}"
    );
    assert!(
        pb.iter().any(|l| l.starts_with("Pref. time : 14400 ")),
        "{text}"
    );
    assert!(pb.iter().any(|l| l == "On-link : Yes"), "{text}");
    assert!(
        pb.iter().any(|l| l == "Autonomous address conf.: Yes"),
        "{text}"
    );
    assert!(
        has(&lines, "Recursive DNS server : 2001:db8:ffff::53"),
        "{text}"
    );
    let ll = gw_link_local(&lab);
    assert!(has(&lines, &format!("from {ll}")), "{text}");

    // The kernel forms a SLAAC address and a temporary one, and a default route via gw.
    assert!(
        wait_until(Duration::from_secs(20), || {
            let a = host_addrs(&lab);
            a.lines()
                .any(|l| l.contains("inet6 2001:db8:1234:") && l.contains("mngtmpaddr"))
                && a.lines()
                    .any(|l| l.contains("inet6 2001:db8:1234:") && l.contains("temporary"))
        }),
        "host addresses: {}",
        host_addrs(&lab)
    );
    let route = host_default_route(&lab);
    assert!(
        route.contains(&format!("via {ll} dev eth0")) && route.contains("proto ra"),
        "default route: {route}"
    );

    // Reload with an extra prefix: the host configures it.
    let mut with_extra = example_conf();
    with_extra = with_extra.replacen(
        "\tRDNSS",
        "\tprefix 2001:db8:5678::/64 {\n\t};\n\n\tRDNSS",
        1,
    );
    assert!(with_extra.contains("5678"));
    write_conf(&lab, "radvd.conf", &with_extra);
    signal(&ra, "HUP");
    assert!(
        wait_until(Duration::from_secs(20), || host_addrs(&lab)
            .contains("inet6 2001:db8:5678:")),
        "extra prefix not configured: {}",
        host_addrs(&lab)
    );

    // An invalid config on SIGHUP is refused and the daemon keeps running.
    write_conf(
        &lab,
        "radvd.conf",
        "interface eth0 { AdvSendAdvert maybe; };\n",
    );
    signal(&ra, "HUP");
    ra.wait_for_log("keeping the running configuration", Duration::from_secs(10))
        .unwrap();
    assert!(
        ra.try_wait().unwrap().is_none(),
        "daemon died on a bad reload"
    );

    // Reload with the prefix removed: it is announced with zero lifetimes.
    write_conf(&lab, "radvd.conf", &example_conf());
    signal(&ra, "HUP");
    let ok = wait_until(Duration::from_secs(15), || {
        let l = rdisc6(&lab);
        let pb = prefix_block(&l, "2001:db8:5678::/64");
        pb.iter().any(|x| x.starts_with("Valid time : 0 "))
            && pb.iter().any(|x| x.starts_with("Pref. time : 0 "))
    });
    assert!(ok, "withdrawn prefix not seen: {:?}", rdisc6(&lab));
    // The host deprecates its address in it (RFC 4862 §5.5.3(e): valid ≤ 2 h, preferred 0).
    assert!(
        wait_until(Duration::from_secs(10), || host_addrs(&lab).lines().any(
            |l| l.contains("inet6 2001:db8:5678:") && l.contains("deprecated")
        )),
        "{}",
        host_addrs(&lab)
    );

    // SIGTERM: final RAs with router lifetime 0 remove the host's default route.
    signal(&ra, "TERM");
    assert!(
        wait_until(Duration::from_secs(5), || !host_default_route(&lab)
            .contains("via fe80::")),
        "default route still there: {}",
        host_default_route(&lab)
    );
    // Three final RAs 3 s apart, then a clean exit.
    let status = ra.wait_timeout(Duration::from_secs(15)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        ra.log()
    );
    // Addresses are kept.
    assert!(host_addrs(&lab).contains("inet6 2001:db8:1234:"));
}

/// Sends one RS from `src` (which must be on host's eth0) with IPv6 hop limit `hops`.
fn send_rs(lab: &Lab, src: &str, hops: u8) {
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

fn unicast_ras_to(ra: &LabChild, dst: &str) -> usize {
    ra.log()
        .lines()
        .filter(|l| l.contains("sent RA") && l.contains(dst))
        .count()
}

fn multicast_ras(ra: &LabChild) -> usize {
    ra.log()
        .lines()
        .filter(|l| l.contains("sent RA") && l.contains("ff02::1"))
        .count()
}

#[test]
fn ra_ignores_rs_with_bad_hop_limit_and_dump_prints_config() {
    let Some(lab) = lab_or_skip("radump") else {
        return;
    };
    let conf = write_conf(&lab, "radvd.conf", &example_conf());
    let ra = start_v6home(&lab, &conf);
    // RFC 4861 §6.1.1: an RS with hop limit 64 is ignored, 255 is answered (unicast).
    let src = "fe80::bad:1";
    lab.exec_ok(
        Node::Host,
        &[
            "ip",
            "addr",
            "add",
            &format!("{src}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
    )
    .unwrap();
    // Adding the address can make host's kernel solicit from it (hop limit 255): let that
    // settle, then count only replies to our own RSs.
    std::thread::sleep(Duration::from_millis(1500));
    let unicast_before = unicast_ras_to(&ra, src);
    send_rs(&lab, src, 64);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        unicast_ras_to(&ra, src),
        unicast_before,
        "answered an RS with hop limit 64"
    );
    let multicast_before = multicast_ras(&ra);
    send_rs(&lab, src, 255);
    // The reply is unicast, unless a multicast RA due within the reply delay answers it.
    assert!(
        wait_until(Duration::from_secs(3), || unicast_ras_to(&ra, src)
            > unicast_before
            || multicast_ras(&ra) > multicast_before),
        "no reply to a valid RS: {}",
        ra.log()
    );
    // `v6home ra dump` on host prints the RA in radvd.conf syntax, which loads again.
    let out = lab
        .exec(
            Node::Host,
            &[
                V6HOME,
                "ra",
                "dump",
                "eth0",
                "--count",
                "1",
                "--timeout",
                "40",
            ],
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("interface eth0 {"), "{text}");
    assert!(text.contains("prefix 2001:db8:1234::/64"), "{text}");
    assert!(text.contains("RDNSS 2001:db8:ffff::53"), "{text}");
    assert!(text.contains("AdvOtherConfigFlag on;"), "{text}");
    assert!(text.contains("AdvDefaultLifetime 90;"), "{text}");
    let dumped = write_conf(&lab, "dumped.conf", &text);
    let check = lab
        .exec(
            Node::Host,
            &[V6HOME, "ra", "-c", "-C", dumped.to_str().unwrap()],
        )
        .unwrap();
    assert!(
        check.status.success(),
        "dump output does not pass configtest: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    drop(ra);
}

struct ParityCase {
    file: &'static str,
    /// Text substitutions (interface names, non-documentation prefixes).
    subst: &'static [(&'static str, &'static str)],
    /// rdisc6 fields that differ on purpose (docs/ra.md "Intended differences").
    intended: &'static [&'static str],
}

const PARITY: &[ParityCase] = &[
    ParityCase {
        file: "home-router-target.conf",
        subst: &[],
        // radvd 2.19: RDNSS lifetime 1 × Max = 30; v6home (like 2.20+): 3 × Max = 90.
        intended: &["DNS server"],
    },
    ParityCase {
        file: "debian12_radvd-2.19__simple-radvd.conf",
        subst: &[],
        intended: &[],
    },
    ParityCase {
        file: "radvd-project_radvd__test_test_rdnss.conf",
        subst: &[],
        // radvd 2.19 sends DNSSL lifetime Max (600) instead of the configured 45 (< Max);
        // v6home sends what is configured, like 2.20+ (and warns that it is below Max).
        intended: &["DNS search list lifetime"],
    },
    ParityCase {
        file: "radvd-project_radvd__test_test_rdnss_long.conf",
        subst: &[],
        intended: &["DNS search list lifetime"],
    },
    ParityCase {
        file: "zephyrproject-rtos_net-tools__radvd.conf",
        subst: &[("tap0", "eth0")],
        // 2.19 defaults RDNSS/DNSSL lifetimes to 1 × Max (60), v6home to 3 × Max (180).
        intended: &["DNS server", "DNS search list lifetime"],
    },
    ParityCase {
        file: "alyptik_dotfiles__radvd.conf",
        subst: &[("wlan1", "eth0")],
        intended: &[],
    },
    ParityCase {
        file: "nyanshiba_nat64-on-link__radvd.conf",
        subst: &[
            ("64:ff9b:1::/48", "2001:db8:64::/48"),
            ("2606:4700:3030::/45", "2001:db8:3030::/45"),
            ("2001:4860:4840::/42", "2001:db8:4840::/42"),
            ("2606:4700:4700::/40", "2001:db8:4700::/40"),
            ("2606:4700::6812:1400/119", "2001:db8::6812:1400/119"),
            ("2404:1a8:7f01:a::3", "2001:db8:53::3"),
            ("2404:1a8:7f01:b::3", "2001:db8:53::4"),
        ],
        // radvd keeps Prf low with router lifetime 0; RFC 4191 §2.2 requires 00 (medium).
        intended: &["Router preference"],
    },
];

/// Runs radvd (Debian's 2.19) and `v6home ra` in turn on gw's eth0 with each corpus config
/// radvd accepts and that can run in the lab, and compares what rdisc6 decodes on host.
#[test]
fn ra_parity_with_radvd() {
    let Some(lab) = lab_or_skip("rapar") else {
        return;
    };
    if lab.exec(Node::Gw, &["radvd", "--version"]).is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("radvd is not installed");
        }
        eprintln!("skipping: radvd not installed");
        return;
    }
    // For `prefix ::/64` (auto prefixes).
    lab.exec_ok(
        Node::Gw,
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:1234::1/64",
            "dev",
            "eth0",
            "nodad",
        ],
    )
    .unwrap();
    let mut failures = Vec::new();
    for case in PARITY {
        let mut text = std::fs::read_to_string(corpus(case.file)).unwrap();
        for (a, b) in case.subst {
            text = text.replace(a, b);
        }
        let conf = write_conf(&lab, "parity.conf", &text);
        let pid = lab.run_dir().join("radvd.pid");
        let mut radvd = lab
            .spawn(
                Node::Gw,
                &[
                    "radvd",
                    "-n",
                    "-m",
                    "stderr",
                    "-d",
                    "1",
                    "-C",
                    conf.to_str().unwrap(),
                    "-p",
                    pid.to_str().unwrap(),
                ],
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let theirs = rdisc6(&lab);
        radvd.stop();
        let mut ours_child = start_v6home(&lab, &conf);
        let ours = rdisc6(&lab);
        ours_child.stop();
        assert!(
            !theirs.is_empty(),
            "{}: radvd sent nothing: {}",
            case.file,
            radvd.log()
        );
        assert!(!ours.is_empty(), "{}: v6home sent nothing", case.file);
        let only_theirs: Vec<&String> = theirs.iter().filter(|l| !ours.contains(l)).collect();
        let only_ours: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
        let unexpected: Vec<&&String> = only_theirs
            .iter()
            .chain(only_ours.iter())
            .filter(|l| !case.intended.iter().any(|f| l.starts_with(f)))
            .collect();
        if !unexpected.is_empty() || theirs.len() != ours.len() {
            failures.push(format!(
                "{}: radvd only {only_theirs:?}; v6home only {only_ours:?}",
                case.file
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ra_configtest_exit_codes() {
    // Not root-only: -c touches no network.
    let tmp = TempDir::new("v6h-ra-ct");
    let dir = tmp.path();
    let run = |name: &str, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::process::Command::new(V6HOME)
            .args(["ra", "-c", "-C", p.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let ok = run("ok.conf", &example_conf());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run("bad.conf", "interface eth0 {\n\tAdvCurHopLimit 300;\n};\n");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bad.conf:2:"), "{err}");
    let syntax = run("syn.conf", "interface eth0 {\n\tAdvSendAdvert on\n};\n");
    assert_eq!(syntax.status.code(), Some(1));
    let conv = std::process::Command::new(V6HOME)
        .args(["ra", "convert", dir.join("ok.conf").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(conv.status.success());
    let toml = String::from_utf8_lossy(&conv.stdout).to_string();
    assert!(toml.contains("2001:db8:1234::"), "{toml}");
    // The TOML form runs the same configtest.
    let t = run("ok.toml", &toml);
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
}

/// radvd.md §5.3: while forwarding is off the RAs carry router lifetime 0 (checked on every
/// refresh, not once per process like radvd), and the lifetime comes back with forwarding.
#[test]
fn ra_forwarding_off_means_router_lifetime_zero() {
    let Some(lab) = lab_or_skip("rafwd") else {
        return;
    };
    let conf = write_conf(&lab, "radvd.conf", &example_conf());
    let ra = start_v6home(&lab, &conf);
    assert!(has(&rdisc6(&lab), "Router lifetime : 90 "));
    lab.exec_ok(
        Node::Gw,
        &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"],
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || has(
            &rdisc6(&lab),
            "Router lifetime : 0 "
        )),
        "router lifetime not 0 with forwarding off: {}",
        ra.log()
    );
    assert!(ra.log().contains("advertising router lifetime 0"));
    // Prefixes and DNS are still advertised.
    let lines = rdisc6(&lab);
    assert!(has(&lines, "Prefix : 2001:db8:1234::/64"));
    assert!(has(&lines, "Recursive DNS server : 2001:db8:ffff::53"));
    lab.exec_ok(
        Node::Gw,
        &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || has(
            &rdisc6(&lab),
            "Router lifetime : 90 "
        )),
        "router lifetime not restored"
    );
}

/// Runs the binary with `args` (no lab, no root needed): (exit code, stderr).
fn run_bin(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(V6HOME)
        .args(args)
        .env_remove("V6HOME_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bad_radvd_conf(dir: &TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.path().join("radvd.conf");
    std::fs::write(
        &p,
        "interface eth0 {\n    AdvSendAdvert on;\n    prefix 2001:db8:1234::/200 {\n    };\n};\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

/// Without `-n`, a broken config used to detach first and exit 0 with nothing said.
#[test]
fn ra_daemon_mode_reports_a_broken_config_before_detaching() {
    let dir = TempDir::new("ra-bad");
    let conf = bad_radvd_conf(&dir);
    let pid = dir.path().join("ra.pid");
    let (code, err) = run_bin(&[
        "ra",
        "-C",
        conf.to_str().unwrap(),
        "-p",
        pid.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "v6home: error: {}:3:28: invalid prefix length 200 (must be 0 to 128)",
            conf.display()
        )
    );
    assert!(
        !pid.exists(),
        "PID file written for a daemon that never ran"
    );
}

/// `v6home … | head`: a closed stdout ends the command quietly, never with a panic.
#[test]
fn closed_stdout_is_a_clean_exit() {
    let dir = TempDir::new("epipe");
    let conf = corpus("home-router-target.conf");
    let dhcp = dir.path().join("dhcp6s.conf");
    std::fs::write(&dhcp, example("dhcp6s.conf")).unwrap();
    for args in [
        vec!["ra", "convert", conf.to_str().unwrap()],
        vec!["dhcp6", "convert", dhcp.to_str().unwrap()],
        vec![
            "dhcp6",
            "leases",
            "--lease-file",
            dir.path().join("none").to_str().unwrap(),
        ],
    ] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = std::process::Command::new(V6HOME)
            .args(&args)
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(
            out.status.code().is_some(),
            "{args:?} killed by a signal: {}",
            out.status
        );
    }
}

/// Non-UTF-8 files: the first bad byte at file:line:col, said once. I/O causes once.
#[test]
fn errors_are_positioned_and_never_doubled() {
    let dir = TempDir::new("utf8");
    let write = |name: &str, bytes: &[u8]| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.display().to_string()
    };
    let radvd = write(
        "radvd.conf",
        b"interface eth0 {\n  AdvSendAdvert on; # caf\xe9\n};\n",
    );
    let dhcp = write(
        "dhcp6s.conf",
        b"# \xff\noption domain-name-servers 2001:db8::53;\n",
    );
    let aiccu = write("aiccu.conf", b"username a\npassword b # \xc3(\n");
    let gateway = write("gateway.toml", b"[tunnel]\nserver = \"tic\xe9.example\"\n");
    let cases = [
        (
            vec!["ra", "-c", "-C", &radvd],
            format!("{radvd}:2:26: invalid UTF-8 (byte 0xE9)"),
        ),
        (
            vec!["dhcp6", "check", &dhcp],
            format!("{dhcp}:1:3: invalid UTF-8 (byte 0xFF)"),
        ),
        (
            vec!["tunnel", "tunnels", "-c", &aiccu],
            format!("{aiccu}:2:14: invalid UTF-8 (byte 0xC3)"),
        ),
        (
            vec![
                "gateway",
                "--config",
                &gateway,
                "--state-dir",
                "/nonexistent",
            ],
            format!("{gateway}:2:14: invalid UTF-8 (byte 0xE9)"),
        ),
    ];
    for (args, want) in cases {
        let (code, err) = run_bin(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(&want), "{args:?}: want {want}, got {err}");
        assert_eq!(err.matches("invalid UTF-8").count(), 1, "{args:?}: {err}");
    }
    // A cause shown by the error's own message and returned as its source: printed once.
    let missing = dir.path().join("missing.conf");
    let (code, err) = run_bin(&["ra", "-n", "-C", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// Kills a PID this test started (the detached daemon) when dropped.
struct KillOnDrop(Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Detached, `v6home ra` logs to syslog (here a socket of the test's own), holds its PID
/// file against a second instance, logs dropped RSs at debug level, and removes the file on
/// exit.
#[test]
fn ra_daemon_logs_to_syslog_and_holds_its_pidfile() {
    let Some(lab) = lab_or_skip("rasys") else {
        return;
    };
    let conf = write_conf(&lab, "radvd.conf", &example_conf());
    let pidfile = lab.run_dir().join("ra.pid");
    let sock_path = lab.run_dir().join("syslog.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let env = format!("V6HOME_SYSLOG_SOCKET={}", sock_path.display());
    let out = lab
        .exec(
            Node::Gw,
            &[
                "env",
                &env,
                V6HOME,
                "ra",
                "--log-level",
                "debug",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                pidfile.to_str().unwrap(),
            ],
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The parent has exited; the detached child writes its own PID right after.
    let live_pid = || {
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    };
    let mut pid = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            pid = live_pid();
            pid.is_some()
        }),
        "no live PID in {}",
        pidfile.display()
    );
    let pid = pid.unwrap();
    let _guard = KillOnDrop(Some(pid));
    let mut lines: Vec<String> = Vec::new();
    let read_until = |needle: &str, lines: &mut Vec<String>| {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if lines.iter().any(|l| l.contains(needle)) {
                return true;
            }
            if let Ok(n) = sock.recv(&mut buf) {
                lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        false
    };
    assert!(
        read_until("now advertising", &mut lines),
        "no syslog line: {lines:#?}"
    );
    let tagged = format!("v6home[{pid}]: ");
    let line = lines
        .iter()
        .find(|l| l.contains("now advertising"))
        .unwrap();
    assert!(line.starts_with("<30>"), "daemon.info priority: {line}");
    assert!(line.contains(&tagged), "{line}");
    assert!(!line.contains('\u{1b}'), "colour codes in syslog: {line}");

    // An RS with hop limit 64 is dropped and logged ("invalid hop limit").
    let src = "fe80::bad:2";
    lab.exec_ok(
        Node::Host,
        &[
            "ip",
            "addr",
            "add",
            &format!("{src}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
    )
    .unwrap();
    send_rs(&lab, src, 64);
    assert!(
        read_until("invalid hop limit", &mut lines),
        "hop-limit drop not logged: {lines:#?}"
    );
    let drop_line = lines
        .iter()
        .find(|l| l.contains("invalid hop limit"))
        .unwrap();
    assert!(drop_line.contains("hop_limit=64"), "{drop_line}");
    assert!(drop_line.starts_with("<31>"), "daemon.debug: {drop_line}");

    // A second instance on the same PID file is refused and names the first.
    let second = lab
        .exec(
            Node::Gw,
            &[
                V6HOME,
                "ra",
                "-n",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                pidfile.to_str().unwrap(),
            ],
        )
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("already in use by a running instance (pid {pid})")),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string(),
        "the refused instance touched the PID file"
    );

    // SIGTERM: final RAs (3 s apart), then the file is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // While it sends its final RAs it still holds the file: a successor is refused instead
    // of having its file deleted under it when the old instance finishes.
    std::thread::sleep(Duration::from_millis(300));
    let during = lab
        .exec(
            Node::Gw,
            &[
                V6HOME,
                "ra",
                "-n",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                pidfile.to_str().unwrap(),
            ],
        )
        .unwrap();
    assert_eq!(
        during.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&during.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(20), || !pidfile.exists()),
        "PID file left behind"
    );
    assert!(read_until("all final RAs sent", &mut lines), "{lines:#?}");
    // Once it is gone, the successor starts and keeps its own file.
    let next = lab
        .spawn(
            Node::Gw,
            &[
                V6HOME,
                "ra",
                "-n",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                pidfile.to_str().unwrap(),
            ],
        )
        .unwrap();
    next.wait_for_log("now advertising", Duration::from_secs(20))
        .expect("the successor starts");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        next.pid().to_string()
    );
    drop(next);
}

/// An RS flood from many sources: unicast replies stay within the token bucket (burst 10,
/// 10/s), excess RSs get at most one multicast RA per MinDelayBetweenRAs, every refused RS is
/// counted in the gated debug log, and the daemon keeps advertising.
#[test]
fn ra_rs_flood_is_rate_limited_and_reported() {
    let Some(lab) = lab_or_skip("raflood") else {
        return;
    };
    let conf = write_conf(&lab, "radvd.conf", &example_conf());
    let pid = lab.run_dir().join("v6home-ra.pid");
    let ra = lab
        .spawn(
            Node::Gw,
            &[
                V6HOME,
                "--log-level",
                "debug",
                "ra",
                "-n",
                "-d",
                "3",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                pid.to_str().unwrap(),
            ],
        )
        .unwrap();
    ra.wait_for_log("now advertising", Duration::from_secs(20))
        .expect("v6home ra starts advertising");
    const SOURCES: u32 = 20;
    const ROUNDS: u32 = 50;
    let srcs: Vec<String> = (1..=SOURCES).map(|n| format!("fe80::f:{n:x}")).collect();
    let batch: String = srcs
        .iter()
        .map(|s| format!("addr add {s}/64 dev eth0 nodad\n"))
        .collect();
    let batch_file = lab.run_dir().join("flood-addrs.batch");
    std::fs::write(&batch_file, batch).unwrap();
    lab.exec_ok(Node::Host, &["ip", "-b", batch_file.to_str().unwrap()])
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let log_before = ra.log().len();
    let list = srcs
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "import socket,ipaddress,struct,time\n\
         i=socket.if_nametoindex('eth0')\n\
         s=socket.socket(socket.AF_INET6,socket.SOCK_RAW,socket.IPPROTO_ICMPV6)\n\
         s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_HOPS,255)\n\
         srcs=[{list}]\n\
         t0=time.time();n=0\n\
         for k in range({ROUNDS}):\n\
         \x20 for a in srcs:\n\
         \x20   p=ipaddress.IPv6Address(a).packed+struct.pack('@I',i)\n\
         \x20   s.sendmsg([bytes([133,0,0,0,0,0,0,0])],[(socket.IPPROTO_IPV6,socket.IPV6_PKTINFO,p)],0,('ff02::2',0,0,i))\n\
         \x20   n+=1\n\
         \x20 time.sleep(0.02)\n\
         print(n, round(time.time()-t0,3))\n"
    );
    let sent = lab
        .exec_ok(Node::Host, &["python3", "-c", &script])
        .unwrap();
    // Let the last delayed replies (≤ 0.5 s) and the gated log line out.
    std::thread::sleep(Duration::from_millis(2500));
    let log = ra.log();
    let flood = &log[log_before.min(log.len())..];
    let received = flood
        .lines()
        .filter(|l| l.contains("received") && l.contains("fe80::f:"))
        .count();
    let unicast = flood
        .lines()
        .filter(|l| l.contains("sent RA") && l.contains("dst=fe80::f:"))
        .count();
    let multicast = flood
        .lines()
        .filter(|l| l.contains("sent RA") && l.contains("dst=ff02::1"))
        .count();
    let limited_lines: Vec<&str> = flood
        .lines()
        .filter(|l| l.contains("RS replies rate-limited"))
        .collect();
    let suppressed: u64 = limited_lines
        .iter()
        .filter_map(|l| {
            let v = l.split("suppressed=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!(
        "RS flood: sent (count, seconds) {}; daemon received {received}; unicast replies \
         {unicast}; multicast RAs {multicast}; rate-limited log lines {} (+{suppressed} suppressed)",
        sent.trim(),
        limited_lines.len()
    );
    let total = u64::from(SOURCES * ROUNDS);
    assert!(received as u64 >= total * 9 / 10, "received {received}");
    // Burst 10 plus 10/s over the ~1.5 s flood (and its 0.5 s reply delay): well under 40.
    assert!(
        (10..=40).contains(&unicast),
        "unicast replies {unicast} outside the token bucket"
    );
    assert!(multicast <= 3, "multicast RAs {multicast}");
    // The refused RSs show in the log: the lines let through plus their suppressed counts.
    // (RSs from a source whose reply is already pending are coalesced, not refused; the
    // count held back after the last line shows with the next one.)
    let limited = limited_lines.len() as u64 + suppressed;
    assert!(
        limited >= received as u64 / 2,
        "rate-limited {limited} + unicast {unicast} vs received {received}"
    );
    assert!(
        limited_lines.len() <= 4,
        "one rate-limit line a second at most: {}",
        limited_lines.len()
    );
    // Still advertising: a fresh RS from a new source gets its answer.
    let src = "fe80::f:ff";
    lab.exec_ok(
        Node::Host,
        &[
            "ip",
            "addr",
            "add",
            &format!("{src}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let before = unicast_ras_to(&ra, src);
    let mc_before = multicast_ras(&ra);
    send_rs(&lab, src, 255);
    assert!(
        wait_until(Duration::from_secs(4), || unicast_ras_to(&ra, src) > before
            || multicast_ras(&ra) > mc_before),
        "no answer after the flood"
    );
}

/// Whether a process with this PID exists.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// `tunnel start` with aiccu.conf's `daemonize true`: the process detaches as AICCU does (the
/// command returns 0, the daemon logs to syslog, here a test socket) and holds aiccu.conf's
/// `pidfile` with its own PID; a second one is refused naming it. Started by systemd
/// (`INVOCATION_ID` set) it stays in the foreground instead. (The TIC server is a closed port
/// on loopback, so the daemon keeps retrying the login and nothing leaves the host.)
#[test]
fn tunnel_start_daemonizes_and_holds_the_aiccu_pidfile() {
    let dir = TempDir::new("aiccu-pid");
    let pid = dir.path().join("aiccu.pid");
    let conf = dir.path().join("aiccu.conf");
    std::fs::write(
        &conf,
        format!(
            "username lab\npassword labpass\nserver 127.0.0.1\ntunnel_id T1\n\
             daemonize true\npidfile {}\n",
            pid.display()
        ),
    )
    .unwrap();
    let sock_path = dir.path().join("syslog.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = || {
        let mut c = std::process::Command::new(V6HOME);
        c.args(["tunnel", "start", "-c", conf.to_str().unwrap()])
            .env("V6HOME_SYSLOG_SOCKET", &sock_path)
            .env_remove("INVOCATION_ID")
            .env_remove("NOTIFY_SOCKET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    // Detached: the command itself returns 0 at once; the daemon's PID is in the pidfile.
    let out = start().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon: u32 = common::wait_for("the daemon's PID", Duration::from_secs(10), || {
        std::fs::read_to_string(&pid)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|p| alive(*p))
    });
    let mut logged = String::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logged.contains("detached") && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            logged.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    let (code, err) = run_bin(&["tunnel", "start", "-c", conf.to_str().unwrap()]);
    // The daemon is the child of the process this test started: stop it by its PID.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(wait_until(Duration::from_secs(5), || !alive(daemon)));
    assert!(
        logged.contains("daemonize true: detached"),
        "no syslog line: {logged:?}"
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: already in use by a running instance (pid {daemon})",
            pid.display()
        )),
        "{err}"
    );

    // Under systemd: noted, and the process stays in the foreground with its own PID.
    let mut fg = start()
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
        .spawn()
        .unwrap();
    let held = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&pid).is_ok_and(|t| t.trim() == fg.id().to_string())
    });
    let running = fg.try_wait().unwrap().is_none();
    let _ = fg.kill();
    let out = fg.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(held && running, "did not stay in the foreground: {err}");
    assert!(err.contains("staying in the foreground"), "{err}");
}

/// `v6home ra --metrics ADDR --status-file F`: an RS from host (rdisc6) shows in
/// `ra status --json` and in the metrics, next to the RAs sent.
#[test]
fn ra_status_json_and_metrics_count_ras_and_rss() {
    let Some(lab) = lab_or_skip("rastat") else {
        return;
    };
    let conf = write_conf(&lab, "radvd.conf", &example_conf());
    let status_file = lab.run_dir().join("ra.status.json");
    let child = lab
        .spawn(
            Node::Gw,
            &[
                V6HOME,
                "ra",
                "-n",
                "-C",
                conf.to_str().unwrap(),
                "--metrics",
                "[::1]:9642",
                "--status-file",
                status_file.to_str().unwrap(),
            ],
        )
        .unwrap();
    child
        .wait_for_log("now advertising", Duration::from_secs(20))
        .expect("v6home ra starts advertising");
    let lines = rdisc6(&lab);
    assert!(
        lines.iter().any(|l| l.starts_with("Hop limit")),
        "{lines:?}"
    );
    let status = || -> serde_json::Value {
        let out = lab
            .exec_ok(
                Node::Gw,
                &[
                    V6HOME,
                    "ra",
                    "status",
                    "--json",
                    "--status-file",
                    status_file.to_str().unwrap(),
                ],
            )
            .unwrap();
        serde_json::from_str(&out).unwrap()
    };
    let st = common::wait_for("the RS in ra status --json", Duration::from_secs(5), || {
        Some(status()).filter(|st| st["interfaces"][0]["rs_received"].as_u64() >= Some(1))
    });
    eprintln!("ra status --json: {st}");
    assert_eq!(st["running"], true, "{st}");
    let i = &st["interfaces"][0];
    assert_eq!(i["name"], "eth0", "{st}");
    assert_eq!(i["state"], "Running", "{st}");
    assert!(i["ra_sent_multicast"].as_u64() >= Some(1), "{st}");
    assert!(
        i["ra_sent_unicast"].as_u64().unwrap() + i["ra_sent_multicast"].as_u64().unwrap() >= 2,
        "{st}"
    );
    let metrics = lab
        .exec_ok(
            Node::Gw,
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                "http://[::1]:9642/metrics",
            ],
        )
        .unwrap();
    for needle in [
        "v6home_ra_sent_total{interface=\"eth0\",kind=\"multicast\"}",
        "v6home_rs_received_total{interface=\"eth0\"} ",
        "v6home_rs_rate_limited_total{interface=\"eth0\"} 0",
        "v6home_ra_advertising{interface=\"eth0\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    assert!(
        !metrics.contains("v6home_rs_received_total{interface=\"eth0\"} 0"),
        "{metrics}"
    );
    drop(child);
}

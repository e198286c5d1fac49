//! `v6home privacy enable|disable|status --root DIR` on staged Debian-style, Arch-style,
//! NetworkManager and systemd-networkd file trees: the exact files written, the staged
//! `/proc/sys` values applied and read back, and nothing else touched.

use std::collections::BTreeMap;
use std::path::Path;
use v6h_privacy::lifetime::Lifetime;
use v6h_privacy::sysconf::Manager;
use v6h_privacy::sysconf::{Prefer, Request};
use v6h_privacy::system::{SystemError, Target, apply, dry_run, render_status, status};

fn put(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Stages `/proc/sys/net/ipv6/conf/{all,default,lo,<ifaces>}` with kernel defaults.
fn stage_proc(root: &Path, ifaces: &[&str]) {
    for i in ["all", "default", "lo"].iter().chain(ifaces) {
        let v = if *i == "lo" { "-1" } else { "0" };
        put(
            root,
            &format!("proc/sys/net/ipv6/conf/{i}/use_tempaddr"),
            &format!("{v}\n"),
        );
        put(
            root,
            &format!("proc/sys/net/ipv6/conf/{i}/temp_prefered_lft"),
            "86400\n",
        );
        put(
            root,
            &format!("proc/sys/net/ipv6/conf/{i}/temp_valid_lft"),
            "604800\n",
        );
        put(
            root,
            &format!("proc/sys/net/ipv6/conf/{i}/max_addresses"),
            "16\n",
        );
        put(
            root,
            &format!("proc/sys/net/ipv6/conf/{i}/accept_dad"),
            if *i == "all" { "0\n" } else { "1\n" },
        );
    }
    put(root, "sys/class/net/lo/type", "772\n");
}

/// All regular files under `root` (relative path → content), excluding `proc/` and `sys/`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                if !rel.starts_with("proc/") && !rel.starts_with("sys/") {
                    out.insert(rel, std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(root, root, &mut m);
    m
}

fn enable(prefer: Prefer, p: &str, v: &str) -> Request {
    Request::Enable {
        prefer,
        preferred: p.parse::<Lifetime>().unwrap(),
        valid: v.parse::<Lifetime>().unwrap(),
        force: false,
    }
}

fn target(root: &Path) -> Target {
    Target {
        root: Some(root.to_path_buf()),
        ifaces: vec![],
    }
}

const SYSCTL_HEADER: &str = "\
# Written by `v6home privacy`; re-run it rather than editing this file.
# Only `default` (interfaces created later) and per-interface keys: the kernel never reads
# use_tempaddr from conf/all. Lifetimes are in seconds. accept_dad is never changed.
";

fn expected_sysctl(ifaces: &[&str]) -> String {
    let mut s = SYSCTL_HEADER.to_string();
    for i in std::iter::once(&"default").chain(ifaces) {
        let k = |leaf: &str| {
            if i.contains('.') {
                format!("net/ipv6/conf/{i}/{leaf}")
            } else {
                format!("net.ipv6.conf.{i}.{leaf}")
            }
        };
        s += &format!("{} = 2\n", k("use_tempaddr"));
        s += &format!("{} = 86400\n", k("temp_prefered_lft"));
        s += &format!("{} = 172800\n", k("temp_valid_lft"));
    }
    s
}

const DEBIAN_SYSCTL_CONF: &str = "#\n# /etc/sysctl.conf - Configuration file for setting system variables\n#\n#net.ipv6.conf.all.forwarding=1\n";

#[test]
fn debian_style_ifupdown() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.conf", DEBIAN_SYSCTL_CONF);
    put(r, "etc/sysctl.d/README.sysctl", "see sysctl.d(5)\n");
    put(
        r,
        "etc/network/interfaces",
        "auto eth0\niface eth0 inet dhcp\niface eth0 inet6 auto\n",
    );
    put(
        r,
        "usr/lib/sysctl.d/50-default.conf",
        "net.ipv4.ping_group_range = 0 2147483647\n",
    );
    // Shipped by Debian's systemd package whether networkd runs or not: not a manager.
    put(
        r,
        "usr/lib/systemd/network/80-container-host0.network",
        "[Match]\nVirtualization=container\n",
    );
    stage_proc(r, &["eth0", "eth0.10"]);
    let before = tree(r);
    let rep = apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap();
    // ifupdown configures IPv6 (an inet6 stanza) but sets no privext: nothing to fix there.
    assert_eq!(rep.managers, vec![Manager::Ifupdown]);
    let after = tree(r);
    // Exactly one new file, nothing else changed.
    let mut expect = before.clone();
    expect.insert(
        "etc/sysctl.d/60-v6home-privacy.conf".into(),
        expected_sysctl(&["eth0", "eth0.10"]),
    );
    assert_eq!(after, expect);
    // Live values under the root applied and read back; never `all`, never accept_dad.
    for i in ["default", "eth0", "eth0.10"] {
        let c = r.join(format!("proc/sys/net/ipv6/conf/{i}"));
        assert_eq!(
            std::fs::read_to_string(c.join("use_tempaddr")).unwrap(),
            "2\n"
        );
        assert_eq!(
            std::fs::read_to_string(c.join("temp_valid_lft")).unwrap(),
            "172800\n"
        );
    }
    let c = r.join("proc/sys/net/ipv6/conf");
    assert_eq!(
        std::fs::read_to_string(c.join("all/use_tempaddr")).unwrap(),
        "0\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.join("lo/use_tempaddr")).unwrap(),
        "-1\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.join("eth0/accept_dad")).unwrap(),
        "1\n"
    );
    assert!(rep.commands.is_empty(), "no command runs under --root");

    // Disable writes explicit zeros in the same file.
    apply(&Request::Disable, &target(r)).unwrap();
    let f = std::fs::read_to_string(r.join("etc/sysctl.d/60-v6home-privacy.conf")).unwrap();
    assert_eq!(
        f,
        format!(
            "{SYSCTL_HEADER}net.ipv6.conf.default.use_tempaddr = 0\nnet.ipv6.conf.eth0.use_tempaddr = 0\nnet/ipv6/conf/eth0.10/use_tempaddr = 0\n"
        )
    );
}

#[test]
fn arch_style_dhcpcd() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    // Arch: no /etc/sysctl.conf, systemd-sysctl reads /etc/sysctl.d, dhcpcd enabled.
    put(r, "usr/lib/systemd/systemd-sysctl", "");
    put(r, "etc/dhcpcd.conf", "hostname\nduid\nslaac private\n");
    put(
        r,
        "etc/systemd/system/multi-user.target.wants/dhcpcd.service",
        "[Unit]\n",
    );
    stage_proc(r, &["enp1s0", "wlan0"]);
    let before = tree(r);
    let rep = apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap();
    assert_eq!(rep.managers, vec![v6h_privacy::sysconf::Manager::Dhcpcd]);
    let mut expect = before;
    expect.insert(
        "etc/sysctl.d/60-v6home-privacy.conf".into(),
        expected_sysctl(&["enp1s0", "wlan0"]),
    );
    assert_eq!(
        tree(r),
        expect,
        "dhcpcd.conf untouched; only the sysctl drop-in"
    );
    assert!(
        rep.plan
            .notes
            .iter()
            .any(|n| n.contains("never writes use_tempaddr"))
    );
}

#[test]
fn networkmanager() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.d/99-sysctl.conf", "");
    put(
        r,
        "etc/NetworkManager/NetworkManager.conf",
        "[main]\nplugins=ifupdown,keyfile\n",
    );
    put(
        r,
        "etc/systemd/system/multi-user.target.wants/NetworkManager.service",
        "",
    );
    stage_proc(r, &["wlp2s0"]);
    let before = tree(r);
    let rep = apply(&enable(Prefer::Public, "1d", "2d"), &target(r)).unwrap();
    assert_eq!(
        rep.managers,
        vec![v6h_privacy::sysconf::Manager::NetworkManager]
    );
    let mut expect = before;
    expect.insert(
        "etc/sysctl.d/60-v6home-privacy.conf".into(),
        expected_sysctl(&["wlp2s0"]).replace("use_tempaddr = 2", "use_tempaddr = 1"),
    );
    expect.insert(
        "etc/NetworkManager/conf.d/60-v6home-privacy.conf".into(),
        "# Written by `v6home privacy`: NetworkManager writes conf/<if>/use_tempaddr\n\
         # itself, so its default must agree with the sysctl drop-in.\n\
         [connection]\nipv6.ip6-privacy=1\n"
            .into(),
    );
    assert_eq!(tree(r), expect);
    // The live plan would reload NM and reapply the device (not run under --root).
    assert!(rep.plan.commands.is_empty());
}

#[test]
fn systemd_networkd() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.d/.keep", "");
    put(
        r,
        "etc/systemd/network/20-wired.network",
        "[Match]\nName=en*\n[Network]\nDHCP=yes\n",
    );
    put(
        r,
        "run/systemd/network/10-netplan-wlan0.network",
        "[Match]\nName=wlan0\n",
    );
    put(
        r,
        "etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
        "",
    );
    // A unit shipped in /usr/lib gets its drop-in in /etc (never a change under /usr).
    put(
        r,
        "usr/lib/systemd/network/80-container-host0.network",
        "[Match]\nVirtualization=container\n",
    );
    stage_proc(r, &["enp3s0"]);
    let before = tree(r);
    apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap();
    let nd = "# Written by `v6home privacy`: networkd writes conf/<if>/use_tempaddr itself.\n\
              [Network]\nIPv6PrivacyExtensions=yes\n";
    let mut expect = before;
    expect.insert(
        "etc/sysctl.d/60-v6home-privacy.conf".into(),
        expected_sysctl(&["enp3s0"]),
    );
    expect.insert(
        "etc/systemd/networkd.conf.d/60-v6home-privacy.conf".into(),
        nd.into(),
    );
    expect.insert(
        "etc/systemd/network/20-wired.network.d/60-v6home-privacy.conf".into(),
        nd.into(),
    );
    expect.insert(
        "etc/systemd/network/10-netplan-wlan0.network.d/60-v6home-privacy.conf".into(),
        nd.into(),
    );
    expect.insert(
        "etc/systemd/network/80-container-host0.network.d/60-v6home-privacy.conf".into(),
        nd.into(),
    );
    assert_eq!(tree(r), expect);
}

/// ifupdown's `privext 0` would make ifup write use_tempaddr = 0 at the next boot: found in
/// /etc/network/interfaces and interfaces.d, shown as a diff by `--dry-run` (nothing
/// changes), then fixed by `enable`.
#[test]
fn ifupdown_privext_is_found_shown_and_fixed() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.d/.keep", "");
    let main = "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n\
                auto eth0\niface eth0 inet dhcp\niface eth0 inet6 auto\n    privext 0\n";
    put(r, "etc/network/interfaces", main);
    put(
        r,
        "etc/network/interfaces.d/wlan0",
        "iface wlan0 inet6 dhcp\n\tprivext 1\n",
    );
    stage_proc(r, &["eth0", "wlan0"]);
    let before = tree(r);
    let req = enable(Prefer::Temporary, "1d", "2d");
    let dry = dry_run(&req, &target(r)).unwrap();
    assert_eq!(tree(r), before, "--dry-run changed files");
    assert_eq!(
        std::fs::read_to_string(r.join("proc/sys/net/ipv6/conf/eth0/use_tempaddr")).unwrap(),
        "0\n",
        "--dry-run wrote a sysctl"
    );
    assert_eq!(dry.managers, vec![Manager::Ifupdown]);
    let all = dry.diffs.concat();
    assert!(
        all.contains(
            "--- a/etc/network/interfaces\n+++ b/etc/network/interfaces\n@@ -6,4 +6,4 @@\n \
             auto eth0\n iface eth0 inet dhcp\n iface eth0 inet6 auto\n-    privext 0\n+    privext 2\n"
        ),
        "{all}"
    );
    assert!(all.contains("-\tprivext 1\n+\tprivext 2\n"), "{all}");
    assert!(
        all.contains("--- /dev/null\n+++ b/etc/sysctl.d/60-v6home-privacy.conf\n"),
        "{all}"
    );
    assert!(
        dry.live
            .iter()
            .any(|(p, now, new)| p.ends_with("eth0/use_tempaddr")
                && now.as_deref() == Some("0")
                && new == "2"),
        "{:?}",
        dry.live
    );
    assert!(
        dry.plan
            .notes
            .iter()
            .any(|n| n.contains("/etc/network/interfaces:9") && n.contains("privext 0")),
        "{:?}",
        dry.plan.notes
    );

    // The real run rewrites exactly those lines.
    apply(&req, &target(r)).unwrap();
    let after = tree(r);
    assert_eq!(
        after["etc/network/interfaces"],
        main.replace("privext 0", "privext 2")
    );
    assert_eq!(
        after["etc/network/interfaces.d/wlan0"],
        "iface wlan0 inet6 dhcp\n\tprivext 2\n"
    );
    // Nothing left to do: a second dry run shows no file change.
    let again = dry_run(&req, &target(r)).unwrap();
    assert!(again.diffs.is_empty(), "{:?}", again.diffs);
}

#[test]
fn old_system_without_sysctl_d_uses_marked_block() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.conf", "kernel.panic = 10\n");
    stage_proc(r, &["eth0"]);
    apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap();
    apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap();
    let c = std::fs::read_to_string(r.join("etc/sysctl.conf")).unwrap();
    assert!(c.starts_with("kernel.panic = 10\n# BEGIN v6home privacy\n"));
    assert_eq!(c.matches("# BEGIN v6home privacy").count(), 1, "idempotent");
    assert!(c.contains("net.ipv6.conf.eth0.use_tempaddr = 2\n"));
    assert!(!r.join("etc/sysctl.d").exists());
}

#[test]
fn impossible_values_rejected_with_reason_and_nothing_written() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.d/.keep", "");
    stage_proc(r, &["eth0"]);
    let before = tree(r);
    for (p, v, needle) in [
        ("5s", "2d", "REGEN_ADVANCE"),
        ("1d", "2h", "shorter than the preferred"),
        ("2h", "2d", "max_addresses 16"),
        ("60s", "5m", "--force"),
    ] {
        let e = apply(&enable(Prefer::Temporary, p, v), &target(r)).unwrap_err();
        assert!(e.to_string().contains(needle), "{p}/{v}: {e}");
        assert!(matches!(e, SystemError::Config(_)));
    }
    assert_eq!(tree(r), before);
    // Lab values pass with --force and also set max_desync_factor.
    let req = Request::Enable {
        prefer: Prefer::Temporary,
        preferred: "60s".parse().unwrap(),
        valid: "5m".parse().unwrap(),
        force: true,
    };
    apply(&req, &target(r)).unwrap();
    let f = std::fs::read_to_string(r.join("etc/sysctl.d/60-v6home-privacy.conf")).unwrap();
    assert!(f.contains("net.ipv6.conf.eth0.max_desync_factor = 24\n"));
    assert!(f.contains("net.ipv6.conf.eth0.temp_prefered_lft = 60\n"));
}

#[test]
fn later_file_overriding_our_key_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "etc/sysctl.d/99-local.conf",
        "net.ipv6.conf.eth0.use_tempaddr = 0\n",
    );
    stage_proc(r, &["eth0"]);
    let e = apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap_err();
    match e {
        SystemError::Overridden { key, file, .. } => {
            assert_eq!(key, "net.ipv6.conf.eth0.use_tempaddr");
            assert_eq!(file, "/etc/sysctl.d/99-local.conf");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn status_reports_setting_temporaries_and_kernel_disabled_state() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "etc/sysctl.d/.keep", "");
    stage_proc(r, &["eth0", "eth1"]);
    apply(&enable(Prefer::Temporary, "1d", "2d"), &target(r)).unwrap();
    // The kernel gave up on eth1.
    put(r, "proc/sys/net/ipv6/conf/eth1/use_tempaddr", "-1\n");
    put(
        r,
        "proc/net/if_inet6",
        "20010db8000100020000000000001234 02 40 00 01     eth0\n\
         20010db80001000200ff00fffe000004 02 40 00 100     eth0\n\
         fe800000000000000000000000000004 02 40 20 80     eth0\n\
         20010db80001000200ff00fffe000005 03 40 00 100     eth1\n",
    );
    let st = status(&target(r)).unwrap();
    assert_eq!(st.len(), 2);
    assert_eq!(st[0].name, "eth0");
    assert_eq!(st[0].use_tempaddr, Some(2));
    assert_eq!(
        st[0].temporaries,
        vec!["2001:db8:1:2::1234".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert_eq!(
        st[0].configured,
        Some((
            "2".to_string(),
            "/etc/sysctl.d/60-v6home-privacy.conf".to_string()
        ))
    );
    assert_eq!(st[1].use_tempaddr, Some(-1));
    assert!(st[1].temporaries.is_empty());
    let text = render_status(&st);
    assert!(
        text.contains("eth0: use_tempaddr=2 (on, prefer temporary)"),
        "{text}"
    );
    assert!(
        text.contains("temporary addresses (kernel): 2001:db8:1:2::1234"),
        "{text}"
    );
    assert!(text.contains("eth1: use_tempaddr=-1 (DISABLED)"), "{text}");
    assert!(
        text.contains("repair: `v6home privacy enable --iface eth1`"),
        "{text}"
    );
    assert!(!text.contains("accept_dad is 0"), "{text}");
}

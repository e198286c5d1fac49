//! What the Debian package ships from `dist/`: the example configs in /etc/v6home load with the
//! same loaders the daemons use, and every unit runs the installed binary with the configs
//! and directories the package provides.

use std::path::{Path, PathBuf};

fn dist(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist")
        .join(rel)
}

#[test]
fn example_configs_load() {
    let gw = v6h_gateway::config::GatewayConfig::load(&dist("etc/gateway.toml")).unwrap();
    let aiccu = gw
        .tunnel
        .aiccu_conf
        .clone()
        .expect("gateway.toml points at aiccu.conf");
    let text = std::fs::read_to_string(&aiccu).unwrap();
    let (conf, warnings) =
        v6h_ayiya::aiccu_conf::AiccuConfig::parse(&aiccu.display().to_string(), &text).unwrap();
    assert_eq!(conf.tunnel_id.as_deref(), Some("T1"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let ra = v6h_ra::daemon::load(gw.ra.radvd_conf.as_ref().unwrap()).unwrap();
    assert!(ra.warnings.is_empty(), "{:?}", ra.warnings);
    let (_, warnings) =
        v6h_dhcp6::config::Config::load(gw.dhcp6.dhcp6s_conf.as_ref().unwrap()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let broker = v6h_tunnel::registry::BrokerConfig::load(&dist("etc/broker.toml")).unwrap();
    assert_eq!(broker.run_dir, Path::new("/run/v6home-broker"));
}

#[test]
fn units_run_the_packaged_binary_on_packaged_paths() {
    for (unit, config) in [
        ("v6home-gateway.service", "/etc/v6home/gateway.toml"),
        ("v6home-broker.service", "/etc/v6home/broker.toml"),
        ("v6home-ra@.service", "/etc/v6home/%i.conf"),
        ("v6home-dhcp6@.service", "/etc/v6home/dhcp6s.conf"),
    ] {
        let text = std::fs::read_to_string(dist(&format!("systemd/{unit}"))).unwrap();
        let exec: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(exec.len(), 1, "{unit}");
        assert!(exec[0].starts_with("ExecStart=/usr/bin/v6home "), "{unit}");
        assert!(exec[0].contains(config), "{unit}: {}", exec[0]);
        for key in [
            "NoNewPrivileges=yes",
            "SystemCallFilter=@system-service",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "ProtectSystem=strict",
            "CapabilityBoundingSet=CAP_NET_",
        ] {
            assert!(text.contains(key), "{unit} lacks {key}");
        }
        // The daemons that run as v6home keep their state where StateDirectory= puts it.
        if text.contains("User=v6home") {
            assert!(!text.contains("ReadWritePaths="), "{unit}");
        }
    }
    // The gateway's state dir is its StateDirectory=, and --persist's drop-in is writable.
    let gw = std::fs::read_to_string(dist("systemd/v6home-gateway.service")).unwrap();
    assert!(gw.contains("StateDirectory=v6home/gateway"));
    assert!(gw.contains("--state-dir /var/lib/v6home/gateway"));
    let drop_in = Path::new("/").join(v6h_gateway::forwarding::DROP_IN);
    let rw = gw
        .lines()
        .find_map(|l| l.strip_prefix("ReadWritePaths="))
        .unwrap();
    assert!(
        rw.split_whitespace()
            .any(|p| drop_in.starts_with(p.trim_start_matches('-'))),
        "{rw} does not cover {}",
        drop_in.display()
    );
    assert!(gw.contains("Type=notify"));
}

/// Every ExecStart=/ExecStartPre= command line of the units is one the binary accepts:
/// clap checks each flag and value before it reaches the `--help` appended at the end.
#[test]
fn unit_command_lines_parse() {
    for unit in [
        "v6home-gateway.service",
        "v6home-broker.service",
        "v6home-ra@.service",
        "v6home-dhcp6@.service",
    ] {
        let text = std::fs::read_to_string(dist(&format!("systemd/{unit}"))).unwrap();
        for line in text.lines() {
            let Some(cmd) = line
                .strip_prefix("ExecStart=")
                .or_else(|| line.strip_prefix("ExecStartPre="))
            else {
                continue;
            };
            let args: Vec<String> = cmd
                .split_whitespace()
                .skip(1)
                .map(|a| a.replace("%i", "eth0"))
                .collect();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_v6home"))
                .args(&args)
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{unit}: {cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

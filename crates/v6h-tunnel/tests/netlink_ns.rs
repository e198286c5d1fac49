//! Root-only test of `v6h_net::netlink` inside a throw-away network namespace
//! (`v6h-tio<pid>-nl`, deleted on drop). Skipped when not root unless `CI` is set.

use std::net::Ipv6Addr;
use std::process::Command;

use v6h_net::netlink::{Netlink, NetlinkError, Route6, ignore_exists};

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip");
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn netlink_link_addr_route_in_namespace() {
    if !nix::unistd::geteuid().is_root() && std::env::var_os("CI").is_none() {
        eprintln!("skipping: needs root (set CI to force)");
        return;
    }
    let ns = Ns(format!("v6h-tio{}-nl", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    ip(&[
        "-n", &ns.0, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    ip(&["-n", &ns.0, "link", "set", "d1", "up"]);
    let path = format!("/run/netns/{}", ns.0);
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let nl = Netlink::new().unwrap();
            assert!(matches!(
                nl.link_index("nope0").await,
                Err(NetlinkError::NoSuchLink(_))
            ));
            nl.set_mtu("d0", 1280).await.unwrap();
            assert_eq!(nl.link_mtu("d0").await.unwrap(), Some(1280));
            nl.set_link_up("d0", true).await.unwrap();
            let a: Ipv6Addr = "2001:db8:2ff:1::2".parse().unwrap();
            nl.add_addr6("d0", a, 64, true).await.unwrap();
            assert!(matches!(
                nl.add_addr6("d0", a, 64, true).await,
                Err(NetlinkError::Exists { .. })
            ));
            ignore_exists(nl.add_addr6("d0", a, 64, true).await).unwrap();
            assert!(matches!(
                nl.add_addr6("d0", a, 129, true).await,
                Err(NetlinkError::PrefixLen(129))
            ));
            let addrs = nl.addrs6(Some("d0")).await.unwrap();
            assert!(
                addrs.iter().any(|x| x.addr == a && x.prefix_len == 64),
                "{addrs:?}"
            );
            let gw: Ipv6Addr = "2001:db8:2ff:1::1".parse().unwrap();
            nl.add_route6("d0", Route6::default_via(gw)).await.unwrap();
            let sub = Route6 {
                mtu: Some(1280),
                ..Route6::prefix("2001:db8:1234::".parse().unwrap(), 48)
            };
            nl.add_route6("d0", sub).await.unwrap();
            let out = Command::new("ip").args(["-6", "route"]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("default via 2001:db8:2ff:1::1 dev d0"),
                "{text}"
            );
            assert!(
                text.contains("2001:db8:1234::/48 dev d0") && text.contains("mtu 1280"),
                "{text}"
            );
            nl.del_route6("d0", sub).await.unwrap();
            let out = Command::new("ip").args(["-6", "route"]).output().unwrap();
            assert!(!String::from_utf8_lossy(&out.stdout).contains("2001:db8:1234::/48"));
            nl.set_link_up("d0", false).await.unwrap();
        });
    })
    .join()
    .expect("namespace thread");
}

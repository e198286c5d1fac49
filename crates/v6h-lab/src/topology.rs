//! The lab's fixed plan: nodes, links and addresses (described in `docs/lab.md`), as data.
//!
//! Nothing here touches the system; [`crate::Lab`] turns the plan into `ip`/`nft` commands.

use std::fmt;
use std::str::FromStr;

/// A node of the lab: one network namespace named `v6h-<lab>-<node>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// Web and DNS server on the IPv6 internet.
    Inet,
    /// The VPS that runs `v6home broker` (IPv4 internet + IPv6 upstream).
    Pop,
    /// The DSL modem: IPv4 NAT, no IPv6.
    Isp,
    /// The home router that runs `v6home tunnel` / `v6home gateway`.
    Gw,
    /// A laptop on the LAN.
    Host,
    /// The LAN switch (a bridge); internal, not a host.
    Lan,
}

impl Node {
    /// Every node, in creation order.
    pub const ALL: [Node; 6] = [
        Node::Inet,
        Node::Pop,
        Node::Isp,
        Node::Gw,
        Node::Host,
        Node::Lan,
    ];

    /// The nodes a user sees (the LAN switch is hidden).
    pub const HOSTS: [Node; 5] = [Node::Inet, Node::Pop, Node::Isp, Node::Gw, Node::Host];

    /// Short name used in namespace names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Node::Inet => "inet",
            Node::Pop => "pop",
            Node::Isp => "isp",
            Node::Gw => "gw",
            Node::Host => "host",
            Node::Lan => "lan",
        }
    }

    /// What the node stands for in the home setup.
    pub fn role(self) -> &'static str {
        match self {
            Node::Inet => "IPv6 internet: web + DNS server",
            Node::Pop => "VPS / PoP: broker (TIC + AYIYA)",
            Node::Isp => "DSL modem: IPv4 NAT, no IPv6",
            Node::Gw => "home router: tunnel client, RA, DHCPv6",
            Node::Host => "laptop: SLAAC + privacy",
            Node::Lan => "LAN switch (bridge)",
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown node name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lab node {0:?}: expected one of inet, pop, isp, gw, host")]
pub struct UnknownNode(pub String);

impl FromStr for Node {
    type Err = UnknownNode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Node::ALL
            .into_iter()
            .find(|n| n.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownNode(s.to_string()))
    }
}

/// Addresses of the plan (documentation prefixes only).
pub mod addr {
    /// pop's IPv4 address on the IPv4 internet (TIC and AYIYA listen here).
    pub const POP_V4: &str = "198.51.100.1";
    /// isp's WAN address: what the NAT rewrites home traffic to.
    pub const ISP_WAN_V4: &str = "198.51.100.2";
    /// isp's LAN address: the home's IPv4 default gateway.
    pub const ISP_LAN_V4: &str = "192.0.2.1";
    /// gw's LAN IPv4 address.
    pub const GW_V4: &str = "192.0.2.2";
    /// host's LAN IPv4 address.
    pub const HOST_V4: &str = "192.0.2.10";
    /// pop's IPv6 address toward inet.
    pub const POP_UPSTREAM_V6: &str = "2001:db8:ff00::1";
    /// inet's IPv6 address toward pop.
    pub const INET_V6: &str = "2001:db8:ff00::2";
    /// The web server's address on inet.
    pub const WEB_V6: &str = "2001:db8:ffff::80";
    /// The DNS server's address on inet.
    pub const DNS_V6: &str = "2001:db8:ffff::53";
    /// The name the DNS server resolves to [`WEB_V6`].
    pub const WEB_NAME: &str = "www.v6home.test";
    /// The tunnel's point-to-point /64 (T1).
    pub const TUNNEL_PREFIX: &str = "2001:db8:2ff:1::/64";
    /// The routed subnet of the home.
    pub const ROUTED_PREFIX: &str = "2001:db8:1234::/48";
    /// The LAN /64 that gw advertises.
    pub const LAN_PREFIX: &str = "2001:db8:1234::/64";
}

/// One veth pair: `(node, ifname)` on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    /// First end.
    pub a: (Node, &'static str),
    /// Second end.
    pub b: (Node, &'static str),
}

/// The cables of the lab. The LAN switch ports are named after the node they lead to.
pub const WIRES: [Wire; 5] = [
    Wire {
        a: (Node::Inet, "eth0"),
        b: (Node::Pop, "eth1"),
    },
    Wire {
        a: (Node::Pop, "eth0"),
        b: (Node::Isp, "eth0"),
    },
    Wire {
        a: (Node::Isp, "eth1"),
        b: (Node::Lan, "isp"),
    },
    Wire {
        a: (Node::Gw, "eth0"),
        b: (Node::Lan, "gw"),
    },
    Wire {
        a: (Node::Host, "eth0"),
        b: (Node::Lan, "host"),
    },
];

/// Name of the bridge inside the LAN switch namespace.
pub const BRIDGE: &str = "br0";

/// The nftables ruleset of the DSL modem: masquerade the LAN out of the WAN port.
pub const ISP_NFT_RULESET: &str = "\
table ip v6h_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 192.0.2.0/24 oifname \"eth0\" masquerade
    }
}
";

/// Sysctls per node, applied before links come up. Only namespaced keys.
///
/// The internet side (inet, pop) skips DAD on its links: in the story those machines have been
/// up for years, so their link-local addresses must be usable the moment the lab is. The home
/// (gw, host) keeps the kernel's DAD, which privacy and RA behaviour depend on.
pub fn sysctls(node: Node) -> &'static [(&'static str, &'static str)] {
    match node {
        Node::Inet => &[
            ("net.ipv6.conf.all.forwarding", "0"),
            ("net.ipv6.conf.default.dad_transmits", "0"),
        ],
        Node::Pop => &[
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv6.conf.default.dad_transmits", "0"),
            ("net.ipv4.ip_forward", "0"),
        ],
        Node::Isp => &[
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.ip_forward", "1"),
        ],
        // The router: no SLAAC on its own LAN port. Forwarding is the gateway's job.
        Node::Gw => &[
            ("net.ipv6.conf.default.accept_ra", "0"),
            ("net.ipv6.conf.default.autoconf", "0"),
        ],
        Node::Host => &[],
        Node::Lan => &[
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
        ],
    }
}

/// Per-interface sysctls applied after the interface exists and before it comes up.
pub fn iface_sysctls(node: Node) -> &'static [(&'static str, &'static str)] {
    match node {
        Node::Gw => &[
            ("net.ipv6.conf.eth0.accept_ra", "0"),
            ("net.ipv6.conf.eth0.autoconf", "0"),
        ],
        Node::Host => &[
            ("net.ipv6.conf.eth0.accept_ra", "1"),
            ("net.ipv6.conf.eth0.autoconf", "1"),
            ("net.ipv6.conf.eth0.use_tempaddr", "2"),
        ],
        _ => &[],
    }
}

/// Addresses per node as `(ifname, cidr)`.
pub fn addresses(node: Node) -> &'static [(&'static str, &'static str)] {
    match node {
        Node::Inet => &[
            ("eth0", "2001:db8:ff00::2/64"),
            ("lo", "2001:db8:ffff::80/128"),
            ("lo", "2001:db8:ffff::53/128"),
        ],
        Node::Pop => &[("eth0", "198.51.100.1/24"), ("eth1", "2001:db8:ff00::1/64")],
        Node::Isp => &[("eth0", "198.51.100.2/24"), ("eth1", "192.0.2.1/24")],
        Node::Gw => &[("eth0", "192.0.2.2/24")],
        Node::Host => &[("eth0", "192.0.2.10/24")],
        Node::Lan => &[],
    }
}

/// Static routes per node as `ip route add` arguments.
pub fn routes(node: Node) -> &'static [&'static [&'static str]] {
    match node {
        Node::Inet => &[&[
            "-6",
            "2001:db8::/32",
            "via",
            "2001:db8:ff00::1",
            "dev",
            "eth0",
        ]],
        // The PoP's upstream: the whole IPv6 internet is behind inet.
        Node::Pop => &[&["-6", "default", "via", "2001:db8:ff00::2", "dev", "eth1"]],
        Node::Gw | Node::Host => &[&["default", "via", "192.0.2.1", "dev", "eth0"]],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        for n in Node::ALL {
            assert_eq!(n.as_str().parse::<Node>().unwrap(), n);
        }
        assert!("router".parse::<Node>().is_err());
        assert_eq!("GW".parse::<Node>().unwrap(), Node::Gw);
    }

    #[test]
    fn every_interface_name_fits_ifnamsiz() {
        for w in WIRES {
            assert!(w.a.1.len() <= 15 && w.b.1.len() <= 15);
        }
    }

    #[test]
    fn plan_uses_documentation_prefixes_only() {
        for n in Node::ALL {
            for (_, cidr) in addresses(n) {
                let ok = cidr.starts_with("2001:db8:")
                    || cidr.starts_with("192.0.2.")
                    || cidr.starts_with("198.51.100.")
                    || cidr.starts_with("203.0.113.");
                assert!(ok, "{cidr} is not a documentation address");
            }
        }
    }

    #[test]
    fn every_wired_interface_belongs_to_a_known_node() {
        // Each node except the switch has exactly the interfaces the plan addresses.
        for n in Node::HOSTS {
            for (ifname, _) in addresses(n) {
                if *ifname == "lo" {
                    continue;
                }
                assert!(
                    WIRES
                        .iter()
                        .any(|w| w.a == (n, *ifname) || w.b == (n, *ifname)),
                    "{n}:{ifname} has an address but no cable"
                );
            }
        }
    }
}

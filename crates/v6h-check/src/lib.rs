//! `v6home check`: the ipv6-test.com of the LAN. Run on any host, it tells plainly whether
//! IPv6 works and, if not, why: addresses, temporary addresses and source selection, the
//! default route, DNS servers from RDNSS and DHCPv6, AAAA resolution, ICMPv6 echo, HTTP to the
//! name and to the literal, and the path MTU.
//!
//! The parsers ([`url`], [`dns`], [`procnet`]) are pure; [`probe`] holds the sockets; [`run`]
//! strings them together into a [`report::Report`].

#![forbid(unsafe_code)]

pub mod dns;
pub mod probe;
pub mod procnet;
pub mod report;
pub mod url;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use probe::PathMtu;
use report::Report;
use url::Host;

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The URL to fetch (`http://name/` or `http://[literal]/`).
    pub url: String,
    /// The name to resolve; defaults to the URL's host when it is a name.
    pub name: Option<String>,
    /// The interface; defaults to the one with the default route, else the first with IPv6.
    pub iface: Option<String>,
    /// Extra DNS servers to try after the learned ones.
    pub dns: Vec<Ipv6Addr>,
    /// How long each probe waits for an answer.
    pub wait: Duration,
}

/// Errors that stop the check before it starts.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The URL cannot be checked.
    #[error(transparent)]
    Url(#[from] url::UrlError),
    /// No interface to check.
    #[error("no IPv6 interface found{0}: give one with --iface")]
    NoInterface(String),
    /// Reading the system state failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn read(path: &str) -> Result<String, CheckError> {
    std::fs::read_to_string(path).map_err(|e| CheckError::Io(path.to_string(), e))
}

fn pick_interface(
    wanted: Option<&str>,
    addrs: &[procnet::IfAddr],
    routes: &[procnet::Route],
) -> Result<String, CheckError> {
    if let Some(w) = wanted {
        return if addrs.iter().any(|a| a.ifname == w) {
            Ok(w.to_string())
        } else {
            Err(CheckError::NoInterface(format!(" named {w}")))
        };
    }
    routes
        .iter()
        .find(|r| r.is_default_via_router())
        .map(|r| r.ifname.clone())
        .or_else(|| {
            addrs
                .iter()
                .find(|a| a.ifname != "lo" && a.scope == 0x20)
                .map(|a| a.ifname.clone())
        })
        .ok_or_else(|| CheckError::NoInterface(String::new()))
}

/// The link-layer address in `/sys/class/net/<if>/address`, if it is one: 6 to 20 octets of
/// two hex digits each, not all zero (tunnels have none, or zeros).
fn parse_mac(text: &str) -> Option<Vec<u8>> {
    let octets = text
        .trim()
        .split(':')
        .map(|h| {
            (h.len() == 2)
                .then(|| u8::from_str_radix(h, 16).ok())
                .flatten()
        })
        .collect::<Option<Vec<u8>>>()?;
    ((6..=20).contains(&octets.len()) && octets.iter().any(|&b| b != 0)).then_some(octets)
}

/// A random locally administered unicast MAC, for a DUID when the interface has no address.
fn random_mac() -> Vec<u8> {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac.to_vec()
}

/// Runs every check and returns the report. Errors only when the check cannot start.
pub fn run(opts: &Options) -> Result<Report, CheckError> {
    let target_url = url::parse(&opts.url)?;
    let addrs = procnet::parse_if_inet6(&read("/proc/net/if_inet6")?);
    let routes = procnet::parse_ipv6_route(&read("/proc/net/ipv6_route")?);
    let iface = pick_interface(opts.iface.as_deref(), &addrs, &routes)?;
    let sys = format!("/sys/class/net/{iface}");
    let ifindex: u32 = read(&format!("{sys}/ifindex"))?.trim().parse().unwrap_or(0);
    let mac = parse_mac(&std::fs::read_to_string(format!("{sys}/address")).unwrap_or_default())
        .unwrap_or_else(random_mac);
    let mut report = Report::default();

    // Addresses.
    let globals: Vec<&procnet::IfAddr> = addrs
        .iter()
        .filter(|a| a.ifname == iface && a.is_usable_global())
        .collect();
    let temporaries: Vec<&&procnet::IfAddr> = globals
        .iter()
        .filter(|a| a.is_temporary() && !a.is_deprecated())
        .collect();
    if globals.is_empty() {
        report.fail(
            "address",
            "Global IPv6 address",
            format!("none on {iface}"),
            "no Router Advertisement with a SLAAC prefix reached this host: is the router's RA daemon running?",
        );
    } else {
        let list: Vec<String> = globals
            .iter()
            .map(|a| {
                let kind = if a.is_temporary() {
                    "temporary"
                } else {
                    "stable"
                };
                let dep = if a.is_deprecated() {
                    ", deprecated"
                } else {
                    ""
                };
                format!("{}/{} ({kind}{dep})", a.addr, a.prefix_len)
            })
            .collect();
        report.pass("address", "Global IPv6 address", list.join(", "));
        let rows: Vec<serde_json::Value> = globals
            .iter()
            .map(|a| {
                serde_json::json!({
                    "address": a.addr.to_string(),
                    "prefix_len": a.prefix_len,
                    "temporary": a.is_temporary(),
                    "deprecated": a.is_deprecated(),
                })
            })
            .collect();
        report.set("addresses", rows);
    }
    report.set("interface", iface.clone());

    // Default route.
    match routes
        .iter()
        .find(|r| r.is_default_via_router() && r.ifname == iface)
    {
        Some(r) => {
            report.pass(
                "route",
                "Default route",
                format!("via {} dev {}", r.gateway, r.ifname),
            );
            report.set("gateway", r.gateway.to_string());
            report.set("interface", r.ifname.clone());
        }
        None => report.fail(
            "route",
            "Default route",
            "none",
            "no router offers a default route (router lifetime 0 means its upstream, e.g. the tunnel, is down)",
        ),
    }

    // Router Advertisement and RDNSS.
    let (ra, ra_error) = match probe::solicit_ra(ifindex, opts.wait.max(Duration::from_secs(2))) {
        Ok(ra) => (ra, None),
        Err(e) => (None, Some(e)),
    };
    match &ra {
        Some(ra) if ra.router_lifetime == 0 => report.warn(
            "ra",
            "Router Advertisement",
            format!("from {} with router lifetime 0", ra.router),
            "the router is not offering a default route: its tunnel may be down",
        ),
        Some(ra) => report.pass(
            "ra",
            "Router Advertisement",
            format!(
                "from {}, lifetime {} s, prefixes {}, RDNSS {}{}",
                ra.router,
                ra.router_lifetime,
                join(&ra.prefixes),
                join(&ra.dns),
                if ra.other_config { ", O flag" } else { "" }
            ),
        ),
        None => report.fail(
            "ra",
            "Router Advertisement",
            match &ra_error {
                Some(e) => format!("cannot send a Router Solicitation on {iface}: {e}"),
                None => format!("no answer to a Router Solicitation on {iface}"),
            },
            "no IPv6 router on this link: start the router's RA daemon (v6home ra / v6home gateway)",
        ),
    }

    if let Some(ra) = &ra {
        report.set("router", ra.router.to_string());
        report.set("router_lifetime_s", ra.router_lifetime);
        report.set("other_config", ra.other_config);
        report.set("prefixes", ra.prefixes.clone());
        report.set("rdnss", strings(&ra.dns));
        if let Some(mtu) = ra.mtu {
            report.set("mtu", mtu);
        }
    }

    // DHCPv6 (stateless).
    let (dhcp, dhcp_error) =
        match probe::dhcpv6_dns(ifindex, &mac, opts.wait.min(Duration::from_secs(2))) {
            Ok(d) => (d, None),
            Err(e) => (None, Some(e)),
        };
    match &dhcp {
        Some(dns) if !dns.is_empty() => {
            report.pass("dhcpv6", "DHCPv6 DNS servers", join(dns));
            report.set("dns_servers", strings(dns));
        }
        Some(_) => report.warn(
            "dhcpv6",
            "DHCPv6 DNS servers",
            "a Reply without DNS servers",
            "configure `option domain-name-servers` on the DHCPv6 server",
        ),
        None => report.warn(
            "dhcpv6",
            "DHCPv6 DNS servers",
            match dhcp_error {
                Some(e) => format!("cannot send an Information-Request: {e}"),
                None => "no Reply to an Information-Request".to_string(),
            },
            "clients that ignore RDNSS need a DHCPv6 server (v6home dhcp6)",
        ),
    }

    // DNS servers in order: RDNSS, DHCPv6, then the ones given.
    let mut servers: Vec<Ipv6Addr> = Vec::new();
    for s in ra
        .iter()
        .flat_map(|r| r.dns.iter())
        .chain(dhcp.iter().flatten())
        .chain(opts.dns.iter())
    {
        if !servers.contains(s) {
            servers.push(*s);
        }
    }
    let name = opts.name.clone().or(match &target_url.host {
        Host::Name(n) => Some(n.clone()),
        Host::Literal(_) => None,
    });
    let mut resolved: Option<Ipv6Addr> = None;
    if let Some(name) = &name {
        resolve_step(&mut report, &servers, name, opts.wait, &mut resolved);
    }
    let target = match &target_url.host {
        Host::Literal(IpAddr::V6(a)) => Some(*a),
        Host::Literal(IpAddr::V4(_)) => None,
        Host::Name(_) => resolved,
    };
    let Some(target) = target else {
        report.fail(
            "target",
            "Target",
            format!("no IPv6 address for {}", target_url.host),
            "the check needs an IPv6 target: a name with AAAA records or an [IPv6] literal",
        );
        return Ok(report);
    };

    // Source address selection.
    match probe::source_for(target) {
        Ok(src) => {
            let is_temp = temporaries.iter().any(|a| a.addr == src);
            if is_temp {
                report.pass("source", "Temporary address as source", format!("{src}"));
            } else if temporaries.is_empty() {
                report.warn(
                    "source",
                    "Temporary address as source",
                    format!("{src} (no temporary address exists)"),
                    "privacy extensions are off: `v6home privacy enable` (or the agent) fixes that",
                );
            } else {
                report.warn(
                    "source",
                    "Temporary address as source",
                    format!("{src} is used, not the temporary {}", temporaries[0].addr),
                    "set use_tempaddr=2 (prefer temporary): `v6home privacy enable --prefer temporary`",
                );
            }
        }
        Err(e) => report.fail(
            "source",
            "Temporary address as source",
            format!("no source for {target}: {e}"),
            "no route to the target",
        ),
    }

    if let Ok(src) = probe::source_for(target) {
        report.set("source", src.to_string());
        report.set("temporary", temporaries.iter().any(|a| a.addr == src));
    }

    // ICMPv6 echo.
    let mut pinger = probe::Pinger::new(target)
        .map_err(|e| CheckError::Io("opening an ICMPv6 socket (needs root)".into(), e))?;
    match pinger.echo(64, opts.wait) {
        Ok(probe::Echo::Reply(t)) => {
            report.pass(
                "ping",
                "ICMPv6 echo",
                format!("{target} answered in {:.1} ms", t.as_secs_f64() * 1000.0),
            );
            report.set("rtt_ms", t.as_secs_f64() * 1000.0);
            report.set("target", target.to_string());
        }
        Ok(_) => report.fail(
            "ping",
            "ICMPv6 echo",
            format!("no reply from {target} within {} s", opts.wait.as_secs()),
            "packets do not get through: check the default route and the router's tunnel",
        ),
        Err(e) => report.fail(
            "ping",
            "ICMPv6 echo",
            e.to_string(),
            "sending failed: no route?",
        ),
    }

    // HTTP to the name and to the literal.
    let addr = SocketAddr::new(IpAddr::V6(target), target_url.port);
    if let Host::Name(n) = &target_url.host {
        http_step(
            &mut report,
            "http-name",
            &format!("HTTP GET {}", target_url),
            addr,
            &target_url.host_header(),
            &target_url.path,
            opts.wait,
            n,
        );
    }
    let literal = url::HttpUrl {
        host: Host::Literal(IpAddr::V6(target)),
        port: target_url.port,
        path: target_url.path.clone(),
    };
    http_step(
        &mut report,
        "http-literal",
        &format!("HTTP GET {literal}"),
        addr,
        &literal.host_header(),
        &literal.path,
        opts.wait,
        &target.to_string(),
    );

    // Path MTU.
    match probe::probe_path_mtu(&mut pinger, opts.wait) {
        Ok(PathMtu::Known(mtu)) => {
            report.pass("pmtu", "Path MTU", format!("{mtu} bytes to {target}"));
            report.set("mtu", mtu);
            report.set("target", target.to_string());
        }
        Ok(PathMtu::BlackHole { works, lost }) => {
            report.fail(
                "pmtu",
                "Path MTU",
                format!("{lost}-byte packets vanish without Packet Too Big; {works} bytes get through"),
                "MTU black hole: a filter drops big packets or ICMPv6 Packet Too Big; advertise the tunnel MTU (AdvLinkMTU 1280) or fix the filter",
            );
            report.set("mtu_works", works);
            report.set("mtu_lost", lost);
        }
        Ok(PathMtu::Unreachable) => report.fail(
            "pmtu",
            "Path MTU",
            format!("no echo reply from {target} at any size"),
            "the target does not answer ICMPv6 echo",
        ),
        Err(e) => report.fail("pmtu", "Path MTU", e.to_string(), "probe failed"),
    }
    Ok(report)
}

fn resolve_step(
    report: &mut Report,
    servers: &[Ipv6Addr],
    name: &str,
    wait: Duration,
    resolved: &mut Option<Ipv6Addr>,
) {
    let title = format!("AAAA {name}");
    if servers.is_empty() {
        report.fail(
            "dns",
            &title,
            "no DNS server learned",
            "neither RDNSS nor DHCPv6 gave a DNS server: add RDNSS to the RA or run the DHCPv6 server",
        );
        return;
    }
    let mut errors = Vec::new();
    for server in servers {
        match probe::resolve_aaaa(*server, name, wait) {
            Ok(addrs) if !addrs.is_empty() => {
                *resolved = addrs.first().copied();
                report.pass("dns", &title, format!("{} (from {server})", join(&addrs)));
                report.set("addresses", strings(&addrs));
                report.set("server", server.to_string());
                return;
            }
            Ok(_) => errors.push(format!("{server}: no AAAA record")),
            Err(e) => errors.push(e),
        }
    }
    report.fail(
        "dns",
        &title,
        errors.join("; "),
        "the DNS server is unreachable or has no AAAA record: check the tunnel and the server",
    );
}

#[allow(clippy::too_many_arguments)]
fn http_step(
    report: &mut Report,
    id: &'static str,
    title: &str,
    addr: SocketAddr,
    host_header: &str,
    path: &str,
    wait: Duration,
    what: &str,
) {
    match probe::http_get(addr, host_header, path, wait) {
        Ok(r) if (200..400).contains(&r.status) => {
            report.pass(
                id,
                title,
                format!(
                    "{} in {} ms from {}",
                    r.status,
                    r.elapsed.as_millis(),
                    r.source
                ),
            );
            report.set("status", r.status);
            report.set("elapsed_ms", r.elapsed.as_secs_f64() * 1000.0);
            report.set("source", r.source.to_string());
        }
        Ok(r) => {
            report.warn(
                id,
                title,
                format!("status {} from {what}", r.status),
                "the server answered with an error",
            );
            report.set("status", r.status);
        }
        Err(e) => report.fail(
            id,
            title,
            e,
            "TCP over IPv6 fails: check the route, the tunnel and the path MTU",
        ),
    }
}

/// Items as a list of strings, for JSON values.
fn strings<T: std::fmt::Display>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_is_taken_from_the_default_route() {
        let addrs = procnet::parse_if_inet6(
            "fe80000000000000c0a227fffe4299ea 02 40 20 80     eth0\n\
             fe80000000000000c0a227fffe4299eb 03 40 20 80     eth1\n",
        );
        let routes = procnet::parse_ipv6_route(
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe80000000000000d4c0a4fffe8e7f58 00000400 00000001 00000000 00450003     eth1\n",
        );
        assert_eq!(pick_interface(None, &addrs, &routes).unwrap(), "eth1");
        assert_eq!(pick_interface(None, &addrs, &[]).unwrap(), "eth0");
        assert_eq!(
            pick_interface(Some("eth0"), &addrs, &routes).unwrap(),
            "eth0"
        );
        assert!(pick_interface(Some("wlan0"), &addrs, &routes).is_err());
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:5e:10:00:01\n"),
            Some(vec![2, 0, 0x5e, 0x10, 0, 1])
        );
        // Before the fix bad octets were skipped, giving a short or empty DUID-LL.
        for bad in [
            "",
            "\n",
            "00:00:00:00:00:00",
            "02:00:5e:zz:00:01",
            "2:0:5e:10:0:1",
            "01:02",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
        let m = random_mac();
        assert_eq!(m.len(), 6);
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
    }
}

//! What the kernel must change so the PoP's TUN device matches the registry: a pure function
//! from the installed state (addresses and static routes on the device) and the tunnels the PoP
//! serves to a list of changes. The IO shell reads the installed state over netlink, applies
//! the changes and rebuilds the [`super::PopTable`] from the same tunnel list, at start (so
//! nothing survives a crash) and on every registry change.
//!
//! Only enabled tunnels are served: a disabled or deleted tunnel has no table entry, no
//! address and no routes, so it forwards nothing.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use crate::prefix::Prefix6;
use crate::registry::{AdminState, Tunnel};

/// A route on the TUN device: destination and MTU metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunRoute {
    /// Destination prefix.
    pub prefix: Prefix6,
    /// Route MTU.
    pub mtu: Option<u32>,
}

/// What is installed on the TUN device now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Global IPv6 addresses (the PoP's `::1` of each tunnel, as /128).
    pub addrs: Vec<Ipv6Addr>,
    /// Static routes out of the device.
    pub routes: Vec<TunRoute>,
}

/// One kernel change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Remove a route (first, so a moved prefix can be re-added).
    DelRoute(TunRoute),
    /// Remove an address.
    DelAddr(Ipv6Addr),
    /// Add an address (`/128`, no DAD).
    AddAddr(Ipv6Addr),
    /// Add a route.
    AddRoute(TunRoute),
}

/// The tunnels a PoP serves: the enabled ones.
pub fn served(tunnels: &[Tunnel]) -> Vec<Tunnel> {
    tunnels
        .iter()
        .filter(|t| t.admin == AdminState::Enabled)
        .cloned()
        .collect()
}

/// The addresses and routes `tunnels` need (disabled ones need none).
pub fn wanted(tunnels: &[Tunnel]) -> Installed {
    let mut out = Installed::default();
    for t in tunnels.iter().filter(|t| t.admin == AdminState::Enabled) {
        out.addrs.push(t.pop_addr());
        for p in std::iter::once(t.prefix).chain(t.subnets.iter().copied()) {
            out.routes.push(TunRoute {
                prefix: p,
                mtu: Some(u32::from(t.mtu)),
            });
        }
    }
    out
}

fn is_global(a: &Ipv6Addr) -> bool {
    let s = a.segments();
    (s[0] & 0xffc0) != 0xfe80 && !a.is_multicast() && !a.is_loopback() && !a.is_unspecified()
}

/// The changes that turn `installed` into what `tunnels` need: deletions first, then
/// additions, each sorted. Link-local addresses are never touched; a route whose MTU differs is
/// deleted and added again.
pub fn plan(installed: &Installed, tunnels: &[Tunnel]) -> Vec<Change> {
    let want = wanted(tunnels);
    let have_addrs: BTreeSet<Ipv6Addr> =
        installed.addrs.iter().copied().filter(is_global).collect();
    let want_addrs: BTreeSet<Ipv6Addr> = want.addrs.iter().copied().collect();
    let have_routes: BTreeSet<TunRoute> = installed.routes.iter().copied().collect();
    let want_routes: BTreeSet<TunRoute> = want.routes.iter().copied().collect();
    let mut out: Vec<Change> = Vec::new();
    out.extend(
        have_routes
            .difference(&want_routes)
            .map(|r| Change::DelRoute(*r)),
    );
    out.extend(
        have_addrs
            .difference(&want_addrs)
            .map(|a| Change::DelAddr(*a)),
    );
    out.extend(
        want_addrs
            .difference(&have_addrs)
            .map(|a| Change::AddAddr(*a)),
    );
    out.extend(
        want_routes
            .difference(&have_routes)
            .map(|r| Change::AddRoute(*r)),
    );
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u32, prefix: &str, subnets: &[&str], admin: AdminState) -> Tunnel {
        Tunnel {
            id,
            owner: "lab".into(),
            prefix: prefix.parse().unwrap(),
            subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
            mtu: 1280,
            heartbeat: 60,
            password: "0123456789abcdef".into(),
            admin,
            name: None,
        }
    }

    fn route(p: &str, mtu: u32) -> TunRoute {
        TunRoute {
            prefix: p.parse().unwrap(),
            mtu: Some(mtu),
        }
    }

    #[test]
    fn from_nothing_adds_addresses_then_routes() {
        let tunnels = [t(
            1,
            "2001:db8:2ff:1::/64",
            &["2001:db8:1234::/48"],
            AdminState::Enabled,
        )];
        let c = plan(&Installed::default(), &tunnels);
        assert_eq!(
            c,
            vec![
                Change::AddAddr("2001:db8:2ff:1::1".parse().unwrap()),
                Change::AddRoute(route("2001:db8:2ff:1::/64", 1280)),
                Change::AddRoute(route("2001:db8:1234::/48", 1280)),
            ]
        );
        let after = wanted(&tunnels);
        assert!(plan(&after, &tunnels).is_empty(), "idempotent");
    }

    #[test]
    fn deleted_disabled_and_leftover_tunnels_lose_everything() {
        let installed = Installed {
            addrs: vec![
                "fe80::1".parse().unwrap(),
                "2001:db8:2ff:1::1".parse().unwrap(),
                "2001:db8:2ff:2::1".parse().unwrap(),
                "2001:db8:2ff:9::1".parse().unwrap(),
            ],
            routes: vec![
                route("2001:db8:2ff:1::/64", 1280),
                route("2001:db8:2ff:2::/64", 1280),
                route("2001:db8:1235::/48", 1280),
                route("2001:db8:2ff:9::/64", 1400),
            ],
        };
        // T1 stays, T2 is disabled, T9 and 1235::/48 are leftovers of a crashed run.
        let tunnels = [
            t(1, "2001:db8:2ff:1::/64", &[], AdminState::Enabled),
            t(2, "2001:db8:2ff:2::/64", &[], AdminState::Disabled),
        ];
        let c = plan(&installed, &tunnels);
        assert_eq!(
            c,
            vec![
                Change::DelRoute(route("2001:db8:2ff:2::/64", 1280)),
                Change::DelRoute(route("2001:db8:2ff:9::/64", 1400)),
                Change::DelRoute(route("2001:db8:1235::/48", 1280)),
                Change::DelAddr("2001:db8:2ff:2::1".parse().unwrap()),
                Change::DelAddr("2001:db8:2ff:9::1".parse().unwrap()),
            ]
        );
        assert_eq!(served(&tunnels).len(), 1);
    }

    #[test]
    fn mtu_change_replaces_the_route() {
        let installed = wanted(&[t(1, "2001:db8:2ff:1::/64", &[], AdminState::Enabled)]);
        let mut t1 = t(1, "2001:db8:2ff:1::/64", &[], AdminState::Enabled);
        t1.mtu = 1400;
        assert_eq!(
            plan(&installed, &[t1]),
            vec![
                Change::DelRoute(route("2001:db8:2ff:1::/64", 1280)),
                Change::AddRoute(route("2001:db8:2ff:1::/64", 1400)),
            ]
        );
    }
}

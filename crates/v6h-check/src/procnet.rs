//! Parsers for `/proc/net/if_inet6` (addresses with their flags) and `/proc/net/ipv6_route`.

use std::net::Ipv6Addr;

/// `IFA_F_TEMPORARY`: an RFC 8981 temporary (privacy) address.
pub const IFA_F_TEMPORARY: u8 = 0x01;
/// `IFA_F_DADFAILED`: duplicate address detection failed.
pub const IFA_F_DADFAILED: u8 = 0x08;
/// `IFA_F_DEPRECATED`: preferred lifetime is over.
pub const IFA_F_DEPRECATED: u8 = 0x20;
/// `IFA_F_TENTATIVE`: DAD still running.
pub const IFA_F_TENTATIVE: u8 = 0x40;
/// `IFA_F_PERMANENT`: configured by hand, no lifetimes.
pub const IFA_F_PERMANENT: u8 = 0x80;

const RTF_GATEWAY: u32 = 0x0002;
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// One line of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Interface index.
    pub ifindex: u32,
    /// Prefix length.
    pub prefix_len: u8,
    /// Kernel scope (0 global, 0x20 link).
    pub scope: u8,
    /// `IFA_F_*` flags (low 8 bits).
    pub flags: u8,
    /// Interface name.
    pub ifname: String,
}

impl IfAddr {
    /// A global unicast address (2000::/3), not tentative and not failed.
    pub fn is_usable_global(&self) -> bool {
        (self.addr.segments()[0] & 0xe000) == 0x2000
            && self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }

    /// An RFC 8981 temporary address.
    pub fn is_temporary(&self) -> bool {
        self.flags & IFA_F_TEMPORARY != 0
    }

    /// Past its preferred lifetime.
    pub fn is_deprecated(&self) -> bool {
        self.flags & IFA_F_DEPRECATED != 0
    }
}

/// `s` as hexadecimal digits only (`from_str_radix` alone would also take a leading `+`).
fn hex<T: num_from_hex::FromHex>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    T::from_hex(s)
}

mod num_from_hex {
    /// Integers parsed from hexadecimal text.
    pub trait FromHex: Sized {
        fn from_hex(s: &str) -> Option<Self>;
    }
    macro_rules! impl_from_hex {
        ($($t:ty),*) => {$(
            impl FromHex for $t {
                fn from_hex(s: &str) -> Option<Self> {
                    <$t>::from_str_radix(s, 16).ok()
                }
            }
        )*};
    }
    impl_from_hex!(u8, u32, u128);
}

fn hex_addr(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 {
        return None;
    }
    hex::<u128>(s).map(Ipv6Addr::from)
}

/// Parses `/proc/net/if_inet6`; malformed lines are skipped.
pub fn parse_if_inet6(text: &str) -> Vec<IfAddr> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 6 {
                return None;
            }
            Some(IfAddr {
                addr: hex_addr(f[0])?,
                ifindex: hex(f[1])?,
                prefix_len: hex::<u8>(f[2]).filter(|l| *l <= 128)?,
                scope: hex(f[3])?,
                flags: hex(f[4])?,
                ifname: f[5].to_string(),
            })
        })
        .collect()
}

/// A route from `/proc/net/ipv6_route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dest: Ipv6Addr,
    /// Destination prefix length.
    pub dest_len: u8,
    /// Next hop (`::` when on-link).
    pub gateway: Ipv6Addr,
    /// Metric.
    pub metric: u32,
    /// `RTF_*` flags.
    pub flags: u32,
    /// Output interface.
    pub ifname: String,
}

impl Route {
    /// A usable default route through a router.
    pub fn is_default_via_router(&self) -> bool {
        self.dest_len == 0
            && self.flags & RTF_UP != 0
            && self.flags & RTF_GATEWAY != 0
            && self.flags & RTF_REJECT == 0
    }
}

/// Parses `/proc/net/ipv6_route`; malformed lines are skipped.
pub fn parse_ipv6_route(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 10 {
                return None;
            }
            Some(Route {
                dest: hex_addr(f[0])?,
                dest_len: hex::<u8>(f[1]).filter(|l| *l <= 128)?,
                gateway: hex_addr(f[4])?,
                metric: hex(f[5])?,
                flags: hex(f[8])?,
                ifname: f[9].to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IF_INET6: &str = "\
20010db8123400001c2a3b4c5d6e7f80 02 40 00 01     eth0
20010db8123400009cb303fffe458ba5 02 40 00 00     eth0
fe80000000000000c0a227fffe4299ea 02 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
garbage line
";

    const ROUTES: &str = "\
20010db8123400000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00040001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe80000000000000d4c0a4fffe8e7f58 00000400 00000001 00000000 00450003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn addresses_and_flags() {
        let a = parse_if_inet6(IF_INET6);
        assert_eq!(a.len(), 4);
        assert_eq!(
            a[0].addr,
            "2001:db8:1234:0:1c2a:3b4c:5d6e:7f80"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert!(a[0].is_temporary() && a[0].is_usable_global());
        assert!(!a[1].is_temporary() && a[1].is_usable_global());
        assert!(!a[2].is_usable_global());
        assert_eq!((a[2].scope, a[2].ifname.as_str()), (0x20, "eth0"));
    }

    #[test]
    fn only_hex_digits_and_real_prefix_lengths() {
        let plus = "+0000000000000000000000000000001 01 80 10 80 lo\n";
        assert!(parse_if_inet6(plus).is_empty(), "a leading + is not hex");
        let long = "00000000000000000000000000000001 01 ff 10 80 lo\n";
        assert!(parse_if_inet6(long).is_empty(), "prefix length 255");
        let sign = "00000000000000000000000000000001 +1 80 10 80 lo\n";
        assert!(parse_if_inet6(sign).is_empty());
    }

    #[test]
    fn default_route_via_router() {
        let r = parse_ipv6_route(ROUTES);
        assert_eq!(r.len(), 3);
        assert!(!r[0].is_default_via_router());
        assert!(r[1].is_default_via_router());
        assert_eq!(
            r[1].gateway,
            "fe80::d4c0:a4ff:fe8e:7f58".parse::<Ipv6Addr>().unwrap()
        );
        assert!(
            !r[2].is_default_via_router(),
            "the unreachable catch-all is not a route"
        );
    }
}

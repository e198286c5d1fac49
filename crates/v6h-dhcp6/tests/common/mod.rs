//! Helpers shared by the server tests: building client IAs and reading statuses, addresses and
//! prefixes out of replies.
#![allow(dead_code)]

use std::net::Ipv6Addr;

use v6h_dhcp6::wire::{ClientMessage, DhcpOption, Ia, IaAddr, status};

/// The IA-level status code (Success when the IA carries none).
pub fn ia_status(ia: &Ia) -> u16 {
    ia.options
        .iter()
        .find_map(|o| match o {
            DhcpOption::StatusCode { status, .. } => Some(*status),
            _ => None,
        })
        .unwrap_or(status::SUCCESS)
}

/// The message-level status code, if any.
pub fn msg_status(m: &ClientMessage) -> Option<u16> {
    m.options.iter().find_map(|o| match o {
        DhcpOption::StatusCode { status, .. } => Some(*status),
        _ => None,
    })
}

/// `(address, preferred, valid)` of each IA Address option.
pub fn addrs(ia: &Ia) -> Vec<(Ipv6Addr, u32, u32)> {
    ia.options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaAddr(a) => Some((a.addr, a.preferred, a.valid)),
            _ => None,
        })
        .collect()
}

/// `(prefix, length, preferred, valid)` of each IA Prefix option.
pub fn prefixes(ia: &Ia) -> Vec<(Ipv6Addr, u8, u32, u32)> {
    ia.options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaPrefix(p) => Some((p.prefix, p.prefix_len, p.preferred, p.valid)),
            _ => None,
        })
        .collect()
}

/// A DUID-LL for test client `n`.
pub fn duid(n: u8) -> Vec<u8> {
    vec![0, 3, 0, 1, 0, 0, 0, 0, 0, n]
}

/// An IA_NA with `addrs` as hints (zero lifetimes).
pub fn na(iaid: u32, addrs: &[Ipv6Addr]) -> DhcpOption {
    DhcpOption::IaNa(Ia {
        iaid,
        t1: 0,
        t2: 0,
        options: addrs
            .iter()
            .map(|a| {
                DhcpOption::IaAddr(IaAddr {
                    addr: *a,
                    preferred: 0,
                    valid: 0,
                    options: Vec::new(),
                })
            })
            .collect(),
    })
}

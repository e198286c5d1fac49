//! RFC 4861 §6.2.7 consistency checks of other routers' RAs against ours (radvd.md §6).

use crate::build::{self, LinkContext, Mode};
use crate::config::Interface;
use crate::wire::{NdOptionRepr, RaRepr};
use std::net::Ipv6Addr;

/// One field in which another router's RA disagrees with ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// Cur Hop Limit differs (both non-zero).
    CurHopLimit {
        /// Ours.
        ours: u8,
        /// Theirs.
        theirs: u8,
    },
    /// M flag differs.
    Managed {
        /// Ours.
        ours: bool,
    },
    /// O flag differs.
    Other {
        /// Ours.
        ours: bool,
    },
    /// Reachable Time differs (both non-zero).
    ReachableTime {
        /// Ours (ms).
        ours: u32,
        /// Theirs (ms).
        theirs: u32,
    },
    /// Retrans Timer differs (both non-zero).
    RetransTimer {
        /// Ours (ms).
        ours: u32,
        /// Theirs (ms).
        theirs: u32,
    },
    /// MTU option differs (both present).
    Mtu {
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// Valid lifetime of a prefix we also advertise differs.
    PrefixValid {
        /// The prefix.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
        /// Ours (s).
        ours: u32,
        /// Theirs (s).
        theirs: u32,
    },
    /// Preferred lifetime of a prefix we also advertise differs.
    PrefixPreferred {
        /// The prefix.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
        /// Ours (s).
        ours: u32,
        /// Theirs (s).
        theirs: u32,
    },
    /// They advertise a DNS server we do not.
    UnknownRdnss(Ipv6Addr),
    /// They advertise a search domain we do not.
    UnknownDnssl(String),
    /// Informational: they advertise a route (RIO) we do not.
    UnknownRoute {
        /// The route prefix.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
    },
    /// Informational: they advertise a NAT64 prefix we do not.
    UnknownPref64 {
        /// The prefix.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
    },
}

/// Compares a received RA with what we advertise on the interface.
pub fn check(iface: &Interface, ctx: &LinkContext, theirs: &RaRepr) -> Vec<Inconsistency> {
    use Inconsistency as I;
    let mut out = Vec::new();
    let h = &theirs.header;
    let ours_hdr = build::header(iface, ctx, Mode::Normal);
    if h.cur_hop_limit != 0
        && ours_hdr.cur_hop_limit != 0
        && h.cur_hop_limit != ours_hdr.cur_hop_limit
    {
        out.push(I::CurHopLimit {
            ours: ours_hdr.cur_hop_limit,
            theirs: h.cur_hop_limit,
        });
    }
    if h.managed != ours_hdr.managed {
        out.push(I::Managed {
            ours: ours_hdr.managed,
        });
    }
    if h.other != ours_hdr.other {
        out.push(I::Other {
            ours: ours_hdr.other,
        });
    }
    if h.reachable_time != 0
        && ours_hdr.reachable_time != 0
        && h.reachable_time != ours_hdr.reachable_time
    {
        out.push(I::ReachableTime {
            ours: ours_hdr.reachable_time,
            theirs: h.reachable_time,
        });
    }
    if h.retrans_timer != 0
        && ours_hdr.retrans_timer != 0
        && h.retrans_timer != ours_hdr.retrans_timer
    {
        out.push(I::RetransTimer {
            ours: ours_hdr.retrans_timer,
            theirs: h.retrans_timer,
        });
    }
    let ours = build::options(iface, ctx, Mode::Normal);
    let decrementing = |p: &Ipv6Addr, len: u8| {
        iface
            .prefix
            .iter()
            .any(|c| c.decrement_lifetimes && c.advertised() == *p && c.len == len)
    };
    for o in &theirs.options {
        match o {
            NdOptionRepr::Mtu(m) if iface.adv_link_mtu != 0 && *m != iface.adv_link_mtu => {
                out.push(I::Mtu {
                    ours: iface.adv_link_mtu,
                    theirs: *m,
                });
            }
            NdOptionRepr::Prefix(p) => {
                let mine = ours.iter().find_map(|x| match x {
                    NdOptionRepr::Prefix(q)
                        if q.prefix == p.prefix && q.prefix_len == p.prefix_len =>
                    {
                        Some(q)
                    }
                    _ => None,
                });
                // Decrementing lifetimes drift between routers: RFC 4861 §6.2.7 says to
                // compare expiry times, which we cannot know for the peer; skip them.
                if let Some(q) = mine
                    && !decrementing(&q.prefix, q.prefix_len)
                {
                    if q.valid_lifetime != p.valid_lifetime {
                        out.push(I::PrefixValid {
                            prefix: p.prefix,
                            len: p.prefix_len,
                            ours: q.valid_lifetime,
                            theirs: p.valid_lifetime,
                        });
                    }
                    if q.preferred_lifetime != p.preferred_lifetime {
                        out.push(I::PrefixPreferred {
                            prefix: p.prefix,
                            len: p.prefix_len,
                            ours: q.preferred_lifetime,
                            theirs: p.preferred_lifetime,
                        });
                    }
                }
            }
            NdOptionRepr::Rdnss(r) => {
                for s in &r.servers {
                    let known = ours
                        .iter()
                        .any(|x| matches!(x, NdOptionRepr::Rdnss(m) if m.servers.contains(s)));
                    if !known {
                        out.push(I::UnknownRdnss(*s));
                    }
                }
            }
            NdOptionRepr::Dnssl(d) => {
                for n in &d.domains {
                    let known = ours
                        .iter()
                        .any(|x| matches!(x, NdOptionRepr::Dnssl(m) if m.domains.contains(n)));
                    if !known {
                        out.push(I::UnknownDnssl(n.as_str().to_string()));
                    }
                }
            }
            NdOptionRepr::Route(r) => {
                let known = ours.iter().any(|x| matches!(x, NdOptionRepr::Route(m) if m.prefix == r.prefix && m.prefix_len == r.prefix_len));
                if !known {
                    out.push(I::UnknownRoute {
                        prefix: r.prefix,
                        len: r.prefix_len,
                    });
                }
            }
            NdOptionRepr::Pref64(p) => {
                let known = ours.iter().any(|x| matches!(x, NdOptionRepr::Pref64(m) if m.prefix == p.prefix && m.prefix_len == p.prefix_len));
                if !known {
                    out.push(I::UnknownPref64 {
                        prefix: p.prefix,
                        len: p.prefix_len,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

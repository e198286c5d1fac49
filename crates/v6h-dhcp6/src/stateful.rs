//! The stateful service: a [`Bindings`] implementation backed by the `v6h-lease` engine.
//!
//! [`EngineBindings`] answers IA_NA and IA_PD options of Solicit, Request, Renew, Rebind,
//! Release and Decline, and Confirm, from the address and prefix pools and host
//! reservations of [`engine_config`]. It stays sans-IO: every lease change the engine makes
//! is queued, and the caller drains it with [`EngineBindings::take_changes`] and commits it
//! to the lease store **before** sending the replies of that batch.
//!
//! IA_TA and IAs on links without pools get the stateless answer ([`NoBindings`]).

use std::net::Ipv6Addr;

use v6h_lease::{
    Change, ConfirmOutcome, Engine, EngineConfig, HostPoolLifetimes, IaKind, IaReply, IaRequest,
    Lifetimes, LinkConfig, NaPoolConfig, PdPoolConfig, Prefix, Reservation, Resource, Status,
};

use crate::config::{Config, PdPool, PoolUse};
use crate::server::{Bindings, IaContext, NoBindings};
use crate::wire::{DhcpOption, Ia, IaAddr, IaPrefix, msg};

/// Why the configuration cannot be turned into pools and reservations.
#[derive(Debug, thiserror::Error)]
pub enum StatefulError {
    /// A host block's DUID is not valid hex text.
    #[error("host {host:?}: {msg}")]
    HostDuid {
        /// The host block name.
        host: String,
        /// What is wrong.
        msg: String,
    },
    /// A host prefix has host bits set or a bad length.
    #[error("host {host:?}: {error}")]
    HostPrefix {
        /// The host block name.
        host: String,
        /// The prefix error.
        error: v6h_lease::PrefixError,
    },
    /// The lease engine refused the pools or reservations.
    #[error("stateful configuration: {0}")]
    Engine(#[from] v6h_lease::ConfigError),
}

/// Builds the engine configuration for the served interfaces `served`, or `None` when the
/// configuration has no pools and no reservations (the stateless fast path).
///
/// Each served interface is one link, and so is each `[[link]]` (a link behind relays).
/// A link's IA_NA pools are the `pool` ranges its `address-pool` statements name (lifetimes
/// from the first statement), its IA_PD pools the TOML `pd_pool` entries, and its on-link
/// prefix (for Confirm) the configured `prefix`, else its address pools' ranges. A `host`
/// block is reserved on its TOML `link`, else on the link whose prefix or address pool holds
/// its first address, else on the first served interface; its addresses and prefixes keep
/// their own lifetimes, and its `address-pool` lifetimes apply to its addresses from that pool.
pub fn engine_config(
    cfg: &Config,
    served: &[String],
) -> Result<Option<EngineConfig>, StatefulError> {
    let has_pools = cfg
        .interfaces
        .iter()
        .any(|i| !i.address_pools.is_empty() || !i.pd_pools.is_empty())
        || cfg
            .links
            .iter()
            .any(|l| !l.address_pools.is_empty() || !l.pd_pools.is_empty());
    if (!has_pools && cfg.hosts.is_empty()) || served.is_empty() {
        return Ok(None);
    }
    let mut links = Vec::with_capacity(served.len() + cfg.links.len());
    for name in served {
        let mut link = LinkConfig::new(name);
        if let Some(ifc) = cfg.interface(name) {
            link.rapid_commit = ifc.rapid_commit;
            link.on_link.extend(ifc.prefix);
            add_pools(cfg, &mut link, &ifc.address_pools, &ifc.pd_pools);
        }
        links.push(link);
    }
    for rl in &cfg.links {
        let mut link = LinkConfig::new(&rl.name);
        link.rapid_commit = rl.rapid_commit;
        link.on_link.push(rl.prefix);
        add_pools(cfg, &mut link, &rl.address_pools, &rl.pd_pools);
        links.push(link);
    }
    let mut reservations = Vec::with_capacity(cfg.hosts.len());
    let mut reserved_lifetimes = Vec::new();
    let mut host_pool_lifetimes = Vec::new();
    for h in &cfg.hosts {
        let duid = crate::duid::from_text(&h.duid).map_err(|e| StatefulError::HostDuid {
            host: h.name.clone(),
            msg: e.to_string(),
        })?;
        let mut prefixes = Vec::with_capacity(h.prefixes.len());
        for p in &h.prefixes {
            let prefix =
                Prefix::new(p.prefix, p.prefix_len).map_err(|error| StatefulError::HostPrefix {
                    host: h.name.clone(),
                    error,
                })?;
            reserved_lifetimes.push((Resource::Prefix(prefix), lifetimes(p.preferred, p.valid)));
            prefixes.push(prefix);
        }
        for a in &h.addresses {
            reserved_lifetimes.push((Resource::Addr(a.address), lifetimes(a.preferred, a.valid)));
        }
        for u in &h.address_pools {
            if let Some(p) = cfg.pools.iter().find(|p| p.name == u.pool) {
                host_pool_lifetimes.push(HostPoolLifetimes {
                    duid: duid.clone(),
                    first: p.start,
                    last: p.end,
                    lifetimes: lifetimes(u.preferred, u.valid),
                });
            }
        }
        let addresses: Vec<Ipv6Addr> = h.addresses.iter().map(|a| a.address).collect();
        let home = addresses.first().and_then(|a| {
            let a = u128::from(*a);
            links.iter().find(|l| {
                l.on_link.iter().any(|p| p.first() <= a && a <= p.last())
                    || l.na_pools
                        .iter()
                        .any(|p| u128::from(p.first) <= a && a <= u128::from(p.last))
            })
        });
        let link = match &h.link {
            Some(name) => name.clone(),
            None => home.unwrap_or(&links[0]).name.clone(),
        };
        reservations.push(Reservation {
            link,
            duid,
            addresses,
            prefixes,
        });
    }
    let mut ec = EngineConfig::new(links);
    ec.max_leases_per_client = cfg.limits.max_leases_per_client;
    ec.reservations = reservations;
    ec.reserved_lifetimes = reserved_lifetimes;
    ec.host_pool_lifetimes = host_pool_lifetimes;
    // Validate now so a bad configuration fails at load time.
    Engine::new(ec.clone())?;
    Ok(Some(ec))
}

/// Lifetimes with the default T1/T2 (0.5 and 0.8 of the preferred lifetime).
fn lifetimes(preferred: u32, valid: u32) -> Lifetimes {
    Lifetimes {
        preferred,
        valid,
        t1: None,
        t2: None,
    }
}

/// Adds the named address pools and the prefix pools (with their lifetimes) to `link`.
fn add_pools(cfg: &Config, link: &mut LinkConfig, uses: &[PoolUse], pd: &[PdPool]) {
    for u in uses {
        if let Some(p) = cfg.pools.iter().find(|p| p.name == u.pool) {
            link.na_pools.push(NaPoolConfig {
                first: p.start,
                last: p.end,
                exclude: Vec::new(),
            });
        }
    }
    if let Some(u) = uses.first() {
        link.na_lifetimes = lifetimes(u.preferred, u.valid);
    }
    for p in pd {
        link.pd_pools.push(PdPoolConfig {
            prefix: p.prefix,
            delegated_len: p.delegated_len,
            exclude: p.exclude.clone(),
        });
        link.pd_lifetimes = lifetimes(p.preferred, p.valid);
    }
}

/// Leases from the `v6h-lease` engine behind the server's [`Bindings`] trait.
#[derive(Debug)]
pub struct EngineBindings {
    engine: Engine,
}

impl EngineBindings {
    /// Bindings over a new engine for `cfg`.
    pub fn new(cfg: EngineConfig) -> Result<Self, StatefulError> {
        Ok(EngineBindings {
            engine: Engine::new(cfg)?,
        })
    }

    /// The engine (for restore, expiry, listings).
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Counters of IAs the engine refused (pool exhausted, per-client cap).
    pub fn stats(&self) -> v6h_lease::EngineStats {
        self.engine.stats()
    }

    /// Number of bound IAs.
    pub fn binding_count(&self) -> usize {
        self.engine.binding_count()
    }

    /// The lease changes made since the last call; commit them before sending replies.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.engine.take_changes()
    }
}

/// The addresses and prefixes an IA option lists.
fn listed_leases(ia: &Ia) -> Vec<Resource> {
    ia.options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaAddr(a) => Some(Resource::Addr(a.addr)),
            DhcpOption::IaPrefix(p) => {
                Some(Resource::Prefix(Prefix::containing(p.prefix, p.prefix_len)))
            }
            _ => None,
        })
        .collect()
}

fn status_message(s: Status) -> &'static str {
    match s {
        Status::Success => "success",
        Status::UnspecFail => "unspecified failure",
        Status::NoAddrsAvail => "no addresses available on this link",
        Status::NoBinding => "no binding for this IA",
        Status::NotOnLink => "not on-link",
        Status::NoPrefixAvail => "no prefixes available on this link",
    }
}

/// The IA option carrying the engine's answer.
fn ia_option(kind: IaKind, iaid: u32, r: &IaReply) -> DhcpOption {
    let mut options: Vec<DhcpOption> = r
        .leases
        .iter()
        .map(|l| match l.resource {
            Resource::Addr(addr) => DhcpOption::IaAddr(IaAddr {
                addr,
                preferred: l.preferred,
                valid: l.valid,
                options: Vec::new(),
            }),
            Resource::Prefix(p) => DhcpOption::IaPrefix(IaPrefix {
                preferred: l.preferred,
                valid: l.valid,
                prefix_len: p.len(),
                prefix: p.addr(),
                options: Vec::new(),
            }),
        })
        .collect();
    if r.status != Status::Success {
        options.push(DhcpOption::StatusCode {
            status: r.status.code(),
            message: status_message(r.status).to_owned(),
        });
    }
    let ia = Ia {
        iaid,
        t1: r.t1,
        t2: r.t2,
        options,
    };
    match kind {
        IaKind::Na => DhcpOption::IaNa(ia),
        IaKind::Pd => DhcpOption::IaPd(ia),
    }
}

impl Bindings for EngineBindings {
    fn answer_ia(&mut self, now: u64, ctx: &IaContext<'_>, ia: &DhcpOption) -> Option<DhcpOption> {
        let (kind, body) = match ia {
            DhcpOption::IaNa(i) => (IaKind::Na, i),
            DhcpOption::IaPd(i) => (IaKind::Pd, i),
            _ => return NoBindings.answer_ia(now, ctx, ia),
        };
        let Some(link) = self.engine.link_id(ctx.link) else {
            return NoBindings.answer_ia(now, ctx, ia);
        };
        let leases = listed_leases(body);
        let req = IaRequest {
            link,
            duid: ctx.client_duid,
            kind,
            iaid: body.iaid,
            leases: &leases,
        };
        let reply = match ctx.msg_type {
            msg::SOLICIT => self.engine.solicit(now, &req, ctx.rapid_commit),
            msg::REQUEST => self.engine.request(now, &req),
            msg::RENEW => self.engine.renew(now, &req),
            // The engine cannot judge an empty Rebind for an unknown IA: leave it out.
            msg::REBIND => self.engine.rebind(now, &req)?,
            msg::RELEASE | msg::DECLINE => {
                let r = if ctx.msg_type == msg::RELEASE {
                    self.engine.release(now, &req)
                } else {
                    self.engine.decline(now, &req)
                };
                // RFC 8415 §18.3.7–8: only IAs without a binding are listed in the Reply.
                if r.status == Status::Success {
                    return None;
                }
                r
            }
            _ => return None,
        };
        Some(ia_option(kind, body.iaid, &reply))
    }

    fn confirm(&mut self, _now: u64, link: &str, addrs: &[Ipv6Addr]) -> Option<bool> {
        let id = self.engine.link_id(link)?;
        match self.engine.confirm(id, addrs) {
            ConfirmOutcome::Success => Some(true),
            ConfirmOutcome::NotOnLink => Some(false),
            ConfirmOutcome::NoReply => None,
        }
    }
}

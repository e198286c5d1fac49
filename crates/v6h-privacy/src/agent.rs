//! IO shell of `v6home privacy agent`: RAs in from a raw ICMPv6 socket, DAD outcomes in from
//! rtnetlink address events, the [`crate::slaac::Agent`] core in the middle, addresses and
//! routes out over rtnetlink.
//!
//! Source steering (spec A10, `prefsrc`): userspace cannot set `IFA_F_TEMPORARY`, so once a
//! temporary has passed DAD and is current, the agent installs its own routes (protocol 0x76)
//! with `src` = that temporary: the on-link /64 with metric 255 (below the kernel's 256) and a
//! default route via each advertising router with metric 1023 (below the kernel's 1024). On
//! regeneration the routes are replaced with the successor; when no usable temporary is left
//! they are deleted and the kernel's normal source selection applies again.

use crate::iid::{StableIdentity, prefix64, with_iid};
use crate::slaac::{Action, AddrKind, Agent, Event, Params};
use crate::store::{CounterKey, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IoSliceMut;
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;
use v6h_net::addr::{
    AddrControl, AddrError, AddrEvent, AddrMonitor, AddrSpec, IFA_F_NOPREFIXROUTE, RouteSpec,
};
use v6h_ra::wire::{NdOptionRepr, RaRepr};

/// `IFA_PROTO` / route protocol tag of v6home's addresses and routes ('v').
pub const PROTO_V6HOME: u8 = 0x76;
/// Metric of the agent's on-link prefix route (kernel RA routes use 256).
pub const ONLINK_METRIC: u32 = 255;
/// Metric of the agent's default routes (kernel RA default routes use 1024).
pub const DEFAULT_METRIC: u32 = 1023;
/// Longest sleep between sweeps in ms (spec A3).
const SWEEP_MS: u64 = 30_000;
/// How long an address may stay tentative before a dump decides (1 s + 1 × 1 s + 1 s).
const DAD_DEADLINE_MS: u64 = 3000;
/// Most routers tracked at once (each gets a default route): RAs are unauthenticated, so an
/// on-link flood from distinct link-local sources must not grow the table without bound.
const MAX_ROUTERS: usize = 16;

/// Records an RA's router lifetime for `src` (0 = forget it); a new router is refused once
/// [`MAX_ROUTERS`] are known. Returns false when refused.
fn note_router(
    routers: &mut BTreeMap<Ipv6Addr, u64>,
    src: Ipv6Addr,
    lifetime_s: u16,
    now: u64,
) -> bool {
    if lifetime_s == 0 {
        routers.remove(&src);
        return true;
    }
    if routers.len() >= MAX_ROUTERS && !routers.contains_key(&src) {
        return false;
    }
    routers.insert(src, now + u64::from(lifetime_s) * 1000);
    true
}

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// State store problem (secret or counters).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Netlink problem.
    #[error(transparent)]
    Netlink(#[from] AddrError),
    /// Socket or sysctl problem.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] crate::slaac::ParamError),
    /// The interface does not exist.
    #[error("no such interface: {0}")]
    NoInterface(String),
}

fn ioe(what: impl Into<String>, source: std::io::Error) -> AgentError {
    AgentError::Io {
        what: what.into(),
        source,
    }
}

/// Agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The interface.
    pub iface: String,
    /// State directory (secret, DAD counters).
    pub state_dir: PathBuf,
    /// Core parameters.
    pub params: Params,
    /// Network_ID for RFC 7217 (empty by default).
    pub network_id: Vec<u8>,
    /// Whether to steer the source with route `src` (spec A10 `prefsrc`).
    pub prefsrc: bool,
    /// Whether to write `autoconf=0` and `use_tempaddr=0` on the interface (spec A1).
    pub take_over: bool,
}

/// Milliseconds of `CLOCK_BOOTTIME` (keeps counting during suspend).
pub fn boottime_ms() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
        Ok(ts) => {
            u64::try_from(ts.tv_sec()).unwrap_or(0) * 1000
                + u64::try_from(ts.tv_nsec()).unwrap_or(0) / 1_000_000
        }
        Err(_) => 0,
    }
}

/// What a received RA yields for the agent (pure, see [`ra_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaInfo {
    /// Router lifetime in seconds.
    pub router_lifetime: u16,
    /// Prefix events for the core.
    pub prefixes: Vec<Event>,
}

/// Why an ICMPv6 message was not accepted as an RA (RFC 4861 §6.1.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaReject {
    /// Not type 134.
    #[error("not a router advertisement")]
    NotRa,
    /// Hop limit not 255 (off-link forgery).
    #[error("hop limit {0}, not 255")]
    HopLimit(i32),
    /// Source is not link-local.
    #[error("source {0} is not link-local")]
    Source(Ipv6Addr),
    /// Malformed.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// Validates an RA and extracts its prefix events (pure).
pub fn ra_events(bytes: &[u8], src: Ipv6Addr, hop_limit: i32) -> Result<RaInfo, RaReject> {
    if bytes.first() != Some(&134) {
        return Err(RaReject::NotRa);
    }
    if hop_limit != 255 {
        return Err(RaReject::HopLimit(hop_limit));
    }
    if src.segments()[0] & 0xffc0 != 0xfe80 {
        return Err(RaReject::Source(src));
    }
    let ra = RaRepr::parse(bytes).map_err(|e| RaReject::Malformed(e.to_string()))?;
    let prefixes = ra
        .options
        .iter()
        .filter_map(|o| match o {
            NdOptionRepr::Prefix(p) => Some(Event::RaPrefix {
                prefix: p.prefix,
                prefix_len: p.prefix_len,
                autonomous: p.autonomous,
                valid: p.valid_lifetime,
                preferred: p.preferred_lifetime,
            }),
            _ => None,
        })
        .collect();
    Ok(RaInfo {
        router_lifetime: ra.header.router_lifetime,
        prefixes,
    })
}

/// A raw ICMPv6 socket bound to one interface, reporting the hop limit of each packet.
///
/// Tokio offers no safe registration for arbitrary descriptors (`AsyncFd::new` is deprecated
/// as unsound), so the raw socket is carried in a `tokio::net::UdpSocket` purely for its
/// readiness registration; only `recvmsg(2)` through `async_io` is ever called on it.
struct RaSocket {
    fd: tokio::net::UdpSocket,
}

impl RaSocket {
    fn open(iface: &str) -> Result<Self, AgentError> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| ioe("raw ICMPv6 socket", e))?;
        s.bind_device(Some(iface.as_bytes()))
            .map_err(|e| ioe(format!("bind to {iface}"), e))?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| ioe("IPV6_RECVHOPLIMIT", e.into()))?;
        s.set_nonblocking(true)
            .map_err(|e| ioe("set nonblocking", e))?;
        let std_sock: std::net::UdpSocket = s.into();
        Ok(RaSocket {
            fd: tokio::net::UdpSocket::from_std(std_sock).map_err(|e| ioe("register socket", e))?,
        })
    }

    /// Next ICMPv6 message: (bytes, source, hop limit; -1 if not reported).
    async fn recv(&self, buf: &mut [u8]) -> Result<(usize, Ipv6Addr, i32), AgentError> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
        let fd = self.fd.as_raw_fd();
        self.fd
            .async_io(tokio::io::Interest::READABLE, || {
                let mut cmsg = nix::cmsg_space!(i32);
                let mut iov = [IoSliceMut::new(&mut *buf)];
                let msg =
                    recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
                        .map_err(std::io::Error::from)?;
                let mut hop = -1;
                if let Ok(cms) = msg.cmsgs() {
                    for c in cms {
                        if let ControlMessageOwned::Ipv6HopLimit(h) = c {
                            hop = h;
                        }
                    }
                }
                let src = msg.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
                Ok((msg.bytes, src, hop))
            })
            .await
            .map_err(|e| ioe("recvmsg", e))
    }
}

fn write_sysctl(iface: &str, leaf: &str, value: &str) -> Result<(), AgentError> {
    let p = format!("/proc/sys/net/ipv6/conf/{iface}/{leaf}");
    std::fs::write(&p, value).map_err(|e| ioe(format!("write {p}"), e))
}

fn read_sysctl(iface: &str, leaf: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{iface}/{leaf}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The running agent's IO state.
struct Shell {
    cfg: AgentConfig,
    index: u32,
    nl: AddrControl,
    store: Store,
    /// Addresses waiting for a DAD verdict, with the time they were added.
    pending: BTreeMap<Ipv6Addr, u64>,
    /// Routers (link-local) and when their lifetime ends (ms).
    routers: BTreeMap<Ipv6Addr, u64>,
    /// Current preferred source per prefix.
    sources: BTreeMap<Ipv6Addr, Ipv6Addr>,
    /// Default routes we installed: router → src.
    defaults: BTreeMap<Ipv6Addr, Ipv6Addr>,
    /// Our addresses (for logs and adoption).
    ours: BTreeSet<Ipv6Addr>,
}

impl Shell {
    async fn perform(&mut self, now: u64, action: Action) {
        match action {
            Action::AddAddress {
                addr,
                preferred,
                valid,
                kind,
                replace,
            } => {
                let spec = AddrSpec {
                    addr,
                    prefix_len: 64,
                    preferred,
                    valid,
                    flags: IFA_F_NOPREFIXROUTE,
                    proto: Some(PROTO_V6HOME),
                };
                match self.nl.add(self.index, &spec, replace).await {
                    Ok(()) => {
                        if !replace {
                            tracing::info!(iface = %self.cfg.iface, %addr, ?kind, preferred, valid,
                                "address added, DAD running");
                            self.pending.insert(addr, now);
                            self.ours.insert(addr);
                        }
                    }
                    // Replacing an address that expired or failed meanwhile: not an error.
                    Err(e) if replace => {
                        tracing::debug!(%addr, error = %e, "refresh failed")
                    }
                    Err(e) if e.errno() == Some(17) => {
                        // Already there (adopted from a previous run): DAD state decides.
                        self.pending.insert(addr, now);
                        self.ours.insert(addr);
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "cannot add address");
                        self.pending
                            .insert(addr, now.saturating_sub(DAD_DEADLINE_MS));
                    }
                }
            }
            Action::RemoveAddress { addr } => {
                self.ours.remove(&addr);
                if let Err(e) = self.nl.del(self.index, addr, 64).await {
                    tracing::debug!(%addr, error = %e, "delete failed");
                }
            }
            Action::SetPreferredSource { prefix, source } => {
                if !self.cfg.prefsrc {
                    return;
                }
                let onlink = |src| RouteSpec {
                    dst: prefix,
                    prefix_len: 64,
                    via: None,
                    prefsrc: src,
                    metric: ONLINK_METRIC,
                    proto: PROTO_V6HOME,
                };
                match source {
                    Some(src) => {
                        tracing::info!(iface = %self.cfg.iface, %prefix, %src, "preferred source");
                        if let Err(e) = self.nl.replace_route(self.index, &onlink(Some(src))).await
                        {
                            tracing::warn!(error = %e, "cannot set on-link route source");
                        }
                        self.sources.insert(prefix, src);
                    }
                    None => {
                        tracing::info!(iface = %self.cfg.iface, %prefix, "no usable temporary: source steering off");
                        let _ = self.nl.del_route(self.index, &onlink(None)).await;
                        self.sources.remove(&prefix);
                    }
                }
                self.sync_defaults().await;
            }
            Action::SaveDadCounter { prefix, counter } => {
                let key = CounterKey {
                    net_iface: self.cfg.iface.as_bytes().to_vec(),
                    network_id: self.cfg.network_id.clone(),
                    prefix,
                };
                if let Err(e) = self.store.save_counter(key, counter) {
                    tracing::error!(error = %e, "cannot persist the DAD counter");
                }
            }
        }
    }

    /// The source for default routes: a global-unicast (non-ULA) current temporary.
    fn default_source(&self) -> Option<Ipv6Addr> {
        let gua = self
            .sources
            .iter()
            .find(|(p, _)| p.segments()[0] & 0xfe00 != 0xfc00)
            .map(|(_, s)| *s);
        gua.or_else(|| self.sources.values().next().copied())
    }

    /// Makes our default routes match the routers and the current source.
    async fn sync_defaults(&mut self) {
        if !self.cfg.prefsrc {
            return;
        }
        let src = self.default_source();
        let want: BTreeMap<Ipv6Addr, Ipv6Addr> = match src {
            Some(s) => self.routers.keys().map(|r| (*r, s)).collect(),
            None => BTreeMap::new(),
        };
        let route = |r: Ipv6Addr, s: Option<Ipv6Addr>| RouteSpec {
            dst: Ipv6Addr::UNSPECIFIED,
            prefix_len: 0,
            via: Some(r),
            prefsrc: s,
            metric: DEFAULT_METRIC,
            proto: PROTO_V6HOME,
        };
        let old: Vec<Ipv6Addr> = self
            .defaults
            .keys()
            .filter(|r| !want.contains_key(r))
            .copied()
            .collect();
        for r in old {
            let _ = self.nl.del_route(self.index, &route(r, None)).await;
            self.defaults.remove(&r);
        }
        for (r, s) in want {
            if self.defaults.get(&r) != Some(&s) {
                match self.nl.replace_route(self.index, &route(r, Some(s))).await {
                    Ok(()) => {
                        self.defaults.insert(r, s);
                    }
                    Err(e) => {
                        tracing::warn!(router = %r, error = %e, "cannot set default route source")
                    }
                }
            }
        }
    }

    /// Decides DAD for addresses pending too long, from a dump.
    async fn check_pending(&mut self, now: u64) -> Vec<Event> {
        let overdue: Vec<Ipv6Addr> = self
            .pending
            .iter()
            .filter(|(_, t)| now.saturating_sub(**t) >= DAD_DEADLINE_MS)
            .map(|(a, _)| *a)
            .collect();
        if overdue.is_empty() {
            return vec![];
        }
        let list = match self.nl.list(Some(self.index)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "address dump failed");
                return vec![];
            }
        };
        let mut out = Vec::new();
        for a in overdue {
            match list.iter().find(|e| e.addr == a) {
                Some(e) if e.tentative() => continue,
                Some(e) => {
                    self.pending.remove(&a);
                    out.push(Event::DadResult {
                        addr: a,
                        ok: !e.dadfailed(),
                    });
                }
                None => {
                    self.pending.remove(&a);
                    out.push(Event::DadResult { addr: a, ok: false });
                }
            }
        }
        out
    }
}

/// Runs the agent until SIGTERM/SIGINT. Addresses are left in place on exit (they expire by
/// their finite lifetimes).
pub async fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    let store = Store::open(&cfg.state_dir)?;
    let secret = store.secret()?;
    let identity = StableIdentity {
        secret: secret.to_vec(),
        net_iface: cfg.iface.as_bytes().to_vec(),
        network_id: cfg.network_id.clone(),
    };
    let counters: Vec<(Ipv6Addr, u32)> = store
        .counters()?
        .into_iter()
        .filter(|(k, _)| k.net_iface == identity.net_iface && k.network_id == identity.network_id)
        .map(|(k, v)| (k.prefix, v))
        .collect();
    let mut core = Agent::new(cfg.params.clone(), identity, counters, rand::rng())?;

    let index = nix::net::if_::if_nametoindex(cfg.iface.as_str())
        .map_err(|_| AgentError::NoInterface(cfg.iface.clone()))?;
    if cfg.take_over {
        // Spec A1: the kernel must not run SLAAC (or its temporaries) on this interface.
        write_sysctl(&cfg.iface, "autoconf", "0")?;
        write_sysctl(&cfg.iface, "use_tempaddr", "0")?;
    }
    let dad_all = read_sysctl("all", "accept_dad").unwrap_or(0);
    let dad_if = read_sysctl(&cfg.iface, "accept_dad").unwrap_or(1);
    if dad_all.max(dad_if) == 0 {
        tracing::warn!(iface = %cfg.iface,
            "accept_dad is 0: duplicates will go unnoticed; the agent does not need it off");
    }
    let mut monitor = AddrMonitor::new()?;
    let nl = AddrControl::new()?;
    let sock = RaSocket::open(&cfg.iface)?;
    tracing::info!(iface = %cfg.iface, index, "privacy agent started");
    let mut shell = Shell {
        cfg,
        index,
        nl,
        store,
        pending: BTreeMap::new(),
        routers: BTreeMap::new(),
        sources: BTreeMap::new(),
        defaults: BTreeMap::new(),
        ours: BTreeSet::new(),
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ioe("SIGTERM handler", e))?;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = boottime_ms();
        let mut wake = now + SWEEP_MS;
        if let Some(t) = core.poll_timeout() {
            wake = wake.min(t);
        }
        if let Some(t) = shell.pending.values().min() {
            wake = wake.min(t + DAD_DEADLINE_MS);
        }
        let sleep = Duration::from_millis(wake.saturating_sub(now));
        let mut events: Vec<Event> = Vec::new();
        tokio::select! {
            r = sock.recv(&mut buf) => {
                let (n, src, hop) = r?;
                let bytes = buf.get(..n).unwrap_or(&[]);
                match ra_events(bytes, src, hop) {
                    Ok(info) => {
                        let now = boottime_ms();
                        if !note_router(&mut shell.routers, src, info.router_lifetime, now) {
                            tracing::warn!(%src, max = MAX_ROUTERS, "too many routers: RA router ignored");
                        }
                        events.extend(info.prefixes);
                        shell.sync_defaults().await;
                    }
                    Err(RaReject::NotRa) => {}
                    Err(e) => tracing::warn!(%src, reason = %e, "RA ignored"),
                }
            }
            ev = monitor.next() => {
                match ev {
                    Some(AddrEvent::New(e)) if e.index == index && !e.tentative() => {
                        if shell.pending.remove(&e.addr).is_some() {
                            events.push(Event::DadResult { addr: e.addr, ok: !e.dadfailed() });
                        }
                    }
                    Some(AddrEvent::Del(e)) if e.index == index => {
                        if shell.pending.remove(&e.addr).is_some() || e.dadfailed() {
                            if e.dadfailed() {
                                tracing::warn!(addr = %e.addr, "DAD failed (duplicate on the link)");
                            }
                            events.push(Event::DadResult { addr: e.addr, ok: false });
                        } else if shell.ours.remove(&e.addr) {
                            events.push(Event::AddressRemoved { addr: e.addr });
                        }
                    }
                    Some(_) => {}
                    None => {
                        // The monitor socket died (e.g. ENOBUFS): resubscribe, the sweep dumps.
                        monitor = AddrMonitor::new()?;
                    }
                }
            }
            _ = tokio::time::sleep(sleep) => {
                events.push(Event::Timeout);
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        let now = boottime_ms();
        // Expire routers.
        let before = shell.routers.len();
        shell.routers.retain(|_, until| *until > now);
        if shell.routers.len() != before {
            shell.sync_defaults().await;
        }
        events.extend(shell.check_pending(now).await);
        if events.is_empty() {
            events.push(Event::Timeout);
        }
        for ev in events {
            if let Event::RaPrefix { prefix, .. } = &ev {
                tracing::debug!(prefix = %with_iid(&prefix64(prefix), 0), "PIO");
            }
            core.handle(now, ev);
            while let Some(a) = core.poll_action() {
                if let Action::AddAddress {
                    kind: AddrKind::Temporary,
                    replace: false,
                    ..
                } = &a
                {
                    tracing::debug!(?a, "temporary");
                }
                shell.perform(now, a).await;
            }
        }
    }
    tracing::info!("privacy agent stopping; addresses keep their finite lifetimes");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra_bytes() -> Vec<u8> {
        use v6h_ra::wire::{PrefixInfo, RaHeader};
        RaRepr {
            header: RaHeader {
                cur_hop_limit: 64,
                router_lifetime: 1800,
                ..Default::default()
            },
            options: vec![NdOptionRepr::Prefix(PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                router_addr: false,
                pd_preferred: false,
                valid_lifetime: 600,
                preferred_lifetime: 300,
                prefix: "2001:db8:1:2::".parse().unwrap(),
            })],
        }
        .emit()
        .unwrap()
    }

    #[test]
    fn router_table_is_bounded_under_ra_flood() {
        let mut routers = BTreeMap::new();
        for i in 1..=1000u16 {
            let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i);
            let accepted = note_router(&mut routers, src, 1800, 0);
            assert_eq!(accepted, usize::from(i) <= MAX_ROUTERS, "router {i}");
        }
        assert_eq!(routers.len(), MAX_ROUTERS);
        // Known routers still refresh and can leave; then a new one fits.
        let first = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert!(note_router(&mut routers, first, 60, 5000));
        assert_eq!(routers.get(&first), Some(&65_000));
        assert!(note_router(&mut routers, first, 0, 6000));
        assert!(!routers.contains_key(&first));
        let newcomer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2000);
        assert!(note_router(&mut routers, newcomer, 1800, 7000));
        assert_eq!(routers.len(), MAX_ROUTERS);
    }

    #[test]
    fn ra_accepted_with_hop_limit_255_from_link_local() {
        let info = ra_events(&ra_bytes(), "fe80::1".parse().unwrap(), 255).unwrap();
        assert_eq!(info.router_lifetime, 1800);
        assert_eq!(
            info.prefixes,
            vec![Event::RaPrefix {
                prefix: "2001:db8:1:2::".parse().unwrap(),
                prefix_len: 64,
                autonomous: true,
                valid: 600,
                preferred: 300
            }]
        );
    }

    #[test]
    fn forged_or_bad_ras_rejected() {
        let b = ra_bytes();
        assert_eq!(
            ra_events(&b, "fe80::1".parse().unwrap(), 64),
            Err(RaReject::HopLimit(64))
        );
        assert!(matches!(
            ra_events(&b, "2001:db8::1".parse().unwrap(), 255),
            Err(RaReject::Source(_))
        ));
        assert_eq!(
            ra_events(&[135, 0, 0, 0], "fe80::1".parse().unwrap(), 255),
            Err(RaReject::NotRa)
        );
        assert!(matches!(
            ra_events(&b[..20], "fe80::1".parse().unwrap(), 255),
            Err(RaReject::Malformed(_))
        ));
        let mut bad_code = b.clone();
        bad_code[1] = 1;
        assert!(ra_events(&bad_code, "fe80::1".parse().unwrap(), 255).is_err());
    }
}

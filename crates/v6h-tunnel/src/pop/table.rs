//! The sans-IO PoP tunnel table.
//!
//! Holds every tunnel's keys, prefixes and live state and decides, for each datagram from the
//! UDP socket and each IPv6 packet from the TUN device, what the IO shell must do. Time is
//! passed in as Unix seconds; nothing here touches a clock or a socket.
//!
//! * Identity → tunnel is one hash lookup on the full 128-bit client address (`…::2`).
//! * Inbound: [`PopTable::handle_datagram`] runs the spec §2.10 order (cheap checks, lookup,
//!   state, clock, signature), then drops validly signed replays (an exact duplicate of a
//!   recent packet, or a packet from a new address older than the newest one accepted:
//!   [`v6h_ayiya::ayiya::EndpointGuard`], about 100 bytes per tunnel), learns or moves the
//!   endpoint only with fresh packets, sets the tunnel UP, and applies anti-spoofing to
//!   forwarded packets (inner source inside the tunnel's prefixes and not the PoP's `::1`).
//! * Outbound: [`PopTable::route_outbound`] does a longest-prefix match over tunnel /64s and
//!   routed subnets and returns send / ICMPv6 error / drop; [`PopTable::encapsulate`] writes and
//!   signs the AYIYA header in the 44 bytes of headroom in front of the packet.
//! * Liveness: [`PopTable::handle_timeout`] sets UP tunnels DOWN after `liveness` seconds
//!   without a valid packet; [`PopTable::poll_timeout`] says when that next matters.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};
use v6h_ayiya::ayiya::{
    self, Delivery, DropReason, EndpointGuard, EndpointUpdate, HEADER_LEN, Repr, SigningKey,
};

use crate::icmp6::{self, UnreachCode};
use crate::prefix::Prefix6;
use crate::registry::{AdminState, Tunnel};

/// Why the PoP dropped something: an AYIYA receive-check failure or a PoP-level rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PopDrop {
    /// The AYIYA checks failed (§2.10).
    Ayiya(DropReason),
    /// A forwarded inner packet's source is outside the tunnel's prefixes.
    SpoofedSource,
    /// A forwarded inner packet's source is the PoP's own tunnel address (`…::1`).
    PopSource,
    /// A validly signed replay from another address than the endpoint: an exact duplicate of
    /// a recent packet, or a packet older than the newest one accepted (see
    /// [`EndpointGuard`]). This is the tunnel-stealing attack.
    Replay,
    /// An exact duplicate of a recent packet from the current endpoint itself (a sending host
    /// can emit byte-identical packets in one second, e.g. TCP resets): dropped, not an attack.
    Duplicate,
    /// A forwarded IPv4 payload (next header 4): not routed by v6home.
    Ipv4Payload,
    /// A packet from the TUN is not a well-formed IPv6 packet.
    BadOutbound,
    /// Outbound to a tunnel that is DOWN (ICMPv6 no-route sent when allowed).
    TunnelDown,
    /// Outbound to a tunnel that is administratively disabled.
    TunnelDisabled,
    /// Outbound to an address covered by no tunnel.
    NoTunnel,
    /// Outbound packet larger than the tunnel MTU (Packet Too Big sent).
    TooBig,
}

/// Number of distinct [`PopDrop`] labels.
pub const DROP_KINDS: usize = DropReason::ALL.len() + 10;

impl PopDrop {
    /// Every drop label, in counter order.
    pub fn all() -> [PopDrop; DROP_KINDS] {
        let mut out = [PopDrop::SpoofedSource; DROP_KINDS];
        for (i, r) in DropReason::ALL.iter().enumerate() {
            out[i] = PopDrop::Ayiya(*r);
        }
        let n = DropReason::ALL.len();
        out[n..].copy_from_slice(&[
            PopDrop::SpoofedSource,
            PopDrop::PopSource,
            PopDrop::Replay,
            PopDrop::Ipv4Payload,
            PopDrop::BadOutbound,
            PopDrop::TunnelDown,
            PopDrop::TunnelDisabled,
            PopDrop::NoTunnel,
            PopDrop::TooBig,
            PopDrop::Duplicate,
        ]);
        out
    }

    /// Counter slot.
    pub fn index(&self) -> usize {
        let n = DropReason::ALL.len();
        match self {
            PopDrop::Ayiya(r) => DropReason::ALL.iter().position(|x| x == r).unwrap_or(0),
            PopDrop::SpoofedSource => n,
            PopDrop::PopSource => n + 1,
            PopDrop::Replay => n + 2,
            PopDrop::Ipv4Payload => n + 3,
            PopDrop::BadOutbound => n + 4,
            PopDrop::TunnelDown => n + 5,
            PopDrop::TunnelDisabled => n + 6,
            PopDrop::NoTunnel => n + 7,
            PopDrop::TooBig => n + 8,
            PopDrop::Duplicate => n + 9,
        }
    }

    /// Stable snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            PopDrop::Ayiya(r) => r.as_str(),
            PopDrop::SpoofedSource => "spoofed_source",
            PopDrop::PopSource => "pop_source",
            PopDrop::Replay => "replay",
            PopDrop::Ipv4Payload => "ipv4_payload",
            PopDrop::BadOutbound => "bad_outbound",
            PopDrop::TunnelDown => "tunnel_down",
            PopDrop::TunnelDisabled => "tunnel_disabled_out",
            PopDrop::NoTunnel => "no_tunnel",
            PopDrop::TooBig => "too_big",
            PopDrop::Duplicate => "duplicate",
        }
    }
}

/// Counters of drops by [`PopDrop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters([u64; DROP_KINDS]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; DROP_KINDS])
    }
}

impl DropCounters {
    /// Adds one drop.
    pub fn add(&mut self, d: PopDrop) {
        self.0[d.index()] += 1;
    }
    /// The count for `d`.
    pub fn get(&self, d: PopDrop) -> u64 {
        self.0[d.index()]
    }
    /// Total drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Non-zero counters as `(label, count)`.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        PopDrop::all()
            .iter()
            .filter(|d| self.get(**d) > 0)
            .map(|d| (d.as_str(), self.get(*d)))
            .collect()
    }
}

/// Live state of a tunnel (sixxsd's DISABLED / DOWN / UP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelState {
    /// Administratively disabled.
    Disabled,
    /// No valid packet within the liveness timeout.
    Down,
    /// A valid packet arrived recently.
    Up,
}

/// Per-tunnel traffic counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    /// Valid datagrams received (including keepalives).
    pub packets_in: u64,
    /// Inner bytes delivered to the TUN from this tunnel.
    pub bytes_in: u64,
    /// Datagrams sent to the client.
    pub packets_out: u64,
    /// Inner bytes sent to the client.
    pub bytes_out: u64,
    /// Keepalives / liveness-only packets received.
    pub beats: u64,
    /// Times the learned endpoint changed.
    pub endpoint_changes: u64,
    /// Drops attributed to this tunnel.
    pub drops: DropCounters,
}

#[derive(Debug)]
struct Entry {
    cfg: Tunnel,
    key: SigningKey,
    pop_addr: Ipv6Addr,
    state: TunnelState,
    last_beat: Option<u64>,
    /// The learned endpoint, moved only by fresh packets (replay protection).
    guard: EndpointGuard<SocketAddrV4>,
    counters: TunnelCounters,
}

impl Entry {
    fn owns_source(&self, src: Ipv6Addr) -> bool {
        self.cfg.prefix.contains(src) || self.cfg.subnets.iter().any(|p| p.contains(src))
    }
}

/// What the IO shell does with an inbound datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InAction<'a> {
    /// Write this IPv6 packet to the TUN device.
    Deliver(&'a [u8]),
    /// Valid, nothing to forward (keepalive, echo, link-local/ND traffic).
    Consumed,
    /// Dropped and counted.
    Drop(PopDrop),
}

/// What the IO shell does with an outbound IPv6 packet read from the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutAction {
    /// Encapsulate for tunnel `tunnel` (see [`PopTable::encapsulate`]) and send to `endpoint`.
    Send {
        /// Tunnel slot.
        tunnel: usize,
        /// The client's learned UDP endpoint.
        endpoint: SocketAddrV4,
    },
    /// Dropped; an ICMPv6 error of `len` bytes was written to the caller's buffer, to be
    /// written to the TUN device.
    Icmp {
        /// Length of the error packet.
        len: usize,
        /// Why the packet was dropped.
        reason: PopDrop,
    },
    /// Dropped silently (counted).
    Drop(PopDrop),
}

/// A serialisable snapshot of one tunnel for `broker status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// `T<id>`.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// Tunnel /64.
    pub prefix: String,
    /// Routed subnets.
    pub subnets: Vec<String>,
    /// State.
    pub state: TunnelState,
    /// Learned endpoint, `ip:port`.
    pub endpoint: Option<String>,
    /// Unix seconds of the last valid packet.
    pub last_beat: Option<u64>,
    /// Seconds since then.
    pub last_beat_age: Option<u64>,
    /// MTU.
    pub mtu: u16,
    /// Valid datagrams received.
    pub packets_in: u64,
    /// Inner bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Inner bytes sent.
    pub bytes_out: u64,
    /// Keepalives received.
    pub beats: u64,
    /// Endpoint changes.
    pub endpoint_changes: u64,
    /// Drops by reason (non-zero only).
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// Counters of the TIC server, filled in by the broker's IO shell for `broker status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicCounters {
    /// Successful logins.
    pub logins_ok: u64,
    /// Failed logins (bad password, unknown user or throttled).
    pub logins_failed: u64,
    /// Of those, refused without a password check because the (user, source) pair was in
    /// back-off.
    pub logins_throttled: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections refused because their source already had its maximum.
    pub refused_per_source: u64,
    /// Connections refused because every slot was held by a logged-in connection.
    pub refused_full: u64,
    /// Connections closed to make room (oldest not logged in) when the server was full.
    pub shed: u64,
    /// Connections closed for want of a complete command within the idle timeout.
    pub idle_closed: u64,
}

/// A snapshot of the whole PoP for `broker status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopStatus {
    /// Unix seconds of the snapshot.
    pub now: u64,
    /// Tunnels.
    pub tunnels: Vec<TunnelStatus>,
    /// Drops not attributable to a tunnel (unknown identity, malformed datagrams).
    pub global_drops: std::collections::BTreeMap<String, u64>,
    /// TIC server counters (logins, connection limits).
    #[serde(default)]
    pub tic: TicCounters,
}

/// The PoP's tunnel table.
#[derive(Debug)]
pub struct PopTable {
    entries: Vec<Entry>,
    by_identity: HashMap<u128, usize>,
    /// Route table: for each distinct prefix length (longest first), masked prefix → slot.
    routes: Vec<(u8, HashMap<u128, usize>)>,
    liveness: u64,
    fallback_src: Option<Ipv6Addr>,
    global_drops: DropCounters,
}

fn masked(a: Ipv6Addr, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::from(a) & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

fn v6_at(p: &[u8], off: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = p.get(off..off + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

fn is_link_scope(a: Ipv6Addr) -> bool {
    let s = a.segments();
    (s[0] & 0xffc0) == 0xfe80 || (a.is_multicast() && (s[0] & 0x000f) <= 2)
}

impl PopTable {
    /// Builds the table; `liveness` is the DOWN timeout in seconds (sixxsd: 120);
    /// `fallback_src` sources ICMPv6 errors for addresses that belong to no tunnel.
    pub fn new(tunnels: &[Tunnel], liveness: u64, fallback_src: Option<Ipv6Addr>) -> Self {
        let mut t = PopTable {
            entries: Vec::with_capacity(tunnels.len()),
            by_identity: HashMap::with_capacity(tunnels.len()),
            routes: Vec::new(),
            liveness,
            fallback_src,
            global_drops: DropCounters::default(),
        };
        for cfg in tunnels {
            t.insert(cfg.clone());
        }
        t
    }

    fn insert(&mut self, cfg: Tunnel) {
        let slot = self.entries.len();
        self.by_identity.insert(u128::from(cfg.client_addr()), slot);
        for p in std::iter::once(cfg.prefix).chain(cfg.subnets.iter().copied()) {
            self.add_route(p, slot);
        }
        let state = match cfg.admin {
            AdminState::Enabled => TunnelState::Down,
            AdminState::Disabled => TunnelState::Disabled,
        };
        self.entries.push(Entry {
            key: SigningKey::from_password(cfg.password.as_bytes()),
            pop_addr: cfg.pop_addr(),
            cfg,
            state,
            last_beat: None,
            guard: EndpointGuard::new(),
            counters: TunnelCounters::default(),
        });
    }

    fn add_route(&mut self, p: Prefix6, slot: usize) {
        let pos = match self.routes.iter().position(|(l, _)| *l <= p.len()) {
            Some(i) if self.routes[i].0 == p.len() => i,
            Some(i) => {
                self.routes.insert(i, (p.len(), HashMap::new()));
                i
            }
            None => {
                self.routes.push((p.len(), HashMap::new()));
                self.routes.len() - 1
            }
        };
        self.routes[pos].1.insert(masked(p.addr(), p.len()), slot);
    }

    /// Replaces the tunnel set (registry reload), keeping live state of tunnels whose id,
    /// prefix and password did not change.
    pub fn reload(&mut self, tunnels: &[Tunnel]) {
        let old = std::mem::take(&mut self.entries);
        self.by_identity.clear();
        self.routes.clear();
        for cfg in tunnels {
            self.insert(cfg.clone());
            let slot = self.entries.len() - 1;
            if let Some(o) = old.iter().find(|o| {
                o.cfg.id == cfg.id && o.cfg.prefix == cfg.prefix && o.cfg.password == cfg.password
            }) {
                let e = &mut self.entries[slot];
                e.counters = o.counters;
                e.last_beat = o.last_beat;
                e.guard = o.guard;
                if e.state != TunnelState::Disabled {
                    e.state = o.state;
                }
            }
        }
    }

    /// Number of tunnels.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no tunnels.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The slot of the tunnel whose client identity is `identity` (O(1)).
    pub fn lookup_identity(&self, identity: Ipv6Addr) -> Option<usize> {
        self.by_identity.get(&u128::from(identity)).copied()
    }

    /// Longest-prefix match of `dst` over tunnel /64s and routed subnets.
    pub fn lookup_route(&self, dst: Ipv6Addr) -> Option<usize> {
        self.routes
            .iter()
            .find_map(|(len, m)| m.get(&masked(dst, *len)).copied())
    }

    /// State of tunnel `slot`.
    pub fn state(&self, slot: usize) -> Option<TunnelState> {
        self.entries.get(slot).map(|e| e.state)
    }

    /// Learned endpoint of tunnel `slot`.
    pub fn endpoint(&self, slot: usize) -> Option<SocketAddrV4> {
        self.entries.get(slot).and_then(|e| e.guard.endpoint())
    }

    /// Counters of tunnel `slot`.
    pub fn counters(&self, slot: usize) -> Option<&TunnelCounters> {
        self.entries.get(slot).map(|e| &e.counters)
    }

    /// The tunnel configuration in `slot`.
    pub fn tunnel(&self, slot: usize) -> Option<&Tunnel> {
        self.entries.get(slot).map(|e| &e.cfg)
    }

    /// Drops not attributed to a tunnel.
    pub fn global_drops(&self) -> &DropCounters {
        &self.global_drops
    }

    fn drop_global(&mut self, d: PopDrop) -> InAction<'static> {
        self.global_drops.add(d);
        InAction::Drop(d)
    }

    /// Processes one datagram received from `src` at Unix time `now`.
    pub fn handle_datagram<'a>(
        &mut self,
        now: u64,
        src: SocketAddrV4,
        datagram: &'a [u8],
    ) -> InAction<'a> {
        let pkt = match ayiya::parse_header_checks(datagram) {
            Ok(p) => p,
            Err(r) => return self.drop_global(PopDrop::Ayiya(r)),
        };
        let Some(slot) = self.lookup_identity(pkt.identity()) else {
            return self.drop_global(PopDrop::Ayiya(DropReason::UnknownTunnel));
        };
        let e = &mut self.entries[slot];
        if e.state == TunnelState::Disabled {
            e.counters
                .drops
                .add(PopDrop::Ayiya(DropReason::TunnelDisabled));
            return InAction::Drop(PopDrop::Ayiya(DropReason::TunnelDisabled));
        }
        let mut signature = [0u8; ayiya::SIGNATURE_LEN];
        signature.copy_from_slice(pkt.signature());
        let v = match ayiya::finish_checks(pkt, now, &e.key) {
            Ok(v) => v,
            Err(r) => {
                e.counters.drops.add(PopDrop::Ayiya(r));
                return InAction::Drop(PopDrop::Ayiya(r));
            }
        };
        // Fully valid. Replays (duplicates, or older packets from a new address) change
        // nothing; fresh packets learn or move the endpoint. AICCU sends three identical
        // keepalives at start (same second, same bytes): a duplicate that carries nothing to
        // forward, from the current endpoint, is a harmless beat, not a replay.
        match e.guard.observe(src, v.repr.epoch, &signature, now) {
            EndpointUpdate::Duplicate
                if e.guard.endpoint() == Some(src)
                    && matches!(v.delivery, Delivery::LivenessOnly) => {}
            EndpointUpdate::Duplicate | EndpointUpdate::Stale => {
                let why = if e.guard.endpoint() == Some(src) {
                    PopDrop::Duplicate
                } else {
                    PopDrop::Replay
                };
                e.counters.drops.add(why);
                return InAction::Drop(why);
            }
            EndpointUpdate::Moved => e.counters.endpoint_changes += 1,
            EndpointUpdate::Learned | EndpointUpdate::Same | EndpointUpdate::Kept => {}
        }
        e.state = TunnelState::Up;
        e.last_beat = Some(now);
        e.counters.packets_in += 1;
        match v.delivery {
            Delivery::LivenessOnly => {
                e.counters.beats += 1;
                InAction::Consumed
            }
            Delivery::Ipv4(_) => {
                e.counters.drops.add(PopDrop::Ipv4Payload);
                InAction::Drop(PopDrop::Ipv4Payload)
            }
            Delivery::Ipv6(inner) => {
                let (Some(s), Some(d)) = (v6_at(inner, 8), v6_at(inner, 24)) else {
                    e.counters.drops.add(PopDrop::Ayiya(DropReason::Truncated));
                    return InAction::Drop(PopDrop::Ayiya(DropReason::Truncated));
                };
                if is_link_scope(s) || is_link_scope(d) {
                    // Router solicitations, MLD, ND: valid traffic, not forwarded.
                    return InAction::Consumed;
                }
                if s == e.pop_addr {
                    e.counters.drops.add(PopDrop::PopSource);
                    return InAction::Drop(PopDrop::PopSource);
                }
                if !e.owns_source(s) {
                    e.counters.drops.add(PopDrop::SpoofedSource);
                    return InAction::Drop(PopDrop::SpoofedSource);
                }
                e.counters.bytes_in += inner.len() as u64;
                InAction::Deliver(inner)
            }
        }
    }

    /// Routes one IPv6 packet read from the TUN device.
    ///
    /// `icmp_out` receives an ICMPv6 error when one is due (give it ≥ 1280 bytes).
    pub fn route_outbound(&mut self, pkt: &[u8], icmp_out: &mut [u8]) -> OutAction {
        if pkt.len() < icmp6::IPV6_HDR || pkt[0] >> 4 != 6 {
            self.global_drops.add(PopDrop::BadOutbound);
            return OutAction::Drop(PopDrop::BadOutbound);
        }
        let Some(dst) = v6_at(pkt, 24) else {
            self.global_drops.add(PopDrop::BadOutbound);
            return OutAction::Drop(PopDrop::BadOutbound);
        };
        let Some(slot) = self.lookup_route(dst) else {
            self.global_drops.add(PopDrop::NoTunnel);
            return match self.fallback_src.and_then(|s| {
                icmp6::dest_unreachable(icmp_out, s, UnreachCode::AddressUnreachable, pkt)
            }) {
                Some(len) => OutAction::Icmp {
                    len,
                    reason: PopDrop::NoTunnel,
                },
                None => OutAction::Drop(PopDrop::NoTunnel),
            };
        };
        let e = &mut self.entries[slot];
        let (reason, icmp) = match (e.state, e.guard.endpoint()) {
            (TunnelState::Up, Some(ep)) => {
                if pkt.len() > usize::from(e.cfg.mtu) {
                    (
                        PopDrop::TooBig,
                        icmp6::packet_too_big(icmp_out, e.pop_addr, u32::from(e.cfg.mtu), pkt),
                    )
                } else {
                    return OutAction::Send {
                        tunnel: slot,
                        endpoint: ep,
                    };
                }
            }
            (TunnelState::Disabled, _) => (
                PopDrop::TunnelDisabled,
                icmp6::dest_unreachable(icmp_out, e.pop_addr, UnreachCode::AdminProhibited, pkt),
            ),
            _ => (
                PopDrop::TunnelDown,
                icmp6::dest_unreachable(icmp_out, e.pop_addr, UnreachCode::NoRoute, pkt),
            ),
        };
        e.counters.drops.add(reason);
        match icmp {
            Some(len) => OutAction::Icmp { len, reason },
            None => OutAction::Drop(reason),
        }
    }

    /// Encapsulates in place: `datagram[44..]` holds the inner packet; writes the AYIYA header
    /// (opcode 1, next header 41, identity = the PoP's `::1`, epoch = `now`) and signs it.
    /// Returns false (and does nothing) if `slot` is unknown or the buffer is too short.
    pub fn encapsulate(&mut self, slot: usize, now: u64, datagram: &mut [u8]) -> bool {
        let Some(e) = self.entries.get_mut(slot) else {
            return false;
        };
        if datagram.len() < HEADER_LEN {
            return false;
        }
        // The wire carries 32-bit seconds; truncation is the protocol's own wrap.
        let repr = Repr::forward6(e.pop_addr, now as u32);
        if e.key.seal(&repr, datagram).is_err() {
            return false;
        }
        e.counters.packets_out += 1;
        e.counters.bytes_out += (datagram.len() - HEADER_LEN) as u64;
        true
    }

    /// Sets UP tunnels DOWN when `now − lastbeat ≥ liveness`. Returns how many went down.
    pub fn handle_timeout(&mut self, now: u64) -> usize {
        let mut n = 0;
        for e in &mut self.entries {
            if e.state == TunnelState::Up
                && e.last_beat
                    .is_none_or(|b| now.saturating_sub(b) >= self.liveness)
            {
                e.state = TunnelState::Down;
                n += 1;
            }
        }
        n
    }

    /// The earliest time at which [`PopTable::handle_timeout`] may change something.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter(|e| e.state == TunnelState::Up)
            .filter_map(|e| e.last_beat.map(|b| b.saturating_add(self.liveness)))
            .min()
    }

    /// A snapshot for `broker status`.
    pub fn status(&self, now: u64) -> PopStatus {
        let map = |d: &DropCounters| {
            d.nonzero()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        };
        PopStatus {
            now,
            tunnels: self
                .entries
                .iter()
                .map(|e| TunnelStatus {
                    id: e.cfg.tic_id(),
                    owner: e.cfg.owner.clone(),
                    prefix: e.cfg.prefix.to_string(),
                    subnets: e.cfg.subnets.iter().map(|s| s.to_string()).collect(),
                    state: e.state,
                    endpoint: e.guard.endpoint().map(|x| x.to_string()),
                    last_beat: e.last_beat,
                    last_beat_age: e.last_beat.map(|b| now.saturating_sub(b)),
                    mtu: e.cfg.mtu,
                    packets_in: e.counters.packets_in,
                    bytes_in: e.counters.bytes_in,
                    packets_out: e.counters.packets_out,
                    bytes_out: e.counters.bytes_out,
                    beats: e.counters.beats,
                    endpoint_changes: e.counters.endpoint_changes,
                    drops: map(&e.counters.drops),
                })
                .collect(),
            global_drops: map(&self.global_drops),
            tic: TicCounters::default(),
        }
    }
}

/// Builds a signed client→PoP datagram (for tests and tools): identity = `identity`.
pub fn client_datagram(
    key: &SigningKey,
    identity: Ipv6Addr,
    epoch: u32,
    inner: Option<&[u8]>,
) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + inner.map_or(0, <[u8]>::len)];
    let repr = match inner {
        Some(p) => {
            buf[HEADER_LEN..].copy_from_slice(p);
            Repr::forward6(identity, epoch)
        }
        None => Repr::keepalive(identity, epoch),
    };
    // Cannot fail: the buffer is at least HEADER_LEN long.
    let _ = key.seal(&repr, &mut buf);
    buf
}

#[cfg(test)]
mod tests;

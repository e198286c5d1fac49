//! The sans-IO per-interface RA scheduler (RFC 4861 §6.2), in quinn-proto style.
//!
//! Feed it events with [`Scheduler::handle`] (link state, readiness after DAD, received RS/RA,
//! reloads, signals), drain packets with [`Scheduler::poll_transmit`], and sleep until
//! [`Scheduler::poll_timeout`]. Time is a monotonic millisecond count chosen by the caller;
//! randomness comes from the RNG handed to [`Scheduler::new`]. It never touches a clock or socket.
//!
//! Behaviour (radvd.md §4–§6): the first RA as soon as the interface is ready, then two more at
//! min(U[Min, Max], 16 s), then U[Min, Max]; RS replies after U[0, 500 ms]; unicast replies
//! (the default, like radvd) coalesced per source and rate-limited by a token bucket (burst 10,
//! 10/s), beyond it one multicast RA; multicast RAs at least MinDelayBetweenRAs apart; RS/RA
//! accepted only with hop limit 255 from link-local (or, for RS, unspecified) sources;
//! consistency checks against other routers (§6); 1–3 final RAs on shutdown; reloads that
//! withdraw removed prefixes, routes, RDNSS and DNSSL with zero lifetimes.

mod consistency;

pub use consistency::Inconsistency;

use crate::build::{self, LinkContext, Mode};
use crate::config::Interface;
use crate::wire::{NdOptionRepr, RaRepr, RsPacket, option_type};
use rand::RngExt;
use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv6Addr;

/// Monotonic time in milliseconds (arbitrary epoch, chosen by the caller).
pub type Millis = u64;

/// RFC 4861 §10 MAX_INITIAL_RTR_ADVERT_INTERVAL (ms).
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Millis = 16_000;
/// RFC 4861 §10 MAX_INITIAL_RTR_ADVERTISEMENTS.
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;
/// RFC 4861 §10 MAX_FINAL_RTR_ADVERTISEMENTS.
pub const MAX_FINAL_RTR_ADVERTISEMENTS: u8 = 3;
/// RFC 4861 §10 MAX_RA_DELAY_TIME (ms).
pub const MAX_RA_DELAY_TIME: Millis = 500;
/// Spacing of final RAs (ms).
pub const FINAL_RA_SPACING: Millis = 3_000;
/// Unicast RS-reply token bucket: burst size.
pub const UNICAST_BURST: u32 = 10;
/// Unicast RS-reply token bucket: tokens per second.
pub const UNICAST_RATE: u32 = 10;

/// The all-nodes multicast address ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An input to the scheduler.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// The link went up (carrier); RAs wait for [`Event::Ready`].
    LinkUp,
    /// The link went down: stop advertising, drop pending replies.
    LinkDown,
    /// The source address (link-local or AdvRASrcAddress pick) is usable: DAD has completed.
    Ready {
        /// The source address for RAs.
        source: Ipv6Addr,
    },
    /// The source address went away or became tentative again.
    NotReady,
    /// An ICMPv6 RS or RA arrived on the interface.
    Received {
        /// IPv6 source address.
        src: Ipv6Addr,
        /// IPv6 hop limit as received.
        hop_limit: u8,
        /// The ICMPv6 message.
        bytes: &'a [u8],
    },
    /// New link state (MTU, MAC, addresses, forwarding).
    Context(LinkContext),
    /// SIGHUP with a valid new configuration for this interface.
    Reload(Box<Interface>),
    /// SIGUSR1: restart DecrementLifetimes counters.
    ResetDecrement,
    /// SIGTERM/SIGINT: send final RAs, then finish. A second one finishes at once.
    Shutdown,
    /// Sending a multicast RA failed with a transient error: retry with backoff.
    SendFailed,
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (ff02::1 or a unicast address).
    pub dst: Ipv6Addr,
    /// Source address to send from.
    pub src: Ipv6Addr,
    /// The ICMPv6 message (checksum left to the kernel).
    pub bytes: Vec<u8>,
}

/// Why an incoming packet was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Hop limit not 255.
    HopLimit,
    /// Source neither link-local nor (for RS) unspecified.
    Source,
    /// Malformed ICMPv6 message or option.
    Malformed,
    /// RS from `::` carrying an SLLAO (RFC 4861 §6.1.1).
    SllaoFromUnspecified,
    /// Interface not advertising (down, not ready, shutting down).
    NotReady,
    /// `clients` is set and the sender is not listed (or is excluded with `!`).
    NotClient,
    /// Unicast reply refused by the rate limit with no multicast fallback (UnicastOnly).
    RateLimited,
    /// UnicastOnly and the RS came from `::` (nobody to answer).
    UnicastOnlyUnspecified,
    /// Our own RA looped back.
    Own,
    /// Neither RS nor RA.
    OtherType,
}

impl DropReason {
    /// A short snake_case name (metrics labels, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::HopLimit => "hop_limit",
            DropReason::Source => "source",
            DropReason::Malformed => "malformed",
            DropReason::SllaoFromUnspecified => "sllao_from_unspecified",
            DropReason::NotReady => "not_ready",
            DropReason::NotClient => "not_client",
            DropReason::RateLimited => "rate_limited",
            DropReason::UnicastOnlyUnspecified => "unicast_only_unspecified",
            DropReason::Own => "own",
            DropReason::OtherType => "other_type",
        }
    }

    /// What the reason means, for a log line.
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::HopLimit => "invalid hop limit (must be 255)",
            DropReason::Source => "source is not link-local",
            DropReason::Malformed => "malformed",
            DropReason::SllaoFromUnspecified => "source link-layer option from ::",
            DropReason::NotReady => "not advertising yet",
            DropReason::NotClient => "sender is not a listed client",
            DropReason::RateLimited => "unicast replies rate-limited",
            DropReason::UnicastOnlyUnspecified => "UnicastOnly and the RS came from ::",
            DropReason::Own => "our own RA",
            DropReason::OtherType => "neither RS nor RA",
        }
    }
}

/// Counters for a metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// RAs sent to ff02::1 (each split part counts).
    pub ra_sent_multicast: u64,
    /// RAs sent unicast (RS replies and `clients`).
    pub ra_sent_unicast: u64,
    /// Final RAs sent (included in the two above).
    pub ra_sent_final: u64,
    /// Valid RSs received.
    pub rs_received: u64,
    /// Valid RAs received from other routers.
    pub ra_received: u64,
    /// Ignored packets by reason.
    pub drops: BTreeMap<DropReason, u64>,
    /// RSs the unicast-reply token bucket refused (answered by one multicast RA instead, or
    /// dropped with [`DropReason::RateLimited`] when no multicast reply is allowed).
    pub rs_rate_limited: u64,
    /// Inconsistencies found in other routers' RAs.
    pub inconsistencies: u64,
    /// Options left out because they exceed the RA budget.
    pub options_skipped: u64,
    /// Reported send failures.
    pub send_failures: u64,
}

/// Something the daemon should log or expose.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Another router's RA disagrees with ours (RFC 4861 §6.2.7).
    Inconsistent {
        /// The other router's link-local address.
        peer: Ipv6Addr,
        /// What differs.
        what: Inconsistency,
    },
    /// Options that cannot fit in an RA were not sent (types listed).
    OptionsSkipped(Vec<u8>),
    /// Forwarding changed: off → router lifetime 0.
    Forwarding(bool),
    /// All final RAs are out (or none were needed); the interface is done.
    Finished,
    /// An RS or RA was ignored (not for packets of other ICMPv6 types).
    Dropped {
        /// Its source address.
        src: Ipv6Addr,
        /// Its ICMPv6 type (133 RS, 134 RA).
        kind: u8,
        /// Its IPv6 hop limit.
        hop_limit: u8,
        /// Why it was ignored.
        reason: DropReason,
    },
    /// An RS's unicast reply was refused by the rate limit; one multicast RA answers instead
    /// (when no multicast reply is allowed, [`Notice::Dropped`] with
    /// [`DropReason::RateLimited`] is reported).
    RateLimited {
        /// The soliciting host.
        src: Ipv6Addr,
    },
}

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Link down.
    Down,
    /// Link up, waiting for the source address to pass DAD.
    WaitingReady,
    /// Advertising.
    Running,
    /// Sending final RAs.
    Finishing,
    /// Done (after shutdown, or AdvSendAdvert off).
    Done,
}

/// The per-interface scheduler.
#[derive(Debug)]
pub struct Scheduler<R> {
    iface: Interface,
    ctx: LinkContext,
    rng: R,
    state: State,
    link_up: bool,
    source: Option<Ipv6Addr>,
    next_multicast: Option<Millis>,
    multicast_in_phase: u32,
    last_multicast: Option<Millis>,
    pending_unicast: BTreeMap<Ipv6Addr, Millis>,
    tokens_milli: u64,
    tokens_at: Millis,
    decrement_base: Millis,
    withdrawn: Vec<NdOptionRepr>,
    withdrawn_until: Millis,
    finals_left: u8,
    final_count: u8,
    final_next: Option<Millis>,
    backoff: Millis,
    queue: VecDeque<Transmit>,
    notices: VecDeque<Notice>,
    counters: Counters,
}

fn secs_to_ms(s: f64) -> Millis {
    (s * 1000.0).round().clamp(0.0, 1e15) as Millis
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

impl<R: rand::Rng> Scheduler<R> {
    /// A scheduler for `iface` whose link is down; send [`Event::LinkUp`] and [`Event::Ready`].
    pub fn new(iface: Interface, ctx: LinkContext, rng: R, now: Millis) -> Self {
        Scheduler {
            iface,
            ctx,
            rng,
            state: State::Down,
            link_up: false,
            source: None,
            next_multicast: None,
            multicast_in_phase: 0,
            last_multicast: None,
            pending_unicast: BTreeMap::new(),
            tokens_milli: u64::from(UNICAST_BURST) * 1000,
            tokens_at: now,
            decrement_base: now,
            withdrawn: Vec::new(),
            withdrawn_until: 0,
            finals_left: 0,
            final_count: MAX_FINAL_RTR_ADVERTISEMENTS,
            final_next: None,
            backoff: 500,
            queue: VecDeque::new(),
            notices: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// Number of final RAs on shutdown (clamped to 1–3; default 3).
    pub fn set_final_count(&mut self, n: u8) {
        self.final_count = n.clamp(1, MAX_FINAL_RTR_ADVERTISEMENTS);
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The interface configuration in force.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The link state in force.
    pub fn context(&self) -> &LinkContext {
        &self.ctx
    }

    /// Counters (RAs sent, RS received, drops by reason…).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// True once shutdown (or disabling) is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Next notice to log, if any.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// When [`Scheduler::poll_transmit`] next needs to be called, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if !self.queue.is_empty() {
            return Some(0);
        }
        let mut t: Option<Millis> = None;
        let mut take = |x: Option<Millis>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        match self.state {
            State::Running => {
                take(self.next_multicast);
                take(self.pending_unicast.values().min().copied());
            }
            State::Finishing => take(self.final_next),
            _ => {}
        }
        t
    }

    /// Runs due timers and returns the next packet to send, if any.
    pub fn poll_transmit(&mut self, now: Millis) -> Option<Transmit> {
        self.run_timers(now);
        self.queue.pop_front()
    }

    /// Feeds one event.
    pub fn handle(&mut self, now: Millis, ev: Event<'_>) {
        match ev {
            Event::LinkUp => {
                self.link_up = true;
                if matches!(self.state, State::Down) {
                    self.state = State::WaitingReady;
                }
                // If the daemon already told us the source is ready, start now.
                if self.source.is_some() && self.state == State::WaitingReady {
                    self.start(now);
                }
            }
            Event::LinkDown => {
                self.link_up = false;
                if matches!(self.state, State::Running | State::WaitingReady) {
                    self.state = State::Down;
                    self.next_multicast = None;
                    self.pending_unicast.clear();
                }
                if self.state == State::Finishing {
                    self.finish();
                }
            }
            Event::Ready { source } => {
                let old = self.source.replace(source);
                match self.state {
                    State::Down if self.link_up => self.start(now),
                    State::WaitingReady => self.start(now),
                    State::Running if old.is_some_and(|o| o != source) => {
                        // RFC 4861 §6.2.8: a lifetime-0 RA from the old address, then restart.
                        if let Some(o) = old {
                            self.queue_final_from(now, o);
                        }
                        self.start(now);
                    }
                    _ => {}
                }
            }
            Event::NotReady => {
                self.source = None;
                if self.state == State::Running {
                    self.state = State::WaitingReady;
                    self.next_multicast = None;
                    self.pending_unicast.clear();
                }
            }
            Event::Received {
                src,
                hop_limit,
                bytes,
            } => self.on_received(now, src, hop_limit, bytes),
            Event::Context(ctx) => self.on_context(now, ctx),
            Event::Reload(iface) => self.on_reload(now, *iface),
            Event::ResetDecrement => self.decrement_base = now,
            Event::Shutdown => self.on_shutdown(now),
            Event::SendFailed => {
                self.counters.send_failures += 1;
                if self.state == State::Running && !self.periodic_disabled() {
                    let retry = now + self.backoff;
                    self.next_multicast = Some(self.next_multicast.map_or(retry, |t| t.min(retry)));
                    let cap = secs_to_ms(self.iface.min_rtr_adv_interval).max(500);
                    self.backoff = (self.backoff * 2).min(cap);
                }
            }
        }
    }

    fn periodic_disabled(&self) -> bool {
        self.iface.unicast_only && self.iface.clients.is_empty()
    }

    fn start(&mut self, now: Millis) {
        if !self.iface.adv_send_advert {
            self.state = State::Done;
            return;
        }
        self.state = State::Running;
        self.multicast_in_phase = 0;
        self.backoff = 500;
        if self.periodic_disabled() {
            self.next_multicast = None;
        } else {
            let earliest = self.earliest_multicast(now);
            self.next_multicast = Some(earliest);
        }
    }

    /// Earliest time a non-final multicast RA may go out (MinDelayBetweenRAs).
    fn earliest_multicast(&self, now: Millis) -> Millis {
        match self.last_multicast {
            Some(l) => now.max(l + secs_to_ms(self.iface.min_delay_between_ras)),
            None => now,
        }
    }

    fn random_interval(&mut self) -> Millis {
        let lo = secs_to_ms(self.iface.min_rtr_adv_interval);
        let hi = secs_to_ms(self.iface.max_rtr_adv_interval).max(lo);
        let mut d = self.rng.random_range(lo..=hi);
        if self.multicast_in_phase < MAX_INITIAL_RTR_ADVERTISEMENTS {
            d = d.min(MAX_INITIAL_RTR_ADVERT_INTERVAL);
        }
        d
    }

    fn refill_tokens(&mut self, now: Millis) {
        let dt = now.saturating_sub(self.tokens_at);
        self.tokens_at = now;
        let cap = u64::from(UNICAST_BURST) * 1000;
        self.tokens_milli = (self.tokens_milli + dt * u64::from(UNICAST_RATE)).min(cap);
    }

    fn build(&mut self, now: Millis, mode: Mode) -> Vec<Vec<u8>> {
        if now >= self.withdrawn_until {
            self.withdrawn.clear();
        }
        let mut ctx = self.ctx.clone();
        ctx.decrement_elapsed =
            u32::try_from(now.saturating_sub(self.decrement_base) / 1000).unwrap_or(u32::MAX);
        let r = build::build_ras(&self.iface, &ctx, mode, &self.withdrawn);
        if !r.skipped.is_empty() {
            self.counters.options_skipped += r.skipped.len() as u64;
            self.notices.push_back(Notice::OptionsSkipped(r.skipped));
        }
        r.packets
    }

    /// Destinations of a "multicast" RA: ff02::1, or each listed client.
    fn group_destinations(&self) -> Vec<Ipv6Addr> {
        if self.iface.clients.is_empty() {
            vec![ALL_NODES]
        } else {
            self.iface
                .clients
                .iter()
                .filter(|c| !c.excluded)
                .map(|c| c.address)
                .collect()
        }
    }

    fn queue_packets(&mut self, dsts: &[Ipv6Addr], packets: &[Vec<u8>], fin: bool) {
        let Some(src) = self.source else { return };
        for dst in dsts {
            for p in packets {
                if *dst == ALL_NODES {
                    self.counters.ra_sent_multicast += 1;
                } else {
                    self.counters.ra_sent_unicast += 1;
                }
                if fin {
                    self.counters.ra_sent_final += 1;
                }
                self.queue.push_back(Transmit {
                    dst: *dst,
                    src,
                    bytes: p.clone(),
                });
            }
        }
    }

    fn queue_final_from(&mut self, now: Millis, old_src: Ipv6Addr) {
        let packets = self.build(now, Mode::Final);
        let saved = self.source.replace(old_src);
        let dsts = self.group_destinations();
        self.queue_packets(&dsts, &packets, true);
        self.source = saved;
    }

    fn run_timers(&mut self, now: Millis) {
        match self.state {
            State::Running => {
                if let Some(t) = self.next_multicast
                    && t <= now
                {
                    let packets = self.build(now, Mode::Normal);
                    let dsts = self.group_destinations();
                    self.queue_packets(&dsts, &packets, false);
                    self.last_multicast = Some(now);
                    self.multicast_in_phase = self.multicast_in_phase.saturating_add(1);
                    let d = self.random_interval();
                    self.next_multicast = Some(now + d);
                    // A multicast RA answers every pending RS.
                    if self.iface.clients.is_empty() {
                        self.pending_unicast.clear();
                    }
                }
                let due: Vec<Ipv6Addr> = self
                    .pending_unicast
                    .iter()
                    .filter(|(_, t)| **t <= now)
                    .map(|(a, _)| *a)
                    .collect();
                if !due.is_empty() {
                    let packets = self.build(now, Mode::Normal);
                    for a in due {
                        self.pending_unicast.remove(&a);
                        self.queue_packets(&[a], &packets, false);
                    }
                }
            }
            State::Finishing => {
                if let Some(t) = self.final_next
                    && t <= now
                {
                    let packets = self.build(now, Mode::Final);
                    let dsts = self.group_destinations();
                    self.queue_packets(&dsts, &packets, true);
                    self.finals_left = self.finals_left.saturating_sub(1);
                    if self.finals_left == 0 {
                        self.finish();
                    } else {
                        self.final_next = Some(now + FINAL_RA_SPACING);
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        self.state = State::Done;
        self.final_next = None;
        self.next_multicast = None;
        self.pending_unicast.clear();
        self.notices.push_back(Notice::Finished);
    }

    fn on_shutdown(&mut self, now: Millis) {
        match self.state {
            State::Finishing => self.finish(),
            State::Done => {}
            State::Running if self.iface.remove_adv_on_exit && !self.periodic_disabled() => {
                self.state = State::Finishing;
                self.finals_left = self.final_count;
                self.final_next = Some(now);
                self.next_multicast = None;
                self.pending_unicast.clear();
            }
            _ => self.finish(),
        }
    }

    fn drop(&mut self, r: DropReason) {
        *self.counters.drops.entry(r).or_insert(0) += 1;
    }

    fn on_received(&mut self, now: Millis, src: Ipv6Addr, hop_limit: u8, bytes: &[u8]) {
        let Some(&kind) = bytes.first() else {
            return self.drop(DropReason::Malformed);
        };
        if kind != crate::wire::ICMPV6_ROUTER_SOLICIT && kind != crate::wire::ICMPV6_ROUTER_ADVERT {
            return self.drop(DropReason::OtherType);
        }
        if let Err(reason) = self.on_nd(now, src, hop_limit, kind, bytes) {
            self.drop(reason);
            // Own RAs come back on every send: counted, not reported.
            if reason != DropReason::Own {
                self.notices.push_back(Notice::Dropped {
                    src,
                    kind,
                    hop_limit,
                    reason,
                });
            }
        }
    }

    /// An RS or RA; `Err` says why it is ignored.
    fn on_nd(
        &mut self,
        now: Millis,
        src: Ipv6Addr,
        hop_limit: u8,
        kind: u8,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        if hop_limit != 255 {
            return Err(DropReason::HopLimit);
        }
        if kind == crate::wire::ICMPV6_ROUTER_ADVERT {
            if !is_link_local(&src) {
                return Err(DropReason::Source);
            }
            if Some(src) == self.source {
                return Err(DropReason::Own);
            }
            let Ok(ra) = RaRepr::parse(bytes) else {
                return Err(DropReason::Malformed);
            };
            self.counters.ra_received += 1;
            if ra
                .options
                .iter()
                .any(|o| matches!(o.kind(), option_type::TLLA | option_type::REDIRECTED))
            {
                return Err(DropReason::Malformed);
            }
            let mut ctx = self.ctx.clone();
            ctx.decrement_elapsed =
                u32::try_from(now.saturating_sub(self.decrement_base) / 1000).unwrap_or(u32::MAX);
            for what in consistency::check(&self.iface, &ctx, &ra) {
                self.counters.inconsistencies += 1;
                self.notices
                    .push_back(Notice::Inconsistent { peer: src, what });
            }
            return Ok(());
        }
        // Router Solicitation.
        if !(src.is_unspecified() || is_link_local(&src)) {
            return Err(DropReason::Source);
        }
        let Ok(rs) = RsPacket::new_checked(bytes) else {
            return Err(DropReason::Malformed);
        };
        if src.is_unspecified() && rs.source_link_addr().is_some() {
            return Err(DropReason::SllaoFromUnspecified);
        }
        self.counters.rs_received += 1;
        if self.state != State::Running {
            return Err(DropReason::NotReady);
        }
        let listed = if self.iface.clients.is_empty() {
            true
        } else {
            match self.iface.clients.iter().find(|c| c.address == src) {
                Some(c) if c.excluded => return Err(DropReason::NotClient),
                Some(_) => true,
                None if self.iface.unrestricted_unicast => false,
                None => return Err(DropReason::NotClient),
            }
        };
        let delay = self.rng.random_range(0..=MAX_RA_DELAY_TIME);
        let unicast = !src.is_unspecified()
            && (self.iface.adv_ra_solicited_unicast
                || self.iface.unicast_only
                || !self.iface.clients.is_empty());
        if unicast {
            if self.pending_unicast.contains_key(&src) {
                return Ok(()); // coalesced with the reply already pending
            }
            self.refill_tokens(now);
            if self.tokens_milli >= 1000 || (listed && !self.iface.clients.is_empty()) {
                self.tokens_milli = self.tokens_milli.saturating_sub(1000);
                self.pending_unicast.insert(src, now + delay);
                return Ok(());
            }
            self.counters.rs_rate_limited += 1;
            if self.periodic_disabled() || !self.iface.clients.is_empty() {
                return Err(DropReason::RateLimited);
            }
            self.notices.push_back(Notice::RateLimited { src });
            // Fall through: answer with one multicast RA.
        } else if self.iface.unicast_only {
            return Err(DropReason::UnicastOnlyUnspecified);
        }
        // RFC 4861 §6.2.6 multicast reply.
        let min_delay = secs_to_ms(self.iface.min_delay_between_ras);
        let t = match self.last_multicast {
            Some(l) if now < l + min_delay => l + min_delay + delay,
            _ => now + delay,
        };
        match self.next_multicast {
            Some(n) if n <= t => {} // an RA due earlier is the answer
            _ => self.next_multicast = Some(t),
        }
        Ok(())
    }

    fn opts_at(&self, iface: &Interface, ctx: &LinkContext, now: Millis) -> Vec<NdOptionRepr> {
        let mut c = ctx.clone();
        c.decrement_elapsed =
            u32::try_from(now.saturating_sub(self.decrement_base) / 1000).unwrap_or(u32::MAX);
        build::options(iface, &c, Mode::Normal)
    }

    /// Applies a change of config or link state: withdraw what vanished, and restart the
    /// initial phase if the RA changed.
    fn apply_change(&mut self, now: Millis, new_iface: Interface, new_ctx: LinkContext) {
        let old_opts = self.opts_at(&self.iface, &self.ctx, now);
        let new_opts = self.opts_at(&new_iface, &new_ctx, now);
        let old_hdr = build::header(&self.iface, &self.ctx, Mode::Normal);
        let new_hdr = build::header(&new_iface, &new_ctx, Mode::Normal);
        let removed = build::removed_options(&old_opts, &new_opts);
        let added = build::removed_options(&new_opts, &old_opts);
        let changed = !removed.is_empty() || !added.is_empty() || old_hdr != new_hdr;
        if old_hdr.router_lifetime != new_hdr.router_lifetime
            && self.ctx.forwarding != new_ctx.forwarding
        {
            self.notices
                .push_back(Notice::Forwarding(new_ctx.forwarding));
        }
        // Earlier withdrawals that are back in the RA stop being withdrawn.
        let still: Vec<NdOptionRepr> = self
            .withdrawn
            .iter()
            .flat_map(|w| build::removed_options(std::slice::from_ref(w), &new_opts))
            .collect();
        self.withdrawn = still;
        if !removed.is_empty() {
            let horizon = Millis::from(build::withdrawal_horizon(&old_opts)) * 1000;
            self.withdrawn.extend(removed);
            self.withdrawn_until = self.withdrawn_until.max(now + horizon);
        }
        self.iface = new_iface;
        self.ctx = new_ctx;
        if changed && self.state == State::Running {
            self.multicast_in_phase = 0;
            if self.periodic_disabled() {
                self.next_multicast = None;
            } else {
                let t = self.earliest_multicast(now);
                self.next_multicast = Some(self.next_multicast.map_or(t, |n| n.min(t)));
            }
        }
    }

    fn on_context(&mut self, now: Millis, ctx: LinkContext) {
        let iface = self.iface.clone();
        self.apply_change(now, iface, ctx);
    }

    fn on_reload(&mut self, now: Millis, iface: Interface) {
        if !iface.adv_send_advert {
            // Disabled by the reload: say goodbye with the old configuration.
            self.on_shutdown(now);
            return;
        }
        let ctx = self.ctx.clone();
        self.apply_change(now, iface, ctx);
        if self.state == State::Done && self.link_up && self.source.is_some() {
            self.start(now);
        }
    }
}

#[cfg(test)]
mod tests;

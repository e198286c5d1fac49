//! The sans-IO exchange engine: open-loop pacing, per-exchange state keyed by transaction
//! id, drop timeouts and the counters.
//!
//! Time is a `u64` count of microseconds since the start of the run, passed in by the
//! caller. [`Generator::poll_transmit`] queues the Solicits that are due, [`Generator::handle`]
//! takes one received datagram and may queue a Request; the caller sends
//! [`Generator::transmit`] and then calls [`Generator::clear_transmit`].
//!
//! Drop semantics follow perfdhcp: a Solicit without a matching Advertise, or a Request
//! without a matching Reply, within the timeout is a drop; drops are reported as a share of
//! all Solicits and Requests sent; an answer that arrives after its message's timeout is late
//! (counted as unexpected, the message stays a drop). Solicits are sent during the first
//! `duration` of the run; a Request follows every valid Advertise, so all messages are
//! resolved by `duration + 2 × timeout` at the latest (in practice a round trip after
//! `duration`, see [`Generator::is_done`]).

use std::collections::{HashMap, VecDeque};

use crate::wire::{self, DuidKind, Mode};

/// Microseconds per second.
const US_PER_S: u128 = 1_000_000;

/// Spreads `rate` messages per second evenly over a run of `duration_us` microseconds.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: u64,
    total: u64,
    issued: u64,
}

impl Pacer {
    /// A pacer for `rate` per second during `duration_us`.
    pub fn new(rate: u64, duration_us: u64) -> Pacer {
        let total = u128::from(rate) * u128::from(duration_us) / US_PER_S;
        Pacer {
            rate,
            total: u64::try_from(total).unwrap_or(u64::MAX),
            issued: 0,
        }
    }

    /// How many are due at `elapsed_us` and not issued yet (never past the run's total).
    pub fn due(&self, elapsed_us: u64) -> u64 {
        let target = u128::from(self.rate) * u128::from(elapsed_us) / US_PER_S;
        let target = u64::try_from(target).unwrap_or(u64::MAX).min(self.total);
        target.saturating_sub(self.issued)
    }

    /// Marks `n` as issued.
    pub fn issue(&mut self, n: u64) {
        self.issued = self.issued.saturating_add(n).min(self.total);
    }

    /// How many the whole run issues.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How many have been issued.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Whether everything has been issued.
    pub fn done(&self) -> bool {
        self.issued >= self.total
    }
}

/// Run parameters.
#[derive(Debug, Clone)]
pub struct Config {
    /// IAs each client asks for.
    pub mode: Mode,
    /// New exchanges (Solicits) per second.
    pub rate: u64,
    /// How long new messages are sent, in microseconds.
    pub duration_us: u64,
    /// How long to wait for an answer before a message counts as dropped, in microseconds.
    pub timeout_us: u64,
    /// DUID kind of the simulated clients.
    pub duid: DuidKind,
    /// Number of the first client (clients are `first_client`, `first_client + 1`, ...).
    pub first_client: u64,
    /// At most this many exchanges in flight; further due Solicits are skipped and counted.
    pub max_pending: usize,
    /// At most this many Solicits are queued per [`Generator::poll_transmit`] call.
    pub max_burst: usize,
    /// Mixed into the transaction ids.
    pub xid_seed: u32,
}

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Solicits sent.
    pub solicits: u64,
    /// Advertises matched to a pending Solicit.
    pub advertises: u64,
    /// Requests sent.
    pub requests: u64,
    /// Replies matched to a pending Request (completed exchanges).
    pub replies: u64,
    /// Replies whose IA was refused (non-Success status or no address/prefix).
    pub rejected: u64,
    /// Solicits not answered within the timeout.
    pub solicit_drops: u64,
    /// Requests not answered within the timeout.
    pub request_drops: u64,
    /// Due Solicits not sent because `max_pending` exchanges were in flight.
    pub skipped: u64,
    /// Datagrams with an unknown transaction id or the wrong type (late answers included).
    pub unexpected: u64,
    /// Datagrams that could not be scanned, or answered with the wrong Client Identifier,
    /// or an Advertise without a Server Identifier.
    pub malformed: u64,
    /// Sum of Solicit→Advertise round trips, microseconds.
    pub sa_rtt_sum_us: u64,
    /// Sum of Request→Reply round trips, microseconds.
    pub rr_rtt_sum_us: u64,
    /// Largest round trip seen, microseconds.
    pub rtt_max_us: u64,
}

impl Stats {
    /// Drops in percent of the Solicits and Requests sent (0 when nothing was sent).
    pub fn drops_pct(&self) -> f64 {
        let sent = self.solicits + self.requests;
        if sent == 0 {
            return 0.0;
        }
        100.0 * (self.solicit_drops + self.request_drops) as f64 / sent as f64
    }

    /// Completed exchanges per second over a send window of `duration_us`.
    pub fn completed_per_s(&self, duration_us: u64) -> f64 {
        if duration_us == 0 {
            return 0.0;
        }
        self.replies as f64 * 1e6 / duration_us as f64
    }

    /// Mean Solicit→Advertise round trip in microseconds.
    pub fn sa_rtt_mean_us(&self) -> f64 {
        mean(self.sa_rtt_sum_us, self.advertises)
    }

    /// Mean Request→Reply round trip in microseconds.
    pub fn rr_rtt_mean_us(&self) -> f64 {
        mean(self.rr_rtt_sum_us, self.replies)
    }
}

fn mean(sum: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum as f64 / n as f64 }
}

/// Where an exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Solicit sent, waiting for Advertise.
    Solicited,
    /// Request sent, waiting for Reply.
    Requested,
}

/// One exchange in flight, keyed by the transaction id of its last message.
#[derive(Debug, Clone, Copy)]
struct Pending {
    client: u64,
    phase: Phase,
    sent_us: u64,
    started_us: u64,
}

/// Datagrams to send, packed into one buffer.
#[derive(Debug, Default)]
pub struct TxQueue {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl TxQueue {
    /// Number of queued datagrams.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The queued datagrams in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| self.buf.get(s..e).unwrap_or_default())
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    fn seal(&mut self) {
        self.ends.push(self.buf.len());
    }
}

/// The SARR engine for one run.
#[derive(Debug)]
pub struct Generator {
    cfg: Config,
    pacer: Pacer,
    pending: HashMap<u32, Pending>,
    /// `(sent_us, xid)` of every message sent, oldest first; the timeout is constant, so
    /// this is also deadline order.
    expiry: VecDeque<(u64, u32)>,
    clients: u64,
    xid_counter: u32,
    stats: Stats,
    duid: Vec<u8>,
    tx: TxQueue,
}

/// Odd multiplier: a bijection on 24-bit transaction ids.
const XID_MUL: u32 = 0x9e_3779;
/// Transaction ids are 24 bits.
const XID_MASK: u32 = 0x00ff_ffff;

impl Generator {
    /// A generator for one run.
    pub fn new(cfg: Config) -> Generator {
        let pacer = Pacer::new(cfg.rate, cfg.duration_us);
        Generator {
            pacer,
            pending: HashMap::with_capacity(cfg.max_pending.min(1 << 20)),
            expiry: VecDeque::new(),
            clients: 0,
            xid_counter: 0,
            stats: Stats::default(),
            duid: Vec::with_capacity(20),
            tx: TxQueue::default(),
            cfg,
        }
    }

    /// The run's configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The pacer (how many Solicits are issued out of the run's total).
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Exchanges in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Datagrams queued for sending.
    pub fn transmit(&self) -> &TxQueue {
        &self.tx
    }

    /// Forgets the queued datagrams (call after sending them).
    pub fn clear_transmit(&mut self) {
        self.tx.clear();
    }

    /// A fresh transaction id not in flight.
    fn next_xid(&mut self) -> u32 {
        loop {
            let x = (self.xid_counter.wrapping_mul(XID_MUL) ^ self.cfg.xid_seed) & XID_MASK;
            self.xid_counter = self.xid_counter.wrapping_add(1);
            if !self.pending.contains_key(&x) {
                return x;
            }
        }
    }

    /// Counts every message whose timeout has passed at `now_us` as dropped.
    fn expire(&mut self, now_us: u64) {
        while let Some(&(sent, xid)) = self.expiry.front() {
            if sent.saturating_add(self.cfg.timeout_us) > now_us {
                break;
            }
            self.expiry.pop_front();
            if let Some(p) = self.pending.get(&xid)
                && p.sent_us == sent
            {
                match p.phase {
                    Phase::Solicited => self.stats.solicit_drops += 1,
                    Phase::Requested => self.stats.request_drops += 1,
                }
                self.pending.remove(&xid);
            }
        }
    }

    /// Expires timed-out messages and queues the Solicits due at `now_us`.
    pub fn poll_transmit(&mut self, now_us: u64) {
        self.expire(now_us);
        let due = self.pacer.due(now_us);
        let burst = u64::try_from(self.cfg.max_burst).unwrap_or(u64::MAX);
        let n = due.min(burst);
        for _ in 0..n {
            if self.pending.len() >= self.cfg.max_pending {
                self.stats.skipped += 1;
                continue;
            }
            let client = self.cfg.first_client.wrapping_add(self.clients);
            self.clients += 1;
            let xid = self.next_xid();
            wire::client_duid(&mut self.duid, self.cfg.duid, client);
            wire::build_solicit(&mut self.tx.buf, xid, &self.duid, self.cfg.mode);
            self.tx.seal();
            self.pending.insert(
                xid,
                Pending {
                    client,
                    phase: Phase::Solicited,
                    sent_us: now_us,
                    started_us: now_us,
                },
            );
            self.expiry.push_back((now_us, xid));
            self.stats.solicits += 1;
        }
        self.pacer.issue(n);
    }

    /// Whether the run is over at `now_us`: every Solicit has been issued and every
    /// exchange is resolved, or `duration + 2 × timeout` has passed (by then every message
    /// has been answered or has timed out).
    pub fn is_done(&self, now_us: u64) -> bool {
        let limit = self
            .cfg
            .duration_us
            .saturating_add(self.cfg.timeout_us.saturating_mul(2));
        now_us >= limit || (self.pacer.done() && self.pending.is_empty())
    }

    /// Ends the run at `now_us`: whatever is still unanswered counts as dropped.
    pub fn finish(&mut self, now_us: u64) {
        self.expire(now_us);
        for p in self.pending.values() {
            match p.phase {
                Phase::Solicited => self.stats.solicit_drops += 1,
                Phase::Requested => self.stats.request_drops += 1,
            }
        }
        self.pending.clear();
        self.expiry.clear();
    }

    /// Microseconds from `now_us` until the next message times out, if any is in flight.
    pub fn next_timeout(&self, now_us: u64) -> Option<u64> {
        self.expiry.front().map(|&(sent, _)| {
            sent.saturating_add(self.cfg.timeout_us)
                .saturating_sub(now_us)
        })
    }

    /// Takes one datagram received at `now_us`; an Advertise may queue a Request.
    pub fn handle(&mut self, now_us: u64, datagram: &[u8]) {
        let Ok(s) = wire::scan(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        let expected = match s.msg_type {
            wire::ADVERTISE => Phase::Solicited,
            wire::REPLY => Phase::Requested,
            _ => {
                self.stats.unexpected += 1;
                return;
            }
        };
        let Some(p) = self.pending.get(&s.xid).copied() else {
            self.stats.unexpected += 1;
            return;
        };
        if p.phase != expected {
            self.stats.unexpected += 1;
            return;
        }
        if now_us >= p.sent_us.saturating_add(self.cfg.timeout_us) {
            // Late: the message is a drop whether or not expiry has run yet.
            self.expire(now_us);
            self.stats.unexpected += 1;
            return;
        }
        wire::client_duid(&mut self.duid, self.cfg.duid, p.client);
        let cid_ok = s
            .client_id
            .clone()
            .and_then(|r| datagram.get(r.start + 4..r.end))
            .is_some_and(|d| d == self.duid.as_slice());
        // An Advertise without a Server Identifier cannot be answered: it is no answer.
        if !cid_ok || (expected == Phase::Solicited && s.server_id.is_none()) {
            self.stats.malformed += 1;
            return;
        }
        let rtt = now_us.saturating_sub(p.sent_us);
        self.stats.rtt_max_us = self.stats.rtt_max_us.max(rtt);
        self.pending.remove(&s.xid);
        match expected {
            Phase::Solicited => {
                self.stats.advertises += 1;
                self.stats.sa_rtt_sum_us += rtt;
                let xid = self.next_xid();
                let cs = now_us.saturating_sub(p.started_us) / 10_000;
                let elapsed = u16::try_from(cs).unwrap_or(u16::MAX);
                let built = wire::build_request(
                    &mut self.tx.buf,
                    xid,
                    &self.duid,
                    self.cfg.mode,
                    elapsed,
                    datagram,
                    &s,
                );
                if !built {
                    // Unreachable: the Server Identifier was checked above.
                    self.stats.malformed += 1;
                    return;
                }
                self.tx.seal();
                self.pending.insert(
                    xid,
                    Pending {
                        client: p.client,
                        phase: Phase::Requested,
                        sent_us: now_us,
                        started_us: p.started_us,
                    },
                );
                self.expiry.push_back((now_us, xid));
                self.stats.requests += 1;
            }
            Phase::Requested => {
                self.stats.replies += 1;
                self.stats.rr_rtt_sum_us += rtt;
                let refused = s.status.is_some_and(|v| v != 0)
                    || (self.cfg.mode.wants_na()
                        && !s
                            .ia_na
                            .clone()
                            .and_then(|r| datagram.get(r))
                            .is_some_and(wire::ia_granted))
                    || (self.cfg.mode.wants_pd()
                        && !s
                            .ia_pd
                            .clone()
                            .and_then(|r| datagram.get(r))
                            .is_some_and(wire::ia_granted));
                if refused {
                    self.stats.rejected += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use v6h_dhcp6::wire::{self as dw, DhcpOption, Ia, IaAddr, Message};

    const SID: [u8; 10] = [0, 3, 0, 1, 0xfa, 0x02, 0x80, 0x73, 0xd1, 0x01];

    fn cfg(rate: u64, duration_us: u64) -> Config {
        Config {
            mode: Mode::AddressOnly,
            rate,
            duration_us,
            timeout_us: 1_000_000,
            duid: DuidKind::Llt { time: 100 },
            first_client: 1000,
            max_pending: 1 << 20,
            max_burst: 1 << 20,
            xid_seed: 0x5a5a5a,
        }
    }

    /// A fake server: the answer (`Advertise` for a Solicit, `Reply` for a Request) to a
    /// client message, built with the server's codec. `grant` false answers NoAddrsAvail.
    fn answer(datagram: &[u8], grant: bool) -> Vec<u8> {
        let Message::Client(c) = Message::parse(datagram).unwrap() else {
            panic!("relay")
        };
        let ty = match c.msg_type {
            dw::msg::SOLICIT => dw::msg::ADVERTISE,
            dw::msg::REQUEST => dw::msg::REPLY,
            t => panic!("unexpected type {t}"),
        };
        let ia_opts = if grant {
            vec![DhcpOption::IaAddr(IaAddr {
                addr: "2001:db8:1::1:7".parse().unwrap(),
                preferred: 3000,
                valid: 4000,
                options: vec![],
            })]
        } else {
            vec![DhcpOption::StatusCode {
                status: dw::status::NO_ADDRS_AVAIL,
                message: "none".into(),
            }]
        };
        let mut options = vec![
            DhcpOption::ServerId(SID.to_vec()),
            c.option(dw::code::CLIENTID).unwrap().clone(),
        ];
        if c.option(dw::code::IA_NA).is_some() {
            options.push(DhcpOption::IaNa(Ia {
                iaid: wire::IAID_NA,
                t1: 1000,
                t2: 2000,
                options: ia_opts,
            }));
        }
        Message::Client(dw::ClientMessage {
            msg_type: ty,
            xid: c.xid,
            options,
        })
        .emit()
        .unwrap()
    }

    fn drain(g: &mut Generator) -> Vec<Vec<u8>> {
        let v = g.transmit().iter().map(<[u8]>::to_vec).collect();
        g.clear_transmit();
        v
    }

    #[test]
    fn pacer_spreads_the_rate() {
        let mut p = Pacer::new(10_000, 2_000_000);
        assert_eq!(p.total(), 20_000);
        assert_eq!(p.due(0), 0);
        assert_eq!(p.due(1_000), 10);
        assert_eq!(p.due(1_050), 10);
        p.issue(10);
        assert_eq!(p.due(1_999), 9);
        assert_eq!(p.due(2_000), 10);
        // Past the end only the rest of the total is due.
        assert_eq!(p.due(10_000_000), 19_990);
        p.issue(u64::MAX);
        assert!(p.done());
        assert_eq!(p.issued(), 20_000);
        assert_eq!(p.due(u64::MAX), 0);
        // Fractional rates accumulate: 3/s over 1 s.
        let p = Pacer::new(3, 1_000_000);
        assert_eq!(
            (
                p.due(333_333),
                p.due(333_334),
                p.due(999_999),
                p.due(1_000_000)
            ),
            (0, 1, 2, 3)
        );
        // Huge values do not overflow.
        assert_eq!(Pacer::new(u64::MAX, u64::MAX).due(u64::MAX), u64::MAX);
    }

    proptest! {
        #[test]
        fn pacer_issues_exactly_the_total(rate in 1u64..200_000, dur_ms in 1u64..3000, steps in proptest::collection::vec(1u64..5000, 1..400)) {
            let mut p = Pacer::new(rate, dur_ms * 1000);
            let mut t = 0;
            for s in steps {
                t += s;
                let due = p.due(t);
                // Never ahead of the schedule.
                prop_assert!(p.issued() + due <= (u128::from(rate) * u128::from(t) / 1_000_000) as u64);
                p.issue(due);
            }
            p.issue(p.due(dur_ms * 1000));
            prop_assert_eq!(p.issued(), rate * dur_ms / 1000);
            prop_assert!(p.done());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut g = Generator::new(cfg(1000, 10_000));
            g.poll_transmit(10_000);
            let _ = drain(&mut g);
            g.handle(10_001, &bytes);
            let s = g.stats();
            prop_assert_eq!(s.malformed + s.unexpected + s.advertises, 1);
        }
    }

    #[test]
    fn accounting_on_a_fake_exchange_sequence() {
        // 1000/s for 10 ms: 10 clients.
        let mut g = Generator::new(cfg(1000, 10_000));
        g.poll_transmit(10_000);
        let solicits = drain(&mut g);
        assert_eq!(solicits.len(), 10);
        assert_eq!(g.stats().solicits, 10);
        // The server answers all but two Solicits.
        for s in &solicits[2..] {
            g.handle(10_500, &answer(s, true));
        }
        let requests = drain(&mut g);
        assert_eq!(requests.len(), 8);
        for r in &requests {
            let Message::Client(c) = Message::parse(r).unwrap() else {
                panic!()
            };
            assert_eq!(c.msg_type, dw::msg::REQUEST);
            assert_eq!(
                c.option(dw::code::SERVERID),
                Some(&DhcpOption::ServerId(SID.to_vec()))
            );
        }
        // ... and all but one Request; one of the answered ones refuses the address.
        g.handle(20_000, &answer(&requests[0], false));
        for r in &requests[1..7] {
            g.handle(20_000, &answer(r, true));
        }
        assert!(!g.is_done(20_000));
        // A duplicate Reply is unexpected, not a second completion.
        g.handle(20_001, &answer(&requests[1], true));
        g.poll_transmit(1_009_999);
        assert_eq!(g.stats().solicit_drops, 0);
        g.poll_transmit(1_010_000);
        assert_eq!(g.stats().solicit_drops, 2);
        g.poll_transmit(1_010_500);
        assert_eq!(g.stats().request_drops, 1);
        assert!(g.is_done(1_010_500));
        assert_eq!(g.in_flight(), 0);
        // A late Reply changes nothing but the unexpected count.
        g.handle(1_100_000, &answer(&requests[7], true));
        g.finish(1_100_000);
        let s = g.stats().clone();
        assert_eq!(
            (s.solicits, s.advertises, s.requests, s.replies, s.rejected),
            (10, 8, 8, 7, 1)
        );
        assert_eq!((s.solicit_drops, s.request_drops, s.unexpected), (2, 1, 2));
        assert!((s.drops_pct() - 100.0 * 3.0 / 18.0).abs() < 1e-9);
        assert!((s.completed_per_s(10_000) - 700.0).abs() < 1e-9);
        assert_eq!(s.sa_rtt_sum_us, 8 * 500);
        assert_eq!(s.rr_rtt_sum_us, 7 * 9_500);
        assert_eq!(s.rtt_max_us, 9_500);
    }

    #[test]
    fn wrong_client_or_no_server_id_is_no_answer() {
        let mut g = Generator::new(cfg(1000, 2_000));
        g.poll_transmit(2_000);
        let sol = drain(&mut g);
        // Answer client 0's Solicit with client 1's identity.
        let mut forged = answer(&sol[1], true);
        forged[1..4].copy_from_slice(&sol[0][1..4]);
        g.handle(2_100, &forged);
        // An Advertise without Server Identifier.
        let Message::Client(mut c) = Message::parse(&answer(&sol[1], true)).unwrap() else {
            panic!()
        };
        c.options.retain(|o| o.code() != dw::code::SERVERID);
        g.handle(2_100, &Message::Client(c).emit().unwrap());
        assert!(g.transmit().is_empty());
        assert_eq!(g.stats().malformed, 2);
        g.finish(2_000_000);
        assert_eq!(g.stats().solicit_drops, 2);
        assert_eq!(g.stats().advertises, 0);
    }

    #[test]
    fn late_answer_is_a_drop_and_requests_follow_the_window() {
        let mut g = Generator::new(cfg(1000, 2_000));
        g.poll_transmit(2_000);
        let sol = drain(&mut g);
        assert_eq!(sol.len(), 2);
        // After the send window, an Advertise in time still gets its Request.
        g.handle(900_000, &answer(&sol[1], true));
        assert_eq!(g.transmit().len(), 1);
        // An Advertise at its deadline is late, even before expiry has run.
        g.handle(1_002_000, &answer(&sol[0], true));
        let s = g.stats();
        assert_eq!(
            (s.advertises, s.requests, s.solicit_drops, s.unexpected),
            (1, 1, 1, 1)
        );
        assert!(!g.is_done(1_899_999));
        assert!(g.is_done(2_002_000));
    }

    #[test]
    fn pending_is_bounded() {
        let mut c = cfg(1000, 100_000);
        c.max_pending = 10;
        c.max_burst = 30;
        let mut g = Generator::new(c);
        g.poll_transmit(100_000);
        assert_eq!(g.transmit().len(), 10);
        assert_eq!(g.stats().skipped, 20);
        assert_eq!(g.pacer().issued(), 30);
        // The burst cap leaves the rest for later calls.
        g.poll_transmit(100_000);
        assert_eq!(g.pacer().issued(), 60);
    }

    #[test]
    fn xids_are_unique_and_requests_get_new_ones() {
        let mut g = Generator::new(cfg(200_000, 1_000_000));
        g.poll_transmit(1_000_000);
        let sol = drain(&mut g);
        assert_eq!(sol.len(), 200_000);
        let xids: std::collections::HashSet<[u8; 3]> =
            sol.iter().map(|d| [d[1], d[2], d[3]]).collect();
        assert_eq!(xids.len(), sol.len());
        assert_eq!(g.in_flight(), 200_000);
        // Distinct clients too.
        let duids: std::collections::HashSet<Vec<u8>> = sol[..1000]
            .iter()
            .map(|d| {
                wire::scan(d)
                    .unwrap()
                    .client_id
                    .map(|r| d[r].to_vec())
                    .unwrap()
            })
            .collect();
        assert_eq!(duids.len(), 1000);
        let mut g = Generator::new(cfg(1000, 1_000_000));
        g.poll_transmit(1_000);
        let s = drain(&mut g);
        g.handle(1_500, &answer(&s[0], true));
        let r = drain(&mut g);
        assert_ne!(r[0][1..4], s[0][1..4]);
        // Elapsed time: 500 us is 0 hundredths; the Request carries it.
        let Message::Client(c) = Message::parse(&r[0]).unwrap() else {
            panic!()
        };
        assert_eq!(
            c.option(dw::code::ELAPSED_TIME),
            Some(&DhcpOption::ElapsedTime(0))
        );
    }

    #[test]
    fn finish_counts_what_is_left() {
        let mut g = Generator::new(cfg(1000, 3_000));
        g.poll_transmit(3_000);
        let s = drain(&mut g);
        g.handle(3_100, &answer(&s[0], true));
        g.finish(3_200);
        let st = g.stats();
        assert_eq!((st.solicit_drops, st.request_drops), (2, 1));
        assert!((st.drops_pct() - 75.0).abs() < 1e-9);
        assert_eq!(g.next_timeout(3_200), None);
    }
}

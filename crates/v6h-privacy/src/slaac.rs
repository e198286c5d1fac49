//! Sans-IO address lifecycle core of `v6home privacy agent`: RFC 4862 SLAAC with RFC 7217
//! stable addresses and RFC 8981 temporary addresses.
//!
//! The core never reads a clock, a socket or the OS RNG. Feed it events with
//! [`Agent::handle`] (`now` in milliseconds of a monotonic clock that keeps counting in suspend,
//! e.g. `CLOCK_BOOTTIME`), then drain [`Agent::poll_action`] and sleep until
//! [`Agent::poll_timeout`], where you call `handle(now, Event::Timeout)`. Randomness (temporary
//! IIDs, DESYNC_FACTOR, backoff jitter) comes from the RNG given to [`Agent::new`].
//!
//! Rules implemented (spec privacy.md §1, §4.2):
//! - PIO processing per RFC 4862 §5.5.3 including the two-hour rule ([`two_hour_rule`]).
//! - One RFC 7217 stable address per prefix, DAD counter +1 per conflict (saved via
//!   [`Action::SaveDadCounter`] *before* the retry is installed), retries 1 s apart, then
//!   per-prefix backoff.
//! - RFC 8981 temporaries: fresh random non-reserved IID and fresh DESYNC_FACTOR per address,
//!   lifetimes capped by the prefix's and by TEMP_VALID/TEMP_PREFERRED − DESYNC since creation,
//!   created only when the preferred lifetime would exceed REGEN_ADVANCE (so a prefix with
//!   preferred lifetime 0 gets none, and that is not a failure), successor REGEN_ADVANCE before
//!   deprecation, DAD failures redraw at once and back off *per prefix* after 3 in a row.
//! - The preferred source per prefix ([`Action::SetPreferredSource`]) is the non-deprecated
//!   temporary that passed DAD with the longest remaining preferred lifetime.

use crate::iid::{StableIdentity, is_reserved_iid, prefix64, random_iid, with_iid};
use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv6Addr;

/// Lifetime value meaning "infinity" in a Prefix Information option.
pub const INFINITE: u32 = u32::MAX;
/// Two hours, the RFC 4862 §5.5.3(e) threshold, in seconds.
pub const TWO_HOURS: u64 = 7200;
/// Internal deadline meaning "never".
const NEVER: u64 = u64::MAX;
/// Installed lifetime for an infinite prefix lifetime (spec A1: finite lifetimes only, so an
/// agent killed with SIGKILL leaves nothing behind forever); refreshed every half of it.
pub const FINITE_CAP: u32 = 86_400;
/// Most /64 prefixes tracked at once. Prefixes come from unauthenticated RAs, so without a cap
/// an on-link RA flood with distinct prefixes would make the agent add addresses (and keep
/// state) without bound; further new prefixes are ignored until one expires.
pub const MAX_PREFIXES: usize = 64;

/// RFC 4862 §5.5.3(e): the new *remaining* valid lifetime (seconds) of a known prefix, given
/// the advertised value and the currently remaining one (`INFINITE`-aware, `u64::MAX` = ∞).
pub fn two_hour_rule(advertised: u64, remaining: u64) -> u64 {
    if advertised > TWO_HOURS || advertised > remaining {
        advertised
    } else if remaining <= TWO_HOURS {
        remaining
    } else {
        TWO_HOURS
    }
}

/// Tunables of the core; [`Params::default`] gives the RFC 8981 §3.8 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// TEMP_VALID_LIFETIME in seconds (default 2 days).
    pub temp_valid_lft: u32,
    /// TEMP_PREFERRED_LIFETIME in seconds (default 1 day).
    pub temp_preferred_lft: u32,
    /// REGEN_ADVANCE in seconds (default 2 + 3 × 1 × 1 s = 5).
    pub regen_advance: u32,
    /// MAX_DESYNC_FACTOR in seconds (default 0.4 × TEMP_PREFERRED_LIFETIME).
    pub max_desync: u32,
    /// Whether temporaries are formed at all (`temporaries = on|off`).
    pub temporaries: bool,
    /// Whether stable (RFC 7217) addresses are formed.
    pub stable: bool,
    /// Accept any advertised valid lifetime (networkd behaviour) instead of the 2-hour rule.
    pub honor_short_valid_lifetime: bool,
    /// At most this many temporaries per prefix (default 8).
    pub max_temporaries: usize,
    /// Attempts in a row before a prefix backs off (TEMP_IDGEN_RETRIES / IDGEN_RETRIES, 3).
    pub idgen_retries: u32,
    /// Delay between stable-address DAD retries in ms (IDGEN_DELAY, 1000).
    pub idgen_delay_ms: u64,
    /// First backoff after `idgen_retries` failures, seconds (60).
    pub backoff_min: u32,
    /// Backoff ceiling, seconds (3600).
    pub backoff_max: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            temp_valid_lft: 2 * 86400,
            temp_preferred_lft: 86400,
            regen_advance: 5,
            max_desync: 86400 * 2 / 5,
            temporaries: true,
            stable: true,
            honor_short_valid_lifetime: false,
            max_temporaries: 8,
            idgen_retries: 3,
            idgen_delay_ms: 1000,
            backoff_min: 60,
            backoff_max: 3600,
        }
    }
}

/// A parameter set that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// TEMP_PREFERRED_LIFETIME must exceed REGEN_ADVANCE, or no temporary is ever usable.
    #[error(
        "temporary preferred lifetime {preferred}s must be longer than REGEN_ADVANCE ({regen}s)"
    )]
    PreferredTooShort {
        /// The preferred lifetime.
        preferred: u32,
        /// REGEN_ADVANCE.
        regen: u32,
    },
    /// TEMP_VALID_LIFETIME must not be shorter than TEMP_PREFERRED_LIFETIME.
    #[error(
        "temporary valid lifetime {valid}s is shorter than the preferred lifetime {preferred}s"
    )]
    ValidBelowPreferred {
        /// The valid lifetime.
        valid: u32,
        /// The preferred lifetime.
        preferred: u32,
    },
    /// `max_temporaries` or `idgen_retries` is zero.
    #[error("max_temporaries and idgen_retries must be at least 1")]
    Zero,
}

impl Params {
    /// Parameters with the given temporary lifetimes (seconds) and MAX_DESYNC_FACTOR = 0.4 ×
    /// preferred, other values default.
    pub fn with_lifetimes(preferred: u32, valid: u32) -> Self {
        Params {
            temp_preferred_lft: preferred,
            temp_valid_lft: valid,
            max_desync: preferred / 5 * 2,
            ..Params::default()
        }
    }

    /// Checks that the parameters can work.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.temp_preferred_lft <= self.regen_advance {
            return Err(ParamError::PreferredTooShort {
                preferred: self.temp_preferred_lft,
                regen: self.regen_advance,
            });
        }
        if self.temp_valid_lft < self.temp_preferred_lft {
            return Err(ParamError::ValidBelowPreferred {
                valid: self.temp_valid_lft,
                preferred: self.temp_preferred_lft,
            });
        }
        if self.max_temporaries == 0 || self.idgen_retries == 0 {
            return Err(ParamError::Zero);
        }
        Ok(())
    }

    /// MAX_DESYNC_FACTOR clamped below TEMP_PREFERRED_LIFETIME − REGEN_ADVANCE (RFC 8981 §3.8).
    fn desync_cap(&self) -> u32 {
        self.max_desync.min(
            self.temp_preferred_lft
                .saturating_sub(self.regen_advance + 1),
        )
    }
}

/// An input to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A Prefix Information option from a valid RA (the shell checked hop limit 255,
    /// link-local source, code 0).
    RaPrefix {
        /// The prefix (bits beyond `prefix_len` are ignored).
        prefix: Ipv6Addr,
        /// Prefix length; only 64 is usable for SLAAC.
        prefix_len: u8,
        /// The A (autonomous) flag.
        autonomous: bool,
        /// Valid lifetime in seconds ([`INFINITE`] = ∞).
        valid: u32,
        /// Preferred lifetime in seconds ([`INFINITE`] = ∞).
        preferred: u32,
    },
    /// The outcome of DAD for an address the core asked to add.
    DadResult {
        /// The address.
        addr: Ipv6Addr,
        /// True if it passed (no longer tentative), false if it failed (`dadfailed`).
        ok: bool,
    },
    /// An address the core manages disappeared for another reason than DAD (deleted by
    /// someone, or expired a moment early): it is re-created if still wanted, without counting
    /// as a DAD failure.
    AddressRemoved {
        /// The address.
        addr: Ipv6Addr,
    },
    /// A timer fired (or a periodic sweep): re-evaluate all deadlines.
    Timeout,
}

/// What kind of address an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    /// RFC 7217 stable address.
    Stable,
    /// RFC 8981 temporary address.
    Temporary,
}

/// An output of the core for the IO shell to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Add (`replace == false`, with DAD; never `nodad`) or refresh (`replace == true`) an
    /// address as a /64 without a prefix route, with these remaining lifetimes in seconds
    /// ([`INFINITE`] = forever).
    AddAddress {
        /// The address.
        addr: Ipv6Addr,
        /// Remaining preferred lifetime, seconds (0 = deprecated).
        preferred: u32,
        /// Remaining valid lifetime, seconds (> 0).
        valid: u32,
        /// Stable or temporary.
        kind: AddrKind,
        /// False for a new address (create, DAD follows), true for a refresh.
        replace: bool,
    },
    /// Delete an address (dropping the oldest deprecated temporary at the cap).
    RemoveAddress {
        /// The address.
        addr: Ipv6Addr,
    },
    /// Make `source` the preferred source for traffic to and via `prefix`'s routers, or stop
    /// steering (`None`) when no usable temporary exists.
    SetPreferredSource {
        /// The /64 prefix.
        prefix: Ipv6Addr,
        /// The temporary to use, or `None`.
        source: Option<Ipv6Addr>,
    },
    /// Persist the DAD counter of a prefix's stable address; emitted before the address made
    /// with that counter is added.
    SaveDadCounter {
        /// The /64 prefix.
        prefix: Ipv6Addr,
        /// The new counter.
        counter: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dad {
    Tentative,
    Ok,
}

#[derive(Debug, Clone)]
struct Temp {
    addr: Ipv6Addr,
    created: u64,
    desync_s: u32,
    preferred_until: u64,
    valid_until: u64,
    dad: Dad,
}

#[derive(Debug, Clone)]
struct Retry {
    /// Failures in a row.
    failures: u32,
    /// Backoffs taken in a row (doubling).
    level: u32,
    /// Not before this time (ms).
    not_before: u64,
}

impl Retry {
    fn new() -> Self {
        Retry {
            failures: 0,
            level: 0,
            not_before: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct PrefixState {
    prefix: [u8; 8],
    valid_until: u64,
    preferred_until: u64,
    counter: u32,
    stable: Option<(Ipv6Addr, Dad)>,
    /// When the stable address' capped (infinite) lifetimes must be re-sent.
    stable_refresh_at: u64,
    stable_retry: Retry,
    temps: Vec<Temp>,
    temp_retry: Retry,
    source: Option<Ipv6Addr>,
}

/// A snapshot of one address the core manages (for status output and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// The address.
    pub addr: Ipv6Addr,
    /// Stable or temporary.
    pub kind: AddrKind,
    /// True while DAD runs.
    pub tentative: bool,
    /// Creation time (ms); for stable addresses, when the prefix was first seen.
    pub created: u64,
    /// Preferred until (ms; `u64::MAX` = forever).
    pub preferred_until: u64,
    /// Valid until (ms; `u64::MAX` = forever).
    pub valid_until: u64,
}

/// A snapshot of one prefix (for status output and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The /64 prefix.
    pub prefix: Ipv6Addr,
    /// Its DAD counter for the stable address.
    pub dad_counter: u32,
    /// True while temporary creation is backing off after repeated DAD failures.
    pub degraded: bool,
    /// The current preferred source, if any.
    pub source: Option<Ipv6Addr>,
    /// The prefix's addresses.
    pub addrs: Vec<AddrInfo>,
}

/// The address lifecycle state machine for one interface.
pub struct Agent<R> {
    params: Params,
    identity: StableIdentity,
    rng: R,
    counters: BTreeMap<[u8; 8], u32>,
    prefixes: BTreeMap<[u8; 8], PrefixState>,
    actions: VecDeque<Action>,
    now: u64,
}

fn deadline(now: u64, secs: u64) -> u64 {
    if secs >= u64::from(INFINITE) {
        NEVER
    } else {
        now.saturating_add(secs.saturating_mul(1000))
    }
}

/// Remaining seconds until `until` (rounded down), [`INFINITE`] for never.
fn remaining_s(now: u64, until: u64) -> u32 {
    if until == NEVER {
        INFINITE
    } else {
        let s = until.saturating_sub(now) / 1000;
        u32::try_from(s).unwrap_or(INFINITE - 1).min(INFINITE - 1)
    }
}

/// Installed (preferred, valid) seconds of a stable address and when to refresh them.
fn stable_lifetimes(now: u64, preferred_until: u64, valid_until: u64) -> (u32, u32, u64) {
    let cap = |until: u64| {
        if until == NEVER {
            FINITE_CAP
        } else {
            remaining_s(now, until)
        }
    };
    let valid = cap(valid_until).max(1);
    let preferred = cap(preferred_until).min(valid);
    let refresh = if preferred_until == NEVER || valid_until == NEVER {
        now + u64::from(FINITE_CAP / 2) * 1000
    } else {
        NEVER
    };
    (preferred, valid, refresh)
}

fn remaining_s_u64(now: u64, until: u64) -> u64 {
    if until == NEVER {
        u64::MAX
    } else {
        until.saturating_sub(now) / 1000
    }
}

impl<R: rand::Rng> Agent<R> {
    /// A new agent. `counters` are the persisted DAD counters per /64 prefix (spec A6).
    pub fn new(
        params: Params,
        identity: StableIdentity,
        counters: impl IntoIterator<Item = (Ipv6Addr, u32)>,
        rng: R,
    ) -> Result<Self, ParamError> {
        params.validate()?;
        Ok(Agent {
            params,
            identity,
            rng,
            counters: counters
                .into_iter()
                .map(|(p, c)| (prefix64(&p), c))
                .collect(),
            prefixes: BTreeMap::new(),
            actions: VecDeque::new(),
            now: 0,
        })
    }

    /// The parameters in use.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Processes one event at time `now` (ms).
    pub fn handle(&mut self, now: u64, event: Event) {
        self.now = self.now.max(now);
        let now = self.now;
        match event {
            Event::RaPrefix {
                prefix,
                prefix_len,
                autonomous,
                valid,
                preferred,
            } => self.on_prefix(now, prefix, prefix_len, autonomous, valid, preferred),
            Event::DadResult { addr, ok } => self.on_dad(now, addr, ok),
            Event::AddressRemoved { addr } => self.on_removed(now, addr),
            Event::Timeout => {}
        }
        self.reconcile(now);
    }

    /// The next action for the IO shell, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call `handle(now, Event::Timeout)` next (ms), if anything is scheduled.
    pub fn poll_timeout(&self) -> Option<u64> {
        let now = self.now;
        let regen = u64::from(self.params.regen_advance) * 1000;
        let mut next = NEVER;
        let mut consider = |t: u64| {
            if t > now && t < next {
                next = t;
            }
        };
        for st in self.prefixes.values() {
            consider(st.valid_until);
            consider(st.preferred_until);
            consider(st.preferred_until.saturating_sub(regen));
            consider(st.stable_retry.not_before);
            if st.stable.is_some() {
                consider(st.stable_refresh_at);
            }
            consider(st.temp_retry.not_before);
            for t in &st.temps {
                consider(t.preferred_until);
                consider(t.valid_until);
                consider(t.preferred_until.saturating_sub(regen));
            }
        }
        (next != NEVER).then_some(next)
    }

    /// A snapshot of all prefixes and addresses.
    pub fn snapshot(&self) -> Vec<PrefixInfo> {
        self.prefixes
            .values()
            .map(|st| {
                let mut addrs = Vec::new();
                if let Some((a, dad)) = st.stable {
                    addrs.push(AddrInfo {
                        addr: a,
                        kind: AddrKind::Stable,
                        tentative: dad == Dad::Tentative,
                        created: 0,
                        preferred_until: st.preferred_until,
                        valid_until: st.valid_until,
                    });
                }
                for t in &st.temps {
                    addrs.push(AddrInfo {
                        addr: t.addr,
                        kind: AddrKind::Temporary,
                        tentative: t.dad == Dad::Tentative,
                        created: t.created,
                        preferred_until: t.preferred_until,
                        valid_until: t.valid_until,
                    });
                }
                PrefixInfo {
                    prefix: with_iid(&st.prefix, 0),
                    dad_counter: st.counter,
                    degraded: st.temp_retry.not_before > self.now,
                    source: st.source,
                    addrs,
                }
            })
            .collect()
    }

    fn on_prefix(
        &mut self,
        now: u64,
        prefix: Ipv6Addr,
        plen: u8,
        autonomous: bool,
        valid: u32,
        preferred: u32,
    ) {
        // RFC 4862 §5.5.3 (a)-(c), and (d)'s length check.
        if !autonomous || (prefix.segments()[0] & 0xffc0) == 0xfe80 || preferred > valid {
            return;
        }
        if plen != 64 {
            tracing::debug!(%prefix, plen, "prefix length is not 64: no SLAAC");
            return;
        }
        let key = prefix64(&prefix);
        let two_hour = !self.params.honor_short_valid_lifetime;
        let p = &self.params;
        match self.prefixes.get_mut(&key) {
            None => {
                if valid == 0 {
                    return;
                }
                if self.prefixes.len() >= MAX_PREFIXES {
                    tracing::warn!(%prefix, max = MAX_PREFIXES, "too many prefixes: new prefix ignored");
                    return;
                }
                let counter = self.counters.get(&key).copied().unwrap_or(0);
                self.prefixes.insert(
                    key,
                    PrefixState {
                        prefix: key,
                        valid_until: deadline(now, u64::from(valid)),
                        preferred_until: deadline(now, u64::from(preferred)),
                        counter,
                        stable: None,
                        stable_refresh_at: NEVER,
                        stable_retry: Retry::new(),
                        temps: Vec::new(),
                        temp_retry: Retry::new(),
                        source: None,
                    },
                );
                tracing::info!(prefix = %with_iid(&key, 0), valid, preferred, "new prefix");
            }
            Some(st) => {
                st.preferred_until = deadline(now, u64::from(preferred));
                let new_valid = if two_hour {
                    two_hour_rule(
                        if valid == INFINITE {
                            u64::MAX
                        } else {
                            u64::from(valid)
                        },
                        remaining_s_u64(now, st.valid_until),
                    )
                } else {
                    u64::from(valid)
                };
                if new_valid == u64::MAX {
                    st.valid_until = NEVER;
                } else if new_valid != remaining_s_u64(now, st.valid_until) {
                    st.valid_until = deadline(now, new_valid);
                }
                if st.preferred_until > st.valid_until {
                    st.preferred_until = st.valid_until;
                }
                // Refresh the stable address and extend/shorten the temporaries.
                if let Some((addr, _)) = st.stable {
                    let (preferred, valid, refresh) =
                        stable_lifetimes(now, st.preferred_until, st.valid_until);
                    st.stable_refresh_at = refresh;
                    self.actions.push_back(Action::AddAddress {
                        addr,
                        preferred,
                        valid,
                        kind: AddrKind::Stable,
                        replace: true,
                    });
                }
                for t in &mut st.temps {
                    let max_valid = t.created + u64::from(p.temp_valid_lft) * 1000;
                    let max_pref = t.created
                        + u64::from(p.temp_preferred_lft.saturating_sub(t.desync_s)) * 1000;
                    t.valid_until = st.valid_until.min(max_valid);
                    t.preferred_until = st.preferred_until.min(max_pref).min(t.valid_until);
                    if t.valid_until > now {
                        self.actions.push_back(Action::AddAddress {
                            addr: t.addr,
                            preferred: remaining_s(now, t.preferred_until),
                            valid: remaining_s(now, t.valid_until).max(1),
                            kind: AddrKind::Temporary,
                            replace: true,
                        });
                    }
                }
            }
        }
    }

    fn backoff_ms(&mut self, level: u32) -> u64 {
        let base = u64::from(self.params.backoff_min)
            .saturating_mul(1u64 << level.min(20))
            .min(u64::from(self.params.backoff_max))
            * 1000;
        // ±20 % jitter.
        let span = base * 2 / 5;
        let jitter = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        base - base / 5 + jitter
    }

    fn on_removed(&mut self, now: u64, addr: Ipv6Addr) {
        let Some(st) = self.prefixes.get_mut(&prefix64(&addr)) else {
            return;
        };
        // Expiry races (the kernel rounds lifetimes down): nothing to repair.
        if st.valid_until.saturating_sub(now) < 2000 {
            return;
        }
        if st.stable.is_some_and(|(a, _)| a == addr) {
            tracing::warn!(%addr, "stable address removed by someone else: re-adding");
            st.stable = None;
        } else if let Some(i) = st.temps.iter().position(|t| t.addr == addr) {
            if st.temps[i].valid_until.saturating_sub(now) >= 2000 {
                tracing::warn!(%addr, "temporary address removed by someone else");
            }
            st.temps.remove(i);
        }
    }

    fn on_dad(&mut self, now: u64, addr: Ipv6Addr, ok: bool) {
        let key = prefix64(&addr);
        let retries = self.params.idgen_retries;
        let delay = self.params.idgen_delay_ms;
        let Some(st) = self.prefixes.get_mut(&key) else {
            return;
        };
        if let Some((a, dad)) = st.stable.as_mut()
            && *a == addr
        {
            if ok {
                *dad = Dad::Ok;
                st.stable_retry = Retry::new();
                tracing::info!(%addr, "stable address passed DAD");
            } else {
                tracing::warn!(%addr, counter = st.counter, "stable address failed DAD");
                st.stable = None;
                st.counter = st.counter.saturating_add(1);
                self.counters.insert(key, st.counter);
                st.stable_retry.failures += 1;
                if st.stable_retry.failures % retries == 0 {
                    let level = st.stable_retry.level;
                    st.stable_retry.level += 1;
                    let b = self.backoff_ms(level);
                    let st = self.prefixes.get_mut(&key).expect("prefix present");
                    st.stable_retry.not_before = now + b;
                } else {
                    st.stable_retry.not_before = now + delay;
                }
            }
            return;
        }
        let Some(i) = st.temps.iter().position(|t| t.addr == addr) else {
            return;
        };
        if ok {
            if let Some(t) = st.temps.get_mut(i) {
                t.dad = Dad::Ok;
            }
            st.temp_retry = Retry::new();
            tracing::info!(%addr, "temporary address passed DAD");
        } else {
            // The kernel deleted it (dadfailed); forget it and redraw, or back off.
            st.temps.remove(i);
            st.temp_retry.failures += 1;
            tracing::warn!(%addr, failures = st.temp_retry.failures, "temporary address failed DAD");
            if st.temp_retry.failures % retries == 0 {
                let level = st.temp_retry.level;
                let b = self.backoff_ms(level);
                let st = self.prefixes.get_mut(&key).expect("prefix present");
                st.temp_retry.level += 1;
                st.temp_retry.not_before = now + b;
                tracing::warn!(prefix = %with_iid(&key, 0), backoff_ms = b,
                    "temporaries for this prefix degraded: backing off (other prefixes unaffected)");
            }
        }
    }

    fn reconcile(&mut self, now: u64) {
        let keys: Vec<[u8; 8]> = self.prefixes.keys().copied().collect();
        for key in keys {
            self.reconcile_prefix(now, key);
        }
    }

    fn reconcile_prefix(&mut self, now: u64, key: [u8; 8]) {
        let regen = u64::from(self.params.regen_advance) * 1000;
        let Some(st) = self.prefixes.get_mut(&key) else {
            return;
        };
        // Expired prefix: the kernel expired the addresses already; drop state.
        if st.valid_until <= now {
            if st.source.is_some() {
                self.actions.push_back(Action::SetPreferredSource {
                    prefix: with_iid(&key, 0),
                    source: None,
                });
            }
            self.prefixes.remove(&key);
            return;
        }
        st.temps.retain(|t| t.valid_until > now);

        // Stable address: install, or re-send capped infinite lifetimes.
        if let Some((addr, _)) = st.stable
            && st.stable_refresh_at <= now
        {
            let (preferred, valid, refresh) =
                stable_lifetimes(now, st.preferred_until, st.valid_until);
            st.stable_refresh_at = refresh;
            self.actions.push_back(Action::AddAddress {
                addr,
                preferred,
                valid,
                kind: AddrKind::Stable,
                replace: true,
            });
        }
        if self.params.stable && st.stable.is_none() && st.stable_retry.not_before <= now {
            self.install_stable(now, key);
        }
        // Temporaries.
        if self.params.temporaries {
            self.maybe_new_temporary(now, key, regen);
        }
        // Preferred source.
        let Some(st) = self.prefixes.get_mut(&key) else {
            return;
        };
        let current = st
            .temps
            .iter()
            .filter(|t| t.dad == Dad::Ok && t.preferred_until > now)
            .max_by_key(|t| (t.preferred_until, t.created))
            .map(|t| t.addr);
        if current != st.source {
            st.source = current;
            self.actions.push_back(Action::SetPreferredSource {
                prefix: with_iid(&key, 0),
                source: current,
            });
        }
    }

    fn install_stable(&mut self, now: u64, key: [u8; 8]) {
        let Some(st) = self.prefixes.get_mut(&key) else {
            return;
        };
        let prefix = with_iid(&key, 0);
        let start = st.counter;
        let mut counter = st.counter;
        // Skip reserved IIDs (counter + 1 each), bounded.
        let iid = loop {
            match self.identity.iid(&prefix, counter) {
                Ok(iid) if !is_reserved_iid(iid) => break Some(iid),
                Ok(_) if counter.wrapping_sub(start) < 16 => counter = counter.wrapping_add(1),
                Ok(_) => break None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot compute the stable IID");
                    break None;
                }
            }
        };
        let Some(iid) = iid else {
            // Nothing sensible to do; try again much later.
            st.stable_retry.not_before = now + u64::from(self.params.backoff_max) * 1000;
            return;
        };
        if counter != st.counter || st.stable_retry.failures > 0 {
            st.counter = counter;
            self.counters.insert(key, counter);
            self.actions
                .push_back(Action::SaveDadCounter { prefix, counter });
        }
        let addr = with_iid(&key, iid);
        st.stable = Some((addr, Dad::Tentative));
        let (preferred, valid, refresh) = stable_lifetimes(now, st.preferred_until, st.valid_until);
        st.stable_refresh_at = refresh;
        self.actions.push_back(Action::AddAddress {
            addr,
            preferred,
            valid,
            kind: AddrKind::Stable,
            replace: false,
        });
    }

    fn maybe_new_temporary(&mut self, now: u64, key: [u8; 8], regen: u64) {
        let cap = self.params.desync_cap();
        let Some(st) = self.prefixes.get(&key) else {
            return;
        };
        if st.temp_retry.not_before > now {
            return;
        }
        // A temporary that is preferred and not yet inside its regeneration window covers
        // the prefix; otherwise a successor is due (RFC 8981 §3.5, spec A3 invariant).
        let covered = st
            .temps
            .iter()
            .any(|t| t.preferred_until > now && t.preferred_until - now > regen);
        if covered {
            return;
        }
        // RFC 8981 §3.4 (4): only if the preferred lifetime would exceed REGEN_ADVANCE.
        let desync_s = if cap == 0 {
            0
        } else {
            u32::try_from(self.rng.next_u64() % (u64::from(cap) + 1)).unwrap_or(0)
        };
        let p = &self.params;
        let max_pref = now + u64::from(p.temp_preferred_lft - desync_s) * 1000;
        let preferred_until = st.preferred_until.min(max_pref);
        let valid_until = st.valid_until.min(now + u64::from(p.temp_valid_lft) * 1000);
        let preferred_until = preferred_until.min(valid_until);
        if preferred_until.saturating_sub(now) <= regen {
            return; // Deprecated or nearly deprecated prefix: nothing to do, not a failure.
        }
        let max = p.max_temporaries;
        let mut removed = None;
        if st.temps.len() >= max {
            // Drop the oldest deprecated temporary, if any.
            match st
                .temps
                .iter()
                .filter(|t| t.preferred_until <= now)
                .min_by_key(|t| t.created)
            {
                Some(old) => removed = Some(old.addr),
                None => {
                    tracing::error!(prefix = %with_iid(&key, 0), max,
                        "temporary cap reached with no deprecated one to drop");
                    return;
                }
            }
        }
        let in_use: Vec<u64> = st
            .temps
            .iter()
            .map(|t| u64::from_be_bytes(t.addr.octets()[8..].try_into().unwrap_or([0; 8])))
            .chain(
                st.stable
                    .map(|(a, _)| u64::from_be_bytes(a.octets()[8..].try_into().unwrap_or([0; 8]))),
            )
            .collect();
        let Some(iid) = random_iid(&mut self.rng, &in_use) else {
            return;
        };
        let Some(st) = self.prefixes.get_mut(&key) else {
            return;
        };
        if let Some(old) = removed {
            st.temps.retain(|t| t.addr != old);
            self.actions.push_back(Action::RemoveAddress { addr: old });
        }
        let addr = with_iid(&key, iid);
        st.temps.push(Temp {
            addr,
            created: now,
            desync_s,
            preferred_until,
            valid_until,
            dad: Dad::Tentative,
        });
        tracing::info!(%addr, desync_s, "new temporary address");
        self.actions.push_back(Action::AddAddress {
            addr,
            preferred: remaining_s(now, preferred_until),
            valid: remaining_s(now, valid_until).max(1),
            kind: AddrKind::Temporary,
            replace: false,
        });
    }
}

//! Sans-IO TIC server: one [`Session`] per TCP connection, plus a shared [`LoginLimiter`]
//! (failed-login back-off per user and source) and [`ConnTable`] (connection slots).
//!
//! The IO layer sends [`Session::greeting`], then feeds each received line (from a
//! [`super::LineFramer`]) to [`Session::handle_line`] or [`Session::handle_line_limited`] and
//! writes the returned reply lines, each followed by `\n`. It closes the connection once
//! [`Session::is_finished`] is true (after writing the replies). If
//! [`Session::take_starttls`] returns true, it must run the TLS server handshake before
//! reading the next line. After each line it takes [`Session::take_auth_event`] to log and
//! count logins.

use std::collections::HashMap;
use std::net::IpAddr;

use subtle::ConstantTimeEq;

use super::{MAX_BLOCK_LEN, TunnelInfo, md5_response};

/// Consecutive error replies after which the session ends.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 10;
/// Lines (including empty ones) after which the session ends; an AICCU login needs about 10.
pub const MAX_LINES: u32 = 200;
/// Failed `authenticate` attempts after which the session ends.
pub const MAX_AUTH_FAILURES: u32 = 3;
/// Longest accepted user name.
pub const MAX_USERNAME_LEN: usize = 64;

/// Account and tunnel storage the session reads.
///
/// User names are passed through as sent (printable ASCII, no spaces, at most
/// [`MAX_USERNAME_LEN`] bytes), so an implementation may also accept SixXS-style per-tunnel
/// names such as `ABC1-SIXXS/T12345`.
pub trait Directory {
    /// `md5hex(account password)` of `username` (32 lowercase hex), or `None` if unknown.
    fn password_md5hex(&self, username: &str) -> Option<String>;
    /// The tunnels owned by `username`.
    fn tunnels(&self, username: &str) -> Vec<TunnelInfo>;
}

/// Per-connection parameters.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Server name shown in the greeting.
    pub server_name: String,
    /// The client's address (shown after login, and the rate-limit key).
    pub peer: IpAddr,
    /// Fresh random bytes for this connection's MD5 challenge (sent as 32 hex characters).
    pub challenge: [u8; 16],
    /// Whether the IO layer can do STARTTLS (a certificate is configured).
    pub tls_available: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    User(String),
    Challenged(String),
    LoggedIn(String),
}

/// Why a login failed (a metrics and log label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginFailure {
    /// The user exists but the response did not match.
    BadPassword,
    /// No such user (the client is told the same as for a bad password).
    UnknownUser,
    /// The (user, source) pair is in back-off; the password was not checked.
    Throttled,
}

impl LoginFailure {
    /// Stable snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginFailure::BadPassword => "bad_password",
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::Throttled => "throttled",
        }
    }
}

/// The outcome of an `authenticate` command, for the IO layer to log and count
/// ([`Session::take_auth_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// `user` logged in.
    LoggedIn {
        /// The user name.
        user: String,
    },
    /// A login of `user` failed.
    Failed {
        /// The user name as sent.
        user: String,
        /// Why.
        reason: LoginFailure,
        /// Seconds the (user, source) pair must now wait (0 when none).
        retry_after: u64,
    },
}

/// The TIC server dialogue of one connection (§4.2).
#[derive(Debug, Clone)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    auth_event: Option<AuthEvent>,
    lines: u32,
    errors_in_row: u32,
    auth_failures: u32,
    finished: bool,
    tls_done: bool,
    tls_pending: bool,
}

/// Replies are returned as a small vector of lines without terminators.
pub type Replies = Vec<String>;

fn err(text: &str) -> Replies {
    vec![format!("400 {text}")]
}

impl Session {
    /// A new session; nothing is sent until the caller writes [`Session::greeting`].
    pub fn new(cfg: SessionConfig) -> Session {
        Session {
            cfg,
            state: State::Start,
            auth_event: None,
            lines: 0,
            errors_in_row: 0,
            auth_failures: 0,
            finished: false,
            tls_done: false,
            tls_pending: false,
        }
    }

    /// The greeting line to send on connect.
    pub fn greeting(&self) -> String {
        format!("200 v6home TIC Service on {} ready", self.cfg.server_name)
    }

    /// True once the session must be closed (after `QUIT` or too many errors/lines).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::LoggedIn(u) => Some(u),
            _ => None,
        }
    }

    /// The outcome of the last `authenticate` command, once (log it, count it).
    pub fn take_auth_event(&mut self) -> Option<AuthEvent> {
        self.auth_event.take()
    }

    /// Returns true once after a `200` reply to `starttls`: the IO layer must now run the TLS
    /// handshake before reading more lines.
    pub fn take_starttls(&mut self) -> bool {
        std::mem::take(&mut self.tls_pending)
    }

    /// Handles one line without login rate limiting.
    pub fn handle_line(&mut self, now_unix: u64, line: &str, dir: &dyn Directory) -> Replies {
        self.handle(now_unix, line, dir, None)
    }

    /// Handles one line; `authenticate` is refused while `limiter` throttles the (user, peer)
    /// pair, and its outcome is recorded in `limiter`.
    pub fn handle_line_limited(
        &mut self,
        now_unix: u64,
        line: &str,
        dir: &dyn Directory,
        limiter: &mut LoginLimiter,
    ) -> Replies {
        self.handle(now_unix, line, dir, Some(limiter))
    }

    fn handle(
        &mut self,
        now: u64,
        line: &str,
        dir: &dyn Directory,
        limiter: Option<&mut LoginLimiter>,
    ) -> Replies {
        if self.finished {
            return Vec::new();
        }
        self.lines += 1;
        if self.lines > MAX_LINES {
            self.finished = true;
            return err("Too many commands, closing connection");
        }
        let line = line.trim();
        if line.is_empty() {
            return Vec::new();
        }
        let mut replies = self.dispatch(now, line, dir, limiter);
        if replies.first().is_some_and(|r| r.starts_with('4')) {
            self.errors_in_row += 1;
            if self.errors_in_row >= MAX_CONSECUTIVE_ERRORS {
                self.finished = true;
                replies.push("400 Too many errors, closing connection".to_string());
            }
        } else {
            self.errors_in_row = 0;
        }
        replies
    }

    fn dispatch(
        &mut self,
        now: u64,
        line: &str,
        dir: &dyn Directory,
        limiter: Option<&mut LoginLimiter>,
    ) -> Replies {
        let mut words = line.split_ascii_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_lowercase();
        let arg1 = words.next().map(str::to_ascii_lowercase);
        match (verb.as_str(), arg1.as_deref()) {
            ("client", _) => vec!["200 Client Identity accepted".to_string()],
            ("get", Some("unixtime")) => vec![format!("200 {now}")],
            ("quit", _) => {
                self.finished = true;
                vec!["200 Thank you for using this service".to_string()]
            }
            ("starttls", None) => self.starttls(),
            ("username", Some(_)) => {
                // Keep the original case of the user name.
                let name = line.split_ascii_whitespace().nth(1).unwrap_or("");
                self.username(name, words.next().is_some())
            }
            ("challenge", Some(method)) => self.challenge(method),
            ("authenticate", Some(method)) => {
                let response = words.next();
                self.authenticate(now, method, response, dir, limiter)
            }
            ("tunnel", Some("list")) => self.tunnel_list(dir),
            ("tunnel", Some("show")) => match (words.next(), words.next()) {
                (Some(_), None) => {
                    let id = line.split_ascii_whitespace().nth(2).unwrap_or("");
                    self.tunnel_show(id, dir)
                }
                _ => err("Usage: tunnel show <tunnel_id>"),
            },
            _ => err("Unknown command"),
        }
    }

    fn starttls(&mut self) -> Replies {
        if !self.cfg.tls_available {
            return err("This service is not TLS enabled");
        }
        if self.tls_done || self.state != State::Start {
            return err("STARTTLS is only possible once, before username");
        }
        self.tls_done = true;
        self.tls_pending = true;
        vec!["200 Starting TLS".to_string()]
    }

    fn username(&mut self, name: &str, extra: bool) -> Replies {
        if matches!(self.state, State::LoggedIn(_)) {
            return err("Already logged in");
        }
        if extra || name.len() > MAX_USERNAME_LEN || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return err("Invalid username");
        }
        self.state = State::User(name.to_string());
        vec![format!(
            "200 {name} choose your authentication challenge please"
        )]
    }

    fn challenge_hex(&self) -> String {
        hex::encode(self.cfg.challenge)
    }

    fn challenge(&mut self, method: &str) -> Replies {
        let user = match &self.state {
            State::User(u) | State::Challenged(u) => u.clone(),
            State::Start => return err("Send username first"),
            State::LoggedIn(_) => return err("Already logged in"),
        };
        if method != "md5" {
            return err("Challenge method not supported, use md5");
        }
        self.state = State::Challenged(user);
        vec![format!("200 {}", self.challenge_hex())]
    }

    fn authenticate(
        &mut self,
        now: u64,
        method: &str,
        response: Option<&str>,
        dir: &dyn Directory,
        limiter: Option<&mut LoginLimiter>,
    ) -> Replies {
        let State::Challenged(user) = &self.state else {
            return err("Request a challenge first");
        };
        let user = user.clone();
        if method != "md5" {
            return err("Authentication method not supported");
        }
        let peer = self.cfg.peer;
        if let Some(wait) = limiter
            .as_deref()
            .and_then(|l| l.blocked_for(&user, peer, now))
        {
            self.finished = true;
            self.auth_event = Some(AuthEvent::Failed {
                user,
                reason: LoginFailure::Throttled,
                retry_after: wait,
            });
            return err(&format!(
                "Too many failed logins, try again in {wait} seconds"
            ));
        }
        let expected = dir
            .password_md5hex(&user)
            .map(|stored| md5_response(&self.challenge_hex(), &stored));
        let known = expected.is_some();
        let ok = match (expected, response) {
            (Some(exp), Some(resp)) => {
                bool::from(exp.as_bytes().ct_eq(resp.to_ascii_lowercase().as_bytes()))
            }
            _ => false,
        };
        if ok {
            if let Some(l) = limiter {
                l.record_success(&user, peer);
            }
            let reply = format!("200 Successfully logged in using md5 as {user} from {peer}");
            self.auth_event = Some(AuthEvent::LoggedIn { user: user.clone() });
            self.state = State::LoggedIn(user);
            vec![reply]
        } else {
            let retry_after = limiter.map_or(0, |l| l.record_failure(&user, peer, now));
            self.auth_event = Some(AuthEvent::Failed {
                user,
                reason: if known {
                    LoginFailure::BadPassword
                } else {
                    LoginFailure::UnknownUser
                },
                retry_after,
            });
            self.auth_failures += 1;
            self.state = State::Start;
            if self.auth_failures >= MAX_AUTH_FAILURES {
                self.finished = true;
            }
            err("Login failed")
        }
    }

    fn tunnel_list(&mut self, dir: &dyn Directory) -> Replies {
        let State::LoggedIn(user) = &self.state else {
            return err("Not logged in");
        };
        let mut out = vec!["201 Listing tunnels".to_string()];
        for t in dir.tunnels(user) {
            match t.list_entry().and_then(|e| e.format()) {
                Ok(l) => out.push(l),
                Err(_) => return err("Tunnel listing unavailable"),
            }
        }
        out.push("202 <tunnel_id> <ipv6_endpoint> <ipv4_endpoint> <pop_name>".to_string());
        if block_len(&out) >= MAX_BLOCK_LEN {
            return err("Too many tunnels to list; use tunnel show <tunnel_id>");
        }
        out
    }

    fn tunnel_show(&mut self, id: &str, dir: &dyn Directory) -> Replies {
        let State::LoggedIn(user) = &self.state else {
            return err("Not logged in");
        };
        let Some(t) = dir.tunnels(user).into_iter().find(|t| t.id == id) else {
            return err("No such tunnel");
        };
        let Ok(lines) = t.format_lines() else {
            return err("Tunnel information unavailable");
        };
        let mut out = Vec::with_capacity(lines.len() + 2);
        out.push(format!("201 Showing tunnel information for {id}"));
        out.extend(lines);
        out.push("202 Done".to_string());
        if block_len(&out) >= MAX_BLOCK_LEN {
            return err("Tunnel information unavailable");
        }
        out
    }
}

fn block_len(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum()
}

/// Throttling policy of [`LoginLimiter`] (`broker.toml` `[tic]` keys in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failed logins per (user, source) allowed without any delay (`login_free_failures`).
    pub free_failures: u32,
    /// Delay after the first failure beyond the free ones, in seconds; each further failure
    /// doubles it (`login_backoff_base`).
    pub base_delay: u64,
    /// Longest delay, in seconds (`login_backoff_max`).
    pub max_delay: u64,
    /// A (user, source) pair whose last failure is this many seconds old is forgotten
    /// (`login_forget_after`).
    pub forget_after: u64,
    /// Most (user, source) pairs tracked; the stalest is evicted beyond it.
    pub capacity: usize,
}

impl Default for LoginPolicy {
    /// 3 free failures, then 2 s doubling up to 15 min; forgotten after 1 h; 4096 pairs.
    fn default() -> Self {
        LoginPolicy {
            free_failures: 3,
            base_delay: 2,
            max_delay: 900,
            forget_after: 3600,
            capacity: 4096,
        }
    }
}

impl LoginPolicy {
    /// The delay after `failures` failures in a row (0 while they are free).
    pub fn delay_after(&self, failures: u32) -> u64 {
        let Some(extra) = failures.checked_sub(self.free_failures.saturating_add(1)) else {
            return 0;
        };
        let factor = 1u64.checked_shl(extra.min(63)).unwrap_or(u64::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: u64,
    blocked_until: u64,
}

/// Failed-login throttle keyed by (user name, source address; IPv6 by /64), with exponential
/// back-off instead of a hard lockout of the address.
///
/// After [`LoginPolicy::free_failures`] failures of one user from one source, each further
/// failure blocks that pair for `base_delay · 2^k` seconds (capped at `max_delay`); while it
/// is blocked, `authenticate` is refused without checking the password, so guessing stays
/// slow. Other users behind the same NAT, and the same user from elsewhere, are unaffected; a
/// successful login clears the pair, and a pair is forgotten `forget_after` seconds after its
/// last failure. Memory is bounded by `capacity` pairs.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    policy: LoginPolicy,
    map: HashMap<(String, IpAddr), Entry>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LoginPolicy::default())
    }
}

fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut o = a.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
    }
}

impl LoginLimiter {
    /// A limiter with this policy (`capacity` ≥ 1).
    pub fn new(policy: LoginPolicy) -> Self {
        LoginLimiter {
            policy: LoginPolicy {
                capacity: policy.capacity.max(1),
                ..policy
            },
            map: HashMap::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &LoginPolicy {
        &self.policy
    }

    /// Seconds `user` from `ip` must still wait before the next attempt, or `None`.
    pub fn blocked_for(&self, user: &str, ip: IpAddr, now_unix: u64) -> Option<u64> {
        let e = self.map.get(&(user.to_string(), limiter_key(ip)))?;
        (now_unix < e.blocked_until).then(|| e.blocked_until - now_unix)
    }

    /// Records a failed login of `user` from `ip`; returns the resulting delay in seconds
    /// (0 while failures are still free).
    pub fn record_failure(&mut self, user: &str, ip: IpAddr, now_unix: u64) -> u64 {
        let key = (user.to_string(), limiter_key(ip));
        if !self.map.contains_key(&key) && self.map.len() >= self.policy.capacity {
            self.evict(now_unix);
        }
        let policy = self.policy;
        let e = self.map.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now_unix,
            blocked_until: 0,
        });
        if now_unix.saturating_sub(e.last_failure) >= policy.forget_after {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now_unix;
        let delay = policy.delay_after(e.failures);
        e.blocked_until = now_unix.saturating_add(delay);
        delay
    }

    /// Records a successful login of `user` from `ip` (clears its failures).
    pub fn record_success(&mut self, user: &str, ip: IpAddr) {
        self.map.remove(&(user.to_string(), limiter_key(ip)));
    }

    /// Number of tracked (user, source) pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn evict(&mut self, now: u64) {
        let forget = self.policy.forget_after;
        self.map
            .retain(|_, e| now < e.blocked_until || now.saturating_sub(e.last_failure) < forget);
        if self.map.len() >= self.policy.capacity
            && let Some(k) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_failure.max(e.blocked_until))
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&k);
        }
    }
}

/// Limits of [`ConnTable`] (`broker.toml` `[tic]` keys in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Most connections served at once (`max_connections`).
    pub max_total: usize,
    /// Most connections served at once from one source address, IPv6 by /64
    /// (`max_connections_per_source`).
    pub max_per_source: usize,
}

impl Default for ConnLimits {
    /// 256 in all, 8 per source.
    fn default() -> Self {
        ConnLimits {
            max_total: 256,
            max_per_source: 8,
        }
    }
}

/// Identifies a connection in a [`ConnTable`]; later connections have larger ids.
pub type ConnId = u64;

/// What [`ConnTable::admit`] decided for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Serve it as `id`; if `shed` is set, the IO layer must close that older, not yet
    /// logged-in connection to make room.
    Admit {
        /// The new connection's id.
        id: ConnId,
        /// The connection to close first, if the table was full.
        shed: Option<ConnId>,
    },
    /// Its source already has `max_per_source` connections, all logged in: refuse it.
    SourceFull,
    /// Every slot is held by a logged-in connection: refuse it.
    Full,
}

#[derive(Debug, Clone, Copy)]
struct Conn {
    source: IpAddr,
    authenticated: bool,
}

/// The TIC server's connection slots (sans-IO): a per-source cap and a global cap. Either cap,
/// when reached, sheds the oldest connection that has not logged in (from the same source for
/// the per-source cap, from anywhere for the global one) rather than refusing the newcomer, so
/// idle or trickling peers cannot starve real logins: not from elsewhere (they hold at most
/// `max_per_source` slots each), and not from behind the same NAT (a new connection pushes
/// their oldest idle one out).
#[derive(Debug, Clone, Default)]
pub struct ConnTable {
    limits: ConnLimits,
    next_id: ConnId,
    conns: std::collections::BTreeMap<ConnId, Conn>,
    per_source: HashMap<IpAddr, usize>,
}

impl ConnTable {
    /// An empty table (caps of at least 1).
    pub fn new(limits: ConnLimits) -> Self {
        ConnTable {
            limits: ConnLimits {
                max_total: limits.max_total.max(1),
                max_per_source: limits.max_per_source.max(1),
            },
            ..ConnTable::default()
        }
    }

    /// Decides on a new connection from `peer` and, when admitted, records it.
    pub fn admit(&mut self, peer: IpAddr) -> Admission {
        let source = limiter_key(peer);
        let mut shed = None;
        if self.per_source.get(&source).copied().unwrap_or(0) >= self.limits.max_per_source {
            let Some(oldest) = self
                .conns
                .iter()
                .find(|(_, c)| !c.authenticated && c.source == source)
                .map(|(id, _)| *id)
            else {
                return Admission::SourceFull;
            };
            self.close(oldest);
            shed = Some(oldest);
        } else if self.conns.len() >= self.limits.max_total {
            let Some(oldest) = self
                .conns
                .iter()
                .find(|(_, c)| !c.authenticated)
                .map(|(id, _)| *id)
            else {
                return Admission::Full;
            };
            self.close(oldest);
            shed = Some(oldest);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                source,
                authenticated: false,
            },
        );
        *self.per_source.entry(source).or_insert(0) += 1;
        Admission::Admit { id, shed }
    }

    /// Marks `id` as logged in: it is no longer shed.
    pub fn set_authenticated(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.authenticated = true;
        }
    }

    /// Forgets `id` (its connection ended or was shed). Unknown ids are ignored.
    pub fn close(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id)
            && let Some(n) = self.per_source.get_mut(&c.source)
        {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&c.source);
            }
        }
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True when no connection is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Connections held from `peer`'s source (IPv6 by /64).
    pub fn from_source(&self, peer: IpAddr) -> usize {
        self.per_source
            .get(&limiter_key(peer))
            .copied()
            .unwrap_or(0)
    }
}

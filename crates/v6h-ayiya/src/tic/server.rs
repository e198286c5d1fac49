//! Sans-IO TIC server: one [`Session`] per TCP connection, plus a shared [`LoginLimiter`].
//!
//! The IO layer sends [`Session::greeting`], then feeds each received line (from a
//! [`super::LineFramer`]) to [`Session::handle_line`] or [`Session::handle_line_limited`] and
//! writes the returned reply lines, each followed by `\n`. It closes the connection once
//! [`Session::is_finished`] is true (after writing the replies). If
//! [`Session::take_starttls`] returns true, it must run the TLS server handshake before
//! reading the next line.

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

/// The TIC server dialogue of one connection (§4.2).
#[derive(Debug, Clone)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
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

    /// Returns true once after a `200` reply to `starttls`: the IO layer must now run the TLS
    /// handshake before reading more lines.
    pub fn take_starttls(&mut self) -> bool {
        std::mem::take(&mut self.tls_pending)
    }

    /// Handles one line without login rate limiting.
    pub fn handle_line(&mut self, now_unix: u64, line: &str, dir: &dyn Directory) -> Replies {
        self.handle(now_unix, line, dir, None)
    }

    /// Handles one line; `authenticate` is refused while `limiter` locks the peer, and its
    /// outcome is recorded in `limiter`.
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
        if limiter.as_deref().is_some_and(|l| l.is_locked(peer, now)) {
            self.finished = true;
            return err("Too many failed logins, try again later");
        }
        let expected = dir
            .password_md5hex(&user)
            .map(|stored| md5_response(&self.challenge_hex(), &stored));
        let ok = match (expected, response) {
            (Some(exp), Some(resp)) => {
                bool::from(exp.as_bytes().ct_eq(resp.to_ascii_lowercase().as_bytes()))
            }
            _ => false,
        };
        if ok {
            if let Some(l) = limiter {
                l.record_success(peer);
            }
            let reply = format!("200 Successfully logged in using md5 as {user} from {peer}");
            self.state = State::LoggedIn(user);
            vec![reply]
        } else {
            if let Some(l) = limiter {
                l.record_failure(peer, now);
            }
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

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: u64,
    locked_until: u64,
}

/// Failed-login limiter keyed by source address (IPv6 by /64): after `max_failures` failures
/// within `window` seconds the source is locked out for `lockout` seconds. Successful logins
/// clear the record, so a rebooting gateway with the right password is never locked out.
/// Memory is bounded by `capacity` entries.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    max_failures: u32,
    window: u64,
    lockout: u64,
    capacity: usize,
    map: HashMap<IpAddr, Entry>,
}

impl Default for LoginLimiter {
    /// 5 failures per 10 minutes lock a source out for 15 minutes; 4096 tracked sources.
    fn default() -> Self {
        LoginLimiter::new(5, 600, 900, 4096)
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
    /// A limiter with explicit parameters (`capacity` ≥ 1).
    pub fn new(max_failures: u32, window_secs: u64, lockout_secs: u64, capacity: usize) -> Self {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window: window_secs,
            lockout: lockout_secs,
            capacity: capacity.max(1),
            map: HashMap::new(),
        }
    }

    /// True while `ip` is locked out.
    pub fn is_locked(&self, ip: IpAddr, now_unix: u64) -> bool {
        self.map
            .get(&limiter_key(ip))
            .is_some_and(|e| now_unix < e.locked_until)
    }

    /// Records a failed login from `ip`.
    pub fn record_failure(&mut self, ip: IpAddr, now_unix: u64) {
        let key = limiter_key(ip);
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.evict(now_unix);
        }
        let e = self.map.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now_unix,
            locked_until: 0,
        });
        if now_unix.saturating_sub(e.window_start) >= self.window {
            e.failures = 0;
            e.window_start = now_unix;
        }
        e.failures += 1;
        if e.failures >= self.max_failures {
            e.locked_until = now_unix.saturating_add(self.lockout);
            e.failures = 0;
            e.window_start = now_unix;
        }
    }

    /// Records a successful login from `ip` (clears its failures).
    pub fn record_success(&mut self, ip: IpAddr) {
        self.map.remove(&limiter_key(ip));
    }

    /// Number of tracked sources.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn evict(&mut self, now: u64) {
        let (window, map) = (self.window, &mut self.map);
        map.retain(|_, e| now < e.locked_until || now.saturating_sub(e.window_start) < window);
        if map.len() >= self.capacity {
            // Drop the entry with the oldest activity.
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, e)| e.window_start.max(e.locked_until))
                .map(|(k, _)| *k)
            {
                map.remove(&k);
            }
        }
    }
}

//! Sans-IO TIC client that sends exactly AICCU 2007.01.15's lines (§4.2).
//!
//! Drive it like this: after connecting, loop { write every [`Login::poll_send`] line plus
//! `\n`; if [`Login::wants_tls`] run the TLS client handshake and call
//! [`Login::tls_established`]; stop when [`Login::outcome`] is `Some` (after flushing
//! `poll_send`); otherwise read a line and call [`Login::handle_line`] }.

use std::collections::VecDeque;

use super::{MAX_BLOCK_LEN, Reply, TicError, TunnelInfo, TunnelListEntry, md5_response};

/// Login parameters (from aiccu.conf and the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginParams {
    /// TIC user name, e.g. `ABC1-SIXXS`.
    pub username: String,
    /// Account password (hashed with MD5 before use).
    pub password: String,
    /// Tunnel to show; `None` lists and selects the only tunnel.
    pub tunnel_id: Option<String>,
    /// Send `starttls` (the IO layer can do TLS).
    pub try_tls: bool,
    /// Fail if TLS cannot be used.
    pub require_tls: bool,
    /// `<sysname>/<release>` from uname, e.g. `Linux/6.1.0`.
    pub system: String,
    /// Only list the tunnels (the `tunnels` verb), do not show one.
    pub list_only: bool,
}

/// Successful result of a TIC session.
// Made once per login; boxing the tunnel would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The selected tunnel (states checked: both `enabled`).
    Tunnel(TunnelInfo),
    /// The tunnel list (`list_only`).
    List(Vec<TunnelListEntry>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Client,
    Time,
    StartTls,
    TlsHandshake,
    Username,
    Challenge,
    Auth,
    ListStart,
    ListBody,
    ShowStart,
    ShowBody,
    Done,
}

/// The client dialogue.
#[derive(Debug, Clone)]
pub struct Login {
    params: LoginParams,
    expect: Expect,
    outbox: VecDeque<String>,
    outcome: Option<Result<LoginOutcome, TicError>>,
    list: Vec<TunnelListEntry>,
    show: Vec<String>,
    block_bytes: usize,
    tunnel_id: Option<String>,
}

/// The `client` line AICCU sends.
pub fn client_line(system: &str) -> String {
    format!("client TIC/draft-00 AICCU/2007.01.15-console-linux {system}")
}

impl Login {
    /// Starts a dialogue; the first step is waiting for the greeting.
    pub fn new(params: LoginParams) -> Login {
        let tunnel_id = params.tunnel_id.clone();
        Login {
            params,
            expect: Expect::Greeting,
            outbox: VecDeque::new(),
            outcome: None,
            list: Vec::new(),
            show: Vec::new(),
            block_bytes: 0,
            tunnel_id,
        }
    }

    /// The next line to send (without terminator), if any.
    pub fn poll_send(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    /// True when the server accepted `starttls` and the TLS handshake must run now.
    pub fn wants_tls(&self) -> bool {
        self.expect == Expect::TlsHandshake
    }

    /// Tells the dialogue the TLS handshake succeeded; it continues with `username`.
    pub fn tls_established(&mut self) {
        if self.expect == Expect::TlsHandshake {
            self.send_username();
        }
    }

    /// The result once the dialogue is over (the final `QUIT` may still be in `poll_send`).
    pub fn outcome(&self) -> Option<Result<LoginOutcome, TicError>> {
        self.outcome.clone()
    }

    /// Call when the server closed the connection before the dialogue ended.
    pub fn handle_eof(&mut self) {
        if self.outcome.is_none() {
            let _ = self.fail::<()>(
                TicError::Protocol("connection closed by the TIC server".into()),
                None,
            );
        }
    }

    /// Ends the dialogue with `e` (after queueing `quit`) and returns `Err(e)`.
    fn fail<T>(&mut self, e: TicError, quit: Option<String>) -> Result<T, TicError> {
        if let Some(q) = quit {
            self.outbox.push_back(q);
        }
        self.expect = Expect::Done;
        self.outcome = Some(Err(e.clone()));
        Err(e)
    }

    fn finish(&mut self, o: LoginOutcome, quit: &str) {
        self.outbox.push_back(format!("QUIT {quit}"));
        self.expect = Expect::Done;
        self.outcome = Some(Ok(o));
    }

    fn send(&mut self, line: String, next: Expect) {
        self.outbox.push_back(line);
        self.expect = next;
    }

    fn send_username(&mut self) {
        let l = format!("username {}", self.params.username);
        self.send(l, Expect::Username);
    }

    fn send_show(&mut self, id: String) {
        self.block_bytes = 0;
        self.send(format!("tunnel show {id}"), Expect::ShowStart);
        self.tunnel_id = Some(id);
    }

    fn expect_ok(&mut self, line: &str, what: &str) -> Result<Reply, TicError> {
        let r = match Reply::parse(line) {
            Ok(r) => r,
            Err(e) => return self.fail(e, None),
        };
        if !r.is_ok() {
            let e = TicError::Protocol(format!("{what} refused: {} {}", r.code, r.text));
            return self.fail(e, None);
        }
        Ok(r)
    }

    fn add_block_bytes(&mut self, line: &str) -> Result<(), TicError> {
        self.block_bytes += line.len() + 1;
        if self.block_bytes > 4 * MAX_BLOCK_LEN {
            let n = self.block_bytes;
            return self.fail(TicError::BlockTooLarge(n), None);
        }
        Ok(())
    }

    /// Handles one received line (without terminator). Errors also become the outcome.
    pub fn handle_line(&mut self, now_unix: u64, line: &str) -> Result<(), TicError> {
        match self.expect {
            Expect::Done => Ok(()),
            Expect::TlsHandshake => self.fail(
                TicError::Protocol("clear-text data after STARTTLS".into()),
                None,
            ),
            Expect::Greeting => {
                self.expect_ok(line, "greeting")?;
                let l = client_line(&self.params.system);
                self.send(l, Expect::Client);
                Ok(())
            }
            Expect::Client => {
                self.expect_ok(line, "client identity")?;
                self.send("get unixtime".into(), Expect::Time);
                Ok(())
            }
            Expect::Time => {
                let r = self.expect_ok(line, "get unixtime")?;
                let Ok(t) = r.text.trim().parse::<u64>() else {
                    return self.fail(
                        TicError::Protocol(format!("bad unixtime {:?}", r.text)),
                        None,
                    );
                };
                let off = now_unix.abs_diff(t);
                if off > u64::from(crate::MAX_CLOCK_OFF) {
                    let secs = u32::try_from(off).unwrap_or(u32::MAX);
                    // AICCU's abort line carries an extra newline: an empty line follows.
                    self.outbox
                        .push_back(format!("QUIT Aborting: Clock is off by {secs} seconds"));
                    self.fail(TicError::ClockOff { secs }, Some(String::new()))?;
                }
                if self.params.try_tls {
                    self.send("starttls".into(), Expect::StartTls);
                } else if self.params.require_tls {
                    self.fail(TicError::TlsRequired, None)?;
                } else {
                    self.send_username();
                }
                Ok(())
            }
            Expect::StartTls => {
                match Reply::parse(line) {
                    Ok(r) if r.is_ok() => self.expect = Expect::TlsHandshake,
                    _ if self.params.require_tls => self.fail(TicError::TlsRequired, None)?,
                    _ => self.send_username(),
                }
                Ok(())
            }
            Expect::Username => {
                let r = match Reply::parse(line) {
                    Ok(r) => r,
                    Err(e) => return self.fail(e, None),
                };
                if !r.is_ok() {
                    return self.fail(TicError::AuthFailed(r.text), None);
                }
                self.send("challenge md5".into(), Expect::Challenge);
                Ok(())
            }
            Expect::Challenge => {
                let r = self.expect_ok(line, "challenge md5")?;
                let resp = md5_response(&r.text, &crate::md5_hex(self.params.password.as_bytes()));
                self.send(format!("authenticate md5 {resp}"), Expect::Auth);
                Ok(())
            }
            Expect::Auth => {
                let r = match Reply::parse(line) {
                    Ok(r) => r,
                    Err(e) => return self.fail(e, None),
                };
                if !r.is_ok() {
                    return self.fail(TicError::AuthFailed(r.text), None);
                }
                match (&self.tunnel_id, self.params.list_only) {
                    (Some(id), false) => {
                        let id = id.clone();
                        self.send_show(id);
                    }
                    _ => {
                        self.block_bytes = 0;
                        self.send("tunnel list".into(), Expect::ListStart);
                    }
                }
                Ok(())
            }
            Expect::ListStart => {
                let r = self.expect_ok(line, "tunnel list")?;
                if r.code != 201 {
                    return self.fail(
                        TicError::Protocol(format!("expected 201, got {}", r.code)),
                        None,
                    );
                }
                self.expect = Expect::ListBody;
                Ok(())
            }
            Expect::ListBody => {
                self.add_block_bytes(line)?;
                if line.starts_with("202") {
                    return self.list_done();
                }
                match TunnelListEntry::parse(line) {
                    Ok(e) => {
                        self.list.push(e);
                        Ok(())
                    }
                    Err(e) => self.fail(e, None),
                }
            }
            Expect::ShowStart => {
                let r = match Reply::parse(line) {
                    Ok(r) => r,
                    Err(e) => return self.fail(e, None),
                };
                if !r.is_ok() {
                    let id = self.tunnel_id.clone().unwrap_or_default();
                    return self.fail(
                        TicError::NoSuchTunnel(id),
                        Some("QUIT No such tunnel".into()),
                    );
                }
                if r.code != 201 {
                    return self.fail(
                        TicError::Protocol(format!("expected 201, got {}", r.code)),
                        None,
                    );
                }
                self.expect = Expect::ShowBody;
                Ok(())
            }
            Expect::ShowBody => {
                self.add_block_bytes(line)?;
                if line.starts_with("202") {
                    return self.show_done();
                }
                self.show.push(line.to_string());
                Ok(())
            }
        }
    }

    fn list_done(&mut self) -> Result<(), TicError> {
        if self.params.list_only {
            let list = std::mem::take(&mut self.list);
            self.finish(LoginOutcome::List(list), "Getting current tunnel listing");
            return Ok(());
        }
        match self.list.len() {
            0 => self.fail(
                TicError::NoTunnels,
                Some("QUIT I didn't have any tunnels to select".into()),
            ),
            1 => {
                let id = self.list[0].id.clone();
                self.send_show(id);
                Ok(())
            }
            n => self.fail(
                TicError::MustSelectTunnel(n),
                Some("QUIT User still needed to select a tunnel".into()),
            ),
        }
    }

    fn show_done(&mut self) -> Result<(), TicError> {
        let info = TunnelInfo::parse_lines(self.show.iter().map(String::as_str));
        self.show.clear();
        let info = match info {
            Ok(i) => i,
            Err(e) => return self.fail(e, Some("QUIT Bye bye".into())),
        };
        if !info.is_enabled() {
            let e = TicError::TunnelDisabled {
                user_state: info.user_state.clone(),
                admin_state: info.admin_state.clone(),
            };
            return self.fail(e, Some("QUIT Bye bye".into()));
        }
        self.finish(LoginOutcome::Tunnel(info), "Bye bye");
        Ok(())
    }
}

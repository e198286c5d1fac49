//! TIC tests: framing, parsers (golden + proptest), §10.3, and in-memory server/client
//! simulations with a fake clock.

use super::client::{Login, LoginOutcome, LoginParams};
use super::server::{
    Admission, AuthEvent, ConnLimits, ConnTable, Directory, LoginFailure, LoginLimiter,
    LoginPolicy, MAX_CONSECUTIVE_ERRORS, Session, SessionConfig,
};
use super::*;
use proptest::prelude::*;
use std::net::IpAddr;

const NOW: u64 = 1795727697;
const CHALLENGE: [u8; 16] = [
    0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90,
];

fn sample_tunnel(id: &str) -> TunnelInfo {
    TunnelInfo {
        id: id.into(),
        tunnel_type: TunnelType::Ayiya,
        ipv6_endpoint: "2001:db8:2ff:1::2".parse().unwrap(),
        ipv6_pop: "2001:db8:2ff:1::1".parse().unwrap(),
        prefix_len: 64,
        pop_id: "pop01".into(),
        ipv4_endpoint: "ayiya".into(),
        ipv4_pop: "192.0.2.1".parse().unwrap(),
        user_state: "enabled".into(),
        admin_state: "enabled".into(),
        password: "0123456789abcdef0123456789abcdef".into(),
        heartbeat_interval: 60,
        mtu: 1280,
        name: "My First Tunnel".into(),
        routed: Vec::new(),
    }
}

struct Dir {
    users: Vec<(String, String, Vec<TunnelInfo>)>,
}

impl Directory for Dir {
    fn password_md5hex(&self, username: &str) -> Option<String> {
        self.users
            .iter()
            .find(|u| u.0 == username)
            .map(|u| u.1.clone())
    }
    fn tunnels(&self, username: &str) -> Vec<TunnelInfo> {
        self.users
            .iter()
            .find(|u| u.0 == username)
            .map(|u| u.2.clone())
            .unwrap_or_default()
    }
}

fn dir_with(tunnels: Vec<TunnelInfo>) -> Dir {
    Dir {
        users: vec![
            ("ABC1-SIXXS".into(), crate::md5_hex(b"userpass"), tunnels),
            (
                "OTHER-SIXXS".into(),
                crate::md5_hex(b"other"),
                vec![sample_tunnel("T99")],
            ),
        ],
    }
}

fn params() -> LoginParams {
    LoginParams {
        username: "ABC1-SIXXS".into(),
        password: "userpass".into(),
        tunnel_id: Some("T12345".into()),
        try_tls: true,
        require_tls: false,
        system: "Linux/4.1.13".into(),
        list_only: false,
    }
}

fn server_cfg(tls: bool) -> SessionConfig {
    SessionConfig {
        server_name: "pop01.example".into(),
        peer: "192.0.2.10".parse().unwrap(),
        challenge: CHALLENGE,
        tls_available: tls,
    }
}

/// Runs a full dialogue in memory; returns the outcome and the transcript (`C: `/`S: `).
fn simulate(
    cfg: SessionConfig,
    dir: &Dir,
    p: LoginParams,
    server_now: u64,
    client_now: u64,
) -> (Result<LoginOutcome, TicError>, Vec<String>) {
    let mut s = Session::new(cfg);
    let mut c = Login::new(p);
    let mut log = Vec::new();
    let mut to_client = std::collections::VecDeque::from([s.greeting()]);
    for _ in 0..100 {
        while let Some(l) = to_client.pop_front() {
            log.push(format!("S: {l}"));
            if c.outcome().is_none() {
                let _ = c.handle_line(client_now, &l);
            }
        }
        if c.wants_tls() {
            assert!(
                s.take_starttls(),
                "server and client disagree about STARTTLS"
            );
            log.push("-- TLS --".into());
            c.tls_established();
        }
        let mut sent = false;
        while let Some(l) = c.poll_send() {
            sent = true;
            log.push(format!("C: {l}"));
            if !s.is_finished() {
                to_client.extend(s.handle_line(server_now, &l, dir));
            }
        }
        if c.outcome().is_some() && !sent && to_client.is_empty() {
            break;
        }
    }
    (c.outcome().expect("dialogue did not end"), log)
}

#[test]
fn v10_3_md5_login() {
    assert_eq!(
        crate::md5_hex(b"userpass"),
        "63e780c3f321d13109c71bf81805476e"
    );
    assert_eq!(hex::encode(CHALLENGE), "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    assert_eq!(
        md5_response(
            "a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "63e780c3f321d13109c71bf81805476e"
        ),
        "3ea7d57b87547df722c9ec99bb887eea"
    );
}

#[test]
fn sim_login_success_matches_spec_dialogue() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let (out, log) = simulate(server_cfg(false), &dir, params(), NOW, NOW + 3);
    assert_eq!(out, Ok(LoginOutcome::Tunnel(sample_tunnel("T12345"))));
    let expected = [
        "S: 200 v6home TIC Service on pop01.example ready",
        "C: client TIC/draft-00 AICCU/2007.01.15-console-linux Linux/4.1.13",
        "S: 200 Client Identity accepted",
        "C: get unixtime",
        &format!("S: 200 {NOW}"),
        "C: starttls",
        "S: 400 This service is not TLS enabled",
        "C: username ABC1-SIXXS",
        "S: 200 ABC1-SIXXS choose your authentication challenge please",
        "C: challenge md5",
        "S: 200 a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "C: authenticate md5 3ea7d57b87547df722c9ec99bb887eea",
        "S: 200 Successfully logged in using md5 as ABC1-SIXXS from 192.0.2.10",
        "C: tunnel show T12345",
        "S: 201 Showing tunnel information for T12345",
        "S: TunnelId: T12345",
        "S: Type: ayiya",
        "S: IPv6 Endpoint: 2001:db8:2ff:1::2",
        "S: IPv6 POP: 2001:db8:2ff:1::1",
        "S: IPv6 PrefixLength: 64",
        "S: POP Id: pop01",
        "S: IPv4 Endpoint: ayiya",
        "S: IPv4 POP: 192.0.2.1",
        "S: UserState: enabled",
        "S: AdminState: enabled",
        "S: Password: 0123456789abcdef0123456789abcdef",
        "S: Heartbeat_Interval: 60",
        "S: Tunnel MTU: 1280",
        "S: Tunnel Name: My First Tunnel",
        "S: 202 Done",
        "C: QUIT Bye bye",
        "S: 200 Thank you for using this service",
    ];
    assert_eq!(log, expected);
}

#[test]
fn sim_list_then_autoselect_single_tunnel() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let p = LoginParams {
        tunnel_id: None,
        ..params()
    };
    let (out, log) = simulate(server_cfg(false), &dir, p, NOW, NOW);
    assert!(matches!(out, Ok(LoginOutcome::Tunnel(ref t)) if t.id == "T12345"));
    assert!(log.contains(&"C: tunnel list".to_string()));
    assert!(log.contains(&"S: T12345 2001:db8:2ff:1::2 ayiya pop01".to_string()));
    assert!(
        log.contains(&"S: 202 <tunnel_id> <ipv6_endpoint> <ipv4_endpoint> <pop_name>".to_string())
    );
    assert!(log.contains(&"C: tunnel show T12345".to_string()));
}

#[test]
fn sim_list_only_and_selection_failures() {
    let two = dir_with(vec![sample_tunnel("T1"), sample_tunnel("T2")]);
    let p = LoginParams {
        tunnel_id: None,
        list_only: true,
        ..params()
    };
    let (out, log) = simulate(server_cfg(false), &two, p, NOW, NOW);
    let Ok(LoginOutcome::List(l)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        l.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["T1", "T2"]
    );
    assert!(log.contains(&"C: QUIT Getting current tunnel listing".to_string()));

    let p = LoginParams {
        tunnel_id: None,
        ..params()
    };
    let (out, log) = simulate(server_cfg(false), &two, p.clone(), NOW, NOW);
    assert_eq!(out, Err(TicError::MustSelectTunnel(2)));
    assert!(log.contains(&"C: QUIT User still needed to select a tunnel".to_string()));

    let (out, log) = simulate(server_cfg(false), &dir_with(vec![]), p, NOW, NOW);
    assert_eq!(out, Err(TicError::NoTunnels));
    assert!(log.contains(&"C: QUIT I didn't have any tunnels to select".to_string()));
}

#[test]
fn sim_wrong_password_gets_no_data() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let p = LoginParams {
        password: "wrong".into(),
        ..params()
    };
    let (out, log) = simulate(server_cfg(false), &dir, p, NOW, NOW);
    assert_eq!(out, Err(TicError::AuthFailed("Login failed".into())));
    assert!(
        log.iter()
            .all(|l| !l.contains("0123456789abcdef") && !l.starts_with("S: 201"))
    );
    // Unknown user behaves the same.
    let p = LoginParams {
        username: "NOBODY".into(),
        ..params()
    };
    let (out, _) = simulate(server_cfg(false), &dir, p, NOW, NOW);
    assert_eq!(out, Err(TicError::AuthFailed("Login failed".into())));
}

#[test]
fn sim_clock_skew_aborts_like_aiccu() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let (out, log) = simulate(server_cfg(false), &dir, params(), NOW, NOW + 121);
    assert_eq!(out, Err(TicError::ClockOff { secs: 121 }));
    let sent: Vec<&String> = log.iter().filter(|l| l.starts_with("C:")).collect();
    assert_eq!(
        sent[sent.len() - 2..],
        ["C: QUIT Aborting: Clock is off by 121 seconds", "C: "]
    );
    assert!(!log.iter().any(|l| l.starts_with("C: username")));
    // Exactly 120 passes.
    let (out, _) = simulate(server_cfg(false), &dir, params(), NOW, NOW - 120);
    assert!(out.is_ok());
}

#[test]
fn sim_requiretls() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let p = LoginParams {
        require_tls: true,
        ..params()
    };
    let (out, log) = simulate(server_cfg(false), &dir, p.clone(), NOW, NOW);
    assert_eq!(out, Err(TicError::TlsRequired));
    assert!(!log.iter().any(|l| l.starts_with("C: username")));
    // With a TLS-capable server the dialogue continues after the handshake.
    let (out, log) = simulate(server_cfg(true), &dir, p, NOW, NOW);
    assert!(out.is_ok(), "{out:?}");
    let i = log.iter().position(|l| l == "-- TLS --").unwrap();
    assert_eq!(log[i - 1], "S: 200 Starting TLS");
    assert_eq!(log[i + 1], "C: username ABC1-SIXXS");
    // A client that cannot do TLS but requires it fails before username.
    let p = LoginParams {
        require_tls: true,
        try_tls: false,
        ..params()
    };
    let (out, _) = simulate(server_cfg(true), &dir, p, NOW, NOW);
    assert_eq!(out, Err(TicError::TlsRequired));
}

#[test]
fn sim_unknown_and_foreign_tunnel() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    for id in ["T777", "T99"] {
        let p = LoginParams {
            tunnel_id: Some(id.into()),
            ..params()
        };
        let (out, log) = simulate(server_cfg(false), &dir, p, NOW, NOW);
        assert_eq!(out, Err(TicError::NoSuchTunnel(id.into())));
        assert!(log.contains(&"S: 400 No such tunnel".to_string()));
        assert!(log.contains(&"C: QUIT No such tunnel".to_string()));
    }
}

#[test]
fn sim_disabled_tunnel() {
    let mut t = sample_tunnel("T12345");
    t.admin_state = "disabled".into();
    let (out, _) = simulate(server_cfg(false), &dir_with(vec![t]), params(), NOW, NOW);
    assert_eq!(
        out,
        Err(TicError::TunnelDisabled {
            user_state: "enabled".into(),
            admin_state: "disabled".into()
        })
    );
}

#[test]
fn server_out_of_order_and_case_insensitive() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let mut s = Session::new(server_cfg(false));
    assert_eq!(
        s.handle_line(NOW, "tunnel list", &dir),
        ["400 Not logged in"]
    );
    assert_eq!(
        s.handle_line(NOW, "tunnel show T12345", &dir),
        ["400 Not logged in"]
    );
    assert_eq!(
        s.handle_line(NOW, "authenticate md5 00", &dir),
        ["400 Request a challenge first"]
    );
    assert_eq!(
        s.handle_line(NOW, "challenge md5", &dir),
        ["400 Send username first"]
    );
    assert_eq!(
        s.handle_line(NOW, "STARTTLS", &dir),
        ["400 This service is not TLS enabled"]
    );
    assert_eq!(s.handle_line(NOW, "", &dir), Vec::<String>::new());
    assert_eq!(
        s.handle_line(NOW, "GET UNIXTIME", &dir),
        [format!("200 {NOW}")]
    );
    assert_eq!(
        s.handle_line(NOW, "Username ABC1-SIXXS", &dir)[0],
        "200 ABC1-SIXXS choose your authentication challenge please"
    );
    assert_eq!(
        s.handle_line(NOW, "challenge clear", &dir),
        ["400 Challenge method not supported, use md5"]
    );
    assert_eq!(
        s.handle_line(NOW, "CHALLENGE MD5", &dir),
        ["200 a1b2c3d4e5f60718293a4b5c6d7e8f90"]
    );
    assert_eq!(
        s.handle_line(
            NOW,
            "authenticate md5 3EA7D57B87547DF722C9EC99BB887EEA",
            &dir
        )
        .len(),
        1
    );
    assert_eq!(s.user(), Some("ABC1-SIXXS"));
    assert_eq!(
        s.handle_line(NOW, "tunnel show T99", &dir),
        ["400 No such tunnel"]
    );
    assert_eq!(
        s.handle_line(NOW, "pop show pop01", &dir),
        ["400 Unknown command"]
    );
    let show = s.handle_line(NOW, "Tunnel Show T12345", &dir);
    assert_eq!(show.len(), 16);
    assert!(show.iter().map(|l| l.len() + 1).sum::<usize>() < MAX_BLOCK_LEN);
    assert!(!s.is_finished());
    assert_eq!(
        s.handle_line(NOW, "QUIT That's what I get", &dir),
        ["200 Thank you for using this service"]
    );
    assert!(s.is_finished());
    assert!(s.handle_line(NOW, "get unixtime", &dir).is_empty());
}

#[test]
fn server_ends_after_junk_with_bounded_memory() {
    let dir = dir_with(vec![]);
    let mut s = Session::new(server_cfg(false));
    let mut framer = LineFramer::new();
    let mut replies = 0usize;
    let mut max_pending = 0;
    for i in 0..10_000 {
        framer
            .push(format!("junk line {i}\r\n").as_bytes())
            .unwrap();
        max_pending = max_pending.max(framer.pending());
        while let Some(line) = framer.next_line() {
            replies += s.handle_line(NOW, &line.unwrap(), &dir).len();
        }
    }
    assert!(s.is_finished());
    assert_eq!(replies, MAX_CONSECUTIVE_ERRORS as usize + 1);
    assert!(max_pending < 64);
    // Empty lines alone also end the session (line cap).
    let mut s = Session::new(server_cfg(false));
    for _ in 0..10_000 {
        s.handle_line(NOW, "", &dir);
    }
    assert!(s.is_finished());
}

fn login_attempt(
    dir: &dyn Directory,
    lim: &mut LoginLimiter,
    peer: IpAddr,
    user: &str,
    t: u64,
    resp: &str,
) -> (Vec<String>, Option<AuthEvent>) {
    let mut s = Session::new(SessionConfig {
        peer,
        ..server_cfg(false)
    });
    s.handle_line_limited(t, &format!("username {user}"), dir, lim);
    s.handle_line_limited(t, "challenge md5", dir, lim);
    let r = s.handle_line_limited(t, &format!("authenticate md5 {resp}"), dir, lim);
    (r, s.take_auth_event())
}

const GOOD_RESPONSE: &str = "3ea7d57b87547df722c9ec99bb887eea";

/// Issue 12: five wrong passwords from a laptop behind the household's NAT used to lock the
/// real gateway (same address) out for 15 minutes. Now the throttle is per (user, source)
/// with exponential back-off: another user behind the same NAT is not affected at all, and
/// the same user waits seconds, not a quarter of an hour.
#[test]
fn failed_logins_back_off_per_user_and_source() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let mut lim = LoginLimiter::default();
    let nat: IpAddr = "198.51.100.2".parse().unwrap();
    let t = NOW;
    // The laptop guesses as "guest": every failure is reported with source and user.
    let mut delays = Vec::new();
    for i in 0..5 {
        let (r, ev) = login_attempt(&dir, &mut lim, nat, "guest", t + i * 100, "00");
        assert_eq!(r, ["400 Login failed"]);
        let Some(AuthEvent::Failed {
            user,
            reason,
            retry_after,
        }) = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (user.as_str(), reason),
            ("guest", LoginFailure::UnknownUser)
        );
        delays.push(retry_after);
    }
    assert_eq!(delays, [0, 0, 0, 2, 4], "3 free, then 2 s doubling");
    // The household's gateway (same NAT address, its own user) logs in at once.
    let (r, ev) = login_attempt(&dir, &mut lim, nat, "ABC1-SIXXS", t + 401, GOOD_RESPONSE);
    assert!(r[0].starts_with("200 Successfully"), "{r:?}");
    assert_eq!(
        ev,
        Some(AuthEvent::LoggedIn {
            user: "ABC1-SIXXS".into()
        })
    );
    // The laptop, while blocked, is refused without a password check.
    let (r, ev) = login_attempt(&dir, &mut lim, nat, "guest", t + 402, "00");
    assert_eq!(r, ["400 Too many failed logins, try again in 2 seconds"]);
    assert!(matches!(
        ev,
        Some(AuthEvent::Failed {
            reason: LoginFailure::Throttled,
            ..
        })
    ));
}

/// Even when the laptop mistypes the gateway's own user name and password, the right password
/// works again within seconds, and a success clears the record.
#[test]
fn same_user_behind_nat_waits_seconds_not_minutes() {
    let dir = dir_with(vec![sample_tunnel("T12345")]);
    let mut lim = LoginLimiter::default();
    let nat: IpAddr = "198.51.100.2".parse().unwrap();
    let user = "ABC1-SIXXS";
    let mut t = NOW;
    for _ in 0..5 {
        t += lim.blocked_for(user, nat, t).unwrap_or(0);
        let (r, ev) = login_attempt(&dir, &mut lim, nat, user, t, "00");
        assert_eq!(r, ["400 Login failed"]);
        assert!(matches!(
            ev,
            Some(AuthEvent::Failed {
                reason: LoginFailure::BadPassword,
                ..
            })
        ));
    }
    assert_eq!(lim.blocked_for(user, nat, t), Some(4));
    // While blocked even the right password is refused (guessing stays slow)...
    let (r, _) = login_attempt(&dir, &mut lim, nat, user, t + 3, GOOD_RESPONSE);
    assert!(r[0].starts_with("400 Too many failed logins"), "{r:?}");
    // ...and 4 s later it works and clears the record.
    let (r, _) = login_attempt(&dir, &mut lim, nat, user, t + 4, GOOD_RESPONSE);
    assert!(r[0].starts_with("200 Successfully"), "{r:?}");
    assert!(lim.is_empty());
    // The same user from another address was never affected.
    let (r, _) = login_attempt(
        &dir,
        &mut lim,
        "203.0.113.9".parse().unwrap(),
        user,
        t,
        GOOD_RESPONSE,
    );
    assert!(r[0].starts_with("200"));
    // A rebooting gateway that logs in successfully many times is never throttled.
    for i in 0..50 {
        let (r, _) = login_attempt(&dir, &mut lim, nat, user, t + 10 + i, GOOD_RESPONSE);
        assert!(r[0].starts_with("200"));
    }
}

/// A brute-force attacker on one (user, source) pair gets exponentially fewer guesses: in a
/// simulated day of guessing as fast as the back-off allows, a few dozen attempts at most.
#[test]
fn back_off_doubles_up_to_the_cap_and_is_forgotten() {
    let policy = LoginPolicy::default();
    assert_eq!(
        (1..=8).map(|n| policy.delay_after(n)).collect::<Vec<_>>(),
        [0, 0, 0, 2, 4, 8, 16, 32]
    );
    assert_eq!(policy.delay_after(20), 900);
    assert_eq!(policy.delay_after(u32::MAX), 900);
    let mut lim = LoginLimiter::new(policy);
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let (mut t, end, mut attempts) = (NOW, NOW + 86_400, 0);
    while t < end {
        match lim.blocked_for("lab", ip, t) {
            Some(w) => t += w,
            None => {
                lim.record_failure("lab", ip, t);
                attempts += 1;
            }
        }
    }
    assert!(attempts < 110, "{attempts} guesses in a day");
    // A pair whose last failure is older than forget_after starts afresh.
    let mut lim = LoginLimiter::new(policy);
    for _ in 0..4 {
        lim.record_failure("lab", ip, NOW);
    }
    assert_eq!(lim.record_failure("lab", ip, NOW + 3600), 0);
}

#[test]
fn limiter_memory_is_bounded_and_ipv6_keyed_by_64() {
    let policy = LoginPolicy {
        free_failures: 1,
        capacity: 8,
        ..LoginPolicy::default()
    };
    let mut lim = LoginLimiter::new(policy);
    for i in 0..1000u32 {
        lim.record_failure(
            "x",
            IpAddr::from(std::net::Ipv4Addr::from(0xc0000200 + i)),
            NOW,
        );
        assert!(lim.len() <= 8);
    }
    for i in 0..1000u32 {
        lim.record_failure(&format!("u{i}"), "192.0.2.1".parse().unwrap(), NOW);
        assert!(lim.len() <= 8);
    }
    let a: IpAddr = "2001:db8:1::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1::ffff".parse().unwrap();
    let mut lim = LoginLimiter::new(policy);
    lim.record_failure("x", a, NOW);
    lim.record_failure("x", b, NOW);
    assert!(lim.blocked_for("x", a, NOW).is_some());
    assert!(
        lim.blocked_for("x", "2001:db8:2::1".parse().unwrap(), NOW)
            .is_none()
    );
}

/// Issue 12: 256 idle connections from one address filled the global cap. Now one source
/// holds at most `max_per_source` slots, and a full source or a full table sheds its oldest
/// connection that has not logged in instead of refusing the newcomer.
#[test]
fn connection_table_caps_per_source_and_sheds_oldest_unauthenticated() {
    let mut c = ConnTable::new(ConnLimits {
        max_total: 4,
        max_per_source: 2,
    });
    let a: IpAddr = "203.0.113.1".parse().unwrap();
    let b: IpAddr = "203.0.113.2".parse().unwrap();
    let gw: IpAddr = "198.51.100.2".parse().unwrap();
    let id = |x: Admission| match x {
        Admission::Admit { id, shed } => (id, shed),
        other => panic!("{other:?}"),
    };
    let (a0, _) = id(c.admit(a));
    let (a1, _) = id(c.admit(a));
    // A third from the same source pushes out that source's oldest idle one.
    let (a2, shed) = id(c.admit(a));
    assert_eq!(shed, Some(a0));
    assert_eq!(c.from_source(a), 2);
    let (b0, _) = id(c.admit(b));
    let (g0, _) = id(c.admit(gw));
    c.set_authenticated(g0);
    assert_eq!(c.len(), 4);
    // Full: the newcomer is admitted, the oldest unauthenticated anywhere (a1) is shed.
    let (g1, shed) = id(c.admit(gw));
    assert_eq!(shed, Some(a1));
    c.set_authenticated(g1);
    // The gateway's source is full of logged-in connections: refused, nothing shed.
    assert_eq!(c.admit(gw), Admission::SourceFull);
    let (_, shed) = id(c.admit(b));
    assert_eq!(shed, Some(a2));
    let (_, shed) = id(c.admit(a));
    assert_eq!(shed, Some(b0));
    assert_eq!(c.len(), 4);
    c.close(g0);
    c.close(g1);
    c.close(g1);
    assert_eq!(c.len(), 2);
    let mut only_logged_in = ConnTable::new(ConnLimits {
        max_total: 1,
        max_per_source: 1,
    });
    let (x, _) = id(only_logged_in.admit(a));
    only_logged_in.set_authenticated(x);
    assert_eq!(only_logged_in.admit(b), Admission::Full);
    // IPv6 sources count by /64.
    let mut v6 = ConnTable::new(ConnLimits {
        max_total: 10,
        max_per_source: 1,
    });
    let (first, _) = id(v6.admit("2001:db8:5::1".parse().unwrap()));
    v6.set_authenticated(first);
    assert_eq!(
        v6.admit("2001:db8:5::2".parse().unwrap()),
        Admission::SourceFull
    );
    id(v6.admit("2001:db8:6::1".parse().unwrap()));
}

/// 256 idle connections from behind the household's NAT: each pushes out the previous idle
/// ones, the table never holds more than the per-source cap from that address, and the
/// gateway's connection (newest) is always admitted.
#[test]
fn idle_flood_from_one_address_never_locks_out_a_login() {
    let mut c = ConnTable::new(ConnLimits::default());
    let nat: IpAddr = "198.51.100.2".parse().unwrap();
    for _ in 0..256 {
        assert!(matches!(c.admit(nat), Admission::Admit { .. }));
        assert!(c.from_source(nat) <= 8);
    }
    assert!(matches!(c.admit(nat), Admission::Admit { .. }));
}

#[test]
fn framer_handles_crlf_split_and_overflow() {
    let mut f = LineFramer::new();
    f.push(b"200 hel").unwrap();
    assert!(f.next_line().is_none());
    f.push(b"lo\r\n201 a\n\n").unwrap();
    assert_eq!(f.next_line().unwrap().unwrap(), "200 hello");
    assert_eq!(f.next_line().unwrap().unwrap(), "201 a");
    assert_eq!(f.next_line().unwrap().unwrap(), "");
    assert!(f.next_line().is_none());
    f.push(b"\xff\xfe\n").unwrap();
    assert_eq!(f.next_line().unwrap(), Err(TicError::InvalidUtf8));
    let mut f = LineFramer::new();
    let big = vec![b'a'; MAX_LINE_LEN + 2];
    assert_eq!(
        f.push(&big),
        Err(TicError::LineTooLong { max: MAX_LINE_LEN })
    );
    assert_eq!(f.pending(), 0);
    assert!(f.push(b"\n").is_err(), "a failed framer stays failed");
    // Pending complete lines do not count toward the unterminated tail.
    let mut f = LineFramer::new();
    f.push(b"abc\n").unwrap();
    f.push(&vec![b'x'; MAX_LINE_LEN]).unwrap();
    f.push(b"\r\n").unwrap();
    assert_eq!(f.next_line().unwrap().unwrap(), "abc");
    assert_eq!(f.next_line().unwrap().unwrap().len(), MAX_LINE_LEN);
    assert_eq!(f.pending(), 0);
    // Byte-at-a-time delivery works.
    for &b in b"200 ok\r\n" {
        f.push(&[b]).unwrap();
    }
    assert_eq!(f.next_line().unwrap().unwrap(), "200 ok");
    // An over-long line arriving in one chunk with its newline is also rejected.
    let mut f = LineFramer::new();
    let mut big = vec![b'a'; MAX_LINE_LEN + 1];
    big.push(b'\n');
    f.push(&big).unwrap();
    assert_eq!(
        f.next_line().unwrap(),
        Err(TicError::LineTooLong { max: MAX_LINE_LEN })
    );
}

#[test]
fn reply_parsing() {
    assert_eq!(
        Reply::parse("200 1452536708").unwrap(),
        Reply {
            code: 200,
            text: "1452536708".into()
        }
    );
    assert_eq!(Reply::parse("202").unwrap().text, "");
    assert!(
        Reply::parse("400 no").unwrap().code == 400 && !Reply::parse("400 no").unwrap().is_ok()
    );
    for bad in ["", "20", "2000 x", "abc x", "20x y", "099 x"] {
        assert!(Reply::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn list_line_exact_fields() {
    let e = TunnelListEntry::parse("T12345 2001:db8:2ff:1::2 ayiya pop01").unwrap();
    assert_eq!(e.ipv4_endpoint, Ipv4Endpoint::Ayiya);
    assert_eq!(e.format().unwrap(), "T12345 2001:db8:2ff:1::2 ayiya pop01");
    assert_eq!(
        TunnelListEntry::parse("T1 2001:db8::2 198.51.100.2 p")
            .unwrap()
            .ipv4_endpoint,
        Ipv4Endpoint::Static("198.51.100.2".parse().unwrap())
    );
    for bad in [
        "T12345  2001:db8:2ff:1::2 ayiya pop01",
        "T12345 2001:db8:2ff:1::2 ayiya pop01 ",
        "T12345 2001:db8:2ff:1::2 ayiya",
        "T12345 nothex ayiya pop01",
        "T12345 2001:db8::2 tcp pop01",
    ] {
        assert!(TunnelListEntry::parse(bad).is_err(), "{bad:?}");
    }
    let mut e = e;
    e.pop_name = "has space".into();
    assert!(e.format().is_err());
}

#[test]
fn tunnel_show_parse_follows_aiccu_rules() {
    let lines = sample_tunnel("T12345").format_lines().unwrap();
    let mut v: Vec<String> = lines.iter().map(|l| format!("{l}\r\n")).collect();
    v.push("Password Hash: overwritten".into()); // prefix match: overrides Password
    v.push("Tunnel MTU: 1400 \t".into()); // last wins, trailing whitespace trimmed
    v.push("Unknown Key: x".into());
    v.push("no separator".into());
    v.push("IPv6 PoP: 2001:db8::99".into()); // wrong case does not match "IPv6 POP"
    let t = TunnelInfo::parse_lines(v.iter().map(String::as_str)).unwrap();
    assert_eq!(t.password, "overwritten");
    assert_eq!(t.mtu, 1400);
    assert_eq!(t.ipv6_pop, sample_tunnel("x").ipv6_pop);
    // Missing required key.
    let no_pop: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("IPv4 POP"))
        .collect();
    assert_eq!(
        TunnelInfo::parse_lines(no_pop),
        Err(TicError::MissingKey("IPv4 POP"))
    );
    // Missing optional keys default like AICCU.
    let min = [
        "Type: ayiya",
        "IPv6 Endpoint: 2001:db8::2",
        "IPv6 POP: 2001:db8::1",
        "IPv4 POP: 192.0.2.1",
        "UserState: enabled",
        "AdminState: enabled",
    ];
    let t = TunnelInfo::parse_lines(min).unwrap();
    assert_eq!(
        (t.heartbeat_interval, t.mtu, t.password.as_str()),
        (0, 0, "")
    );
    assert!(t.validate().is_err());
    // Bad values.
    let bad = ["Type: gre", "IPv6 Endpoint: 2001:db8::2"];
    assert!(matches!(
        TunnelInfo::parse_lines(bad),
        Err(TicError::BadValue { key: "Type", .. })
    ));
    let mut v = min.to_vec();
    v.push("Tunnel MTU: 12x");
    assert!(matches!(
        TunnelInfo::parse_lines(v),
        Err(TicError::BadValue {
            key: "Tunnel MTU",
            ..
        })
    ));
}

#[test]
fn tunnel_show_format_refuses_unsafe_values() {
    let mut t = sample_tunnel("T1");
    t.heartbeat_interval = 0;
    assert!(t.format_lines().is_err());
    let mut t = sample_tunnel("T1");
    t.mtu = 1500;
    assert!(t.format_lines().is_err());
    let mut t = sample_tunnel("T1");
    t.name = "evil\nPassword: x".into();
    assert!(t.format_lines().is_err());
    let mut t = sample_tunnel("T1");
    t.password = "with space".into();
    assert!(t.format_lines().is_err());
    let mut t = sample_tunnel("T1");
    t.name = "n".repeat(700);
    assert!(matches!(t.format_lines(), Err(TicError::BlockTooLarge(_))));
}

fn arb_token() -> impl Strategy<Value = String> {
    "[!-~]{1,20}"
}

fn arb_tunnel() -> impl Strategy<Value = TunnelInfo> {
    (
        (
            arb_token(),
            0usize..4,
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            0u8..=128,
            arb_token(),
        ),
        (
            prop_oneof![
                Just("ayiya".to_string()),
                Just("heartbeat".to_string()),
                "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"
            ],
            any::<[u8; 4]>(),
            arb_token(),
            arb_token(),
        ),
        (arb_token(), 1u32..100_000, 1280u16..=1480, "[ -~]{0,40}"),
    )
        .prop_map(
            |((id, ty, v6e, v6p, pl, pop), (v4e, v4p, us, ad), (pw, hb, mtu, name))| TunnelInfo {
                id,
                tunnel_type: [
                    TunnelType::Ayiya,
                    TunnelType::Heartbeat,
                    TunnelType::Static,
                    TunnelType::L2tp,
                ][ty],
                ipv6_endpoint: v6e.into(),
                ipv6_pop: v6p.into(),
                prefix_len: pl,
                pop_id: pop,
                ipv4_endpoint: v4e,
                ipv4_pop: v4p.into(),
                user_state: us,
                admin_state: ad,
                password: pw,
                heartbeat_interval: hb,
                mtu,
                name: name.trim().to_string(),
                routed: Vec::new(),
            },
        )
}

proptest! {
    #[test]
    fn tunnel_info_roundtrip(t in arb_tunnel()) {
        let lines = t.format_lines().unwrap();
        prop_assert_eq!(TunnelInfo::parse_lines(lines.iter().map(String::as_str)).unwrap(), t);
    }

    #[test]
    fn list_entry_roundtrip(id in arb_token(), v6 in any::<[u8; 16]>(), v4 in proptest::option::of(any::<[u8; 4]>()), hb in any::<bool>(), pop in arb_token()) {
        let ipv4_endpoint = match (v4, hb) {
            (Some(a), _) => Ipv4Endpoint::Static(a.into()),
            (None, true) => Ipv4Endpoint::Heartbeat,
            (None, false) => Ipv4Endpoint::Ayiya,
        };
        let e = TunnelListEntry { id, ipv6_endpoint: v6.into(), ipv4_endpoint, pop_name: pop };
        prop_assert_eq!(TunnelListEntry::parse(&e.format().unwrap()).unwrap(), e);
    }

    #[test]
    fn framer_chunking_is_transparent(
        lines in proptest::collection::vec("[ -~]{0,50}", 0..20),
        cuts in proptest::collection::vec(1usize..30, 1..10),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
        let bytes = text.as_bytes();
        let mut f = LineFramer::new();
        let mut out = Vec::new();
        let (mut i, mut k) = (0, 0);
        while i < bytes.len() {
            let n = cuts[k % cuts.len()].min(bytes.len() - i);
            f.push(&bytes[i..i + n]).unwrap();
            i += n;
            k += 1;
            while let Some(l) = f.next_line() {
                out.push(l.unwrap());
            }
        }
        prop_assert_eq!(out, lines);
        prop_assert_eq!(f.pending(), 0);
    }

    #[test]
    fn server_and_client_never_panic(lines in proptest::collection::vec("[ -~]{0,60}", 0..40)) {
        let dir = dir_with(vec![sample_tunnel("T12345")]);
        let mut s = Session::new(server_cfg(true));
        let mut c = Login::new(params());
        for l in &lines {
            let _ = s.handle_line(NOW, l, &dir);
            let _ = s.take_starttls();
            let _ = c.handle_line(NOW, l);
            while c.poll_send().is_some() {}
        }
        let _ = TunnelInfo::parse_lines(lines.iter().map(String::as_str));
    }
}

#[test]
fn routed_prefixes_round_trip_and_are_invisible_to_aiccu_titles() {
    let t = TunnelInfo {
        routed: vec![("2001:db8:1234::".parse().unwrap(), 48)],
        ..sample_tunnel("T1")
    };
    let lines = t.format_lines().unwrap();
    assert_eq!(lines.last().unwrap(), "Routed Prefixes: 2001:db8:1234::/48");
    // No AICCU title is a prefix of the key, so AICCU ignores the line.
    assert!(!KEYS.iter().any(|k| ROUTED_KEY.starts_with(k)));
    let back = TunnelInfo::parse_lines(lines.iter().map(String::as_str)).unwrap();
    assert_eq!(back, t);
    // Without the key: empty, as from a SixXS server.
    let plain: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    assert!(TunnelInfo::parse_lines(plain).unwrap().routed.is_empty());
    let mut bad_lines: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    bad_lines.push("Routed Prefixes: 2001:db8::/200");
    assert!(TunnelInfo::parse_lines(bad_lines).is_err());
}

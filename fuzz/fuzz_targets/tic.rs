//! Fuzz TIC framing, reply / list-line / tunnel-show parsers, and both state machines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_ayiya::tic::client::{Login, LoginParams};
use v6h_ayiya::tic::server::{Directory, LoginLimiter, LoginPolicy, Session, SessionConfig};
use v6h_ayiya::tic::{LineFramer, Reply, TunnelInfo, TunnelListEntry};

struct Dir;

impl Directory for Dir {
    fn password_md5hex(&self, username: &str) -> Option<String> {
        (username == "ABC1-SIXXS").then(|| "63e780c3f321d13109c71bf81805476e".to_string())
    }
    fn tunnels(&self, _username: &str) -> Vec<TunnelInfo> {
        let lines = [
            "TunnelId: T1",
            "Type: ayiya",
            "IPv6 Endpoint: 2001:db8:2ff:1::2",
            "IPv6 POP: 2001:db8:2ff:1::1",
            "IPv6 PrefixLength: 64",
            "POP Id: pop01",
            "IPv4 Endpoint: ayiya",
            "IPv4 POP: 192.0.2.1",
            "UserState: enabled",
            "AdminState: enabled",
            "Password: 0123456789abcdef0123456789abcdef",
            "Heartbeat_Interval: 60",
            "Tunnel MTU: 1280",
        ];
        vec![TunnelInfo::parse_lines(lines).expect("valid sample")]
    }
}

fuzz_target!(|data: &[u8]| {
    let mut framer = LineFramer::new();
    let mut lines = Vec::new();
    for chunk in data.chunks(97) {
        if framer.push(chunk).is_err() {
            break;
        }
        while let Some(l) = framer.next_line() {
            if let Ok(l) = l {
                lines.push(l);
            }
        }
    }
    assert!(framer.pending() <= 1002 + 97);

    for l in &lines {
        if let Ok(r) = Reply::parse(l) {
            assert!((100..1000).contains(&r.code));
        }
        if let Ok(e) = TunnelListEntry::parse(l) {
            let text = e.format().expect("parsed entries format");
            assert_eq!(TunnelListEntry::parse(&text), Ok(e));
        }
    }
    if let Ok(t) = TunnelInfo::parse_lines(lines.iter().map(String::as_str)) {
        if let Ok(out) = t.format_lines() {
            assert_eq!(TunnelInfo::parse_lines(out.iter().map(String::as_str)), Ok(t));
        }
    }

    let mut limiter = LoginLimiter::new(LoginPolicy {
        capacity: 64,
        ..LoginPolicy::default()
    });
    let mut session = Session::new(SessionConfig {
        server_name: "pop01".into(),
        peer: "192.0.2.10".parse().expect("literal"),
        challenge: [7; 16],
        tls_available: data.first().is_some_and(|b| b & 1 == 1),
    });
    let mut login = Login::new(LoginParams {
        username: "ABC1-SIXXS".into(),
        password: "userpass".into(),
        tunnel_id: None,
        try_tls: true,
        require_tls: false,
        system: "Linux/6.1.0".into(),
        list_only: false,
    });
    for l in &lines {
        let replies = session.handle_line_limited(1_795_727_697, l, &Dir, &mut limiter);
        assert!(replies.len() <= 20);
        let _ = session.take_starttls();
        let _ = login.handle_line(1_795_727_697, l);
        if login.wants_tls() {
            login.tls_established();
        }
        while login.poll_send().is_some() {}
    }
});

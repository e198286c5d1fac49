//! systemd readiness and watchdog notifications (`sd_notify`), without libsystemd.
//!
//! Messages go as one datagram to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract
//! name starting with `@`). Without that variable every call is a no-op.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A handle to systemd's notification socket.
#[derive(Debug)]
pub struct Notifier {
    target: Option<SocketAddr>,
    socket: Option<UnixDatagram>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`; a missing variable gives a no-op notifier.
    pub fn from_env() -> std::io::Result<Notifier> {
        Self::new(std::env::var("NOTIFY_SOCKET").ok().as_deref())
    }

    /// A notifier for the socket named `name` (`None`: no-op).
    pub fn new(name: Option<&str>) -> std::io::Result<Notifier> {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok(Notifier {
                target: None,
                socket: None,
            });
        };
        let target = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes())?,
            None => SocketAddr::from_pathname(name)?,
        };
        Ok(Notifier {
            target: Some(target),
            socket: Some(UnixDatagram::unbound()?),
        })
    }

    /// Sends `state` (e.g. `READY=1`); returns whether anything was sent.
    pub fn notify(&self, state: &str) -> std::io::Result<bool> {
        match (&self.socket, &self.target) {
            (Some(s), Some(t)) => s.send_to_addr(state.as_bytes(), t).map(|_| true),
            _ => Ok(false),
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, if systemd asked for it (and
/// `$WATCHDOG_PID`, when set, is this process).
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path.to_str().unwrap())).unwrap();
        assert!(n.notify("READY=1").unwrap());
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("v6h-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(Some(&format!("@{name}"))).unwrap();
        assert!(n.notify("WATCHDOG=1").unwrap());
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn without_systemd_nothing_is_sent() {
        assert!(!Notifier::new(None).unwrap().notify("READY=1").unwrap());
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout() {
        assert_eq!(
            parse_watchdog(Some("20000000"), None, 1),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_watchdog(Some("20000000"), Some("1"), 1),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_watchdog(Some("20000000"), Some("2"), 1), None);
        assert_eq!(parse_watchdog(None, None, 1), None);
        assert_eq!(parse_watchdog(Some("x"), None, 1), None);
    }
}

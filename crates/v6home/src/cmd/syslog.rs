//! Log lines of a detached daemon to the system log.
//!
//! After `daemon(3)` stderr is `/dev/null`, so every line would be lost. [`LogWriter`] is the
//! tracing writer of the whole binary: it writes to stderr until [`Syslog::install`] is called, and
//! from then on sends each line as one RFC 3164 datagram (`<PRI>Mmm dd hh:mm:ss v6home[PID]:
//! text`, facility daemon) to the local syslog socket, `/dev/log`, which journald and rsyslog
//! both read. `V6HOME_SYSLOG_SOCKET` names another socket (tests).

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// The default syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Environment variable naming another syslog socket.
pub const SOCKET_ENV: &str = "V6HOME_SYSLOG_SOCKET";
/// Facility `daemon` (3), shifted as in the PRI field.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The open syslog socket once [`Syslog::install`] was called.
static SYSLOG: OnceLock<Mutex<Sink>> = OnceLock::new();

#[derive(Debug)]
struct Sink {
    sock: UnixDatagram,
    path: PathBuf,
    pid: u32,
}

/// A connection to the syslog socket, opened before detaching so that a missing socket is
/// reported on the terminal.
#[derive(Debug)]
pub struct Syslog(Sink);

impl Syslog {
    /// Connects to `/dev/log` (or `$V6HOME_SYSLOG_SOCKET`).
    pub fn open() -> std::io::Result<Syslog> {
        let path =
            std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from(DEV_LOG), PathBuf::from);
        let sock = UnixDatagram::unbound()?;
        sock.connect(&path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("syslog socket {}: {e}", path.display()))
        })?;
        Ok(Syslog(Sink { sock, path, pid: 0 }))
    }

    /// Sends every further log line to syslog instead of stderr. Call it after detaching:
    /// the PID in each line is the caller's.
    pub fn install(mut self) {
        self.0.pid = std::process::id();
        let _ = SYSLOG.set(Mutex::new(self.0));
    }
}

/// The RFC 3164 severity of a tracing level.
fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `Mmm dd hh:mm:ss` (UTC) for `unix` seconds: the RFC 3164 TIMESTAMP.
pub fn rfc3164_time(unix: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (Gregorian calendar, proleptic).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let name = MONTHS
        .get(usize::try_from(month.saturating_sub(1)).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{name} {day:>2} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Removes ANSI escape sequences (`ESC [ … letter`) from a log line.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `text` without a leading RFC 3339 timestamp (`2026-12-07T18:02:44.464825Z`): syslog stamps
/// each line itself.
fn strip_timestamp(text: &str) -> &str {
    let trimmed = text.trim_start();
    let (first, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let b = first.as_bytes();
    let looks_like_time = b.len() >= 20
        && b.get(..4).is_some_and(|y| y.iter().all(u8::is_ascii_digit))
        && b.get(4) == Some(&b'-')
        && b.get(10) == Some(&b'T')
        && first.ends_with('Z');
    if looks_like_time {
        rest.trim_start()
    } else {
        trimmed
    }
}

/// One syslog datagram for `text` at `level`.
pub fn format_line(level: Level, unix: u64, pid: u32, text: &str) -> String {
    let text = strip_ansi(text);
    let text = strip_timestamp(text.trim_end());
    format!(
        "<{}>{} v6home[{pid}]: {text}",
        FACILITY_DAEMON | severity(level),
        rfc3164_time(unix)
    )
}

/// The binary's tracing writer (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One log line on its way: stderr, or a buffer sent to syslog when dropped.
#[derive(Debug)]
pub enum LineWriter {
    /// Before detaching.
    Stderr(std::io::Stderr),
    /// After detaching: the line is sent when the writer is dropped.
    Syslog(Level, Vec<u8>),
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            LineWriter::Stderr(e) => e.write(buf),
            LineWriter::Syslog(_, line) => {
                line.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LineWriter::Stderr(e) => e.flush(),
            LineWriter::Syslog(..) => Ok(()),
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let LineWriter::Syslog(level, line) = self else {
            return;
        };
        let Some(sink) = SYSLOG.get() else {
            return;
        };
        let Ok(mut sink) = sink.lock() else {
            return;
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let text = String::from_utf8_lossy(line);
        let msg = format_line(*level, unix, sink.pid, &text);
        if sink.sock.send(msg.as_bytes()).is_err() {
            // journald or rsyslog restarted: reconnect once; a line that still fails is lost
            // (there is nowhere else to report it).
            if let Ok(s) = UnixDatagram::unbound()
                && s.connect(&sink.path).is_ok()
            {
                let _ = s.send(msg.as_bytes());
                sink.sock = s;
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        writer_for(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        writer_for(*meta.level())
    }
}

fn writer_for(level: Level) -> LineWriter {
    if SYSLOG.get().is_some() {
        LineWriter::Syslog(level, Vec::with_capacity(256))
    } else {
        LineWriter::Stderr(std::io::stderr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_rfc3164() {
        assert_eq!(rfc3164_time(0), "Jan  1 00:00:00");
        // 2026-12-07 17:50:52 UTC.
        assert_eq!(rfc3164_time(1_796_665_852), "Dec  7 17:50:52");
        // 2024-02-29 (leap day) 12:00:00 UTC.
        assert_eq!(rfc3164_time(1_709_208_000), "Feb 29 12:00:00");
    }

    #[test]
    fn lines_carry_priority_pid_and_no_colours() {
        let line = format_line(
            Level::WARN,
            0,
            42,
            "\u{1b}[33m WARN\u{1b}[0m v6h_ra: reload failed\n",
        );
        assert_eq!(
            line,
            "<28>Jan  1 00:00:00 v6home[42]: WARN v6h_ra: reload failed"
        );
        assert!(format_line(Level::ERROR, 0, 1, "x").starts_with("<27>"));
        assert!(format_line(Level::DEBUG, 0, 1, "x").starts_with("<31>"));
    }
}

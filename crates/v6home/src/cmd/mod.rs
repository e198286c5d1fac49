//! Subcommand front ends: argument parsing and the wiring of library crates to the OS.

pub mod broker;
pub mod check;
pub mod demo;
pub mod dhcp6;
pub mod gateway;
pub mod generate;
pub mod lab;
pub mod observe;
pub mod pidfile;
pub mod privacy;
pub mod ra;
pub mod syslog;
pub mod tunnel;

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsFd;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Where the log lines of this process go, decided once at start ([`choose_log_sink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSink {
    /// The systemd journal's native protocol: one entry per event, with its priority and
    /// fields (stderr is connected to the journal).
    Journal,
    /// Text lines on stderr; `ansi` says whether they carry colour codes.
    Stderr {
        /// Colour escape codes on (only on a terminal, and not with `NO_COLOR` set).
        ansi: bool,
    },
}

/// What [`choose_log_sink`] looks at, gathered from the process environment by
/// [`LogEnv::current`] (and built by hand in tests).
#[derive(Debug, Clone, Default)]
pub struct LogEnv {
    /// `$JOURNAL_STREAM` (`DEVICE:INODE` of the journal stream systemd connected), if set.
    pub journal_stream: Option<String>,
    /// `(st_dev, st_ino)` of the file descriptor stderr is open on.
    pub stderr_id: Option<(u64, u64)>,
    /// Whether stderr is a terminal.
    pub stderr_is_terminal: bool,
    /// `$NO_COLOR`, if set (any non-empty value turns colour off, as no-color.org says).
    pub no_color: Option<String>,
}

impl LogEnv {
    /// Reads the environment variables and stderr's file status of this process.
    pub fn current() -> LogEnv {
        let stderr_id = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| std::fs::File::from(fd).metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        LogEnv {
            journal_stream: std::env::var("JOURNAL_STREAM").ok(),
            stderr_id,
            stderr_is_terminal: std::io::stderr().is_terminal(),
            no_color: std::env::var("NO_COLOR").ok(),
        }
    }
}

/// Whether `journal_stream` (`$JOURNAL_STREAM`, "DEVICE:INODE" in decimal) names the file
/// stderr is open on (`stderr_id`). systemd sets the variable for a service whose stdout or
/// stderr goes to the journal; the check against stderr's own identity (as systemd.exec(5)
/// advises) keeps a child whose stderr was redirected elsewhere from using the journal.
pub fn stderr_is_journal(journal_stream: Option<&str>, stderr_id: Option<(u64, u64)>) -> bool {
    let (Some(stream), Some((dev, ino))) = (journal_stream, stderr_id) else {
        return false;
    };
    let Some((d, i)) = stream.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// Decides where logs go: the journal's native protocol when stderr is the journal stream,
/// otherwise stderr, with colour only on a terminal and without `NO_COLOR`.
pub fn choose_log_sink(env: &LogEnv) -> LogSink {
    if stderr_is_journal(env.journal_stream.as_deref(), env.stderr_id) {
        return LogSink::Journal;
    }
    let no_color = env.no_color.as_deref().is_some_and(|v| !v.is_empty());
    LogSink::Stderr {
        ansi: env.stderr_is_terminal && !no_color,
    }
}

/// The level names `--log-level` accepts on their own.
const LEVELS: &str = "trace, debug, info, warn, error or off";

/// Checks a `--log-level` / `$V6HOME_LOG` value (clap value parser): a level, or
/// comma-separated `target=level` directives (tracing env-filter syntax). A bare word that is
/// not a level is refused: env-filter would read it as a target name and silently log almost
/// nothing.
pub fn parse_log_filter(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(format!("empty; use one of {LEVELS}"));
    }
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=') && !directive.contains('[');
        if bare && directive.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "{directive:?} is not a level ({LEVELS}); a target takes a level: {directive}=debug"
            ));
        }
    }
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| format!("{e} (expected {LEVELS}, or target=level, e.g. v6h_tunnel=debug)"))?;
    Ok(value.to_string())
}

/// Installs the global tracing subscriber. Under systemd (stderr is the journal stream) events
/// go to the journal with their priority and fields; otherwise to stderr, and to syslog once a
/// daemon has detached ([`syslog::Syslog::install`]), in colour only on a terminal without
/// `NO_COLOR`. `filter` was checked by [`parse_log_filter`].
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let sink = choose_log_sink(&LogEnv::current());
    if sink == LogSink::Journal && matches!(format, LogFormat::Human) {
        match tracing_journald::layer() {
            Ok(journal) => {
                let journal = journal.with_syslog_identifier("v6home".to_string());
                tracing_subscriber::registry()
                    .with(filter)
                    .with(journal)
                    .init();
                return;
            }
            // No journal socket (a container without journald): plain lines on stderr.
            Err(e) => eprintln!("v6home: journal socket: {e}; logging to stderr"),
        }
    }
    let ansi = matches!(sink, LogSink::Stderr { ansi: true });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(syslog::LogWriter);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An error and its causes as one line, `a: b: c`, each cause once.
///
/// Library errors often show their cause in their own message (`"{path}: {source}"`) and also
/// return it from `source()`; printing the chain naively would repeat it ("Connection refused
/// (os error 111): Connection refused (os error 111)"). A cause whose text the line already
/// ends with is skipped.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// [`error_text`] for an `anyhow::Error` (its context layers included).
pub fn anyhow_text(e: &anyhow::Error) -> String {
    error_text(e.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library error that shows its cause and also returns it as `source()`, like
    /// `#[error("{what}: {source}")]` with `#[source]`.
    #[derive(Debug)]
    struct Wrapped {
        what: &'static str,
        source: std::io::Error,
    }
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.what, self.source)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let refused = std::io::Error::from_raw_os_error(111);
        let e = anyhow::Error::new(Wrapped {
            what: "connecting to 192.0.2.1:3874",
            source: refused,
        })
        .context("TIC login");
        let text = anyhow_text(&e);
        assert_eq!(
            text,
            "TIC login: connecting to 192.0.2.1:3874: Connection refused (os error 111)"
        );
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
        // anyhow's own `{:#}` repeats it: the reason for error_text.
        assert_eq!(format!("{e:#}").matches("Connection refused").count(), 2);
    }

    fn env(
        journal: Option<&str>,
        id: Option<(u64, u64)>,
        tty: bool,
        no_color: Option<&str>,
    ) -> LogEnv {
        LogEnv {
            journal_stream: journal.map(str::to_string),
            stderr_id: id,
            stderr_is_terminal: tty,
            no_color: no_color.map(str::to_string),
        }
    }

    #[test]
    fn journal_only_when_journal_stream_names_stderr() {
        let id = Some((24, 5_678_901));
        assert_eq!(
            choose_log_sink(&env(Some("24:5678901"), id, false, None)),
            LogSink::Journal
        );
        // stderr redirected to a file by a child of a service: the variable is inherited but
        // names another file.
        assert_eq!(
            choose_log_sink(&env(Some("24:5678902"), id, false, None)),
            LogSink::Stderr { ansi: false }
        );
        assert!(!stderr_is_journal(Some("25:5678901"), id));
        assert!(!stderr_is_journal(Some("garbage"), id));
        assert!(!stderr_is_journal(Some("24:"), id));
        assert!(!stderr_is_journal(None, id));
        assert!(!stderr_is_journal(Some("24:5678901"), None));
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let s = |tty, nc| choose_log_sink(&env(None, Some((1, 2)), tty, nc));
        assert_eq!(s(true, None), LogSink::Stderr { ansi: true });
        assert_eq!(s(false, None), LogSink::Stderr { ansi: false });
        assert_eq!(s(true, Some("1")), LogSink::Stderr { ansi: false });
        // no-color.org: an empty NO_COLOR does not count.
        assert_eq!(s(true, Some("")), LogSink::Stderr { ansi: true });
    }

    #[test]
    fn log_filters_are_checked() {
        for good in [
            "info",
            "DEBUG",
            "warn",
            "off",
            "v6h_tunnel=trace",
            "info,v6h_ra=debug",
        ] {
            assert_eq!(parse_log_filter(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            " ",
            "verbose",
            "infoo",
            "v6h_tunnel",
            "v6h_ra=loud",
            "info,chatty",
        ] {
            let e = parse_log_filter(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        let e = parse_log_filter("verbose").unwrap_err();
        assert!(e.contains("\"verbose\" is not a level"), "{e}");
        assert!(e.contains("verbose=debug"), "{e}");
        assert!(
            parse_log_filter("x=loud")
                .unwrap_err()
                .contains("target=level")
        );
    }

    #[test]
    fn causes_not_in_the_message_are_appended() {
        let e = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("reading x.conf");
        assert_eq!(
            anyhow_text(&e),
            "reading x.conf: No such file or directory (os error 2)"
        );
    }
}

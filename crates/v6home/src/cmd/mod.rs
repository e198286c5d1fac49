//! Subcommand front ends: argument parsing and the wiring of library crates to the OS.

pub mod broker;
pub mod check;
pub mod demo;
pub mod dhcp6;
pub mod gateway;
pub mod lab;
pub mod observe;
pub mod pidfile;
pub mod privacy;
pub mod ra;
pub mod syslog;
pub mod tunnel;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global tracing subscriber: stderr, and syslog once a daemon has detached
/// ([`syslog::Syslog::install`]). Colours only on a terminal.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
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

    #[test]
    fn causes_not_in_the_message_are_appended() {
        let e = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("reading x.conf");
        assert_eq!(
            anyhow_text(&e),
            "reading x.conf: No such file or directory (os error 2)"
        );
    }
}

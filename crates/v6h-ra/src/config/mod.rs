//! radvd.conf support: the typed model, a parser of the complete radvd 2.21 (+HEAD)
//! grammar, load-time validation, a native TOML form, and radvd.conf emission.
//!
//! * [`parse_str`] / [`load_file`]: radvd.conf text → validated [`Config`] plus warnings.
//! * [`check_str`] / [`check_toml`]: every error and warning at once, for a configtest (`-c`).
//! * [`from_toml`] / [`Config::to_toml`]: the same model as TOML, with the same validation.
//! * [`Config::to_radvd_conf`]: the model back in radvd.conf syntax (defaults spelled out).
//!
//! Every range check radvd does at interface setup (and the stricter ones of the
//! spec, §2) happens at load time, so a configtest is real. Errors and warnings
//! carry `file:line:col`.

mod emit;
mod keys;
mod lexer;
pub mod model;
mod parser;
mod raw;
mod resolve;
mod tomlform;

#[cfg(test)]
mod tests;

pub use model::*;

use std::fmt;
use std::path::Path;

/// A position in a configuration file (1-based line and column, columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (characters; a tab counts as one).
    pub col: u32,
}

/// A fatal problem in a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A syntax error: `file:line:col: expected X, found Y`.
    #[error("{path}:{line}:{col}: expected {expected}, found {found}{}", hint_suffix(.hint))]
    Syntax {
        /// File name as given by the caller.
        path: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// What the grammar allows here.
        expected: String,
        /// The offending token.
        found: String,
        /// An extra hint (e.g. "template not expanded?").
        hint: Option<String>,
    },
    /// A well-formed value that is not allowed (range checks, duplicates…).
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        /// File name as given by the caller.
        path: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File name.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn hint_suffix(h: &Option<String>) -> String {
    match h {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

impl ConfigError {
    pub(crate) fn syntax(
        path: &str,
        pos: Pos,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        ConfigError::Syntax {
            path: path.to_string(),
            line: pos.line,
            col: pos.col,
            expected: expected.into(),
            found: found.into(),
            hint: None,
        }
    }

    pub(crate) fn invalid(path: &str, pos: Pos, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }

    /// The file the error is in.
    pub fn path(&self) -> &str {
        match self {
            ConfigError::Syntax { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::Io { path, .. } => path,
        }
    }

    /// The error without its `file:line:col: ` prefix, for `file:line:col: error: …` output.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Syntax {
                expected,
                found,
                hint,
                ..
            } => format!("expected {expected}, found {found}{}", hint_suffix(hint)),
            ConfigError::Invalid { message, .. } => message.clone(),
            ConfigError::Io { source, .. } => source.to_string(),
        }
    }

    /// The position (line, column) of the error, if it has one (I/O errors do not).
    pub fn pos(&self) -> Option<Pos> {
        match self {
            ConfigError::Syntax { line, col, .. } | ConfigError::Invalid { line, col, .. } => {
                Some(Pos {
                    line: *line,
                    col: *col,
                })
            }
            ConfigError::Io { .. } => None,
        }
    }
}

/// A non-fatal finding, e.g. host bits in a prefix or a repeated option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// File name as given by the caller.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// What is suspicious and what v6home does about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: {}",
            self.path, self.line, self.col, self.message
        )
    }
}

/// A validated configuration and the warnings found while loading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration with every default resolved.
    pub config: Config,
    /// Warnings in file order.
    pub warnings: Vec<Warning>,
}

/// Parse and validate radvd.conf text; `path` is only used in messages.
///
/// ```
/// let l = v6h_ra::config::parse_str(
///     "radvd.conf",
///     "interface eth0 { AdvSendAdvert on; MaxRtrAdvInterval 30; prefix 2001:db8::/64; };",
/// )
/// .unwrap();
/// let eth0 = &l.config.interfaces[0];
/// assert_eq!((eth0.min_rtr_adv_interval, eth0.adv_default_lifetime), (9.9, 90));
///
/// let e = v6h_ra::config::parse_str("radvd.conf", "interface eth0 { AdvCurHopLimit 300; };");
/// assert_eq!(
///     e.unwrap_err().to_string(),
///     "radvd.conf:1:33: AdvCurHopLimit must be between 0 and 255, found 300"
/// );
/// ```
pub fn parse_str(path: &str, text: &str) -> Result<Loaded, ConfigError> {
    let raw = parser::parse(path, text)?;
    resolve::resolve(path, &raw)
}

/// Every finding of a configuration test (`radvd -c` done properly): all errors,
/// not only the first, and all warnings.
#[derive(Debug)]
pub struct Checked {
    /// The configuration, when there is no error.
    pub config: Option<Config>,
    /// All errors, in file order (a syntax error stops parsing, so it comes alone).
    pub errors: Vec<ConfigError>,
    /// All warnings, in the order they were found.
    pub warnings: Vec<Warning>,
}

impl Checked {
    fn from_parse(path: &str, raw: Result<raw::RawConfig, ConfigError>) -> Checked {
        match raw {
            Ok(raw) => {
                let f = resolve::check(path, &raw);
                Checked {
                    config: f.config,
                    errors: f.errors,
                    warnings: f.warnings,
                }
            }
            Err(e) => Checked {
                config: None,
                errors: vec![e],
                warnings: Vec::new(),
            },
        }
    }
}

/// Check radvd.conf text and report every error and warning (for `-c`).
pub fn check_str(path: &str, text: &str) -> Checked {
    Checked::from_parse(path, parser::parse(path, text))
}

/// Check the TOML form and report every error and warning.
pub fn check_toml(path: &str, text: &str) -> Checked {
    Checked::from_parse(path, tomlform::parse(path, text))
}

/// Read, parse and validate a radvd.conf file.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let name = path.display().to_string();
    let text = read_text(path)?;
    parse_str(&name, &text)
}

/// Reads a configuration file as UTF-8 text; the first byte that is not UTF-8 is an
/// [`ConfigError::Invalid`] at its `file:line:col`.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: name.clone(),
        source,
    })?;
    decode_utf8(&name, bytes)
}

/// `bytes` as text, or the position of the first byte that is not UTF-8.
pub fn decode_utf8(name: &str, bytes: Vec<u8>) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = bytes.get(..at).unwrap_or_default();
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
            .chars()
            .count()
            + 1;
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        ConfigError::Invalid {
            path: name.to_string(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            message: format!(
                "invalid UTF-8 (byte 0x{:02X}); the file must be UTF-8 text",
                bytes.get(at).copied().unwrap_or(0)
            ),
        }
    })
}

/// Parse and validate the native TOML form (as written by [`Config::to_toml`]).
///
/// Omitted options take radvd's defaults, computed from the final
/// `max_rtr_adv_interval` (TOML has no order-dependent defaults).
pub fn from_toml(path: &str, text: &str) -> Result<Loaded, ConfigError> {
    let raw = tomlform::parse(path, text)?;
    resolve::resolve(path, &raw)
}

impl Config {
    /// The configuration in the native TOML form, every value spelled out.
    pub fn to_toml(&self) -> String {
        tomlform::emit(self)
    }

    /// The configuration in radvd.conf syntax, every value spelled out
    /// (so order-dependent defaults cannot change its meaning).
    pub fn to_radvd_conf(&self) -> String {
        emit::emit(self)
    }
}

//! `aiccu.conf` parser and writer (spec §6).
//!
//! One `key value` per line; `#`, `;` and `//` start comment lines; trailing `\r \n \t space`
//! and the whitespace between key and value are trimmed; values may be wrapped in `"…"` or
//! `'…'`; booleans are exactly `yes`/`true`/`no`/`false`. Keys are matched exactly; a key that
//! only starts with a known key (AICCU's prefix rule) is accepted with a warning, an unknown key
//! gives a warning. Defaults are AICCU's code defaults.

use std::fmt;

use thiserror::Error;

/// Parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiccuConfig {
    /// TIC user (required).
    pub username: String,
    /// TIC account password (required; used for the MD5 login).
    pub password: String,
    /// `protocol`: unused (always TIC). Default `tic`.
    pub protocol: String,
    /// TIC server host. Default `tic.sixxs.net`.
    pub server: String,
    /// Tunnel interface name. Default `aiccu`.
    pub ipv6_interface: String,
    /// Tunnel to use; `None` selects the only one.
    pub tunnel_id: Option<String>,
    /// Verbose logging. Default false.
    pub verbose: bool,
    /// Run in the background. Default false.
    pub daemonize: bool,
    /// Unused on Unix. Default false.
    pub automatic: bool,
    /// Fail if STARTTLS is refused. Default false.
    pub requiretls: bool,
    /// PID file. Default `/var/run/aiccu.pid`.
    pub pidfile: String,
    /// Add a default route via the PoP. Default true.
    pub defaultroute: bool,
    /// Script run after start (Debian patch); unused upstream.
    pub setupscript: Option<String>,
    /// Send beats. Default true.
    pub makebeats: bool,
    /// Skip reconfigure/delete. Default false.
    pub noconfigure: bool,
    /// Never read by AICCU. Default false.
    pub behindnat: bool,
    /// Replaces TIC `IPv4 Endpoint`.
    pub local_ipv4_override: Option<String>,
}

impl Default for AiccuConfig {
    /// AICCU's code defaults, with empty username and password.
    fn default() -> Self {
        AiccuConfig {
            username: String::new(),
            password: String::new(),
            protocol: "tic".into(),
            server: "tic.sixxs.net".into(),
            ipv6_interface: "aiccu".into(),
            tunnel_id: None,
            verbose: false,
            daemonize: false,
            automatic: false,
            requiretls: false,
            pidfile: "/var/run/aiccu.pid".into(),
            defaultroute: true,
            setupscript: None,
            makebeats: true,
            noconfigure: false,
            behindnat: false,
            local_ipv4_override: None,
        }
    }
}

/// A configuration error, displayed as `path:line:col: message`, or `path: message` for
/// whole-file errors (line 0).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{message}", location(path, *line, *col))]
pub struct ConfError {
    /// File name as given by the caller.
    pub path: String,
    /// 1-based line (0 for whole-file errors such as a missing key).
    pub line: usize,
    /// 1-based column (0 for whole-file errors).
    pub col: usize,
    /// The key concerned, if any.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn location(path: &str, line: usize, col: usize) -> String {
    if line == 0 {
        format!("{path}: ")
    } else {
        format!("{path}:{line}:{col}: ")
    }
}

/// A non-fatal remark about the file, displayed as `path:line: warning: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// File name as given by the caller.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// The key as written.
    pub key: String,
    /// What is odd.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: {}", self.path, self.line, self.message)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    OptStr,
    Bool,
}

/// Every key AICCU knows, with its type and a note for keys AICCU does not use.
const KEYS: [(&str, Kind, Option<&str>); 17] = [
    ("username", Kind::Str, None),
    ("password", Kind::Str, None),
    (
        "protocol",
        Kind::Str,
        Some("'protocol' is ignored: the client always uses TIC"),
    ),
    ("server", Kind::Str, None),
    ("ipv6_interface", Kind::Str, None),
    ("tunnel_id", Kind::OptStr, None),
    ("verbose", Kind::Bool, None),
    ("daemonize", Kind::Bool, None),
    (
        "automatic",
        Kind::Bool,
        Some("'automatic' is ignored on Unix"),
    ),
    ("requiretls", Kind::Bool, None),
    ("pidfile", Kind::Str, None),
    ("defaultroute", Kind::Bool, None),
    (
        "setupscript",
        Kind::OptStr,
        Some("'setupscript' is ignored by upstream AICCU (only Debian's patched AICCU runs it)"),
    ),
    ("makebeats", Kind::Bool, None),
    ("noconfigure", Kind::Bool, None),
    (
        "behindnat",
        Kind::Bool,
        Some("'behindnat' is never read: AYIYA handles NAT by itself"),
    ),
    ("local_ipv4_override", Kind::OptStr, None),
];

impl AiccuConfig {
    fn set_str(&mut self, key: &str, v: String) {
        match key {
            "username" => self.username = v,
            "password" => self.password = v,
            "protocol" => self.protocol = v,
            "server" => self.server = v,
            "ipv6_interface" => self.ipv6_interface = v,
            "tunnel_id" => self.tunnel_id = Some(v),
            "pidfile" => self.pidfile = v,
            "setupscript" => self.setupscript = Some(v),
            "local_ipv4_override" => self.local_ipv4_override = Some(v),
            _ => {}
        }
    }

    fn set_bool(&mut self, key: &str, v: bool) {
        match key {
            "verbose" => self.verbose = v,
            "daemonize" => self.daemonize = v,
            "automatic" => self.automatic = v,
            "requiretls" => self.requiretls = v,
            "defaultroute" => self.defaultroute = v,
            "makebeats" => self.makebeats = v,
            "noconfigure" => self.noconfigure = v,
            "behindnat" => self.behindnat = v,
            _ => {}
        }
    }

    /// The bytes of an aiccu.conf as text; the first byte that is not UTF-8 is an error at its
    /// `path:line:col`.
    pub fn decode(path: &str, bytes: Vec<u8>) -> Result<String, ConfError> {
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
            ConfError {
                path: path.to_string(),
                line: before.iter().filter(|b| **b == b'\n').count() + 1,
                col,
                key: None,
                message: format!(
                    "invalid UTF-8 (byte 0x{:02X}); the file must be UTF-8 text",
                    bytes.get(at).copied().unwrap_or(0)
                ),
            }
        })
    }

    /// Parses the text of an aiccu.conf; `path` only labels messages. `username` and
    /// `password` are required.
    pub fn parse(path: &str, text: &str) -> Result<(AiccuConfig, Vec<Warning>), ConfError> {
        let mut cfg = AiccuConfig::default();
        let mut warnings = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.trim_end_matches(['\r', '\n', '\t', ' ']);
            let lead = line.len() - line.trim_start().len();
            let line = &line[lead..];
            if line.is_empty()
                || line.starts_with('#')
                || line.starts_with(';')
                || line.starts_with("//")
            {
                continue;
            }
            let err = |col: usize, key: &str, message: String| ConfError {
                path: path.to_string(),
                line: line_no,
                col,
                key: Some(key.to_string()),
                message,
            };
            let warn = |key: &str, message: String| Warning {
                path: path.to_string(),
                line: line_no,
                key: key.to_string(),
                message,
            };
            let key_end = line.find([' ', '\t']).unwrap_or(line.len());
            let key = &line[..key_end];
            let rest = &line[key_end..];
            let value_start = key_end + (rest.len() - rest.trim_start().len());
            let value_col = lead + value_start + 1;
            let value = rest.trim_start();

            let (name, kind, note) = match KEYS.iter().find(|(n, _, _)| *n == key) {
                Some(k) => *k,
                None => match KEYS.iter().find(|(n, _, _)| key.starts_with(n)) {
                    Some(k) => {
                        warnings.push(warn(
                            key,
                            format!("'{key}' matched '{}' by prefix only; write '{}'", k.0, k.0),
                        ));
                        *k
                    }
                    None => {
                        warnings.push(warn(
                            key,
                            format!("unknown configuration statement '{key}'"),
                        ));
                        continue;
                    }
                },
            };
            if let Some(n) = note {
                warnings.push(warn(key, n.to_string()));
            }
            if seen.contains(&name) {
                warnings.push(warn(
                    key,
                    format!("'{name}' is set again; the last value wins"),
                ));
            } else {
                seen.push(name);
            }
            let value = unquote(value)
                .map_err(|m| err(value_col, name, format!("{m} in value of '{name}'")))?;
            if value.is_empty() {
                return Err(err(value_col, name, format!("missing value for '{name}'")));
            }
            match kind {
                Kind::Bool => {
                    let b = match value {
                        "yes" | "true" => true,
                        "no" | "false" => false,
                        other => {
                            return Err(err(
                                value_col,
                                name,
                                format!("'{name}' needs yes, true, no or false, not '{other}'"),
                            ));
                        }
                    };
                    cfg.set_bool(name, b);
                }
                Kind::Str | Kind::OptStr => {
                    if name == "local_ipv4_override" && value.parse::<std::net::Ipv4Addr>().is_err()
                    {
                        return Err(err(
                            value_col,
                            name,
                            format!("'{name}' needs an IPv4 address, not '{value}'"),
                        ));
                    }
                    cfg.set_str(name, value.to_string())
                }
            }
        }
        for required in ["username", "password"] {
            if !seen.contains(&required) {
                return Err(ConfError {
                    path: path.to_string(),
                    line: 0,
                    col: 0,
                    key: Some(required.to_string()),
                    message: format!("missing required key '{required}'"),
                });
            }
        }
        Ok((cfg, warnings))
    }

    /// The line (1-based) of the statement that sets `key` (the last one, as the last value
    /// wins; a prefix match counts, as in [`AiccuConfig::parse`]), for warnings about keys a
    /// particular program ignores.
    pub fn key_line(text: &str, key: &str) -> Option<usize> {
        text.split('\n')
            .enumerate()
            .filter(|(_, l)| {
                let l = l.trim();
                !l.starts_with('#') && !l.starts_with(';') && !l.starts_with("//")
            })
            .filter(|(_, l)| {
                l.split_whitespace().next().is_some_and(|k| {
                    let matched = KEYS
                        .iter()
                        .find(|(n, _, _)| *n == k)
                        .or_else(|| KEYS.iter().find(|(n, _, _)| k.starts_with(n)));
                    matched.is_some_and(|(n, _, _)| *n == key)
                })
            })
            .map(|(i, _)| i + 1)
            .last()
    }

    /// Formats a complete aiccu.conf that AICCU 2007.01.15 and v6home read back identically.
    /// Fails if a value contains a line break or NUL.
    pub fn to_aiccu_conf(&self) -> Result<String, ConfError> {
        let mut out = String::from("# aiccu.conf written by v6home\n");
        let b = |v: bool| if v { "true" } else { "false" };
        let mut entries: Vec<(&str, String)> = vec![
            ("username", self.username.clone()),
            ("password", self.password.clone()),
            ("protocol", self.protocol.clone()),
            ("server", self.server.clone()),
            ("ipv6_interface", self.ipv6_interface.clone()),
        ];
        if let Some(t) = &self.tunnel_id {
            entries.push(("tunnel_id", t.clone()));
        }
        entries.extend([
            ("verbose", b(self.verbose).to_string()),
            ("daemonize", b(self.daemonize).to_string()),
            ("automatic", b(self.automatic).to_string()),
            ("requiretls", b(self.requiretls).to_string()),
            ("pidfile", self.pidfile.clone()),
            ("defaultroute", b(self.defaultroute).to_string()),
            ("makebeats", b(self.makebeats).to_string()),
            ("noconfigure", b(self.noconfigure).to_string()),
            ("behindnat", b(self.behindnat).to_string()),
        ]);
        if let Some(s) = &self.setupscript {
            entries.push(("setupscript", s.clone()));
        }
        if let Some(s) = &self.local_ipv4_override {
            entries.push(("local_ipv4_override", s.clone()));
        }
        for (k, v) in entries {
            if v.is_empty() || v.contains(['\n', '\r', '\0']) {
                return Err(ConfError {
                    path: "<generated>".into(),
                    line: 0,
                    col: 0,
                    key: Some(k.to_string()),
                    message: format!("value of '{k}' is empty or contains a line break"),
                });
            }
            out.push_str(k);
            out.push(' ');
            out.push_str(&quote(&v));
            out.push('\n');
        }
        Ok(out)
    }
}

/// Strips one pair of matching `"` or `'` quotes.
fn unquote(v: &str) -> Result<&str, &'static str> {
    let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Ok(v);
    };
    if v.len() >= 2 && v.ends_with(q) {
        Ok(&v[1..v.len() - 1])
    } else {
        Err("unterminated quote")
    }
}

/// Quotes a value when plain text would not read back identically.
fn quote(v: &str) -> String {
    let needs = v.starts_with(['"', '\'']) || v.trim() != v || v.contains(['\t', ' ', '#', ';']);
    if !needs {
        return v.to_string();
    }
    // The parser strips exactly one outer pair, so inner quotes of either kind are fine.
    format!("\"{v}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "\
# AICCU Configuration
username ABC1-SIXXS\r
password  \"my secret pass\"
protocol tic
server 192.0.2.1
ipv6_interface sixxs
tunnel_id T12345
; a comment
// another
verbose false
daemonize true
automatic true
requiretls false
pidfile /var/run/aiccu.pid
defaultroute no
makebeats yes
noconfigure false
behindnat true
local_ipv4_override '198.51.100.7'
";

    #[test]
    fn parses_sample_with_notes() {
        let (c, w) = AiccuConfig::parse("aiccu.conf", SAMPLE).unwrap();
        assert_eq!(c.username, "ABC1-SIXXS");
        assert_eq!(c.password, "my secret pass");
        assert_eq!(c.server, "192.0.2.1");
        assert_eq!(c.ipv6_interface, "sixxs");
        assert_eq!(c.tunnel_id.as_deref(), Some("T12345"));
        assert!(c.daemonize && c.automatic && c.behindnat && c.makebeats);
        assert!(!c.defaultroute && !c.verbose && !c.requiretls && !c.noconfigure);
        assert_eq!(c.local_ipv4_override.as_deref(), Some("198.51.100.7"));
        let keys: Vec<_> = w.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["protocol", "automatic", "behindnat"]);
        assert_eq!(
            w[0].to_string(),
            "aiccu.conf:4: warning: 'protocol' is ignored: the client always uses TIC"
        );
    }

    #[test]
    fn defaults_are_aiccu_code_defaults() {
        let (c, w) = AiccuConfig::parse("f", "username u\npassword p").unwrap();
        assert!(w.is_empty());
        assert_eq!(
            c,
            AiccuConfig {
                username: "u".into(),
                password: "p".into(),
                ..AiccuConfig::default()
            }
        );
        assert_eq!(c.server, "tic.sixxs.net");
        assert_eq!(c.ipv6_interface, "aiccu");
        assert!(c.defaultroute && c.makebeats && !c.daemonize);
    }

    #[test]
    fn errors_name_path_line_col_and_key() {
        let e = AiccuConfig::parse(
            "/etc/aiccu.conf",
            "username u\npassword p\ndefaultroute 1\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/aiccu.conf:3:14: 'defaultroute' needs yes, true, no or false, not '1'"
        );
        assert_eq!(e.key.as_deref(), Some("defaultroute"));
        let e = AiccuConfig::parse("f", "username u\npassword \"oops\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:2:10: unterminated quote in value of 'password'"
        );
        let e = AiccuConfig::parse("f", "username u\nserver\npassword p").unwrap_err();
        assert_eq!(e.to_string(), "f:2:7: missing value for 'server'");
        let e = AiccuConfig::parse("f", "username u\n").unwrap_err();
        assert_eq!(e.to_string(), "f: missing required key 'password'");
        // Booleans are case-sensitive like AICCU.
        assert!(AiccuConfig::parse("f", "username u\npassword p\nverbose Yes").is_err());
    }

    #[test]
    fn prefix_unknown_duplicate_and_whitespace() {
        let text = "  username   u  \t\npasswordx p\nfoo bar\nusername v\nserver\t\thost\n";
        let (c, w) = AiccuConfig::parse("f", text).unwrap();
        assert_eq!(c.username, "v");
        assert_eq!(c.password, "p");
        assert_eq!(c.server, "host");
        let msgs: Vec<_> = w.iter().map(|w| (w.line, w.message.as_str())).collect();
        assert_eq!(
            msgs,
            [
                (
                    2,
                    "'passwordx' matched 'password' by prefix only; write 'password'"
                ),
                (3, "unknown configuration statement 'foo'"),
                (4, "'username' is set again; the last value wins"),
            ]
        );
    }

    #[test]
    fn key_lines_and_a_bad_ipv4_override() {
        let text = "username u\npassword p\n# daemonize false\ndaemonize true\npidfile /x\n\
                    pidfilex /y\n";
        assert_eq!(AiccuConfig::key_line(text, "daemonize"), Some(4));
        assert_eq!(AiccuConfig::key_line(text, "pidfile"), Some(6));
        assert_eq!(AiccuConfig::key_line(text, "verbose"), None);
        let e = AiccuConfig::parse(
            "a.conf",
            "username u\npassword p\nlocal_ipv4_override nope\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.conf:3:21: 'local_ipv4_override' needs an IPv4 address, not 'nope'"
        );
        let (c, _) = AiccuConfig::parse(
            "a.conf",
            "username u\npassword p\nlocal_ipv4_override 192.0.2.7\n",
        )
        .unwrap();
        assert_eq!(c.local_ipv4_override.as_deref(), Some("192.0.2.7"));
    }

    #[test]
    fn writer_output_reads_back() {
        let (c, _) = AiccuConfig::parse("f", SAMPLE).unwrap();
        let text = c.to_aiccu_conf().unwrap();
        assert!(text.contains("password \"my secret pass\"\n"));
        assert!(text.contains("defaultroute false\n"));
        assert_eq!(AiccuConfig::parse("g", &text).unwrap().0, c);
        let bad = AiccuConfig {
            password: "a\nb".into(),
            ..c
        };
        assert_eq!(
            bad.to_aiccu_conf().unwrap_err().key.as_deref(),
            Some("password")
        );
    }

    proptest! {
        #[test]
        fn roundtrip(user in "[!-~]{1,20}", pw in "[ -~]{1,30}", tid in proptest::option::of("T[0-9]{1,6}"),
                     flags in any::<[bool; 8]>(), script in proptest::option::of("[ -~]{1,30}")) {
            let c = AiccuConfig {
                username: user, password: pw, tunnel_id: tid, verbose: flags[0], daemonize: flags[1],
                automatic: flags[2], requiretls: flags[3], defaultroute: flags[4], makebeats: flags[5],
                noconfigure: flags[6], behindnat: flags[7], setupscript: script,
                ..AiccuConfig::default()
            };
            let text = c.to_aiccu_conf().unwrap();
            prop_assert_eq!(AiccuConfig::parse("p", &text).unwrap().0, c);
        }

        #[test]
        fn parse_never_panics(text in "[ -~\t\r\n\"']{0,300}") {
            let _ = AiccuConfig::parse("f", &text);
        }
    }
}

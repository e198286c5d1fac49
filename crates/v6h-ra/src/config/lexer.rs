//! radvd.conf tokens (radvd `scanner.l` rules, caseless keywords), built with winnow.

use super::keys::is_keyword;
use super::{ConfigError, Pos};
use std::net::Ipv6Addr;
use winnow::Parser;
use winnow::combinator::{alt, delimited};
use winnow::token::{one_of, take_till, take_while};

/// A classified token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LBrace,
    RBrace,
    Semi,
    Slash,
    /// A keyword (option or block name), as written.
    Keyword(String),
    /// `on` / `off`.
    Switch(bool),
    /// `infinity`.
    Infinity,
    /// `low`/`medium`/`high` or `-N` (radvd SIGNEDNUMBER), with its text.
    Pref(i64, String),
    /// NUMBER (≤ 2^32 − 1).
    Number(u64),
    /// DECIMAL `[0-9]+.[0-9]+`, with its text.
    Decimal(f64, String),
    /// An IPv6 address.
    Addr(Ipv6Addr),
    /// `!ADDR`.
    NotAddr(Ipv6Addr),
    /// A bare STRING.
    Str(String),
    /// A `"…"` string, quotes removed.
    Quoted(String),
    Eof,
}

impl Tok {
    /// How the token is shown in "found …" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Semi => "`;`".into(),
            Tok::Slash => "`/`".into(),
            Tok::Keyword(k) => format!("keyword `{k}`"),
            Tok::Switch(b) => format!("`{}`", if *b { "on" } else { "off" }),
            Tok::Infinity => "`infinity`".into(),
            Tok::Pref(_, t) => format!("`{t}`"),
            Tok::Number(n) => format!("number `{n}`"),
            Tok::Decimal(_, t) => format!("number `{t}`"),
            Tok::Addr(a) => format!("address `{a}`"),
            Tok::NotAddr(a) => format!("`!{a}`"),
            Tok::Str(s) => format!("string `{s}`"),
            Tok::Quoted(s) => format!("string `\"{s}\"`"),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: Pos,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "`~!@#$%^&*()_-+=:[]<>,.?\\".contains(c)
}

fn skip<'a>(i: &mut &'a str) -> winnow::Result<&'a str> {
    alt((
        take_while(1.., (' ', '\t')),
        "\r\n",
        "\n",
        // A comment starts only at a token start; `eth0#x` is one word.
        ("#", take_till(0.., '\n')).take(),
    ))
    .parse_next(i)
}

fn punct(i: &mut &str) -> winnow::Result<char> {
    one_of(['{', '}', ';', '/']).parse_next(i)
}

fn quoted<'a>(i: &mut &'a str) -> winnow::Result<&'a str> {
    delimited('"', take_till(0.., ['"', '\n']), '"').parse_next(i)
}

fn word<'a>(i: &mut &'a str) -> winnow::Result<&'a str> {
    take_while(1.., is_word_char).parse_next(i)
}

/// Maps byte offsets to line/column in O(log n) per lookup, so a long line (a whole file on
/// one line) costs linear time to tokenize, not quadratic.
pub(crate) struct Lines {
    starts: Vec<usize>,
    /// Offsets of UTF-8 continuation bytes: columns count characters, not bytes.
    continuation: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let continuation = text
            .bytes()
            .enumerate()
            .filter(|(_, b)| b & 0xc0 == 0x80)
            .map(|(i, _)| i)
            .collect();
        Lines {
            starts,
            continuation,
        }
    }

    pub(crate) fn pos(&self, text: &str, off: usize) -> Pos {
        let off = off.min(text.len());
        let idx = self.starts.partition_point(|&s| s <= off).saturating_sub(1);
        let start = self.starts.get(idx).copied().unwrap_or(0).min(off);
        let before = |at: usize| self.continuation.partition_point(|&i| i < at);
        let col = (off - start) - (before(off) - before(start));
        Pos {
            line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
            col: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }
}

fn is_addr_like(w: &str) -> bool {
    w.contains(':')
        && w.chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
}

fn classify(path: &str, w: &str, pos: Pos) -> Result<Tok, ConfigError> {
    let lower = w.to_ascii_lowercase();
    match lower.as_str() {
        "on" => return Ok(Tok::Switch(true)),
        "off" => return Ok(Tok::Switch(false)),
        "infinity" => return Ok(Tok::Infinity),
        "low" => return Ok(Tok::Pref(-1, w.to_string())),
        "medium" => return Ok(Tok::Pref(0, w.to_string())),
        "high" => return Ok(Tok::Pref(1, w.to_string())),
        _ => {}
    }
    if is_keyword(w) {
        return Ok(Tok::Keyword(w.to_string()));
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(w) {
        return match w.parse::<u64>() {
            Ok(n) if n <= u64::from(u32::MAX) => Ok(Tok::Number(n)),
            _ => Err(ConfigError::invalid(
                path,
                pos,
                format!("number {w} is too large (at most 4294967295)"),
            )),
        };
    }
    if let Some(rest) = w.strip_prefix('-')
        && digits(rest)
    {
        let v = rest.parse::<i64>().map(|v| -v).unwrap_or(i64::MIN);
        return Ok(Tok::Pref(v, w.to_string()));
    }
    if let Some((a, b)) = w.split_once('.')
        && digits(a)
        && digits(b)
    {
        let v: f64 = w
            .parse()
            .map_err(|_| ConfigError::invalid(path, pos, format!("bad number `{w}`")))?;
        return Ok(Tok::Decimal(v, w.to_string()));
    }
    let (neg, body) = match w.strip_prefix('!') {
        Some(b) => (true, b),
        None => (false, w),
    };
    if is_addr_like(body) {
        let a: Ipv6Addr = body.parse().map_err(|_| {
            ConfigError::invalid(path, pos, format!("invalid IPv6 address `{body}`"))
        })?;
        return Ok(if neg { Tok::NotAddr(a) } else { Tok::Addr(a) });
    }
    Ok(Tok::Str(w.to_string()))
}

/// Whether `s` reads back as one bare STRING token (so it can be written unquoted).
pub(crate) fn is_bare_string(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(is_word_char)
        && !s.starts_with('#')
        && matches!(classify("", s, Pos::default()), Ok(Tok::Str(_)))
}

/// Split radvd.conf text into tokens; the last one is [`Tok::Eof`].
pub(crate) fn tokenize(path: &str, text: &str) -> Result<Vec<Token>, ConfigError> {
    let lines = Lines::new(text);
    let mut input: &str = text;
    let mut out = Vec::new();
    loop {
        let off = text.len() - input.len();
        let pos = lines.pos(text, off);
        if input.is_empty() {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        }
        if skip(&mut input).is_ok() {
            continue;
        }
        if let Ok(c) = punct(&mut input) {
            let tok = match c {
                '{' => Tok::LBrace,
                '}' => Tok::RBrace,
                ';' => Tok::Semi,
                _ => Tok::Slash,
            };
            out.push(Token { tok, pos });
            continue;
        }
        if input.starts_with('"') {
            let s = quoted(&mut input).map_err(|_| {
                ConfigError::invalid(path, pos, "unterminated string (missing `\"` on this line)")
            })?;
            out.push(Token {
                tok: Tok::Quoted(s.to_string()),
                pos,
            });
            continue;
        }
        if let Ok(w) = word(&mut input) {
            let tok = classify(path, w, pos)?;
            out.push(Token { tok, pos });
            continue;
        }
        let c = input.chars().next().unwrap_or(' ');
        let shown = match c {
            '\r' => "carriage return (\\r)".to_string(),
            c if c.is_control() => format!("control character U+{:04X}", u32::from(c)),
            c => format!("`{c}`"),
        };
        return Err(ConfigError::syntax(
            path,
            pos,
            "a token",
            format!("invalid character {shown}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize("t", s)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn classifies_tokens() {
        assert_eq!(
            toks(
                "interface eth0#x { MaxRtrAdvInterval 4.5; # c\r\n prefix ::/64 -2 HIGH infinity OFF !fe80::1 \"a b\""
            ),
            vec![
                Tok::Keyword("interface".into()),
                Tok::Str("eth0#x".into()),
                Tok::LBrace,
                Tok::Keyword("MaxRtrAdvInterval".into()),
                Tok::Decimal(4.5, "4.5".into()),
                Tok::Semi,
                Tok::Keyword("prefix".into()),
                Tok::Addr(Ipv6Addr::UNSPECIFIED),
                Tok::Slash,
                Tok::Number(64),
                Tok::Pref(-2, "-2".into()),
                Tok::Pref(1, "HIGH".into()),
                Tok::Infinity,
                Tok::Switch(false),
                Tok::NotAddr("fe80::1".parse().unwrap()),
                Tok::Quoted("a b".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn positions_count_chars() {
        let t = tokenize("t", "a\n\t\"é\" c").unwrap();
        assert_eq!(t[1].pos, Pos { line: 2, col: 2 });
        assert_eq!(t[2].pos, Pos { line: 2, col: 6 });
    }

    #[test]
    fn lexical_errors() {
        let e = tokenize("f", "a\n  'x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:2:3: expected a token, found invalid character `'`"
        );
        let e = tokenize("f", "x 1::2::3").unwrap_err();
        assert_eq!(e.to_string(), "f:1:3: invalid IPv6 address `1::2::3`");
        let e = tokenize("f", "x 4294967296").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:1:3: number 4294967296 is too large (at most 4294967295)"
        );
        let e = tokenize("f", "x \"abc\nd\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:1:3: unterminated string (missing `\"` on this line)"
        );
        let e = tokenize("f", "a\rb").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:1:2: expected a token, found invalid character carriage return (\\r)"
        );
    }
}

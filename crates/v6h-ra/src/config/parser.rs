//! Recursive-descent parser of the radvd.conf grammar (radvd 2.21 `gram.y` + HEAD)
//! over the tokens of [`super::lexer`]; produces the unvalidated [`RawConfig`].

use super::keys::{Block, Key, Kind, lookup_radvd};
use super::lexer::{Tok, Token, tokenize};
use super::raw::{RawBlock, RawConfig, RawIface, RawItem, RawNet, RawOpt, RawVal};
use super::{ConfigError, Pos};
use std::net::Ipv6Addr;

struct Parser<'a> {
    path: &'a str,
    text: &'a str,
    toks: Vec<Token>,
    i: usize,
}

type R<T> = Result<T, ConfigError>;

/// Parse radvd.conf text into the raw tree (no range checks yet).
pub(crate) fn parse(path: &str, text: &str) -> R<RawConfig> {
    let toks = tokenize(path, text)?;
    let mut p = Parser {
        path,
        text,
        toks,
        i: 0,
    };
    p.config()
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // tokenize always ends with Eof and we never advance past it.
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.i.min(last)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn err(&self, t: &Token, expected: &str) -> ConfigError {
        let mut hint = None;
        let line = self
            .text
            .lines()
            .nth(t.pos.line.saturating_sub(1) as usize)
            .unwrap_or("");
        if line.contains('$') || line.contains("{{") {
            hint = Some("template not expanded?".to_string());
        } else if let Tok::Str(s) = &t.tok
            && expected.contains("address")
            && s.contains(':')
        {
            hint = Some("not a valid IPv6 address; template not expanded?".to_string());
        }
        match ConfigError::syntax(self.path, t.pos, expected, t.tok.describe()) {
            ConfigError::Syntax {
                path,
                line,
                col,
                expected,
                found,
                ..
            } => ConfigError::Syntax {
                path,
                line,
                col,
                expected,
                found,
                hint,
            },
            e => e,
        }
    }

    fn expect(&mut self, want: Tok, expected: &str) -> R<Pos> {
        let t = self.next();
        if t.tok == want {
            Ok(t.pos)
        } else {
            Err(self.err(&t, expected))
        }
    }

    fn semi(&mut self) -> R<Pos> {
        self.expect(Tok::Semi, "`;`")
    }

    fn addr(&mut self) -> R<(Ipv6Addr, Pos)> {
        let t = self.next();
        match t.tok {
            Tok::Addr(a) => Ok((a, t.pos)),
            _ => Err(self.err(&t, "an IPv6 address")),
        }
    }

    fn number(&mut self, expected: &str) -> R<(u64, Pos)> {
        let t = self.next();
        match t.tok {
            Tok::Number(n) => Ok((n, t.pos)),
            _ => Err(self.err(&t, expected)),
        }
    }

    /// `ADDR "/" NUM`, or `ADDR [ "/" NUM ]` when `optional_len`.
    fn net(&mut self, optional_len: bool) -> R<RawNet> {
        let (addr, addr_pos) = self.addr()?;
        if optional_len && self.peek().tok != Tok::Slash {
            return Ok(RawNet {
                addr,
                addr_pos,
                len: None,
                len_pos: addr_pos,
            });
        }
        self.expect(Tok::Slash, "`/` and a prefix length")?;
        let (len, len_pos) = self.number("a prefix length")?;
        Ok(RawNet {
            addr,
            addr_pos,
            len: Some(len),
            len_pos,
        })
    }

    fn config(&mut self) -> R<RawConfig> {
        let mut cfg = RawConfig::default();
        loop {
            let t = self.next();
            match &t.tok {
                Tok::Keyword(k) if k.eq_ignore_ascii_case("interface") => {
                    let iface = self.iface()?;
                    cfg.ifaces.push(iface);
                }
                Tok::Eof if !cfg.ifaces.is_empty() => {
                    cfg.end = t.pos;
                    return Ok(cfg);
                }
                Tok::Eof => {
                    return Err(self.err(
                        &t,
                        "`interface` (a configuration needs at least one interface)",
                    ));
                }
                _ => return Err(self.err(&t, "`interface`")),
            }
        }
    }

    fn iface(&mut self) -> R<RawIface> {
        let t = self.next();
        let (name, name_pos) = match t.tok {
            Tok::Str(s) => (s, t.pos),
            _ => return Err(self.err(&t, "an interface name")),
        };
        self.expect(Tok::LBrace, "`{`")?;
        let mut items = Vec::new();
        loop {
            let t = self.next();
            let word = match &t.tok {
                Tok::RBrace => break,
                Tok::Keyword(w) => w.clone(),
                _ => return Err(self.err(&t, "an interface option or block or `}`")),
            };
            if let Some(key) = lookup_radvd(Block::Iface, &word) {
                items.push(RawItem::Opt(self.opt_value(key, t.pos)?));
                continue;
            }
            let item = match word.to_ascii_lowercase().as_str() {
                "prefix" => {
                    let net = self.net(false)?;
                    let opts = if self.peek().tok == Tok::LBrace {
                        self.next();
                        self.opts(Block::Prefix)?
                    } else {
                        self.semi()?;
                        Vec::new()
                    };
                    RawItem::Prefix(RawBlock {
                        pos: t.pos,
                        net: Some(net),
                        opts,
                    })
                }
                "route" => {
                    let net = self.net(false)?;
                    self.expect(Tok::LBrace, "`{`")?;
                    RawItem::Route(RawBlock {
                        pos: t.pos,
                        net: Some(net),
                        opts: self.opts(Block::Route)?,
                    })
                }
                "rdnss" => {
                    let mut addrs = vec![self.addr()?];
                    loop {
                        let n = self.next();
                        match n.tok {
                            Tok::Addr(a) => addrs.push((a, n.pos)),
                            Tok::LBrace => break,
                            _ => return Err(self.err(&n, "an IPv6 address or `{`")),
                        }
                    }
                    RawItem::Rdnss {
                        pos: t.pos,
                        addrs,
                        opts: self.opts(Block::Rdnss)?,
                    }
                }
                "dnssl" => {
                    let mut names = Vec::new();
                    loop {
                        let n = self.next();
                        match n.tok {
                            Tok::Str(s) => names.push((s, n.pos)),
                            Tok::LBrace if !names.is_empty() => break,
                            _ if names.is_empty() => return Err(self.err(&n, "a domain name")),
                            _ => return Err(self.err(&n, "a domain name or `{`")),
                        }
                    }
                    RawItem::Dnssl {
                        pos: t.pos,
                        names,
                        opts: self.opts(Block::Dnssl)?,
                    }
                }
                "clients" => {
                    self.expect(Tok::LBrace, "`{`")?;
                    let mut entries = Vec::new();
                    loop {
                        let n = self.next();
                        match n.tok {
                            Tok::Addr(a) => entries.push((a, false, n.pos)),
                            Tok::NotAddr(a) => entries.push((a, true, n.pos)),
                            Tok::RBrace if !entries.is_empty() => break,
                            _ if entries.is_empty() => {
                                return Err(self.err(&n, "an IPv6 address or `!address`"));
                            }
                            _ => return Err(self.err(&n, "an IPv6 address, `!address` or `}`")),
                        }
                        self.semi()?;
                    }
                    self.semi()?;
                    RawItem::Clients { entries }
                }
                "advrasrcaddress" => {
                    self.expect(Tok::LBrace, "`{`")?;
                    let mut addrs = Vec::new();
                    loop {
                        let n = self.next();
                        match n.tok {
                            Tok::Addr(a) => addrs.push((a, n.pos)),
                            Tok::RBrace if !addrs.is_empty() => break,
                            _ if addrs.is_empty() => return Err(self.err(&n, "an IPv6 address")),
                            _ => return Err(self.err(&n, "an IPv6 address or `}`")),
                        }
                        self.semi()?;
                    }
                    self.semi()?;
                    RawItem::SrcAddr { addrs }
                }
                "nat64prefix" => {
                    let net = self.net(false)?;
                    let opts = if self.peek().tok == Tok::LBrace {
                        self.next();
                        self.opts(Block::Nat64)?
                    } else {
                        self.semi()?;
                        Vec::new()
                    };
                    RawItem::Nat64(RawBlock {
                        pos: t.pos,
                        net: Some(net),
                        opts,
                    })
                }
                "autoignoreprefixes" => {
                    self.expect(Tok::LBrace, "`{`")?;
                    let mut nets = Vec::new();
                    loop {
                        if self.peek().tok == Tok::RBrace && !nets.is_empty() {
                            self.next();
                            break;
                        }
                        if !matches!(self.peek().tok, Tok::Addr(_)) {
                            let n = self.next();
                            let what = if nets.is_empty() {
                                "a prefix"
                            } else {
                                "a prefix or `}`"
                            };
                            return Err(self.err(&n, what));
                        }
                        nets.push(self.net(false)?);
                        self.semi()?;
                    }
                    self.semi()?;
                    RawItem::AutoIgnore { nets }
                }
                "abro" => {
                    let net = self.net(true)?;
                    self.expect(Tok::LBrace, "`{`")?;
                    RawItem::Abro(RawBlock {
                        pos: t.pos,
                        net: Some(net),
                        opts: self.opts(Block::Abro)?,
                    })
                }
                "lowpanco" => {
                    self.expect(Tok::LBrace, "`{`")?;
                    RawItem::Lowpanco(RawBlock {
                        pos: t.pos,
                        net: None,
                        opts: self.opts(Block::Lowpanco)?,
                    })
                }
                _ => return Err(self.misplaced(&t, &word, Block::Iface)),
            };
            items.push(item);
        }
        self.semi()?;
        Ok(RawIface {
            name,
            name_pos,
            items,
        })
    }

    /// Error for a keyword that is not an option of `block`.
    fn misplaced(&self, t: &Token, word: &str, block: Block) -> ConfigError {
        let expected = format!("{} or `}}`", block.what());
        let mut e = self.err(t, &expected);
        if let ConfigError::Syntax { hint, .. } = &mut e
            && hint.is_none()
        {
            *hint = if word.eq_ignore_ascii_case("AdvContextPrefix") {
                Some(
                    "radvd has no grammar rule for AdvContextPrefix; the 6CO prefix is always ::"
                        .into(),
                )
            } else if block != Block::Iface
                && (lookup_radvd(Block::Iface, word).is_some()
                    || [
                        "prefix",
                        "route",
                        "rdnss",
                        "dnssl",
                        "clients",
                        "advrasrcaddress",
                        "nat64prefix",
                        "autoignoreprefixes",
                        "abro",
                        "lowpanco",
                        "interface",
                    ]
                    .contains(&word.to_ascii_lowercase().as_str()))
            {
                Some(format!(
                    "`{word}` belongs directly in the interface block; is a `}};` missing?"
                ))
            } else {
                None
            };
        }
        e
    }

    /// Options of a block up to and including `} ;` (the `{` is already read).
    fn opts(&mut self, block: Block) -> R<Vec<RawOpt>> {
        let mut opts = Vec::new();
        loop {
            let t = self.next();
            match &t.tok {
                Tok::RBrace => break,
                Tok::Keyword(w) => match lookup_radvd(block, w) {
                    Some(key) => opts.push(self.opt_value(key, t.pos)?),
                    None => return Err(self.misplaced(&t, &w.clone(), block)),
                },
                _ => return Err(self.err(&t, &format!("{} or `}}`", block.what()))),
            }
        }
        self.semi()?;
        Ok(opts)
    }

    /// The value of `key` and the `;` after it.
    fn opt_value(&mut self, key: Key, pos: Pos) -> R<RawOpt> {
        let t = self.next();
        let val = match (key.kind(), &t.tok) {
            (Kind::Bool, Tok::Switch(b)) => RawVal::Bool(*b),
            (Kind::Decimal, Tok::Number(n)) => RawVal::Dec(*n as f64),
            (Kind::Decimal, Tok::Decimal(d, _)) => RawVal::Dec(*d),
            (Kind::Number | Kind::NumOrInf, Tok::Number(n)) => RawVal::Num(*n),
            (Kind::NumOrInf, Tok::Infinity) => RawVal::Inf,
            (Kind::Pref, Tok::Pref(v, _)) => RawVal::Pref(*v),
            (Kind::Str, Tok::Str(s) | Tok::Quoted(s)) => RawVal::Str(s.clone()),
            (kind, _) => {
                return Err(self.err(&t, &format!("{} after {}", kind.what(), key.radvd())));
            }
        };
        self.semi()?;
        Ok(RawOpt {
            key,
            val,
            pos,
            vpos: t.pos,
        })
    }
}

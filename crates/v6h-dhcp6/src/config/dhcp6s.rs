//! Reader for wide-dhcpv6 `dhcp6s.conf` (the complete server grammar of the spec, §2.3).
//!
//! A winnow lexer turns the text into tokens with byte offsets (`#` comments, bare strings
//! `[A-Za-z0-9:._-]+`, quoted strings without escapes, `{ } ; /`); a recursive-descent parser
//! builds a [`Config`]. Every error names `file:line:col`.
//!
//! Differences from dhcp6s, all deliberate:
//! * errors dhcp6s logs only at LOG_INFO (duplicate DNS server or domain name, refreshtime
//!   below 600, bad lifetimes) are fatal **with the reason**;
//! * a missing config or include file is an error (dhcp6s silently runs empty);
//! * a relative `include` path is resolved against the including file's directory;
//! * client-only statements (`id-assoc`, `send`, `request`, ...) are errors naming the
//!   statement, where dhcp6s says only "client-only configuration".
//!
//! Like dhcp6s, a repeated `host`, `pool`, `interface` or `keyinfo` name keeps the first
//! block and warns; a repeated `refreshtime` keeps the first value and warns.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use winnow::Parser;
use winnow::ascii::{multispace0, till_line_ending};
use winnow::combinator::{alt, delimited};
use winnow::error::ContextError;
use winnow::token::{take_till, take_while};

use super::{
    Config, ConfigError, Host, INFINITY, Interface, KeyInfo, Location, MIN_REFRESH_TIME, Pool,
    PoolUse, StaticAddress, StaticPrefix, Warning, check_base64, check_domain_name, check_expire,
    check_lifetimes,
};

/// `include` nesting limit (as dhcp6s).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// Kinds of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LBrace,
    RBrace,
    Semi,
    Slash,
    Quoted,
    Bare,
}

#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    offset: usize,
}

fn bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-')
}

fn skip_blank(i: &mut &str) -> winnow::Result<(), ContextError> {
    loop {
        multispace0.parse_next(i)?;
        if i.starts_with('#') {
            till_line_ending.parse_next(i)?;
        } else {
            return Ok(());
        }
    }
}

fn token<'a>(i: &mut &'a str) -> winnow::Result<(Kind, &'a str), ContextError> {
    alt((
        "{".map(|t| (Kind::LBrace, t)),
        "}".map(|t| (Kind::RBrace, t)),
        ";".map(|t| (Kind::Semi, t)),
        "/".map(|t| (Kind::Slash, t)),
        delimited('"', take_till(0.., |c| c == '"'), '"').map(|t| (Kind::Quoted, t)),
        take_while(1.., bare_char).map(|t| (Kind::Bare, t)),
    ))
    .parse_next(i)
}

/// Maps a byte offset in `src` to 1-based line and column.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn lex<'a>(file: &Path, src: &'a str) -> Result<Vec<Tok<'a>>, ConfigError> {
    let mut i = src;
    let mut out = Vec::new();
    loop {
        skip_blank(&mut i).map_err(|_| at(file, src, src.len() - i.len(), "lexer error"))?;
        if i.is_empty() {
            return Ok(out);
        }
        let offset = src.len() - i.len();
        match token(&mut i) {
            Ok((kind, text)) => out.push(Tok { kind, text, offset }),
            Err(_) => {
                let msg = if i.starts_with('"') {
                    "unterminated quoted string".to_owned()
                } else {
                    let c = i.chars().next().unwrap_or(' ');
                    format!("unexpected character {c:?}")
                };
                return Err(at(file, src, offset, &msg));
            }
        }
    }
}

fn at(file: &Path, src: &str, offset: usize, msg: &str) -> ConfigError {
    ConfigError::At {
        loc: loc(file, src, offset),
        msg: msg.to_owned(),
    }
}

fn loc(file: &Path, src: &str, offset: usize) -> Location {
    let (line, col) = line_col(src, offset);
    Location {
        file: file.to_owned(),
        line,
        col,
    }
}

/// Parses a `dhcp6s.conf` file (following includes) and validates the result.
pub fn parse_file(path: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut loader = |p: &Path| super::read_utf8(p);
    parse_with(path, &mut loader)
}

/// Parses `text` as if read from `name`; `include` statements are errors. For tests and fuzzing.
pub fn parse_str(name: &str, text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
    let main = PathBuf::from(name);
    let text = text.to_owned();
    let mut loader = move |p: &Path| {
        if p == main {
            Ok(text.clone())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "includes are not available here",
            ))
        }
    };
    parse_with(Path::new(name), &mut loader)
}

/// Parses with a custom file loader (used for includes too), then validates.
pub fn parse_with(
    path: &Path,
    loader: &mut dyn FnMut(&Path) -> std::io::Result<String>,
) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut p = Builder {
        cfg: Config::default(),
        warnings: Vec::new(),
        loader,
    };
    p.file(path, 0)?;
    let mut warnings = p.warnings;
    warnings.extend(p.cfg.validate().map_err(|e| match e {
        ConfigError::Invalid(msg) => ConfigError::Invalid(format!("{}: {msg}", path.display())),
        other => other,
    })?);
    Ok((p.cfg, warnings))
}

struct Builder<'l> {
    cfg: Config,
    warnings: Vec<Warning>,
    loader: &'l mut dyn FnMut(&Path) -> std::io::Result<String>,
}

/// A cursor over one file's tokens.
struct Cur<'a, 'f> {
    file: &'f Path,
    src: &'a str,
    toks: Vec<Tok<'a>>,
    pos: usize,
}

const CLIENT_ONLY: &[&str] = &[
    "id-assoc",
    "authentication",
    "profile",
    "send",
    "request",
    "information-only",
    "script",
    "prefix-interface",
    "sla-id",
    "sla-len",
    "ifid",
];

impl<'a> Cur<'a, '_> {
    fn err_at(&self, offset: usize, msg: impl AsRef<str>) -> ConfigError {
        at(self.file, self.src, offset, msg.as_ref())
    }
    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src.len(), |t| t.offset)
    }
    fn loc_of(&self, offset: usize) -> Location {
        loc(self.file, self.src, offset)
    }
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }
    fn next(&mut self, what: &str) -> Result<Tok<'a>, ConfigError> {
        match self.toks.get(self.pos).copied() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(self.err_at(
                self.src.len(),
                format!("unexpected end of file, expected {what}"),
            )),
        }
    }
    fn expect(&mut self, kind: Kind, what: &str) -> Result<Tok<'a>, ConfigError> {
        let t = self.next(what)?;
        if t.kind != kind {
            return Err(self.err_at(t.offset, format!("expected {what}, found {:?}", t.text)));
        }
        Ok(t)
    }
    fn bare(&mut self, what: &str) -> Result<Tok<'a>, ConfigError> {
        self.expect(Kind::Bare, what)
    }
    fn quoted(&mut self, what: &str) -> Result<Tok<'a>, ConfigError> {
        self.expect(Kind::Quoted, what)
    }
    fn semi(&mut self) -> Result<(), ConfigError> {
        self.expect(Kind::Semi, "';'").map(|_| ())
    }
    fn is(&self, kind: Kind) -> bool {
        self.peek().is_some_and(|t| t.kind == kind)
    }
    /// A NUMBER: digits or digits.digits; the fraction is dropped (as strtoll does).
    fn number(&mut self, what: &str) -> Result<(u64, usize), ConfigError> {
        let t = self.bare(what)?;
        let (int, frac) = match t.text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (t.text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(self.err_at(
                t.offset,
                format!("expected {what} (a number), found {:?}", t.text),
            ));
        }
        let v = int
            .parse::<u64>()
            .map_err(|_| self.err_at(t.offset, format!("{what} {} is too large", t.text)))?;
        Ok((v, t.offset))
    }
    fn u32_num(&mut self, what: &str) -> Result<u32, ConfigError> {
        let (v, off) = self.number(what)?;
        u32::try_from(v).map_err(|_| self.err_at(off, format!("{what} {v} exceeds 4294967295")))
    }
    fn duration(&mut self, what: &str) -> Result<u32, ConfigError> {
        if self
            .peek()
            .is_some_and(|t| t.text == "infinity" && t.kind == Kind::Bare)
        {
            self.pos += 1;
            return Ok(INFINITY);
        }
        self.u32_num(what)
    }
    /// `pltime [vltime]`, checked.
    fn lifetimes(&mut self) -> Result<(u32, u32), ConfigError> {
        let off = self.here();
        let pl = self.duration("preferred lifetime")?;
        let vl = if self.is(Kind::Semi) {
            pl
        } else {
            self.duration("valid lifetime")?
        };
        check_lifetimes(pl, vl).map_err(|e| self.err_at(off, e))?;
        Ok((pl, vl))
    }
    fn addr(&mut self, what: &str) -> Result<Ipv6Addr, ConfigError> {
        let t = self.bare(what)?;
        t.text
            .parse()
            .map_err(|_| self.err_at(t.offset, format!("{:?} is not an IPv6 address", t.text)))
    }
    /// `{ADDR} ;` with at least one address, duplicates fatal.
    fn addr_list(&mut self, what: &str, into: &mut Vec<Ipv6Addr>) -> Result<(), ConfigError> {
        let start = into.len();
        while !self.is(Kind::Semi) {
            let off = self.here();
            let a = self.addr("an IPv6 address")?;
            if into.contains(&a) {
                return Err(self.err_at(off, format!("duplicate address {a} in option {what}")));
            }
            into.push(a);
        }
        if into.len() == start {
            return Err(self.err_at(
                self.here(),
                format!("option {what} needs at least one address"),
            ));
        }
        self.semi()
    }
    fn name(&mut self, what: &str, into: &mut Vec<String>) -> Result<(), ConfigError> {
        let t = self.quoted("a quoted domain name")?;
        let n = t.text.strip_suffix('.').unwrap_or(t.text).to_owned();
        check_domain_name(&n).map_err(|e| self.err_at(t.offset, e))?;
        if into.iter().any(|m| m.eq_ignore_ascii_case(&n)) {
            return Err(self.err_at(
                t.offset,
                format!("duplicate domain name {n:?} in option {what}"),
            ));
        }
        into.push(n);
        self.semi()
    }
    fn open_block(&mut self) -> Result<(), ConfigError> {
        self.expect(Kind::LBrace, "'{'").map(|_| ())
    }
    /// True (and consumes `} ;`) at the end of a block.
    fn close_block(&mut self) -> Result<bool, ConfigError> {
        if self.is(Kind::RBrace) {
            self.pos += 1;
            let t = self.next("';' after '}'")?;
            if t.kind != Kind::Semi {
                return Err(self.err_at(t.offset, "expected ';' after '}' (it is mandatory)"));
            }
            return Ok(true);
        }
        Ok(false)
    }
    fn client_only(&self, t: &Tok<'_>) -> Option<ConfigError> {
        CLIENT_ONLY.contains(&t.text).then(|| {
            self.err_at(
                t.offset,
                format!(
                    "{:?} is client-only configuration; dhcp6s.conf cannot hold it",
                    t.text
                ),
            )
        })
    }
}

impl Builder<'_> {
    fn file(&mut self, path: &Path, depth: usize) -> Result<(), ConfigError> {
        let src = (self.loader)(path).map_err(|error| super::read_error(path, error))?;
        let toks = lex(path, &src)?;
        let mut c = Cur {
            file: path,
            src: &src,
            toks,
            pos: 0,
        };
        while let Some(t) = c.peek() {
            c.pos += 1;
            if t.kind != Kind::Bare {
                return Err(c.err_at(
                    t.offset,
                    format!("expected a statement, found {:?}", t.text),
                ));
            }
            match t.text {
                "option" => self.option(&mut c)?,
                "interface" => self.interface(&mut c, t.offset)?,
                "host" => self.host(&mut c, t.offset)?,
                "pool" => self.pool(&mut c, t.offset)?,
                "keyinfo" => self.keyinfo(&mut c, t.offset)?,
                "include" => {
                    let f = c.quoted("a quoted file name")?;
                    c.semi()?;
                    if depth + 1 >= MAX_INCLUDE_DEPTH {
                        return Err(c.err_at(
                            f.offset,
                            format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
                        ));
                    }
                    let mut inc = PathBuf::from(f.text);
                    if inc.is_relative()
                        && let Some(dir) = path.parent()
                    {
                        inc = dir.join(inc);
                    }
                    self.file(&inc, depth + 1).map_err(|e| match e {
                        ConfigError::Io { path, error } => {
                            c.err_at(f.offset, format!("include {}: {error}", path.display()))
                        }
                        other => other,
                    })?;
                }
                _ => {
                    return Err(c.client_only(&t).unwrap_or_else(|| {
                        c.err_at(t.offset, format!("unknown statement {:?}", t.text))
                    }));
                }
            }
        }
        Ok(())
    }

    fn option(&mut self, c: &mut Cur<'_, '_>) -> Result<(), ConfigError> {
        let k = c.bare("an option name")?;
        let o = &mut self.cfg.options;
        match k.text {
            "domain-name-servers" => c.addr_list(k.text, &mut o.dns_servers),
            "domain-name" => c.name(k.text, &mut o.domain_list),
            "ntp-servers" => c.addr_list(k.text, &mut o.ntp_servers),
            "sip-server-address" => c.addr_list(k.text, &mut o.sip_server_addresses),
            "sip-server-domain-name" => c.name(k.text, &mut o.sip_server_domain_names),
            "nis-server-address" => c.addr_list(k.text, &mut o.nis_server_addresses),
            "nis-domain-name" | "nis-server-domain-name" => c.name(k.text, &mut o.nis_domain_names),
            "nisp-server-address" => c.addr_list(k.text, &mut o.nisp_server_addresses),
            "nisp-domain-name" | "nisp-server-domain-name" => {
                c.name(k.text, &mut o.nisp_domain_names)
            }
            "bcmcs-server-address" => c.addr_list(k.text, &mut o.bcmcs_server_addresses),
            "bcmcs-server-domain-name" => c.name(k.text, &mut o.bcmcs_server_domain_names),
            "refreshtime" => {
                let (v, off) = c.number("refresh time")?;
                c.semi()?;
                let v = u32::try_from(v)
                    .map_err(|_| c.err_at(off, format!("refreshtime {v} exceeds 4294967295")))?;
                if v < MIN_REFRESH_TIME {
                    return Err(c.err_at(
                        off,
                        format!(
                            "refreshtime {v} is below the minimum of {MIN_REFRESH_TIME} seconds"
                        ),
                    ));
                }
                if let Some(first) = o.refresh_time {
                    self.warnings.push(Warning {
                        loc: Some(c.loc_of(off)),
                        msg: format!("refreshtime given again; the first value ({first}) is kept"),
                    });
                } else {
                    o.refresh_time = Some(v);
                }
                Ok(())
            }
            other => Err(c.err_at(k.offset, format!("unknown option {other:?}"))),
        }
    }

    fn dup_warning(&mut self, c: &Cur<'_, '_>, off: usize, what: &str, name: &str) {
        self.warnings.push(Warning {
            loc: Some(c.loc_of(off)),
            msg: format!(
                "{what} {name:?} defined again; this later block is ignored (as dhcp6s does)"
            ),
        });
    }

    fn interface(&mut self, c: &mut Cur<'_, '_>, off: usize) -> Result<(), ConfigError> {
        let name = c.bare("an interface name")?;
        if name.text.len() > 15 {
            return Err(c.err_at(name.offset, "interface names are at most 15 bytes"));
        }
        c.open_block()?;
        let mut ifc = Interface {
            name: name.text.to_owned(),
            ..Interface::default()
        };
        while !c.close_block()? {
            let t = c.bare("an interface statement")?;
            match t.text {
                "allow" => {
                    let w = c.bare("'rapid-commit'")?;
                    if w.text != "rapid-commit" {
                        return Err(c.err_at(
                            w.offset,
                            format!("expected 'rapid-commit', found {:?}", w.text),
                        ));
                    }
                    ifc.rapid_commit = true;
                    c.semi()?;
                }
                "preference" => {
                    let (v, voff) = c.number("preference")?;
                    let v = u8::try_from(v)
                        .map_err(|_| c.err_at(voff, format!("preference {v} exceeds 255")))?;
                    ifc.preference = Some(v);
                    c.semi()?;
                }
                "address-pool" => {
                    let p = c.bare("a pool name")?;
                    let (preferred, valid) = c.lifetimes()?;
                    c.semi()?;
                    ifc.address_pools.push(PoolUse {
                        pool: p.text.to_owned(),
                        preferred,
                        valid,
                    });
                }
                _ => {
                    return Err(c.client_only(&t).unwrap_or_else(|| {
                        c.err_at(
                            t.offset,
                            format!("{:?} is not allowed in an interface block", t.text),
                        )
                    }));
                }
            }
        }
        if self.cfg.interfaces.iter().any(|i| i.name == ifc.name) {
            self.dup_warning(c, off, "interface", &ifc.name);
        } else {
            self.cfg.interfaces.push(ifc);
        }
        Ok(())
    }

    fn host(&mut self, c: &mut Cur<'_, '_>, off: usize) -> Result<(), ConfigError> {
        let name = c.bare("a host name")?;
        c.open_block()?;
        let mut duid = None;
        let mut h = Host {
            name: name.text.to_owned(),
            duid: String::new(),
            addresses: Vec::new(),
            prefixes: Vec::new(),
            address_pools: Vec::new(),
            delayed_key: None,
            link: None,
        };
        while !c.close_block()? {
            let t = c.bare("a host statement")?;
            match t.text {
                "duid" => {
                    let d = c.bare("a DUID")?;
                    let bytes = crate::duid::from_text(d.text)
                        .map_err(|e| c.err_at(d.offset, e.to_string()))?;
                    if duid.is_some() {
                        return Err(c.err_at(t.offset, "duid given twice in one host"));
                    }
                    duid = Some(crate::duid::to_text(&bytes));
                    c.semi()?;
                }
                "address" => {
                    let address = c.addr("an IPv6 address")?;
                    let (preferred, valid) = c.lifetimes()?;
                    c.semi()?;
                    h.addresses.push(StaticAddress {
                        address,
                        preferred,
                        valid,
                    });
                }
                "prefix" => {
                    let prefix = c.addr("an IPv6 prefix")?;
                    c.expect(Kind::Slash, "'/'")?;
                    let (len, loff) = c.number("prefix length")?;
                    let prefix_len =
                        u8::try_from(len)
                            .ok()
                            .filter(|l| *l <= 128)
                            .ok_or_else(|| {
                                c.err_at(loff, format!("prefix length {len} exceeds 128"))
                            })?;
                    let (preferred, valid) = c.lifetimes()?;
                    c.semi()?;
                    h.prefixes.push(StaticPrefix {
                        prefix,
                        prefix_len,
                        preferred,
                        valid,
                    });
                }
                "address-pool" => {
                    let p = c.bare("a pool name")?;
                    let (preferred, valid) = c.lifetimes()?;
                    c.semi()?;
                    h.address_pools.push(PoolUse {
                        pool: p.text.to_owned(),
                        preferred,
                        valid,
                    });
                }
                "delayedkey" => {
                    let k = c.bare("a key name")?;
                    c.semi()?;
                    h.delayed_key = Some(k.text.to_owned());
                }
                _ => {
                    return Err(c.client_only(&t).unwrap_or_else(|| {
                        c.err_at(
                            t.offset,
                            format!("{:?} is not allowed in a host block", t.text),
                        )
                    }));
                }
            }
        }
        h.duid =
            duid.ok_or_else(|| c.err_at(name.offset, format!("host {:?} has no duid", h.name)))?;
        if self.cfg.hosts.iter().any(|x| x.name == h.name) {
            self.dup_warning(c, off, "host", &h.name);
        } else {
            self.cfg.hosts.push(h);
        }
        Ok(())
    }

    fn pool(&mut self, c: &mut Cur<'_, '_>, off: usize) -> Result<(), ConfigError> {
        let name = c.bare("a pool name")?;
        c.open_block()?;
        let mut range = None;
        while !c.close_block()? {
            let t = c.bare("'range'")?;
            if t.text != "range" {
                return Err(c.err_at(
                    t.offset,
                    format!("{:?} is not allowed in a pool block", t.text),
                ));
            }
            if range.is_some() {
                return Err(c.err_at(t.offset, "range given twice in one pool"));
            }
            let start = c.addr("the first address")?;
            let to = c.bare("'to'")?;
            if to.text != "to" {
                return Err(c.err_at(to.offset, format!("expected 'to', found {:?}", to.text)));
            }
            let end = c.addr("the last address")?;
            c.semi()?;
            if u128::from(start) > u128::from(end) {
                return Err(c.err_at(t.offset, format!("range start {start} is after end {end}")));
            }
            range = Some((start, end));
        }
        let (start, end) = range
            .ok_or_else(|| c.err_at(name.offset, format!("pool {:?} has no range", name.text)))?;
        if self.cfg.pools.iter().any(|p| p.name == name.text) {
            self.dup_warning(c, off, "pool", name.text);
        } else {
            self.cfg.pools.push(Pool {
                name: name.text.to_owned(),
                start,
                end,
            });
        }
        Ok(())
    }

    fn keyinfo(&mut self, c: &mut Cur<'_, '_>, off: usize) -> Result<(), ConfigError> {
        let name = c.bare("a key name")?;
        c.open_block()?;
        let mut k = KeyInfo {
            name: name.text.to_owned(),
            ..KeyInfo::default()
        };
        while !c.close_block()? {
            let t = c.bare("a keyinfo statement")?;
            match t.text {
                "realm" => k.realm = Some(c.quoted("a quoted realm")?.text.to_owned()),
                "keyid" => k.keyid = Some(c.u32_num("key id")?),
                "secret" => {
                    let s = c.quoted("a quoted base64 secret")?;
                    check_base64(s.text).map_err(|e| c.err_at(s.offset, e))?;
                    k.secret = Some(s.text.to_owned());
                }
                "expire" => {
                    let s = c.quoted("a quoted expiry time")?;
                    check_expire(s.text).map_err(|e| c.err_at(s.offset, e))?;
                    k.expire = Some(s.text.to_owned());
                }
                _ => {
                    return Err(c.err_at(
                        t.offset,
                        format!("{:?} is not allowed in a keyinfo block", t.text),
                    ));
                }
            }
            c.semi()?;
        }
        for (field, present) in [
            ("realm", k.realm.is_some()),
            ("keyid", k.keyid.is_some()),
            ("secret", k.secret.is_some()),
        ] {
            if !present {
                return Err(c.err_at(name.offset, format!("keyinfo {:?} lacks {field}", k.name)));
            }
        }
        if self.cfg.keys.iter().any(|x| x.name == k.name) {
            self.dup_warning(c, off, "keyinfo", &k.name);
        } else {
            self.cfg.keys.push(k);
        }
        Ok(())
    }
}

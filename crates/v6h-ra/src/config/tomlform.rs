//! The native TOML form: [`Config`] serialized with serde, and a reader that maps
//! TOML tables onto the same raw tree as radvd.conf so the same defaults and
//! validation apply, with `line:col` taken from TOML spans.
//!
//! ```toml
//! [[interface]]
//! name = "eth0"
//! adv_send_advert = true
//! max_rtr_adv_interval = 30
//!
//! [[interface.prefix]]
//! prefix = "2001:db8:1234::"
//! len = 64
//! adv_valid_lifetime = "infinity"
//! ```

use super::keys::{Block, Kind, lookup_toml};
use super::lexer::Lines;
use super::model::Config;
use super::raw::{RawBlock, RawConfig, RawIface, RawItem, RawNet, RawOpt, RawVal};
use super::{ConfigError, Pos};
use std::net::Ipv6Addr;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

type R<T> = Result<T, ConfigError>;

pub(crate) fn emit(cfg: &Config) -> String {
    toml::to_string(cfg).unwrap_or_else(|e| format!("# TOML serialization failed: {e}\n"))
}

struct Rd<'a> {
    path: &'a str,
    text: &'a str,
    lines: Lines,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    v.type_str()
}

impl Rd<'_> {
    fn pos(&self, span: Range<usize>) -> Pos {
        self.lines.pos(self.text, span.start.min(self.text.len()))
    }

    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.path, self.pos(span), msg)
    }

    fn expected(&self, v: &Spanned<DeValue<'_>>, what: &str) -> ConfigError {
        ConfigError::syntax(self.path, self.pos(v.span()), what, type_name(v.get_ref()))
    }

    fn table<'v, 'i>(&self, v: &'v Spanned<DeValue<'i>>) -> R<&'v DeTable<'i>> {
        v.get_ref()
            .as_table()
            .ok_or_else(|| self.expected(v, "a table"))
    }

    fn array_of<'v, 'i>(&self, v: &'v Spanned<DeValue<'i>>) -> R<&'v [Spanned<DeValue<'i>>]> {
        match v.get_ref() {
            DeValue::Array(a) => Ok(&a[..]),
            _ => Err(self.expected(v, "an array")),
        }
    }

    fn int(&self, v: &Spanned<DeValue<'_>>) -> R<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| self.err(v.span(), "integer out of range")),
            _ => Err(self.expected(v, "an integer")),
        }
    }

    fn unsigned(&self, v: &Spanned<DeValue<'_>>) -> R<u64> {
        let n = self.int(v)?;
        u64::try_from(n).map_err(|_| {
            self.err(
                v.span(),
                format!("expected a non-negative integer, found {n}"),
            )
        })
    }

    fn string(&self, v: &Spanned<DeValue<'_>>) -> R<String> {
        v.get_ref()
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.expected(v, "a string"))
    }

    fn addr(&self, v: &Spanned<DeValue<'_>>) -> R<(Ipv6Addr, Pos)> {
        let s = self.string(v)?;
        let a = s
            .parse()
            .map_err(|_| self.err(v.span(), format!("invalid IPv6 address `{s}`")))?;
        Ok((a, self.pos(v.span())))
    }

    fn value(&self, kind: Kind, v: &Spanned<DeValue<'_>>) -> R<RawVal> {
        let d = v.get_ref();
        Ok(match (kind, d) {
            (Kind::Bool, DeValue::Boolean(b)) => RawVal::Bool(*b),
            (Kind::Decimal, DeValue::Float(f)) => {
                let x: f64 = f
                    .as_str()
                    .replace('_', "")
                    .parse()
                    .map_err(|_| self.err(v.span(), "invalid float"))?;
                RawVal::Dec(x)
            }
            (Kind::Decimal, DeValue::Integer(_)) => RawVal::Dec(self.int(v)? as f64),
            (Kind::Number | Kind::NumOrInf, DeValue::Integer(_)) => RawVal::Num(self.unsigned(v)?),
            (Kind::NumOrInf, DeValue::String(s)) if s.eq_ignore_ascii_case("infinity") => {
                RawVal::Inf
            }
            (Kind::Pref, DeValue::String(s)) => match s.to_ascii_lowercase().as_str() {
                "low" => RawVal::Pref(-1),
                "medium" => RawVal::Pref(0),
                "high" => RawVal::Pref(1),
                _ => return Err(self.expected(v, Kind::Pref.what())),
            },
            (Kind::Pref, DeValue::Integer(_)) => {
                RawVal::Pref(i64::try_from(self.int(v)?).unwrap_or(i64::MIN))
            }
            (Kind::Str, DeValue::String(s)) => RawVal::Str(s.to_string()),
            (Kind::Bool, _) => return Err(self.expected(v, "true or false")),
            (Kind::NumOrInf, _) => return Err(self.expected(v, "an integer or \"infinity\"")),
            (kind, _) => return Err(self.expected(v, kind.what())),
        })
    }

    /// Options of `block` from `t`, skipping the structural keys in `skip`.
    fn opts(&self, block: Block, t: &DeTable<'_>, skip: &[&str]) -> R<Vec<RawOpt>> {
        let mut out = Vec::new();
        for (k, v) in t.iter() {
            let name: &str = k.get_ref();
            if skip.contains(&name) {
                continue;
            }
            let key = lookup_toml(block, name).ok_or_else(|| {
                self.err(
                    k.span(),
                    format!("unknown key `{name}` ({} expected)", block.what()),
                )
            })?;
            out.push(RawOpt {
                key,
                val: self.value(key.kind(), v)?,
                pos: self.pos(k.span()),
                vpos: self.pos(v.span()),
            });
        }
        Ok(out)
    }

    fn get<'t, 'i>(&self, t: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }

    fn need<'t, 'i>(
        &self,
        t: &'t DeTable<'i>,
        at: Range<usize>,
        key: &str,
    ) -> R<&'t Spanned<DeValue<'i>>> {
        self.get(t, key)
            .ok_or_else(|| self.err(at, format!("missing key `{key}`")))
    }

    fn net(
        &self,
        t: &DeTable<'_>,
        at: Range<usize>,
        addr_key: &str,
        len_required: bool,
    ) -> R<RawNet> {
        let (addr, addr_pos) = self.addr(self.need(t, at.clone(), addr_key)?)?;
        let (len, len_pos) = match self.get(t, "len") {
            Some(v) => (Some(self.unsigned(v)?), self.pos(v.span())),
            None if len_required => return Err(self.err(at, "missing key `len`")),
            None => (None, addr_pos),
        };
        Ok(RawNet {
            addr,
            addr_pos,
            len,
            len_pos,
        })
    }

    fn blocks<'v, 'i>(
        &self,
        v: &'v Spanned<DeValue<'i>>,
    ) -> R<Vec<(&'v DeTable<'i>, Range<usize>)>> {
        self.array_of(v)?
            .iter()
            .map(|e| Ok((self.table(e)?, e.span())))
            .collect()
    }

    fn iface(&self, v: &Spanned<DeValue<'_>>) -> R<RawIface> {
        let t = self.table(v)?;
        let name_v = self.need(t, v.span(), "name")?;
        let name = self.string(name_v)?;
        let name_pos = self.pos(name_v.span());
        const BLOCKS: &[&str] = &[
            "name",
            "prefix",
            "route",
            "rdnss",
            "dnssl",
            "clients",
            "adv_ra_src_address",
            "nat64prefix",
            "autoignoreprefixes",
            "abro",
            "lowpanco",
        ];
        let mut items: Vec<RawItem> = self
            .opts(Block::Iface, t, BLOCKS)?
            .into_iter()
            .map(RawItem::Opt)
            .collect();
        if let Some(v) = self.get(t, "prefix") {
            for (b, at) in self.blocks(v)? {
                let net = self.net(b, at.clone(), "prefix", true)?;
                items.push(RawItem::Prefix(RawBlock {
                    pos: self.pos(at),
                    net: Some(net),
                    opts: self.opts(Block::Prefix, b, &["prefix", "len"])?,
                }));
            }
        }
        if let Some(v) = self.get(t, "route") {
            for (b, at) in self.blocks(v)? {
                let net = self.net(b, at.clone(), "prefix", true)?;
                items.push(RawItem::Route(RawBlock {
                    pos: self.pos(at),
                    net: Some(net),
                    opts: self.opts(Block::Route, b, &["prefix", "len"])?,
                }));
            }
        }
        if let Some(v) = self.get(t, "rdnss") {
            for (b, at) in self.blocks(v)? {
                let list = self.need(b, at.clone(), "addresses")?;
                let addrs = self
                    .array_of(list)?
                    .iter()
                    .map(|a| self.addr(a))
                    .collect::<R<Vec<_>>>()?;
                if addrs.is_empty() {
                    return Err(self.err(list.span(), "RDNSS needs at least one address"));
                }
                items.push(RawItem::Rdnss {
                    pos: self.pos(at),
                    addrs,
                    opts: self.opts(Block::Rdnss, b, &["addresses"])?,
                });
            }
        }
        if let Some(v) = self.get(t, "dnssl") {
            for (b, at) in self.blocks(v)? {
                let list = self.need(b, at.clone(), "suffixes")?;
                let names = self
                    .array_of(list)?
                    .iter()
                    .map(|s| Ok((self.string(s)?, self.pos(s.span()))))
                    .collect::<R<Vec<_>>>()?;
                if names.is_empty() {
                    return Err(self.err(list.span(), "DNSSL needs at least one suffix"));
                }
                items.push(RawItem::Dnssl {
                    pos: self.pos(at),
                    names,
                    opts: self.opts(Block::Dnssl, b, &["suffixes"])?,
                });
            }
        }
        if let Some(v) = self.get(t, "clients") {
            let mut entries = Vec::new();
            for (b, at) in self.blocks(v)? {
                for (k, _) in b.iter() {
                    if !["address", "excluded"].contains(&k.get_ref().as_ref()) {
                        return Err(self.err(
                            k.span(),
                            format!("unknown key `{}` in a client", k.get_ref()),
                        ));
                    }
                }
                let (a, p) = self.addr(self.need(b, at, "address")?)?;
                let excluded = match self.get(b, "excluded") {
                    Some(x) => match x.get_ref() {
                        DeValue::Boolean(e) => *e,
                        _ => return Err(self.expected(x, "true or false")),
                    },
                    None => false,
                };
                entries.push((a, excluded, p));
            }
            items.push(RawItem::Clients { entries });
        }
        if let Some(v) = self.get(t, "adv_ra_src_address") {
            let addrs = self
                .array_of(v)?
                .iter()
                .map(|a| self.addr(a))
                .collect::<R<Vec<_>>>()?;
            items.push(RawItem::SrcAddr { addrs });
        }
        if let Some(v) = self.get(t, "nat64prefix") {
            for (b, at) in self.blocks(v)? {
                let net = self.net(b, at.clone(), "prefix", true)?;
                items.push(RawItem::Nat64(RawBlock {
                    pos: self.pos(at),
                    net: Some(net),
                    opts: self.opts(Block::Nat64, b, &["prefix", "len"])?,
                }));
            }
        }
        if let Some(v) = self.get(t, "autoignoreprefixes") {
            let mut nets = Vec::new();
            for (b, at) in self.blocks(v)? {
                for (k, _) in b.iter() {
                    if !["prefix", "len"].contains(&k.get_ref().as_ref()) {
                        return Err(self.err(
                            k.span(),
                            format!("unknown key `{}` in autoignoreprefixes", k.get_ref()),
                        ));
                    }
                }
                nets.push(self.net(b, at, "prefix", true)?);
            }
            items.push(RawItem::AutoIgnore { nets });
        }
        if let Some(v) = self.get(t, "abro") {
            for (b, at) in self.blocks(v)? {
                let net = self.net(b, at.clone(), "address", false)?;
                items.push(RawItem::Abro(RawBlock {
                    pos: self.pos(at),
                    net: Some(net),
                    opts: self.opts(Block::Abro, b, &["address", "len"])?,
                }));
            }
        }
        if let Some(v) = self.get(t, "lowpanco") {
            for (b, at) in self.blocks(v)? {
                items.push(RawItem::Lowpanco(RawBlock {
                    pos: self.pos(at),
                    net: None,
                    opts: self.opts(Block::Lowpanco, b, &[])?,
                }));
            }
        }
        Ok(RawIface {
            name,
            name_pos,
            items,
        })
    }
}

/// Read the TOML form into the raw tree.
pub(crate) fn parse(path: &str, text: &str) -> R<RawConfig> {
    let rd = Rd {
        path,
        text,
        lines: Lines::new(text),
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        rd.err(span, format!("invalid TOML: {}", e.message().trim()))
    })?;
    let mut cfg = RawConfig {
        ifaces: Vec::new(),
        end: rd.pos(text.len()..text.len()),
    };
    for (k, v) in doc.get_ref().iter() {
        if k.get_ref() != "interface" {
            return Err(rd.err(
                k.span(),
                format!("unknown key `{}` (expected `interface`)", k.get_ref()),
            ));
        }
        for e in rd.array_of(v)? {
            cfg.ifaces.push(rd.iface(e)?);
        }
    }
    Ok(cfg)
}

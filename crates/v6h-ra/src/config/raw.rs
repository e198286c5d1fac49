//! The unvalidated syntax tree shared by the radvd.conf parser and the TOML
//! reader; `resolve` turns it into the model.

use super::Pos;
use super::keys::Key;
use std::net::Ipv6Addr;

/// An option value as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawVal {
    Bool(bool),
    Num(u64),
    Dec(f64),
    Inf,
    Pref(i64),
    Str(String),
}

/// `KEY value;`
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawOpt {
    pub(crate) key: Key,
    pub(crate) val: RawVal,
    /// Position of the keyword.
    pub(crate) pos: Pos,
    /// Position of the value.
    pub(crate) vpos: Pos,
}

/// `ADDR[/LEN]`
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawNet {
    pub(crate) addr: Ipv6Addr,
    pub(crate) addr_pos: Pos,
    pub(crate) len: Option<u64>,
    pub(crate) len_pos: Pos,
}

/// A block with a head (`prefix`, `route`, `nat64prefix`, `abro`, `lowpanco`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawBlock {
    pub(crate) pos: Pos,
    pub(crate) net: Option<RawNet>,
    pub(crate) opts: Vec<RawOpt>,
}

/// One item of an interface body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawItem {
    Opt(RawOpt),
    Prefix(RawBlock),
    Route(RawBlock),
    Rdnss {
        pos: Pos,
        addrs: Vec<(Ipv6Addr, Pos)>,
        opts: Vec<RawOpt>,
    },
    Dnssl {
        pos: Pos,
        names: Vec<(String, Pos)>,
        opts: Vec<RawOpt>,
    },
    Clients {
        entries: Vec<(Ipv6Addr, bool, Pos)>,
    },
    SrcAddr {
        addrs: Vec<(Ipv6Addr, Pos)>,
    },
    Nat64(RawBlock),
    AutoIgnore {
        nets: Vec<RawNet>,
    },
    Abro(RawBlock),
    Lowpanco(RawBlock),
}

/// `interface NAME { … };`
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawIface {
    pub(crate) name: String,
    pub(crate) name_pos: Pos,
    pub(crate) items: Vec<RawItem>,
}

/// A whole file.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RawConfig {
    pub(crate) ifaces: Vec<RawIface>,
    /// Where the file ends (for "empty file" errors).
    pub(crate) end: Pos,
}

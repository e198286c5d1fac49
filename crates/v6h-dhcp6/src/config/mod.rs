//! Server configuration: the native model (also its TOML form) and its validation.
//!
//! Two front ends produce a [`Config`]: [`dhcp6s::parse_file`] reads wide-dhcpv6 `dhcp6s.conf`
//! files (the complete server grammar) and [`Config::from_toml`] reads the native TOML form.
//! [`Config::validate`] applies the same rules to both and returns warnings for statements
//! that are accepted but not served (delayed-authentication keys).
//!
//! Stateful service: `pool` blocks used by an interface's `address-pool` are IA_NA pools and
//! `host` blocks are reservations by DUID (see [`crate::stateful`]). dhcp6s.conf has no
//! syntax for prefix-delegation pools; the TOML form adds them per interface:
//!
//! ```toml
//! [[interface]]
//! name = "eth0"
//! [[interface.pd_pool]]
//! prefix = "2001:db8:1234::/48"     # the routed prefix to carve
//! delegated_len = 56                # each client gets one /56
//! exclude = ["2001:db8:1234::/56"]  # never delegate the /56 holding the LAN /64
//! preferred = 3600                  # lifetimes, default 3600 / 7200 s
//! valid = 7200
//! ```
//!
//! Links behind DHCPv6 relays are `[[link]]` tables (TOML only: dhcp6s.conf has no relay or
//! subnet concept). A relayed message is served on the link whose `prefix` holds the
//! link-address of the relay closest to the client (see [`crate::server`]):
//!
//! ```toml
//! [[link]]
//! name = "office"                     # label used in leases and logs
//! prefix = "2001:db8:1234:10::/64"    # the relayed link's prefix
//! address_pools = [{ pool = "office", preferred = 1800, valid = 3600 }]
//! rapid_commit = true
//! [[link.pd_pool]]
//! prefix = "2001:db8:1234:8000::/49"
//! delegated_len = 60
//! ```

pub mod dhcp6s;

use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `infinity` for lifetimes (RFC 8415 §7.7).
pub const INFINITY: u32 = 0xffff_ffff;
/// Minimum Information Refresh Time (RFC 8415 §21.23).
pub const MIN_REFRESH_TIME: u32 = 600;

/// Where a statement is: `file:line:col` (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File the statement is in.
    pub file: PathBuf,
    /// Line, 1-based.
    pub line: usize,
    /// Column in characters, 1-based.
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A file that is not UTF-8: where its first invalid byte is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid UTF-8 (byte 0x{byte:02X}); the file must be UTF-8 text")]
pub struct NotUtf8 {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// The first invalid byte.
    pub byte: u8,
}

/// Reads a configuration file as text; a byte that is not UTF-8 is an `InvalidData` error
/// carrying its position ([`NotUtf8`]).
pub fn read_utf8(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
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
        let byte = bytes.get(at).copied().unwrap_or(0);
        std::io::Error::new(std::io::ErrorKind::InvalidData, NotUtf8 { line, col, byte })
    })
}

/// The [`ConfigError`] for a failed read of `path`: `file:line:col` for text that is not
/// UTF-8, [`ConfigError::Io`] otherwise.
pub fn read_error(path: &Path, error: std::io::Error) -> ConfigError {
    match error.get_ref().and_then(|e| e.downcast_ref::<NotUtf8>()) {
        Some(n) => ConfigError::At {
            loc: Location {
                file: path.to_owned(),
                line: n.line,
                col: n.col,
            },
            msg: n.to_string(),
        },
        None => ConfigError::Io {
            path: path.to_owned(),
            error,
        },
    }
}

/// A configuration error; the configuration is not used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A file (config or include) could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A syntax or semantic error at a known place.
    #[error("{loc}: {msg}")]
    At {
        /// Where.
        loc: Location,
        /// What is wrong.
        msg: String,
    },
    /// A TOML document that does not deserialize.
    #[error("{}: {msg}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message.
        msg: String,
    },
    /// A semantic error found by [`Config::validate`].
    #[error("{0}")]
    Invalid(String),
}

/// A non-fatal finding: the statement is accepted but has no effect yet, or is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where, when known.
    pub loc: Option<Location>,
    /// What.
    pub msg: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(l) => write!(f, "{l}: {}", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

/// The whole server configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Global options sent to clients.
    pub options: Options,
    /// Limits on what one message or one client may take (TOML `[limits]`; dhcp6s.conf has
    /// no syntax for them, so dhcp6s.conf files get the defaults).
    #[serde(skip_serializing_if = "Limits::is_default")]
    pub limits: Limits,
    /// Per-interface settings (`interface` blocks).
    #[serde(rename = "interface", skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Reservations by DUID (`host` blocks).
    #[serde(rename = "host", skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<Host>,
    /// Address pools (`pool` blocks).
    #[serde(rename = "pool", skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<Pool>,
    /// Links reached through relays (`[[link]]`, TOML only).
    #[serde(rename = "link", skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<RelayLink>,
    /// Delayed-authentication keys (`keyinfo` blocks).
    #[serde(rename = "keyinfo", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyInfo>,
}

/// Default of [`Limits::max_ias_per_message`].
pub const DEFAULT_MAX_IAS_PER_MESSAGE: u32 = 8;

/// Limits against greedy or hostile clients (TOML `[limits]`); 0 means no limit.
///
/// ```toml
/// [limits]
/// max_ias_per_message = 8     # IA_NA + IA_PD options served in one message
/// max_leases_per_client = 16  # leases one client DUID may hold on one link
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// IA_NA and IA_PD options served per Solicit, Request, Renew or Rebind; later ones get
    /// NoAddrsAvail or NoPrefixAvail inside the IA. Default [`DEFAULT_MAX_IAS_PER_MESSAGE`].
    pub max_ias_per_message: u32,
    /// Leases (addresses and prefixes) one client DUID may hold on one link; further IAs get
    /// NoAddrsAvail or NoPrefixAvail. Default [`v6h_lease::DEFAULT_MAX_LEASES_PER_CLIENT`].
    pub max_leases_per_client: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ias_per_message: DEFAULT_MAX_IAS_PER_MESSAGE,
            max_leases_per_client: v6h_lease::DEFAULT_MAX_LEASES_PER_CLIENT,
        }
    }
}

impl Limits {
    /// Whether these are the defaults (then they are left out of the TOML form).
    pub fn is_default(&self) -> bool {
        *self == Limits::default()
    }
}

/// Global options (the `option` statements).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// 23: DNS recursive name servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<Ipv6Addr>,
    /// 24: domain search list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domain_list: Vec<String>,
    /// 31: SNTP servers (also answered as 56 when a client asks for 56).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ntp_servers: Vec<Ipv6Addr>,
    /// 22: SIP server addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sip_server_addresses: Vec<Ipv6Addr>,
    /// 21: SIP server domain names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sip_server_domain_names: Vec<String>,
    /// 27: NIS servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nis_server_addresses: Vec<Ipv6Addr>,
    /// 29: NIS domain names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nis_domain_names: Vec<String>,
    /// 28: NIS+ servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nisp_server_addresses: Vec<Ipv6Addr>,
    /// 30: NIS+ domain names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nisp_domain_names: Vec<String>,
    /// 34: BCMCS controller addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bcmcs_server_addresses: Vec<Ipv6Addr>,
    /// 33: BCMCS controller domain names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bcmcs_server_domain_names: Vec<String>,
    /// 32: Information Refresh Time in seconds (600..=2³²-1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<u32>,
}

/// An `interface` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// `allow rapid-commit`.
    #[serde(default)]
    pub rapid_commit: bool,
    /// `preference N` (option 7); absent means no option 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u8>,
    /// `address-pool` statements: IA_NA pools served on this interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<PoolUse>,
    /// IA_PD prefix pools (TOML only; dhcp6s.conf has no syntax for them).
    #[serde(default, rename = "pd_pool", skip_serializing_if = "Vec::is_empty")]
    pub pd_pools: Vec<PdPool>,
    /// The interface's on-link prefix (TOML only): relays on this link whose link-address
    /// lies in it are served here, and Confirm judges addresses against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<v6h_lease::Prefix>,
}

/// A link reached through relays (TOML `[[link]]`): its own prefix, pools and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayLink {
    /// Label of the link, used in leases and logs; unique among links and interfaces.
    pub name: String,
    /// The link's on-link prefix: a relay whose link-address lies in it serves this link.
    pub prefix: v6h_lease::Prefix,
    /// Interface-ID (option 18) text that also selects this link when a relay's
    /// link-address is unspecified (`::`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<String>,
    /// Solicit with Rapid Commit is answered with a committing Reply.
    #[serde(default)]
    pub rapid_commit: bool,
    /// Preference option (7) in Advertise; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u8>,
    /// IA_NA pools (named `[[pool]]` ranges, which must lie inside `prefix`) with lifetimes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<PoolUse>,
    /// IA_PD prefix pools.
    #[serde(default, rename = "pd_pool", skip_serializing_if = "Vec::is_empty")]
    pub pd_pools: Vec<PdPool>,
}

/// An IA_PD prefix pool (TOML `[[interface.pd_pool]]`): `prefix` carved into prefixes of
/// `delegated_len`, leaving out any that overlap `exclude`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdPool {
    /// The prefix to carve, e.g. the routed `2001:db8:1234::/48`.
    pub prefix: v6h_lease::Prefix,
    /// Length of each delegated prefix, e.g. 56.
    pub delegated_len: u8,
    /// Prefixes never delegated, e.g. the /56 holding the LAN /64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<v6h_lease::Prefix>,
    /// Preferred lifetime of delegated prefixes (seconds).
    #[serde(default = "default_pd_preferred")]
    pub preferred: u32,
    /// Valid lifetime of delegated prefixes (seconds).
    #[serde(default = "default_pd_valid")]
    pub valid: u32,
}

fn default_pd_preferred() -> u32 {
    3600
}
fn default_pd_valid() -> u32 {
    7200
}

/// A use of a pool with lifetimes (`address-pool POOL pltime [vltime]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolUse {
    /// Pool name.
    pub pool: String,
    /// Preferred lifetime in seconds (4294967295 = infinity).
    pub preferred: u32,
    /// Valid lifetime in seconds (4294967295 = infinity).
    pub valid: u32,
}

/// A `host` block: reservations for one DUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Block name.
    pub name: String,
    /// Client DUID, `hh:hh:...`.
    pub duid: String,
    /// Static IA_NA addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<StaticAddress>,
    /// Static IA_PD prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<StaticPrefix>,
    /// Pools this host may draw from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<PoolUse>,
    /// `delayedkey NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_key: Option<String>,
    /// The link (interface or `[[link]]` name) the reservation is on (TOML only); default:
    /// the link whose prefix or pool holds the first address, else the first interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A static address reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticAddress {
    /// The address.
    pub address: Ipv6Addr,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
}

/// A static prefix reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticPrefix {
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// Its length, 0..=128.
    pub prefix_len: u8,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
}

/// A `pool` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Pool name.
    pub name: String,
    /// First address.
    pub start: Ipv6Addr,
    /// Last address.
    pub end: Ipv6Addr,
}

/// A `keyinfo` block (delayed authentication, RFC 3315 §21.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    /// Key name.
    pub name: String,
    /// `realm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// `keyid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<u32>,
    /// `secret`, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `expire`: `yyyy-mm-dd HH:MM`, `mm-dd HH:MM`, `HH:MM` or `forever`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<String>,
}

/// Checks a DNS name given as text; returns what is wrong.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    let mut buf = Vec::new();
    crate::wire::encode_name(crate::wire::code::DOMAIN_LIST, name, &mut buf)
        .map_err(|e| format!("bad domain name {name:?}: {e}"))?;
    if name.is_empty() || name == "." {
        return Err("empty domain name".to_owned());
    }
    Ok(())
}

/// Checks `pltime [vltime]`: pltime ≤ vltime unless vltime is infinite.
pub fn check_lifetimes(preferred: u32, valid: u32) -> Result<(), String> {
    if valid != INFINITY && preferred > valid {
        return Err(format!(
            "preferred lifetime {preferred} exceeds valid lifetime {valid}"
        ));
    }
    Ok(())
}

/// Checks a keyinfo `expire` value.
pub fn check_expire(s: &str) -> Result<(), String> {
    if s == "forever" {
        return Ok(());
    }
    let bad = || {
        format!(
            "bad expire {s:?}: want \"yyyy-mm-dd HH:MM\", \"mm-dd HH:MM\", \"HH:MM\" or \"forever\""
        )
    };
    let num = |t: &str, lo: u32, hi: u32| -> Result<u32, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let v: u32 = t.parse().map_err(|_| bad())?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad())
        }
    };
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (Some(d), t),
        None => (None, s),
    };
    let (h, m) = time.split_once(':').ok_or_else(bad)?;
    num(h, 0, 23)?;
    num(m, 0, 59)?;
    if let Some(d) = date {
        let parts: Vec<&str> = d.split('-').collect();
        match parts.as_slice() {
            [y, mo, da] => {
                num(y, 1970, 9999)?;
                num(mo, 1, 12)?;
                num(da, 1, 31)?;
            }
            [mo, da] => {
                num(mo, 1, 12)?;
                num(da, 1, 31)?;
            }
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// Checks that `s` is base64 (RFC 4648, with padding).
pub fn check_base64(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let bad = || "secret is not valid base64".to_owned();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return Err(bad());
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return Err(bad());
    }
    let body = &b[..b.len() - pad];
    if !body
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    {
        return Err(bad());
    }
    Ok(())
}

fn dup_addrs(what: &str, list: &[Ipv6Addr]) -> Result<(), ConfigError> {
    for (i, a) in list.iter().enumerate() {
        if list[..i].contains(a) {
            return Err(ConfigError::Invalid(format!(
                "duplicate address {a} in option {what} (dhcp6s refuses this too, silently)"
            )));
        }
    }
    Ok(())
}

fn dup_names(what: &str, list: &[String]) -> Result<(), ConfigError> {
    for (i, n) in list.iter().enumerate() {
        check_domain_name(n).map_err(|e| ConfigError::Invalid(format!("option {what}: {e}")))?;
        if list[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(ConfigError::Invalid(format!(
                "duplicate domain name {n:?} in option {what} (dhcp6s refuses this too, silently)"
            )));
        }
    }
    Ok(())
}

impl Config {
    /// Reads a native TOML configuration (without validating it).
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            msg: e.to_string(),
        })
    }

    /// Writes the native TOML form.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Invalid(format!("TOML encoding: {e}")))
    }

    /// Loads a file: `*.toml` is the native form, anything else is `dhcp6s.conf` syntax.
    /// The result is validated; the warnings are returned with it.
    pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
        if path.extension().is_some_and(|e| e == "toml") {
            let text = read_utf8(path).map_err(|error| read_error(path, error))?;
            let cfg = Config::from_toml(path, &text)?;
            let warnings = cfg.validate()?;
            Ok((cfg, warnings))
        } else {
            dhcp6s::parse_file(path)
        }
    }

    /// Validates the whole configuration. Errors are fatal; warnings name every statement
    /// that is accepted but not served.
    pub fn validate(&self) -> Result<Vec<Warning>, ConfigError> {
        let o = &self.options;
        dup_addrs("domain-name-servers", &o.dns_servers)?;
        dup_addrs("ntp-servers", &o.ntp_servers)?;
        dup_addrs("sip-server-address", &o.sip_server_addresses)?;
        dup_addrs("nis-server-address", &o.nis_server_addresses)?;
        dup_addrs("nisp-server-address", &o.nisp_server_addresses)?;
        dup_addrs("bcmcs-server-address", &o.bcmcs_server_addresses)?;
        dup_names("domain-name", &o.domain_list)?;
        dup_names("sip-server-domain-name", &o.sip_server_domain_names)?;
        dup_names("nis-domain-name", &o.nis_domain_names)?;
        dup_names("nisp-domain-name", &o.nisp_domain_names)?;
        dup_names("bcmcs-server-domain-name", &o.bcmcs_server_domain_names)?;
        if let Some(r) = o.refresh_time
            && r < MIN_REFRESH_TIME
        {
            return Err(ConfigError::Invalid(format!(
                "refreshtime {r} is below the minimum of {MIN_REFRESH_TIME} seconds"
            )));
        }
        let mut w = Vec::new();
        let not_served = |w: &mut Vec<Warning>, what: String| {
            w.push(Warning {
                loc: None,
                msg: format!(
                    "{what}: accepted, but not served: v6home does not do delayed authentication, \
                     so clients get no authentication option"
                ),
            })
        };
        let mut seen = Vec::new();
        for p in &self.pools {
            if seen.contains(&&p.name) {
                return Err(ConfigError::Invalid(format!(
                    "pool {:?} defined twice",
                    p.name
                )));
            }
            seen.push(&p.name);
            if u128::from(p.start) > u128::from(p.end) {
                return Err(ConfigError::Invalid(format!(
                    "pool {:?}: range start {} is after end {}",
                    p.name, p.start, p.end
                )));
            }
        }
        let pool_ok = |u: &PoolUse, owner: &str| -> Result<(), ConfigError> {
            if !self.pools.iter().any(|p| p.name == u.pool) {
                return Err(ConfigError::Invalid(format!(
                    "{owner}: address-pool {:?} is not defined",
                    u.pool
                )));
            }
            check_lifetimes(u.preferred, u.valid)
                .map_err(|e| ConfigError::Invalid(format!("{owner}: address-pool {}: {e}", u.pool)))
        };
        let mut seen = Vec::new();
        for i in &self.interfaces {
            if seen.contains(&&i.name) {
                return Err(ConfigError::Invalid(format!(
                    "interface {:?} configured twice",
                    i.name
                )));
            }
            seen.push(&i.name);
            if i.name.is_empty() || i.name.len() > 15 {
                return Err(ConfigError::Invalid(format!(
                    "interface name {:?} must be 1 to 15 bytes",
                    i.name
                )));
            }
            for u in &i.address_pools {
                pool_ok(u, &format!("interface {}", i.name))?;
            }
            if let Some(p) = &i.prefix {
                self.pools_inside(&format!("interface {}", i.name), p, &i.address_pools)?;
            }
        }
        for l in &self.links {
            let owner = format!("link {:?}", l.name);
            if l.name.is_empty() {
                return Err(ConfigError::Invalid(
                    "a [[link]] has an empty name".to_owned(),
                ));
            }
            if seen.contains(&&l.name) {
                return Err(ConfigError::Invalid(format!(
                    "{owner}: the name is already used by another link or interface"
                )));
            }
            seen.push(&l.name);
            for u in &l.address_pools {
                pool_ok(u, &owner)?;
            }
            self.pools_inside(&owner, &l.prefix, &l.address_pools)?;
            for p in &l.pd_pools {
                check_lifetimes(p.preferred, p.valid).map_err(|e| {
                    ConfigError::Invalid(format!("{owner}: pd_pool {}: {e}", p.prefix))
                })?;
            }
        }
        let prefixes: Vec<(&String, &v6h_lease::Prefix)> = self
            .interfaces
            .iter()
            .filter_map(|i| i.prefix.as_ref().map(|p| (&i.name, p)))
            .chain(self.links.iter().map(|l| (&l.name, &l.prefix)))
            .collect();
        for (i, (a, pa)) in prefixes.iter().enumerate() {
            for (b, pb) in &prefixes[..i] {
                if pa.first() <= pb.last() && pb.first() <= pa.last() {
                    return Err(ConfigError::Invalid(format!(
                        "links {b:?} ({pb}) and {a:?} ({pa}) have overlapping prefixes, so a \
                         relay's link-address could not choose between them"
                    )));
                }
            }
        }
        let link_names = seen;
        let mut seen: Vec<&String> = Vec::new();
        for h in &self.hosts {
            if seen.contains(&&h.name) {
                return Err(ConfigError::Invalid(format!(
                    "host {:?} defined twice",
                    h.name
                )));
            }
            seen.push(&h.name);
            crate::duid::from_text(&h.duid)
                .map_err(|e| ConfigError::Invalid(format!("host {:?}: {e}", h.name)))?;
            let owner = format!("host {}", h.name);
            for a in &h.addresses {
                check_lifetimes(a.preferred, a.valid).map_err(|e| {
                    ConfigError::Invalid(format!("{owner}: address {}: {e}", a.address))
                })?;
            }
            for p in &h.prefixes {
                if p.prefix_len > 128 {
                    return Err(ConfigError::Invalid(format!(
                        "{owner}: prefix length {} exceeds 128",
                        p.prefix_len
                    )));
                }
                check_lifetimes(p.preferred, p.valid).map_err(|e| {
                    ConfigError::Invalid(format!("{owner}: prefix {}: {e}", p.prefix))
                })?;
            }
            for u in &h.address_pools {
                pool_ok(u, &owner)?;
            }
            if let Some(l) = &h.link
                && !link_names.contains(&l)
            {
                return Err(ConfigError::Invalid(format!(
                    "{owner}: link {l:?} is neither an interface block nor a [[link]]"
                )));
            }
            if let Some(k) = &h.delayed_key {
                if !self.keys.iter().any(|key| &key.name == k) {
                    return Err(ConfigError::Invalid(format!(
                        "{owner}: delayedkey {k:?} is not defined by a keyinfo block"
                    )));
                }
                not_served(&mut w, format!("{owner} delayedkey {k}"));
            }
        }
        let mut seen: Vec<&String> = Vec::new();
        for k in &self.keys {
            if seen.contains(&&k.name) {
                return Err(ConfigError::Invalid(format!(
                    "keyinfo {:?} defined twice",
                    k.name
                )));
            }
            seen.push(&k.name);
            let owner = format!("keyinfo {:?}", k.name);
            for (field, present) in [
                ("realm", k.realm.is_some()),
                ("keyid", k.keyid.is_some()),
                ("secret", k.secret.is_some()),
            ] {
                if !present {
                    return Err(ConfigError::Invalid(format!(
                        "{owner}: {field} is required"
                    )));
                }
            }
            if let Some(s) = &k.secret {
                check_base64(s).map_err(|e| ConfigError::Invalid(format!("{owner}: {e}")))?;
            }
            if let Some(e) = &k.expire {
                check_expire(e).map_err(|e| ConfigError::Invalid(format!("{owner}: {e}")))?;
            }
            not_served(&mut w, format!("{owner} (delayed authentication)"));
        }
        Ok(w)
    }

    /// Checks that every named pool lies inside the link's `prefix`.
    fn pools_inside(
        &self,
        owner: &str,
        prefix: &v6h_lease::Prefix,
        uses: &[PoolUse],
    ) -> Result<(), ConfigError> {
        for u in uses {
            if let Some(p) = self.pools.iter().find(|p| p.name == u.pool)
                && !(prefix.contains(p.start) && prefix.contains(p.end))
            {
                return Err(ConfigError::Invalid(format!(
                    "{owner}: pool {:?} ({} to {}) is not inside the link prefix {prefix}",
                    p.name, p.start, p.end
                )));
            }
        }
        Ok(())
    }

    /// The `[[link]]` named `name`, if any.
    pub fn relay_link(&self, name: &str) -> Option<&RelayLink> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The settings for interface `name`, if it has an `interface` block.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

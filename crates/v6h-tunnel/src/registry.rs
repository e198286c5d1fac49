//! The broker's configuration (`broker.toml`), the user and tunnel types, and the one set of
//! rules every registry change is checked against ([`validate`]).
//!
//! The broker's registry lives in a database ([`crate::store`]). The `[[user]]`/`[[tunnel]]`
//! TOML tables of older versions remain as the import format ([`parse_registry`],
//! [`TomlRegistry`], used by `v6home broker import`); the broker refuses a `broker.toml` that
//! still holds them ([`BrokerConfig::check_no_tables`]).
//!
//! Addressing follows SixXS: tunnel `tid` gets `<prefix48>:<tid>::/64`, PoP `::1`, client `::2`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use md5::Digest as _;
use serde::{Deserialize, Serialize};

use crate::prefix::Prefix6;

/// Smallest tunnel MTU accepted (IPv6 minimum).
pub const MTU_MIN: u16 = 1280;
/// Largest tunnel MTU accepted (as sixxsd).
pub const MTU_MAX: u16 = 1480;

/// Errors loading, validating or writing the configuration and registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML could not be parsed or did not match the schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line/column from the TOML parser.
        message: String,
    },
    /// A semantic rule was broken (MTU range, duplicate id, unknown owner, ...).
    #[error("invalid registry: {0}")]
    Invalid(String),
    /// No free tunnel index or prefix is left.
    #[error("no free tunnel index left in {0}")]
    Exhausted(Prefix6),
}

/// Administrative state of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// The tunnel may come up.
    #[default]
    Enabled,
    /// The tunnel is administratively disabled (ICMPv6 admin-prohibited, TIC `AdminState`).
    Disabled,
}

impl AdminState {
    /// The TIC spelling (`enabled` / `disabled`).
    pub fn as_str(&self) -> &'static str {
        match self {
            AdminState::Enabled => "enabled",
            AdminState::Disabled => "disabled",
        }
    }
}

/// A TIC user as stored in the TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// TIC username (e.g. `ABC1-SIXXS`).
    pub name: String,
    /// `md5hex(password)`, as TIC's MD5 challenge needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_md5: Option<String>,
    /// Plain-text password (hashed on load; kept only to print ready-made aiccu.conf files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A validated TIC user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// TIC username.
    pub name: String,
    /// `md5hex(password)`, lowercase.
    pub password_md5: String,
    /// The plain-text password when the file has it.
    pub password_plain: Option<String>,
}

/// A tunnel as stored in the TOML file (and, once validated, as used everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnel {
    /// The tunnel number: TIC `TunnelId` is `T<id>`.
    pub id: u32,
    /// The owning user's TIC name.
    pub owner: String,
    /// The point-to-point /64 (PoP `::1`, client `::2`).
    pub prefix: Prefix6,
    /// Routed subnets delegated to the client.
    #[serde(default)]
    pub subnets: Vec<Prefix6>,
    /// Tunnel MTU, 1280..=1480.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Heartbeat interval in seconds (> 0).
    #[serde(default = "default_heartbeat")]
    pub heartbeat: u32,
    /// Per-tunnel AYIYA secret (TIC `Password`), raw ASCII.
    pub password: String,
    /// Administrative state.
    #[serde(default)]
    pub admin: AdminState,
    /// Free-text name (TIC `Tunnel Name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn default_mtu() -> u16 {
    MTU_MIN
}
fn default_heartbeat() -> u32 {
    60
}

impl Tunnel {
    /// TIC tunnel id string, `T<id>`.
    pub fn tic_id(&self) -> String {
        format!("T{}", self.id)
    }
    /// The PoP's inner address (`::1`).
    pub fn pop_addr(&self) -> Ipv6Addr {
        self.prefix.host(1)
    }
    /// The client's inner address (`::2`), also its AYIYA identity.
    pub fn client_addr(&self) -> Ipv6Addr {
        self.prefix.host(2)
    }
}

/// All users and tunnels, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryData {
    /// Users by name.
    pub users: Vec<User>,
    /// Tunnels, sorted by id.
    pub tunnels: Vec<Tunnel>,
}

impl RegistryData {
    /// Finds a user by name.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
    /// The tunnels owned by `user`.
    pub fn tunnels_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Tunnel> + 'a {
        self.tunnels.iter().filter(move |t| t.owner == user)
    }
}

/// A request to create a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTunnel {
    /// Owner (must exist).
    pub owner: String,
    /// Routed subnets.
    pub subnets: Vec<Prefix6>,
    /// The /48 to allocate the tunnel /64 from.
    pub from: Prefix6,
    /// MTU.
    pub mtu: u16,
    /// Heartbeat interval.
    pub heartbeat: u32,
    /// Tunnel secret; `None` generates 32 random hex characters.
    pub password: Option<String>,
}

/// A read-only source of users and tunnels (the old TOML tables, for import).
pub trait Registry: Send + Sync {
    /// Loads and validates everything.
    fn load(&self) -> Result<RegistryData, RegistryError>;
}

/// `md5hex(s)`: 32 lowercase hex characters.
pub fn md5_hex(s: &str) -> String {
    let d = md5::Md5::digest(s.as_bytes());
    let mut out = String::with_capacity(32);
    for b in d.iter() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Validates raw entries into [`RegistryData`].
pub fn validate(users: &[UserEntry], tunnels: &[Tunnel]) -> Result<RegistryData, RegistryError> {
    let inv = |m: String| Err(RegistryError::Invalid(m));
    let mut out = RegistryData::default();
    let mut names = HashSet::new();
    for u in users {
        if u.name.is_empty() || u.name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return inv(format!("user name {:?} is empty or has whitespace", u.name));
        }
        if !names.insert(u.name.clone()) {
            return inv(format!("duplicate user {:?}", u.name));
        }
        let md5 = match (&u.password_md5, &u.password) {
            (Some(h), _) => {
                let h = h.to_ascii_lowercase();
                if !is_md5_hex(&h) {
                    return inv(format!(
                        "user {:?}: password_md5 must be 32 hex digits",
                        u.name
                    ));
                }
                h
            }
            (None, Some(p)) => md5_hex(p),
            (None, None) => return inv(format!("user {:?}: no password or password_md5", u.name)),
        };
        out.users.push(User {
            name: u.name.clone(),
            password_md5: md5,
            password_plain: u.password.clone(),
        });
    }
    let mut ids = HashSet::new();
    let mut prefixes: Vec<(Prefix6, u32)> = Vec::new();
    for t in tunnels {
        let tid = t.tic_id();
        if !ids.insert(t.id) || t.id == 0 {
            return inv(format!("{tid}: duplicate or zero tunnel id"));
        }
        if !names.contains(&t.owner) {
            return inv(format!("{tid}: unknown owner {:?}", t.owner));
        }
        if t.prefix.len() != 64 {
            return inv(format!("{tid}: tunnel prefix {} must be a /64", t.prefix));
        }
        if !(MTU_MIN..=MTU_MAX).contains(&t.mtu) {
            return inv(format!(
                "{tid}: mtu {} outside {MTU_MIN}..={MTU_MAX}",
                t.mtu
            ));
        }
        if t.heartbeat == 0 {
            return inv(format!("{tid}: heartbeat must be > 0"));
        }
        if t.password.is_empty() || !t.password.bytes().all(|b| b.is_ascii_graphic()) {
            return inv(format!(
                "{tid}: password must be non-empty printable ASCII without spaces"
            ));
        }
        if let Some(n) = &t.name
            && n.chars().any(|c| c.is_control())
        {
            return inv(format!("{tid}: name has control characters"));
        }
        for p in std::iter::once(&t.prefix).chain(t.subnets.iter()) {
            if p.len() < 16 {
                return inv(format!("{tid}: prefix {p} is shorter than /16"));
            }
            if let Some((q, other)) = prefixes.iter().find(|(q, _)| q.overlaps(p)) {
                return inv(format!("{tid}: prefix {p} overlaps {q} of T{other}"));
            }
            prefixes.push((*p, t.id));
        }
        out.tunnels.push(t.clone());
    }
    out.tunnels.sort_by_key(|t| t.id);
    Ok(out)
}

/// The TOML file layout of the registry tables.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    #[serde(default)]
    user: Vec<UserEntry>,
    #[serde(default)]
    tunnel: Vec<Tunnel>,
}

/// The default registry: `[[user]]` and `[[tunnel]]` tables in a TOML file.
#[derive(Debug, Clone)]
pub struct TomlRegistry {
    path: PathBuf,
}

impl TomlRegistry {
    /// A registry stored in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TomlRegistry { path: path.into() }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_table(&self) -> Result<toml::Table, RegistryError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(RegistryError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        text.parse::<toml::Table>()
            .map_err(|e| RegistryError::Parse {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    fn entries(&self, table: &toml::Table) -> Result<RegistryFile, RegistryError> {
        registry_entries(table, &self.path)
    }
}

fn registry_entries(table: &toml::Table, path: &Path) -> Result<RegistryFile, RegistryError> {
    let mut sub = toml::Table::new();
    for k in ["user", "tunnel"] {
        if let Some(v) = table.get(k) {
            sub.insert(k.to_string(), v.clone());
        }
    }
    RegistryFile::deserialize(toml::Value::Table(sub)).map_err(|e| RegistryError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses the registry tables (`[[user]]`, `[[tunnel]]`) out of TOML text and validates them,
/// as [`TomlRegistry`] does with its file; other keys are ignored. `path` names the text in
/// errors.
pub fn parse_registry(text: &str, path: &Path) -> Result<RegistryData, RegistryError> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| RegistryError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let e = registry_entries(&table, path)?;
    validate(&e.user, &e.tunnel)
}

/// The registry tables of `data` as TOML text (`[[user]]` with `password_md5`, `[[tunnel]]`),
/// which [`parse_registry`] reads back to the same data (plain-text passwords aside).
pub fn registry_to_toml(data: &RegistryData) -> Result<String, RegistryError> {
    let file = RegistryFile {
        user: data
            .users
            .iter()
            .map(|u| UserEntry {
                name: u.name.clone(),
                password_md5: Some(u.password_md5.clone()),
                password: None,
            })
            .collect(),
        tunnel: data.tunnels.clone(),
    };
    toml::to_string(&file).map_err(|e| RegistryError::Parse {
        path: PathBuf::from("<registry>"),
        message: e.to_string(),
    })
}

/// Picks the next tunnel id and the first free `<prefix48>:<tid>::/64` (tid 1..=0x7fff).
pub fn allocate(data: &RegistryData, from: Prefix6) -> Result<(u32, Prefix6), RegistryError> {
    if from.len() > 48 {
        return Err(RegistryError::Invalid(format!(
            "tunnel prefix {from} must be /48 or shorter"
        )));
    }
    let id = data
        .tunnels
        .iter()
        .map(|t| t.id)
        .max()
        .unwrap_or(0)
        .checked_add(1);
    let id = id.ok_or(RegistryError::Exhausted(from))?;
    let used: HashSet<Prefix6> = data.tunnels.iter().map(|t| t.prefix).collect();
    for tid in 1u16..=0x7fff {
        let addr = Ipv6Addr::from(u128::from(from.addr()) | (u128::from(tid) << 64));
        let p = Prefix6::new(addr, 64).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        if !used.contains(&p) {
            return Ok((id, p));
        }
    }
    Err(RegistryError::Exhausted(from))
}

impl Registry for TomlRegistry {
    fn load(&self) -> Result<RegistryData, RegistryError> {
        let t = self.read_table()?;
        let e = self.entries(&t)?;
        validate(&e.user, &e.tunnel)
    }
}

/// `broker.toml`: the PoP's own settings (plus, optionally, the registry tables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// PoP name (TIC `POP Id`, 4th field of `tunnel list`).
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// TIC listen address.
    #[serde(default = "default_tic_listen")]
    pub tic_listen: SocketAddr,
    /// AYIYA UDP listen address (bind the exact `IPv4 POP` so replies come from it).
    #[serde(default = "default_ayiya_listen")]
    pub ayiya_listen: SocketAddr,
    /// The PoP's IPv4 address given to clients as TIC `IPv4 POP`.
    pub ipv4_pop: Ipv4Addr,
    /// Host name or address clients use for TIC (`server` in aiccu.conf); default `ipv4_pop`.
    #[serde(default)]
    pub tic_server: Option<String>,
    /// Name of the PoP's TUN device.
    #[serde(default = "default_tun")]
    pub tun_name: String,
    /// The /48 (or shorter) from which tunnel /64s are allocated.
    pub tunnel_prefix: Prefix6,
    /// Directory for the status file (`status.json`).
    #[serde(default = "default_run_dir")]
    pub run_dir: PathBuf,
    /// Directory of the embedded SQLite registry (`registry.db`, mode 0600; the directory is
    /// created 0700).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where the registry lives: `sqlite:///path/registry.db` or `postgres://…`; default the
    /// SQLite file in `state_dir`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Obsolete: a separate TOML registry file. The registry is now a database; a config that
    /// sets this is refused with the import command to run.
    #[serde(default)]
    pub registry: Option<PathBuf>,
    /// Default MTU for new tunnels.
    #[serde(default = "default_mtu")]
    pub default_mtu: u16,
    /// Default heartbeat interval for new tunnels.
    #[serde(default = "default_heartbeat")]
    pub default_heartbeat: u32,
    /// Seconds without a valid packet before a tunnel goes down (≥ 120 recommended).
    #[serde(default = "default_liveness")]
    pub liveness_timeout: u64,
    /// TIC server limits: connections and failed-login back-off (`[tic]`).
    #[serde(default)]
    pub tic: TicSettings,
    /// Obsolete registry table: users (refused at start; see [`BrokerConfig::check_no_tables`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<UserEntry>,
    /// Obsolete registry table: tunnels (refused at start, like `user`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunnel: Vec<Tunnel>,
}

/// `[tic]` in `broker.toml`: limits of the TIC server, which anyone reaching its port can use.
///
/// ```toml
/// [tic]
/// max_connections = 256            # all at once; when full, the oldest not-logged-in one goes
/// max_connections_per_source = 8   # per IPv4 address / IPv6 /64
/// idle_timeout = 60                # seconds without a complete command
/// session_timeout = 300            # seconds per connection in all
/// login_free_failures = 3          # failed logins per (user, source) without delay
/// login_backoff_base = 2           # then 2, 4, 8, ... seconds
/// login_backoff_max = 900          # up to 15 minutes
/// login_forget_after = 3600        # a pair is forgotten 1 h after its last failure
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicSettings {
    /// Most connections served at once; when full, the oldest connection that has not logged
    /// in is closed to make room.
    pub max_connections: usize,
    /// Most connections at once from one IPv4 address or IPv6 /64.
    pub max_connections_per_source: usize,
    /// Seconds a connection may go without a complete command (empty lines do not count).
    pub idle_timeout: u64,
    /// Seconds a connection may last in all (a real login takes well under one).
    pub session_timeout: u64,
    /// Failed logins per (user, source) allowed without delay.
    pub login_free_failures: u32,
    /// Seconds of delay after the first further failure; doubled by each one after it.
    pub login_backoff_base: u64,
    /// Longest delay in seconds.
    pub login_backoff_max: u64,
    /// Seconds after its last failure at which a (user, source) pair is forgotten.
    pub login_forget_after: u64,
}

impl Default for TicSettings {
    fn default() -> Self {
        TicSettings {
            max_connections: 256,
            max_connections_per_source: 8,
            idle_timeout: 60,
            session_timeout: 300,
            login_free_failures: 3,
            login_backoff_base: 2,
            login_backoff_max: 900,
            login_forget_after: 3600,
        }
    }
}

impl TicSettings {
    fn validate(&self) -> Result<(), RegistryError> {
        let bad = |m: &str| Err(RegistryError::Invalid(format!("[tic] {m}")));
        if self.max_connections == 0 || self.max_connections_per_source == 0 {
            return bad("max_connections and max_connections_per_source must be > 0");
        }
        if self.idle_timeout == 0 || self.session_timeout == 0 {
            return bad("idle_timeout and session_timeout must be > 0");
        }
        if self.login_backoff_base == 0 || self.login_backoff_max < self.login_backoff_base {
            return bad("login_backoff_base must be > 0 and <= login_backoff_max");
        }
        if self.login_forget_after == 0 {
            return bad("login_forget_after must be > 0");
        }
        Ok(())
    }
}

fn default_server_name() -> String {
    "pop01".into()
}
fn default_tic_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 3874))
}
fn default_ayiya_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5072))
}
fn default_tun() -> String {
    "ayiya0".into()
}
fn default_run_dir() -> PathBuf {
    PathBuf::from("/run/v6home-broker")
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/v6home/broker")
}
fn default_liveness() -> u64 {
    120
}

impl BrokerConfig {
    /// Reads and validates `broker.toml` (settings only; use [`BrokerConfig::registry`]).
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, RegistryError> {
        let c: BrokerConfig = toml::from_str(text).map_err(|e| RegistryError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if c.tun_name.is_empty() || c.tun_name.len() > 15 {
            return Err(RegistryError::Invalid(format!(
                "tun_name {:?} must be 1..=15 characters",
                c.tun_name
            )));
        }
        if c.tunnel_prefix.len() > 48 {
            return Err(RegistryError::Invalid(format!(
                "tunnel_prefix {} must be /48 or shorter",
                c.tunnel_prefix
            )));
        }
        if !(MTU_MIN..=MTU_MAX).contains(&c.default_mtu) || c.default_heartbeat == 0 {
            return Err(RegistryError::Invalid(
                "default_mtu must be 1280..=1480 and default_heartbeat > 0".into(),
            ));
        }
        if c.liveness_timeout == 0 {
            return Err(RegistryError::Invalid(
                "liveness_timeout must be > 0".into(),
            ));
        }
        c.tic.validate()?;
        if c.server_name.contains(char::is_whitespace) || c.server_name.is_empty() {
            return Err(RegistryError::Invalid(
                "server_name must be one word".into(),
            ));
        }
        Ok(c)
    }

    /// The registry for this config, read from `config_path` or the `registry` file.
    pub fn registry(&self, config_path: &Path) -> TomlRegistry {
        match &self.registry {
            Some(p) if p.is_absolute() => TomlRegistry::new(p.clone()),
            Some(p) => TomlRegistry::new(
                config_path
                    .parent()
                    .unwrap_or_else(|| Path::new("."))
                    .join(p),
            ),
            None => TomlRegistry::new(config_path),
        }
    }

    /// The registry database URL: `database_url`, or the SQLite file `registry.db` in
    /// `state_dir`.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.state_dir.join("registry.db").display()))
    }

    /// Refuses a config that still holds registry tables (`[[user]]`, `[[tunnel]]`) or names
    /// a TOML registry file: the registry is a database now, and those tables hold
    /// password-equivalent secrets. The error names the import command to run.
    pub fn check_no_tables(&self, config_path: &Path) -> Result<(), RegistryError> {
        let source = match &self.registry {
            Some(_) => self.registry(config_path).path().to_path_buf(),
            None if self.user.is_empty() && self.tunnel.is_empty() => return Ok(()),
            None => config_path.to_path_buf(),
        };
        Err(RegistryError::Invalid(format!(
            "{}: users and tunnels are no longer read from TOML (`[[user]]`, `[[tunnel]]`, \
             `registry = ...`); the registry is the database {}. Import them once with \
             `v6home broker --config {} import {}`, then delete those tables (and the \
             `registry` key) from the TOML: they hold password-equivalent secrets",
            config_path.display(),
            self.database_url(),
            config_path.display(),
            source.display()
        )))
    }

    /// The TIC server name to put in client configs.
    pub fn tic_server_name(&self) -> String {
        self.tic_server
            .clone()
            .unwrap_or_else(|| self.ipv4_pop.to_string())
    }
}

/// Renders a ready-to-use aiccu.conf for `tunnel` (owner `user`, TIC at `server`).
pub fn render_aiccu_conf(user: &User, tunnel: &Tunnel, server: &str) -> String {
    let password = user
        .password_plain
        .clone()
        .unwrap_or_else(|| "CHANGE-ME-your-TIC-password".into());
    format!(
        "# aiccu.conf for {tid} ({prefix}) generated by `v6home broker tunnel add`\n\
         username {user}\n\
         password {password}\n\
         server {server}\n\
         ipv6_interface sixxs\n\
         tunnel_id {tid}\n\
         verbose false\n\
         daemonize false\n\
         requiretls false\n\
         defaultroute true\n\
         makebeats true\n",
        tid = tunnel.tic_id(),
        prefix = tunnel.prefix,
        user = user.name,
    )
}

/// Renders the `[tunnel]` section of a gateway.toml for `tunnel` (owner `user`, TIC at
/// `server`), with only the keys the gateway reads.
pub fn render_gateway_toml(user: &User, tunnel: &Tunnel, server: &str) -> String {
    let password = user
        .password_plain
        .clone()
        .unwrap_or_else(|| "CHANGE-ME-your-TIC-password".into());
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "# gateway.toml [tunnel] for {tid} ({prefix}) generated by `v6home broker tunnel add`\n\
         [tunnel]\n\
         server = {server}\n\
         username = {user}\n\
         password = {password}\n\
         tunnel_id = {tid_q}\n\
         interface = \"sixxs\"\n",
        tid = tunnel.tic_id(),
        tid_q = q(&tunnel.tic_id()),
        prefix = tunnel.prefix,
        server = q(server),
        user = q(&user.name),
        password = q(&password),
    )
}

/// Index of tunnels by owner, for TIC lookups.
pub fn by_owner(data: &RegistryData) -> HashMap<&str, Vec<&Tunnel>> {
    let mut m: HashMap<&str, Vec<&Tunnel>> = HashMap::new();
    for t in &data.tunnels {
        m.entry(t.owner.as_str()).or_default().push(t);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserEntry {
        UserEntry {
            name: name.into(),
            password_md5: None,
            password: Some("userpass".into()),
        }
    }

    fn tunnel(id: u32, prefix: &str) -> Tunnel {
        Tunnel {
            id,
            owner: "lab".into(),
            prefix: prefix.parse().unwrap(),
            subnets: vec![],
            mtu: 1280,
            heartbeat: 60,
            password: "0123456789abcdef0123456789abcdef".into(),
            admin: AdminState::Enabled,
            name: None,
        }
    }

    #[test]
    fn plaintext_password_hashed_on_load() {
        let d = validate(&[user("lab")], &[]).unwrap();
        // Spec §10.3: md5hex("userpass").
        assert_eq!(d.users[0].password_md5, "63e780c3f321d13109c71bf81805476e");
    }

    #[test]
    fn validation_rules() {
        let u = [user("lab")];
        let mut t = tunnel(1, "2001:db8:2ff:1::/64");
        t.mtu = 1279;
        assert!(validate(&u, &[t.clone()]).is_err());
        t.mtu = 1481;
        assert!(validate(&u, &[t.clone()]).is_err());
        t.mtu = 1480;
        assert!(validate(&u, &[t.clone()]).is_ok());
        t.heartbeat = 0;
        assert!(validate(&u, &[t.clone()]).is_err());
        let mut t = tunnel(1, "2001:db8:2ff:1::/64");
        t.owner = "nobody".into();
        assert!(validate(&u, &[t]).is_err());
        let t1 = tunnel(1, "2001:db8:2ff:1::/64");
        let t2 = tunnel(1, "2001:db8:2ff:2::/64");
        assert!(validate(&u, &[t1.clone(), t2]).is_err(), "duplicate id");
        let t3 = tunnel(2, "2001:db8:2ff:1::/64");
        assert!(validate(&u, &[t1.clone(), t3]).is_err(), "duplicate prefix");
        let mut t4 = tunnel(2, "2001:db8:2ff:2::/64");
        t4.subnets = vec!["2001:db8:2ff::/48".parse().unwrap()];
        assert!(validate(&u, &[t1.clone(), t4]).is_err(), "overlap");
        let mut t5 = tunnel(1, "2001:db8:2ff:1::/64");
        t5.password = "has space".into();
        assert!(validate(&u, &[t5]).is_err());
        let bad = UserEntry {
            name: "x".into(),
            password_md5: Some("nothex".into()),
            password: None,
        };
        assert!(validate(&[bad], &[]).is_err());
    }

    #[test]
    fn allocation_and_addresses_follow_sixxs() {
        let d = validate(&[user("lab")], &[]).unwrap();
        let from: Prefix6 = "2001:db8:2ff::/48".parse().unwrap();
        let (id, p) = allocate(&d, from).unwrap();
        assert_eq!((id, p.to_string().as_str()), (1, "2001:db8:2ff:1::/64"));
        let t1 = tunnel(1, "2001:db8:2ff:1::/64");
        assert_eq!(
            t1.client_addr(),
            "2001:db8:2ff:1::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            t1.pop_addr(),
            "2001:db8:2ff:1::1".parse::<Ipv6Addr>().unwrap()
        );
        let d = validate(&[user("lab")], std::slice::from_ref(&t1)).unwrap();
        let (id, p) = allocate(&d, from).unwrap();
        assert_eq!((id, p.to_string().as_str()), (2, "2001:db8:2ff:2::/64"));
        assert!(allocate(&d, "2001:db8::/56".parse().unwrap()).is_err());
        let conf = render_aiccu_conf(d.user("lab").unwrap(), &t1, "198.51.100.1");
        assert!(conf.contains("username lab\npassword userpass\n"));
        assert!(conf.contains("tunnel_id T1\n"));
    }

    #[test]
    fn registry_tables_in_broker_toml_are_refused_with_the_import_command() {
        let p = Path::new("/etc/v6home/broker.toml");
        let base = "ipv4_pop = \"198.51.100.1\"\ntunnel_prefix = \"2001:db8:2ff::/48\"\n";
        let c = BrokerConfig::parse(
            &format!("{base}[[user]]\nname = \"lab\"\npassword = \"labpass\"\n"),
            p,
        )
        .unwrap();
        let e = c.check_no_tables(p).unwrap_err().to_string();
        assert!(
            e.contains(
                "v6home broker --config /etc/v6home/broker.toml import /etc/v6home/broker.toml"
            ),
            "{e}"
        );
        assert!(e.contains("password-equivalent"), "{e}");
        let c = BrokerConfig::parse(&format!("{base}registry = \"reg.toml\"\n"), p).unwrap();
        let e = c.check_no_tables(p).unwrap_err().to_string();
        assert!(e.contains("import /etc/v6home/reg.toml"), "{e}");
        let c = BrokerConfig::parse(
            &format!("{base}database_url = \"postgres://v6home@/v6home?host=/run/postgresql\"\n"),
            p,
        )
        .unwrap();
        assert!(c.check_no_tables(p).is_ok());
        assert!(c.database_url().starts_with("postgres://"));
    }

    #[test]
    fn generated_client_configs_hold_only_used_keys() {
        let d = validate(&[user("lab")], &[tunnel(1, "2001:db8:2ff:1::/64")]).unwrap();
        let conf = render_aiccu_conf(&d.users[0], &d.tunnels[0], "198.51.100.1");
        let (_, warnings) = v6h_ayiya::aiccu_conf::AiccuConfig::parse("aiccu.conf", &conf).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!conf.contains("protocol") && !conf.contains("automatic"));
        let g = render_gateway_toml(&d.users[0], &d.tunnels[0], "198.51.100.1");
        let t: toml::Table = g.parse().unwrap();
        let keys: Vec<&String> = t["tunnel"].as_table().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
        assert_eq!(t["tunnel"]["tunnel_id"].as_str(), Some("T1"));
        assert_eq!(t["tunnel"]["password"].as_str(), Some("userpass"));
    }

    #[test]
    fn config_errors_are_clear() {
        let p = Path::new("broker.toml");
        let e = BrokerConfig::parse("ipv4_pop = \"x\"\n", p).unwrap_err();
        assert!(e.to_string().starts_with("broker.toml:"), "{e}");
        let e = BrokerConfig::parse(
            "ipv4_pop = \"198.51.100.1\"\ntunnel_prefix = \"2001:db8:2ff::/48\"\nbogus = 1\n",
            p,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = BrokerConfig::parse(
            "ipv4_pop = \"198.51.100.1\"\ntunnel_prefix = \"2001:db8:2ff::/48\"\ntun_name = \"abcdefghijklmnop\"\n",
            p,
        )
        .unwrap_err();
        assert!(matches!(e, RegistryError::Invalid(_)));
    }

    #[test]
    fn tic_limits_have_defaults_and_are_checked() {
        let p = Path::new("broker.toml");
        let base = "ipv4_pop = \"198.51.100.1\"\ntunnel_prefix = \"2001:db8:2ff::/48\"\n";
        let c = BrokerConfig::parse(base, p).unwrap();
        assert_eq!(c.tic, TicSettings::default());
        assert_eq!(c.tic.max_connections_per_source, 8);
        let c = BrokerConfig::parse(
            &format!("{base}[tic]\nmax_connections_per_source = 2\nlogin_backoff_max = 60\n"),
            p,
        )
        .unwrap();
        assert_eq!(
            (
                c.tic.max_connections_per_source,
                c.tic.login_backoff_max,
                c.tic.idle_timeout
            ),
            (2, 60, 60)
        );
        for bad in [
            "max_connections = 0",
            "login_backoff_base = 0",
            "login_backoff_max = 1\nlogin_backoff_base = 2",
            "idle_timeout = 0",
        ] {
            let e = BrokerConfig::parse(&format!("{base}[tic]\n{bad}\n"), p).unwrap_err();
            assert!(e.to_string().contains("[tic]"), "{bad}: {e}");
        }
        let e = BrokerConfig::parse(&format!("{base}[tic]\nmax_conections = 3\n"), p).unwrap_err();
        assert!(e.to_string().contains("max_conections"), "{e}");
    }

    #[test]
    fn registry_text_round_trips() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab/registry.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        let data = parse_registry(&text, &p).unwrap();
        let again = parse_registry(&registry_to_toml(&data).unwrap(), &p).unwrap();
        assert_eq!(again.tunnels, data.tunnels);
        assert_eq!(again.users[0].password_md5, data.users[0].password_md5);
        let e = parse_registry("[[tunnel]]\nid = \"x\"\n", Path::new("r.toml")).unwrap_err();
        assert!(e.to_string().starts_with("r.toml:"), "{e}");
    }

    #[test]
    fn lab_example_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab/broker.toml");
        let cfg = BrokerConfig::load(&p).unwrap();
        assert_eq!(cfg.ipv4_pop, Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(cfg.tic_listen.port(), 3874);
        assert_eq!(cfg.ayiya_listen.port(), 5072);
        cfg.check_no_tables(&p).unwrap();
        assert_eq!(
            cfg.database_url(),
            "sqlite:///var/lib/v6home/broker/registry.db"
        );
        let r = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab/registry.toml");
        let data = TomlRegistry::new(&r).load().unwrap();
        let t = &data.tunnels[0];
        assert_eq!((t.tic_id().as_str(), t.mtu), ("T1", 1280));
        assert_eq!(t.prefix.to_string(), "2001:db8:2ff:1::/64");
        assert_eq!(t.subnets[0].to_string(), "2001:db8:1234::/48");
        assert_eq!(data.users[0].password_md5, md5_hex("labpass"));
    }
}

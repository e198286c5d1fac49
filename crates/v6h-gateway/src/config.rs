//! `gateway.toml`: one file for the whole home router.
//!
//! Each part is either inline or points at the file a user already has (`aiccu.conf`,
//! `radvd.conf`, `dhcp6s.conf`), so migrating is pointing at those files. Inline sections are
//! turned into the same native syntax and parsed by the same parsers as the files, so there is
//! one implementation of every rule.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

/// Errors in `gateway.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown key.
    #[error("{path}:{line}:{col}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// A section is inconsistent, or a value cannot be used.
    #[error("{path}:{line}:{col}: [{section}] {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line of the offending value (or of the section's name).
        line: usize,
        /// 1-based column.
        col: usize,
        /// The section.
        section: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The tunnel to the broker.
    pub tunnel: TunnelSection,
    /// The LAN side.
    pub lan: LanSection,
    /// Router advertisements.
    #[serde(default)]
    pub ra: RaSection,
    /// Stateless DHCPv6.
    #[serde(default)]
    pub dhcp6: Dhcp6Section,
    /// IPv6 forwarding.
    #[serde(default)]
    pub forwarding: ForwardingSection,
}

/// `[tunnel]`: an existing aiccu.conf, or the same keys inline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelSection {
    /// Path of an aiccu.conf (relative to gateway.toml).
    pub aiccu_conf: Option<PathBuf>,
    /// TIC server (IPv4 address or name).
    pub server: Option<String>,
    /// TIC user name.
    pub username: Option<String>,
    /// TIC account password.
    pub password: Option<String>,
    /// Tunnel id, e.g. `T1`.
    pub tunnel_id: Option<String>,
    /// Tunnel interface name (default `sixxs`).
    pub interface: Option<String>,
}

/// `[lan]`: the interface the home is on, and its prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanSection {
    /// The LAN interface.
    pub interface: String,
    /// The LAN /64, e.g. `2001:db8:1234::/64`. Without it, the first /64 of the tunnel's
    /// routed subnet (TIC `Routed Prefixes`) is used.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The router's own interface identifier on the LAN prefix (default `::1`).
    #[serde(default = "default_router_iid")]
    pub router_address: Ipv6Addr,
}

fn default_router_iid() -> Ipv6Addr {
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
}

/// `[ra]`: an existing radvd.conf, or a few inline settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaSection {
    /// Path of a radvd.conf (relative to gateway.toml).
    pub radvd_conf: Option<PathBuf>,
    /// DNS servers to advertise (RDNSS).
    #[serde(default)]
    pub rdnss: Vec<Ipv6Addr>,
    /// DNS search domains (DNSSL).
    #[serde(default)]
    pub dnssl: Vec<String>,
    /// Router lifetime in seconds while the tunnel is up (default 1800, as radvd).
    pub router_lifetime: Option<u32>,
    /// Set the O flag (clients ask DHCPv6 for DNS). Default: on when `[dhcp6]` serves.
    pub other_config: Option<bool>,
    /// MaxRtrAdvInterval in seconds (default 600, as radvd).
    pub max_interval: Option<u32>,
}

/// `[dhcp6]`: an existing dhcp6s.conf, or DNS servers inline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp6Section {
    /// Path of a dhcp6s.conf (relative to gateway.toml).
    pub dhcp6s_conf: Option<PathBuf>,
    /// DNS servers to hand out.
    #[serde(default)]
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain search list.
    #[serde(default)]
    pub domain_list: Vec<String>,
    /// Serve DHCPv6 at all (default true).
    pub enabled: Option<bool>,
}

/// `[forwarding]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardingSection {
    /// Also write a sysctl.d drop-in so forwarding survives a reboot.
    #[serde(default)]
    pub persist: bool,
}

/// A component's configuration: a file to read, or text generated from inline settings, in
/// the component's native syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Read this file.
    File(PathBuf),
    /// Parse this text (named `gateway.toml [section]` in errors).
    Inline(String),
}

impl GatewayConfig {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: name.clone(),
            source,
        })?;
        let text = decode_utf8(&name, bytes)?;
        let mut config = Self::parse(&name, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            config.tunnel.aiccu_conf.as_mut(),
            config.ra.radvd_conf.as_mut(),
            config.dhcp6.dhcp6s_conf.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parses and checks the text of a gateway.toml named `path`.
    pub fn parse(path: &str, text: &str) -> Result<GatewayConfig, ConfigError> {
        let config: GatewayConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Syntax {
                path: path.to_string(),
                line,
                col,
                message: e.message().to_string(),
            }
        })?;
        config.validate(path, text)?;
        Ok(config)
    }

    fn validate(&self, path: &str, text: &str) -> Result<(), ConfigError> {
        let invalid_at = |section, key: Option<&str>, message: String| {
            let (line, col) = position(text, section, key);
            ConfigError::Invalid {
                path: path.to_string(),
                line,
                col,
                section,
                message,
            }
        };
        let invalid = |section, message: String| invalid_at(section, None, message);
        let t = &self.tunnel;
        let inline = t.server.is_some() || t.username.is_some() || t.password.is_some();
        match (&t.aiccu_conf, inline) {
            (Some(_), true) => {
                return Err(invalid_at(
                    "tunnel",
                Some("aiccu_conf"),
                    "give either aiccu_conf or the inline keys (server, username, password), not both".into(),
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "tunnel",
                    "give aiccu_conf = \"/etc/aiccu.conf\", or server, username and password"
                        .into(),
                ));
            }
            (None, true) if t.server.is_none() || t.username.is_none() || t.password.is_none() => {
                return Err(invalid(
                    "tunnel",
                    "inline tunnels need server, username and password".into(),
                ));
            }
            _ => {}
        }
        if let Some(lan_prefix) = &self.lan.prefix {
            check_lan_prefix(lan_prefix)
                .map_err(|message| invalid_at("lan", Some("prefix"), message))?;
        }
        if self.ra.radvd_conf.is_some()
            && (!self.ra.rdnss.is_empty()
                || !self.ra.dnssl.is_empty()
                || self.ra.router_lifetime.is_some()
                || self.ra.max_interval.is_some()
                || self.ra.other_config.is_some())
        {
            return Err(invalid_at(
                "ra",
                Some("radvd_conf"),
                "give either radvd_conf or inline settings, not both".into(),
            ));
        }
        if let Some(l) = self.ra.router_lifetime
            && l > 9000
        {
            return Err(invalid_at(
                "ra",
                Some("router_lifetime"),
                format!("router_lifetime {l} is above 9000 s (RFC 4861)"),
            ));
        }
        if let Some(m) = self.ra.max_interval
            && !(4..=1800).contains(&m)
        {
            return Err(invalid_at(
                "ra",
                Some("max_interval"),
                format!("max_interval {m} is outside 4..1800 s (RFC 4861)"),
            ));
        }
        if self.dhcp6.dhcp6s_conf.is_some()
            && (!self.dhcp6.dns_servers.is_empty() || !self.dhcp6.domain_list.is_empty())
        {
            return Err(invalid_at(
                "dhcp6",
                Some("dhcp6s_conf"),
                "give either dhcp6s_conf or inline settings, not both".into(),
            ));
        }
        // Inline values are pasted into aiccu.conf, radvd.conf and dhcp6s.conf text: a line
        // break would start a new statement there (e.g. `setupscript`), so refuse it here.
        for (key, value) in [
            ("server", &t.server),
            ("username", &t.username),
            ("password", &t.password),
            ("tunnel_id", &t.tunnel_id),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.chars().any(char::is_control))
            {
                return Err(invalid_at(
                    "tunnel",
                    Some(key),
                    format!(
                        "{key} must be non-empty and must not contain control characters or line breaks"
                    ),
                ));
            }
        }
        for (section, name) in [
            ("tunnel", t.interface.as_deref()),
            ("lan", Some(self.lan.interface.as_str())),
        ] {
            if let Some(name) = name
                && !is_interface_name(name)
            {
                return Err(invalid_at(
                    section,
                    Some("interface"),
                    format!(
                        "interface {name:?} is not an interface name (1 to 15 letters, digits, `.`, `-`, `_` or `@`)"
                    ),
                ));
            }
        }
        for (section, key, names) in [
            ("ra", "dnssl", &self.ra.dnssl),
            ("dhcp6", "domain_list", &self.dhcp6.domain_list),
        ] {
            if let Some(bad) = names.iter().find(|n| !is_domain_name(n)) {
                return Err(invalid_at(
                    section,
                    Some(key),
                    format!("{bad:?} in {key} is not a domain name like home.example"),
                ));
            }
        }
        Ok(())
    }

    /// Fills in the LAN prefix from the tunnel's routed subnets when `[lan] prefix` is not set:
    /// the first /64 of the first routed prefix of length 64 or shorter.
    pub fn resolve_lan_prefix(&mut self, routed: &[(Ipv6Addr, u8)]) -> Result<String, String> {
        if let Some(p) = &self.lan.prefix {
            return Ok(p.clone());
        }
        let (addr, _) = routed.iter().find(|(_, len)| *len <= 64).ok_or_else(|| {
            "[lan] has no prefix and the tunnel has no routed subnet of /64 or shorter: \
                 set `prefix` in [lan]"
                .to_string()
        })?;
        let first = Ipv6Addr::from(u128::from(*addr) & !((1u128 << 64) - 1));
        let p = format!("{first}/64");
        check_lan_prefix(&p)?;
        self.lan.prefix = Some(p.clone());
        Ok(p)
    }

    /// The LAN prefix and the router's own address on it (`::` until the prefix is known).
    pub fn lan_address(&self) -> (Ipv6Addr, Ipv6Addr) {
        let (prefix, _) = self
            .lan
            .prefix
            .as_deref()
            .and_then(parse_prefix)
            .unwrap_or((Ipv6Addr::UNSPECIFIED, 64));
        let iid = u128::from(self.lan.router_address) & ((1u128 << 64) - 1);
        (prefix, Ipv6Addr::from(u128::from(prefix) | iid))
    }

    /// The tunnel's aiccu.conf: the file, or one generated from the inline keys.
    pub fn tunnel_source(&self) -> Source {
        let t = &self.tunnel;
        if let Some(p) = &t.aiccu_conf {
            return Source::File(p.clone());
        }
        let mut text = String::from("# generated from gateway.toml [tunnel]\n");
        let mut kv = |k: &str, v: &str| text.push_str(&format!("{k} {}\n", aiccu_value(v)));
        kv("server", t.server.as_deref().unwrap_or_default());
        kv("username", t.username.as_deref().unwrap_or_default());
        kv("password", t.password.as_deref().unwrap_or_default());
        kv("ipv6_interface", t.interface.as_deref().unwrap_or("sixxs"));
        if let Some(id) = &t.tunnel_id {
            kv("tunnel_id", id);
        }
        kv("defaultroute", "true");
        kv("daemonize", "false");
        Source::Inline(text)
    }

    /// Whether DHCPv6 is served.
    pub fn dhcp6_enabled(&self) -> bool {
        self.dhcp6.enabled.unwrap_or(true)
    }

    /// The RA configuration: the radvd.conf, or one generated from the inline settings.
    pub fn ra_source(&self) -> Source {
        if let Some(p) = &self.ra.radvd_conf {
            return Source::File(p.clone());
        }
        let ra = &self.ra;
        let other = ra.other_config.unwrap_or(self.dhcp6_enabled());
        let mut text = format!(
            "# generated from gateway.toml [ra]\ninterface {} {{\n    AdvSendAdvert on;\n",
            self.lan.interface
        );
        if let Some(m) = ra.max_interval {
            text.push_str(&format!("    MaxRtrAdvInterval {m};\n"));
        }
        if let Some(l) = ra.router_lifetime {
            text.push_str(&format!("    AdvDefaultLifetime {l};\n"));
        }
        if other {
            text.push_str("    AdvOtherConfigFlag on;\n");
        }
        text.push_str(&format!(
            "    prefix {} {{\n        AdvOnLink on;\n        AdvAutonomous on;\n    }};\n",
            self.lan.prefix.as_deref().unwrap_or("::/64")
        ));
        if !ra.rdnss.is_empty() {
            let list: Vec<String> = ra.rdnss.iter().map(ToString::to_string).collect();
            text.push_str(&format!("    RDNSS {} {{\n    }};\n", list.join(" ")));
        }
        if !ra.dnssl.is_empty() {
            text.push_str(&format!("    DNSSL {} {{\n    }};\n", ra.dnssl.join(" ")));
        }
        text.push_str("};\n");
        Source::Inline(text)
    }

    /// The DHCPv6 configuration: the dhcp6s.conf, or one generated from the inline settings.
    /// `None` when DHCPv6 is off.
    pub fn dhcp6_source(&self) -> Option<Source> {
        if !self.dhcp6_enabled() {
            return None;
        }
        if let Some(p) = &self.dhcp6.dhcp6s_conf {
            return Some(Source::File(p.clone()));
        }
        let mut text = String::from("# generated from gateway.toml [dhcp6]\n");
        let dns: Vec<Ipv6Addr> = if self.dhcp6.dns_servers.is_empty() {
            self.ra.rdnss.clone()
        } else {
            self.dhcp6.dns_servers.clone()
        };
        for d in dns {
            text.push_str(&format!("option domain-name-servers {d};\n"));
        }
        for d in &self.dhcp6.domain_list {
            text.push_str(&format!("option domain-name \"{d}\";\n"));
        }
        Some(Source::Inline(text))
    }
}

/// `bytes` as text, or a [`ConfigError::Syntax`] at the first byte that is not UTF-8.
pub fn decode_utf8(path: &str, bytes: Vec<u8>) -> Result<String, ConfigError> {
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
        ConfigError::Syntax {
            path: path.to_string(),
            line: before.iter().filter(|b| **b == b'\n').count() + 1,
            col,
            message: format!(
                "invalid UTF-8 (byte 0x{:02X}); the file must be UTF-8 text",
                bytes.get(at).copied().unwrap_or(0)
            ),
        }
    })
}

/// Checks that `p` is a /64 without host bits, as SLAAC needs.
fn check_lan_prefix(p: &str) -> Result<(), String> {
    let (prefix, len) = parse_prefix(p)
        .ok_or_else(|| format!("prefix {p:?} is not an IPv6 prefix like 2001:db8:1234::/64"))?;
    if len != 64 {
        return Err(format!("prefix {p} has length {len}; SLAAC needs a /64"));
    }
    if u128::from(prefix) & ((1u128 << 64) - 1) != 0 {
        return Err(format!("prefix {p} has host bits set"));
    }
    Ok(())
}

/// Parses `addr/len`.
pub fn parse_prefix(s: &str) -> Option<(Ipv6Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let len: u8 = l.parse().ok().filter(|l| *l <= 128)?;
    Some((a.parse().ok()?, len))
}

/// A value as aiccu.conf reads it back unchanged: quoted when it has blanks, comment or quote
/// characters (the parser strips one outer pair of quotes and keeps inner ones).
fn aiccu_value(v: &str) -> String {
    if v.starts_with(['"', '\'']) || v.trim() != v || v.contains(['\t', ' ', '#', ';']) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// A network interface name that can be written in radvd.conf and aiccu.conf as one word.
fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

/// A DNS name: labels of 1 to 63 letters, digits, `-` or `_`, at most 253 bytes, with an
/// optional final dot.
fn is_domain_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Line and column of `[section] key`'s value in `text` (of the section's name without a
/// key, or when the key is not written there); `(1, 1)` if the section cannot be found.
fn position(text: &str, section: &str, key: Option<&str>) -> (usize, usize) {
    let Ok(doc) = DeTable::parse(text) else {
        return (1, 1);
    };
    let Some((name, table)) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == section) else {
        return (1, 1);
    };
    let span = key
        .and_then(|key| {
            let table = table.get_ref().as_table()?;
            table
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(_, v)| v.span())
        })
        .unwrap_or_else(|| name.span());
    line_col(text, span.start)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &str = r#"
[tunnel]
aiccu_conf = "aiccu.conf"
[lan]
interface = "eth0"
prefix = "2001:db8:1234::/64"
[ra]
radvd_conf = "radvd.conf"
[dhcp6]
dhcp6s_conf = "dhcp6s.conf"
"#;

    const INLINE: &str = r#"
[tunnel]
server = "198.51.100.1"
username = "HOME1-V6H"
password = "secret"
tunnel_id = "T1"
[lan]
interface = "eth0"
prefix = "2001:db8:1234::/64"
[ra]
rdnss = ["2001:db8:ffff::53"]
router_lifetime = 90
[forwarding]
persist = true
"#;

    #[test]
    fn non_utf8_is_reported_once_at_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gateway.toml");
        std::fs::write(&p, b"[tunnel]\nserver = \"tic\xe9.example\"\n").unwrap();
        let e = GatewayConfig::load(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:2:14: invalid UTF-8 (byte 0xE9); the file must be UTF-8 text",
                p.display()
            )
        );
        // Columns count characters: a valid multi-byte character before the bad byte is one.
        let e = decode_utf8("g.toml", "x = \"é".bytes().chain([0xff]).collect()).unwrap_err();
        assert!(e.to_string().starts_with("g.toml:1:7: "), "{e}");
        assert_eq!(decode_utf8("g.toml", b"ok".to_vec()).unwrap(), "ok");
    }

    #[test]
    fn file_references_resolve_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, FILES).unwrap();
        let c = GatewayConfig::load(&path).unwrap();
        assert_eq!(
            c.tunnel_source(),
            Source::File(dir.path().join("aiccu.conf"))
        );
        assert_eq!(c.ra_source(), Source::File(dir.path().join("radvd.conf")));
        assert_eq!(
            c.dhcp6_source(),
            Some(Source::File(dir.path().join("dhcp6s.conf")))
        );
        assert_eq!(
            c.lan_address().1,
            "2001:db8:1234::1".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn inline_sections_become_native_syntax() {
        let c = GatewayConfig::parse("g.toml", INLINE).unwrap();
        let Source::Inline(aiccu) = c.tunnel_source() else {
            panic!()
        };
        assert!(aiccu.contains("server 198.51.100.1\n"));
        assert!(aiccu.contains("tunnel_id T1\n"));
        assert!(aiccu.contains("ipv6_interface sixxs\n"));
        let Source::Inline(radvd) = c.ra_source() else {
            panic!()
        };
        assert_eq!(
            radvd,
            "# generated from gateway.toml [ra]\ninterface eth0 {\n    AdvSendAdvert on;\n    AdvDefaultLifetime 90;\n    AdvOtherConfigFlag on;\n    prefix 2001:db8:1234::/64 {\n        AdvOnLink on;\n        AdvAutonomous on;\n    };\n    RDNSS 2001:db8:ffff::53 {\n    };\n};\n"
        );
        // DHCPv6 hands out the RDNSS servers when it has none of its own.
        let Some(Source::Inline(d)) = c.dhcp6_source() else {
            panic!()
        };
        assert_eq!(
            d,
            "# generated from gateway.toml [dhcp6]\noption domain-name-servers 2001:db8:ffff::53;\n"
        );
        assert!(c.forwarding.persist);
    }

    #[test]
    fn the_lan_prefix_comes_from_the_routed_subnet_when_not_set() {
        let text = INLINE.replace("prefix = \"2001:db8:1234::/64\"\n", "");
        let mut c = GatewayConfig::parse("g.toml", &text).unwrap();
        assert_eq!(c.lan.prefix, None);
        let routed = [("2001:db8:1234::".parse().unwrap(), 48)];
        assert_eq!(c.resolve_lan_prefix(&routed).unwrap(), "2001:db8:1234::/64");
        assert_eq!(
            c.lan_address().1,
            "2001:db8:1234::1".parse::<Ipv6Addr>().unwrap()
        );
        let Source::Inline(radvd) = c.ra_source() else {
            panic!()
        };
        assert!(radvd.contains("prefix 2001:db8:1234::/64 {"), "{radvd}");
        // Nothing usable: a clear error.
        let mut c = GatewayConfig::parse("g.toml", &text).unwrap();
        let e = c
            .resolve_lan_prefix(&[("2001:db8:1234::".parse().unwrap(), 96)])
            .unwrap_err();
        assert!(e.contains("set `prefix` in [lan]"), "{e}");
        // An explicit prefix wins.
        let mut c = GatewayConfig::parse("g.toml", INLINE).unwrap();
        assert_eq!(
            c.resolve_lan_prefix(&[("2001:db8:9999::".parse().unwrap(), 48)])
                .unwrap(),
            "2001:db8:1234::/64"
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let e = GatewayConfig::parse("g.toml", "[tunnel]\nserver = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("g.toml:2:10: "), "{e}");
        let e =
            GatewayConfig::parse("g.toml", &INLINE.replace("[ra]", "[ra]\nbogus = 1")).unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let e = GatewayConfig::parse("g.toml", &INLINE.replace("/64", "/48")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "g.toml:9:10: [lan] prefix 2001:db8:1234::/48 has length 48; SLAAC needs a /64"
        );
        let e =
            GatewayConfig::parse("g.toml", &INLINE.replace("1234::/64", "1234::5/64")).unwrap_err();
        assert!(e.to_string().contains("host bits"), "{e}");
        let e = GatewayConfig::parse("g.toml", &INLINE.replace("username = \"HOME1-V6H\"\n", ""))
            .unwrap_err();
        assert!(
            e.to_string().contains("need server, username and password"),
            "{e}"
        );
        let both = FILES.replace("[tunnel]\n", "[tunnel]\nserver = \"x\"\n");
        let e = GatewayConfig::parse("g.toml", &both).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.toml:4:14: [tunnel] give either aiccu_conf"),
            "{e}"
        );
        let e = GatewayConfig::parse(
            "g.toml",
            &INLINE.replace("router_lifetime = 90", "router_lifetime = 9001"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("above 9000"), "{e}");
    }

    #[test]
    fn inline_values_cannot_inject_statements() {
        // Before the fix a line break in an inline value started a new aiccu.conf statement
        // (here a setupscript the tunnel client would run), and radvd.conf/dhcp6s.conf text
        // could be broken out of the same way.
        let cases = [
            (
                INLINE.replace("\"secret\"", "\"x\\nsetupscript /tmp/evil.sh\""),
                "g.toml:5:12: [tunnel] password must be non-empty",
            ),
            (
                INLINE.replace(
                    "interface = \"eth0\"",
                    "interface = \"eth0 { }; interface x\"",
                ),
                "g.toml:8:13: [lan] interface \"eth0 { }; interface x\" is not an interface name",
            ),
            (
                INLINE.replace("[ra]\n", "[ra]\ndnssl = [\"home.example; };\"]\n"),
                "g.toml:11:9: [ra] \"home.example; };\" in dnssl is not a domain name",
            ),
            (
                format!("{INLINE}[dhcp6]\ndomain_list = [\"a\\\";\"]\n"),
                "g.toml:16:15: [dhcp6] \"a\\\";\" in domain_list is not a domain name",
            ),
            (
                INLINE.replace(
                    "tunnel_id = \"T1\"",
                    "tunnel_id = \"T1\"\ninterface = \"sixxs-tunnel-0001\"",
                ),
                "g.toml:7:13: [tunnel] interface \"sixxs-tunnel-0001\" is not an interface name",
            ),
        ];
        for (text, want) in cases {
            let e = GatewayConfig::parse("g.toml", &text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{e}\nwanted {want}");
        }
    }

    #[test]
    fn inline_tunnel_values_read_back_unchanged() {
        for pw in ["my secret pass", "\"quoted", "a#b;c", " padded "] {
            let text = INLINE.replace("\"secret\"", &format!("{pw:?}"));
            let c = GatewayConfig::parse("g.toml", &text).unwrap();
            let Source::Inline(aiccu) = c.tunnel_source() else {
                panic!()
            };
            let line = aiccu.lines().find(|l| l.starts_with("password ")).unwrap();
            let value = &line["password ".len()..];
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            assert_eq!(inner, pw, "{aiccu}");
        }
    }
}

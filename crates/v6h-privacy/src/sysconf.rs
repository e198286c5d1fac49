//! Pure configuration logic of `v6home privacy enable|disable`: lifetime validation against
//! REGEN_ADVANCE and `max_addresses`, the sysctl drop-in, each network manager's native
//! setting, and the reader-order check that nothing later overrides our keys.
//!
//! Nothing here touches the file system: [`plan`] turns a [`Request`] and a [`SystemView`]
//! (what the IO shell found) into a [`Plan`] of files to write, live sysctl values and
//! commands. The IO shell is [`crate::system`].

use crate::lifetime::Lifetime;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// REGEN_ADVANCE of Linux ≥ 6.9 with default sysctls: 2 + 3 × 1 × 1 s.
pub const REGEN_ADVANCE: u32 = 5;
/// The kernel's default `max_desync_factor`, seconds.
pub const KERNEL_MAX_DESYNC: u32 = 600;
/// Shortest lifetime accepted without `--force` (spec P7).
pub const MIN_UNFORCED: u32 = 600;
/// The sysctl drop-in, relative to the root.
pub const SYSCTL_DROPIN: &str = "etc/sysctl.d/60-v6home-privacy.conf";
/// The fallback when sysctl.d is not read.
pub const SYSCTL_CONF: &str = "etc/sysctl.conf";
/// NetworkManager's drop-in, relative to the root.
pub const NM_DROPIN: &str = "etc/NetworkManager/conf.d/60-v6home-privacy.conf";
/// systemd-networkd's global drop-in, relative to the root.
pub const NETWORKD_GLOBAL_DROPIN: &str = "etc/systemd/networkd.conf.d/60-v6home-privacy.conf";
/// Name of our drop-in inside each `<unit>.network.d/` directory.
pub const NETWORKD_UNIT_DROPIN: &str = "60-v6home-privacy.conf";
/// Start marker of our block in `/etc/sysctl.conf`.
pub const BLOCK_BEGIN: &str = "# BEGIN v6home privacy";
/// End marker of our block in `/etc/sysctl.conf`.
pub const BLOCK_END: &str = "# END v6home privacy";

/// Which address new connections should prefer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefer {
    /// Prefer the temporary address (`use_tempaddr = 2`).
    #[default]
    Temporary,
    /// Form temporaries but prefer the public address (`use_tempaddr = 1`).
    Public,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Turn privacy extensions on.
    Enable {
        /// Temporary or public source preference.
        prefer: Prefer,
        /// `temp_prefered_lft`.
        preferred: Lifetime,
        /// `temp_valid_lft`.
        valid: Lifetime,
        /// Allow lifetimes below 600 s (labs).
        force: bool,
    },
    /// Turn them off (explicitly, so no manager turns them back on).
    Disable,
}

impl Request {
    /// The `use_tempaddr` value this request writes.
    pub fn use_tempaddr(&self) -> i32 {
        match self {
            Request::Enable {
                prefer: Prefer::Temporary,
                ..
            } => 2,
            Request::Enable {
                prefer: Prefer::Public,
                ..
            } => 1,
            Request::Disable => 0,
        }
    }
}

/// A network manager that writes `use_tempaddr` (or runs SLAAC) itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Manager {
    /// NetworkManager.
    NetworkManager,
    /// systemd-networkd.
    Networkd,
    /// dhcpcd.
    Dhcpcd,
    /// ConnMan.
    ConnMan,
    /// netplan (a generator for NM or networkd).
    Netplan,
    /// Debian's ifupdown: an `inet6` stanza's `privext` makes `ifup` write `use_tempaddr`.
    Ifupdown,
}

impl std::fmt::Display for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Manager::NetworkManager => "NetworkManager",
            Manager::Networkd => "systemd-networkd",
            Manager::Dhcpcd => "dhcpcd",
            Manager::ConnMan => "ConnMan",
            Manager::Netplan => "netplan",
            Manager::Ifupdown => "ifupdown",
        })
    }
}

/// What the IO shell found on the system (or under `--root`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemView {
    /// Interfaces to configure (existing, not `lo`, not devices where privacy cannot work).
    pub interfaces: Vec<String>,
    /// Detected managers.
    pub managers: Vec<Manager>,
    /// Names of `*.network` units in /etc, /run and /usr/lib (or /lib) `systemd/network` (for
    /// `/etc/systemd/network/<name>.d/` drop-ins, which work for units in any of them).
    pub networkd_units: Vec<String>,
    /// ifupdown's files (`etc/network/interfaces` and `etc/network/interfaces.d/*`):
    /// (path relative to the root, content).
    pub ifupdown_files: Vec<(String, String)>,
    /// ConnMan services: (directory name, current `settings` content).
    pub connman_services: Vec<(String, String)>,
    /// Whether some reader processes `sysctl.d` (systemd-sysctl or procps `--system`).
    pub sysctl_d_read: bool,
    /// Current content of `/etc/sysctl.conf`, if it exists.
    pub sysctl_conf: Option<String>,
    /// Content of `/etc/dhcpcd.conf`, if it exists.
    pub dhcpcd_conf: Option<String>,
    /// `max_addresses` of the interfaces (the smallest), default 16.
    pub max_addresses: u32,
    /// Whether commands (nmcli, networkctl, connmanctl) may be run (false under `--root`).
    pub live: bool,
}

/// A file to write, relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    /// Path relative to the root (no leading `/`).
    pub path: String,
    /// Full new content.
    pub content: String,
    /// Unix permission bits.
    pub mode: u32,
}

/// Everything `enable`/`disable` will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files to write.
    pub files: Vec<FileWrite>,
    /// Live sysctls: (path under `/proc/sys`, value).
    pub live: Vec<(String, String)>,
    /// Commands to run afterwards (only when live).
    pub commands: Vec<Vec<String>>,
    /// Things the user should know.
    pub notes: Vec<String>,
}

/// A request that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Preferred lifetime not above REGEN_ADVANCE + 1.
    #[error(
        "preferred lifetime {0} is not longer than REGEN_ADVANCE + 1 s (6s): the kernel could never \
         create a usable temporary and, after 3 silent failures, turns privacy off for the interface"
    )]
    PreferredTooShort(Lifetime),
    /// Valid lifetime below preferred.
    #[error(
        "valid lifetime {valid} is shorter than the preferred lifetime {preferred}; the kernel would cap preferred at valid"
    )]
    ValidBelowPreferred {
        /// Valid lifetime.
        valid: Lifetime,
        /// Preferred lifetime.
        preferred: Lifetime,
    },
    /// Below 600 s without `--force`.
    #[error("{what} lifetime {value} is below 10m; only labs want that (add --force)")]
    TooShortUnforced {
        /// Which lifetime.
        what: &'static str,
        /// Its value.
        value: Lifetime,
    },
    /// Too many concurrent temporaries for `max_addresses`.
    #[error(
        "a temporary lives {valid} and a new one comes every {interval} (preferred {preferred} - \
         desync {desync} - REGEN_ADVANCE 5s), so up to {per_prefix} temporaries per prefix; with \
         the public address that is {total} addresses > max_addresses {max}, which can block SLAAC \
         of a new prefix. Use --valid-lifetime {suggest} or less, or a longer preferred lifetime"
    )]
    TooManyTemporaries {
        /// Valid lifetime.
        valid: Lifetime,
        /// Preferred lifetime.
        preferred: Lifetime,
        /// Effective max desync.
        desync: Lifetime,
        /// Regeneration interval.
        interval: Lifetime,
        /// Temporaries per prefix.
        per_prefix: u32,
        /// Total addresses.
        total: u32,
        /// max_addresses.
        max: u32,
        /// Largest valid lifetime that fits.
        suggest: Lifetime,
    },
    /// An interface name that cannot be a sysctl path component.
    #[error("invalid interface name `{0}`")]
    BadInterface(String),
}

/// The derived schedule of a valid lifetime pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// `max_desync_factor` in effect (we write it when 0.4 × preferred < 600 s).
    pub max_desync: u32,
    /// Whether `max_desync_factor` must be written.
    pub write_desync: bool,
    /// Temporaries per prefix, n = ⌈valid / (preferred − desync − REGEN_ADVANCE)⌉ + 1.
    pub per_prefix: u32,
}

/// Checks a lifetime pair (spec P7) for `prefixes` prefixes and `max_addresses`.
pub fn validate_lifetimes(
    preferred: Lifetime,
    valid: Lifetime,
    force: bool,
    max_addresses: u32,
    prefixes: u32,
) -> Result<Schedule, ConfigError> {
    if preferred.0 <= REGEN_ADVANCE + 1 {
        return Err(ConfigError::PreferredTooShort(preferred));
    }
    if valid < preferred {
        return Err(ConfigError::ValidBelowPreferred { valid, preferred });
    }
    if !force && preferred.0 < MIN_UNFORCED {
        return Err(ConfigError::TooShortUnforced {
            what: "preferred",
            value: preferred,
        });
    }
    // RFC 8981: MAX_DESYNC_FACTOR = 0.4 × preferred; the kernel default is 600 s.
    let rfc_desync = preferred.0 / 5 * 2;
    let (max_desync, write_desync) = if rfc_desync < KERNEL_MAX_DESYNC {
        (rfc_desync, true)
    } else {
        (KERNEL_MAX_DESYNC, false)
    };
    let interval = preferred.0 - max_desync - REGEN_ADVANCE; // > 0: desync ≤ 0.4 preferred
    let per_prefix = valid.0.div_ceil(interval) + 1;
    let total = 1 + prefixes.max(1) * (1 + per_prefix);
    if total > max_addresses {
        // Largest n with 1 + P(1 + n) ≤ max, then valid ≤ (n − 1) × interval.
        let n_max = (max_addresses.saturating_sub(1) / prefixes.max(1)).saturating_sub(1);
        let suggest = Lifetime(
            n_max
                .saturating_sub(1)
                .saturating_mul(interval)
                .max(preferred.0),
        );
        return Err(ConfigError::TooManyTemporaries {
            valid,
            preferred,
            desync: Lifetime(max_desync),
            interval: Lifetime(interval),
            per_prefix,
            total,
            max: max_addresses,
            suggest,
        });
    }
    Ok(Schedule {
        max_desync,
        write_desync,
        per_prefix,
    })
}

/// True if `name` is a plausible Linux interface name (1–15 bytes, no `/`, whitespace or NUL).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace() || b == b'=')
}

/// The sysctl key for `conf/<iface>/<leaf>`: dotted form, or slash form when the interface
/// name contains a dot (`net/ipv6/conf/eth0.10/use_tempaddr`).
pub fn sysctl_key(iface: &str, leaf: &str) -> String {
    if iface.contains('.') {
        format!("net/ipv6/conf/{iface}/{leaf}")
    } else {
        format!("net.ipv6.conf.{iface}.{leaf}")
    }
}

/// The (key, value) pairs of a request for `default` and each interface.
pub fn sysctl_pairs(
    req: &Request,
    interfaces: &[String],
    sched: Option<&Schedule>,
) -> Vec<(String, String, String)> {
    let mut leaves: Vec<(&str, String)> = vec![("use_tempaddr", req.use_tempaddr().to_string())];
    if let Request::Enable {
        preferred, valid, ..
    } = req
    {
        leaves.push(("temp_prefered_lft", preferred.0.to_string()));
        leaves.push(("temp_valid_lft", valid.0.to_string()));
        if let Some(s) = sched
            && s.write_desync
        {
            leaves.push(("max_desync_factor", s.max_desync.to_string()));
        }
    }
    let mut out = Vec::new();
    for ifc in std::iter::once("default").chain(interfaces.iter().map(String::as_str)) {
        for (leaf, v) in &leaves {
            out.push((ifc.to_string(), leaf.to_string(), v.clone()));
        }
    }
    out
}

fn sysctl_body(pairs: &[(String, String, String)]) -> String {
    let mut s = String::new();
    for (ifc, leaf, v) in pairs {
        let _ = writeln!(s, "{} = {v}", sysctl_key(ifc, leaf));
    }
    s
}

const HEADER: &str = "\
# Written by `v6home privacy`; re-run it rather than editing this file.
# Only `default` (interfaces created later) and per-interface keys: the kernel never reads
# use_tempaddr from conf/all. Lifetimes are in seconds. accept_dad is never changed.
";

/// Replaces our marked block in `sysctl.conf` content, or appends it.
pub fn with_sysctl_block(existing: &str, body: &str) -> String {
    let block = format!("{BLOCK_BEGIN}\n{HEADER}{body}{BLOCK_END}\n");
    if let (Some(b), Some(e)) = (existing.find(BLOCK_BEGIN), existing.find(BLOCK_END))
        && b < e
    {
        let end = existing[e..]
            .find('\n')
            .map(|i| e + i + 1)
            .unwrap_or(existing.len());
        return format!("{}{block}{}", &existing[..b], &existing[end..]);
    }
    let mut s = existing.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(&block);
    s
}

fn nm_value(req: &Request) -> i32 {
    req.use_tempaddr()
}

fn networkd_value(req: &Request) -> &'static str {
    match req.use_tempaddr() {
        2 => "yes",
        1 => "prefer-public",
        _ => "no",
    }
}

fn connman_value(req: &Request) -> &'static str {
    match req.use_tempaddr() {
        2 => "preferred",
        1 => "enabled",
        _ => "disabled",
    }
}

/// Sets `IPv6.privacy=<value>` in a ConnMan service `settings` keyfile.
pub fn connman_settings(existing: &str, value: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in existing.lines() {
        if line.trim_start().starts_with("IPv6.privacy=") {
            if !done {
                let _ = writeln!(out, "IPv6.privacy={value}");
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        let _ = writeln!(out, "IPv6.privacy={value}");
    }
    out
}

/// Computes everything `enable`/`disable` writes and runs.
pub fn plan(req: &Request, view: &SystemView) -> Result<Plan, ConfigError> {
    for i in &view.interfaces {
        if !valid_ifname(i) {
            return Err(ConfigError::BadInterface(i.clone()));
        }
    }
    let sched = match req {
        Request::Enable {
            preferred,
            valid,
            force,
            ..
        } => Some(validate_lifetimes(
            *preferred,
            *valid,
            *force,
            view.max_addresses,
            1,
        )?),
        Request::Disable => None,
    };
    let pairs = sysctl_pairs(req, &view.interfaces, sched.as_ref());
    let body = sysctl_body(&pairs);
    let mut plan = Plan::default();
    if view.sysctl_d_read {
        plan.files.push(FileWrite {
            path: SYSCTL_DROPIN.into(),
            content: format!("{HEADER}{body}"),
            mode: 0o644,
        });
    } else {
        plan.files.push(FileWrite {
            path: SYSCTL_CONF.into(),
            content: with_sysctl_block(view.sysctl_conf.as_deref().unwrap_or(""), &body),
            mode: 0o644,
        });
        plan.notes
            .push("no sysctl.d reader found: using a marked block in /etc/sysctl.conf".into());
    }
    plan.live = pairs
        .iter()
        .map(|(i, l, v)| (format!("net/ipv6/conf/{i}/{l}"), v.clone()))
        .collect();

    for m in &view.managers {
        match m {
            Manager::NetworkManager => {
                plan.files.push(FileWrite {
                    path: NM_DROPIN.into(),
                    content: format!(
                        "# Written by `v6home privacy`: NetworkManager writes conf/<if>/use_tempaddr\n\
                         # itself, so its default must agree with the sysctl drop-in.\n\
                         [connection]\nipv6.ip6-privacy={}\n",
                        nm_value(req)
                    ),
                    mode: 0o644,
                });
                plan.commands
                    .push(cmd(&["nmcli", "general", "reload", "conf"]));
                for i in &view.interfaces {
                    plan.commands.push(cmd(&["nmcli", "device", "reapply", i]));
                }
                plan.notes.push(
                    "NetworkManager: profiles with an explicit ipv6.ip6-privacy 0/1 still win; \
                     check with `nmcli -f ipv6.ip6-privacy connection show <profile>`"
                        .into(),
                );
            }
            Manager::Networkd => {
                let content = format!(
                    "# Written by `v6home privacy`: networkd writes conf/<if>/use_tempaddr itself.\n\
                     [Network]\nIPv6PrivacyExtensions={}\n",
                    networkd_value(req)
                );
                plan.files.push(FileWrite {
                    path: NETWORKD_GLOBAL_DROPIN.into(),
                    content: content.clone(),
                    mode: 0o644,
                });
                for u in &view.networkd_units {
                    plan.files.push(FileWrite {
                        path: format!("etc/systemd/network/{u}.d/{NETWORKD_UNIT_DROPIN}"),
                        content: content.clone(),
                        mode: 0o644,
                    });
                }
                plan.commands.push(cmd(&["networkctl", "reload"]));
                for i in &view.interfaces {
                    plan.commands.push(cmd(&["networkctl", "reconfigure", i]));
                }
            }
            Manager::Dhcpcd => {
                plan.notes.push(
                    "dhcpcd: it never writes use_tempaddr, so the sysctl keys are what counts"
                        .into(),
                );
                if let Some(c) = &view.dhcpcd_conf
                    && c.lines()
                        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["slaac", "hwaddr"])
                {
                    plan.notes.push(
                        "dhcpcd: `slaac hwaddr` puts the MAC in the stable address; prefer `slaac private`"
                            .into(),
                    );
                }
            }
            Manager::ConnMan => {
                for (svc, content) in &view.connman_services {
                    plan.files.push(FileWrite {
                        path: format!("var/lib/connman/{svc}/settings"),
                        content: connman_settings(content, connman_value(req)),
                        mode: 0o600,
                    });
                    plan.commands.push(cmd(&[
                        "connmanctl",
                        "config",
                        svc,
                        "--ipv6",
                        "auto",
                        connman_value(req),
                    ]));
                }
            }
            Manager::Netplan => plan.notes.push(format!(
                "netplan: also set `ipv6-privacy: {}` on the interfaces in /etc/netplan/*.yaml",
                req.use_tempaddr() > 0
            )),
            Manager::Ifupdown => {
                let want = req.use_tempaddr().max(0);
                for (path, content) in &view.ifupdown_files {
                    let (new, changes) = ifupdown_privext(content, want);
                    for c in &changes {
                        plan.notes.push(format!(
                            "ifupdown: /{path}:{}: `privext {}` for {} would make ifup write use_tempaddr = {} at the next boot; set to {want}",
                            c.line, c.old, c.iface, c.old
                        ));
                    }
                    if !changes.is_empty() {
                        plan.files.push(FileWrite {
                            path: path.clone(),
                            content: new,
                            mode: 0o644,
                        });
                    }
                }
            }
        }
    }
    if !view.live {
        plan.commands.clear();
    }
    Ok(plan)
}

/// A `privext` line of an ifupdown `inet6` stanza that disagrees with the wanted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivextChange {
    /// 1-based line.
    pub line: usize,
    /// The stanza's interface.
    pub iface: String,
    /// The value found (as written).
    pub old: String,
}

/// Sets every `privext` option inside an `iface IF inet6 …` stanza of an ifupdown file to
/// `value` (ifupdown's `privext`: 0 off, 1 on, 2 prefer temporary; `ifup` writes it to
/// `net.ipv6.conf.IF.use_tempaddr`). Other lines, comments and layout are kept. Returns the
/// new text and the lines changed.
pub fn ifupdown_privext(content: &str, value: i32) -> (String, Vec<PrivextChange>) {
    const STANZA: [&str; 8] = [
        "iface",
        "mapping",
        "auto",
        "source",
        "source-directory",
        "rename",
        "no-auto-down",
        "no-scripts",
    ];
    let mut out = String::with_capacity(content.len());
    let mut changes = Vec::new();
    let mut inet6_iface: Option<String> = None;
    for (idx, raw) in content.split_inclusive('\n').enumerate() {
        let (body, eol) = match raw.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (raw, ""),
        };
        let words: Vec<&str> = body.split_whitespace().collect();
        match words.first() {
            Some(w) if STANZA.contains(w) || w.starts_with("allow-") => {
                inet6_iface = (words.first() == Some(&"iface") && words.get(2) == Some(&"inet6"))
                    .then(|| words.get(1).map(|s| s.to_string()))
                    .flatten();
            }
            Some(&"privext") if words.len() == 2 => {
                if let Some(iface) = &inet6_iface
                    && words[1] != value.to_string()
                {
                    let indent = &body[..body.len() - body.trim_start().len()];
                    changes.push(PrivextChange {
                        line: idx + 1,
                        iface: iface.clone(),
                        old: words[1].to_string(),
                    });
                    out.push_str(&format!("{indent}privext {value}{eol}"));
                    continue;
                }
            }
            _ => {}
        }
        out.push_str(raw);
    }
    (out, changes)
}

/// A unified diff (`--- a/PATH`, `+++ b/PATH`, hunks with 3 lines of context) from `old` to
/// `new`; empty when they are equal. A missing file is diffed as empty (`/dev/null`).
pub fn unified_diff(path: &str, old: Option<&str>, new: &str) -> String {
    let old_text = old.unwrap_or("");
    if old_text == new {
        return String::new();
    }
    let a: Vec<&str> = old_text.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table; configuration files are small, and beyond a bound the
    // whole file is shown as replaced.
    let ops: Vec<(char, &str)> = if a.len().saturating_mul(b.len()) > 4_000_000 {
        a.iter()
            .map(|l| ('-', *l))
            .chain(b.iter().map(|l| ('+', *l)))
            .collect()
    } else {
        let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j, mut ops) = (0, 0, Vec::new());
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                ops.push((' ', a[i]));
                i += 1;
                j += 1;
            } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
                ops.push(('+', b[j]));
                j += 1;
            } else {
                ops.push(('-', a[i]));
                i += 1;
            }
        }
        ops
    };
    const CONTEXT: usize = 3;
    let mut out = format!(
        "--- {}\n+++ b/{path}\n",
        if old.is_some() {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        }
    );
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = (changed[k] + CONTEXT + 1).min(ops.len());
        while k + 1 < changed.len() && changed[k + 1] <= end + CONTEXT {
            k += 1;
            end = (changed[k] + CONTEXT + 1).min(ops.len());
        }
        let line_of = |upto: usize, side: char| {
            ops[..upto]
                .iter()
                .filter(|(c, _)| *c == ' ' || *c == side)
                .count()
        };
        let a_start = line_of(start, '-');
        let b_start = line_of(start, '+');
        let a_len = ops[start..end].iter().filter(|(c, _)| *c != '+').count();
        let b_len = ops[start..end].iter().filter(|(c, _)| *c != '-').count();
        let at = |s: usize, n: usize| if n == 0 { s } else { s + 1 };
        let _ = writeln!(
            out,
            "@@ -{},{a_len} +{},{b_len} @@",
            at(a_start, a_len),
            at(b_start, b_len)
        );
        for (c, l) in &ops[start..end] {
            let _ = writeln!(out, "{c}{l}");
        }
        k += 1;
    }
    out
}

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Splits a sysctl key into components (`.` or `/` separated; slash form if it has a `/`).
pub fn key_components(key: &str) -> Vec<String> {
    let key = key.trim();
    if key.contains('/') {
        key.trim_matches('/')
            .split('/')
            .map(str::to_string)
            .collect()
    } else {
        key.split('.').map(str::to_string).collect()
    }
}

/// One sysctl configuration file in reader order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlFile {
    /// Path (for messages).
    pub path: String,
    /// Content.
    pub content: String,
}

/// Orders sysctl files like systemd-sysctl / `sysctl --system`: `*.conf` files from the
/// directories (earlier directories shadow same names) sorted by file name, then
/// `/etc/sysctl.conf` last unless already present as a `99-sysctl.conf` link.
/// `dirs` is (directory path, [(file name, content)]) in priority order
/// (/etc, /run, /usr/local/lib, /usr/lib, /lib).
pub fn reader_order(
    dirs: &[(String, Vec<(String, String)>)],
    sysctl_conf: Option<&str>,
) -> Vec<SysctlFile> {
    let mut by_name: BTreeMap<String, SysctlFile> = BTreeMap::new();
    for (dir, files) in dirs {
        for (name, content) in files {
            if !name.ends_with(".conf") {
                continue;
            }
            by_name.entry(name.clone()).or_insert_with(|| SysctlFile {
                path: format!("{dir}/{name}"),
                content: content.clone(),
            });
        }
    }
    let mut out: Vec<SysctlFile> = by_name.into_values().collect();
    if let Some(c) = sysctl_conf
        && !out.iter().any(|f| f.path.ends_with("/99-sysctl.conf"))
    {
        out.push(SysctlFile {
            path: "/etc/sysctl.conf".into(),
            content: c.to_string(),
        });
    }
    out
}

/// The last assignment of each key across `files` in order: key components → (value, path).
pub fn effective_values(files: &[SysctlFile]) -> BTreeMap<Vec<String>, (String, String)> {
    let mut m = BTreeMap::new();
    for f in files {
        for line in f.content.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let l = l.strip_prefix('-').unwrap_or(l);
            if let Some((k, v)) = l.split_once('=') {
                m.insert(key_components(k), (v.trim().to_string(), f.path.clone()));
            }
        }
    }
    m
}

/// Keys of `pairs` whose effective value (after all files in reader order) is not ours:
/// (key, value in effect, file setting it).
pub fn overridden(
    pairs: &[(String, String, String)],
    files: &[SysctlFile],
) -> Vec<(String, String, String)> {
    let eff = effective_values(files);
    pairs
        .iter()
        .filter_map(|(i, l, v)| {
            let key = sysctl_key(i, l);
            match eff.get(&key_components(&key)) {
                Some((ev, path)) if ev != v => Some((key, ev.clone(), path.clone())),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Lifetime {
        s.parse().unwrap()
    }

    #[test]
    fn lifetime_validation_reasons() {
        assert!(matches!(
            validate_lifetimes(l("5s"), l("2d"), true, 16, 1),
            Err(ConfigError::PreferredTooShort(_))
        ));
        assert!(matches!(
            validate_lifetimes(l("6s"), l("2d"), true, 16, 1),
            Err(ConfigError::PreferredTooShort(_))
        ));
        assert!(matches!(
            validate_lifetimes(l("1d"), l("2h"), false, 16, 1),
            Err(ConfigError::ValidBelowPreferred { .. })
        ));
        assert!(matches!(
            validate_lifetimes(l("60s"), l("5m"), false, 16, 1),
            Err(ConfigError::TooShortUnforced { .. })
        ));
        // The issue's own example overruns max_addresses: ~28 temporaries per prefix.
        let e = validate_lifetimes(l("2h"), l("2d"), false, 16, 1).unwrap_err();
        match &e {
            ConfigError::TooManyTemporaries {
                per_prefix,
                total,
                suggest,
                ..
            } => {
                assert_eq!(*per_prefix, 28);
                assert_eq!(*total, 30);
                // The suggestion itself passes.
                assert!(validate_lifetimes(l("2h"), *suggest, false, 16, 1).is_ok());
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("max_addresses 16"));
        // Defaults (RFC 8981 values) and the lab's 60 s / 5 min pass.
        let s = validate_lifetimes(l("1d"), l("2d"), false, 16, 1).unwrap();
        assert_eq!(s.per_prefix, 4);
        assert!(!s.write_desync);
        let s = validate_lifetimes(l("60s"), l("5m"), true, 16, 1).unwrap();
        assert_eq!(
            s,
            Schedule {
                max_desync: 24,
                write_desync: true,
                per_prefix: 11
            }
        );
        // Two prefixes halve the room.
        assert!(validate_lifetimes(l("60s"), l("5m"), true, 16, 2).is_err());
    }

    #[test]
    fn keys_use_slash_form_for_dotted_names() {
        assert_eq!(
            sysctl_key("eth0", "use_tempaddr"),
            "net.ipv6.conf.eth0.use_tempaddr"
        );
        assert_eq!(
            sysctl_key("eth0.10", "use_tempaddr"),
            "net/ipv6/conf/eth0.10/use_tempaddr"
        );
        assert_eq!(
            key_components("net/ipv6/conf/eth0.10/use_tempaddr"),
            ["net", "ipv6", "conf", "eth0.10", "use_tempaddr"]
        );
    }

    #[test]
    fn never_all_never_accept_dad() {
        let req = Request::Enable {
            prefer: Prefer::Temporary,
            preferred: l("1d"),
            valid: l("2d"),
            force: false,
        };
        let view = SystemView {
            interfaces: vec!["eth0".into(), "wlan0".into()],
            managers: vec![
                Manager::NetworkManager,
                Manager::Networkd,
                Manager::Dhcpcd,
                Manager::ConnMan,
            ],
            networkd_units: vec!["20-wired.network".into()],
            connman_services: vec![("ethernet_0200_cable".into(), "[x]\n".into())],
            sysctl_d_read: true,
            max_addresses: 16,
            live: true,
            ..Default::default()
        };
        let p = plan(&req, &view).unwrap();
        for f in &p.files {
            assert!(!f.content.contains(".all."), "{}", f.path);
            assert!(!f.content.contains("accept_dad ="), "{}", f.path);
        }
        for (k, _) in &p.live {
            assert!(!k.contains("/all/") && !k.contains("accept_dad"));
        }
    }

    #[test]
    fn ifupdown_privext_is_set_only_in_inet6_stanzas() {
        let text = "auto eth0\niface eth0 inet dhcp\n    privext 0\n\n\
                    iface eth0 inet6 auto\n    privext 0\n    accept_ra 2\n\
                    iface wlan0 inet6 dhcp\n\tprivext 2\n";
        let (new, changes) = ifupdown_privext(text, 2);
        assert_eq!(
            changes,
            vec![PrivextChange {
                line: 6,
                iface: "eth0".into(),
                old: "0".into()
            }]
        );
        assert!(
            new.contains("iface eth0 inet dhcp\n    privext 0\n"),
            "{new}"
        );
        assert!(
            new.contains("iface eth0 inet6 auto\n    privext 2\n    accept_ra 2\n"),
            "{new}"
        );
        assert!(new.ends_with("\tprivext 2\n"), "{new}");
        let (same, none) = ifupdown_privext(&new, 2);
        assert_eq!((same.as_str(), none.len()), (new.as_str(), 0));
        // The plan rewrites the file and says why.
        let view = SystemView {
            interfaces: vec!["eth0".into()],
            managers: vec![Manager::Ifupdown],
            ifupdown_files: vec![("etc/network/interfaces".into(), text.into())],
            sysctl_d_read: true,
            max_addresses: 16,
            ..Default::default()
        };
        let req = Request::Enable {
            prefer: Prefer::Temporary,
            preferred: l("1d"),
            valid: l("2d"),
            force: false,
        };
        let p = plan(&req, &view).unwrap();
        let f = p
            .files
            .iter()
            .find(|f| f.path == "etc/network/interfaces")
            .unwrap();
        assert_eq!(f.content, new);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("/etc/network/interfaces:6")),
            "{:?}",
            p.notes
        );
        let p = plan(&Request::Disable, &view).unwrap();
        let f = p
            .files
            .iter()
            .find(|f| f.path == "etc/network/interfaces")
            .unwrap();
        assert!(
            f.content.contains("iface wlan0 inet6 dhcp\n\tprivext 0\n"),
            "{}",
            f.content
        );
    }

    /// Applies a unified diff made by [`unified_diff`] to `old` (test helper: proves the hunks'
    /// line numbers and contents).
    fn apply_diff(old: &str, diff: &str) -> String {
        let a: Vec<&str> = old.lines().collect();
        let mut out: Vec<String> = Vec::new();
        let mut next = 0usize;
        for line in diff.lines().skip(2) {
            if let Some(h) = line.strip_prefix("@@ -") {
                let start: usize = h.split([',', ' ']).next().unwrap().parse().unwrap();
                let len: usize = h.split([',', ' ']).nth(1).unwrap().parse().unwrap();
                let from = if len == 0 { start } else { start - 1 };
                out.extend(a[next..from].iter().map(|l| l.to_string()));
                next = from;
            } else if let Some(l) = line.strip_prefix('+') {
                out.push(l.to_string());
            } else if line.starts_with('-') {
                next += 1;
            } else if let Some(l) = line.strip_prefix(' ') {
                assert_eq!(a[next], l);
                out.push(l.to_string());
                next += 1;
            }
        }
        out.extend(a[next..].iter().map(|l| l.to_string()));
        out.iter().map(|l| format!("{l}\n")).collect()
    }

    proptest::proptest! {
        /// Any text: no panic; only `privext` lines change, and doing it again changes nothing.
        #[test]
        fn ifupdown_privext_is_total_and_idempotent(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("iface eth0 inet6 auto".to_string()),
                    proptest::strategy::Just("iface eth0 inet dhcp".to_string()),
                    proptest::strategy::Just("  privext 0".to_string()),
                    proptest::strategy::Just("privext".to_string()),
                    proptest::strategy::Just("auto eth0".to_string()),
                    "[ -~\t]{0,20}",
                ],
                0..20,
            ),
            value in 0i32..3,
        ) {
            let text = lines.join("\n");
            let (new, changes) = ifupdown_privext(&text, value);
            proptest::prop_assert_eq!(new.lines().count(), text.lines().count());
            for (o, n) in text.lines().zip(new.lines()) {
                if o != n {
                    proptest::prop_assert_eq!(o.split_whitespace().next(), Some("privext"));
                }
            }
            proptest::prop_assert_eq!(changes.len(), text.lines().zip(new.lines()).filter(|(o, n)| o != n).count());
            let (again, none) = ifupdown_privext(&new, value);
            proptest::prop_assert_eq!(again, new);
            proptest::prop_assert!(none.is_empty());
        }

        /// Applying the diff to the old text gives the new text.
        #[test]
        fn unified_diff_applies(
            old in proptest::collection::vec("[a-d]", 0..25),
            new in proptest::collection::vec("[a-d]", 0..25),
        ) {
            let old: String = old.iter().map(|l| format!("{l}\n")).collect();
            let new: String = new.iter().map(|l| format!("{l}\n")).collect();
            let d = unified_diff("f", Some(&old), &new);
            if old == new {
                proptest::prop_assert!(d.is_empty());
            } else {
                proptest::prop_assert_eq!(apply_diff(&old, &d), new);
            }
        }
    }

    #[test]
    fn unified_diff_shows_hunks_with_context() {
        // Changes 6 lines apart share one hunk (as GNU diff -u).
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n";
        assert_eq!(
            unified_diff("etc/x", Some(old), new),
            "--- a/etc/x\n+++ b/etc/x\n@@ -1,10 +1,11 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n h\n i\n j\n+k\n"
        );
        // Farther apart: two hunks with their own line numbers.
        let old: String = (1..=20).map(|i| format!("l{i}\n")).collect();
        let new = old.replace("l2\n", "X\n").replace("l19\n", "Y\n");
        assert_eq!(
            unified_diff("etc/x", Some(&old), &new),
            "--- a/etc/x\n+++ b/etc/x\n@@ -1,5 +1,5 @@\n l1\n-l2\n+X\n l3\n l4\n l5\n\
             @@ -16,5 +16,5 @@\n l16\n l17\n l18\n-l19\n+Y\n l20\n"
        );
        assert_eq!(unified_diff("etc/x", Some(&old), &old), "");
        assert_eq!(
            unified_diff("etc/y", None, "x = 1\n"),
            "--- /dev/null\n+++ b/etc/y\n@@ -0,0 +1,1 @@\n+x = 1\n"
        );
    }

    #[test]
    fn sysctl_conf_block_replaced_in_place() {
        let once = with_sysctl_block("kernel.x = 1\n", "a = 1\n");
        let twice = with_sysctl_block(&once, "a = 2\n");
        assert!(twice.starts_with("kernel.x = 1\n"));
        assert_eq!(twice.matches(BLOCK_BEGIN).count(), 1);
        assert!(twice.contains("a = 2\n") && !twice.contains("a = 1\n"));
    }

    #[test]
    fn reader_order_and_override_detection() {
        let dirs = vec![
            (
                "/etc/sysctl.d".to_string(),
                vec![
                    (
                        "60-v6home-privacy.conf".to_string(),
                        "net.ipv6.conf.eth0.use_tempaddr = 2\n".to_string(),
                    ),
                    (
                        "10-early.conf".to_string(),
                        "net.ipv6.conf.eth0.use_tempaddr = 0\n".to_string(),
                    ),
                ],
            ),
            (
                "/usr/lib/sysctl.d".to_string(),
                vec![
                    ("10-early.conf".to_string(), "shadowed = 1\n".to_string()),
                    (
                        "90-late.conf".to_string(),
                        "net/ipv6/conf/eth0/use_tempaddr=1\n".to_string(),
                    ),
                ],
            ),
        ];
        let files = reader_order(&dirs, Some("# nothing\n"));
        let names: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "/etc/sysctl.d/10-early.conf",
                "/etc/sysctl.d/60-v6home-privacy.conf",
                "/usr/lib/sysctl.d/90-late.conf",
                "/etc/sysctl.conf"
            ]
        );
        let pairs = vec![(
            "eth0".to_string(),
            "use_tempaddr".to_string(),
            "2".to_string(),
        )];
        let o = overridden(&pairs, &files);
        assert_eq!(
            o,
            vec![(
                "net.ipv6.conf.eth0.use_tempaddr".to_string(),
                "1".to_string(),
                "/usr/lib/sysctl.d/90-late.conf".to_string()
            )]
        );
    }

    #[test]
    fn connman_settings_edit() {
        let s = connman_settings(
            "[svc]\nIPv6.method=auto\nIPv6.privacy=disabled\n",
            "preferred",
        );
        assert_eq!(s, "[svc]\nIPv6.method=auto\nIPv6.privacy=preferred\n");
        let s = connman_settings("[svc]\n", "enabled");
        assert_eq!(s, "[svc]\nIPv6.privacy=enabled\n");
    }

    #[test]
    fn bad_interface_names_rejected() {
        for bad in ["", "a/b", "../x", "sixteen-chars-xx", "a b"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
        assert!(valid_ifname("eth0.10"));
        let view = SystemView {
            interfaces: vec!["../../etc".into()],
            max_addresses: 16,
            ..Default::default()
        };
        assert!(matches!(
            plan(&Request::Disable, &view),
            Err(ConfigError::BadInterface(_))
        ));
    }
}

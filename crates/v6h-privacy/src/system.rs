//! IO shell of `v6home privacy enable|disable|status`: looks at the system (or a `--root`
//! directory), writes what [`crate::sysconf::plan`] decided, applies and reads back the live
//! sysctls, runs the manager's reload commands, and reports per-interface status.
//!
//! Under `--root DIR` every path is below DIR: `/proc/sys` is `DIR/proc/sys` (written only
//! where such files already exist, so tests can stage them), no process table is read, no
//! command is run and no socket is opened.

use crate::sysconf::{
    self, Manager, Plan, Request, SysctlFile, SystemView, overridden, reader_order, sysctl_pairs,
};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

/// Destination used to ask the kernel which source it would pick (no packet is sent:
/// a UDP socket is only connected). A documentation address, routed by the default route.
pub const PROBE_DEST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x80);

/// Errors of the privacy configuration shell.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The request cannot work.
    #[error(transparent)]
    Config(#[from] sysconf::ConfigError),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A live value did not read back as written.
    #[error("{path} reads back `{got}` after writing `{want}`")]
    ReadBack {
        /// The sysctl file.
        path: PathBuf,
        /// What was written.
        want: String,
        /// What was read.
        got: String,
    },
    /// A later sysctl file overrides our keys (spec P3).
    #[error("{key} is overridden by {file} (sets {value}); fix or remove that line")]
    Overridden {
        /// The key.
        key: String,
        /// The value in effect.
        value: String,
        /// The file that sets it last.
        file: String,
    },
}

fn io(path: &Path, source: std::io::Error) -> SystemError {
    SystemError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where to act.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--root DIR`, or `None` for the live system.
    pub root: Option<PathBuf>,
    /// `--iface` values; empty = every eligible interface.
    pub ifaces: Vec<String>,
}

impl Target {
    fn base(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(|| PathBuf::from("/"))
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.base().join(rel.trim_start_matches('/'))
    }
    fn live(&self) -> bool {
        self.root.is_none()
    }
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_i64(p: &Path) -> Option<i64> {
    read_trim(p)?.parse().ok()
}

fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Interfaces eligible for privacy: not `lo`, and either Ethernet-like (ARPHRD_ETHER, which
/// includes Wi-Fi) or not at the kernel's `-1` default of point-to-point/tunnel devices. An
/// Ethernet device at `-1` is included: that is the kernel having given up.
pub fn eligible_interfaces(t: &Target) -> Vec<String> {
    let conf = t.path("proc/sys/net/ipv6/conf");
    dir_names(&conf)
        .into_iter()
        .filter(|n| n != "all" && n != "default" && n != "lo")
        .filter(|n| {
            let ty = read_i64(&t.path(&format!("sys/class/net/{n}/type"))).unwrap_or(1);
            let v = read_i64(&conf.join(n).join("use_tempaddr")).unwrap_or(0);
            ty == 1 || v != -1
        })
        .collect()
}

fn unit_enabled(t: &Target, unit_prefix: &str) -> bool {
    let sys = t.path("etc/systemd/system");
    dir_names(&sys)
        .into_iter()
        .filter(|d| d.ends_with(".wants"))
        .any(|d| {
            dir_names(&sys.join(d))
                .iter()
                .any(|u| u.starts_with(unit_prefix) && u.ends_with(".service"))
        })
}

fn process_running(t: &Target, comm: &str) -> bool {
    if !t.live() {
        return false;
    }
    dir_names(Path::new("/proc"))
        .into_iter()
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .any(|d| read_trim(&Path::new("/proc").join(d).join("comm")).as_deref() == Some(comm))
}

/// Detects the active network managers (files under the root; processes only when live).
pub fn detect_managers(t: &Target) -> Vec<Manager> {
    let mut m = Vec::new();
    if process_running(t, "NetworkManager") || unit_enabled(t, "NetworkManager") {
        m.push(Manager::NetworkManager);
    }
    let has_network_units = ["etc/systemd/network", "run/systemd/network"]
        .iter()
        .any(|d| {
            dir_names(&t.path(d))
                .iter()
                .any(|f| f.ends_with(".network"))
        });
    if process_running(t, "systemd-network")
        || unit_enabled(t, "systemd-networkd")
        || has_network_units
    {
        m.push(Manager::Networkd);
    }
    if process_running(t, "dhcpcd") || unit_enabled(t, "dhcpcd") {
        m.push(Manager::Dhcpcd);
    }
    if process_running(t, "connmand") || unit_enabled(t, "connman") {
        m.push(Manager::ConnMan);
    }
    if dir_names(&t.path("etc/netplan"))
        .iter()
        .any(|f| f.ends_with(".yaml"))
    {
        m.push(Manager::Netplan);
    }
    if ifupdown_files(t).iter().any(|(_, c)| has_inet6_stanza(c)) {
        m.push(Manager::Ifupdown);
    }
    m
}

/// Whether an ifupdown file configures IPv6 on some interface (`iface IF inet6 …`).
fn has_inet6_stanza(content: &str) -> bool {
    content.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.first() == Some(&"iface") && w.get(2) == Some(&"inet6")
    })
}

/// ifupdown's files: `etc/network/interfaces` and the regular files in
/// `etc/network/interfaces.d/` (relative path, content).
fn ifupdown_files(t: &Target) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let main = "etc/network/interfaces";
    if let Ok(c) = std::fs::read_to_string(t.path(main)) {
        out.push((main.to_string(), c));
    }
    let dir = "etc/network/interfaces.d";
    for f in dir_names(&t.path(dir)) {
        let rel = format!("{dir}/{f}");
        if t.path(&rel).is_file()
            && let Ok(c) = std::fs::read_to_string(t.path(&rel))
        {
            out.push((rel, c));
        }
    }
    out
}

/// Builds the [`SystemView`] for a target.
pub fn gather(t: &Target) -> Result<SystemView, SystemError> {
    let interfaces = if t.ifaces.is_empty() {
        eligible_interfaces(t)
    } else {
        for i in &t.ifaces {
            if !sysconf::valid_ifname(i) {
                return Err(sysconf::ConfigError::BadInterface(i.clone()).into());
            }
        }
        t.ifaces.clone()
    };
    let managers = detect_managers(t);
    let mut networkd_units = Vec::new();
    // Drop-ins in /etc/systemd/network/<unit>.d/ apply to a unit wherever it lives, so units
    // shipped in /usr/lib (or /lib) get one too (they count only once networkd is detected).
    for d in [
        "etc/systemd/network",
        "run/systemd/network",
        "usr/lib/systemd/network",
        "lib/systemd/network",
    ] {
        for f in dir_names(&t.path(d)) {
            if f.ends_with(".network") && !networkd_units.contains(&f) {
                networkd_units.push(f);
            }
        }
    }
    let connman_dir = t.path("var/lib/connman");
    let connman_services = dir_names(&connman_dir)
        .into_iter()
        .filter_map(|s| {
            let c = std::fs::read_to_string(connman_dir.join(&s).join("settings")).ok()?;
            Some((s, c))
        })
        .collect();
    let sysctl_d_read = t.path("etc/sysctl.d").is_dir()
        || t.path("usr/lib/sysctl.d").is_dir()
        || t.path("lib/systemd/systemd-sysctl").exists()
        || t.path("usr/lib/systemd/systemd-sysctl").exists();
    let conf = t.path("proc/sys/net/ipv6/conf");
    let max_addresses = interfaces
        .iter()
        .filter_map(|i| read_i64(&conf.join(i).join("max_addresses")))
        .chain(read_i64(&conf.join("default/max_addresses")))
        .filter(|v| *v > 0)
        .min()
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
        .unwrap_or(16);
    Ok(SystemView {
        interfaces,
        managers,
        networkd_units,
        ifupdown_files: ifupdown_files(t),
        connman_services,
        sysctl_d_read,
        sysctl_conf: std::fs::read_to_string(t.path(sysconf::SYSCTL_CONF)).ok(),
        dhcpcd_conf: std::fs::read_to_string(t.path("etc/dhcpcd.conf")).ok(),
        max_addresses,
        live: t.live(),
    })
}

fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), SystemError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.v6home-tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    f.write_all(content.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Reads all sysctl configuration files under the target in reader order.
pub fn sysctl_files(t: &Target) -> Vec<SysctlFile> {
    let dirs: Vec<(String, Vec<(String, String)>)> = [
        "etc/sysctl.d",
        "run/sysctl.d",
        "usr/local/lib/sysctl.d",
        "usr/lib/sysctl.d",
        "lib/sysctl.d",
    ]
    .iter()
    .map(|d| {
        let p = t.path(d);
        let files = dir_names(&p)
            .into_iter()
            .filter_map(|f| Some((f.clone(), std::fs::read_to_string(p.join(&f)).ok()?)))
            .collect();
        (format!("/{d}"), files)
    })
    .collect();
    let conf = std::fs::read_to_string(t.path(sysconf::SYSCTL_CONF)).ok();
    reader_order(&dirs, conf.as_deref())
}

/// What `enable`/`disable` did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// The plan carried out.
    pub plan: Plan,
    /// Live sysctls written and read back: (path, value).
    pub applied: Vec<(PathBuf, String)>,
    /// Live sysctls skipped (no such file under `--root`).
    pub skipped: Vec<PathBuf>,
    /// Interfaces whose `use_tempaddr` was -1 before (kernel gave up; parents need re-adding).
    pub was_disabled: Vec<String>,
    /// Command results: (command line, ok, output).
    pub commands: Vec<(String, bool, String)>,
    /// The detected managers.
    pub managers: Vec<Manager>,
}

/// What `enable`/`disable --dry-run` would do; nothing is changed.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// The plan.
    pub plan: Plan,
    /// One unified diff per file that would change (files already as planned are left out).
    pub diffs: Vec<String>,
    /// Live sysctls that would be written: (path, current value if readable, new value).
    pub live: Vec<(PathBuf, Option<String>, String)>,
    /// The detected managers.
    pub managers: Vec<Manager>,
}

/// Computes what `enable` or `disable` would write and run, with the file changes as unified
/// diffs against what is there now. Reads only.
pub fn dry_run(req: &Request, t: &Target) -> Result<DryRun, SystemError> {
    let view = gather(t)?;
    let plan = sysconf::plan(req, &view)?;
    let diffs = plan
        .files
        .iter()
        .map(|f| {
            let old = std::fs::read_to_string(t.path(&f.path)).ok();
            sysconf::unified_diff(&f.path, old.as_deref(), &f.content)
        })
        .filter(|d| !d.is_empty())
        .collect();
    let live = plan
        .live
        .iter()
        .map(|(rel, v)| {
            let p = t.path(&format!("proc/sys/{rel}"));
            let now = read_trim(&p);
            (p, now, v.clone())
        })
        .collect();
    Ok(DryRun {
        managers: view.managers.clone(),
        plan,
        diffs,
        live,
    })
}

/// Carries out `enable` or `disable` (spec P1, P4, P5, P6, P7).
pub fn apply(req: &Request, t: &Target) -> Result<ApplyReport, SystemError> {
    let view = gather(t)?;
    let plan = sysconf::plan(req, &view)?;
    let mut rep = ApplyReport {
        managers: view.managers.clone(),
        ..Default::default()
    };
    for f in &plan.files {
        write_file(&t.path(&f.path), &f.content, f.mode)?;
    }
    let conf = t.path("proc/sys/net/ipv6/conf");
    for i in &view.interfaces {
        if read_i64(&conf.join(i).join("use_tempaddr")) == Some(-1) && req.use_tempaddr() > 0 {
            rep.was_disabled.push(i.clone());
        }
    }
    for (rel, value) in &plan.live {
        let p = t.path(&format!("proc/sys/{rel}"));
        if !t.live() && !p.exists() {
            rep.skipped.push(p);
            continue;
        }
        std::fs::write(&p, format!("{value}\n")).map_err(|e| io(&p, e))?;
        let got = read_trim(&p).unwrap_or_default();
        if got != *value {
            return Err(SystemError::ReadBack {
                path: p,
                want: value.clone(),
                got,
            });
        }
        rep.applied.push((p, value.clone()));
    }
    for c in &plan.commands {
        let line = c.join(" ");
        let out = std::process::Command::new(&c[0]).args(&c[1..]).output();
        match out {
            Ok(o) => rep.commands.push((
                line,
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).trim().to_string(),
            )),
            Err(e) => rep.commands.push((line, false, e.to_string())),
        }
    }
    // Spec P3: nothing read later may override our keys.
    let sched = match req {
        Request::Enable {
            preferred,
            valid,
            force,
            ..
        } => sysconf::validate_lifetimes(*preferred, *valid, *force, view.max_addresses, 1).ok(),
        Request::Disable => None,
    };
    let pairs = sysctl_pairs(req, &view.interfaces, sched.as_ref());
    if let Some((key, value, file)) = overridden(&pairs, &sysctl_files(t)).into_iter().next() {
        return Err(SystemError::Overridden { key, value, file });
    }
    rep.plan = plan;
    Ok(rep)
}

/// The state of one interface for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceStatus {
    /// Interface name.
    pub name: String,
    /// Live `use_tempaddr`.
    pub use_tempaddr: Option<i64>,
    /// Live `temp_prefered_lft`.
    pub temp_prefered_lft: Option<i64>,
    /// Live `temp_valid_lft`.
    pub temp_valid_lft: Option<i64>,
    /// Effective `accept_dad` = max(all, interface).
    pub accept_dad: Option<i64>,
    /// The persistent setting from the sysctl files: (value, file).
    pub configured: Option<(String, String)>,
    /// Kernel temporary addresses present (global, `IFA_F_TEMPORARY`).
    pub temporaries: Vec<Ipv6Addr>,
    /// Other global addresses.
    pub public: Vec<Ipv6Addr>,
    /// Addresses installed by `v6home privacy agent` (`IFA_PROTO` 0x76; live only).
    pub agent: Vec<Ipv6Addr>,
    /// The source new connections get, or why unknown.
    pub source: Result<Ipv6Addr, String>,
}

/// Parses `/proc/net/if_inet6`: (address, interface, flags) of global addresses.
pub fn parse_if_inet6(content: &str) -> Vec<(Ipv6Addr, String, u32)> {
    content
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [hex, _idx, _plen, scope, flags, name] = f.as_slice() else {
                return None;
            };
            if hex.len() != 32 || *scope != "00" {
                return None;
            }
            let v = u128::from_str_radix(hex, 16).ok()?;
            let flags = u32::from_str_radix(flags, 16).ok()?;
            Some((Ipv6Addr::from(v), name.to_string(), flags))
        })
        .collect()
}

/// The source address the kernel picks for new connections out of `iface` (no packet sent).
pub fn probe_source(iface: &str, dest: Ipv6Addr) -> Result<Ipv6Addr, String> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::DGRAM, None).map_err(|e| e.to_string())?;
    s.bind_device(Some(iface.as_bytes()))
        .map_err(|e| e.to_string())?;
    let sa = std::net::SocketAddr::new(dest.into(), 9);
    s.connect(&sa.into()).map_err(|e| match e.raw_os_error() {
        Some(101) => "no IPv6 route".to_string(),
        _ => e.to_string(),
    })?;
    let local = s.local_addr().map_err(|e| e.to_string())?;
    match local.as_socket() {
        Some(std::net::SocketAddr::V6(a)) => Ok(*a.ip()),
        _ => Err("not an IPv6 socket address".into()),
    }
}

/// Collects the status of each interface.
pub fn status(t: &Target) -> Result<Vec<IfaceStatus>, SystemError> {
    let ifaces = if t.ifaces.is_empty() {
        eligible_interfaces(t)
    } else {
        t.ifaces.clone()
    };
    let conf = t.path("proc/sys/net/ipv6/conf");
    let addrs =
        parse_if_inet6(&std::fs::read_to_string(t.path("proc/net/if_inet6")).unwrap_or_default());
    let eff = sysconf::effective_values(&sysctl_files(t));
    let agent_addrs = if t.live() {
        agent_addresses()
    } else {
        Vec::new()
    };
    let all_dad = read_i64(&conf.join("all/accept_dad"));
    Ok(ifaces
        .into_iter()
        .map(|name| {
            let c = conf.join(&name);
            let key = sysconf::key_components(&sysconf::sysctl_key(&name, "use_tempaddr"));
            let ifdad = read_i64(&c.join("accept_dad"));
            IfaceStatus {
                use_tempaddr: read_i64(&c.join("use_tempaddr")),
                temp_prefered_lft: read_i64(&c.join("temp_prefered_lft")),
                temp_valid_lft: read_i64(&c.join("temp_valid_lft")),
                accept_dad: match (all_dad, ifdad) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                configured: eff.get(&key).cloned(),
                temporaries: addrs
                    .iter()
                    .filter(|(_, n, f)| *n == name && f & 0x01 != 0)
                    .map(|(a, _, _)| *a)
                    .collect(),
                public: addrs
                    .iter()
                    .filter(|(_, n, f)| *n == name && f & 0x01 == 0)
                    .map(|(a, _, _)| *a)
                    .collect(),
                agent: agent_addrs
                    .iter()
                    .filter(|(i, _)| *i == name)
                    .map(|(_, a)| *a)
                    .collect(),
                source: if t.live() {
                    probe_source(&name, PROBE_DEST)
                } else {
                    Err("not probed under --root".into())
                },
                name,
            }
        })
        .collect())
}

/// Addresses tagged with the agent's protocol 0x76, by interface name (empty on error).
fn agent_addresses() -> Vec<(String, Ipv6Addr)> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    rt.block_on(async {
        let Ok(nl) = v6h_net::addr::AddrControl::new() else {
            return Vec::new();
        };
        let list = nl.list(None).await.unwrap_or_default();
        list.into_iter()
            .filter(|e| e.proto == Some(crate::agent::PROTO_V6HOME))
            .filter_map(|e| {
                let name = nix::net::if_::if_indextoname(e.index).ok()?;
                Some((name.to_string_lossy().into_owned(), e.addr))
            })
            .collect()
    })
}

fn meaning(v: i64) -> &'static str {
    match v {
        i64::MIN..=-1 => "DISABLED",
        0 => "off",
        1 => "on, prefer public",
        _ => "on, prefer temporary",
    }
}

/// Renders `status` output (pure).
pub fn render_status(st: &[IfaceStatus]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if st.is_empty() {
        s.push_str("no interfaces with IPv6 privacy support found\n");
    }
    for i in st {
        let v = i.use_tempaddr;
        let _ = writeln!(
            s,
            "{}: use_tempaddr={} ({}), temp_prefered_lft={}s, temp_valid_lft={}s",
            i.name,
            v.map_or("?".into(), |v| v.to_string()),
            v.map_or("unknown", meaning),
            i.temp_prefered_lft.map_or("?".into(), |v| v.to_string()),
            i.temp_valid_lft.map_or("?".into(), |v| v.to_string()),
        );
        match &i.configured {
            Some((val, file)) => {
                let _ = writeln!(s, "  persistent setting: {val} (from {file})");
            }
            None => s.push_str(
                "  persistent setting: none (lost at reboot; run `v6home privacy enable`)\n",
            ),
        }
        if !i.agent.is_empty() {
            let list: Vec<String> = i.agent.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(s, "  privacy agent addresses: {}", list.join(", "));
        }
        if i.temporaries.is_empty() {
            s.push_str("  temporary addresses (kernel): none\n");
        } else {
            let list: Vec<String> = i.temporaries.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(s, "  temporary addresses (kernel): {}", list.join(", "));
        }
        match &i.source {
            Ok(a) => {
                let kind = if i.temporaries.contains(a) {
                    "temporary"
                } else if i.agent.contains(a) {
                    "privacy agent address"
                } else if i.public.contains(a) {
                    "public (not temporary)"
                } else {
                    "not a kernel temporary (e.g. a privacy agent address)"
                };
                let _ = writeln!(s, "  new connections use: {a} ({kind})");
            }
            Err(e) => {
                let _ = writeln!(s, "  new connections use: unknown ({e})");
            }
        }
        if v == Some(-1) && i.agent.is_empty() {
            let _ = writeln!(
                s,
                "  !! the kernel has DISABLED privacy addresses on {n} (use_tempaddr = -1), \
                 typically after 3 failed temporary creations (forged DAD replies, a prefix with \
                 preferred lifetime 0, or a too-short temp_valid_lft).\n  \
                 repair: `v6home privacy enable --iface {n}` (writes 2 and re-adds the mngtmpaddr \
                 addresses so the kernel's failure counter restarts), or by hand: \
                 `sysctl -w net.ipv6.conf.{n}.use_tempaddr=2` then `ip link set {n} down && ip link set {n} up`.\n  \
                 to stop it recurring, run `v6home privacy agent --iface {n}`.",
                n = i.name
            );
        }
        if i.accept_dad == Some(0) {
            let _ = writeln!(
                s,
                "  !! accept_dad is 0 (max of all and {}): duplicate addresses go unnoticed",
                i.name
            );
        }
    }
    s
}

/// Re-adds the `mngtmpaddr` parents of `iface` with their flags and remaining lifetimes so the
/// kernel's per-parent failure counter restarts (spec P9). Returns how many were re-added.
pub async fn repair_parents(iface: &str) -> Result<usize, v6h_net::addr::AddrError> {
    use v6h_net::addr::{AddrControl, AddrSpec};
    let Ok(index) = nix::net::if_::if_nametoindex(iface) else {
        return Ok(0);
    };
    let nl = AddrControl::new()?;
    let mut n = 0;
    for e in nl.list(Some(index)).await? {
        if !e.managetempaddr() || e.temporary() {
            continue;
        }
        nl.del(index, e.addr, e.prefix_len).await?;
        let keep = e.flags & (0x100 | 0x200 | 0x02); // MANAGETEMPADDR | NOPREFIXROUTE | NODAD
        nl.add(
            index,
            &AddrSpec {
                addr: e.addr,
                prefix_len: e.prefix_len,
                preferred: e.preferred.min(e.valid),
                valid: e.valid.max(1),
                flags: keep,
                proto: e.proto,
            },
            false,
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

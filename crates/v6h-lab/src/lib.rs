//! The v6home lab: the "IPv6 at Home" network built from Linux network namespaces.
//!
//! One lab is six namespaces named `v6h-<name>-<node>` (inet, pop, isp, gw, host and the LAN
//! switch), joined by veth pairs and a bridge, with nftables masquerading on the DSL modem
//! (`isp`), a DNS server (dnsmasq) and a web server on `inet`. The plan is in [`topology`]; this
//! module builds and removes it with iproute2 and nftables, never touching the host's own
//! namespace.
//!
//! Tests use the RAII handle: [`Lab::up`] builds a lab, [`Lab::exec`] and [`Lab::spawn`] run
//! commands in a node, and dropping the handle tears the lab down, also while a test panics.
//! [`unique_name`] gives each test its own lab so tests run in parallel.

#![forbid(unsafe_code)]

pub mod httpd;
pub mod topology;

pub use nix::sys::signal::Signal;
pub use topology::{Node, addr};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// The command that installs everything the lab needs.
pub const SETUP_HINT: &str = "sudo scripts/setup-deps";

/// How long [`Lab::up`] waits for duplicate address detection of the nodes' addresses.
pub const DAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Where labs keep logs and state: `<RUN_ROOT>/<name>/`.
pub const RUN_ROOT: &str = "/run/v6home/lab";

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab needs root (namespaces, nftables).
    #[error("the lab needs root (network namespaces and nftables): run it with sudo")]
    NotRoot,
    /// A tool the lab needs is missing.
    #[error(
        "{tool} not found: run `{hint}` (installs iproute2, nftables, dnsmasq and the test peers)"
    )]
    MissingTool {
        /// The missing executable.
        tool: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// The lab name is not usable in namespace names.
    #[error("invalid lab name {0:?}: use 1-20 characters from a-z, 0-9 and _")]
    BadName(String),
    /// No lab of this name exists.
    #[error("no lab named {0:?} is up: start it with `v6home lab up --name {0}`")]
    NotUp(String),
    /// A command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A service did not come up in time.
    #[error("{what} did not become ready within {secs} s; see the logs in {log}")]
    NotReady {
        /// What was waited for.
        what: String,
        /// How long.
        secs: u64,
        /// Where to look.
        log: String,
    },
    /// An address of the lab failed duplicate address detection.
    #[error("duplicate address detection failed on {node}: {address}")]
    DadFailed {
        /// The node.
        node: Node,
        /// The `ip -6 addr` line of the address.
        address: String,
    },
    /// A process to be signalled does not run in the lab node (it exited, or its PID now
    /// belongs to a process outside the lab).
    #[error("process {pid} does not run in lab node {node}; not signalling it")]
    NotInNode {
        /// The PID.
        pid: u32,
        /// The node it was expected in.
        node: Node,
    },
    /// An I/O error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result type of the lab.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let context = context.into();
    move |source| LabError::Io { context, source }
}

/// The namespace name of `node` in lab `lab`.
pub fn ns_name(lab: &str, node: Node) -> String {
    format!("v6h-{lab}-{}", node.as_str())
}

/// The environment variable that tags every lab of one test run (see [`unique_name`]).
pub const RUN_ID_ENV: &str = "V6H_RUN_ID";

/// Length of the run tag that [`unique_name`] puts into names.
pub const RUN_ID_LEN: usize = 4;

/// The run tag from [`RUN_ID_ENV`]: its first [`RUN_ID_LEN`] ASCII letters and digits, lower
/// case; `None` when the variable is unset or has none.
pub fn run_id() -> Option<String> {
    let raw = std::env::var(RUN_ID_ENV).ok()?;
    let tag: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(RUN_ID_LEN)
        .collect::<String>()
        .to_ascii_lowercase();
    (!tag.is_empty()).then_some(tag)
}

/// A lab name unique to this process and call, starting with `prefix` (for parallel tests).
///
/// The name is `<prefix, 3 chars><run tag>_<PID in base 36, 5 chars><call counter in base 36>`,
/// e.g. `upd4k2x_01a2b0`: at most 15 characters for the first 1296 calls of a process (and
/// always a valid lab name). The full PID keeps names of concurrent processes apart, also of
/// two test runs at once; the run tag ([`run_id`], set by `scripts/test`) lets a run find the
/// namespaces it left behind: those matching `v6h-<letters and digits><tag>_`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    compose_unique_name(prefix, run_id().as_deref(), std::process::id(), n)
}

fn compose_unique_name(prefix: &str, run: Option<&str>, pid: u32, n: u32) -> String {
    let prefix: String = prefix
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(3)
        .collect::<String>()
        .to_ascii_lowercase();
    let run = run.unwrap_or("");
    // Linux PIDs are below 2^22, five base-36 digits; wider ones still give unique names.
    format!("{prefix}{run}_{:0>5}{}", base36(pid), base36(n))
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LabError::BadName(name.to_string()))
    }
}

/// True when the process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Checks that the tools the lab itself needs are installed and that we are root.
pub fn preflight() -> Result<()> {
    if !is_root() {
        return Err(LabError::NotRoot);
    }
    for tool in ["ip", "nft", "dnsmasq", "ss"] {
        if find_in_path(tool).is_none() {
            return Err(LabError::MissingTool {
                tool,
                hint: SETUP_HINT,
            });
        }
    }
    Ok(())
}

/// Runs a command to completion and returns its output, whatever the exit status.
fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LabError::Io {
                    context: format!("{program} not found (run `{SETUP_HINT}`)"),
                    source: e,
                }
            } else {
                io_err(format!("running {program}"))(e)
            }
        })
}

/// Runs a command and fails unless it exits 0; returns stdout.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = output(program, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs a command with `stdin` as its standard input; fails unless it exits 0.
fn run_with_input(program: &str, args: &[&str], stdin: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("running {program}")))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .map_err(io_err(format!("writing to {program}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io_err(format!("waiting for {program}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The names of all network namespaces on the machine.
fn list_namespaces() -> Result<Vec<String>> {
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// The namespaces of lab `name` that exist now.
pub fn existing_namespaces(name: &str) -> Result<Vec<String>> {
    let all = list_namespaces()?;
    Ok(Node::ALL
        .iter()
        .map(|n| ns_name(name, *n))
        .filter(|ns| all.contains(ns))
        .collect())
}

/// The path of the `v6home` binary used to run lab services (the web server).
///
/// `V6HOME_BIN` wins; then the running executable if it is `v6home`; then `v6home` next to
/// the running executable or one directory up (how cargo lays out integration tests).
pub fn v6home_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("V6HOME_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(io_err("locating the running executable"))?;
    if exe.file_name().is_some_and(|n| n == "v6home") {
        return Ok(exe);
    }
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for candidate in [dir.join("v6home"), dir.join("../v6home")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(LabError::Io {
        context: "the v6home binary was not found: build it with `cargo build` or set V6HOME_BIN"
            .into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })
}

/// A handle to a running lab. Dropping it tears the lab down unless [`Lab::keep`] was called.
pub struct Lab {
    name: String,
    run_dir: PathBuf,
    keep: bool,
    children: Mutex<Vec<Child>>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("name", &self.name)
            .field("keep", &self.keep)
            .finish()
    }
}

impl Lab {
    /// Builds lab `name` (or reuses it when it is already complete) and returns its handle.
    ///
    /// Idempotent: a complete lab is reused as it is; the remains of a crashed or partial run
    /// are removed first.
    pub fn up(name: &str) -> Result<Lab> {
        validate_name(name)?;
        preflight()?;
        let run_dir = Path::new(RUN_ROOT).join(name);
        let lab = Lab {
            name: name.to_string(),
            run_dir,
            keep: false,
            children: Mutex::new(Vec::new()),
        };
        if lab.is_complete()? {
            tracing::info!(lab = name, "lab is already up; reusing it");
            return Ok(lab);
        }
        if !existing_namespaces(name)?.is_empty() {
            tracing::info!(lab = name, "removing the remains of an earlier run");
            down(name)?;
        }
        let mut lab = lab;
        if let Err(e) = lab.build() {
            // Leave nothing half-built behind.
            lab.keep = false;
            drop(lab);
            return Err(e);
        }
        Ok(lab)
    }

    /// A handle to an existing lab; dropping it does not tear the lab down.
    pub fn attach(name: &str) -> Result<Lab> {
        validate_name(name)?;
        if existing_namespaces(name)?.len() != Node::ALL.len() {
            return Err(LabError::NotUp(name.to_string()));
        }
        Ok(Lab {
            name: name.to_string(),
            run_dir: Path::new(RUN_ROOT).join(name),
            keep: true,
            children: Mutex::new(Vec::new()),
        })
    }

    /// Keeps the lab running after this handle is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace name of `node`.
    pub fn ns(&self, node: Node) -> String {
        ns_name(&self.name, node)
    }

    /// The lab's directory for logs and state.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The web server's access log (one line per request: peer address, port, request, status).
    pub fn http_log(&self) -> PathBuf {
        self.run_dir.join("inet-httpd.log")
    }

    /// Runs `args` in `node` and returns its output, whatever the exit status.
    pub fn exec(&self, node: Node, args: &[&str]) -> Result<Output> {
        let ns = self.ns(node);
        let mut full = vec!["netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        output("ip", &full)
    }

    /// Runs `args` in `node`, fails unless it exits 0, and returns its stdout.
    pub fn exec_ok(&self, node: Node, args: &[&str]) -> Result<String> {
        let ns = self.ns(node);
        let mut full = vec!["netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Starts `args` in `node` in the background, with stdout and stderr in a log file in
    /// [`Lab::run_dir`]. The process is killed when the returned handle is dropped.
    pub fn spawn(&self, node: Node, args: &[&str]) -> Result<LabChild> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let program = args.first().copied().unwrap_or("cmd");
        let base = Path::new(program)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("cmd");
        let log = self.run_dir.join(format!(
            "{}-{base}-{}.log",
            node.as_str(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let child = spawn_logged(&self.ns(node), args, &log)?;
        Ok(LabChild {
            child: Some(child),
            log,
            label: format!("{node}: {}", args.join(" ")),
        })
    }

    fn is_complete(&self) -> Result<bool> {
        Ok(existing_namespaces(&self.name)?.len() == Node::ALL.len()
            && self.run_dir.join("ready").is_file()
            && self.services_listening())
    }

    fn services_listening(&self) -> bool {
        match self.exec(Node::Inet, &["ss", "-Hlnt"]) {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                text.contains("[2001:db8:ffff::80]:80") && text.contains("[2001:db8:ffff::53]:53")
            }
            Err(_) => false,
        }
    }

    fn build(&mut self) -> Result<()> {
        let started = Instant::now();
        std::fs::create_dir_all(&self.run_dir)
            .map_err(io_err(format!("creating {}", self.run_dir.display())))?;
        for node in Node::ALL {
            let ns = self.ns(node);
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            for (key, value) in topology::sysctls(node) {
                self.sysctl(node, key, value)?;
            }
        }
        for wire in topology::WIRES {
            let (a_ns, b_ns) = (self.ns(wire.a.0), self.ns(wire.b.0));
            run(
                "ip",
                &[
                    "-n", &a_ns, "link", "add", wire.a.1, "type", "veth", "peer", "name", wire.b.1,
                    "netns", &b_ns,
                ],
            )?;
        }
        let lan = self.ns(Node::Lan);
        run(
            "ip",
            &[
                "-n",
                &lan,
                "link",
                "add",
                topology::BRIDGE,
                "type",
                "bridge",
            ],
        )?;
        for port in ["isp", "gw", "host"] {
            run(
                "ip",
                &["-n", &lan, "link", "set", port, "master", topology::BRIDGE],
            )?;
            run("ip", &["-n", &lan, "link", "set", port, "up"])?;
        }
        run("ip", &["-n", &lan, "link", "set", topology::BRIDGE, "up"])?;
        for node in Node::HOSTS {
            let ns = self.ns(node);
            for (key, value) in topology::iface_sysctls(node) {
                self.sysctl(node, key, value)?;
            }
            for (ifname, cidr) in topology::addresses(node) {
                let mut args = vec!["-n", &ns, "addr", "add", cidr, "dev", ifname];
                if cidr.contains(':') {
                    args.push("nodad");
                }
                run("ip", &args)?;
            }
            for w in topology::WIRES {
                for (n, ifname) in [w.a, w.b] {
                    if n == node {
                        run("ip", &["-n", &ns, "link", "set", ifname, "up"])?;
                    }
                }
            }
            for route in topology::routes(node) {
                let mut args = vec!["-n", ns.as_str()];
                let (family, rest): (&[&str], &[&str]) = match route.first() {
                    Some(&"-6") => (&["-6"], &route[1..]),
                    _ => (&[], route),
                };
                args.extend_from_slice(family);
                args.extend_from_slice(&["route", "add"]);
                args.extend_from_slice(rest);
                run("ip", &args)?;
            }
        }
        let isp = self.ns(Node::Isp);
        run_with_input(
            "ip",
            &["netns", "exec", &isp, "nft", "-f", "-"],
            topology::ISP_NFT_RULESET,
        )?;
        self.start_services()?;
        self.wait_for_dad(DAD_TIMEOUT)?;
        std::fs::write(self.run_dir.join("ready"), b"")
            .map_err(io_err("writing the ready marker"))?;
        tracing::info!(lab = %self.name, ms = started.elapsed().as_millis() as u64, "lab is up");
        Ok(())
    }

    /// Waits until no node has an address in duplicate address detection, so that every
    /// address (the kernel's link-locals included) is usable once [`Lab::up`] returns. The
    /// lab's static addresses skip DAD (`nodad`); the link-locals go through it, which takes
    /// the kernel a random delay of up to 1 s plus 1 s.
    fn wait_for_dad(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = Vec::new();
            for node in Node::HOSTS {
                let ns = self.ns(node);
                let out = run("ip", &["-n", &ns, "-6", "-o", "addr", "show", "tentative"])?;
                for line in out.lines() {
                    let line = line.split('\\').next().unwrap_or(line).trim().to_string();
                    if line.contains("dadfailed") {
                        return Err(LabError::DadFailed {
                            node,
                            address: line,
                        });
                    }
                    pending.push(format!("{node}: {line}"));
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::NotReady {
                    what: format!(
                        "duplicate address detection (still tentative: {})",
                        pending.join("; ")
                    ),
                    secs: timeout.as_secs(),
                    log: self.run_dir.display().to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The PIDs of the processes running in `node`'s namespace now.
    pub fn pids(&self, node: Node) -> Vec<u32> {
        namespace_pids(&self.ns(node))
            .into_iter()
            .filter_map(|p| u32::try_from(p.as_raw()).ok())
            .collect()
    }

    /// Sends `signal` to process `pid`, but only if it runs in `node`'s namespace: a PID
    /// recorded earlier may have been reused by a process outside the lab, and namespaces do
    /// not isolate PIDs, so nothing is ever signalled by name or outside the lab.
    pub fn signal_pid(&self, node: Node, pid: u32, signal: Signal) -> Result<()> {
        if !self.pids(node).contains(&pid) {
            return Err(LabError::NotInNode { pid, node });
        }
        let raw = i32::try_from(pid).map_err(|_| LabError::NotInNode { pid, node })?;
        kill(Pid::from_raw(raw), signal).map_err(|e| LabError::Io {
            context: format!("sending {signal} to process {pid} in {node}"),
            source: std::io::Error::from(e),
        })
    }

    /// Where a daemon left running in `node` records its PID: `<run dir>/<node>-<name>.pid`
    /// (written by `v6home lab demo --keep`, read by [`Lab::recorded_pid`]).
    pub fn pid_file(&self, node: Node, name: &str) -> PathBuf {
        self.run_dir.join(format!("{}-{name}.pid", node.as_str()))
    }

    /// Records `pid` in [`Lab::pid_file`]`(node, name)`.
    pub fn record_pid(&self, node: Node, name: &str, pid: u32) -> Result<()> {
        let path = self.pid_file(node, name);
        std::fs::write(&path, format!("{pid}\n"))
            .map_err(io_err(format!("writing {}", path.display())))
    }

    /// The PID recorded in [`Lab::pid_file`]`(node, name)`.
    pub fn recorded_pid(&self, node: Node, name: &str) -> Result<u32> {
        let path = self.pid_file(node, name);
        let text = std::fs::read_to_string(&path)
            .map_err(io_err(format!("reading {}", path.display())))?;
        text.trim().parse().map_err(|_| LabError::Io {
            context: format!("{}: not a PID: {:?}", path.display(), text.trim()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        })
    }

    fn sysctl(&self, node: Node, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let ns = self.ns(node);
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sh",
                "-c",
                &format!("echo {value} > {path}"),
            ],
        )
        .map(|_| ())
    }

    fn start_services(&mut self) -> Result<()> {
        let inet = self.ns(Node::Inet);
        let dns_log = self.run_dir.join("inet-dnsmasq.log");
        let host_record = format!("--host-record={},{}", addr::WEB_NAME, addr::WEB_V6);
        let listen = format!("--listen-address={}", addr::DNS_V6);
        let dnsmasq = spawn_logged(
            &inet,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--except-interface=eth0",
                &listen,
                &host_record,
                "--pid-file=",
                "--log-queries",
                "--log-facility=-",
                "--user=root",
            ],
            &dns_log,
        )?;
        let http_log = self.http_log();
        let bin = v6home_bin()?;
        let bin = bin.to_string_lossy();
        let listen = format!("[{}]:80", addr::WEB_V6);
        let httpd_out = self.run_dir.join("inet-httpd.out");
        let log_arg = http_log.to_string_lossy();
        let httpd = spawn_logged(
            &inet,
            &[
                &bin,
                "lab",
                "httpd",
                "--listen",
                &listen,
                "--access-log",
                &log_arg,
            ],
            &httpd_out,
        )?;
        {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            children.push(dnsmasq);
            children.push(httpd);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.services_listening() {
            if Instant::now() > deadline {
                return Err(LabError::NotReady {
                    what: "the DNS and web servers on inet".into(),
                    secs: 10,
                    log: self.run_dir.display().to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Tears the lab down now (also done on drop unless kept).
    pub fn teardown(&mut self) -> Result<()> {
        self.keep = true;
        let result = down(&self.name).map(|_| ());
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        for mut child in children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        result
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = self.teardown()
        {
            eprintln!("v6home lab {}: teardown failed: {e}", self.name);
        }
    }
}

/// Starts `args` inside namespace `ns`, detached into its own process group, with stdout and
/// stderr appended to `log`.
fn spawn_logged(ns: &str, args: &[&str], log: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io_err(format!("opening {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io_err(format!("opening {}", log.display())))?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(io_err(format!("starting {} in {ns}", args.join(" "))))
}

/// A background process in a lab node; killed (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct LabChild {
    child: Option<Child>,
    log: PathBuf,
    label: String,
}

impl LabChild {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The file with the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = i32::try_from(self.pid()).unwrap_or(0);
        kill(Pid::from_raw(pid), signal).map_err(|e| LabError::Io {
            context: format!("sending {signal} to {}", self.label),
            source: std::io::Error::from(e),
        })
    }

    /// Waits up to `timeout` for the log to contain `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log();
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(LabError::NotReady {
                    what: format!("{:?} in the output of {}", needle, self.label),
                    secs: timeout.as_secs(),
                    log: self.log.display().to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns the exit status if the process has exited.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait().map_err(io_err("waiting for a lab process")),
            None => Ok(None),
        }
    }

    /// Waits up to `timeout` for the process to exit and returns its status.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Leaves the process running after this handle is gone (`lab down` still removes it),
    /// and returns its PID (0 if it was already stopped).
    pub fn detach(mut self) -> u32 {
        self.child.take().map_or(0, |c| c.id())
    }

    /// Stops the process: SIGTERM, then SIGKILL after 2 s. Returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let pid = i32::try_from(child.id()).unwrap_or(0);
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for LabChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What [`down`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Processes killed inside them.
    pub processes: usize,
}

/// Removes lab `name`: kills every process in its namespaces, deletes the namespaces (and with
/// them every veth and the bridge) and the run directory. Safe to call on a partial or crashed
/// lab, and on one that does not exist.
pub fn down(name: &str) -> Result<DownReport> {
    validate_name(name)?;
    let namespaces = existing_namespaces(name)?;
    let mut processes = 0;
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        let mut alive = Vec::new();
        for ns in &namespaces {
            alive.extend(namespace_pids(ns));
        }
        if alive.is_empty() {
            break;
        }
        if signal == Signal::SIGTERM {
            processes = alive.len();
        }
        for pid in &alive {
            let _ = kill(*pid, signal);
        }
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline
            && namespaces.iter().any(|ns| !namespace_pids(ns).is_empty())
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for ns in &namespaces {
        run("ip", &["netns", "del", ns])?;
    }
    let run_dir = Path::new(RUN_ROOT).join(name);
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .map_err(io_err(format!("removing {}", run_dir.display())))?;
    }
    Ok(DownReport {
        namespaces,
        processes,
    })
}

fn namespace_pids(ns: &str) -> Vec<Pid> {
    run("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .map(Pid::from_raw)
        .collect()
}

/// One row of [`status`]: a node's interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The node.
    pub node: Node,
    /// Interface name.
    pub ifname: String,
    /// Operational state (`UP`, `DOWN`, `UNKNOWN`).
    pub state: String,
    /// Addresses with prefix lengths.
    pub addresses: Vec<String>,
}

/// The interfaces and addresses of every node of lab `name`.
pub fn status(name: &str) -> Result<Vec<StatusRow>> {
    validate_name(name)?;
    let existing = existing_namespaces(name)?;
    if existing.is_empty() {
        return Err(LabError::NotUp(name.to_string()));
    }
    let mut rows = Vec::new();
    for node in Node::HOSTS {
        let ns = ns_name(name, node);
        if !existing.contains(&ns) {
            continue;
        }
        for line in run("ip", &["-n", &ns, "-br", "addr", "show"])?.lines() {
            let mut fields = line.split_whitespace();
            let (Some(ifname), Some(state)) = (fields.next(), fields.next()) else {
                continue;
            };
            let ifname = ifname.split('@').next().unwrap_or(ifname).to_string();
            if ifname == "lo" && node != Node::Inet {
                continue;
            }
            rows.push(StatusRow {
                node,
                ifname,
                state: state.to_string(),
                addresses: fields.map(str::to_string).collect(),
            });
        }
    }
    Ok(rows)
}

/// The names of every lab that has at least one namespace on this machine.
pub fn list_labs() -> Result<Vec<String>> {
    let mut names: Vec<String> = list_namespaces()?
        .iter()
        .filter_map(|ns| {
            let rest = ns.strip_prefix("v6h-")?;
            let (lab, node) = rest.rsplit_once('-')?;
            node.parse::<Node>().ok().map(|_| lab.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("demo").is_ok());
        assert!(validate_name("t123x4").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a-b").is_err());
        assert!(validate_name("../x").is_err());
        assert!(validate_name(&"a".repeat(21)).is_err());
    }

    #[test]
    fn unique_names_differ_and_are_valid() {
        let a = unique_name("lab-test");
        let b = unique_name("lab-test");
        assert_ne!(a, b);
        validate_name(&a).unwrap();
        assert!(a.starts_with("lab"));
    }

    #[test]
    fn unique_names_carry_the_run_tag_and_stay_short() {
        assert_eq!(
            compose_unique_name("updown", Some("k2x9"), 1234, 0),
            "updk2x9_000ya0"
        );
        assert_eq!(compose_unique_name("Lab-Test", None, 1, 35), "lab_00001z");
        // Linux's largest PID, the 1296th call: still 15 characters (an interface name's
        // limit), and a valid lab name.
        let long = compose_unique_name("prefix", Some("zzzz"), 4_194_304, 1295);
        assert_eq!(long.len(), 15, "{long}");
        validate_name(&long).unwrap();
        // Any counter value gives a valid name.
        validate_name(&compose_unique_name(
            "prefix",
            Some("zzzz"),
            4_194_304,
            u32::MAX,
        ))
        .unwrap();
        // The run tag sits just before the first `_`, so `scripts/test` can tell its own.
        let ours = compose_unique_name("dad", Some("ab12"), 77, 3);
        assert!(ours.split('_').next().unwrap().ends_with("ab12"), "{ours}");
    }

    #[test]
    fn concurrent_processes_and_runs_get_different_names() {
        let mut names = std::collections::HashSet::new();
        for run in [None, Some("ab12"), Some("cd34")] {
            for pid in [1, 36, 99_999, 100_000, 199_999, 4_194_304] {
                for n in 0..40 {
                    assert!(names.insert(compose_unique_name("x", run, pid, n)));
                }
            }
        }
    }

    #[test]
    fn namespace_names_follow_the_spec() {
        assert_eq!(ns_name("demo", Node::Gw), "v6h-demo-gw");
        assert_eq!(ns_name("demo", Node::Lan), "v6h-demo-lan");
    }

    #[test]
    fn missing_tool_error_says_how_to_fix() {
        let e = LabError::MissingTool {
            tool: "nft",
            hint: SETUP_HINT,
        };
        assert_eq!(
            e.to_string(),
            "nft not found: run `sudo scripts/setup-deps` (installs iproute2, nftables, dnsmasq and the test peers)"
        );
    }
}

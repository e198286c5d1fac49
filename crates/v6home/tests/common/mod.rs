//! Helpers shared by the end-to-end tests in `crates/v6home/tests/*_e2e.rs`: the root check
//! (skip without root, fail in CI), polling with a deadline, lab lookups (link-local addresses,
//! default routes, sysctls), running code inside a lab namespace, the example configs, the
//! broker on pop, `v6home check --json`, nftables drop rules and temporary directories.
//!
//! Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use v6h_lab::{Lab, LabChild, Node};

/// The `v6home` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_v6home");

/// How often the polling helpers probe.
pub const POLL: Duration = Duration::from_millis(200);

/// Root-only tests skip without root, except in CI (env `CI` set) where they must run: there
/// a missing root is a failure, not a skip. True when the test may go on.
pub fn need_root() -> bool {
    if v6h_lab::is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the lab tests are not running as root"
    );
    eprintln!("skipping: the lab tests need root");
    false
}

/// A fresh lab named after `prefix`, or `None` (test skipped) per [`need_root`].
pub fn lab_or_skip(prefix: &str) -> Option<Lab> {
    need_root().then(|| Lab::up(&v6h_lab::unique_name(prefix)).expect("lab up"))
}

/// What a polled probe returns: `true`/`false`, or `Some(value)`/`None`.
pub trait Ready {
    /// What the wait yields once the probe is ready.
    type Value;
    /// `Some` once ready.
    fn ready(self) -> Option<Self::Value>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Option<T> {
        self
    }
}

/// Calls `probe` every [`POLL`] until it is ready and returns its value, or `None` once
/// `timeout` has passed (the probe always runs at least once, and once at the deadline).
pub fn poll<R: Ready>(timeout: Duration, mut probe: impl FnMut() -> R) -> Option<R::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().ready() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Whether `f` returns true within `timeout` (see [`poll`]).
pub fn wait_until(timeout: Duration, f: impl FnMut() -> bool) -> bool {
    poll(timeout, f).is_some()
}

/// The value of `probe` once it is ready (see [`poll`]); panics naming `what` after `timeout`.
pub fn wait_for<R: Ready>(what: &str, timeout: Duration, probe: impl FnMut() -> R) -> R::Value {
    poll(timeout, probe).unwrap_or_else(|| panic!("timed out after {timeout:?}: {what}"))
}

/// Whether the file at `path` contains `needle` within `timeout`.
pub fn file_contains_within(path: &Path, needle: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains(needle)
    })
}

/// The non-tentative link-local address of `node`'s `dev`, waiting up to 10 s for DAD.
pub fn link_local(lab: &Lab, node: Node, dev: &str) -> Ipv6Addr {
    wait_for(
        &format!("a non-tentative link-local address on {node} {dev}"),
        Duration::from_secs(10),
        || {
            let out = lab
                .exec_ok(
                    node,
                    &["ip", "-6", "addr", "show", "dev", dev, "scope", "link"],
                )
                .unwrap();
            out.lines().map(str::trim).find_map(|line| {
                if !line.starts_with("inet6 fe80") || line.contains("tentative") {
                    return None;
                }
                line.split_whitespace()
                    .nth(1)?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()
            })
        },
    )
}

/// `ip -6 route show default` on `node` (empty when the command fails).
pub fn default_route(lab: &Lab, node: Node) -> String {
    lab.exec_ok(node, &["ip", "-6", "route", "show", "default"])
        .unwrap_or_default()
}

/// The `src` of host's route to `dst` (`default` or a prefix) installed by
/// `v6home privacy agent` (protocol 118 = 0x76), if any.
pub fn agent_route_src(lab: &Lab, dst: &str) -> Option<Ipv6Addr> {
    let out = lab
        .exec_ok(
            Node::Host,
            &["ip", "-6", "route", "show", dst, "proto", "118"],
        )
        .ok()?;
    let toks: Vec<&str> = out.split_whitespace().collect();
    let i = toks.iter().position(|t| *t == "src")?;
    toks.get(i + 1)?.parse().ok()
}

/// `sysctl -n key` on `node`, trimmed.
pub fn sysctl(lab: &Lab, node: Node, key: &str) -> String {
    lab.exec_ok(node, &["sysctl", "-n", key])
        .unwrap()
        .trim()
        .to_string()
}

/// The body that `curl -sS -g --max-time secs url` on `node` fetched, or `None` on failure.
pub fn curl(lab: &Lab, node: Node, url: &str, secs: u32) -> Option<String> {
    let secs = secs.to_string();
    let out = lab
        .exec(node, &["curl", "-sS", "-g", "--max-time", &secs, url])
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `f` on a thread inside network namespace `ns` (sockets it opens live there).
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// The path of `examples/lab/<name>` in the repository.
pub fn example_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/lab")
        .join(name)
}

/// The text of `examples/lab/<name>`.
pub fn example(name: &str) -> String {
    let p = example_path(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The example broker.toml with its run and state directories moved into the lab's run dir,
/// written to `<run dir>/broker.toml`, and the example registry (`registry.toml`: user `lab`,
/// tunnel T1) imported into its database with `v6home broker import`.
pub fn broker_conf(lab: &Lab) -> PathBuf {
    let run = lab.run_dir().join("broker");
    let state = lab.run_dir().join("broker-state");
    let text = example("broker.toml")
        .replace(
            "run_dir = \"/run/v6home/broker\"",
            &format!("run_dir = \"{}\"", run.display()),
        )
        .replace(
            "state_dir = \"/var/lib/v6home/broker\"",
            &format!("state_dir = \"{}\"", state.display()),
        );
    assert!(text.contains(&run.display().to_string()));
    assert!(text.contains(&state.display().to_string()));
    let p = lab.run_dir().join("broker.toml");
    std::fs::write(&p, text).unwrap();
    broker_cli(
        &p,
        &["import", example_path("registry.toml").to_str().unwrap()],
    );
    p
}

/// Runs `v6home broker --config conf ARGS` (a registry command) on the host and returns its
/// stdout; panics with its stderr when it fails.
pub fn broker_cli(conf: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(["broker", "--config", conf.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run v6home broker");
    assert!(
        out.status.success(),
        "v6home broker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `v6home broker` on pop with `conf`, once it listens for AYIYA.
pub fn start_broker(lab: &Lab, conf: &Path) -> LabChild {
    let c = lab
        .spawn(
            Node::Pop,
            &[BIN, "broker", "--config", conf.to_str().unwrap()],
        )
        .expect("spawn broker");
    c.wait_for_log("AYIYA on", Duration::from_secs(10))
        .expect("broker ready");
    c
}

/// `v6home privacy agent` on host's eth0 with state in `state`, 60 s preferred and 5 min valid
/// lifetimes, `--force`, and `extra` arguments; returns once the agent has taken SLAAC over
/// from the kernel (eth0's `autoconf` is 0), so that a router started next cannot race it.
pub fn start_privacy_agent(lab: &Lab, state: &Path, extra: &[&str]) -> LabChild {
    let mut args = vec![
        BIN,
        "privacy",
        "agent",
        "--iface",
        "eth0",
        "--state-dir",
        state.to_str().unwrap(),
        "--preferred-lifetime",
        "60s",
        "--valid-lifetime",
        "5m",
        "--force",
    ];
    args.extend_from_slice(extra);
    let mut agent = lab.spawn(Node::Host, &args).expect("spawn privacy agent");
    let took_over = wait_until(Duration::from_secs(10), || {
        assert!(
            agent.try_wait().unwrap().is_none(),
            "the privacy agent exited:\n{}",
            agent.log()
        );
        sysctl(lab, Node::Host, "net.ipv6.conf.eth0.autoconf") == "0"
    });
    assert!(
        took_over,
        "the agent did not take over SLAAC:\n{}",
        agent.log()
    );
    agent
}

/// Captures packets matching `filter` on `node`'s `dev` into `pcap` with `tcpdump -U` (every
/// packet written at once, so nothing is lost in a buffer when the capture is stopped), once
/// the capture runs. Stop it with [`LabChild::stop`], then decode with [`tshark_fields`].
pub fn capture(lab: &Lab, node: Node, dev: &str, filter: &str, pcap: &Path) -> LabChild {
    let c = lab
        .spawn(
            node,
            &[
                "tcpdump",
                "-i",
                dev,
                "-U",
                "-w",
                pcap.to_str().unwrap(),
                filter,
            ],
        )
        .expect("tcpdump");
    c.wait_for_log("listening on", Duration::from_secs(10))
        .expect("capture ready");
    c
}

/// `tshark -r pcap -Y display_filter -T fields -e <field>...` on `node`: one line a packet,
/// the fields separated by tabs.
pub fn tshark_fields(
    lab: &Lab,
    node: Node,
    pcap: &Path,
    display_filter: &str,
    fields: &[&str],
) -> String {
    let mut args = vec![
        "tshark",
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        display_filter,
        "-T",
        "fields",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    lab.exec_ok(node, &args).expect("tshark decode")
}

/// Runs `v6home check --json` on host and returns (exit ok, parsed report).
pub fn check(lab: &Lab, url: &str) -> (bool, serde_json::Value) {
    let out = lab
        .exec(
            Node::Host,
            &[BIN, "check", "--json", "--wait", "1", "--url", url],
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

/// The verdict of check `id` in a `v6home check --json` report, and its "detail / hint".
pub fn verdict<'a>(report: &'a serde_json::Value, id: &str) -> (&'a str, String) {
    let line = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} line in {report}"));
    (
        line["verdict"].as_str().unwrap(),
        format!("{} / {}", line["detail"], line["hint"]),
    )
}

/// The nftables table the drop rules go in (one per namespace).
pub const NFT_TABLE: &str = "v6h_t";

/// Adds table [`NFT_TABLE`] on `node` with one chain on `hook` (`input`, `forward`, ...)
/// holding `rule`, e.g. `udp dport 53 drop`.
pub fn nft_drop(lab: &Lab, node: Node, hook: &str, rule: &str) {
    let script = format!(
        "nft add table inet {NFT_TABLE} && \
         nft 'add chain inet {NFT_TABLE} c {{ type filter hook {hook} priority 0; }}' && \
         nft add rule inet {NFT_TABLE} c {rule}"
    );
    lab.exec_ok(node, &["sh", "-c", &script]).unwrap();
}

/// Removes what [`nft_drop`] added on `node`.
pub fn nft_clear(lab: &Lab, node: Node) {
    lab.exec_ok(node, &["nft", &format!("delete table inet {NFT_TABLE}")])
        .unwrap();
}

/// A directory under the system's temporary dir, removed (with its content) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, empty `<temp dir>/<tag>-<pid>`.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

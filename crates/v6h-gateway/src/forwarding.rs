//! IPv6 forwarding for the router.
//!
//! Forwarding is the one setting where the `all.` key is right: in Linux,
//! `net.ipv6.conf.all.forwarding` is the switch that makes the kernel route between
//! interfaces, and writing it sets every interface's own `forwarding` (which only decides
//! host-or-router behaviour per interface, such as ignoring RAs unless `accept_ra = 2`). A
//! per-interface key alone would not forward anything. Everything else v6home writes uses
//! per-interface or `default.` keys.

use std::path::{Path, PathBuf};

/// The sysctl key v6home sets for forwarding.
pub const FORWARDING_KEY: &str = "net.ipv6.conf.all.forwarding";
/// The drop-in written by `--persist`.
pub const DROP_IN: &str = "etc/sysctl.d/60-v6home-forwarding.conf";

/// The contents of the persistent drop-in.
pub fn drop_in_text() -> String {
    format!(
        "# Written by `v6home gateway --persist`: the home router forwards IPv6.\n\
         # all.forwarding is the kernel's routing switch (see v6home docs/gateway.md).\n\
         {FORWARDING_KEY} = 1\n"
    )
}

fn proc_path(root: &Path, key: &str) -> PathBuf {
    root.join("proc/sys").join(key.replace('.', "/"))
}

/// Turns forwarding on now (under `root`, normally `/`) and returns the previous value.
pub fn enable(root: &Path) -> std::io::Result<String> {
    let path = proc_path(root, FORWARDING_KEY);
    let before = std::fs::read_to_string(&path)?.trim().to_string();
    if before != "1" {
        std::fs::write(&path, "1\n")?;
    }
    let after = std::fs::read_to_string(&path)?;
    if after.trim() != "1" {
        return Err(std::io::Error::other(format!(
            "{} reads {:?} after writing 1",
            path.display(),
            after.trim()
        )));
    }
    Ok(before)
}

/// Sets forwarding back to `value` (as returned by [`enable`]) under `root`.
pub fn restore(root: &Path, value: &str) -> std::io::Result<()> {
    let path = proc_path(root, FORWARDING_KEY);
    if std::fs::read_to_string(&path)?.trim() != value.trim() {
        std::fs::write(&path, format!("{}\n", value.trim()))?;
    }
    Ok(())
}

/// Writes the persistent drop-in under `root` and returns its path. An error names the file
/// (e.g. `writing /etc/sysctl.d/60-v6home-forwarding.conf: Read-only file system (os error
/// 30)` under a unit whose ReadWritePaths= leaves /etc/sysctl.d out).
pub fn persist(root: &Path) -> std::io::Result<PathBuf> {
    let path = root.join(DROP_IN);
    let named = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(named)?;
    }
    std::fs::write(&path, drop_in_text()).map_err(named)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_and_persist_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let key = proc_path(root.path(), FORWARDING_KEY);
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, "0\n").unwrap();
        assert_eq!(enable(root.path()).unwrap(), "0");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "1\n");
        assert_eq!(enable(root.path()).unwrap(), "1");
        restore(root.path(), "0").unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "0\n");
        enable(root.path()).unwrap();
        let p = persist(root.path()).unwrap();
        let text = std::fs::read_to_string(p).unwrap();
        assert!(text.ends_with("net.ipv6.conf.all.forwarding = 1\n"));
        assert!(!text.contains("accept_dad"));
    }

    #[test]
    fn a_failed_persist_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        // etc/sysctl.d is a file: the directory cannot be made.
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/sysctl.d"), "").unwrap();
        let e = persist(root.path()).unwrap_err().to_string();
        let want = root.path().join(DROP_IN);
        assert!(
            e.starts_with(&format!("writing {}: ", want.display())),
            "{e}"
        );
    }
}

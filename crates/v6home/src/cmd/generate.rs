//! `v6home generate` (hidden): the man pages and shell completions of the Debian package,
//! generated from the clap command itself so that they always match the binary.
//!
//! `v6home generate --out DIR` writes `DIR/man/v6home.8` and one page per subcommand
//! (`v6home-gateway.8`, `v6home-ra-dump.8`, …), and `DIR/completions/` for bash
//! (`v6home`), zsh (`_v6home`) and fish (`v6home.fish`). The configuration file pages,
//! gateway.toml(5) and broker.toml(5), are written by hand in `dist/man/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `v6home generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `man/` and `completions/` into (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// The man pages' section: `v6home` is a system administration tool and daemon.
const SECTION: &str = "8";

/// Runs `v6home generate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cmd = crate::Cli::command();
    let pages = write_man_pages(cmd.clone(), &args.out.join("man"))?;
    let completions = write_completions(cmd, &args.out.join("completions"))?;
    for p in pages.iter().chain(&completions) {
        println!("{}", p.display());
    }
    Ok(())
}

/// Writes one section-8 page for `cmd` and for every visible subcommand below it; returns
/// the files written.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_page(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_page(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub, dir, written)?;
    }
    let version = cmd.get_version().unwrap_or(env!("CARGO_PKG_VERSION"));
    let page = clap_mangen::Man::new(cmd.clone())
        .section(SECTION)
        .source(format!("v6home {version}"))
        .manual("v6home");
    let path = page
        .generate_to(dir)
        .with_context(|| format!("writing a man page into {}", dir.display()))?;
    written.push(path);
    Ok(())
}

/// Writes the bash, zsh and fish completions of `cmd`; returns the files written.
pub fn write_completions(mut cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, "v6home", dir)
            .with_context(|| format!("writing {shell} completions into {}", dir.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand_and_three_completions() {
        let dir = tempfile_dir();
        let pages = write_man_pages(crate::Cli::command(), &dir.join("man")).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "v6home.8",
            "v6home-gateway.8",
            "v6home-broker.8",
            "v6home-ra.8",
            "v6home-dhcp6.8",
            "v6home-tunnel.8",
            "v6home-privacy.8",
            "v6home-check.8",
            "v6home-lab.8",
            "v6home-ra-dump.8",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("generate")), "{names:?}");
        let gw = std::fs::read_to_string(dir.join("man/v6home-gateway.8")).unwrap();
        assert!(gw.starts_with(".ie"), "{}", &gw[..40]);
        assert!(gw.contains(".TH v6home-gateway 8"), "{gw}");
        assert!(gw.contains("persist"), "{gw}");
        let comps = write_completions(crate::Cli::command(), &dir.join("completions")).unwrap();
        let names: Vec<_> = comps.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["v6home.bash", "_v6home", "v6home.fish"]);
        let bash = std::fs::read_to_string(&comps[0]).unwrap();
        assert!(bash.contains("v6home__subcmd__gateway"), "{bash}");
        let fish = std::fs::read_to_string(&comps[2]).unwrap();
        assert!(fish.contains("-a \"gateway\""), "{fish}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("v6home-generate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}

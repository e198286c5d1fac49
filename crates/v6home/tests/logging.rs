//! The binary's logging front end, as a user or systemd meets it: a bad `--log-level` or
//! `V6HOME_LOG` is an error, log lines on a pipe carry no ANSI codes, and a stderr that is
//! the journal stream (`JOURNAL_STREAM`) switches to the journal's native protocol.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};

fn v6home() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_v6home"));
    c.env_remove("V6HOME_LOG")
        .env_remove("NO_COLOR")
        .env_remove("JOURNAL_STREAM");
    c
}

/// `v6home dhcp6 -k KEY -c MISSING lo`: logs the WARN about the ignored `-k`, then fails on the
/// missing file. Runs as any user and touches nothing.
fn dhcp6_warning(cmd: &mut Command) -> Output {
    cmd.args([
        "dhcp6",
        "-f",
        "-k",
        "/nonexistent/key",
        "-c",
        "/nonexistent/v6home-test/dhcp6s.conf",
        "lo",
    ])
    .output()
    .unwrap()
}

#[test]
fn an_invalid_log_level_is_an_error() {
    for args in [
        &["--log-level", "verbose", "dhcp6", "check", "/dev/null"][..],
        &["--log-level", "v6h_ra=loud", "dhcp6", "check", "/dev/null"],
    ] {
        let out = v6home().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("invalid value") && err.contains("--log-level"),
            "{err}"
        );
    }
    let out = v6home()
        .env("V6HOME_LOG", "chatty")
        .args(["dhcp6", "check", "/dev/null"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("\"chatty\" is not a level"), "{err}");
}

#[test]
fn log_lines_on_a_pipe_have_no_ansi_codes() {
    let out = dhcp6_warning(&mut v6home());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARN") && err.contains("-k/-p ignored"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "ANSI escape on a pipe: {err:?}");
    // The config warning is at WARN, not INFO: `--log-level warn` keeps it.
    let out = dhcp6_warning(v6home().args(["--log-level", "warn"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-k/-p ignored"));
}

#[test]
fn journal_stream_naming_stderr_selects_the_journal() {
    let dir = std::env::temp_dir().join(format!("v6home-logging-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stderr");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let out = dhcp6_warning(
        v6home()
            .env("JOURNAL_STREAM", &stream)
            .stderr(file.try_clone().unwrap()),
    );
    assert!(!out.status.success());
    let err = std::fs::read_to_string(&path).unwrap();
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        // The warning went to the journal, not to the file.
        assert!(!err.contains("-k/-p ignored"), "{err}");
    } else {
        // No journald here: the process says so once and logs plain lines instead.
        assert!(err.contains("journal socket"), "{err}");
        assert!(
            err.contains("-k/-p ignored") && !err.contains('\u{1b}'),
            "{err}"
        );
    }
    // The same variable naming another file (inherited by a child whose stderr was
    // redirected) keeps plain stderr.
    let file2 = std::fs::File::create(dir.join("stderr2")).unwrap();
    let out = dhcp6_warning(
        v6home()
            .env("JOURNAL_STREAM", &stream)
            .stderr(file2.try_clone().unwrap()),
    );
    assert!(!out.status.success());
    let err = std::fs::read_to_string(dir.join("stderr2")).unwrap();
    assert!(
        err.contains("-k/-p ignored") && !err.contains("journal socket"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

//! PID files for every daemon (`ra -p`, `dhcp6 -P`, aiccu.conf `pidfile`, the gateway's state
//! directory), held under an exclusive `flock` for the daemon's whole life.
//!
//! * A second instance on the same file finds the lock taken and refuses to start, naming the
//!   PID that holds it.
//! * The file is removed on exit only while it still holds our own PID, so an instance that is
//!   still sending its final packets never deletes its successor's file.
//! * The lock belongs to the open file, which `fork` shares: take it before detaching (so a
//!   clash is reported on the terminal), then call [`PidFile::rewrite`] in the child.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Why a PID file could not be taken.
#[derive(Debug)]
pub enum PidFileError {
    /// Another process holds the lock.
    Held {
        /// The file.
        path: PathBuf,
        /// The PID written in it, if readable.
        pid: Option<u32>,
    },
    /// The file could not be opened, locked or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl std::fmt::Display for PidFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidFileError::Held {
                path,
                pid: Some(pid),
            } => write!(
                f,
                "{}: already in use by a running instance (pid {pid}); stop it first",
                path.display()
            ),
            PidFileError::Held { path, pid: None } => write!(
                f,
                "{}: already in use by a running instance; stop it first",
                path.display()
            ),
            PidFileError::Io {
                path, what, source, ..
            } => write!(f, "{what} PID file {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for PidFileError {}

/// A PID file locked for this process's lifetime; removed on drop if it still holds our PID.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: Flock<File>,
    pid: u32,
}

fn io_err(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> PidFileError {
    let path = path.to_path_buf();
    move |source| PidFileError::Io { path, what, source }
}

/// The PID written in `file` (first line), if any.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.lines().next()?.trim().parse().ok()
}

impl PidFile {
    /// Opens (creating it, mode 0644) and locks `path`, then writes this process's PID.
    /// Fails with [`PidFileError::Held`] when another process holds the lock.
    pub fn acquire(path: &Path) -> Result<PidFile, PidFileError> {
        // A predecessor may unlink the file between our open and our lock: then we hold a
        // lock on a file nobody else will open. Check that the locked file is still the one
        // at `path`, and start over if not.
        for _ in 0..8 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map_err(io_err(path, "opening"))?;
            let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(f) => f,
                Err((mut file, Errno::EWOULDBLOCK)) => {
                    return Err(PidFileError::Held {
                        path: path.to_path_buf(),
                        pid: read_pid(&mut file),
                    });
                }
                Err((_, errno)) => {
                    return Err(io_err(path, "locking")(std::io::Error::from(errno)));
                }
            };
            let locked = file.metadata().map_err(io_err(path, "reading"))?;
            match std::fs::metadata(path) {
                Ok(m) if m.ino() == locked.ino() && m.dev() == locked.dev() => {
                    let mut pf = PidFile {
                        path: path.to_path_buf(),
                        pid: 0,
                        file,
                    };
                    pf.rewrite()?;
                    return Ok(pf);
                }
                _ => continue,
            }
        }
        Err(io_err(path, "locking")(std::io::Error::other(
            "the file keeps being replaced",
        )))
    }

    /// Writes this process's PID into the file (again): call it after `fork`/`daemon`.
    pub fn rewrite(&mut self) -> Result<(), PidFileError> {
        let pid = std::process::id();
        let path = self.path.clone();
        self.file.set_len(0).map_err(io_err(&path, "truncating"))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err(&path, "writing"))?;
        self.file
            .write_all(format!("{pid}\n").as_bytes())
            .map_err(io_err(&path, "writing"))?;
        self.pid = pid;
        Ok(())
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only the process that wrote the file removes it, and only while it still names us
        // and is still the file we locked (the lock is held until after the unlink).
        if self.pid != std::process::id() {
            return;
        }
        let ours = read_pid(&mut self.file) == Some(self.pid);
        let same = match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if ours && same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "v6h-pidfile-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("x.pid")
    }

    #[test]
    fn second_holder_is_refused_with_the_first_pid() {
        let p = temp("held");
        let first = PidFile::acquire(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock conflicts between two open files even within one process.
        match PidFile::acquire(&p) {
            Err(PidFileError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(!p.exists(), "removed on drop");
        let again = PidFile::acquire(&p).unwrap();
        drop(again);
    }

    #[test]
    fn a_file_naming_another_pid_is_left_alone() {
        let p = temp("other");
        let pf = PidFile::acquire(&p).unwrap();
        // A successor's PID (as if it had taken over the path): not ours, so not removed.
        std::fs::write(&p, "4194305\n").unwrap();
        drop(pf);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4194305\n");
    }

    #[test]
    fn a_replaced_file_is_left_alone() {
        let p = temp("replaced");
        let pf = PidFile::acquire(&p).unwrap();
        // The path now names a new file (a successor removed ours and wrote its own).
        std::fs::remove_file(&p).unwrap();
        let successor = PidFile::acquire(&p).unwrap();
        drop(pf);
        assert!(
            p.exists(),
            "the successor's file survives the old instance's exit"
        );
        drop(successor);
        assert!(!p.exists());
    }

    #[test]
    fn stale_file_without_a_lock_is_taken_over() {
        let p = temp("stale");
        std::fs::write(&p, "12345\n").unwrap();
        let pf = PidFile::acquire(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pf);
    }

    #[test]
    fn unwritable_place_is_an_io_error_with_the_path() {
        let e = PidFile::acquire(Path::new("/nonexistent-v6h-dir/x.pid")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/nonexistent-v6h-dir/x.pid"), "{text}");
        assert!(matches!(e, PidFileError::Io { .. }));
    }
}

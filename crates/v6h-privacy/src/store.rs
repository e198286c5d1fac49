//! Persistent agent state (spec A5, A6): the RFC 7217 secret key and the DAD counters.
//!
//! - `stable-secret`: 32 random bytes as 64 hex digits and a newline, mode 0600, created
//!   atomically once (write a temporary file, then hard-link it into place, which fails if
//!   another process won). Unreadable or malformed → error: the agent refuses to start rather
//!   than silently changing every stable address.
//! - `slaac-state`: one line per (Net_Iface, Network_ID, prefix):
//!   `<net_iface hex> <network_id hex or -> <prefix> <dad counter>`, rewritten atomically.
//!
//! Parsing and formatting are pure ([`parse_counters`], [`format_counters`], [`parse_secret`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv6Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the secret inside the state directory.
pub const SECRET_FILE: &str = "stable-secret";
/// File name of the DAD counters inside the state directory.
pub const COUNTERS_FILE: &str = "slaac-state";

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file exists but is not 64 hex digits (never regenerated silently).
    #[error(
        "{0}: not a v6home secret (64 hex digits); refusing to start rather than change every stable address"
    )]
    BadSecret(PathBuf),
    /// A malformed counters line.
    #[error("{path}:{line}: malformed DAD counter entry")]
    BadCounters {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The OS random source failed.
    #[error("cannot get random bytes: {0}")]
    Random(String),
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses the secret file content: exactly 64 hex digits (whitespace around allowed).
pub fn parse_secret(content: &str) -> Option<[u8; 32]> {
    let v = unhex(content.trim())?;
    v.try_into().ok()
}

/// A key of the DAD counter table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CounterKey {
    /// Net_Iface.
    pub net_iface: Vec<u8>,
    /// Network_ID.
    pub network_id: Vec<u8>,
    /// The /64 prefix.
    pub prefix: Ipv6Addr,
}

/// Parses the counters file; `Err(line)` names the first malformed line (1-based).
pub fn parse_counters(content: &str) -> Result<BTreeMap<CounterKey, u32>, usize> {
    let mut m = BTreeMap::new();
    for (n, line) in content.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        let [ni, nid, prefix, counter] = f.as_slice() else {
            return Err(n + 1);
        };
        let net_iface = unhex(ni).ok_or(n + 1)?;
        let network_id = if *nid == "-" {
            Vec::new()
        } else {
            unhex(nid).ok_or(n + 1)?
        };
        let prefix: Ipv6Addr = prefix.parse().map_err(|_| n + 1)?;
        let counter: u32 = counter.parse().map_err(|_| n + 1)?;
        m.insert(
            CounterKey {
                net_iface,
                network_id,
                prefix,
            },
            counter,
        );
    }
    Ok(m)
}

/// Formats the counters file.
pub fn format_counters(m: &BTreeMap<CounterKey, u32>) -> String {
    let mut s = String::from("# v6home privacy agent: RFC 7217 DAD counters; never reset\n");
    for (k, v) in m {
        let nid = if k.network_id.is_empty() {
            "-".to_string()
        } else {
            hex(&k.network_id)
        };
        s.push_str(&format!(
            "{} {} {} {}\n",
            hex(&k.net_iface),
            nid,
            k.prefix,
            v
        ));
    }
    s
}

/// The on-disk state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// A store in `dir` (created with mode 0700 if missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Loads the secret, creating it once if absent.
    pub fn secret(&self) -> Result<[u8; 32], StoreError> {
        let path = self.dir.join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(c) => parse_secret(&c).ok_or(StoreError::BadSecret(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut key)
                    .map_err(|e| StoreError::Random(e.to_string()))?;
                let tmp = self
                    .dir
                    .join(format!(".{SECRET_FILE}.{}", std::process::id()));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(|e| io(&tmp, e))?;
                f.write_all(format!("{}\n", hex(&key)).as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| io(&tmp, e))?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(key),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let c = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                        parse_secret(&c).ok_or(StoreError::BadSecret(path))
                    }
                    Err(e) => Err(io(&path, e)),
                }
            }
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Loads all DAD counters (empty if the file does not exist).
    pub fn counters(&self) -> Result<BTreeMap<CounterKey, u32>, StoreError> {
        let path = self.dir.join(COUNTERS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(c) => parse_counters(&c).map_err(|line| StoreError::BadCounters { path, line }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Saves one counter (read-modify-write, atomic rename).
    pub fn save_counter(&self, key: CounterKey, counter: u32) -> Result<(), StoreError> {
        let mut m = self.counters()?;
        m.insert(key, counter);
        let path = self.dir.join(COUNTERS_FILE);
        let tmp = self
            .dir
            .join(format!(".{COUNTERS_FILE}.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        f.write_all(format_counters(&m).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_created_once_0600_and_stable() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let a = s.secret().unwrap();
        let b = s.secret().unwrap();
        assert_eq!(a, b);
        let meta = std::fs::metadata(d.path().join(SECRET_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn malformed_secret_refused_not_regenerated() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(SECRET_FILE), "not hex\n").unwrap();
        let s = Store::open(d.path()).unwrap();
        assert!(matches!(s.secret(), Err(StoreError::BadSecret(_))));
        assert_eq!(
            std::fs::read_to_string(d.path().join(SECRET_FILE)).unwrap(),
            "not hex\n"
        );
        assert!(parse_secret(&"ab".repeat(31)).is_none());
        assert!(parse_secret(&"ab".repeat(32)).is_some());
        assert!(parse_secret("é".repeat(32).as_str()).is_none());
    }

    #[test]
    fn counters_round_trip_and_persist() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert!(s.counters().unwrap().is_empty());
        let k = CounterKey {
            net_iface: b"eth0".to_vec(),
            network_id: vec![],
            prefix: "2001:db8:1:2::".parse().unwrap(),
        };
        s.save_counter(k.clone(), 1).unwrap();
        let k2 = CounterKey {
            network_id: b"ssid".to_vec(),
            ..k.clone()
        };
        s.save_counter(k2.clone(), 3).unwrap();
        let m = Store::open(d.path()).unwrap().counters().unwrap();
        assert_eq!(m.get(&k), Some(&1));
        assert_eq!(m.get(&k2), Some(&3));
        assert_eq!(parse_counters(&format_counters(&m)).unwrap(), m);
    }

    #[test]
    fn malformed_counters_named_by_line() {
        assert_eq!(parse_counters("# c\n65746830 - 2001:db8:: x\n"), Err(2));
        assert_eq!(parse_counters("zz - 2001:db8:: 1\n"), Err(1));
        assert_eq!(parse_counters("00 - 2001:db8::\n"), Err(1));
    }
}

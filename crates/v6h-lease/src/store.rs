//! Durable lease storage: the [`LeaseStore`] trait and [`JournalStore`], an append-only journal.
//!
//! # Journal format
//! An 8-byte magic `V6HLJ\0\0\x01`, then frames `len: u32 LE | crc32c(payload): u32 LE |
//! payload`, each payload one [`Change`] ([`crate::record::encode`]). Opening replays the
//! frames into an in-memory index. A torn tail (a damaged or incomplete last frame with no
//! valid frame after it, what a crash mid-append leaves) is cut off. Damage anywhere else is
//! skipped: replay resynchronises on the next offset where a whole frame validates and keeps
//! every valid record; the damaged file is copied to `<journal>.corrupt-<unix time>` and the
//! journal rewritten from the records kept ([`Recovery`] says what was skipped). When the journal grows well past the live set it is compacted: a snapshot is
//! written to a temporary file, fsynced, renamed over the journal, and the directory fsynced.
//!
//! # Group commit
//! Callers [`submit`](JournalStore::submit) changes and wait on the returned
//! [`CommitTicket`] (or call [`LeaseStore::commit`], which does both). One commit thread
//! drains everything queued, writes it with one `write`, calls `fdatasync` once, and then
//! completes every waiter: under load, many commits share one fsync. A ticket completes only
//! after its changes are on disk, so a Reply sent after `wait` never promises a lost lease.

use crate::crc32c::crc32c;
use crate::record::{Change, DecodeError, LeaseRecord, decode, encode};
use crate::types::{IaKind, Resource};
use crate::view::LeaseView;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

const MAGIC: &[u8; 8] = b"V6HLJ\0\0\x01";
/// Larger than any record can be (two 16-bit-length fields plus fixed fields).
const MAX_FRAME: usize = 256 * 1024;
const COMPACT_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// Errors of a lease store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on the journal.
    #[error("lease journal {path}: {source}")]
    Io {
        /// The journal path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a lease journal.
    #[error("{0} is not a v6home lease journal (bad magic)")]
    BadMagic(PathBuf),
    /// A previous write failed and the journal could not be repaired; no more commits.
    #[error("lease journal {0} failed earlier and is read-only until restart")]
    Poisoned(PathBuf),
    /// Another process (or store) has the journal open for writing.
    #[error("lease journal {0} is in use by another process (lock file {0}.lock)")]
    Locked(PathBuf),
    /// The commit thread is gone.
    #[error("lease journal is closed")]
    Closed,
    /// The group commit this change was part of failed (the message says why).
    #[error("lease commit failed: {0}")]
    Commit(String),
}

/// A durable set of leases.
pub trait LeaseStore: Send + Sync {
    /// Applies `changes` durably; returns only once they are on stable storage.
    fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError>;
    /// Every live record (for [`Engine::restore`](crate::Engine::restore) at start-up).
    fn load(&self) -> Vec<LeaseRecord>;
    /// The record for exactly this address or prefix, O(1).
    fn get(&self, resource: &Resource) -> Option<LeaseRecord>;
    /// The records of one IA, O(1).
    fn by_client(&self, link: &str, duid: &[u8], kind: IaKind, iaid: u32) -> Vec<LeaseRecord>;
    /// Every live record as of `now`, for listings.
    fn list(&self, now: u64) -> Vec<LeaseView> {
        let mut v: Vec<LeaseView> = self
            .load()
            .iter()
            .map(|r| LeaseView::new(r, false, now))
            .collect();
        v.sort_by(|a, b| (&a.link, &a.lease).cmp(&(&b.link, &b.lease)));
        v
    }
}

/// Counters of a [`JournalStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `fdatasync` calls made for commits.
    pub fsyncs: u64,
    /// Commit batches written (one fsync each).
    pub batches: u64,
    /// Tickets (caller commits) completed.
    pub commits: u64,
    /// Change records written.
    pub records: u64,
    /// Largest number of tickets in one batch.
    pub max_batch: u64,
    /// Compactions done.
    pub compactions: u64,
    /// Total time spent in write + `fdatasync`, in microseconds.
    pub fsync_micros_total: u64,
    /// Longest single write + `fdatasync`, in microseconds.
    pub fsync_micros_max: u64,
    /// Write + `fdatasync` times as a histogram: entry `i` counts the syncs that took at
    /// most [`FSYNC_BUCKETS_MICROS`]`[i]` µs and more than the bound before it (not
    /// cumulative; the last entry counts the slower ones).
    pub fsync_buckets: [u64; FSYNC_BUCKETS_MICROS.len() + 1],
    /// Damaged journal regions skipped at open (each lost at least one record).
    pub corrupt_regions: u64,
    /// Bytes in those regions.
    pub corrupt_bytes: u64,
    /// Bytes of a torn tail cut at open.
    pub torn_tail_bytes: u64,
}

/// Upper bounds (µs) of the fsync-time histogram in [`StoreStats::fsync_buckets`].
pub const FSYNC_BUCKETS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// The histogram slot of one fsync time.
fn fsync_bucket(micros: u64) -> usize {
    FSYNC_BUCKETS_MICROS
        .iter()
        .position(|&b| micros <= b)
        .unwrap_or(FSYNC_BUCKETS_MICROS.len())
}

/// The resources of the IAs whose client key hashes to one value: almost always one
/// resource of one IA, so it is kept inline; a hash collision between two IAs only makes a
/// longer list, which lookups filter by comparing the records themselves.
#[derive(Debug)]
enum ClientSlot {
    One(Resource),
    Many(Vec<Resource>),
}

impl ClientSlot {
    fn as_slice(&self) -> &[Resource] {
        match self {
            ClientSlot::One(r) => std::slice::from_ref(r),
            ClientSlot::Many(v) => v,
        }
    }

    fn push(&mut self, res: Resource) {
        match self {
            ClientSlot::One(r) => *self = ClientSlot::Many(vec![*r, res]),
            ClientSlot::Many(v) => v.push(res),
        }
    }

    /// Removes `res`; returns whether the slot is now empty.
    fn remove(&mut self, res: &Resource) -> bool {
        match self {
            ClientSlot::One(r) => r == res,
            ClientSlot::Many(v) => {
                v.retain(|r| r != res);
                match v.as_slice() {
                    [] => true,
                    [one] => {
                        *self = ClientSlot::One(*one);
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    /// Moves `res` to the end (where a remove + push would put it).
    fn move_to_end(&mut self, res: &Resource) {
        if let ClientSlot::Many(v) = self
            && let Some(i) = v.iter().position(|r| r == res)
        {
            let r = v.remove(i);
            v.push(r);
        }
    }
}

/// A `Hasher` for keys that already are keyed hashes (the `by_client` map): passes the
/// `u64` through instead of hashing it again.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in to stay correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type PassThroughState = std::hash::BuildHasherDefault<PassThrough>;

/// The in-memory view of the journal: the live record of every resource and the resources
/// of every IA. Applying a change is on the commit path of every Reply, so it is kept cheap:
///
/// * both maps use `ahash` with random keys (fast, and still resistant to chosen DUIDs);
/// * `by_client` is keyed by a randomly keyed hash of (link, DUID, kind, IAID), so applying
///   a change clones no link name or DUID; lookups verify candidates against their records;
/// * a `Put` that renews a lease for the same IA replaces the record in place;
/// * there is no expiry order: the engine expires leases itself, and
///   [`JournalStore::expired`] (a tool path) scans the live set instead.
struct Index {
    by_resource: HashMap<Resource, LeaseRecord, ahash::RandomState>,
    by_client: HashMap<u64, ClientSlot, PassThroughState>,
    ia_hasher: IaHasher,
}

/// Hashes the identity of an IA (link, DUID, kind, IAID) with a random key.
struct IaHasher {
    state: ahash::RandomState,
    /// Tests shrink the hash to a few values to exercise collisions.
    #[cfg(test)]
    mask: u64,
}

impl IaHasher {
    fn hash(&self, link: &str, duid: &[u8], kind: IaKind, iaid: u32) -> u64 {
        let h = self.state.hash_one((link, duid, kind, iaid));
        #[cfg(test)]
        let h = h & self.mask;
        h
    }

    fn of(&self, r: &LeaseRecord) -> u64 {
        self.hash(&r.link, &r.duid, r.kind(), r.iaid)
    }
}

impl Default for Index {
    fn default() -> Self {
        Index {
            by_resource: HashMap::with_hasher(ahash::RandomState::new()),
            by_client: HashMap::default(),
            ia_hasher: IaHasher {
                state: ahash::RandomState::new(),
                #[cfg(test)]
                mask: u64::MAX,
            },
        }
    }
}

impl Index {
    fn unlink_client(&mut self, h: u64, res: &Resource) {
        if let Some(slot) = self.by_client.get_mut(&h)
            && slot.remove(res)
        {
            self.by_client.remove(&h);
        }
    }

    fn link_client(&mut self, h: u64, res: Resource) {
        match self.by_client.entry(h) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(res),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ClientSlot::One(res));
            }
        }
    }

    fn apply(&mut self, c: Change) {
        match c {
            Change::Remove(res) => {
                if let Some(old) = self.by_resource.remove(&res) {
                    let h = self.ia_hasher.of(&old);
                    self.unlink_client(h, &res);
                }
            }
            Change::Put(r) => {
                let res = r.resource;
                let new_h = self.ia_hasher.of(&r);
                let same_ia = |old: &LeaseRecord| {
                    old.iaid == r.iaid && old.duid == r.duid && old.link == r.link
                };
                match self.by_resource.get_mut(&res) {
                    Some(old) => {
                        if same_ia(old) {
                            *old = r;
                            if let Some(slot) = self.by_client.get_mut(&new_h) {
                                slot.move_to_end(&res);
                            }
                        } else {
                            let old_h = self.ia_hasher.of(old);
                            *old = r;
                            self.unlink_client(old_h, &res);
                            self.link_client(new_h, res);
                        }
                    }
                    None => {
                        self.by_resource.insert(res, r);
                        self.link_client(new_h, res);
                    }
                }
            }
        }
    }

    fn expired(&self, now: u64) -> Vec<Resource> {
        let mut v: Vec<(u64, Resource)> = self
            .by_resource
            .values()
            .filter(|r| r.expires <= now)
            .map(|r| (r.expires, r.resource))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, r)| r).collect()
    }

    fn by_client(&self, link: &str, duid: &[u8], kind: IaKind, iaid: u32) -> Vec<LeaseRecord> {
        let h = self.ia_hasher.hash(link, duid, kind, iaid);
        let Some(slot) = self.by_client.get(&h) else {
            return Vec::new();
        };
        slot.as_slice()
            .iter()
            .filter_map(|res| self.by_resource.get(res))
            .filter(|r| r.iaid == iaid && r.kind() == kind && r.duid == duid && r.link == link)
            .cloned()
            .collect()
    }
}

struct Ticket {
    done: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
}

/// Who is told when a commit is durable.
enum Waiter {
    Ticket(Arc<Ticket>),
    Callback(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
    /// Also gets the changes back when the commit failed.
    Returning(FailedCallback),
}

type FailedCallback = Box<dyn FnOnce(Result<(), (StoreError, Vec<Change>)>) + Send>;

impl Waiter {
    /// Completes the waiter; `changes` are the ones that failed (empty on success).
    fn complete(self, r: Result<(), String>, changes: Vec<Change>) {
        match self {
            Waiter::Ticket(t) => {
                *lock(&t.done) = Some(r);
                t.cv.notify_all();
            }
            Waiter::Callback(f) => f(r.map_err(StoreError::Commit)),
            Waiter::Returning(f) => f(r.map_err(|e| (StoreError::Commit(e), changes))),
        }
    }
}

/// A pending commit; [`wait`](CommitTicket::wait) returns once it is durable.
pub struct CommitTicket {
    ticket: Arc<Ticket>,
}

impl CommitTicket {
    /// Blocks until the changes are on disk (or the write failed).
    pub fn wait(self) -> Result<(), StoreError> {
        let mut g = lock(&self.ticket.done);
        loop {
            if let Some(r) = g.take() {
                return r.map_err(StoreError::Commit);
            }
            g = self.ticket.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Queue {
    items: Vec<(Vec<Change>, Waiter)>,
    closed: bool,
}

struct Writer {
    file: File,
    len: u64,
    poisoned: bool,
}

struct Shared {
    path: PathBuf,
    /// Held for the store's lifetime so two writers never share a journal (a lock file, since
    /// compaction replaces the journal's inode).
    _lock: nix::fcntl::Flock<File>,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    writer: Mutex<Writer>,
    index: RwLock<Index>,
    fsyncs: AtomicU64,
    batches: AtomicU64,
    commits: AtomicU64,
    records: AtomicU64,
    max_batch: AtomicU64,
    compactions: AtomicU64,
    fsync_micros_total: AtomicU64,
    fsync_micros_max: AtomicU64,
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS_MICROS.len() + 1],
    /// What the replay at open found.
    recovery: Recovery,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The embedded append-only journal store with group commit.
pub struct JournalStore {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What replaying a journal found besides its valid records: damage that was skipped or cut.
///
/// Only a **torn tail** is cut: a damaged or incomplete frame with no valid frame anywhere
/// after it (what a crash in the middle of an append leaves). Any other damage is a
/// **skipped region**: the bytes from a frame that does not validate up to the next offset
/// where a whole frame (length in range, CRC32C, decodable payload) validates again. Replay
/// resynchronises there, so every valid record before and after the damage is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Valid frames replayed.
    pub records: u64,
    /// Damaged regions skipped between valid frames; each held at least one record, so this
    /// is also a lower bound of the records lost.
    pub skipped_regions: u64,
    /// Bytes in the skipped regions.
    pub skipped_bytes: u64,
    /// Bytes of the torn tail (0 if none); the tail held at most one record.
    pub torn_tail_bytes: u64,
    /// Where the damaged journal was copied before it was rewritten (set by
    /// [`JournalStore::open`] when regions were skipped).
    pub corrupt_copy: Option<PathBuf>,
}

impl Recovery {
    /// Whether anything other than a torn tail was found.
    pub fn corrupt(&self) -> bool {
        self.skipped_regions > 0
    }
}

/// What replaying a journal found.
#[derive(Default)]
struct Replay {
    index: Index,
    /// End of the last valid frame (where appends continue); 0 for an empty/new file.
    good_len: u64,
    file_len: u64,
    recovery: Recovery,
}

/// The frame at the start of `b`, if it is whole and valid: its change and its length.
fn frame_at(b: &[u8]) -> Result<(Change, usize), FrameError> {
    let h: [u8; 8] = b
        .get(..8)
        .ok_or(FrameError::Truncated)?
        .try_into()
        .map_err(|_| FrameError::Truncated)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len == 0 || len > MAX_FRAME {
        return Err(FrameError::Length(len));
    }
    let payload = b.get(8..8 + len).ok_or(FrameError::Truncated)?;
    if crc32c(payload) != crc {
        return Err(FrameError::Checksum);
    }
    Ok((decode(payload)?, 8 + len))
}

/// The first offset at or after `from` where a whole valid frame starts. Every offset is
/// tried (a damaged length field is never trusted to skip ahead), with cheap checks first:
/// a length in range that fits in the file and a known record tag, before the CRC.
fn resync(b: &[u8], from: usize) -> Option<usize> {
    (from..b.len().saturating_sub(8)).find(|&p| {
        let len = u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize;
        len != 0
            && len <= MAX_FRAME
            && len <= b.len() - p - 8
            && crate::record::plausible_tag(b[p + 8])
            && frame_at(&b[p..]).is_ok()
    })
}

fn replay(path: &Path, bytes: &[u8]) -> Result<Replay, StoreError> {
    let mut rep = Replay {
        file_len: bytes.len() as u64,
        ..Default::default()
    };
    if bytes.is_empty() {
        return Ok(rep);
    }
    if bytes.len() < MAGIC.len() {
        // A torn magic is only possible on a file we just created.
        return Ok(rep);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(StoreError::BadMagic(path.to_path_buf()));
    }
    let mut off = MAGIC.len();
    rep.good_len = off as u64;
    while off < bytes.len() {
        match frame_at(&bytes[off..]) {
            Ok((change, n)) => {
                off += n;
                rep.good_len = off as u64;
                rep.recovery.records += 1;
                rep.index.apply(change);
            }
            Err(_) => match resync(bytes, off + 1) {
                Some(next) => {
                    rep.recovery.skipped_regions += 1;
                    rep.recovery.skipped_bytes += (next - off) as u64;
                    off = next;
                }
                None => {
                    rep.recovery.torn_tail_bytes = (bytes.len() - off) as u64;
                    break;
                }
            },
        }
    }
    Ok(rep)
}

/// Replays a whole journal image (as [`JournalStore::open`] would, without touching any
/// file): the live records, ordered by resource, and what was skipped or cut. For tools
/// and fuzzing.
pub fn replay_bytes(bytes: &[u8]) -> Result<(Vec<LeaseRecord>, Recovery), StoreError> {
    let rep = replay(Path::new("<memory>"), bytes)?;
    let mut v: Vec<LeaseRecord> = rep.index.by_resource.into_values().collect();
    v.sort_by_key(|r| r.resource);
    Ok((v, rep.recovery))
}

/// Encodes `changes` as a complete journal image (magic and frames), e.g. to build test
/// journals or fuzz seeds.
pub fn journal_bytes<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for c in changes {
        frame(c, &mut out);
    }
    out
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame is cut short (a torn write).
    #[error("frame truncated")]
    Truncated,
    /// The length field is out of range.
    #[error("frame length {0} out of range")]
    Length(usize),
    /// The checksum does not match.
    #[error("frame checksum mismatch")]
    Checksum,
    /// The payload does not decode.
    #[error("frame payload: {0}")]
    Payload(#[from] DecodeError),
}

/// Iterates the frames of a journal body (after the magic), yielding each change and the
/// number of bytes it used; stops after the first error.
pub fn frames(mut b: &[u8]) -> impl Iterator<Item = Result<(Change, usize), FrameError>> + '_ {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || b.is_empty() {
            return None;
        }
        let r = frame_at(b);
        match &r {
            Ok((_, n)) => b = &b[*n..],
            Err(_) => failed = true,
        }
        Some(r)
    })
}

fn frame(c: &Change, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    encode(c, out);
    let len = (out.len() - at - 8) as u32;
    let crc = crc32c(&out[at + 8..]);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// `<journal>.corrupt-<unix time>`, with `.N` added if that name is taken.
fn corrupt_copy_path(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut base = path.as_os_str().to_owned();
    base.push(format!(".corrupt-{secs}"));
    let mut p = PathBuf::from(&base);
    let mut n = 1;
    while p.exists() {
        let mut b = base.clone();
        b.push(format!(".{n}"));
        p = PathBuf::from(b);
        n += 1;
    }
    p
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

impl JournalStore {
    /// Opens (or creates) the journal at `path`, replays it, repairs a torn tail, and starts
    /// the commit thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let lock_path = {
            let mut p = path.clone().into_os_string();
            p.push(".lock");
            PathBuf::from(p)
        };
        let lock_file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| StoreError::Locked(path.clone()))?;
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut rep = replay(&path, &bytes)?;
        drop(bytes);
        if rep.recovery.corrupt() {
            // Keep the damaged file for inspection before the journal is rewritten below.
            let aside = corrupt_copy_path(&path);
            std::fs::copy(&path, &aside)
                .and_then(|_| File::open(&aside)?.sync_all())
                .map_err(|source| StoreError::Io {
                    path: aside.clone(),
                    source,
                })?;
            rep.recovery.corrupt_copy = Some(aside);
        }
        let mut len = rep.good_len;
        if len == 0 {
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            len = MAGIC.len() as u64;
            if !existed {
                sync_dir(&path).map_err(io)?;
            }
        } else if rep.good_len < rep.file_len {
            file.set_len(rep.good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(len)).map_err(io)?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            _lock: lock,
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed: false,
            }),
            queue_cv: Condvar::new(),
            writer: Mutex::new(Writer {
                file,
                len,
                poisoned: false,
            }),
            index: RwLock::new(rep.index),
            recovery: rep.recovery,
            fsyncs: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            fsync_micros_total: AtomicU64::new(0),
            fsync_micros_max: AtomicU64::new(0),
            fsync_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        });
        if shared.recovery.corrupt() {
            // Rewrite the journal from the records kept, so the damage is not replayed (and
            // re-reported) at every start.
            let mut w = self::lock(&shared.writer);
            compact_locked(&shared, &mut w)?;
        }
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lease-commit".into())
            .spawn(move || commit_loop(&s2))
            .map_err(|source| StoreError::Io { path, source })?;
        Ok(JournalStore {
            shared,
            thread: Some(thread),
        })
    }

    /// Reads the live records of a journal without modifying it (e.g. to list the leases of a
    /// running server); a torn tail is ignored and damaged regions are skipped as at open.
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<LeaseRecord>, StoreError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(replay_bytes(&bytes)
            .map_err(|e| match e {
                StoreError::BadMagic(_) => StoreError::BadMagic(path.to_path_buf()),
                e => e,
            })?
            .0)
    }

    /// What replaying the journal at open found: records replayed, damaged regions skipped
    /// (with the copy of the damaged file), torn tail cut. Log it: a skipped region means
    /// leases were lost.
    pub fn recovery(&self) -> &Recovery {
        &self.shared.recovery
    }

    /// Queues `changes` for the next group commit; wait on the ticket before replying.
    pub fn submit(&self, changes: Vec<Change>) -> CommitTicket {
        let ticket = Arc::new(Ticket {
            done: Mutex::new(None),
            cv: Condvar::new(),
        });
        self.enqueue(changes, Waiter::Ticket(ticket.clone()));
        CommitTicket { ticket }
    }

    /// Queues `changes` and calls `done` on the commit thread once they are durable (or the
    /// write failed); for event loops that must not block (e.g. send on a channel).
    pub fn submit_then(
        &self,
        changes: Vec<Change>,
        done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        self.enqueue(changes, Waiter::Callback(Box::new(done)));
    }

    /// As [`submit_then`](JournalStore::submit_then), but a failed commit hands its changes
    /// back to `done`, so the caller can undo in memory what never reached the disk.
    pub fn submit_then_returning(
        &self,
        changes: Vec<Change>,
        done: impl FnOnce(Result<(), (StoreError, Vec<Change>)>) + Send + 'static,
    ) {
        self.enqueue(changes, Waiter::Returning(Box::new(done)));
    }

    fn enqueue(&self, changes: Vec<Change>, w: Waiter) {
        let mut q = lock(&self.shared.queue);
        if q.closed {
            drop(q);
            w.complete(Err(StoreError::Closed.to_string()), changes);
        } else {
            q.items.push((changes, w));
            self.shared.queue_cv.notify_one();
        }
    }

    /// Counters (fsyncs, batches, commits...).
    pub fn stats(&self) -> StoreStats {
        let s = &self.shared;
        StoreStats {
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            commits: s.commits.load(Ordering::Relaxed),
            records: s.records.load(Ordering::Relaxed),
            max_batch: s.max_batch.load(Ordering::Relaxed),
            compactions: s.compactions.load(Ordering::Relaxed),
            fsync_micros_total: s.fsync_micros_total.load(Ordering::Relaxed),
            fsync_micros_max: s.fsync_micros_max.load(Ordering::Relaxed),
            fsync_buckets: std::array::from_fn(|i| {
                s.fsync_buckets
                    .get(i)
                    .map_or(0, |b| b.load(Ordering::Relaxed))
            }),
            corrupt_regions: s.recovery.skipped_regions,
            corrupt_bytes: s.recovery.skipped_bytes,
            torn_tail_bytes: s.recovery.torn_tail_bytes,
        }
    }

    /// Records whose expiry is at or before `now`, ordered by (expiry, resource) (the engine
    /// normally removes these itself; a standalone tool can commit [`Change::Remove`] for
    /// them). A tool path: it scans every live record, O(n + k log k), so that the commit
    /// path need not keep an expiry order.
    pub fn expired(&self, now: u64) -> Vec<Resource> {
        let idx = self.shared.index.read().unwrap_or_else(|e| e.into_inner());
        idx.expired(now)
    }

    /// Rewrites the journal as a snapshot of the live records (atomically, via rename).
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut w = lock(&self.shared.writer);
        compact_locked(&self.shared, &mut w)
    }

    /// The journal's current size in bytes.
    pub fn journal_len(&self) -> u64 {
        lock(&self.shared.writer).len
    }

    #[cfg(test)]
    fn hold_writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.shared.writer)
    }
}

fn compact_locked(s: &Shared, w: &mut Writer) -> Result<(), StoreError> {
    let tmp = s.path.with_extension("compact.tmp");
    let io = |source| StoreError::Io {
        path: s.path.clone(),
        source,
    };
    let mut buf = MAGIC.to_vec();
    {
        let idx = s.index.read().unwrap_or_else(|e| e.into_inner());
        let mut recs: Vec<&LeaseRecord> = idx.by_resource.values().collect();
        recs.sort_by_key(|r| r.resource);
        for r in recs {
            frame(&Change::Put(r.clone()), &mut buf);
        }
    }
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&buf).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &s.path).map_err(io)?;
    sync_dir(&s.path).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&s.path)
        .map_err(io)?;
    file.seek(SeekFrom::End(0)).map_err(io)?;
    w.file = file;
    w.len = buf.len() as u64;
    s.compactions.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn commit_loop(s: &Shared) {
    let mut buf = Vec::new();
    loop {
        let batch = {
            let mut q = lock(&s.queue);
            while q.items.is_empty() && !q.closed {
                q = s.queue_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.items.is_empty() {
                return;
            }
            std::mem::take(&mut q.items)
        };
        buf.clear();
        let mut nrec = 0u64;
        for (changes, _) in &batch {
            for c in changes {
                frame(c, &mut buf);
                nrec += 1;
            }
        }
        let mut writer = lock(&s.writer);
        let result = write_batch(s, &mut writer, &buf);
        let journal_len = writer.len;
        drop(writer);
        let mut waiters = Vec::with_capacity(batch.len());
        if result.is_ok() {
            let mut idx = s.index.write().unwrap_or_else(|e| e.into_inner());
            s.records.fetch_add(nrec, Ordering::Relaxed);
            s.batches.fetch_add(1, Ordering::Relaxed);
            s.commits.fetch_add(batch.len() as u64, Ordering::Relaxed);
            s.max_batch.fetch_max(batch.len() as u64, Ordering::Relaxed);
            for (changes, w) in batch {
                for c in changes {
                    idx.apply(c);
                }
                waiters.push((w, Vec::new()));
            }
        } else {
            waiters.extend(batch.into_iter().map(|(c, w)| (w, c)));
        }
        // Waiters run without any store lock held, so callbacks may submit again.
        for (w, failed) in waiters {
            w.complete(result.clone(), failed);
        }
        if result.is_ok() {
            let live = s
                .index
                .read()
                .map(|i| i.by_resource.len() as u64)
                .unwrap_or(0);
            if journal_len > COMPACT_MIN_BYTES && journal_len > live.saturating_mul(4 * 100) {
                // Best effort: on failure the old journal stays valid.
                let mut writer = lock(&s.writer);
                let _ = compact_locked(s, &mut writer);
            }
        }
    }
}

fn write_batch(s: &Shared, w: &mut Writer, buf: &[u8]) -> Result<(), String> {
    if w.poisoned {
        return Err(StoreError::Poisoned(s.path.clone()).to_string());
    }
    if buf.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let r = w.file.write_all(buf).and_then(|()| w.file.sync_data());
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    s.fsyncs.fetch_add(1, Ordering::Relaxed);
    s.fsync_micros_total.fetch_add(micros, Ordering::Relaxed);
    s.fsync_micros_max.fetch_max(micros, Ordering::Relaxed);
    if let Some(b) = s.fsync_buckets.get(fsync_bucket(micros)) {
        b.fetch_add(1, Ordering::Relaxed);
    }
    match r {
        Ok(()) => {
            w.len += buf.len() as u64;
            Ok(())
        }
        Err(e) => {
            // Cut off whatever part of the batch reached the file, so later frames are not
            // hidden behind a torn one.
            let len = w.len;
            let repaired = w
                .file
                .set_len(len)
                .and_then(|()| w.file.seek(SeekFrom::Start(len)).map(|_| ()))
                .and_then(|()| w.file.sync_data());
            if repaired.is_err() {
                w.poisoned = true;
            }
            Err(format!("lease journal {}: {e}", s.path.display()))
        }
    }
}

impl LeaseStore for JournalStore {
    fn commit(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.submit(changes).wait()
    }

    fn load(&self) -> Vec<LeaseRecord> {
        let idx = self.shared.index.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<LeaseRecord> = idx.by_resource.values().cloned().collect();
        v.sort_by_key(|r| r.resource);
        v
    }

    fn get(&self, resource: &Resource) -> Option<LeaseRecord> {
        let idx = self.shared.index.read().unwrap_or_else(|e| e.into_inner());
        idx.by_resource.get(resource).cloned()
    }

    fn by_client(&self, link: &str, duid: &[u8], kind: IaKind, iaid: u32) -> Vec<LeaseRecord> {
        let idx = self.shared.index.read().unwrap_or_else(|e| e.into_inner());
        idx.by_client(link, duid, kind, iaid)
    }
}

impl Drop for JournalStore {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queue_cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fsync_times_fall_in_their_bucket() {
        assert_eq!(super::fsync_bucket(0), 0);
        assert_eq!(super::fsync_bucket(100), 0);
        assert_eq!(super::fsync_bucket(101), 1);
        assert_eq!(super::fsync_bucket(1_000_000), 11);
        assert_eq!(super::fsync_bucket(u64::MAX), 12);
    }

    use super::*;
    use crate::record::LeaseState;
    use std::net::Ipv6Addr;

    fn put(i: u32) -> Change {
        Change::Put(LeaseRecord {
            link: "l".into(),
            duid: vec![1, 2, 3],
            iaid: i,
            resource: Resource::Addr(Ipv6Addr::from(u128::from(i) + 1)),
            state: LeaseState::Bound,
            preferred: 1,
            valid: 2,
            expires: 3,
        })
    }

    #[test]
    fn group_commit_batches_queued_commits_into_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let s = JournalStore::open(dir.path().join("j")).unwrap();
        let tickets: Vec<CommitTicket> = {
            // While the writer is busy, 64 commits queue up behind it.
            let _busy = s.hold_writer();
            let t: Vec<CommitTicket> = (0..64).map(|i| s.submit(vec![put(i)])).collect();
            std::thread::sleep(std::time::Duration::from_millis(20));
            t
        };
        for t in tickets {
            t.wait().unwrap();
        }
        let st = s.stats();
        assert_eq!(st.commits, 64);
        assert!(st.fsyncs <= 2, "64 commits took {} fsyncs", st.fsyncs);
        assert!(st.max_batch >= 63);
        assert_eq!(s.load().len(), 64);
    }

    #[test]
    fn submit_then_calls_back_after_the_commit_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let s = JournalStore::open(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..10 {
            let tx = tx.clone();
            s.submit_then(vec![put(i)], move |r| tx.send((i, r.is_ok())).unwrap());
        }
        let mut got: Vec<(u32, bool)> = (0..10).map(|_| rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, (0..10).map(|i| (i, true)).collect::<Vec<_>>());
        // Durable: an independent reader sees all ten.
        assert_eq!(JournalStore::read(&path).unwrap().len(), 10);
    }

    /// The naive index the optimized one must match: owned client keys, expiry order in a
    /// `BTreeSet`, every change as remove + insert (the original implementation).
    #[derive(Default)]
    struct Model {
        by_resource: std::collections::BTreeMap<Resource, LeaseRecord>,
        by_client: HashMap<(String, Vec<u8>, IaKind, u32), Vec<Resource>>,
        by_expiry: std::collections::BTreeSet<(u64, Resource)>,
    }

    impl Model {
        fn apply(&mut self, c: &Change) {
            let res = c.resource();
            if let Some(old) = self.by_resource.remove(&res) {
                let k = (old.link.clone(), old.duid.clone(), old.kind(), old.iaid);
                if let Some(v) = self.by_client.get_mut(&k) {
                    v.retain(|r| *r != res);
                    if v.is_empty() {
                        self.by_client.remove(&k);
                    }
                }
                self.by_expiry.remove(&(old.expires, res));
            }
            if let Change::Put(r) = c {
                self.by_client
                    .entry((r.link.clone(), r.duid.clone(), r.kind(), r.iaid))
                    .or_default()
                    .push(res);
                self.by_expiry.insert((r.expires, res));
                self.by_resource.insert(res, r.clone());
            }
        }

        fn by_client(&self, link: &str, duid: &[u8], kind: IaKind, iaid: u32) -> Vec<LeaseRecord> {
            self.by_client
                .get(&(link.to_string(), duid.to_vec(), kind, iaid))
                .map(|v| v.iter().map(|r| self.by_resource[r].clone()).collect())
                .unwrap_or_default()
        }

        fn expired(&self, now: u64) -> Vec<Resource> {
            self.by_expiry
                .iter()
                .take_while(|(e, _)| *e <= now)
                .map(|&(_, r)| r)
                .collect()
        }
    }

    const LINKS: [&str; 2] = ["a", "b"];
    const DUIDS: [&[u8]; 3] = [&[1], &[1, 2], &[]];

    /// A small domain (6 addresses, 3 prefixes, 2 links, 3 DUIDs, 3 IAIDs, 8 expiries) so
    /// that renewals, moves between IAs, removals and multi-lease IAs are all frequent.
    fn small_resource(i: u8) -> Resource {
        if i < 6 {
            Resource::Addr(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)))
        } else {
            Resource::Prefix(crate::types::Prefix::containing(
                Ipv6Addr::from((0x2001_0db8_0001_u128 << 80) | (u128::from(i) << 72)),
                56,
            ))
        }
    }

    fn small_change() -> impl proptest::strategy::Strategy<Value = Change> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0u8..9, 0usize..2, 0usize..3, 0u32..3, 0u64..8, any::<bool>()).prop_map(
                |(i, l, d, iaid, expires, declined)| {
                    Change::Put(LeaseRecord {
                        link: LINKS[l].into(),
                        duid: DUIDS[d].to_vec(),
                        iaid,
                        resource: small_resource(i),
                        state: if declined {
                            LeaseState::Declined
                        } else {
                            LeaseState::Bound
                        },
                        preferred: 1,
                        valid: 2,
                        expires,
                    })
                }
            ),
            1 => (0u8..9).prop_map(|i| Change::Remove(small_resource(i))),
        ]
    }

    fn assert_same(idx: &Index, m: &Model) {
        let mut load: Vec<LeaseRecord> = idx.by_resource.values().cloned().collect();
        load.sort_by_key(|r| r.resource);
        let want: Vec<LeaseRecord> = m.by_resource.values().cloned().collect();
        assert_eq!(load, want, "live records");
        for i in 0..9 {
            let r = small_resource(i);
            assert_eq!(idx.by_resource.get(&r), m.by_resource.get(&r), "get {r}");
        }
        for link in LINKS {
            for duid in DUIDS {
                for kind in [IaKind::Na, IaKind::Pd] {
                    for iaid in 0..3 {
                        assert_eq!(
                            idx.by_client(link, duid, kind, iaid),
                            m.by_client(link, duid, kind, iaid),
                            "by_client {link} {duid:?} {kind} {iaid}"
                        );
                    }
                }
            }
        }
        for now in 0..9 {
            assert_eq!(idx.expired(now), m.expired(now), "expired({now})");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// After every change, the index answers load/get/by_client/expired exactly like the
        /// naive model, both with real hashes and with IA hashes squeezed to two values (so
        /// most IAs collide in `by_client`).
        #[test]
        fn index_matches_naive_model(
            changes in proptest::collection::vec(small_change(), 0..60),
            collide in proptest::prelude::any::<bool>(),
        ) {
            let mut idx = Index::default();
            if collide {
                idx.ia_hasher.mask = 1;
            }
            let mut m = Model::default();
            for c in changes {
                m.apply(&c);
                idx.apply(c);
                assert_same(&idx, &m);
            }
            if !collide {
                // Without forced collisions, one slot per IA.
                proptest::prop_assert_eq!(idx.by_client.len(), m.by_client.len());
            }
        }
    }

    #[test]
    fn frames_stop_at_the_first_bad_one() {
        let mut b = Vec::new();
        frame(&put(1), &mut b);
        let one = b.len();
        frame(&put(2), &mut b);
        assert_eq!(frames(&b).filter(Result::is_ok).count(), 2);
        assert_eq!(
            frames(&b[..one + 3]).last(),
            Some(Err(FrameError::Truncated))
        );
        let mut z = b.clone();
        z[one..one + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(frames(&z).nth(1), Some(Err(FrameError::Length(0))));
        let mut c = b.clone();
        let n = c.len() - 1;
        c[n] ^= 1;
        assert_eq!(frames(&c).nth(1), Some(Err(FrameError::Checksum)));
    }
}

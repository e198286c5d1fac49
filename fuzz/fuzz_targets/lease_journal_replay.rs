//! Fuzzes the lease journal's full replay, as `JournalStore::open` runs it on an arbitrary
//! file: magic check, frame reading, resynchronisation after damaged frames, torn-tail
//! detection and the index. It must never panic, the counts must add up, and the records it
//! keeps must form a journal that replays to the same records with no damage found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_lease::Change;
use v6h_lease::store::{journal_bytes, replay_bytes};

fn check(bytes: &[u8]) {
    let Ok((records, rep)) = replay_bytes(bytes) else {
        return;
    };
    assert!(records.len() as u64 <= rep.records);
    assert!(rep.skipped_bytes + rep.torn_tail_bytes <= bytes.len() as u64);
    assert!(rep.corrupt_copy.is_none());
    let again = journal_bytes(&records.iter().cloned().map(Change::Put).collect::<Vec<_>>());
    let (back, rep2) = replay_bytes(&again).expect("a rewritten journal has the magic");
    assert_eq!(back, records);
    assert_eq!(rep2.skipped_regions + rep2.torn_tail_bytes, 0);
    assert_eq!(rep2.records, records.len() as u64);
}

fuzz_target!(|data: &[u8]| {
    // The file as given (most inputs fail the magic check), and the same bytes as the body of
    // a journal with a valid magic.
    check(data);
    let mut j = journal_bytes(&[] as &[Change]);
    j.extend_from_slice(data);
    check(&j);
});

//! Fuzzes the lease journal reader: frame splitting, CRC checks and record decoding must never
//! panic, and every record that decodes re-encodes to bytes that decode to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_lease::record::{decode, encode};
use v6h_lease::store::frames;

fuzz_target!(|data: &[u8]| {
    for f in frames(data) {
        let Ok((change, _)) = f else { break };
        let mut b = Vec::new();
        encode(&change, &mut b);
        assert_eq!(decode(&b).ok(), Some(change));
    }
    if let Ok(c) = decode(data) {
        let mut b = Vec::new();
        encode(&c, &mut b);
        assert_eq!(decode(&b).ok(), Some(c));
    }
});

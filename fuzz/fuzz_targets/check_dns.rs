//! Fuzzes the DNS answer parser of `v6home check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = data.first().map_or(0, |b| u16::from(*b));
    let _ = v6h_check::dns::parse_aaaa_response(data, id, "www.v6home.test");
});

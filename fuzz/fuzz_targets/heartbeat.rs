//! Fuzz the heartbeat datagram parser and verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_ayiya::heartbeat::Heartbeat;

fuzz_target!(|data: &[u8]| {
    if let Ok(hb) = Heartbeat::parse(data) {
        let text = hb.to_string();
        assert_eq!(Heartbeat::parse(text.as_bytes()).as_ref(), Ok(&hb));
        let _ = hb.verify(hb.time(), "192.0.2.10".parse().expect("literal"), b"secret");
    }
});

//! Fuzz the aiccu.conf parser and its writer round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_ayiya::aiccu_conf::AiccuConfig;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((cfg, _warnings)) = AiccuConfig::parse("fuzz.conf", &text) {
        if let Ok(out) = cfg.to_aiccu_conf() {
            let (back, _) = AiccuConfig::parse("generated", &out).expect("writer output parses");
            assert_eq!(back, cfg);
        }
    }
});

//! Fuzz the radvd.conf parser: no input may panic, and every accepted
//! configuration must survive both round trips (radvd.conf and TOML).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_ra::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = config::parse_str("fuzz.conf", text) {
        let conf = loaded.config.to_radvd_conf();
        let again = config::parse_str("emitted.conf", &conf).expect("emitted radvd.conf must parse");
        assert_eq!(again.config, loaded.config);
        let toml = loaded.config.to_toml();
        let back = config::from_toml("emitted.toml", &toml).expect("emitted TOML must load");
        assert_eq!(back.config, loaded.config);
    }
    // The TOML reader must not panic either.
    let _ = config::from_toml("fuzz.toml", text);
});

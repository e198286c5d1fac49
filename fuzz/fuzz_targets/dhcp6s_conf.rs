//! Fuzz the dhcp6s.conf parser: never panic; an accepted config converts to TOML and back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((cfg, _)) = v6h_dhcp6::config::dhcp6s::parse_str("fuzz.conf", text) {
        let toml = cfg.to_toml().expect("accepted configs serialise");
        let back = v6h_dhcp6::config::Config::from_toml(std::path::Path::new("fuzz.toml"), &toml)
            .expect("serialised TOML parses");
        assert_eq!(back, cfg);
    }
});

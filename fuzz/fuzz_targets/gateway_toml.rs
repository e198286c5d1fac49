//! Fuzzes gateway.toml parsing and validation: no input panics, errors carry a position
//! inside the text, and an accepted file's inline sections become component configs that
//! their own parsers read without panicking (the tunnel's values read back unchanged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_gateway::config::{ConfigError, GatewayConfig, Source, decode_utf8};

fuzz_target!(|data: &[u8]| {
    let text = match decode_utf8("gateway.toml", data.to_vec()) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.to_string().starts_with("gateway.toml:"));
            return;
        }
    };
    let lines = text.split('\n').count();
    let mut config = match GatewayConfig::parse("gateway.toml", &text) {
        Ok(c) => c,
        Err(ConfigError::Syntax { line, col, .. } | ConfigError::Invalid { line, col, .. }) => {
            assert!(
                (1..=lines.max(1)).contains(&line) && col >= 1,
                "{line}:{col}"
            );
            return;
        }
        Err(ConfigError::Read { .. }) => unreachable!("parse reads no file"),
    };
    if let Source::Inline(aiccu) = config.tunnel_source() {
        let (parsed, _) =
            v6h_ayiya::aiccu_conf::AiccuConfig::parse("gateway.toml [tunnel]", &aiccu)
                .expect("generated aiccu.conf parses");
        assert_eq!(Some(&parsed.username), config.tunnel.username.as_ref());
        assert_eq!(Some(&parsed.password), config.tunnel.password.as_ref());
    }
    // A routed /48 from TIC fills in a missing LAN prefix.
    let routed = [("2001:db8:1234::".parse().expect("address"), 48)];
    let _ = config.resolve_lan_prefix(&routed);
    let _ = config.lan_address();
    if let Source::Inline(ra) = config.ra_source() {
        let _ = v6h_ra::config::parse_str("gateway.toml [ra]", &ra);
    }
    if let Some(Source::Inline(dhcp)) = config.dhcp6_source() {
        let _ = v6h_dhcp6::config::dhcp6s::parse_str("gateway.toml [dhcp6]", &dhcp);
    }
});

//! Fuzzes the text parsers of `v6home privacy`: lifetimes with units, the agent's state files
//! (secret and DAD counters), sysctl configuration files and `/proc/net/if_inet6`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(l) = text.parse::<v6h_privacy::lifetime::Lifetime>() {
        // Display is exact: it parses back to the same value.
        assert_eq!(
            l.to_string().parse::<v6h_privacy::lifetime::Lifetime>(),
            Ok(l)
        );
    }
    let _ = v6h_privacy::store::parse_secret(text);
    if let Ok(m) = v6h_privacy::store::parse_counters(text) {
        let again = v6h_privacy::store::parse_counters(&v6h_privacy::store::format_counters(&m));
        assert_eq!(again, Ok(m));
    }
    let files = [v6h_privacy::sysconf::SysctlFile {
        path: "/etc/sysctl.d/fuzz.conf".into(),
        content: text.to_string(),
    }];
    let _ = v6h_privacy::sysconf::effective_values(&files);
    let _ = v6h_privacy::sysconf::connman_settings(text, "preferred");
    let _ = v6h_privacy::sysconf::with_sysctl_block(text, "a = 1\n");
    let _ = v6h_privacy::system::parse_if_inet6(text);
});

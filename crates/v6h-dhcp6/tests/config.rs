//! dhcp6s.conf grammar, semantics, errors with file:line:col, TOML form and conversion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use v6h_dhcp6::config::dhcp6s::{parse_str, parse_with};
use v6h_dhcp6::config::{Config, ConfigError, INFINITY};

fn err(text: &str) -> String {
    match parse_str("t.conf", text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_must_keep_working_line() {
    let (c, w) = parse_str(
        "t.conf",
        "option domain-name-servers 2001:14b8:0:3401::6 2001:1418:10:2::2;\n",
    )
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        c.options.dns_servers,
        vec![
            "2001:14b8:0:3401::6".parse::<std::net::Ipv6Addr>().unwrap(),
            "2001:1418:10:2::2".parse().unwrap()
        ]
    );
}

const FULL: &str = r#"
# every server statement of the grammar
option domain-name-servers 2001:db8::53;
option domain-name-servers 2001:db8::54;   # lists concatenate
option domain-name "home.example";
option domain-name "example.org.";
option ntp-servers 2001:db8::123;
option sip-server-address 2001:db8::5060;
option sip-server-domain-name "sip.example";
option nis-server-address 2001:db8::111;
option nis-domain-name "nis.example";
option nisp-server-address 2001:db8::112;
option nisp-server-domain-name "nisp.example";
option bcmcs-server-address 2001:db8::bc;
option bcmcs-server-domain-name "bcmcs.example";
option refreshtime 3600.9;
interface eth0 { address-pool pool1 3600 7200; allow rapid-commit; preference 255; };
pool pool1 { range 2001:db8:1::1000 to 2001:db8:1::ffff; };
host cpe1 {
    duid 00:03:00:01:fa:02:80:73:d1:02;
    prefix 2001:db8:200::/56 3600 infinity;
    address 2001:db8:1::5 100;
    address-pool pool1 3600 7200;
    delayedkey key1;
};
keyinfo key1 { realm "example.org"; keyid 1; secret "Zm9vYmFy"; expire "2030-01-01 00:00"; };
"#;

#[test]
fn full_grammar_parses_with_meanings() {
    let (c, w) = parse_str("t.conf", FULL).unwrap();
    let o = &c.options;
    assert_eq!(o.dns_servers.len(), 2);
    assert_eq!(o.domain_list, vec!["home.example", "example.org"]);
    assert_eq!(o.ntp_servers.len(), 1);
    assert_eq!(o.sip_server_addresses.len(), 1);
    assert_eq!(o.sip_server_domain_names, vec!["sip.example"]);
    assert_eq!(o.nis_server_addresses.len(), 1);
    assert_eq!(o.nis_domain_names, vec!["nis.example"]);
    assert_eq!(o.nisp_server_addresses.len(), 1);
    assert_eq!(o.nisp_domain_names, vec!["nisp.example"]);
    assert_eq!(o.bcmcs_server_addresses.len(), 1);
    assert_eq!(o.bcmcs_server_domain_names, vec!["bcmcs.example"]);
    assert_eq!(o.refresh_time, Some(3600), "3600.9 truncates like strtoll");
    let i = c.interface("eth0").unwrap();
    assert!(i.rapid_commit);
    assert_eq!(i.preference, Some(255));
    assert_eq!(i.address_pools[0].preferred, 3600);
    assert_eq!(i.address_pools[0].valid, 7200);
    assert_eq!(c.pools[0].name, "pool1");
    let h = &c.hosts[0];
    assert_eq!(h.duid, "00:03:00:01:fa:02:80:73:d1:02");
    assert_eq!(h.prefixes[0].prefix_len, 56);
    assert_eq!(h.prefixes[0].valid, INFINITY);
    assert_eq!(h.addresses[0].valid, 100, "vltime defaults to pltime");
    assert_eq!(h.delayed_key.as_deref(), Some("key1"));
    assert_eq!(c.keys[0].keyid, Some(1));
    // Unserved statements are reported, never silently ignored; pools and hosts are served.
    let text: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert!(
        !text
            .iter()
            .any(|t| t.contains("pool1") || t.contains("host \"cpe1\" (")),
        "pools and hosts are served now: {text:?}"
    );
    for needle in ["keyinfo \"key1\"", "delayedkey key1"] {
        assert!(
            text.iter().any(|t| t.contains(needle)
                && t.contains("not served: v6home does not do delayed authentication")),
            "no warning for {needle}: {text:?}"
        );
    }
}

#[test]
fn errors_carry_file_line_col() {
    let e = err(
        "option domain-name-servers 2001:db8::1;\noption domain-name-servers 2001:db8::2 2001:db8::1;\n",
    );
    assert_eq!(
        e,
        "t.conf:2:40: duplicate address 2001:db8::1 in option domain-name-servers"
    );
    let e = err("option domain-name \"a.example\";\n  option domain-name \"A.example\";");
    assert!(e.starts_with("t.conf:2:22: duplicate domain name"), "{e}");
    let e = err("option refreshtime 599;");
    assert_eq!(
        e,
        "t.conf:1:20: refreshtime 599 is below the minimum of 600 seconds"
    );
    let e = err("option domain-name-servers 2001:db8::zz;");
    assert_eq!(e, "t.conf:1:28: \"2001:db8::zz\" is not an IPv6 address");
}

#[test]
fn syntax_errors() {
    // dhcp6s.conf(5)'s own example lacks the mandatory ';' after range.
    assert!(
        err("pool p { range 2001:db8::1 to 2001:db8::2 };").contains("t.conf:1:43: expected ';'")
    );
    assert!(err("interface eth0 { allow rapid-commit; }").contains("expected ';' after '}'"));
    assert!(err("option domain-name-servers 2001:db8::1").contains("unexpected end of file"));
    assert!(err("option domain-name-servers;").contains("at least one address"));
    assert!(
        err("option domain-name \"unterminated;")
            .contains("t.conf:1:20: unterminated quoted string")
    );
    assert!(err("option foo 1;").contains("unknown option \"foo\""));
    assert!(err("frobnicate;").contains("unknown statement"));
    assert!(err("option domain-name-servers 2001:db8::1 @;").contains("unexpected character '@'"));
    assert!(err("interface eth0 { preference 256; };").contains("preference 256 exceeds 255"));
    assert!(err("option refreshtime 99999999999;").contains("exceeds 4294967295"));
    assert!(err("option refreshtime 12x;").contains("a number"));
}

#[test]
fn hidden_dhcp6s_fatals_are_clear() {
    assert!(
        err("interface eth0 { address-pool p 7200 3600; };")
            .contains("preferred lifetime 7200 exceeds valid lifetime 3600")
    );
    assert!(
        err("interface eth0 { address-pool nope 10; };")
            .contains("address-pool \"nope\" is not defined")
    );
    assert!(err("host h { prefix 2001:db8::/56 10; };").contains("has no duid"));
    assert!(err("host h { duid 00:01; };").contains("DUID of 2 bytes"));
    assert!(
        err("host h { duid 00:03:00:01:fa:02:80:73:d1:02; prefix 2001:db8::/129 10; };")
            .contains("prefix length 129 exceeds 128")
    );
    assert!(err("pool p { range 2001:db8::9 to 2001:db8::1; };").contains("after end"));
    assert!(err("keyinfo k { realm \"r\"; keyid 1; secret \"***\"; };").contains("base64"));
    assert!(
        err("keyinfo k { realm \"r\"; keyid 1; secret \"Zm9v\"; expire \"25:00\"; };")
            .contains("bad expire")
    );
    assert!(err("keyinfo k { realm \"r\"; secret \"Zm9v\"; };").contains("lacks keyid"));
    assert!(
        err("host h { duid 00:03:00:01:fa:02:80:73:d1:02; delayedkey nokey; };")
            .contains("not defined by a keyinfo")
    );
    assert!(err("option domain-name \"bad..name\";").contains("bad domain name"));
}

#[test]
fn client_only_statements_are_named() {
    assert!(err("id-assoc na 1 { };").contains("\"id-assoc\" is client-only"));
    assert!(
        err("interface eth0 { information-only; };")
            .contains("\"information-only\" is client-only")
    );
    assert!(err("interface eth0 { send ia-na 1; };").contains("\"send\" is client-only"));
}

#[test]
fn aliases_and_duplicates_like_dhcp6s() {
    let (c, w) = parse_str(
        "t.conf",
        "option nis-server-domain-name \"a.example\"; option nisp-domain-name \"b.example\";\n\
         option refreshtime 700; option refreshtime 800;\n\
         interface eth0 { preference 1; }; interface eth0 { preference 2; };",
    )
    .unwrap();
    assert_eq!(c.options.nis_domain_names, vec!["a.example"]);
    assert_eq!(c.options.nisp_domain_names, vec!["b.example"]);
    assert_eq!(c.options.refresh_time, Some(700), "first refreshtime wins");
    assert_eq!(c.interfaces.len(), 1);
    assert_eq!(
        c.interfaces[0].preference,
        Some(1),
        "later duplicate block is dropped"
    );
    assert!(
        w.iter()
            .any(|w| w.to_string().starts_with("t.conf:3:") && w.msg.contains("ignored"))
    );
    assert!(w.iter().any(|w| w.msg.contains("refreshtime given again")));
}

#[test]
fn includes_nest_and_errors_name_the_included_file() {
    let files: HashMap<PathBuf, String> = [
        (
            "/c/main.conf",
            "include \"a.conf\";\noption domain-name-servers 2001:db8::1;",
        ),
        ("/c/a.conf", "# comment\ninclude \"/c/b.conf\";"),
        ("/c/b.conf", "option domain-name \"x.example\";"),
        ("/c/bad.conf", "include \"broken.conf\";"),
        ("/c/broken.conf", "\n\n  option nope;"),
        ("/c/missing.conf", "include \"nothere.conf\";"),
        ("/c/loop.conf", "include \"loop.conf\";"),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t.to_owned()))
    .collect();
    let mut load = |p: &Path| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    };
    let (c, _) = parse_with(Path::new("/c/main.conf"), &mut load).unwrap();
    assert_eq!(c.options.domain_list, vec!["x.example"]);
    assert_eq!(c.options.dns_servers.len(), 1);
    let e = parse_with(Path::new("/c/bad.conf"), &mut load)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "/c/broken.conf:3:10: unknown option \"nope\"");
    let e = parse_with(Path::new("/c/missing.conf"), &mut load)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/c/missing.conf:1:9: include /c/nothere.conf"),
        "{e}"
    );
    let e = parse_with(Path::new("/c/loop.conf"), &mut load)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested deeper than 10"), "{e}");
    // A missing main file is an error (dhcp6s runs empty instead).
    assert!(matches!(
        parse_with(Path::new("/c/none.conf"), &mut load),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn toml_round_trip_and_validation() {
    let (c, _) = parse_str("t.conf", FULL).unwrap();
    let t = c.to_toml().unwrap();
    let back = Config::from_toml(Path::new("x.toml"), &t).unwrap();
    assert_eq!(back, c);
    back.validate().unwrap();
    let minimal = Config::from_toml(
        Path::new("x.toml"),
        "[options]\ndns_servers = [\"2001:db8:ffff::53\"]\n",
    )
    .unwrap();
    assert_eq!(minimal.options.dns_servers.len(), 1);
    let bad = Config::from_toml(Path::new("x.toml"), "[options]\ndns_server = []\n").unwrap_err();
    assert!(bad.to_string().starts_with("x.toml:"), "{bad}");
    let dup = Config::from_toml(
        Path::new("x.toml"),
        "[options]\ndns_servers = [\"2001:db8::1\", \"2001:db8::1\"]\n",
    )
    .unwrap();
    assert!(
        dup.validate()
            .unwrap_err()
            .to_string()
            .contains("duplicate address 2001:db8::1")
    );
    let low = Config::from_toml(Path::new("x.toml"), "[options]\nrefresh_time = 10\n").unwrap();
    assert!(low.validate().is_err());
}

//! Fuzzes the URL parser of `v6home check`: parse, print, and parse again to the same URL.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(url) = v6h_check::url::parse(text)
    {
        let again = v6h_check::url::parse(&url.to_string()).expect("printed URL parses");
        assert_eq!(again, url);
    }
});

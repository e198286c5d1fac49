//! Fuzzes the server-DUID readers: dhcp6s's binary `dhcp6s_duid` file (imported on first
//! start) and the `hh:hh:...` text of v6home's own DUID file. Neither may panic; whatever they
//! accept is a valid DUID (3..=130 bytes) that survives writing and reading back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_dhcp6::duid::{from_dhcp6s_file, from_text, to_text};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = from_dhcp6s_file(data) {
        assert!((3..=130).contains(&d.len()));
        assert_eq!(&data[2..], d.as_slice());
        let mut file = u16::try_from(d.len()).unwrap().to_ne_bytes().to_vec();
        file.extend_from_slice(&d);
        assert_eq!(from_dhcp6s_file(&file).ok(), Some(d.clone()));
        assert_eq!(from_text(&to_text(&d)).ok(), Some(d));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(d) = from_text(text)
    {
        assert!((3..=130).contains(&d.len()));
        assert_eq!(from_text(&to_text(&d)).ok(), Some(d));
    }
});

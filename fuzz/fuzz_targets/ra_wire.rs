//! Fuzz the RA/RS/ND-option parsers: no panic, and whatever parses re-emits and re-parses equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_ra::wire::{OptionIter, RaPacket, RaRepr, RsPacket, RsRepr};

fuzz_target!(|data: &[u8]| {
    if let Ok(ra) = RaRepr::parse(data) {
        let bytes = ra.emit().expect("a parsed RA re-emits");
        assert_eq!(RaRepr::parse(&bytes).expect("re-parses"), ra);
    }
    if let Ok(rs) = RsRepr::parse(data) {
        let bytes = rs.emit().expect("a parsed RS re-emits");
        assert_eq!(RsRepr::parse(&bytes).expect("re-parses"), rs);
    }
    if let Ok(p) = RaPacket::new_checked(data) {
        let _ = (p.router_lifetime(), p.preference(), p.options().count());
    }
    if let Ok(p) = RsPacket::new_checked(data) {
        let _ = p.source_link_addr();
    }
    for o in OptionIter::new(data).flatten() {
        let _ = v6h_ra::wire::NdOptionRepr::parse(&o);
    }
});

//! Fuzz the load generator's reply scanner, IA judgement and exchange engine: arbitrary
//! bytes as a whole datagram, and as the options of an Advertise/Reply that matches a
//! pending exchange (so Request building and Reply accounting run on hostile input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6h_loadgen::core::{Config, Generator};
use v6h_loadgen::wire::{self, DuidKind, Mode};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = wire::scan(data) {
        for r in [s.client_id, s.server_id, s.ia_na, s.ia_pd].into_iter().flatten() {
            if let Some(o) = data.get(r) {
                let _ = wire::ia_granted(o);
            }
        }
    }
    let _ = wire::ia_granted(data);

    let mode = match data.first().map(|b| b % 3) {
        Some(0) => Mode::AddressOnly,
        Some(1) => Mode::PrefixOnly,
        _ => Mode::AddressAndPrefix,
    };
    let mut g = Generator::new(Config {
        mode,
        rate: 1000,
        duration_us: 1000,
        timeout_us: 1_000_000,
        duid: DuidKind::Llt { time: 7 },
        first_client: 3,
        max_pending: 16,
        max_burst: 16,
        xid_seed: 0x123456,
    });
    g.poll_transmit(1000);
    let Some(solicit) = g.transmit().iter().next().map(<[u8]>::to_vec) else {
        return;
    };
    g.clear_transmit();
    let mut cid = Vec::new();
    wire::client_duid(&mut cid, DuidKind::Llt { time: 7 }, 3);
    let answer = |ty: u8, req: &[u8]| {
        let mut m = vec![ty];
        m.extend_from_slice(req.get(1..4).unwrap_or(&[0, 0, 0]));
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&(cid.len() as u16).to_be_bytes());
        m.extend_from_slice(&cid);
        m.extend_from_slice(data);
        m
    };
    g.handle(1100, &answer(wire::ADVERTISE, &solicit));
    let request = g.transmit().iter().next().map(<[u8]>::to_vec);
    if let Some(request) = request {
        g.clear_transmit();
        g.handle(1200, &answer(wire::REPLY, &request));
    }
    g.handle(1300, data);
    g.finish(3_000_000);
    let s = g.stats();
    assert!(s.replies <= s.requests && s.requests <= s.advertises && s.advertises <= s.solicits);
    assert!(s.rejected <= s.replies);
    assert_eq!(s.solicit_drops + s.advertises, s.solicits);
    assert_eq!(s.request_drops + s.replies, s.requests);
});

//! AYIYA signing/verification cost for a 1280-byte inner packet, against two baselines in the
//! same run: a bare SHA-1 over the same bytes (the floor), and the copy-then-hash approach of
//! AICCU/sixxsd (copy the datagram, write K into the signature field, hash, compare).
//!
//! Run: `cargo bench -p v6h-ayiya --bench ayiya`.

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha1::{Digest, Sha1};
use v6h_ayiya::ayiya::{
    HEADER_LEN, Repr, SigningKey, finish_checks, parse_header_checks, validate_from_pop,
};

const INNER: usize = 1280;

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_password(b"0123456789abcdef0123456789abcdef");
    let pop = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 1);
    let epoch = 1_795_727_697u32;
    let mut dgram = vec![0u8; HEADER_LEN + INNER];
    dgram[HEADER_LEN] = 0x60;
    key.seal(&Repr::forward6(pop, epoch), &mut dgram).unwrap();

    let mut g = c.benchmark_group("ayiya_1280");
    g.throughput(Throughput::Bytes(dgram.len() as u64));
    g.bench_function("baseline_sha1_only", |b| {
        b.iter(|| Sha1::digest(black_box(&dgram[..])))
    });
    g.bench_function("baseline_copy_then_hash_verify", |b| {
        b.iter(|| {
            let mut copy = black_box(&dgram[..]).to_vec();
            let saved: [u8; 20] = copy[24..44].try_into().unwrap();
            copy[24..44].copy_from_slice(key.as_bytes());
            Sha1::digest(&copy).as_slice() == saved
        })
    });
    g.bench_function("seal_in_place", |b| {
        let mut buf = dgram.clone();
        b.iter(|| {
            key.seal(&Repr::forward6(pop, epoch), black_box(&mut buf[..]))
                .unwrap()
        })
    });
    g.bench_function("verify_streamed", |b| {
        b.iter(|| key.verify(black_box(&dgram[..])))
    });
    g.bench_function("validate_from_pop", |b| {
        b.iter(|| validate_from_pop(black_box(&dgram[..]), u64::from(epoch), pop, &key).is_ok())
    });
    g.bench_function("pop_two_step_checks", |b| {
        b.iter(|| {
            let p = parse_header_checks(black_box(&dgram[..])).unwrap();
            finish_checks(p, u64::from(epoch), &key).is_ok()
        })
    });
    // A packet with a bad opcode is rejected before any hashing.
    let mut bad = dgram.clone();
    bad[2] = 0x1f;
    g.bench_function("reject_bad_opcode", |b| {
        b.iter(|| validate_from_pop(black_box(&bad[..]), u64::from(epoch), pop, &key).is_err())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

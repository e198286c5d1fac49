//! Interoperability with a real peer: Wireshark's AYIYA dissector (tshark) must decode the
//! datagrams we build exactly as the spec's §9 field list says, and dissect the inner ICMPv6.
//!
//! Skips when `tshark` is not installed, unless `CI` is set (then it must run).

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::Command;

use v6h_ayiya::ayiya::{HEADER_LEN, Repr, SigningKey};

const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 2);
const POP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x2ff, 1, 0, 0, 0, 1);
const EPOCH: u32 = 0x6b08a151;
/// ICMPv6 echo request POP -> client from spec §10.2 (58 bytes).
const ECHO_REQUEST: &str = "6000000000123a4020010db802ff0001000000000000000120010db802ff000100000000000000028000c8004242000161796979612d74657374";

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Wraps `payload` in IPv4 (192.0.2.10 -> 192.0.2.1) and UDP (`sport` -> `dport`), checksum 0.
fn ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&[192, 0, 2, 10, 192, 0, 2, 1]);
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    let ulen = (8 + payload.len()) as u16;
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&ulen.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A classic pcap file (LINKTYPE_RAW = 101) holding `packets`.
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&101u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        f.extend_from_slice(&(EPOCH + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

#[test]
fn tshark_decodes_our_ayiya_datagrams() {
    if !tshark_available() {
        assert!(std::env::var_os("CI").is_none(), "tshark is required in CI");
        eprintln!("skipping: tshark not installed");
        return;
    }
    let key = SigningKey::from_password(b"0123456789abcdef0123456789abcdef");
    let keepalive = key.keepalive(CLIENT, EPOCH);
    let inner = hex::decode(ECHO_REQUEST).unwrap();
    let mut forward = vec![0u8; HEADER_LEN + inner.len()];
    forward[HEADER_LEN..].copy_from_slice(&inner);
    key.seal(&Repr::forward6(POP, EPOCH), &mut forward).unwrap();

    let file = pcap(&[
        ipv4_udp(40000, 5072, &keepalive),
        ipv4_udp(5072, 40000, &forward),
    ]);
    let path: PathBuf =
        std::env::temp_dir().join(format!("v6h-ayiya-tshark-{}.pcap", std::process::id()));
    std::fs::write(&path, file).unwrap();
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args(["-Y", "ayiya", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "ayiya.idlen",
            "-e",
            "ayiya.idtype",
            "-e",
            "ayiya.siglen",
        ])
        .args([
            "-e",
            "ayiya.hashmethod",
            "-e",
            "ayiya.authmethod",
            "-e",
            "ayiya.opcode",
        ])
        .args([
            "-e",
            "ayiya.nextheader",
            "-e",
            "ayiya.identity",
            "-e",
            "ayiya.signature",
        ])
        .args(["-e", "icmpv6.type", "-e", "icmpv6.echo.identifier"])
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| {
            l.split('|')
                .map(|f| f.replace(':', "").to_ascii_lowercase())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    let sig = |d: &[u8]| hex::encode(&d[24..44]);
    // Keepalive: 4/1/5/2/1, opcode 0, next header 59, identity = client, no inner packet.
    let k = &rows[0];
    assert_eq!(
        k[..7],
        ["0x04", "0x01", "0x05", "0x02", "0x01", "0x00", "0x3b"],
        "{text}"
    );
    assert_eq!(k[7], hex::encode(CLIENT.octets()));
    assert_eq!(k[8], sig(&keepalive));
    assert_eq!(k[8], "d5d2f2cc6cb658ae96fd295f1d7fcb1f8348b076");
    assert_eq!(k[9], "");
    // Forward from the PoP: opcode 1, next header 41, and the inner ICMPv6 echo request.
    let f = &rows[1];
    assert_eq!(f[5..7], ["0x01", "0x29"], "{text}");
    assert_eq!(f[7], hex::encode(POP.octets()));
    assert_eq!(f[8], "09bdaf6cb3b7205602a59b1c17a8191c55ff3689");
    assert_eq!(f[9], "128");
    assert_eq!(f[10], "0x4242");
}

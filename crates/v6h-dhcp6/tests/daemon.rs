//! The daemon's state handling: the server DUID is created once, kept, and imported from
//! dhcp6s's file when present.

use v6h_dhcp6::daemon::load_or_create_duid;
use v6h_dhcp6::duid;

#[test]
fn duid_created_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/dhcp6-duid");
    // No interface with a MAC: a DUID-UUID (type 4, 18 bytes).
    let d1 = load_or_create_duid(&path, None, &[]).unwrap();
    assert_eq!(&d1[..2], &[0, 4]);
    assert_eq!(d1.len(), 18);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim(), duid::to_text(&d1));
    // Loaded, not regenerated.
    let d2 = load_or_create_duid(&path, None, &[]).unwrap();
    assert_eq!(d1, d2);
}

#[test]
fn dhcp6s_duid_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("dhcp6s_duid");
    let d = duid::llt_ethernet(
        [0xa2, 0x43, 0x35, 0xf4, 0x6c, 0x3a],
        duid::DUID_EPOCH_UNIX + 0x329b_5d62,
    );
    let mut f = u16::try_from(d.len()).unwrap().to_ne_bytes().to_vec();
    f.extend_from_slice(&d);
    std::fs::write(&old, f).unwrap();
    let path = dir.path().join("dhcp6-duid");
    assert_eq!(load_or_create_duid(&path, Some(&old), &[]).unwrap(), d);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        "00:01:00:01:32:9b:5d:62:a2:43:35:f4:6c:3a"
    );
}

#[test]
fn corrupt_duid_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dhcp6-duid");
    std::fs::write(&path, "not a duid\n").unwrap();
    let e = load_or_create_duid(&path, None, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("DUID file"), "{e}");
}

//! TUN device helpers shared by the broker and the client: open with offloads, preallocated
//! batch buffers, and the Unix clock used by the IO shells.

use std::time::{SystemTime, UNIX_EPOCH};

use tun_rs::{DeviceBuilder, GROTable, IDEAL_BATCH_SIZE, SyncDevice, VIRTIO_NET_HDR_LEN};

use v6h_ayiya::ayiya::HEADER_LEN;

/// Size of each per-packet buffer: room for GRO coalescing up to 64 KiB plus headroom.
pub const BUF_LEN: usize = 65536 + 128;
/// Size of the raw TUN read buffer (virtio header + a 64 KiB GSO packet).
pub const RAW_LEN: usize = VIRTIO_NET_HDR_LEN + 65536;

/// Current Unix time in seconds (IO shells only; cores take `now` as input).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Opens (creates) TUN device `name` without packet information, with TSO/GRO offloads when
/// `offload` is true, and sets its MTU. "Device or resource busy" gets a hint
/// ([`explain_open_error`]).
pub fn open_tun(name: &str, mtu: u16, offload: bool) -> std::io::Result<SyncDevice> {
    DeviceBuilder::new()
        .name(name)
        .mtu(mtu)
        .packet_information(false)
        .offload(offload)
        .build_sync()
        .map_err(|e| explain_open_error(e, name))
}

/// Adds what to check to a TUN open error: `EBUSY` means another process still holds the
/// interface, typically an earlier v6home instance that is still running or stopping.
pub fn explain_open_error(e: std::io::Error, name: &str) -> std::io::Error {
    if e.raw_os_error() != Some(libc::EBUSY) {
        return e;
    }
    std::io::Error::new(
        e.kind(),
        format!(
            "{e}: is another v6home tunnel/gateway/broker still running or stopping? \
             {name} stays busy until it has exited"
        ),
    )
}

/// A preallocated packet buffer with a logical length that can be reset in O(1) (no
/// zero-filling), usable by tun-rs's batched GRO writes.
#[derive(Debug, Clone)]
pub struct PktBuf {
    data: Vec<u8>,
    len: usize,
}

impl PktBuf {
    /// A buffer of `cap` bytes, logically full.
    pub fn new(cap: usize) -> Self {
        PktBuf {
            data: vec![0u8; cap],
            len: cap,
        }
    }
    /// Makes the whole storage visible again (before a receive).
    pub fn reset(&mut self) {
        self.len = self.data.len();
    }
    /// Sets the logical length (clamped to the storage).
    pub fn set_len(&mut self, n: usize) {
        self.len = n.min(self.data.len());
    }
    /// The whole storage, regardless of the logical length.
    pub fn storage_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl AsRef<[u8]> for PktBuf {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl AsMut<[u8]> for PktBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
}

impl tun_rs::ExpandBuffer for PktBuf {
    fn buf_capacity(&self) -> usize {
        self.data.len()
    }
    fn buf_resize(&mut self, new_len: usize, value: u8) {
        if new_len > self.data.len() {
            self.data.resize(new_len, value);
        }
        if new_len > self.len {
            self.data[self.len..new_len].fill(value);
        }
        self.len = new_len;
    }
    fn buf_extend_from_slice(&mut self, src: &[u8]) {
        let end = self.len + src.len();
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        self.data[self.len..end].copy_from_slice(src);
        self.len = end;
    }
}

impl tun_rs::ExpandBuffer for &mut PktBuf {
    fn buf_capacity(&self) -> usize {
        (**self).buf_capacity()
    }
    fn buf_resize(&mut self, new_len: usize, value: u8) {
        (**self).buf_resize(new_len, value)
    }
    fn buf_extend_from_slice(&mut self, src: &[u8]) {
        (**self).buf_extend_from_slice(src)
    }
}

/// Preallocated buffers for one direction of a datapath thread.
pub struct Buffers {
    /// Raw read buffer (GSO super-packets).
    pub raw: Vec<u8>,
    /// Per-packet buffers; packets sit at offset [`HEADROOM`] (AYIYA headroom).
    pub bufs: Vec<PktBuf>,
    /// Per-packet lengths.
    pub sizes: Vec<usize>,
    /// GRO state for batched TUN writes.
    pub gro: GROTable,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffers")
            .field("bufs", &self.bufs.len())
            .finish()
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            raw: vec![0u8; RAW_LEN],
            bufs: (0..IDEAL_BATCH_SIZE)
                .map(|_| PktBuf::new(BUF_LEN))
                .collect(),
            sizes: vec![0; IDEAL_BATCH_SIZE],
            gro: GROTable::default(),
        }
    }
}

/// Headroom in front of every packet: the AYIYA header (≥ the virtio-net header).
pub const HEADROOM: usize = HEADER_LEN;

/// Makes every buffer's full storage visible again (O(1) each).
pub fn reset_all(bufs: &mut [PktBuf]) {
    for b in bufs {
        b.reset();
    }
}

/// Collects inner packets (copied behind [`HEADROOM`]) and writes them to the TUN device in
/// GRO-coalesced batches.
#[derive(Default)]
pub struct TunWriter {
    out: Buffers,
    k: usize,
}

impl std::fmt::Debug for TunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunWriter")
            .field("pending", &self.k)
            .finish()
    }
}

impl TunWriter {
    /// Queues `inner`; flushes first when the batch is full. Packets longer than a buffer
    /// are dropped (returns false).
    pub fn push(&mut self, tun: &SyncDevice, inner: &[u8]) -> std::io::Result<bool> {
        if HEADROOM + inner.len() > BUF_LEN {
            return Ok(false);
        }
        if self.k == self.out.bufs.len() {
            self.flush(tun)?;
        }
        let b = &mut self.out.bufs[self.k];
        b.reset();
        b.storage_mut()[HEADROOM..HEADROOM + inner.len()].copy_from_slice(inner);
        b.set_len(HEADROOM + inner.len());
        self.k += 1;
        Ok(true)
    }

    /// Writes every queued packet.
    pub fn flush(&mut self, tun: &SyncDevice) -> std::io::Result<()> {
        if self.k == 0 {
            return Ok(());
        }
        let mut refs: Vec<&mut PktBuf> = self.out.bufs[..self.k].iter_mut().collect();
        self.k = 0;
        tun.send_multiple(&mut self.out.gro, &mut refs, HEADROOM)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_tun_error_names_the_likely_cause() {
        let e = explain_open_error(std::io::Error::from_raw_os_error(libc::EBUSY), "sixxs");
        let text = e.to_string();
        assert!(text.starts_with("Device or resource busy"), "{text}");
        assert!(
            text.contains("is another v6home tunnel/gateway/broker still running or stopping?"),
            "{text}"
        );
        assert!(text.contains("sixxs stays busy"), "{text}");
        let other = explain_open_error(std::io::Error::from_raw_os_error(libc::EPERM), "sixxs");
        assert_eq!(other.raw_os_error(), Some(libc::EPERM));
    }
}

//! Batched UDP I/O (`recvmmsg` / `sendmmsg` through nix's safe wrappers) over preallocated
//! buffers, for the datapath threads.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg};

/// Maximum datagrams per batch.
pub const BATCH: usize = 64;

/// Preallocated headers for batched receive and send on one UDP socket.
pub struct UdpBatch {
    fd: RawFd,
    rx: MultiHeaders<SockaddrIn>,
    tx: MultiHeaders<SockaddrIn>,
}

impl std::fmt::Debug for UdpBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpBatch").field("fd", &self.fd).finish()
    }
}

fn to_io(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

impl UdpBatch {
    /// Batch I/O on `sock` (which must outlive this value).
    pub fn new(sock: &impl AsRawFd) -> Self {
        UdpBatch {
            fd: sock.as_raw_fd(),
            rx: MultiHeaders::preallocate(BATCH, None),
            tx: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Receives up to `bufs.len()` (≤ [`BATCH`]) datagrams, blocking for the first.
    ///
    /// Writes each datagram's length to `lens[i]` and source to `srcs[i]`; returns the count.
    /// Datagrams larger than their buffer are truncated (the caller sees a shorter length
    /// only if it sized buffers below the path MTU; 2048 bytes covers every AYIYA datagram).
    pub fn recv(
        &mut self,
        bufs: &mut [crate::tundev::PktBuf],
        lens: &mut [usize],
        srcs: &mut [Option<SocketAddrV4>],
    ) -> std::io::Result<usize> {
        let n = bufs.len().min(BATCH).min(lens.len()).min(srcs.len());
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(&mut [])]);
        for (slot, b) in iovs.iter_mut().zip(bufs.iter_mut()).take(n) {
            slot[0] = IoSliceMut::new(b.storage_mut());
        }
        let res = recvmmsg(
            self.fd,
            &mut self.rx,
            iovs[..n].iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(to_io)?;
        let mut count = 0;
        for (i, m) in res.enumerate() {
            lens[i] = m.bytes;
            srcs[i] = m.address.map(|a| SocketAddrV4::new(a.ip(), a.port()));
            count = i + 1;
        }
        Ok(count)
    }

    /// Sends `pkts[i]` to `dsts[i]` (or to the connected peer when `dsts` is `None`), in
    /// batches of [`BATCH`]. Returns the number sent; errors after a partial send are
    /// reported as the partial count.
    pub fn send(
        &mut self,
        pkts: &[&[u8]],
        dsts: Option<&[SocketAddrV4]>,
    ) -> std::io::Result<usize> {
        let mut sent = 0;
        for (ci, chunk) in pkts.chunks(BATCH).enumerate() {
            let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|p| [IoSlice::new(p)]).collect();
            let mut addrs: [Option<SockaddrIn>; BATCH] = [None; BATCH];
            if let Some(d) = dsts {
                for (j, a) in d.iter().skip(ci * BATCH).take(chunk.len()).enumerate() {
                    addrs[j] = Some(SockaddrIn::from(*a));
                }
            }
            let r = sendmmsg(
                self.fd,
                &mut self.tx,
                iovs.iter(),
                &addrs[..chunk.len()],
                [],
                MsgFlags::empty(),
            );
            match r {
                Ok(res) => {
                    let k = res.count();
                    sent += k;
                    if k < chunk.len() {
                        return Ok(sent);
                    }
                }
                Err(e) if sent > 0 => {
                    let _ = e;
                    return Ok(sent);
                }
                Err(e) => return Err(to_io(e)),
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn loopback_batch_roundtrip() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr4(bd) = SocketAddr4::of(&b);
        let mut ba = UdpBatch::new(&a);
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let dsts = vec![bd; refs.len()];
        assert_eq!(ba.send(&refs, Some(&dsts)).unwrap(), 100);
        let mut bb = UdpBatch::new(&b);
        let mut bufs = vec![crate::tundev::PktBuf::new(2048); BATCH];
        let mut lens = [0usize; BATCH];
        let mut srcs = [None; BATCH];
        let mut got = 0;
        while got < 100 {
            let n = bb.recv(&mut bufs, &mut lens, &mut srcs).unwrap();
            for i in 0..n {
                assert_eq!(
                    &bufs[i].storage_mut()[..lens[i]],
                    payloads[got + i].as_slice()
                );
                assert_eq!(srcs[i].unwrap().port(), a.local_addr().unwrap().port());
            }
            got += n;
        }
    }

    struct SocketAddr4(SocketAddrV4);
    impl SocketAddr4 {
        fn of(s: &UdpSocket) -> Self {
            match s.local_addr().unwrap() {
                std::net::SocketAddr::V4(a) => SocketAddr4(a),
                _ => unreachable!(),
            }
        }
    }
}

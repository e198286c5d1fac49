//! AYIYA ("Anything In Anything", draft-02) datagrams: wire view, owned header, signing and
//! receive validation (spec §2).
//!
//! Layout (v6home profile, 44-byte header):
//!
//! ```text
//! 0: idlen<<4|idtype  1: siglen<<4|hshmeth  2: autmeth<<4|opcode  3: next header
//! 4..8: epoch (u32 BE)  8..24: identity  24..44: SHA-1 signature  44..: payload
//! ```
//!
//! Sending zero-copy: read the inner packet into `buf[HEADER_LEN..]`, then
//! [`SigningKey::seal`] the whole `buf[..HEADER_LEN + n]`.

use std::net::Ipv6Addr;

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Length of the AYIYA header in the v6home profile (8 + 16 identity + 20 signature).
pub const HEADER_LEN: usize = 44;
/// IANA UDP port for AYIYA.
pub const PORT: u16 = 5072;
/// Total encapsulation overhead on IPv4: 20 (IPv4) + 8 (UDP) + 44 (AYIYA).
pub const OVERHEAD: usize = 72;
/// Minimum datagram length when the next header is IPv6 (44 + 40-byte IPv6 header).
pub const MIN_LEN_IPV6: usize = HEADER_LEN + 40;
/// Minimum datagram length when the next header is IPv4 (44 + 20-byte IPv4 header).
pub const MIN_LEN_IPV4: usize = HEADER_LEN + 20;
/// Identity length in bytes (idlen nibble 4 → 2^4).
pub const IDENTITY_LEN: usize = 16;
/// Signature length in bytes (siglen nibble 5 → 5×4).
pub const SIGNATURE_LEN: usize = 20;

mod field {
    use std::ops::Range;
    pub const ID: usize = 0;
    pub const SIG: usize = 1;
    pub const AUTH_OP: usize = 2;
    pub const NEXT_HEADER: usize = 3;
    pub const EPOCH: Range<usize> = 4..8;
    pub const IDENTITY: Range<usize> = 8..24;
    pub const SIGNATURE: Range<usize> = 24..44;
    pub const PAYLOAD: usize = 44;
}

macro_rules! nibble_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var,)+
            /// A value with no defined meaning, kept as received.
            Unknown(u8),
        }
        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $($val => $name::$var,)+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $($name::$var => $val,)+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

nibble_enum!(
    /// Identity type (byte 0, low nibble).
    IdType {
        /// No identity.
        None = 0,
        /// Integer identity (v6home: the 16-byte IPv6 address).
        Integer = 1,
        /// ASCII string identity.
        String = 2,
    }
);
nibble_enum!(
    /// Hash method (byte 1, low nibble).
    HashMethod {
        /// No hash.
        None = 0,
        /// MD5.
        Md5 = 1,
        /// SHA-1 (v6home).
        Sha1 = 2,
        /// UMAC.
        Umac = 3,
    }
);
nibble_enum!(
    /// Authentication method (byte 2, high nibble).
    AuthMethod {
        /// No authentication.
        None = 0,
        /// Shared secret (v6home).
        SharedSecret = 1,
        /// Public/private key.
        PublicKey = 2,
    }
);
nibble_enum!(
    /// Operation code (byte 2, low nibble); 8..=15 are [`OpCode::Unknown`].
    OpCode {
        /// No operation / heartbeat (keepalive).
        Noop = 0,
        /// Forward the payload.
        Forward = 1,
        /// Echo request.
        EchoRequest = 2,
        /// Echo request and forward.
        EchoRequestForward = 3,
        /// Echo response.
        EchoResponse = 4,
        /// Message of the day.
        Motd = 5,
        /// Query request.
        QueryRequest = 6,
        /// Query response.
        QueryResponse = 7,
    }
);
nibble_enum!(
    /// Next header (byte 3): the IP protocol number of the payload.
    NextHeader {
        /// IPv4 in AYIYA (protocol 4).
        Ipv4 = 4,
        /// IPv6 in AYIYA (protocol 41).
        Ipv6 = 41,
        /// No next header / no payload (protocol 59).
        NoNextHeader = 59,
    }
);

/// Structural errors of an AYIYA datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WireError {
    /// Shorter than the header, or than the header plus the inner IP header.
    #[error("AYIYA datagram truncated")]
    Truncated,
    /// Identity or signature length is not the 16/20-byte layout (idlen 4, siglen 5).
    #[error("unsupported AYIYA header layout (idlen/siglen)")]
    UnsupportedLayout,
    /// idtype, hash or auth method is not the v6home profile (1/2/1).
    #[error("unsupported AYIYA profile (idtype/hash/auth)")]
    UnsupportedProfile,
    /// The payload's IP version nibble does not match the next header.
    #[error("inner IP version does not match the next header")]
    BadInnerVersion,
}

/// Zero-copy view of an AYIYA datagram over any byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks; accessors may then panic on short buffers.
    /// Prefer [`Packet::new_checked`] for untrusted input.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks that every accessor is safe: length ≥ 44, the 16/20-byte layout, and for
    /// next header 41 (4) length ≥ 84 (64) and payload version nibble 6 (4).
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::ID] >> 4 != 4 || b[field::SIG] >> 4 != 5 {
            return Err(WireError::UnsupportedLayout);
        }
        let (min, version) = match NextHeader::from(b[field::NEXT_HEADER]) {
            NextHeader::Ipv6 => (MIN_LEN_IPV6, 6),
            NextHeader::Ipv4 => (MIN_LEN_IPV4, 4),
            _ => return Ok(()),
        };
        if b.len() < min {
            return Err(WireError::Truncated);
        }
        if b[field::PAYLOAD] >> 4 != version {
            return Err(WireError::BadInnerVersion);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Raw idlen nibble (identity is 2^idlen bytes).
    pub fn id_len(&self) -> u8 {
        self.buffer.as_ref()[field::ID] >> 4
    }
    /// Identity type.
    pub fn id_type(&self) -> IdType {
        IdType::from(self.buffer.as_ref()[field::ID] & 0x0f)
    }
    /// Raw siglen nibble (signature is 4·siglen bytes).
    pub fn sig_len(&self) -> u8 {
        self.buffer.as_ref()[field::SIG] >> 4
    }
    /// Hash method.
    pub fn hash_method(&self) -> HashMethod {
        HashMethod::from(self.buffer.as_ref()[field::SIG] & 0x0f)
    }
    /// Authentication method.
    pub fn auth_method(&self) -> AuthMethod {
        AuthMethod::from(self.buffer.as_ref()[field::AUTH_OP] >> 4)
    }
    /// Operation code.
    pub fn opcode(&self) -> OpCode {
        OpCode::from(self.buffer.as_ref()[field::AUTH_OP] & 0x0f)
    }
    /// Next header (payload protocol).
    pub fn next_header(&self) -> NextHeader {
        NextHeader::from(self.buffer.as_ref()[field::NEXT_HEADER])
    }
    /// Epoch: Unix seconds (32-bit) at which the sender built the packet.
    pub fn epoch(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::EPOCH];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Identity as an IPv6 address.
    pub fn identity(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::IDENTITY]);
        Ipv6Addr::from(a)
    }
    /// The 20 signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SIGNATURE]
    }
    /// The payload after the 44-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
    /// True when the fixed fields are the v6home profile 4/1/5/2/1.
    pub fn is_v6home_profile(&self) -> bool {
        let b = self.buffer.as_ref();
        b[field::ID] == 0x41 && b[field::SIG] == 0x52 && b[field::AUTH_OP] >> 4 == 1
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the raw idlen nibble.
    pub fn set_id_len(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::ID];
        *b = (*b & 0x0f) | (v << 4);
    }
    /// Sets the identity type.
    pub fn set_id_type(&mut self, v: IdType) {
        let b = &mut self.buffer.as_mut()[field::ID];
        *b = (*b & 0xf0) | (u8::from(v) & 0x0f);
    }
    /// Sets the raw siglen nibble.
    pub fn set_sig_len(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::SIG];
        *b = (*b & 0x0f) | (v << 4);
    }
    /// Sets the hash method.
    pub fn set_hash_method(&mut self, v: HashMethod) {
        let b = &mut self.buffer.as_mut()[field::SIG];
        *b = (*b & 0xf0) | (u8::from(v) & 0x0f);
    }
    /// Sets the authentication method.
    pub fn set_auth_method(&mut self, v: AuthMethod) {
        let b = &mut self.buffer.as_mut()[field::AUTH_OP];
        *b = (*b & 0x0f) | (u8::from(v) << 4);
    }
    /// Sets the opcode.
    pub fn set_opcode(&mut self, v: OpCode) {
        let b = &mut self.buffer.as_mut()[field::AUTH_OP];
        *b = (*b & 0xf0) | (u8::from(v) & 0x0f);
    }
    /// Sets the next header.
    pub fn set_next_header(&mut self, v: NextHeader) {
        self.buffer.as_mut()[field::NEXT_HEADER] = u8::from(v);
    }
    /// Sets the epoch.
    pub fn set_epoch(&mut self, v: u32) {
        self.buffer.as_mut()[field::EPOCH].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the identity.
    pub fn set_identity(&mut self, v: Ipv6Addr) {
        self.buffer.as_mut()[field::IDENTITY].copy_from_slice(&v.octets());
    }
    /// Mutable signature bytes.
    pub fn signature_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::SIGNATURE]
    }
    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// Owned AYIYA header in the v6home profile (4/1/5/2/1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Operation code.
    pub opcode: OpCode,
    /// Payload protocol.
    pub next_header: NextHeader,
    /// Unix seconds, 32-bit.
    pub epoch: u32,
    /// Sender identity (its inner IPv6 address).
    pub identity: Ipv6Addr,
}

impl Repr {
    /// Parses the header of a checked packet; rejects anything but the v6home profile.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, WireError> {
        packet.check_len()?;
        if !packet.is_v6home_profile() {
            return Err(WireError::UnsupportedProfile);
        }
        Ok(Repr {
            opcode: packet.opcode(),
            next_header: packet.next_header(),
            epoch: packet.epoch(),
            identity: packet.identity(),
        })
    }

    /// A keepalive (opcode 0, next header 59) from `identity` at `epoch`.
    pub fn keepalive(identity: Ipv6Addr, epoch: u32) -> Repr {
        Repr {
            opcode: OpCode::Noop,
            next_header: NextHeader::NoNextHeader,
            epoch,
            identity,
        }
    }

    /// A forward (opcode 1) of an IPv6 packet from `identity` at `epoch`.
    pub fn forward6(identity: Ipv6Addr, epoch: u32) -> Repr {
        Repr {
            opcode: OpCode::Forward,
            next_header: NextHeader::Ipv6,
            epoch,
            identity,
        }
    }

    /// Length of the header written by [`Repr::emit`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 44-byte header into `buf[..44]` with a zeroed signature; the payload, if any,
    /// must already be at `buf[44..]`. No allocation.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let mut p = Packet::new_unchecked(buf);
        p.set_id_len(4);
        p.set_id_type(IdType::Integer);
        p.set_sig_len(5);
        p.set_hash_method(HashMethod::Sha1);
        p.set_auth_method(AuthMethod::SharedSecret);
        p.set_opcode(self.opcode);
        p.set_next_header(self.next_header);
        p.set_epoch(self.epoch);
        p.set_identity(self.identity);
        p.signature_mut().fill(0);
        Ok(())
    }
}

/// A tunnel's AYIYA key: `K = SHA1(password)`, computed once.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    k: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Derives the key from the TIC `Password` value (raw ASCII bytes, no hex decoding).
    pub fn from_password(password: &[u8]) -> SigningKey {
        let mut k = [0u8; SIGNATURE_LEN];
        k.copy_from_slice(&Sha1::digest(password));
        SigningKey { k }
    }

    /// A key from stored K bytes (`SHA1(password)` computed earlier).
    pub fn from_key_bytes(k: [u8; SIGNATURE_LEN]) -> SigningKey {
        SigningKey { k }
    }

    /// A signed 44-byte keepalive (opcode 0, next header 59) from `identity` at `epoch`.
    pub fn keepalive(&self, identity: Ipv6Addr, epoch: u32) -> [u8; HEADER_LEN] {
        let mut buf = [0u8; HEADER_LEN];
        // Cannot fail: the buffer is exactly one header long.
        let _ = self.seal(&Repr::keepalive(identity, epoch), &mut buf);
        buf
    }

    /// The 20 key bytes (K).
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.k
    }

    fn compute(&self, datagram: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut h = Sha1::new();
        h.update(&datagram[..field::SIGNATURE.start]);
        h.update(self.k);
        h.update(&datagram[field::PAYLOAD..]);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(&h.finalize());
        out
    }

    /// Signs a complete datagram in place: writes `SHA1(pkt[0..24] ‖ K ‖ payload)` into bytes
    /// 24..44.
    pub fn sign(&self, datagram: &mut [u8]) -> Result<(), WireError> {
        if datagram.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let sig = self.compute(datagram);
        datagram[field::SIGNATURE].copy_from_slice(&sig);
        Ok(())
    }

    /// Emits `repr` into `datagram[..44]` and signs the whole datagram (payload already at
    /// `datagram[44..]`).
    pub fn seal(&self, repr: &Repr, datagram: &mut [u8]) -> Result<(), WireError> {
        repr.emit(datagram)?;
        self.sign(datagram)
    }

    /// Verifies the signature of a received datagram without copying it; constant-time
    /// comparison. Returns false for datagrams shorter than the header.
    pub fn verify(&self, datagram: &[u8]) -> bool {
        if datagram.len() < HEADER_LEN {
            return false;
        }
        let sig = self.compute(datagram);
        bool::from(sig.ct_eq(&datagram[field::SIGNATURE]))
    }
}

/// The packet's epoch is more than [`crate::MAX_CLOCK_OFF`] seconds away from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("time is {secs} seconds off")]
pub struct ClockSkew {
    /// Absolute offset in seconds.
    pub secs: u32,
}

/// Applies the §2.7 clock rule: `|now − epoch| ≤ 120` in 32-bit wrapping arithmetic.
pub fn check_epoch(now_unix: u64, epoch: u32) -> Result<(), ClockSkew> {
    let secs = crate::clock_offset(now_unix, epoch);
    if secs > crate::MAX_CLOCK_OFF {
        Err(ClockSkew { secs })
    } else {
        Ok(())
    }
}

/// Why a received datagram was dropped; fieldless so it can be a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum DropReason {
    /// Shorter than 44 bytes (84 with next header 41, 64 with 4).
    #[error("truncated")]
    Truncated,
    /// Fixed fields are not 4/1/5/2/1.
    #[error("bad header")]
    BadHeader,
    /// Opcode not accepted in this direction (e.g. noop at the client, 4..15 anywhere).
    #[error("opcode not accepted")]
    BadOpcode,
    /// Next header not accepted in this direction.
    #[error("next header not accepted")]
    BadNextHeader,
    /// Payload version nibble does not match the next header.
    #[error("bad inner IP version")]
    BadInnerVersion,
    /// Identity is not the expected peer (client side) .
    #[error("wrong identity")]
    WrongIdentity,
    /// No tunnel has this identity (PoP side; for the caller's lookup).
    #[error("unknown tunnel")]
    UnknownTunnel,
    /// The tunnel exists but is disabled or not dynamic (PoP side; for the caller's lookup).
    #[error("tunnel disabled")]
    TunnelDisabled,
    /// Epoch more than 120 s from now.
    #[error("clock skew")]
    ClockSkew,
    /// Signature mismatch.
    #[error("bad signature")]
    BadSignature,
}

impl DropReason {
    /// Every reason, for pre-registering metrics.
    pub const ALL: [DropReason; 10] = [
        DropReason::Truncated,
        DropReason::BadHeader,
        DropReason::BadOpcode,
        DropReason::BadNextHeader,
        DropReason::BadInnerVersion,
        DropReason::WrongIdentity,
        DropReason::UnknownTunnel,
        DropReason::TunnelDisabled,
        DropReason::ClockSkew,
        DropReason::BadSignature,
    ];

    /// Stable snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadHeader => "bad_header",
            DropReason::BadOpcode => "bad_opcode",
            DropReason::BadNextHeader => "bad_next_header",
            DropReason::BadInnerVersion => "bad_inner_version",
            DropReason::WrongIdentity => "wrong_identity",
            DropReason::UnknownTunnel => "unknown_tunnel",
            DropReason::TunnelDisabled => "tunnel_disabled",
            DropReason::ClockSkew => "clock_skew",
            DropReason::BadSignature => "bad_signature",
        }
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::UnsupportedLayout | WireError::UnsupportedProfile => DropReason::BadHeader,
            WireError::BadInnerVersion => DropReason::BadInnerVersion,
        }
    }
}

/// What to do with a fully validated datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// Write/route this IPv6 packet.
    Ipv6(&'a [u8]),
    /// Route this IPv4 packet (PoP side, next header 4).
    Ipv4(&'a [u8]),
    /// Liveness only (keepalive, echo request, or nothing to forward).
    LivenessOnly,
}

/// A datagram that passed every check, including the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The parsed header.
    pub repr: Repr,
    /// What the receiver should do with the payload.
    pub delivery: Delivery<'a>,
}

/// Fixed-field check shared by both roles: length ≥ 44 and 4/1/5/2/1.
fn fixed_fields(datagram: &[u8]) -> Result<Packet<&[u8]>, DropReason> {
    if datagram.len() < HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let p = Packet::new_unchecked(datagram);
    if !p.is_v6home_profile() {
        return Err(DropReason::BadHeader);
    }
    Ok(p)
}

/// Client-side validation of a datagram from the PoP (AICCU order, stricter lengths):
/// length, fixed fields, next header ∈ {41, 59}, opcode ∈ {1, 2, 3}, identity == `pop_identity`
/// (TIC `IPv6 POP`), inner version, clock, then signature.
///
/// Opcodes 1–3 with next header 41 give [`Delivery::Ipv6`]; next header 59 gives
/// [`Delivery::LivenessOnly`].
pub fn validate_from_pop<'a>(
    datagram: &'a [u8],
    now_unix: u64,
    pop_identity: Ipv6Addr,
    key: &SigningKey,
) -> Result<Verified<'a>, DropReason> {
    let p = fixed_fields(datagram)?;
    let nh = p.next_header();
    if !matches!(nh, NextHeader::Ipv6 | NextHeader::NoNextHeader) {
        return Err(DropReason::BadNextHeader);
    }
    let op = p.opcode();
    if !matches!(
        op,
        OpCode::Forward | OpCode::EchoRequest | OpCode::EchoRequestForward
    ) {
        return Err(DropReason::BadOpcode);
    }
    if p.identity() != pop_identity {
        return Err(DropReason::WrongIdentity);
    }
    p.check_len()?;
    check_epoch(now_unix, p.epoch()).map_err(|_| DropReason::ClockSkew)?;
    if !key.verify(datagram) {
        return Err(DropReason::BadSignature);
    }
    let repr = Repr {
        opcode: op,
        next_header: nh,
        epoch: p.epoch(),
        identity: p.identity(),
    };
    let delivery = match nh {
        NextHeader::Ipv6 => Delivery::Ipv6(&datagram[HEADER_LEN..]),
        _ => Delivery::LivenessOnly,
    };
    Ok(Verified { repr, delivery })
}

/// PoP side, step 1 (before the tunnel lookup): length, fixed fields, opcode 0..=3, next header
/// ∈ {4, 41, 59}, per-protocol minimum length and inner version nibble. The caller then looks
/// the tunnel up by [`Packet::identity`] and calls [`finish_checks`].
pub fn parse_header_checks(datagram: &[u8]) -> Result<Packet<&[u8]>, DropReason> {
    let p = fixed_fields(datagram)?;
    if !matches!(
        p.opcode(),
        OpCode::Noop | OpCode::Forward | OpCode::EchoRequest | OpCode::EchoRequestForward
    ) {
        return Err(DropReason::BadOpcode);
    }
    if !matches!(
        p.next_header(),
        NextHeader::Ipv4 | NextHeader::Ipv6 | NextHeader::NoNextHeader
    ) {
        return Err(DropReason::BadNextHeader);
    }
    p.check_len()?;
    Ok(p)
}

/// PoP side, step 2 (after the lookup found an enabled tunnel): clock, then signature with the
/// tunnel's key. Only opcode 1 with next header 41/4 is forwarded; opcodes 0, 2, 3 are liveness
/// only. Learn the endpoint only after this returns `Ok`.
pub fn finish_checks<'a>(
    packet: Packet<&'a [u8]>,
    now_unix: u64,
    key: &SigningKey,
) -> Result<Verified<'a>, DropReason> {
    let datagram: &'a [u8] = packet.into_inner();
    // Re-check structure: the caller may have built the Packet some other way.
    let p = parse_header_checks(datagram)?;
    check_epoch(now_unix, p.epoch()).map_err(|_| DropReason::ClockSkew)?;
    if !key.verify(datagram) {
        return Err(DropReason::BadSignature);
    }
    let repr = Repr {
        opcode: p.opcode(),
        next_header: p.next_header(),
        epoch: p.epoch(),
        identity: p.identity(),
    };
    let delivery = match (repr.opcode, repr.next_header) {
        (OpCode::Forward, NextHeader::Ipv6) => Delivery::Ipv6(&datagram[HEADER_LEN..]),
        (OpCode::Forward, NextHeader::Ipv4) => Delivery::Ipv4(&datagram[HEADER_LEN..]),
        _ => Delivery::LivenessOnly,
    };
    Ok(Verified { repr, delivery })
}

/// Result of [`EndpointGuard::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointUpdate {
    /// First valid packet: the endpoint was learned.
    Learned,
    /// From the current endpoint: accept.
    Same,
    /// A fresh packet from a new address: the endpoint moved (NAT rebinding, new IP). Accept.
    Moved,
    /// From a new address with the newest epoch, within [`SAME_EPOCH_GRACE`] seconds of the
    /// first packet of that epoch, but more packets shared that epoch than the guard
    /// remembers, so freshness cannot be proven: accept the packet, keep the endpoint (the
    /// sender's next-second packet moves it).
    Kept,
    /// An exact duplicate of a recent packet (same signature), from any address: a replay.
    /// Drop it; the endpoint stays.
    Duplicate,
    /// From a new address and older than the newest packet seen, or with the newest epoch but
    /// unprovably fresh and later than [`SAME_EPOCH_GRACE`]: a replay of a captured packet.
    /// Drop it; the endpoint stays.
    Stale,
}

impl EndpointUpdate {
    /// True for the outcomes whose packet must be dropped as a replay.
    pub fn is_replay(self) -> bool {
        matches!(self, EndpointUpdate::Duplicate | EndpointUpdate::Stale)
    }
}

/// Signatures of the newest second remembered per tunnel by [`EndpointGuard`].
pub const RECENT_SIGNATURES: usize = 8;

/// Seconds (receiver's clock) after the first packet of an epoch during which further packets
/// of that epoch may still arrive from a live sender: its clock ticks on within a second, so
/// later same-epoch packets whose freshness the guard cannot prove are replays.
pub const SAME_EPOCH_GRACE: u64 = 2;

/// Replay-resistant endpoint learning for one tunnel (PoP side, spec §11 "stricter than
/// sixxsd"). AYIYA has no nonce, so a captured packet replayed from another address within the
/// 120 s window would otherwise move the endpoint to the attacker.
///
/// The guard remembers the newest epoch it accepted and the first 8 bytes of the signatures of
/// up to [`RECENT_SIGNATURES`] packets carrying that epoch (about 100 bytes per tunnel). For a
/// fully validated packet ([`finish_checks`] `Ok`) from `src` with epoch `e`:
///
/// * `e` newer than the newest epoch (32-bit wrapping order): fresh; it moves the endpoint.
/// * `e` equal to the newest epoch: a signature already remembered is a [`Duplicate`] (from any
///   address); an unseen one is fresh (AICCU sends many packets per second, all with the same
///   1 s epoch) and moves the endpoint. When more packets shared that epoch than fit in the
///   memory, freshness cannot be proven: such a packet is accepted within
///   [`SAME_EPOCH_GRACE`] seconds of the epoch's first packet (a new address is [`Kept`] out
///   until the next second) and [`Stale`] after that.
/// * `e` older than the newest epoch: accepted from the current endpoint (reordering), a
///   [`Stale`] replay from any other address.
///
/// So neither an exact duplicate nor an older packet ever moves the endpoint, while a client
/// whose NAT mapping changed moves it with its first packet from the new port (whose epoch is
/// at least the newest one and whose signature is new).
///
/// [`Duplicate`]: EndpointUpdate::Duplicate
/// [`Kept`]: EndpointUpdate::Kept
/// [`Stale`]: EndpointUpdate::Stale
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointGuard<A> {
    current: Option<A>,
    newest_epoch: u32,
    /// Receiver time (Unix seconds) of the first packet of `newest_epoch`.
    newest_at: u64,
    recent: [u64; RECENT_SIGNATURES],
    /// Packets seen at `newest_epoch` (saturating); beyond `RECENT_SIGNATURES` the oldest
    /// signatures were overwritten.
    seen_at_newest: u16,
}

impl<A: Copy + PartialEq> Default for EndpointGuard<A> {
    fn default() -> Self {
        Self::new()
    }
}

fn signature_tag(signature: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = signature.len().min(8);
    b[..n].copy_from_slice(&signature[..n]);
    u64::from_le_bytes(b)
}

impl<A: Copy + PartialEq> EndpointGuard<A> {
    /// A guard with no endpoint yet.
    pub fn new() -> Self {
        EndpointGuard {
            current: None,
            newest_epoch: 0,
            newest_at: 0,
            recent: [0; RECENT_SIGNATURES],
            seen_at_newest: 0,
        }
    }

    /// The current endpoint, if learned.
    pub fn endpoint(&self) -> Option<A> {
        self.current
    }

    /// The newest epoch accepted so far (0 before the first packet).
    pub fn newest_epoch(&self) -> u32 {
        self.newest_epoch
    }

    fn remembered(&self, tag: u64) -> bool {
        let n = usize::from(self.seen_at_newest).min(RECENT_SIGNATURES);
        self.recent[..n].contains(&tag)
    }

    fn remember(&mut self, tag: u64) {
        let slot = usize::from(self.seen_at_newest) % RECENT_SIGNATURES;
        self.recent[slot] = tag;
        self.seen_at_newest = self.seen_at_newest.saturating_add(1);
        if self.seen_at_newest == u16::MAX {
            // Keep the "overflowed" meaning without wrapping the slot index.
            self.seen_at_newest = u16::MAX - (u16::MAX % RECENT_SIGNATURES as u16);
        }
    }

    fn start_epoch(&mut self, epoch: u32, tag: u64, now: u64) {
        self.newest_epoch = epoch;
        self.newest_at = now;
        self.seen_at_newest = 0;
        self.remember(tag);
    }

    /// Feeds one validated packet from `src` with `epoch` and `signature` (bytes 24..44 of
    /// the datagram), received at `now` (Unix seconds); returns what happened. Replays
    /// ([`EndpointUpdate::is_replay`]) change nothing.
    pub fn observe(&mut self, src: A, epoch: u32, signature: &[u8], now: u64) -> EndpointUpdate {
        let tag = signature_tag(signature);
        let Some(cur) = self.current else {
            self.current = Some(src);
            self.start_epoch(epoch, tag, now);
            return EndpointUpdate::Learned;
        };
        let order = epoch.wrapping_sub(self.newest_epoch) as i32;
        if order > 0 {
            self.start_epoch(epoch, tag, now);
            if cur == src {
                return EndpointUpdate::Same;
            }
            self.current = Some(src);
            return EndpointUpdate::Moved;
        }
        if order < 0 {
            return if cur == src {
                EndpointUpdate::Same
            } else {
                EndpointUpdate::Stale
            };
        }
        if self.remembered(tag) {
            return EndpointUpdate::Duplicate;
        }
        let complete = usize::from(self.seen_at_newest) < RECENT_SIGNATURES;
        if !complete && now > self.newest_at.saturating_add(SAME_EPOCH_GRACE) {
            return EndpointUpdate::Stale;
        }
        self.remember(tag);
        if cur == src {
            EndpointUpdate::Same
        } else if complete {
            self.current = Some(src);
            EndpointUpdate::Moved
        } else {
            EndpointUpdate::Kept
        }
    }

    /// Forgets the endpoint (e.g. when the tunnel is reconfigured).
    pub fn reset(&mut self) {
        *self = EndpointGuard::new();
    }
}

/// The link-local address AICCU derives from the tunnel endpoint (§3): `fe80::/64` with bytes
/// 8..14 = endpoint bytes 2..8 (byte 2 ANDed with 0xfc) and bytes 14..16 = endpoint 14..16.
pub fn derived_link_local(endpoint: Ipv6Addr) -> Ipv6Addr {
    let e = endpoint.octets();
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..14].copy_from_slice(&e[2..8]);
    o[8] &= 0xfc;
    o[14] = e[14];
    o[15] = e[15];
    Ipv6Addr::from(o)
}

/// Errors of [`tunnel_addresses`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PlanError {
    /// The tunnel index is outside 1..=0x7fff.
    #[error("tunnel index {0:#x} outside 1..=0x7fff")]
    BadTid(u16),
}

/// SixXS/v6home address plan: for a /48 `prefix` (only its first 48 bits are used) and tunnel
/// index `tid` (1..=0x7fff) returns `(pop, client)` = `(<prefix48>:<tid>::1, <prefix48>:<tid>::2)`.
pub fn tunnel_addresses(prefix: Ipv6Addr, tid: u16) -> Result<(Ipv6Addr, Ipv6Addr), PlanError> {
    if tid == 0 || tid > 0x7fff {
        return Err(PlanError::BadTid(tid));
    }
    let s = prefix.segments();
    let pop = Ipv6Addr::new(s[0], s[1], s[2], tid, 0, 0, 0, 1);
    let client = Ipv6Addr::new(s[0], s[1], s[2], tid, 0, 0, 0, 2);
    Ok((pop, client))
}

#[cfg(test)]
mod tests;

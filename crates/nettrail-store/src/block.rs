//! The on-disk block format: one compressed, time-ordered run of events of one stream.
//!
//! A block is a fixed 72-byte header followed by `payload_len` bytes of payload.
//! All integers are little-endian.
//!
//! ```text
//! offset size field
//!   0    4   magic: b"NTB" followed by the format version byte (1)
//!   4    4   header_crc: CRC-32C of header bytes 8..72
//!   8    1   codec: 0 = none, 1 = zstd, 2 = import checkpoint (see below)
//!   9    3   reserved (zero)
//!  12    4   payload_len: bytes of payload on disk
//!  16    4   payload_crc: CRC-32C of the payload as stored
//!  20    4   raw_len: bytes of payload once decompressed
//!  24    8   stream_id
//!  32    8   first_seq: the store-wide sequence number of the first event
//!  40    8   ingestion_ms: when the block was written (Unix ms)
//!  48    8   min_ts: smallest event timestamp (Unix ms)
//!  56    8   max_ts: largest event timestamp (Unix ms)
//!  64    4   count: number of events
//!  68    4   reserved (zero)
//! ```
//!
//! The raw payload is `count` events in timestamp order, each
//! `varint(timestamp - min_ts) varint(message_len) message_bytes` (LEB128 varints,
//! UTF-8 messages). Event `i` has sequence number `first_seq + i`.
//!
//! An import checkpoint block (codec 2) holds no events (`count` 0, `stream_id` 0,
//! timestamps 0): its payload is the JSON of a checkpoint committed in the same write as
//! the blocks before it, so that the events of an import part and the record that they
//! are stored are durable together (see `file_store`).
//!
//! Two checksums rather than one so that the expensive part (compressing the payload
//! and checksumming it) can happen on the request's thread, while the single writer
//! thread only fills in the cheap header (sequence, ingestion time) at commit time.

use crate::error::CorruptKind;

/// Size of a block header in bytes.
pub const HEADER_LEN: usize = 72;
/// The first four bytes of every block (format version 1).
pub const BLOCK_MAGIC: [u8; 4] = *b"NTB\x01";

/// How a block's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is.
    None = 0,
    /// Compressed as one zstd frame.
    Zstd = 1,
    /// Not events: an import checkpoint (JSON), committed with the blocks before it.
    ImportCheckpoint = 2,
}

impl Codec {
    fn from_byte(byte: u8) -> Option<Codec> {
        match byte {
            0 => Some(Codec::None),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::ImportCheckpoint),
            _ => None,
        }
    }
}

/// The decoded header of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// How the payload is stored.
    pub codec: Codec,
    /// Bytes of payload that follow the header.
    pub payload_len: u32,
    /// CRC-32C of the stored payload.
    pub payload_crc: u32,
    /// Bytes of the payload after decompression.
    pub raw_len: u32,
    /// The stream the events belong to.
    pub stream_id: u64,
    /// Sequence number of the first event.
    pub first_seq: u64,
    /// When the block was committed, Unix ms.
    pub ingestion_ms: i64,
    /// Smallest event timestamp.
    pub min_ts: i64,
    /// Largest event timestamp.
    pub max_ts: i64,
    /// Number of events.
    pub count: u32,
}

impl BlockHeader {
    /// Serializes the header, computing its checksum.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&BLOCK_MAGIC);
        out[8] = self.codec as u8;
        out[12..16].copy_from_slice(&self.payload_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.payload_crc.to_le_bytes());
        out[20..24].copy_from_slice(&self.raw_len.to_le_bytes());
        out[24..32].copy_from_slice(&self.stream_id.to_le_bytes());
        out[32..40].copy_from_slice(&self.first_seq.to_le_bytes());
        out[40..48].copy_from_slice(&self.ingestion_ms.to_le_bytes());
        out[48..56].copy_from_slice(&self.min_ts.to_le_bytes());
        out[56..64].copy_from_slice(&self.max_ts.to_le_bytes());
        out[64..68].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32c::crc32c(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and verifies a header.
    pub fn decode(bytes: &[u8]) -> Result<BlockHeader, CorruptKind> {
        if bytes.len() < HEADER_LEN {
            return Err(CorruptKind::Truncated);
        }
        if bytes[0..4] != BLOCK_MAGIC {
            return Err(CorruptKind::BadMagic);
        }
        let stored_crc = u32_at(bytes, 4);
        if crc32c::crc32c(&bytes[8..HEADER_LEN]) != stored_crc {
            return Err(CorruptKind::HeaderChecksum);
        }
        let codec = Codec::from_byte(bytes[8]).ok_or(CorruptKind::UnknownCodec(bytes[8]))?;
        let header = BlockHeader {
            codec,
            payload_len: u32_at(bytes, 12),
            payload_crc: u32_at(bytes, 16),
            raw_len: u32_at(bytes, 20),
            stream_id: u64_at(bytes, 24),
            first_seq: u64_at(bytes, 32),
            ingestion_ms: u64_at(bytes, 40) as i64,
            min_ts: u64_at(bytes, 48) as i64,
            max_ts: u64_at(bytes, 56) as i64,
            count: u32_at(bytes, 64),
        };
        let fields_ok = match codec {
            Codec::ImportCheckpoint => header.count == 0 && header.stream_id == 0,
            Codec::None | Codec::Zstd => header.min_ts <= header.max_ts && header.count > 0,
        };
        if !fields_ok {
            return Err(CorruptKind::HeaderFields);
        }
        Ok(header)
    }

    /// Bytes the whole block occupies on disk.
    pub fn block_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// A payload ready to be committed: compressed and checksummed, waiting for the writer
/// to assign its sequence numbers and ingestion time.
#[derive(Debug, Clone)]
pub struct SealedPayload {
    /// How `bytes` is stored.
    pub codec: Codec,
    /// The stored payload.
    pub bytes: Vec<u8>,
    /// CRC-32C of `bytes`.
    pub crc: u32,
    /// Length once decompressed.
    pub raw_len: u32,
    /// Smallest event timestamp.
    pub min_ts: i64,
    /// Largest event timestamp.
    pub max_ts: i64,
    /// Number of events.
    pub count: u32,
}

/// Encodes events (already in timestamp order) into a payload, compressing with zstd
/// at `zstd_level` (0 stores uncompressed).
///
/// # Panics
/// Panics if `events` is empty or not sorted by timestamp: both are the caller's
/// contract, checked by the store before it gets here.
pub fn seal_payload<'a, I>(events: I, zstd_level: i32) -> std::io::Result<SealedPayload>
where
    I: IntoIterator<Item = (i64, &'a str)>,
{
    SCRATCH.with_borrow_mut(|scratch| {
        let SealScratch { raw, compressor } = scratch;
        raw.clear();
        let mut min_ts = None;
        let mut max_ts = i64::MIN;
        let mut count: u32 = 0;
        for (ts, message) in events {
            let base = *min_ts.get_or_insert(ts);
            assert!(ts >= max_ts, "events must be sorted by timestamp");
            max_ts = ts;
            put_varint(raw, (ts - base) as u64);
            put_varint(raw, message.len() as u64);
            raw.extend_from_slice(message.as_bytes());
            count += 1;
        }
        let min_ts = min_ts.expect("a block holds at least one event");
        let raw_len =
            u32::try_from(raw.len()).map_err(|_| std::io::Error::other("block too large"))?;
        let (codec, bytes) = if zstd_level == 0 {
            (Codec::None, raw.to_vec())
        } else {
            (
                Codec::Zstd,
                compressor_at(compressor, zstd_level)?.compress(raw.as_slice())?,
            )
        };
        Ok(SealedPayload {
            codec,
            crc: crc32c::crc32c(&bytes),
            bytes,
            raw_len,
            min_ts,
            max_ts,
            count,
        })
    })
}

/// Per-thread buffers for sealing blocks: the raw payload buffer keeps its capacity and
/// the zstd context its tables between blocks, rather than being allocated (and page
/// faulted in) for every block; a store seals many small blocks per request.
#[derive(Default)]
struct SealScratch {
    raw: Vec<u8>,
    compressor: Option<(i32, zstd::bulk::Compressor<'static>)>,
}

/// The thread's zstd context at `level`, made on first use (or when the level changes).
fn compressor_at<'s>(
    slot: &'s mut Option<(i32, zstd::bulk::Compressor<'static>)>,
    level: i32,
) -> std::io::Result<&'s mut zstd::bulk::Compressor<'static>> {
    if slot.as_ref().is_none_or(|(l, _)| *l != level) {
        *slot = Some((level, zstd::bulk::Compressor::new(level)?));
    }
    Ok(&mut slot.as_mut().expect("set above").1)
}

thread_local! {
    static SCRATCH: std::cell::RefCell<SealScratch> = std::cell::RefCell::default();
}

/// The payload of an import checkpoint block: `json` stored as is.
pub fn checkpoint_payload(json: Vec<u8>) -> std::io::Result<SealedPayload> {
    let raw_len =
        u32::try_from(json.len()).map_err(|_| std::io::Error::other("checkpoint too large"))?;
    Ok(SealedPayload {
        codec: Codec::ImportCheckpoint,
        crc: crc32c::crc32c(&json),
        bytes: json,
        raw_len,
        min_ts: 0,
        max_ts: 0,
        count: 0,
    })
}

/// Verifies a stored payload against its header and returns the raw event bytes.
pub fn open_payload(header: &BlockHeader, stored: &[u8]) -> Result<Vec<u8>, CorruptKind> {
    if stored.len() != header.payload_len as usize {
        return Err(CorruptKind::Truncated);
    }
    if crc32c::crc32c(stored) != header.payload_crc {
        return Err(CorruptKind::PayloadChecksum);
    }
    let raw = match header.codec {
        Codec::None | Codec::ImportCheckpoint => stored.to_vec(),
        Codec::Zstd => zstd::bulk::decompress(stored, header.raw_len as usize)
            .map_err(|_| CorruptKind::Decompress)?,
    };
    if raw.len() != header.raw_len as usize {
        return Err(CorruptKind::Decompress);
    }
    Ok(raw)
}

/// One event inside a raw payload: its timestamp and the byte range of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    /// Event timestamp, Unix ms.
    pub timestamp: i64,
    /// Start of the message within the raw payload.
    pub start: usize,
    /// End (exclusive) of the message within the raw payload.
    pub end: usize,
}

/// Splits a raw payload into its events, checking that it holds exactly `header.count`
/// well-formed, time-ordered, UTF-8 events within the header's bounds.
pub fn index_events(header: &BlockHeader, raw: &[u8]) -> Result<Vec<RawEvent>, CorruptKind> {
    let mut events = Vec::with_capacity(header.count as usize);
    let mut pos = 0;
    let mut last_ts = header.min_ts;
    while pos < raw.len() {
        let delta = get_varint(raw, &mut pos).ok_or(CorruptKind::PayloadFields)?;
        let len = get_varint(raw, &mut pos).ok_or(CorruptKind::PayloadFields)? as usize;
        let timestamp = i64::try_from(delta)
            .ok()
            .and_then(|d| header.min_ts.checked_add(d))
            .ok_or(CorruptKind::PayloadFields)?;
        let end = pos.checked_add(len).ok_or(CorruptKind::PayloadFields)?;
        if end > raw.len() || timestamp < last_ts || timestamp > header.max_ts {
            return Err(CorruptKind::PayloadFields);
        }
        if std::str::from_utf8(&raw[pos..end]).is_err() {
            return Err(CorruptKind::PayloadFields);
        }
        events.push(RawEvent {
            timestamp,
            start: pos,
            end,
        });
        last_ts = timestamp;
        pos = end;
    }
    if events.len() != header.count as usize {
        return Err(CorruptKind::PayloadFields);
    }
    Ok(events)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header_for(payload: &SealedPayload, stream_id: u64, first_seq: u64) -> BlockHeader {
        BlockHeader {
            codec: payload.codec,
            payload_len: payload.bytes.len() as u32,
            payload_crc: payload.crc,
            raw_len: payload.raw_len,
            stream_id,
            first_seq,
            ingestion_ms: 1_700_000_000_000,
            min_ts: payload.min_ts,
            max_ts: payload.max_ts,
            count: payload.count,
        }
    }

    fn roundtrip(events: &[(i64, String)], level: i32) -> Vec<(i64, String)> {
        let sealed = seal_payload(events.iter().map(|(t, m)| (*t, m.as_str())), level).unwrap();
        let header = header_for(&sealed, 7, 42);
        let decoded = BlockHeader::decode(&header.encode()).unwrap();
        assert_eq!(decoded, header);
        let raw = open_payload(&decoded, &sealed.bytes).unwrap();
        index_events(&decoded, &raw)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.timestamp,
                    std::str::from_utf8(&raw[e.start..e.end])
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn roundtrips_flow_log_lines() {
        let events: Vec<(i64, String)> = (0..100)
            .map(|i| (1_418_530_010_000 + i * 7, format!("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 {i} 6 20 4249 1418530010 1418530070 ACCEPT OK")))
            .collect();
        assert_eq!(roundtrip(&events, 1), events);
        assert_eq!(roundtrip(&events, 0), events);
    }

    #[test]
    fn detects_a_flipped_bit_anywhere() {
        let events = [(5, "hello".to_owned()), (9, "world".to_owned())];
        let sealed = seal_payload(events.iter().map(|(t, m)| (*t, m.as_str())), 3).unwrap();
        let header = header_for(&sealed, 1, 1);
        let encoded = header.encode();
        for byte in 0..HEADER_LEN {
            let mut damaged = encoded;
            damaged[byte] ^= 0x10;
            assert!(BlockHeader::decode(&damaged).is_err(), "header byte {byte}");
        }
        for byte in 0..sealed.bytes.len() {
            let mut damaged = sealed.bytes.clone();
            damaged[byte] ^= 0x01;
            assert!(
                open_payload(&header, &damaged).is_err(),
                "payload byte {byte}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_sorted_events_roundtrip(
            mut events in proptest::collection::vec((0i64..4_000_000_000_000, ".{1,200}"), 1..50),
            level in prop_oneof![Just(0), Just(1), Just(3)],
        ) {
            events.sort_by_key(|e| e.0);
            prop_assert_eq!(roundtrip(&events, level), events);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(header) = BlockHeader::decode(&bytes) {
                let payload = &bytes[HEADER_LEN.min(bytes.len())..];
                if let Ok(raw) = open_payload(&header, payload) {
                    let _ = index_events(&header, &raw);
                }
            }
        }

        #[test]
        fn indexing_garbage_payload_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300), count in 1u32..10) {
            let header = BlockHeader {
                codec: Codec::None, payload_len: raw.len() as u32, payload_crc: crc32c::crc32c(&raw),
                raw_len: raw.len() as u32, stream_id: 1, first_seq: 1, ingestion_ms: 0,
                min_ts: 0, max_ts: i64::MAX, count,
            };
            let _ = index_events(&header, &raw);
        }
    }
}

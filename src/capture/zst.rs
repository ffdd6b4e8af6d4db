//! raw.zst output: the disk as concatenated zstd frames, which any zstd decoder (and the
//! writer's, by magic) reads back as the raw disk. Each chunk the agent compressed is its own
//! frame, written as sent; a raw chunk becomes a frame of raw blocks; a run of zeros becomes
//! a frame of RLE blocks (4 bytes per 128 KiB), so a mostly empty disk costs almost nothing
//! and is never compressed byte by byte. Spec: RFC 8878 §3.1.1 (frames, blocks).

use std::io::{self, Write};

/// zstd frame magic, little-endian (RFC 8878 §3.1.1).
const FRAME_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Frame header descriptor: no content size, not single-segment, no checksum, no dictionary.
const DESCRIPTOR: u8 = 0x00;
/// Window descriptor for a 128 KiB window (exponent 7: 2^(10+7)), which allows the largest
/// block (RFC 8878 §3.1.1.1.2).
const WINDOW_128K: u8 = 7 << 3;
/// The largest block (Block_Maximum_Size).
const MAX_BLOCK: u64 = 128 << 10;
const BLOCK_RAW: u32 = 0;
const BLOCK_RLE: u32 = 1;

/// A block header: last flag, type, size (RFC 8878 §3.1.1.2.1), little-endian in 3 bytes.
fn block_header(last: bool, kind: u32, size: u32) -> [u8; 3] {
    let v = u32::from(last) | (kind << 1) | (size << 3);
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// Writes a frame of `len` zero bytes as RLE blocks.
pub fn write_zeros(out: &mut impl Write, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let mut frame = Vec::with_capacity(6 + 4 * len.div_ceil(MAX_BLOCK).min(1 << 16) as usize);
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&[DESCRIPTOR, WINDOW_128K]);
    let mut left = len;
    while left > 0 {
        let n = left.min(MAX_BLOCK);
        left -= n;
        frame.extend_from_slice(&block_header(left == 0, BLOCK_RLE, n as u32));
        frame.push(0);
        if frame.len() >= 1 << 20 {
            out.write_all(&frame)?;
            frame.clear();
        }
    }
    out.write_all(&frame)
}

/// Writes `bytes` as a frame of raw blocks.
pub fn write_raw(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    out.write_all(&FRAME_MAGIC)?;
    out.write_all(&[DESCRIPTOR, WINDOW_128K])?;
    let blocks: Vec<&[u8]> = bytes.chunks(MAX_BLOCK as usize).collect();
    for (i, b) in blocks.iter().enumerate() {
        out.write_all(&block_header(
            i + 1 == blocks.len(),
            BLOCK_RAW,
            b.len() as u32,
        ))?;
        out.write_all(b)?;
    }
    Ok(())
}

/// The most bytes a raw.zst of a `disk`-byte disk can take: every byte in raw blocks, plus
/// block and frame headers (pure).
pub fn bound(disk: u64) -> u64 {
    disk + disk.div_ceil(MAX_BLOCK) * 4 + (disk >> 20) * 16 + 4096
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(bytes)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn zero_runs_raw_blocks_and_compressed_frames_concatenate() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        write_zeros(&mut out, 1000).unwrap();
        write_raw(&mut out, &data).unwrap();
        write_zeros(&mut out, (3 << 20) + 5).unwrap();
        out.extend_from_slice(&zstd::bulk::compress(&data, 3).unwrap());
        write_zeros(&mut out, 0).unwrap();
        let got = decode(&out);
        let mut want = vec![0u8; 1000];
        want.extend_from_slice(&data);
        want.extend(std::iter::repeat_n(0u8, (3 << 20) + 5));
        want.extend_from_slice(&data);
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        // 3 MiB of zeros: 25 RLE blocks of 4 bytes and a frame header.
        let mut zeros = Vec::new();
        write_zeros(&mut zeros, 3 << 20).unwrap();
        assert_eq!(zeros.len(), 6 + 24 * 4);
        assert!(bound(3 << 20) >= (3 << 20) + 24 * 3 + 6);
    }
}

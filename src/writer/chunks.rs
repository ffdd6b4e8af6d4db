//! Chunked byte streams, the pipeline's unit of data: a source yields [`Bytes`] chunks that
//! the hash thread and the raw decoder share without copying them. [`ReadChunks`] turns a
//! reader into chunks; [`ChunkReader`] turns chunks back into a `BufRead` for the
//! decompressors and the qcow2 decoder.

use std::io::{BufRead, Read};

use bytes::{Buf, Bytes};

use super::pool::Pool;

/// A stream of chunks; an error ends it.
pub(crate) type Chunks = Box<dyn Iterator<Item = std::io::Result<Bytes>> + Send>;

/// Reads `inner` in pieces of one size (only the last one shorter) into pooled buffers.
pub(crate) struct ReadChunks<R> {
    inner: R,
    pool: Pool,
    done: bool,
}

impl<R: Read> ReadChunks<R> {
    /// Chunks of `size` bytes, at most `max` of them alive at once.
    pub fn new(inner: R, size: usize, max: usize) -> Self {
        Self {
            inner,
            pool: Pool::new(size, max),
            done: false,
        }
    }
}

impl<R: Read> Iterator for ReadChunks<R> {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = self.pool.take();
        match read_full(&mut self.inner, buf.as_mut_slice()) {
            Ok(n) => {
                // A short read is the end: read_full only stops early at end of stream.
                self.done = n < buf.as_ref().len();
                (n > 0).then(|| Ok(self.pool.share(buf, n)))
            }
            Err(e) => {
                // Never read past a failure: the bytes after it would be misplaced.
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Fills `buf` unless the stream ends first; returns how many bytes were read.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads a stream of chunks as one byte stream.
pub(crate) struct ChunkReader {
    chunks: Chunks,
    cur: Bytes,
}

impl ChunkReader {
    pub fn new(chunks: Chunks) -> Self {
        Self {
            chunks,
            cur: Bytes::new(),
        }
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.cur.is_empty() {
            match self.chunks.next() {
                Some(chunk) => self.cur = chunk?,
                None => break,
            }
        }
        Ok(&self.cur)
    }

    fn consume(&mut self, n: usize) {
        self.cur.advance(n);
        if self.cur.is_empty() {
            // An empty view still holds its buffer: let it go back to its pool now.
            self.cur = Bytes::new();
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Copies the first `n` bytes of `chunks` (fewer only if the stream is shorter) and returns
/// them with a stream that yields every chunk again, unsplit.
pub(crate) fn head(mut chunks: Chunks, n: usize) -> std::io::Result<(Vec<u8>, Chunks)> {
    let mut front = Vec::new();
    let mut have = 0;
    while have < n {
        match chunks.next() {
            Some(chunk) => {
                let chunk = chunk?;
                have += chunk.len();
                front.push(chunk);
            }
            None => break,
        }
    }
    let mut head = Vec::with_capacity(n.min(have));
    for chunk in &front {
        let take = (n - head.len()).min(chunk.len());
        head.extend_from_slice(&chunk[..take]);
    }
    Ok((head, Box::new(front.into_iter().map(Ok).chain(chunks))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(data: &[u8], sizes: &[usize]) -> Chunks {
        let mut at = 0;
        let mut out = Vec::new();
        for &s in sizes {
            out.push(Ok(Bytes::copy_from_slice(&data[at..at + s])));
            at += s;
        }
        Box::new(out.into_iter())
    }

    #[test]
    fn head_then_read_back_everything() {
        let data: Vec<u8> = (0..100u8).collect();
        for sizes in [&[100][..], &[1, 2, 3, 94], &[50, 0, 50]] {
            let (head, rest) = head(chunked(&data, sizes), 10).unwrap();
            assert_eq!(head, &data[..10], "{sizes:?}");
            let mut all = Vec::new();
            ChunkReader::new(rest).read_to_end(&mut all).unwrap();
            assert_eq!(all, data, "{sizes:?}");
        }
        let (head, _) = head(chunked(&data[..4], &[4]), 10).unwrap();
        assert_eq!(head, &data[..4]);
    }

    #[test]
    fn read_chunks_are_full_sized_until_the_last() {
        let data: Vec<u8> = (0..2005).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = ReadChunks::new(&data[..], 1000, 3)
            .map(Result::unwrap)
            .collect();
        let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(lens, [1000, 1000, 5]);
        assert_eq!(chunks.concat(), data);
        assert_eq!(ReadChunks::new(&[][..], 1000, 1).count(), 0);
    }
}

//! One download: lock the key, revalidate or resume, reserve room, stream while hashing into a
//! `.part`, verify, fsync, commit. Run by the single-flight leader only.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::{Stream, StreamExt};
use reqwest::header;

use super::checksum::Digests;
use super::store::{self, io_err, EntryMeta, FileLock, PartMeta, Source};
use super::{blocking, lock, CacheError, Expected, Inner, Lookup, Progress, Result};
use crate::durable;

/// Largest checksum file read (SHA256SUMS of a whole release is a few KiB).
const MAX_SUMS_BYTES: usize = 1 << 20;
/// Room reserved at a time when the origin does not announce a length.
const UNKNOWN_LENGTH_STEP: u64 = 64 << 20;

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Refuses URLs the cache cannot or must not fetch.
pub(super) fn check_url(inner: &Inner, url: &str) -> Result<()> {
    let bad = |reason: &str| CacheError::InvalidUrl {
        url: url.into(),
        reason: reason.into(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        "file" => {
            let path = local_path(inner, url)?;
            let _ = path;
            Ok(())
        }
        s => Err(bad(&format!(
            "scheme {s:?} is not supported: use http, https or file"
        ))),
    }
}

/// The canonical path of an allowed `file://` URL.
fn local_path(inner: &Inner, url: &str) -> Result<PathBuf> {
    let parsed = reqwest::Url::parse(url).map_err(|e| CacheError::InvalidUrl {
        url: url.into(),
        reason: e.to_string(),
    })?;
    let path = parsed.to_file_path().map_err(|_| CacheError::InvalidUrl {
        url: url.into(),
        reason: "not a local file path".into(),
    })?;
    let canon =
        std::fs::canonicalize(&path).map_err(io_err(format!("opening {}", path.display())))?;
    if !inner.is_allowed_file(&canon) {
        return Err(CacheError::FileNotAllowed {
            path: canon.display().to_string(),
        });
    }
    Ok(canon)
}

fn unreachable(url: &str, e: impl std::fmt::Display) -> CacheError {
    CacheError::Unreachable {
        url: url.into(),
        message: e.to_string(),
    }
}

/// Reads a small document (a checksum file) over http(s) or from an allowed file.
pub(super) async fn read_small(inner: &Inner, url: &str) -> Result<String> {
    let bytes = if url.starts_with("file:") {
        let path = local_path(inner, url)?;
        tokio::fs::read(&path)
            .await
            .map_err(io_err(format!("reading {}", path.display())))?
    } else {
        let resp = inner
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(url, e))?;
        if !resp.status().is_success() {
            return Err(CacheError::Origin {
                url: url.into(),
                status: resp.status().as_u16(),
            });
        }
        let mut out = Vec::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.map_err(|e| unreachable(url, e))?);
            if out.len() > MAX_SUMS_BYTES {
                return Err(CacheError::BadChecksum(format!(
                    "checksum file {url} is larger than {MAX_SUMS_BYTES} bytes"
                )));
            }
        }
        out
    };
    String::from_utf8(bytes)
        .map_err(|_| CacheError::BadChecksum(format!("checksum file {url} is not UTF-8 text")))
}

fn header_str(resp: &reqwest::Response, name: header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Where the bytes come from, after validators and resume were settled.
struct Body {
    stream: ByteStream,
    /// Bytes of the `.part` kept (resume offset).
    offset: u64,
    total: Option<u64>,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// The download procedure; see the module docs.
pub(super) async fn download(
    inner: &Arc<Inner>,
    url: &str,
    expected: Option<&Expected>,
    key: &str,
    progress: Option<Progress>,
) -> Result<EntryMeta> {
    let (lock_path, resv) = (inner.layout.lock(key), inner.layout.reservation(key));
    let _flock = blocking(move || {
        let l = FileLock::acquire(&lock_path)?;
        // Only the holder of the key's lock writes its reservation: one found now was left by
        // a downloader that died, and would look live to scans while we hold the lock.
        store::remove_quiet(&resv);
        Ok(l)
    })
    .await?;
    // Another process may have fetched it while we waited for the lock.
    inner.rescan().await?;
    let revalidate = match inner.lookup(url, expected) {
        Lookup::Hit(m) => match inner.touch(&m.sha256, None).await {
            Ok(m) => {
                inner.metrics.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(m);
            }
            Err(CacheError::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        Lookup::Revalidate(m) => Some(m),
        Lookup::Miss => None,
    };
    let body = if url.starts_with("file:") {
        let path = local_path(inner, url)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io_err(format!("opening {}", path.display())))?;
        let len = file
            .metadata()
            .await
            .map_err(io_err(format!("reading metadata of {}", path.display())))?
            .len();
        let p2 = path.display().to_string();
        Body {
            stream: tokio_util::io::ReaderStream::with_capacity(file, 256 << 10)
                .map(move |r| r.map_err(io_err(format!("reading {p2}"))))
                .boxed(),
            offset: 0,
            total: Some(len),
            etag: None,
            last_modified: None,
        }
    } else {
        match open_http(inner, url, key, revalidate.as_ref()).await? {
            Opened::NotModified(meta) => {
                inner.metrics.hits.fetch_add(1, Ordering::Relaxed);
                tracing::info!(url, "cache entry revalidated: not modified");
                return inner.touch(&meta.sha256, Some(url)).await;
            }
            Opened::Body(b) => b,
        }
    };
    inner.metrics.misses.fetch_add(1, Ordering::Relaxed);
    stream_to_entry(inner, url, expected, key, body, progress).await
}

enum Opened {
    NotModified(EntryMeta),
    Body(Body),
}

/// Sends the GET: conditional when revalidating, ranged when a resumable `.part` exists.
async fn open_http(
    inner: &Inner,
    url: &str,
    key: &str,
    revalidate: Option<&EntryMeta>,
) -> Result<Opened> {
    let mut req = inner.client.get(url);
    if let Some(src) = revalidate.and_then(|m| m.sources.get(url)) {
        if let Some(etag) = &src.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &src.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, lm);
        }
    }
    // A `.part` left by an interrupted download of the same URL, with a validator to check
    // that the origin still has the same bytes.
    let (part, part_meta) = (inner.layout.part(key), inner.layout.part_meta(key));
    let resume: Option<(u64, String)> = store::read_json::<PartMeta>(&part_meta)
        .filter(|m| m.url == url)
        .and_then(|m| {
            let len = std::fs::metadata(&part).ok()?.len();
            let validator = m
                .etag
                .filter(|e| !e.starts_with("W/"))
                .or(m.last_modified)?;
            (len > 0).then_some((len, validator))
        });
    if let Some((offset, validator)) = &resume {
        req = req
            .header(header::RANGE, format!("bytes={offset}-"))
            .header(header::IF_RANGE, validator);
    }
    let resp = req.send().await.map_err(|e| unreachable(url, e))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        if let Some(m) = revalidate {
            return Ok(Opened::NotModified(m.clone()));
        }
    }
    let etag = header_str(&resp, header::ETAG);
    let last_modified = header_str(&resp, header::LAST_MODIFIED);
    let offset = match (status.as_u16(), &resume) {
        (206, Some((offset, _))) => {
            let range = header_str(&resp, header::CONTENT_RANGE).unwrap_or_default();
            // An origin that ignores If-Range but honours Range could splice new bytes onto
            // old ones: check the validators ourselves and drop the .part when they differ.
            let old = store::read_json::<PartMeta>(&part_meta);
            let changed = old.is_none_or(|m| {
                (m.etag.is_some() && etag.is_some() && m.etag != etag)
                    || (m.last_modified.is_some()
                        && last_modified.is_some()
                        && m.last_modified != last_modified)
            });
            if changed || !range.starts_with(&format!("bytes {offset}-")) {
                store::remove_quiet(&part);
                store::remove_quiet(&part_meta);
                return Err(unreachable(
                    url,
                    format!("resume from byte {offset} was refused (Content-Range {range:?}, validators changed: {changed}); the partial download was dropped, retry to start over"),
                ));
            }
            tracing::info!(url, offset, "resuming interrupted download");
            *offset
        }
        (416, Some((offset, _))) => {
            // Nothing past the end: the `.part` may be the whole object (a crash between its
            // fsync and the rename). Then its bytes are verified and committed like a download.
            let range = header_str(&resp, header::CONTENT_RANGE).unwrap_or_default();
            let old = store::read_json::<PartMeta>(&part_meta);
            let changed = old.as_ref().is_none_or(|m| {
                (m.etag.is_some() && etag.is_some() && m.etag != etag)
                    || (m.last_modified.is_some()
                        && last_modified.is_some()
                        && m.last_modified != last_modified)
            });
            if changed || complete_length(&range) != Some(*offset) {
                store::remove_quiet(&part);
                store::remove_quiet(&part_meta);
                return Err(unreachable(
                    url,
                    format!("resume from byte {offset} was refused with 416 (Content-Range {range:?}, validators changed: {changed}): the partial download was dropped, retry to start over"),
                ));
            }
            tracing::info!(
                url,
                offset,
                "the interrupted download was complete: verifying it"
            );
            return Ok(Opened::Body(Body {
                stream: futures::stream::empty().boxed(),
                offset: *offset,
                total: Some(*offset),
                etag: old.as_ref().and_then(|m| m.etag.clone()).or(etag),
                last_modified: old.and_then(|m| m.last_modified).or(last_modified),
            }));
        }
        (200, _) => 0,
        (s, _) => {
            return Err(CacheError::Origin {
                url: url.into(),
                status: s,
            })
        }
    };
    let total = resp.content_length().map(|l| l + offset);
    let u2 = url.to_string();
    Ok(Opened::Body(Body {
        stream: resp
            .bytes_stream()
            .map(move |r| r.map_err(|e| unreachable(&u2, e)))
            .boxed(),
        offset,
        total,
        etag,
        last_modified,
    }))
}

/// The complete length in an unsatisfied range's `Content-Range: bytes */<length>`.
fn complete_length(content_range: &str) -> Option<u64> {
    content_range
        .trim()
        .strip_prefix("bytes */")?
        .trim()
        .parse()
        .ok()
}

async fn stream_to_entry(
    inner: &Arc<Inner>,
    url: &str,
    expected: Option<&Expected>,
    key: &str,
    mut body: Body,
    progress: Option<Progress>,
) -> Result<EntryMeta> {
    let layout = inner.layout.clone();
    let (part, part_meta) = (layout.part(key), layout.part_meta(key));
    // Room first: nothing is written unless the whole image fits.
    let mut reservation = inner
        .reserve(key, body.total.unwrap_or(UNKNOWN_LENGTH_STEP))
        .await?;
    let meta = PartMeta {
        url: url.into(),
        etag: body.etag.clone(),
        last_modified: body.last_modified.clone(),
        total: body.total,
        started_at: Utc::now(),
    };
    // Open the .part, keep the resumed prefix and hash it again.
    let (p2, pm2, offset) = (part.clone(), part_meta.clone(), body.offset);
    let algo = expected.map(|e| e.algorithm);
    let (file, digests) = blocking(move || {
        store::write_json(&pm2, &meta)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&p2)
            .map_err(io_err(format!("opening {}", p2.display())))?;
        f.set_len(offset)
            .map_err(io_err(format!("truncating {} to {offset}", p2.display())))?;
        let mut digests = Digests::new(algo);
        let mut buf = vec![0u8; 256 << 10];
        let mut left = offset;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = f
                .read(&mut buf[..want])
                .map_err(io_err(format!("re-reading {}", p2.display())))?;
            if n == 0 {
                break;
            }
            digests.update(&buf[..n]);
            left -= n as u64;
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err(format!("seeking {}", p2.display())))?;
        Ok((f, digests))
    })
    .await?;
    let mut file = Some(file);
    let mut digests = Some(digests);
    let mut written = body.offset;
    while let Some(chunk) = body.stream.next().await {
        let chunk = chunk?;
        let n = chunk.len();
        written += chunk.len() as u64;
        if written > reservation.bytes {
            let more = match body.total {
                Some(t) => {
                    return Err(CacheError::Truncated {
                        url: url.into(),
                        expected: t,
                        got: written,
                    })
                }
                None => UNKNOWN_LENGTH_STEP.max(written - reservation.bytes),
            };
            // The same file, grown: dropping the old guard would remove it. Past the quota,
            // the partial file goes too: kept, it would hold room no download can finish in.
            let grown = match inner.reserve(key, reservation.bytes + more).await {
                Ok(g) => g,
                Err(e) => {
                    drop(file.take());
                    store::remove_quiet(&part);
                    store::remove_quiet(&part_meta);
                    return Err(e);
                }
            };
            reservation.bytes = grown.bytes;
            std::mem::forget(grown);
        }
        let (mut f, mut d) = (file.take().expect("file"), digests.take().expect("digests"));
        let p3 = part.clone();
        let (f, d) = blocking(move || {
            f.write_all(&chunk)
                .map_err(io_err(format!("writing {}", p3.display())))?;
            d.update(&chunk);
            Ok((f, d))
        })
        .await?;
        file = Some(f);
        digests = Some(d);
        inner
            .metrics
            .bytes_fetched
            .fetch_add(n as u64, Ordering::Relaxed);
        if let Some(p) = &progress {
            p(written, body.total);
        }
    }
    if let Some(t) = body.total {
        if written != t {
            return Err(CacheError::Truncated {
                url: url.into(),
                expected: t,
                got: written,
            });
        }
    }
    let file = file.take().expect("file");
    let sums = digests.take().expect("digests").finish();
    if let Some(e) = expected {
        let got = sums
            .iter()
            .find(|(a, _)| *a == e.algorithm)
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        if got != e.hex {
            store::remove_quiet(&part);
            store::remove_quiet(&part_meta);
            return Err(CacheError::ChecksumMismatch {
                url: url.into(),
                algorithm: e.algorithm.name().into(),
                expected: e.hex.clone(),
                got,
            });
        }
    }
    let p2 = part.clone();
    blocking(move || {
        file.sync_all()
            .map_err(io_err(format!("syncing {}", p2.display())))
    })
    .await?;
    let source = if url.starts_with("file:") {
        Source::default()
    } else {
        Source {
            etag: body.etag.clone(),
            last_modified: body.last_modified.clone(),
            validated_at: None,
        }
    };
    // A crash here leaves a complete, synced `.part`: the next fetch resumes it (416) and
    // commits it after verifying.
    crate::fail_point!("cache-commit");
    let committed = Committed {
        part,
        part_meta: Some(part_meta),
        key: key.to_string(),
        written,
        sums,
        url: url.to_string(),
        source,
    };
    let entry = inner
        .with_lock(move |_, layout| committed.apply(layout))
        .await?;
    lock(&inner.state)
        .entries
        .insert(entry.sha256.clone(), entry.clone());
    drop(reservation);
    tracing::info!(url, sha256 = %entry.sha256, size = entry.size, "image cached");
    Ok(entry)
}

/// A `.part` ready to become an entry: its bytes are verified and synced.
pub(super) struct Committed {
    pub part: PathBuf,
    /// The `.part.json` beside a download, removed with it.
    pub part_meta: Option<PathBuf>,
    /// The key whose reservation the entry replaces.
    pub key: String,
    pub written: u64,
    /// (algorithm, hex) pairs, sha256 first.
    pub sums: Vec<(super::Algorithm, String)>,
    /// Where the bytes came from (a URL, or `capture://NODE/NAME`).
    pub url: String,
    /// Its validators; `validated_at` is set to now.
    pub source: Source,
}

impl Committed {
    /// Under the cache lock: the entry appears and the reservation disappears in one step for
    /// every other process's accounting, and the metadata merges with what is on disk now.
    pub(super) fn apply(self, layout: &store::Layout) -> Result<EntryMeta> {
        let now = Utc::now();
        let sha256 = self.sums[0].1.clone();
        let mut entry = store::read_entry(layout, &sha256).unwrap_or_else(|| EntryMeta {
            sha256: sha256.clone(),
            size: self.written,
            checksums: BTreeMap::new(),
            sources: BTreeMap::new(),
            fetched_at: now,
            last_used: now,
        });
        for (a, h) in &self.sums {
            entry.checksums.insert(a.name().into(), h.clone());
        }
        entry.last_used = now;
        entry.fetched_at = now;
        entry.sources.insert(
            self.url,
            Source {
                validated_at: Some(now),
                ..self.source
            },
        );
        // Metadata first: an entry exists once its data is renamed into place.
        store::write_json(&layout.meta(&entry.sha256), &entry)?;
        let data = layout.data(&entry.sha256);
        if data.exists() {
            store::remove_quiet(&self.part);
        } else {
            durable::commit(&self.part, &data)?;
        }
        if let Some(m) = &self.part_meta {
            store::remove_quiet(m);
        }
        store::remove_quiet(&layout.reservation(&self.key));
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_length_reads_only_unsatisfied_ranges() {
        assert_eq!(complete_length("bytes */1234"), Some(1234));
        assert_eq!(complete_length(" bytes */0 "), Some(0));
        assert_eq!(complete_length("bytes 0-9/1234"), None);
        assert_eq!(complete_length("bytes */*"), None);
        assert_eq!(complete_length(""), None);
    }
}

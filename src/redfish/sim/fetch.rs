//! Fetching an inserted image the way iDRAC does: HEAD for the size, then Range GETs in
//! chunks, streamed to a file (never the whole image in memory).

use std::path::Path;
use std::sync::atomic::Ordering;

use reqwest::header::{CONTENT_LENGTH, RANGE};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use super::state::Counters;

/// Size of one Range GET (iDRAC uses chunks of this order).
const CHUNK: u64 = 1 << 20;

/// Downloads `url` into `dest`; returns the image length, or a message for the 4xx body.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    dest: &Path,
    counters: &Counters,
) -> Result<u64, String> {
    counters.media_heads.fetch_add(1, Ordering::SeqCst);
    let head = http
        .head(url)
        .send()
        .await
        .map_err(|e| format!("cannot reach image server: {e}"))?;
    if !head.status().is_success() {
        return Err(format!("image server answered HEAD with {}", head.status()));
    }
    let len: u64 = head
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .ok_or("image server gave no Content-Length to HEAD")?;
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut offset = 0u64;
    while offset < len {
        let end = (offset + CHUNK).min(len) - 1;
        counters.media_range_gets.fetch_add(1, Ordering::SeqCst);
        let mut resp = http
            .get(url)
            .header(RANGE, format!("bytes={offset}-{end}"))
            .send()
            .await
            .map_err(|e| format!("range GET at {offset} failed: {e}"))?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(format!(
                "image server answered a range GET at {offset} with {} instead of 206",
                resp.status()
            ));
        }
        let mut got = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading range at {offset}: {e}"))?
        {
            got += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("writing {} at {offset}: {e}", dest.display()))?;
        }
        if got != end - offset + 1 {
            return Err(format!(
                "range GET at {offset} returned {got} bytes, expected {}",
                end - offset + 1
            ));
        }
        offset = end + 1;
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(len)
}

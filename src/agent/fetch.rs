//! Small downloads the agent needs whole (checksum files, config drives), with a size cap,
//! on a private thread and runtime so blocking command code can call them.

use futures::StreamExt as _;

/// GETs `url` into memory, refusing more than `limit` bytes.
pub fn fetch_bytes(url: &str, limit: usize) -> Result<Vec<u8>, String> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let resp = reqwest::get(&url).await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("server answered {}", resp.status()));
            }
            let mut out = Vec::new();
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                if out.len() + chunk.len() > limit {
                    return Err(format!("it is larger than the {limit} bytes allowed"));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        })
    })
    .join()
    .map_err(|_| "the fetch thread panicked".to_string())?
}

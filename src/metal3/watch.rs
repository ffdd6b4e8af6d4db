//! Directory mode (`[metal3] manifests_dir`): every `*.yaml`/`*.yml` file there is applied at
//! start and again whenever its modification time or size changes, so GitOps tools can drive
//! ironcast by committing files. Polling the metadata (no inotify crate): it works on every
//! filesystem, including network and bind mounts where inotify misses changes, and a scan of a
//! directory of manifests every few seconds costs nothing. A host whose file is removed is not
//! deleted (as `kubectl apply` without `--prune`); `ironcast delete bmh` deletes it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::store::Store;

use super::Wake;

/// What a file looked like when last applied.
type Seen = HashMap<PathBuf, (SystemTime, u64)>;

/// Polls `dir` every `interval` until the process ends.
pub fn spawn(
    store: Store,
    dir: PathBuf,
    interval: Duration,
    wake: Wake,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = Seen::new();
        loop {
            scan(&store, &dir, &mut seen, &wake).await;
            tokio::time::sleep(interval).await;
        }
    })
}

/// The manifest files of `dir`, sorted by name, with their mtime and size.
fn manifests(dir: &Path) -> std::io::Result<Vec<(PathBuf, SystemTime, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if !yaml {
            continue;
        }
        let meta = std::fs::metadata(&path)?;
        if meta.is_file() {
            out.push((path, meta.modified()?, meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// Applies every file that is new or changed since `seen`. A file that fails is logged with
/// the reason and retried when it changes again.
pub async fn scan(store: &Store, dir: &Path, seen: &mut Seen, wake: &Wake) {
    let files = match manifests(dir) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read [metal3] manifests_dir");
            return;
        }
    };
    for (path, mtime, len) in files {
        if seen.get(&path) == Some(&(mtime, len)) {
            continue;
        }
        seen.insert(path.clone(), (mtime, len));
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read manifest");
                continue;
            }
        };
        match super::apply(store, &text).await {
            Ok(done) => {
                for d in done.iter().filter(|d| d.result != "unchanged") {
                    tracing::info!(file = %path.display(), "{}/{} {} ({})", d.kind, d.name, d.result, d.namespace);
                }
                wake.wake();
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "manifest refused"),
        }
    }
}

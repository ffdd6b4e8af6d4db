//! Publications: unguessable tokens, expiry, revocation, persisted as one JSON file each.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::overlay::PatchSet;

use super::ServerError;

/// Random bytes in a token: 192 bits, well above the 128 required.
const TOKEN_BYTES: usize = 24;

/// One published artifact, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub token: String,
    pub node: String,
    /// File name including its ending (".iso", or a disk image's: [`KEPT_ENDINGS`]).
    pub name: String,
    pub base: PathBuf,
    pub patch_set: Option<PathBuf>,
    pub len: u64,
    pub etag: String,
    /// HTTP date.
    pub last_modified: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A publication ready to serve: its record and the plan of its bytes.
#[derive(Debug)]
pub struct Live {
    pub record: Record,
    pub plan: Arc<PatchSet>,
    /// Fired when the publication is revoked or expires: transfers already streaming it end.
    pub ended: CancellationToken,
}

impl Live {
    pub fn new(record: Record, plan: Arc<PatchSet>) -> Self {
        Self {
            record,
            plan,
            ended: CancellationToken::new(),
        }
    }
}

/// A fresh token: base64url of 24 random bytes from the OS-seeded CSPRNG.
pub fn new_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` has the shape of a [`new_token`]: 32 URL-safe base64 characters.
pub fn is_token(s: &str) -> bool {
    s.len() == TOKEN_BYTES.div_ceil(3) * 4
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Endings a publication name keeps as they are: ISOs, and disk images for the agent (raw,
/// qcow2, compressed) so a URL says what it serves. Any other name gets ".iso".
pub const KEPT_ENDINGS: &[&str] = &[
    ".iso", ".img", ".raw", ".qcow2", ".gz", ".xz", ".zst", // images
    ".cfg", ".xml",
    ".ign", // installers' automation files (kickstart, preseed, AutoYaST, Ignition)
];

/// Names served exactly as given: cloud-init's NoCloud seed files, which it fetches by these
/// names from the directory it is given.
pub const KEPT_NAMES: &[&str] = &["user-data", "meta-data"];

/// Checks a publication name and gives it its ending: kept when it is one of
/// [`KEPT_ENDINGS`] (or the name one of [`KEPT_NAMES`]), else ".iso" is added.
pub fn publication_name(name: &str) -> Result<String, ServerError> {
    let (stem, ending) = match KEPT_ENDINGS.iter().find(|e| name.ends_with(*e)) {
        Some(e) => (&name[..name.len() - e.len()], *e),
        None if KEPT_NAMES.contains(&name) => (name, ""),
        None => (name, ".iso"),
    };
    let ok = !stem.is_empty()
        && stem.len() <= 100
        && !stem.starts_with('.')
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(format!("{stem}{ending}"))
    } else {
        Err(ServerError::BadName(name.to_string()))
    }
}

fn mtime(path: &Path) -> Result<std::time::SystemTime, ServerError> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| ServerError::Artifact(format!("reading {}: {e}", path.display())))
}

/// Loads and checks what an artifact will serve: the patch set (or identity) over its base.
pub fn load_plan(base: &Path, patch_set: Option<&Path>, len: u64) -> Result<PatchSet, ServerError> {
    let file = std::fs::File::open(base)
        .map_err(|e| ServerError::Artifact(format!("opening base {}: {e}", base.display())))?;
    let base_len = file
        .metadata()
        .map_err(|e| ServerError::Artifact(format!("reading {}: {e}", base.display())))?
        .len();
    let plan = match patch_set {
        Some(p) => PatchSet::load(p).map_err(|e| ServerError::Artifact(e.to_string()))?,
        None => PatchSet::identity(base_len),
    };
    plan.check_base(base, &file)
        .map_err(|e| ServerError::Artifact(e.to_string()))?;
    if plan.len != len {
        return Err(ServerError::Artifact(format!(
            "artifact says {len} bytes but {} makes {} bytes",
            patch_set.unwrap_or(base).display(),
            plan.len
        )));
    }
    Ok(plan)
}

/// Builds the record of a new publication (blocking: reads the files).
/// Refuses a publication id that is not a plain name (it names the record's file).
pub fn check_id(id: &str) -> Result<(), ServerError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ServerError::BadId(format!(
            "{id:?} is not a plain name (letters, digits, - and _, up to 64)"
        )));
    }
    Ok(())
}

pub fn make_record(
    id: &str,
    base: &Path,
    patch_set: Option<&Path>,
    len: u64,
    node: &str,
    name: &str,
    ttl: std::time::Duration,
) -> Result<(Record, PatchSet), ServerError> {
    let name = publication_name(name)?;
    let plan = load_plan(base, patch_set, len)?;
    let mut modified = mtime(base)?;
    if let Some(p) = patch_set {
        modified = modified.max(mtime(p)?);
    }
    let id = id.to_string();
    // Strong validator: changes whenever the served bytes could.
    let etag = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(base.as_os_str().as_encoded_bytes());
        h.update(format!("{modified:?}/{len}").as_bytes());
        if let Some(p) = patch_set {
            h.update(serde_json::to_vec(&plan).unwrap_or_default());
            h.update(p.as_os_str().as_encoded_bytes());
        }
        format!("\"{}\"", hex::encode(&h.finalize()[..12]))
    };
    let now = Utc::now();
    let record = Record {
        id,
        token: new_token(),
        node: node.to_string(),
        name,
        base: base.to_path_buf(),
        patch_set: patch_set.map(Path::to_path_buf),
        len,
        etag,
        last_modified: httpdate::fmt_http_date(modified),
        created_at: now,
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
    };
    Ok((record, plan))
}

/// The key of a live publication: its URL path below the base, `token/name` (publications
/// beside one another share a token).
pub fn path_key(token: &str, name: &str) -> String {
    format!("{token}/{name}")
}

pub fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Saves `record` durably (owner-only: it holds the token) before its URL is handed out.
pub fn save(dir: &Path, record: &Record) -> Result<(), ServerError> {
    let path = record_path(dir, &record.id);
    let io = |message: String| ServerError::Io {
        context: format!("saving publication {}", path.display()),
        message,
    };
    let data = serde_json::to_vec_pretty(record).map_err(|e| io(e.to_string()))?;
    crate::durable::write(&path, &data, crate::durable::Mode::Private)
        .map_err(|e| io(e.to_string()))
}

/// Loads every stored publication that is still valid; removes expired or broken ones.
pub fn load_all(dir: &Path) -> Vec<Live> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let now = Utc::now();
    for e in rd.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let rec: Option<Record> = crate::cache::store::read_json(&path);
        let live = rec.filter(|r| r.expires_at > now).and_then(|r| {
            match load_plan(&r.base, r.patch_set.as_deref(), r.len) {
                Ok(plan) => Some(Live::new(r, Arc::new(plan))),
                Err(e) => {
                    tracing::warn!(publication = %r.id, error = %e, "dropping publication whose files changed");
                    None
                }
            }
        });
        match live {
            Some(l) => out.push(l),
            None => {
                if let Err(e) = crate::durable::remove(&path) {
                    tracing::warn!(error = %e, "cannot remove a dead publication's record");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn names() {
        assert_eq!(publication_name("boot").unwrap(), "boot.iso");
        assert_eq!(publication_name("node-1.iso").unwrap(), "node-1.iso");
        for bad in ["", ".iso", "../x", "a/b", "a b", "a?b", ".hidden"] {
            assert!(publication_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn disk_image_names_keep_their_ending() {
        for (name, want) in [
            ("disk.qcow2", "disk.qcow2"),
            ("disk.raw", "disk.raw"),
            ("disk.img", "disk.img"),
            ("disk.raw.gz", "disk.raw.gz"),
            ("disk.qcow2.zst", "disk.qcow2.zst"),
            ("disk.xz", "disk.xz"),
            ("configdrive", "configdrive.iso"),
            ("user-data", "user-data"),
            ("meta-data", "meta-data"),
            ("my-data", "my-data.iso"),
            ("disk.vmdk", "disk.vmdk.iso"),
        ] {
            assert_eq!(publication_name(name).unwrap(), want, "{name}");
        }
        for bad in [".qcow2", "../disk.raw", "a b.img"] {
            assert!(publication_name(bad).is_err(), "{bad}");
        }
    }
}

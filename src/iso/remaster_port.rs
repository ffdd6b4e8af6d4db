//! The deploy-drivers [`Remaster`] port: remaster a leased base ISO into a patch set stored as
//! JSON under `<dir>/<owner>.json`, CPU work on the blocking pool.

use std::path::PathBuf;

use async_trait::async_trait;
use deploy_drivers::ports::{
    Artifact, LeasedImage, PortError, PortErrorKind, PortResult, Remaster,
};

use super::IsoError;

/// Stores patch sets as `<dir>/<owner>.json`.
#[derive(Debug, Clone)]
pub struct FileRemaster {
    dir: PathBuf,
}

impl FileRemaster {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, owner: &str) -> PortResult<PathBuf> {
        if owner.is_empty()
            || !owner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!("owner {owner:?} is not a valid name for a patch set (letters, digits, - and _)"),
            ));
        }
        Ok(self.dir.join(format!("{owner}.json")))
    }
}

fn port_error(e: IsoError) -> PortError {
    let kind = match e {
        IsoError::Io { .. } => PortErrorKind::Other,
        _ => PortErrorKind::InvalidInput,
    };
    PortError::new(kind, format!("remastering the boot ISO: {e}"))
}

#[async_trait]
impl Remaster for FileRemaster {
    async fn remaster(
        &self,
        base: &LeasedImage,
        kernel_args: &str,
        owner: &str,
    ) -> PortResult<Artifact> {
        let out = self.path(owner)?;
        let dir = self.dir.clone();
        let base_path = base.path.clone();
        let args = kernel_args.to_string();
        tokio::task::spawn_blocking(move || {
            let (set, _report) = super::remaster(&base_path, &args).map_err(port_error)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| PortError::other(format!("creating {}: {e}", dir.display())))?;
            let json = serde_json::to_vec(&set).map_err(|e| PortError::other(e.to_string()))?;
            crate::durable::write(&out, &json, crate::durable::Mode::Private)
                .map_err(|e| PortError::other(e.to_string()))?;
            Ok(Artifact {
                base: base_path,
                patch_set: Some(out),
                len: set.len,
            })
        })
        .await
        .map_err(|e| PortError::other(format!("remaster task failed: {e}")))?
    }

    async fn discard(&self, owner: &str) -> PortResult<()> {
        crate::durable::remove_blocking(self.path(owner)?)
            .await
            .map(drop)
            .map_err(|e| PortError::other(e.to_string()))
    }
}

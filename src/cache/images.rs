//! The deploy-drivers `Images` port over the cache.

use async_trait::async_trait;
use deploy_drivers::ports::{
    is_image_name, ChecksumSpec, ImageRequest, Images, LeasedImage, PortError, PortErrorKind,
    PortResult,
};

use super::{Cache, CacheError, EntryMeta, LeaseScope};

/// A checksum given with a captured image's name must be one the cache computed for it.
fn check_named(name: &str, meta: &EntryMeta, given: Option<&ChecksumSpec>) -> PortResult<()> {
    let Some(ChecksumSpec::Value { algorithm, hex }) = given else {
        return match given {
            None => Ok(()),
            Some(_) => Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!("image {name:?} is a captured image: give its checksum as a value (sha256), not a checksum file"),
            )),
        };
    };
    let algorithm = algorithm.to_ascii_lowercase();
    match meta.checksums.get(&algorithm) {
        Some(h) if h.eq_ignore_ascii_case(hex) => Ok(()),
        Some(h) => Err(PortError::new(
            PortErrorKind::InvalidInput,
            format!("checksum mismatch for captured image {name:?}: expected {algorithm} {hex}, the cache has {h}"),
        )),
        None => Err(PortError::new(
            PortErrorKind::InvalidInput,
            format!("captured image {name:?} has no {algorithm} checksum: give its sha256 ({})", meta.sha256),
        )),
    }
}

impl From<CacheError> for PortError {
    fn from(e: CacheError) -> Self {
        let kind = match &e {
            CacheError::InvalidUrl { .. }
            | CacheError::FileNotAllowed { .. }
            | CacheError::BadChecksum(_)
            | CacheError::ChecksumMismatch { .. }
            | CacheError::ChecksumNotListed { .. } => PortErrorKind::InvalidInput,
            CacheError::QuotaExceeded { .. } => PortErrorKind::NoSpace,
            CacheError::Origin { .. } => PortErrorKind::Rejected,
            CacheError::Unreachable { .. } | CacheError::Truncated { .. } => {
                PortErrorKind::Unreachable
            }
            _ => PortErrorKind::Other,
        };
        PortError::new(kind, e.to_string())
    }
}

#[async_trait]
impl Images for Cache {
    async fn acquire(
        &self,
        request: &ImageRequest,
        holder: &str,
        lease: &str,
    ) -> PortResult<LeasedImage> {
        let (lease, meta) = if is_image_name(&request.url) {
            let meta = self.named(&request.url).await?;
            check_named(&request.url, &meta, request.checksum.as_ref())?;
            let lease = self
                .lease_as(lease, &meta.sha256, holder, LeaseScope::Durable)
                .await?;
            (lease, meta)
        } else {
            Cache::acquire_as(self, lease, &request.url, request.checksum.as_ref(), holder).await?
        };
        // The lease exists now; the deploy recorded its id before asking for it, so a crash
        // here leaves nothing unknown.
        crate::fail_point!("lease-taken");
        Ok(LeasedImage {
            lease: lease.id,
            digest: format!("sha256:{}", meta.sha256),
            path: self.path_of(&meta.sha256),
            size: meta.size,
        })
    }

    async fn release(&self, lease: &str) -> PortResult<()> {
        Ok(Cache::release(self, lease).await?)
    }

    async fn virtual_size(&self, image: &LeasedImage) -> PortResult<Option<u64>> {
        let path = image.path.clone();
        tokio::task::spawn_blocking(move || crate::writer::virtual_size_of_file(&path))
            .await
            .map_err(|e| PortError::other(format!("image size task failed: {e}")))?
            .map_err(|e| PortError::new(PortErrorKind::InvalidInput, e.to_string()))
    }
}

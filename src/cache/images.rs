//! The deploy-drivers `Images` port over the cache.

use async_trait::async_trait;
use deploy_drivers::ports::{
    ImageRequest, Images, LeasedImage, PortError, PortErrorKind, PortResult,
};

use super::{Cache, CacheError};

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
        let (lease, meta) =
            Cache::acquire_as(self, lease, &request.url, request.checksum.as_ref(), holder).await?;
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

//! Synchronous hardware calls the API makes on a node (virtual media, event subscriptions):
//! the node's `Hardware` port composed on demand; changes under the node's lock, as Ironic
//! takes an exclusive lock to attach or detach media.

use std::sync::Arc;

use super::{compose, release, Conductor, ConductorError, ConductorResult};
use crate::hardware::{Hardware, HardwareError};
use crate::store::Node;

impl From<HardwareError> for ConductorError {
    fn from(e: HardwareError) -> Self {
        match e {
            HardwareError::Unsupported(m) | HardwareError::Invalid(m) => ConductorError::Invalid(m),
            HardwareError::Bmc(m) => ConductorError::Bmc(m),
        }
    }
}

impl Conductor {
    /// The node and its `Hardware` port, for reads that need no lock.
    pub async fn hardware(&self, ident: &str) -> ConductorResult<(Node, Arc<dyn Hardware>)> {
        let node = self.store.node(ident).await?;
        let composed = compose(&node, &self.settings, &self.services)?;
        Ok((node, composed.hardware))
    }

    /// Runs `f` on the node's `Hardware` port while holding the node's lock (409 if busy).
    pub async fn with_hardware_locked<T, F, Fut>(&self, ident: &str, f: F) -> ConductorResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Hardware>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, HardwareError>> + Send,
    {
        let (this, ident) = (self.clone(), ident.to_string());
        Conductor::detached(async move {
            let (lock, node) = this.lock(&ident).await?;
            let result = match compose(&node, &this.settings, &this.services) {
                Ok(c) => f(c.hardware).await.map_err(ConductorError::from),
                Err(e) => Err(e),
            };
            release(lock).await;
            result
        })
        .await
    }
}

//! VIFs (Ironic's virtual network interfaces): a VIF is attached to a node by recording its id
//! in one free port's internal_info (`tenant_vif_port_id`), PXE-enabled ports first, under the
//! node's lock; detaching clears it. No network service is called (the `noop` network).

use serde_json::Value;

use super::{release, Conductor, ConductorError, ConductorResult};
use crate::store::Port;

/// internal_info key of the VIF a port carries (Ironic's).
pub const VIF_KEY: &str = "tenant_vif_port_id";

fn vif_of(p: &Port) -> Option<&str> {
    p.internal_info.get(VIF_KEY).and_then(Value::as_str)
}

impl Conductor {
    /// The VIF ids attached to the node's ports.
    pub async fn vifs(&self, ident: &str) -> ConductorResult<Vec<String>> {
        let node = self.store.node(ident).await?;
        let ports = self.store.ports(Some(&node.uuid)).await?;
        Ok(ports
            .iter()
            .filter_map(|p| vif_of(p).map(String::from))
            .collect())
    }

    /// Attaches VIF `vif` to a free port of the node.
    pub async fn attach_vif(&self, ident: &str, vif: &str) -> ConductorResult<()> {
        let (lock, node) = self.lock(ident).await?;
        let result = async {
            let mut ports = self.store.ports(Some(&node.uuid)).await?;
            if ports.iter().any(|p| vif_of(p) == Some(vif)) {
                return Err(ConductorError::Conflict(format!(
                    "Unable to attach VIF {vif}, it is already attached to node {}",
                    node.uuid
                )));
            }
            ports.sort_by_key(|p| !p.pxe_enabled);
            let Some(port) = ports.iter_mut().find(|p| vif_of(p).is_none()) else {
                return Err(ConductorError::Invalid(format!(
                    "Unable to attach VIF {vif}, not enough free physical ports on node {}: add a port first",
                    node.uuid
                )));
            };
            port.internal_info
                .insert(VIF_KEY.into(), Value::String(vif.to_string()));
            self.store.save_port(port).await?;
            Ok(())
        }
        .await;
        release(lock).await;
        result
    }

    /// Detaches VIF `vif` from the node.
    pub async fn detach_vif(&self, ident: &str, vif: &str) -> ConductorResult<()> {
        let (lock, node) = self.lock(ident).await?;
        let result = async {
            let ports = self.store.ports(Some(&node.uuid)).await?;
            let Some(mut port) = ports.into_iter().find(|p| vif_of(p) == Some(vif)) else {
                return Err(ConductorError::Invalid(format!(
                    "Unable to detach VIF {vif} from node {}: VIF not attached",
                    node.uuid
                )));
            };
            port.internal_info.remove(VIF_KEY);
            self.store.save_port(&port).await?;
            Ok(())
        }
        .await;
        release(lock).await;
        result
    }
}

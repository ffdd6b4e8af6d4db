//! Firmware components as Ironic's `redfish` firmware interface sees them: `bios` (the System's
//! BiosVersion) and `bmc` (its Manager's FirmwareVersion); updates through the UpdateService's
//! `#UpdateService.SimpleUpdate` with the component's resource as the target.

use serde_json::{json, Value};

use super::client::Client;
use super::error::{RedfishError, Result};
use super::inspect::link;
use super::task;
use crate::hardware::FirmwareVersion;

fn manager_of(sys: &Value) -> Option<String> {
    sys["Links"]["ManagedBy"][0]["@odata.id"]
        .as_str()
        .map(String::from)
}

/// The components and their versions (a component the BMC does not report is left out).
pub async fn versions(client: &Client, system: &str) -> Result<Vec<FirmwareVersion>> {
    let sys: Value = client.get_as(system).await?;
    let mut out = Vec::new();
    if let Some(v) = sys["BiosVersion"].as_str().filter(|v| !v.is_empty()) {
        out.push(FirmwareVersion {
            component: "bios".into(),
            version: v.into(),
        });
    }
    if let Some(m) = manager_of(&sys) {
        match client.get_as::<Value>(&m).await {
            Ok(mgr) => {
                if let Some(v) = mgr["FirmwareVersion"].as_str().filter(|v| !v.is_empty()) {
                    out.push(FirmwareVersion {
                        component: "bmc".into(),
                        version: v.into(),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(manager = %m, error = %e, "cannot read the BMC's firmware version")
            }
        }
    }
    Ok(out)
}

/// Flashes `url` onto `component` ("bios" or "bmc") and waits for the BMC's task.
pub async fn update(client: &Client, system: &str, component: &str, url: &str) -> Result<()> {
    let sys: Value = client.get_as(system).await?;
    let target = match component {
        "bios" => system.to_string(),
        "bmc" => manager_of(&sys).ok_or_else(|| {
            RedfishError::Unsupported(format!("a bmc firmware update: {system} names no manager"))
        })?,
        other => {
            return Err(RedfishError::Unsupported(format!(
                "firmware component {other:?} (use bios or bmc)"
            )))
        }
    };
    let root = client.get("/redfish/v1/").await?.body;
    let service = link(&root, "UpdateService")
        .ok_or_else(|| RedfishError::Unsupported("firmware updates: no UpdateService".into()))?;
    let svc: Value = client.get_as(&service).await?;
    let action = svc["Actions"]["#UpdateService.SimpleUpdate"]["target"]
        .as_str()
        .ok_or_else(|| {
            RedfishError::Unsupported(
                "firmware updates: no #UpdateService.SimpleUpdate action".into(),
            )
        })?;
    let proto = if url.starts_with("https:") {
        "HTTPS"
    } else {
        "HTTP"
    };
    let body = json!({"ImageURI": url, "Targets": [target], "TransferProtocol": proto});
    let r = client.post(action, &body).await?;
    task::follow(client, r, "firmware update").await?;
    Ok(())
}

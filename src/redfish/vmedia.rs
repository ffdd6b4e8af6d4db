//! Virtual media: find CD/DVD slots (under the System, then under its Managers), eject, and
//! insert an image URL the BMC fetches, with the fallbacks real BMCs need (see [`super::quirks`]).

use deploy_drivers::ports::MediaAuth;
use serde_json::{json, Value};

use super::client::Client;
use super::error::{RedfishError, Result};
use super::model::{Collection, ComputerSystem, Manager, VirtualMediaSlot};
use super::quirks::Quirks;
use super::task;

async fn slots_in(
    client: &Client,
    collection: &str,
    kind: fn(&VirtualMediaSlot) -> bool,
) -> Result<Vec<VirtualMediaSlot>> {
    let members = match client.get_as::<Collection>(collection).await {
        Ok(c) => c.members,
        Err(e) if e.status() == Some(404) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for m in members {
        let slot: VirtualMediaSlot = client.get_as(&m.odata_id).await?;
        if kind(&slot) {
            out.push(slot);
        }
    }
    Ok(out)
}

/// CD/DVD slots of `sys`: its own VirtualMedia collection first, else those of the managers
/// that manage it (`Links.ManagedBy`, or every manager when the link is absent).
pub async fn cd_slots(client: &Client, sys: &ComputerSystem) -> Result<Vec<VirtualMediaSlot>> {
    let out = slots_of(client, sys, VirtualMediaSlot::is_cd).await?;
    if out.is_empty() {
        return Err(RedfishError::Unsupported(format!(
            "virtual media: no CD/DVD slot under {} or its managers",
            client.url(&sys.odata_id)?
        )));
    }
    Ok(out)
}

/// USB stick slots of `sys`, then floppy slots; empty when it has neither.
pub async fn removable_slots(
    client: &Client,
    sys: &ComputerSystem,
) -> Result<Vec<VirtualMediaSlot>> {
    let mut out = slots_of(client, sys, VirtualMediaSlot::is_removable).await?;
    out.sort_by_key(|s| !s.media_types.iter().any(|t| t == "USBStick"));
    Ok(out)
}

/// The slots of one kind: the System's own collection first, else its managers'.
pub async fn slots_of(
    client: &Client,
    sys: &ComputerSystem,
    kind: fn(&VirtualMediaSlot) -> bool,
) -> Result<Vec<VirtualMediaSlot>> {
    if let Some(link) = &sys.virtual_media {
        let slots = slots_in(client, &link.odata_id, kind).await?;
        if !slots.is_empty() {
            return Ok(slots);
        }
    }
    let mut managers = sys.links.managed_by.clone();
    if managers.is_empty() {
        if let Some(link) = client.service_root().await?.managers.clone() {
            managers = client.get_as::<Collection>(&link.odata_id).await?.members;
        }
    }
    let mut out = Vec::new();
    for m in managers {
        let manager: Manager = client.get_as(&m.odata_id).await?;
        if let Some(link) = manager.virtual_media {
            out.extend(slots_in(client, &link.odata_id, kind).await?);
        }
    }
    Ok(out)
}

/// Ejects one slot: the EjectMedia action, else (absent or refused) a PATCH clearing Image.
pub async fn eject(client: &Client, slot: &VirtualMediaSlot) -> Result<()> {
    if let Some(action) = &slot.actions.eject {
        match client.post(&action.target, &json!({})).await {
            Ok(r) => {
                task::follow(client, r, "eject media").await?;
                return Ok(());
            }
            Err(e) if refused(&e) => {
                tracing::debug!(slot = %slot.odata_id, "EjectMedia refused ({e}), trying PATCH");
            }
            Err(e) => return Err(e),
        }
    }
    let r = client
        .patch_with_etag(&slot.odata_id, &json!({"Image": null, "Inserted": false}))
        .await?;
    task::follow(client, r, "eject media").await?;
    Ok(())
}

/// An answer meaning "not this way" (try the next way), as opposed to a failure.
fn refused(e: &RedfishError) -> bool {
    matches!(e.status(), Some(400 | 404 | 405 | 501))
}

/// What to insert: the image URL and the credentials the BMC must fetch it with.
#[derive(Debug, Clone, Copy)]
pub struct Media<'a> {
    pub url: &'a str,
    pub auth: Option<&'a MediaAuth>,
}

impl Media<'_> {
    /// Adds `UserName` / `Password` (VirtualMedia 1.3) when there are credentials.
    fn add_auth(&self, body: &mut Value) {
        if let Some(a) = self.auth {
            body["UserName"] = json!(a.username);
            body["Password"] = json!(a.password);
        }
    }
}

/// The InsertMedia body; `with_flags == false` leaves out Inserted/WriteProtected.
pub fn insert_body(media: &Media<'_>, with_flags: bool) -> Value {
    let proto = if media.url.to_ascii_lowercase().starts_with("https:") {
        "HTTPS"
    } else {
        "HTTP"
    };
    let mut body = json!({"Image": media.url, "TransferProtocolType": proto});
    if with_flags {
        body["Inserted"] = json!(true);
        body["WriteProtected"] = json!(true);
    }
    media.add_auth(&mut body);
    body
}

async fn insert_by_patch(
    client: &Client,
    slot: &VirtualMediaSlot,
    media: &Media<'_>,
) -> Result<()> {
    let mut body = json!({"Image": media.url, "Inserted": true, "WriteProtected": true});
    media.add_auth(&mut body);
    let r = client.patch_with_etag(&slot.odata_id, &body).await?;
    task::follow(client, r, "insert media").await?;
    Ok(())
}

async fn insert_once(
    client: &Client,
    slot: &VirtualMediaSlot,
    media: &Media<'_>,
    quirks: &Quirks,
) -> Result<()> {
    let action = match &slot.actions.insert {
        Some(a) if !quirks.insert_by_patch => a,
        _ => return insert_by_patch(client, slot, media).await,
    };
    let mut with_flags = !quirks.insert_without_flags;
    loop {
        match client
            .post(&action.target, &insert_body(media, with_flags))
            .await
        {
            Ok(r) => {
                task::follow(client, r, "insert media").await?;
                return Ok(());
            }
            Err(e) if e.status() == Some(400) && with_flags => {
                tracing::debug!(slot = %slot.odata_id, "InsertMedia refused with flags ({e}), retrying without");
                with_flags = false;
            }
            Err(e) if refused(&e) => {
                tracing::debug!(slot = %slot.odata_id, "InsertMedia refused ({e}), trying PATCH");
                return insert_by_patch(client, slot, media).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Inserts `media` into `slot`; `just_ejected` enables the vendor's retry-after-eject quirk.
pub async fn insert(
    client: &Client,
    slot: &VirtualMediaSlot,
    media: &Media<'_>,
    quirks: &Quirks,
    just_ejected: bool,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        match insert_once(client, slot, media, quirks).await {
            Err(e) if just_ejected && e.status().is_some_and(|s| s >= 500) => {
                match quirks.insert_retries_after_eject {
                    Some((n, pause)) if attempt < n => {
                        attempt += 1;
                        tracing::debug!(slot = %slot.odata_id, attempt, "insert right after eject failed ({e}), retrying");
                        tokio::time::sleep(pause).await;
                    }
                    _ => return Err(e),
                }
            }
            other => break other?,
        }
    }
    if quirks.boot_on_next_server_reset {
        let r = client
            .patch_with_etag(
                &slot.odata_id,
                &json!({"Oem": {"Hpe": {"BootOnNextServerReset": true}}}),
            )
            .await?;
        task::follow(client, r, "set BootOnNextServerReset").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let plain = |url| Media { url, auth: None };
        assert_eq!(
            insert_body(&plain("https://h/a.iso"), true),
            json!({"Image": "https://h/a.iso", "TransferProtocolType": "HTTPS", "Inserted": true, "WriteProtected": true})
        );
        assert_eq!(
            insert_body(&plain("http://h/a.iso"), false),
            json!({"Image": "http://h/a.iso", "TransferProtocolType": "HTTP"})
        );
        let auth = MediaAuth {
            username: "bmc".into(),
            password: "s3cret".into(),
        };
        let with_auth = Media {
            url: "http://h/a.iso",
            auth: Some(&auth),
        };
        assert_eq!(
            insert_body(&with_auth, false),
            json!({"Image": "http://h/a.iso", "TransferProtocolType": "HTTP", "UserName": "bmc", "Password": "s3cret"})
        );
    }
}

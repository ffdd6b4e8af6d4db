//! Boot override: `Boot.BootSourceOverride{Target,Enabled,Mode}` on the ComputerSystem, each
//! checked against the system's allowable values, set with an ETag-guarded PATCH.

use deploy_drivers::ports::{BootMode, BootTarget};
use serde_json::{json, Value};

use super::client::Client;
use super::error::{RedfishError, Result};
use super::model::{Boot, ComputerSystem};
use super::quirks::Quirks;
use super::task;

fn check(what: &str, value: &str, allowed: &[String]) -> Result<()> {
    if allowed.is_empty() || allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(RedfishError::Unsupported(format!(
            "{what} {value:?} (the system allows {allowed:?})"
        )))
    }
}

/// The PATCH body setting the override, from what the system allows. Pure.
pub fn override_body(
    boot: &Boot,
    target: BootTarget,
    persistent: bool,
    mode: BootMode,
    quirks: &Quirks,
) -> Result<Value> {
    let mut target_name = match target {
        BootTarget::Cd => "Cd",
        BootTarget::Pxe => "Pxe",
        BootTarget::Disk => "Hdd",
        BootTarget::UefiHttp => "UefiHttp",
    };
    if target == BootTarget::Cd {
        if let Some(alt) = quirks.cd_boot_target {
            if boot.target_allowed.iter().any(|a| a == alt) {
                target_name = alt;
            }
        }
    }
    check("boot target", target_name, &boot.target_allowed)?;
    let enabled = if persistent { "Continuous" } else { "Once" };
    check("boot override", enabled, &boot.enabled_allowed)?;
    let mode_name = match mode {
        BootMode::Uefi => "UEFI",
        BootMode::Bios => "Legacy",
    };
    let mut body = json!({
        "BootSourceOverrideTarget": target_name,
        "BootSourceOverrideEnabled": enabled,
    });
    // Only send the mode when it changes: several BMCs refuse a PATCH that names it at all
    // (sushy does the same), and one that cannot switch says so through the allowable values.
    if boot.mode.as_deref() != Some(mode_name) {
        check("boot mode", mode_name, &boot.mode_allowed)?;
        body["BootSourceOverrideMode"] = json!(mode_name);
    }
    Ok(json!({ "Boot": body }))
}

pub async fn set(
    client: &Client,
    system: &str,
    target: BootTarget,
    persistent: bool,
    mode: BootMode,
    quirks: &Quirks,
) -> Result<()> {
    let sys: ComputerSystem = client.get_as(system).await?;
    let Some(boot) = &sys.boot else {
        return Err(RedfishError::Unsupported(format!(
            "boot override: {} has no Boot property",
            client.url(system)?
        )));
    };
    let body = override_body(boot, target, persistent, mode, quirks)?;
    let r = client.patch_with_etag(system, &body).await?;
    task::follow(client, r, "boot override").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(targets: &[&str], modes: &[&str], mode: &str) -> Boot {
        Boot {
            target_allowed: targets.iter().map(|s| s.to_string()).collect(),
            mode_allowed: modes.iter().map(|s| s.to_string()).collect(),
            mode: Some(mode.into()),
            ..Default::default()
        }
    }

    #[test]
    fn bodies() {
        let q = Quirks::default();
        let b = boot(&["Pxe", "Cd", "Hdd", "UefiHttp"], &[], "UEFI");
        assert_eq!(
            override_body(&b, BootTarget::Cd, false, BootMode::Uefi, &q).unwrap(),
            json!({"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}})
        );
        assert_eq!(
            override_body(&b, BootTarget::Disk, true, BootMode::Bios, &q).unwrap(),
            json!({"Boot": {"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "Legacy"}})
        );
        let e = override_body(
            &boot(&["Pxe", "Hdd"], &[], "UEFI"),
            BootTarget::Cd,
            false,
            BootMode::Uefi,
            &q,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("boot target \"Cd\""), "{e}");
        let e = override_body(
            &boot(&[], &["UEFI"], "UEFI"),
            BootTarget::Pxe,
            false,
            BootMode::Bios,
            &q,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Legacy"), "{e}");
    }

    #[test]
    fn supermicro_usb_cd() {
        let q = crate::redfish::quirks::for_vendor(crate::redfish::quirks::Vendor::Supermicro);
        let b = boot(&["Pxe", "Cd", "UsbCd", "Hdd"], &[], "UEFI");
        let body = override_body(&b, BootTarget::Cd, false, BootMode::Uefi, &q).unwrap();
        assert_eq!(body["Boot"]["BootSourceOverrideTarget"], "UsbCd");
        // Not listed: plain Cd.
        let b = boot(&["Pxe", "Cd"], &[], "UEFI");
        let body = override_body(&b, BootTarget::Cd, false, BootMode::Uefi, &q).unwrap();
        assert_eq!(body["Boot"]["BootSourceOverrideTarget"], "Cd");
    }
}

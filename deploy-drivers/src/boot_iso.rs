//! How a node boots an ISO the image server publishes, whatever its boot interface: virtual
//! media (`redfish-virtual-media`: eject, insert, one-time CD boot) or the network (`ipxe` /
//! `pxe`: a per-MAC iPXE script that `sanboot`s the URL, one-time PXE boot). The ramdisk and
//! direct drivers call this instead of the virtual media port.

use crate::driver::*;
use crate::ports::*;
use crate::steps::{missing_port, run_step};
use std::time::Duration;

/// The port that boots ISOs for this node, or the name of what is missing.
pub fn check(ports: &Ports) -> Result<(), &'static str> {
    if ports.vmedia.is_some() || ports.netboot.is_some() {
        Ok(())
    } else {
        Err("virtual media or network boot")
    }
}

/// Makes the next boot of `node` start the ISO at `url` (one time): inserts it in the virtual
/// drive, or writes the per-MAC network boot configs, and returns the boot device that then
/// starts it (see [`boot_once`]). `insert` names the insert step.
#[allow(clippy::too_many_arguments)]
pub async fn attach(
    insert: &str,
    node: &NodeView,
    ports: &Ports,
    url: &str,
    auth: Option<&MediaAuth>,
    mode: BootMode,
    (bmc, local): (Duration, Duration),
    events: &dyn DeployEvents,
) -> Result<BootTarget, DeployError> {
    let target = match (&ports.vmedia, &ports.netboot) {
        (Some(vmedia), _) => {
            run_step("eject", bmc, vmedia.eject_all()).await?;
            events.step("eject", "virtual media ejected").await;
            run_step(insert, bmc, vmedia.insert_cd(url, auth)).await?;
            events.step(insert, "ISO inserted").await;
            BootTarget::Cd
        }
        (None, Some(netboot)) => {
            if node.macs.is_empty() {
                return Err(DeployError::invalid(
                    "network boot needs the node's ports (their MACs): enrol a port for the NIC it boots from",
                ));
            }
            let boot = IsoBoot {
                macs: node.macs.clone(),
                mode,
                url: with_auth(url, auth),
            };
            run_step(
                "network boot config",
                local,
                netboot.write_iso_boot(&node.uuid, &boot),
            )
            .await?;
            events
                .step(
                    "network boot config",
                    &format!("iPXE sanboot of the ISO for {}", node.macs.join(", ")),
                )
                .await;
            BootTarget::Pxe
        }
        (None, None) => return Err(missing_port("virtual media or network boot")),
    };
    Ok(target)
}

/// Sets the next boot (once) to `target` in `mode`: what [`attach`] prepared.
pub async fn boot_once(
    ports: &Ports,
    target: BootTarget,
    mode: BootMode,
    bmc: Duration,
    events: &dyn DeployEvents,
) -> Result<(), DeployError> {
    run_step(
        "set boot device",
        bmc,
        ports.boot.set_boot_device(target, false, mode),
    )
    .await?;
    let name = if target == BootTarget::Cd {
        "cd"
    } else {
        "pxe"
    };
    events
        .step(
            "set boot device",
            &format!("{name} once, {}", mode.as_ironic()),
        )
        .await;
    Ok(())
}

/// Starts the node on what [`boot_once`] set: powers it on, or resets it when it runs.
/// Returns what was done.
pub async fn power_on_or_reset(
    ports: &Ports,
    step: &str,
    bmc: Duration,
) -> Result<PowerAction, DeployError> {
    let action = match run_step(step, bmc, ports.power.power_state()).await? {
        PowerState::On => PowerAction::Reboot,
        PowerState::Off => PowerAction::On,
    };
    run_step(step, bmc, ports.power.set_power(action)).await?;
    Ok(action)
}

/// Undoes [`attach`]: ejects the virtual media, or removes the node's network boot configs.
pub async fn detach(
    node: &NodeView,
    ports: &Ports,
    (bmc, local): (Duration, Duration),
) -> Result<&'static str, DeployError> {
    match (&ports.vmedia, &ports.netboot) {
        (Some(vmedia), _) => {
            run_step("eject", bmc, vmedia.eject_all()).await?;
            Ok("virtual media ejected")
        }
        (None, Some(netboot)) => {
            run_step("eject", local, netboot.remove(&node.uuid)).await?;
            Ok("network boot configs removed")
        }
        (None, None) => Ok("nothing attached"),
    }
}

/// The URL with basic-auth credentials in it, for a client (iPXE, the agent) fetching from
/// an image server that asks for them.
pub fn with_auth(url: &str, auth: Option<&MediaAuth>) -> String {
    match (auth, url.split_once("://")) {
        (Some(a), Some((scheme, rest))) => format!(
            "{scheme}://{}:{}@{rest}",
            percent_encode(&a.username),
            percent_encode(&a.password)
        ),
        _ => url.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

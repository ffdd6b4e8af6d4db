//! Power: state, ComputerSystem.Reset with the reset type chosen from the system's
//! `ResetType@Redfish.AllowableValues`, and waiting for the resulting state.

use deploy_drivers::ports::{PowerAction, PowerState};
use serde_json::json;
use tokio::time::Instant;

use super::client::Client;
use super::error::{RedfishError, Result};
use super::model::ComputerSystem;
use super::task;

/// How to carry out a power action on this BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetPlan {
    /// One reset of this type, then wait for `expect`.
    Reset {
        reset_type: String,
        expect: PowerState,
    },
    /// No reset type restarts the node: power off (this type), wait, then on (this type).
    OffThenOn { off: String, on: String },
}

/// Preferred reset types per action, best first (what Ironic's redfish driver uses, then
/// the next best thing a BMC may offer instead).
fn preferences(action: PowerAction) -> &'static [&'static str] {
    match action {
        PowerAction::On => &["On", "ForceOn", "PushPowerButton"],
        PowerAction::Off => &["ForceOff", "PushPowerButton"],
        PowerAction::SoftOff => &["GracefulShutdown"],
        PowerAction::Reboot => &["ForceRestart", "PowerCycle"],
        PowerAction::SoftReboot => &["GracefulRestart"],
    }
}

fn pick(prefs: &[&str], allowed: &[String]) -> Option<String> {
    if allowed.is_empty() {
        // The BMC does not say: use the standard first choice.
        return prefs.first().map(|s| s.to_string());
    }
    prefs
        .iter()
        .find(|p| allowed.iter().any(|a| a == *p))
        .map(|s| s.to_string())
}

/// Chooses how to do `action` given the allowable reset types (empty = not advertised).
pub fn plan(action: PowerAction, allowed: &[String]) -> Result<ResetPlan> {
    let expect = match action {
        PowerAction::Off | PowerAction::SoftOff => PowerState::Off,
        _ => PowerState::On,
    };
    if let Some(reset_type) = pick(preferences(action), allowed) {
        return Ok(ResetPlan::Reset { reset_type, expect });
    }
    if action == PowerAction::Reboot {
        if let (Some(off), Some(on)) = (
            pick(preferences(PowerAction::Off), allowed),
            pick(preferences(PowerAction::On), allowed),
        ) {
            return Ok(ResetPlan::OffThenOn { off, on });
        }
    }
    Err(RedfishError::Unsupported(format!(
        "power action {action:?}: none of {:?} is among the allowed reset types {allowed:?}",
        preferences(action)
    )))
}

/// Maps a Redfish `PowerState`; transitional states count as where they are heading from.
pub fn parse_state(s: &str) -> Option<PowerState> {
    match s {
        "On" | "PoweringOff" => Some(PowerState::On),
        "Off" | "PoweringOn" => Some(PowerState::Off),
        _ => None,
    }
}

pub async fn state(client: &Client, system: &str) -> Result<PowerState> {
    let sys: ComputerSystem = client.get_as(system).await?;
    let raw = sys.power_state.unwrap_or_default();
    parse_state(&raw).ok_or_else(|| RedfishError::Protocol {
        url: client
            .url(system)
            .map(|u| u.to_string())
            .unwrap_or_default(),
        reason: format!("unknown PowerState {raw:?}"),
    })
}

async fn reset(client: &Client, target: &str, reset_type: &str) -> Result<()> {
    let r = client
        .post(target, &json!({"ResetType": reset_type}))
        .await?;
    task::follow(client, r, &format!("reset {reset_type}")).await?;
    Ok(())
}

/// Polls until the system reports `want`, or the power wait runs out.
pub async fn wait_for(client: &Client, system: &str, want: PowerState) -> Result<()> {
    let d = *client.durations();
    let deadline = Instant::now() + d.power_wait;
    loop {
        if state(client, system).await? == want {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(RedfishError::WaitTimeout {
                what: format!("{} to report {}", client.url(system)?, want.as_ironic()),
                after: d.power_wait,
            });
        }
        tokio::time::sleep(d.power_poll.min(deadline - now)).await;
    }
}

/// Carries out `action` and waits for the resulting state. On/Off on a node already in that
/// state do nothing (several BMCs answer an error to "On" when on).
pub async fn set(client: &Client, system: &str, action: PowerAction) -> Result<()> {
    let sys: ComputerSystem = client.get_as(system).await?;
    let Some(reset_action) = &sys.actions.reset else {
        return Err(RedfishError::Unsupported(format!(
            "power control: {} has no #ComputerSystem.Reset action",
            client.url(system)?
        )));
    };
    let current = sys.power_state.as_deref().and_then(parse_state);
    match plan(action, &reset_action.allowed)? {
        ResetPlan::Reset { reset_type, expect } => {
            let already = matches!(
                action,
                PowerAction::On | PowerAction::Off | PowerAction::SoftOff
            ) && current == Some(expect);
            if !already {
                reset(client, &reset_action.target, &reset_type).await?;
            }
            wait_for(client, system, expect).await
        }
        ResetPlan::OffThenOn { off, on } => {
            if current != Some(PowerState::Off) {
                reset(client, &reset_action.target, &off).await?;
                wait_for(client, system, PowerState::Off).await?;
            }
            reset(client, &reset_action.target, &on).await?;
            wait_for(client, system, PowerState::On).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plans() {
        let all = allowed(&[
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "Nmi",
            "ForceOn",
        ]);
        assert_eq!(
            plan(PowerAction::On, &all).unwrap(),
            ResetPlan::Reset {
                reset_type: "On".into(),
                expect: PowerState::On
            }
        );
        assert_eq!(
            plan(PowerAction::Off, &all).unwrap(),
            ResetPlan::Reset {
                reset_type: "ForceOff".into(),
                expect: PowerState::Off
            }
        );
        // Only ForceOn advertised: fall back to it.
        assert_eq!(
            plan(PowerAction::On, &allowed(&["ForceOn", "ForceOff"])).unwrap(),
            ResetPlan::Reset {
                reset_type: "ForceOn".into(),
                expect: PowerState::On
            }
        );
        // No restart type: off then on.
        assert_eq!(
            plan(PowerAction::Reboot, &allowed(&["On", "ForceOff"])).unwrap(),
            ResetPlan::OffThenOn {
                off: "ForceOff".into(),
                on: "On".into()
            }
        );
        assert_eq!(
            plan(PowerAction::Reboot, &allowed(&["PowerCycle", "On"])).unwrap(),
            ResetPlan::Reset {
                reset_type: "PowerCycle".into(),
                expect: PowerState::On
            }
        );
        // Nothing advertised: the standard choice.
        assert_eq!(
            plan(PowerAction::SoftOff, &[]).unwrap(),
            ResetPlan::Reset {
                reset_type: "GracefulShutdown".into(),
                expect: PowerState::Off
            }
        );
        let e = plan(PowerAction::SoftReboot, &allowed(&["On"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("GracefulRestart"), "{e}");
    }

    #[test]
    fn states() {
        assert_eq!(parse_state("On"), Some(PowerState::On));
        assert_eq!(parse_state("PoweringOn"), Some(PowerState::Off));
        assert_eq!(parse_state("Paused"), None);
    }
}

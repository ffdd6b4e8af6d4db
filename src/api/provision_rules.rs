//! The provision request's rules beyond its target that depend on the microversion (Ironic's
//! `check_allow_disable_ramdisk` and the abort checks of `NodeStatesController.provision`).
//! Pure: the caller passes the node's state and the parsed steps.

use axum::http::StatusCode;
use serde_json::Value;

use super::error::ApiError;
use super::version::Version;
use crate::conductor::states::{Event, ProvisionState};
use crate::hardware::steps::ManualStep;

/// `disable_ramdisk` as Ironic reads it (`args.boolean`: a boolean or its string spelling).
pub fn disable_ramdisk_flag(v: Option<&Value>) -> Result<Option<bool>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => super::resource::parse_bool("disable_ramdisk", s).map(Some),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid value for disable_ramdisk: {other} is not a boolean"
        ))),
    }
}

fn too_old(what: &str, since: u32, v: Version) -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        format!("{what} needs API version 1.{since} or newer (requested {v})."),
    )
}

/// `disable_ramdisk` is for manual cleaning (1.70) and servicing (1.108) only. `asked`: the
/// client sent a version header (one that did not is read leniently, as elsewhere).
pub fn check_disable_ramdisk(
    event: Event,
    flag: Option<bool>,
    v: Version,
    asked: bool,
) -> Result<(), ApiError> {
    if flag.is_none() {
        return Ok(());
    }
    let since = match event {
        Event::Clean => 70,
        Event::Service => 108,
        _ => {
            return Err(ApiError::bad_request(
                "disable_ramdisk is supported only with manual cleaning or servicing",
            ))
        }
    };
    if asked && v < Version(since) {
        return Err(too_old(
            &format!("disable_ramdisk with \"{}\"", event.verb_name()),
            since,
            v,
        ));
    }
    Ok(())
}

/// With `disable_ramdisk`, every step must run without booting the agent: out of band (BIOS,
/// firmware, RAID through the BMC) or a no-op. `what` is "clean" or "service".
pub fn check_ramdisk_free(steps: &[ManualStep], what: &str) -> Result<(), ApiError> {
    match steps.iter().find(|s| matches!(s, ManualStep::Deploy(_))) {
        Some(s) => Err(ApiError::bad_request(format!(
            "{what} step {} requires booting a ramdisk, but disable_ramdisk is set: drop the step or the flag",
            s.name()
        ))),
        None => Ok(()),
    }
}

/// Abort in `inspect wait` needs 1.41, in `wait call-back` 1.110 (Ironic 39.0.0). While the
/// server's `max` is below 1.110 no client can ask for it, so abort in `wait call-back` stays
/// served at every version (ironcast had it before it advertised 1.110).
pub fn check_abort(state: &str, v: Version, asked: bool, max: Version) -> Result<(), ApiError> {
    let since = match ProvisionState::parse(state) {
        Some(ProvisionState::InspectWait) => 41,
        Some(ProvisionState::WaitCallback) if max >= Version(110) => 110,
        _ => return Ok(()),
    };
    if asked && v < Version(since) {
        return Err(too_old(&format!("abort in \"{state}\""), since, v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(r: Result<(), ApiError>) -> u16 {
        match r {
            Ok(()) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn disable_ramdisk_belongs_to_clean_from_1_70_and_service_from_1_108() {
        let c = |e, v| status(check_disable_ramdisk(e, Some(true), Version(v), true));
        assert_eq!(c(Event::Clean, 69), 406);
        assert_eq!(c(Event::Clean, 70), 200);
        assert_eq!(c(Event::Service, 107), 406);
        assert_eq!(c(Event::Service, 108), 200);
        assert_eq!(c(Event::Deploy, 110), 400);
        assert_eq!(
            status(check_disable_ramdisk(Event::Deploy, None, Version(1), true)),
            200,
            "absent is no request"
        );
        assert_eq!(
            status(check_disable_ramdisk(
                Event::Service,
                Some(false),
                Version(1),
                false
            )),
            200,
            "no version header: lenient"
        );
    }

    #[test]
    fn flag_spellings() {
        assert_eq!(disable_ramdisk_flag(None).unwrap(), None);
        assert_eq!(
            disable_ramdisk_flag(Some(&json!(true))).unwrap(),
            Some(true)
        );
        assert_eq!(
            disable_ramdisk_flag(Some(&json!("False"))).unwrap(),
            Some(false)
        );
        assert!(disable_ramdisk_flag(Some(&json!(3))).is_err());
    }

    #[test]
    fn ramdisk_steps_are_refused_with_disable_ramdisk() {
        let steps = crate::hardware::steps::parse(
            &json!([{"interface": "bios", "step": "factory_reset"},
                    {"interface": "deploy", "step": "erase_devices_metadata"}]),
            "clean_steps",
        )
        .unwrap();
        let err = check_ramdisk_free(&steps, "clean").unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(err.message.contains("deploy.erase_devices_metadata"));
        assert!(check_ramdisk_free(&steps[..1], "clean").is_ok());
    }

    #[test]
    fn abort_versions_by_state() {
        let max = Version(110);
        let a = |s, v| status(check_abort(s, Version(v), true, max));
        assert_eq!(a("wait call-back", 109), 406);
        assert_eq!(a("wait call-back", 110), 200);
        assert_eq!(a("inspect wait", 40), 406);
        assert_eq!(a("inspect wait", 41), 200);
        assert_eq!(a("clean wait", 13), 200);
        assert_eq!(
            status(check_abort("wait call-back", Version(1), false, max)),
            200
        );
        assert_eq!(
            status(check_abort(
                "wait call-back",
                Version(95),
                true,
                Version(95)
            )),
            200,
            "not yet advertised: served as before"
        );
    }
}

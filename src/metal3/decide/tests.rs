//! State × observed node → action, as a table.

use super::*;
use crate::metal3::manifest::{Image, RootDeviceHints};

struct Case {
    state: State,
    node: Option<&'static str>,
    spec: fn(&mut HostSpec),
    status: fn(&mut HostStatus),
    annotations: &'static [(&'static str, &'static str)],
    deleting: bool,
    want: (State, Action),
}

fn live(s: &mut HostSpec) {
    s.bmc.address = "redfish-virtualmedia://h/redfish/v1/Systems/1".into();
    s.online = true;
    s.image = Some(Image {
        url: "http://x/live.iso".into(),
        disk_format: Some("live-iso".into()),
        ..Image::default()
    });
}

fn no_image(s: &mut HostSpec) {
    live(s);
    s.image = None;
}

fn plain(_: &mut HostStatus) {}

fn provisioned_image(st: &mut HostStatus) {
    st.provisioning.image.url = "http://x/live.iso".into();
}

fn prepared(st: &mut HostStatus) {
    st.provisioning.boot_mode = "UEFI".into();
}

fn run(c: &Case) -> Decision {
    let mut spec = HostSpec::default();
    (c.spec)(&mut spec);
    let mut status = HostStatus::default();
    status.provisioning.state = c.state;
    status.good_credentials = Some(Default::default());
    (c.status)(&mut status);
    let annotations: BTreeMap<String, String> = c
        .annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let node = c.node.map(|s| NodeObs {
        state: s.into(),
        powered_on: Some(true),
        image_url: Some("http://x/live.iso".into()),
        automated_clean: Some(true),
        ..NodeObs::default()
    });
    let internal = Internal::default();
    decide(&HostView {
        spec: &spec,
        annotations: &annotations,
        status: &status,
        internal: &internal,
        deleting: c.deleting,
        creds: Creds::Present { changed: false },
        node: node.as_ref(),
    })
}

fn case(state: State, node: Option<&'static str>, want: (State, Action)) -> Case {
    Case {
        state,
        node,
        spec: live,
        status: plain,
        annotations: &[],
        deleting: false,
        want,
    }
}

#[test]
fn the_state_machine_table() {
    use Action as A;
    use State as S;
    let cases = vec![
        case(S::None, None, (S::Registering, A::Nothing)),
        case(S::Registering, None, (S::Registering, A::Register)),
        case(
            S::Registering,
            Some("enroll"),
            (S::Registering, A::Verb(Verb::Manage)),
        ),
        case(
            S::Registering,
            Some("verifying"),
            (S::Registering, A::Nothing),
        ),
        case(
            S::Registering,
            Some("manageable"),
            (S::Inspecting, A::Nothing),
        ),
        case(
            S::Inspecting,
            Some("manageable"),
            (S::Inspecting, A::Verb(Verb::Inspect)),
        ),
        case(
            S::Inspecting,
            Some("inspecting"),
            (S::Inspecting, A::Nothing),
        ),
        case(S::Preparing, Some("manageable"), (S::Available, A::Nothing)),
        Case {
            status: prepared,
            ..case(
                S::Available,
                Some("manageable"),
                (S::Provisioning, A::Nothing),
            )
        },
        Case {
            spec: no_image,
            status: prepared,
            ..case(S::Available, Some("manageable"), (S::Available, A::Nothing))
        },
        case(
            S::Provisioning,
            Some("manageable"),
            (S::Provisioning, A::Verb(Verb::Provide)),
        ),
        case(
            S::Provisioning,
            Some("cleaning"),
            (S::Provisioning, A::Nothing),
        ),
        case(
            S::Provisioning,
            Some("available"),
            (S::Provisioning, A::Deploy),
        ),
        case(
            S::Provisioning,
            Some("deploying"),
            (S::Provisioning, A::Nothing),
        ),
        case(
            S::Provisioning,
            Some("clean failed"),
            (S::Provisioning, A::Nothing),
        ),
        Case {
            status: |s| s.error_type = "provisioning error".into(),
            ..case(
                S::Deprovisioning,
                Some("clean failed"),
                (S::Deprovisioning, A::Verb(Verb::Manage)),
            )
        },
        case(
            S::Provisioning,
            Some("active"),
            (S::Provisioned, A::Nothing),
        ),
        Case {
            status: provisioned_image,
            ..case(S::Provisioned, Some("active"), (S::Provisioned, A::Nothing))
        },
        Case {
            spec: no_image,
            status: provisioned_image,
            ..case(
                S::Provisioned,
                Some("active"),
                (S::Deprovisioning, A::Nothing),
            )
        },
        Case {
            spec: |s| {
                live(s);
                s.image.as_mut().unwrap().url = "http://x/other.iso".into();
            },
            status: provisioned_image,
            ..case(
                S::Provisioned,
                Some("active"),
                (S::Deprovisioning, A::Nothing),
            )
        },
        Case {
            spec: no_image,
            ..case(
                S::Provisioning,
                Some("deploying"),
                (S::Deprovisioning, A::Nothing),
            )
        },
        case(
            S::Deprovisioning,
            Some("active"),
            (S::Deprovisioning, A::Verb(Verb::Undeploy)),
        ),
        Case {
            spec: |s| {
                live(s);
                s.automated_cleaning_mode = Some(crate::metal3::manifest::CleaningMode::Disabled);
            },
            ..case(
                S::Deprovisioning,
                Some("active"),
                (S::Deprovisioning, A::SetAutomatedClean(false)),
            )
        },
        case(
            S::Deprovisioning,
            Some("deleting"),
            (S::Deprovisioning, A::Nothing),
        ),
        case(
            S::Deprovisioning,
            Some("manageable"),
            (S::Deprovisioning, A::Verb(Verb::Provide)),
        ),
        case(
            S::Deprovisioning,
            Some("available"),
            (S::Available, A::Nothing),
        ),
        // externallyProvisioned adopts.
        Case {
            spec: |s| {
                live(s);
                s.externally_provisioned = true;
            },
            ..case(
                S::Registering,
                Some("manageable"),
                (S::ExternallyProvisioned, A::Nothing),
            )
        },
        case(
            S::ExternallyProvisioned,
            Some("manageable"),
            (S::ExternallyProvisioned, A::Verb(Verb::Adopt)),
        ),
        case(
            S::Provisioned,
            Some("manageable"),
            (S::Provisioned, A::Verb(Verb::Adopt)),
        ),
        // inspect.metal3.io: disabled skips inspection; an empty value re-inspects.
        Case {
            annotations: &[("inspect.metal3.io", "disabled")],
            ..case(
                S::Registering,
                Some("manageable"),
                (S::Preparing, A::Nothing),
            )
        },
        Case {
            spec: no_image,
            status: prepared,
            annotations: &[("inspect.metal3.io", "")],
            ..case(
                S::Available,
                Some("manageable"),
                (
                    S::Inspecting,
                    A::RemoveAnnotation("inspect.metal3.io".into()),
                ),
            )
        },
        // A changed rootDeviceHints goes back through preparing.
        Case {
            spec: |s| {
                live(s);
                s.root_device_hints = Some(RootDeviceHints {
                    device_name: "/dev/sdb".into(),
                    ..Default::default()
                });
            },
            status: prepared,
            ..case(S::Available, Some("manageable"), (S::Preparing, A::Nothing))
        },
        // paused: nothing at all.
        Case {
            annotations: &[("baremetalhost.metal3.io/paused", "")],
            ..case(
                S::Provisioning,
                Some("available"),
                (S::Provisioning, A::Nothing),
            )
        },
        // online drives power; reboot annotations.
        Case {
            spec: |s| {
                live(s);
                s.online = false;
            },
            status: provisioned_image,
            ..case(
                S::Provisioned,
                Some("active"),
                (S::Provisioned, A::Power(false)),
            )
        },
        Case {
            status: provisioned_image,
            annotations: &[("reboot.metal3.io", "")],
            ..case(
                S::Provisioned,
                Some("active"),
                (S::Provisioned, A::Power(false)),
            )
        },
        // detached: the node goes, the host stays.
        Case {
            status: provisioned_image,
            annotations: &[("baremetalhost.metal3.io/detached", "")],
            ..case(
                S::Provisioned,
                Some("active"),
                (S::Provisioned, A::DeleteNode),
            )
        },
        Case {
            annotations: &[("baremetalhost.metal3.io/detached", "")],
            ..case(
                S::Provisioning,
                Some("deploying"),
                (S::Provisioning, A::Nothing),
            )
        },
        // Deletion: mid-provision deprovisions first; the rest powers off, then deletes.
        Case {
            deleting: true,
            ..case(
                S::Provisioning,
                Some("deploying"),
                (S::Deprovisioning, A::Nothing),
            )
        },
        Case {
            deleting: true,
            status: provisioned_image,
            ..case(
                S::Provisioned,
                Some("active"),
                (S::Deprovisioning, A::Nothing),
            )
        },
        Case {
            deleting: true,
            ..case(
                S::Deprovisioning,
                Some("available"),
                (S::PoweringOffBeforeDelete, A::Nothing),
            )
        },
        Case {
            deleting: true,
            ..case(
                S::Available,
                Some("manageable"),
                (S::PoweringOffBeforeDelete, A::Nothing),
            )
        },
        Case {
            deleting: true,
            ..case(
                S::PoweringOffBeforeDelete,
                Some("manageable"),
                (S::PoweringOffBeforeDelete, A::Power(false)),
            )
        },
        Case {
            deleting: true,
            ..case(S::Registering, Some("enroll"), (S::Deleting, A::Nothing))
        },
        Case {
            deleting: true,
            ..case(
                S::Deleting,
                Some("manageable"),
                (S::Deleting, A::DeleteNode),
            )
        },
        Case {
            deleting: true,
            ..case(S::Deleting, None, (S::Deleting, A::Forget))
        },
    ];
    for c in &cases {
        let d = run(c);
        assert_eq!(
            (d.next, d.action.clone()),
            c.want,
            "state {:?} node {:?} annotations {:?} deleting {}: {d:?}",
            c.state,
            c.node,
            c.annotations,
            c.deleting
        );
    }
}

#[test]
fn failures_record_errors_then_retry() {
    // A deploy that failed on the same image is a provisioning error.
    let d = run(&case(
        State::Provisioning,
        Some("deploy failed"),
        (State::None, Action::Nothing),
    ));
    assert!(
        matches!(&d.outcome, Outcome::Failed(ErrorType::Provisioning, m) if m.starts_with("Image provisioning failed")),
        "{d:?}"
    );
    // With the error recorded (after the backoff), provisioning goes to deprovisioning to retry.
    let d = run(&Case {
        status: |s| s.error_type = "provisioning error".into(),
        ..case(
            State::Provisioning,
            Some("deploy failed"),
            (State::None, Action::Nothing),
        )
    });
    assert_eq!(d.next, State::Deprovisioning);
    // Deleting: after three failed attempts BMO gives up deprovisioning.
    let d = run(&Case {
        deleting: true,
        status: |s| s.error_count = RETRY_COUNT,
        ..case(
            State::Deprovisioning,
            Some("error"),
            (State::None, Action::Nothing),
        )
    });
    assert_eq!(d.next, State::PoweringOffBeforeDelete, "{d:?}");
    // Registration failure: reported once, then manage is retried.
    let mut spec = HostSpec::default();
    live(&mut spec);
    let mut status = HostStatus::default();
    status.provisioning.state = State::Registering;
    let node = NodeObs {
        state: "enroll".into(),
        last_error: Some("cannot reach the BMC".into()),
        ..NodeObs::default()
    };
    let annotations = BTreeMap::new();
    let internal = Internal::default();
    let view = |status: &HostStatus| {
        decide(&HostView {
            spec: &spec,
            annotations: &annotations,
            status,
            internal: &internal,
            deleting: false,
            creds: Creds::Present { changed: false },
            node: Some(&node),
        })
    };
    assert!(matches!(
        view(&status).outcome,
        Outcome::Failed(ErrorType::Registration, _)
    ));
    status.error_type = "registration error".into();
    assert_eq!(view(&status).action, Action::Verb(Verb::Manage));
}

#[test]
fn missing_credentials_wait_discovered() {
    let mut spec = HostSpec::default();
    live(&mut spec);
    let mut status = HostStatus::default();
    status.provisioning.state = State::Registering;
    let d = decide(&HostView {
        spec: &spec,
        annotations: &BTreeMap::new(),
        status: &status,
        internal: &Internal::default(),
        deleting: false,
        creds: Creds::Missing("Secret default/bmc not found".into()),
        node: None,
    });
    assert_eq!(
        (d.next, d.action, d.operational),
        (State::Registering, Action::Nothing, Some("discovered"))
    );
}

fn hardware_raid(s: &mut HostSpec) {
    live(s);
    s.raid = Some(serde_json::json!({"hardwareRAIDVolumes": [{"level": "1", "sizeGibibytes": 1}]}));
}

#[test]
fn preparing_applies_raid_once_then_goes_available() {
    use Action as A;
    use State as S;
    // Steps are due: from manageable the manual clean starts; from available, manage first.
    let d = run(&Case {
        spec: hardware_raid,
        ..case(S::Preparing, Some("manageable"), (S::None, A::Nothing))
    });
    assert_eq!((d.next, &d.action), (S::Preparing, &A::Prepare));
    assert_eq!(d.prepare_started, Some(true));
    let d = run(&Case {
        spec: hardware_raid,
        ..case(S::Preparing, Some("available"), (S::None, A::Nothing))
    });
    assert_eq!(d.action, A::Verb(Verb::Manage));
    let d = run(&Case {
        spec: hardware_raid,
        ..case(S::Preparing, Some("cleaning"), (S::None, A::Nothing))
    });
    assert_eq!((d.next, &d.action), (S::Preparing, &A::Nothing));

    // The clean ran (started, node back in manageable): available, the RAID saved.
    let mut spec = HostSpec::default();
    hardware_raid(&mut spec);
    let mut status = HostStatus::default();
    status.provisioning.state = S::Preparing;
    status.good_credentials = Some(Default::default());
    let internal = Internal {
        prepare_started: true,
        ..Internal::default()
    };
    let node = NodeObs {
        state: "manageable".into(),
        powered_on: Some(false),
        ..NodeObs::default()
    };
    let annotations = BTreeMap::new();
    let view = |status: &HostStatus, node: &NodeObs| {
        decide(&HostView {
            spec: &spec,
            annotations: &annotations,
            status,
            internal: &internal,
            deleting: false,
            creds: Creds::Present { changed: false },
            node: Some(node),
        })
    };
    let d = view(&status, &node);
    assert_eq!(d.next, S::Available);
    assert!(d.save_settings && d.prepare_started == Some(false), "{d:?}");

    // It failed: a preparation error; the retry starts over.
    let failed = NodeObs {
        state: "clean failed".into(),
        last_error: Some("step raid.create_configuration: no Volumes".into()),
        ..node.clone()
    };
    let d = view(&status, &failed);
    assert!(
        matches!(&d.outcome, Outcome::Failed(ErrorType::Preparation, m) if m.contains("no Volumes")),
        "{d:?}"
    );
    assert_eq!(d.prepare_started, Some(false));

    // An available host whose raid changed goes back to preparing.
    let d = run(&Case {
        spec: hardware_raid,
        status: prepared,
        ..case(S::Available, Some("manageable"), (S::None, A::Nothing))
    });
    assert_eq!(d.next, S::Preparing);
    // Software RAID: BMO's refusal for a Redfish RAID interface, as a preparation error.
    let d = run(&Case {
        spec: |s| {
            live(s);
            s.raid = Some(serde_json::json!({"softwareRAIDVolumes": [{"level": "1"}]}));
        },
        ..case(S::Preparing, Some("manageable"), (S::None, A::Nothing))
    });
    assert!(
        matches!(&d.outcome, Outcome::Failed(ErrorType::Preparation, m) if m == "node's driver redfish does not support software RAID"),
        "{d:?}"
    );
}

//! Ironic's provision state machine as a table: states, events, and the transitions allowed.
//!
//! Pure data and functions; the conductor drives it, the API reads names from it.
//! Spec: ironic/common/states.py (Ironic 39): same state names on the wire, same verbs.
//! Manual cleaning (`clean` from manageable) ends back in manageable: Ironic's internal
//! `manage` event from cleaning is [`Event::ManualDone`] here, so the user's `manage` verb
//! cannot end a running clean. Adoption (manageable → adopting → active) takes over a node
//! deployed by other means; servicing (active → servicing → active) runs `service_steps` on a
//! deployed node. Rescue and the hold states are not supported yet.

/// A provision state, spelled on the wire by [`ProvisionState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProvisionState {
    Enroll,
    Verifying,
    Manageable,
    Available,
    Cleaning,
    CleanWait,
    CleanFailed,
    Deploying,
    WaitCallback,
    DeployFailed,
    Active,
    Deleting,
    Error,
    Inspecting,
    InspectWait,
    InspectFailed,
    Adopting,
    AdoptFailed,
    Servicing,
    ServiceWait,
    ServiceFailed,
}

use ProvisionState as S;

impl ProvisionState {
    pub const ALL: [ProvisionState; 21] = [
        S::Enroll,
        S::Verifying,
        S::Manageable,
        S::Available,
        S::Cleaning,
        S::CleanWait,
        S::CleanFailed,
        S::Deploying,
        S::WaitCallback,
        S::DeployFailed,
        S::Active,
        S::Deleting,
        S::Error,
        S::Inspecting,
        S::InspectWait,
        S::InspectFailed,
        S::Adopting,
        S::AdoptFailed,
        S::Servicing,
        S::ServiceWait,
        S::ServiceFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            S::Enroll => "enroll",
            S::Verifying => "verifying",
            S::Manageable => "manageable",
            S::Available => "available",
            S::Cleaning => "cleaning",
            S::CleanWait => "clean wait",
            S::CleanFailed => "clean failed",
            S::Deploying => "deploying",
            S::WaitCallback => "wait call-back",
            S::DeployFailed => "deploy failed",
            S::Active => "active",
            S::Deleting => "deleting",
            S::Error => "error",
            S::Inspecting => "inspecting",
            S::InspectWait => "inspect wait",
            S::InspectFailed => "inspect failed",
            S::Adopting => "adopting",
            S::AdoptFailed => "adopt failed",
            S::Servicing => "servicing",
            S::ServiceWait => "service wait",
            S::ServiceFailed => "service failed",
        }
    }

    pub fn parse(s: &str) -> Option<ProvisionState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A state a node rests in until someone acts; the others are transient.
    pub fn is_stable(self) -> bool {
        matches!(
            self,
            S::Enroll
                | S::Manageable
                | S::Available
                | S::Active
                | S::DeployFailed
                | S::CleanFailed
                | S::Error
                | S::InspectFailed
                | S::AdoptFailed
                | S::ServiceFailed
        )
    }

    /// A transient state in which a conductor task works on the node (holding its lock);
    /// the `*wait*` states are transient but wait for an outside call-back without a task.
    pub fn has_worker(self) -> bool {
        matches!(
            self,
            S::Verifying
                | S::Cleaning
                | S::Deploying
                | S::Deleting
                | S::Inspecting
                | S::Adopting
                | S::Servicing
        )
    }

    /// Where a transient state goes when its work fails or its conductor dies.
    pub fn failure_state(self) -> Option<ProvisionState> {
        match self {
            S::Verifying => Some(S::Enroll),
            S::Cleaning | S::CleanWait => Some(S::CleanFailed),
            S::Deploying | S::WaitCallback => Some(S::DeployFailed),
            S::Deleting => Some(S::Error),
            S::Inspecting | S::InspectWait => Some(S::InspectFailed),
            S::Adopting => Some(S::AdoptFailed),
            S::Servicing | S::ServiceWait => Some(S::ServiceFailed),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProvisionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves a node: a user's verb, or the outcome of the conductor's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    // Verbs, as `PUT /states/provision {"target": …}` names them.
    Manage,
    Provide,
    Deploy,
    Undeploy,
    Rebuild,
    Abort,
    Inspect,
    Clean,
    Adopt,
    Service,
    /// Ironic's `unhold` (1.85): leaves a hold state; ironcast has none, so always refused.
    Unhold,
    // Outcomes of the conductor's work.
    Done,
    Fail,
    Wait,
    Resume,
    /// Manual cleaning finished: back to manageable.
    ManualDone,
}

use Event as E;

impl Event {
    pub const ALL: [Event; 16] = [
        E::Manage,
        E::Provide,
        E::Deploy,
        E::Undeploy,
        E::Rebuild,
        E::Abort,
        E::Inspect,
        E::Clean,
        E::Adopt,
        E::Service,
        E::Unhold,
        E::Done,
        E::Fail,
        E::Wait,
        E::Resume,
        E::ManualDone,
    ];

    /// Parses a provision `target` the way Ironic's API accepts it.
    pub fn from_target(target: &str) -> Option<Event> {
        Some(match target {
            "manage" => E::Manage,
            "provide" => E::Provide,
            "active" | "deploy" => E::Deploy,
            "deleted" | "undeploy" => E::Undeploy,
            "rebuild" => E::Rebuild,
            "abort" => E::Abort,
            "inspect" => E::Inspect,
            "clean" => E::Clean,
            "adopt" => E::Adopt,
            "service" => E::Service,
            "unhold" => E::Unhold,
            _ => return None,
        })
    }

    /// The verb's name in Ironic's error messages ("active" for deploy, "deleted" for undeploy).
    pub fn verb_name(self) -> &'static str {
        match self {
            E::Manage => "manage",
            E::Provide => "provide",
            E::Deploy => "active",
            E::Undeploy => "deleted",
            E::Rebuild => "rebuild",
            E::Abort => "abort",
            E::Inspect => "inspect",
            E::Clean => "clean",
            E::Adopt => "adopt",
            E::Service => "service",
            E::Unhold => "unhold",
            E::Done => "done",
            E::Fail => "fail",
            E::Wait => "wait",
            E::Resume => "resume",
            E::ManualDone => "manual clean done",
        }
    }

    pub fn is_verb(self) -> bool {
        !matches!(
            self,
            E::Done | E::Fail | E::Wait | E::Resume | E::ManualDone
        )
    }
}

/// The transition table: `(from, event) → to`. Anything absent is refused.
pub const TRANSITIONS: &[(ProvisionState, Event, ProvisionState)] = &[
    (S::Enroll, E::Manage, S::Verifying),
    (S::Verifying, E::Done, S::Manageable),
    (S::Verifying, E::Fail, S::Enroll),
    (S::Manageable, E::Provide, S::Cleaning),
    (S::Manageable, E::Inspect, S::Inspecting),
    (S::Manageable, E::Clean, S::Cleaning),
    (S::Cleaning, E::Done, S::Available),
    (S::Cleaning, E::ManualDone, S::Manageable),
    (S::Cleaning, E::Fail, S::CleanFailed),
    (S::Cleaning, E::Wait, S::CleanWait),
    (S::CleanWait, E::Resume, S::Cleaning),
    (S::CleanWait, E::Fail, S::CleanFailed),
    (S::CleanWait, E::Abort, S::CleanFailed),
    (S::CleanFailed, E::Manage, S::Manageable),
    (S::Available, E::Deploy, S::Deploying),
    (S::Available, E::Manage, S::Manageable),
    (S::Deploying, E::Done, S::Active),
    (S::Deploying, E::Fail, S::DeployFailed),
    (S::Deploying, E::Wait, S::WaitCallback),
    (S::WaitCallback, E::Resume, S::Deploying),
    (S::WaitCallback, E::Done, S::Active),
    (S::WaitCallback, E::Fail, S::DeployFailed),
    (S::WaitCallback, E::Abort, S::DeployFailed),
    (S::DeployFailed, E::Deploy, S::Deploying),
    (S::DeployFailed, E::Rebuild, S::Deploying),
    (S::DeployFailed, E::Undeploy, S::Deleting),
    (S::Active, E::Undeploy, S::Deleting),
    (S::Active, E::Rebuild, S::Deploying),
    (S::Deleting, E::Done, S::Cleaning),
    (S::Deleting, E::Fail, S::Error),
    (S::Error, E::Deploy, S::Deploying),
    (S::Error, E::Rebuild, S::Deploying),
    (S::Error, E::Undeploy, S::Deleting),
    (S::Inspecting, E::Done, S::Manageable),
    (S::Inspecting, E::Fail, S::InspectFailed),
    (S::Inspecting, E::Wait, S::InspectWait),
    (S::InspectWait, E::Done, S::Manageable),
    (S::InspectWait, E::Fail, S::InspectFailed),
    (S::InspectWait, E::Abort, S::InspectFailed),
    (S::InspectFailed, E::Manage, S::Manageable),
    (S::InspectFailed, E::Inspect, S::Inspecting),
    (S::Manageable, E::Adopt, S::Adopting),
    (S::Adopting, E::Done, S::Active),
    (S::Adopting, E::Fail, S::AdoptFailed),
    (S::AdoptFailed, E::Adopt, S::Adopting),
    (S::AdoptFailed, E::Manage, S::Manageable),
    (S::Active, E::Service, S::Servicing),
    (S::Servicing, E::Done, S::Active),
    (S::Servicing, E::Fail, S::ServiceFailed),
    (S::Servicing, E::Wait, S::ServiceWait),
    (S::ServiceWait, E::Resume, S::Servicing),
    (S::ServiceWait, E::Fail, S::ServiceFailed),
    (S::ServiceWait, E::Abort, S::ServiceFailed),
    (S::ServiceFailed, E::Service, S::Servicing),
    // BMO aborts a failed service to get its host back to active.
    (S::ServiceFailed, E::Abort, S::Active),
];

/// The state `event` leads to from `from`, or None when the table has no such transition.
pub fn next(from: ProvisionState, event: Event) -> Option<ProvisionState> {
    TRANSITIONS
        .iter()
        .find(|(f, e, _)| *f == from && *e == event)
        .map(|(_, _, to)| *to)
}

/// The target a verb gives the transient state it starts: manual cleaning returns to
/// manageable, everything else follows [`target_of`].
pub fn target_after(event: Event, state: ProvisionState) -> Option<ProvisionState> {
    match (event, state) {
        (E::Clean, S::Cleaning) => Some(S::Manageable),
        _ => target_of(state),
    }
}

/// The event that ends `state`'s work successfully, given the node's target: cleaning that
/// targets manageable (a manual clean) ends with [`Event::ManualDone`].
pub fn done_event(state: ProvisionState, target: Option<ProvisionState>) -> Event {
    match (state, target) {
        (S::Cleaning, Some(S::Manageable)) => E::ManualDone,
        _ => E::Done,
    }
}

/// The stable state a transient state reaches when all goes well (Ironic's
/// target_provision_state); None for a stable state.
pub fn target_of(state: ProvisionState) -> Option<ProvisionState> {
    if state.is_stable() {
        return None;
    }
    let mut s = state;
    // Follow the happy path (Done, or Resume for a wait state); at most a few hops
    // (deleting → cleaning → available).
    for _ in 0..ProvisionState::ALL.len() {
        s = next(s, E::Done).or_else(|| next(s, E::Resume))?;
        if s.is_stable() {
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state × every event, against an expectation written out independently.
    #[test]
    fn every_state_and_event() {
        let expected = |s: S, e: E| -> Option<S> {
            Some(match (s, e) {
                (S::Enroll, E::Manage) => S::Verifying,
                (S::Verifying, E::Done) => S::Manageable,
                (S::Verifying, E::Fail) => S::Enroll,
                (S::Manageable, E::Provide) => S::Cleaning,
                (S::Manageable, E::Inspect) => S::Inspecting,
                (S::Manageable, E::Clean) => S::Cleaning,
                (S::Cleaning, E::Done) => S::Available,
                (S::Cleaning, E::ManualDone) => S::Manageable,
                (S::Cleaning, E::Fail) => S::CleanFailed,
                (S::Cleaning, E::Wait) => S::CleanWait,
                (S::CleanWait, E::Resume) => S::Cleaning,
                (S::CleanWait, E::Fail | E::Abort) => S::CleanFailed,
                (S::CleanFailed, E::Manage) => S::Manageable,
                (S::Available, E::Deploy) => S::Deploying,
                (S::Available, E::Manage) => S::Manageable,
                (S::Deploying, E::Done) => S::Active,
                (S::Deploying, E::Fail) => S::DeployFailed,
                (S::Deploying, E::Wait) => S::WaitCallback,
                (S::WaitCallback, E::Resume) => S::Deploying,
                (S::WaitCallback, E::Done) => S::Active,
                (S::WaitCallback, E::Fail | E::Abort) => S::DeployFailed,
                (S::DeployFailed | S::Error, E::Deploy | E::Rebuild) => S::Deploying,
                (S::DeployFailed | S::Error | S::Active, E::Undeploy) => S::Deleting,
                (S::Active, E::Rebuild) => S::Deploying,
                (S::Deleting, E::Done) => S::Cleaning,
                (S::Deleting, E::Fail) => S::Error,
                (S::Inspecting, E::Done) => S::Manageable,
                (S::Inspecting, E::Fail) => S::InspectFailed,
                (S::Inspecting, E::Wait) => S::InspectWait,
                (S::InspectWait, E::Done) => S::Manageable,
                (S::InspectWait, E::Fail | E::Abort) => S::InspectFailed,
                (S::InspectFailed, E::Manage) => S::Manageable,
                (S::InspectFailed, E::Inspect) => S::Inspecting,
                (S::Manageable | S::AdoptFailed, E::Adopt) => S::Adopting,
                (S::Adopting, E::Done) => S::Active,
                (S::Adopting, E::Fail) => S::AdoptFailed,
                (S::AdoptFailed, E::Manage) => S::Manageable,
                (S::Active | S::ServiceFailed, E::Service) => S::Servicing,
                (S::Servicing, E::Done) => S::Active,
                (S::Servicing, E::Fail) => S::ServiceFailed,
                (S::Servicing, E::Wait) => S::ServiceWait,
                (S::ServiceWait, E::Resume) => S::Servicing,
                (S::ServiceWait, E::Fail | E::Abort) => S::ServiceFailed,
                (S::ServiceFailed, E::Abort) => S::Active,
                _ => return None,
            })
        };
        let mut allowed = 0;
        for s in ProvisionState::ALL {
            for e in Event::ALL {
                assert_eq!(next(s, e), expected(s, e), "{s} --{e:?}-->");
                allowed += usize::from(next(s, e).is_some());
            }
        }
        assert_eq!(allowed, TRANSITIONS.len(), "duplicate rows in TRANSITIONS");
    }

    #[test]
    fn verbs_never_leave_a_transient_state_except_abort() {
        for s in ProvisionState::ALL.into_iter().filter(|s| !s.is_stable()) {
            for e in Event::ALL.into_iter().filter(|e| e.is_verb()) {
                if let Some(to) = next(s, e) {
                    assert_eq!(e, E::Abort, "{s} accepts verb {e:?}");
                    assert_eq!(Some(to), s.failure_state());
                }
            }
        }
    }

    #[test]
    fn every_transient_state_has_a_failure_state_and_a_target() {
        for s in ProvisionState::ALL {
            assert_eq!(s.failure_state().is_some(), !s.is_stable(), "{s}");
            assert_eq!(target_of(s).is_some(), !s.is_stable(), "{s}");
            if let Some(f) = s.failure_state() {
                assert!(f.is_stable(), "{s} fails into transient {f}");
            }
        }
        assert_eq!(target_of(S::Deleting), Some(S::Available));
        assert_eq!(target_of(S::Deploying), Some(S::Active));
        assert_eq!(target_of(S::Verifying), Some(S::Manageable));
        assert_eq!(target_of(S::Adopting), Some(S::Active));
        assert_eq!(target_of(S::ServiceWait), Some(S::Active));
    }

    #[test]
    fn unhold_has_no_hold_state_to_leave() {
        for s in ProvisionState::ALL {
            assert_eq!(next(s, E::Unhold), None, "{s}");
        }
    }

    #[test]
    fn manual_clean_returns_to_manageable_automated_to_available() {
        let to = next(S::Manageable, E::Clean).unwrap();
        assert_eq!(to, S::Cleaning);
        let target = target_after(E::Clean, to);
        assert_eq!(target, Some(S::Manageable));
        assert_eq!(next(to, done_event(to, target)), Some(S::Manageable));
        let to = next(S::Manageable, E::Provide).unwrap();
        let target = target_after(E::Provide, to);
        assert_eq!(target, Some(S::Available));
        assert_eq!(next(to, done_event(to, target)), Some(S::Available));
        assert_eq!(done_event(S::Deploying, Some(S::Manageable)), E::Done);
        // The user's manage verb cannot end a running clean.
        assert_eq!(next(S::Cleaning, E::Manage), None);
    }

    #[test]
    fn names_round_trip_and_targets_parse() {
        for s in ProvisionState::ALL {
            assert_eq!(ProvisionState::parse(s.as_str()), Some(s));
        }
        assert_eq!(Event::from_target("active"), Some(E::Deploy));
        assert_eq!(Event::from_target("deleted"), Some(E::Undeploy));
        assert_eq!(Event::from_target("clean"), Some(E::Clean));
        assert_eq!(Event::from_target("adopt"), Some(E::Adopt));
        assert_eq!(Event::from_target("service"), Some(E::Service));
        assert_eq!(Event::from_target("done"), None);
        assert_eq!(Event::from_target("bogus"), None);
    }
}

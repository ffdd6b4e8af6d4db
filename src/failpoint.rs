//! Fail points at crash seams (cache commit, lease and publication records, eject → insert,
//! lock release), for tests that crash a conductor exactly between two steps.
//!
//! [`fail_point!`](crate::fail_point) compiles to nothing without the `failpoints` feature.
//! With it, each named point looks up its action, configured once per process from
//! `IRONCAST_FAILPOINTS="name=action,…"` or by [`set`] in in-process tests:
//! - `abort`: the process dies on the spot, as with kill -9 (no destructors, no flush);
//! - `panic`: the current task panics (a bug in a worker);
//! - `error`: at a point that can fail, the call fails as the real fault would (elsewhere:
//!   nothing);
//! - `off`: nothing.
//!
//! The seams (each named where it sits):
//! - `cache-commit`: a download's `.part` is complete and synced, not yet renamed into place
//!   (`cache/fetch.rs`);
//! - `lease-taken`: the cache lease exists, the driver has not heard back (`cache/images.rs`);
//! - `publication-made`: the publication's URL is live, the driver has not heard back
//!   (`imageserver/mod.rs`);
//! - `eject-insert`: the drive was ejected, the new ISO not yet inserted (`redfish/node.rs`);
//! - `lock-release`: a node's work is saved, its lock not yet released (`store/lock.rs`);
//! - `worker-step`: a worker task is about to run a provisioning step (`conductor/worker.rs`);
//! - `intent-save`: a driver saves the id of a lease or publication it is about to make
//!   (`conductor/worker.rs`); `error` makes the save fail as a lost database would.
//!
//! Non-goals: probabilities, counts, sleeps (tikv/fail-rs has them; crash seams need only these).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// What a fail point does when reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Off,
    Abort,
    Panic,
    Error,
}

/// The environment variable read at the first fail point.
pub const ENV: &str = "IRONCAST_FAILPOINTS";

/// Parses `name=action,…` (whitespace ignored); the error names the bad entry.
pub fn parse(spec: &str) -> Result<Vec<(String, Action)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (name, action) = entry
                .split_once('=')
                .ok_or_else(|| format!("fail point entry {entry:?} is not name=action"))?;
            let action = match action.trim() {
                "abort" => Action::Abort,
                "panic" => Action::Panic,
                "off" => Action::Off,
                "error" => Action::Error,
                other => {
                    return Err(format!(
                    "fail point {name}: unknown action {other:?} (use abort, panic, error or off)"
                ))
                }
            };
            Ok((name.trim().to_string(), action))
        })
        .collect()
}

fn registry() -> &'static Mutex<HashMap<String, Action>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Action>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let spec = std::env::var(ENV).unwrap_or_default();
        let points = parse(&spec).unwrap_or_else(|e| panic!("{ENV}: {e}"));
        Mutex::new(points.into_iter().collect())
    })
}

/// Sets the action of fail point `name` in this process.
pub fn set(name: &str, action: Action) {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.insert(name.to_string(), action);
}

/// Runs fail point `name`'s action; called through [`fail_point!`](crate::fail_point).
/// Returns whether the point is set to fail (`error`).
pub fn hit(name: &str) -> bool {
    let action = {
        let r = registry().lock().unwrap_or_else(|p| p.into_inner());
        r.get(name).copied().unwrap_or(Action::Off)
    };
    match action {
        Action::Off => false,
        Action::Error => true,
        Action::Abort => {
            eprintln!("ironcast: fail point {name}: abort");
            std::process::abort();
        }
        Action::Panic => panic!("fail point {name}: panic"),
    }
}

/// Marks a crash seam named `$name`; nothing at all without the `failpoints` feature. With
/// `$error`, the enclosing function returns `$error` when the point is set to `error`.
#[macro_export]
macro_rules! fail_point {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name);
    };
    ($name:expr, $error:expr) => {
        #[cfg(feature = "failpoints")]
        if $crate::failpoint::hit($name) {
            return $error;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_names_the_bad_one() {
        assert_eq!(
            parse(" cache-commit=abort, worker-step = panic ,x=off,intent-save=error").unwrap(),
            vec![
                ("cache-commit".to_string(), Action::Abort),
                ("worker-step".to_string(), Action::Panic),
                ("x".to_string(), Action::Off),
                ("intent-save".to_string(), Action::Error),
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("a=explode").unwrap_err().contains("\"explode\""));
        assert!(parse("lonely").unwrap_err().contains("\"lonely\""));
    }
}

//! Ironic's own API conformance suite (ironic-tempest-plugin's admin API tests, run by
//! `../shared/ironic-tempest/tempest.sh`) against `ironcast serve`.
//!
//! `tests/conformance/expected-pass.txt` lists the tests that must pass: each is one that
//! passes on OpenStack Ironic 39.0.0 too; it holds all 382 that pass there. Only the test
//! classes Ironic itself skips here (`ironic-skips.txt`) may skip; any other skip or failure
//! fails. The suite runs at concurrency 2, where ironcast must never answer 5xx.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The shared runner: IRONCAST_TEMPEST_SH, else `<repo>/../shared/ironic-tempest/tempest.sh`.
fn tempest_sh() -> Option<PathBuf> {
    let path = std::env::var_os("IRONCAST_TEMPEST_SH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ironic-tempest/tempest.sh")
        });
    if path.exists() {
        return Some(path);
    }
    assert!(
        !common::in_ci(),
        "missing {} (set IRONCAST_TEMPEST_SH): under CI=true this is a failure",
        path.display()
    );
    eprintln!("skipping: missing {}", path.display());
    None
}

/// `test_module.Class.test_name` → "ok" / "FAILED" / "SKIPPED" from an stestr log.
fn results(log: &str) -> BTreeMap<String, String> {
    log.lines()
        .filter_map(|line| {
            let rest = line.split_once("ironic_tempest_plugin.tests.api.admin.")?.1;
            let (id, tail) = rest.split_once(' ')?;
            let id = id.split('[').next()?.to_string();
            let outcome = tail.rsplit("... ").next()?.split(':').next()?.trim();
            Some((id, outcome.to_string()))
        })
        .collect()
}

fn expected() -> Vec<String> {
    listed("expected-pass.txt")
}

/// The lines of `tests/conformance/<name>`, without comments and blank lines.
fn listed(name: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn tempest_admin_api_suite_passes_the_expected_tests() {
    let Some(script) = tempest_sh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = common::serve::spawn_serve(dir.path(), &[]);
    // tempest registers each workspace by its directory's name: a fresh name per run.
    let work = dir
        .path()
        .join(format!("tempest-{}", uuid::Uuid::new_v4().simple()));
    let out = Command::new("bash")
        .arg(&script)
        .arg(&server.url)
        .arg(r"^ironic_tempest_plugin\.tests\.api\.admin\.")
        .env("TEMPEST_WORK", &work)
        .env("TEMPEST_CONCURRENCY", "2")
        .output()
        .expect("run tempest.sh");
    let summary = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(work.join("run.log"))
        .unwrap_or_else(|e| panic!("tempest left no run.log ({e}): {summary}"));
    let got = results(&log);
    assert!(
        got.len() > 300,
        "tempest ran only {} tests: {summary}",
        got.len()
    );
    let missing: Vec<String> = expected()
        .into_iter()
        .filter(|t| got.get(t).map(String::as_str) != Some("ok"))
        .map(|t| {
            format!(
                "{t}: {}",
                got.get(&t).map(String::as_str).unwrap_or("not run")
            )
        })
        .collect();
    // A class skipped in setUpClass is logged as "test_x.Class)": only Ironic's own skips.
    let ironic_skips = listed("ironic-skips.txt");
    let unexpected: Vec<String> = got
        .iter()
        .filter(|(_, outcome)| *outcome != "ok")
        .filter(|(id, outcome)| {
            let class = id.trim_end_matches(')');
            !(*outcome == "SKIPPED" && ironic_skips.iter().any(|s| s == class))
        })
        .map(|(id, outcome)| format!("{id}: {outcome}"))
        .collect();
    let passed = got.values().filter(|o| *o == "ok").count();
    eprintln!(
        "tempest: {passed} of {} passed; {}",
        got.len(),
        summary.lines().last().unwrap_or("")
    );
    assert!(
        missing.is_empty(),
        "{} expected tests did not pass (full log: {}):\n{}",
        missing.len(),
        work.join("run.log").display(),
        missing.join("\n")
    );
    assert!(
        unexpected.is_empty(),
        "{} tests failed or skipped where Ironic 39.0.0 does not (full log: {}):\n{}",
        unexpected.len(),
        work.join("run.log").display(),
        unexpected.join("\n")
    );
    assert!(
        !log.contains("Got server fault"),
        "ironcast answered 5xx during the suite:\n{}",
        log.lines()
            .filter(|l| l.contains("server fault") || l.contains("Details: b'"))
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

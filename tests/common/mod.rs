//! Helpers shared by the integration tests: finding real peers (tools, databases) and temp dirs.
//!
//! Under `CI=true` a missing tool or database is a failure, never a skip; on a developer
//! machine the test prints what is missing and returns early.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod clients;
pub mod fixtures;
pub mod libvirt;
pub mod qemu;
pub mod serve;
pub mod sushy;

/// Polls `check` (files appearing, counters, a lock freed, a token expired) until it gives a
/// value, and returns it; fails naming `what` after 20 s. Tests wait for events with it, never
/// with a sleep for time to pass.
pub async fn poll<T, F>(what: &str, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// [`poll`] for a condition that holds or not.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    poll(what, || std::future::ready(cond().then_some(()))).await
}

/// True when running in CI, where every peer must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `name` on PATH; panics in CI when missing, else returns None (the test should return).
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        missing(&format!(
            "tool `{name}` (install it with scripts/install-deps)"
        ));
    }
    found
}

/// The PostgreSQL URL from IRONCAST_TEST_POSTGRES_URL; panics in CI when unset.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("IRONCAST_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        missing("IRONCAST_TEST_POSTGRES_URL (scripts/test starts PostgreSQL and sets it)");
    }
    url
}

fn missing(what: &str) {
    assert!(!in_ci(), "missing {what}: under CI=true this is a failure");
    eprintln!("skipping: missing {what}");
}

/// Path of the built `ironcast` binary.
pub fn ironcast_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ironcast"))
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures are reproducible.
pub fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545F4914F6CDD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

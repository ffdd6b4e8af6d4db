//! The fuzz harness: one function per target, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, run by `scripts/fuzz` under nightly) and by the corpus replay
//! test (`tests/fuzz_corpus.rs`, stable, in CI). Both include this directory with `#[path]`,
//! so a crash found by libFuzzer replays through exactly the same code.
//!
//! Structured targets turn libFuzzer's bytes into a description with `arbitrary` and build a
//! well-formed image from it (CRC-valid GPTs, Rock Ridge CE chains, El Torito catalogs, qcow2
//! tables), then bend chosen fields: random bytes alone almost never get past a CRC or a
//! signature. Each target must never panic, hang, or allocate without bound.

#![allow(dead_code)]

pub mod gpt;
pub mod http1;
pub mod iso;
pub mod patchers;
pub mod qcow2;
pub mod redfish;

/// A target's entry point: one input, no result (a problem is a panic).
pub type Target = fn(&[u8]);

/// Every target by name (the name of its `fuzz_targets/*.rs` and of its seed directory).
pub const TARGETS: &[(&str, Target)] = &[
    ("iso_reader", iso::raw),
    ("iso_structured", iso::structured),
    ("gpt", gpt::run),
    ("qcow2", qcow2::run),
    ("redfish_json", redfish::run),
    ("http1_head", http1::run),
    ("config_patchers", patchers::run),
];

/// The fuzz input as a structured value; `None` when the bytes run out early.
pub fn structured<'a, T: arbitrary::Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    let mut u = arbitrary::Unstructured::new(data);
    T::arbitrary(&mut u).ok()
}

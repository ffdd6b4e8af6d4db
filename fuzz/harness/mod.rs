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

/// libFuzzer's panic hook aborts on every panic, even one that is caught. The one panic ironcast
/// catches by design is inside `fatfs`, which is not hardened against hostile images:
/// `src/iso/fat.rs` runs it under `catch_unwind` and reports a corrupt FAT. Panics located in
/// fatfs unwind to that guard; any other still aborts (libFuzzer-sys also aborts on a panic
/// that reaches the target's boundary). The cargo-fuzz targets call this first.
pub fn abort_on_panics_outside_the_fat_guard() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_fatfs = info
                .location()
                .is_some_and(|at| at.file().contains("/fatfs-"));
            if !in_fatfs {
                libfuzzer_hook(info)
            }
        }));
    });
}

/// The fuzz input as a structured value; `None` when the bytes run out early.
pub fn structured<'a, T: arbitrary::Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    let mut u = arbitrary::Unstructured::new(data);
    T::arbitrary(&mut u).ok()
}

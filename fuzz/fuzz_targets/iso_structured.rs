//! cargo-fuzz target `iso_structured`: the shared harness's `iso::structured` (see fuzz/harness/mod.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../harness/mod.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::abort_on_panics_outside_the_fat_guard();
    harness::iso::structured(data)
});

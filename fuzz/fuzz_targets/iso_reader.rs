//! cargo-fuzz target `iso_reader`: the shared harness's `iso::raw` (see fuzz/harness/mod.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../harness/mod.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::abort_on_panics_outside_the_fat_guard();
    harness::iso::raw(data)
});

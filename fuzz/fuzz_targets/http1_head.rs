//! cargo-fuzz target `http1_head`: the shared harness's `http1::run` (see fuzz/harness/mod.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../harness/mod.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::abort_on_panics_outside_the_fat_guard();
    harness::http1::run(data)
});

//! cargo-fuzz target `redfish_json`: the shared harness's `redfish::run` (see fuzz/harness/mod.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../harness/mod.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::abort_on_panics_outside_the_fat_guard();
    harness::redfish::run(data)
});

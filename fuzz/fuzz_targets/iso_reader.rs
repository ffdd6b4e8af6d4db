//! The reader and the remaster planner on arbitrary bytes: must never panic, and a remaster
//! that succeeds must give a valid patch set.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ironcast::iso::inspect_source(&data, "fuzz");
    if let Ok((set, _)) = ironcast::iso::remaster_source(&data, "ironcast.m=1 a;b") {
        assert!(set.validate().is_ok());
        assert_eq!(set.base_len, data.len() as u64);
    }
});

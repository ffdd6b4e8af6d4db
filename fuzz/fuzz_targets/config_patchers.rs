//! The grub and syslinux patchers on arbitrary text: never panic, idempotent, and they only
//! add: every original line survives as a prefix-preserving edit or unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;

use ironcast::iso::{grub, syslinux};

fuzz_target!(|text: &str| {
    let args = vec!["ironcast.m=1".to_string(), "q=a;b".to_string()];
    for (patch, dialect) in [
        (grub::patch as fn(&str, &[String]) -> _, "grub"),
        (syslinux::patch, "syslinux"),
    ] {
        let (once, kernels) = patch(text, &args);
        let once = once.unwrap_or_else(|| text.to_string());
        let (twice, kernels2) = patch(&once, &args);
        assert!(twice.is_none(), "{dialect}: second pass changed {text:?}");
        assert_eq!(kernels, kernels2, "{dialect}: kernel count changed");
        assert!(once.len() >= text.len(), "{dialect}: text shrank");
    }
    let _ = grub::kernel_lines(text);
    let _ = grub::references(text);
    let _ = syslinux::kernel_labels(text);
    let _ = syslinux::references(text);
});

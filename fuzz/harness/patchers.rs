//! The grub and syslinux patchers on arbitrary text: never panic, idempotent, and they only
//! add: a refusal (a kernel line over the command line limit) is the only other outcome.

use ironcast::iso::{grub, syslinux};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args = vec!["ironcast.m=1".to_string(), "q=a;b".to_string()];
    type Patch =
        fn(&str, &[String]) -> Result<(Option<String>, usize), ironcast::iso::cmdline::LineTooLong>;
    for (patch, dialect) in [
        (grub::patch as Patch, "grub"),
        (syslinux::patch as Patch, "syslinux"),
    ] {
        let Ok((once, kernels)) = patch(text, &args) else {
            continue;
        };
        let once = once.unwrap_or_else(|| text.to_string());
        let (twice, kernels2) = patch(&once, &args).expect("a patched config patches again");
        assert!(twice.is_none(), "{dialect}: second pass changed {text:?}");
        assert_eq!(kernels, kernels2, "{dialect}: kernel count changed");
        assert!(once.len() >= text.len(), "{dialect}: text shrank");
    }
    let _ = grub::kernel_lines(text);
    let _ = grub::references(text);
    let _ = syslinux::kernel_labels(text);
    let _ = syslinux::references(text);
}

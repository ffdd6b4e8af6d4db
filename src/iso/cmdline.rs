//! The whole kernel command line a boot loader hands the kernel, measured against the limits
//! on the way: the loader's own and the kernel's (`COMMAND_LINE_SIZE`, 2048 bytes with its NUL
//! on x86 and arm64). Both GRUB and syslinux add `BOOT_IMAGE=<kernel>` to what the config
//! says, so that counts too. Pure: the patchers call [`check`] on every line they edit.

/// What both loaders add in front of (GRUB) or behind (syslinux) the config's arguments.
pub const BOOT_IMAGE: &str = "BOOT_IMAGE=";

/// The longest command line, in bytes, that reaches the kernel whole: x86
/// `COMMAND_LINE_SIZE` (2048) less its terminating NUL.
pub const KERNEL_LIMIT: usize = 2047;

/// The boot loader whose line is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    Grub,
    Syslinux,
}

impl Loader {
    /// The limit of a whole line and why it is that.
    pub fn limit(self) -> (usize, &'static str) {
        match self {
            // GRUB's linux loader sizes the line by the kernel's setup header; no limit of its own.
            Loader::Grub => (
                KERNEL_LIMIT,
                "the kernel's COMMAND_LINE_SIZE of 2048 bytes with its NUL; GRUB adds BOOT_IMAGE=<kernel>",
            ),
            // isolinux/syslinux keep at most 2047 bytes of a command line (max_cmd_len).
            Loader::Syslinux => (
                KERNEL_LIMIT,
                "isolinux/syslinux's 2047-byte command line and the kernel's COMMAND_LINE_SIZE of 2048; syslinux adds BOOT_IMAGE=<kernel>",
            ),
        }
    }
}

/// A kernel line that would be longer than its loader or the kernel takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line} boots {kernel} with a kernel command line of {length} bytes once the arguments \
     are added, over the limit of {limit} ({why}): give shorter arguments, or pass large data \
     another way (a config drive, a URL)"
)]
pub struct LineTooLong {
    /// 1-based line number in the config.
    pub line: usize,
    pub kernel: String,
    pub length: usize,
    pub limit: usize,
    pub why: &'static str,
}

/// The length of the command line the kernel gets for `kernel` booted with `args` (as written
/// in the config: quotes count, which can only overstate).
pub fn whole_length(kernel: &str, args: &str) -> usize {
    let args = args.trim();
    BOOT_IMAGE.len() + kernel.len() + if args.is_empty() { 0 } else { 1 + args.len() }
}

/// Checks the edited line `line` (1-based) of a config for `loader`.
pub fn check(loader: Loader, line: usize, kernel: &str, args: &str) -> Result<(), LineTooLong> {
    let (limit, why) = loader.limit();
    let length = whole_length(kernel, args);
    if length > limit {
        return Err(LineTooLong {
            line,
            kernel: kernel.to_string(),
            length,
            limit,
            why,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_whole_line() {
        assert_eq!(whole_length("/vmlinuz", ""), 19);
        assert_eq!(whole_length("/vmlinuz", " quiet "), 25);
        let fits = "a".repeat(KERNEL_LIMIT - whole_length("/k", "") - 1);
        assert!(check(Loader::Grub, 3, "/k", &fits).is_ok());
        let over = format!("{fits}b");
        let err = check(Loader::Syslinux, 7, "/k", &over).unwrap_err();
        assert_eq!((err.line, err.length, err.limit), (7, 2048, 2047));
        let text = err.to_string();
        assert!(
            text.contains("2048 bytes") && text.contains("limit of 2047"),
            "{text}"
        );
        assert!(text.contains("syslinux"), "{text}");
    }
}

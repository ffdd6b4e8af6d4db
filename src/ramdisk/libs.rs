//! Shared libraries of the agent binary, found with the build host's `ldd` (which resolves
//! DT_NEEDED entries transitively the way the dynamic loader will in the ramdisk) and packed
//! at the same absolute paths, with the loader itself. A static binary needs none.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::RamdiskError;

/// Library paths from `ldd` output: `name => /path (addr)` lines and the loader's
/// `/lib64/ld-linux-x86-64.so.2 (addr)`; the vDSO has no file and is skipped. Pure.
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not a dynamic executable") || line.contains("statically linked") {
            return Ok(Vec::new());
        }
        if line.contains("=> not found") {
            return Err(format!("a library is missing on this host: {line}"));
        }
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            out.push(PathBuf::from(path));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The libraries `binary` needs, as absolute paths on this host.
pub fn needed(binary: &Path) -> Result<Vec<PathBuf>, RamdiskError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|cause| RamdiskError::Io {
            context: format!(
                "running ldd on {} (install libc-bin, or pass a static --agent-binary)",
                binary.display()
            ),
            cause,
        })?;
    // ldd exits 1 for a static binary, saying so on stdout or stderr.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_ldd(&text).map_err(|e| RamdiskError::Input(format!("{}: {e}", binary.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_and_loader_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        let libs = parse_ldd(text).unwrap();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert!(parse_ldd("\tnot a dynamic executable\n")
            .unwrap()
            .is_empty());
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.contains("libfoo"), "{err}");
    }
}

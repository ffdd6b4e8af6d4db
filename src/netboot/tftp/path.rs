//! Mapping a TFTP file name to a file under the root, never outside it.

use std::path::{Component, Path, PathBuf};

/// Why a name is refused (the client gets a TFTP error saying so).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("file name leaves the TFTP root")]
    Escape,
    #[error("file not found")]
    NotFound,
    #[error("not a regular file")]
    NotFile,
}

/// The file `name` names under `root`. Leading slashes and `\` separators (Windows-style
/// clients) are taken as the root's; `..` and anything that resolves (through symlinks)
/// outside the root is refused.
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, PathError> {
    let name = name.replace('\\', "/");
    let rel = Path::new(name.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(PathError::Escape);
    }
    let root = root.canonicalize().map_err(|_| PathError::NotFound)?;
    let full = root
        .join(rel)
        .canonicalize()
        .map_err(|_| PathError::NotFound)?;
    if !full.starts_with(&root) {
        return Err(PathError::Escape);
    }
    if !full.is_file() {
        return Err(PathError::NotFile);
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
        std::fs::write(root.join("pxelinux.cfg/default"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let ok = root.canonicalize().unwrap().join("pxelinux.cfg/default");
        for (name, want) in [
            ("pxelinux.cfg/default", Ok(ok.clone())),
            ("/pxelinux.cfg/default", Ok(ok.clone())),
            ("\\pxelinux.cfg\\default", Ok(ok.clone())),
            ("../secret", Err(PathError::Escape)),
            ("pxelinux.cfg/../../secret", Err(PathError::Escape)),
            ("link", Err(PathError::Escape)),
            ("missing", Err(PathError::NotFound)),
            ("pxelinux.cfg", Err(PathError::NotFile)),
        ] {
            assert_eq!(resolve(&root, name), want, "{name}");
        }
    }
}

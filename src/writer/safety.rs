//! Refusals before any byte is written: a destination outside the allow list, or a block
//! device that is mounted, has mounted partitions, or is held by another device (dm, md).

use std::path::{Path, PathBuf};

use super::error::WriteError;

/// Checks `dest` against `allow` (empty: everything allowed); symlinks are resolved first so
/// `/dev/disk/by-id/…` names match the device they point at.
pub(crate) fn check_allowed(dest: &Path, allow: &[PathBuf]) -> Result<(), WriteError> {
    if allow.is_empty() {
        return Ok(());
    }
    let resolved = resolve(dest);
    let ok = allow.iter().any(|a| {
        let a = resolve(a);
        resolved.starts_with(&a)
    });
    if ok {
        Ok(())
    } else {
        Err(WriteError::NotAllowed {
            path: dest.to_path_buf(),
            allowed: allow
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Refuses a destination that is not a block device unless `allow_file`, and a symlink to a
/// regular file always (a name that looks like a device must not reach a file by accident).
pub(crate) fn check_target_kind(dest: &Path, allow_file: bool) -> Result<(), WriteError> {
    use std::os::unix::fs::FileTypeExt as _;
    let refuse = |what: &str| {
        Err(WriteError::NotABlockDevice {
            path: dest.to_path_buf(),
            what: what.to_string(),
        })
    };
    let link = std::fs::symlink_metadata(dest).ok();
    let target = std::fs::metadata(dest).ok();
    match (link, target) {
        (_, Some(t)) if t.file_type().is_block_device() => Ok(()),
        (Some(l), Some(t)) if l.file_type().is_symlink() && t.is_file() => {
            refuse("a symlink to a regular file")
        }
        (Some(l), None) if l.file_type().is_symlink() => refuse("a dangling symlink"),
        (_, Some(t)) if t.is_file() && !allow_file => refuse("a regular file"),
        (_, Some(t)) if !t.is_file() => refuse("neither a block device nor a regular file"),
        (None, None) if !allow_file => refuse("missing (a mistyped device name?)"),
        _ => Ok(()),
    }
}

fn resolve(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or_else(|_| p.to_path_buf()),
        _ => p.to_path_buf(),
    }
}

/// `(major, minor, mount point)` of every mount in a `/proc/self/mountinfo` text (pure).
pub fn parse_mountinfo(text: &str) -> Vec<(u32, u32, String)> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let dev = f.nth(2)?;
            let mountpoint = f.nth(1)?;
            let (maj, min) = dev.split_once(':')?;
            Some((maj.parse().ok()?, min.parse().ok()?, mountpoint.to_string()))
        })
        .collect()
}

/// Refuses a block device (`rdev`) that is mounted, has a mounted partition, or has holders.
pub(crate) fn check_block_not_in_use(path: &Path, rdev: u64) -> Result<(), WriteError> {
    let (maj, min) = (libc::major(rdev), libc::minor(rdev));
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    // The disk itself and each partition (a subdirectory with a `partition` file).
    let mut devs = vec![(maj, min, path.display().to_string())];
    if let Ok(rd) = std::fs::read_dir(&sys) {
        for e in rd.flatten() {
            let p = e.path();
            if p.join("partition").exists() {
                if let Ok(d) = std::fs::read_to_string(p.join("dev")) {
                    if let Some((a, b)) = d.trim().split_once(':') {
                        if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                            devs.push((
                                a,
                                b,
                                format!("partition {}", e.file_name().to_string_lossy()),
                            ));
                        }
                    }
                }
            }
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = parse_mountinfo(&mountinfo);
    for (a, b, name) in &devs {
        if let Some((_, _, mp)) = mounts.iter().find(|(x, y, _)| x == a && y == b) {
            return Err(WriteError::InUse {
                path: path.to_path_buf(),
                what: format!("{name} ({a}:{b}) is mounted at {mp}"),
            });
        }
        let holders = format!("/sys/dev/block/{a}:{b}/holders");
        if let Ok(rd) = std::fs::read_dir(&holders) {
            let names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if !names.is_empty() {
                return Err(WriteError::InUse {
                    path: path.to_path_buf(),
                    what: format!("{name} is held by {}", names.join(", ")),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    98 22 7:3 / /mnt/x\\040y rw - ext4 /dev/loop3 rw\n\
                    garbage\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![(253, 0, "/".into()), (7, 3, "/mnt/x\\040y".into())]
        );
    }

    #[test]
    fn only_block_devices_unless_files_are_allowed_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk.img");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.path().join("sda");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let missing = dir.path().join("sdz");
        let refused = |p: &Path, allow_file| {
            matches!(
                check_target_kind(p, allow_file),
                Err(WriteError::NotABlockDevice { .. })
            )
        };
        assert!(refused(&file, false));
        assert!(refused(&missing, false));
        assert!(refused(&link, false));
        assert!(refused(&link, true));
        assert!(refused(Path::new("/dev/null"), true));
        assert!(check_target_kind(&file, true).is_ok());
        assert!(check_target_kind(&missing, true).is_ok());
    }

    #[test]
    fn allow_list_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("disk.img");
        assert!(check_allowed(&inside, &[dir.path().to_path_buf()]).is_ok());
        assert!(check_allowed(&inside, &[]).is_ok());
        let err = check_allowed(Path::new("/etc/passwd"), &[dir.path().to_path_buf()]);
        assert!(matches!(err, Err(WriteError::NotAllowed { .. })));
    }
}

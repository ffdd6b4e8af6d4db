//! The EFI boot image: a FAT file system in a file, built in memory with the `fatfs` crate
//! (no mkfs, no mount). UEFI firmware loads `EFI/BOOT/BOOTX64.EFI` from it when it boots the
//! El Torito EFI entry. fatfs without its clock feature stamps every file with the FAT epoch,
//! so the image depends on its inputs only.

use std::io::{Cursor, Write};

use fatfs::{FileSystem, FormatVolumeOptions, FsOptions};

use crate::iso::IsoError;

/// Free space left in the image for later edits (a remastered grub.cfg grows in place).
const SLACK: usize = 256 << 10;
/// Image sizes are rounded to this (a whole number of 2048-byte ISO sectors and FAT tracks).
const ROUND: usize = 64 << 10;
/// A fixed volume serial number, for reproducible output.
const VOLUME_ID: u32 = 0x1C0C_A57E;

fn fat_err(message: impl std::fmt::Display) -> IsoError {
    IsoError::BadInput(format!("building the EFI FAT image: {message}"))
}

/// Builds a FAT image holding `files` (paths like "EFI/BOOT/BOOTX64.EFI", directories
/// created as needed), sized to fit them plus room to grow.
pub fn efi_image(files: &[(&str, &[u8])]) -> Result<Vec<u8>, IsoError> {
    let payload: usize = files
        .iter()
        .map(|(_, d)| d.len().div_ceil(4096) * 4096)
        .sum();
    // FAT tables, root directory and cluster rounding cost a few percent.
    let size = (payload + payload / 16 + SLACK).div_ceil(ROUND) * ROUND;
    let mut image = vec![0u8; size];
    fatfs::format_volume(
        Cursor::new(&mut image[..]),
        FormatVolumeOptions::new()
            .volume_id(VOLUME_ID)
            .volume_label(*b"EFIBOOT    "),
    )
    .map_err(fat_err)?;
    {
        let fs = FileSystem::new(Cursor::new(&mut image[..]), FsOptions::new()).map_err(fat_err)?;
        for (path, data) in files {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let (name, dirs) = parts
                .split_last()
                .ok_or_else(|| fat_err(format!("empty path {path:?}")))?;
            let mut dir = fs.root_dir();
            for d in dirs {
                dir = match dir.open_dir(d) {
                    Ok(sub) => sub,
                    Err(_) => dir.create_dir(d).map_err(fat_err)?,
                };
            }
            let mut file = dir.create_file(name).map_err(fat_err)?;
            file.truncate().map_err(fat_err)?;
            file.write_all(data)
                .map_err(|e| fat_err(format!("writing {path}: {e}")))?;
        }
        fs.unmount().map_err(fat_err)?;
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn files_read_back_and_output_is_reproducible() {
        let efi = vec![0x4Du8; 300_000];
        let files: [(&str, &[u8]); 2] = [
            ("EFI/BOOT/BOOTX64.EFI", &efi),
            ("EFI/BOOT/grub.cfg", b"linux /boot/vmlinuz console=ttyS0\n"),
        ];
        let a = efi_image(&files).unwrap();
        assert_eq!(a, efi_image(&files).unwrap());
        assert_eq!(a.len() % 2048, 0);
        let fs = FileSystem::new(Cursor::new(a), FsOptions::new()).unwrap();
        let mut text = String::new();
        fs.root_dir()
            .open_file("EFI/BOOT/grub.cfg")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.contains("console=ttyS0"));
        let mut bin = Vec::new();
        fs.root_dir()
            .open_file("EFI/BOOT/BOOTX64.EFI")
            .unwrap()
            .read_to_end(&mut bin)
            .unwrap();
        assert_eq!(bin, efi);
    }
}

//! The writer's output read back by the engine's own reader (independent readers — xorriso,
//! pycdlib, isoinfo — check it in tests/iso_writer.rs).

use super::*;
use crate::iso::image::Iso;

fn config_drive() -> IsoWriter {
    let mut w = IsoWriter::new("config-2").unwrap();
    w.add_file(
        "/openstack/latest/meta_data.json",
        br#"{"uuid": "u-1"}"#.to_vec(),
    )
    .unwrap()
    .add_file("/openstack/latest/user_data", b"#cloud-config\n".to_vec())
    .unwrap()
    .add_file("/openstack/latest/network_data.json", b"{}".to_vec())
    .unwrap()
    .add_file("/openstack/content/empty", Vec::new())
    .unwrap();
    w
}

fn paths(iso: &Iso) -> Vec<(String, u32)> {
    let mut p: Vec<_> = iso
        .tree
        .entries
        .iter()
        .filter(|e| !e.is_dir)
        .map(|e| (e.path.clone(), e.size))
        .collect();
    p.sort();
    p
}

#[test]
fn data_image_keeps_rock_ridge_names_and_volume_id() {
    let bytes = config_drive().build().unwrap();
    assert_eq!(bytes.len() % SECTOR, 0);
    let iso = Iso::read(&bytes).unwrap();
    assert!(iso.tree.rock_ridge);
    assert_eq!(
        paths(&iso),
        vec![
            ("/openstack/content/empty".to_string(), 0),
            ("/openstack/latest/meta_data.json".to_string(), 15),
            ("/openstack/latest/network_data.json".to_string(), 2),
            ("/openstack/latest/user_data".to_string(), 14),
        ]
    );
    assert_eq!(&bytes[16 * SECTOR + 40..16 * SECTOR + 48], b"config-2");
    assert!(iso.boot.is_empty());
    let meta = iso.tree.find("/openstack/latest/meta_data.json").unwrap();
    let at = meta.extent as usize * SECTOR;
    assert_eq!(&bytes[at..at + 15], br#"{"uuid": "u-1"}"#);
    // The volume size covers every extent.
    let total = u32::from_le_bytes(
        bytes[16 * SECTOR + 80..16 * SECTOR + 84]
            .try_into()
            .unwrap(),
    );
    assert_eq!(total as usize * SECTOR, bytes.len());
}

#[test]
fn output_is_deterministic() {
    assert_eq!(
        config_drive().build().unwrap(),
        config_drive().build().unwrap()
    );
}

#[test]
fn large_directories_span_sectors_without_splitting_records() {
    let mut w = IsoWriter::new("MANY").unwrap();
    for i in 0..200 {
        w.add_file(
            &format!("/d/a-rather-long-file-name-number-{i:03}.txt"),
            vec![i as u8; 10],
        )
        .unwrap();
    }
    let bytes = w.build().unwrap();
    let iso = Iso::read(&bytes).unwrap();
    assert_eq!(paths(&iso).len(), 200);
    let f = iso
        .tree
        .find("/d/a-rather-long-file-name-number-199.txt")
        .unwrap();
    assert_eq!(bytes[f.extent as usize * SECTOR], 199);
}

#[test]
fn boot_entries_point_at_their_files_and_boot_info_table_is_patched() {
    let efi = efi_image(&[("EFI/BOOT/BOOTX64.EFI", &[0x4D; 5000])]).unwrap();
    let mut w = IsoWriter::new("IRONCAST_AGENT").unwrap();
    w.add_file("/isolinux/isolinux.bin", vec![0xFA; 4096])
        .unwrap()
        .add_file("/boot/grub/efi.img", efi.clone())
        .unwrap()
        .bios_boot("/isolinux/isolinux.bin", "/isolinux/boot.cat")
        .unwrap()
        .efi_boot("/boot/grub/efi.img")
        .unwrap();
    let bytes = w.build().unwrap();
    let iso = Iso::read(&bytes).unwrap();
    let bin = iso.tree.find("/isolinux/isolinux.bin").unwrap();
    let img = iso.tree.find("/boot/grub/efi.img").unwrap();
    assert!(iso.tree.find("/isolinux/boot.cat").is_some());
    let platforms: Vec<(&str, u32)> = iso
        .boot
        .iter()
        .map(|b| (b.platform.as_str(), b.load_lba))
        .collect();
    assert_eq!(platforms, vec![("bios", bin.extent), ("efi", img.extent)]);
    assert_eq!(iso.boot[0].sectors, 4);
    assert_eq!(iso.efi.len(), 1, "the reader finds the EFI image");
    let at = bin.extent as usize * SECTOR;
    let word = |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
    assert_eq!((word(8), word(12), word(16)), (16, bin.extent, 4096));
    let img_at = img.extent as usize * SECTOR;
    assert_eq!(&bytes[img_at..img_at + efi.len()], &efi[..]);
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let err = |r: Result<Vec<u8>, IsoError>| r.unwrap_err().to_string();
    assert!(IsoWriter::new("").is_err());
    assert!(IsoWriter::new(&"V".repeat(33))
        .unwrap_err()
        .to_string()
        .contains("32"));
    let mut w = IsoWriter::new("X").unwrap();
    w.add_file("/a/b", vec![1]).unwrap();
    assert!(w
        .add_file("a//b", vec![2])
        .unwrap_err()
        .to_string()
        .contains("twice"));
    assert!(w.add_file("/a/../c", vec![2]).is_err());
    assert!(w
        .add_file(&format!("/{}", "n".repeat(MAX_NAME + 1)), vec![])
        .is_err());
    assert!(w
        .add_file("/1/2/3/4/5/6/7/8/9", vec![])
        .unwrap_err()
        .to_string()
        .contains("levels"));
    w.add_file("/a/b/c", vec![3]).unwrap();
    assert!(err(w.build()).contains("both a file and a directory"));
    let mut w = IsoWriter::new("X").unwrap();
    w.bios_boot("/isolinux/isolinux.bin", "/isolinux/boot.cat")
        .unwrap();
    assert!(err(w.build()).contains("is not a file of the image"));
}

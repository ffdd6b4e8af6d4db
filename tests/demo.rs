//! The demo's in-memory ISO, read back by independent readers (isoinfo, xorriso).

mod common;

use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_iso_reads_back_with_isoinfo_and_xorriso() {
    let (Some(isoinfo), Some(xorriso)) = (common::tool("isoinfo"), common::tool("xorriso")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.iso");
    std::fs::write(&path, ironcast::demo::demo_iso()).unwrap();

    let listing = run(Command::new(&isoinfo).arg("-f").arg("-i").arg(&path));
    for want in [
        "/BOOT/GRUB/GRUB.CFG;1",
        "/ISOLINUX/ISOLINUX.CFG;1",
        "/VMLINUZ.;1",
    ] {
        assert!(
            listing.lines().any(|l| l == want),
            "{want} missing from:\n{listing}"
        );
    }
    let grub = run(Command::new(&isoinfo)
        .args(["-x", "/BOOT/GRUB/GRUB.CFG;1", "-i"])
        .arg(&path));
    assert!(
        grub.contains("linux /vmlinuz console=ttyS0 quiet"),
        "{grub}"
    );

    let report = run(Command::new(&xorriso)
        .arg("-indev")
        .arg(&path)
        .args(["-report_el_torito", "plain"]));
    let entry = report
        .lines()
        .find(|l| l.starts_with("El Torito boot img :   1"))
        .unwrap_or_else(|| panic!("no boot entry in:\n{report}"));
    assert!(entry.contains("BIOS") && entry.contains("none"), "{entry}");
    // The path tables agree with the directory tree (isoinfo -p prints them).
    let tables = run(Command::new(&isoinfo).arg("-p").arg("-i").arg(&path));
    for dir in ["BOOT", "GRUB", "ISOLINUX"] {
        assert!(
            tables.contains(dir),
            "{dir} missing from path table:\n{tables}"
        );
    }
}

#[test]
fn the_iso_engine_finds_both_demo_entries_and_the_simulator_inspector_puts_isolinux_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.iso");
    std::fs::write(&path, ironcast::demo::demo_iso()).unwrap();
    let cmdlines = (ironcast::demo::iso_boot_inspector())(&path).unwrap();
    let base = ironcast::demo::DEMO_BASE_ARGS;
    assert_eq!(cmdlines.len(), 2, "{cmdlines:?}");
    assert_eq!(cmdlines[0], format!("initrd=/initrd.img {base}"));
    assert_eq!(cmdlines[1], base);
}

#[test]
fn ironcast_demo_deploys_simulated_nodes_and_each_bmc_boots_its_own_args() {
    let out = Command::new(common::ironcast_bin())
        .args(["demo", "--nodes", "4"])
        .output()
        .expect("run ironcast demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for i in 0..4 {
        let want = format!("console=ttyS0 quiet ironcast.demo=demo-{i:04}");
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("demo-{i:04}")) && l.contains(&want)),
            "no booted command line with {want:?} in:\n{stdout}"
        );
    }
    assert!(stderr.contains("4 nodes deployed"), "{stderr}");
}

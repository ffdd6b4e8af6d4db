//! The demo's in-memory ISO, read back by independent readers (isoinfo, xorriso), and the demo
//! itself: both deploy paths on simulated BMCs, the whole-disk one through simulated agents.

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
fn ironcast_demo_deploys_both_paths_each_bmc_boots_its_own_args_and_agents_write_the_disk() {
    let out = Command::new(common::ironcast_bin())
        .args(["demo", "--nodes", "4"])
        .output()
        .expect("run ironcast demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let row = |i: usize| {
        let name = format!("demo-{i:04}");
        stdout
            .lines()
            .find(|l| l.contains(&name))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{stdout}"))
            .to_string()
    };
    // Even nodes boot the live ISO with their own arg; odd ones get the whole-disk image
    // written and verified by a simulated agent, then boot from disk.
    for i in [0, 2] {
        let want = format!("console=ttyS0 quiet ironcast.demo=demo-{i:04}");
        assert!(row(i).contains(&want), "{want:?} missing: {}", row(i));
    }
    for i in [1, 3] {
        let r = row(i);
        assert!(
            r.contains("write image: done, checksum verified")
                && r.contains("booted from its disk"),
            "{r}"
        );
    }
    assert!(stderr.contains("4 nodes deployed"), "{stderr}");
}

#[test]
fn ironcast_demo_whole_disk_only() {
    let out = Command::new(common::ironcast_bin())
        .args(["demo", "--nodes", "2", "--deploy", "whole-disk"])
        .output()
        .expect("run ironcast demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = stdout
        .lines()
        .filter(|l| l.contains("write image: done, checksum verified"))
        .count();
    assert_eq!(rows, 2, "{stdout}");
}

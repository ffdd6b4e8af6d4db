//! `ironcast iso identify` on every row of the identification table: one fixture per row,
//! built by fixtures/identify/layouts.sh (xorriso) from the distribution's published layout,
//! whose expected answer comes from the same script (what the medium says), not from the table.

use std::process::Command;

use crate::common::fixtures::repo;
use crate::{run, tools};

fn script() -> std::path::PathBuf {
    repo().join("fixtures/identify/layouts.sh")
}

/// Builds the layout's ISO (once, keyed by the script's hash) and returns its path.
fn layout_iso(name: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(std::fs::read(script()).unwrap());
    h.update(std::fs::read(repo().join("fixtures/iso/lib.sh")).unwrap());
    let dir = repo()
        .join("target/identify-fixtures")
        .join(hex::encode(&h.finalize()[..6]));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.iso"));
    if !out.exists() {
        let tmp = dir.join(format!("{name}.{}.part", std::process::id()));
        run(Command::new("bash")
            .arg(script())
            .arg("build")
            .arg(name)
            .arg(&tmp));
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

fn check(name: &str) {
    if !tools(&["xorriso"]) {
        return;
    }
    let iso = layout_iso(name);
    let want: serde_json::Value = serde_json::from_slice(&run(Command::new("bash")
        .arg(script())
        .arg("expect")
        .arg(name)))
    .unwrap();
    let got: serde_json::Value =
        serde_json::from_slice(&run(Command::new(crate::common::ironcast_bin())
            .args(["iso", "identify", "-f", "json"])
            .arg(&iso)))
        .unwrap();
    for key in ["id", "family", "distro", "version", "arch", "installer"] {
        assert_eq!(got[key], want[key], "{name}: {key} in {got:#}");
    }
    let mechanisms: Vec<&str> = got["automation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let wanted: Vec<&str> = want["automation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(mechanisms, wanted, "{name}: automation");
}

/// One test per table row; `every_row_has_a_test` keeps this list and the table in step.
macro_rules! rows {
    ($($test:ident => $row:literal),* $(,)?) => {
        $(#[test] fn $test() { check($row) })*
        const ROWS: &[&str] = &[$($row),*];
    };
}

rows! {
    identify_fedora_coreos => "fedora-coreos",
    identify_rhcos => "rhcos",
    identify_fedora => "fedora",
    identify_rhel => "rhel",
    identify_centos_stream => "centos-stream",
    identify_rocky => "rocky",
    identify_almalinux => "almalinux",
    identify_ubuntu_server => "ubuntu-server",
    identify_debian => "debian",
    identify_sles => "sles",
    identify_opensuse_leap => "opensuse-leap",
    identify_alpine => "alpine",
    identify_windows_server_2022 => "windows-server-2022",
    identify_windows_client => "windows-client",
    identify_windows_other => "windows-other",
}

#[test]
fn every_row_has_a_test_and_a_layout() {
    let table = std::fs::read_to_string(repo().join("src/iso/identify/table.toml")).unwrap();
    let rows: Vec<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("id = \""))
        .map(|l| l.trim_end_matches('"').to_string())
        .collect();
    assert_eq!(
        rows, ROWS,
        "tests/iso/identify.rs lists the table's rows in order"
    );
    let layouts = String::from_utf8(run(Command::new("bash").arg(script()).arg("list"))).unwrap();
    let layouts: Vec<&str> = layouts.lines().collect();
    assert_eq!(
        layouts, ROWS,
        "fixtures/identify/layouts.sh has a layout per row"
    );
}

/// An ISO no row matches exits 2 and says what was looked for.
#[test]
fn identify_unknown_says_what_was_looked_for() {
    if !tools(&["xorriso"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi").unwrap();
    let iso = dir.path().join("plain.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-V", "PLAIN_DATA", "-o"])
        .arg(&iso)
        .arg(dir.path().join("hello.txt")));
    let out = Command::new(crate::common::ironcast_bin())
        .args(["iso", "identify"])
        .arg(&iso)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PLAIN_DATA") && err.contains("/.treeinfo") && err.contains("/.disk/info"),
        "{err}"
    );
}

//! ISO engine against real peers: fixtures built by fixtures/iso/build.sh (xorriso, isolinux,
//! grub-mkrescue, mtools), remastered by the `ironcast` binary, read back by pycdlib, xorriso,
//! isoinfo, mtools, fsck.fat and sgdisk. QEMU boot proofs are in the `qemu_boot_*` tests.

mod common;
#[path = "iso/identify.rs"]
mod identify;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const MARKER: &str = "ironcast.marker=7f3a";
const ARGS: &str = "ironcast.marker=7f3a console=ttyS0,115200";

use common::fixtures::repo;

/// Runs a command, panicking with its output when it fails; returns stdout.
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| common::tool(n).is_some())
}

/// Builds (once, cached under target/ by the scripts' hash) the fixture `name`.
fn fixture(name: &str) -> PathBuf {
    let dir = repo().join("fixtures/iso");
    let mut h = Sha256::new();
    for f in ["build.sh", "lib.sh"] {
        h.update(std::fs::read(dir.join(f)).unwrap());
    }
    let key = hex::encode(&h.finalize()[..6]);
    let cache = repo().join("target/iso-fixtures").join(key);
    std::fs::create_dir_all(&cache).unwrap();
    let out = cache.join(format!("{name}.iso"));
    if !out.exists() {
        let tmp = cache.join(format!("{name}.{}.part", std::process::id()));
        run(Command::new("bash")
            .arg(dir.join("build.sh"))
            .arg(name)
            .arg(&tmp));
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

#[derive(Debug, serde::Deserialize)]
struct Readback {
    #[serde(default)]
    rr: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    rr_texts: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    joliet: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    joliet_texts: std::collections::BTreeMap<String, String>,
}

fn pycdlib(iso: &Path) -> Readback {
    let out = run(Command::new("python3")
        .arg(repo().join("fixtures/iso/readback.py"))
        .arg(iso));
    serde_json::from_slice(&out).unwrap()
}

fn count(text: &str) -> usize {
    text.matches(MARKER).count()
}

/// Where an EFI FAT image lives: a file in the ISO tree or a GPT partition.
enum Efi {
    File(&'static str),
    Partition(usize),
}

struct Expect {
    /// Config path (Rock Ridge) → marker count after remastering.
    configs: &'static [(&'static str, usize)],
    /// EFI image, grub.cfg path inside it, marker count.
    efi: Option<(Efi, &'static str, usize)>,
    /// The image must grow (the config moved past the end).
    grows: bool,
}

fn ironcast(args: &[&str]) -> Vec<u8> {
    run(Command::new(common::ironcast_bin()).args(args))
}

/// Extracts an EFI image from `iso` with independent tools (xorriso or sfdisk + dd).
fn extract_efi(iso: &Path, efi: &Efi, dest: &Path) {
    match efi {
        Efi::File(p) => {
            run(Command::new("xorriso")
                .args(["-osirrox", "on", "-indev"])
                .arg(iso)
                .args(["-extract", p])
                .arg(dest));
        }
        Efi::Partition(n) => {
            let json: serde_json::Value =
                serde_json::from_slice(&run(Command::new("sfdisk").arg("-J").arg(iso))).unwrap();
            let parts = json["partitiontable"]["partitions"].as_array().unwrap();
            let p = &parts[n - 1];
            let start = p["start"].as_u64().unwrap();
            let size = p["size"].as_u64().unwrap();
            let bytes = std::fs::read(iso).unwrap();
            std::fs::write(
                dest,
                &bytes[(start * 512) as usize..((start + size) * 512) as usize],
            )
            .unwrap();
        }
    }
}

fn check(name: &str, expect: Expect) {
    if !tools(&[
        "xorriso", "isoinfo", "mcopy", "mtype", "fsck.fat", "python3", "sgdisk", "sfdisk",
    ]) {
        return;
    }
    let base = fixture(name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.iso");
    let patch = dir.path().join("patch.json");
    ironcast(&[
        "iso",
        "remaster",
        base.to_str().unwrap(),
        "--append",
        ARGS,
        "--patch",
        patch.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let set = ironcast::overlay::PatchSet::load(&patch).unwrap();
    let base_len = std::fs::metadata(&base).unwrap().len();
    assert_eq!(set.base_len, base_len);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), set.len);
    assert_eq!(set.len > base_len, expect.grows, "{name}: growth");
    // The base is untouched by a remaster.
    assert_eq!(
        std::fs::read(&base).unwrap().len() as u64,
        base_len,
        "{name}: base changed"
    );

    // pycdlib: every file byte-identical except the edited configs, in both trees.
    let before = pycdlib(&base);
    let after = pycdlib(&out);
    let mut changed: Vec<&str> = expect.configs.iter().map(|(p, _)| *p).collect();
    if let Some((Efi::File(p), _, _)) = &expect.efi {
        changed.push(p);
    }
    assert!(
        !before.rr.is_empty(),
        "{name}: pycdlib saw no Rock Ridge files"
    );
    assert_eq!(
        before.rr.keys().collect::<Vec<_>>(),
        after.rr.keys().collect::<Vec<_>>()
    );
    for (path, hash) in &before.rr {
        let same = after.rr[path] == *hash;
        let edited = changed.iter().any(|c| c == path);
        assert_eq!(
            !same, edited,
            "{name}: {path} changed={} expected {edited}",
            !same
        );
    }
    for (path, n) in expect.configs {
        assert_eq!(
            count(&after.rr_texts[*path]),
            *n,
            "{name}: {path} (pycdlib RR)"
        );
        assert_eq!(count(&before.rr_texts[*path]), 0);
    }
    // Joliet tree: same files, same hashes as the Rock Ridge tree (paths may differ in case).
    if !before.joliet.is_empty() {
        assert_eq!(before.joliet.len(), after.joliet.len());
        for (path, hash) in &after.joliet {
            assert!(
                after.rr.values().any(|h| h == hash),
                "{name}: Joliet {path} has content no Rock Ridge file has"
            );
        }
        for (path, n) in expect.configs {
            let text = after
                .joliet_texts
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(path))
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("{name}: {path} missing from Joliet"));
            assert_eq!(count(text), *n, "{name}: {path} (pycdlib Joliet)");
        }
    }

    // xorriso extracts the configs (Rock Ridge), isoinfo reads them via Joliet.
    for (path, n) in expect.configs {
        let dest = dir.path().join("x.cfg");
        let _ = std::fs::remove_file(&dest);
        run(Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&out)
            .args(["-extract", path])
            .arg(&dest));
        let text = std::fs::read_to_string(&dest).unwrap();
        assert_eq!(count(&text), *n, "{name}: {path} (xorriso)");
        if !before.joliet.is_empty() {
            let text = run(Command::new("isoinfo")
                .arg("-J")
                .arg("-i")
                .arg(&out)
                .args(["-x", path]));
            assert_eq!(
                count(&String::from_utf8_lossy(&text)),
                *n,
                "{name}: {path} (isoinfo -J)"
            );
        }
    }

    // El Torito still sane: the same boot images as before.
    let report = |iso: &Path| {
        let text = String::from_utf8(run(Command::new("xorriso")
            .args(["-indev"])
            .arg(iso)
            .args(["-report_el_torito", "plain"])))
        .unwrap();
        text.lines()
            .filter(|l| l.starts_with("El Torito boot img :"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let eltorito = report(&out);
    assert!(!eltorito.is_empty(), "{name}: no El Torito images reported");
    assert_eq!(report(&base), eltorito, "{name}: El Torito changed");

    // GPT (when there is one that sgdisk accepts on the base) still verifies.
    let gpt_ok = |iso: &Path| {
        let o = Command::new("sgdisk").arg("-v").arg(iso).output().unwrap();
        String::from_utf8_lossy(&o.stdout).contains("No problems found")
    };
    if gpt_ok(&base) {
        assert!(
            gpt_ok(&out),
            "{name}: sgdisk -v finds problems after remastering"
        );
    }

    // The EFI image: fsck.fat clean, grub.cfg read by mtools carries the marker.
    if let Some((efi, cfg, n)) = &expect.efi {
        let img = dir.path().join("efi.img");
        extract_efi(&out, efi, &img);
        run(Command::new("fsck.fat").arg("-n").arg(&img));
        let text = run(Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&img)
            .arg(format!("::{cfg}")));
        assert_eq!(
            count(&String::from_utf8_lossy(&text)),
            *n,
            "{name}: EFI {cfg}"
        );
    }

    // Idempotent: remastering the result with the same arguments changes nothing.
    let again = dir.path().join("again.json");
    ironcast(&[
        "iso",
        "remaster",
        out.to_str().unwrap(),
        "--append",
        ARGS,
        "--patch",
        again.to_str().unwrap(),
    ]);
    let again = ironcast::overlay::PatchSet::load(&again).unwrap();
    assert!(
        again.patches.is_empty(),
        "{name}: second remaster patched {:?}",
        again.patches.len()
    );
}

#[test]
fn iso_debian_hybrid() {
    check(
        "debian",
        Expect {
            configs: &[
                ("/boot/grub/grub.cfg", 2),
                ("/isolinux/txt.cfg", 1),
                ("/isolinux/adtxt.cfg", 1),
                ("/isolinux/rqtxt.cfg", 1),
            ],
            efi: None,
            grows: false,
        },
    );
}

#[test]
fn iso_fedora() {
    check(
        "fedora",
        Expect {
            configs: &[("/isolinux/isolinux.cfg", 2), ("/EFI/BOOT/grub.cfg", 3)],
            efi: Some((Efi::File("/images/efiboot.img"), "/EFI/BOOT/grub.cfg", 3)),
            grows: false,
        },
    );
}

#[test]
fn iso_fedora_appended_esp() {
    check(
        "fedora-esp",
        Expect {
            configs: &[("/isolinux/isolinux.cfg", 2), ("/EFI/BOOT/grub.cfg", 3)],
            efi: Some((Efi::Partition(2), "/EFI/BOOT/grub.cfg", 3)),
            grows: false,
        },
    );
}

#[test]
fn iso_ubuntu() {
    check(
        "ubuntu",
        Expect {
            configs: &[("/boot/grub/grub.cfg", 2), ("/boot/grub/loopback.cfg", 1)],
            efi: None,
            grows: false,
        },
    );
}

#[test]
fn iso_suse() {
    check(
        "suse",
        Expect {
            configs: &[
                ("/boot/x86_64/loader/isolinux.cfg", 3),
                ("/EFI/BOOT/grub.cfg", 1),
            ],
            efi: None,
            grows: false,
        },
    );
}

#[test]
fn iso_alpine() {
    check(
        "alpine",
        Expect {
            configs: &[
                ("/boot/syslinux/syslinux.cfg", 1),
                ("/boot/grub/grub.cfg", 1),
            ],
            efi: None,
            grows: false,
        },
    );
}

#[test]
fn iso_grub_mkrescue() {
    if common::tool("grub-mkrescue").is_none() {
        return;
    }
    check(
        "mkrescue",
        Expect {
            configs: &[("/boot/grub/grub.cfg", 1)],
            efi: None,
            grows: false,
        },
    );
}

#[test]
fn iso_config_moves_into_volume_tail() {
    check(
        "noslack",
        Expect {
            configs: &[("/boot/grub/grub.cfg", 1)],
            efi: None,
            grows: false,
        },
    );
}

#[test]
fn iso_config_moves_past_end_with_gpt() {
    check(
        "noslack-gpt",
        Expect {
            configs: &[("/boot/grub/grub.cfg", 1)],
            efi: None,
            grows: true,
        },
    );
}

#[test]
fn iso_refuses_bad_input_clearly() {
    if !tools(&["xorriso"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.iso");
    std::fs::write(&garbage, vec![0x5Au8; 100_000]).unwrap();
    let fail = |args: &[&str]| {
        let o = Command::new(common::ironcast_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = fail(&["iso", "inspect", garbage.to_str().unwrap()]);
    assert!(err.contains("not an ISO 9660 image"), "{err}");

    // A data ISO with no boot config at all.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("README.TXT"), b"hello").unwrap();
    let plain = dir.path().join("plain.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-o"])
        .arg(&plain)
        .arg(&tree));
    let p = plain.to_str().unwrap();
    let err = fail(&[
        "iso",
        "remaster",
        p,
        "--append",
        "a=1",
        "--patch",
        "/dev/null",
    ]);
    assert!(err.contains("no boot configuration found"), "{err}");

    let debian = fixture("debian");
    let d = debian.to_str().unwrap();
    let err = fail(&[
        "iso",
        "remaster",
        d,
        "--append",
        "a=1\ninit=/bin/sh",
        "--patch",
        "/dev/null",
    ]);
    assert!(err.contains("control character"), "{err}");

    // Materialising over the input would destroy it: refused, input untouched.
    let copy = dir.path().join("copy.iso");
    std::fs::copy(&debian, &copy).unwrap();
    let c = copy.to_str().unwrap();
    let err = fail(&["iso", "remaster", c, "--append", "a=1", "--output", c]);
    assert!(err.contains("is the input"), "{err}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&debian).unwrap()
    );
}

/// A deterministic xorshift generator: reproducible hostile inputs without a fuzzing crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn iso_hostile_images_never_panic() {
    if !tools(&["xorriso", "mcopy"]) {
        return;
    }
    let bytes = std::fs::read(fixture("fedora")).unwrap();
    // Mutate the metadata area (descriptors, path tables, directories, catalog, FAT).
    let meta_end = 200 * 2048;
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let mut failures = 0;
    for _ in 0..300 {
        let mut img = bytes.clone();
        for _ in 0..1 + rng.next() % 16 {
            let at = 16 * 2048 + (rng.next() as usize % (meta_end - 16 * 2048));
            img[at] = rng.next() as u8;
        }
        let src: &[u8] = &img;
        let _ = ironcast::iso::inspect_source(&src, "mutant");
        if ironcast::iso::remaster_source(&src, "m=1").is_err() {
            failures += 1;
        }
    }
    // Most single-byte mutations land in file data and still remaster; some must be refused.
    assert!(
        failures < 300,
        "every mutant was refused: the reader is too strict"
    );

    // A directory that points back at the root: refused as a loop, not walked forever.
    let iso = ironcast::iso::inspect_source(&bytes, "fedora").unwrap();
    assert!(iso.rock_ridge);
    let mut looped = bytes.clone();
    let root_extent =
        u32::from_le_bytes(looped[16 * 2048 + 158..16 * 2048 + 162].try_into().unwrap());
    // The first child record of the root after "." and ".." that is a directory.
    let root = root_extent as usize * 2048;
    let mut pos = root;
    let mut patched = false;
    while looped[pos] != 0 {
        let len = looped[pos] as usize;
        let name_len = looped[pos + 32] as usize;
        if looped[pos + 25] & 2 != 0 && !(name_len == 1 && looped[pos + 33] <= 1) {
            looped[pos + 2..pos + 6].copy_from_slice(&root_extent.to_le_bytes());
            patched = true;
            break;
        }
        pos += len;
    }
    assert!(patched);
    let err = ironcast::iso::inspect_source(&looped, "looped").unwrap_err();
    assert!(err.to_string().contains("loop"), "{err}");

    // Absurd sizes and truncation.
    let mut huge = bytes.clone();
    huge[16 * 2048 + 166..16 * 2048 + 170].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(ironcast::iso::inspect_source(&huge, "huge").is_err());
    for cut in [0usize, 1000, 16 * 2048 + 100, 40 * 2048, bytes.len() / 2] {
        let _ = ironcast::iso::remaster_source(&&bytes[..cut], "m=1");
    }
}

#[test]
fn iso_remaster_port_stores_and_discards() {
    use deploy_drivers::ports::{LeasedImage, PortErrorKind, Remaster};
    if !tools(&["xorriso", "mcopy"]) {
        return;
    }
    let base = fixture("fedora");
    let dir = tempfile::tempdir().unwrap();
    let port = ironcast::iso::FileRemaster::new(dir.path().join("remaster"));
    let leased = LeasedImage {
        lease: "l1".into(),
        digest: "sha256:x".into(),
        path: base.clone(),
        size: std::fs::metadata(&base).unwrap().len(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let art = port.remaster(&leased, ARGS, "node-1").await.unwrap();
        assert_eq!(art.base, base);
        let path = art.patch_set.clone().unwrap();
        assert_eq!(path, dir.path().join("remaster/node-1.json"));
        let set = ironcast::overlay::PatchSet::load(&path).unwrap();
        assert_eq!(set.len, art.len);
        // Reading the overlay gives the edited grub.cfg bytes somewhere.
        let f = std::fs::File::open(&base).unwrap();
        let mut buf = vec![0u8; set.len as usize];
        set.read_at(&f, 0, &mut buf).unwrap();
        assert!(count(&String::from_utf8_lossy(&buf)) >= 5);

        let bad = port.remaster(&leased, "a\nb", "node-2").await.unwrap_err();
        assert_eq!(bad.kind, PortErrorKind::InvalidInput);
        let bad = port.remaster(&leased, "a=1", "../evil").await.unwrap_err();
        assert_eq!(bad.kind, PortErrorKind::InvalidInput);

        port.discard("node-1").await.unwrap();
        assert!(!path.exists());
        port.discard("node-1").await.unwrap();
    });
}

// ---- Boot proofs: a real Debian kernel and a busybox initramfs that prints /proc/cmdline. ----

const BOOT_ARGS: &str = "ironcast.marker=boot42 ironcast.q=a;b";

/// Builds (once) the bootable fixture and remasters it into `dir`.
fn bootable(dir: &Path) -> Option<PathBuf> {
    if !tools(&["qemu-system-x86_64", "apt-get"]) {
        return None;
    }
    let base = common::fixtures::bootable_iso()?;
    let out = dir.join("boot.iso");
    ironcast(&[
        "iso",
        "remaster",
        base.to_str().unwrap(),
        "--append",
        BOOT_ARGS,
        "--output",
        out.to_str().unwrap(),
    ]);
    Some(out)
}

enum Firmware {
    SeaBiosCd,
    OvmfCd,
    OvmfDisk,
}

/// Boots `iso` under TCG and returns the kernel command line the initramfs printed.
fn boot(dir: &Path, iso: &Path, fw: Firmware) -> String {
    let log = dir.join("serial.log");
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "512",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
    ])
    .arg("-serial")
    .arg(format!("file:{}", log.display()));
    if !matches!(fw, Firmware::SeaBiosCd) {
        let code = Path::new("/usr/share/OVMF/OVMF_CODE.fd");
        assert!(code.exists() || !common::in_ci(), "OVMF missing (apt ovmf)");
        let vars = dir.join("vars.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS.fd", &vars).unwrap();
        cmd.arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,readonly=on,file={}",
                code.display()
            ))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    match fw {
        Firmware::SeaBiosCd | Firmware::OvmfCd => {
            cmd.arg("-cdrom").arg(iso).args(["-boot", "d"]);
        }
        Firmware::OvmfDisk => {
            cmd.arg("-drive").arg(format!(
                "file={},format=raw,if=ide,media=disk,snapshot=on",
                iso.display()
            ));
        }
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    text.lines()
        .find_map(|l| l.split("IRONCAST-CMDLINE: ").nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| {
            panic!(
                "no command line on the serial console; log tail: {}",
                tail(&text)
            )
        })
}

fn tail(s: &str) -> &str {
    let n = s.len().saturating_sub(2000);
    let mut i = n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn assert_cmdline(cmdline: &str, src: &str) {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    assert!(
        words.contains(&"ironcast.marker=boot42"),
        "marker missing: {cmdline}"
    );
    assert!(
        words.contains(&"ironcast.q=a;b"),
        "quoted arg mangled: {cmdline}"
    );
    assert!(
        words.contains(&src),
        "booted through the wrong config ({src} expected): {cmdline}"
    );
}

/// Boots the remastered fixture and checks the printed command line, and that
/// `iso::boot_cmdline` (what the simulated BMC uses) predicts the same arguments.
fn boot_and_check(fw: Firmware, via: ironcast::iso::BootPath, src: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some(iso) = bootable(dir.path()) else {
        return;
    };
    let printed = boot(dir.path(), &iso, fw);
    assert_cmdline(&printed, src);
    let predicted = ironcast::iso::boot_cmdline(&iso, via).unwrap().unwrap();
    for word in predicted.args.split_whitespace() {
        let word = word.trim_matches('\'');
        if !word.starts_with("initrd=") {
            assert!(
                printed.split_whitespace().any(|w| w == word),
                "{word} predicted, not booted: {printed}"
            );
        }
    }
}

#[test]
fn qemu_boot_seabios_isolinux() {
    boot_and_check(
        Firmware::SeaBiosCd,
        ironcast::iso::BootPath::BiosCd,
        "src=isolinux",
    );
}

#[test]
fn qemu_boot_ovmf_cd_grub() {
    boot_and_check(
        Firmware::OvmfCd,
        ironcast::iso::BootPath::UefiCd,
        "src=grub-iso",
    );
}

#[test]
fn qemu_boot_ovmf_disk_efi_image_grub() {
    boot_and_check(
        Firmware::OvmfDisk,
        ironcast::iso::BootPath::UefiDisk,
        "src=efi-img",
    );
}

#[test]
fn iso_inspect_json_agrees_with_isoinfo_and_xorriso() {
    if !tools(&["xorriso", "isoinfo", "mcopy", "grub-mkrescue"]) {
        return;
    }
    let table = [
        ("debian", "debian", 5),
        ("fedora", "fedora-rhel", 8),
        ("fedora-esp", "fedora-rhel", 8),
        ("ubuntu", "ubuntu", 3),
        ("suse", "suse", 4),
        ("alpine", "alpine", 2),
        ("mkrescue", "unknown", 1),
    ];
    for (name, family, entries) in table {
        let iso = fixture(name);
        let json: serde_json::Value = serde_json::from_slice(&ironcast(&[
            "iso",
            "inspect",
            "-f",
            "json",
            iso.to_str().unwrap(),
        ]))
        .unwrap();
        assert_eq!(json["family"], family, "{name}");
        assert_eq!(json["entries"].as_array().unwrap().len(), entries, "{name}");
        assert_eq!(
            json["warnings"].as_array().unwrap().len(),
            0,
            "{name}: {}",
            json["warnings"]
        );
        let info =
            String::from_utf8(run(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso))).unwrap();
        let volid = info
            .lines()
            .find_map(|l| l.strip_prefix("Volume id: "))
            .unwrap();
        assert_eq!(json["volume_id"], volid.trim(), "{name}");
        let size = info
            .lines()
            .find_map(|l| l.strip_prefix("Volume size is: "))
            .unwrap();
        assert_eq!(
            json["volume_bytes"].as_u64().unwrap(),
            size.trim().parse::<u64>().unwrap() * 2048,
            "{name}"
        );
        // El Torito: the same platforms and load sectors as xorriso reports.
        let report = String::from_utf8(run(Command::new("xorriso")
            .arg("-indev")
            .arg(&iso)
            .args(["-report_el_torito", "plain"])))
        .unwrap();
        let theirs: Vec<(String, u64)> = report
            .lines()
            .filter_map(|l| l.strip_prefix("El Torito boot img :"))
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                // "  1  BIOS  y   none  0x0000  0x00      4        39"
                let platform = w[1].to_ascii_lowercase().replace("uefi", "efi");
                (platform, w[w.len() - 1].parse().unwrap())
            })
            .collect();
        let ours: Vec<(String, u64)> = json["el_torito"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["platform"].as_str().unwrap().to_string(),
                    b["load_lba"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
}

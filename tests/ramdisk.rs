//! The agent ramdisk (`ironcast ramdisk build`) and the ISO writer against real peers: our ISOs
//! read back by xorriso, isoinfo and pycdlib, remastered by our own engine, the initramfs
//! unpacked by cpio, and the `qemu_boot_*` proofs: the agent ISO boots in SeaBIOS and OVMF to
//! the agent, the ISO `serve` builds from `[agent] kernel` brings a VM's first heartbeat with
//! its inventory, and the whole-disk fixture image boots in both and reads its config drive.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fixtures::{agent_ramdisk, disk_image, repo};
use common::qemu::{self, Firmware};
use ironcast::iso::IsoWriter;

/// Runs a command, panicking with its output when it fails; returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ironcast() -> Command {
    Command::new(common::ironcast_bin())
}

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| common::tool(n).is_some())
}

/// pycdlib's view (fixtures/iso/readback.py): Rock Ridge path → sha256, and *.cfg texts.
fn pycdlib(iso: &Path) -> serde_json::Value {
    let out = run(Command::new("python3")
        .arg(repo().join("fixtures/iso/readback.py"))
        .arg(iso));
    serde_json::from_str(&out).unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

const META: &str = r#"{"uuid": "0b5f4c1e-7d1a-4c1e-9a53-3f3d2c1b0a99", "hostname": "n1"}"#;

fn config_drive(dir: &Path) -> std::path::PathBuf {
    let mut w = IsoWriter::new("config-2").unwrap();
    w.add_file("/openstack/latest/meta_data.json", META)
        .unwrap()
        .add_file(
            "/openstack/latest/user_data",
            "#cloud-config\nhostname: n1\n",
        )
        .unwrap()
        .add_file("/openstack/latest/network_data.json", r#"{"links": []}"#)
        .unwrap();
    let path = dir.join("config-2.iso");
    w.write(&path).unwrap();
    path
}

#[test]
fn iso_writer_config_drive_reads_back_in_xorriso_isoinfo_and_pycdlib() {
    if !tools(&["xorriso", "isoinfo", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let iso = config_drive(dir.path());
    let info = run(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso));
    assert!(info.contains("Volume id: config-2"), "{info}");
    assert!(info.contains("Rock Ridge signatures"), "{info}");
    let listing = run(Command::new("isoinfo").args(["-R", "-f", "-i"]).arg(&iso));
    for want in [
        "/openstack/latest/meta_data.json",
        "/openstack/latest/user_data",
        "/openstack/latest/network_data.json",
    ] {
        assert!(
            listing.lines().any(|l| l == want),
            "{want} not in:\n{listing}"
        );
    }
    let out = dir.path().join("meta.json");
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/openstack/latest/meta_data.json"])
        .arg(&out));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), META);
    let rb = pycdlib(&iso);
    assert_eq!(
        rb["rr"]["/openstack/latest/meta_data.json"],
        sha256(META.as_bytes())
    );
    assert_eq!(rb["rr"].as_object().unwrap().len(), 3);
}

#[test]
fn ramdisk_iso_reads_back_and_our_engine_remasters_all_three_configs() {
    if !tools(&["xorriso", "isoinfo", "python3", "mtype"]) {
        return;
    }
    let Some((iso, _, _)) = agent_ramdisk() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = run(Command::new("xorriso")
        .arg("-indev")
        .arg(&iso)
        .args(["-report_el_torito", "plain"]));
    let entries: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("El Torito boot img"))
        .collect();
    assert!(
        entries.iter().any(|l| l.contains("BIOS")) && entries.iter().any(|l| l.contains("UEFI")),
        "{report}"
    );
    let info = run(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso));
    assert!(info.contains("Volume id: IRONCAST_AGENT"), "{info}");

    let inspect: serde_json::Value = serde_json::from_str(&run(ironcast()
        .args(["iso", "inspect", "--format", "json"])
        .arg(&iso)))
    .unwrap();
    let configs = inspect["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 3, "{inspect:#}");

    let args = "ironcast.url=http://10.0.2.2:6385 ironcast.node=n-42";
    let out = dir.path().join("node.iso");
    run(ironcast()
        .args(["iso", "remaster"])
        .arg(&iso)
        .args(["--append", args, "--output"])
        .arg(&out));
    let rb = pycdlib(&out);
    for cfg in ["/isolinux/isolinux.cfg", "/boot/grub/grub.cfg"] {
        let text = rb["rr_texts"][cfg].as_str().unwrap_or_default();
        assert!(text.contains(args), "{cfg} lacks the args:\n{text}");
    }
    let efi = dir.path().join("efi.img");
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&out)
        .args(["-extract", "/boot/grub/efi.img"])
        .arg(&efi));
    let grub = run(Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&efi)
        .arg("::/EFI/BOOT/grub.cfg"));
    assert!(
        grub.contains(args),
        "EFI image grub.cfg lacks the args:\n{grub}"
    );
    // The boot loader and the kernel are intact after remastering.
    for file in [
        "/isolinux/isolinux.bin",
        "/boot/vmlinuz",
        "/boot/initramfs.gz",
    ] {
        assert_eq!(
            rb["rr"][file],
            pycdlib(&iso)["rr"][file],
            "{file} changed by the remaster"
        );
    }
}

#[test]
fn ramdisk_initramfs_unpacks_with_cpio_and_holds_what_the_agent_needs() {
    if !tools(&["cpio", "gzip"]) {
        return;
    }
    let Some((_, initramfs, vmlinuz)) = agent_ramdisk() else {
        return;
    };
    let kernel = common::fixtures::kernel().unwrap();
    assert_eq!(
        std::fs::read(&vmlinuz).unwrap(),
        std::fs::read(&kernel).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' | cpio -idm --quiet --no-absolute-filenames",
            initramfs.display()
        ))
        .current_dir(dir.path()));
    let root = dir.path();
    for f in [
        "init",
        "bin/busybox",
        "bin/ironcast",
        "lib64/ld-linux-x86-64.so.2",
    ] {
        assert!(root.join(f).is_file(), "{f} missing");
    }
    assert!(std::fs::read_to_string(root.join("init"))
        .unwrap()
        .contains("/bin/ironcast agent"));
    // Modules in dependency order: virtio_net after virtio_ring, each file present.
    let order = std::fs::read_to_string(root.join("etc/ironcast/modules")).unwrap();
    let names: Vec<&str> = order.lines().collect();
    let at = |n: &str| names.iter().position(|m| *m == n);
    assert!(
        at("virtio_ring").unwrap() < at("virtio_net").unwrap(),
        "{order}"
    );
    assert!(at("scsi_mod").unwrap() < at("sd_mod").unwrap(), "{order}");
    for n in &names {
        let ko = std::fs::read(root.join(format!("lib/modules/{n}.ko"))).unwrap();
        assert!(ko.starts_with(b"\x7fELF"), "{n}.ko is not an ELF object");
    }
    // The agent runs: its libraries resolve inside the ramdisk's own tree.
    let help = run(Command::new(root.join("lib64/ld-linux-x86-64.so.2"))
        .arg("--library-path")
        .arg(root.join("lib/x86_64-linux-gnu"))
        .arg(root.join("bin/ironcast"))
        .arg("--version"));
    assert!(help.starts_with("ironcast"), "{help}");
}

#[test]
fn ramdisk_build_refuses_bad_inputs_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let fail = |args: &[&str]| {
        let out = ironcast().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let iso = dir.path().join("a.iso");
    let iso = iso.to_str().unwrap();
    let err = fail(&[
        "ramdisk",
        "build",
        "--kernel",
        "/nonexistent/vmlinuz",
        "--output",
        iso,
    ]);
    assert!(err.contains("/nonexistent/vmlinuz"), "{err}");
    let kernel = dir.path().join("vmlinuz-9.9");
    std::fs::write(&kernel, b"not a kernel").unwrap();
    let k = kernel.to_str().unwrap();
    let err = fail(&["ramdisk", "build", "--kernel", k, "--output", iso]);
    assert!(err.contains("--modules"), "{err}");
    std::fs::create_dir_all(dir.path().join("mods")).unwrap();
    let err = fail(&[
        "ramdisk",
        "build",
        "--kernel",
        k,
        "--output",
        iso,
        "--modules",
        dir.path().join("mods").to_str().unwrap(),
        "--busybox",
        "/bin/sh",
    ]);
    assert!(
        err.contains("not statically linked") || err.contains("busybox"),
        "{err}"
    );
    let err = fail(&["ramdisk", "build", "--kernel", k]);
    assert!(
        err.contains("--output") || err.contains("--initramfs-output"),
        "{err}"
    );
    assert!(!Path::new(iso).exists(), "nothing written on failure");
}

// ---- Boot proofs under TCG. ----

const URL: &str = "http://10.0.2.2:6385";

fn boot_agent_iso(fw: Firmware) {
    if !tools(&["qemu-system-x86_64"]) {
        return;
    }
    let Some((iso, _, _)) = agent_ramdisk() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node_iso = dir.path().join("node.iso");
    let args = format!("ironcast.url={URL} ironcast.node=n-7 ironcast.token=secret-token-1");
    run(ironcast()
        .args(["iso", "remaster"])
        .arg(&iso)
        .args(["--append", &args, "--output"])
        .arg(&node_iso));
    let disk = dir.path().join("blank.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let mut vm = qemu::start(
        dir.path(),
        fw,
        &[
            "-cdrom".into(),
            node_iso.display().to_string(),
            "-boot".into(),
            "d".into(),
            "-drive".into(),
            format!("file={},format=raw,if=virtio", disk.display()),
            "-netdev".into(),
            "user,id=n0".into(),
            "-device".into(),
            "virtio-net-pci,netdev=n0".into(),
        ],
    );
    let console = vm
        .wait_for(
            &[
                "IRONCAST-RAMDISK: eth0 bound 10.0.2.15",
                &format!("IRONCAST-RAMDISK: agent argument ironcast.url={URL}"),
                "IRONCAST-RAMDISK: agent argument ironcast.node=n-7",
                ironcast::ramdisk::init::AGENT_STARTING,
                // The agent's own first log line names the conductor it was given.
                "agent starting",
            ],
            Duration::from_secs(240),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!console.contains("secret-token-1"), "the token was printed");
    let agent_line = console
        .lines()
        .find(|l| l.contains("agent starting"))
        .unwrap();
    assert!(
        agent_line.contains(URL) && agent_line.contains("n-7"),
        "{agent_line}"
    );
}

#[test]
fn qemu_boot_agent_iso_seabios() {
    boot_agent_iso(Firmware::Bios);
}

#[test]
fn qemu_boot_agent_iso_ovmf() {
    boot_agent_iso(Firmware::Uefi);
}

const DISK_MARKER: &str = "whole-disk-7c1d";

/// Boots a copy of the fixture disk with a config drive partition at its end, as the agent
/// writes it, and checks the disk's marker and the config drive's uuid on the console.
fn boot_disk_image(fw: Firmware, qcow2: bool) {
    if !tools(&["qemu-system-x86_64", "sgdisk", "qemu-img"]) {
        return;
    }
    let Some((raw, qcow)) = disk_image(DISK_MARKER) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.raw");
    if qcow2 {
        run(Command::new("qemu-img")
            .args(["convert", "-f", "qcow2", "-O", "raw"])
            .arg(&qcow)
            .arg(&disk));
    } else {
        std::fs::copy(&raw, &disk).unwrap();
    }
    // The config drive goes in the free space at the end, as partition 2.
    let cd = std::fs::read(config_drive(dir.path())).unwrap();
    let len = std::fs::metadata(&disk).unwrap().len();
    let sectors = (cd.len() as u64).div_ceil(512);
    let start = ((len / 512 - 34 - sectors) / 2048) * 2048;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.seek(SeekFrom::Start(start * 512)).unwrap();
        f.write_all(&cd).unwrap();
    }
    run(Command::new("sgdisk")
        .arg(format!("--new=2:{start}:{}", start + sectors - 1))
        .arg("--change-name=2:config-2")
        .arg(&disk));
    let mut vm = qemu::start(
        dir.path(),
        fw,
        &[
            "-drive".into(),
            format!("file={},format=raw,if=virtio", disk.display()),
        ],
    );
    vm.wait_for(
        &[
            &format!("IRONCAST-DISK-BOOTED {DISK_MARKER}"),
            "IRONCAST-CONFIGDRIVE-UUID 0b5f4c1e-7d1a-4c1e-9a53-3f3d2c1b0a99",
        ],
        Duration::from_secs(180),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        vm.wait_exit(Duration::from_secs(60)),
        "the disk's init did not power off"
    );
}

#[test]
fn qemu_boot_disk_image_seabios() {
    boot_disk_image(Firmware::Bios, false);
}

#[test]
fn qemu_boot_disk_image_ovmf_from_qcow2() {
    boot_disk_image(Firmware::Uefi, true);
}

#[test]
fn disk_image_leaves_room_for_the_config_drive_and_qcow2_matches_raw() {
    let Some((raw, qcow)) = disk_image(DISK_MARKER) else {
        return;
    };
    let table = run(Command::new("sgdisk").arg("-p").arg(&raw));
    assert!(table.contains("EF00"), "{table}");
    let free: u64 = table
        .lines()
        .find_map(|l| l.strip_prefix("Total free space is "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(free * 512 >= 16 << 20, "only {free} free sectors:\n{table}");
    let info: serde_json::Value = serde_json::from_str(&run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&qcow)))
    .unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], std::fs::metadata(&raw).unwrap().len());
    let back = tempfile::tempdir().unwrap();
    let out = back.path().join("back.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&qcow)
        .arg(&out));
    assert_eq!(
        sha256(&std::fs::read(&out).unwrap()),
        sha256(&std::fs::read(&raw).unwrap())
    );
}

/// `serve` with `[agent] kernel` builds the agent ISO; booted in a VM with the args of an
/// agent boot begun on the conductor, the agent's first heartbeat arrives (from 10.0.2.2's
/// guest) with an inventory naming the VM's blank disk.
fn boot_agent_to_heartbeat(fw: Firmware) {
    use deploy_drivers::Agent;
    if !tools(&["qemu-system-x86_64", "grub-mkimage", "strip"]) {
        return;
    }
    let Some(kernel) = common::fixtures::kernel() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = [
        (
            "IRONCAST_CONDUCTOR__STATE_DIR",
            dir.path().join("state").display().to_string(),
        ),
        ("IRONCAST_API__BIND", format!("127.0.0.1:{port}")),
        (
            "IRONCAST_AGENT__CONDUCTOR_URL",
            format!("http://10.0.2.2:{port}"),
        ),
        ("IRONCAST_AGENT__KERNEL", kernel.display().to_string()),
        (
            "IRONCAST_AGENT__AGENT_BINARY",
            common::ironcast_bin().display().to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = ironcast::config::Config::load(None, env).unwrap();
        let running = ironcast::cli::serve::launch(&config).await.unwrap();
        let hub = running.agent_hub();
        let iso = hub.ramdisk().await.unwrap().path;
        assert!(
            iso.starts_with(dir.path().join("state")),
            "{}",
            iso.display()
        );
        let args = hub.begin("vm-node").await.unwrap();
        let node_iso = dir.path().join("node.iso");
        let (set, _) = ironcast::iso::remaster(&iso, &args).unwrap();
        set.materialize(&iso, &node_iso).unwrap();
        let disk = dir.path().join("blank.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(3 << 30)
            .unwrap();
        let vm = qemu::start(
            dir.path(),
            fw,
            &[
                "-cdrom".into(),
                node_iso.display().to_string(),
                "-boot".into(),
                "d".into(),
                "-drive".into(),
                format!("file={},format=raw,if=virtio", disk.display()),
                "-netdev".into(),
                "user,id=n0".into(),
                "-device".into(),
                "virtio-net-pci,netdev=n0".into(),
            ],
        );
        let inventory = hub
            .wait_ready("vm-node", Duration::from_secs(300))
            .await
            .unwrap_or_else(|e| panic!("{e}\nconsole:\n{}", vm.console()));
        let console = vm.console();
        assert!(console.contains("agent starting"), "{console}");
        assert!(
            console.contains(&format!("http://10.0.2.2:{port}")),
            "{console}"
        );
        assert!(
            inventory.disks.iter().any(|d| d.size == 3 << 30),
            "the VM's 3 GiB disk is not in the inventory: {inventory:?}"
        );
        hub.end("vm-node").await;
        drop(vm);
        running.stop().await;
    });
}

#[test]
fn qemu_boot_agent_iso_heartbeat_seabios() {
    boot_agent_to_heartbeat(Firmware::Bios);
}

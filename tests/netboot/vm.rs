//! QEMU TCG guests PXE-boot in the lab network: the site's dnsmasq hands out the address,
//! ironcast's ProxyDHCP tells the firmware what to boot, its TFTP server sends iPXE and the
//! kernel, its image server the per-MAC iPXE script. The marker in the script's kernel args
//! must show on the guest's /proc/cmdline.
//!
//! BIOS: SeaBIOS runs the e1000's iPXE ROM (user class iPXE), which is handed the script URL.
//! UEFI: OVMF's own PXE (virtio-net, no option ROM) is chain-loaded into ipxe.efi over TFTP,
//! which asks again as iPXE and gets the script.

use std::process::Command;
use std::time::Duration;

use ironcast::netboot::{DeployBoot, NetbootDir};

use super::lab::{self, Lab};
use crate::common::qemu::{self, Firmware};
use crate::common::{self, fixtures, serve};

fn boot(fw: Firmware, tag: &str, mac: &str) {
    if !lab::can_make_namespaces() {
        return;
    }
    for t in ["qemu-system-x86_64", "dnsmasq", "xorriso"] {
        if common::tool(t).is_none() {
            return;
        }
    }
    let Some(iso) = fixtures::bootable_iso() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tftp = dir.path().join("tftpboot");
    std::fs::create_dir_all(&tftp).unwrap();
    // The live ISO's kernel and initrd, served over TFTP.
    let out = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .arg("-extract")
        .arg("/boot/vmlinuz")
        .arg(tftp.join("vmlinuz"))
        .arg("-extract")
        .arg("/boot/initrd.gz")
        .arg(tftp.join("initrd.gz"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut lab = Lab::new(tag);
    lab.start_site_dhcp(dir.path());
    let ip = lab::SERVER_IP;
    let marker = format!("ironcast.netboot-marker={}", uuid::Uuid::new_v4().simple());
    NetbootDir::new(&tftp)
        .write_deploy(
            "vm",
            &[mac.to_string()],
            &DeployBoot {
                kernel: format!("tftp://{ip}/vmlinuz"),
                initrd: format!("tftp://{ip}/initrd.gz"),
                args: format!("console=ttyS0 {marker}"),
            },
        )
        .unwrap();
    let tftp_s = tftp.display().to_string();
    let _server = serve::spawn_serve_in(
        Some(&lab.boot),
        dir.path(),
        &[
            ("IRONCAST_NETBOOT__DHCP", "proxy"),
            ("IRONCAST_NETBOOT__INTERFACE", lab::BRIDGE),
            ("IRONCAST_NETBOOT__ADDRESS", ip),
            ("IRONCAST_NETBOOT__TFTP_ROOT", &tftp_s),
            ("IRONCAST_IMAGESERVER__BIND", &format!("{ip}:8081")),
            ("RUST_LOG", "info,ironcast::netboot=debug"),
        ],
        |_| {},
    );
    let nic = match fw {
        Firmware::Bios => {
            format!("e1000,netdev=n0,mac={mac},romfile=/usr/lib/ipxe/qemu/efi-e1000.rom")
        }
        Firmware::Uefi => format!("virtio-net-pci,netdev=n0,mac={mac},romfile="),
    };
    let args: Vec<String> = [
        "-netdev",
        &format!("tap,id=n0,ifname={},script=no,downscript=no", lab::TAP),
        "-device",
        &nic,
        "-boot",
        "n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut vm = qemu::start_in(Some(&lab.boot), dir.path(), fw, &args);
    let got = vm.wait_for(&["IRONCAST-CMDLINE:", &marker], Duration::from_secs(420));
    let logs = || {
        format!(
            "serve: {}\nsite dhcp: {}",
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
                .map(|e| fixtures::read_lossy(&e.path()))
                .collect::<String>(),
            fixtures::read_lossy(&dir.path().join("site-dhcp.log"))
        )
    };
    if let Err(console) = got {
        panic!(
            "the guest did not boot the script's kernel:\n{console}\n{}",
            logs()
        );
    }
    let console = vm.console();
    let line = console
        .lines()
        .find(|l| l.contains("IRONCAST-CMDLINE:"))
        .unwrap();
    assert!(line.contains(&marker), "{line}");
    // The address came from the site's DHCP server, not from ironcast.
    assert!(
        fixtures::read_lossy(&dir.path().join("site-dhcp.log")).contains(&mac.to_lowercase()),
        "dnsmasq never saw the guest: {}",
        logs()
    );
}

#[test]
fn qemu_boot_bios_ipxe_rom_gets_proxydhcp_script_and_kernel_args() {
    boot(Firmware::Bios, "bios", "52:54:00:77:00:01");
}

#[test]
fn qemu_boot_uefi_pxe_chains_ipxe_efi_over_tftp_and_kernel_args() {
    boot(Firmware::Uefi, "uefi", "52:54:00:77:00:02");
}

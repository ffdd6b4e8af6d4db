//! The `iso-install` deploy on a real VM: sushy-tools' libvirt driver in front of a QEMU TCG
//! domain with a blank SATA disk and a user-net NIC, the fixture installer ISO
//! (fixtures/install/make-installer-iso.sh: Debian's layout, a busybox "installer") and an
//! unmodified python-ironicclient. The conductor identifies the ISO as debian-installer,
//! renders the user's automation file (its `{{ hostname }}`, call-back URL and token), publishes
//! it, remasters the ISO with Debian's preseed args and an unattended menu (the fixture's menu
//! otherwise waits forever), and boots it. The installer fetches the file from 10.0.2.2, writes
//! a bootable disk carrying the file's marker, and finishes by calling back or by powering off;
//! the VM then boots its disk, which prints the marker. A third run never finishes, and the
//! watchdog fails the deploy naming what it waited for. The call-back run goes on in
//! [`crate::capture_vm`], which captures the installed disk.

use tempfile::TempDir;

use crate::common::fixtures::{agent_ramdisk, installer_iso, read_lossy};
use crate::common::libvirt::{wait_console, Domain};
use crate::common::serve::{serve_for_guests, Server};
use crate::common::sushy::Sushy;
use crate::support::{sha256, Client};
use crate::vm::{define, sushy_libvirt};

/// The installed VM's disk: the smallest the fixture's system needs, so that what a capture
/// reads and a second VM writes stays small.
pub const DISK_BYTES: u64 = 1 << 30;
/// The root device hint of the installed node (its only disk; below Ironic's 4 GiB default).
pub const ROOT_DEVICE: &str = r#"root_device={"name": "/dev/sda"}"#;

/// How the fixture installer ends (its automation file's `finish` line).
#[derive(Clone, Copy, PartialEq)]
pub enum Finish {
    CallBack,
    PowerOff,
    Hang,
}

/// A node the fixture installer ran on, and what a test needs to go on with it.
pub struct Installed {
    pub name: &'static str,
    pub bm: Client,
    pub server: Server,
    pub domain: Domain,
    _sushy: Sushy,
    pub dir: TempDir,
}

/// Installs with the fixture installer ending as `finish` on a BIOS VM, checks how the deploy
/// ended, and returns the node (None where a tool is missing on a developer machine). The
/// conductor has our agent too, to clean or capture the node afterwards.
pub fn install(finish: Finish) -> Option<Installed> {
    for tool in ["virsh", "qemu-system-x86_64"] {
        crate::common::tool(tool)?;
    }
    let iso = installer_iso()?;
    let (agent_iso, _, _) = agent_ramdisk()?;
    let dir = tempfile::tempdir().unwrap();
    let nic = "<interface type='user'><mac address='52:54:00:1c:0d:27'/><model type='virtio'/></interface>";
    let domain = define(dir.path(), "bios", DISK_BYTES, nic);
    let sushy = sushy_libvirt(dir.path(), &domain)?;
    let server = serve_for_guests(
        dir.path(),
        &agent_iso,
        &[iso.parent().unwrap()],
        &[
            ("IRONCAST_CONDUCTOR__AUTOMATED_CLEAN", "false"),
            ("IRONCAST_ISO_INSTALL__POLL_INTERVAL_S", "1"),
            ("IRONCAST_ISO_INSTALL__MENU_TIMEOUT_S", "1"),
        ],
    );
    // What the guest is told: the image server's port at 10.0.2.2.
    let images_port = server
        .images_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let bm = Client::new(&server)?;
    let name = match finish {
        Finish::CallBack => "inst-callback",
        Finish::PowerOff => "inst-poweroff",
        Finish::Hang => "inst-hang",
    };
    bm.enrol_redfish_with(
        name,
        &sushy.base,
        &domain.uuid,
        "iso-install",
        &[
            "--property",
            "capabilities=boot_mode:bios",
            "--property",
            ROOT_DEVICE,
        ],
    );
    let finish_line = match finish {
        Finish::CallBack => "callback",
        Finish::PowerOff => "poweroff",
        Finish::Hang => "hang",
    };
    let automation = format!(
        "#ironcast-test marker marker-of-{{{{ hostname }}}}\n\
         #ironcast-test finish {finish_line}\n\
         #ironcast-test callback {{{{ callback_url }}}} {{{{ callback_token }}}}\n"
    );
    let mut set = vec![
        "node".to_string(),
        "set".into(),
        name.into(),
        "--instance-info".into(),
        format!("install_iso=file://{}", iso.display()),
        "--instance-info".into(),
        format!("install_iso_checksum={}", sha256(&iso)),
        "--instance-info".into(),
        format!("automation_file={automation}"),
    ];
    if finish == Finish::Hang {
        set.extend(["--instance-info".into(), "install_timeout=40".into()]);
    }
    bm.ok(&set.iter().map(String::as_str).collect::<Vec<_>>());
    bm.ok(&["node", "manage", name, "--wait", "120"]);
    bm.ok(&["node", "provide", name, "--wait", "120"]);

    let deploy = crate::common::clients::baremetal(
        &bm.bin,
        &bm.url,
        &["node", "deploy", name, "--wait", "900"],
    );
    let node = bm.show(name);
    let history = bm.ok(&[
        "node", "history", "list", name, "-f", "value", "-c", "Event",
    ]);
    let console = read_lossy(&domain.serial);
    assert!(
        history.contains("identify: debian 12.2.0 (debian), installer debian-installer"),
        "{history}"
    );
    assert!(console.contains("IRONCAST-INSTALLER-FETCHED"), "{console}");
    let url_line = console
        .lines()
        .find_map(|l| l.strip_prefix("IRONCAST-INSTALLER-URL "))
        .expect("the installer printed its automation URL")
        .trim()
        .to_string();
    assert!(
        url_line.starts_with(&format!("http://10.0.2.2:{images_port}/"))
            && url_line.ends_with("/preseed.cfg"),
        "{url_line}"
    );
    if finish == Finish::Hang {
        assert!(
            !deploy.status.success(),
            "a hung install must fail the deploy"
        );
        assert_eq!(node["provision_state"], "deploy failed", "{node}");
        let error = node["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("watchdog") && error.contains("a call-back or the node powering off"),
            "{error}"
        );
        assert_eq!(node["power_state"], "power off", "{node}");
    } else {
        assert!(
            deploy.status.success(),
            "deploy failed: {}\n{node}\n{history}\n{console}",
            String::from_utf8_lossy(&deploy.stderr)
        );
        assert_eq!(node["provision_state"], "active", "{node}");
        // After a call-back the conductor resets the node at once, so the installer may not
        // get to print that it called back: history says it did.
        let done = format!("IRONCAST-INSTALLER-DONE {finish_line}");
        // The installed disk boots and prints the marker the automation file gave it.
        let note = format!("IRONCAST-NOTE marker-of-{name}");
        wait_console(
            &domain.serial,
            0,
            &[&done, "IRONCAST-DISK-BOOTED installed-from-iso", &note],
            "install then boot from disk",
        );
        assert!(history.contains("call-back : wait call-back"), "{history}");
        assert_eq!(
            history.contains("powered itself off"),
            finish == Finish::PowerOff,
            "{history}"
        );
        assert!(history.contains("disk, persistent, bios"), "{history}");
    }
    // Whatever the ending, the automation file's URL is revoked.
    let host_url = url_line.replace("10.0.2.2", "127.0.0.1");
    let status = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &host_url])
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "404",
        "{host_url} is still served"
    );
    Some(Installed {
        name,
        bm,
        server,
        domain,
        _sushy: sushy,
        dir,
    })
}

/// Undeploy of an installed node: powered off, available.
fn undeploy(installed: &Installed) {
    let (bm, name) = (&installed.bm, installed.name);
    bm.ok(&["node", "undeploy", name, "--wait", "300"]);
    assert_eq!(bm.show(name)["provision_state"], "available");
}

#[test]
fn qemu_boot_iso_install_power_off_through_sushy_libvirt() {
    if let Some(installed) = install(Finish::PowerOff) {
        undeploy(&installed);
    }
}

#[test]
fn qemu_boot_iso_install_watchdog_through_sushy_libvirt() {
    install(Finish::Hang);
}

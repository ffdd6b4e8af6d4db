//! The `ipxe` boot interface end to end: a redfish node (sushy-tools' libvirt driver in front
//! of a QEMU TCG domain whose NIC is on a bridge made by the test) with
//! `--boot-interface ipxe --deploy-interface ramdisk` and the live fixture ISO plus a marker
//! arg. No virtual media: the conductor writes the per-MAC iPXE script (`sanboot` of the
//! remastered ISO), sets a one-time `Pxe` boot through Redfish and powers on. The site's DHCP
//! server (dnsmasq, DHCP only, in its own network namespace on a veth into the bridge) gives
//! the address; ironcast's ProxyDHCP, TFTP and image server do the rest. The marker must show
//! on the guest's /proc/cmdline; undeploy removes the per-MAC configs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::fixtures::{bootable_iso, read_lossy};
use crate::common::serve::free_port;
use crate::common::{self, tool};
use crate::support::{serve_with_env, Client};
use crate::vm::{define, sushy_libvirt};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge in this namespace (libvirt attaches the domain to it) with this host's address,
/// and the site's DHCP server in a namespace of its own; removed on drop.
struct BootNet {
    bridge: String,
    site: String,
    dnsmasq: Child,
}

impl Drop for BootNet {
    fn drop(&mut self) {
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.site])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

impl BootNet {
    fn new(dir: &Path, subnet: u8) -> BootNet {
        let pid = std::process::id() % 100_000;
        let bridge = format!("icnb{pid}-{subnet}");
        let site = format!("icnbsite-{pid}-{subnet}");
        let veth = format!("icnv{pid}-{subnet}");
        // A run killed before its cleanup leaves its bridge with this subnet: two routes to it
        // would send the guest's answers astray.
        let links = Command::new("ip")
            .args(["-o", "addr", "show"])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&links.stdout).lines() {
            if line.contains(&format!(" 10.79.{subnet}.1/24 ")) {
                if let Some(stale) = line.split_whitespace().nth(1) {
                    let _ = Command::new("ip").args(["link", "del", stale]).status();
                }
            }
        }
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("10.79.{subnet}.1/24"),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        ip(&["netns", "add", &site]);
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "vsite",
        ]);
        ip(&["link", "set", "vsite", "netns", &site]);
        ip(&["link", "set", &veth, "master", &bridge, "up"]);
        ip(&[
            "-n",
            &site,
            "addr",
            "add",
            &format!("10.79.{subnet}.2/24"),
            "dev",
            "vsite",
        ]);
        ip(&["-n", &site, "link", "set", "vsite", "up"]);
        let dnsmasq = Command::new("ip")
            .args(["netns", "exec", &site])
            .arg(tool("dnsmasq").unwrap())
            .args([
                "--keep-in-foreground",
                "--port=0",
                "--conf-file=/dev/null",
                "--interface=vsite",
                "--bind-interfaces",
                &format!("--dhcp-range=10.79.{subnet}.100,10.79.{subnet}.150,255.255.255.0,1h"),
                "--log-dhcp",
                "--log-facility=-",
            ])
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.join("site.leases").display()
            ))
            .arg(format!("--pid-file={}", dir.join("site.pid").display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("site-dhcp.log")).unwrap())
            .spawn()
            .expect("start dnsmasq");
        BootNet {
            bridge,
            site,
            dnsmasq,
        }
    }
}

fn deploy_over_ipxe(mode: &str, subnet: u8) {
    for t in ["virsh", "qemu-system-x86_64", "dnsmasq", "ip"] {
        if tool(t).is_none() {
            return;
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            !common::in_ci(),
            "network boot tests need root under CI=true"
        );
        return;
    }
    let Some(iso) = bootable_iso() else { return };
    let dir = tempfile::tempdir().unwrap();
    let net = BootNet::new(dir.path(), subnet);
    let mac = format!("52:54:00:79:{subnet:02x}:01");
    let nic = match mode {
        // SeaBIOS runs the e1000's iPXE ROM.
        "bios" => "<model type='e1000'/><rom file='/usr/lib/ipxe/qemu/efi-e1000.rom'/>",
        // OVMF's own PXE (no option ROM) chain-loads ipxe.efi over TFTP.
        _ => "<model type='virtio'/><rom enabled='no'/>",
    };
    let extra = format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='{}'/>{nic}</interface>",
        net.bridge
    );
    let domain = define(dir.path(), mode, 64 << 20, &extra);
    let Some(sushy) = sushy_libvirt(dir.path(), &domain) else {
        return;
    };
    let address = format!("10.79.{subnet}.1");
    let images = format!("{address}:0");
    let server = serve_with_env(
        dir.path(),
        &[iso.parent().unwrap()],
        &[
            ("IRONCAST_NETBOOT__DHCP", "proxy"),
            ("IRONCAST_NETBOOT__INTERFACE", &net.bridge),
            ("IRONCAST_NETBOOT__ADDRESS", &address),
            ("IRONCAST_IMAGESERVER__BIND", &images),
            ("RUST_LOG", "info,ironcast::netboot=debug"),
        ],
    );
    let Some(bm) = Client::new(&server) else {
        return;
    };
    let name = format!("nb-{mode}");
    let marker = format!("ironcast.ipxe={mode}-{}", std::process::id());
    let capabilities = format!("capabilities=boot_mode:{mode}");
    bm.enrol_redfish(
        &name,
        &sushy.base,
        &domain.uuid,
        &["--boot-interface", "ipxe", "--property", &capabilities],
    );
    let uuid = bm.show(&name)["uuid"].as_str().unwrap().to_string();
    bm.ok(&["port", "create", &mac, "--node", &uuid]);
    bm.set_boot_iso(&name, &iso, &[&format!("kernel_append_params={marker}")]);
    for verb in ["manage", "provide", "deploy"] {
        bm.ok(&["node", verb, &name, "--wait", "300"]);
    }
    let shown = bm.show(&name);
    assert_eq!(shown["provision_state"], "active", "{shown}");
    assert_eq!(shown["boot_interface"], "ipxe");
    let script = dir
        .path()
        .join("tftpboot/ipxe")
        .join(format!("{}.ipxe", mac.replace(':', "-")));
    let text = read_lossy(&script);
    assert!(text.contains("sanboot --no-describe http://"), "{text}");

    let deadline = Instant::now() + Duration::from_secs(300);
    let cmdline = loop {
        let log = read_lossy(&domain.serial);
        if let Some(line) = log.lines().find(|l| l.contains("IRONCAST-CMDLINE:")) {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{mode}: no command line on the serial console after 300 s:\n{log}\nsite DHCP:\n{}\nserve:\n{}",
            read_lossy(&dir.path().join("site-dhcp.log")),
            crate::support::serve_log(dir.path())
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        cmdline.contains(&marker),
        "{mode}: {marker} missing from {cmdline:?}"
    );
    assert!(
        read_lossy(&dir.path().join("site-dhcp.log")).contains(&mac),
        "the address came from the site's DHCP server"
    );

    bm.ok(&["node", "undeploy", &name, "--wait", "300"]);
    assert_eq!(bm.show(&name)["provision_state"], "available");
    assert!(!script.exists(), "undeploy removes the per-MAC configs");
    drop(net);
}

#[test]
fn qemu_boot_ipxe_ramdisk_bios_live_iso_over_proxydhcp() {
    deploy_over_ipxe("bios", 1);
}

#[test]
fn qemu_boot_ipxe_ramdisk_uefi_live_iso_over_proxydhcp() {
    deploy_over_ipxe("uefi", 2);
}

/// `--boot-interface ipxe --deploy-interface direct`: provide cleans through the agent booted
/// over the network (per-MAC `sanboot` of the agent ISO), deploy boots it again and writes the
/// whole-disk fixture, the per-MAC configs become local boot (BIOS: iPXE
/// `sanboot --drive 0x80`), the node is set to PXE persistently and reboots into its disk.
fn direct_over_ipxe(mode: &str, subnet: u8) {
    for t in ["virsh", "qemu-system-x86_64", "dnsmasq", "ip", "qemu-img"] {
        if tool(t).is_none() {
            return;
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            !common::in_ci(),
            "network boot tests need root under CI=true"
        );
        return;
    }
    const MARKER: &str = "ipxe-direct-7c1d";
    let (Some((agent_iso, _, _)), Some((raw, _))) = (
        crate::common::fixtures::agent_ramdisk(),
        crate::common::fixtures::disk_image(MARKER),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let net = BootNet::new(dir.path(), subnet);
    let mac = format!("52:54:00:79:{subnet:02x}:01");
    let nic = match mode {
        "bios" => "<model type='e1000'/><rom file='/usr/lib/ipxe/qemu/efi-e1000.rom'/>",
        _ => "<model type='virtio'/><rom enabled='no'/>",
    };
    let extra = format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='{}'/>{nic}</interface>",
        net.bridge
    );
    let domain = define(dir.path(), mode, 5 << 30, &extra);
    let Some(sushy) = sushy_libvirt(dir.path(), &domain) else {
        return;
    };
    let address = format!("10.79.{subnet}.1");
    let api_bind = format!("{address}:{}", free_port());
    let config = dir.path().join("ironcast.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\nallowed_file_dirs = [{images:?}]\n\n\
             [agent]\niso = {iso:?}\nconductor_url = \"http://{api_bind}\"\n",
            images = raw.parent().unwrap().display().to_string(),
            iso = agent_iso.display().to_string(),
        ),
    )
    .unwrap();
    let images = format!("{address}:0");
    // The agent calls the API on the bridge address: not loopback, so basic auth is required.
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("op:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    let server = crate::common::serve::spawn_serve(
        dir.path(),
        &[
            ("IRONCAST_CONFIG", config.to_str().unwrap()),
            ("IRONCAST_API__HTPASSWD", htpasswd.to_str().unwrap()),
            ("IRONCAST_API__BIND", &api_bind),
            ("IRONCAST_IMAGESERVER__BIND", &images),
            ("IRONCAST_NETBOOT__DHCP", "proxy"),
            ("IRONCAST_NETBOOT__INTERFACE", &net.bridge),
            ("IRONCAST_NETBOOT__ADDRESS", &address),
            ("RUST_LOG", "info,ironcast::netboot=debug"),
        ],
    );
    let Some(bm) = AuthClient::new(&server.url) else {
        return;
    };
    let name = format!("nbd-{mode}");
    let capabilities = format!("capabilities=boot_mode:{mode}");
    bm.ok(&[
        "node",
        "create",
        "--driver",
        "redfish",
        "--name",
        &name,
        "--boot-interface",
        "ipxe",
        "--deploy-interface",
        "direct",
        "--driver-info",
        &format!("redfish_address={}", sushy.base),
        "--driver-info",
        &format!("redfish_system_id={}", domain.uuid),
        "--property",
        &capabilities,
    ]);
    let uuid = bm.show(&name)["uuid"].as_str().unwrap().to_string();
    bm.ok(&["port", "create", &mac, "--node", &uuid]);
    let script = dir
        .path()
        .join("tftpboot/ipxe")
        .join(format!("{}.ipxe", mac.replace(':', "-")));
    bm.ok(&["node", "manage", &name, "--wait", "300"]);
    bm.ok(&["node", "provide", &name, "--wait", "900"]);
    assert_eq!(bm.show(&name)["provision_state"], "available");
    assert!(
        !script.exists(),
        "cleaning's network boot config is removed at its end"
    );

    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&raw).unwrap()))
    };
    bm.ok(&[
        "node",
        "set",
        &name,
        "--instance-info",
        &format!("image_source=file://{}", raw.display()),
        "--instance-info",
        &format!("image_checksum={digest}"),
        "--instance-info",
        "image_disk_format=raw",
    ]);
    bm.ok(&["node", "deploy", &name, "--wait", "900"]);
    let node = bm.show(&name);
    assert_eq!(node["provision_state"], "active", "{node}");
    let local = read_lossy(&script);
    let want = if mode == "bios" {
        "sanboot --no-describe --drive 0x80"
    } else {
        "exit"
    };
    assert!(local.contains(want), "local-boot config: {local}");

    let deadline = Instant::now() + Duration::from_secs(300);
    let booted = format!("IRONCAST-DISK-BOOTED {MARKER}");
    loop {
        let log = read_lossy(&domain.serial);
        if log.contains(&booted) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{mode}: the written disk did not boot after 300 s:\n{log}\nserve:\n{}",
            crate::support::serve_log(dir.path())
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // The node is set to boot from the network every time, where its MAC now gets the
    // local-boot config. (Under sushy's libvirt driver the reboot keeps the running domain's
    // boot order, so this VM may reach its disk without asking the network.)
    let history = bm.ok(&[
        "node", "history", "list", &name, "-f", "value", "-c", "Event",
    ]);
    assert!(
        history.contains("boot from network: pxe, persistent"),
        "{history}"
    );

    bm.ok(&["node", "undeploy", &name, "--wait", "900"]);
    assert_eq!(bm.show(&name)["provision_state"], "available");
    assert!(
        !script.exists(),
        "undeploy and cleaning remove the per-MAC configs"
    );
    drop(net);
}

#[test]
fn qemu_boot_ipxe_direct_bios_agent_over_network_writes_disk_and_boots_it() {
    direct_over_ipxe("bios", 3);
}

/// python-ironicclient with HTTP basic auth (op / pw).
struct AuthClient {
    bin: std::path::PathBuf,
    url: String,
}

impl AuthClient {
    fn new(url: &str) -> Option<AuthClient> {
        Some(AuthClient {
            bin: tool("baremetal")?,
            url: url.to_string(),
        })
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(args)
            .env("OS_ENDPOINT", &self.url)
            .env("OS_AUTH_TYPE", "http_basic")
            .env("OS_USERNAME", "op")
            .env("OS_PASSWORD", "pw")
            .env_remove("OS_CLOUD")
            .output()
            .expect("run baremetal");
        assert!(
            out.status.success(),
            "baremetal {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn show(&self, node: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["node", "show", node, "-f", "json"])).unwrap()
    }
}

//! A boot network made by the test: namespace `boot` holds a bridge (10.77.0.1/24, where
//! ironcast listens) and a tap for a QEMU guest; namespace `site` holds the site's DHCP server
//! (dnsmasq, DHCP only: `--port=0`, addresses 10.77.0.100–150, no boot options) on a veth into
//! the bridge. Everything is removed when the lab drops.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common;

pub const SERVER_IP: &str = "10.77.0.1";
pub const BRIDGE: &str = "br0";
pub const TAP: &str = "tap0";

pub struct Lab {
    pub boot: String,
    pub site: String,
    dnsmasq: Option<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [&self.boot, &self.site] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// True when this process can make namespaces (root); in CI it must.
pub fn can_make_namespaces() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            !common::in_ci(),
            "network namespace tests need root under CI=true"
        );
        eprintln!("skipping: network namespaces need root");
    }
    root && common::tool("ip").is_some()
}

impl Lab {
    /// Makes both namespaces and the links; `tag` keeps parallel tests apart.
    pub fn new(tag: &str) -> Lab {
        let id = format!("{}-{tag}", std::process::id());
        let lab = Lab {
            boot: format!("icboot-{id}"),
            site: format!("icsite-{id}"),
            dnsmasq: None,
        };
        for ns in [&lab.boot, &lab.site] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let b = lab.boot.as_str();
        ip(&["-n", b, "link", "add", BRIDGE, "type", "bridge"]);
        ip(&[
            "-n",
            b,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            BRIDGE,
        ]);
        ip(&["-n", b, "link", "set", BRIDGE, "up"]);
        ip(&[
            "-n", b, "link", "add", "vsite", "type", "veth", "peer", "name", "vbr",
        ]);
        ip(&["-n", b, "link", "set", "vsite", "netns", &lab.site]);
        ip(&["-n", b, "link", "set", "vbr", "master", BRIDGE, "up"]);
        ip(&[
            "-n",
            &lab.site,
            "addr",
            "add",
            "10.77.0.2/24",
            "dev",
            "vsite",
        ]);
        ip(&["-n", &lab.site, "link", "set", "vsite", "up"]);
        ip(&["-n", b, "tuntap", "add", "dev", TAP, "mode", "tap"]);
        ip(&["-n", b, "link", "set", TAP, "master", BRIDGE, "up"]);
        lab
    }

    /// Starts the site's DHCP server (dnsmasq, DHCP only) in the site namespace.
    pub fn start_site_dhcp(&mut self, dir: &Path) {
        let dnsmasq = common::tool("dnsmasq").expect("dnsmasq");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.site])
            .arg(dnsmasq)
            .args([
                "--keep-in-foreground",
                "--port=0",
                "--conf-file=/dev/null",
                "--interface=vsite",
                "--bind-interfaces",
                "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h",
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
        self.dnsmasq = Some(child);
    }

    /// Runs `cmd` inside the site namespace (a client on the boot network).
    pub fn exec_site(&self, cmd: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.site])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }
}

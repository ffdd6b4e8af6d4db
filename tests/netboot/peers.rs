//! The DHCP responder against independent clients in the lab network: nmap's
//! broadcast-dhcp-discover and dhcping, run from the site namespace, with `dhcp = "range"`.
//! A MAC with a per-MAC config is offered an address from the range; an unknown MAC gets no
//! answer; `serve` refuses configs that cannot work, naming the option.

use std::process::Command;

use deploy_drivers::BootMode;
use ironcast::netboot::NetbootDir;

use super::lab::{self, Lab};
use crate::common::{self, serve};

const KNOWN: &str = "52:54:00:77:00:0a";
const UNKNOWN: &str = "52:54:00:77:00:0b";

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn range_mode_answers_enrolled_macs_only_nmap_and_dhcping() {
    if !lab::can_make_namespaces()
        || common::tool("nmap").is_none()
        || common::tool("dhcping").is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tftp = dir.path().join("tftpboot");
    NetbootDir::new(&tftp)
        .write_local("known", &[KNOWN.to_string()], BootMode::Bios)
        .unwrap();
    let lab = Lab::new("peers");
    let tftp_s = tftp.display().to_string();
    let _server = serve::spawn_serve_in(
        Some(&lab.boot),
        dir.path(),
        &[
            ("IRONCAST_NETBOOT__DHCP", "range"),
            ("IRONCAST_NETBOOT__INTERFACE", lab::BRIDGE),
            ("IRONCAST_NETBOOT__ADDRESS", lab::SERVER_IP),
            ("IRONCAST_NETBOOT__RANGE_START", "10.77.0.2"),
            ("IRONCAST_NETBOOT__RANGE_END", "10.77.0.40"),
            ("IRONCAST_NETBOOT__TFTP_ROOT", &tftp_s),
            (
                "IRONCAST_IMAGESERVER__BIND",
                &format!("{}:8081", lab::SERVER_IP),
            ),
        ],
        |_| {},
    );
    let nmap = |mac: &str| {
        text(&lab.exec_site(&[
            "nmap",
            "-e",
            "vsite",
            "--script",
            "broadcast-dhcp-discover",
            "--script-args",
            &format!("broadcast-dhcp-discover.mac={mac},broadcast-dhcp-discover.timeout=5s"),
        ]))
    };
    let known = nmap(KNOWN);
    assert!(known.contains("Server Identifier: 10.77.0.1"), "{known}");
    let offered = known
        .lines()
        .find_map(|l| {
            l.trim()
                .trim_start_matches("|")
                .trim()
                .strip_prefix("IP Offered: ")
        })
        .unwrap_or_else(|| panic!("no IP offered: {known}"))
        .trim()
        .to_string();
    let o: std::net::Ipv4Addr = offered.parse().unwrap();
    assert!((2..=40).contains(&o.octets()[3]), "{o} outside the range");
    let unknown = nmap(UNKNOWN);
    assert!(
        !unknown.contains("10.77.0.1"),
        "an unknown MAC was answered: {unknown}"
    );

    // dhcping asks the server directly (DHCPREQUEST for the site's own address).
    let dhcping = |mac: &str| {
        lab.exec_site(&[
            "dhcping",
            "-s",
            lab::SERVER_IP,
            "-c",
            "10.77.0.2",
            "-h",
            mac,
            "-t",
            "3",
        ])
    };
    let yes = dhcping(KNOWN);
    assert!(
        text(&yes).contains("Got answer from: 10.77.0.1"),
        "{}",
        text(&yes)
    );
    let no = dhcping(UNKNOWN);
    assert!(
        !no.status.success() && !text(&no).contains("Got answer"),
        "{}",
        text(&no)
    );
}

#[test]
fn serve_refuses_netboot_configs_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    for (env, want) in [
        (
            vec![("IRONCAST_NETBOOT__DHCP", "sometimes")],
            "[netboot] dhcp",
        ),
        (
            vec![("IRONCAST_NETBOOT__DHCP", "proxy")],
            "[netboot] interface",
        ),
        (
            vec![
                ("IRONCAST_NETBOOT__DHCP", "proxy"),
                ("IRONCAST_NETBOOT__INTERFACE", "no-such-if0"),
                ("IRONCAST_NETBOOT__ADDRESS", "10.0.0.1"),
            ],
            "[netboot] interface \"no-such-if0\" does not exist",
        ),
        (
            vec![
                ("IRONCAST_NETBOOT__DHCP", "proxy"),
                ("IRONCAST_NETBOOT__INTERFACE", "lo"),
                ("IRONCAST_NETBOOT__ADDRESS", "127.0.0.1"),
                ("IRONCAST_NETBOOT__IPXE_DIR", "/nonexistent"),
            ],
            "[netboot] ipxe_dir",
        ),
    ] {
        let out = Command::new(common::ironcast_bin())
            .arg("serve")
            .env("IRONCAST_CONDUCTOR__STATE_DIR", dir.path())
            .env("IRONCAST_API__BIND", "127.0.0.1:0")
            .env("IRONCAST_IMAGESERVER__BIND", "127.0.0.1:0")
            .envs(env.clone())
            .output()
            .unwrap();
        let t = text(&out);
        assert!(!out.status.success(), "{env:?} started");
        assert!(t.contains(want), "{env:?}: {t}");
    }
}

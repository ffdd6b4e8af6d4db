//! The simulated BMC fleet (`redfish::sim`) driven through our client and the deploy ports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deploy_drivers::ports::{
    BootDevice, BootMode, BootTarget, Power, PowerAction, PowerState, VirtualMedia,
};
use ironcast::redfish::sim::{Fleet, FleetHandle, FleetOptions};
use ironcast::redfish::{parse_address, Credentials, RedfishNode};

use crate::support::{fast_config, file_server};

const MARKER: &[u8] = b"CMDLINE:";

/// A fake "ISO": 2.5 MiB of filler then a marker line, so the simulator must fetch several
/// ranges and put them together in order for the inspector to find the command line.
pub fn fake_iso(cmdline: &str) -> Vec<u8> {
    let mut v: Vec<u8> = (0..(5 << 19)).map(|i: u32| b'a' + (i % 23) as u8).collect();
    v.extend_from_slice(MARKER);
    v.extend_from_slice(cmdline.as_bytes());
    v.push(b'\n');
    v
}

/// Test inspector: the text after the marker (the real one reads El Torito + boot configs).
pub fn options(nodes: usize) -> FleetOptions {
    let mut o = FleetOptions::new(nodes);
    o.inspector = Arc::new(|path| {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let at = bytes
            .windows(MARKER.len())
            .position(|w| w == MARKER)
            .ok_or("no marker")?;
        let rest = &bytes[at + MARKER.len()..];
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        Ok(vec![String::from_utf8_lossy(&rest[..end]).into_owned()])
    });
    o
}

pub fn node_for(fleet: &FleetHandle, i: usize, password: &str) -> RedfishNode {
    let mut target = parse_address(&fleet.address(i)).unwrap();
    target.credentials = Some(Credentials::new("admin", password));
    RedfishNode::new(target, &fast_config()).unwrap()
}

#[tokio::test]
async fn sim_insert_fetches_like_idrac_and_power_on_boots_the_cd_cmdline() {
    let fleet = Fleet::start(options(3)).await.unwrap();
    let (addr, seen) = file_server(fake_iso("console=ttyS0 ironcast.node=n1 --- quiet")).await;
    let url = format!("http://{addr}/p/t0k3n/boot.iso");
    let n = node_for(&fleet, 1, "password");

    n.insert_cd(&url, None).await.unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(got[0].method, "HEAD", "{got:?}");
    assert!(got.len() >= 4, "expected HEAD + 3 range GETs: {got:?}");
    assert!(
        got[1..]
            .iter()
            .all(|s| s.method == "GET" && s.range.is_some()),
        "{got:?}"
    );
    assert_eq!(got[1].range.as_deref(), Some("bytes=0-1048575"));

    BootDevice::set_boot_device(&n, BootTarget::Cd, false, BootMode::Uefi)
        .await
        .unwrap();
    Power::set_power(&n, PowerAction::On).await.unwrap();
    let id = &fleet.system_ids[1];
    assert_eq!(
        fleet.booted_cmdline(id).as_deref(),
        Some("console=ttyS0 ironcast.node=n1 --- quiet")
    );
    let sys = n.system().await.unwrap();
    let oem = &sys.oem.unwrap()["Ironcast"];
    assert_eq!(oem["BootedFrom"], "Cd");
    assert_eq!(
        oem["BootedCmdline"],
        "console=ttyS0 ironcast.node=n1 --- quiet"
    );
    // A one-time override is used up by the boot.
    assert_eq!(sys.boot.unwrap().enabled.as_deref(), Some("Disabled"));
    // The neighbours did nothing.
    assert_eq!(fleet.booted_cmdline(&fleet.system_ids[0]), None);
    assert_eq!(
        Power::power_state(&node_for(&fleet, 2, "password"))
            .await
            .unwrap(),
        PowerState::Off
    );

    // Inserting again: our client ejects first (the simulator refuses a double insert).
    n.insert_cd(&url, None).await.unwrap();
    assert_eq!(fleet.stats().ejects, 1);
    // Reboot without an override boots the disk.
    Power::set_power(&n, PowerAction::Reboot).await.unwrap();
    assert_eq!(
        n.system().await.unwrap().oem.unwrap()["Ironcast"]["BootedFrom"],
        "Hdd"
    );
    VirtualMedia::eject_all(&n).await.unwrap();
    assert_eq!(fleet.stats().ejects, 2);
}

#[tokio::test]
async fn sim_session_relogin_after_expiry_and_logout_on_drop() {
    let fleet = Fleet::start(options(1)).await.unwrap();
    let n = node_for(&fleet, 0, "password");
    assert_eq!(n.power_state().await.unwrap(), PowerState::Off);
    assert_eq!(fleet.stats().sessions_created, 1);
    fleet.expire_sessions();
    assert_eq!(n.power_state().await.unwrap(), PowerState::Off);
    let s = fleet.stats();
    assert_eq!((s.sessions_created, s.active_sessions), (2, 1));
    drop(n);
    for _ in 0..50 {
        if fleet.stats().sessions_deleted == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = fleet.stats();
    assert_eq!((s.sessions_deleted, s.active_sessions), (1, 0));
}

/// A `MakeWriter` into a shared buffer, to see everything the client logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_never_appear_in_logs_errors_or_debug() {
    use base64::Engine;
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let good = "G00d-Pa55-7d1e";
    let bad = "B4d-Pa55-91c3";
    let mut opts = options(1);
    opts.credentials = Some(("admin".into(), good.into()));
    let fleet = Fleet::start(opts).await.unwrap();

    let ok = node_for(&fleet, 0, good);
    Power::set_power(&ok, PowerAction::On).await.unwrap();
    let wrong = node_for(&fleet, 0, bad);
    let err = wrong.power_state().await.unwrap_err();
    let port_err = Power::power_state(&wrong).await.unwrap_err();
    assert_eq!(
        port_err.kind,
        deploy_drivers::ports::PortErrorKind::Rejected,
        "{port_err}"
    );
    assert!(
        err.to_string().contains("rejected the credentials"),
        "{err}"
    );
    drop(ok);

    let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(format!("admin:{p}"));
    let everything = format!(
        "{err}\n{err:?}\n{port_err}\n{port_err:?}\n{wrong:?}\n{}",
        String::from_utf8_lossy(&logs.0.lock().unwrap())
    );
    assert!(
        everything.contains("redfish"),
        "the client logged nothing: {everything}"
    );
    for secret in [good.to_string(), bad.to_string(), b64(good), b64(bad)] {
        assert!(
            !everything.contains(&secret),
            "{secret} leaked:\n{everything}"
        );
    }
}

/// Stops the `ironcast bmc-sim` child on drop with SIGTERM (so it removes its media dir),
/// by its own pid.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let termed = std::process::Command::new("kill").arg(&pid).status();
        if !termed.is_ok_and(|s| s.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn bmc_sim_command_serves_the_addresses_it_prints() {
    use std::io::BufRead;
    let mut child = Child(
        std::process::Command::new(crate::common::ironcast_bin())
            .args([
                "bmc-sim",
                "--nodes",
                "3",
                "--bind",
                "127.0.0.1:0",
                "--vendor",
                "Lenovo",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let addresses: Vec<String> = stdout.lines().take(3).map(Result::unwrap).collect();
    assert_eq!(addresses.len(), 3, "{addresses:?}");
    assert!(
        addresses[2].starts_with("redfish+http://127.0.0.1:"),
        "{addresses:?}"
    );
    let mut target = parse_address(&addresses[2]).unwrap();
    target.credentials = Some(Credentials::new("admin", "password"));
    let n = RedfishNode::new(target, &fast_config()).unwrap();
    Power::set_power(&n, PowerAction::On).await.unwrap();
    assert_eq!(Power::power_state(&n).await.unwrap(), PowerState::On);
    let found = n.discover().await.unwrap();
    assert!(found.system.ends_with(&fleet_id(2)), "{}", found.system);
    assert_eq!(found.vendor, ironcast::redfish::quirks::Vendor::Lenovo);
}

fn fleet_id(i: usize) -> String {
    ironcast::redfish::sim::system_id(i)
}

//! `spec.raid` applied while preparing, as BMO applies it, against sushy-tools' libvirt driver
//! with a Storage resource whose Volumes sushy creates in libvirt's `default` pool (the domain
//! is never started): the host's hardware RAID volume is created by the manual clean preparing
//! runs (`raid.delete_configuration`, `raid.create_configuration`) before the host is
//! available; software RAID fails preparing with BMO's message, and the host recovers after
//! the backoff once the manifest is fixed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::libvirt::virsh;
use crate::deploy_support::{get_json, serve_with_env};
use crate::support::{get_bmh, node, ok, sushy_libvirt_domain_with, wait_state};

/// sushy configuration: one Storage (id 1) with an empty Volumes collection for `uuid`.
fn storage_conf(uuid: &str) -> String {
    format!(
        "SUSHY_EMULATOR_STORAGE = {{'{uuid}': [{{'Id': '1', 'Name': 'Local Storage Controller', \
         'StorageControllers': [{{'MemberId': '0', 'Name': 'RAID controller', 'SpeedGbps': 12}}]}}]}}\n\
         SUSHY_EMULATOR_VOLUMES = {{('{uuid}', '1'): []}}\n"
    )
}

fn manifest(bmc: &str, raid: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: raid-0-bmc
stringData:
  username: admin
  password: password
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: raid-0
spec:
  online: false
  automatedCleaningMode: disabled
  bootMACAddress: 52:54:00:12:34:56
  bmc:
    address: {bmc}
    credentialsName: raid-0-bmc
{raid}"
    )
}

/// Libvirt volumes sushy created for the Volumes collection, deleted on drop.
struct CreatedVolumes(Vec<String>);

impl Drop for CreatedVolumes {
    fn drop(&mut self) {
        for v in &self.0 {
            let _ = virsh(&["vol-delete", "--pool", "default", v]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bmh_raid_is_applied_while_preparing_through_sushy_libvirt() {
    let dir = tempfile::tempdir().unwrap();
    let Some((domain, sushy, _disk)) = sushy_libvirt_domain_with(dir.path(), storage_conf) else {
        return;
    };
    let server = serve_with_env(
        dir.path(),
        &[dir.path()],
        &[
            ("IRONCAST_METAL3__POLL_INTERVAL_MS", "200"),
            ("IRONCAST_METAL3__BACKOFF_UNIT_S", "1"),
        ],
    );
    let bmc = format!(
        "redfish-virtualmedia+{}/redfish/v1/Systems/{}",
        sushy.base, domain.uuid
    );
    let volumes_url = format!(
        "{}/redfish/v1/Systems/{}/Storage/1/Volumes",
        sushy.base, domain.uuid
    );
    let file = dir.path().join("hosts.yaml");
    let hardware = "  raid:\n    hardwareRAIDVolumes:\n    - name: root\n      level: \"1\"\n      sizeGibibytes: 1\n";
    std::fs::write(&file, manifest(&bmc, hardware)).unwrap();
    ok(&server, &["apply", "-f", file.to_str().unwrap()]);

    let h = wait_state(
        &server,
        dir.path(),
        "raid-0",
        "available",
        Duration::from_secs(120),
    );
    let mut created = CreatedVolumes(Vec::new());
    let volumes = get_json(&volumes_url).await;
    for m in volumes["Members"].as_array().into_iter().flatten() {
        let v = get_json(&format!(
            "{}{}",
            sushy.base,
            m["@odata.id"].as_str().unwrap()
        ))
        .await;
        created.0.push(v["Id"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(created.0.len(), 1, "one volume created: {volumes:#}");
    let volume = get_json(&format!("{volumes_url}/{}", created.0[0])).await;
    assert_eq!(volume["Name"], "root", "{volume:#}");
    assert_eq!(volume["CapacityBytes"], 1u64 << 30, "{volume:#}");
    // What preparing applied is recorded, on the host and on the node.
    assert_eq!(
        h["status"]["provisioning"]["raid"]["hardwareRAIDVolumes"][0]["name"], "root",
        "{h:#}"
    );
    let node_id = h["status"]["provisioning"]["ID"].as_str().unwrap();
    let n = node(&server, node_id).unwrap();
    assert_eq!(n["raid_interface"], "redfish", "{n:#}");
    let disk = &n["raid_config"]["logical_disks"][0];
    assert_eq!(disk["volume_name"], "root", "{n:#}");
    assert_eq!(disk["is_root_volume"], true, "{n:#}");
    assert_eq!(n["provision_state"], "manageable", "{n:#}");

    // Software RAID: preparing fails with BMO's message, backing off.
    let software = "  raid:\n    softwareRAIDVolumes:\n    - level: \"1\"\n";
    std::fs::write(&file, manifest(&bmc, software)).unwrap();
    ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    let start = Instant::now();
    let h: Value = loop {
        let h = get_bmh(&server, "raid-0").unwrap();
        if h["status"]["errorType"] == "preparation error" {
            break h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no preparation error: {h:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(h["status"]["provisioning"]["state"], "preparing", "{h:#}");
    assert_eq!(h["status"]["operationalStatus"], "error", "{h:#}");
    assert_eq!(
        h["status"]["errorMessage"],
        "node's driver redfish does not support software RAID"
    );

    // Without raid the host recovers after its backoff; the volume is left as it is.
    std::fs::write(&file, manifest(&bmc, "")).unwrap();
    ok(&server, &["apply", "-f", file.to_str().unwrap()]);
    let h = wait_state(
        &server,
        dir.path(),
        "raid-0",
        "available",
        Duration::from_secs(60),
    );
    assert_eq!(h["status"]["errorType"], "", "{h:#}");
    assert!(h["status"]["provisioning"].get("raid").is_none(), "{h:#}");
    let volumes = get_json(&volumes_url).await;
    assert_eq!(volumes["Members"].as_array().map(Vec::len), Some(1));
}

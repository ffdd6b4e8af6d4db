//! The inventory in Ironic's shape (ironic-python-agent's `inventory`, what
//! `GET /v1/nodes/{id}/inventory` serves) and Ironic's inspection hooks over it:
//! `validate-interfaces` (which NICs count), `ports` (which become ports, `[inspection]
//! add_ports`), `architecture` and the properties the redfish inspect interface sets.
//! Pure: data in, data out.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Ironic's inventory. Fields a source cannot know stay empty or absent, never guessed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub cpu: Cpu,
    pub memory: Memory,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<Boot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_vendor: Option<SystemVendor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub count: u32,
    /// "x86_64", "aarch64", … ("" when the source does not say).
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// MHz, as a string like IPA sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub physical_mb: u64,
    /// Bytes usable by the OS (IPA's `total`); absent out of band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    pub size: u64,
    #[serde(default)]
    pub rotational: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hctl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub mac_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<u64>,
    #[serde(default)]
    pub has_carrier: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Boot {
    /// "uefi" or "bios".
    pub current_boot_mode: String,
    /// The MAC the node booted from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pxe_interface: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemVendor {
    #[serde(default)]
    pub manufacturer: String,
    #[serde(default)]
    pub product_name: String,
    #[serde(default)]
    pub serial_number: String,
    #[serde(default)]
    pub firmware: Firmware,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Firmware {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub build_date: String,
}

/// The agent's in-band report, in Ironic's shape. The agent booted from virtual media, so no
/// NIC is known to have PXE-booted.
pub fn from_agent(inv: &deploy_drivers::Inventory) -> Inventory {
    Inventory {
        cpu: Cpu {
            count: inv.cpu_count,
            architecture: inv.cpu_arch.clone(),
            model_name: inv.cpu_model.clone(),
            frequency: None,
            flags: Vec::new(),
        },
        memory: Memory {
            physical_mb: inv.memory_mb,
            total: None,
        },
        disks: inv
            .disks
            .iter()
            .map(|d| Disk {
                name: d.name.clone(),
                size: d.size,
                rotational: d.rotational,
                model: d.model.clone(),
                vendor: d.vendor.clone(),
                serial: d.serial.clone(),
                wwn: d.wwn.clone(),
                hctl: d.hctl.clone(),
                by_path: d.by_path.clone(),
            })
            .collect(),
        interfaces: inv
            .interfaces
            .iter()
            .map(|i| Interface {
                name: i.name.clone(),
                mac_address: i.mac_address.clone(),
                ipv4_address: i.ipv4_address.clone(),
                has_carrier: i.ipv4_address.is_some(),
                ..Interface::default()
            })
            .collect(),
        boot: inv.boot_mode.map(|m| Boot {
            current_boot_mode: m.as_ironic().to_string(),
            pxe_interface: None,
        }),
        ..Inventory::default()
    }
}

/// Which inspected NICs become ports (Ironic's `[inspector] add_ports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddPorts {
    /// Only the NIC the node PXE-booted from; every valid NIC when that is unknown.
    Pxe,
    /// NICs that had an IP address during inspection.
    Active,
    All,
    Disabled,
}

/// A NIC that passed Ironic's `validate-interfaces` hook, with whether it PXE-booted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidNic {
    pub name: String,
    pub mac: String,
    pub pxe_enabled: bool,
}

/// Ironic's `validate-interfaces` + `ports` hooks: the NICs to add as ports (MACs normalised,
/// loopback and malformed ones skipped), in inventory order. As in Ironic, a port is
/// `pxe_enabled` only when it is the NIC the inventory says the node booted from; unlike
/// Ironic (`update_pxe_enabled`), existing ports are left as they are, so the boot port an
/// operator (or BMO) created keeps its flag.
pub fn ports_to_add(inv: &Inventory, policy: AddPorts) -> Vec<ValidNic> {
    let pxe_mac = inv
        .boot
        .as_ref()
        .and_then(|b| b.pxe_interface.as_deref())
        .and_then(pxe_mac);
    let mut out = Vec::new();
    for iface in &inv.interfaces {
        let Some(mac) = normalize_mac(&iface.mac_address) else {
            continue;
        };
        let ip = iface
            .ipv4_address
            .as_deref()
            .or(iface.ipv6_address.as_deref());
        if iface.name == "lo" || ip.is_some_and(|a| a.starts_with("127.") || a == "::1") {
            continue;
        }
        let pxe = pxe_mac.as_deref().is_none_or(|p| p == mac);
        let keep = match policy {
            AddPorts::Disabled => false,
            AddPorts::All => true,
            AddPorts::Active => ip.is_some(),
            AddPorts::Pxe => pxe,
        };
        if keep && !out.iter().any(|n: &ValidNic| n.mac == mac) {
            out.push(ValidNic {
                name: iface.name.clone(),
                pxe_enabled: pxe_mac.as_deref() == Some(mac.as_str()),
                mac,
            });
        }
    }
    out
}

/// IPA's `pxe_interface` may be a MAC or pxelinux's `01-aa-bb-…` form.
fn pxe_mac(raw: &str) -> Option<String> {
    let raw = match raw.split_once('-') {
        Some((_, rest)) if raw.len() == 20 => rest.replace('-', ":"),
        _ => raw.to_string(),
    };
    normalize_mac(&raw)
}

/// `aa:bb:cc:dd:ee:ff` in lower case, or None for anything that is not a 48-bit MAC.
pub fn normalize_mac(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.trim().split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

/// The plugin data Ironic's hooks leave beside the inventory (`all_interfaces`,
/// `valid_interfaces`, `macs`), plus `source` saying which interface inspected.
pub fn plugin_data(inv: &Inventory, valid: &[ValidNic], source: &str) -> Value {
    let mut all = Map::new();
    for iface in &inv.interfaces {
        if let Some(mac) = normalize_mac(&iface.mac_address) {
            let pxe = valid.iter().any(|v| v.mac == mac && v.pxe_enabled);
            let mut v = serde_json::to_value(iface).unwrap_or(Value::Null);
            v["mac_address"] = json!(mac);
            v["pxe_enabled"] = json!(pxe);
            all.insert(iface.name.clone(), v);
        }
    }
    let valid_map: Map<String, Value> = valid
        .iter()
        .filter_map(|n| all.get(&n.name).map(|v| (n.name.clone(), v.clone())))
        .collect();
    json!({
        "all_interfaces": all,
        "valid_interfaces": valid_map,
        "macs": valid.iter().map(|n| n.mac.clone()).collect::<Vec<_>>(),
        "source": source,
    })
}

/// The node properties Ironic's inspection sets: `cpu_arch`, `memory_mb`, `local_gb` (the
/// smallest disk of at least 4 GiB, less one GiB for partitioning, as Ironic's root-disk
/// rule), `cpus`, and `boot_mode` in `capabilities` unless the operator set one.
pub fn properties(inv: &Inventory, props: &mut Map<String, Value>) {
    if !inv.cpu.architecture.is_empty() {
        props.insert("cpu_arch".into(), json!(inv.cpu.architecture));
    }
    if inv.cpu.count > 0 {
        props.insert("cpus".into(), json!(inv.cpu.count));
    }
    if inv.memory.physical_mb > 0 {
        props.insert("memory_mb".into(), json!(inv.memory.physical_mb));
    }
    const GIB: u64 = 1 << 30;
    let root = inv
        .disks
        .iter()
        .map(|d| d.size)
        .filter(|s| *s >= 4 * GIB)
        .min();
    props.insert(
        "local_gb".into(),
        json!(root.map(|s| s / GIB - 1).unwrap_or(0)),
    );
    if let Some(mode) = inv.boot.as_ref().map(|b| b.current_boot_mode.as_str()) {
        let caps = props
            .get("capabilities")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !mode.is_empty() && !caps.split(',').any(|kv| kv.starts_with("boot_mode:")) {
            let joined = if caps.is_empty() {
                format!("boot_mode:{mode}")
            } else {
                format!("{caps},boot_mode:{mode}")
            };
            props.insert("capabilities".into(), json!(joined));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, mac: &str, ip: Option<&str>) -> Interface {
        Interface {
            name: name.into(),
            mac_address: mac.into(),
            ipv4_address: ip.map(String::from),
            ..Interface::default()
        }
    }

    fn inv(pxe: Option<&str>) -> Inventory {
        Inventory {
            interfaces: vec![
                nic("lo", "00:00:00:00:00:00", Some("127.0.0.1")),
                nic("eth0", "52:54:00:AA:BB:01", Some("10.0.0.5")),
                nic("eth1", "52-54-00-aa-bb-02", None),
                nic("bad", "not-a-mac", None),
            ],
            boot: Some(Boot {
                current_boot_mode: "uefi".into(),
                pxe_interface: pxe.map(String::from),
            }),
            ..Inventory::default()
        }
    }

    fn macs(nics: &[ValidNic]) -> Vec<(&str, bool)> {
        nics.iter()
            .map(|n| (n.mac.as_str(), n.pxe_enabled))
            .collect()
    }

    #[test]
    fn add_ports_policies_as_ironic() {
        let unknown = inv(None);
        // No PXE NIC known: "pxe" adds every valid NIC, none marked as the PXE one.
        assert_eq!(
            macs(&ports_to_add(&unknown, AddPorts::Pxe)),
            [("52:54:00:aa:bb:01", false), ("52:54:00:aa:bb:02", false)]
        );
        let known = inv(Some("01-52-54-00-aa-bb-02"));
        assert_eq!(
            macs(&ports_to_add(&known, AddPorts::Pxe)),
            [("52:54:00:aa:bb:02", true)]
        );
        assert_eq!(
            macs(&ports_to_add(&known, AddPorts::All)),
            [("52:54:00:aa:bb:01", false), ("52:54:00:aa:bb:02", true)]
        );
        assert_eq!(
            macs(&ports_to_add(&known, AddPorts::Active)),
            [("52:54:00:aa:bb:01", false)]
        );
        assert!(ports_to_add(&known, AddPorts::Disabled).is_empty());
    }

    #[test]
    fn properties_from_inventory() {
        let mut inv = inv(None);
        inv.cpu = Cpu {
            count: 4,
            architecture: "x86_64".into(),
            ..Cpu::default()
        };
        inv.memory.physical_mb = 8192;
        inv.disks = vec![
            Disk {
                name: "/dev/sda".into(),
                size: 1 << 30,
                ..Disk::default()
            },
            Disk {
                name: "/dev/sdb".into(),
                size: 50 << 30,
                ..Disk::default()
            },
        ];
        let mut props = Map::new();
        props.insert("capabilities".into(), json!("foo:bar"));
        properties(&inv, &mut props);
        assert_eq!(props["cpu_arch"], "x86_64");
        assert_eq!(props["memory_mb"], 8192);
        assert_eq!(props["local_gb"], 49);
        assert_eq!(props["capabilities"], "foo:bar,boot_mode:uefi");
        // An operator's boot_mode stays.
        let mut props = Map::new();
        props.insert("capabilities".into(), json!("boot_mode:bios"));
        properties(&inv, &mut props);
        assert_eq!(props["capabilities"], "boot_mode:bios");
    }

    #[test]
    fn plugin_data_lists_valid_macs() {
        let known = inv(Some("52:54:00:aa:bb:02"));
        let valid = ports_to_add(&known, AddPorts::Pxe);
        let pd = plugin_data(&known, &valid, "redfish");
        assert_eq!(pd["macs"], json!(["52:54:00:aa:bb:02"]));
        assert_eq!(pd["all_interfaces"]["eth0"]["pxe_enabled"], false);
        assert_eq!(pd["valid_interfaces"]["eth1"]["pxe_enabled"], true);
        assert_eq!(pd["source"], "redfish");
    }

    #[test]
    fn mac_forms() {
        assert_eq!(
            normalize_mac("AA-bb-CC-dd-EE-ff").as_deref(),
            Some("aa:bb:cc:dd:ee:ff")
        );
        assert_eq!(normalize_mac("aa:bb:cc:dd:ee"), None);
        assert_eq!(normalize_mac("zz:bb:cc:dd:ee:ff"), None);
    }
}

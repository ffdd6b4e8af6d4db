//! The `inventory` command: what the machine has, in Ironic's inventory names (disks, NICs,
//! memory, CPUs, boot mode). Read from sysfs and procfs under a root directory, so tests point
//! it at a made-up tree; the text parsers are pure.

use std::collections::HashMap;
use std::path::Path;

use deploy_drivers::{BootMode, Inventory, InventoryDisk, InventoryInterface};

use super::write::is_virtual_disk;

/// The running machine's inventory.
pub fn collect() -> Inventory {
    let mut inv = collect_from(Path::new("/"));
    let addrs = ipv4_addresses();
    for nic in &mut inv.interfaces {
        nic.ipv4_address = addrs.get(&nic.name).cloned();
    }
    inv
}

/// The inventory of the machine whose /sys, /proc and /dev are under `root` (IPv4 addresses
/// are not in files; [`collect`] adds them).
pub fn collect_from(root: &Path) -> Inventory {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    let (cpu_count, cpu_model) = cpus(&read("proc/cpuinfo"));
    Inventory {
        disks: disks(root),
        interfaces: interfaces(root),
        memory_mb: memory_mb(&read("proc/meminfo")),
        cpu_count,
        cpu_arch: std::env::consts::ARCH.to_string(),
        cpu_model,
        boot_mode: Some(if root.join("sys/firmware/efi").is_dir() {
            BootMode::Uefi
        } else {
            BootMode::Bios
        }),
    }
}

/// `MemTotal` of a /proc/meminfo text, in MiB (pure).
pub fn memory_mb(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Logical CPU count and the first model name of a /proc/cpuinfo text (pure).
pub fn cpus(cpuinfo: &str) -> (u32, Option<String>) {
    let field = |l: &str, key: &str| {
        l.split_once(':')
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
    };
    let count = cpuinfo
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count() as u32;
    let model = cpuinfo.lines().find_map(|l| field(l, "model name"));
    let count = if count == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    } else {
        count
    };
    (count, model)
}

fn text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn disks(root: &Path) -> Vec<InventoryDisk> {
    let Ok(rd) = std::fs::read_dir(root.join("sys/block")) else {
        return Vec::new();
    };
    let by_path = by_path_links(root);
    let mut out: Vec<InventoryDisk> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_virtual_disk(&name) {
                return None;
            }
            let dir = e.path();
            let sectors: u64 = text(&dir.join("size"))?.parse().ok()?;
            if sectors == 0 {
                return None;
            }
            let dev = dir.join("device");
            let hctl = std::fs::read_link(&dev)
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
                .filter(|n| {
                    n.split(':').count() == 4 && n.split(':').all(|p| p.parse::<u32>().is_ok())
                });
            Some(InventoryDisk {
                name: format!("/dev/{name}"),
                size: sectors * 512,
                rotational: text(&dir.join("queue/rotational")).as_deref() == Some("1"),
                removable: text(&dir.join("removable")).as_deref() == Some("1"),
                model: text(&dev.join("model")),
                vendor: text(&dev.join("vendor")),
                serial: text(&dev.join("serial")).or_else(|| text(&dir.join("serial"))),
                wwn: text(&dir.join("wwid")).or_else(|| text(&dev.join("wwid"))),
                hctl,
                by_path: by_path.get(&name).cloned(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Device name → its /dev/disk/by-path link.
fn by_path_links(root: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(root.join("dev/disk/by-path")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if let Some(dev) = target.file_name() {
            out.entry(dev.to_string_lossy().into_owned())
                .or_insert_with(|| {
                    format!("/dev/disk/by-path/{}", e.file_name().to_string_lossy())
                });
        }
    }
    out
}

fn interfaces(root: &Path) -> Vec<InventoryInterface> {
    let Ok(rd) = std::fs::read_dir(root.join("sys/class/net")) else {
        return Vec::new();
    };
    let mut out: Vec<InventoryInterface> = rd
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            // ARPHRD_ETHER: real and virtual Ethernet; not loopback, tunnels or the like.
            if text(&dir.join("type")).as_deref() != Some("1") {
                return None;
            }
            let mac = text(&dir.join("address"))?;
            Some(InventoryInterface {
                name: e.file_name().to_string_lossy().into_owned(),
                mac_address: mac,
                ipv4_address: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Interface name → its first IPv4 address (getifaddrs(3)).
fn ipv4_addresses() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; we only read it meanwhile.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr points at a sockaddr whose family says its real type.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        if family != libc::AF_INET {
            continue;
        }
        // SAFETY: AF_INET addresses are sockaddr_in; the name is a NUL-terminated string.
        let (addr, name) = unsafe {
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            (
                std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        out.entry(name).or_insert_with(|| addr.to_string());
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_text_table() {
        assert_eq!(
            memory_mb("MemTotal:        4038564 kB\nMemFree: 1 kB\n"),
            3943
        );
        assert_eq!(memory_mb("garbage"), 0);
        let cpuinfo = "processor\t: 0\nmodel name\t: Xeon @ 2.0GHz\n\nprocessor\t: 1\nmodel name\t: Xeon @ 2.0GHz\n";
        assert_eq!(cpus(cpuinfo), (2, Some("Xeon @ 2.0GHz".into())));
    }

    #[test]
    fn sysfs_tree_becomes_an_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let put = |p: &str, v: &str| {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, v).unwrap();
        };
        put("sys/block/sda/size", "209715200\n");
        put("sys/block/sda/queue/rotational", "1\n");
        put("sys/block/sda/removable", "0\n");
        put("sys/block/sda/wwid", "naa.5000c500a1b2c3d4\n");
        let scsi = root.join("sys/devices/pci0000:00/host0/target0:0:0/0:0:0:0");
        std::fs::create_dir_all(&scsi).unwrap();
        std::fs::write(scsi.join("model"), "QEMU HARDDISK   \n").unwrap();
        std::fs::write(scsi.join("vendor"), "ATA\n").unwrap();
        std::os::unix::fs::symlink(&scsi, root.join("sys/block/sda/device")).unwrap();
        put("sys/block/vda/size", "2048\n");
        put("sys/block/vda/serial", "disk-serial-1\n");
        put("sys/block/loop0/size", "2048\n");
        put("sys/block/sr0/size", "2048\n");
        put("sys/block/vdb/size", "0\n");
        std::fs::create_dir_all(root.join("dev/disk/by-path")).unwrap();
        std::os::unix::fs::symlink("../../vda", root.join("dev/disk/by-path/pci-0000:00:04.0"))
            .unwrap();
        put("sys/class/net/eth0/type", "1\n");
        put("sys/class/net/eth0/address", "52:54:00:12:34:56\n");
        put("sys/class/net/lo/type", "772\n");
        put("sys/class/net/lo/address", "00:00:00:00:00:00\n");
        put("proc/meminfo", "MemTotal: 2097152 kB\n");
        put("proc/cpuinfo", "processor : 0\n");
        std::fs::create_dir_all(root.join("sys/firmware/efi")).unwrap();

        let inv = collect_from(root);
        let names: Vec<&str> = inv.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["/dev/sda", "/dev/vda"]);
        let sda = &inv.disks[0];
        assert_eq!(sda.size, 209715200 * 512);
        assert!(sda.rotational && !sda.removable);
        assert_eq!(sda.model.as_deref(), Some("QEMU HARDDISK"));
        assert_eq!(sda.vendor.as_deref(), Some("ATA"));
        assert_eq!(sda.hctl.as_deref(), Some("0:0:0:0"));
        assert_eq!(sda.wwn.as_deref(), Some("naa.5000c500a1b2c3d4"));
        let vda = &inv.disks[1];
        assert_eq!(vda.serial.as_deref(), Some("disk-serial-1"));
        assert_eq!(
            vda.by_path.as_deref(),
            Some("/dev/disk/by-path/pci-0000:00:04.0")
        );
        assert_eq!(vda.hctl, None);
        assert_eq!(inv.interfaces.len(), 1);
        assert_eq!(inv.interfaces[0].mac_address, "52:54:00:12:34:56");
        assert_eq!(inv.memory_mb, 2048);
        assert_eq!(inv.cpu_count, 1);
        assert_eq!(inv.boot_mode, Some(BootMode::Uefi));
    }
}

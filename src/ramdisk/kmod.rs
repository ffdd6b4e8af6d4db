//! Kernel modules for the ramdisk: which `.ko` files to pack and the order to load them in.
//!
//! A distro kernel package unpacked with `dpkg-deb -x` has no `modules.dep` (depmod runs at
//! install time), and this code must not need kmod on the build host, so dependencies are
//! read from each module's own `.modinfo` ELF section (`depends=a,b`, what `modinfo -F
//! depends` prints). Modules compiled into the kernel are listed in `modules.builtin` and
//! need nothing. Compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) are unpacked here, so the
//! ramdisk's busybox `insmod` never has to.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::RamdiskError;

/// What the agent needs, by kernel module name: NICs (virtio, Intel e1000/e1000e/igb/ixgbe),
/// disks (virtio blk/scsi, AHCI, PIIX IDE, NVMe, SCSI disks) and packet sockets for DHCP.
/// Names not in the package (a different kernel) or built in are skipped and reported.
pub const DEFAULT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    "e1000",
    "e1000e",
    "igb",
    "ixgbe",
    "ahci",
    "ata_piix",
    "sd_mod",
    "nvme",
    "af_packet",
];

/// Depth of the dependency chase: real chains are a handful long; a loop stops here.
const MAX_DEPENDENCY_DEPTH: usize = 32;

/// A module to pack: its name and uncompressed bytes.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub data: Vec<u8>,
}

/// The selection: modules in load order (dependencies first), and what was skipped.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub modules: Vec<Module>,
    pub builtin: Vec<String>,
    pub missing: Vec<String>,
}

/// Module names compare with `-` and `_` as the same character (as the kernel does).
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(canonical(stem))
}

/// The value of `key` in an ELF object's `.modinfo` section (NUL-separated `key=value`).
/// Pure; None when the bytes are not a 64-bit little-endian ELF with that section.
pub fn modinfo(elf: &[u8], key: &str) -> Option<String> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    // ELF64 header: class 2 (64-bit), data 1 (little-endian).
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = u16_at(0x3A)? as usize;
    let shnum = u16_at(0x3C)? as usize;
    let shstrndx = u16_at(0x3E)? as usize;
    let section = |i: usize| -> Option<(u32, usize, usize)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = u32_at(at)?;
        let offset = usize::try_from(u64_at(at + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(at + 0x20)?).ok()?;
        Some((name, offset, size))
    };
    let (_, str_off, str_size) = section(shstrndx)?;
    let strtab = elf.get(str_off..str_off.checked_add(str_size)?)?;
    let data = (0..shnum).find_map(|i| {
        let (name, off, size) = section(i)?;
        let n = strtab.get(name as usize..)?;
        let n = &n[..n.iter().position(|&b| b == 0)?];
        (n == b".modinfo").then(|| elf.get(off..off.checked_add(size)?))?
    })?;
    data.split(|&b| b == 0).find_map(|kv| {
        let kv = std::str::from_utf8(kv).ok()?;
        kv.strip_prefix(key)?.strip_prefix('=').map(str::to_string)
    })
}

fn decompress(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, RamdiskError> {
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    let result = if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&raw[..]).and_then(|mut d| d.read_to_end(&mut out))
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else {
        return Ok(raw);
    };
    result.map_err(|cause| RamdiskError::Io {
        context: format!("decompressing kernel module {}", path.display()),
        cause,
    })?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> Result<(), RamdiskError> {
    let entries = std::fs::read_dir(dir).map_err(|cause| RamdiskError::Io {
        context: format!("listing kernel modules in {}", dir.display()),
        cause,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, out)?;
        } else if let Some(name) = module_name(&p) {
            out.entry(name).or_insert(p);
        }
    }
    Ok(())
}

/// Names in `modules.builtin` (lines like `kernel/net/packet/af_packet.ko`).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_name(Path::new(l.trim())))
        .collect()
}

/// Picks `wanted` and their dependencies from the module tree `dir` (lib/modules/VERSION).
pub fn select(dir: &Path, wanted: &[String]) -> Result<Selection, RamdiskError> {
    if !dir.is_dir() {
        return Err(RamdiskError::Input(format!(
            "kernel modules directory {} does not exist: pass --modules DIR (lib/modules/VERSION of the kernel's package)",
            dir.display()
        )));
    }
    let mut index = BTreeMap::new();
    walk(dir, &mut index)?;
    let builtin = std::fs::read_to_string(dir.join("modules.builtin"))
        .map(|t| parse_builtin(&t))
        .unwrap_or_default();
    let mut sel = Selection::default();
    let mut loaded: BTreeSet<String> = BTreeSet::new();
    for name in wanted {
        add(&canonical(name), &index, &builtin, &mut loaded, &mut sel, 0)?;
    }
    Ok(sel)
}

fn add(
    name: &str,
    index: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    loaded: &mut BTreeSet<String>,
    sel: &mut Selection,
    depth: usize,
) -> Result<(), RamdiskError> {
    if loaded.contains(name) {
        return Ok(());
    }
    if depth > MAX_DEPENDENCY_DEPTH {
        return Err(RamdiskError::Input(format!(
            "kernel module dependencies loop through {name}"
        )));
    }
    loaded.insert(name.to_string());
    let Some(path) = index.get(name) else {
        if builtin.contains(name) {
            sel.builtin.push(name.to_string());
        } else {
            sel.missing.push(name.to_string());
        }
        return Ok(());
    };
    let raw = std::fs::read(path).map_err(|cause| RamdiskError::Io {
        context: format!("reading kernel module {}", path.display()),
        cause,
    })?;
    let data = decompress(path, raw)?;
    let depends = modinfo(&data, "depends").unwrap_or_default();
    for dep in depends.split(',').filter(|d| !d.is_empty()) {
        add(&canonical(dep), index, builtin, loaded, sel, depth + 1)?;
    }
    sel.modules.push(Module {
        name: name.to_string(),
        data,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a `.modinfo` section, as the kernel build leaves in a `.ko`.
    pub(crate) fn fake_ko(modinfo: &str) -> Vec<u8> {
        let shstr = b"\0.modinfo\0.shstrtab\0";
        let info = modinfo.as_bytes();
        let info_off = 64;
        let str_off = info_off + info.len();
        let shoff = (str_off + shstr.len()).div_ceil(8) * 8;
        let mut elf = vec![0u8; shoff + 3 * 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3E..0x40].copy_from_slice(&2u16.to_le_bytes());
        elf[info_off..str_off].copy_from_slice(info);
        elf[str_off..str_off + shstr.len()].copy_from_slice(shstr);
        for (i, (name, off, size)) in [(1u32, info_off, info.len()), (10, str_off, shstr.len())]
            .into_iter()
            .enumerate()
        {
            let at = shoff + (i + 1) * 64;
            elf[at..at + 4].copy_from_slice(&name.to_le_bytes());
            elf[at + 0x18..at + 0x20].copy_from_slice(&(off as u64).to_le_bytes());
            elf[at + 0x20..at + 0x28].copy_from_slice(&(size as u64).to_le_bytes());
        }
        elf
    }

    #[test]
    fn modinfo_reads_depends_and_refuses_non_elf() {
        let ko = fake_ko("license=GPL\0depends=virtio,virtio_ring\0name=virtio_net\0");
        assert_eq!(
            modinfo(&ko, "depends").as_deref(),
            Some("virtio,virtio_ring")
        );
        assert_eq!(modinfo(&ko, "name").as_deref(), Some("virtio_net"));
        assert_eq!(modinfo(&ko, "vermagic"), None);
        assert_eq!(modinfo(b"not an elf at all", "depends"), None);
        assert_eq!(modinfo(&ko[..70], "depends"), None, "truncated");
    }

    #[test]
    fn dependencies_load_first_builtins_and_missing_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, info: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, fake_ko(info)).unwrap();
        };
        put(
            "kernel/drivers/net/virtio_net.ko",
            "depends=net_failover,virtio_ring\0",
        );
        put("kernel/drivers/net/net_failover.ko", "depends=failover\0");
        put("kernel/net/core/failover.ko", "depends=\0");
        put("kernel/drivers/virtio/virtio-ring.ko", "depends=\0");
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(&fake_ko("depends=virtio_ring\0")[..], 6)
            .read_to_end(&mut xz)
            .unwrap();
        std::fs::write(dir.path().join("kernel/drivers/net/virtio_blk.ko.xz"), xz).unwrap();
        std::fs::write(
            dir.path().join("modules.builtin"),
            "kernel/net/packet/af_packet.ko\n",
        )
        .unwrap();
        let want: Vec<String> = ["virtio_net", "virtio_blk", "af_packet", "e1000"]
            .map(String::from)
            .to_vec();
        let sel = select(dir.path(), &want).unwrap();
        let names: Vec<&str> = sel.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "failover",
                "net_failover",
                "virtio_ring",
                "virtio_net",
                "virtio_blk"
            ]
        );
        assert!(sel.modules[4].data.starts_with(b"\x7fELF"), "xz unpacked");
        assert_eq!(sel.builtin, ["af_packet"]);
        assert_eq!(sel.missing, ["e1000"]);
        let err = select(&dir.path().join("nope"), &want)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--modules"), "{err}");
    }
}

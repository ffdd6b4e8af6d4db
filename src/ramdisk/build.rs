//! Assembling the ramdisk from its inputs: the initramfs, the ISO, the files written, and
//! the digest of the inputs by which `serve` reuses an ISO it built before.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::cpio::{self, Entry};
use super::loaders::{self, LoaderPaths};
use super::{init, kmod, libs, RamdiskError};
use crate::iso::{efi_image, IsoWriter};

/// The ISO's volume id.
pub const VOLUME_ID: &str = "IRONCAST_AGENT";
/// Bumped when the layout or scripts change, so cached ISOs are rebuilt.
const FORMAT_VERSION: &str = "ironcast-ramdisk-1";

/// What the ramdisk is made of.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The kernel image (vmlinuz).
    pub kernel: PathBuf,
    /// lib/modules/VERSION of the kernel's package; None: found next to the kernel.
    pub modules_dir: Option<PathBuf>,
    /// Module names to load (dependencies are added).
    pub modules: Vec<String>,
    /// The agent: normally this very binary.
    pub agent_binary: PathBuf,
    /// A static busybox (Debian's busybox-static).
    pub busybox: PathBuf,
    pub loaders: LoaderPaths,
    /// Kernel arguments added after [`loaders::BASE_ARGS`] in every boot entry.
    pub append: String,
}

impl Inputs {
    /// Inputs with the defaults: this binary, /bin/busybox, [`kmod::DEFAULT_MODULES`].
    pub fn new(kernel: PathBuf) -> Self {
        Self {
            kernel,
            modules_dir: None,
            modules: kmod::DEFAULT_MODULES
                .iter()
                .map(|m| m.to_string())
                .collect(),
            agent_binary: "/proc/self/exe".into(),
            busybox: "/bin/busybox".into(),
            loaders: LoaderPaths::default(),
            append: String::new(),
        }
    }

    /// The module tree: given, or `ROOT/lib/modules/VER` for a kernel at `ROOT/boot/vmlinuz-VER`.
    pub fn modules_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.modules_dir {
            return Some(d.clone());
        }
        let name = self.kernel.file_name()?.to_str()?;
        let version = name.strip_prefix("vmlinuz-")?;
        let root = self.kernel.parent()?.parent()?;
        ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|d| root.join(d).join(version))
            .find(|p| p.is_dir())
    }

    fn kernel_args(&self) -> String {
        format!("{} {}", loaders::BASE_ARGS, self.append)
            .trim()
            .to_string()
    }
}

/// Where to write: the ISO, and/or the kernel + initramfs pair for network boot.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub iso: Option<PathBuf>,
    pub initramfs: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
}

/// What went in, for the operator.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub modules: Vec<String>,
    pub builtin: Vec<String>,
    pub missing: Vec<String>,
    pub libraries: Vec<PathBuf>,
    /// The agent binary's size as packed (after stripping) and whether it was stripped.
    pub agent_bytes: u64,
    pub agent_stripped: bool,
    pub kernel_bytes: u64,
    pub initramfs_bytes: u64,
    pub iso_bytes: u64,
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> RamdiskError {
    move |cause| RamdiskError::Io { context, cause }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, RamdiskError> {
    std::fs::read(path).map_err(io_err(format!("reading {what} {}", path.display())))
}

/// The agent binary without debug info and symbols (a debug build is hundreds of MiB): `strip`,
/// else `objcopy`, else as it is.
/// The binary is copied first: `/proc/self/exe` cannot be given to `ldd` or `strip` by name.
fn stripped_agent(binary: &Path, work: &Path) -> Result<(Vec<u8>, bool), RamdiskError> {
    let full = work.join("ironcast.full");
    std::fs::copy(binary, &full).map_err(io_err(format!(
        "copying the agent binary {}",
        binary.display()
    )))?;
    let binary = full.as_path();
    let out = work.join("ironcast");
    for (tool, args) in [
        ("strip", ["--strip-all", "-o"]),
        ("objcopy", ["--strip-all", "--"]),
    ] {
        let mut cmd = Command::new(tool);
        cmd.arg(args[0]);
        if tool == "strip" {
            cmd.arg(args[1]).arg(&out).arg(binary);
        } else {
            cmd.arg(binary).arg(&out);
        }
        if cmd.output().is_ok_and(|o| o.status.success()) {
            return Ok((read(&out, "the stripped agent binary")?, true));
        }
    }
    Ok((read(binary, "the agent binary")?, false))
}

fn dirs_of(path: &str, entries: &mut Vec<Entry>, seen: &mut std::collections::BTreeSet<String>) {
    let parts: Vec<&str> = path.split('/').collect();
    for n in 1..parts.len() {
        let d = parts[..n].join("/");
        if seen.insert(d.clone()) {
            entries.push(Entry::Dir { path: d });
        }
    }
}

/// The initramfs (gzip-compressed newc cpio) and what went into it.
pub fn initramfs(inputs: &Inputs, work: &Path) -> Result<(Vec<u8>, Report), RamdiskError> {
    let modules_dir = inputs.modules_dir().ok_or_else(|| {
        RamdiskError::Input(format!(
            "no kernel modules found next to {} (expected ROOT/lib/modules/VERSION for ROOT/boot/vmlinuz-VERSION): pass --modules DIR",
            inputs.kernel.display()
        ))
    })?;
    let selection = kmod::select(&modules_dir, &inputs.modules)?;
    let busybox = read(&inputs.busybox, "busybox (install busybox-static)")?;
    if !libs::needed(&inputs.busybox)?.is_empty() {
        return Err(RamdiskError::Input(format!(
            "{} is not statically linked: install busybox-static or pass --busybox",
            inputs.busybox.display()
        )));
    }
    let (agent, stripped) = stripped_agent(&inputs.agent_binary, work)?;
    let libraries = libs::needed(&work.join("ironcast.full"))?;

    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for d in [
        "bin",
        "sbin",
        "etc/ironcast",
        "lib/modules",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
    ] {
        dirs_of(&format!("{d}/x"), &mut entries, &mut seen);
    }
    entries.push(Entry::CharDev {
        path: "dev/console".into(),
        major: 5,
        minor: 1,
    });
    let file = |path: &str, mode: u32, data: Vec<u8>| Entry::File {
        path: path.into(),
        mode,
        data,
    };
    entries.push(file("init", 0o755, init::INIT.as_bytes().to_vec()));
    entries.push(file("bin/busybox", 0o755, busybox));
    entries.push(file("bin/ironcast", 0o755, agent.clone()));
    entries.push(file(
        init::UDHCPC_SCRIPT,
        0o755,
        init::UDHCPC.as_bytes().to_vec(),
    ));
    let order: String = selection
        .modules
        .iter()
        .map(|m| format!("{}\n", m.name))
        .collect();
    entries.push(file(init::MODULE_LIST, 0o644, order.into_bytes()));
    for m in &selection.modules {
        entries.push(file(
            &format!("lib/modules/{}.ko", m.name),
            0o644,
            m.data.clone(),
        ));
    }
    for lib in &libraries {
        let rel = lib.to_string_lossy().trim_start_matches('/').to_string();
        dirs_of(&rel, &mut entries, &mut seen);
        entries.push(file(&rel, 0o755, read(lib, "shared library")?));
    }
    let archive = cpio::encode(&entries);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&archive)
        .and_then(|_| gz.finish())
        .map_err(io_err("compressing the initramfs".into()))
        .map(|bytes| {
            let report = Report {
                modules: selection.modules.iter().map(|m| m.name.clone()).collect(),
                builtin: selection.builtin.clone(),
                missing: selection.missing.clone(),
                libraries,
                agent_bytes: agent.len() as u64,
                agent_stripped: stripped,
                initramfs_bytes: bytes.len() as u64,
                ..Report::default()
            };
            (bytes, report)
        })
}

/// The bootable ISO holding `kernel` and `initramfs`.
pub fn iso(
    inputs: &Inputs,
    kernel: &[u8],
    initramfs: &[u8],
    work: &Path,
) -> Result<Vec<u8>, RamdiskError> {
    let args = inputs.kernel_args();
    let paths = &inputs.loaders;
    let isolinux = read(&paths.isolinux_bin, "isolinux.bin (install isolinux)")?;
    let ldlinux = read(&paths.ldlinux, "ldlinux.c32 (install syslinux-common)")?;
    let grub = loaders::grub_efi_binary(paths, work)?;
    let [(iso_mark, iso_mark_text), (efi_mark, efi_mark_text)] = loaders::marks();
    let efi_cfg = loaders::grub_cfg(&args, true);
    let efi = efi_image(&[
        (loaders::EFI_BINARY, &grub),
        (loaders::EFI_GRUB_CFG, efi_cfg.as_bytes()),
        (efi_mark, efi_mark_text),
    ])?;
    let mut w = IsoWriter::new(VOLUME_ID)?;
    w.add_file(loaders::ISOLINUX_BIN, isolinux)?
        .add_file(loaders::LDLINUX, ldlinux)?
        .add_file(loaders::ISOLINUX_CFG, loaders::isolinux_cfg(&args))?
        .add_file(loaders::GRUB_CFG, loaders::grub_cfg(&args, false))?
        .add_file(loaders::EFI_IMAGE, efi)?
        .add_file(iso_mark, iso_mark_text)?
        .add_file(loaders::KERNEL, kernel)?
        .add_file(loaders::INITRD, initramfs)?
        .bios_boot(loaders::ISOLINUX_BIN, loaders::CATALOG)?
        .efi_boot(loaders::EFI_IMAGE)?;
    Ok(w.build()?)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), RamdiskError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(io_err(format!("creating {}", parent.display())))?;
    }
    crate::durable::write(path, bytes, crate::durable::Mode::Public)
        .map_err(|e| io_err(e.context)(e.source))
}

/// Builds the ramdisk and writes the requested outputs.
pub fn build(inputs: &Inputs, outputs: &Outputs) -> Result<Report, RamdiskError> {
    if outputs.iso.is_none() && outputs.initramfs.is_none() {
        return Err(RamdiskError::Input(
            "nothing to write: give --output (the ISO) and/or --initramfs-output".into(),
        ));
    }
    let work = tempfile::tempdir().map_err(io_err("creating a work directory".into()))?;
    let kernel = read(&inputs.kernel, "the kernel")?;
    let (initramfs, mut report) = initramfs(inputs, work.path())?;
    report.kernel_bytes = kernel.len() as u64;
    if let Some(path) = &outputs.initramfs {
        write(path, &initramfs)?;
        let kernel_out = outputs
            .kernel
            .clone()
            .unwrap_or_else(|| path.with_file_name("vmlinuz"));
        write(&kernel_out, &kernel)?;
    }
    if let Some(path) = &outputs.iso {
        let image = iso(inputs, &kernel, &initramfs, work.path())?;
        report.iso_bytes = image.len() as u64;
        write(path, &image)?;
    }
    Ok(report)
}

/// A digest of every input's bytes and the parameters: equal digests, equal ISOs.
pub fn digest(inputs: &Inputs) -> Result<String, RamdiskError> {
    let mut h = Sha256::new();
    h.update(FORMAT_VERSION);
    h.update(inputs.append.as_bytes());
    let modules_dir = inputs.modules_dir();
    for m in &inputs.modules {
        h.update(m.as_bytes());
        h.update([0]);
    }
    let mut files = vec![
        inputs.kernel.clone(),
        inputs.agent_binary.clone(),
        inputs.busybox.clone(),
        inputs.loaders.isolinux_bin.clone(),
        inputs.loaders.ldlinux.clone(),
        inputs.loaders.grub_efi_modules.join("linux.mod"),
        inputs.loaders.grub_efi_modules.join("kernel.img"),
    ];
    if let Some(d) = &modules_dir {
        files.push(d.join("modules.order"));
        h.update(d.to_string_lossy().as_bytes());
    }
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        // A missing optional file hashes as absent; the build itself reports what is missing.
        if let Ok(bytes) = std::fs::read(&f) {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    Ok(hex::encode(&h.finalize()[..12]))
}

/// The agent ISO in `dir`, built when no ISO of the same inputs is there yet: serve calls this
/// at start. Returns its path.
pub fn ensure_iso(inputs: &Inputs, dir: &Path) -> Result<(PathBuf, Option<Report>), RamdiskError> {
    let name = format!("agent-{}.iso", digest(inputs)?);
    let path = dir.join(&name);
    if path.is_file() {
        return Ok((path, None));
    }
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let report = build(
        inputs,
        &Outputs {
            iso: Some(path.clone()),
            ..Outputs::default()
        },
    )?;
    // ISOs of earlier inputs (an older binary) are no longer served.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("agent-") && n.ends_with(".iso") && n != name {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok((path, Some(report)))
}

/// What `serve` does with `[agent] kernel` (and `agent_binary`, empty for this binary): the
/// agent ISO in `<state_dir>/agent/`, built unless one of the same inputs is there.
pub fn for_serve(
    kernel: &Path,
    agent_binary: &Path,
    state_dir: &Path,
) -> Result<(PathBuf, Option<Report>), RamdiskError> {
    let mut inputs = Inputs::new(kernel.to_path_buf());
    if !agent_binary.as_os_str().is_empty() {
        inputs.agent_binary = agent_binary.to_path_buf();
    }
    ensure_iso(&inputs, &state_dir.join("agent"))
}

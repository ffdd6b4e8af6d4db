//! `ironcast ramdisk build`: the agent ramdisk (ISO, and the kernel + initramfs pair for
//! network boot) from a distro kernel, busybox and this binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::ramdisk::{self, loaders::LoaderPaths, Inputs, Outputs};

#[derive(Debug, clap::Subcommand)]
pub enum RamdiskCmd {
    /// Build the agent ramdisk: a BIOS + UEFI bootable ISO and/or kernel + initramfs.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("dest").required(true).multiple(true).args(["output", "initramfs_output"])))]
pub struct BuildArgs {
    /// The kernel (vmlinuz), e.g. boot/vmlinuz-VERSION of Debian's linux-image package
    /// unpacked with `dpkg-deb -x`.
    #[arg(long)]
    kernel: PathBuf,
    /// Write the bootable agent ISO here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write the initramfs (gzip newc cpio) here, for network boot; the kernel is copied
    /// next to it as `vmlinuz` unless --kernel-output says where.
    #[arg(long)]
    initramfs_output: Option<PathBuf>,
    /// Where to copy the kernel with --initramfs-output.
    #[arg(long, requires = "initramfs_output")]
    kernel_output: Option<PathBuf>,
    /// The kernel's module tree (lib/modules/VERSION); default: found next to the kernel.
    #[arg(long)]
    modules: Option<PathBuf>,
    /// Modules to load, comma-separated (their dependencies are added); default: virtio,
    /// Intel NICs, AHCI/PIIX/NVMe/SCSI disks, packet sockets.
    #[arg(long, value_delimiter = ',')]
    load: Option<Vec<String>>,
    /// The agent binary to pack; default: this ironcast binary. Debug info is stripped.
    #[arg(long, default_value = "/proc/self/exe")]
    agent_binary: PathBuf,
    /// A statically linked busybox (Debian: busybox-static).
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// isolinux.bin (Debian: isolinux).
    #[arg(long, default_value = "/usr/lib/ISOLINUX/isolinux.bin")]
    isolinux: PathBuf,
    /// ldlinux.c32 (Debian: syslinux-common).
    #[arg(long, default_value = "/usr/lib/syslinux/modules/bios/ldlinux.c32")]
    ldlinux: PathBuf,
    /// GRUB's x86_64-efi module directory (Debian: grub-efi-amd64-bin), for grub-mkimage.
    #[arg(long, default_value = "/usr/lib/grub/x86_64-efi")]
    grub_efi_modules: PathBuf,
    /// Kernel arguments to add to every boot entry (per-node ones are added by remaster).
    #[arg(long, default_value = "")]
    append: String,
}

pub async fn run(cmd: RamdiskCmd) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || match cmd {
        RamdiskCmd::Build(args) => build(args),
    })
    .await?
}

fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = Inputs::new(a.kernel.clone());
    inputs.modules_dir = a.modules;
    if let Some(load) = a.load {
        inputs.modules = load;
    }
    inputs.agent_binary = a.agent_binary;
    inputs.busybox = a.busybox;
    inputs.loaders = LoaderPaths {
        isolinux_bin: a.isolinux,
        ldlinux: a.ldlinux,
        grub_efi_modules: a.grub_efi_modules,
    };
    inputs.append = a.append;
    let outputs = Outputs {
        iso: a.output.clone(),
        initramfs: a.initramfs_output.clone(),
        kernel: a.kernel_output,
    };
    let report = ramdisk::build(&inputs, &outputs)
        .with_context(|| format!("building the agent ramdisk from {}", a.kernel.display()))?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!("modules: {}", report.modules.join(" "));
    if !report.builtin.is_empty() {
        eprintln!("built into the kernel: {}", report.builtin.join(" "));
    }
    if !report.missing.is_empty() {
        eprintln!(
            "warning: not in this kernel's modules, skipped: {}",
            report.missing.join(" ")
        );
    }
    for l in &report.libraries {
        eprintln!("library: {}", l.display());
    }
    eprintln!(
        "agent binary: {:.1} MiB{}",
        mib(report.agent_bytes),
        if report.agent_stripped {
            " (stripped)"
        } else {
            " (not stripped: install binutils)"
        }
    );
    eprintln!(
        "kernel: {:.1} MiB; initramfs: {:.1} MiB",
        mib(report.kernel_bytes),
        mib(report.initramfs_bytes)
    );
    if let Some(o) = &a.output {
        println!(
            "{}: {} bytes ({:.1} MiB)",
            o.display(),
            report.iso_bytes,
            mib(report.iso_bytes)
        );
    }
    if let Some(o) = &a.initramfs_output {
        println!("{}: {} bytes", o.display(), report.initramfs_bytes);
    }
    Ok(ExitCode::SUCCESS)
}

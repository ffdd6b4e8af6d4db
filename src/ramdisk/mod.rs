//! The agent ramdisk, built by ironcast (`ironcast ramdisk build`, and `serve` with
//! `[agent] kernel`): a distro kernel, an initramfs written here (newc cpio, gzip) holding
//! busybox, the kernel modules the agent needs, the `ironcast` binary with its shared
//! libraries and an init that brings the network up with DHCP and starts `ironcast agent`;
//! and a BIOS + UEFI bootable ISO of the two made by the ISO engine's writer, whose isolinux
//! and grub configs `iso remaster --append` patches per node.
//!
//! Non-goals: building a kernel or busybox (they are inputs, from distro packages);
//! Secure Boot (the GRUB binary is unsigned); other architectures than x86-64.

pub mod build;
pub mod cpio;
pub mod init;
pub mod kmod;
pub mod libs;
pub mod loaders;

use std::io;

pub use build::{build, ensure_iso, for_serve, Inputs, Outputs, Report};

/// Why a ramdisk could not be built; messages name the input and what to install or pass.
#[derive(Debug, thiserror::Error)]
pub enum RamdiskError {
    /// The cause is kept out of the error chain (it is in the message) so it prints once.
    #[error("{context}: {cause}")]
    Io { context: String, cause: io::Error },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Iso(#[from] crate::iso::IsoError),
}

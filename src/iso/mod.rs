//! ISO 9660 + Joliet + Rock Ridge + El Torito reader, boot-config patcher, remaster as a
//! patch set over the base file, and a writer that masters new images ([`writer`]).
//!
//! Job: read a boot ISO's structures (volume descriptors, directory trees with Rock Ridge and
//! Joliet names, the El Torito catalog, hybrid MBR/GPT), find every boot config (grub2,
//! isolinux/syslinux, the grub.cfg inside the EFI FAT image), and append kernel arguments to
//! every Linux kernel entry by planning byte patches ([`crate::overlay::PatchSet`]).
//!
//! Non-goals: extracting or rebuilding an image to remaster it; writing UDF; editing HFS+/APM hybrids; booting
//! anything that is not a Linux kernel (chainloaders, `.c32` modules, localboot are left alone).
//!
//! Specs: ECMA-119 (ISO 9660), Joliet (Microsoft, 1995), IEEE P1281/P1282 (SUSP/RRIP),
//! El Torito 1.0, UEFI 2.x §5 (GPT), syslinux and GRUB 2 manuals for the config dialects.
//!
//! Hostile input: every read is bounds-checked against the image length and capped
//! ([`source::MAX_READ`]); directory walks refuse loops, and every walk of one image draws
//! from one [`budget::Budget`] (entries, path bytes, depth, directory bytes, Rock Ridge CE
//! areas and bytes); every size, offset or count taken from the image (ISO, El Torito, MBR,
//! GPT) is combined with checked arithmetic, so a crafted value is an error, never a panic
//! or a wrapped number.

pub mod bootcfg;
pub mod budget;
pub mod cmdline;
pub mod dirtree;
pub mod eltorito;
pub mod error;
pub mod family;
pub mod fat;
pub mod grub;
pub mod identify;
pub mod image;
pub mod inspect;
pub mod partition;
pub mod pathtable;
pub mod plan;
pub mod remaster_port;
pub mod rockridge;
pub mod source;
pub mod syslinux;
pub mod text;
pub mod unattended;
pub mod volume;
pub mod writer;

pub use error::IsoError;
pub use inspect::{
    boot_cmdline, boot_cmdlines, inspect, inspect_source, BootEntry, BootPath, Inspection, Loader,
};
pub use plan::{
    remaster, remaster_source, remaster_source_with, remaster_unattended, RemasterReport,
};
pub use remaster_port::FileRemaster;
pub use writer::{efi_image, IsoWriter};

/// ISO 9660 logical sector size (ECMA-119 §6.1.2; every image we handle uses 2048).
pub const SECTOR: u64 = 2048;

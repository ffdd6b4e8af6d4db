//! PXE local-boot and deploy configs (pxelinux, GRUB, iPXE) per MAC.
//!
//! Job: render the per-MAC files a network-booting node reads — pxelinux
//! `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`, GRUB `grub.cfg-01-aa-bb-cc-dd-ee-ff` and iPXE scripts
//! `ipxe/aa-bb-cc-dd-ee-ff.ipxe` — into a TFTP root directory, serve the iPXE scripts over HTTP
//! at `/ipxe/<mac>.ipxe` ([`router`], merged into the image server), and remove them at
//! undeploy. Local boot is `sanboot --no-describe --drive 0x80` (BIOS) or `exit` back to the
//! firmware's next boot entry (UEFI); deploy configs boot a kernel + initrd with arguments.
//!
//! Renderers ([`render`]) are pure and table-tested; [`NetbootDir`] does the file I/O and
//! implements the deploy-drivers `Netboot` port. Non-goals: a TFTP server (use any, pointed
//! at the root), DHCP.

pub mod dhcp;
mod files;
pub mod render;
mod server;
pub mod settings;
pub mod tftp;

pub use files::NetbootDir;
pub use render::{DeployBoot, Mac};
pub use server::router;

/// Why a netboot config could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NetbootError {
    #[error("MAC address {0:?} is not six hex bytes separated by ':' or '-'")]
    BadMac(String),
    #[error("{what} contains a newline or control character, which would break the boot config: remove it")]
    BadText { what: &'static str },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

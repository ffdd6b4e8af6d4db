//! The one error type of the ISO engine.

use std::io;

use crate::overlay::OverlayError;

/// Why an ISO could not be read or remastered; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("not an ISO 9660 image: {0}")]
    NotIso(String),
    #[error("malformed image: {0}")]
    Malformed(String),
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("no boot configuration found (looked for grub.cfg, isolinux.cfg, syslinux.cfg and the EFI image): this image cannot be given kernel arguments")]
    NoBootConfig,
    #[error(
        "boot configurations were found but none has a Linux kernel entry to give arguments to"
    )]
    NoKernelEntry,
    #[error("the kernel command line in {config} would be too long: {source}")]
    CmdlineTooLong {
        config: String,
        source: super::cmdline::LineTooLong,
    },
    #[error("invalid kernel arguments: {0}")]
    BadArgs(String),
    #[error("editing the EFI image at byte {offset}: {message}")]
    Fat { offset: u64, message: String },
    #[error("cannot write the ISO: {0}")]
    BadInput(String),
    #[error(transparent)]
    Overlay(#[from] OverlayError),
}

impl IsoError {
    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        IsoError::Malformed(msg.into())
    }
}

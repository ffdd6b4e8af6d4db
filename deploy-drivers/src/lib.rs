//! Deploy drivers as pure orchestration over small ports.
//!
//! This crate defines the *ports* a deploy needs (power, boot device, virtual media, images,
//! remaster, publisher, netboot, agent) and the *drivers* that orchestrate them. It depends on
//! nothing in ironcast's `src/`: the conductor composes real port implementations per node
//! (Redfish, the image cache, the ISO engine, the image server) and hands them in.
//!
//! Architecture invariant: no I/O here other than through the ports, so every driver is
//! unit-tested with in-memory fakes that record calls.

pub mod boot_iso;
pub mod direct;
pub mod driver;
pub mod fake;
pub mod fakes;
pub mod image_kind;
pub mod iso_install;
pub mod ports;
pub mod ramdisk;
pub mod records;
pub mod root_device;
mod steps;

pub use driver::*;
pub use ports::*;

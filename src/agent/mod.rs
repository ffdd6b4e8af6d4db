//! The in-ramdisk agent (`ironcast agent`) and the protocol it speaks with the conductor.
//!
//! The agent boots on the node inside ironcast's ramdisk, reads whom to call from the kernel
//! command line ([`cmdline`]), and then only ever calls out: heartbeats carrying its
//! [`inventory`], commands pulled from the conductor and run one at a time ([`commands`]),
//! progress and results posted back ([`client`], [`runtime`]). The wire format, the token
//! rule and the call sequence are documented in [`protocol`]; the conductor's side is
//! `conductor::AgentHub`.
//!
//! Commands: `inventory`; `write_image` with the streaming writer ([`write`]);
//! `write_config_drive` as a new partition at the end of the disk ([`configdrive`]);
//! `erase_metadata` and `erase_disk` ([`erase`]); `capture_disk`, which reads a disk and
//! uploads it to the conductor ([`capture`]); `power_off` and `reboot` ([`power`]), which
//! answer first and act after.
//!
//! Non-goals: partition images, RAID, firmware updates, rescue mode; the agent never listens
//! on a port.

pub mod capture;
pub mod client;
pub mod cmdline;
pub mod commands;
pub mod configdrive;
pub mod erase;
pub mod fetch;
pub mod inventory;
pub mod power;
pub mod protocol;
pub mod runtime;
pub mod sim;
pub mod token;
pub mod write;

pub use write::{
    checksum_from_file, execute, execute_on, execute_with, list_disks, pick_root_device,
    resolve_checksum, root_device, AgentError, DiskInfo,
};

//! Typed Redfish client on reqwest + serde (DMTF DSP0266 protocol, DSP8010 schemas); only this
//! module knows Redfish JSON.
//!
//! Job: drive a node's BMC for the deploy ports — power ([`node::RedfishNode`] implements
//! `deploy_drivers::ports::{Power, BootDevice, VirtualMedia}`), one-time/persistent boot
//! override, and virtual media (eject, insert a CD/DVD image the BMC fetches over HTTP).
//!
//! How: discovery starts at the service root and only follows `@odata.id` links and action
//! `target`s ([`client`]); session auth with Basic fallback, retries with backoff, Retry-After,
//! ETag/If-Match and task monitors live in [`client`], [`retry`] and [`task`]. Vendor deviations
//! are in ONE table, [`quirks`], each with its reason. BMC addresses are parsed in [`address`]
//! (Metal3 URL schemes and Ironic `driver_info` keys). [`sim`] is a simulated BMC fleet used by
//! `ironcast bmc-sim`, the demo and the tests (it imitates, it does not emulate, hardware).
//!
//! The `hardware::Hardware` port (`hardware.rs`) reads and changes what Ironic's other redfish
//! interfaces do: out-of-band inspection ([`inspect`]), BIOS settings ([`bios`]), firmware
//! versions and SimpleUpdate ([`firmware`]), volumes ([`raid`]), event subscriptions
//! ([`events`]) and virtual media by device type.
//!
//! Non-goals: OEM power actions, vendor BIOS registries beyond the standard one.
//! Credentials never appear in logs, errors or `Debug` output.

pub mod address;
pub mod bios;
pub mod boot;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod firmware;
mod hardware;
pub mod inspect;
pub mod model;
pub mod node;
pub mod power;
pub mod quirks;
pub mod raid;
pub mod retry;
pub mod sim;
pub mod task;
pub mod vmedia;

pub use address::{from_driver_info, parse_address, Credentials, RedfishTarget};
pub use client::Client;
pub use config::RedfishConfig;
pub use error::RedfishError;
pub use node::RedfishNode;

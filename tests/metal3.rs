//! Metal3's baremetal-operator (BMO) against `ironcast serve`: the calls BMO's Ironic
//! provisioner makes, in its order, answered in Ironic's shapes (checked against the fields
//! and types of gophercloud's result structs), with sushy-tools as the BMC — its fake driver,
//! and its libvirt driver for BIOS, processors, memory, disks and firmware versions.

mod common;

#[path = "metal3/gophercloud.rs"]
mod gophercloud;
#[path = "metal3/inspect.rs"]
mod inspect;
#[path = "metal3/lifecycle.rs"]
mod lifecycle;
#[path = "metal3/support.rs"]
mod support;

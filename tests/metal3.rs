//! Metal3 against `ironcast serve`. Item 1: the calls baremetal-operator's (BMO) Ironic
//! provisioner makes, in its order, answered in Ironic's shapes (checked against the fields and
//! types of gophercloud's result structs), with sushy-tools as the BMC — its fake driver, and
//! its libvirt driver for BIOS, processors, memory, disks and firmware versions. Item 2:
//! BareMetalHost manifests end to end (`ironcast apply` / `get bmh` / `delete bmh`), the
//! reconciler inside `serve` driving sushy-tools: its fake driver, its libvirt driver for RAID
//! while preparing, and a QEMU VM for the live ISO and the direct deploy.

mod common;

#[path = "metal3/adopt_service.rs"]
mod adopt_service;
#[path = "metal3/annotations.rs"]
mod annotations;
#[path = "deploy/support.rs"]
#[allow(dead_code)]
mod deploy_support;
#[path = "metal3/event_service.rs"]
mod event_service;
#[path = "metal3/gophercloud.rs"]
mod gophercloud;
#[path = "metal3/inspect.rs"]
mod inspect;
#[path = "metal3/lifecycle.rs"]
mod lifecycle;
#[path = "metal3/prepare.rs"]
mod prepare;
#[path = "metal3/replay.rs"]
mod replay;
#[path = "metal3/support.rs"]
mod support;
#[path = "metal3/sushy_fake.rs"]
mod sushy_fake;
#[path = "metal3/vm.rs"]
mod vm;

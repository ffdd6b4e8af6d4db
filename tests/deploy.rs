//! The live-ISO ramdisk deploy and the whole-disk direct deploy end to end with real peers: `ironcast serve` (API, conductor,
//! cache, ISO engine, image server), python-ironicclient as the client, and sushy-tools as the
//! BMC — its fake driver, and its libvirt driver in front of a QEMU VM that boots the ISO.

mod common;

#[path = "deploy/capture_vm.rs"]
mod capture_vm;
#[path = "deploy/direct_agent.rs"]
mod direct_agent;
#[path = "deploy/direct_fake.rs"]
mod direct_fake;
#[path = "deploy/install_vm.rs"]
mod install_vm;
#[path = "deploy/netboot_vm.rs"]
mod netboot_vm;
#[path = "deploy/support.rs"]
mod support;
#[path = "deploy/sushy_fake.rs"]
mod sushy_fake;
#[path = "deploy/vm.rs"]
mod vm;
#[path = "deploy/wholedisk_vm.rs"]
mod wholedisk_vm;

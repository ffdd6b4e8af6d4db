//! Network boot with real peers: the built-in TFTP server read by tftp-hpa and curl, the
//! ProxyDHCP responder probed by nmap and dhcping, and QEMU guests PXE-booting in network
//! namespaces made by the test.

mod common;

#[path = "netboot/lab.rs"]
mod lab;
#[path = "netboot/peers.rs"]
mod peers;
#[path = "netboot/tftp.rs"]
mod tftp;
#[path = "netboot/vm.rs"]
mod vm;

//! Metal3 BareMetalHost manifests end to end: `ironcast apply` / `get bmh` / `delete bmh`
//! against `ironcast serve`, whose reconciler drives sushy-tools (a real Redfish service).

mod common;

#[path = "deploy/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "metal3/sushy_fake.rs"]
mod sushy_fake;

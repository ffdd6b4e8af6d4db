//! Redfish client against real and quirky BMCs: a real sushy-tools `sushy-emulator --fake`
//! (one per test, private state dir), the project's simulated BMC fleet with fault switches
//! for what sushy cannot produce, and a listener that never answers.

mod common;

#[path = "redfish/quirks.rs"]
mod quirks;
#[path = "redfish/sim.rs"]
mod sim;
#[path = "redfish/support.rs"]
mod support;
#[path = "redfish/sushy.rs"]
mod sushy;

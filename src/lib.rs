//! ironcast: a bare-metal provisioning conductor, Ironic-compatible.
//!
//! One binary is both the server (`ironcast serve`) and the operator CLI. See ARCHITECTURE.md
//! for the map of these modules and the one rule about dependency direction: `src/` uses
//! `deploy-drivers`, never the other way round.

pub mod agent;
pub mod api;
pub mod cache;
pub mod capture;
pub mod cli;
pub mod conductor;
pub mod config;
pub mod configdrive;
pub mod demo;
pub mod durable;
pub mod failpoint;
pub mod hardware;
pub mod imageserver;
pub mod inspection_rules;
pub mod install_media;
pub mod iso;
pub mod listen;
pub mod metal3;
pub mod netboot;
pub mod overlay;
pub mod ramdisk;
pub mod redfish;
pub mod store;
pub mod writer;

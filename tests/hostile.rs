//! Hostile clients against `ironcast serve` as a process (issue 18): connection floods with a
//! lowered open-file limit, half-sent heads, slow bodies and readers that never read. Every
//! attack comes from 127.0.0.1; the legitimate client from 127.0.0.2 (loopback is a /8), so
//! per-client caps apply to the attacker only.

mod common;

#[path = "hostile/auth.rs"]
mod auth;
#[path = "hostile/bmc.rs"]
mod bmc;
#[path = "hostile/floods.rs"]
mod floods;
#[path = "hostile/gaps.rs"]
mod gaps;
#[path = "hostile/memory.rs"]
mod memory;
#[path = "hostile/net.rs"]
mod net;
#[path = "hostile/secrets.rs"]
mod secrets;

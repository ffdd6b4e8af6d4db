//! Conductor core integration tests, one binary: the store suite on SQLite and PostgreSQL,
//! the API in-process (bad input, concurrency, versions), and `ironcast serve` as a process
//! (python-ironicclient/openstacksdk lifecycle, kill -9 recovery, auth, the CLI).

mod common;

#[path = "core/api.rs"]
mod api;
#[path = "core/api_lists.rs"]
mod api_lists;
#[cfg(feature = "failpoints")]
#[path = "core/crash.rs"]
mod crash;
#[path = "core/direct.rs"]
mod direct;
#[path = "core/resources/chassis.rs"]
mod resources_chassis;
#[path = "core/resources/inspection_rules.rs"]
mod resources_inspection_rules;
#[path = "core/resources/microversions.rs"]
mod resources_microversions;
#[path = "core/serve.rs"]
mod serve;
#[path = "core/store.rs"]
mod store;
#[path = "core/support.rs"]
mod support;
#[path = "core/takeover.rs"]
mod takeover;

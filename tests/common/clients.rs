//! Running real clients: commands with their output checked, python-ironicclient's
//! `baremetal` pointed at a test server with no auth.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `cmd` to completion (panics only when it cannot be started).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run command")
}

/// The stdout of a command that must have succeeded; otherwise a panic with both streams.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `baremetal ARGS` against the API at `url`, with no auth.
pub fn baremetal(bin: &Path, url: &str, args: &[&str]) -> Output {
    run(Command::new(bin)
        .args(args)
        .env("OS_ENDPOINT", url)
        .env("OS_AUTH_TYPE", "none")
        .env_remove("OS_CLOUD"))
}

//! Booting a VM under QEMU TCG with its serial console in a file, and waiting for lines on it.
//! The VM is killed when the handle drops, so a failing assertion never leaves one running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which firmware boots the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF (apt ovmf), with a private copy of its variable store.
    Uefi,
}

/// A running VM.
pub struct Vm {
    child: Child,
    pub log: PathBuf,
}

/// Starts `qemu-system-x86_64` with `args` added (media, NICs) in `dir`.
pub fn start(dir: &Path, fw: Firmware, args: &[String]) -> Vm {
    start_in(None, dir, fw, args)
}

/// [`start`] inside the network namespace `netns` (`ip netns exec`), for tap NICs made there.
pub fn start_in(netns: Option<&str>, dir: &Path, fw: Firmware, args: &[String]) -> Vm {
    let log = dir.join(format!("serial-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "qemu-system-x86_64"]);
            c
        }
        None => Command::new("qemu-system-x86_64"),
    };
    cmd.args([
        "-accel", "tcg", "-m", "1024", "-display", "none", "-monitor", "none",
    ])
    .arg("-no-reboot")
    .arg("-serial")
    .arg(format!("file:{}", log.display()));
    if fw == Firmware::Uefi {
        let code = Path::new("/usr/share/OVMF/OVMF_CODE.fd");
        assert!(code.exists(), "OVMF missing (apt ovmf)");
        let vars = dir.join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS.fd", &vars).unwrap();
        cmd.arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,readonly=on,file={}",
                code.display()
            ))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    Vm { child, log }
}

impl Vm {
    /// The serial console so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until every one of `needles` is on the console (or the VM exits, or `timeout`
    /// passes); returns the console, or Err with its tail.
    pub fn wait_for(&mut self, needles: &[&str], timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.console();
            if needles.iter().all(|n| text.contains(n)) {
                return Ok(text);
            }
            let exited = self.child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                return Err(format!(
                    "{missing:?} not on the serial console ({}); tail:\n{tail}",
                    if exited { "the VM exited" } else { "timed out" }
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits for the VM to power itself off.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! `power_off` and `reboot`: the agent reports the command's result first (the conductor
//! must hear it before the machine goes away), then syncs and calls reboot(2). With `no_act`
//! (tests, or a dry run on a workstation) it only says what it would do.

/// What to do to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PowerOff,
    Reboot,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::PowerOff => "power off",
            Action::Reboot => "reboot",
        }
    }
}

/// Syncs the filesystems and powers off or reboots. Returns only when it could not (or, with
/// `no_act`, at once).
pub fn act(action: Action, no_act: bool) -> std::io::Result<()> {
    if no_act {
        tracing::warn!(
            action = action.name(),
            "no-act: the machine is left running"
        );
        return Ok(());
    }
    tracing::info!(action = action.name(), "syncing and acting");
    let cmd = match action {
        Action::PowerOff => libc::RB_POWER_OFF,
        Action::Reboot => libc::RB_AUTOBOOT,
    };
    // SAFETY: sync(2) and reboot(2) take no pointers.
    unsafe {
        libc::sync();
        if libc::reboot(cmd) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

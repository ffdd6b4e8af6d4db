//! Who this process is among the conductors sharing a database: a name unique per process by
//! default, and the rule that refuses a name a live process holds.

use chrono::{DateTime, Utc};

use crate::store::ConductorRow;

/// This machine's host name ("ironcast" when it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ironcast".to_string())
}

/// A name for a process not given one: host name plus a random suffix, so two processes on one
/// host (a blue/green restart) never share locks or recover each other's nodes.
pub fn unique_name() -> String {
    format!("{}-{:08x}", hostname(), rand::random::<u32>())
}

/// Whether process `pid` on this host is alive (a signal 0 reaches it, or it exists but is
/// not ours to signal).
pub fn pid_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Why process `pid` on `host` may not run under the name `row` registers, if it may not:
/// the row names a live conductor (online, with a heartbeat younger than `timeout`) that is
/// not a crashed process of this host.
pub fn name_taken(
    row: &ConductorRow,
    now: DateTime<Utc>,
    timeout: chrono::Duration,
    host: &str,
    pid: i64,
    alive: impl Fn(i64) -> bool,
) -> Option<String> {
    let age = now - row.heartbeat_at;
    if !row.online || age > timeout {
        return None;
    }
    if row.host.as_deref() == Some(host) {
        match row.pid {
            Some(p) if p == pid => return None,
            Some(p) if !alive(p) => return None,
            _ => {}
        }
    }
    Some(format!(
        "conductor name {:?} is in use by a live conductor (process {} on host {}, heartbeat {} s ago): \
         stop that process, or give this one another [conductor] name (empty picks a unique one)",
        row.hostname,
        row.pid.map_or("?".to_string(), |p| p.to_string()),
        row.host.as_deref().unwrap_or("?"),
        age.num_seconds()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(online: bool, age_s: i64, host: &str, pid: i64) -> (ConductorRow, DateTime<Utc>) {
        let now = Utc::now();
        let row = ConductorRow {
            hostname: "c1".into(),
            online,
            created_at: now,
            heartbeat_at: now - chrono::Duration::seconds(age_s),
            host: Some(host.into()),
            pid: Some(pid),
        };
        (row, now)
    }

    #[test]
    fn a_live_twin_is_refused_a_dead_or_crashed_one_is_not() {
        let t = chrono::Duration::seconds(60);
        let alive = |_| true;
        let dead = |_| false;
        // Live on another host, or a live other process here: refused, naming it.
        let (r, now) = row(true, 5, "other", 7);
        let why = name_taken(&r, now, t, "here", 9, alive).unwrap();
        assert!(why.contains("process 7 on host other"), "{why}");
        let (r, now) = row(true, 5, "here", 7);
        assert!(name_taken(&r, now, t, "here", 9, alive).is_some());
        // Crashed here (kill -9, then a restart): its pid is gone.
        assert!(name_taken(&r, now, t, "here", 9, dead).is_none());
        // Offline, heartbeat too old, or ourselves: free.
        let (r, now) = row(false, 5, "other", 7);
        assert!(name_taken(&r, now, t, "here", 9, alive).is_none());
        let (r, now) = row(true, 61, "other", 7);
        assert!(name_taken(&r, now, t, "here", 9, alive).is_none());
        let (r, now) = row(true, 5, "here", 9);
        assert!(name_taken(&r, now, t, "here", 9, alive).is_none());
    }

    #[test]
    fn unique_names_differ_and_our_pid_is_alive() {
        assert_ne!(unique_name(), unique_name());
        assert!(pid_alive(std::process::id() as i64));
        assert!(!pid_alive(0));
    }
}

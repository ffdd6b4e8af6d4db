//! `[redfish]` section of etc/ironcast.toml: timeouts, retries, waits and TLS defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{RedfishError, Result};

/// Settings shared by every BMC connection. Durations are seconds (fractions allowed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedfishConfig {
    /// Time allowed to open a TCP + TLS connection to a BMC.
    pub connect_timeout_secs: f64,
    /// Time allowed for one HTTP request, from sending to the end of the answer.
    pub request_timeout_secs: f64,
    /// Extra attempts after a connection error, a timeout (GET only) or a 5xx answer.
    pub retries: u32,
    /// First delay between attempts; doubled at each attempt.
    pub retry_backoff_secs: f64,
    /// Longest delay honoured from a `Retry-After` header (503, task monitors).
    pub retry_after_max_secs: f64,
    /// How long to wait for the BMC to report the requested power state.
    pub power_wait_secs: f64,
    /// Interval between power-state polls while waiting.
    pub power_poll_secs: f64,
    /// How long to follow a task monitor (202 + Location) before giving up.
    pub task_timeout_secs: f64,
    /// Verify the BMC's TLS certificate when driver_info says nothing (Ironic's
    /// `redfish_verify_ca`). Turning it off is an explicit, per-deployment opt-in.
    pub verify_tls: bool,
    /// PEM bundle of CA certificates trusted for BMCs, in addition to the built-in roots.
    pub ca_bundle: Option<PathBuf>,
}

impl Default for RedfishConfig {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 10.0,
            request_timeout_secs: 60.0,
            retries: 3,
            retry_backoff_secs: 1.0,
            retry_after_max_secs: 60.0,
            power_wait_secs: 300.0,
            power_poll_secs: 2.0,
            task_timeout_secs: 600.0,
            verify_tls: true,
            ca_bundle: None,
        }
    }
}

fn secs(name: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        RedfishError::Config(format!(
            "{name} must be a non-negative number of seconds, got {v}"
        ))
    })
}

impl RedfishConfig {
    /// Checks every duration once, at start.
    pub fn validate(&self) -> Result<()> {
        self.durations().map(|_| ())
    }

    pub(crate) fn durations(&self) -> Result<Durations> {
        Ok(Durations {
            connect_timeout: secs("connect_timeout_secs", self.connect_timeout_secs)?,
            request_timeout: secs("request_timeout_secs", self.request_timeout_secs)?,
            retry_backoff: secs("retry_backoff_secs", self.retry_backoff_secs)?,
            retry_after_max: secs("retry_after_max_secs", self.retry_after_max_secs)?,
            power_wait: secs("power_wait_secs", self.power_wait_secs)?,
            power_poll: secs("power_poll_secs", self.power_poll_secs)?,
            task_timeout: secs("task_timeout_secs", self.task_timeout_secs)?,
        })
    }
}

/// The configuration's durations, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Durations {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    pub retry_after_max: Duration,
    pub power_wait: Duration,
    pub power_poll: Duration,
    pub task_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_integers_and_fractions_parses() {
        let c: RedfishConfig = toml::from_str(
            "request_timeout_secs = 5\nretry_backoff_secs = 0.25\nverify_tls = false",
        )
        .unwrap();
        assert_eq!(c.request_timeout_secs, 5.0);
        assert_eq!(c.retry_backoff_secs, 0.25);
        assert!(!c.verify_tls);
        assert_eq!(c.retries, RedfishConfig::default().retries);
    }

    #[test]
    fn negative_duration_is_refused_with_its_name() {
        let c = RedfishConfig {
            power_wait_secs: -1.0,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("power_wait_secs"), "{e}");
    }
}

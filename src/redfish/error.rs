//! The one error type of the Redfish module, and its mapping onto the deploy ports' errors.
//!
//! Messages name the URL (never credentials) and say what to do where a person can act.

use std::time::Duration;

use deploy_drivers::ports::{PortError, PortErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    /// The BMC address or driver_info is malformed.
    #[error("invalid BMC address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    /// A driver_info key is missing or has the wrong type.
    #[error("invalid driver_info: {0}")]
    InvalidDriverInfo(String),
    /// The Redfish configuration is unusable (bad CA bundle, negative timeout …).
    #[error("invalid redfish configuration: {0}")]
    Config(String),
    /// The BMC could not be reached (connection refused, DNS, TLS handshake).
    #[error("cannot reach BMC at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The BMC accepted the connection but did not answer in time.
    #[error("BMC at {url} did not answer within {after:?} (check the BMC is up and reachable; raise [redfish] request_timeout_secs if it is just slow)")]
    Timeout { url: String, after: Duration },
    /// The BMC refused the credentials.
    #[error("BMC at {url} rejected the credentials (HTTP {status}); check redfish_username/redfish_password")]
    Auth { url: String, status: u16 },
    /// The BMC answered with an error status.
    #[error("BMC answered {method} {url} with HTTP {status}{}", fmt_detail(.detail))]
    Http {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// The BMC answered something that is not the Redfish we expect.
    #[error("unexpected answer from BMC at {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// The BMC lacks what we need (no CD slot, reset type not allowed …).
    #[error("BMC does not support {0}")]
    Unsupported(String),
    /// An asynchronous task on the BMC ended badly.
    #[error("BMC task {url} ended in state {state}{}", fmt_detail(.detail))]
    TaskFailed {
        url: String,
        state: String,
        detail: String,
    },
    /// A wait (power state, task) ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    WaitTimeout { what: String, after: Duration },
}

fn fmt_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl RedfishError {
    /// The HTTP status when the BMC answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            RedfishError::Http { status, .. } | RedfishError::Auth { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn port_kind(&self) -> PortErrorKind {
        match self {
            RedfishError::InvalidAddress { .. }
            | RedfishError::InvalidDriverInfo(_)
            | RedfishError::Config(_) => PortErrorKind::InvalidInput,
            RedfishError::Unreachable { .. } => PortErrorKind::Unreachable,
            RedfishError::Timeout { .. } | RedfishError::WaitTimeout { .. } => {
                PortErrorKind::Timeout
            }
            RedfishError::Auth { .. } | RedfishError::Unsupported(_) => PortErrorKind::Rejected,
            RedfishError::Http { status, .. } if *status < 500 => PortErrorKind::Rejected,
            _ => PortErrorKind::Other,
        }
    }
}

impl From<RedfishError> for PortError {
    fn from(e: RedfishError) -> Self {
        PortError::new(e.port_kind(), e.to_string())
    }
}

pub type Result<T, E = RedfishError> = std::result::Result<T, E>;

//! Metal3 BareMetalHost manifests without Kubernetes: `ironcast apply -f hosts.yaml` takes
//! the multi-document YAML a Metal3 user applies with kubectl (BareMetalHost plus the Secrets
//! it names), and a reconciler inside `serve` converges each host the way baremetal-operator
//! (BMO) does, with BMO's state strings and status shape, driving nodes through the
//! conductor's own functions.
//!
//! `manifest` parses documents (unknown kinds and fields are errors naming them); `validate`
//! is BMO's admission webhook with BMO's messages; `bmc` maps BMC address schemes to drivers;
//! `apply` writes a file all-or-nothing; `decide` is the pure state machine (state × observed
//! node → action), table-tested; `node` is what BMO's Ironic provisioner writes into a node
//! (driver_info, properties, instance_info, config drive); `raid` is the target RAID
//! configuration and clean steps preparing applies; `hardware` maps an inventory to
//! BMO's HardwareDetails; `reconciler` is the I/O loop; `watch` applies a directory of
//! manifests and reacts to changes.
//!
//! Spec: metal3-io/baremetal-operator (`apis/metal3.io/v1alpha1`, `internal/controller/metal3.io`,
//! `pkg/provisioner/ironic`). Non-goals (yet): custom deploy is accepted and validated but
//! not applied (`firmware` is refused for the Redfish types, as BMO refuses it); HostFirmwareSettings, PreprovisioningImage and the
//! other Metal3 kinds.

pub mod apply;
pub mod bmc;
pub mod decide;
pub mod hardware;
pub mod manifest;
pub mod node;
pub mod raid;
pub mod reconciler;
pub mod status;
pub mod validate;
pub mod watch;

use std::time::Duration;

pub use apply::{apply, AppliedDoc};
pub use reconciler::{host_object, Wake};

/// What callers act on.
#[derive(Debug, thiserror::Error)]
pub enum Metal3Error {
    /// The manifest is refused; the message says which document and why.
    #[error("{0}")]
    Invalid(String),
    #[error("BareMetalHost {0} not found")]
    NotFound(String),
    /// A stored row no longer reads back (a bug or a hand-edited database).
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The reconciler's knobs, from `[metal3]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How soon a host with work under way is looked at again.
    pub poll_interval: Duration,
    /// How soon a host with nothing to do is looked at again (power drift, annotations).
    pub resync_interval: Duration,
    /// BMO's backoff unit: a host whose operation failed waits 2^errorCount of these (less
    /// jitter), the count capped at 9. BMO's is one minute.
    pub backoff_unit: Duration,
    /// Hosts reconciled at once.
    pub concurrency: usize,
}

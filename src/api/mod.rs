//! The Ironic-compatible HTTP API (/v1), Metal3 manifests and /metrics; only this module knows Ironic JSON.

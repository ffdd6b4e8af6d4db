//! What both listeners (the API and the image server) do before a request is read: cap the
//! connections per client address and in total, refusing the excess at accept, and fit those
//! caps into the process's file-descriptor limit.
//!
//! Job: one flood (silent, half-sent or many connections) must not exhaust the descriptors
//! or memory the other listener, the database and the BMC clients need. Each listener has its
//! own [`ConnLimiter`]; [`fdlimit`] raises `RLIMIT_NOFILE` at start and shrinks the caps when
//! the limit cannot hold them all.
//!
//! A client is its IPv4 address, or its IPv6 /64 (one host usually owns a whole /64).
//! Non-goals: rate limits per request (the API's auth does that), fairness between clients.

pub mod fdlimit;
pub mod http;
mod limiter;

pub use limiter::{ConnLimiter, Permit, Refused};

/// A listener's connection caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections in total.
    pub total: usize,
    /// Open connections from one client address.
    pub per_client: usize,
}

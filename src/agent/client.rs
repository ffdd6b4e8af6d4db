//! The agent's HTTP client for the conductor: the three calls of the protocol, with the token
//! header, and answers sorted into what the agent acts on (refused for good, gone, retry).

use std::time::Duration;

use serde::Serialize;

use super::cmdline::Assignment;
use super::protocol::{self, CommandOutcome, Heartbeat, HeartbeatReply, Progress, TOKEN_HEADER};

/// How a call failed, as far as the agent acts on it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// 403: the token is wrong or forgotten; this boot's session is over.
    #[error("the conductor at {url} refused this agent's token for node {node} (403: {message}): the deploy or clean this boot served has ended, or the token in the kernel args is wrong")]
    Refused {
        url: String,
        node: String,
        message: String,
    },
    /// 404 on a command: the conductor no longer waits for it.
    #[error("the conductor no longer waits for this command: {0}")]
    Gone(String),
    /// Unreachable, timed out, 5xx, or an answer that makes no sense: worth retrying.
    #[error("calling {url}: {message}")]
    Transient { url: String, message: String },
}

/// One agent's connection settings.
pub struct Client {
    http: reqwest::Client,
    assignment: Assignment,
    poll_wait: Duration,
}

impl Client {
    /// `poll_wait` is how long the conductor may hold a heartbeat; the client waits longer.
    pub fn new(assignment: Assignment, poll_wait: Duration) -> Result<Client, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ironcast-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CallError::Transient {
                url: assignment.conductor_url.clone(),
                message: e.to_string(),
            })?;
        Ok(Client {
            http,
            assignment,
            poll_wait,
        })
    }

    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    pub async fn heartbeat(&self, beat: &Heartbeat) -> Result<HeartbeatReply, CallError> {
        let path = protocol::heartbeat_path(&self.assignment.node);
        let body = self
            .post(&path, beat, self.poll_wait + Duration::from_secs(30))
            .await?;
        serde_json::from_slice(&body).map_err(|e| CallError::Transient {
            url: self.url(&path),
            message: format!("the heartbeat answer is not what this agent understands: {e}"),
        })
    }

    pub async fn progress(&self, id: &str, progress: &Progress) -> Result<(), CallError> {
        let path = protocol::progress_path(&self.assignment.node, id);
        self.post(&path, progress, Duration::from_secs(30))
            .await
            .map(drop)
    }

    pub async fn result(&self, id: &str, outcome: &CommandOutcome) -> Result<(), CallError> {
        let path = protocol::result_path(&self.assignment.node, id);
        self.post(&path, outcome, Duration::from_secs(60))
            .await
            .map(drop)
    }

    /// Streams a capture to the conductor (`PUT …/commands/{id}/upload`) from `body`; the
    /// answer is the image the conductor registered.
    pub async fn upload(
        &self,
        id: &str,
        mut body: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    ) -> Result<serde_json::Value, CallError> {
        let path = protocol::upload_path(&self.assignment.node, id);
        let url = self.url(&path);
        let transient = |message: String| CallError::Transient {
            url: url.clone(),
            message,
        };
        let stream = futures::stream::poll_fn(move |cx| body.poll_recv(cx));
        let resp = self
            .http
            .put(&url)
            .header(TOKEN_HEADER, &self.assignment.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| transient(error_chain(&e)))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transient(error_chain(&e)))?;
        match status.as_u16() {
            200..=299 => serde_json::from_slice(&bytes)
                .map_err(|e| transient(format!("the upload's answer is not JSON: {e}"))),
            403 => Err(CallError::Refused {
                url: self.assignment.conductor_url.clone(),
                node: self.assignment.node.clone(),
                message: ironic_message(&bytes),
            }),
            _ => Err(transient(format!(
                "the conductor answered {status}: {}",
                ironic_message(&bytes)
            ))),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.assignment.conductor_url)
    }

    async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<bytes::Bytes, CallError> {
        let url = self.url(path);
        let transient = |message: String| CallError::Transient {
            url: url.clone(),
            message,
        };
        let resp = self
            .http
            .post(&url)
            .header(TOKEN_HEADER, &self.assignment.token)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transient(error_chain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transient(error_chain(&e)))?;
        match status.as_u16() {
            200..=299 => Ok(body),
            403 => Err(CallError::Refused {
                url: self.assignment.conductor_url.clone(),
                node: self.assignment.node.clone(),
                message: ironic_message(&body),
            }),
            404 => Err(CallError::Gone(ironic_message(&body))),
            _ => Err(transient(format!(
                "the conductor answered {status}: {}",
                ironic_message(&body)
            ))),
        }
    }
}

/// The message of an Ironic error body (`error_message` holding JSON with `faultstring`), or
/// the body's start.
fn ironic_message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let inner = v
        .get("error_message")
        .and_then(|m| m.as_str())
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok());
    match inner
        .as_ref()
        .and_then(|i| i.get("faultstring"))
        .and_then(|f| f.as_str())
    {
        Some(s) => s.to_string(),
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// An error with its sources, so "connection refused" is not hidden behind "request failed".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ironic_messages_are_unwrapped() {
        let body = crate::api::error::body(reqwest::StatusCode::FORBIDDEN, "token refused");
        assert_eq!(ironic_message(body.to_string().as_bytes()), "token refused");
        assert_eq!(ironic_message(b"plain text"), "plain text");
    }
}

//! The agent protocol: how `ironcast agent` (in a ramdisk on the node) and the conductor talk.
//! It is ours, pull-based, JSON over HTTP(S) on the API listener, under `/v1/agent/{node}/…`
//! where `{node}` is the node's UUID.
//!
//! **Direction.** The agent only ever opens connections to the conductor (and fetches images
//! from the image-server URLs a command names); the conductor never connects to the agent, so
//! a node behind NAT or a routed provisioning network needs no inbound port.
//!
//! **Token.** Every call carries the header `X-Ironcast-Agent-Token`. The conductor mints a
//! fresh token per agent boot (`Agent::begin`) and hands it to the ramdisk in the kernel args
//! `ironcast.url=<conductor url> ironcast.node=<uuid> ironcast.token=<token>`; it compares
//! tokens in constant time and forgets them when the deploy or clean ends (`Agent::end`). A
//! wrong, absent or forgotten token is answered `403` (Ironic's error body) and logged with
//! the node and the peer's address; the agent then stops, since this boot's session is over.
//!
//! **Calls.**
//! - `POST /v1/agent/{node}/heartbeat`, body [`Heartbeat`]: "I am idle". The first one of a
//!   boot carries the inventory (and any later one the conductor asks for with
//!   `send_inventory`). The answer, [`HeartbeatReply`], holds the next command or none; the
//!   conductor holds the request open up to `[agent] poll_wait_s` (20 s) waiting for a command,
//!   so commands start within milliseconds while an idle agent costs one open request. The
//!   agent sends no heartbeat while it runs a command, so a heartbeat while a command it was
//!   given is unfinished means the command was lost (a dropped answer or a restarted agent):
//!   the conductor hands it out again, up to three times, then fails it.
//! - `POST /v1/agent/{node}/commands/{id}/progress`, body [`Progress`] (bytes done, total
//!   when known): at most about once a second while a command runs. `204`.
//! - `POST /v1/agent/{node}/commands/{id}/result`, body [`CommandOutcome`]: the command's JSON
//!   result, or its error with a [`PortErrorKind`] and a message. `204`; `404` when the
//!   conductor no longer waits for that command (it timed out), which the agent logs and
//!   ignores. The agent retries a result until the conductor has it.
//!
//! - `PUT /v1/agent/{node}/commands/{id}/upload`, body the capture stream
//!   (`capture::wire`), only while command `id` is a running `capture_disk`: the conductor
//!   writes it into its image cache as it arrives and answers `200` with the registered
//!   image (JSON) once the stream's end and checksum were right, `400` when they were not.
//!   The body may take as long as the disk does; only a stall of `[api] body_timeout_s` ends
//!   it.
//!
//! A command on the wire is [`CommandEnvelope`]: `{"id": "…", "command": "write_image", …}`,
//! the fields of [`AgentCommand`] beside its id. The agent decodes a command it does not know
//! into a failed result naming it, never a crash. `power_off` and `reboot` report their result
//! first, then act.

use deploy_drivers::{AgentCommand, AgentProgress, Inventory, PortErrorKind};
use serde::{Deserialize, Serialize};

/// The header that carries the agent's token.
pub const TOKEN_HEADER: &str = "X-Ironcast-Agent-Token";

/// Number of times a lost command is handed out before it fails.
pub const MAX_DELIVERIES: u32 = 3;

/// `POST …/heartbeat` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's version (the `ironcast` version it was built from).
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub inventory: Option<Inventory>,
}

/// `POST …/heartbeat` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The next command to run, if any (a [`CommandEnvelope`]; kept as JSON so that an agent
    /// can report a command it does not understand instead of failing to read the answer).
    #[serde(default)]
    pub command: Option<serde_json::Value>,
    /// The conductor has no inventory for this boot: send it with the next heartbeat.
    #[serde(default)]
    pub send_inventory: bool,
}

/// A command and the id its progress and result are reported under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub id: String,
    #[serde(flatten)]
    pub command: AgentCommand,
}

/// `POST …/commands/{id}/progress` body.
pub type Progress = AgentProgress;

/// `POST …/commands/{id}/result` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandOutcome {
    Succeeded {
        #[serde(default)]
        result: serde_json::Value,
    },
    Failed {
        kind: PortErrorKind,
        message: String,
    },
}

/// Paths of the calls, for the agent's client (the API router spells the same templates).
pub fn heartbeat_path(node: &str) -> String {
    format!("/v1/agent/{node}/heartbeat")
}

pub fn progress_path(node: &str, id: &str) -> String {
    format!("/v1/agent/{node}/commands/{id}/progress")
}

pub fn upload_path(node: &str, id: &str) -> String {
    format!("/v1/agent/{node}/commands/{id}/upload")
}

pub fn result_path(node: &str, id: &str) -> String {
    format!("/v1/agent/{node}/commands/{id}/result")
}

#[cfg(test)]
mod tests {
    use super::*;
    use deploy_drivers::WriteCommand;
    use serde_json::json;

    #[test]
    fn envelope_puts_the_id_beside_the_command_fields() {
        let env = CommandEnvelope {
            id: "c1".into(),
            command: AgentCommand::WriteImage(WriteCommand {
                image_url: "http://i/disk.qcow2".into(),
                checksum: None,
                root_device: Some("/dev/sda".into()),
            }),
        };
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(
            v,
            json!({"id": "c1", "command": "write_image", "image_url": "http://i/disk.qcow2",
                   "checksum": null, "root_device": "/dev/sda"})
        );
        assert_eq!(serde_json::from_value::<CommandEnvelope>(v).unwrap(), env);
        let plain = json!({"id": "c2", "command": "power_off"});
        assert_eq!(
            serde_json::from_value::<CommandEnvelope>(plain)
                .unwrap()
                .command,
            AgentCommand::PowerOff
        );
        assert!(serde_json::from_value::<CommandEnvelope>(
            json!({"id": "c3", "command": "format_c"})
        )
        .is_err());
    }

    #[test]
    fn outcomes_on_the_wire() {
        let failed = CommandOutcome::Failed {
            kind: PortErrorKind::NoSpace,
            message: "disk too small".into(),
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"status": "failed", "kind": "NoSpace", "message": "disk too small"})
        );
        let ok: CommandOutcome = serde_json::from_value(json!({"status": "succeeded"})).unwrap();
        assert_eq!(
            ok,
            CommandOutcome::Succeeded {
                result: serde_json::Value::Null
            }
        );
    }
}

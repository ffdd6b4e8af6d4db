//! The ports: small, object-safe traits, implemented in `src/` and faked in tests.
//!
//! Every port method returns [`PortError`], whose [`PortErrorKind`] tells the driver what it can
//! act on (retry, give up, report a user error). Messages never carry credentials.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why a port call failed, as far as a driver needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortErrorKind {
    /// The peer (BMC, origin, agent) could not be reached or did not answer in time.
    Unreachable,
    /// The peer answered but refused: bad credentials, unsupported operation, 4xx.
    Rejected,
    /// Input given by the user is wrong (bad URL, checksum mismatch, not a boot ISO …).
    InvalidInput,
    /// Not enough room (cache quota, disk size).
    NoSpace,
    /// A wait ran out of time.
    Timeout,
    /// Anything else; the message says what.
    Other,
}

/// A failed port call: what kind of failure, and a message a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub kind: PortErrorKind,
    pub message: String,
}

impl PortError {
    pub fn new(kind: PortErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(PortErrorKind::Other, message)
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// Power state as Ironic names it on the wire ("power on", "power off").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    On,
    Off,
}

impl PowerState {
    pub fn as_ironic(self) -> &'static str {
        match self {
            PowerState::On => "power on",
            PowerState::Off => "power off",
        }
    }
}

/// What to do to a node's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerAction {
    On,
    Off,
    /// Hard reset (or off then on where the BMC has no reset).
    Reboot,
    SoftOff,
    SoftReboot,
}

#[async_trait]
pub trait Power: Send + Sync {
    async fn power_state(&self) -> PortResult<PowerState>;
    /// Performs `action` and returns once the BMC reports the resulting state (or times out).
    async fn set_power(&self, action: PowerAction) -> PortResult<()>;
}

/// Boot device targets (Redfish BootSourceOverrideTarget: Cd, Pxe, Hdd, UefiHttp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootTarget {
    Cd,
    Pxe,
    Disk,
    UefiHttp,
}

/// Firmware boot mode (Ironic's `boot_mode`: "uefi" or "bios").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootMode {
    Uefi,
    Bios,
}

impl BootMode {
    /// Parses Ironic's spelling ("uefi" / "bios"), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "uefi" => Some(BootMode::Uefi),
            "bios" | "legacy" => Some(BootMode::Bios),
            _ => None,
        }
    }
    pub fn as_ironic(self) -> &'static str {
        match self {
            BootMode::Uefi => "uefi",
            BootMode::Bios => "bios",
        }
    }
}

#[async_trait]
pub trait BootDevice: Send + Sync {
    /// Sets the next boot (`persistent == false`: once) to `target` in `mode`.
    async fn set_boot_device(
        &self,
        target: BootTarget,
        persistent: bool,
        mode: BootMode,
    ) -> PortResult<()>;
}

#[async_trait]
pub trait VirtualMedia: Send + Sync {
    /// Ejects whatever is inserted in every CD/DVD slot; succeeds when nothing is inserted.
    async fn eject_all(&self) -> PortResult<()>;
    /// Inserts the ISO at `url` in a CD/DVD slot; the BMC fetches it from there, with `auth`
    /// when given.
    async fn insert_cd(&self, url: &str, auth: Option<&MediaAuth>) -> PortResult<()>;
}

/// Checksum as given by the user: an algorithm and hex value, or the URL of a checksum file
/// (SHA256SUMS style), matched by the image's file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumSpec {
    Value { algorithm: String, hex: String },
    FileUrl(String),
}

/// An image a deploy needs: where it is and how to verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRequest {
    pub url: String,
    pub checksum: Option<ChecksumSpec>,
}

/// A verified image in the cache, protected from eviction by `lease` until released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasedImage {
    /// Opaque lease id; pass it to [`Images::release`].
    pub lease: String,
    /// Content address (e.g. "sha256:…") of the cached bytes.
    pub digest: String,
    pub path: PathBuf,
    pub size: u64,
}

#[async_trait]
pub trait Images: Send + Sync {
    /// Makes sure the image is cached and verified, and leases it to `holder` (a node UUID).
    async fn acquire(&self, request: &ImageRequest, holder: &str) -> PortResult<LeasedImage>;
    /// Releases a lease; releasing an unknown lease is not an error (undeploy is idempotent).
    async fn release(&self, lease: &str) -> PortResult<()>;
}

/// Something the image server can publish: a base file, optionally with a patch set (an
/// overlay of byte patches, stored as JSON) that the server applies on the fly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub base: PathBuf,
    pub patch_set: Option<PathBuf>,
    /// Length of the published bytes (base length when there is no patch set).
    pub len: u64,
}

#[async_trait]
pub trait Remaster: Send + Sync {
    /// Appends `kernel_args` to every kernel entry of the boot ISO `base`; `owner` (a node
    /// UUID) names the result so it can be dropped at undeploy.
    async fn remaster(
        &self,
        base: &LeasedImage,
        kernel_args: &str,
        owner: &str,
    ) -> PortResult<Artifact>;
    /// Drops what `remaster` stored for `owner`; no error when there is nothing.
    async fn discard(&self, owner: &str) -> PortResult<()>;
}

/// A published artifact: the URL a BMC fetches, the credentials it must send, and the id to
/// revoke it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub id: String,
    pub url: String,
    /// Basic-auth credentials when the image server asks for them.
    pub auth: Option<MediaAuth>,
}

/// Basic-auth credentials a BMC sends when it fetches virtual media (Redfish InsertMedia
/// `UserName` / `Password`). Debug output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for MediaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaAuth")
            .field("username", &self.username)
            .field("password", &"******")
            .finish()
    }
}

#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `artifact` for `node` under a fresh unguessable URL ending in `<name>.iso`.
    async fn publish(&self, artifact: &Artifact, node: &str, name: &str)
        -> PortResult<Publication>;
    /// Revokes a publication; revoking an unknown one is not an error.
    async fn revoke(&self, id: &str) -> PortResult<()>;
}

/// A node's network interface, for per-MAC netboot configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalBoot {
    pub macs: Vec<String>,
    pub mode: BootMode,
}

#[async_trait]
pub trait Netboot: Send + Sync {
    /// Writes per-MAC configs that boot the local disk (pxelinux, GRUB, iPXE).
    async fn write_local_boot(&self, node: &str, boot: &LocalBoot) -> PortResult<()>;
    /// Removes every config written for `node`; no error when there is none.
    async fn remove(&self, node: &str) -> PortResult<()>;
}

/// What the in-ramdisk agent is asked to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCommand {
    pub image_url: String,
    pub checksum: Option<ChecksumSpec>,
    /// Root device hint, e.g. "/dev/sda"; the agent picks the first disk when absent.
    pub root_device: Option<String>,
}

#[async_trait]
pub trait Agent: Send + Sync {
    /// Sends the write command and waits for the agent's result.
    async fn write_image(&self, node: &str, command: &WriteCommand) -> PortResult<()>;
}

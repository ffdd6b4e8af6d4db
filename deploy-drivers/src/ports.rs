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
    /// Inserts the disk image at `url` in a removable slot (USB stick, else floppy), for an
    /// installer that reads its answer file from a second medium.
    async fn insert_removable(&self, _url: &str, _auth: Option<&MediaAuth>) -> PortResult<()> {
        Err(PortError::new(
            PortErrorKind::Rejected,
            "this BMC has no USB stick or floppy virtual media slot",
        ))
    }
    /// Ejects whatever is inserted in the removable slots; succeeds when nothing is.
    async fn eject_removable(&self) -> PortResult<()> {
        Ok(())
    }
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
    /// A URL, or the name of a captured image ([`Captures`]).
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

/// A fresh id for a resource a driver is about to make (a lease, a publication). Drivers
/// record it on the node first and then ask the port for the resource under it, so a crash in
/// between leaves a record pointing at nothing (harmless) rather than a resource nobody knows.
pub fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[async_trait]
pub trait Images: Send + Sync {
    /// Makes sure the image is cached and verified, and leases it to `holder` (a node UUID)
    /// under the id `lease`, which the caller chose ([`fresh_id`]) and recorded first.
    async fn acquire(
        &self,
        request: &ImageRequest,
        holder: &str,
        lease: &str,
    ) -> PortResult<LeasedImage>;
    /// Releases a lease; releasing an unknown lease is not an error (undeploy is idempotent).
    async fn release(&self, lease: &str) -> PortResult<()>;
    /// The size of the disk a cached image holds (a qcow2's virtual size, a raw image's
    /// length), when it can be told without decompressing; `None` when it cannot.
    async fn virtual_size(&self, _image: &LeasedImage) -> PortResult<Option<u64>> {
        Ok(None)
    }
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
    /// Publishes `artifact` for `node` under a fresh unguessable URL ending in `<name>`, which
    /// gets `.iso` unless it ends in a disk image's extension (`.img`, `.raw`, `.qcow2`, …).
    /// The publication's id is `id`, which the caller chose ([`fresh_id`]) and recorded first.
    async fn publish_as(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> PortResult<Publication>;
    /// [`Publisher::publish_as`] under a fresh id, for callers with nothing to record it in.
    async fn publish(
        &self,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> PortResult<Publication> {
        self.publish_as(&fresh_id(), artifact, node, name).await
    }
    /// [`Publisher::publish_as`] in the URL directory of the live publication `beside`: the
    /// same unguessable prefix, another name (installers that read a directory of files, as
    /// cloud-init's NoCloud seed does). The default cannot.
    async fn publish_beside(
        &self,
        _id: &str,
        _artifact: &Artifact,
        _node: &str,
        name: &str,
        _beside: &str,
    ) -> PortResult<Publication> {
        Err(PortError::new(
            PortErrorKind::Other,
            format!("this image server cannot publish {name} beside another file"),
        ))
    }
    /// Revokes a publication; revoking an unknown one is not an error.
    async fn revoke(&self, id: &str) -> PortResult<()>;
}

/// A node's config drive as the deploy request gave it (Ironic's `configdrive`), apart from
/// the URL form, which the agent fetches itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigDriveSource {
    /// `meta_data`, `user_data`, `network_data`, `vendor_data`: built into an ISO 9660
    /// volume labelled `config-2` (`openstack/latest/…`).
    Contents(serde_json::Map<String, serde_json::Value>),
    /// A gzipped, base64-encoded image, written as given.
    Encoded(String),
}

#[async_trait]
pub trait ConfigDrives: Send + Sync {
    /// Builds `node`'s config drive image, ready to publish.
    async fn build(&self, node: &str, source: &ConfigDriveSource) -> PortResult<Artifact>;
    /// Drops what `build` stored for `node`; no error when there is nothing.
    async fn discard(&self, node: &str) -> PortResult<()>;
}

/// A node's network interface, for per-MAC netboot configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalBoot {
    pub macs: Vec<String>,
    pub mode: BootMode,
}

/// A network boot of a published ISO (the live ISO, or the agent ISO carrying its token):
/// each MAC's iPXE script `sanboot`s `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoBoot {
    pub macs: Vec<String>,
    pub mode: BootMode,
    /// The ISO's URL, with basic-auth credentials in it when the image server asks for them.
    pub url: String,
}

#[async_trait]
pub trait Netboot: Send + Sync {
    /// Writes per-MAC configs that boot the local disk (pxelinux, GRUB, iPXE).
    async fn write_local_boot(&self, node: &str, boot: &LocalBoot) -> PortResult<()>;
    /// Writes per-MAC configs that boot the ISO at `boot.url` over the network.
    async fn write_iso_boot(&self, node: &str, boot: &IsoBoot) -> PortResult<()>;
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

/// One command the agent runs. The agent pulls commands from the conductor (it only ever
/// opens connections to the conductor and the image server), runs them one at a time and
/// reports progress and a result for each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AgentCommand {
    /// Report the machine's [`Inventory`].
    Inventory,
    /// Stream an image onto a disk with the writer (any format, verified on the fly).
    WriteImage(WriteCommand),
    /// Write the config drive image at `url` (an ISO 9660 `config-2` image) as a new
    /// partition at the end of `device`, as Ironic's agent does.
    WriteConfigDrive {
        device: String,
        url: String,
    },
    /// Erase partition tables at both ends and filesystem signatures; every disk when
    /// `device` is `None`.
    EraseMetadata {
        device: Option<String>,
    },
    /// Overwrite every byte (zero, or discard where the device guarantees zeroes).
    EraseDisk {
        device: Option<String>,
    },
    /// Read `device` and upload it to the conductor (`PUT …/commands/{id}/upload`, see the
    /// agent protocol): zero chunks skipped, the others compressed, the stream checksummed.
    CaptureDisk(CaptureCommand),
    PowerOff,
    Reboot,
}

/// The formats a disk is captured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureFormat {
    /// qcow2 (version 3) with zstd-compressed clusters; zero clusters unallocated.
    #[serde(rename = "qcow2")]
    Qcow2,
    /// The raw disk as concatenated zstd frames; zero runs as zstd RLE blocks.
    #[serde(rename = "raw.zst")]
    RawZst,
}

impl CaptureFormat {
    pub const ALL: [CaptureFormat; 2] = [CaptureFormat::Qcow2, CaptureFormat::RawZst];

    /// The name the API and the CLI use ("qcow2", "raw.zst").
    pub fn name(self) -> &'static str {
        match self {
            CaptureFormat::Qcow2 => "qcow2",
            CaptureFormat::RawZst => "raw.zst",
        }
    }

    pub fn parse(s: &str) -> Option<CaptureFormat> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Bytes the agent reads, compresses and sends as one piece: a qcow2 cluster, or a
    /// larger piece for raw.zst, whose zstd frames compress better when longer.
    pub fn chunk_bytes(self) -> u32 {
        match self {
            CaptureFormat::Qcow2 => 64 << 10,
            CaptureFormat::RawZst => 1 << 20,
        }
    }
}

/// Whether `s` can name a captured image: 1–64 ASCII letters, digits, `.`, `_` or `-`,
/// starting with a letter or digit (so never a URL, a path or a dot file).
pub fn is_image_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// What the agent is asked to capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureCommand {
    pub device: String,
    pub format: CaptureFormat,
    /// zstd compression level of each chunk.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
}

fn default_zstd_level() -> i32 {
    3
}

/// A capture asked for: the name the image is registered under, and its format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRequest {
    pub name: String,
    pub format: CaptureFormat,
}

/// A captured image, registered in the cache under its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedImage {
    pub name: String,
    pub format: CaptureFormat,
    /// Content address ("sha256:…") of the image file.
    pub digest: String,
    /// Bytes of the image file.
    pub size: u64,
    /// Bytes of the disk it holds.
    pub virtual_size: u64,
    /// Bytes of the disk that held data (not zero).
    pub data_bytes: u64,
}

#[async_trait]
pub trait Captures: Send + Sync {
    /// Reserves room in the image cache for `node`'s capture of a `disk_bytes` disk, before
    /// anything is booted; refused (`NoSpace`) with the sizes when the quota cannot hold it.
    async fn reserve(
        &self,
        node: &str,
        request: &CaptureRequest,
        disk_bytes: u64,
    ) -> PortResult<()>;
    /// The image the node's agent uploaded and the cache committed (after the capture
    /// command succeeded).
    async fn finish(&self, node: &str) -> PortResult<CapturedImage>;
    /// Drops the node's reservation and any partial upload; no error when there is none.
    async fn discard(&self, node: &str);
}

impl AgentCommand {
    /// The command's name as it appears in history events and on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            AgentCommand::Inventory => "inventory",
            AgentCommand::WriteImage(_) => "write_image",
            AgentCommand::WriteConfigDrive { .. } => "write_config_drive",
            AgentCommand::EraseMetadata { .. } => "erase_metadata",
            AgentCommand::EraseDisk { .. } => "erase_disk",
            AgentCommand::CaptureDisk(_) => "capture_disk",
            AgentCommand::PowerOff => "power_off",
            AgentCommand::Reboot => "reboot",
        }
    }
}

/// A disk the agent sees (Ironic's inventory `disks` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryDisk {
    /// Device path, e.g. "/dev/sda".
    pub name: String,
    pub size: u64,
    #[serde(default)]
    pub rotational: bool,
    #[serde(default)]
    pub removable: bool,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub wwn: Option<String>,
    #[serde(default)]
    pub hctl: Option<String>,
    #[serde(default)]
    pub by_path: Option<String>,
}

/// A network interface the agent sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryInterface {
    pub name: String,
    pub mac_address: String,
    #[serde(default)]
    pub ipv4_address: Option<String>,
}

/// What the agent reports about its machine (a subset of Ironic's inventory, same names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub disks: Vec<InventoryDisk>,
    pub interfaces: Vec<InventoryInterface>,
    /// Physical memory in MiB.
    pub memory_mb: u64,
    pub cpu_count: u32,
    pub cpu_arch: String,
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// The mode the agent itself booted in.
    pub boot_mode: Option<BootMode>,
}

/// Progress of a running command, as the agent last reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProgress {
    pub done_bytes: u64,
    pub total_bytes: Option<u64>,
}

/// Where [`Agent::run`] reports progress while it waits.
pub trait ProgressSink: Send + Sync {
    fn progress(&self, progress: AgentProgress);
}

/// The conductor's side of the agent protocol, for one conductor and many nodes.
#[async_trait]
pub trait Agent: Send + Sync {
    /// The agent ramdisk ISO to boot (remastered per node with [`Agent::begin`]'s args).
    async fn ramdisk(&self) -> PortResult<LeasedImage>;
    /// Starts an agent boot of `node`: mints a fresh token (any earlier one stops working) and
    /// returns the kernel args that carry it with the conductor URL and the node's UUID.
    async fn begin(&self, node: &str) -> PortResult<String>;
    /// Waits until the agent of the current boot has called in, and returns its inventory.
    /// The timeout's message says what to check (console, route to the conductor URL).
    async fn wait_ready(&self, node: &str, timeout: std::time::Duration) -> PortResult<Inventory>;
    /// Queues `command`, waits for its result (the agent's JSON answer), reporting progress.
    async fn run(
        &self,
        node: &str,
        command: &AgentCommand,
        timeout: std::time::Duration,
        progress: &dyn ProgressSink,
    ) -> PortResult<serde_json::Value>;
    /// Forgets the node's token and queue: later calls by that agent are refused (403).
    async fn end(&self, node: &str);
}

/// One way an installer takes its answer file (a row of the ISO engine's automation table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomationWay {
    /// "kickstart", "preseed", "autoinstall", "autoyast", "ignition", "unattend".
    pub name: String,
    /// Kernel args with `{url}`, `{dir_url}` and `{root_device}` to fill in.
    pub kernel_args: String,
    /// The file's name when published or put on a medium.
    pub file_name: String,
    /// The file goes on a second virtual medium (a small FAT image), not behind a URL.
    pub medium: bool,
    /// More files the installer reads from the file's URL directory, by name, as templates
    /// rendered like the file (cloud-init's NoCloud seed also wants `meta-data`).
    #[serde(default)]
    pub companions: std::collections::BTreeMap<String, String>,
}

/// What the OS on an installer ISO is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsIdentity {
    pub id: String,
    pub family: String,
    pub distro: String,
    pub version: Option<String>,
    pub arch: Option<String>,
    pub installer: String,
    /// Empty: the installer only runs interactively.
    pub automation: Vec<AutomationWay>,
}

/// The answer of [`InstallMedia::identify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identified {
    Known(OsIdentity),
    /// No known installer: what was looked for, for the operator.
    Unknown {
        looked_for: String,
    },
}

/// What an install from an installer ISO needs besides the cache and the image server:
/// identification, the unattended remaster, the automation file's storage and its media.
#[async_trait]
pub trait InstallMedia: Send + Sync {
    /// Identifies the OS on a cached installer ISO.
    async fn identify(&self, iso: &LeasedImage) -> PortResult<Identified>;
    /// The built-in template of an automation mechanism, if there is one.
    fn template(&self, mechanism: &str) -> Option<String>;
    /// Fetches a user's automation file from `url`, refusing more than `max_bytes`.
    async fn fetch(&self, url: &str, max_bytes: u64) -> PortResult<Vec<u8>>;
    /// Stores `node`'s automation file, ready to publish.
    async fn store(&self, node: &str, file_name: &str, contents: &[u8]) -> PortResult<Artifact>;
    /// Builds a small FAT image holding the automation file, ready to publish as a medium.
    async fn medium(&self, node: &str, file_name: &str, contents: &[u8]) -> PortResult<Artifact>;
    /// Remasters the ISO with `kernel_args` and its install entry made the default with a
    /// short menu timeout, so the installer starts unattended.
    async fn remaster(
        &self,
        iso: &LeasedImage,
        kernel_args: &str,
        node: &str,
    ) -> PortResult<Artifact>;
    /// The URL the installer (in the node) uses for a publication URL the BMC uses.
    fn installer_url(&self, url: &str) -> String {
        url.to_string()
    }
    /// Drops everything stored for `node`; no error when there is nothing.
    async fn discard(&self, node: &str) -> PortResult<()>;
}

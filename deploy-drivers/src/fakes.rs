//! Recording fakes of every port, for driver tests and for the `fake-hardware` driver.
//!
//! Each fake appends what it was asked to a shared [`CallLog`] (one line per call, e.g.
//! `power.set_power(On)`), so a test asserts the exact call sequence across ports. A fake can be
//! told to fail a named call ([`CallLog::fail_on`]) or never answer it ([`CallLog::hang_on`]) to
//! exercise a driver's error paths and timeouts, and the power/boot fakes can wait a
//! configurable delay per call, like slow hardware would. The log also tracks what the fakes
//! hand out and take back (leases, publications, remasters: [`CallLog::live`]), so a test can
//! prove a driver leaks nothing.
//!
//! Non-goals: no I/O, no real behaviour beyond keeping the power state.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::driver::Ports;
use crate::ports::*;

/// The shared, ordered record of port calls, plus the failures to inject.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Debug, Default)]
struct LogInner {
    calls: Vec<String>,
    failures: HashMap<String, PortError>,
    hangs: HashSet<String>,
    live: BTreeSet<String>,
}

impl CallLog {
    pub fn new() -> Self {
        Self::default()
    }
    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }
    /// Makes every later call whose name (the part before `(`, e.g. `vmedia.insert_cd`) equals
    /// `call` fail with `error`.
    pub fn fail_on(&self, call: &str, error: PortError) {
        self.lock().failures.insert(call.to_string(), error);
    }
    /// Makes every later call named `call` wait forever (a peer that never answers).
    pub fn hang_on(&self, call: &str) {
        self.lock().hangs.insert(call.to_string());
    }
    /// What the fakes handed out and was not taken back, e.g. `lease-1`, `pub-n1`,
    /// `remaster:n1`.
    pub fn live(&self) -> Vec<String> {
        self.lock().live.iter().cloned().collect()
    }
    /// Records `name(args)`; returns the injected failure for `name`, or never returns when
    /// `name` hangs.
    pub async fn record(&self, name: &str, args: impl std::fmt::Display) -> PortResult<()> {
        let hang = {
            let mut inner = self.lock();
            inner.calls.push(format!("{name}({args})"));
            if let Some(err) = inner.failures.get(name) {
                return Err(err.clone());
            }
            inner.hangs.contains(name)
        };
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
    fn hold(&self, what: String) {
        self.lock().live.insert(what);
    }
    fn drop_held(&self, what: &str) {
        self.lock().live.remove(what);
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        // A panic while holding the lock cannot leave the log half-written: recover it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A power controller that keeps its state in memory.
#[derive(Debug)]
pub struct FakePower {
    log: CallLog,
    state: Mutex<PowerState>,
    delay: Duration,
}

impl FakePower {
    pub fn new(log: CallLog, initial: PowerState, delay: Duration) -> Self {
        Self {
            log,
            state: Mutex::new(initial),
            delay,
        }
    }
    pub fn current(&self) -> PowerState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Power for FakePower {
    async fn power_state(&self) -> PortResult<PowerState> {
        self.log.record("power.power_state", "").await?;
        Ok(self.current())
    }
    async fn set_power(&self, action: PowerAction) -> PortResult<()> {
        self.log
            .record("power.set_power", format!("{action:?}"))
            .await?;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let next = match action {
            PowerAction::On | PowerAction::Reboot | PowerAction::SoftReboot => PowerState::On,
            PowerAction::Off | PowerAction::SoftOff => PowerState::Off,
        };
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }
}

/// A boot-device setter that records the last setting.
#[derive(Debug)]
pub struct FakeBoot {
    log: CallLog,
    delay: Duration,
}

impl FakeBoot {
    pub fn new(log: CallLog, delay: Duration) -> Self {
        Self { log, delay }
    }
}

#[async_trait]
impl BootDevice for FakeBoot {
    async fn set_boot_device(
        &self,
        target: BootTarget,
        persistent: bool,
        mode: BootMode,
    ) -> PortResult<()> {
        self.log
            .record(
                "boot.set_boot_device",
                format!("{target:?}, persistent={persistent}, {mode:?}"),
            )
            .await?;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(())
    }
}

/// Virtual media that records eject/insert.
#[derive(Debug)]
pub struct FakeVirtualMedia {
    log: CallLog,
}

impl FakeVirtualMedia {
    pub fn new(log: CallLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl VirtualMedia for FakeVirtualMedia {
    async fn eject_all(&self) -> PortResult<()> {
        self.log.record("vmedia.eject_all", "").await
    }
    async fn insert_cd(&self, url: &str, auth: Option<&MediaAuth>) -> PortResult<()> {
        let arg = match auth {
            Some(a) => format!("{url} as {}", a.username),
            None => url.to_string(),
        };
        self.log.record("vmedia.insert_cd", arg).await
    }
    async fn insert_removable(&self, url: &str, _auth: Option<&MediaAuth>) -> PortResult<()> {
        self.log.record("vmedia.insert_removable", url).await
    }
    async fn eject_removable(&self) -> PortResult<()> {
        self.log.record("vmedia.eject_removable", "").await
    }
}

/// An image cache that "caches" nothing and leases `lease-<n>` ids.
#[derive(Debug)]
pub struct FakeImages {
    log: CallLog,
    next: Mutex<u64>,
    virtual_size: Option<u64>,
}

impl FakeImages {
    pub fn new(log: CallLog) -> Self {
        Self {
            log,
            next: Mutex::new(0),
            virtual_size: None,
        }
    }
    /// A cache whose images all hold a disk of `bytes`.
    pub fn with_virtual_size(log: CallLog, bytes: u64) -> Self {
        Self {
            virtual_size: Some(bytes),
            ..Self::new(log)
        }
    }
}

#[async_trait]
impl Images for FakeImages {
    async fn acquire(
        &self,
        request: &ImageRequest,
        holder: &str,
        lease: &str,
    ) -> PortResult<LeasedImage> {
        self.log
            .record("images.acquire", format!("{}, {holder}", request.url))
            .await?;
        let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        self.log.hold(lease.to_string());
        Ok(LeasedImage {
            lease: lease.to_string(),
            digest: format!("sha256:fake{n}"),
            path: PathBuf::from(format!("/fake/cache/{n}")),
            size: 0,
        })
    }
    async fn release(&self, lease: &str) -> PortResult<()> {
        self.log.record("images.release", lease).await?;
        self.log.drop_held(lease);
        Ok(())
    }
    async fn virtual_size(&self, _image: &LeasedImage) -> PortResult<Option<u64>> {
        Ok(self.virtual_size)
    }
}

/// A remaster that names a patch set it never writes.
#[derive(Debug)]
pub struct FakeRemaster {
    log: CallLog,
}

impl FakeRemaster {
    pub fn new(log: CallLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl Remaster for FakeRemaster {
    async fn remaster(
        &self,
        base: &LeasedImage,
        kernel_args: &str,
        owner: &str,
    ) -> PortResult<Artifact> {
        self.log
            .record(
                "remaster.remaster",
                format!("{}, {kernel_args:?}, {owner}", base.lease),
            )
            .await?;
        self.log.hold(format!("remaster:{owner}"));
        Ok(Artifact {
            base: base.path.clone(),
            patch_set: Some(PathBuf::from(format!("/fake/remaster/{owner}.json"))),
            len: base.size,
        })
    }
    async fn discard(&self, owner: &str) -> PortResult<()> {
        self.log.record("remaster.discard", owner).await?;
        self.log.drop_held(&format!("remaster:{owner}"));
        Ok(())
    }
}

/// A publisher that publishes under the id it is given at `http://fake.invalid/<node>/<name>.iso`.
#[derive(Debug)]
pub struct FakePublisher {
    log: CallLog,
}

impl FakePublisher {
    pub fn new(log: CallLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl Publisher for FakePublisher {
    async fn publish_as(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> PortResult<Publication> {
        self.log
            .record(
                "publisher.publish",
                format!("{}, {node}, {name}", artifact.base.display()),
            )
            .await?;
        self.log.hold(id.to_string());
        Ok(Publication {
            id: id.to_string(),
            url: format!("http://fake.invalid/{node}/{name}.iso"),
            auth: None,
        })
    }
    async fn publish_beside(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
        beside: &str,
    ) -> PortResult<Publication> {
        self.log
            .record(
                "publisher.publish_beside",
                format!(
                    "{}, {node}, {name}, beside {beside}",
                    artifact.base.display()
                ),
            )
            .await?;
        self.log.hold(id.to_string());
        Ok(Publication {
            id: id.to_string(),
            url: format!("http://fake.invalid/{node}/{name}"),
            auth: None,
        })
    }
    async fn revoke(&self, id: &str) -> PortResult<()> {
        self.log.record("publisher.revoke", id).await?;
        self.log.drop_held(id);
        Ok(())
    }
}

/// Netboot config writer that records per node.
#[derive(Debug)]
pub struct FakeNetboot {
    log: CallLog,
}

impl FakeNetboot {
    pub fn new(log: CallLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl Netboot for FakeNetboot {
    async fn write_local_boot(&self, node: &str, boot: &LocalBoot) -> PortResult<()> {
        self.log
            .record(
                "netboot.write_local_boot",
                format!("{node}, {:?}, {:?}", boot.macs, boot.mode),
            )
            .await
    }
    async fn write_iso_boot(&self, node: &str, boot: &IsoBoot) -> PortResult<()> {
        self.log
            .record(
                "netboot.write_iso_boot",
                format!("{node}, {:?}, {:?}", boot.macs, boot.mode),
            )
            .await
    }
    async fn remove(&self, node: &str) -> PortResult<()> {
        self.log.record("netboot.remove", node).await
    }
}

/// A config-drive builder that names an image it never writes.
#[derive(Debug)]
pub struct FakeConfigDrives {
    log: CallLog,
}

impl FakeConfigDrives {
    pub fn new(log: CallLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl ConfigDrives for FakeConfigDrives {
    async fn build(&self, node: &str, source: &ConfigDriveSource) -> PortResult<Artifact> {
        let form = match source {
            ConfigDriveSource::Contents(_) => "contents",
            ConfigDriveSource::Encoded(_) => "encoded",
        };
        self.log
            .record("configdrive.build", format!("{node}, {form}"))
            .await?;
        self.log.hold(format!("configdrive:{node}"));
        Ok(Artifact {
            base: PathBuf::from(format!("/fake/configdrive/{node}.iso")),
            patch_set: None,
            len: 2048,
        })
    }
    async fn discard(&self, node: &str) -> PortResult<()> {
        self.log.record("configdrive.discard", node).await?;
        self.log.drop_held(&format!("configdrive:{node}"));
        Ok(())
    }
}

/// An agent that "writes" instantly, or in `delay` with progress reported in quarters (like
/// slow hardware would, so progress can be watched).
#[derive(Debug)]
pub struct FakeAgent {
    log: CallLog,
    delay: Duration,
}

impl FakeAgent {
    pub fn new(log: CallLog) -> Self {
        Self::with_delay(log, Duration::ZERO)
    }
    pub fn with_delay(log: CallLog, delay: Duration) -> Self {
        Self { log, delay }
    }
}

#[async_trait]
impl Agent for FakeAgent {
    async fn ramdisk(&self) -> PortResult<LeasedImage> {
        self.log.record("agent.ramdisk", "").await?;
        Ok(LeasedImage {
            lease: String::new(),
            digest: "sha256:agent".into(),
            path: PathBuf::from("/fake/agent.iso"),
            size: 1 << 20,
        })
    }
    async fn begin(&self, node: &str) -> PortResult<String> {
        self.log.record("agent.begin", node).await?;
        Ok(format!(
            "ironcast.url=http://conductor.invalid ironcast.node={node} ironcast.token=fake"
        ))
    }
    async fn wait_ready(&self, node: &str, _timeout: Duration) -> PortResult<Inventory> {
        self.log.record("agent.wait_ready", node).await?;
        Ok(Inventory {
            disks: vec![InventoryDisk {
                name: "/dev/sda".into(),
                size: 100 << 30,
                ..InventoryDisk::default()
            }],
            memory_mb: 4096,
            cpu_count: 2,
            cpu_arch: "x86_64".into(),
            ..Inventory::default()
        })
    }
    async fn run(
        &self,
        node: &str,
        command: &AgentCommand,
        _timeout: Duration,
        progress: &dyn ProgressSink,
    ) -> PortResult<serde_json::Value> {
        self.log
            .record(
                &format!("agent.{}", command.name()),
                format!(
                    "{node}, {}",
                    serde_json::to_string(command).unwrap_or_default()
                ),
            )
            .await?;
        let total = if self.delay.is_zero() { 1 } else { 4 << 20 };
        if !self.delay.is_zero() {
            for quarter in 0..4u64 {
                progress.progress(AgentProgress {
                    done_bytes: quarter << 20,
                    total_bytes: Some(total),
                });
                tokio::time::sleep(self.delay / 4).await;
            }
        }
        progress.progress(AgentProgress {
            done_bytes: total,
            total_bytes: Some(total),
        });
        Ok(serde_json::Value::Null)
    }
    async fn end(&self, node: &str) {
        let _ = self.log.record("agent.end", node).await;
    }
}

/// An image cache that reserves room for captures and registers what is "uploaded".
#[derive(Debug)]
pub struct FakeCaptures {
    log: CallLog,
    pending: Mutex<HashMap<String, (CaptureRequest, u64)>>,
}

impl FakeCaptures {
    pub fn new(log: CallLog) -> Self {
        Self {
            log,
            pending: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Captures for FakeCaptures {
    async fn reserve(
        &self,
        node: &str,
        request: &CaptureRequest,
        disk_bytes: u64,
    ) -> PortResult<()> {
        self.log
            .record(
                "captures.reserve",
                format!("{node}, {}, {disk_bytes}", request.name),
            )
            .await?;
        self.log.hold(format!("capture:{node}"));
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), (request.clone(), disk_bytes));
        Ok(())
    }
    async fn finish(&self, node: &str) -> PortResult<CapturedImage> {
        self.log.record("captures.finish", node).await?;
        let taken = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
        self.log.drop_held(&format!("capture:{node}"));
        let (request, disk) =
            taken.ok_or_else(|| PortError::other(format!("no capture reserved for {node}")))?;
        Ok(CapturedImage {
            name: request.name,
            format: request.format,
            digest: "sha256:feed".into(),
            size: disk / 4,
            virtual_size: disk,
            data_bytes: disk / 2,
        })
    }
    async fn discard(&self, node: &str) {
        let _ = self.log.record("captures.discard", node).await;
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
        self.log.drop_held(&format!("capture:{node}"));
    }
}

/// Every port, faked, sharing one log; power starts in `initial`, power/boot calls and agent
/// commands take `delay` each.
pub fn fake_ports(log: &CallLog, initial: PowerState, delay: Duration) -> Ports {
    Ports {
        power: Arc::new(FakePower::new(log.clone(), initial, delay)),
        boot: Arc::new(FakeBoot::new(log.clone(), delay)),
        vmedia: Some(Arc::new(FakeVirtualMedia::new(log.clone()))),
        images: Some(Arc::new(FakeImages::new(log.clone()))),
        remaster: Some(Arc::new(FakeRemaster::new(log.clone()))),
        publisher: Some(Arc::new(FakePublisher::new(log.clone()))),
        netboot: Some(Arc::new(FakeNetboot::new(log.clone()))),
        agent: Some(Arc::new(FakeAgent::with_delay(log.clone(), delay))),
        config_drives: Some(Arc::new(FakeConfigDrives::new(log.clone()))),
        captures: Some(Arc::new(FakeCaptures::new(log.clone()))),
        install_media: Some(Arc::new(FakeInstallMedia::new(log.clone()))),
    }
}

/// Installer ISO support that identifies every ISO as `identity` (a Debian-like installer
/// taking a preseed by default), keeps the stored files' texts, and fetches `fetched`.
#[derive(Debug)]
pub struct FakeInstallMedia {
    log: CallLog,
    pub identity: Mutex<Identified>,
    pub templates: Mutex<HashMap<String, String>>,
    pub fetched: Mutex<Vec<u8>>,
    /// What `store` and `medium` were given, by file name.
    pub stored: Mutex<HashMap<String, String>>,
}

impl FakeInstallMedia {
    pub fn new(log: CallLog) -> Self {
        let mut templates = HashMap::new();
        templates.insert(
            "preseed".to_string(),
            "d-i netcfg/get_hostname string {{ hostname }}\nd-i preseed/late_command string wget --header 'X-Ironcast-Agent-Token: {{ callback_token }}' --post-data '' {{ callback_url }}\n".to_string(),
        );
        Self {
            log,
            identity: Mutex::new(Identified::Known(OsIdentity {
                id: "debian".into(),
                family: "debian".into(),
                distro: "debian".into(),
                version: Some("12.2.0".into()),
                arch: Some("x86_64".into()),
                installer: "debian-installer".into(),
                automation: vec![AutomationWay {
                    name: "preseed".into(),
                    kernel_args: "auto=true priority=critical url={url}".into(),
                    file_name: "preseed.cfg".into(),
                    medium: false,
                    companions: Default::default(),
                }],
            })),
            templates: Mutex::new(templates),
            fetched: Mutex::new(b"# fetched".to_vec()),
            stored: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl InstallMedia for FakeInstallMedia {
    async fn identify(&self, iso: &LeasedImage) -> PortResult<Identified> {
        self.log
            .record("media.identify", iso.path.display())
            .await?;
        Ok(self
            .identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }
    fn template(&self, mechanism: &str) -> Option<String> {
        self.templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(mechanism)
            .cloned()
    }
    async fn fetch(&self, url: &str, max_bytes: u64) -> PortResult<Vec<u8>> {
        self.log.record("media.fetch", url).await?;
        let bytes = self
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if bytes.len() as u64 > max_bytes {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!("{url} is larger than {max_bytes} bytes"),
            ));
        }
        Ok(bytes)
    }
    async fn store(&self, node: &str, file_name: &str, contents: &[u8]) -> PortResult<Artifact> {
        self.log
            .record("media.store", format!("{node}, {file_name}"))
            .await?;
        self.log.hold(format!("media:{node}"));
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file_name.into(), String::from_utf8_lossy(contents).into());
        Ok(Artifact {
            base: PathBuf::from(format!("/fake/install/{node}/{file_name}")),
            patch_set: None,
            len: contents.len() as u64,
        })
    }
    async fn medium(&self, node: &str, file_name: &str, contents: &[u8]) -> PortResult<Artifact> {
        self.log
            .record("media.medium", format!("{node}, {file_name}"))
            .await?;
        self.log.hold(format!("media:{node}"));
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file_name.into(), String::from_utf8_lossy(contents).into());
        Ok(Artifact {
            base: PathBuf::from(format!("/fake/install/{node}/automation.img")),
            patch_set: None,
            len: 1 << 20,
        })
    }
    async fn remaster(
        &self,
        iso: &LeasedImage,
        kernel_args: &str,
        node: &str,
    ) -> PortResult<Artifact> {
        self.log
            .record("media.remaster", format!("{kernel_args:?}, {node}"))
            .await?;
        self.log.hold(format!("media:{node}"));
        Ok(Artifact {
            base: iso.path.clone(),
            patch_set: Some(PathBuf::from(format!("/fake/install/{node}/install.json"))),
            len: iso.size,
        })
    }
    fn installer_url(&self, url: &str) -> String {
        url.replace("http://fake.invalid", "http://10.0.2.2:8081")
    }
    async fn discard(&self, node: &str) -> PortResult<()> {
        self.log.record("media.discard", node).await?;
        self.log.drop_held(&format!("media:{node}"));
        Ok(())
    }
}

/// Wraps the cache and publisher ports of `ports` so that each `acquire` and `publish_as`
/// checks, at the moment it is called, that its id is already in what `recorded` returns (the
/// node's driver_internal_info as saved so far, rendered as text). Returns the ports and the
/// list of ids found unrecorded: a driver that saves its intent first leaves it empty.
pub fn check_intent_first(
    ports: &Ports,
    recorded: Arc<dyn Fn() -> String + Send + Sync>,
) -> (Ports, Arc<Mutex<Vec<String>>>) {
    let unrecorded = Arc::new(Mutex::new(Vec::new()));
    let check = IntentCheck {
        images: ports.images.clone().expect("images port"),
        publisher: ports.publisher.clone().expect("publisher port"),
        recorded,
        unrecorded: unrecorded.clone(),
    };
    let check = Arc::new(check);
    let mut out = ports.clone();
    out.images = Some(check.clone());
    out.publisher = Some(check);
    (out, unrecorded)
}

struct IntentCheck {
    images: Arc<dyn Images>,
    publisher: Arc<dyn Publisher>,
    recorded: Arc<dyn Fn() -> String + Send + Sync>,
    unrecorded: Arc<Mutex<Vec<String>>>,
}

impl IntentCheck {
    fn check(&self, what: &str, id: &str) {
        if !(self.recorded)().contains(id) {
            let mut u = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
            u.push(format!("{what} {id}"));
        }
    }
}

#[async_trait]
impl Images for IntentCheck {
    async fn acquire(
        &self,
        request: &ImageRequest,
        holder: &str,
        lease: &str,
    ) -> PortResult<LeasedImage> {
        self.check("lease", lease);
        self.images.acquire(request, holder, lease).await
    }
    async fn release(&self, lease: &str) -> PortResult<()> {
        self.images.release(lease).await
    }
    async fn virtual_size(&self, image: &LeasedImage) -> PortResult<Option<u64>> {
        self.images.virtual_size(image).await
    }
}

#[async_trait]
impl Publisher for IntentCheck {
    async fn publish_as(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
    ) -> PortResult<Publication> {
        self.check("publication", id);
        self.publisher.publish_as(id, artifact, node, name).await
    }
    async fn publish_beside(
        &self,
        id: &str,
        artifact: &Artifact,
        node: &str,
        name: &str,
        beside: &str,
    ) -> PortResult<Publication> {
        self.check("publication", id);
        self.publisher
            .publish_beside(id, artifact, node, name, beside)
            .await
    }
    async fn revoke(&self, id: &str) -> PortResult<()> {
        self.publisher.revoke(id).await
    }
}

/// Events that refuse the `nth` (from 0) save of an intent (a store that lost its connection,
/// or a lock taken away), passing everything else to `inner`: the driver must then fail the
/// step and make nothing. [`RefuseIntent::refused`] tells whether a save was refused.
pub struct RefuseIntent<'a> {
    inner: &'a dyn crate::driver::DeployEvents,
    nth: usize,
    seen: Mutex<usize>,
    refused: Mutex<Option<String>>,
}

impl<'a> RefuseIntent<'a> {
    pub fn new(inner: &'a dyn crate::driver::DeployEvents, nth: usize) -> Self {
        Self {
            inner,
            nth,
            seen: Mutex::new(0),
            refused: Mutex::new(None),
        }
    }
    /// The key whose save was refused, if the driver got that far.
    pub fn refused(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl crate::driver::DeployEvents for RefuseIntent<'_> {
    async fn step(&self, step: &str, detail: &str) {
        self.inner.step(step, detail).await
    }
    async fn save_internal(&self, key: &str, value: serde_json::Value) {
        self.inner.save_internal(key, value).await
    }
    async fn save_intent(&self, key: &str, value: serde_json::Value) -> PortResult<()> {
        let n = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            *seen += 1;
            *seen - 1
        };
        if n == self.nth {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.to_string());
            return Err(PortError::other(format!(
                "the store refused to save {key} (fake)"
            )));
        }
        self.inner.save_intent(key, value).await
    }
}

/// Deploys `node` once per intent the driver saves, refusing the first save, then the second,
/// and so on, until a deploy saves them all. Each refused deploy must fail, say the id was not
/// recorded, and leave nothing live. Returns the failed steps, one per intent.
pub async fn refuse_each_intent<E: crate::driver::DeployEvents + Default>(
    driver: &dyn crate::driver::DeployDriver,
    node: &crate::driver::NodeView,
    fresh_ports: impl Fn() -> (Ports, CallLog),
) -> Vec<String> {
    let mut steps = Vec::new();
    let mut nth = 0;
    loop {
        let (ports, log) = fresh_ports();
        let inner = E::default();
        let events = RefuseIntent::new(&inner, nth);
        let result = driver.deploy(node, &ports, &events).await;
        let Some(key) = events.refused() else {
            assert!(result.is_ok(), "{result:?}");
            return steps;
        };
        let err = result.expect_err("a deploy whose intent was not saved must fail");
        assert!(
            err.source.message.contains("could not be recorded"),
            "intent {nth} ({key}): {err}"
        );
        assert!(
            log.live().is_empty(),
            "intent {nth} ({key}) refused, yet left held: {:?}",
            log.live()
        );
        steps.push(err.step);
        nth += 1;
    }
}

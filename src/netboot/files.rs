//! Writing and removing per-MAC configs under a TFTP root, and the `Netboot` port.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use deploy_drivers::{BootMode, IsoBoot, LocalBoot, Netboot, PortError, PortErrorKind, PortResult};

use super::render::{self, DeployBoot, Mac};
use super::NetbootError;

/// Node → MACs it was given, so `remove(node)` finds every file.
const NODES_DIR: &str = ".nodes";

/// A TFTP root directory holding per-MAC boot configs.
#[derive(Debug, Clone)]
pub struct NetbootDir {
    root: PathBuf,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> NetbootError {
    move |source| NetbootError::Io { context, source }
}

impl NetbootDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn put(&self, rel: &str, text: &str) -> Result<(), NetbootError> {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        // A booting node never reads half a file; a power loss never brings an old one back.
        crate::durable::write(&path, text.as_bytes(), crate::durable::Mode::Public)
            .map_err(durable_err)
    }

    fn remember(&self, node: &str, macs: &[Mac]) -> Result<(), NetbootError> {
        check_node(node)?;
        let list: String = macs.iter().map(|m| m.hyphenated() + "\n").collect();
        self.put(&format!("{NODES_DIR}/{node}"), &list)
    }

    fn parse_macs(macs: &[String]) -> Result<Vec<Mac>, NetbootError> {
        macs.iter().map(|m| Mac::parse(m)).collect()
    }

    /// Writes local-boot configs (pxelinux, GRUB, iPXE) for every MAC of `node`.
    pub fn write_local(
        &self,
        node: &str,
        macs: &[String],
        mode: BootMode,
    ) -> Result<(), NetbootError> {
        let macs = Self::parse_macs(macs)?;
        self.remember(node, &macs)?;
        for m in &macs {
            self.put(&m.pxelinux_path(), &render::pxelinux_local())?;
            self.put(&m.grub_path(), &render::grub_local(mode))?;
            self.put(&m.ipxe_path(), &render::ipxe_local(mode))?;
        }
        Ok(())
    }

    /// Writes deploy configs (kernel + initrd + args) for every MAC of `node`.
    pub fn write_deploy(
        &self,
        node: &str,
        macs: &[String],
        boot: &DeployBoot,
    ) -> Result<(), NetbootError> {
        let macs = Self::parse_macs(macs)?;
        let [pxe, grub, ipxe] = render::deploy(boot)?;
        self.remember(node, &macs)?;
        for m in &macs {
            self.put(&m.pxelinux_path(), &pxe)?;
            self.put(&m.grub_path(), &grub)?;
            self.put(&m.ipxe_path(), &ipxe)?;
        }
        Ok(())
    }

    /// Writes, for every MAC of `node`, an iPXE script that `sanboot`s the ISO at `url`, and
    /// drops any pxelinux/GRUB config of those MACs (the DHCP responder chains every PXE
    /// client into iPXE, which reads the script).
    pub fn write_iso(&self, node: &str, macs: &[String], url: &str) -> Result<(), NetbootError> {
        let macs = Self::parse_macs(macs)?;
        let script = render::ipxe_sanboot(url)?;
        self.remember(node, &macs)?;
        for m in &macs {
            self.put(&m.ipxe_path(), &script)?;
            for stale in [m.pxelinux_path(), m.grub_path()] {
                let p = self.root.join(stale);
                crate::durable::remove(&p).map_err(durable_err)?;
            }
        }
        Ok(())
    }

    /// Removes every config written for `node`; nothing to remove is not an error.
    pub fn remove_node(&self, node: &str) -> Result<(), NetbootError> {
        check_node(node)?;
        let list = self.root.join(NODES_DIR).join(node);
        let text = match std::fs::read_to_string(&list) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format!("reading {}", list.display()))(e)),
        };
        for line in text.lines() {
            let Ok(m) = Mac::parse(line) else { continue };
            for rel in [m.pxelinux_path(), m.grub_path(), m.ipxe_path()] {
                let p = self.root.join(rel);
                crate::durable::remove(&p).map_err(durable_err)?;
            }
        }
        crate::durable::remove(&list).map(drop).map_err(durable_err)
    }
}

fn durable_err(e: crate::durable::DurableError) -> NetbootError {
    NetbootError::Io {
        context: e.context,
        source: e.source,
    }
}

fn check_node(node: &str) -> Result<(), NetbootError> {
    if node.is_empty()
        || !node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(NetbootError::BadText {
            what: "node name (letters, digits, '-', '_')",
        });
    }
    Ok(())
}

fn port_err(e: NetbootError) -> PortError {
    let kind = match e {
        NetbootError::Io { .. } => PortErrorKind::Other,
        _ => PortErrorKind::InvalidInput,
    };
    PortError::new(kind, e.to_string())
}

#[async_trait]
impl Netboot for NetbootDir {
    async fn write_local_boot(&self, node: &str, boot: &LocalBoot) -> PortResult<()> {
        let (me, node, boot) = (self.clone(), node.to_string(), boot.clone());
        tokio::task::spawn_blocking(move || me.write_local(&node, &boot.macs, boot.mode))
            .await
            .map_err(|e| PortError::other(format!("netboot task failed: {e}")))?
            .map_err(port_err)
    }

    async fn write_iso_boot(&self, node: &str, boot: &IsoBoot) -> PortResult<()> {
        let (me, node, boot) = (self.clone(), node.to_string(), boot.clone());
        tokio::task::spawn_blocking(move || me.write_iso(&node, &boot.macs, &boot.url))
            .await
            .map_err(|e| PortError::other(format!("netboot task failed: {e}")))?
            .map_err(port_err)
    }

    async fn remove(&self, node: &str) -> PortResult<()> {
        let (me, node) = (self.clone(), node.to_string());
        tokio::task::spawn_blocking(move || me.remove_node(&node))
            .await
            .map_err(|e| PortError::other(format!("netboot task failed: {e}")))?
            .map_err(port_err)
    }
}

/// A MAC needs a network boot while a per-MAC config is written for it: from the start of a
/// deploy or clean through local boot until undeploy removes them.
impl super::dhcp::NeedsNetboot for NetbootDir {
    fn needs_netboot(&self, mac: &Mac) -> bool {
        self.root.join(mac.ipxe_path()).is_file()
    }
}

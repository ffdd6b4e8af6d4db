//! The [`InstallMedia`] port of the iso-install deploy: identification of cached installer
//! ISOs ([`crate::iso::identify`]), their unattended remaster (kernel args, install entry made
//! the default with a short menu timeout), the built-in automation templates (`templates/`,
//! embedded), users' automation files fetched with a size limit, and each node's files stored
//! under `<dir>/<node>/` (the automation file, its FAT medium, the remaster's patch set) until
//! `discard`.

use std::path::PathBuf;

use async_trait::async_trait;
use deploy_drivers::ports::{
    Artifact, AutomationWay, Identified, InstallMedia, LeasedImage, OsIdentity, PortError,
    PortErrorKind, PortResult,
};

use crate::iso;

/// The built-in templates, by mechanism.
const TEMPLATES: &[(&str, &str)] = &[
    ("kickstart", include_str!("templates/kickstart.cfg")),
    ("preseed", include_str!("templates/preseed.cfg")),
    ("autoinstall", include_str!("templates/user-data")),
    ("autoyast", include_str!("templates/autoinst.xml")),
    ("ignition", include_str!("templates/config.ign")),
    ("unattend", include_str!("templates/autounattend.xml")),
];

pub struct FileInstallMedia {
    dir: PathBuf,
    /// Menu timeout of the remastered ISO (s).
    menu_timeout_s: u32,
    /// `(image server base URL, the base installers reach it at)`.
    rebase: Option<(String, String)>,
    http: reqwest::Client,
}

impl FileInstallMedia {
    pub fn new(
        dir: impl Into<PathBuf>,
        menu_timeout_s: u32,
        rebase: Option<(String, String)>,
    ) -> Self {
        Self {
            dir: dir.into(),
            menu_timeout_s,
            rebase,
            http: reqwest::Client::new(),
        }
    }

    fn node_dir(&self, node: &str) -> PortResult<PathBuf> {
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!("node {node:?} is not a valid directory name"),
            ));
        }
        Ok(self.dir.join(node))
    }

    /// Writes `bytes` to `<dir>/<node>/<name>` atomically.
    async fn write(&self, node: &str, name: &str, bytes: Vec<u8>) -> PortResult<PathBuf> {
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!("{name:?} is not a plain file name"),
            ));
        }
        let dir = self.node_dir(node)?;
        let path = dir.join(name);
        let out = path.clone();
        tokio::task::spawn_blocking(move || {
            let err = |what: &str, e: std::io::Error| PortError::other(format!("{what}: {e}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| err(&format!("creating {}", dir.display()), e))?;
            let tmp = path.with_extension("part");
            std::fs::write(&tmp, &bytes)
                .map_err(|e| err(&format!("writing {}", tmp.display()), e))?;
            std::fs::rename(&tmp, &path).map_err(|e| err(&format!("renaming {}", tmp.display()), e))
        })
        .await
        .map_err(|e| PortError::other(format!("storing {name} failed: {e}")))??;
        Ok(out)
    }
}

fn identity(found: iso::identify::Identity) -> OsIdentity {
    OsIdentity {
        id: found.id,
        family: serde_json::to_value(found.family)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        distro: found.distro,
        version: found.version,
        arch: found.arch,
        installer: found.installer,
        automation: found
            .automation
            .into_iter()
            .map(|a| AutomationWay {
                name: a.name,
                kernel_args: a.how.kernel_args,
                file_name: a.how.file_name,
                medium: a.how.medium,
                companions: a.how.companions,
            })
            .collect(),
    }
}

fn iso_error(what: &str, e: iso::IsoError) -> PortError {
    let kind = match e {
        iso::IsoError::Io { .. } => PortErrorKind::Other,
        _ => PortErrorKind::InvalidInput,
    };
    PortError::new(kind, format!("{what}: {e}"))
}

#[async_trait]
impl InstallMedia for FileInstallMedia {
    async fn identify(&self, image: &LeasedImage) -> PortResult<Identified> {
        let path = image.path.clone();
        let found = tokio::task::spawn_blocking(move || iso::identify::identify(&path))
            .await
            .map_err(|e| PortError::other(format!("identify task failed: {e}")))?
            .map_err(|e| iso_error("reading the installer ISO", e))?;
        Ok(match found {
            Ok(id) => Identified::Known(identity(id)),
            Err(none) => Identified::Unknown {
                looked_for: none.looked_for.join("; "),
            },
        })
    }

    fn template(&self, mechanism: &str) -> Option<String> {
        TEMPLATES
            .iter()
            .find(|(m, _)| *m == mechanism)
            .map(|(_, t)| t.to_string())
    }

    async fn fetch(&self, url: &str, max_bytes: u64) -> PortResult<Vec<u8>> {
        let too_big = || {
            PortError::new(
                PortErrorKind::InvalidInput,
                format!("the automation file at {url} is larger than {max_bytes} bytes (1 MiB): shorten it"),
            )
        };
        if let Some(path) = url.strip_prefix("file://") {
            let meta = tokio::fs::metadata(path).await.map_err(|e| {
                PortError::new(PortErrorKind::InvalidInput, format!("reading {url}: {e}"))
            })?;
            if meta.len() > max_bytes {
                return Err(too_big());
            }
            return tokio::fs::read(path).await.map_err(|e| {
                PortError::new(PortErrorKind::InvalidInput, format!("reading {url}: {e}"))
            });
        }
        let unreachable = |e: reqwest::Error| {
            PortError::new(PortErrorKind::Unreachable, format!("fetching {url}: {e}"))
        };
        let mut resp = self.http.get(url).send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(PortError::new(
                PortErrorKind::InvalidInput,
                format!("fetching {url}: HTTP {}", resp.status()),
            ));
        }
        if resp.content_length().is_some_and(|n| n > max_bytes) {
            return Err(too_big());
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max_bytes {
                return Err(too_big());
            }
        }
        Ok(out)
    }

    async fn store(&self, node: &str, file_name: &str, contents: &[u8]) -> PortResult<Artifact> {
        let path = self.write(node, file_name, contents.to_vec()).await?;
        Ok(Artifact {
            base: path,
            patch_set: None,
            len: contents.len() as u64,
        })
    }

    async fn medium(&self, node: &str, file_name: &str, contents: &[u8]) -> PortResult<Artifact> {
        let image = iso::efi_image(&[(file_name, contents)])
            .map_err(|e| iso_error("building the automation medium", e))?;
        let len = image.len() as u64;
        let path = self.write(node, "automation.img", image).await?;
        Ok(Artifact {
            base: path,
            patch_set: None,
            len,
        })
    }

    async fn remaster(
        &self,
        image: &LeasedImage,
        kernel_args: &str,
        node: &str,
    ) -> PortResult<Artifact> {
        let (base, args, timeout) = (
            image.path.clone(),
            kernel_args.to_string(),
            self.menu_timeout_s,
        );
        let set =
            tokio::task::spawn_blocking(move || iso::remaster_unattended(&base, &args, timeout))
                .await
                .map_err(|e| PortError::other(format!("remaster task failed: {e}")))?
                .map_err(|e| iso_error("remastering the installer ISO", e))?
                .0;
        let json = serde_json::to_vec(&set).map_err(|e| PortError::other(e.to_string()))?;
        let path = self.write(node, "install.json", json).await?;
        Ok(Artifact {
            base: image.path.clone(),
            patch_set: Some(path),
            len: set.len,
        })
    }

    fn installer_url(&self, url: &str) -> String {
        match &self.rebase {
            Some((from, to)) if url.starts_with(from.as_str()) => {
                format!(
                    "{}{}",
                    to.trim_end_matches('/'),
                    &url[from.trim_end_matches('/').len()..]
                )
            }
            _ => url.to_string(),
        }
    }

    async fn discard(&self, node: &str) -> PortResult<()> {
        let dir = self.node_dir(node)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PortError::other(format!("removing {}: {e}", dir.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mechanism_of_the_table_has_a_template_that_renders_with_full_values() {
        let values: std::collections::BTreeMap<&str, String> =
            deploy_drivers::iso_install::VARIABLES
                .iter()
                .map(|(n, _)| (*n, format!("<{n}>")))
                .collect();
        for name in iso::identify::table().automation.keys() {
            let (_, text) = TEMPLATES
                .iter()
                .find(|(m, _)| m == name)
                .unwrap_or_else(|| panic!("no template for {name}"));
            let out = deploy_drivers::iso_install::render(text, &values)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(out.contains("<hostname>"), "{name}");
        }
    }

    #[test]
    fn installer_urls_are_rebased() {
        let m = FileInstallMedia::new(
            "/x",
            3,
            Some((
                "http://127.0.0.1:8081".into(),
                "http://10.0.2.2:8081/".into(),
            )),
        );
        assert_eq!(
            m.installer_url("http://127.0.0.1:8081/tok/ks.cfg"),
            "http://10.0.2.2:8081/tok/ks.cfg"
        );
        assert_eq!(m.installer_url("http://other/x"), "http://other/x");
    }
}

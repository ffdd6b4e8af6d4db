//! OS identification from an installer ISO's own contents, libosinfo-style: the volume id,
//! the paths present and a few small text files (`.treeinfo`, `.discinfo`, `.disk/info`, SUSE
//! `media.1/products`, `.alpine-release`) matched against a table of distributions
//! (`table.toml`, data with its sources named). Answers `ironcast iso identify` and the
//! iso-install deploy's question: which installer is this and how does it take its answer file?
//!
//! Non-goals: reading UDF (Windows media are told by their volume id, as libosinfo does), or
//! reading package metadata.

mod rules;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

pub use rules::{table, Facts, Mechanism, Row};

use super::family::Family;
use super::image::Iso;
use super::source::{read, FileSource, Source};
use super::{IsoError, SECTOR};

/// Longest text file identification reads.
pub const MAX_TEXT: u32 = 64 * 1024;

/// An automation mechanism the installer accepts, with how it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Automation {
    pub name: String,
    #[serde(flatten)]
    pub how: Mechanism,
}

/// What `iso identify` says about an ISO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The table row that matched.
    pub id: String,
    pub family: Family,
    pub distro: String,
    pub version: Option<String>,
    pub arch: Option<String>,
    /// The installer program: anaconda, debian-installer, subiquity, yast, coreos-installer,
    /// windows-setup, setup-alpine.
    pub installer: String,
    /// Answer-file mechanisms the installer accepts (none: interactive only).
    pub automation: Vec<Automation>,
    pub volume_id: String,
}

/// An ISO no row of the table matched: what was looked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unidentified {
    pub volume_id: String,
    pub looked_for: Vec<String>,
}

impl std::fmt::Display for Unidentified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the ISO (volume id {:?}) matches no known installer; looked for: {}",
            self.volume_id,
            self.looked_for.join("; ")
        )
    }
}

/// Identifies the ISO at `path`.
pub fn identify(path: &Path) -> Result<Result<Identity, Unidentified>, IsoError> {
    let src = FileSource::open(path)?;
    identify_source(&src)
}

/// Identifies any [`Source`].
pub fn identify_source(src: &dyn Source) -> Result<Result<Identity, Unidentified>, IsoError> {
    Ok(classify(&facts(src)?))
}

/// Reads the facts: the volume id, every path of the Rock Ridge/ISO 9660 and Joliet trees,
/// and the texts rows look into.
pub fn facts(src: &dyn Source) -> Result<Facts, IsoError> {
    let iso = Iso::read(src)?;
    let volume_id = iso
        .volumes
        .primary
        .as_ref()
        .map(|p| p.volume_id.clone())
        .ok_or_else(|| IsoError::NotIso("no primary volume descriptor".into()))?;
    let trees = std::iter::once(&iso.tree).chain(iso.joliet.iter());
    let mut paths = BTreeSet::new();
    let mut texts = std::collections::BTreeMap::new();
    for tree in trees {
        for e in &tree.entries {
            paths.insert(e.path.clone());
        }
        for want in rules::TEXT_FILES {
            if texts.contains_key(*want) {
                continue;
            }
            let Some(e) = tree.find(want).filter(|e| !e.is_dir && e.size <= MAX_TEXT) else {
                continue;
            };
            let bytes = read(src, e.extent as u64 * SECTOR, e.size as u64, &e.path)?;
            texts.insert(
                want.to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            );
        }
    }
    Ok(Facts {
        volume_id,
        paths,
        texts,
    })
}

/// The first row that matches the facts (pure).
pub fn classify(f: &Facts) -> Result<Identity, Unidentified> {
    let t = table();
    match t.os.iter().find(|r| r.matches(f)) {
        Some(row) => Ok(Identity {
            id: row.id.clone(),
            family: row.family,
            distro: row.distro.clone(),
            version: rules::version(row, f),
            arch: rules::arch(f),
            installer: row.installer.clone(),
            automation: row
                .automation
                .iter()
                .filter_map(|n| {
                    t.automation.get(n).map(|how| Automation {
                        name: n.clone(),
                        how: how.clone(),
                    })
                })
                .collect(),
            volume_id: f.volume_id.clone(),
        }),
        None => Err(Unidentified {
            volume_id: f.volume_id.clone(),
            looked_for: t.os.iter().map(Row::describe).collect(),
        }),
    }
}

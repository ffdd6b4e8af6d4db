//! A guess of the OS family from the volume id and the layout; used for display only.

use serde::Serialize;

use super::dirtree::Tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Debian,
    Ubuntu,
    FedoraRhel,
    Suse,
    Alpine,
    Coreos,
    Unknown,
}

/// Guesses the family; the volume id wins over the layout.
pub fn guess(volume_id: &str, tree: &Tree) -> Family {
    let v = volume_id.to_ascii_lowercase();
    let has = |p: &str| tree.find(p).is_some();
    if v.contains("coreos") || v.starts_with("rhcos") || has("/coreos") {
        Family::Coreos
    } else if v.starts_with("ubuntu") || has("/casper") {
        Family::Ubuntu
    } else if v.starts_with("debian") || has("/install.amd") || (has("/.disk/info") && has("/live"))
    {
        Family::Debian
    } else if ["fedora", "rhel", "centos", "rocky", "alma", "ol-"]
        .iter()
        .any(|p| v.starts_with(p))
        || has("/images/pxeboot")
        || has("/.treeinfo")
    {
        Family::FedoraRhel
    } else if v.starts_with("sle") || v.contains("opensuse") || has("/boot/x86_64/loader") {
        Family::Suse
    } else if v.starts_with("alpine") || has("/apks") {
        Family::Alpine
    } else {
        Family::Unknown
    }
}

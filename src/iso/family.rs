//! A guess of the OS family from the volume id and the layout; used for display only.

use serde::Serialize;

use super::dirtree::Tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Debian,
    Ubuntu,
    FedoraRhel,
    Suse,
    Alpine,
    Coreos,
    Windows,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::dirtree::Entry;

    fn tree(paths: &[&str]) -> Tree {
        Tree {
            entries: paths
                .iter()
                .map(|p| Entry {
                    path: p.to_string(),
                    is_dir: true,
                    extent: 0,
                    size: 0,
                    record: 0,
                    multi_extent: false,
                })
                .collect(),
            rock_ridge: true,
        }
    }

    #[test]
    fn guesses_families() {
        let table = [
            (
                "fedora-coreos-38.20230709.3.0-live.x86_64",
                &[][..],
                Family::Coreos,
            ),
            ("rhcos-413.92", &[], Family::Coreos),
            ("Ubuntu-Server 22.04", &[], Family::Ubuntu),
            ("CDROM", &["/casper"][..], Family::Ubuntu),
            ("Debian 12.2.0 amd64 n", &[], Family::Debian),
            ("RHEL-9-2-0-BaseOS-x86_64", &[], Family::FedoraRhel),
            ("CDROM", &["/images/pxeboot"][..], Family::FedoraRhel),
            ("SLE-15-SP5-Full-x86_64", &[], Family::Suse),
            ("CDROM", &["/boot/x86_64/loader"][..], Family::Suse),
            ("alpine-std 3.18.4 x86_64", &[], Family::Alpine),
            ("CDROM", &[], Family::Unknown),
        ];
        for (volid, paths, want) in table {
            assert_eq!(guess(volid, &tree(paths)), want, "{volid} {paths:?}");
        }
    }
}

//! The identification table (`table.toml`, embedded) and its pure matching over [`Facts`]:
//! which row holds, and the version and architecture read where the row says.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::iso::family::Family;

/// What identification reads from an ISO: its volume id, the paths present (directories
/// too) and the texts of the small files rows look into.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub volume_id: String,
    pub paths: BTreeSet<String>,
    /// Path → text, for the files in [`TEXT_FILES`] that exist.
    pub texts: BTreeMap<String, String>,
}

impl Facts {
    /// Present, compared without regard to case (plain ISO 9660 names are upper case).
    fn has(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p.eq_ignore_ascii_case(path))
    }
    fn text(&self, path: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(path))
            .map(|(_, t)| t.as_str())
    }
}

/// Files whose text identification reads (each at most [`super::MAX_TEXT`] bytes).
pub const TEXT_FILES: &[&str] = &[
    "/.treeinfo",
    "/treeinfo",
    "/.discinfo",
    "/.disk/info",
    "/media.1/products",
    "/media.1/media",
    "/content",
    "/.alpine-release",
];

/// How an installer takes its automation file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mechanism {
    /// Kernel args, with `{url}`, `{dir_url}` and `{root_device}` filled in at deploy time.
    pub kernel_args: String,
    /// The file's name when published (and on the medium).
    pub file_name: String,
    /// True when the file goes on a second virtual medium instead of a URL.
    #[serde(default)]
    pub medium: bool,
    /// More files published beside it, by name: templates rendered like the file.
    #[serde(default)]
    pub companions: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub id: String,
    pub family: Family,
    pub distro: String,
    pub installer: String,
    pub automation: Vec<String>,
    #[serde(default)]
    pub volume_id: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub any_files: Vec<String>,
    #[serde(default)]
    pub text: Vec<TextCondition>,
    /// Where the version is read: "treeinfo", "disk-info", "products", "volume-id".
    #[serde(default)]
    pub version: Option<String>,
    /// A version the medium does not say better (Windows' volume ids name the product).
    #[serde(default)]
    pub fixed_version: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextCondition {
    pub file: String,
    pub contains: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub automation: BTreeMap<String, Mechanism>,
    pub os: Vec<Row>,
}

/// The embedded table, parsed once; a malformed table is a build defect caught by the tests.
pub fn table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str(include_str!("table.toml")).expect("src/iso/identify/table.toml parses")
    })
}

/// Case-insensitive glob with `*` only.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    parts.len() > 1 || rest.is_empty()
}

impl Row {
    pub fn matches(&self, f: &Facts) -> bool {
        (self.volume_id.is_empty() || self.volume_id.iter().any(|g| glob(g, &f.volume_id)))
            && self.files.iter().all(|p| f.has(p))
            && (self.any_files.is_empty() || self.any_files.iter().any(|p| f.has(p)))
            && self
                .text
                .iter()
                .all(|c| f.text(&c.file).is_some_and(|t| t.contains(&c.contains)))
    }

    /// What this row looks for, in words (for "cannot identify" messages).
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if !self.volume_id.is_empty() {
            what.push(format!("volume id {}", self.volume_id.join(" or ")));
        }
        if !self.files.is_empty() {
            what.push(self.files.join(" and "));
        }
        if !self.any_files.is_empty() {
            what.push(format!("one of {}", self.any_files.join(", ")));
        }
        for c in &self.text {
            what.push(format!("{} saying {:?}", c.file, c.contains));
        }
        format!("{}: {}", self.id, what.join(", "))
    }
}

/// `[section] key = value` of an INI-style file (.treeinfo).
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = s.trim().to_string();
        } else if current == section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string()).filter(|v| !v.is_empty());
                }
            }
        }
    }
    None
}

/// The first word that looks like a version: starts with a digit, holds only digits and dots.
fn version_word(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '"'))
        .map(|w| w.trim_end_matches('.'))
        .find(|w| {
            w.starts_with(|c: char| c.is_ascii_digit())
                && w.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(str::to_string)
}

pub fn version(row: &Row, f: &Facts) -> Option<String> {
    if let Some(v) = &row.fixed_version {
        return Some(v.clone());
    }
    let treeinfo = || f.text("/.treeinfo").or_else(|| f.text("/treeinfo"));
    match row.version.as_deref()? {
        "treeinfo" => treeinfo().and_then(|t| {
            ini_value(t, "release", "version").or_else(|| ini_value(t, "general", "version"))
        }),
        "disk-info" => f.text("/.disk/info").and_then(version_word),
        // "/ SLES 15.5-0": the word after the product name.
        "products" => f.text("/media.1/products").and_then(version_word),
        "volume-id" => version_word(&f.volume_id),
        _ => None,
    }
}

/// Architecture names as the tools spell them, and ours.
const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "x86_64"),
    ("amd64", "x86_64"),
    ("x64", "x86_64"),
    // Windows volume ids: CCCOMA_X64FRE_…, SSS_X64FREE_….
    ("x64fre", "x86_64"),
    ("x64free", "x86_64"),
    ("a64fre", "aarch64"),
    ("a64free", "aarch64"),
    ("aarch64", "aarch64"),
    ("arm64", "aarch64"),
    ("a64", "aarch64"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("i386", "i686"),
    ("i686", "i686"),
];

fn arch_in(text: &str) -> Option<&'static str> {
    let text = text.to_ascii_lowercase();
    if text.contains("x86_64") {
        return Some("x86_64");
    }
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|w| ARCHES.iter().find(|(n, _)| *n == w).map(|(_, a)| *a))
}

/// Directories whose presence names the architecture.
const ARCH_DIRS: &[(&str, &str)] = &[
    ("/install.amd", "x86_64"),
    ("/install.a64", "aarch64"),
    ("/install.386", "i686"),
    ("/boot/x86_64", "x86_64"),
    ("/boot/aarch64", "aarch64"),
    ("/apks/x86_64", "x86_64"),
    ("/apks/aarch64", "aarch64"),
];

pub fn arch(f: &Facts) -> Option<String> {
    let treeinfo = f.text("/.treeinfo").or_else(|| f.text("/treeinfo"));
    treeinfo
        .and_then(|t| ini_value(t, "general", "arch").or_else(|| ini_value(t, "tree", "arch")))
        .or_else(|| {
            ["/.disk/info", "/.discinfo", "/.alpine-release"]
                .iter()
                .find_map(|p| f.text(p).and_then(arch_in).map(str::to_string))
        })
        .or_else(|| arch_in(&f.volume_id).map(str::to_string))
        .or_else(|| {
            ARCH_DIRS
                .iter()
                .find(|(d, _)| f.has(d))
                .map(|(_, a)| a.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_known_mechanisms() {
        let t = table();
        assert!(t.os.len() >= 10);
        for row in &t.os {
            for m in &row.automation {
                assert!(t.automation.contains_key(m), "{}: unknown {m}", row.id);
            }
            assert!(!row.source.is_empty(), "{} names no source", row.id);
        }
        let ids: BTreeSet<_> = t.os.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), t.os.len(), "row ids are unique");
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("fedora-coreos-*", "fedora-coreos-39.1-live.x86_64", true),
            ("fedora-coreos-*", "Fedora-CoreOS", false),
            ("SSS_X64FREE*", "sss_x64free_en-us_dv9", true),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "a-x-c", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn versions_and_arches() {
        assert_eq!(
            version_word("Debian GNU/Linux 12.2.0 \"Bookworm\" - Official amd64"),
            Some("12.2.0".into())
        );
        assert_eq!(version_word("/ SLES 15.5-0"), Some("15.5".into()));
        assert_eq!(
            version_word("fedora-coreos-39.20231101.3.0-live.x86_64"),
            Some("39.20231101.3.0".into())
        );
        assert_eq!(
            ini_value(
                "[general]\narch = x86_64\n[release]\nversion = 9.2\n",
                "release",
                "version"
            ),
            Some("9.2".into())
        );
        assert_eq!(
            arch_in("Ubuntu-Server 22.04.3 LTS - Release amd64"),
            Some("x86_64")
        );
        assert_eq!(arch_in("CCCOMA_A64FRE_EN-US_DV9"), Some("aarch64"));
        assert_eq!(arch_in("no arch here"), None);
    }
}

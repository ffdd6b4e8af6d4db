//! ISO 9660 file identifiers for the primary tree (ECMA-119 §7.5, §7.6): upper-case
//! d-characters, one separator dot, at most 30 characters for name plus extension, version
//! `;1` on files. The real (Rock Ridge) name is kept separately, so these only have to be
//! valid and unique within their directory.

use std::collections::BTreeSet;

/// ECMA-119 §7.5.1: name and extension together at most 30 characters (level 2).
const MAX_FILE_ID: usize = 30;
/// ECMA-119 §7.6.3: a directory identifier is at most 31 characters.
const MAX_DIR_ID: usize = 31;

fn d_char(c: char) -> char {
    match c.to_ascii_uppercase() {
        c @ ('A'..='Z' | '0'..='9' | '_') => c,
        _ => '_',
    }
}

fn d_chars(s: &str) -> String {
    s.chars().map(d_char).collect()
}

/// The identifier of a file, without the `;1` version (`grub.cfg` → `GRUB.CFG`,
/// `vmlinuz` → `VMLINUZ.`): the last dot separates the extension, other dots become `_`.
pub fn file_id(name: &str) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let ext: String = d_chars(ext).chars().take(MAX_FILE_ID / 2).collect();
    let stem: String = d_chars(stem)
        .chars()
        .take(MAX_FILE_ID - ext.len())
        .collect();
    format!("{stem}.{ext}")
}

/// The identifier of a directory (`EFI`, `boot` → `BOOT`, `x.y` → `X_Y`).
pub fn dir_id(name: &str) -> String {
    d_chars(name).chars().take(MAX_DIR_ID).collect()
}

/// Makes `id` unique among `taken` by replacing its end with `_N`, keeping the extension.
pub fn unique(id: String, taken: &BTreeSet<String>, is_dir: bool) -> String {
    if !taken.contains(&id) {
        return id;
    }
    let (stem, ext) = match (is_dir, id.rfind('.')) {
        (false, Some(i)) => (id[..i].to_string(), id[i..].to_string()),
        _ => (id.clone(), String::new()),
    };
    let limit = if is_dir { MAX_DIR_ID } else { MAX_FILE_ID + 1 };
    (1..)
        .map(|n| {
            let suffix = format!("_{n}");
            let keep = limit
                .saturating_sub(ext.len() + suffix.len())
                .min(stem.len());
            format!("{}{suffix}{ext}", &stem[..keep])
        })
        .find(|c| !taken.contains(c))
        .expect("an unused suffix exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_d_characters_with_one_dot() {
        for (name, want) in [
            ("grub.cfg", "GRUB.CFG"),
            ("vmlinuz", "VMLINUZ."),
            ("meta_data.json", "META_DATA.JSON"),
            ("network-data.v1.json", "NETWORK_DATA_V1.JSON"),
            (".hidden", "_HIDDEN."),
            (
                "a-very-long-file-name-that-goes-on.txt",
                "A_VERY_LONG_FILE_NAME_THAT_.TXT",
            ),
        ] {
            assert_eq!(file_id(name), want, "{name}");
            assert!(file_id(name).len() <= MAX_FILE_ID + 1);
        }
        assert_eq!(dir_id("openstack"), "OPENSTACK");
        assert_eq!(dir_id("2012-08-10"), "2012_08_10");
    }

    #[test]
    fn collisions_get_numbered_suffixes() {
        let mut taken = BTreeSet::new();
        let a = unique(file_id("user-data"), &taken, false);
        taken.insert(a.clone());
        let b = unique(file_id("user_data"), &taken, false);
        assert_eq!((a.as_str(), b.as_str()), ("USER_DATA.", "USER_DATA_1."));
        taken.insert(b);
        let long = file_id("a-very-long-file-name-that-goes-on.txt");
        taken.insert(long.clone());
        let c = unique(long, &taken, false);
        assert_eq!(c, "A_VERY_LONG_FILE_NAME_THA_1.TXT");
        assert!(c.len() <= MAX_FILE_ID + 1);
    }
}

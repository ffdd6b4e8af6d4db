//! Whole-disk vs partition image, told by the presence of kernel/ramdisk (Ironic's rule).
//!
//! Pure functions: the conductor calls them at validate time, before anything is powered on.

use serde_json::Value;

/// The kind of instance image a node's instance_info describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    WholeDisk,
    Partition,
}

/// Why an instance_info cannot be deployed as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageKindError {
    #[error("instance_info has only one of kernel and ramdisk ({present} is set): a partition image needs both, a whole-disk image neither")]
    HalfPartition { present: &'static str },
    #[error("instance_info image_type is {declared:?} but kernel/ramdisk say {found}: set image_type to match, or fix kernel/ramdisk")]
    Mismatch {
        declared: String,
        found: &'static str,
    },
    #[error("instance_info image_type {0:?} is unknown: use \"whole-disk\" or \"partition\"")]
    UnknownType(String),
}

/// Classifies `instance_info` by its `kernel`/`ramdisk` keys, checked against `image_type`.
pub fn classify(instance_info: &Value) -> Result<ImageKind, ImageKindError> {
    let has = |key: &str| {
        instance_info
            .get(key)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    };
    let found = match (has("kernel"), has("ramdisk")) {
        (true, true) => ImageKind::Partition,
        (false, false) => ImageKind::WholeDisk,
        (true, false) => return Err(ImageKindError::HalfPartition { present: "kernel" }),
        (false, true) => return Err(ImageKindError::HalfPartition { present: "ramdisk" }),
    };
    let found_name = match found {
        ImageKind::WholeDisk => "whole-disk",
        ImageKind::Partition => "partition",
    };
    match instance_info.get("image_type").and_then(Value::as_str) {
        None => Ok(found),
        Some(t @ ("whole-disk" | "partition")) if t == found_name => Ok(found),
        Some(t @ ("whole-disk" | "partition")) => Err(ImageKindError::Mismatch {
            declared: t.to_string(),
            found: found_name,
        }),
        Some(other) => Err(ImageKindError::UnknownType(other.to_string())),
    }
}

/// An image whose virtual size does not fit the node's root disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the image's virtual size is {image_bytes} bytes ({:.2} GiB) but the node's root disk holds {disk_bytes} bytes ({:.2} GiB): pick a bigger root device or a smaller image", *image_bytes as f64 / GIB as f64, *disk_bytes as f64 / GIB as f64)]
pub struct ImageTooBig {
    pub image_bytes: u64,
    pub disk_bytes: u64,
}

const GIB: u64 = 1 << 30;

/// The root disk size from Ironic's `properties.local_gb` (GiB, number or numeric string);
/// `None` when absent or not a number (nothing to check against).
pub fn root_disk_bytes(properties: &Value) -> Option<u64> {
    let v = properties.get("local_gb")?;
    let gib = v
        .as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    gib.checked_mul(GIB)
}

/// Rejects an image larger than the root disk, before anything is powered on.
pub fn check_fits(image_bytes: u64, disk_bytes: u64) -> Result<(), ImageTooBig> {
    if image_bytes > disk_bytes {
        Err(ImageTooBig {
            image_bytes,
            disk_bytes,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classify_table() {
        let cases = [
            (json!({}), Ok(ImageKind::WholeDisk)),
            (
                json!({"kernel": "k", "ramdisk": "r"}),
                Ok(ImageKind::Partition),
            ),
            (
                json!({"kernel": "", "ramdisk": null}),
                Ok(ImageKind::WholeDisk),
            ),
            (
                json!({"kernel": "k"}),
                Err(ImageKindError::HalfPartition { present: "kernel" }),
            ),
            (
                json!({"ramdisk": "r"}),
                Err(ImageKindError::HalfPartition { present: "ramdisk" }),
            ),
            (
                json!({"image_type": "whole-disk"}),
                Ok(ImageKind::WholeDisk),
            ),
            (
                json!({"image_type": "partition"}),
                Err(ImageKindError::Mismatch {
                    declared: "partition".into(),
                    found: "whole-disk",
                }),
            ),
            (
                json!({"image_type": "floppy"}),
                Err(ImageKindError::UnknownType("floppy".into())),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(classify(&input), want, "input {input}");
        }
    }

    #[test]
    fn fits_table() {
        assert_eq!(root_disk_bytes(&json!({"local_gb": 10})), Some(10 * GIB));
        assert_eq!(root_disk_bytes(&json!({"local_gb": " 4 "})), Some(4 * GIB));
        assert_eq!(root_disk_bytes(&json!({"local_gb": "big"})), None);
        assert_eq!(root_disk_bytes(&json!({})), None);
        assert_eq!(check_fits(GIB, GIB), Ok(()));
        let err = check_fits(3 * GIB + 1, 2 * GIB).unwrap_err();
        assert_eq!(err.image_bytes, 3 * GIB + 1);
        let msg = err.to_string();
        assert!(
            msg.contains("3221225473 bytes (3.00 GiB)")
                && msg.contains("2147483648 bytes (2.00 GiB)"),
            "{msg}"
        );
    }
}

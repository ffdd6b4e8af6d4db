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
}

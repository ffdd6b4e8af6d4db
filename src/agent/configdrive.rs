//! `write_config_drive`: fetch the config-2 image and write it as a new partition at the end
//! of the disk, as Ironic's agent does, so cloud-init finds it by its label. On GPT a free
//! entry is filled and both headers are rewritten (the backup moves to the disk's end); on MBR
//! a primary partition is added. The table edits are planned in pure code
//! (`writer::gpt::add_partition_plan`, `writer::mbr::add_partition_plan`); the image goes in
//! first, the table last, so a failure never leaves a partition pointing at stale bytes.

use std::path::Path;

use deploy_drivers::{AgentProgress, PortErrorKind};
use serde_json::{json, Value};

use super::commands::{write_error, CommandError, Limits};
use crate::writer::gpt::{self, AddError};
use crate::writer::{mbr, Disk};

/// Largest config drive accepted (Ironic's limit).
pub const MAX_BYTES: usize = 64 << 20;

/// Linux filesystem data, 0FC63DAF-8483-4772-8E79-3D69D8477DE4, as stored (mixed endian).
const LINUX_DATA: [u8; 16] = [
    0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
];
/// MBR type of a Linux partition.
const MBR_LINUX: u8 = 0x83;

pub fn run(
    device: &Path,
    url: &str,
    limits: &Limits,
    progress: &(dyn Fn(AgentProgress) + Sync),
) -> Result<Value, CommandError> {
    let image = super::fetch::fetch_bytes(url, MAX_BYTES).map_err(|e| {
        CommandError::new(
            PortErrorKind::Unreachable,
            format!("fetching the config drive {url}: {e}"),
        )
    })?;
    if image.is_empty() {
        return Err(CommandError::new(
            PortErrorKind::InvalidInput,
            format!("the config drive {url} is empty"),
        ));
    }
    let ctx = format!("config drive on {}", device.display());
    let io = |e| write_error(&e, &ctx);
    let mut disk = Disk::open(device, &limits.write_options()).map_err(io)?;
    let (ss, size) = (disk.sector_size(), disk.size());
    if size < 3 * ss {
        return Err(CommandError::new(
            PortErrorKind::NoSpace,
            format!(
                "{} holds {size} bytes: too small for a partition table",
                device.display()
            ),
        ));
    }
    let mut lba0 = vec![0u8; ss as usize];
    let mut lba1 = vec![0u8; ss as usize];
    disk.read_at(&mut lba0, 0).map_err(io)?;
    disk.read_at(&mut lba1, ss).map_err(io)?;
    let planned = match gpt::entries_location(&lba1, ss) {
        Some((at, len)) if len > 0 && len <= 1 << 20 && at + len <= size => {
            let mut entries = vec![0u8; len as usize];
            disk.read_at(&mut entries, at).map_err(io)?;
            let guid = *uuid::Uuid::new_v4().as_bytes();
            gpt::add_partition_plan(
                &lba0,
                &lba1,
                &entries,
                size / ss,
                ss,
                image.len() as u64,
                LINUX_DATA,
                guid,
                "config-2",
            )
            .map(|p| ("gpt", p))
        }
        _ => mbr::add_partition_plan(&lba0, size / ss, ss, image.len() as u64, MBR_LINUX)
            .map(|p| ("mbr", p)),
    };
    let (table, (part, writes)) = planned.map_err(|e| match e {
        AddError::NoTable(m) => CommandError::new(
            PortErrorKind::InvalidInput,
            format!("{}: {m}: write the image first", device.display()),
        ),
        AddError::NoRoom(m) => {
            CommandError::new(PortErrorKind::NoSpace, format!("{}: {m}", device.display()))
        }
    })?;
    let start = part.first * ss;
    let len = (part.last + 1 - part.first) * ss;
    disk.write_at(&image, start).map_err(io)?;
    disk.zero(start + image.len() as u64, len - image.len() as u64)
        .map_err(io)?;
    progress(AgentProgress {
        done_bytes: image.len() as u64,
        total_bytes: Some(image.len() as u64),
    });
    for (at, bytes) in &writes {
        disk.write_at(bytes, *at).map_err(io)?;
    }
    disk.finish().map_err(io)?;
    Ok(json!({
        "device": device.display().to_string(),
        "table": table,
        "partition": part.number,
        "start": start,
        "size": len,
        "image_bytes": image.len(),
    }))
}

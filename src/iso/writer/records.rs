//! Byte encodings of what the writer lays out: directory records (ECMA-119 §9.1) with their
//! Rock Ridge system use entries (IEEE P1281 SUSP: SP, CE, ER; IEEE P1282 RRIP 1.10: PX, NM),
//! path table records (§9.4) and the primary volume descriptor (§8.4).

/// The fixed timestamp of every record and descriptor: output depends on inputs only.
/// 2026-11-22 00:00:00 UTC as a directory record date (§9.1.5: years since 1900, …, GMT offset).
pub const RECORD_DATE: [u8; 7] = [126, 11, 22, 0, 0, 0, 0];
/// The same instant as a volume descriptor date (§8.4.26.1: digits, hundredths, GMT offset).
const VOLUME_DATE: &[u8; 16] = b"2026112200000000";

/// Directory record flag bit 1: the record describes a directory (§9.1.6).
pub const FLAG_DIRECTORY: u8 = 2;

/// RRIP 1.10 PX entry length (mode, links, uid, gid; no inode number).
const PX_LEN: usize = 36;
/// SUSP CE entry length.
pub const CE_LEN: usize = 28;
/// POSIX file modes of what we write: world-readable files, traversable directories.
pub const MODE_FILE: u32 = 0o100_444;
pub const MODE_DIR: u32 = 0o040_555;

/// Both-endian 32-bit field (§7.3.3).
pub fn both32(v: u32) -> [u8; 8] {
    let mut out = [0; 8];
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..].copy_from_slice(&v.to_be_bytes());
    out
}

/// Both-endian 16-bit field (§7.2.3).
pub fn both16(v: u16) -> [u8; 4] {
    let mut out = [0; 4];
    out[..2].copy_from_slice(&v.to_le_bytes());
    out[2..].copy_from_slice(&v.to_be_bytes());
    out
}

/// PX: POSIX attributes.
pub fn px(mode: u32, links: u32) -> Vec<u8> {
    let mut e = vec![b'P', b'X', PX_LEN as u8, 1];
    e.extend(both32(mode));
    e.extend(both32(links));
    e.extend(both32(0)); // uid root
    e.extend(both32(0)); // gid root
    e
}

/// NM: the real name. Callers keep names short enough for one entry (see `MAX_NAME`).
pub fn nm(name: &str) -> Vec<u8> {
    let mut e = vec![b'N', b'M', (5 + name.len()) as u8, 1, 0];
    e.extend(name.as_bytes());
    e
}

/// SP: "SUSP in use", first entry of the root's "." record; no bytes skipped.
pub fn sp() -> Vec<u8> {
    vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]
}

/// CE: the rest of the system use area is at `lba` (offset 0), `len` bytes.
pub fn ce(lba: u32, len: u32) -> Vec<u8> {
    let mut e = vec![b'C', b'E', CE_LEN as u8, 1];
    e.extend(both32(lba));
    e.extend(both32(0));
    e.extend(both32(len));
    e
}

/// ER: declares Rock Ridge (RRIP 1.10, "RRIP_1991A"); lives in the root's continuation area.
pub fn er() -> Vec<u8> {
    let id = b"RRIP_1991A";
    let des: &[u8] =
        b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    let src: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
    let len = 8 + id.len() + des.len() + src.len();
    let mut e = vec![
        b'E',
        b'R',
        len as u8,
        1,
        id.len() as u8,
        des.len() as u8,
        src.len() as u8,
        1,
    ];
    e.extend(id);
    e.extend(des);
    e.extend(src);
    e
}

/// Length of a directory record with identifier `id_len` and `su_len` system use bytes.
pub fn record_len(id_len: usize, su_len: usize) -> usize {
    let base = 33 + id_len + (id_len + 1) % 2;
    let len = base + su_len;
    len + len % 2
}

/// A directory record (§9.1).
pub fn dir_record(id: &[u8], extent: u32, size: u32, flags: u8, su: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; record_len(id.len(), su.len())];
    r[0] = r.len() as u8;
    r[2..10].copy_from_slice(&both32(extent));
    r[10..18].copy_from_slice(&both32(size));
    r[18..25].copy_from_slice(&RECORD_DATE);
    r[25] = flags;
    r[28..32].copy_from_slice(&both16(1));
    r[32] = id.len() as u8;
    r[33..33 + id.len()].copy_from_slice(id);
    let su_at = 33 + id.len() + (id.len() + 1) % 2;
    r[su_at..su_at + su.len()].copy_from_slice(su);
    r
}

/// One path table record (§9.4), little- or big-endian.
pub fn path_record(id: &[u8], extent: u32, parent: u16, big_endian: bool) -> Vec<u8> {
    let mut r = vec![id.len() as u8, 0];
    if big_endian {
        r.extend(extent.to_be_bytes());
        r.extend(parent.to_be_bytes());
    } else {
        r.extend(extent.to_le_bytes());
        r.extend(parent.to_le_bytes());
    }
    r.extend(id);
    if id.len() % 2 == 1 {
        r.push(0);
    }
    r
}

/// Where the primary volume descriptor's variable fields point.
pub struct PvdFields<'a> {
    pub volume_id: &'a str,
    pub total_sectors: u32,
    pub path_table_len: u32,
    pub l_table: u32,
    pub m_table: u32,
    pub root_record: &'a [u8],
}

/// The primary volume descriptor (§8.4), one sector.
pub fn pvd(f: &PvdFields) -> Vec<u8> {
    let mut d = vec![0u8; 2048];
    d[0] = 1;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    padded(&mut d[8..40], "LINUX");
    padded(&mut d[40..72], f.volume_id);
    d[80..88].copy_from_slice(&both32(f.total_sectors));
    d[120..124].copy_from_slice(&both16(1)); // volume set size
    d[124..128].copy_from_slice(&both16(1)); // volume sequence number
    d[128..132].copy_from_slice(&both16(2048));
    d[132..140].copy_from_slice(&both32(f.path_table_len));
    d[140..144].copy_from_slice(&f.l_table.to_le_bytes());
    d[148..152].copy_from_slice(&f.m_table.to_be_bytes());
    d[156..156 + f.root_record.len()].copy_from_slice(f.root_record);
    padded(&mut d[190..318], ""); // volume set
    padded(&mut d[318..446], ""); // publisher
    padded(&mut d[446..574], ""); // data preparer
    padded(&mut d[574..702], "IRONCAST");
    padded(&mut d[702..813], ""); // copyright, abstract, bibliographic file ids
    d[813..829].copy_from_slice(VOLUME_DATE); // creation
    d[830..846].copy_from_slice(VOLUME_DATE); // modification
    d[847..863].fill(b'0'); // expiration: none
    d[864..880].fill(b'0'); // effective: none
    d[881] = 1; // file structure version
    d
}

/// The volume descriptor set terminator (§8.3).
pub fn terminator() -> Vec<u8> {
    let mut d = vec![0u8; 2048];
    d[..7].copy_from_slice(&[255, b'C', b'D', b'0', b'0', b'1', 1]);
    d
}

fn padded(field: &mut [u8], text: &str) {
    field.fill(b' ');
    field[..text.len()].copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_even_and_system_use_starts_even() {
        for id_len in 1..40 {
            for su_len in [0usize, 36, 41, 77] {
                let id = vec![b'A'; id_len];
                let r = dir_record(&id, 7, 9, 0, &vec![b'S'; su_len]);
                assert_eq!(r.len() % 2, 0);
                assert_eq!(r[0] as usize, r.len());
                let su_at = 33 + id_len + (id_len + 1) % 2;
                assert_eq!(su_at % 2, 0, "id {id_len}");
                assert_eq!(&r[2..6], &7u32.to_le_bytes());
                assert_eq!(&r[6..10], &7u32.to_be_bytes());
            }
        }
    }

    #[test]
    fn susp_entries_declare_their_length() {
        for e in [
            px(MODE_FILE, 1),
            nm("meta_data.json"),
            sp(),
            ce(20, 237),
            er(),
        ] {
            assert_eq!(e[2] as usize, e.len(), "{:?}", &e[..2]);
            assert_eq!(e[3], 1);
        }
    }

    #[test]
    fn path_records_pad_odd_names() {
        assert_eq!(path_record(b"BOOT", 30, 1, false).len(), 12);
        assert_eq!(path_record(b"EFI", 30, 1, true).len(), 12);
        assert_eq!(path_record(b"EFI", 30, 1, true)[2..6], 30u32.to_be_bytes());
    }
}

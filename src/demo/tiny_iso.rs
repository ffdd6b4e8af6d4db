//! A tiny ISO 9660 writer for the demo: a handful of small files, a BIOS El Torito entry, no
//! Joliet or Rock Ridge. It lets `ironcast demo` make its boot ISO on a machine with nothing
//! but cargo. It is not a general mastering tool: names are upper-cased ISO 9660 level-2 names,
//! every file is small, and the layout is fixed (descriptors, catalog, path tables, directories,
//! files). Spec: ECMA-119 (sections 8.4 volume descriptor, 9.1 directory record, 9.4 path
//! table) and El Torito 1.0 (boot record, validation and default entries).

use std::collections::BTreeMap;

const SECTOR: usize = 2048;
/// Sectors 0..16 are the system area (ECMA-119 6.2.1).
const FIRST_DESCRIPTOR: usize = 16;

/// The files of the image, by absolute path ("/boot/grub/grub.cfg").
pub struct TinyIso {
    pub volume_id: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Path of the no-emulation boot image the BIOS El Torito entry loads.
    pub boot_image: String,
}

/// A directory of the tree being laid out.
#[derive(Default)]
struct Dir {
    dirs: BTreeMap<String, Dir>,
    files: BTreeMap<String, usize>, // name → index into the file list
    sector: usize,
    parent_number: usize,
    number: usize,
}

impl TinyIso {
    /// Lays out and writes the image.
    pub fn build(&self) -> Vec<u8> {
        let contents: Vec<&Vec<u8>> = self.files.values().collect();
        let mut root = Dir::default();
        for (i, path) in self.files.keys().enumerate() {
            let parts: Vec<String> = path
                .trim_start_matches('/')
                .split('/')
                .map(iso_name)
                .collect();
            let (file, dirs) = parts.split_last().expect("file paths are not empty");
            let mut dir = &mut root;
            for d in dirs {
                dir = dir.dirs.entry(d.clone()).or_default();
            }
            // ECMA-119 7.5.1: a file identifier always has the separator dot.
            let dot = if file.contains('.') { "" } else { "." };
            dir.files.insert(format!("{file}{dot};1"), i);
        }
        // Fixed sectors: PVD 16, boot record 17, terminator 18, catalog 19, path tables 20-21.
        let catalog = FIRST_DESCRIPTOR + 3;
        let (l_table, m_table) = (catalog + 1, catalog + 2);
        let mut next = m_table + 1;
        let mut order = Vec::new(); // directories in breadth-first order, for the path tables
        number_dirs(&mut root, &mut next, &mut order);
        let mut file_sectors = vec![0; contents.len()];
        for (i, data) in contents.iter().enumerate() {
            file_sectors[i] = next;
            next += data.len().div_ceil(SECTOR).max(1);
        }
        let total = next;
        let mut iso = vec![0u8; total * SECTOR];
        write_dirs(&root, &root, &file_sectors, &contents, &mut iso);
        for (i, data) in contents.iter().enumerate() {
            let at = file_sectors[i] * SECTOR;
            iso[at..at + data.len()].copy_from_slice(data);
        }
        let (l, m) = path_tables(&root, &order);
        iso[l_table * SECTOR..][..l.len()].copy_from_slice(&l);
        iso[m_table * SECTOR..][..m.len()].copy_from_slice(&m);
        let pvd = &mut iso[FIRST_DESCRIPTOR * SECTOR..][..SECTOR];
        write_pvd(
            pvd,
            &self.volume_id,
            total,
            l.len(),
            l_table,
            m_table,
            &root,
        );
        let boot_index = self.files.keys().position(|p| *p == self.boot_image);
        let boot_sector = file_sectors[boot_index.expect("boot image is one of the files")];
        write_boot_record(
            &mut iso[(FIRST_DESCRIPTOR + 1) * SECTOR..][..SECTOR],
            catalog,
        );
        let term = &mut iso[(FIRST_DESCRIPTOR + 2) * SECTOR..][..7];
        term.copy_from_slice(&[255, b'C', b'D', b'0', b'0', b'1', 1]);
        write_catalog(&mut iso[catalog * SECTOR..][..SECTOR], boot_sector);
        iso
    }
}

/// "grub.cfg" → "GRUB.CFG": ISO 9660 d-characters are upper case.
fn iso_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

fn number_dirs(root: &mut Dir, next: &mut usize, order: &mut Vec<Vec<String>>) {
    // Breadth-first, as path tables require (ECMA-119 6.9.1).
    root.number = 1;
    root.parent_number = 1;
    root.sector = *next;
    *next += 1;
    order.push(vec![]);
    let mut queue = vec![(vec![], 1usize)];
    let mut number = 1;
    while !queue.is_empty() {
        let mut following = Vec::new();
        for (path, parent_number) in queue {
            let dir = walk(root, &path);
            dir.parent_number = parent_number;
            let own = dir.number;
            for name in dir.dirs.keys().cloned().collect::<Vec<_>>() {
                number += 1;
                let child = dir.dirs.get_mut(&name).expect("key from this map");
                child.number = number;
                child.sector = *next;
                *next += 1;
                let mut p = path.clone();
                p.push(name);
                order.push(p.clone());
                following.push((p, own));
            }
        }
        queue = following;
    }
}

fn walk<'a>(root: &'a mut Dir, path: &[String]) -> &'a mut Dir {
    path.iter().fold(root, |d, name| {
        d.dirs.get_mut(name).expect("path from the tree")
    })
}

fn walk_ref<'a>(root: &'a Dir, path: &[String]) -> &'a Dir {
    path.iter().fold(root, |d, name| &d.dirs[name])
}

fn both_u32(v: usize) -> [u8; 8] {
    let v = v as u32;
    let mut out = [0; 8];
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..].copy_from_slice(&v.to_be_bytes());
    out
}

fn both_u16(v: u16) -> [u8; 4] {
    let mut out = [0; 4];
    out[..2].copy_from_slice(&v.to_le_bytes());
    out[2..].copy_from_slice(&v.to_be_bytes());
    out
}

/// A directory record (ECMA-119 9.1).
fn record(name: &[u8], sector: usize, len: usize, is_dir: bool) -> Vec<u8> {
    let mut r = vec![0u8; 33 + name.len() + (name.len() + 1) % 2];
    r[0] = r.len() as u8;
    r[2..10].copy_from_slice(&both_u32(sector));
    r[10..18].copy_from_slice(&both_u32(len));
    r[18..25].copy_from_slice(&[126, 11, 22, 0, 0, 0, 0]); // 2026-11-22 00:00 UTC
    r[25] = if is_dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both_u16(1));
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    r
}

fn find_parent(root: &Dir, number: usize) -> &Dir {
    fn search(d: &Dir, n: usize) -> Option<&Dir> {
        if d.number == n {
            return Some(d);
        }
        d.dirs.values().find_map(|c| search(c, n))
    }
    search(root, number).unwrap_or(root)
}

fn write_dirs(root: &Dir, dir: &Dir, files: &[usize], contents: &[&Vec<u8>], iso: &mut [u8]) {
    let parent = find_parent(root, dir.parent_number);
    let mut records = vec![
        record(&[0], dir.sector, SECTOR, true),
        record(&[1], parent.sector, SECTOR, true),
    ];
    // ECMA-119 9.3: records sorted by name; BTreeMap order is close enough for these names,
    // but sort the merged list of files and directories explicitly.
    let mut named: Vec<(String, Vec<u8>)> = dir
        .dirs
        .iter()
        .map(|(n, d)| (n.clone(), record(n.as_bytes(), d.sector, SECTOR, true)))
        .chain(dir.files.iter().map(|(n, &i)| {
            (
                n.clone(),
                record(n.as_bytes(), files[i], contents[i].len(), false),
            )
        }))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    records.extend(named.into_iter().map(|(_, r)| r));
    let bytes: Vec<u8> = records.concat();
    assert!(
        bytes.len() <= SECTOR,
        "the tiny ISO keeps each directory in one sector"
    );
    iso[dir.sector * SECTOR..][..bytes.len()].copy_from_slice(&bytes);
    for child in dir.dirs.values() {
        write_dirs(root, child, files, contents, iso);
    }
}

fn path_tables(root: &Dir, order: &[Vec<String>]) -> (Vec<u8>, Vec<u8>) {
    let (mut l, mut m) = (Vec::new(), Vec::new());
    for path in order {
        let dir = walk_ref(root, path);
        let name: &[u8] = path.last().map_or(&[0], |n| n.as_bytes());
        for (table, big) in [(&mut l, false), (&mut m, true)] {
            table.push(name.len() as u8);
            table.push(0);
            let (sector, parent) = (dir.sector as u32, dir.parent_number as u16);
            if big {
                table.extend(sector.to_be_bytes());
                table.extend(parent.to_be_bytes());
            } else {
                table.extend(sector.to_le_bytes());
                table.extend(parent.to_le_bytes());
            }
            table.extend(name);
            if name.len() % 2 == 1 {
                table.push(0);
            }
        }
    }
    (l, m)
}

fn write_pvd(
    d: &mut [u8],
    volume_id: &str,
    total: usize,
    pt_len: usize,
    l: usize,
    m: usize,
    root: &Dir,
) {
    d[0] = 1;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    padded(&mut d[8..40], "LINUX");
    padded(&mut d[40..72], &volume_id.to_ascii_uppercase());
    d[80..88].copy_from_slice(&both_u32(total));
    d[120..124].copy_from_slice(&both_u16(1));
    d[124..128].copy_from_slice(&both_u16(1));
    d[128..132].copy_from_slice(&both_u16(SECTOR as u16));
    d[132..140].copy_from_slice(&both_u32(pt_len));
    d[140..144].copy_from_slice(&(l as u32).to_le_bytes());
    d[148..152].copy_from_slice(&(m as u32).to_be_bytes());
    d[156..190].copy_from_slice(&record(&[0], root.sector, SECTOR, true));
    for field in [
        190..318,
        318..446,
        446..574,
        574..702,
        702..739,
        739..776,
        776..813,
    ] {
        padded(&mut d[field], "");
    }
    padded(&mut d[574..702], "IRONCAST DEMO");
    for at in [813, 830, 847, 864] {
        padded(&mut d[at..at + 16], "2026112200000000");
    }
    d[881] = 1;
}

fn padded(field: &mut [u8], text: &str) {
    field.fill(b' ');
    field[..text.len()].copy_from_slice(text.as_bytes());
}

fn write_boot_record(d: &mut [u8], catalog: usize) {
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d[7..7 + 23].copy_from_slice(b"EL TORITO SPECIFICATION");
    d[71..75].copy_from_slice(&(catalog as u32).to_le_bytes());
}

fn write_catalog(c: &mut [u8], boot_sector: usize) {
    // Validation entry: header 1, platform 0 (x86), id, checksum, key bytes 55 AA.
    c[0] = 1;
    c[4..4 + 8].copy_from_slice(b"IRONCAST");
    c[30] = 0x55;
    c[31] = 0xAA;
    let sum = c[..32].chunks(2).fold(0u16, |acc, w| {
        acc.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    c[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    // Default entry: bootable, no emulation, 4 virtual sectors loaded from the boot image.
    let e = &mut c[32..64];
    e[0] = 0x88;
    e[6..8].copy_from_slice(&4u16.to_le_bytes());
    e[8..12].copy_from_slice(&(boot_sector as u32).to_le_bytes());
}

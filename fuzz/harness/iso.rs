//! ISO images: raw bytes, and images built from a description (directories nested as deep as
//! asked, Rock Ridge names continued over CE chains that may loop or run long, El Torito with
//! a real FAT EFI image, a hybrid MBR/GPT with valid CRCs), then bent in chosen fields
//! (extents, sizes, volume and path table fields). Both go through `iso inspect` and the
//! remaster planner.

use arbitrary::Arbitrary;
use ironcast::iso::writer::boot::{self, CatalogEntry};
use ironcast::iso::writer::records::{self, PvdFields};

use super::gpt::{Field, GptSpec};

const SECTOR: usize = 2048;
/// Fixed directories: 0 root, 1 /boot, 2 /boot/grub, 3 /isolinux.
const FIXED_DIRS: usize = 4;

#[derive(Arbitrary, Debug, Clone)]
pub enum CeSpec {
    /// The rest of the name, in one area.
    Once,
    /// A chain of this many areas, each pointing at the next.
    Chain(u8),
    /// An area that points at itself.
    Loop,
    /// A continuation anywhere, of any length.
    Raw { lba: Field, offset: u32, len: Field },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct EntrySpec {
    /// Index of the parent directory (modulo the directories before it).
    pub parent: u8,
    /// Rock Ridge name: split over NM continuations, the part beyond the record in CE areas.
    pub name: String,
    pub name_parts: u8,
    pub ce: Option<CeSpec>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FileSpec {
    pub entry: EntrySpec,
    pub data: Vec<u8>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Bend {
    /// Point a directory's record at another directory's extent (loops, shared trees).
    DirExtent {
        dir: u8,
        to: u8,
    },
    RecordExtent {
        entry: u16,
        extent: Field,
    },
    RecordSize {
        entry: u16,
        size: Field,
    },
    VolumeSpace(Field),
    PathTable {
        lba: Field,
        size: Field,
    },
    RootSize(Field),
    Catalog {
        lba: Field,
        sectors: u16,
    },
    Byte {
        at: u16,
        value: u8,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct IsoSpec {
    pub dirs: Vec<EntrySpec>,
    pub files: Vec<FileSpec>,
    pub grub: Option<String>,
    pub isolinux: Option<String>,
    pub bios: bool,
    pub efi_grub: Option<String>,
    pub gpt: Option<GptSpec>,
    pub bends: Vec<Bend>,
    pub args: String,
}

/// Sectors handed out in order.
struct Layout {
    next: usize,
}

impl Layout {
    fn take(&mut self, n: usize) -> usize {
        let at = self.next;
        self.next += n.max(1);
        at
    }
}

/// One directory record to write.
struct Rec {
    id: Vec<u8>,
    extent: u32,
    size: u32,
    dir: bool,
    su: Vec<u8>,
}

fn nm_part(part: &[u8], more: bool) -> Vec<u8> {
    let mut e = vec![b'N', b'M', (5 + part.len()) as u8, 1, more as u8];
    e.extend(part);
    e
}

/// System use bytes of an entry: PX and the first NM parts; the rest of the name goes to CE
/// areas written into `img` at sectors from `layout`.
fn system_use(e: &EntrySpec, dir: bool, img: &mut Vec<u8>, layout: &mut Layout) -> Vec<u8> {
    let mut su = records::px(if dir { 0o40755 } else { 0o100644 }, 1);
    let name = if e.name.is_empty() { "x" } else { &e.name };
    let bytes = name.as_bytes();
    let parts = (e.name_parts as usize % 8).max(1);
    let chunk = bytes.len().div_ceil(parts).clamp(1, 200);
    let pieces: Vec<&[u8]> = bytes.chunks(chunk).collect();
    let Some(ce) = &e.ce else {
        // All of the name in the record, as far as it fits (a record holds 255 bytes).
        let mut room = 255 - 33 - 8 - su.len() - 6;
        for (i, p) in pieces.iter().enumerate() {
            let p = &p[..p.len().min(room.saturating_sub(5))];
            if p.is_empty() {
                break;
            }
            room -= 5 + p.len();
            su.extend(nm_part(p, i + 1 < pieces.len()));
        }
        return su;
    };
    // First piece in the record (short), the rest in the continuation areas.
    let first = &pieces[0][..pieces[0].len().min(60)];
    su.extend(nm_part(first, true));
    let rest: Vec<u8> = pieces[1..]
        .iter()
        .enumerate()
        .flat_map(|(i, p)| nm_part(p, i + 2 < pieces.len()))
        .collect();
    let area = |img: &mut Vec<u8>, lba: usize, body: &[u8]| {
        let at = lba * SECTOR;
        if img.len() < at + SECTOR {
            img.resize(at + SECTOR, 0);
        }
        let n = body.len().min(SECTOR);
        img[at..at + n].copy_from_slice(&body[..n]);
    };
    match ce {
        CeSpec::Once => {
            let lba = layout.take(1);
            area(img, lba, &rest);
            su.extend(records::ce(lba as u32, rest.len().min(SECTOR) as u32));
        }
        CeSpec::Chain(n) => {
            let n = (*n as usize % 40).max(1);
            let first = layout.take(n);
            for k in 0..n {
                let mut body = if k == 0 {
                    rest.clone()
                } else {
                    nm_part(b"c", true)
                };
                body.truncate(SECTOR - records::CE_LEN);
                if k + 1 < n {
                    body.extend(records::ce((first + k + 1) as u32, 300));
                }
                area(img, first + k, &body);
            }
            su.extend(records::ce(
                first as u32,
                (rest.len() + 40).min(SECTOR) as u32,
            ));
        }
        CeSpec::Loop => {
            let lba = layout.take(1);
            let mut body = rest.clone();
            body.truncate(SECTOR - records::CE_LEN);
            let len = body.len() + records::CE_LEN;
            body.extend(records::ce(lba as u32, len as u32));
            area(img, lba, &body);
            su.extend(records::ce(lba as u32, len as u32));
        }
        CeSpec::Raw { lba, offset, len } => {
            let mut e = records::ce(lba.or(0) as u32, len.or(64) as u32);
            e[12..16].copy_from_slice(&offset.to_le_bytes());
            e[16..20].copy_from_slice(&offset.to_be_bytes());
            su.extend(e);
        }
    }
    su
}

/// The image of `spec`, and the byte offsets of its directory records (for bending).
pub fn build(spec: &IsoSpec) -> (Vec<u8>, Vec<(usize, bool)>) {
    let mut img = vec![0u8; 32 * SECTOR];
    // 16 PVD, 17 boot record or terminator, 18 terminator, 19/20 path tables, 21 catalog.
    let mut layout = Layout { next: 32 };
    let named = |name: &str| EntrySpec {
        parent: 0,
        name: name.into(),
        name_parts: 1,
        ce: None,
    };
    let mut dirs: Vec<(usize, EntrySpec)> = vec![
        (0, named("")),
        (0, named("boot")),
        (1, named("grub")),
        (0, named("isolinux")),
    ];
    for d in spec.dirs.iter().take(96) {
        let parent = d.parent as usize % dirs.len();
        dirs.push((parent, d.clone()));
    }
    let mut files: Vec<(usize, EntrySpec, Vec<u8>)> = Vec::new();
    if let Some(g) = &spec.grub {
        files.push((2, named("grub.cfg"), g.clone().into_bytes()));
    }
    if let Some(i) = &spec.isolinux {
        files.push((3, named("isolinux.cfg"), i.clone().into_bytes()));
        files.push((3, named("isolinux.bin"), vec![0xFA; 2048]));
    }
    let efi = spec
        .efi_grub
        .as_ref()
        .and_then(|g| ironcast::iso::efi_image(&[("EFI/BOOT/grub.cfg", g.as_bytes())]).ok());
    if let Some(e) = &efi {
        files.push((1, named("efi.img"), e.clone()));
    }
    for f in spec.files.iter().take(64) {
        let dir = f.entry.parent as usize % dirs.len();
        files.push((
            dir,
            f.entry.clone(),
            f.data.iter().take(8192).copied().collect(),
        ));
    }
    let dir_lba: Vec<usize> = (0..dirs.len()).map(|_| layout.take(1)).collect();
    let mut file_lba = Vec::new();
    for (_, _, data) in &files {
        let lba = layout.take(data.len().div_ceil(SECTOR));
        let at = lba * SECTOR;
        if img.len() < at + data.len() {
            img.resize(at + data.len(), 0);
        }
        img[at..at + data.len()].copy_from_slice(data);
        file_lba.push(lba);
    }
    // Directory records, each directory one sector (children that do not fit are left out).
    let mut recs_at = Vec::new();
    for (d, &lba) in dir_lba.iter().enumerate() {
        let parent_lba = dir_lba[dirs[d].0];
        let mut dot_su = Vec::new();
        if d == 0 {
            dot_su.extend(records::sp());
        }
        let mut recs = vec![
            Rec {
                id: vec![0],
                extent: lba as u32,
                size: SECTOR as u32,
                dir: true,
                su: dot_su,
            },
            Rec {
                id: vec![1],
                extent: parent_lba as u32,
                size: SECTOR as u32,
                dir: true,
                su: Vec::new(),
            },
        ];
        for (c, (p, e)) in dirs.iter().enumerate().skip(1) {
            if *p == d && c != d {
                let su = system_use(e, true, &mut img, &mut layout);
                recs.push(Rec {
                    id: format!("D{c}").into_bytes(),
                    extent: dir_lba[c] as u32,
                    size: SECTOR as u32,
                    dir: true,
                    su,
                });
            }
        }
        for (f, (p, e, data)) in files.iter().enumerate() {
            if *p == d {
                let su = system_use(e, false, &mut img, &mut layout);
                recs.push(Rec {
                    id: format!("F{f}.;1").into_bytes(),
                    extent: file_lba[f] as u32,
                    size: data.len() as u32,
                    dir: false,
                    su,
                });
            }
        }
        let mut sector = Vec::new();
        for r in recs {
            let bytes =
                records::dir_record(&r.id, r.extent, r.size, if r.dir { 2 } else { 0 }, &r.su);
            if sector.len() + bytes.len() > SECTOR {
                break;
            }
            recs_at.push((lba * SECTOR + sector.len(), r.dir && r.id.len() > 1));
            sector.extend(bytes);
        }
        let at = lba * SECTOR;
        if img.len() < at + SECTOR {
            img.resize(at + SECTOR, 0);
        }
        img[at..at + sector.len()].copy_from_slice(&sector);
    }
    // Path tables: directories in order (parents come first by construction).
    let mut l = Vec::new();
    let mut m = Vec::new();
    for (d, (p, _)) in dirs.iter().enumerate() {
        let id = if d == 0 {
            vec![0]
        } else {
            format!("D{d}").into_bytes()
        };
        let parent = (*p + 1).min(u16::MAX as usize) as u16;
        l.extend(records::path_record(&id, dir_lba[d] as u32, parent, false));
        m.extend(records::path_record(&id, dir_lba[d] as u32, parent, true));
    }
    l.truncate(SECTOR);
    m.truncate(SECTOR);
    img[19 * SECTOR..19 * SECTOR + l.len()].copy_from_slice(&l);
    img[20 * SECTOR..20 * SECTOR + m.len()].copy_from_slice(&m);
    // El Torito.
    let bin = files.iter().position(|(_, e, _)| e.name == "isolinux.bin");
    let efi_at = files.iter().position(|(_, e, _)| e.name == "efi.img");
    let bios = bin.filter(|_| spec.bios).map(|f| CatalogEntry {
        lba: file_lba[f] as u32,
        sectors: 4,
    });
    let efi_entry = efi_at.map(|f| CatalogEntry {
        lba: file_lba[f] as u32,
        sectors: boot::efi_sectors(files[f].2.len()),
    });
    let booting = bios.is_some() || efi_entry.is_some();
    if booting {
        img[21 * SECTOR..22 * SECTOR].copy_from_slice(&boot::catalog(bios, efi_entry));
        img[17 * SECTOR..18 * SECTOR].copy_from_slice(&boot::boot_record(21));
    }
    let total = img.len().div_ceil(SECTOR).max(layout.next);
    img.resize(total * SECTOR, 0);
    let root = records::dir_record(&[0], dir_lba[0] as u32, SECTOR as u32, 2, &[]);
    let pvd = records::pvd(&PvdFields {
        volume_id: "FUZZ",
        total_sectors: total as u32,
        path_table_len: l.len() as u32,
        l_table: 19,
        m_table: 20,
        root_record: &root,
    });
    img[16 * SECTOR..17 * SECTOR].copy_from_slice(&pvd);
    let term = if booting { 18 } else { 17 };
    img[term * SECTOR..(term + 1) * SECTOR].copy_from_slice(&records::terminator());
    if let Some(g) = &spec.gpt {
        img.resize(img.len() + 64 * 512, 0);
        super::gpt::write_tables(g, &mut img, 16 * SECTOR - 1024);
    }
    for b in spec.bends.iter().take(8) {
        bend(&mut img, b, &recs_at, &dir_lba);
    }
    (img, recs_at)
}

fn put_both32(img: &mut [u8], at: usize, v: u32) {
    if let Some(s) = img.get_mut(at..at + 8) {
        s.copy_from_slice(&records::both32(v));
    }
}

fn bend(img: &mut [u8], b: &Bend, recs: &[(usize, bool)], dir_lba: &[usize]) {
    let rec = |i: u16| recs.get(i as usize % recs.len().max(1)).map(|r| r.0);
    match b {
        Bend::DirExtent { dir, to } => {
            let dirs: Vec<usize> = recs.iter().filter(|r| r.1).map(|r| r.0).collect();
            if let Some(&at) = dirs.get(*dir as usize % dirs.len().max(1)) {
                let target = dir_lba[*to as usize % dir_lba.len()];
                put_both32(img, at + 2, target as u32);
            }
        }
        Bend::RecordExtent { entry, extent } => {
            if let Some(at) = rec(*entry) {
                put_both32(img, at + 2, extent.or(0) as u32);
            }
        }
        Bend::RecordSize { entry, size } => {
            if let Some(at) = rec(*entry) {
                put_both32(img, at + 10, size.or(SECTOR as u64) as u32);
            }
        }
        Bend::VolumeSpace(v) => put_both32(img, 16 * SECTOR + 80, v.or(0) as u32),
        Bend::PathTable { lba, size } => {
            put_both32(img, 16 * SECTOR + 132, size.or(0) as u32);
            img[16 * SECTOR + 140..16 * SECTOR + 144]
                .copy_from_slice(&(lba.or(19) as u32).to_le_bytes());
        }
        Bend::RootSize(v) => put_both32(img, 16 * SECTOR + 156 + 10, v.or(SECTOR as u64) as u32),
        Bend::Catalog { lba, sectors } => {
            let at = 21 * SECTOR + 32;
            img[at + 6..at + 8].copy_from_slice(&sectors.to_le_bytes());
            img[at + 8..at + 12].copy_from_slice(&(lba.or(0) as u32).to_le_bytes());
        }
        Bend::Byte { at, value } => {
            let at = 16 * SECTOR + *at as usize;
            if let Some(b) = img.get_mut(at) {
                *b = *value;
            }
        }
    }
}

/// Inspects and remasters `img`: errors are fine; a remaster that succeeds gives a valid
/// patch set over exactly these bytes.
pub fn check(img: &[u8], args: &str) {
    let src: &[u8] = img;
    let _ = ironcast::iso::inspect_source(&src, "fuzz");
    if let Ok((set, _)) = ironcast::iso::remaster_source(&src, args) {
        assert!(set.validate().is_ok(), "remaster gave an invalid patch set");
        assert_eq!(set.base_len, img.len() as u64);
    }
}

pub fn raw(data: &[u8]) {
    check(data, "ironcast.m=1 a;b");
}

pub fn structured(data: &[u8]) {
    let Some(spec) = super::structured::<IsoSpec>(data) else {
        return;
    };
    let (img, _) = build(&spec);
    let args = if spec.args.is_empty() {
        "ironcast.m=1"
    } else {
        &spec.args
    };
    check(&img, args);
}

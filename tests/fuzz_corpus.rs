//! The fuzz harness under stable, in CI: every seed of `fuzz/seeds/<target>/` (made by
//! `scripts/fuzz-seeds`) and a few thousand pseudo-random inputs go through the same harness
//! functions the cargo-fuzz targets call (`fuzz/harness/`), and crafted hostile images from
//! the structured ISO and GPT builders are refused with the error that names the problem.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::Path;

use harness::gpt::{Field, GptSpec, PartSpec};
use harness::iso::{Bend, CeSpec, EntrySpec, IsoSpec};
use ironcast::iso::budget::Budget;
use ironcast::iso::dirtree::{self, TreeKind};

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fuzz-seeds)", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_seed_replays_without_a_crash() {
    for (target, run) in harness::TARGETS {
        let seeds = seeds(target);
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for (name, bytes) in &seeds {
            let outcome = std::panic::catch_unwind(|| run(bytes));
            assert!(outcome.is_ok(), "{target}: seed {name} crashed");
        }
    }
}

/// A small deterministic fuzz of every target through the same functions (libFuzzer runs
/// them far longer: scripts/fuzz).
#[test]
fn pseudo_random_inputs_never_crash() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (target, run) in harness::TARGETS {
        for _ in 0..300 {
            let len = (next() % 4096) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: input {bytes:02x?} crashed");
        }
    }
}

fn entry(parent: u8, name: &str) -> EntrySpec {
    EntrySpec {
        parent,
        name: name.into(),
        name_parts: 1,
        ce: None,
    }
}

fn spec() -> IsoSpec {
    IsoSpec {
        dirs: Vec::new(),
        files: Vec::new(),
        grub: Some("menuentry a {\n linux /k quiet\n}\n".into()),
        isolinux: None,
        bios: false,
        efi_grub: None,
        gpt: None,
        bends: Vec::new(),
        args: "m=1".into(),
    }
}

/// Directories 4, 5, … each inside the one before (4 fixed directories come first).
fn chain(depth: usize, name: &str) -> Vec<EntrySpec> {
    (0..depth)
        .map(|i| entry(if i == 0 { 0 } else { (3 + i) as u8 }, name))
        .collect()
}

/// Walks the ISO 9660 tree of `img` with `budget`.
fn walk(img: &[u8], budget: &mut Budget) -> Result<usize, String> {
    let src: &[u8] = img;
    let vols = ironcast::iso::volume::read_volumes(&src).map_err(|e| e.to_string())?;
    let pvd = vols.primary.expect("a primary volume descriptor");
    dirtree::walk(&src, &pvd, TreeKind::Iso9660, budget)
        .map(|t| t.entries.len())
        .map_err(|e| e.to_string())
}

/// Each crafted image, read with a budget, ends in the error that names what was wrong.
#[test]
fn hostile_isos_are_refused_with_a_clear_error() {
    let ce = |ce: CeSpec, name: &str, parts: u8| EntrySpec {
        parent: 0,
        name: name.into(),
        name_parts: parts,
        ce: Some(ce),
    };
    let small = |f: fn(&mut Budget)| {
        let mut b = Budget::default();
        f(&mut b);
        b
    };
    let files = |n: usize, ce_spec: Option<CeSpec>| -> Vec<harness::iso::FileSpec> {
        (0..n)
            .map(|i| harness::iso::FileSpec {
                entry: EntrySpec {
                    parent: 0,
                    name: format!("file{i}"),
                    name_parts: 1,
                    ce: ce_spec.clone(),
                },
                data: vec![i as u8; 10],
            })
            .collect()
    };
    // (what, image, budget, words the error must contain)
    let table: Vec<(&str, IsoSpec, Budget, &str)> = vec![
        (
            "a directory pointing back at the root",
            IsoSpec {
                bends: vec![Bend::DirExtent { dir: 0, to: 0 }],
                ..spec()
            },
            Budget::default(),
            "loop",
        ),
        (
            "70 nested directories",
            IsoSpec {
                dirs: chain(70, "d"),
                ..spec()
            },
            Budget::default(),
            "nested deeper than 64",
        ),
        (
            "a path longer than PATH_MAX",
            IsoSpec {
                dirs: chain(30, &"n".repeat(160)),
                ..spec()
            },
            Budget::default(),
            "a path of",
        ),
        (
            "a Rock Ridge name continued past 1024 bytes over CE areas",
            IsoSpec {
                dirs: vec![ce(CeSpec::Once, &"y".repeat(1900), 8)],
                ..spec()
            },
            Budget::default(),
            "Rock Ridge name longer than 1024",
        ),
        (
            "CE areas that each point at themselves, over many entries",
            IsoSpec {
                files: files(40, Some(CeSpec::Loop)),
                ..spec()
            },
            small(|b| b.ce_areas = 200),
            "continuation areas",
        ),
        (
            "long CE chains adding up in bytes",
            IsoSpec {
                files: files(40, Some(CeSpec::Chain(30))),
                ..spec()
            },
            small(|b| b.ce_bytes = 64 << 10),
            "continuation areas add up",
        ),
        (
            "more entries than the budget",
            IsoSpec {
                files: files(40, None),
                ..spec()
            },
            small(|b| b.entries = 20),
            "directory entries",
        ),
        (
            "more path bytes than the budget",
            IsoSpec {
                files: files(40, None),
                ..spec()
            },
            small(|b| b.path_bytes = 100),
            "paths add up",
        ),
        (
            "a root directory claiming 4 GiB",
            IsoSpec {
                bends: vec![Bend::RootSize(Field::Raw(u32::MAX as u64))],
                ..spec()
            },
            Budget::default(),
            "directories add up",
        ),
    ];
    for (what, spec, mut budget, want) in table {
        let (img, _) = harness::iso::build(&spec);
        let err = walk(&img, &mut budget).expect_err(what);
        assert!(err.contains(want), "{what}: {err}");
        // The whole reader refuses too, or reads it within the default budget, never panics.
        harness::iso::check(&img, "m=1");
    }
    // The same builder without bends gives an image that reads and remasters.
    let (img, _) = harness::iso::build(&IsoSpec {
        dirs: chain(10, "d"),
        files: files(20, Some(CeSpec::Once)),
        ..spec()
    });
    assert!(walk(&img, &mut Budget::default()).unwrap() > 15);
    let src: &[u8] = &img;
    let (set, report) = ironcast::iso::remaster_source(&src, "m=1").unwrap();
    assert_eq!(report.kernel_entries, 1);
    assert!(set.validate().is_ok());
}

fn gpt(parts: Vec<PartSpec>) -> GptSpec {
    GptSpec {
        extra_sectors: 200,
        parts,
        mbr: Vec::new(),
        protective: true,
        num_entries: Field::Sane,
        entry_size: Field::Sane,
        entries_lba: Field::Sane,
        backup_lba: Field::Sane,
        last_usable: Field::Sane,
        header_size: Field::Sane,
        bad_header_crc: false,
        bad_entries_crc: false,
    }
}

fn part(first: Field, last: Field) -> PartSpec {
    PartSpec {
        esp: false,
        first,
        last,
        name: "p".into(),
    }
}

/// CRC-valid GPTs whose fields overflow: refused by name, never a panic or a wrapped number.
#[test]
fn hostile_gpts_are_refused_with_a_clear_error() {
    let table: Vec<(&str, GptSpec, &str)> = vec![
        (
            "a partition ending before it starts",
            gpt(vec![part(Field::Raw(100), Field::Raw(50))]),
            "ends (LBA 50) before it starts (LBA 100)",
        ),
        (
            "a partition whose bytes pass 2^64",
            gpt(vec![part(Field::Raw(u64::MAX / 256), Field::Sane)]),
            "beyond any disk",
        ),
        (
            "a partition of 2^64 sectors",
            gpt(vec![part(Field::Raw(0), Field::Raw(u64::MAX))]),
            "2^64 sectors",
        ),
        (
            "entries at an LBA past 2^64 bytes",
            GptSpec {
                entries_lba: Field::Raw(u64::MAX / 2),
                ..gpt(vec![part(Field::Sane, Field::Sane)])
            },
            "entries at LBA",
        ),
    ];
    for (what, spec, want) in table {
        let disk = harness::gpt::build(&spec);
        let src: &[u8] = &disk;
        let err = ironcast::iso::partition::read_tables(&src)
            .expect_err(what)
            .to_string();
        assert!(err.contains(want), "{what}: {err}");
    }
    // The sane table reads, with the partition where it was put.
    let disk = harness::gpt::build(&gpt(vec![part(Field::Sane, Field::Sane)]));
    let src: &[u8] = &disk;
    let t = ironcast::iso::partition::read_tables(&src).unwrap();
    let p = t.partitions.iter().find(|p| p.table == "gpt").unwrap();
    assert_eq!((p.start, p.sectors), (34, 8));
}

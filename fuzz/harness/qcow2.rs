//! qcow2 streams: a header whose fields may be sane or hostile, an L1 table, L2 tables and
//! data or compressed clusters laid out from a description, decoded by the writer's streaming
//! decoder ([`ironcast::writer::qcow2::scan`]) exactly as `image write` reads it.

use arbitrary::Arbitrary;

use super::gpt::Field;

#[derive(Arbitrary, Debug)]
pub enum L2Entry {
    Unallocated,
    Zero,
    /// A data cluster: index into the data clusters laid out after the tables.
    Data(u8),
    /// A compressed cluster, as raw descriptor bits.
    Compressed(u64),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
pub struct Qcow2Spec {
    pub version3: bool,
    pub cluster_bits: Field,
    pub size: Field,
    pub l1_size: Field,
    pub l1_offset: Field,
    pub incompat: Field,
    pub zstd: bool,
    /// Per L1 entry: None is unallocated, Some(i) points at the i-th L2 table; Raw anything.
    pub l1: Vec<Option<u8>>,
    pub l1_raw: Vec<(u8, u64)>,
    pub l2_tables: Vec<Vec<L2Entry>>,
    pub data_clusters: Vec<u8>,
    /// Tables written after the data they map (forces the look-behind buffer).
    pub tables_last: bool,
    pub truncate: Option<u32>,
}

/// The stream of `spec`.
pub fn build(spec: &Qcow2Spec) -> Vec<u8> {
    let bits = spec.cluster_bits.or(12).min(63) as u32;
    let cbits = bits.clamp(9, 16);
    let cluster = 1usize << cbits;
    let n_l2 = spec.l2_tables.len().min(8);
    let n_data = spec.data_clusters.len().min(16);
    // Clusters: 0 header, 1 L1, then L2 tables and data (data first when tables_last).
    let (l2_at, data_at) = if spec.tables_last {
        (2 + n_data, 2)
    } else {
        (2, 2 + n_l2)
    };
    let total = 2 + n_l2 + n_data;
    let mut img = vec![0u8; total * cluster];
    let l2_entries = (cluster / 8) as u64;
    let size = spec.size.or(l2_entries * cluster as u64 * 2);
    let l1_size = spec.l1_size.or(4) as u32;
    img[..4].copy_from_slice(b"QFI\xfb");
    img[4..8].copy_from_slice(&(if spec.version3 { 3u32 } else { 2 }).to_be_bytes());
    img[20..24].copy_from_slice(&bits.to_be_bytes());
    img[24..32].copy_from_slice(&size.to_be_bytes());
    img[36..40].copy_from_slice(&l1_size.to_be_bytes());
    img[40..48].copy_from_slice(&spec.l1_offset.or(cluster as u64).to_be_bytes());
    if spec.version3 {
        let incompat = spec.incompat.or(if spec.zstd { 1 << 3 } else { 0 });
        img[72..80].copy_from_slice(&incompat.to_be_bytes());
        img[100..104].copy_from_slice(&112u32.to_be_bytes());
        img[104] = spec.zstd as u8;
    }
    let copied = 1u64 << 63;
    for (i, e) in spec.l1.iter().take(cluster / 8).enumerate() {
        let v = match e {
            Some(t) if n_l2 > 0 => copied | ((l2_at + *t as usize % n_l2) * cluster) as u64,
            _ => 0,
        };
        img[cluster + i * 8..cluster + i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    for (i, v) in spec.l1_raw.iter().take(4) {
        let at = cluster + (*i as usize % (cluster / 8)) * 8;
        img[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
    for (t, table) in spec.l2_tables.iter().take(n_l2).enumerate() {
        let base = (l2_at + t) * cluster;
        for (j, e) in table.iter().take(cluster / 8).enumerate() {
            let v = match e {
                L2Entry::Unallocated => 0,
                L2Entry::Zero => 1,
                L2Entry::Data(d) if n_data > 0 => {
                    copied | ((data_at + *d as usize % n_data) * cluster) as u64
                }
                L2Entry::Data(_) => 0,
                L2Entry::Compressed(bits) => (1 << 62) | (bits & ((1 << 62) - 1)),
                L2Entry::Raw(v) => *v,
            };
            img[base + j * 8..base + j * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
    }
    for (d, byte) in spec.data_clusters.iter().take(n_data).enumerate() {
        let at = (data_at + d) * cluster;
        img[at..at + cluster].fill(*byte);
    }
    if let Some(t) = spec.truncate {
        img.truncate(t as usize % (img.len() + 1));
    }
    img
}

pub fn run(data: &[u8]) {
    let Some(spec) = super::structured::<Qcow2Spec>(data) else {
        return;
    };
    check(&build(&spec));
}

/// Decodes `img`: extents must come in order, inside the virtual size, without overlap.
pub fn check(img: &[u8]) {
    let size = ironcast::writer::qcow2::Header::parse(img)
        .map(|h| h.size)
        .unwrap_or(0);
    let mut covered: Vec<(u64, u64)> = Vec::new();
    let result = ironcast::writer::qcow2::scan(&mut &img[..], |offset, len, _| {
        let end = offset.checked_add(len).expect("extent end overflows");
        assert!(
            end <= size,
            "extent {offset}+{len} past the virtual size {size}"
        );
        covered.push((offset, end));
    });
    if result.is_ok() {
        covered.sort_unstable();
        for w in covered.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "overlapping extents {:?} and {:?}",
                w[0],
                w[1]
            );
        }
    }
}

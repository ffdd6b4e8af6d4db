//! Writer and netboot against real peers: fixtures made by qemu-img, gzip, zstd and xz; the
//! reference for every byte is `qemu-img convert -O raw`; targets are dirty files and loop
//! devices; `sgdisk -v` judges the relocated GPT.

mod common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ironcast::writer::{self, Checksum, Format, Source, WriteError, WriteOptions, WriteRequest};
use rand::RngCore;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 32 * MIB;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| common::tool(n).is_some())
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

/// A 32 MiB raw disk: random data in a few places (some unaligned), holes, and an explicit
/// run of written zeros.
fn raw_fixture(dir: &Path) -> PathBuf {
    let p = dir.join("disk.raw");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(SIZE).unwrap();
    for (at, len) in [
        (0, MIB as usize),
        (5 * MIB, 512 * 1024),
        (12 * MIB + 4096, 300_000),
        (20 * MIB + 17, 70_001),
        (SIZE - MIB, MIB as usize - 512),
    ] {
        f.write_all_at(&random(len), at).unwrap();
    }
    f.write_all_at(&vec![0u8; 2 * MIB as usize], 30 * MIB)
        .unwrap();
    p
}

/// A target full of random bytes, as a reused disk would be.
fn dirty_file(path: &Path, size: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = random(MIB as usize);
    for _ in 0..size / MIB {
        f.write_all(&chunk).unwrap();
    }
}

/// `qemu-img convert ARGS FROM TO`, which must succeed.
fn qemu_convert(args: &[&str], from: &Path, to: &Path) {
    run(Command::new("qemu-img")
        .arg("convert")
        .args(args)
        .arg(from)
        .arg(to));
}

fn reference(image: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "{}.ref",
        image.file_name().unwrap().to_string_lossy()
    ));
    qemu_convert(&["-O", "raw"], image, &out);
    std::fs::read(out).unwrap()
}

fn request(source: Source, dest: &Path) -> WriteRequest {
    WriteRequest {
        source,
        dest: dest.to_path_buf(),
        checksum: None,
        format: Format::Auto,
        options: WriteOptions {
            allow_file: true,
            ..WriteOptions::default()
        },
    }
}

fn sha256(path: &Path) -> Checksum {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    Checksum::parse(&format!("sha256:{}", hex::encode(digest))).unwrap()
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

/// Every fixture kind: (name, path).
fn fixtures(dir: &Path, raw: &Path) -> Vec<(&'static str, PathBuf)> {
    let raw = raw.to_path_buf();
    let q = dir.join("disk.qcow2");
    qemu_convert(&["-O", "qcow2"], &raw, &q);
    let qc = dir.join("disk-c.qcow2");
    qemu_convert(&["-c", "-O", "qcow2"], &raw, &qc);
    let qz = dir.join("disk-zstd.qcow2");
    qemu_convert(
        &["-c", "-O", "qcow2", "-o", "compression_type=zstd"],
        &raw,
        &qz,
    );
    let mut out = vec![
        ("raw", raw.clone()),
        ("qcow2", q.clone()),
        ("qcow2-compressed", qc),
        ("qcow2-zstd-clusters", qz),
    ];
    for (name, tool, ext) in [
        ("gz", "gzip", "gz"),
        ("zst", "zstd", "zst"),
        ("xz", "xz", "xz"),
    ] {
        let p = dir.join(format!("disk.raw.{ext}"));
        let data = run_bytes(Command::new(tool).args(["-c", "-1"]).arg(&raw));
        std::fs::write(&p, data).unwrap();
        out.push((name, p));
    }
    let p = dir.join("disk.qcow2.zst");
    std::fs::write(
        &p,
        run_bytes(Command::new("zstd").args(["-c", "-1"]).arg(&q)),
    )
    .unwrap();
    out.push(("qcow2.zst", p));
    out
}

fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}");
    out.stdout
}

#[test]
fn writer_byte_exact_on_dirty_file() {
    if !tools(&["qemu-img", "gzip", "zstd", "xz"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let want = reference(&raw, dir.path());
    for (name, image) in fixtures(dir.path(), &raw) {
        if name.starts_with("qcow2") && !name.ends_with(".zst") {
            assert_same(
                &reference(&image, dir.path()),
                &want,
                &format!("qemu-img reading {name}"),
            );
        }
        let target = dir.path().join(format!("target-{name}"));
        dirty_file(&target, SIZE);
        let mut req = request(Source::File(image.clone()), &target);
        req.checksum = Some(sha256(&image));
        req.options.verify = true;
        let report = writer::write_image(req, |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.virtual_size, SIZE, "{name}");
        assert!(report.digest.is_some() && report.verified, "{name}");
        assert!(
            report.sink.zeroed_bytes > 0,
            "{name}: dirty target needs zeroing"
        );
        assert_same(&std::fs::read(&target).unwrap(), &want, name);
    }
}

#[test]
fn writer_fresh_file_skips_zeros_and_grows() {
    if !tools(&["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let q = dir.path().join("d.qcow2");
    qemu_convert(&["-O", "qcow2"], &raw, &q);
    let target = dir.path().join("new.img");
    let report = writer::write_image(request(Source::File(q), &target), |_| {}).unwrap();
    assert_eq!(report.sink.zeroed_bytes, 0);
    assert!(report.sink.skipped_bytes > 25 * MIB);
    assert_same(
        &std::fs::read(&target).unwrap(),
        &std::fs::read(&raw).unwrap(),
        "fresh",
    );
}

#[test]
fn writer_corrupted_source_fails_checksum_and_wipes() {
    if !tools(&["gzip"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let gz = dir.path().join("d.raw.gz");
    std::fs::write(
        &gz,
        run_bytes(Command::new("gzip").args(["-c", "-1"]).arg(&raw)),
    )
    .unwrap();
    for image in [raw, gz] {
        let good = sha256(&image);
        let mut bytes = std::fs::read(&image).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        let bad = dir.path().join("corrupt");
        std::fs::write(&bad, &bytes).unwrap();
        let target = dir.path().join("target");
        dirty_file(&target, SIZE);
        let mut req = request(Source::File(bad), &target);
        req.checksum = Some(good);
        let err = writer::write_image(req, |_| {}).unwrap_err();
        assert!(
            matches!(err.cause(), WriteError::ChecksumMismatch { .. }),
            "{}: {err}",
            image.display()
        );
        let msg = err.to_string();
        assert!(
            msg.contains("checksum mismatch") && msg.contains("zeroed"),
            "{msg}"
        );
        let mut head = vec![0u8; MIB as usize];
        std::fs::File::open(&target)
            .unwrap()
            .read_exact_at(&mut head, 0)
            .unwrap();
        assert!(head.iter().all(|&b| b == 0), "first MiB must be zeroed");
    }
}

#[test]
fn writer_refuses_too_small_and_outside_allow_list() {
    if !tools(&["qemu-img", "zstd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let q = dir.path().join("d.qcow2");
    qemu_convert(&["-O", "qcow2"], &raw, &q);
    let zst = dir.path().join("d.raw.zst");
    std::fs::write(&zst, run_bytes(Command::new("zstd").arg("-c").arg(&raw))).unwrap();
    for image in [raw.clone(), q, zst] {
        let target = dir.path().join("small");
        dirty_file(&target, SIZE / 2);
        let before = std::fs::read(&target).unwrap();
        let err = writer::write_image(request(Source::File(image), &target), |_| {}).unwrap_err();
        match &err {
            WriteError::TargetTooSmall {
                target_size,
                image_size,
                ..
            } => {
                assert_eq!((*target_size, *image_size), (SIZE / 2, SIZE));
            }
            other => panic!("want TargetTooSmall, got {other}"),
        }
        assert!(
            before == std::fs::read(&target).unwrap(),
            "refused target untouched"
        );
    }
    let mut req = request(Source::File(raw), &dir.path().join("x"));
    req.options.allow = vec![PathBuf::from("/dev/disk")];
    let err = writer::write_image(req, |_| {}).unwrap_err();
    assert!(matches!(err, WriteError::NotAllowed { .. }), "{err}");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn writer_qcow2_metadata_after_data_spools() {
    if !tools(&["qemu-img", "qemu-io"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("late-l1.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-f", "qcow2", "-o", "cluster_size=4096"])
        .arg(&q)
        .arg("32M"));
    run(Command::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -P 0xab 0 24M",
            "-c",
            "write -P 0x5c 30M 1M",
        ])
        .arg(&q));
    // Growing the virtual size reallocates the L1 table after all the data.
    run(Command::new("qemu-img").args(["resize"]).arg(&q).arg("40M"));
    let want = reference(&q, dir.path());
    let target = dir.path().join("t");
    dirty_file(&target, 40 * MIB);
    let report = writer::write_image(request(Source::File(q), &target), |_| {}).unwrap();
    assert!(
        report.spooled_bytes > 0,
        "the look-behind should have spooled: {report:?}"
    );
    assert_same(&std::fs::read(&target).unwrap(), &want, "late L1");
}

#[test]
fn writer_qcow2_refusals() {
    if !tools(&["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-f", "qcow2"])
        .arg(&base)
        .arg("8M"));
    let overlay = dir.path().join("overlay.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&overlay));
    let ext = dir.path().join("ext.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-f", "qcow2", "-o"])
        .arg(format!(
            "data_file={}",
            dir.path().join("ext.data").display()
        ))
        .arg(&ext)
        .arg("8M"));
    let l2 = dir.path().join("l2.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-f", "qcow2", "-o", "extended_l2=on"])
        .arg(&l2)
        .arg("8M"));
    for (img, want) in [
        (overlay, "backing file"),
        (ext, "external data file"),
        (l2, "extended L2"),
    ] {
        let target = dir.path().join("t");
        let err = writer::write_image(request(Source::File(img), &target), |_| {}).unwrap_err();
        assert!(matches!(err, WriteError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(!target.exists(), "nothing created on refusal");
    }
}

#[test]
fn writer_gpt_backup_moves_to_disk_end() {
    if !tools(&["sgdisk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("gpt.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 * MIB)
        .unwrap();
    run(Command::new("sgdisk")
        .args(["-n", "1:2048:+4M", "-t", "1:ef00"])
        .arg(&img));
    let target = dir.path().join("t");
    dirty_file(&target, SIZE);
    let report = writer::write_image(request(Source::File(img), &target), |_| {}).unwrap();
    assert!(report.gpt_relocated);
    let out = run(Command::new("sgdisk").arg("-v").arg(&target));
    assert!(out.contains("No problems found"), "{out}");
    let p = run(Command::new("sgdisk").arg("-p").arg(&target));
    assert!(
        p.contains(&format!("{} sectors", SIZE / 512)),
        "disk size as seen by sgdisk: {p}"
    );
}

/// A loop device over a dirty file; detached on drop.
struct Loop(String);

impl Loop {
    fn new(backing: &Path) -> Loop {
        Loop(
            run(Command::new("losetup").args(["-f", "--show"]).arg(backing))
                .trim()
                .to_string(),
        )
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn writer_loop_device_byte_exact_and_mounted_refused() {
    if !tools(&[
        "losetup",
        "qemu-img",
        "zstd",
        "mkfs.ext4",
        "mount",
        "umount",
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let want = std::fs::read(&raw).unwrap();
    let qc = dir.path().join("c.qcow2");
    qemu_convert(&["-c", "-O", "qcow2"], &raw, &qc);
    let zst = dir.path().join("d.raw.zst");
    std::fs::write(&zst, run_bytes(Command::new("zstd").args(["-c"]).arg(&raw))).unwrap();
    let backing = dir.path().join("backing");
    dirty_file(&backing, SIZE + 8 * MIB);
    let dev = Loop::new(&backing);
    // The raw image goes through the zero-copy path: pooled aligned buffers straight to
    // O_DIRECT, holes served without reading them.
    for image in [raw.clone(), qc, zst] {
        let mut req = request(Source::File(image.clone()), Path::new(&dev.0));
        req.checksum = Some(sha256(&image));
        req.options.direct = true;
        req.options.verify = true;
        let report = writer::write_image(req, |_| {}).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.sink.zeroed_bytes > 0);
        let mut got = vec![0u8; SIZE as usize];
        std::fs::File::open(&dev.0)
            .unwrap()
            .read_exact_at(&mut got, 0)
            .unwrap();
        assert_same(&got, &want, &image.display().to_string());
    }
    // Mounted: refused, and the filesystem is untouched.
    run(Command::new("mkfs.ext4").args(["-q", "-F", &dev.0]));
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run(Command::new("mount").arg(&dev.0).arg(&mnt));
    let err = writer::write_image(request(Source::File(raw), Path::new(&dev.0)), |_| {});
    let _ = Command::new("umount").arg(&mnt).status();
    let err = err.unwrap_err();
    assert!(matches!(err, WriteError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("mounted"), "{err}");
    run(Command::new("e2fsck").args(["-n", &dev.0]));
}

#[test]
fn writer_refuses_device_with_mounted_partition() {
    if !tools(&[
        "losetup",
        "partx",
        "mknod",
        "sfdisk",
        "mkfs.ext4",
        "mount",
        "umount",
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("backing");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    let table = dir.path().join("table");
    std::fs::write(&table, "start=2048, type=83\n").unwrap();
    run(Command::new("sfdisk")
        .arg("-q")
        .arg(&backing)
        .stdin(std::fs::File::open(&table).unwrap()));
    let dev = Loop(
        run(Command::new("losetup")
            .args(["-f", "--show", "-P"])
            .arg(&backing))
        .trim()
        .to_string(),
    );
    // Partition scanning may be off for loop devices here: add them explicitly.
    let _ = Command::new("partx").args(["-a", &dev.0]).status();
    // No udev here: make the partition's device node from sysfs.
    let name = dev.0.trim_start_matches("/dev/");
    let sys = PathBuf::from(format!("/sys/class/block/{name}p1/dev"));
    for _ in 0..50 {
        if sys.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let majmin = std::fs::read_to_string(&sys).expect("kernel made the loop partition");
    let (maj, min) = majmin.trim().split_once(':').unwrap();
    let part = dir.path().join("p1").display().to_string();
    run(Command::new("mknod").args([&part, "b", maj, min]));
    run(Command::new("mkfs.ext4").args(["-q", "-F", &part]));
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run(Command::new("mount").arg(&part).arg(&mnt));
    let image = raw_fixture(dir.path());
    let err = writer::write_image(request(Source::File(image), Path::new(&dev.0)), |_| {});
    let _ = Command::new("umount").arg(&mnt).status();
    let err = err.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WriteError::InUse { .. }), "{msg}");
    assert!(
        msg.contains("partition") && msg.contains("mounted"),
        "{msg}"
    );
    run(Command::new("e2fsck").args(["-n", &part]));
}

/// Serves `router` on 127.0.0.1:0 in a background runtime; returns the base URL.
fn serve(router: axum::Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, router).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn http_get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

#[test]
fn netboot_files_router_and_port() {
    use deploy_drivers::{BootMode, LocalBoot, Netboot};
    use ironcast::netboot::{router, DeployBoot, NetbootDir};
    if !tools(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nb = NetbootDir::new(dir.path());
    let base = serve(router(dir.path()));
    let macs = vec![
        "52:54:00:AA:bb:01".to_string(),
        "52-54-00-aa-bb-02".to_string(),
    ];
    nb.write_deploy(
        "node-1",
        &macs,
        &DeployBoot {
            kernel: "http://10.0.2.2/k".into(),
            initrd: "http://10.0.2.2/i".into(),
            args: "console=ttyS0".into(),
        },
    )
    .unwrap();
    let (code, body) = http_get(&format!("{base}/ipxe/52:54:00:aa:bb:01.ipxe"));
    assert_eq!(code, 200);
    assert!(body.contains("kernel http://10.0.2.2/k"), "{body}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port: &dyn Netboot = &nb;
    rt.block_on(port.write_local_boot(
        "node-1",
        &LocalBoot {
            macs: macs.clone(),
            mode: BootMode::Bios,
        },
    ))
    .unwrap();
    let (code, body) = http_get(&format!("{base}/ipxe/52-54-00-aa-bb-02.ipxe"));
    assert_eq!(code, 200);
    assert!(
        body.contains("sanboot --no-describe --drive 0x80"),
        "{body}"
    );
    let pxe =
        std::fs::read_to_string(dir.path().join("pxelinux.cfg/01-52-54-00-aa-bb-01")).unwrap();
    assert!(pxe.contains("LOCALBOOT 0"));
    assert!(dir.path().join("grub.cfg-01-52-54-00-aa-bb-02").exists());
    assert_eq!(http_get(&format!("{base}/ipxe/nonsense.ipxe")).0, 404);
    rt.block_on(port.remove("node-1")).unwrap();
    rt.block_on(port.remove("node-1")).unwrap();
    assert_eq!(
        http_get(&format!("{base}/ipxe/52-54-00-aa-bb-02.ipxe")).0,
        404
    );
    assert!(!dir
        .path()
        .join("pxelinux.cfg/01-52-54-00-aa-bb-01")
        .exists());
    assert!(!dir.path().join("grub.cfg-01-52-54-00-aa-bb-02").exists());
    let bad = rt.block_on(port.write_local_boot(
        "node-1",
        &LocalBoot {
            macs: vec!["zz".into()],
            mode: BootMode::Uefi,
        },
    ));
    assert!(bad.unwrap_err().message.contains("MAC address"));
}

#[test]
fn writer_streams_qcow2_over_http() {
    if !tools(&["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let q = dir.path().join("d.qcow2");
    qemu_convert(&["-c", "-O", "qcow2"], &raw, &q);
    let bytes = std::fs::read(&q).unwrap();
    let app = axum::Router::new()
        .route(
            "/d.qcow2",
            axum::routing::get(move || async move { bytes.clone() }),
        )
        .route(
            "/missing",
            axum::routing::get(|| async { axum::http::StatusCode::NOT_FOUND }),
        );
    let base = serve(app);
    let target = dir.path().join("t");
    dirty_file(&target, SIZE);
    let mut req = request(Source::parse(&format!("{base}/d.qcow2")), &target);
    req.checksum = Some(sha256(&q));
    let seen = std::sync::Mutex::new(Vec::new());
    let report = writer::write_image(req, |p| seen.lock().unwrap().push(p)).unwrap();
    assert_eq!(report.source_bytes, std::fs::metadata(&q).unwrap().len());
    assert_same(
        &std::fs::read(&target).unwrap(),
        &std::fs::read(&raw).unwrap(),
        "http qcow2",
    );
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.len() > 2
            && seen
                .windows(2)
                .all(|w| w[0].source_read <= w[1].source_read)
    );
    assert_eq!(seen[0].virtual_size, Some(SIZE));
    let err = writer::write_image(
        request(Source::parse(&format!("{base}/missing")), &target),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[test]
fn writer_cli_write_and_info() {
    if !tools(&["xz"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let xz = dir.path().join("d.raw.xz");
    std::fs::write(
        &xz,
        run_bytes(Command::new("xz").args(["-c", "-0", "-T2"]).arg(&raw)),
    )
    .unwrap();
    let info = run(Command::new(common::ironcast_bin())
        .args(["image", "info", "--json"])
        .arg(&xz));
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["format"], "raw");
    assert_eq!(v["compression"], "xz");
    assert_eq!(v["virtual_size"], SIZE);
    let target = dir.path().join("t");
    dirty_file(&target, SIZE);
    let sum = sha256(&xz);
    let out = run(Command::new(common::ironcast_bin())
        .args([
            "image",
            "write",
            "--allow-file",
            "--quiet",
            "--verify",
            "--checksum",
        ])
        .arg(format!("sha256:{}", sum.hex))
        .arg(&xz)
        .arg(&target));
    assert!(
        out.contains("checksum ok") && out.contains("read back ok"),
        "{out}"
    );
    assert_same(
        &std::fs::read(&target).unwrap(),
        &std::fs::read(&raw).unwrap(),
        "cli",
    );
    // The same through stdin.
    dirty_file(&target, SIZE);
    run(Command::new(common::ironcast_bin())
        .args(["image", "write", "--allow-file", "--quiet", "-"])
        .arg(&target)
        .stdin(std::fs::File::open(&xz).unwrap()));
    assert_same(
        &std::fs::read(&target).unwrap(),
        &std::fs::read(&raw).unwrap(),
        "cli stdin",
    );
    let bad = Command::new(common::ironcast_bin())
        .args([
            "image",
            "write",
            "--allow-file",
            "--quiet",
            "--checksum",
            &format!("sha256:{}", "0".repeat(64)),
        ])
        .arg(&xz)
        .arg(&target)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("checksum mismatch") && err.contains("zeroed"),
        "{err}"
    );
}

/// Boot proof: a tiny BIOS whole-disk image (syslinux + Debian kernel + busybox initramfs
/// printing a random marker), shipped as compressed qcow2 and as zstd raw, written by our
/// writer to a disk file; QEMU network-boots through its built-in iPXE, which fetches our
/// per-MAC script from the netboot router and `sanboot`s the local disk. Boot is strict and
/// only the NIC has a bootindex, so the disk boots only through the script's `sanboot`.
#[test]
fn qemu_boot_whole_disk_via_ipxe() {
    use deploy_drivers::BootMode;
    use ironcast::netboot::{router, NetbootDir};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    if !tools(&[
        "qemu-system-x86_64",
        "qemu-img",
        "zstd",
        "syslinux",
        "mcopy",
        "mkfs.fat",
        "sfdisk",
        "busybox",
        "cpio",
        "dpkg-deb",
        "apt-get",
    ]) {
        return;
    }
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("writer-boot");
    let marker = format!("IRONCAST-BOOT-{}", hex::encode(random(6)));
    run(Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/writer/make-boot-disk.sh"
        ))
        .arg(&cache)
        .arg(&marker));
    let raw = cache.join("boot-disk.raw");
    let dir = tempfile::tempdir().unwrap();
    let qcow2 = dir.path().join("boot.qcow2");
    qemu_convert(&["-c", "-O", "qcow2"], &raw, &qcow2);
    let zst = dir.path().join("boot.raw.zst");
    std::fs::write(&zst, run_bytes(Command::new("zstd").arg("-c").arg(&raw))).unwrap();

    let mac = "52:54:00:12:34:56";
    let tftp = dir.path().join("tftp");
    NetbootDir::new(&tftp)
        .write_local("node-boot", &[mac.to_string()], BootMode::Bios)
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = router(&tftp).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(req).await
            }
        },
    ));
    let base = serve(app);
    let port = base.rsplit(':').next().unwrap().to_string();

    for image in [qcow2, zst] {
        let disk = dir.path().join("disk.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(64 * MIB)
            .unwrap();
        let mut req = request(Source::File(image.clone()), &disk);
        req.checksum = Some(sha256(&image));
        writer::write_image(req, |_| {}).unwrap();
        let before = hits.load(Ordering::SeqCst);
        let serial = dir.path().join("serial.log");
        let _ = std::fs::remove_file(&serial);
        let mut vm = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "tcg",
                "-m",
                "256",
                "-display",
                "none",
                "-no-reboot",
            ])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .arg("-netdev")
            .arg(format!(
                "user,id=n0,tftp={},bootfile=http://10.0.2.2:{port}/ipxe/{}.ipxe",
                tftp.display(),
                mac.replace(':', "-")
            ))
            // Only the NIC has a bootindex and boot is strict: without the script's sanboot
            // the BIOS would not boot the disk (checked by hand with an `exit` script).
            .args(["-device", &format!("e1000,netdev=n0,mac={mac},bootindex=1")])
            .args(["-boot", "strict=on", "-device", "ide-hd,drive=d0"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=none,id=d0", disk.display()))
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        let mut seen = false;
        while std::time::Instant::now() < deadline {
            if std::fs::read_to_string(&serial).is_ok_and(|s| s.contains(&marker)) {
                seen = true;
                break;
            }
            if vm.try_wait().unwrap().is_some() {
                seen = std::fs::read_to_string(&serial).is_ok_and(|s| s.contains(&marker));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        let _ = vm.kill();
        let _ = vm.wait();
        let log = std::fs::read_to_string(&serial).unwrap_or_default();
        assert!(
            seen,
            "{}: marker not on the serial console:\n{log}",
            image.display()
        );
        assert!(
            hits.load(Ordering::SeqCst) > before,
            "iPXE never fetched the script from the router"
        );
    }
}

#[test]
fn agent_executes_write_command_with_checksum_file() {
    use deploy_drivers::{ChecksumSpec, WriteCommand};
    if !tools(&["gzip"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_fixture(dir.path());
    let gz = run_bytes(Command::new("gzip").args(["-c", "-1"]).arg(&raw));
    let sums = {
        use sha2::Digest;
        format!(
            "{}  other.img\n{}  disk.raw.gz\n",
            "0".repeat(64),
            hex::encode(sha2::Sha256::digest(&gz))
        )
    };
    let app = axum::Router::new()
        .route(
            "/img/disk.raw.gz",
            axum::routing::get(move || async move { gz.clone() }),
        )
        .route(
            "/img/SHA256SUMS",
            axum::routing::get(move || async move { sums.clone() }),
        );
    let base = serve(app);
    let target = dir.path().join("root-disk");
    dirty_file(&target, SIZE);
    let mut cmd = WriteCommand {
        image_url: format!("{base}/img/disk.raw.gz"),
        checksum: Some(ChecksumSpec::FileUrl(format!("{base}/img/SHA256SUMS"))),
        root_device: Some(target.display().to_string()),
    };
    // The disk is a file here: allowed explicitly (the agent's default is block devices).
    let options = WriteOptions {
        allow: vec![dir.path().to_path_buf()],
        allow_file: true,
        ..WriteOptions::default()
    };
    let report = ironcast::agent::execute_with(&cmd, options.clone(), |_| {}).unwrap();
    assert!(report.digest.is_some());
    assert_same(
        &std::fs::read(&target).unwrap(),
        &std::fs::read(&raw).unwrap(),
        "agent",
    );
    cmd.image_url = format!("{base}/img/unlisted.raw.gz");
    let err = ironcast::agent::execute_with(&cmd, options, |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("no line for \"unlisted.raw.gz\""),
        "{err}"
    );
}

#[test]
fn a_full_target_stops_the_reading_of_an_endless_source() {
    if !tools(&["losetup", "yes"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("small.img");
    std::fs::write(&backing, vec![0u8; 8 << 20]).unwrap();
    let dev = Loop::new(&backing);
    // `yes` never ends: the writer must stop reading once the 8 MiB device is full.
    let mut yes = Command::new("yes")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut write = Command::new(common::ironcast_bin())
        .args(["image", "write", "--quiet", "-", &dev.0])
        .stdin(yes.stdout.take().unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = write.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = write.kill();
    let _ = yes.kill();
    let _ = yes.wait();
    let status = status.expect("image write still reading an endless source after 60 s");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut write.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("zeroed"), "{err}");
}

#[test]
fn a_mistyped_device_or_a_symlink_to_a_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("img.raw");
    std::fs::write(&image, random(1 << 20)).unwrap();
    let write = |dest: &Path, extra: &[&str]| {
        Command::new(common::ironcast_bin())
            .args(["image", "write", "--quiet"])
            .args(extra)
            .args(["--checksum", &format!("sha256:{}", "0".repeat(64))])
            .arg(&image)
            .arg(dest)
            .output()
            .unwrap()
    };
    // A device name that does not exist: no file appears.
    let typo = dir.path().join("sdzz");
    let out = write(&typo, &[]);
    assert!(!out.status.success());
    assert!(!typo.exists(), "a file was created at the mistyped path");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("not a block device") && msg.contains("--allow-file"),
        "{msg}"
    );
    // A symlink to an existing file, even with --allow-file: its bytes stay as they were.
    let precious = dir.path().join("precious");
    let content = random(2 << 20);
    std::fs::write(&precious, &content).unwrap();
    let link = dir.path().join("sdb");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    for extra in [&[][..], &["--allow-file"][..]] {
        let out = write(&link, extra);
        assert!(!out.status.success());
        assert!(
            std::fs::read(&precious).unwrap() == content,
            "{extra:?}: file changed"
        );
    }
}

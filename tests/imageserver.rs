//! Image server against an independent client (curl): ranges, conditionals, tokens, auth, TLS,
//! IPv6, fetch logging, restart.

mod common;

use common::pseudo_random;

use std::path::{Path, PathBuf};
use std::time::Duration;

use deploy_drivers::ports::{Artifact, Publisher};
use ironcast::imageserver::{self, ServerConfig, ServerHandle};
use ironcast::overlay::{Patch, PatchSet};

struct Curl {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Curl {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs curl with `args` and returns the last response's status, headers and body.
async fn curl(args: &[&str]) -> Curl {
    let dir = tempfile::tempdir().unwrap();
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-g", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(args)
        .output()
        .await
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&h).unwrap();
    // With -D, every response (e.g. 401 then 200) is written; keep the last block.
    let block = head
        .trim_end()
        .rsplit("\r\n\r\n")
        .next()
        .unwrap()
        .to_string();
    let mut lines = block.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Curl {
        status,
        headers,
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        dir: dir.join("pubs"),
        ..ServerConfig::default()
    }
}

/// A base file, a patch set over it (patches at the start, mid-file, across the base end and
/// in the zero tail), and the expected bytes of both.
struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    base: PathBuf,
    base_bytes: Vec<u8>,
    patch: PathBuf,
    patched: Vec<u8>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let base_bytes = pseudo_random(300_001, 7);
    let base = dir.join("base.iso");
    std::fs::write(&base, &base_bytes).unwrap();
    let base_len = base_bytes.len() as u64;
    let patches = vec![
        Patch {
            offset: 0,
            data: b"PATCH0!".to_vec(),
        },
        Patch {
            offset: 4096,
            data: vec![0x5a; 3000],
        },
        Patch {
            offset: 150_000,
            data: pseudo_random(70_000, 9),
        },
        Patch {
            offset: base_len - 10,
            data: vec![0xee; 40],
        },
        Patch {
            offset: base_len + 50_000,
            data: b"tail".to_vec(),
        },
    ];
    let set = PatchSet::new(base_len, base_len + 70_000, patches).unwrap();
    let mut patched = base_bytes.clone();
    patched.resize(set.len as usize, 0);
    for p in &set.patches {
        patched[p.offset as usize..p.end() as usize].copy_from_slice(&p.data);
    }
    let patch = dir.join("node.patch.json");
    std::fs::write(&patch, serde_json::to_vec(&set).unwrap()).unwrap();
    Fixture {
        _dir: tmp,
        dir,
        base,
        base_bytes,
        patch,
        patched,
    }
}

impl Fixture {
    /// The base file as published, unpatched.
    fn plain(&self) -> Artifact {
        Artifact {
            base: self.base.clone(),
            patch_set: None,
            len: self.base_bytes.len() as u64,
        }
    }

    /// The base with the patch set applied.
    fn patched(&self) -> Artifact {
        Artifact {
            base: self.base.clone(),
            patch_set: Some(self.patch.clone()),
            len: self.patched.len() as u64,
        }
    }
}

async fn start(cfg: ServerConfig) -> ServerHandle {
    imageserver::start(cfg, None)
        .await
        .expect("start image server")
}

#[derive(Debug)]
enum Want {
    Full,
    Parts(Vec<(u64, u64)>),
    Unsatisfiable,
}

/// Splits a multipart/byteranges body into (start, end-inclusive, data) parts.
fn parse_multipart(body: &[u8], boundary: &str, total: u64) -> Vec<(u64, u64, Vec<u8>)> {
    let mut parts = Vec::new();
    let delim = format!("--{boundary}");
    let mut pos = 0usize;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    loop {
        let d = find(body, delim.as_bytes(), pos).expect("boundary");
        let after = d + delim.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let head_end = find(body, b"\r\n\r\n", after).expect("part headers end");
        let head = String::from_utf8_lossy(&body[after..head_end]).to_string();
        let cr = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: bytes "))
            .expect("part Content-Range");
        let (range, len) = cr.split_once('/').unwrap();
        assert_eq!(len.parse::<u64>().unwrap(), total);
        let (a, b) = range.split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        let start = head_end + 4;
        let end = start + (b - a + 1) as usize;
        parts.push((a, b, body[start..end].to_vec()));
        assert_eq!(
            &body[end..end + 2],
            b"\r\n",
            "part data must end at its Content-Range"
        );
        pos = end;
    }
    parts
}

async fn check_ranges(url: &str, expected: &[u8]) {
    let len = expected.len() as u64;
    let mut cases: Vec<(String, Want)> = vec![
        ("bytes=0-0".into(), Want::Parts(vec![(0, 0)])),
        ("bytes=0-".into(), Want::Parts(vec![(0, len - 1)])),
        ("bytes=-1".into(), Want::Parts(vec![(len - 1, len - 1)])),
        (format!("bytes=-{len}"), Want::Parts(vec![(0, len - 1)])),
        (
            format!("bytes=-{}", len + 100),
            Want::Parts(vec![(0, len - 1)]),
        ),
        (
            format!("bytes={}-", len - 1),
            Want::Parts(vec![(len - 1, len - 1)]),
        ),
        (
            format!("bytes=100-{}", len * 10),
            Want::Parts(vec![(100, len - 1)]),
        ),
        (format!("bytes={len}-"), Want::Unsatisfiable),
        (
            format!("bytes={}-{}", len + 5, len + 10),
            Want::Unsatisfiable,
        ),
        ("bytes=-0".into(), Want::Unsatisfiable),
        ("bytes=9-3".into(), Want::Full),
        ("bytes=abc".into(), Want::Full),
        ("pages=1-2".into(), Want::Full),
        // Overlapping ranges are merged, so no byte is sent twice; disjoint ones, even out
        // of order, are served as asked.
        ("bytes=0-99,50-149".into(), Want::Parts(vec![(0, 149)])),
        (
            format!("bytes={}", vec!["0-"; 64].join(",")),
            Want::Parts(vec![(0, len - 1)]),
        ),
        (
            "bytes=4000-5000,0-10,-20".into(),
            Want::Parts(vec![(4000, 5000), (0, 10), (len - 20, len - 1)]),
        ),
        (format!("bytes=0-0,{}-", len + 1), Want::Parts(vec![(0, 0)])),
        (
            format!("bytes=299990-300020,{}-{}", len - 5, len + 5),
            Want::Parts(if len - 5 <= 300020 {
                vec![(299990, len - 1)] // they overlap: merged
            } else {
                vec![(299990, 300020), (len - 5, len - 1)]
            }),
        ),
    ];
    let rnd = pseudo_random(8 * 24, 42);
    for i in 0..24 {
        let v = u64::from_le_bytes(rnd[i * 8..i * 8 + 8].try_into().unwrap());
        let a = v % len;
        let b = a + (v >> 32) % 70_000;
        let want_end = b.min(len - 1);
        cases.push((format!("bytes={a}-{b}"), Want::Parts(vec![(a, want_end)])));
    }
    for (range, want) in cases {
        let r = curl(&["-H", &format!("Range: {range}"), url]).await;
        match want {
            Want::Full => {
                assert_eq!(r.status, 200, "{range}");
                assert_eq!(r.body, expected, "{range}");
            }
            Want::Unsatisfiable => {
                assert_eq!(r.status, 416, "{range}");
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes */{len}").as_str())
                );
            }
            Want::Parts(parts) if parts.len() == 1 => {
                let (a, b) = parts[0];
                assert_eq!(r.status, 206, "{range}");
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes {a}-{b}/{len}").as_str()),
                    "{range}"
                );
                assert_eq!(
                    r.header("content-length"),
                    Some((b - a + 1).to_string().as_str())
                );
                assert!(
                    r.body == expected[a as usize..=b as usize],
                    "{range}: body differs"
                );
            }
            Want::Parts(parts) => {
                assert_eq!(r.status, 206, "{range}");
                let ct = r.header("content-type").unwrap();
                let boundary = ct
                    .strip_prefix("multipart/byteranges; boundary=")
                    .expect(ct);
                assert_eq!(
                    r.header("content-length"),
                    Some(r.body.len().to_string().as_str())
                );
                let got = parse_multipart(&r.body, boundary, len);
                assert_eq!(got.len(), parts.len(), "{range}");
                for ((a, b, data), (wa, wb)) in got.iter().zip(&parts) {
                    assert_eq!((*a, *b), (*wa, *wb), "{range}");
                    assert!(
                        data[..] == expected[*a as usize..=*b as usize],
                        "{range}: part {a}-{b} differs"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_correctness_plain_file_and_patch_set() {
    if common::tool("curl").is_none() {
        return;
    }
    let fx = fixture();
    let h = start(config(&fx.dir)).await;
    let plain = h
        .server
        .publish(&fx.plain(), "node-a", "plain")
        .await
        .unwrap();
    let patched = h
        .server
        .publish(&fx.patched(), "node-b", "patched.iso")
        .await
        .unwrap();
    // Whole bodies first.
    let r = curl(&[&plain.url]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == fx.base_bytes);
    let r = curl(&[&patched.url]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(fx.patched.len().to_string().as_str())
    );
    assert!(r.body == fx.patched, "patched body differs");
    check_ranges(&plain.url, &fx.base_bytes).await;
    check_ranges(&patched.url, &fx.patched).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_etag_if_range_if_none_match_and_fetch_log() {
    if common::tool("curl").is_none() {
        return;
    }
    let fx = fixture();
    let h = start(config(&fx.dir)).await;
    let p = h
        .server
        .publish(&fx.patched(), "node-log", "boot")
        .await
        .unwrap();
    let head = curl(&["-I", &p.url]).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(fx.patched.len().to_string().as_str())
    );
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    // curl -I writes the headers where the body would go: no image bytes must follow them.
    assert!(head.body.len() < 1000, "HEAD sent a body");
    let etag = head.header("etag").expect("etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10);
    let lm = head
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    assert!(httpdate::parse_http_date(&lm).is_ok(), "{lm}");

    let r = curl(&["-H", &format!("If-None-Match: {etag}"), &p.url]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = curl(&["-H", "If-None-Match: \"other\"", &p.url]).await;
    assert_eq!(r.status, 200);

    // If-Range: the matching ETag or date keeps the range; anything else gives the whole file.
    for (if_range, want) in [
        (etag.as_str(), 206),
        (lm.as_str(), 206),
        ("\"stale\"", 200),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
    ] {
        let r = curl(&[
            "-H",
            "Range: bytes=10-19",
            "-H",
            &format!("If-Range: {if_range}"),
            &p.url,
        ])
        .await;
        assert_eq!(r.status, want, "If-Range {if_range}");
        if want == 206 {
            assert!(r.body == fx.patched[10..20]);
        } else {
            assert_eq!(r.body.len(), fx.patched.len());
        }
    }
    let head_range = curl(&["-I", "-H", "Range: bytes=0-9", &p.url]).await;
    assert_eq!(head_range.status, 206);
    assert_eq!(head_range.header("content-length"), Some("10"));

    // Every fetch is logged against the node, with remote address, range and bytes (once its
    // connection has finished with it).
    let log = common::poll("every fetch logged", || {
        let log: Vec<_> = h
            .server
            .fetch_log()
            .into_iter()
            .filter(|f| f.publication == p.id)
            .collect();
        std::future::ready((log.len() >= 8).then_some(log))
    })
    .await;
    assert_eq!(log.len(), 8);
    assert!(log
        .iter()
        .all(|f| f.node == "node-log" && f.remote.starts_with("127.0.0.1:")));
    let ranged = log
        .iter()
        .find(|f| f.range == "bytes=10-19" && f.status == 206)
        .unwrap();
    assert_eq!(ranged.bytes, 10);
    assert!(ranged.complete);
    let full: u64 = log
        .iter()
        .filter(|f| f.status == 200 && f.method == "GET")
        .map(|f| f.bytes)
        .sum();
    assert_eq!(full, 3 * fx.patched.len() as u64);
    assert_eq!(h.server.stats(&p.id).fetches, 8);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_revoke_and_survive_restart() {
    if common::tool("curl").is_none() {
        return;
    }
    let fx = fixture();
    let art = Artifact {
        base: fx.base.clone(),
        patch_set: None,
        len: fx.base_bytes.len() as u64,
    };
    let short = ServerConfig {
        token_ttl: Duration::from_secs(1),
        ..config(&fx.dir)
    };
    let h = start(short).await;
    let p = h.server.publish(&art, "node-x", "short").await.unwrap();
    // The URL: /<token>/<name>.iso, no query, token of >= 128 random bits (base64url).
    let rest = p
        .url
        .strip_prefix(&format!("http://{}/", h.local_addr))
        .unwrap();
    let (token, name) = rest.split_once('/').unwrap();
    assert_eq!(name, "short.iso");
    assert!(!p.url.contains('?'));
    assert!(token.len() * 6 >= 128, "{token}");
    assert_eq!(curl(&["-I", &p.url]).await.status, 200);
    let wrong_name = p.url.replace("short.iso", "other.iso");
    assert_eq!(curl(&["-I", &wrong_name]).await.status, 404);
    let mut guessed = token.to_string();
    guessed.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    assert_eq!(
        curl(&["-I", &p.url.replace(token, &guessed)]).await.status,
        404
    );
    // The token lives one second: poll until it has expired (never a fixed sleep).
    let url = p.url.as_str();
    common::poll("the one-second token expires", || async move {
        (curl(&["-I", url]).await.status == 404).then_some(())
    })
    .await;
    // The next publish sweeps the expired record from disk.
    let p2 = h.server.publish(&art, "node-x", "again").await.unwrap();
    let records: Vec<_> = std::fs::read_dir(fx.dir.join("pubs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(records, vec![format!("{}.json", p2.id)]);
    h.server.revoke(&p2.id).await.unwrap();
    h.shutdown().await;

    // A publication outlives a restart; a revoked one is gone for good.
    let h = start(config(&fx.dir)).await;
    let keep = h.server.publish(&art, "node-y", "keep").await.unwrap();
    let gone = h.server.publish(&art, "node-z", "gone").await.unwrap();
    assert_eq!(curl(&["-I", &gone.url]).await.status, 200);
    h.server.revoke(&gone.id).await.unwrap();
    h.server.revoke(&gone.id).await.unwrap(); // idempotent
    assert_eq!(curl(&["-I", &gone.url]).await.status, 404);
    let port = h.local_addr.port();
    h.shutdown().await;
    let cfg = ServerConfig {
        bind: format!("127.0.0.1:{port}").parse().unwrap(),
        ..config(&fx.dir)
    };
    let h = start(cfg).await;
    let r = curl(&[&keep.url]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == fx.base_bytes);
    assert_eq!(curl(&["-I", &gone.url]).await.status, 404);
    assert_eq!(h.server.publications().len(), 1);
    h.shutdown().await;
}

/// Files published beside one another share a URL directory, as cloud-init's NoCloud seed
/// (`ds=nocloud-net;s=DIR/`) needs for `user-data` and `meta-data`; each is revoked alone, and
/// the directory survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_published_beside_one_another_share_a_directory() {
    if common::tool("curl").is_none() {
        return;
    }
    let fx = fixture();
    let write = |name: &str, text: &str| {
        let path = fx.dir.join(name);
        std::fs::write(&path, text).unwrap();
        Artifact {
            base: path,
            patch_set: None,
            len: text.len() as u64,
        }
    };
    let (user, meta) = (
        write("ud", "#cloud-config\nautoinstall: {version: 1}\n"),
        write("md", "instance-id: n1\n"),
    );
    let h = start(config(&fx.dir)).await;
    let p = h.server.publish(&user, "n1", "user-data").await.unwrap();
    assert!(p.url.ends_with("/user-data"), "{}", p.url);
    let dir = p.url.strip_suffix("user-data").unwrap().to_string();
    let m = h
        .server
        .publish_beside("meta-fixed-id", &meta, "n1", "meta-data", &p.id)
        .await
        .unwrap();
    assert_eq!(m.url, format!("{dir}meta-data"));
    assert_eq!(
        curl(&[&format!("{dir}user-data")]).await.body,
        b"#cloud-config\nautoinstall: {version: 1}\n"
    );
    assert_eq!(
        curl(&[&format!("{dir}meta-data")]).await.body,
        b"instance-id: n1\n"
    );
    assert_eq!(
        curl(&["-I", &format!("{dir}vendor-data")]).await.status,
        404
    );
    // Refused: a name already in the directory, a publication that is not live.
    let e = h
        .server
        .publish_beside("meta-again", &meta, "n1", "meta-data", &p.id)
        .await
        .unwrap_err();
    assert!(e.message.contains("meta-data"), "{e}");
    let e = h
        .server
        .publish_beside("meta-lost", &meta, "n1", "meta-data", "no-such-publication")
        .await
        .unwrap_err();
    assert!(e.message.contains("no-such-publication"), "{e}");
    let port = h.local_addr.port();
    h.shutdown().await;
    let h = start(ServerConfig {
        bind: format!("127.0.0.1:{port}").parse().unwrap(),
        ..config(&fx.dir)
    })
    .await;
    assert_eq!(curl(&["-I", &m.url]).await.status, 200);
    h.server.revoke(&m.id).await.unwrap();
    assert_eq!(curl(&["-I", &m.url]).await.status, 404);
    assert_eq!(curl(&["-I", &p.url]).await.status, 200);
    h.server.revoke(&p.id).await.unwrap();
    assert_eq!(curl(&["-I", &p.url]).await.status, 404);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_refuses_bad_input() {
    let fx = fixture();
    let h = start(config(&fx.dir)).await;
    let bad_len = Artifact {
        base: fx.base.clone(),
        patch_set: Some(fx.patch.clone()),
        len: 5,
    };
    let e = h.server.publish(&bad_len, "n", "x").await.unwrap_err();
    assert!(e.message.contains("artifact says 5 bytes"), "{e}");
    let ok_len = Artifact {
        base: fx.base.clone(),
        patch_set: None,
        len: fx.base_bytes.len() as u64,
    };
    let e = h
        .server
        .publish(&ok_len, "n", "../etc/passwd")
        .await
        .unwrap_err();
    assert!(e.message.contains("invalid publication name"), "{e}");
    // The patch set was made for another base length: refused, with what to do.
    std::fs::write(&fx.base, b"shorter").unwrap();
    let art = Artifact {
        base: fx.base.clone(),
        patch_set: Some(fx.patch.clone()),
        len: fx.patched.len() as u64,
    };
    let e = h.server.publish(&art, "n", "x").await.unwrap_err();
    assert!(e.message.contains("remaster it again"), "{e}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_tls_and_ipv6() {
    if common::tool("curl").is_none() || common::tool("openssl").is_none() {
        return;
    }
    let fx = fixture();
    let (cert, key) = (fx.dir.join("cert.pem"), fx.dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let cfg = ServerConfig {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        basic_auth_user: Some("bmc".into()),
        basic_auth_password: Some("s3cret".into()),
        ..config(&fx.dir)
    };
    let h = start(cfg).await;
    let art = Artifact {
        base: fx.base.clone(),
        patch_set: None,
        len: fx.base_bytes.len() as u64,
    };
    let p = h.server.publish(&art, "node-tls", "secure").await.unwrap();
    assert!(p.url.starts_with("https://127.0.0.1:"), "{}", p.url);
    let cacert = cert.to_str().unwrap();
    let r = curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &format!("localhost:{}:127.0.0.1", h.local_addr.port()),
        &p.url.replace("127.0.0.1", "localhost"),
    ])
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let r = curl(&["-k", "-u", "bmc:wrong", &p.url]).await;
    assert_eq!(r.status, 401);
    let r = curl(&["-k", "-u", "bmc:s3cret", "-H", "Range: bytes=5-9", &p.url]).await;
    assert_eq!(r.status, 206);
    assert!(r.body == fx.base_bytes[5..10]);
    h.shutdown().await;

    // IPv6 literal: the URL brackets it and curl fetches it.
    let cfg = ServerConfig {
        bind: "[::1]:0".parse().unwrap(),
        ..config(&fx.dir)
    };
    let h = start(cfg).await;
    let p = h.server.publish(&art, "node-v6", "v6").await.unwrap();
    assert!(p.url.starts_with("http://[::1]:"), "{}", p.url);
    let r = curl(&[&p.url]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == fx.base_bytes);
    assert!(h
        .server
        .fetch_log()
        .iter()
        .any(|f| f.remote.starts_with("[::1]:")));
    h.shutdown().await;

    // External URL: what BMCs see; IPv6 must be bracketed; a wildcard bind needs it.
    let cfg = ServerConfig {
        external_url: Some("http://[fd00::10]:8081/".into()),
        ..config(&fx.dir)
    };
    let h = start(cfg).await;
    let p = h.server.publish(&art, "n", "ext").await.unwrap();
    assert!(
        p.url.starts_with("http://[fd00::10]:8081/") && p.url.ends_with("/ext.iso"),
        "{}",
        p.url
    );
    h.shutdown().await;
    let bad = ServerConfig {
        external_url: Some("http://fd00::10:8081".into()),
        ..config(&fx.dir)
    };
    let e = imageserver::start(bad, None).await.err().unwrap();
    assert!(e.to_string().contains("brackets"), "{e}");
    let wild = ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..config(&fx.dir)
    };
    let e = imageserver::start(wild, None).await.err().unwrap();
    assert!(e.to_string().contains("set external_url"), "{e}");
}

/// One response read off a raw connection: status, headers (lowercase names), body.
fn next_response(buf: &mut Vec<u8>, head_only: bool) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = match headers.iter().find(|(k, _)| k == "content-length") {
        Some((_, v)) if !head_only => v.parse().unwrap(),
        _ => 0,
    };
    let body = buf[end + 4..end + 4 + len].to_vec();
    buf.drain(..end + 4 + len);
    (status, headers, body)
}

/// Evicts `path` from the page cache (best effort), so serving it must read the disk.
fn drop_from_page_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: advisory call on an open descriptor.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    out
}

/// A BMC's HTTP stack reuses one connection: pipelined HEAD, range GET and full GET of a
/// patch set come back in order and intact, then `Connection: close` is honoured. Requests
/// the server cannot take get a status that says why, and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_pipelined_requests_and_refuses_what_it_cannot_take() {
    let fx = fixture();
    let h = start(config(&fx.dir)).await;
    let p = h
        .server
        .publish(&fx.patched(), "node-p", "pipelined")
        .await
        .unwrap();
    let path = p.url.strip_prefix(&h.server.base_url()).unwrap();
    drop_from_page_cache(&fx.base); // the full GET then takes the cold-file path
    let request = format!(
        "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=4090-4105\r\n\r\n\
         GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut got = raw_exchange(h.local_addr, request.as_bytes()).await;
    let (status, headers, body) = next_response(&mut got, true);
    assert_eq!(status, 200);
    let len = fx.patched.len().to_string();
    assert!(
        headers.contains(&("content-length".into(), len)),
        "{headers:?}"
    );
    assert!(body.is_empty());
    let (status, _, body) = next_response(&mut got, false);
    assert_eq!(status, 206);
    assert_eq!(body, fx.patched[4090..4106]);
    let (status, headers, body) = next_response(&mut got, false);
    assert_eq!(status, 200);
    assert!(
        body == fx.patched,
        "full body over a reused connection differs"
    );
    assert!(headers.contains(&("connection".into(), "close".into())));
    assert!(got.is_empty(), "nothing after the last response");
    let log = h.server.fetch_log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].bytes, fx.patched.len() as u64);
    assert!(log
        .iter()
        .all(|f| f.complete && f.remote.starts_with("127.0.0.1:")));

    let refusals: [(&str, u16, &str); 4] = [
        (
            "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            413,
            "takes no request bodies",
        ),
        (
            "PUT /x HTTP/1.1\r\nConnection: close\r\n\r\n",
            405,
            "only GET and HEAD",
        ),
        (
            "GET /x HTTP/1.1\r\nX: \u{1}\r\n\r\n",
            400,
            "malformed HTTP request",
        ),
        (
            "GET /nothing/here HTTP/1.1\r\nConnection: close\r\n\r\n",
            404,
            "not found",
        ),
    ];
    for (request, want, says) in refusals {
        let mut got = raw_exchange(h.local_addr, request.as_bytes()).await;
        let (status, _, body) = next_response(&mut got, false);
        assert_eq!(status, want, "{request:?}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(says), "{request:?}: {body}");
    }
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let mut got = raw_exchange(h.local_addr, huge.as_bytes()).await;
    assert_eq!(next_response(&mut got, false).0, 431);
    h.shutdown().await;
}

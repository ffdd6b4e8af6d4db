//! Secrets at rest: BMC passwords (the database) and image tokens (publication records) are
//! readable by the owner only, whatever the umask `serve` starts with.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use deploy_drivers::ports::{Artifact, Publisher as _};

use crate::common::serve::spawn_serve_with;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_dir_and_database_are_private_under_umask_000() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    // An existing state dir left world-readable: made private at start.
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = spawn_serve_with(&state, &[], |cmd| {
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
    });
    let node = serde_json::json!({"driver": "fake-hardware", "name": "s1",
        "driver_info": {"redfish_password": "bmc-secret"}});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/nodes", server.url))
        .json(&node)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(mode(&state), 0o700, "state dir");
    assert_eq!(mode(&state.join("imageserver")), 0o700, "publication dir");
    let db = state.join("ironcast.db");
    assert_eq!(mode(&db), 0o600, "database");
    // WAL mode: both exist while serve has the database open.
    for companion in ["ironcast.db-wal", "ironcast.db-shm"] {
        assert_eq!(mode(&state.join(companion)), 0o600, "{companion}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publication_records_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("live.iso");
    std::fs::write(&iso, b"iso".repeat(100)).unwrap();
    let cfg = ironcast::imageserver::ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        dir: dir.path().join("pubs"),
        ..Default::default()
    };
    let images = ironcast::imageserver::start(cfg, None).await.unwrap();
    let artifact = Artifact {
        len: 300,
        base: iso,
        patch_set: None,
    };
    let publication = images
        .server
        .publish(&artifact, "node-1", "live.iso")
        .await
        .unwrap();
    let record = dir
        .path()
        .join("pubs")
        .join(format!("{}.json", publication.id));
    assert_eq!(mode(&record), 0o600, "publication record (holds the token)");
    assert_eq!(mode(&dir.path().join("pubs")), 0o700);
    images.shutdown().await;
}

//! Runs the image server standalone on 127.0.0.1:<free port>, publishing one file, for
//! scripts/bench-imageserver. Prints the URL on stdout, then serves until killed.
//!
//! Usage: imageserver_bench FILE STATE_DIR

use deploy_drivers::ports::{Artifact, Publisher};
use ironcast::imageserver::{self, ServerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(file), Some(dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: imageserver_bench FILE STATE_DIR");
    };
    let file = std::path::PathBuf::from(file);
    let len = std::fs::metadata(&file)?.len();
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse()?,
        dir: dir.into(),
        ..ServerConfig::default()
    };
    let handle = imageserver::start(cfg, None).await?;
    let publication = handle
        .server
        .publish(
            &Artifact {
                base: file,
                patch_set: None,
                len,
            },
            "bench",
            "bench",
        )
        .await?;
    println!("{}", publication.url);
    std::future::pending::<()>().await;
    Ok(())
}

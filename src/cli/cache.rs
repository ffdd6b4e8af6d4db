//! `ironcast cache`: inspect and manage the image cache directory directly (no server needed;
//! the cache's flocks keep a running server and this command from downloading twice).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::cache::{
    lease_name, Cache, CacheConfig, CacheError, ChecksumSpec, EntryInfo, LeaseScope,
};

#[derive(Debug, clap::Args)]
pub struct CacheOpts {
    /// Cache directory (default: the state directory's cache).
    #[arg(long, env = "IRONCAST_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Hard quota in bytes (default: the cache's default).
    #[arg(long, global = true)]
    quota_bytes: Option<u64>,
    /// Allow file:// URLs under this directory (repeatable).
    #[arg(long = "allow-file-dir", global = true)]
    allow_file_dirs: Vec<PathBuf>,
    /// Accept md5 checksums.
    #[arg(long, global = true)]
    allow_md5: bool,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCmd {
    /// List cached entries, most recently used first.
    List {
        #[command(flatten)]
        opts: CacheOpts,
    },
    /// Show one entry (sha256 or a unique prefix of at least 8 digits).
    Show {
        sha256: String,
        #[command(flatten)]
        opts: CacheOpts,
    },
    /// Fetch an image into the cache, verifying it, with a progress bar.
    Fetch {
        url: String,
        /// "sha256:HEX", "sha512:HEX", a bare HEX (algorithm by length), or the URL of a
        /// SHA256SUMS-style file listing the image's file name.
        #[arg(long)]
        checksum: Option<String>,
        /// Then keep the image leased until standard input closes or this command is
        /// interrupted or killed: no process sharing the cache directory evicts it meanwhile.
        #[arg(long)]
        hold: bool,
        #[command(flatten)]
        opts: CacheOpts,
    },
    /// Remove expired entries (and least recently used ones above quota), stale partial files.
    Gc {
        #[command(flatten)]
        opts: CacheOpts,
    },
    /// Remove one entry now, by sha256 or by a captured image's name (which goes with it);
    /// refused while anything else leases it.
    Evict {
        #[arg(value_name = "SHA256|NAME")]
        sha256: String,
        #[command(flatten)]
        opts: CacheOpts,
    },
}

fn config(opts: &CacheOpts) -> CacheConfig {
    let mut cfg = CacheConfig::default();
    if let Some(d) = &opts.cache_dir {
        cfg.dir = d.clone();
    }
    if let Some(q) = opts.quota_bytes {
        cfg.quota_bytes = q;
    }
    cfg.allowed_file_dirs = opts.allow_file_dirs.clone();
    cfg.allow_md5 = opts.allow_md5;
    cfg
}

/// Parses `--checksum`: a URL names a checksum file, anything else is a value.
pub fn parse_checksum(text: &str) -> ChecksumSpec {
    let is_url = ["http://", "https://", "file://"]
        .iter()
        .any(|p| text.starts_with(p));
    if is_url {
        return ChecksumSpec::FileUrl(text.to_string());
    }
    match text.split_once(':') {
        Some((a, h)) => ChecksumSpec::Value {
            algorithm: a.to_string(),
            hex: h.to_string(),
        },
        None => ChecksumSpec::Value {
            algorithm: "auto".into(),
            hex: text.to_string(),
        },
    }
}

/// Returns when standard input reaches end of file or on Ctrl-C.
async fn wait_for_eof_or_interrupt() -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread, not tokio's stdin: a read still blocked at exit would hold up the
    // runtime's shutdown, a detached thread does not.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    tokio::select! {
        _ = rx => Ok(()),
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
    }
}

fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

fn print_entries(entries: &[EntryInfo], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(entries)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>10} {:<20} {:<6} {:<16} URL",
        "SHA256", "SIZE", "LAST USED", "LEASES", "NAME"
    );
    for e in entries {
        let names: Vec<&str> = e.leases.iter().filter_map(lease_name).collect();
        println!(
            "{:<16} {:>10} {:<20} {:<6} {:<16} {}",
            &e.meta.sha256[..16],
            human(e.meta.size),
            e.meta.last_used.format("%Y-%m-%d %H:%M:%S"),
            e.leases.len(),
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(",")
            },
            e.meta.sources.keys().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

pub async fn run(cmd: CacheCmd) -> anyhow::Result<ExitCode> {
    let opts = match &cmd {
        CacheCmd::List { opts }
        | CacheCmd::Show { opts, .. }
        | CacheCmd::Fetch { opts, .. }
        | CacheCmd::Gc { opts }
        | CacheCmd::Evict { opts, .. } => opts,
    };
    let cfg = config(opts);
    let dir = cfg.dir.clone();
    let cache = Cache::open(cfg)
        .await
        .with_context(|| format!("opening cache {}", dir.display()))?;
    match &cmd {
        CacheCmd::List { opts } => print_entries(&cache.list(), opts.json)?,
        CacheCmd::Show { sha256, opts } => {
            let e = cache.find(sha256)?;
            if opts.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!("sha256:     {}", e.meta.sha256);
                println!("path:       {}", e.path.display());
                println!("size:       {} ({} bytes)", human(e.meta.size), e.meta.size);
                println!("fetched at: {}", e.meta.fetched_at);
                println!("last used:  {}", e.meta.last_used);
                for (a, h) in &e.meta.checksums {
                    println!("{a:<11} {h}");
                }
                for (u, s) in &e.meta.sources {
                    println!(
                        "source:     {u} (etag {}, last-modified {})",
                        s.etag.as_deref().unwrap_or("-"),
                        s.last_modified.as_deref().unwrap_or("-")
                    );
                }
                for l in &e.leases {
                    println!(
                        "lease:      {} held by {} since {}",
                        l.id, l.holder, l.created_at
                    );
                }
            }
        }
        CacheCmd::Fetch {
            url,
            checksum,
            hold,
            opts,
        } => {
            let spec = checksum.as_deref().map(parse_checksum);
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let b2 = bar.clone();
            let progress: crate::cache::Progress = Arc::new(move |done, total| {
                if let Some(t) = total {
                    b2.set_length(t);
                }
                b2.set_position(done);
            });
            let res = cache
                .fetch_with_progress(url, spec.as_ref(), Some(progress))
                .await;
            bar.finish_and_clear();
            let meta = res.with_context(|| format!("fetching {url}"))?;
            // A process lease: it ends with this process however it ends, so a forgotten or
            // killed `--hold` never pins the entry.
            let lease = if *hold {
                let holder = format!("ironcast cache fetch --hold (pid {})", std::process::id());
                Some(
                    cache
                        .lease_with(&meta.sha256, &holder, LeaseScope::Process)
                        .await
                        .with_context(|| format!("leasing sha256:{}", meta.sha256))?,
                )
            } else {
                None
            };
            if opts.json {
                println!("{}", serde_json::to_string_pretty(&meta)?);
            } else {
                println!(
                    "sha256:{} {} {}",
                    meta.sha256,
                    human(meta.size),
                    cache.path_of(&meta.sha256).display()
                );
            }
            if let Some(lease) = lease {
                eprintln!(
                    "lease {} held until standard input closes or this command is interrupted",
                    lease.id
                );
                wait_for_eof_or_interrupt().await?;
                cache.release(&lease.id).await?;
            }
        }
        CacheCmd::Gc { opts } => {
            let report = cache.gc().await?;
            if opts.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "evicted {} entries, freed {}, removed {} stray files",
                    report.evicted.len(),
                    human(report.freed_bytes),
                    report.removed_files.len()
                );
            }
        }
        CacheCmd::Evict { sha256: which, .. } => {
            // A captured image's name first: names and sha256 prefixes rarely look alike.
            let sha = match cache.evict_named(which).await {
                Ok(entry) => entry.sha256,
                Err(CacheError::NotFound(_)) => {
                    let e = cache.find(which).map_err(|_| {
                        anyhow::anyhow!(
                            "no cache entry has the sha256 (or prefix of at least 8 digits) or the image name {which:?}: see `ironcast cache list`"
                        )
                    })?;
                    cache.evict(&e.meta.sha256).await?;
                    e.meta.sha256
                }
                Err(e) => return Err(e.into()),
            };
            println!("evicted sha256:{sha}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_argument_forms() {
        assert_eq!(
            parse_checksum("sha256:ab"),
            ChecksumSpec::Value {
                algorithm: "sha256".into(),
                hex: "ab".into()
            }
        );
        assert_eq!(
            parse_checksum("https://x/SHA256SUMS"),
            ChecksumSpec::FileUrl("https://x/SHA256SUMS".into())
        );
        assert!(
            matches!(parse_checksum("abcd"), ChecksumSpec::Value { algorithm, .. } if algorithm == "auto")
        );
    }
}

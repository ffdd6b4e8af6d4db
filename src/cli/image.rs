//! `ironcast image`: write a disk image to a device or file, or inspect one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::writer::{self, Checksum, Format, Source, WriteOptions, WriteRequest};

#[derive(Debug, clap::Subcommand)]
pub enum ImageCmd {
    /// Write an image (raw or qcow2, optionally gzip/zstd/xz-compressed) to a disk or file.
    Write(WriteArgs),
    /// Show an image's format, compression and virtual size.
    Info {
        /// Image file, http(s) URL, or - for stdin.
        src: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Auto,
    Raw,
    Qcow2,
}

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Image file, http(s) URL, or - for stdin.
    src: String,
    /// Block device to write (a regular file only with --allow-file).
    dest: PathBuf,
    /// Checksum of the image as downloaded: sha256:HEX or sha512:HEX.
    #[arg(long)]
    checksum: Option<String>,
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Write block devices with O_DIRECT.
    #[arg(long)]
    direct: bool,
    /// Read the written bytes back and compare.
    #[arg(long)]
    verify: bool,
    /// The target already reads as zeros (e.g. after `blkdiscard -z`): skip zero runs.
    #[arg(long)]
    assume_zeroed: bool,
    /// Only write destinations under this path (repeatable).
    #[arg(long = "allow", value_name = "PATH")]
    allow: Vec<PathBuf>,
    /// Also write a regular file (created when missing); never through a symlink.
    #[arg(long)]
    allow_file: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub async fn run(cmd: ImageCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ImageCmd::Info { src, json } => {
            let source = Source::parse(&src);
            let info = tokio::task::spawn_blocking(move || writer::info(&source))
                .await
                .context("image info task")??;
            if json {
                let v = serde_json::json!({
                    "format": info.format.name(),
                    "compression": info.compression.name(),
                    "virtual_size": info.virtual_size,
                    "source_size": info.source_len,
                });
                println!("{v}");
            } else {
                println!("format:       {}", info.format.name());
                println!("compression:  {}", info.compression.name());
                match info.virtual_size {
                    Some(n) => println!("virtual size: {n} bytes ({})", indicatif::HumanBytes(n)),
                    None => println!("virtual size: unknown (compressed stream)"),
                }
                if let Some(n) = info.source_len {
                    println!("file size:    {n} bytes ({})", indicatif::HumanBytes(n));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCmd::Write(a) => write(a).await,
    }
}

async fn write(a: WriteArgs) -> anyhow::Result<ExitCode> {
    let checksum = a.checksum.as_deref().map(Checksum::parse).transpose()?;
    let req = WriteRequest {
        source: Source::parse(&a.src),
        dest: a.dest.clone(),
        checksum,
        format: match a.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Raw => Format::Raw,
            FormatArg::Qcow2 => Format::Qcow2,
        },
        options: WriteOptions {
            allow: a.allow,
            allow_file: a.allow_file,
            direct: a.direct,
            assume_zeroed: a.assume_zeroed,
            verify: a.verify,
        },
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} read, {bytes_per_sec}, ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let b = bar.clone();
    let report = tokio::task::spawn_blocking(move || {
        writer::write_image(req, |p| {
            if let Some(len) = p.source_len {
                b.set_length(len);
            }
            b.set_position(p.source_read);
            b.set_message(format!(
                "({} of disk written)",
                indicatif::HumanBytes(p.written)
            ));
        })
    })
    .await
    .context("image write task")?
    .with_context(|| format!("writing {} to {}", a.src, a.dest.display()));
    bar.finish_and_clear();
    let r = report?;
    let secs = r.elapsed.as_secs_f64();
    println!(
        "wrote {} ({} {}, {} virtual) to {} in {secs:.2}s: {} data, {} zeroed, {} skipped{}{}{}",
        a.src,
        r.format.name(),
        r.compression.name(),
        indicatif::HumanBytes(r.virtual_size),
        a.dest.display(),
        indicatif::HumanBytes(r.sink.data_bytes),
        indicatif::HumanBytes(r.sink.zeroed_bytes),
        indicatif::HumanBytes(r.sink.skipped_bytes),
        r.digest
            .map(|d| format!(", checksum ok ({d})"))
            .unwrap_or_default(),
        if r.verified { ", read back ok" } else { "" },
        if r.gpt_relocated {
            ", backup GPT moved to disk end"
        } else {
            ""
        },
    );
    Ok(ExitCode::SUCCESS)
}

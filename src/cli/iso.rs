//! `ironcast iso`: inspect a boot ISO, remaster it with kernel arguments (issue 7).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::iso;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum IsoCmd {
    /// Show ids, El Torito entries, partitions, boot configs and kernel entries of an ISO.
    Inspect {
        file: PathBuf,
        #[arg(short, long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Identify the OS on an installer ISO: family, distro, version, arch, installer and the
    /// automation mechanisms it accepts. Exits 2 when no known installer matches.
    Identify {
        file: PathBuf,
        #[arg(short, long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Append kernel arguments to every kernel entry, without extracting or rebuilding.
    #[command(group(clap::ArgGroup::new("dest").required(true).multiple(true).args(["output", "patch"])))]
    Remaster {
        input: PathBuf,
        /// Kernel arguments to append, e.g. "console=ttyS0 ip=dhcp".
        #[arg(long)]
        append: String,
        /// Write the remastered ISO here (a copy of the input plus the patches).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write only the patch set (JSON) here; the image server serves it over the input.
        #[arg(long)]
        patch: Option<PathBuf>,
        /// Also start an installer unattended: its install entry becomes the default and every
        /// boot menu times out after SECONDS (what the iso-install deploy does).
        #[arg(long, value_name = "SECONDS")]
        unattended: Option<u32>,
    },
}

pub async fn run(cmd: IsoCmd) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || run_blocking(cmd)).await?
}

fn run_blocking(cmd: IsoCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        IsoCmd::Inspect { file, format } => {
            let info =
                iso::inspect(&file).with_context(|| format!("inspecting {}", file.display()))?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&info)?),
                Format::Text => print_text(&info),
            }
        }
        IsoCmd::Identify { file, format } => {
            let found = iso::identify::identify(&file)
                .with_context(|| format!("identifying {}", file.display()))?;
            match (found, format) {
                (Ok(id), Format::Json) => println!("{}", serde_json::to_string_pretty(&id)?),
                (Ok(id), Format::Text) => print_identity(&id),
                (Err(none), Format::Json) => {
                    println!("{}", serde_json::to_string_pretty(&none)?);
                    return Ok(ExitCode::from(2));
                }
                (Err(none), Format::Text) => {
                    eprintln!("{}: {none}", file.display());
                    return Ok(ExitCode::from(2));
                }
            }
        }
        IsoCmd::Remaster {
            input,
            append,
            output,
            patch,
            unattended,
        } => {
            if let Some(o) = &output {
                let same = std::fs::canonicalize(o)
                    .ok()
                    .zip(std::fs::canonicalize(&input).ok())
                    .is_some_and(|(a, b)| a == b);
                anyhow::ensure!(
                    !same,
                    "--output {} is the input: write the result to another file",
                    o.display()
                );
            }
            let (set, report) = match unattended {
                Some(timeout) => iso::remaster_unattended(&input, &append, timeout),
                None => iso::remaster(&input, &append),
            }
            .with_context(|| format!("remastering {}", input.display()))?;
            if let Some(p) = &patch {
                let json = serde_json::to_vec(&set)?;
                std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?;
            }
            if let Some(o) = &output {
                set.materialize(&input, o)
                    .with_context(|| format!("writing {}", o.display()))?;
            }
            for e in &report.edited {
                eprintln!("edited {e}");
            }
            for (m, lba) in &report.moved {
                eprintln!("moved {m} to sector {lba}");
            }
            eprintln!(
                "{} kernel entries; {} patches; {} -> {} bytes",
                report.kernel_entries,
                set.patches.len(),
                report.base_len,
                report.new_len
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_identity(i: &iso::identify::Identity) {
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    println!("os:          {} ({})", i.distro, i.id);
    println!(
        "family:      {}",
        serde_json::to_value(i.family)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    println!("version:     {}", or_unknown(&i.version));
    println!("arch:        {}", or_unknown(&i.arch));
    println!("installer:   {}", i.installer);
    if i.automation.is_empty() {
        println!("automation:  none (interactive install only)");
    }
    for a in &i.automation {
        let how = if a.how.medium {
            format!("{} on a second virtual medium", a.how.file_name)
        } else {
            format!("kernel args {}", a.how.kernel_args)
        };
        println!("automation:  {} ({how})", a.name);
    }
}

fn print_text(i: &iso::Inspection) {
    println!("file:        {} ({} bytes)", i.file, i.size);
    println!("volume id:   {}", i.volume_id);
    println!("system id:   {}", i.system_id);
    println!("publisher:   {}", i.publisher_id);
    println!("preparer:    {}", i.preparer_id);
    println!("application: {}", i.application_id);
    println!("volume size: {} bytes", i.volume_bytes);
    println!(
        "joliet: {}  rock ridge: {}  udf: {}  family: {}",
        i.joliet,
        i.rock_ridge,
        i.udf,
        serde_json::to_value(i.family)
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    );
    for b in &i.el_torito {
        println!(
            "el torito:   {} {} media={} lba={} loads {}",
            b.image.platform,
            if b.image.bootable {
                "bootable"
            } else {
                "not-bootable"
            },
            b.image.media,
            b.image.load_lba,
            b.loads
        );
    }
    for p in &i.partitions {
        println!(
            "partition:   {} {} type {} start {} sectors {}{}",
            p.table,
            p.index,
            p.kind,
            p.start,
            p.sectors,
            if p.esp { " (ESP)" } else { "" }
        );
    }
    for c in &i.configs {
        println!("config:      {:?} {} {}", c.loader, c.location, c.path);
    }
    for e in &i.entries {
        println!(
            "entry:       [{}] {} {:?}: {} {}",
            e.location,
            e.config,
            e.label.as_deref().unwrap_or(""),
            e.kernel,
            e.args
        );
    }
    for w in &i.warnings {
        println!("warning:     {w}");
    }
}

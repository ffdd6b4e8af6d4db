//! GRUB 2 config patcher: pure text → text. Appends arguments to `linux`, `linuxefi`,
//! `linux16` lines and variable-command lines such as SUSE's `$linux` (set to linux/linuxefi),
//! before a `---`/`--` separator when there is one, quoting GRUB metacharacters.
//! Idempotent: a line that already carries the rendered arguments is left alone.

use super::cmdline::{self, LineTooLong, Loader};

/// A kernel line found in a GRUB config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLine {
    /// Title of the enclosing `menuentry`, if any.
    pub title: Option<String>,
    pub kernel: String,
    pub args: String,
}

/// Characters that make GRUB's shell-like lexer split, expand or quote (GRUB manual §5.3).
const META: &[char] = &[
    ' ', '\t', '"', '\'', '\\', '$', ';', '&', '|', '<', '>', '(', ')', '{', '}', '#', '*', '?',
    '[', ']', '~',
];

/// Quotes one argument for GRUB: single quotes, with `'` written as `'\''`.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(META) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Renders arguments for a GRUB command line.
pub fn render(args: &[String]) -> String {
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// Whitespace-separated words with their byte offsets.
pub(crate) fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

fn is_kernel_command(word: &str) -> bool {
    matches!(word, "linux" | "linuxefi" | "linux16")
        || (word.starts_with('$') && word.to_ascii_lowercase().contains("linux"))
}

fn menuentry_title(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("menuentry")?.trim_start();
    let mut chars = rest.chars();
    match chars.next()? {
        q @ ('\'' | '"') => Some(chars.take_while(|&c| c != q).collect()),
        _ => {
            // Options (`--hotkey=i`) may come before the title.
            let t = rest.split_whitespace().find(|w| !w.starts_with("--"))?;
            if t.starts_with('\'') || t.starts_with('"') {
                menuentry_title(&format!("menuentry {}", &rest[rest.find(t)?..]))
            } else {
                Some(t.to_string())
            }
        }
    }
}

/// Every kernel line of a config.
pub fn kernel_lines(text: &str) -> Vec<KernelLine> {
    let mut title = None;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(t) = menuentry_title(line) {
            title = Some(t);
        }
        let w = words(line);
        if w.len() >= 2 && is_kernel_command(w[0].1) {
            out.push(KernelLine {
                title: title.clone(),
                kernel: w[1].1.to_string(),
                args: line[w[1].0 + w[1].1.len()..].trim().to_string(),
            });
        }
    }
    out
}

/// Inserts `rendered` into a command line whose arguments start at word `skip`: before a
/// `---`/`--` word, else at the end; None when the words are already there.
pub(crate) fn insert_args(line: &str, skip: usize, rendered: &str) -> Option<String> {
    let w = words(line);
    let args_start = w.get(skip).map(|(o, _)| *o).unwrap_or(line.len());
    if contains_words(&line[args_start..], rendered) {
        return None;
    }
    if let Some(&(at, _)) = w.iter().skip(skip).find(|(_, s)| *s == "---" || *s == "--") {
        Some(format!("{}{} {}", &line[..at], rendered, &line[at..]))
    } else {
        let trimmed = line.trim_end();
        Some(format!("{trimmed} {rendered}{}", &line[trimmed.len()..]))
    }
}

/// True when `needle`'s words appear consecutively among `line`'s words.
fn contains_words(line: &str, needle: &str) -> bool {
    let hay: Vec<&str> = line.split_whitespace().collect();
    let n: Vec<&str> = needle.split_whitespace().collect();
    !n.is_empty() && hay.windows(n.len()).any(|w| w == n.as_slice())
}

/// Patches a config: returns the new text (None when nothing changed) and the number of
/// kernel lines seen; refuses an edited line whose whole kernel command line would be too long.
pub fn patch(text: &str, args: &[String]) -> Result<(Option<String>, usize), LineTooLong> {
    let rendered = render(args);
    let mut out = String::with_capacity(text.len() + 256);
    let mut changed = false;
    let mut kernels = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let (body, eol) = split_eol(line);
        let w = words(body);
        if w.len() >= 2 && is_kernel_command(w[0].1) {
            kernels += 1;
            if let Some(new) = insert_args(body, 2, &rendered) {
                let kernel = w[1].1;
                let args_at = w[1].0 + kernel.len();
                cmdline::check(Loader::Grub, n + 1, kernel, &new[args_at..])?;
                out.push_str(&new);
                out.push_str(eol);
                changed = true;
                continue;
            }
        }
        out.push_str(line);
    }
    Ok((changed.then_some(out), kernels))
}

pub(crate) fn split_eol(line: &str) -> (&str, &str) {
    if let Some(b) = line.strip_suffix("\r\n") {
        (b, "\r\n")
    } else if let Some(b) = line.strip_suffix('\n') {
        (b, "\n")
    } else {
        (line, "")
    }
}

/// Files a config pulls in with `source` or `configfile`, as written (unresolved).
pub fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let w = words(line);
        if w.len() >= 2 && matches!(w[0].1, "source" | "configfile") {
            out.push(w[1].1.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, args: &[&str], want: &str) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (got, _) = patch(input, &args).unwrap();
        assert_eq!(got.as_deref().unwrap_or(input), want, "input: {input:?}");
        // Idempotent: a second pass changes nothing.
        assert_eq!(
            patch(want, &args).unwrap().0,
            None,
            "second pass on {want:?}"
        );
    }

    #[test]
    fn patches_kernel_lines() {
        let table: &[(&str, &[&str], &str)] = &[
            (
                "linux /vmlinuz quiet\n",
                &["a=1"],
                "linux /vmlinuz quiet a=1\n",
            ),
            (
                "\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=F quiet\n",
                &["x"],
                "\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=F quiet x\n",
            ),
            (
                "  linux\t/casper/vmlinuz  --- quiet splash\n",
                &["m=1"],
                "  linux\t/casper/vmlinuz  m=1 --- quiet splash\n",
            ),
            ("linux16 /k -- x\r\n", &["y"], "linux16 /k y -- x\r\n"),
            (
                "  $linux /boot/x86_64/loader/linux splash=silent\n",
                &["z"],
                "  $linux /boot/x86_64/loader/linux splash=silent z\n",
            ),
            (
                "linux /k\n",
                &["a;b", "c d", "it's"],
                "linux /k 'a;b' 'c d' 'it'\\''s'\n",
            ),
            (
                "# linux /k q\nchainloader /x\ninitrd /i\n",
                &["a"],
                "# linux /k q\nchainloader /x\ninitrd /i\n",
            ),
            ("linux /k ---\n", &["a"], "linux /k a ---\n"),
            ("linux /k", &["a"], "linux /k a"),
        ];
        for (input, args, want) in table {
            check(input, args, want);
        }
    }

    #[test]
    fn refuses_whole_lines_over_the_limit() {
        let args = vec!["m=1".to_string()];
        // BOOT_IMAGE=/k + " " + existing + " m=1": 13 + 1 + n + 4 bytes.
        let at_limit = 2047 - 13 - 1 - 4;
        let fill = |n: usize| "x".repeat(n);
        // (config, Some((line, length)) when refused)
        let table: Vec<(String, Option<(usize, usize)>)> = vec![
            (format!("linux /k {}\n", fill(at_limit)), None),
            (
                format!("menuentry a {{\n linux /k {}\n}}\n", fill(at_limit + 1)),
                Some((2, 2048)),
            ),
            // Arguments after `---` reach the kernel's line too.
            (
                format!("linux /k {} --- {}\n", fill(1020), fill(1020)),
                Some((1, 2063)),
            ),
            // A line already carrying the arguments is not edited, so not refused here.
            (format!("linux /k {} m=1\n", fill(3000)), None),
            // Not a kernel line.
            (format!("echo {}\n", fill(3000)), None),
        ];
        for (cfg, want) in table {
            match (patch(&cfg, &args), want) {
                (Ok(_), None) => {}
                (Err(e), Some((line, length))) => {
                    assert_eq!((e.line, e.length, e.limit), (line, length, 2047));
                    assert!(e.to_string().contains("COMMAND_LINE_SIZE"), "{e}");
                }
                (got, want) => panic!("{cfg:.40}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn lists_entries_and_references() {
        let cfg = "menuentry 'Install' --class os {\n linux /vmlinuz a b\n}\nsource $prefix/x86_64-efi/grub.cfg\nconfigfile \"/boot/grub/x.cfg\"\n";
        let k = kernel_lines(cfg);
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].title.as_deref(), Some("Install"));
        assert_eq!(k[0].kernel, "/vmlinuz");
        assert_eq!(k[0].args, "a b");
        assert_eq!(
            references(cfg),
            vec!["$prefix/x86_64-efi/grub.cfg", "/boot/grub/x.cfg"]
        );
    }
}

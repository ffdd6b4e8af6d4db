//! isolinux/syslinux config patcher: pure text → text. Appends to APPEND lines of LABELs whose
//! kernel is a Linux kernel (LINUX keyword, or KERNEL with no module extension): not `.c32`
//! COM32 modules, not LOCALBOOT, not memdisk, not boot sectors. Keywords in any case. A Linux
//! label with no APPEND gets one after its kernel line carrying the global APPEND plus the
//! arguments (a label's APPEND replaces the global one in syslinux). Idempotent like
//! [`super::grub`].

use super::cmdline::{self, LineTooLong, Loader};
use super::grub::{insert_args, split_eol, words};

/// A Linux kernel label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLabel {
    pub label: String,
    pub kernel: String,
    pub args: String,
}

/// Extensions syslinux treats as non-Linux images (syslinux wiki, "KERNEL").
const NON_LINUX_EXT: &[&str] = &["c32", "com", "cbt", "0", "bin", "bs", "bss", "img"];

fn is_linux_kernel(keyword: &str, file: &str) -> bool {
    let base = file.rsplit('/').next().unwrap_or(file).to_ascii_lowercase();
    // memdisk loads disk images; memtest86+ is a bzImage but not Linux.
    if base == "memdisk" || base.starts_with("memtest") {
        return false;
    }
    if keyword == "linux" {
        return true;
    }
    match base.rsplit_once('.') {
        Some((_, ext)) => !NON_LINUX_EXT.contains(&ext),
        None => true,
    }
}

#[derive(Default)]
struct Label {
    name: String,
    kernel: Option<(usize, String, bool)>, // line index, file, linux?
    append: Option<usize>,
}

struct Parsed<'a> {
    lines: Vec<&'a str>,
    global_append: Option<String>,
    labels: Vec<Label>,
}

fn keyword(body: &str) -> (String, Vec<(usize, &str)>) {
    let w = words(body);
    let k = w
        .first()
        .map(|(_, s)| s.to_ascii_lowercase())
        .unwrap_or_default();
    (k, w)
}

fn parse(text: &str) -> Parsed<'_> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut labels: Vec<Label> = Vec::new();
    let mut global_append = None;
    let mut in_text = false;
    for (i, line) in lines.iter().enumerate() {
        let (body, _) = split_eol(line);
        let (k, w) = keyword(body);
        if in_text {
            if k == "endtext" {
                in_text = false;
            }
            continue;
        }
        let rest = || {
            w.get(1)
                .map(|(o, _)| body[*o..].trim().to_string())
                .unwrap_or_default()
        };
        match k.as_str() {
            "text" => in_text = true,
            "label" => labels.push(Label {
                name: rest(),
                ..Label::default()
            }),
            "kernel" | "linux" | "localboot" | "com32" | "boot" | "bss" | "pxe" | "fdimage"
            | "comboot" | "config" => {
                if let Some(l) = labels.last_mut() {
                    let file = w.get(1).map(|(_, s)| s.to_string()).unwrap_or_default();
                    let linux = matches!(k.as_str(), "kernel" | "linux")
                        && !file.is_empty()
                        && is_linux_kernel(&k, &file);
                    l.kernel = Some((i, file, linux));
                }
            }
            "append" => match labels.last_mut() {
                Some(l) => l.append = Some(i),
                None => global_append = Some(rest()),
            },
            _ => {}
        }
    }
    Parsed {
        lines,
        global_append,
        labels,
    }
}

/// Every Linux kernel label, with the arguments it boots with.
pub fn kernel_labels(text: &str) -> Vec<KernelLabel> {
    let p = parse(text);
    p.labels
        .iter()
        .filter_map(|l| {
            let (_, kernel, linux) = l.kernel.as_ref()?;
            if !linux {
                return None;
            }
            let args = match l.append {
                Some(i) => {
                    let (body, _) = split_eol(p.lines[i]);
                    let w = words(body);
                    w.get(1)
                        .map(|(o, _)| body[*o..].trim().to_string())
                        .unwrap_or_default()
                }
                None => p.global_append.clone().unwrap_or_default(),
            };
            let args = if args == "-" { String::new() } else { args };
            Some(KernelLabel {
                label: l.name.clone(),
                kernel: kernel.clone(),
                args,
            })
        })
        .collect()
}

/// Patches a config: the new text (None when unchanged) and the number of Linux labels;
/// refuses a label whose whole kernel command line would be too long.
pub fn patch(text: &str, args: &[String]) -> Result<(Option<String>, usize), LineTooLong> {
    let rendered = args.join(" ");
    let p = parse(text);
    let mut replace: Vec<Option<String>> = vec![None; p.lines.len()];
    let mut insert_after: Vec<Option<String>> = vec![None; p.lines.len()];
    let mut kernels = 0;
    for l in &p.labels {
        let Some((ki, kernel, true)) = &l.kernel else {
            continue;
        };
        // The APPEND line as edited, measured from its first argument.
        let measure = |line_no: usize, line: &str| {
            let w = words(line);
            let args = w.get(1).map(|(o, _)| &line[*o..]).unwrap_or("");
            cmdline::check(Loader::Syslinux, line_no + 1, kernel, args)
        };
        kernels += 1;
        match l.append {
            Some(ai) => {
                let (body, eol) = split_eol(p.lines[ai]);
                let w = words(body);
                let new = if w.len() == 2 && w[1].1 == "-" {
                    Some(format!("{}{}", &body[..w[1].0], rendered))
                } else if w.len() == 1 {
                    Some(format!("{} {}", body.trim_end(), rendered))
                } else {
                    insert_args(body, 1, &rendered)
                };
                if let Some(n) = new {
                    measure(ai, &n)?;
                    replace[ai] = Some(format!("{n}{eol}"));
                }
            }
            None => {
                let (body, eol) = split_eol(p.lines[*ki]);
                let indent = &body[..body.len() - body.trim_start().len()];
                let upper = body
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_uppercase());
                let kw = if upper { "APPEND" } else { "append" };
                let global = p
                    .global_append
                    .as_deref()
                    .filter(|g| *g != "-" && !g.is_empty());
                let line = match global {
                    Some(g) => format!("{indent}{kw} {g} {rendered}"),
                    None => format!("{indent}{kw} {rendered}"),
                };
                measure(*ki, &line)?;
                let eol = if eol.is_empty() { "\n" } else { eol };
                let lead = if p.lines[*ki].ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                insert_after[*ki] = Some(format!("{lead}{line}{eol}"));
            }
        }
    }
    if replace.iter().all(Option::is_none) && insert_after.iter().all(Option::is_none) {
        return Ok((None, kernels));
    }
    let mut out = String::with_capacity(text.len() + 512);
    for (i, line) in p.lines.iter().enumerate() {
        out.push_str(replace[i].as_deref().unwrap_or(line));
        if let Some(ins) = &insert_after[i] {
            out.push_str(ins);
        }
    }
    Ok((Some(out), kernels))
}

/// Files a config pulls in (INCLUDE, MENU INCLUDE, CONFIG), as written.
pub fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let (k, w) = keyword(line);
        match k.as_str() {
            "include" | "config" if w.len() >= 2 => out.push(w[1].1.to_string()),
            "menu" if w.len() >= 3 && w[1].1.eq_ignore_ascii_case("include") => {
                out.push(w[2].1.to_string())
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, want: &str) {
        let args = vec!["m=1".to_string(), "console=ttyS0".to_string()];
        let (got, _) = patch(input, &args).unwrap();
        assert_eq!(got.as_deref().unwrap_or(input), want, "input: {input:?}");
        assert_eq!(
            patch(want, &args).unwrap().0,
            None,
            "second pass on {want:?}"
        );
    }

    #[test]
    fn refuses_whole_lines_over_the_limit() {
        let args = vec!["m=1".to_string()];
        // BOOT_IMAGE=/k + " " + existing + " m=1": 13 + 1 + n + 4 bytes.
        let fill = |n: usize| "x".repeat(n);
        let at_limit = 2047 - 13 - 1 - 4;
        // (config, Some((line, length)) when refused)
        let table: Vec<(String, Option<(usize, usize)>)> = vec![
            (
                format!("label a\n kernel /k\n append {}\n", fill(at_limit)),
                None,
            ),
            (
                format!("label a\n kernel /k\n append {}\n", fill(at_limit + 1)),
                Some((3, 2048)),
            ),
            // No APPEND of its own: the global one is copied in after the kernel line.
            (
                format!("append {}\nlabel a\n linux /k\n", fill(at_limit + 10)),
                Some((3, 2057)),
            ),
            // A non-Linux label is not measured.
            (
                format!("label c\n kernel x.c32\n append {}\n", fill(4000)),
                None,
            ),
        ];
        for (cfg, want) in table {
            match (patch(&cfg, &args), want) {
                (Ok(_), None) => {}
                (Err(e), Some((line, length))) => {
                    assert_eq!((e.line, e.length, e.limit), (line, length, 2047));
                    assert!(e.to_string().contains("syslinux"), "{e}");
                }
                (got, want) => panic!("{cfg:.40}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn patches_linux_labels_only() {
        let table: &[(&str, &str)] = &[
            (
                "label install\n  kernel /install.amd/vmlinuz\n  append vga=788 initrd=/i.gz --- quiet\n",
                "label install\n  kernel /install.amd/vmlinuz\n  append vga=788 initrd=/i.gz m=1 console=ttyS0 --- quiet\n",
            ),
            (
                "LABEL lts\nMENU LABEL Linux lts\nKERNEL /boot/vmlinuz-lts\nINITRD /boot/initramfs-lts\nAPPEND modules=loop,squashfs quiet\n",
                "LABEL lts\nMENU LABEL Linux lts\nKERNEL /boot/vmlinuz-lts\nINITRD /boot/initramfs-lts\nAPPEND modules=loop,squashfs quiet m=1 console=ttyS0\n",
            ),
            (
                "label hd\n  localboot 0x80\n  append -\nlabel menu\n  kernel vesamenu.c32\n  append x.cfg\nlabel c\n  com32 chain.c32\n  append hd0\n",
                "label hd\n  localboot 0x80\n  append -\nlabel menu\n  kernel vesamenu.c32\n  append x.cfg\nlabel c\n  com32 chain.c32\n  append hd0\n",
            ),
            (
                "append root=live\nlabel a\n  linux /vmlinuz\nlabel b\n  KERNEL /k\n  APPEND -\n",
                "append root=live\nlabel a\n  linux /vmlinuz\n  append root=live m=1 console=ttyS0\nlabel b\n  KERNEL /k\n  APPEND m=1 console=ttyS0\n",
            ),
            (
                "label x\n  kernel /k\n  text help\n  append not this\n  endtext\n  append a\n",
                "label x\n  kernel /k\n  text help\n  append not this\n  endtext\n  append a m=1 console=ttyS0\n",
            ),
            ("label m\n kernel memdisk\n append iso\n", "label m\n kernel memdisk\n append iso\n"),
        ];
        for (input, want) in table {
            check(input, want);
        }
    }

    #[test]
    fn lists_labels_and_includes() {
        let cfg = "include menu.cfg\nMENU INCLUDE stdmenu.cfg\nlabel a\n linux /k\n append q\nlabel b\n kernel x.c32\n";
        let k = kernel_labels(cfg);
        assert_eq!(
            k,
            vec![KernelLabel {
                label: "a".into(),
                kernel: "/k".into(),
                args: "q".into()
            }]
        );
        assert_eq!(references(cfg), vec!["menu.cfg", "stdmenu.cfg"]);
    }
}

//! Boot menus that start an installer unattended: pure text → text, applied by the remaster
//! next to the kernel args. GRUB: the install entry (the first top-level `menuentry` whose
//! title says "install", else the first with a kernel) becomes `set default`, and `set
//! timeout` becomes short. syslinux: every `TIMEOUT` becomes short (its unit is 1/10 s and 0
//! waits forever), and a menu config without one gets one; the menu's own default stays,
//! which on every installer we know is an install entry.

use super::grub::{kernel_lines, split_eol, words};

/// GRUB's index of the entry to boot, counting top-level `menuentry` and `submenu` lines.
fn install_entry(text: &str) -> Option<usize> {
    let mut depth: i32 = 0;
    let mut index = 0usize;
    let mut entries: Vec<(usize, String, String)> = Vec::new(); // index, title, body
    let mut current: Option<(usize, String, String)> = None;
    for line in text.lines() {
        let first = words(line).first().map(|(_, w)| *w).unwrap_or("");
        if depth == 0 && matches!(first, "menuentry" | "submenu") {
            if first == "menuentry" {
                current = Some((index, line.to_string(), String::new()));
            }
            index += 1;
        } else if let Some(c) = current.as_mut() {
            c.2.push_str(line);
            c.2.push('\n');
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth <= 0 {
            depth = 0;
            if let Some(c) = current.take() {
                entries.push(c);
            }
        }
    }
    let booting: Vec<&(usize, String, String)> = entries
        .iter()
        .filter(|(_, _, body)| !kernel_lines(body).is_empty())
        .collect();
    booting
        .iter()
        .find(|(_, title, _)| title.to_ascii_lowercase().contains("install"))
        .or_else(|| booting.first())
        .map(|(i, _, _)| *i)
}

/// `set NAME=…` at the start of a line (after indentation).
fn is_set(body: &str, name: &str) -> bool {
    let w = words(body);
    w.len() >= 2 && w[0].1 == "set" && w[1].1.split('=').next() == Some(name)
}

/// A GRUB config that boots its install entry after `timeout_s`; None when it has no kernel
/// entry (a stub that only sources another config) or is already so.
pub fn grub(text: &str, timeout_s: u32) -> Option<String> {
    let index = install_entry(text)?;
    let default = format!("set default=\"{index}\"");
    let timeout = format!("set timeout={timeout_s}");
    let (mut saw_default, mut saw_timeout) = (false, false);
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, eol) = split_eol(line);
        let indent = &body[..body.len() - body.trim_start().len()];
        if is_set(body, "default") {
            saw_default = true;
            out.push_str(&format!("{indent}{default}{eol}"));
        } else if is_set(body, "timeout") {
            saw_timeout = true;
            out.push_str(&format!("{indent}{timeout}{eol}"));
        } else if is_set(body, "timeout_style") {
            out.push_str(&format!("{indent}set timeout_style=menu{eol}"));
        } else {
            out.push_str(line);
        }
    }
    let mut head = String::new();
    if !saw_default {
        head.push_str(&default);
        head.push('\n');
    }
    if !saw_timeout {
        head.push_str(&timeout);
        head.push('\n');
    }
    let out = head + &out;
    (out != text).then_some(out)
}

/// A syslinux config whose menu times out after `timeout_s` (at least 1 s); None when
/// unchanged.
pub fn syslinux(text: &str, timeout_s: u32) -> Option<String> {
    let tenths = timeout_s.max(1) * 10;
    let keyword = |body: &str| {
        words(body)
            .first()
            .map(|(_, w)| w.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let mut saw_timeout = false;
    let mut has_menu = false;
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let (body, eol) = split_eol(line);
        match keyword(body).as_str() {
            "timeout" => {
                saw_timeout = true;
                let indent = &body[..body.len() - body.trim_start().len()];
                let kw = words(body)[0].1;
                out.push_str(&format!("{indent}{kw} {tenths}{eol}"));
                continue;
            }
            "default" | "ui" => has_menu = true,
            _ => {}
        }
        out.push_str(line);
    }
    if !saw_timeout && has_menu {
        out = format!("timeout {tenths}\n{out}");
    }
    (out != text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_picks_the_install_entry_and_shortens_the_timeout() {
        // Fedora's: default 1 is "Test this media & install"; the plain install is 0.
        let fedora = "set default=\"1\"\nfunction load_video {\n  insmod all_video\n}\nset timeout=60\nmenuentry 'Install Fedora 39' --class fedora {\n\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=F quiet\n}\nmenuentry 'Test this media & install Fedora 39' {\n\tlinuxefi /images/pxeboot/vmlinuz rd.live.check\n}\nsubmenu 'Troubleshooting -->' {\n}\n";
        let out = grub(fedora, 3).unwrap();
        assert!(out.starts_with("set default=\"0\"\n"), "{out}");
        assert!(
            out.contains("\nset timeout=3\n") && !out.contains("timeout=60"),
            "{out}"
        );
        // Debian's: no default, no timeout (waits forever); "Graphical install" first.
        let debian = "if loadfont $prefix/font.pf2 ; then\n  set gfxmode=800x600\nfi\nsubmenu 'x' {\n  menuentry 'y' {\n    linux /a\n  }\n}\nmenuentry --hotkey=i 'Install' {\n    linux    /install.amd/vmlinuz vga=788 --- quiet\n}\n";
        let out = grub(debian, 2).unwrap();
        assert!(
            out.starts_with("set default=\"1\"\nset timeout=2\n"),
            "{out}"
        );
        // A stub that only sources another config is left alone.
        assert_eq!(
            grub(
                "search --file --set=root /.disk/id\nsource $prefix/grub.cfg\n",
                2
            ),
            None
        );
        // Idempotent.
        let again = grub(&grub(fedora, 3).unwrap(), 3);
        assert_eq!(again, None);
    }

    #[test]
    fn grub_falls_back_to_the_first_kernel_entry() {
        let text = "menuentry 'Memtest' {\n  chainloader /memtest\n}\nmenuentry 'Live' {\n  linux /vmlinuz\n}\n";
        assert!(grub(text, 1).unwrap().starts_with("set default=\"1\"\n"));
    }

    #[test]
    fn syslinux_timeouts() {
        let debian = "path\ninclude menu.cfg\ndefault vesamenu.c32\nprompt 0\ntimeout 0\n";
        assert_eq!(
            syslinux(debian, 2).unwrap(),
            "path\ninclude menu.cfg\ndefault vesamenu.c32\nprompt 0\ntimeout 20\n"
        );
        let no_timeout = "UI menu.c32\nLABEL install\n  KERNEL /boot/vmlinuz\n";
        assert!(syslinux(no_timeout, 1)
            .unwrap()
            .starts_with("timeout 10\nUI menu.c32"));
        // A file of labels only (included by the menu) is left alone.
        assert_eq!(syslinux("label install\n kernel /vmlinuz\n", 1), None);
        assert_eq!(syslinux("TIMEOUT 30\n", 3), None);
    }
}

//! Pure renderers of per-MAC boot configs and their file names.

use deploy_drivers::BootMode;

use super::NetbootError;

/// A MAC address, normalised to lowercase bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (any case).
    pub fn parse(s: &str) -> Result<Mac, NetbootError> {
        let bad = || NetbootError::BadMac(s.to_string());
        let parts: Vec<&str> = s.trim().split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(bad());
            }
            b[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Mac(b))
    }

    pub fn from_bytes(b: [u8; 6]) -> Mac {
        Mac(b)
    }

    /// `aa-bb-cc-dd-ee-ff`.
    pub fn hyphenated(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// pxelinux's per-MAC name: `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff` (01 = Ethernet ARP type).
    pub fn pxelinux_path(&self) -> String {
        format!("pxelinux.cfg/01-{}", self.hyphenated())
    }

    /// GRUB's per-MAC name (grub-mknetdir / net_bootp's `grub.cfg-01-…` lookup).
    pub fn grub_path(&self) -> String {
        format!("grub.cfg-01-{}", self.hyphenated())
    }

    /// Where the iPXE script lives, in the TFTP root and under the HTTP router.
    pub fn ipxe_path(&self) -> String {
        format!("ipxe/{}.ipxe", self.hyphenated())
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hyphenated().replace('-', ":"))
    }
}

/// A kernel + initrd boot (the deploy ramdisk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployBoot {
    pub kernel: String,
    pub initrd: String,
    pub args: String,
}

fn check(what: &'static str, s: &str) -> Result<(), NetbootError> {
    if s.chars().any(char::is_control) {
        Err(NetbootError::BadText { what })
    } else {
        Ok(())
    }
}

/// pxelinux: boot the first local disk.
pub fn pxelinux_local() -> String {
    "DEFAULT local\nPROMPT 0\nTIMEOUT 0\n\nLABEL local\n  LOCALBOOT 0\n".to_string()
}

/// GRUB: BIOS chainloads the first disk's MBR; UEFI exits to the firmware's next boot entry.
pub fn grub_local(mode: BootMode) -> String {
    let body = match mode {
        BootMode::Bios => {
            "  insmod part_msdos\n  insmod chain\n  set root=(hd0)\n  chainloader +1\n"
        }
        BootMode::Uefi => "  exit\n",
    };
    format!("set default=0\nset timeout=0\n\nmenuentry \"Boot from local disk\" {{\n{body}}}\n")
}

/// iPXE: `sanboot` the first BIOS disk, or `exit` so UEFI boots the next entry (the disk).
pub fn ipxe_local(mode: BootMode) -> String {
    match mode {
        BootMode::Bios => {
            "#!ipxe\n\necho Booting from local disk\nsanboot --no-describe --drive 0x80 || exit\n"
                .to_string()
        }
        BootMode::Uefi => "#!ipxe\n\necho Booting from local disk\nexit\n".to_string(),
    }
}

/// iPXE: boot a published ISO over HTTP (El Torito from a SAN drive) once, without
/// describing the drive to the OS.
pub fn ipxe_sanboot(url: &str) -> Result<String, NetbootError> {
    check("ISO URL", url)?;
    if url.contains(' ') {
        return Err(NetbootError::BadText { what: "ISO URL" });
    }
    Ok(format!(
        "#!ipxe\n\necho Booting the ISO\nsanboot --no-describe {url}\n"
    ))
}

/// The three deploy configs (pxelinux, GRUB, iPXE) for a kernel + initrd boot.
pub fn deploy(boot: &DeployBoot) -> Result<[String; 3], NetbootError> {
    check("kernel", &boot.kernel)?;
    check("initrd", &boot.initrd)?;
    check("kernel arguments", &boot.args)?;
    let DeployBoot {
        kernel,
        initrd,
        args,
    } = boot;
    let pxe = format!(
        "DEFAULT deploy\nPROMPT 0\nTIMEOUT 0\n\nLABEL deploy\n  KERNEL {kernel}\n  APPEND initrd={initrd} {args}\n"
    );
    let grub = format!(
        "set default=0\nset timeout=0\n\nmenuentry \"deploy\" {{\n  linux {kernel} {args}\n  initrd {initrd}\n}}\n"
    );
    let ipxe = format!(
        "#!ipxe\n\nkernel {kernel} initrd=initrd {args}\ninitrd --name initrd {initrd}\nboot\n"
    );
    Ok([pxe, grub, ipxe])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_table() {
        for (input, want) in [
            ("AA:bb:CC:dd:EE:ff", Some("aa-bb-cc-dd-ee-ff")),
            ("52-54-00-12-34-56", Some("52-54-00-12-34-56")),
            ("52:54:00:12:34", None),
            ("52:54:00:12:34:5g", None),
            ("525:4:00:12:34:56", None),
            ("", None),
        ] {
            assert_eq!(
                Mac::parse(input).ok().map(|m| m.hyphenated()),
                want.map(String::from),
                "{input}"
            );
        }
        let m = Mac::parse("52:54:00:12:34:56").unwrap();
        assert_eq!(m.pxelinux_path(), "pxelinux.cfg/01-52-54-00-12-34-56");
        assert_eq!(m.grub_path(), "grub.cfg-01-52-54-00-12-34-56");
        assert_eq!(m.ipxe_path(), "ipxe/52-54-00-12-34-56.ipxe");
    }

    #[test]
    fn sanboot_script() {
        let s = ipxe_sanboot("http://10.0.0.1:8081/tok/boot.iso").unwrap();
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains("sanboot --no-describe http://10.0.0.1:8081/tok/boot.iso\n"));
        assert!(ipxe_sanboot("http://h/x.iso\nshell").is_err());
        assert!(ipxe_sanboot("http://h/x.iso || shell").is_err());
    }

    #[test]
    fn local_boot_table() {
        assert!(ipxe_local(BootMode::Bios).contains("sanboot --no-describe --drive 0x80"));
        assert!(!ipxe_local(BootMode::Uefi).contains("sanboot"));
        assert!(ipxe_local(BootMode::Uefi).lines().any(|l| l == "exit"));
        assert!(ipxe_local(BootMode::Bios).starts_with("#!ipxe\n"));
        assert!(grub_local(BootMode::Bios).contains("chainloader +1"));
        assert!(grub_local(BootMode::Uefi).contains("  exit\n"));
        assert!(pxelinux_local().contains("LOCALBOOT 0"));
    }

    #[test]
    fn deploy_configs_carry_kernel_initrd_args() {
        let boot = DeployBoot {
            kernel: "http://h/k".into(),
            initrd: "http://h/i".into(),
            args: "console=ttyS0 ipa-api-url=http://h:6385".into(),
        };
        let [pxe, grub, ipxe] = deploy(&boot).unwrap();
        assert!(pxe.contains("KERNEL http://h/k\n  APPEND initrd=http://h/i console=ttyS0"));
        assert!(grub.contains(
            "linux http://h/k console=ttyS0 ipa-api-url=http://h:6385\n  initrd http://h/i"
        ));
        assert!(ipxe.contains("kernel http://h/k initrd=initrd console=ttyS0"));
        assert!(ipxe.contains("initrd --name initrd http://h/i\nboot"));
        let bad = DeployBoot {
            args: "a\nDEFAULT evil".into(),
            ..boot
        };
        assert!(matches!(
            deploy(&bad),
            Err(NetbootError::BadText {
                what: "kernel arguments"
            })
        ));
    }
}

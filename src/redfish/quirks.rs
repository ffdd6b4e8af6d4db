//! Vendor quirks, in ONE table: each entry says what the vendor's BMC does differently and why
//! we bend. Generic fallbacks (PATCH when InsertMedia is refused, a body without
//! Inserted/WriteProtected on 400) also run for unknown vendors; the table makes the known
//! vendors take the right path first and adds what no fallback can guess.

use std::time::Duration;

use super::address::VendorHint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Dell,
    Hpe,
    Lenovo,
    Supermicro,
    Other,
}

impl Vendor {
    /// From the service root's `Vendor`, else the system's `Manufacturer`, else the address
    /// scheme's hint.
    pub fn detect(
        root_vendor: Option<&str>,
        manufacturer: Option<&str>,
        hint: Option<VendorHint>,
    ) -> Vendor {
        for s in [root_vendor, manufacturer].into_iter().flatten() {
            let s = s.to_ascii_lowercase();
            if s.contains("dell") {
                return Vendor::Dell;
            }
            if s.contains("hpe") || s.contains("hewlett") {
                return Vendor::Hpe;
            }
            if s.contains("lenovo") {
                return Vendor::Lenovo;
            }
            if s.contains("supermicro") {
                return Vendor::Supermicro;
            }
        }
        match hint {
            Some(VendorHint::Dell) => Vendor::Dell,
            Some(VendorHint::Hpe) => Vendor::Hpe,
            None => Vendor::Other,
        }
    }
}

/// What a vendor needs done differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quirks {
    /// Insert by PATCHing the slot (Image, Inserted) instead of the InsertMedia action.
    pub insert_by_patch: bool,
    /// Leave `Inserted` and `WriteProtected` out of the InsertMedia body.
    pub insert_without_flags: bool,
    /// Retries of InsertMedia right after EjectMedia, and the pause between them.
    pub insert_retries_after_eject: Option<(u32, Duration)>,
    /// Set `Oem.Hpe.BootOnNextServerReset` on the slot after inserting.
    pub boot_on_next_server_reset: bool,
    /// Boot override target for virtual CD when the BMC lists it (instead of `Cd`).
    pub cd_boot_target: Option<&'static str>,
}

/// The table: vendor → quirks → reason.
pub const TABLE: &[(Vendor, Quirks, &str)] = &[
    (
        Vendor::Dell,
        Quirks {
            insert_by_patch: false,
            insert_without_flags: false,
            insert_retries_after_eject: Some((3, Duration::from_secs(3))),
            boot_on_next_server_reset: false,
            cd_boot_target: None,
        },
        "iDRAC answers InsertMedia issued right after EjectMedia with a 500 while the previous \
         media is still being released (sushy's idrac driver retries too)",
    ),
    (
        Vendor::Hpe,
        Quirks {
            insert_by_patch: false,
            insert_without_flags: false,
            insert_retries_after_eject: None,
            boot_on_next_server_reset: true,
            cd_boot_target: None,
        },
        "iLO only boots an inserted virtual medium if Oem.Hpe.BootOnNextServerReset is true \
         (sushy's ilo driver sets it)",
    ),
    (
        Vendor::Lenovo,
        Quirks {
            insert_by_patch: true,
            insert_without_flags: false,
            insert_retries_after_eject: None,
            boot_on_next_server_reset: false,
            cd_boot_target: None,
        },
        "Lenovo XCC has no InsertMedia action on some firmware; inserting is a PATCH of Image \
         and Inserted on the VirtualMedia resource",
    ),
    (
        Vendor::Supermicro,
        Quirks {
            insert_by_patch: false,
            insert_without_flags: true,
            insert_retries_after_eject: None,
            boot_on_next_server_reset: false,
            cd_boot_target: Some("UsbCd"),
        },
        "Supermicro rejects Inserted/WriteProtected in the InsertMedia body (400) and boots \
         virtual media through the UsbCd override target, not Cd",
    ),
];

/// The quirks of `vendor` (none for unknown vendors).
pub fn for_vendor(vendor: Vendor) -> Quirks {
    TABLE
        .iter()
        .find(|(v, _, _)| *v == vendor)
        .map(|(_, q, _)| *q)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_and_lookup() {
        assert_eq!(Vendor::detect(Some("Dell"), None, None), Vendor::Dell);
        assert_eq!(
            Vendor::detect(None, Some("Hewlett Packard Enterprise"), None),
            Vendor::Hpe
        );
        assert_eq!(Vendor::detect(Some("Lenovo"), None, None), Vendor::Lenovo);
        assert_eq!(
            Vendor::detect(None, Some("Supermicro"), None),
            Vendor::Supermicro
        );
        assert_eq!(
            Vendor::detect(None, None, Some(VendorHint::Hpe)),
            Vendor::Hpe
        );
        assert_eq!(Vendor::detect(Some("Acme"), None, None), Vendor::Other);
        assert!(for_vendor(Vendor::Lenovo).insert_by_patch);
        assert_eq!(for_vendor(Vendor::Other), Quirks::default());
        for (v, _, reason) in TABLE {
            assert!(reason.len() > 20, "{v:?} needs a reason");
        }
    }
}

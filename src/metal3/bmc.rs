//! BMC addresses as BMO reads them (`pkg/hardwareutils/bmc`): the scheme names the BMC type,
//! and the type picks the Ironic driver and boot interface. ironcast drives the Redfish family;
//! the address itself is parsed by `redfish::address`, which already knows these schemes.
//! Pure: no I/O.

use crate::redfish::address::parse_address;

/// Every BMC type BMO knows, so an unknown one gets BMO's message and a known one that
/// ironcast cannot drive gets a message saying so.
const BMO_TYPES: &[&str] = &[
    "ipmi",
    "libvirt",
    "idrac",
    "idrac-redfish",
    "idrac-virtualmedia",
    "irmc",
    "ilo4",
    "ilo4-virtualmedia",
    "ilo5",
    "ilo5-redfish",
    "ilo5-virtualmedia",
    "redfish",
    "redfish-virtualmedia",
    "redfish-uefihttp",
    "ibmc",
];

/// What registering a host with this BMC needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// BMO's name for the BMC type ("redfish-virtualmedia").
    pub bmc_type: String,
    /// The node's boot_interface: virtual media for the `*-virtualmedia` types, iPXE for the
    /// others, as BMO registers them.
    pub boot_interface: &'static str,
    /// BMO's driver name in its messages ("redfish", or "idrac" for the iDRAC types).
    pub driver: &'static str,
    /// BMO's NeedsMAC: virtual-media inspection needs the boot MAC up front.
    pub needs_mac: bool,
}

/// The BMC type of an address: its scheme without `+http(s)`, or "ipmi" without a scheme
/// (BMO's default).
pub fn bmc_type(address: &str) -> String {
    match address.split_once("://") {
        Some((scheme, _)) => scheme.split('+').next().unwrap_or("").to_ascii_lowercase(),
        // Go's url.Parse reads "type:host" as a scheme; "10.0.0.1:623" is no scheme.
        None => match address.split_once(':') {
            Some((t, _))
                if t.starts_with(|c: char| c.is_ascii_alphabetic())
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                t.to_ascii_lowercase()
            }
            _ => "ipmi".into(),
        },
    }
}

/// Checks an address as BMO's webhook does, with BMO's messages, then whether ironcast can
/// drive it.
pub fn access(address: &str) -> Result<Access, String> {
    let t = bmc_type(address);
    if !BMO_TYPES.contains(&t.as_str()) {
        return Err(format!("Unknown BMC type '{t}' for address {address}"));
    }
    let boot_interface = match t.as_str() {
        "redfish-virtualmedia" | "idrac-virtualmedia" | "ilo5-virtualmedia" => {
            "redfish-virtual-media"
        }
        "redfish" | "idrac-redfish" | "ilo5-redfish" => "ipxe",
        other => {
            return Err(format!(
                "BMC driver {other} is not supported by ironcast: use redfish://, redfish-virtualmedia://, idrac-virtualmedia:// or ilo5-virtualmedia:// (with +http or +https)"
            ))
        }
    };
    parse_address(address).map_err(|e| format!("failed to parse BMC address information: {e}"))?;
    let driver = if t.starts_with("idrac") {
        "idrac"
    } else {
        "redfish"
    };
    Ok(Access {
        needs_mac: boot_interface == "redfish-virtual-media",
        bmc_type: t,
        boot_interface,
        driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_interfaces() {
        let a = access("redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/1").unwrap();
        assert_eq!(a.boot_interface, "redfish-virtual-media");
        assert_eq!(a.bmc_type, "redfish-virtualmedia");
        assert_eq!((a.driver, a.needs_mac), ("redfish", true));
        let idrac = access("idrac-redfish://h/redfish/v1/Systems/1").unwrap();
        assert_eq!((idrac.driver, idrac.needs_mac), ("idrac", false));
        assert_eq!(
            access("redfish://h/redfish/v1/Systems/1")
                .unwrap()
                .boot_interface,
            "ipxe"
        );
        assert_eq!(
            access("idrac-virtualmedia://h/redfish/v1/Systems/System.Embedded.1")
                .unwrap()
                .boot_interface,
            "redfish-virtual-media"
        );
        assert_eq!(
            access("test:127.0.1.1").unwrap_err(),
            "Unknown BMC type 'test' for address test:127.0.1.1"
        );
        assert_eq!(
            access("ipm:host.example.com:6223").unwrap_err(),
            "Unknown BMC type 'ipm' for address ipm:host.example.com:6223"
        );
        assert!(access("ipmi://10.0.0.1")
            .unwrap_err()
            .contains("BMC driver ipmi is not supported"));
        assert!(access("10.0.0.1:623")
            .unwrap_err()
            .contains("BMC driver ipmi"));
        assert!(access("redfish://")
            .unwrap_err()
            .starts_with("failed to parse BMC address information"));
    }
}

//! `[netboot]` checked and turned into the running DHCP and TFTP servers. Every refusal names
//! the option to fix.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::dhcp::{self, Answerer, DhcpSettings, Mode, Range};
use super::tftp::{self, TftpSettings};
use crate::config::NetbootConfig;

/// The iPXE binary BIOS PXE clients chain-load.
pub const BIOS_BINARY: &str = "undionly.kpxe";
const UEFI_BINARIES: &[&str] = &["ipxe.efi", "snponly.efi"];

fn ipv4(option: &str, value: &str) -> Result<Ipv4Addr, String> {
    value.parse().map_err(|_| {
        format!("[netboot] {option} = {value:?} is not an IPv4 address, e.g. \"192.0.2.10\"")
    })
}

fn in_subnet(a: Ipv4Addr, b: Ipv4Addr, mask: Ipv4Addr) -> bool {
    u32::from(a) & u32::from(mask) == u32::from(b) & u32::from(mask)
}

/// The DHCP mode `[netboot] dhcp` names; `None` for "off".
fn mode(c: &NetbootConfig) -> Result<Option<Mode>, String> {
    match c.dhcp.as_str() {
        "off" => Ok(None),
        "proxy" => Ok(Some(Mode::Proxy)),
        "range" => Ok(Some(Mode::Range(range(c)?))),
        other => Err(format!(
            "[netboot] dhcp = {other:?} is not one of \"off\", \"proxy\", \"range\""
        )),
    }
}

fn range(c: &NetbootConfig) -> Result<Range, String> {
    let address = ipv4("address", &c.address)?;
    let start = ipv4("range_start", &c.range_start)?;
    let end = ipv4("range_end", &c.range_end)?;
    let netmask = ipv4("range_netmask", &c.range_netmask)?;
    if u32::from(start) > u32::from(end) {
        return Err(format!(
            "[netboot] range_start {start} is after range_end {end}"
        ));
    }
    for (name, ip) in [("range_start", start), ("range_end", end)] {
        if !in_subnet(ip, address, netmask) {
            return Err(format!(
                "[netboot] {name} {ip} is outside the subnet of [netboot] address {address}/{netmask}: clients could not reach this server"
            ));
        }
    }
    let router = match c.range_router.as_str() {
        "" => None,
        r => Some(ipv4("range_router", r)?),
    };
    let dns = c
        .range_dns
        .iter()
        .map(|d| ipv4("range_dns", d))
        .collect::<Result<_, _>>()?;
    if c.range_lease_s < 60 {
        return Err("[netboot] range_lease_s must be at least 60 seconds".into());
    }
    Ok(Range {
        start,
        end,
        netmask,
        router,
        dns,
        lease: Duration::from_secs(c.range_lease_s),
    })
}

/// Checks `[netboot]` as far as it can be without touching the machine (config load).
pub fn check(c: &NetbootConfig) -> Result<(), String> {
    if mode(c)?.is_none() {
        return Ok(());
    }
    if c.interface.is_empty() {
        return Err(format!(
            "[netboot] dhcp = {:?} needs [netboot] interface, the network interface to answer on",
            c.dhcp
        ));
    }
    if c.address.is_empty() {
        return Err(format!(
            "[netboot] dhcp = {:?} needs [netboot] address, this host's IPv4 address on {}",
            c.dhcp, c.interface
        ));
    }
    ipv4("address", &c.address)?;
    if !UEFI_BINARIES.contains(&c.uefi_binary.as_str()) {
        return Err(format!(
            "[netboot] uefi_binary = {:?} must be one of {UEFI_BINARIES:?}",
            c.uefi_binary
        ));
    }
    if c.tftp_max_transfers == 0 {
        return Err("[netboot] tftp_max_transfers must be at least 1".into());
    }
    if !(512..=tftp::MAX_BLKSIZE).contains(&c.tftp_max_blksize) {
        return Err(format!(
            "[netboot] tftp_max_blksize must be 512 to {}",
            tftp::MAX_BLKSIZE
        ));
    }
    Ok(())
}

/// The DHCP and TFTP servers `serve` runs; dropping it stops them.
pub struct Running {
    pub dhcp: dhcp::Dhcp,
    pub tftp: tftp::Tftp,
}

impl Running {
    pub fn render_prometheus(&self) -> String {
        self.tftp.metrics.render_prometheus() + &self.dhcp.metrics.render_prometheus()
    }
}

/// Why the network boot servers could not start (each names the option to fix).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Copies the iPXE binaries into the TFTP root (only when changed).
fn install_binaries(c: &NetbootConfig) -> Result<(), StartError> {
    std::fs::create_dir_all(&c.tftp_root).map_err(|source| StartError::Io {
        what: format!(
            "cannot create [netboot] tftp_root {}",
            c.tftp_root.display()
        ),
        source,
    })?;
    for name in [BIOS_BINARY, c.uefi_binary.as_str()] {
        let from = c.ipxe_dir.join(name);
        let bytes = std::fs::read(&from).map_err(|source| StartError::Io {
            what: format!(
                "cannot read {} ([netboot] ipxe_dir; install Debian's `ipxe` package)",
                from.display()
            ),
            source,
        })?;
        let to = c.tftp_root.join(name);
        if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
            crate::durable::write(&to, &bytes, crate::durable::Mode::Public).map_err(|e| {
                StartError::Config(format!(
                    "cannot write {} ([netboot] tftp_root): {e}",
                    to.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Starts TFTP and DHCP as `[netboot]` says; `None` when `dhcp = "off"`. `script_base` is the
/// HTTP base URL iPXE fetches `/ipxe/<mac>.ipxe` from; `lookup` says which MACs to answer.
pub async fn start(
    c: &NetbootConfig,
    script_base: &str,
    lookup: Arc<dyn dhcp::NeedsNetboot>,
) -> Result<Option<Running>, StartError> {
    check(c).map_err(StartError::Config)?;
    let Some(mode) = mode(c).map_err(StartError::Config)? else {
        return Ok(None);
    };
    if !Path::new("/sys/class/net").join(&c.interface).exists() {
        return Err(StartError::Config(format!(
            "[netboot] interface {:?} does not exist on this host (see `ip link`)",
            c.interface
        )));
    }
    let address = ipv4("address", &c.address).map_err(StartError::Config)?;
    install_binaries(c)?;
    let mut t = TftpSettings::new(&c.tftp_root);
    t.max_transfers = c.tftp_max_transfers;
    t.max_blksize = c.tftp_max_blksize;
    let tftp_addr = SocketAddr::from((address, c.tftp_port));
    let tftp = tftp::start(tftp_addr, t)
        .await
        .map_err(|source| StartError::Io {
            what: format!("cannot listen for TFTP on {tftp_addr} ([netboot] address, tftp_port)"),
            source,
        })?;
    let settings = DhcpSettings {
        mode,
        interface: c.interface.clone(),
        answerer: Answerer {
            server_ip: address,
            script_base: script_base.trim_end_matches('/').to_string(),
            bios_file: BIOS_BINARY.into(),
            uefi_file: c.uefi_binary.clone(),
        },
    };
    let dhcp = dhcp::start(settings, lookup)
        .await
        .map_err(|source| StartError::Io {
            what: format!(
                "cannot listen for DHCP on {} ([netboot] interface; ports 67 and 4011 need root or CAP_NET_BIND_SERVICE, and no other DHCP server on this host's port 67)",
                c.interface
            ),
            source,
        })?;
    tracing::info!(dhcp = %c.dhcp, interface = %c.interface, %tftp_addr, "network boot servers started");
    Ok(Some(Running { dhcp, tftp }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> NetbootConfig {
        let defaults: toml::Value = toml::from_str(crate::config::DEFAULTS).unwrap();
        defaults["netboot"].clone().try_into().unwrap()
    }

    #[test]
    fn refusals_name_the_option() {
        assert_eq!(check(&base()), Ok(()), "off by default");
        type Edit = Box<dyn Fn(&mut NetbootConfig)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|c| c.dhcp = "on".into()), "[netboot] dhcp"),
            (Box::new(|c| c.dhcp = "proxy".into()), "[netboot] interface"),
            (
                Box::new(|c| {
                    c.dhcp = "proxy".into();
                    c.interface = "br0".into();
                }),
                "[netboot] address",
            ),
            (
                Box::new(|c| {
                    c.dhcp = "proxy".into();
                    c.interface = "br0".into();
                    c.address = "10.0.0.300".into();
                }),
                "[netboot] address",
            ),
            (
                Box::new(|c| {
                    c.dhcp = "range".into();
                    c.interface = "br0".into();
                    c.address = "10.0.0.1".into();
                }),
                "[netboot] range_start",
            ),
            (
                Box::new(|c| {
                    c.dhcp = "range".into();
                    c.interface = "br0".into();
                    c.address = "10.0.0.1".into();
                    c.range_start = "10.0.1.10".into();
                    c.range_end = "10.0.1.20".into();
                }),
                "[netboot] range_start 10.0.1.10 is outside",
            ),
            (
                Box::new(|c| {
                    c.dhcp = "proxy".into();
                    c.interface = "br0".into();
                    c.address = "10.0.0.1".into();
                    c.uefi_binary = "grub.efi".into();
                }),
                "[netboot] uefi_binary",
            ),
        ];
        for (edit, want) in cases {
            let mut c = base();
            edit(&mut c);
            let err = check(&c).unwrap_err();
            assert!(err.contains(want), "{err} should name {want}");
        }
        let mut ok = base();
        ok.dhcp = "range".into();
        ok.interface = "br0".into();
        ok.address = "10.0.0.1".into();
        ok.range_start = "10.0.0.10".into();
        ok.range_end = "10.0.0.20".into();
        assert_eq!(check(&ok), Ok(()));
    }
}

//! Which DHCP requests get an answer, and the answer: pure, over `dhcproto` messages.
//!
//! A PXE ROM (option 60 `PXEClient…`) is chain-loaded into iPXE over TFTP: `undionly.kpxe`
//! for BIOS (architecture 0), the configured EFI binary for UEFI (7, 9). iPXE itself (user
//! class `iPXE`, or its option 175) is handed the HTTP URL of its per-MAC script. Only MACs
//! the lookup says need a network boot are answered; anything else is ignored.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};

use crate::netboot::render::Mac;

/// iPXE's encapsulated options (its build features); its presence means the client is iPXE.
const IPXE_ENCAP: u8 = 175;

/// What kind of network-boot client sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// iPXE (any firmware): wants its script.
    Ipxe,
    /// A firmware PXE ROM of this architecture (RFC 4578 option 93).
    Pxe(u16),
    /// Not booting from the network (an OS's DHCP client).
    Other,
}

/// What the responder knows to fill in an answer.
#[derive(Debug, Clone)]
pub struct Answerer {
    /// This host's address on the boot network: server id, next-server, TFTP.
    pub server_ip: Ipv4Addr,
    /// Base URL of the HTTP server serving `/ipxe/<mac>.ipxe` (no trailing slash).
    pub script_base: String,
    /// TFTP name of the BIOS iPXE binary.
    pub bios_file: String,
    /// TFTP name of the UEFI iPXE binary.
    pub uefi_file: String,
}

/// Why a request gets no answer (counted and logged at debug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    NotRequest,
    NotEthernet,
    UnknownMac(Mac),
    NotNetboot,
    Architecture(u16),
}

/// The request's client MAC, when it is an Ethernet BOOTREQUEST.
pub fn client_mac(msg: &Message) -> Result<Mac, Ignored> {
    if msg.opcode() != Opcode::BootRequest {
        return Err(Ignored::NotRequest);
    }
    let ch = msg.chaddr();
    if msg.hlen() != 6 || ch.len() < 6 {
        return Err(Ignored::NotEthernet);
    }
    Ok(Mac::from_bytes([ch[0], ch[1], ch[2], ch[3], ch[4], ch[5]]))
}

pub fn classify(msg: &Message) -> Client {
    let opts = msg.opts();
    let user_class_ipxe = match opts.get(OptionCode::UserClass) {
        Some(DhcpOption::UserClass(b)) => b.windows(4).any(|w| w == b"iPXE"),
        _ => false,
    };
    if user_class_ipxe || opts.get(OptionCode::from(IPXE_ENCAP)).is_some() {
        return Client::Ipxe;
    }
    match opts.get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(b)) if b.starts_with(b"PXEClient") => {
            let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
                Some(DhcpOption::ClientSystemArchitecture(a)) => u16::from(*a),
                _ => 0,
            };
            Client::Pxe(arch)
        }
        _ => Client::Other,
    }
}

impl Answerer {
    /// The boot file for `client`: a TFTP name, or the script's URL for iPXE.
    pub fn boot_file(&self, client: Client, mac: &Mac) -> Result<Option<String>, Ignored> {
        match client {
            Client::Ipxe => Ok(Some(format!("{}/{}", self.script_base, mac.ipxe_path()))),
            Client::Pxe(0) => Ok(Some(self.bios_file.clone())),
            Client::Pxe(7 | 9) => Ok(Some(self.uefi_file.clone())),
            Client::Pxe(a) => Err(Ignored::Architecture(a)),
            Client::Other => Ok(None),
        }
    }

    /// A reply of `kind` to `req` with the boot fields for `file` (none: address only).
    /// `yiaddr` is 0.0.0.0 for ProxyDHCP.
    pub fn reply(
        &self,
        req: &Message,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        file: Option<&str>,
    ) -> Message {
        let mut m = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            self.server_ip,
            req.giaddr(),
            req.chaddr(),
        );
        m.set_opcode(Opcode::BootReply);
        m.set_flags(req.flags());
        if !req.ciaddr().is_unspecified() {
            m.set_ciaddr(req.ciaddr());
        }
        let opts = m.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(self.server_ip));
        if let Some(file) = file {
            m.set_fname_str(file);
            let opts = m.opts_mut();
            opts.insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
            opts.insert(DhcpOption::BootfileName(file.as_bytes().to_vec()));
            opts.insert(DhcpOption::TFTPServerName(
                self.server_ip.to_string().into_bytes(),
            ));
            // PXE vendor option 6 (discovery control) = 8: boot the file in this answer, no
            // boot-server discovery.
            opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
            if let Some(uuid) = req.opts().get(OptionCode::ClientMachineIdentifier) {
                opts.insert(uuid.clone());
            }
        }
        m
    }
}

/// Where a reply goes (RFC 2131 §4.1): the relay, the client's address, or broadcast.
pub fn destination(req: &Message, from: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::SocketAddr;
    if !req.giaddr().is_unspecified() {
        return SocketAddr::new(req.giaddr().into(), 67);
    }
    if !req.ciaddr().is_unspecified() {
        return SocketAddr::new(req.ciaddr().into(), from.port());
    }
    SocketAddr::new(Ipv4Addr::BROADCAST.into(), 68)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::Architecture;

    fn request(opts: Vec<DhcpOption>) -> Message {
        let mut m = Message::new_with_id(
            7,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &[0x52, 0x54, 0, 0x12, 0x34, 0x56],
        );
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        for o in opts {
            m.opts_mut().insert(o);
        }
        m
    }

    fn answerer() -> Answerer {
        Answerer {
            server_ip: Ipv4Addr::new(10, 9, 0, 1),
            script_base: "http://10.9.0.1:8080".into(),
            bios_file: "undionly.kpxe".into(),
            uefi_file: "ipxe.efi".into(),
        }
    }

    #[test]
    fn classify_and_boot_file_table() {
        let a = answerer();
        let mac = Mac::parse("52:54:00:12:34:56").unwrap();
        let pxe = |arch: u16| {
            request(vec![
                DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
                DhcpOption::ClientSystemArchitecture(Architecture::from(arch)),
            ])
        };
        for (msg, want) in [
            (pxe(0), Ok(Some("undionly.kpxe".to_string()))),
            (pxe(7), Ok(Some("ipxe.efi".to_string()))),
            (pxe(9), Ok(Some("ipxe.efi".to_string()))),
            (pxe(11), Err(Ignored::Architecture(11))),
            (
                request(vec![DhcpOption::UserClass(b"\x04iPXE".to_vec())]),
                Ok(Some(
                    "http://10.9.0.1:8080/ipxe/52-54-00-12-34-56.ipxe".to_string(),
                )),
            ),
            (
                request(vec![DhcpOption::Unknown(dhcproto::v4::UnknownOption::new(
                    OptionCode::from(175),
                    vec![1, 1, 1],
                ))]),
                Ok(Some(
                    "http://10.9.0.1:8080/ipxe/52-54-00-12-34-56.ipxe".to_string(),
                )),
            ),
            (
                request(vec![DhcpOption::ClassIdentifier(b"udhcp 1.35".to_vec())]),
                Ok(None),
            ),
        ] {
            assert_eq!(a.boot_file(classify(&msg), &mac), want, "{:?}", msg.opts());
        }
        assert_eq!(client_mac(&pxe(0)), Ok(mac));
    }

    #[test]
    fn proxy_offer_fields() {
        let a = answerer();
        let req = request(vec![
            DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000".to_vec()),
            DhcpOption::ClientMachineIdentifier(vec![0; 17]),
        ]);
        let m = a.reply(
            &req,
            MessageType::Offer,
            Ipv4Addr::UNSPECIFIED,
            Some("undionly.kpxe"),
        );
        assert_eq!(m.opcode(), Opcode::BootReply);
        assert_eq!(m.xid(), 7);
        assert_eq!(
            m.yiaddr(),
            Ipv4Addr::UNSPECIFIED,
            "ProxyDHCP assigns no address"
        );
        assert_eq!(m.siaddr(), a.server_ip, "next-server is always filled");
        assert_eq!(m.fname_str().unwrap().unwrap(), "undionly.kpxe");
        assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(
            m.opts().get(OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
        );
        assert!(m.opts().get(OptionCode::ClientMachineIdentifier).is_some());
        let from: std::net::SocketAddr = "0.0.0.0:68".parse().unwrap();
        assert_eq!(
            destination(&req, from),
            "255.255.255.255:68".parse().unwrap()
        );
        let mut unicast = req.clone();
        unicast.set_ciaddr(Ipv4Addr::new(10, 9, 0, 50));
        assert_eq!(
            destination(&unicast, "10.9.0.50:68".parse().unwrap()),
            "10.9.0.50:68".parse().unwrap()
        );
    }

    #[test]
    fn replies_round_trip_through_the_codec() {
        use dhcproto::{Decodable, Decoder, Encodable, Encoder};
        let a = answerer();
        let req = request(vec![DhcpOption::UserClass(b"iPXE".to_vec())]);
        let m = a.reply(
            &req,
            MessageType::Ack,
            Ipv4Addr::new(10, 9, 0, 60),
            Some("x"),
        );
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        let back = Message::decode(&mut Decoder::new(&buf)).unwrap();
        assert_eq!(back.yiaddr(), Ipv4Addr::new(10, 9, 0, 60));
        assert_eq!(back.opts().msg_type(), Some(MessageType::Ack));
    }
}

//! The built-in DHCP responder of `[netboot] dhcp`: ProxyDHCP (`proxy`, the site's DHCP server
//! assigns addresses, this one only tells PXE/iPXE clients what to boot) or a full DHCP server
//! over a range (`range`, labs with no DHCP server).
//!
//! Sockets are bound to `[netboot] interface` (port 67, and 4011 where PXE clients ask a
//! ProxyDHCP server for the boot file). Only MACs that need a network boot (a per-MAC config
//! exists, see [`NeedsNetboot`]) are answered; others are ignored and logged at debug. A
//! datagram that is not a DHCP message is dropped and counted. [`decide`] is the pure part.

pub mod decide;
mod pool;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use tokio::net::UdpSocket;

pub use decide::{Answerer, Client, Ignored};
use pool::Pool;

use super::render::Mac;

/// PXE clients send their ProxyDHCP request here (PXE spec 2.1).
pub const PXE_PORT: u16 = 4011;

/// Tells whether a MAC belongs to a node that needs to boot from the network now.
pub trait NeedsNetboot: Send + Sync {
    fn needs_netboot(&self, mac: &Mac) -> bool;
}

/// The address range of `dhcp = "range"`.
#[derive(Debug, Clone)]
pub struct Range {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Proxy,
    Range(Range),
}

#[derive(Debug, Clone)]
pub struct DhcpSettings {
    pub mode: Mode,
    /// The network interface to answer on.
    pub interface: String,
    pub answerer: Answerer,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DhcpMetrics {
    pub received: AtomicU64,
    pub answered: AtomicU64,
    pub ignored: AtomicU64,
    pub malformed: AtomicU64,
}

impl DhcpMetrics {
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, v) in [
            ("received_total", &self.received),
            ("answered_total", &self.answered),
            ("ignored_total", &self.ignored),
            ("malformed_packets_total", &self.malformed),
        ] {
            out += &format!(
                "# TYPE ironcast_dhcp_{name} counter\nironcast_dhcp_{name} {}\n",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// A running responder; dropping it stops it.
pub struct Dhcp {
    pub metrics: Arc<DhcpMetrics>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Dhcp {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn socket(interface: &str, port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(interface.as_bytes()))?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(s.into())
}

/// Starts answering on `settings.interface`.
pub async fn start(settings: DhcpSettings, lookup: Arc<dyn NeedsNetboot>) -> std::io::Result<Dhcp> {
    let metrics = Arc::new(DhcpMetrics::default());
    let pool = match &settings.mode {
        Mode::Range(r) => Some(Mutex::new(Pool::new(r.start, r.end, r.lease))),
        Mode::Proxy => None,
    };
    let responder = Arc::new(Responder {
        settings,
        lookup,
        metrics: metrics.clone(),
        pool,
    });
    let mut ports = vec![67];
    if matches!(responder.settings.mode, Mode::Proxy) {
        ports.push(PXE_PORT);
    }
    let mut tasks = Vec::new();
    for port in ports {
        let sock = socket(&responder.settings.interface, port)?;
        tasks.push(tokio::spawn(responder.clone().run(sock, port)));
    }
    Ok(Dhcp { metrics, tasks })
}

struct Responder {
    settings: DhcpSettings,
    lookup: Arc<dyn NeedsNetboot>,
    metrics: Arc<DhcpMetrics>,
    pool: Option<Mutex<Pool>>,
}

impl Responder {
    async fn run(self: Arc<Self>, sock: UdpSocket, port: u16) {
        let mut buf = vec![0u8; 1500];
        loop {
            let (n, from) = match sock.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, port, "dhcp: receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            self.metrics.received.fetch_add(1, Ordering::Relaxed);
            let Ok(req) = Message::decode(&mut Decoder::new(&buf[..n])) else {
                self.metrics.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, bytes = n, "dhcp: malformed packet dropped");
                continue;
            };
            let Some((reply, to)) = self.answer(&req, from, port) else {
                continue;
            };
            let mut out = Vec::with_capacity(400);
            if reply.encode(&mut Encoder::new(&mut out)).is_err() {
                continue;
            }
            match sock.send_to(&out, to).await {
                Ok(_) => {
                    self.metrics.answered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(%to, error = %e, "dhcp: send failed"),
            }
        }
    }

    fn ignore(&self, why: Ignored, from: SocketAddr) -> Option<(Message, SocketAddr)> {
        self.metrics.ignored.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%from, ?why, "dhcp: request ignored");
        None
    }

    /// The reply to one request and where it goes, or `None`.
    fn answer(&self, req: &Message, from: SocketAddr, port: u16) -> Option<(Message, SocketAddr)> {
        let mac = match decide::client_mac(req) {
            Ok(m) => m,
            Err(why) => return self.ignore(why, from),
        };
        if !self.lookup.needs_netboot(&mac) {
            return self.ignore(Ignored::UnknownMac(mac), from);
        }
        let a = &self.settings.answerer;
        let client = decide::classify(req);
        let file = match a.boot_file(client, &mac) {
            Ok(f) => f,
            Err(why) => return self.ignore(why, from),
        };
        let kind = req.opts().msg_type();
        let reply = match (&self.settings.mode, port, kind) {
            (Mode::Proxy, _, _) if file.is_none() => return self.ignore(Ignored::NotNetboot, from),
            (Mode::Proxy, 67, Some(MessageType::Discover)) => a.reply(
                req,
                MessageType::Offer,
                Ipv4Addr::UNSPECIFIED,
                file.as_deref(),
            ),
            (Mode::Proxy, PXE_PORT, Some(MessageType::Request | MessageType::Inform)) => {
                let ack = a.reply(
                    req,
                    MessageType::Ack,
                    Ipv4Addr::UNSPECIFIED,
                    file.as_deref(),
                );
                return Some((ack, from));
            }
            (Mode::Range(r), _, Some(MessageType::Discover)) => {
                let pool = self
                    .pool
                    .as_ref()?
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let Some(ip) = pool.offer(&mac, requested_ip(req), Instant::now()) else {
                    tracing::warn!(%mac, "dhcp: the range is full");
                    return None;
                };
                with_range(
                    a.reply(req, MessageType::Offer, ip, file.as_deref()),
                    r,
                    pool.lease(),
                )
            }
            (Mode::Range(r), _, Some(MessageType::Request)) => {
                let mut pool = self
                    .pool
                    .as_ref()?
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let ip = requested_ip(req).unwrap_or(req.ciaddr());
                if pool.bind(&mac, ip, Instant::now()) {
                    with_range(
                        a.reply(req, MessageType::Ack, ip, file.as_deref()),
                        r,
                        pool.lease(),
                    )
                } else {
                    a.reply(req, MessageType::Nak, Ipv4Addr::UNSPECIFIED, None)
                }
            }
            _ => return None,
        };
        Some((reply, decide::destination(req, from)))
    }
}

fn requested_ip(req: &Message) -> Option<Ipv4Addr> {
    match req.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    }
}

fn with_range(mut m: Message, r: &Range, lease: Duration) -> Message {
    let opts = m.opts_mut();
    opts.insert(DhcpOption::SubnetMask(r.netmask));
    opts.insert(DhcpOption::AddressLeaseTime(
        lease.as_secs().min(u32::MAX as u64) as u32,
    ));
    if let Some(router) = r.router {
        opts.insert(DhcpOption::Router(vec![router]));
    }
    if !r.dns.is_empty() {
        opts.insert(DhcpOption::DomainNameServer(r.dns.clone()));
    }
    m
}

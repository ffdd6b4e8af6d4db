//! A read-only TFTP server (RFC 1350, options per RFC 2347/2348/2349) for the iPXE binaries and
//! the per-MAC pxelinux/GRUB files under `[netboot] tftp_root`.
//!
//! One socket takes requests; each read gets its own socket (its transfer ID) and task, at most
//! `max_transfers` at once (the excess is told to retry). Writes are refused with an access
//! violation, names leaving the root with one too; malformed datagrams are dropped and
//! counted. `netascii` reads are served byte for byte (the files here are binaries and plain
//! text with `\n`).

mod packet;
mod path;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

pub use packet::MAX_BLKSIZE;
use packet::{ErrorCode, Packet};
pub use path::{resolve, PathError};

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct TftpSettings {
    pub root: PathBuf,
    /// Transfers running at once; a read beyond it gets "busy, retry".
    pub max_transfers: usize,
    /// Largest block size granted (clients ask for up to 65464; 1468 fits a 1500-byte MTU).
    pub max_blksize: u16,
    /// Wait for an ACK before sending a block again, unless the client set `timeout`.
    pub timeout: Duration,
    /// Sends of one block before the transfer is abandoned.
    pub retries: u32,
}

impl TftpSettings {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            max_transfers: 256,
            max_blksize: 1468,
            timeout: Duration::from_secs(1),
            retries: 5,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct TftpMetrics {
    pub transfers: AtomicU64,
    pub completed: AtomicU64,
    pub refused: AtomicU64,
    pub busy: AtomicU64,
    pub malformed: AtomicU64,
    pub bytes: AtomicU64,
}

impl TftpMetrics {
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, kind, v) in [
            ("transfers_total", "counter", &self.transfers),
            ("transfers_completed_total", "counter", &self.completed),
            ("requests_refused_total", "counter", &self.refused),
            ("requests_busy_total", "counter", &self.busy),
            ("malformed_packets_total", "counter", &self.malformed),
            ("sent_bytes_total", "counter", &self.bytes),
        ] {
            out += &format!(
                "# TYPE ironcast_tftp_{name} {kind}\nironcast_tftp_{name} {}\n",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// A running server; dropping it stops taking requests.
pub struct Tftp {
    pub local_addr: SocketAddr,
    pub metrics: Arc<TftpMetrics>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tftp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `bind` and serves reads under `settings.root`.
pub async fn start(bind: SocketAddr, settings: TftpSettings) -> std::io::Result<Tftp> {
    let socket = UdpSocket::bind(bind).await?;
    let local_addr = socket.local_addr()?;
    let metrics = Arc::new(TftpMetrics::default());
    let server = Server {
        settings: Arc::new(settings),
        metrics: metrics.clone(),
        slots: Arc::new(Semaphore::new(0)),
    };
    server.slots.add_permits(server.settings.max_transfers);
    let task = tokio::spawn(server.run(socket));
    Ok(Tftp {
        local_addr,
        metrics,
        task,
    })
}

struct Server {
    settings: Arc<TftpSettings>,
    metrics: Arc<TftpMetrics>,
    slots: Arc<Semaphore>,
}

impl Server {
    async fn run(self, socket: UdpSocket) {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "tftp: receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let reply = self.request(&buf[..n], peer, socket.local_addr().ok());
            if let Some(reply) = reply {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    }

    /// Handles one datagram on the request port; returns an error packet to send, if any.
    fn request(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Option<Vec<u8>> {
        let m = &self.metrics;
        let req = match packet::parse(datagram) {
            Ok(Packet::Read(req)) => req,
            Ok(Packet::Write(req)) => {
                m.refused.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%peer, file = %req.filename, "tftp: write refused");
                return Some(packet::error(
                    ErrorCode::AccessViolation,
                    "read-only server: writes are refused",
                ));
            }
            Ok(other) => {
                tracing::debug!(%peer, ?other, "tftp: stray packet on the request port");
                return None;
            }
            Err(e) => {
                m.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, error = %e, "tftp: malformed packet dropped");
                return None;
            }
        };
        if !matches!(req.mode.as_str(), "octet" | "netascii") {
            m.refused.fetch_add(1, Ordering::Relaxed);
            return Some(packet::error(
                ErrorCode::IllegalOperation,
                "only octet and netascii modes are served",
            ));
        }
        let file = match resolve(&self.settings.root, &req.filename) {
            Ok(f) => f,
            Err(e) => {
                m.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, file = %req.filename, error = %e, "tftp: read refused");
                let code = match e {
                    PathError::NotFound => ErrorCode::FileNotFound,
                    PathError::Escape | PathError::NotFile => ErrorCode::AccessViolation,
                };
                return Some(packet::error(code, &e.to_string()));
            }
        };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            m.busy.fetch_add(1, Ordering::Relaxed);
            return Some(packet::error(
                ErrorCode::NotDefined,
                "server busy: too many transfers, retry",
            ));
        };
        m.transfers.fetch_add(1, Ordering::Relaxed);
        let (settings, metrics) = (self.settings.clone(), self.metrics.clone());
        let local_ip = local.map(|a| a.ip()).unwrap_or([0, 0, 0, 0].into());
        tokio::spawn(async move {
            let result = transfer(&settings, &metrics, local_ip, peer, &file, &req.options).await;
            match result {
                Ok(()) => {
                    metrics.completed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, file = %file.display(), "tftp: sent");
                }
                Err(e) => {
                    tracing::info!(%peer, file = %file.display(), error = %e, "tftp: transfer ended")
                }
            }
            drop(slot);
        });
        None
    }
}

/// Why a transfer stopped early.
#[derive(Debug, thiserror::Error)]
enum TransferError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no ACK for block {0} after every retry")]
    Timeout(u16),
    #[error("the client sent error {0}: {1}")]
    Client(u16, String),
}

/// Sends `file` to `peer` from a fresh socket (the transfer ID), block by block, each sent
/// again until ACKed; a duplicate ACK is not answered (Sorcerer's Apprentice).
async fn transfer(
    settings: &TftpSettings,
    metrics: &TftpMetrics,
    local_ip: std::net::IpAddr,
    peer: SocketAddr,
    file: &std::path::Path,
    options: &[(String, String)],
) -> Result<(), TransferError> {
    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    socket.connect(peer).await?;
    let mut f = tokio::fs::File::open(file).await?;
    let size = f.metadata().await?.len();
    let n = packet::negotiate(options, size, settings.max_blksize);
    let timeout = n
        .timeout_s
        .map_or(settings.timeout, |s| Duration::from_secs(s as u64));
    let exchange = Exchange {
        socket: &socket,
        timeout,
        retries: settings.retries,
    };
    if !n.accepted.is_empty() {
        exchange
            .send_until_acked(&packet::oack(&n.accepted), 0)
            .await?;
    }
    let mut buf = vec![0u8; n.blksize as usize];
    let mut block: u16 = 1;
    loop {
        let len = read_full(&mut f, &mut buf).await?;
        exchange
            .send_until_acked(&packet::data(block, &buf[..len]), block)
            .await?;
        metrics.bytes.fetch_add(len as u64, Ordering::Relaxed);
        if len < buf.len() {
            return Ok(());
        }
        block = block.wrapping_add(1);
    }
}

struct Exchange<'a> {
    socket: &'a UdpSocket,
    timeout: Duration,
    retries: u32,
}

impl Exchange<'_> {
    async fn send_until_acked(&self, datagram: &[u8], block: u16) -> Result<(), TransferError> {
        let mut buf = [0u8; 516];
        for _ in 0..self.retries.max(1) {
            self.socket.send(datagram).await?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                let got = tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await;
                let Ok(got) = got else { break };
                // ICMP port unreachable surfaces here as an error: the client is gone.
                let n = got?;
                match packet::parse(&buf[..n]) {
                    Ok(Packet::Ack(b)) if b == block => return Ok(()),
                    Ok(Packet::Error(code, text)) => return Err(TransferError::Client(code, text)),
                    _ => {}
                }
            }
        }
        Err(TransferError::Timeout(block))
    }
}

async fn read_full(f: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = f.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

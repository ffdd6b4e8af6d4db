//! `ironcast serve`: one process runs the API, the conductor and the image server.
//!
//! Start order: config (validated) → refuse an unauthenticated non-loopback bind → database
//! (migrated) → image cache (GC scheduled) → image server (with netboot's iPXE routes) →
//! conductor recovery (interrupted nodes to their failure states, stale locks released) →
//! heartbeat → listen (the API socket is bound earlier, before the agent hub, whose URL for
//! agents may name the bound port). The bound addresses are printed on stdout as
//! `ironcast: API listening on http://ADDR` and `ironcast: images served at URL` (tests and
//! scripts read them when binding port 0).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::api::{self, AppState, Htpasswd};
use crate::conductor::{AgentHub, Conductor, HubSettings, Services, Settings};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML, see etc/ironcast.toml); only the keys it sets override the defaults.
    #[arg(long, short, env = "IRONCAST_CONFIG")]
    config: Option<PathBuf>,
}

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the htpasswd file, or refuses a non-loopback bind without one.
fn auth_for(config: &Config) -> anyhow::Result<Option<Arc<Htpasswd>>> {
    if config.api.htpasswd.is_empty() {
        if !config.api.bind.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve the API on {} without authentication: set [api] htpasswd \
                 (or IRONCAST_API__HTPASSWD) to an htpasswd file of bcrypt entries \
                 (`htpasswd -B -c FILE USER`), or bind a loopback address such as 127.0.0.1:6385",
                config.api.bind
            );
        }
        return Ok(None);
    }
    let h = Htpasswd::load(std::path::Path::new(&config.api.htpasswd))?;
    Ok(Some(Arc::new(h)))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let config = Config::from_env(args.config.as_deref())?;
    let running = launch(&config).await?;
    println!("ironcast: images served at {}", running.images_url);
    println!("ironcast: API listening on {}", running.api_url);
    shutdown().await;
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// A running conductor: API, image server, cache; what `serve` and `demo` start.
pub struct Running {
    pub api_url: String,
    pub images_url: String,
    /// Where the ramdisk deploys' patch sets live (the demo reports their size).
    pub remaster_dir: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
    images: crate::imageserver::ServerHandle,
    cache: crate::cache::CacheHandle,
    store: Store,
    conductor: Conductor,
    /// The DHCP responder and TFTP server of `[netboot] dhcp` (none when "off"), held so they
    /// run as long as `serve`.
    _netboot: Option<Arc<crate::netboot::settings::Running>>,
}

impl Running {
    /// The conductor's agent hub (tests drive agents through it).
    pub fn agent_hub(&self) -> Arc<AgentHub> {
        self.conductor.agent_hub().clone()
    }

    /// Where captures are uploaded to (tests reserve and finish captures through it).
    pub fn captures(&self) -> Option<Arc<crate::capture::CaptureService>> {
        self.conductor.captures().cloned()
    }

    /// The image cache.
    pub fn cache(&self) -> crate::cache::Cache {
        self.cache.cache.clone()
    }

    /// The image server's publisher (tests publish images for agents through it).
    pub fn publisher(&self) -> Arc<dyn deploy_drivers::Publisher> {
        self.images.publisher()
    }
}

impl Running {
    /// Stops accepting requests, then closes the image server, cache and database.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.api.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the API server failed"),
            Err(e) => tracing::error!(error = %e, "the API server task failed"),
            Ok(Ok(())) => {}
        }
        self.images.shutdown().await;
        drop(self.cache);
        let _ = self.store.conductor_offline(self.conductor.name()).await;
        self.store.close().await;
    }
}

/// The agent ISO from `[agent] kernel`, built at start unless the state dir has one of the
/// same inputs.
async fn build_agent_iso(config: &Config) -> anyhow::Result<PathBuf> {
    let (kernel, binary) = (
        config.agent.kernel.clone(),
        config.agent.agent_binary.clone(),
    );
    let state = config.conductor.state_dir.clone();
    let started = std::time::Instant::now();
    let (path, built) =
        tokio::task::spawn_blocking(move || crate::ramdisk::for_serve(&kernel, &binary, &state))
            .await?
            .with_context(|| {
                format!(
                    "cannot build the agent ISO from [agent] kernel = {}",
                    config.agent.kernel.display()
                )
            })?;
    match built {
        Some(r) => tracing::info!(
            iso = %path.display(),
            bytes = r.iso_bytes,
            seconds = started.elapsed().as_secs(),
            skipped_modules = ?r.missing,
            "built the agent ISO"
        ),
        None => tracing::info!(iso = %path.display(), "agent ISO inputs unchanged: reusing it"),
    }
    Ok(path)
}

/// Starts everything `serve` runs, in start order (see the module docs), on `config`.
pub async fn launch(config: &Config) -> anyhow::Result<Running> {
    let auth = auth_for(config)?;
    super::private::private_dir(&config.conductor.state_dir).with_context(|| {
        format!(
            "cannot prepare state directory {} (set [conductor] state_dir or IRONCAST_CONDUCTOR__STATE_DIR)",
            config.conductor.state_dir.display()
        )
    })?;
    let url = config.database_url();
    super::private::private_sqlite(&url)?;
    let store = Store::connect(&url, config.database.max_connections)
        .await
        .with_context(|| format!("cannot open the database ({})", redact(&url)))?;
    let cache = crate::cache::start(config.cache.clone())
        .await
        .with_context(|| {
            format!(
                "cannot open the image cache in {}",
                config.cache.dir.display()
            )
        })?;
    let (api_limits, image_limits) = fit_connections(config)?;
    let mut image_config = config.imageserver.clone();
    image_config.max_connections = image_limits.total;
    image_config.max_connections_per_client = image_limits.per_client;
    let netboot = Arc::new(crate::netboot::NetbootDir::new(&config.netboot.tftp_root));
    let images = crate::imageserver::start(
        image_config,
        Some(crate::netboot::router(&config.netboot.tftp_root)),
    )
    .await
    .context("cannot start the image server ([imageserver] section)")?;
    let netboot_servers = crate::netboot::settings::start(
        &config.netboot,
        &images.server.base_url(),
        netboot.clone(),
    )
    .await
    .context("cannot start network boot ([netboot] section)")?
    .map(Arc::new);
    let remaster_dir = config.conductor.state_dir.join("remaster");
    // Bound before the agent hub is made: the URL agents call may name the picked port.
    let listener = tokio::net::TcpListener::bind(config.api.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.api.bind))?;
    let addr = listener.local_addr()?;
    let hub = Arc::new(AgentHub::new(HubSettings {
        conductor_url: config.agent_conductor_url(addr),
        iso: config.agent.iso.clone(),
        poll_wait: std::time::Duration::from_secs(config.agent.poll_wait_s),
        image_rebase: (!config.agent.image_server_url.is_empty()).then(|| {
            (
                images.server.base_url(),
                config.agent.image_server_url.clone(),
            )
        }),
    }));
    if config.agent.iso.as_os_str().is_empty() && !config.agent.kernel.as_os_str().is_empty() {
        hub.set_built_iso(build_agent_iso(config).await?);
    }
    let mut services = Services::new(
        Some(cache.images()),
        Some(Arc::new(crate::iso::FileRemaster::new(&remaster_dir))),
        Some(images.publisher()),
        Some(netboot),
        config.redfish.clone(),
        config.ramdisk_policy(),
    )
    .with_agent(hub);
    services.direct = config.direct_policy();
    services.captures = Some(Arc::new(crate::capture::CaptureService::new(
        cache.cache.clone(),
    )));
    services.iso_install = config.iso_install_policy();
    services.install_media = Some(Arc::new(crate::install_media::FileInstallMedia::new(
        config.conductor.state_dir.join("install"),
        config.iso_install.menu_timeout_s,
        (!config.agent.image_server_url.is_empty()).then(|| {
            (
                images.server.base_url(),
                config.agent.image_server_url.clone(),
            )
        }),
    )));
    services.config_drives = Some(Arc::new(crate::configdrive::ConfigDriveDir::new(
        config.conductor.state_dir.join("configdrive"),
    )));
    let conductor =
        Conductor::with_services(store.clone(), Settings::from_config(config), services);
    let (cache_view, image_view) = (cache.cache.clone(), images.server.clone());
    conductor.add_metrics(Arc::new(move || cache_view.metrics().render_prometheus()));
    conductor.add_metrics(Arc::new(move || image_view.metrics().render_prometheus()));
    if let Some(servers) = netboot_servers.clone() {
        conductor.add_metrics(Arc::new(move || servers.render_prometheus()));
    }
    let failed = conductor
        .recover()
        .await
        .context("start-up recovery of interrupted nodes failed")?;
    if failed > 0 {
        tracing::warn!(failed, "moved interrupted nodes to their failure states");
    }
    reconcile(&conductor, &cache.cache, &images.server).await?;
    conductor.spawn_heartbeat();
    conductor.spawn_wait_poller(std::time::Duration::from_secs(
        config.iso_install.poll_interval_s,
    ));
    if config.conductor.health_interval_s > 0 {
        conductor.spawn_health_sync(std::time::Duration::from_secs(
            config.conductor.health_interval_s,
        ));
    }
    let wake = crate::metal3::Wake::default();
    if config.metal3.enabled {
        crate::metal3::reconciler::spawn(conductor.clone(), config.metal3.settings(), wake.clone());
    }
    if !config.metal3.manifests_dir.as_os_str().is_empty() {
        crate::metal3::watch::spawn(
            store.clone(),
            config.metal3.manifests_dir.clone(),
            std::time::Duration::from_secs(config.metal3.manifests_poll_s),
            wake,
        );
    }
    let app = api::app(AppState {
        conductor: conductor.clone(),
        public_url: links_base(&config.api.public_url, addr)?,
        max_limit: config.api.max_limit,
        auth,
    });
    tracing::info!(%addr, backend = store.backend(), conductor = conductor.name(), "serving");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limiter = crate::listen::ConnLimiter::new(api_limits);
    let timeouts = config.api.timeouts();
    let api = tokio::spawn(async move {
        crate::listen::http::serve(listener, app, limiter, timeouts, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(Running {
        api_url: format!("http://{addr}"),
        images_url: images.server.base_url(),
        remaster_dir,
        stop,
        api,
        images,
        cache,
        store,
        conductor,
        _netboot: netboot_servers,
    })
}

/// The base of links and Location headers: `[api] public_url`, else the bound address —
/// never the request's Host header, which any client may set.
fn links_base(public_url: &str, bound: std::net::SocketAddr) -> anyhow::Result<String> {
    if !public_url.is_empty() {
        return Ok(public_url.trim_end_matches('/').to_string());
    }
    if bound.ip().is_unspecified() {
        anyhow::bail!(
            "the API is bound to the wildcard address {bound}, which clients cannot use in links: \
             set [api] public_url (or IRONCAST_API__PUBLIC_URL), e.g. http://192.0.2.10:6385"
        );
    }
    Ok(format!("http://{bound}"))
}

/// Raises the open-file limit and fits both listeners' connection caps under it: a flood on
/// one listener then cannot take the descriptors the other (or the database) needs.
fn fit_connections(
    config: &Config,
) -> anyhow::Result<(crate::listen::ConnLimits, crate::listen::ConnLimits)> {
    use crate::listen::fdlimit::{self, Want};
    let limit = fdlimit::raise_nofile()?;
    let wants = [
        Want {
            limits: config.api.conn_limits(),
            fds_per_connection: 1,
        },
        // A socket and the published file it sends.
        Want {
            limits: config.imageserver.conn_limits(),
            fds_per_connection: 2,
        },
    ];
    let fitted = fdlimit::fit(limit, &wants)?;
    if fitted[0] != wants[0].limits || fitted[1] != wants[1].limits {
        tracing::warn!(
            open_file_limit = limit,
            api_max_connections = fitted[0].total,
            imageserver_max_connections = fitted[1].total,
            "the open-file limit cannot hold the configured connection caps: shrunk them \
             (raise it with `ulimit -n` or LimitNOFILE=)"
        );
    }
    tracing::info!(open_file_limit = limit, "file descriptors");
    Ok((fitted[0], fitted[1]))
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Gives back the cache leases and publications that no node records (see
/// `conductor::reconcile`): listed first, then checked against the nodes.
async fn reconcile(
    conductor: &Conductor,
    cache: &crate::cache::Cache,
    server: &crate::imageserver::ImageServer,
) -> anyhow::Result<()> {
    use crate::conductor::reconcile::Holding;
    let leases: Vec<Holding> = cache
        .list()
        .into_iter()
        .flat_map(|e| e.leases)
        .filter(|l| l.scope == crate::cache::LeaseScope::Durable)
        // A captured image's name is a lease no node records, and must outlive restarts.
        .filter(|l| !crate::cache::is_name_lease(l))
        .map(|l| Holding {
            id: l.id,
            node: l.holder,
        })
        .collect();
    let publications: Vec<Holding> = server
        .publications()
        .into_iter()
        .map(|r| Holding {
            id: r.id,
            node: r.node,
        })
        .collect();
    let done = conductor
        .reconcile(&leases, &publications)
        .await
        .context("start-up reconciliation of leases and publications failed")?;
    tracing::info!(
        leases_released = done.leases_released.len(),
        publications_revoked = done.publications_revoked.len(),
        "reconciled cache leases and publications against the nodes"
    );
    Ok(())
}

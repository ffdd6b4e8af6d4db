//! `[imageserver]` settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::cache::config::de_duration;

/// The `[imageserver]` section of etc/ironcast.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the image server listens on (its own listener, apart from the API).
    pub bind: SocketAddr,
    /// Base URL BMCs use to reach this server, e.g. "http://192.0.2.10:8081" or
    /// "https://[fd00::10]:8443" (IPv6 literals in brackets). Defaults to the bound address,
    /// which must then not be a wildcard (0.0.0.0 / ::).
    pub external_url: Option<String>,
    /// Directory where publications are kept so they survive a restart.
    pub dir: PathBuf,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS (rustls).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// With `basic_auth_password`, every image fetch needs HTTP basic auth (Redfish
    /// InsertMedia passes these as UserName/Password).
    pub basic_auth_user: Option<String>,
    pub basic_auth_password: Option<String>,
    /// How long a published URL stays valid ("12h", "7d", or seconds).
    #[serde(deserialize_with = "de_duration")]
    pub token_ttl: Duration,
    /// Open connections at most, in total and from one client address; the excess is closed
    /// at accept.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

impl ServerConfig {
    pub fn conn_limits(&self) -> crate::listen::ConnLimits {
        crate::listen::ConnLimits {
            total: self.max_connections,
            per_client: self.max_connections_per_client,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 8081)),
            external_url: None,
            dir: PathBuf::from("/var/lib/ironcast/imageserver"),
            tls_cert: None,
            tls_key: None,
            basic_auth_user: None,
            basic_auth_password: None,
            token_ttl: Duration::from_secs(7 * 86400),
            max_connections: 4096,
            max_connections_per_client: 256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml() {
        let c: ServerConfig = toml::from_str(
            "bind = \"[::1]:0\"\nexternal_url = \"http://[fd00::1]:8081\"\ntoken_ttl = \"2h\"\n",
        )
        .unwrap();
        assert_eq!(c.bind.to_string(), "[::1]:0");
        assert_eq!(c.token_ttl, Duration::from_secs(7200));
        assert!(toml::from_str::<ServerConfig>("bind = \"nowhere\"").is_err());
    }
}

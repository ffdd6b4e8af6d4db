//! `[cache]` settings, and the human duration format shared with `[imageserver]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The `[cache]` section of etc/ironcast.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Directory holding entries, partial downloads and leases.
    pub dir: PathBuf,
    /// Hard limit on the bytes of cached entries (in-flight downloads count too), held across
    /// every process sharing `dir`: give them all the same value.
    pub quota_bytes: u64,
    /// An entry downloaded longer ago than this is expired: evicted first under pressure and
    /// removed by GC unless leased
    /// ("30s", "15m", "12h", "7d", or seconds as an integer).
    #[serde(deserialize_with = "de_duration")]
    pub ttl: Duration,
    /// An entry fetched without a checksum is revalidated with a conditional GET when it was
    /// last validated longer ago than this; entries pinned by a checksum never need it.
    #[serde(deserialize_with = "de_duration")]
    pub revalidate_after: Duration,
    /// When GC runs: a cron expression with seconds ("sec min hour day month weekday").
    pub gc_schedule: String,
    /// `file://` URLs are allowed only under these directories (none by default).
    pub allowed_file_dirs: Vec<PathBuf>,
    /// Accept md5 checksums (legacy images). Off by default.
    pub allow_md5: bool,
    /// Give up on an origin that sends nothing for this long.
    #[serde(deserialize_with = "de_duration")]
    pub read_timeout: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/ironcast/cache"),
            quota_bytes: 50 << 30,
            ttl: Duration::from_secs(7 * 86400),
            revalidate_after: Duration::from_secs(3600),
            gc_schedule: "0 17 * * * *".into(),
            allowed_file_dirs: Vec::new(),
            allow_md5: false,
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Parses "90", "90s", "15m", "12h", "7d".
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (num, mult) = match text.char_indices().last()? {
        (i, 's') => (&text[..i], 1),
        (i, 'm') => (&text[..i], 60),
        (i, 'h') => (&text[..i], 3600),
        (i, 'd') => (&text[..i], 86400),
        _ => (text, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .map(Duration::from_secs)
}

/// Serde helper: a duration as an integer number of seconds or a string like "7d".
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {t:?}: write e.g. \"90s\", \"15m\", \"12h\", \"7d\" or seconds"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_toml() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604800)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("42"), Some(Duration::from_secs(42)));
        assert_eq!(parse_duration("x1h"), None);
        let c: CacheConfig = toml::from_str(
            "dir = \"/c\"\nquota_bytes = 1000\nttl = \"2h\"\nrevalidate_after = 30\n",
        )
        .unwrap();
        assert_eq!(c.ttl, Duration::from_secs(7200));
        assert_eq!(c.revalidate_after, Duration::from_secs(30));
        assert_eq!(c.gc_schedule, CacheConfig::default().gc_schedule);
        assert!(toml::from_str::<CacheConfig>("ttl = \"soon\"").is_err());
        assert!(toml::from_str::<CacheConfig>("quota = 1").is_err());
    }
}

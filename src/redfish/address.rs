//! BMC addresses: Metal3 URL schemes and Ironic's `driver_info` keys → [`RedfishTarget`].
//!
//! Accepted schemes (Metal3 `bmc.address`): `redfish`, `redfish-virtualmedia`,
//! `idrac-virtualmedia`, `idrac-redfish`, `ilo5-virtualmedia`, `ilo5-redfish`, each optionally
//! suffixed `+http` or `+https` (default https); plain `http(s)://` and bare `host[:port]` as
//! Ironic's `redfish_address` allows. Host may be an IPv6 literal in brackets; the path may name
//! the system (`/redfish/v1/Systems/ID`). Credentials inside the URL are refused (they would end
//! up in logs); they come from `redfish_username` / `redfish_password`.
//!
//! Pure: no I/O.

use std::fmt;
use std::path::PathBuf;

use reqwest::Url;
use serde_json::{Map, Value};

use super::error::{RedfishError, Result};

/// A user name and password; `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"******")
            .finish()
    }
}

/// How to check the BMC's TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsVerify {
    /// Use the `[redfish] verify_tls` default.
    #[default]
    Default,
    Verify,
    /// Verify against this PEM bundle.
    CaBundle(PathBuf),
    /// Do not verify (explicit opt-in: `redfish_verify_ca = false`).
    Insecure,
}

/// Vendor hinted by the address scheme (`idrac-…`, `ilo5-…`), before the BMC is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorHint {
    Dell,
    Hpe,
}

/// Where a node's BMC is and how to log in: what a per-node Redfish handle needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishTarget {
    /// `scheme://host[:port]`, no path.
    pub base: Url,
    /// System id (last path segment of the system's `@odata.id`), if given.
    pub system_id: Option<String>,
    pub credentials: Option<Credentials>,
    pub tls: TlsVerify,
    pub vendor_hint: Option<VendorHint>,
}

const FAMILIES: &[(&str, Option<VendorHint>)] = &[
    ("redfish", None),
    ("redfish-virtualmedia", None),
    ("idrac-virtualmedia", Some(VendorHint::Dell)),
    ("idrac-redfish", Some(VendorHint::Dell)),
    ("ilo5-virtualmedia", Some(VendorHint::Hpe)),
    ("ilo5-redfish", Some(VendorHint::Hpe)),
];

/// Shows an address with any `user:password@` part masked, for error messages.
fn redact(address: &str) -> String {
    match (address.find("://"), address.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            format!("{}******@{}", &address[..s + 3], &address[at + 1..])
        }
        (None, Some(at)) => format!("******@{}", &address[at + 1..]),
        _ => address.to_string(),
    }
}

/// Parses a BMC address (Metal3 `bmc.address` or Ironic `redfish_address`).
pub fn parse_address(address: &str) -> Result<RedfishTarget> {
    let bad = |reason: &str| RedfishError::InvalidAddress {
        address: redact(address),
        reason: reason.to_string(),
    };
    let trimmed = address.trim();
    if trimmed.is_empty() {
        return Err(bad(
            "empty address; give e.g. redfish+https://10.0.0.5/redfish/v1/Systems/1",
        ));
    }
    let (scheme, rest, hint) = match trimmed.split_once("://") {
        None => ("https", trimmed, None),
        Some((s, rest)) => {
            let s = s.to_ascii_lowercase();
            let (family, transport) = match s.split_once('+') {
                Some((f, t)) => (f.to_string(), Some(t.to_string())),
                None => (s.clone(), None),
            };
            let scheme = match (family.as_str(), transport.as_deref()) {
                ("http", None) => "http",
                ("https", None) => "https",
                (_, Some("http")) => "http",
                (_, Some("https")) | (_, None) => "https",
                (_, Some(other)) => {
                    return Err(bad(&format!(
                        "unknown transport `+{other}`; use +http or +https"
                    )))
                }
            };
            let hint = if family == "http" || family == "https" {
                None
            } else {
                match FAMILIES.iter().find(|(f, _)| *f == family) {
                    Some((_, hint)) => *hint,
                    None => {
                        return Err(bad(&format!(
                            "unsupported scheme `{s}`; use redfish://, redfish+http(s)://, redfish-virtualmedia://, idrac-virtualmedia:// or ilo5-virtualmedia://"
                        )))
                    }
                }
            };
            (scheme, rest, hint)
        }
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("query strings and fragments are not allowed"));
    }
    let url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in the address are refused; set redfish_username and redfish_password",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    let system_id = system_id_from_path(url.path()).map_err(|r| bad(&r))?;
    let mut base = url.clone();
    base.set_path("");
    Ok(RedfishTarget {
        base,
        system_id,
        credentials: None,
        tls: TlsVerify::Default,
        vendor_hint: hint,
    })
}

/// `""`, `"/"` → None; `/redfish/v1/Systems/ID` → Some(ID).
fn system_id_from_path(path: &str) -> std::result::Result<Option<String>, String> {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return Ok(None);
    }
    let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["redfish", "v1"] => Ok(None),
        ["redfish", "v1", "Systems", id] if !id.is_empty() => Ok(Some(percent_decode(id))),
        _ => Err(format!(
            "path `{path}` is not a system; expected /redfish/v1/Systems/<id> or nothing"
        )),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get_str<'a>(info: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(RedfishError::InvalidDriverInfo(format!(
            "{key} must be a string"
        ))),
    }
}

/// Builds a target from Ironic `driver_info`: `redfish_address` (required), `redfish_system_id`
/// (an `@odata.id` path or a bare id; overrides a system in the address), `redfish_username`,
/// `redfish_password`, `redfish_verify_ca` (bool, "true"/"false" or a CA bundle path).
pub fn from_driver_info(info: &Map<String, Value>) -> Result<RedfishTarget> {
    let address = get_str(info, "redfish_address")?.ok_or_else(|| {
        RedfishError::InvalidDriverInfo(
            "redfish_address is required (e.g. https://10.0.0.5 or redfish+https://10.0.0.5/redfish/v1/Systems/1)".into(),
        )
    })?;
    let mut target = parse_address(address)?;
    if let Some(sys) = get_str(info, "redfish_system_id")? {
        let sys = sys.trim();
        let id = if sys.contains('/') {
            system_id_from_path(sys).map_err(RedfishError::InvalidDriverInfo)?
        } else if sys.is_empty() {
            None
        } else {
            Some(sys.to_string())
        };
        if id.is_some() {
            target.system_id = id;
        }
    }
    let user = get_str(info, "redfish_username")?;
    let pass = get_str(info, "redfish_password")?;
    target.credentials = match (user, pass) {
        (Some(u), p) => Some(Credentials::new(u, p.unwrap_or(""))),
        (None, Some(_)) => {
            return Err(RedfishError::InvalidDriverInfo(
                "redfish_password is set but redfish_username is not".into(),
            ))
        }
        (None, None) => None,
    };
    target.tls = match info.get("redfish_verify_ca") {
        None | Some(Value::Null) => TlsVerify::Default,
        Some(Value::Bool(true)) => TlsVerify::Verify,
        Some(Value::Bool(false)) => TlsVerify::Insecure,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => TlsVerify::Verify,
            "false" | "0" | "no" | "off" => TlsVerify::Insecure,
            _ => TlsVerify::CaBundle(PathBuf::from(s.trim())),
        },
        Some(_) => {
            return Err(RedfishError::InvalidDriverInfo(
                "redfish_verify_ca must be a boolean or a CA bundle path".into(),
            ))
        }
    };
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(addr: &str, base: &str, system: Option<&str>, hint: Option<VendorHint>) {
        let t = parse_address(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(t.base.as_str().trim_end_matches('/'), base, "{addr}");
        assert_eq!(t.system_id.as_deref(), system, "{addr}");
        assert_eq!(t.vendor_hint, hint, "{addr}");
    }

    #[test]
    fn metal3_schemes() {
        check(
            "redfish://10.0.0.5/redfish/v1/Systems/1",
            "https://10.0.0.5",
            Some("1"),
            None,
        );
        check(
            "redfish+http://bmc:8000/redfish/v1/Systems/abc",
            "http://bmc:8000",
            Some("abc"),
            None,
        );
        check("redfish+https://bmc", "https://bmc", None, None);
        check(
            "redfish-virtualmedia://10.0.0.5:8443/redfish/v1/Systems/System.Embedded.1",
            "https://10.0.0.5:8443",
            Some("System.Embedded.1"),
            None,
        );
        check(
            "redfish-virtualmedia+http://h/redfish/v1/Systems/x/",
            "http://h",
            Some("x"),
            None,
        );
        check(
            "idrac-virtualmedia://10.1.1.1/redfish/v1/Systems/System.Embedded.1",
            "https://10.1.1.1",
            Some("System.Embedded.1"),
            Some(VendorHint::Dell),
        );
        check(
            "ilo5-virtualmedia://10.1.1.2/redfish/v1/Systems/1",
            "https://10.1.1.2",
            Some("1"),
            Some(VendorHint::Hpe),
        );
        check(
            "redfish+http://[fd00::5]:8000/redfish/v1/Systems/1",
            "http://[fd00::5]:8000",
            Some("1"),
            None,
        );
        check("redfish://[::1]", "https://[::1]", None, None);
        check("10.0.0.9:8443", "https://10.0.0.9:8443", None, None);
        check("http://10.0.0.9/redfish/v1", "http://10.0.0.9", None, None);
        check(
            "REDFISH+HTTP://h/redfish/v1/Systems/a%20b",
            "http://h",
            Some("a b"),
            None,
        );
    }

    #[test]
    fn bad_addresses_say_why() {
        for (addr, needle) in [
            ("ipmi://10.0.0.1", "unsupported scheme"),
            ("redfish+ftp://h", "unknown transport"),
            ("redfish://h/some/other/path", "not a system"),
            ("", "empty address"),
            ("redfish://h/redfish/v1/Systems/1?x=1", "query"),
            ("redfish://[fd00::1/redfish/v1", "invalid"),
        ] {
            let e = parse_address(addr).unwrap_err().to_string();
            assert!(e.to_lowercase().contains(needle), "{addr}: {e}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_masked() {
        let e = parse_address("redfish://root:s3cret@10.0.0.1/redfish/v1/Systems/1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials in the address"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn driver_info_keys() {
        let info = json!({
            "redfish_address": "https://[fd00::7]:8443",
            "redfish_system_id": "/redfish/v1/Systems/42",
            "redfish_username": "admin",
            "redfish_password": "hunter2",
            "redfish_verify_ca": "/etc/ssl/bmc.pem"
        });
        let t = from_driver_info(info.as_object().unwrap()).unwrap();
        assert_eq!(t.base.as_str(), "https://[fd00::7]:8443/");
        assert_eq!(t.system_id.as_deref(), Some("42"));
        assert_eq!(t.credentials.as_ref().unwrap().password(), "hunter2");
        assert_eq!(t.tls, TlsVerify::CaBundle("/etc/ssl/bmc.pem".into()));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("admin"), "{dbg}");

        let info = json!({"redfish_address": "redfish+http://h/redfish/v1/Systems/a", "redfish_verify_ca": false});
        let t = from_driver_info(info.as_object().unwrap()).unwrap();
        assert_eq!(t.system_id.as_deref(), Some("a"));
        assert_eq!(t.tls, TlsVerify::Insecure);
        assert!(t.credentials.is_none());

        let info = json!({"redfish_address": "h", "redfish_system_id": "bare", "redfish_verify_ca": "True"});
        let t = from_driver_info(info.as_object().unwrap()).unwrap();
        assert_eq!(t.system_id.as_deref(), Some("bare"));
        assert_eq!(t.tls, TlsVerify::Verify);
    }

    #[test]
    fn driver_info_errors() {
        for (info, needle) in [
            (json!({}), "redfish_address is required"),
            (json!({"redfish_address": 5}), "must be a string"),
            (
                json!({"redfish_address": "h", "redfish_password": "x"}),
                "redfish_username is not",
            ),
            (
                json!({"redfish_address": "h", "redfish_verify_ca": 3}),
                "redfish_verify_ca",
            ),
        ] {
            let e = from_driver_info(info.as_object().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{info}: {e}");
        }
    }
}

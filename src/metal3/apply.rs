//! Applying a manifest file: parse every document, validate every host (BMO's webhook rules,
//! against the host already applied when there is one), then write them all in one
//! transaction. A file with any invalid document changes nothing.

use crate::store::{Applied, Metal3Write, Store};

use super::manifest::{parse, BareMetalHost, Document};
use super::status::HostStatus;
use super::validate::{validate_changes, validate_host};
use super::Metal3Error;

/// One applied document, as kubectl reports it ("baremetalhost.metal3.io/host-0 created").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedDoc {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub result: String,
}

/// Parses, validates and stores every document of `text`; all or nothing.
pub async fn apply(store: &Store, text: &str) -> Result<Vec<AppliedDoc>, Metal3Error> {
    let docs = parse(text)?;
    let mut writes = Vec::with_capacity(docs.len());
    let mut report = Vec::with_capacity(docs.len());
    let mut seen = std::collections::HashSet::new();
    for doc in &docs {
        match doc {
            Document::Secret(s) => {
                if s.metadata.name.is_empty() {
                    return Err(Metal3Error::Invalid("a Secret has no metadata.name".into()));
                }
                let data = s
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                writes.push(Metal3Write::Secret {
                    namespace: s.namespace().into(),
                    name: s.metadata.name.clone(),
                    data,
                });
                report.push((
                    "secret".to_string(),
                    s.namespace().to_string(),
                    s.metadata.name.clone(),
                ));
            }
            Document::Host(h) => {
                check_host(store, h).await?;
                if !seen.insert((h.namespace().to_string(), h.name().to_string())) {
                    return Err(Metal3Error::Invalid(format!(
                        "BareMetalHost {}/{} appears twice in one apply",
                        h.namespace(),
                        h.name()
                    )));
                }
                writes.push(Metal3Write::Host {
                    namespace: h.namespace().into(),
                    name: h.name().into(),
                    manifest: h.to_stored(),
                });
                report.push((
                    "baremetalhost.metal3.io".to_string(),
                    h.namespace().to_string(),
                    h.name().to_string(),
                ));
            }
        }
    }
    let results = store.metal3_apply(&writes).await?;
    Ok(report
        .into_iter()
        .zip(results)
        .map(
            |((kind, namespace, name), r): ((String, String, String), Applied)| AppliedDoc {
                kind,
                namespace,
                name,
                result: r.as_str().into(),
            },
        )
        .collect())
}

/// BMO's webhook on one host: create rules, or update rules against the applied host.
async fn check_host(store: &Store, h: &BareMetalHost) -> Result<(), Metal3Error> {
    let errs = match store.metal3_host(h.namespace(), h.name()).await? {
        Some(row) if row.deleting => {
            return Err(Metal3Error::Invalid(format!(
                "BareMetalHost {}/{} is being deleted: wait until `ironcast get bmh {}` no longer finds it, then apply it again",
                h.namespace(),
                h.name(),
                h.name()
            )))
        }
        Some(row) => {
            let old = BareMetalHost::from_stored(&row.manifest)?;
            let status = HostStatus::from_map(&row.status);
            validate_changes(&old, h, status.provisioning.state, &status.operational_status)
        }
        None => validate_host(h),
    };
    if errs.is_empty() {
        return Ok(());
    }
    Err(Metal3Error::Invalid(format!(
        "admission webhook \"baremetalhost.metal3.io\" denied the request for BareMetalHost {}/{}: {}",
        h.namespace(),
        h.name(),
        errs.join("; ")
    )))
}

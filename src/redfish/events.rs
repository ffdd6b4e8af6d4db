//! BMC event subscriptions (Ironic's redfish vendor passthru `create_subscription`,
//! `delete_subscription`, `get_subscription`, `get_all_subscriptions`) on the EventService's
//! Subscriptions collection.

use serde_json::{json, Map, Value};

use super::client::Client;
use super::error::{RedfishError, Result};
use super::inspect::{link, members};
use crate::hardware::{NewSubscription, Subscription};

async fn collection(client: &Client) -> Result<String> {
    let root = client.get("/redfish/v1/").await?.body;
    let service = link(&root, "EventService")
        .ok_or_else(|| RedfishError::Unsupported("event subscriptions: no EventService".into()))?;
    let svc: Value = client.get_as(&service).await?;
    link(&svc, "Subscriptions").ok_or_else(|| {
        RedfishError::Unsupported(
            "event subscriptions: the EventService has no Subscriptions".into(),
        )
    })
}

fn parse(v: &Value) -> Subscription {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    Subscription {
        id: s("Id"),
        destination: s("Destination"),
        event_types: v["EventTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        context: s("Context"),
        protocol: s("Protocol"),
    }
}

pub async fn list(client: &Client) -> Result<Vec<Subscription>> {
    let path = collection(client).await?;
    Ok(members(client, &path).await?.iter().map(parse).collect())
}

pub async fn create(client: &Client, new: &NewSubscription) -> Result<Subscription> {
    let path = collection(client).await?;
    let headers: Vec<Value> = new
        .http_headers
        .iter()
        .map(|(k, v)| {
            let mut m = Map::new();
            m.insert(k.clone(), json!(v));
            Value::Object(m)
        })
        .collect();
    let mut body = json!({
        "Destination": new.destination,
        "EventTypes": new.event_types,
        "Context": new.context,
        "Protocol": new.protocol,
    });
    if !headers.is_empty() {
        body["HttpHeaders"] = json!(headers);
    }
    let r = client.post(&path, &body).await?;
    if r.body.get("Id").is_some() {
        return Ok(parse(&r.body));
    }
    let at = r.location.ok_or_else(|| RedfishError::Protocol {
        url: path.clone(),
        reason: "the new subscription has neither a body nor a Location".into(),
    })?;
    Ok(parse(&client.get_as::<Value>(&at).await?))
}

pub async fn delete(client: &Client, id: &str) -> Result<()> {
    let path = collection(client).await?;
    let coll: Value = client.get_as(&path).await?;
    let member = coll["Members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["@odata.id"].as_str())
        .find(|p| p.trim_end_matches('/').rsplit('/').next() == Some(id))
        .ok_or_else(|| {
            RedfishError::Unsupported(format!(
                "deleting event subscription {id:?}: the BMC has none with that id"
            ))
        })?
        .to_string();
    client.delete(&member).await?;
    Ok(())
}

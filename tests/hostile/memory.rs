//! One request must not make the API hold gigabytes: body limits per route, a cap on JSON
//! values before parsing, and size limits on the JSON fields stored on a node.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::serve::spawn_serve;

struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: String) -> (u16, Value) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .header("X-OpenStack-Ironic-API-Version", "1.95")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_and_fields_are_refused_except_a_config_drive_on_provision() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(
        dir.path(),
        &[("IRONCAST_CONDUCTOR__FAKE_DEPLOY_DELAY_MS", "0")],
    );
    let api = Api {
        client: client(),
        url: server.url.clone(),
    };
    use reqwest::Method;

    // A 2 MiB node, more than any route but provision takes: refused from its head alone.
    let status = head_only_answer(&server.url, "POST", "/v1/nodes", 2 << 20).await;
    assert_eq!(status, Ok(413));
    // Sent chunked (no Content-Length), it is cut while it is read.
    let huge = json!({"driver": "fake-hardware", "extra": {"blob": "x".repeat(2 << 20)}});
    let chunks = futures::stream::iter(
        huge.to_string()
            .into_bytes()
            .chunks(64 << 10)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    // Its own client: the server closes this connection, which must not be pooled.
    let resp = client()
        .post(format!("{}/v1/nodes", api.url))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 413);
    }

    // 200,000 values in 400 kB: refused before it is parsed.
    let zeros = format!(
        "{{\"driver\": \"fake-hardware\", \"extra\": {{\"z\": [{}0]}}}}",
        "0,".repeat(200_000)
    );
    let (status, body) = api.send(Method::POST, "/v1/nodes", zeros).await;
    assert_eq!(status, 413, "{body}");

    // A field over 64 KiB, at creation and grown by patches.
    let wide = json!({"driver": "fake-hardware", "extra": {"blob": "x".repeat(100 << 10)}});
    let (status, body) = api.send(Method::POST, "/v1/nodes", wide.to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("extra"), "{body}");

    let node = json!({"driver": "fake-hardware", "name": "mem1"});
    let (status, body) = api.send(Method::POST, "/v1/nodes", node.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let chunk = "y".repeat(40 << 10);
    let add = |key: &str| {
        json!([{"op": "add", "path": format!("/extra/{key}"), "value": chunk}]).to_string()
    };
    let (status, body) = api.send(Method::PATCH, "/v1/nodes/mem1", add("a")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.send(Method::PATCH, "/v1/nodes/mem1", add("b")).await;
    assert_eq!(
        status, 400,
        "a second 40 KiB key made extra exceed 64 KiB: {body}"
    );

    // The provision request carries a 3 MiB config drive.
    for target in ["manage", "provide"] {
        let (status, body) = api
            .send(
                Method::PUT,
                "/v1/nodes/mem1/states/provision",
                json!({"target": target}).to_string(),
            )
            .await;
        assert_eq!(status, 202, "{target}: {body}");
        wait_stable(&api, "mem1").await;
    }
    let deploy = json!({"target": "active", "configdrive": "Q".repeat(3 << 20)});
    let (status, body) = api
        .send(
            Method::PUT,
            "/v1/nodes/mem1/states/provision",
            deploy.to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// Sends only a request head declaring a `len`-byte body and reads the answer (none within
/// 10 s is an error): a server that refuses early answers without the body.
async fn head_only_answer(url: &str, method: &str, path: &str, len: usize) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let to = crate::net::addr_of(url);
    let mut s = crate::net::connect_from(crate::net::LEGIT, to)
        .await
        .map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))
}

async fn wait_stable(api: &Api, node: &str) {
    for _ in 0..100 {
        let (_, body) = api
            .send(
                reqwest::Method::GET,
                &format!("/v1/nodes/{node}"),
                String::new(),
            )
            .await;
        if body["target_provision_state"].is_null() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{node} did not settle");
}

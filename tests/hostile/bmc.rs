//! A hostile BMC: links to another origin, a 1 GiB answer, invalid JSON. A project-owned fake
//! (axum), since no real Redfish service misbehaves on request: it imitates a BMC whose
//! firmware is compromised.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use ironcast::redfish::{parse_address, Client, Credentials, RedfishConfig};

async fn listen(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_elsewhere_huge_answers_and_invalid_json_are_refused() {
    // Another origin that counts what reaches it (it must be nothing).
    let reached = Arc::new(AtomicUsize::new(0));
    let r = reached.clone();
    let elsewhere = listen(axum::Router::new().fallback(move || {
        r.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    }))
    .await;

    let gib = || {
        let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
        let stream =
            futures::stream::iter((0..1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        axum::body::Body::from_stream(stream)
    };
    let bmc = listen(
        axum::Router::new()
            // A service root with no session service: the client falls back to Basic.
            .route(
                "/redfish/v1/",
                get(|| async {
                    axum::Json(
                        serde_json::json!({"@odata.id": "/redfish/v1/", "RedfishVersion": "1.6.0"}),
                    )
                }),
            )
            .route("/redfish/v1/huge", get(move || async move { gib() }))
            .route("/redfish/v1/broken", get(|| async { "{\"Id\": 1,, }" })),
    )
    .await;
    let mut target = parse_address(&bmc).unwrap();
    target.credentials = Some(Credentials::new("admin", "bmc-password"));
    let client = Client::new(&target, &RedfishConfig::default()).unwrap();

    let err = client
        .get(&format!("{elsewhere}/redfish/v1/Systems/1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("another origin"), "{err}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "a request reached the other origin"
    );

    let err = client
        .get("/redfish/v1/huge")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than"), "{err}");

    let err = client
        .get("/redfish/v1/broken")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not valid JSON") && err.contains("line 1"),
        "{err}"
    );
}

//! HTTP serving of the iPXE scripts: `GET /ipxe/<mac>.ipxe` (MAC with ':' or '-').

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::render::Mac;

/// Routes serving the iPXE scripts under `root` (the TFTP root of a [`super::NetbootDir`]).
pub fn router(root: impl Into<PathBuf>) -> Router {
    Router::new()
        .route("/ipxe/{file}", get(script))
        .with_state(Arc::new(root.into()))
}

async fn script(State(root): State<Arc<PathBuf>>, Path(file): Path<String>) -> Response {
    let Some(mac) = file.strip_suffix(".ipxe").and_then(|m| Mac::parse(m).ok()) else {
        return (StatusCode::NOT_FOUND, "not a <mac>.ipxe name\n").into_response();
    };
    let path = root.join(mac.ipxe_path());
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => {
            // One line per network boot: which config the node got.
            let first = text
                .lines()
                .rev()
                .find(|l| !l.is_empty())
                .unwrap_or_default();
            tracing::info!(%mac, script = first, "served iPXE script");
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (StatusCode::NOT_FOUND, "no iPXE script for this MAC\n").into_response()
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "reading iPXE script");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

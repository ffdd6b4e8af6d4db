//! `GET /metrics`: the conductor's Prometheus text (deploy counters, nodes per provision state,
//! cache and image server metrics). Outside `/v1`, so no microversion applies.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::error::ApiResult;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let text = state.conductor.render_metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

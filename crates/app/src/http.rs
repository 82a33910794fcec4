//! The HTTP edge: one listener for health, metrics and, as later issues land, the dashboard and webhooks.
//! `AppError` is the only error type a handler returns; it logs the cause and shows the client no internals.

use crate::metrics::Metrics;
use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use std::sync::Arc;
use store::Store;

#[derive(Debug, Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the database is not answering")]
    DatabaseUnavailable(#[source] store::StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, source = ?std::error::Error::source(&self), "request failed");
        let status = match self {
            AppError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        // The cause stays in the log; the client learns only what it can act on.
        (status, axum::Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

async fn healthz(State(state): State<HttpState>) -> Result<impl IntoResponse, AppError> {
    state.store.ping().await.map_err(AppError::DatabaseUnavailable)?;
    Ok(axum::Json(serde_json::json!({ "status": "ok", "database": state.store.backend_name() })))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

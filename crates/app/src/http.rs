//! The HTTP edge: one listener for health, metrics and, as later issues land, the dashboard and webhooks.
//! `AppError` is the only error type a handler returns; it logs the cause and shows the client no internals.

use crate::metrics::Metrics;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use std::sync::Arc;
use store::Store;

#[derive(Debug, Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    /// Present when `DISCORD_PUBLIC_KEY` is set.
    pub interactions: Option<Arc<InteractionEndpoint>>,
    pub clock: Arc<dyn domain::Clock>,
    /// The market feed's health, reported by `/healthz`; `None` when no feed runs (benchmarks of one route).
    pub feed: Option<crate::feed_health::FeedHealth>,
}

/// Discord's Interactions Endpoint: the signature check, then the handler.
#[derive(Debug)]
pub struct InteractionEndpoint {
    pub verifier: discord::signature::InteractionVerifier,
    pub handler: crate::interactions::InteractionHandler,
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

/// `GET /healthz`: 200 when the database answers and the market feed is healthy, else 503; the body names
/// the feed, its state and, when unhealthy, why (problem, since when, stale pairs) in words fit for anyone
/// who can reach the port. Causes with internals stay in the log.
async fn healthz(State(state): State<HttpState>) -> Response {
    let database = state.store.ping().await.map_err(AppError::DatabaseUnavailable);
    let feed = state.feed.as_ref().map(|f| f.status());
    let feed_healthy = feed.as_ref().is_none_or(|f| f.healthy);
    let feed_json = feed.map(|f| {
        let mut json = serde_json::json!({ "name": f.feed, "state": f.state, "since": f.since, "healthy": f.healthy });
        if let Some(problem) = f.problem {
            json["problem"] = problem.into();
        }
        if !f.stale.is_empty() {
            json["stale"] = serde_json::json!(f.stale);
        }
        json
    });
    match database {
        Ok(()) if feed_healthy => axum::Json(serde_json::json!({
            "status": "ok",
            "database": state.store.backend_name(),
            "feed": feed_json,
        }))
        .into_response(),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "status": "unhealthy",
                "error": "the market feed is unhealthy",
                "database": state.store.backend_name(),
                "feed": feed_json,
            })),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, source = ?std::error::Error::source(&error), "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "unhealthy",
                    "error": error.to_string(),
                    "database": "unavailable",
                    "feed": feed_json,
                })),
            )
                .into_response()
        }
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /discord/interactions`. The signature is checked over the raw bytes before anything is parsed, so a
/// forged or replayed request changes nothing and learns nothing.
async fn discord_interactions(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(endpoint) = &state.interactions else {
        return json_error(
            StatusCode::NOT_FOUND,
            "Discord interactions are not configured (DISCORD_PUBLIC_KEY is unset)",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Err(error) = endpoint.verifier.verify_at(
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
        &body,
        state.clock.now().timestamp(),
    ) {
        tracing::debug!(%error, "interaction refused");
        return json_error(StatusCode::UNAUTHORIZED, "invalid request signature");
    }
    let incoming = match discord::interactions::parse_interaction(&body) {
        Ok(incoming) => incoming,
        // A well-formed interaction carrying a control we did not make: refuse it to the user, privately.
        Err(
            error @ (discord::interactions::InteractionError::CustomId(_)
            | discord::interactions::InteractionError::MisplacedCustomId { .. }),
        ) => {
            return axum::Json(discord::interactions::ephemeral_message(&format!(
                "Signalpost does not know that control ({error}); nothing was done."
            )))
            .into_response();
        }
        Err(error) => {
            tracing::warn!(%error, "signed interaction that we could not read");
            return json_error(StatusCode::BAD_REQUEST, "malformed interaction");
        }
    };
    axum::Json(endpoint.handler.handle(incoming).await).into_response()
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}

/// The listener's routes with the dashboard (`web` crate: pages, `/api/`, sign-in) merged in.
pub fn router_with_dashboard(state: HttpState, dashboard: web::WebState) -> Router {
    router(state).merge(web::router(dashboard).layer(tower_http::trace::TraceLayer::new_for_http()))
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/discord/interactions", axum::routing::post(discord_interactions))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

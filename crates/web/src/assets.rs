//! The stylesheet and the one small script, compiled into the binary so `cargo run --release` serves
//! everything without a build step.

use crate::WebState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub const STYLE: &str = include_str!("../static/style.css");
pub const SCRIPT: &str = include_str!("../static/app.js");

pub fn routes() -> Router<WebState> {
    Router::new()
        .route(
            "/static/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), CACHE], STYLE).into_response() }),
        )
        .route(
            "/static/app.js",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), CACHE], SCRIPT).into_response()
            }),
        )
}

/// An hour: long enough to spare reloads, short enough that an upgrade shows soon.
const CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "public, max-age=3600");

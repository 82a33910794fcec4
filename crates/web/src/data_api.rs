//! The dashboard's data as JSON under `/api/`: the caller's trades, signals, statistics and overview. Every
//! route needs a dashboard session (401 JSON without one, see [`CurrentUser`]) and answers with the caller's
//! own data only; someone else's trade is 404, exactly like a trade that does not exist.

use crate::WebState;
use crate::error::{ApiError, AppError};
use crate::inbox::{InboxItem, inbox_items};
use crate::overview::{AccountSummary, LiveSnapshot, account_summary, live_snapshot, todays_signals};
use crate::session::CurrentUser;
use crate::stats_page::{StatsReport, report};
use crate::views::{HistoryParams, MAX_PAGE_SIZE, PAGE_SIZE, trade_page};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::{Trade, TradeId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/trades", get(trades))
        .route("/api/trades/{id}", get(trade))
        .route("/api/signals", get(signals))
        .route("/api/stats", get(stats))
        .route("/api/overview", get(overview))
}

/// `GET /api/trades`: a page of trades, newest first, with the same filters as `/trades`.
///
/// Pages are served from [`TradePageCache`] while the user's trades version (read with the session, before
/// the page) is the one the cached page was read under; any write to the user's trades, by any process,
/// changes the version in the same transaction. The version comes with the session context, which this
/// process's own trade writes refresh at once and another process's within
/// [`session_cache::TTL`](crate::session_cache::TTL): a cached page is never older than that.
async fn trades(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(params): Query<HistoryParams>,
) -> Result<Response, ApiError> {
    let size = params.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    // Parsing first refuses bad filters before the cache is consulted, and names the page exactly.
    let key = (user.id(), format!("{:?}", params.query(user.id(), Some(size))?));
    if let Some(body) = state.trade_pages.get(&key, user.trades_version) {
        return Ok(json_response(body));
    }
    let page = trade_page(state.store.as_ref(), &params, user.id(), size).await?;
    let body = Bytes::from(serde_json::to_vec(&page).map_err(|e| AppError::Internal(e.to_string()))?);
    state.trade_pages.put(key, user.trades_version, body.clone());
    Ok(json_response(body))
}

fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// The serialised `/api/trades` pages last read, per (user, query), each with the trades version it was read
/// under. Bounded: when full, it starts again empty.
#[derive(Debug, Default)]
pub(crate) struct TradePageCache {
    pages: Mutex<HashMap<(UserId, String), (i64, Bytes)>>,
}

impl TradePageCache {
    /// Pages kept at most (a few MB of JSON at the default page size).
    const CAPACITY: usize = 1024;

    fn get(&self, key: &(UserId, String), version: i64) -> Option<Bytes> {
        let pages = self.pages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.get(key).filter(|(v, _)| *v == version).map(|(_, body)| body.clone())
    }

    fn put(&self, key: (UserId, String), version: i64, body: Bytes) {
        let mut pages = self.pages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pages.len() >= Self::CAPACITY && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, (version, body));
    }
}

/// `GET /api/trades/{id}`: one of the caller's trades.
async fn trade(State(state): State<WebState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<Trade>, ApiError> {
    match state.store.get_trade(TradeId(id)).await? {
        Some(trade) if trade.user_id == user.id() => Ok(Json(trade)),
        _ => Err(ApiError(AppError::NotFound)),
    }
}

#[derive(Debug, Deserialize)]
struct SignalsQuery {
    page: Option<u32>,
}

#[derive(Debug, Serialize)]
struct SignalsPage {
    page: u32,
    items: Vec<InboxItem>,
    /// Whether `page + 1` has more.
    more: bool,
}

/// `GET /api/signals?page=N`: the caller's inbox, newest first, 20 a page.
async fn signals(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(query): Query<SignalsQuery>,
) -> Result<Json<SignalsPage>, ApiError> {
    let page = query.page.unwrap_or(1).max(1);
    let (items, more) = inbox_items(&state, &user, page).await?;
    Ok(Json(SignalsPage { page, items, more }))
}

/// `GET /api/stats`: the figures and series `/stats` shows.
async fn stats(State(state): State<WebState>, user: CurrentUser) -> Result<Json<StatsReport>, ApiError> {
    Ok(Json(report(&state, &user).await?))
}

#[derive(Debug, Serialize)]
struct Overview {
    open: LiveSnapshot,
    summary: AccountSummary,
    todays_signals: Vec<InboxItem>,
}

/// `GET /api/overview`: open trades at the latest prices, the account summary and today's signals.
async fn overview(State(state): State<WebState>, user: CurrentUser) -> Result<Json<Overview>, ApiError> {
    let open = live_snapshot(&state, &user).await?;
    let summary = account_summary(&state, &user, open.open_count).await?;
    let todays_signals = todays_signals(&state, &user).await?;
    Ok(Json(Overview { open, summary, todays_signals }))
}

//! The dashboard's data as JSON under `/api/`: the caller's trades, signals, statistics and overview. Every
//! route needs a dashboard session (401 JSON without one, see [`CurrentUser`]) and answers with the caller's
//! own data only; someone else's trade is 404, exactly like a trade that does not exist.

use crate::WebState;
use crate::error::{ApiError, AppError};
use crate::inbox::{InboxItem, inbox_items};
use crate::overview::{AccountSummary, LiveSnapshot, account_summary, live_snapshot, todays_signals};
use crate::session::CurrentUser;
use crate::stats_page::{StatsReport, report};
use crate::views::{HistoryParams, MAX_PAGE_SIZE, PAGE_SIZE, TradePage, trade_page};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use domain::{Trade, TradeId};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/trades", get(trades))
        .route("/api/trades/{id}", get(trade))
        .route("/api/signals", get(signals))
        .route("/api/stats", get(stats))
        .route("/api/overview", get(overview))
}

/// `GET /api/trades`: a page of trades, newest first, with the same filters as `/trades`.
async fn trades(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(params): Query<HistoryParams>,
) -> Result<Json<TradePage>, ApiError> {
    let size = params.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    Ok(Json(trade_page(state.store.as_ref(), &params, user.id(), size).await?))
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

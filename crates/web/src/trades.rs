//! `/trades`: the signed-in user's trade history with filters and keyset pages, a close-at-market button on
//! open trades, and `/trades.csv`, the same filters exported as a streamed CSV.

use crate::WebState;
use crate::error::AppError;
use crate::layout::Layout;
use crate::session::CurrentUser;
use crate::views::{HistoryParams, PAGE_SIZE, TradeRow, trade_page};
use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::{InstrumentRegistry, Trade, TradeId};
use futures::StreamExt as _;
use serde::Deserialize;
use store::actions::{self, ActionError};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/trades", get(history))
        .route("/trades.csv", get(export))
        .route("/trades/{id}/close", post(close))
}

#[derive(Template)]
#[template(path = "trades.html")]
struct HistoryPage {
    layout: Layout,
    rows: Vec<TradeRow>,
    filters: HistoryParams,
    statuses: Vec<(&'static str, bool)>,
    results: Vec<(&'static str, bool)>,
    filters_query: String,
    next: Option<String>,
    first_page: bool,
    pairs: Vec<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Flash {
    opened: Option<i64>,
    closed: Option<i64>,
}

async fn history(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(params): Query<HistoryParams>,
    Query(flash): Query<Flash>,
) -> Result<Response, AppError> {
    let page = trade_page(state.store.as_ref(), &params, user.id(), PAGE_SIZE).await?;
    let message = match (flash.opened, flash.closed) {
        (Some(id), _) => Some(format!("Trade #{id} is open.")),
        (_, Some(id)) => Some(format!("Trade #{id} was closed at market.")),
        _ => None,
    };
    let html = HistoryPage {
        layout: Layout::for_user(&user, "Trades", "/trades"),
        rows: page.trades.iter().map(|t| TradeRow::of(t, &user.user.account_currency)).collect(),
        filters_query: params.filters_query(),
        first_page: params.after.as_deref().is_none_or(str::is_empty),
        next: page.next,
        statuses: choices(&["open", "closed", "cancelled"], params.status.as_deref()),
        results: choices(&["win", "loss", "breakeven"], params.result.as_deref()),
        filters: params,
        pairs: InstrumentRegistry::global().all().iter().map(|i| i.symbol.as_str().to_string()).collect(),
        message,
    }
    .render()?;
    Ok(Html(html).into_response())
}

fn choices(values: &[&'static str], chosen: Option<&str>) -> Vec<(&'static str, bool)> {
    values.iter().map(|v| (*v, chosen == Some(*v))).collect()
}

/// The CSV's columns, in order.
pub const CSV_HEADER: [&str; 17] = [
    "id",
    "symbol",
    "side",
    "status",
    "result",
    "lots",
    "entry",
    "stop_loss",
    "take_profit",
    "exit_price",
    "opened_at",
    "closed_at",
    "close_reason",
    "pips",
    "profit",
    "notes",
    "signal_id",
];

fn csv_record(trade: &Trade) -> [String; 17] {
    let opt = |v: Option<String>| v.unwrap_or_default();
    [
        trade.id.to_string(),
        trade.symbol.to_string(),
        trade.side.as_str().into(),
        trade.status.as_str().into(),
        opt(trade.result.map(|r| r.as_str().into())),
        trade.lots.to_string(),
        trade.entry.to_string(),
        opt(trade.stop_loss.map(|p| p.to_string())),
        opt(trade.take_profit.map(|p| p.to_string())),
        opt(trade.exit_price.map(|p| p.to_string())),
        trade.opened_at.to_rfc3339(),
        opt(trade.closed_at.map(|t| t.to_rfc3339())),
        opt(trade.close_reason.map(|r| r.as_str().into())),
        opt(trade.pips.map(|p| p.normalize().to_string())),
        opt(trade.profit.map(|p| p.to_string())),
        opt(trade.notes.clone()),
        opt(trade.signal_id.map(|s| s.to_string())),
    ]
}

/// Rows are sent in chunks of this many (about 100 KB).
const CSV_ROWS_PER_CHUNK: usize = 512;
const CSV_CHUNK_BYTES: usize = 128 * 1024;
/// Chunks queued between the database reader and the socket: the bound that keeps memory flat.
const CSV_CHUNKS_IN_FLIGHT: usize = 4;

/// `GET /trades.csv`: every trade matching the filters (the cursor and page size are ignored), streamed
/// from the database to the socket a chunk at a time.
async fn export(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(params): Query<HistoryParams>,
) -> Result<Response, AppError> {
    let mut query = params.query(user.id(), None)?;
    query.after = None;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CSV_CHUNKS_IN_FLIGHT);
    let store = state.store.clone();
    tokio::spawn(async move {
        let new_writer =
            || csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(CSV_CHUNK_BYTES));
        let failed = |what: String| Err(std::io::Error::other(what));
        let mut writer = new_writer();
        let mut rows_in_chunk = 0usize;
        let mut result = writer.write_record(CSV_HEADER).map_err(|e| e.to_string());
        let mut rows = store.stream_trades(&query);
        while result.is_ok() {
            let Some(row) = rows.next().await else { break };
            result = row
                .map_err(|e| e.to_string())
                .and_then(|trade| writer.write_record(csv_record(&trade)).map_err(|e| e.to_string()));
            rows_in_chunk += 1;
            if result.is_ok() && rows_in_chunk >= CSV_ROWS_PER_CHUNK {
                rows_in_chunk = 0;
                match std::mem::replace(&mut writer, new_writer()).into_inner() {
                    Ok(bytes) => {
                        if sender.send(Ok(Bytes::from(bytes))).await.is_err() {
                            return; // The client went away.
                        }
                    }
                    Err(error) => result = Err(error.to_string()),
                }
            }
        }
        let last = result.and_then(|()| writer.into_inner().map_err(|e| e.to_string()));
        let _ = match last {
            Ok(bytes) => sender.send(Ok(Bytes::from(bytes))).await,
            Err(error) => {
                tracing::error!(%error, "the CSV export failed part-way; the download is cut short");
                sender.send(failed(error)).await
            }
        };
    });
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"signalpost-trades.csv\""),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Why a close or an open from the dashboard did nothing, as a page. Someone else's trade or signal is
/// "not found": its existence is none of the caller's business.
pub(crate) fn refused(error: ActionError) -> AppError {
    match error {
        ActionError::Store(error) => AppError::Store(error),
        ActionError::NotYourTrade(_)
        | ActionError::NoSuchTrade(_)
        | ActionError::NotYourNotification
        | ActionError::NoSuchNotification(_) => AppError::NotFound,
        other => AppError::BadRequest(capitalise(&format!("{other}."))),
    }
}

pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `POST /trades/{id}/close`: closes the user's open trade at the latest price.
async fn close(State(state): State<WebState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, AppError> {
    let closed = actions::close_at_market(state.store.as_ref(), &user.user, TradeId(id)).await.map_err(refused)?;
    state.announce(bus::Event::TradeClosed { trade: closed.clone() }).await;
    Ok(Redirect::to(&format!("/trades?closed={}", closed.id)).into_response())
}

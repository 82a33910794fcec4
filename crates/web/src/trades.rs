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
use domain::{InstrumentRegistry, TradeId};
use futures::StreamExt as _;
use serde::Deserialize;
use store::TradeText;
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

/// Appends one CSV field as the `csv` crate writes it (quoted only when it holds a comma, a quote or a line
/// break, quotes doubled), so the export reads the same as before it wrote rows by hand.
fn push_field(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Appends a plain decimal text as `Decimal::normalize` would print it: no trailing fractional zeros and
/// no minus on zero. Prices, lots and pips are shown normalised; the store hands out checked plain decimals.
fn push_normalized(out: &mut Vec<u8>, text: &str) {
    let trimmed = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { text };
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if digits.bytes().all(|b| b == b'0') { out.push(b'0') } else { out.extend_from_slice(trimmed.as_bytes()) }
}

fn push_time(out: &mut Vec<u8>, at: chrono::DateTime<chrono::Utc>) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", at.to_rfc3339());
}

/// Appends one trade as a CSV record in [`CSV_HEADER`]'s order, into the chunk being filled: no per-row
/// strings, and decimals copied from their stored text rather than parsed and printed again.
fn push_record(out: &mut Vec<u8>, t: &TradeText<'_>) {
    use std::io::Write as _;
    let _ = write!(out, "{},", t.id);
    push_field(out, t.symbol);
    out.push(b',');
    push_field(out, t.side);
    out.push(b',');
    push_field(out, t.status);
    out.push(b',');
    push_field(out, t.result.unwrap_or_default());
    out.push(b',');
    push_normalized(out, t.lots);
    out.push(b',');
    push_normalized(out, t.entry);
    for price in [t.stop_loss, t.take_profit, t.exit_price] {
        out.push(b',');
        if let Some(price) = price {
            push_normalized(out, price);
        }
    }
    out.push(b',');
    push_time(out, t.opened_at);
    out.push(b',');
    if let Some(at) = t.closed_at {
        push_time(out, at);
    }
    out.push(b',');
    push_field(out, t.close_reason.unwrap_or_default());
    out.push(b',');
    if let Some(pips) = t.pips {
        push_normalized(out, pips);
    }
    out.push(b',');
    out.extend_from_slice(t.profit.unwrap_or_default().as_bytes());
    out.push(b',');
    push_field(out, t.notes.unwrap_or_default());
    out.push(b',');
    if let Some(signal) = t.signal_id {
        let _ = write!(out, "{signal}");
    }
    out.push(b'\n');
}

/// Rows read from the database per batch.
const CSV_ROWS_PER_BATCH: usize = 128;
/// A chunk is sent once it holds this much (about 100 KB).
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
        // Room for one more batch past the threshold, so a chunk is not reallocated as it fills.
        let new_chunk = || Vec::with_capacity(CSV_CHUNK_BYTES + 64 * 1024);
        let mut chunk = new_chunk();
        chunk.extend_from_slice(CSV_HEADER.join(",").as_bytes());
        chunk.push(b'\n');
        let mut batches = store.stream_trade_texts(&query, CSV_ROWS_PER_BATCH);
        while let Some(batch) = batches.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "the CSV export failed part-way; the download is cut short");
                    let _ = sender.send(Err(std::io::Error::other(error.to_string()))).await;
                    return;
                }
            };
            for trade in batch.rows() {
                push_record(&mut chunk, &trade);
            }
            if chunk.len() >= CSV_CHUNK_BYTES {
                let full = std::mem::replace(&mut chunk, new_chunk());
                if sender.send(Ok(Bytes::from(full))).await.is_err() {
                    return; // The client went away.
                }
            }
        }
        let _ = sender.send(Ok(Bytes::from(chunk))).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use domain::{CloseReason, Closing, Lots, NewTrade, Price, Side, Trade};
    use rust_decimal::Decimal;

    /// The export as it was written before rows were written by hand: through the `csv` crate, from
    /// decoded trades. The oracle for the test below.
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

    fn trade(i: i64, user: domain::UserId, at: DateTime<Utc>) -> Trade {
        let price = |t: &str| Price::parse(t).unwrap();
        let mut new = NewTrade::new(
            user,
            ["EURUSD", "USDJPY", "XAUUSD"][i as usize % 3],
            if i % 2 == 0 { Side::Long } else { Side::Short },
            price(["1.08500", "150.125", "2310.5"][i as usize % 3]),
            Lots::parse(["0.10", "1", "0.25"][i as usize % 3]).unwrap(),
            None,
            None,
            at,
        )
        .unwrap();
        new.notes =
            [None, Some("plain".into()), Some("has \"quotes\", a comma\nand a line".into())][i as usize % 3].clone();
        let mut trade = Trade::from_new(domain::TradeId(0), new);
        if i % 4 != 0 {
            let closing = Closing {
                exit_price: price(["1.09", "149.5", "2400"][i as usize % 3]),
                reason: CloseReason::ManualClose,
                at: at + Duration::milliseconds(1500 * i),
                result: [domain::TradeResult::Win, domain::TradeResult::Loss, domain::TradeResult::Breakeven]
                    [i as usize % 3],
                pips: [Some(Decimal::new(-2050, 2)), Some(Decimal::new(0, 1)), None][i as usize % 3],
                profit: [Some(Decimal::new(12345, 3)), None, Some(Decimal::new(-100, 2))][i as usize % 3],
            };
            trade.close(&closing).unwrap();
        }
        trade
    }

    #[tokio::test]
    async fn the_hand_written_export_matches_the_csv_crate_over_decoded_trades() {
        let store = store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let user = store
            .create_user(&store::NewUser { discord_user_id: None, display_name: "csv".into(), role: store::Role::User })
            .await
            .unwrap();
        let start: DateTime<Utc> = "2026-03-01T09:30:00.250Z".parse().unwrap();
        let trades: Vec<Trade> = (0..40).map(|i| trade(i, user.id, start + Duration::seconds(7 * i))).collect();
        store.import_trades(&trades).await.unwrap();

        let query = store::TradeQuery::of(user.id);
        let mut expected = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        let mut decoded = store.stream_trades(&query);
        while let Some(trade) = decoded.next().await {
            expected.write_record(csv_record(&trade.unwrap())).unwrap();
        }
        let mut written = Vec::new();
        let mut batches = store.stream_trade_texts(&query, 7);
        while let Some(batch) = batches.next().await {
            for trade in batch.unwrap().rows() {
                push_record(&mut written, &trade);
            }
        }
        let expected = String::from_utf8(expected.into_inner().unwrap()).unwrap();
        assert_eq!(expected.matches(",closed,").count(), 30, "a mix of open and closed trades");
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }

    #[test]
    fn fields_are_quoted_only_when_needed_and_decimals_print_normalised() {
        let mut out = Vec::new();
        for text in ["plain", "a,b", "say \"hi\"", "two\nlines", ""] {
            push_field(&mut out, text);
            out.push(b'|');
        }
        assert_eq!(String::from_utf8(out).unwrap(), "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"||");
        for (text, shown) in [("1.08000", "1.08"), ("25", "25"), ("-20.50", "-20.5"), ("10.0", "10"), ("-0.00", "0")] {
            let mut out = Vec::new();
            push_normalized(&mut out, text);
            let expected = rust_decimal::Decimal::from_str_exact(text).unwrap().normalize().to_string();
            assert_eq!((String::from_utf8(out).unwrap(), shown), (expected, shown), "{text}");
        }
    }
}

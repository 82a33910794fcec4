//! `/`: the signed-in user's open trades with their P&L at the latest price (kept current by `/live`, see
//! [`crate::live`]), today's signals, and an account summary.

use crate::WebState;
use crate::error::AppError;
use crate::inbox::InboxItem;
use crate::layout::Layout;
use crate::session::CurrentUser;
use crate::views::{money, or_dash, percent, when};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use chrono::{DateTime, Utc};
use domain::{Price, Trade, TradeId, TradeResult, TradeStatus};
use futures::StreamExt as _;
use rust_decimal::Decimal;
use serde::Serialize;
use store::TradeQuery;

pub fn routes() -> Router<WebState> {
    Router::new().route("/", get(page))
}

/// Open trades shown (and priced every few seconds) on the overview; the history lists them all.
pub const OPEN_SHOWN: u32 = 100;
/// Today's signals shown.
const TODAY_SHOWN: u32 = 20;

/// An open trade at the latest price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveTrade {
    pub id: TradeId,
    pub symbol: String,
    pub side: &'static str,
    pub lots: String,
    pub entry: Price,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub opened_at: DateTime<Utc>,
    /// The price it would close at now; `null` before any price was seen.
    pub price: Option<Price>,
    pub price_at: Option<DateTime<Utc>>,
    pub pips: Option<Decimal>,
    pub percent: Option<Decimal>,
    /// In the account currency; `null` without a price or a conversion rate.
    pub profit: Option<Decimal>,
    /// The same figures as text, as the page shows them.
    pub profit_text: String,
    pub price_text: String,
}

/// What `/live` pushes and `/api/overview` returns as `open`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSnapshot {
    pub currency: String,
    pub open_count: usize,
    pub trades: Vec<LiveTrade>,
    /// Sum of the priced open trades' P&L.
    pub unrealised: Decimal,
    pub unrealised_text: String,
}

/// The user's open trades priced at the latest ticks.
pub async fn live_snapshot(state: &WebState, user: &CurrentUser) -> Result<LiveSnapshot, AppError> {
    let currency = user.user.account_currency.clone();
    let query = TradeQuery { status: Some(TradeStatus::Open), limit: Some(OPEN_SHOWN), ..TradeQuery::of(user.id()) };
    let open = state.store.trades_page(&query).await?;
    let mut trades = Vec::with_capacity(open.len());
    let mut unrealised = Decimal::ZERO;
    for trade in &open {
        let live = store::actions::live_outcome(state.store.as_ref(), trade, &currency).await?;
        let (price, price_at, outcome) = match live {
            Some((price, at, outcome)) => (Some(price), Some(at), Some(outcome)),
            None => (None, None, None),
        };
        let profit = outcome.as_ref().and_then(|o| o.profit);
        unrealised += profit.unwrap_or_default();
        trades.push(LiveTrade {
            id: trade.id,
            symbol: trade.symbol.as_str().to_string(),
            side: trade.side.as_str(),
            lots: trade.lots.to_string(),
            entry: trade.entry,
            stop_loss: trade.stop_loss,
            take_profit: trade.take_profit,
            opened_at: trade.opened_at,
            price,
            price_at,
            pips: outcome.as_ref().and_then(|o| o.pips),
            percent: outcome.as_ref().map(|o| o.percent),
            profit,
            profit_text: match (&outcome, profit) {
                (_, Some(p)) => money(p, &currency),
                (Some(_), None) => format!("no {currency} rate yet"),
                (None, _) => "no price yet".into(),
            },
            price_text: or_dash(price),
        });
    }
    Ok(LiveSnapshot {
        open_count: trades.len(),
        unrealised_text: money(unrealised, &currency),
        currency,
        trades,
        unrealised,
    })
}

/// The account summary: counts and sums over every closed trade, read as a stream (nothing is kept).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSummary {
    pub open_count: usize,
    pub closed_count: u64,
    /// Realised P&L of trades closed since 00:00 UTC today.
    pub today_realised: Decimal,
    pub all_time: Decimal,
    /// Percent of closed trades that won; `null` before the first close.
    pub win_rate: Option<Decimal>,
}

pub async fn account_summary(
    state: &WebState,
    user: &CurrentUser,
    open_count: usize,
) -> Result<AccountSummary, AppError> {
    let today = today_start(state.clock.now());
    let query = TradeQuery { status: Some(TradeStatus::Closed), ..TradeQuery::of(user.id()) };
    let mut closed = state.store.stream_trades(&query);
    let (mut count, mut wins, mut today_realised, mut all_time) = (0u64, 0u64, Decimal::ZERO, Decimal::ZERO);
    while let Some(trade) = closed.next().await {
        let trade: Trade = trade?;
        count += 1;
        wins += u64::from(trade.result == Some(TradeResult::Win));
        let profit = trade.profit.unwrap_or_default();
        all_time += profit;
        if trade.closed_at.is_some_and(|c| c >= today) {
            today_realised += profit;
        }
    }
    Ok(AccountSummary {
        open_count,
        closed_count: count,
        today_realised,
        all_time,
        win_rate: (count > 0).then(|| Decimal::from(wins * 100) / Decimal::from(count)),
    })
}

fn today_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_hms_opt(0, 0, 0).map_or(now, |d| d.and_utc())
}

/// The user's notifications created today (UTC), newest first.
pub async fn todays_signals(state: &WebState, user: &CurrentUser) -> Result<Vec<InboxItem>, AppError> {
    let today = today_start(state.clock.now());
    let notifications = state.store.notifications_for_user(user.id(), TODAY_SHOWN, 0).await?;
    let mut items = Vec::new();
    for n in notifications.iter().filter(|n| n.created_at >= today) {
        if let Some(signal) = state.store.get_signal(n.signal_id).await? {
            items.push(InboxItem::of(n, &signal));
        }
    }
    Ok(items)
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    name: String,
    discord_linked: bool,
    live: LiveSnapshot,
    signals: Vec<InboxItem>,
    open_count: usize,
    today_realised: String,
    all_time: String,
    win_rate: String,
    closed_count: u64,
}

async fn page(State(state): State<WebState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let live = live_snapshot(&state, &user).await?;
    let summary = account_summary(&state, &user, live.open_count).await?;
    let currency = user.user.account_currency.clone();
    let html = OverviewPage {
        layout: Layout::for_user(&user, "Overview", "/"),
        name: user.user.display_name.clone(),
        discord_linked: user.user.discord_user_id.is_some(),
        signals: todays_signals(&state, &user).await?,
        open_count: summary.open_count,
        today_realised: money(summary.today_realised, &currency),
        all_time: money(summary.all_time, &currency),
        win_rate: or_dash(summary.win_rate.map(percent)),
        closed_count: summary.closed_count,
        live,
    }
    .render()?;
    Ok(Html(html))
}

/// For the template: when a trade opened.
pub fn opened_text(trade: &LiveTrade) -> String {
    when(trade.opened_at)
}

//! What the data pages and the JSON API share: the trade-history filters as typed in a query string, and
//! trades and notifications turned into the strings and JSON the pages and the API show.

use crate::error::AppError;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{Symbol, Trade, TradeId, TradeResult, TradeStatus, UserId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use store::{TradeCursor, TradeQuery};

/// Rows per history page and per API page unless the API caller asks for fewer.
pub const PAGE_SIZE: u32 = 50;
/// The most an API caller may ask for at once.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The history filters as they arrive in a query string (every value optional, empty means "any").
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryParams {
    pub status: Option<String>,
    pub result: Option<String>,
    pub pair: Option<String>,
    /// First day (UTC) a trade may have opened on, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day (UTC), inclusive.
    pub to: Option<String>,
    /// The cursor of the page before: `<opened_at unix microseconds>_<trade id>`.
    pub after: Option<String>,
    /// API only: rows per page.
    pub limit: Option<u32>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn day(value: &str, what: &str) -> Result<DateTime<Utc>, AppError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| AppError::BadRequest(format!("The {what} date must look like 2026-03-31, not {value:?}.")))
}

/// Encodes a page's last row as the next page's `after`.
pub fn cursor_text(trade: &Trade) -> String {
    format!("{}_{}", trade.opened_at.timestamp_micros(), trade.id)
}

fn parse_cursor(text: &str) -> Result<TradeCursor, AppError> {
    let bad = || AppError::BadRequest("That page link is damaged; start again from the first page.".into());
    let (micros, id) = text.split_once('_').ok_or_else(bad)?;
    let opened_at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok(TradeCursor { opened_at, id: TradeId(id.parse().map_err(|_| bad())?) })
}

impl HistoryParams {
    /// The store query for `user`, refusing values that mean nothing (with a message saying which).
    pub fn query(&self, user: UserId, limit: Option<u32>) -> Result<TradeQuery, AppError> {
        let mut query = TradeQuery::of(user);
        if let Some(status) = given(&self.status) {
            query.status = Some(TradeStatus::parse(status).ok_or_else(|| {
                AppError::BadRequest(format!("Status is open, closed or cancelled, not {status:?}."))
            })?);
        }
        if let Some(result) = given(&self.result) {
            query.result =
                Some(TradeResult::parse(result).ok_or_else(|| {
                    AppError::BadRequest(format!("Result is win, loss or breakeven, not {result:?}."))
                })?);
        }
        if let Some(pair) = given(&self.pair) {
            query.symbol = Some(Symbol::normalize(pair));
        }
        if let Some(from) = given(&self.from) {
            query.opened_from = Some(day(from, "from")?);
        }
        if let Some(to) = given(&self.to) {
            query.opened_until = Some(day(to, "to")? + chrono::Duration::days(1));
        }
        if let (Some(from), Some(until)) = (query.opened_from, query.opened_until)
            && from >= until
        {
            return Err(AppError::BadRequest("The from date must not be after the to date.".into()));
        }
        if let Some(after) = given(&self.after) {
            query.after = Some(parse_cursor(after)?);
        }
        query.limit = limit;
        Ok(query)
    }

    /// The filters (without the cursor) as a query string, for page links and the CSV link.
    pub fn filters_query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("status", given(&self.status)),
            ("result", given(&self.result)),
            ("pair", given(&self.pair)),
            ("from", given(&self.from)),
            ("to", given(&self.to)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// Text for an optional value: an em dash when there is none.
pub fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.to_string())
}

pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Money with its sign and currency, to the cent.
pub fn money(amount: Decimal, currency: &str) -> String {
    let rounded = amount.round_dp(2);
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "−"
    } else if rounded.is_zero() {
        ""
    } else {
        "+"
    };
    format!("{sign}{:.2} {currency}", rounded.abs())
}

/// A percentage to one decimal.
pub fn percent(value: Decimal) -> String {
    format!("{:.1}%", value.round_dp(1))
}

/// A duration in words: "3d 4h", "2h 5m", "45m", "30s".
pub fn duration(seconds: i64) -> String {
    let (d, h, m) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A trade as a history row shows it.
#[derive(Debug, Clone)]
pub struct TradeRow {
    pub id: i64,
    pub symbol: String,
    pub side: &'static str,
    pub status: &'static str,
    pub open: bool,
    pub result: String,
    pub lots: String,
    pub entry: String,
    pub exit: String,
    pub stop_loss: String,
    pub take_profit: String,
    pub opened: String,
    pub closed: String,
    pub pips: String,
    pub profit: String,
    pub notes: String,
}

impl TradeRow {
    pub fn of(trade: &Trade, currency: &str) -> TradeRow {
        TradeRow {
            id: trade.id.0,
            symbol: trade.symbol.as_str().to_string(),
            side: trade.side.as_str(),
            status: trade.status.as_str(),
            open: trade.status == TradeStatus::Open,
            result: or_dash(trade.result),
            lots: trade.lots.to_string(),
            entry: trade.entry.to_string(),
            exit: or_dash(trade.exit_price),
            stop_loss: or_dash(trade.stop_loss),
            take_profit: or_dash(trade.take_profit),
            opened: when(trade.opened_at),
            closed: trade.closed_at.map_or_else(|| "—".to_string(), when),
            pips: or_dash(trade.pips.map(|p| p.normalize())),
            profit: trade.profit.map_or_else(|| "—".to_string(), |p| money(p, currency)),
            notes: trade.notes.clone().unwrap_or_default(),
        }
    }
}

/// A page of trades in the API: the rows and the cursor of the next page, if there is one.
#[derive(Debug, Serialize)]
pub struct TradePage {
    pub trades: Vec<Trade>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// Reads one page (asking for one row more than it shows, to know whether another page follows).
pub async fn trade_page(
    store: &dyn store::Store,
    params: &HistoryParams,
    user: UserId,
    size: u32,
) -> Result<TradePage, AppError> {
    let query = params.query(user, Some(size + 1))?;
    let mut trades = store.trades_page(&query).await?;
    let next = if trades.len() > size as usize {
        trades.truncate(size as usize);
        trades.last().map(cursor_text)
    } else {
        None
    };
    Ok(TradePage { trades, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_a_query_and_bad_values_are_refused() {
        let params = HistoryParams {
            status: Some("closed".into()),
            result: Some("win".into()),
            pair: Some("eur/usd".into()),
            from: Some("2026-03-01".into()),
            to: Some("2026-03-31".into()),
            after: Some("1772323200000000_42".into()),
            limit: None,
        };
        let query = params.query(UserId(7), Some(51)).unwrap();
        assert_eq!(query.status, Some(TradeStatus::Closed));
        assert_eq!(query.result, Some(TradeResult::Win));
        assert_eq!(query.symbol, Some(Symbol::normalize("EURUSD")));
        assert_eq!(query.opened_until.unwrap().to_rfc3339(), "2026-04-01T00:00:00+00:00");
        assert_eq!(query.after.unwrap().id, TradeId(42));
        assert_eq!(params.filters_query(), "status=closed&result=win&pair=eur%2Fusd&from=2026-03-01&to=2026-03-31");
        for bad in [
            HistoryParams { status: Some("done".into()), ..HistoryParams::default() },
            HistoryParams { from: Some("31/03/2026".into()), ..HistoryParams::default() },
            HistoryParams { after: Some("x".into()), ..HistoryParams::default() },
            HistoryParams {
                from: Some("2026-04-02".into()),
                to: Some("2026-04-01".into()),
                ..HistoryParams::default()
            },
        ] {
            assert!(matches!(bad.query(UserId(1), None), Err(AppError::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(money(Decimal::new(-12346, 3), "USD"), "−12.35 USD");
        assert_eq!(money(Decimal::new(5, 0), "EUR"), "+5.00 EUR");
        assert_eq!(duration(93_600), "1d 2h");
        assert_eq!(duration(3_900), "1h 5m");
    }
}

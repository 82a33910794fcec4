//! Twelve Data's wire formats as its public API documentation describes them: the interval names, the
//! `BASE/QUOTE` symbol spelling, the `time_series` answer `{"meta": …, "values": [{"datetime", "open", "high",
//! "low", "close", "volume"?}], "status": "ok"}` and the error body `{"code", "message", "status": "error"}`
//! that Twelve Data sends with HTTP 200 as often as with the matching status.
//!
//! Parsing is strict and returns a reason instead of guessing: a row that does not fit comes back as an error
//! in its place, so the feed decides whether to retry the answer or skip the row.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::{AssetClass, Candle, InstrumentRegistry, Symbol, Timeframe};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// Twelve Data's name for a timeframe. It also has 45min, 2h, 1week and 1month, which Signalpost does not use.
pub(crate) fn interval(timeframe: Timeframe) -> &'static str {
    match timeframe {
        Timeframe::M1 => "1min",
        Timeframe::M5 => "5min",
        Timeframe::M15 => "15min",
        Timeframe::M30 => "30min",
        Timeframe::H1 => "1h",
        Timeframe::H4 => "4h",
        Timeframe::D1 => "1day",
    }
}

/// How Twelve Data spells one of our instruments: `EURUSD` → `EUR/USD`, `XAUUSD` → `XAU/USD`, `AAPL` → `AAPL`.
/// Crypto is refused (the Binance feed serves it) and so is anything the registry does not know, because
/// guessing where the slash goes would poll the wrong market.
pub fn vendor_symbol(symbol: &Symbol) -> Result<String, String> {
    let instrument = InstrumentRegistry::global()
        .get(symbol.as_str())
        .map_err(|e| format!("cannot serve {symbol}: {e}; the Twelve Data feed serves the registry's instruments"))?;
    match instrument.asset_class {
        AssetClass::Forex | AssetClass::Metal => Ok(format!("{}/{}", instrument.base, instrument.quote)),
        AssetClass::Stock => Ok(instrument.symbol.as_str().to_string()),
        AssetClass::Crypto => Err(format!(
            "cannot serve {symbol}: it is a crypto instrument and the Twelve Data feed serves forex, metals and \
             stocks (use the Binance feed for crypto)"
        )),
    }
}

/// Twelve Data's datetime in the answer's time zone (we always ask for UTC): `2024-01-02 10:00:00` intraday,
/// `2024-01-02` for daily bars.
pub(crate) fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(format!("datetime {text:?} is neither YYYY-MM-DD HH:MM:SS nor YYYY-MM-DD"))
}

/// The `start_date`/`end_date` query format.
pub(crate) fn format_datetime(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// What a `time_series` request answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Rows in the order sent; a row that does not parse is an error in its place.
    Values(Vec<Result<Candle, String>>),
    /// `{"code": 429, "message": …, "status": "error"}`.
    Error { code: i64, message: String },
}

fn decimal(row: &Value, field: &str) -> Result<Decimal, String> {
    match &row[field] {
        Value::String(s) => Decimal::from_str(s).map_err(|_| format!("{field} {s:?} is not a number")),
        Value::Null => Err(format!("{field} is missing")),
        other => Err(format!("{field} is {other}, not a decimal string")),
    }
}

fn parse_row(row: &Value) -> Result<Candle, String> {
    let datetime = row["datetime"].as_str().ok_or_else(|| format!("row {row} has no datetime string"))?;
    let candle = Candle {
        time: parse_datetime(datetime)?,
        open: decimal(row, "open")?,
        high: decimal(row, "high")?,
        low: decimal(row, "low")?,
        close: decimal(row, "close")?,
        // Forex and metals carry no volume; stocks do.
        volume: if row.get("volume").is_some() { decimal(row, "volume")? } else { Decimal::ZERO },
    };
    candle.validate().map_err(|e| format!("bad candle at {datetime}: {e}"))?;
    Ok(candle)
}

/// A `time_series` answer, either shape. `Err` means the body is neither (not JSON, no `values`).
pub(crate) fn parse_time_series(body: &str) -> Result<Answer, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if value["status"] == "error" || (value.get("code").is_some() && value.get("values").is_none()) {
        let code = value["code"].as_i64().ok_or_else(|| format!("error answer without a numeric code: {value}"))?;
        let message = value["message"].as_str().unwrap_or("").to_string();
        return Ok(Answer::Error { code, message });
    }
    if let Some(status) = value["status"].as_str()
        && status != "ok"
    {
        return Err(format!("answer status is {status:?}"));
    }
    let rows = value["values"].as_array().ok_or_else(|| "answer has no values array".to_string())?;
    Ok(Answer::Values(rows.iter().map(parse_row).collect()))
}

/// An error body's text for logs, or the start of a body that is not one.
pub(crate) fn error_text(body: &str) -> String {
    match parse_time_series(body) {
        Ok(Answer::Error { code, message }) => format!("{code} {message}"),
        _ => body.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn symbols_map_to_twelve_data_spelling_and_crypto_is_refused() {
        let s = |t: &str| vendor_symbol(&Symbol::normalize(t));
        assert_eq!(s("EURUSD").unwrap(), "EUR/USD");
        assert_eq!(s("XAUUSD").unwrap(), "XAU/USD");
        assert_eq!(s("USDJPY").unwrap(), "USD/JPY");
        assert_eq!(s("AAPL").unwrap(), "AAPL");
        assert!(s("BTCUSDT").unwrap_err().contains("crypto"));
        assert!(s("EURXYZ").unwrap_err().contains("EURXYZ"));
    }

    #[test]
    fn values_parse_in_both_datetime_shapes_with_and_without_volume() {
        let body = r#"{"meta":{"symbol":"EUR/USD","interval":"1h","currency_base":"Euro","currency_quote":"US Dollar","type":"Physical Currency"},"values":[{"datetime":"2024-01-02 10:00:00","open":"1.10010","high":"1.10050","low":"1.09980","close":"1.10020"},{"datetime":"2024-01-02","open":"185.1","high":"186","low":"184","close":"185.5","volume":"123"}],"status":"ok"}"#;
        let Answer::Values(rows) = parse_time_series(body).unwrap() else { panic!("values expected") };
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.time, Utc.with_ymd_and_hms(2024, 1, 2, 10, 0, 0).unwrap());
        assert_eq!((first.close, first.volume), (Decimal::new(110020, 5), Decimal::ZERO));
        let second = rows[1].as_ref().unwrap();
        assert_eq!(
            (second.time, second.volume),
            (Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap(), Decimal::from(123))
        );
    }

    #[test]
    fn bad_rows_are_errors_in_place_and_error_bodies_are_recognised() {
        let body = r#"{"values":[{"datetime":"yesterday","open":"1","high":"1","low":"1","close":"1"},{"datetime":"2024-01-02 10:00:00","open":"1","high":"0.5","low":"1","close":"1"}],"status":"ok"}"#;
        let Answer::Values(rows) = parse_time_series(body).unwrap() else { panic!("values expected") };
        assert!(rows[0].as_ref().unwrap_err().contains("yesterday"));
        assert!(rows[1].is_err());
        let limited =
            r#"{"code":429,"message":"You have run out of API credits for the current minute.","status":"error"}"#;
        assert_eq!(
            parse_time_series(limited).unwrap(),
            Answer::Error { code: 429, message: "You have run out of API credits for the current minute.".into() }
        );
        assert!(error_text(limited).starts_with("429 You have run out"));
        assert!(parse_time_series("<html>").is_err());
        assert!(parse_time_series(r#"{"meta":{}}"#).is_err());
    }
}

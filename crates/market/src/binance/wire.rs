//! Binance's market-data wire formats: the kline rows of `GET /api/v3/klines` (and `/fapi/v1/klines`), the
//! combined-stream envelope `{"stream": …, "data": …}` with kline, trade, aggTrade and bookTicker payloads, the
//! `exchangeInfo` symbol list and the `{"code", "msg"}` error body.
//!
//! Parsing is strict and returns a reason instead of panicking or guessing: a frame that does not fit is
//! logged and skipped by the feed, never turned into a candle with a made-up field.

use chrono::{DateTime, Utc};
use domain::{Candle, Price, Timeframe};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// Binance's interval names happen to be ours (`1m 5m 15m 30m 1h 4h 1d`); the match keeps that a checked fact
/// should either side grow an interval the other lacks.
pub(crate) fn interval(timeframe: Timeframe) -> &'static str {
    match timeframe {
        Timeframe::M1 => "1m",
        Timeframe::M5 => "5m",
        Timeframe::M15 => "15m",
        Timeframe::M30 => "30m",
        Timeframe::H1 => "1h",
        Timeframe::H4 => "4h",
        Timeframe::D1 => "1d",
    }
}

/// One kline, from REST or a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kline {
    pub candle: Candle,
    /// Binance's close time: the last millisecond of the bar.
    pub close_ms: i64,
}

/// What a combined-stream frame carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEvent {
    Kline {
        symbol: String,
        interval: String,
        kline: Kline,
        closed: bool,
    },
    /// A trade or aggregated trade: one last price.
    Trade {
        symbol: String,
        time: DateTime<Utc>,
        price: Price,
    },
    /// Best bid and ask; spot's bookTicker carries no time.
    Book {
        symbol: String,
        time: Option<DateTime<Utc>>,
        bid: Price,
        ask: Price,
    },
    /// A payload we do not use (a subscription reply, another event type).
    Other,
}

fn decimal(value: &Value, field: &str) -> Result<Decimal, String> {
    match value {
        Value::String(s) => Decimal::from_str(s).map_err(|_| format!("{field} {s:?} is not a number")),
        other => Err(format!("{field} is {other}, not a decimal string")),
    }
}

fn millis(value: &Value, field: &str) -> Result<i64, String> {
    value.as_i64().ok_or_else(|| format!("{field} is {value}, not milliseconds"))
}

fn time(ms: i64, field: &str) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("{field} {ms} is out of range"))
}

fn price(value: &Value, field: &str) -> Result<Price, String> {
    Price::new(decimal(value, field)?).map_err(|e| format!("{field}: {e}"))
}

fn checked(candle: Candle, close_ms: i64) -> Result<Kline, String> {
    candle.validate().map_err(|e| format!("bad candle: {e}"))?;
    if close_ms <= candle.time.timestamp_millis() {
        return Err(format!("close time {close_ms} is not after the open time"));
    }
    Ok(Kline { candle, close_ms })
}

/// One row of the klines REST answer: `[openTime, "open", "high", "low", "close", "volume", closeTime, …]`.
pub(crate) fn parse_rest_kline(row: &Value) -> Result<Kline, String> {
    let fields = row.as_array().ok_or_else(|| format!("kline row {row} is not an array"))?;
    if fields.len() < 7 {
        return Err(format!("kline row has {} fields, expected at least 7", fields.len()));
    }
    let open_ms = millis(&fields[0], "open time")?;
    let candle = Candle {
        time: time(open_ms, "open time")?,
        open: decimal(&fields[1], "open")?,
        high: decimal(&fields[2], "high")?,
        low: decimal(&fields[3], "low")?,
        close: decimal(&fields[4], "close")?,
        volume: decimal(&fields[5], "volume")?,
    };
    checked(candle, millis(&fields[6], "close time")?)
}

/// The klines REST answer: an array of rows. Rows that do not parse come back as errors in place, so one bad
/// row is skipped without losing the page.
pub(crate) fn parse_rest_klines(body: &str) -> Result<Vec<Result<Kline, String>>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("klines answer is not JSON: {e}"))?;
    let rows = value.as_array().ok_or_else(|| "klines answer is not an array".to_string())?;
    Ok(rows.iter().map(parse_rest_kline).collect())
}

/// A combined-stream frame.
pub(crate) fn parse_frame(text: &str) -> Result<StreamEvent, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    // `{"result": null, "id": 1}` answers a SUBSCRIBE; we subscribe through the URL, but it is harmless.
    if value.get("result").is_some() && value.get("id").is_some() {
        return Ok(StreamEvent::Other);
    }
    let data = value.get("data").ok_or_else(|| "no \"data\" in a combined-stream frame".to_string())?;
    let event = data.get("e").and_then(Value::as_str);
    let symbol =
        || data.get("s").and_then(Value::as_str).map(str::to_string).ok_or_else(|| "no symbol \"s\"".to_string());
    match event {
        Some("kline") => {
            let k = data.get("k").ok_or_else(|| "kline frame without \"k\"".to_string())?;
            let open_ms = millis(&k["t"], "k.t")?;
            let candle = Candle {
                time: time(open_ms, "k.t")?,
                open: decimal(&k["o"], "k.o")?,
                high: decimal(&k["h"], "k.h")?,
                low: decimal(&k["l"], "k.l")?,
                close: decimal(&k["c"], "k.c")?,
                volume: decimal(&k["v"], "k.v")?,
            };
            let closed = k["x"].as_bool().ok_or_else(|| format!("k.x is {}, not a boolean", k["x"]))?;
            let interval = k["i"].as_str().ok_or_else(|| "no interval k.i".to_string())?.to_string();
            Ok(StreamEvent::Kline {
                symbol: symbol()?,
                interval,
                kline: checked(candle, millis(&k["T"], "k.T")?)?,
                closed,
            })
        }
        Some("trade") | Some("aggTrade") => Ok(StreamEvent::Trade {
            symbol: symbol()?,
            time: time(millis(&data["T"], "T")?, "T")?,
            price: price(&data["p"], "p")?,
        }),
        Some("bookTicker") | None if data.get("b").is_some() && data.get("a").is_some() => {
            let time = match data.get("T").or_else(|| data.get("E")) {
                Some(ms) => Some(time(millis(ms, "T")?, "T")?),
                None => None,
            };
            Ok(StreamEvent::Book {
                symbol: symbol()?,
                time,
                bid: price(&data["b"], "b")?,
                ask: price(&data["a"], "a")?,
            })
        }
        Some(_) => Ok(StreamEvent::Other),
        None => Err("payload has no event type \"e\"".to_string()),
    }
}

/// The symbols `exchangeInfo` lists, with their status (`TRADING`, `BREAK`, …).
pub(crate) fn parse_exchange_symbols(body: &str) -> Result<Vec<(String, String)>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("exchangeInfo answer is not JSON: {e}"))?;
    let symbols = value["symbols"].as_array().ok_or_else(|| "exchangeInfo has no \"symbols\" array".to_string())?;
    Ok(symbols
        .iter()
        .filter_map(|s| {
            let name = s["symbol"].as_str()?;
            let status = s["status"].as_str().unwrap_or("");
            Some((name.to_string(), status.to_string()))
        })
        .collect())
}

/// Binance's error body `{"code": -1121, "msg": "Invalid symbol."}`, shown as `-1121 Invalid symbol.`; any
/// other body is cut short rather than echoed whole.
pub(crate) fn error_text(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(body)
        && let (Some(code), Some(msg)) = (value["code"].as_i64(), value["msg"].as_str())
    {
        return format!("{code} {msg}");
    }
    body.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOSED: &str = r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1638747660000,"s":"BTCUSDT","k":{"t":1638747660000,"T":1638747719999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0010","v":"1000","n":100,"x":true,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}}"#;

    #[test]
    fn a_recorded_closed_kline_frame_parses() {
        let StreamEvent::Kline { symbol, interval, kline, closed } = parse_frame(CLOSED).unwrap() else {
            panic!("not a kline")
        };
        assert_eq!((symbol.as_str(), interval.as_str(), closed), ("BTCUSDT", "1m", true));
        assert_eq!(kline.candle.time.timestamp_millis(), 1_638_747_660_000);
        assert_eq!(kline.candle.high, Decimal::from_str("0.0025").unwrap());
        assert_eq!(kline.close_ms, 1_638_747_719_999);
    }

    #[test]
    fn a_recorded_klines_answer_parses() {
        let body = r#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]"#;
        let rows = parse_rest_klines(body).unwrap();
        let kline = rows[0].as_ref().unwrap();
        assert_eq!(kline.candle.open, Decimal::from_str("0.01634790").unwrap());
        assert_eq!(kline.close_ms, 1_499_644_799_999);
    }

    #[test]
    fn trades_and_book_tickers_become_prices() {
        let trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":123456789,"s":"BTCUSDT","t":5933014,"p":"0.001","q":"100","T":123456785,"m":true}}"#;
        assert!(matches!(parse_frame(trade).unwrap(), StreamEvent::Trade { ref symbol, .. } if symbol == "BTCUSDT"));
        let book = r#"{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21","a":"25.36520000","A":"40.66"}}"#;
        assert!(matches!(parse_frame(book).unwrap(), StreamEvent::Book { time: None, .. }));
    }

    #[test]
    fn malformed_frames_are_errors_not_candles() {
        for bad in [
            "{not json",
            r#"{"stream":"x"}"#,
            r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT","k":{"t":1,"T":2,"i":"1m","o":"x","c":"1","h":"1","l":"1","v":"1","x":true}}}"#,
            r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT","k":{"t":1,"T":2,"i":"1m","o":"1","c":"1","h":"0.5","l":"1","v":"1","x":true}}}"#,
        ] {
            assert!(parse_frame(bad).is_err(), "{bad}");
        }
        assert_eq!(error_text(r#"{"code":-1121,"msg":"Invalid symbol."}"#), "-1121 Invalid symbol.");
    }
}

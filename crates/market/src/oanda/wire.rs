//! OANDA v20's wire formats, as its public REST documentation describes them: the candles answer of
//! `GET /v3/instruments/{instrument}/candles` (`mid`, or `bid` and `ask` price objects with string prices and an
//! integer tick volume), the account's tradeable instruments from `GET /v3/accounts/{id}/instruments`, the
//! newline-delimited `PRICE` and `HEARTBEAT` lines of the pricing stream, and the `{"errorMessage": …}` body.
//!
//! Parsing is strict and returns a reason rather than guessing: a line or candle that does not fit is logged and
//! skipped by the feed, never turned into a price with a made-up field.

use chrono::{DateTime, Utc};
use domain::{Candle, Price, Timeframe};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// OANDA's granularity names. `D` is asked for with `dailyAlignment=0&alignmentTimezone=UTC`, so its buckets
/// (and the H4 ones, which follow the daily alignment) start at 00:00 UTC like ours.
pub(crate) fn granularity(timeframe: Timeframe) -> &'static str {
    match timeframe {
        Timeframe::M1 => "M1",
        Timeframe::M5 => "M5",
        Timeframe::M15 => "M15",
        Timeframe::M30 => "M30",
        Timeframe::H1 => "H1",
        Timeframe::H4 => "H4",
        Timeframe::D1 => "D",
    }
}

/// Which price component a candle is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    Mid,
    Bid,
}

/// One candle of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireCandle {
    pub candle: Candle,
    pub complete: bool,
}

/// What a pricing-stream line carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamLine {
    Price { instrument: String, time: DateTime<Utc>, bid: Price, ask: Price },
    Heartbeat,
}

fn decimal(value: Option<&Value>, field: &str) -> Result<Decimal, String> {
    match value {
        Some(Value::String(s)) => Decimal::from_str(s).map_err(|_| format!("{field} {s:?} is not a number")),
        Some(other) => Err(format!("{field} is {other}, not a decimal string")),
        None => Err(format!("{field} is missing")),
    }
}

/// RFC 3339 with OANDA's nanoseconds (`2024-01-02T10:00:00.000000000Z`).
pub(crate) fn time(value: Option<&Value>, field: &str) -> Result<DateTime<Utc>, String> {
    let text = value.and_then(Value::as_str).ok_or_else(|| format!("{field} is missing or not a string"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{field} {text:?} is not an RFC 3339 time: {e}"))
}

fn ohlc(candle: &Value, side: &str) -> Result<[Decimal; 4], String> {
    let object = candle.get(side).ok_or_else(|| format!("candle has no {side:?} prices"))?;
    Ok([
        decimal(object.get("o"), &format!("{side}.o"))?,
        decimal(object.get("h"), &format!("{side}.h"))?,
        decimal(object.get("l"), &format!("{side}.l"))?,
        decimal(object.get("c"), &format!("{side}.c"))?,
    ])
}

/// One element of `candles`. For `Bid`, the `ask` object must be there too (we asked for `BA`): a candle
/// missing half of what was asked for is malformed, not quietly accepted.
pub(crate) fn parse_candle(value: &Value, component: Component) -> Result<WireCandle, String> {
    let complete = value.get("complete").and_then(Value::as_bool).ok_or("complete is missing or not a boolean")?;
    let volume = value.get("volume").and_then(Value::as_u64).ok_or("volume is missing or not an integer")?;
    let time = time(value.get("time"), "time")?;
    let [open, high, low, close] = match component {
        Component::Mid => ohlc(value, "mid")?,
        Component::Bid => {
            ohlc(value, "ask")?;
            ohlc(value, "bid")?
        }
    };
    let candle = Candle { time, open, high, low, close, volume: Decimal::from(volume) };
    candle.validate().map_err(|e| format!("bad candle at {time}: {e}"))?;
    Ok(WireCandle { candle, complete })
}

/// The candles answer, checked to be for the instrument and granularity asked. Candles that do not parse
/// come back as errors in place, so one bad candle is skipped without losing the page.
pub(crate) fn parse_candles(
    body: &str,
    instrument: &str,
    granularity: &str,
    component: Component,
) -> Result<Vec<Result<WireCandle, String>>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("candles answer is not JSON: {e}"))?;
    if let Some(got) = value.get("instrument").and_then(Value::as_str)
        && got != instrument
    {
        return Err(format!("candles answer is for {got}, asked for {instrument}"));
    }
    if let Some(got) = value.get("granularity").and_then(Value::as_str)
        && got != granularity
    {
        return Err(format!("candles answer is {got} candles, asked for {granularity}"));
    }
    let candles = value.get("candles").and_then(Value::as_array).ok_or("candles answer has no \"candles\" array")?;
    Ok(candles.iter().map(|c| parse_candle(c, component)).collect())
}

/// The names (`EUR_USD`) in `GET /v3/accounts/{id}/instruments`.
pub(crate) fn parse_account_instruments(body: &str) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("instruments answer is not JSON: {e}"))?;
    let list =
        value.get("instruments").and_then(Value::as_array).ok_or("instruments answer has no \"instruments\" array")?;
    list.iter()
        .map(|i| {
            i.get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("instrument {i} has no name"))
        })
        .collect()
}

fn best(value: &Value, side: &str) -> Result<Price, String> {
    let levels = value.get(side).and_then(Value::as_array).ok_or_else(|| format!("{side} is missing"))?;
    let top = levels.first().ok_or_else(|| format!("{side} is empty"))?;
    Price::new(decimal(top.get("price"), &format!("{side}[0].price"))?).map_err(|e| format!("{side}[0].price: {e}"))
}

/// One line of the pricing stream. Other types (OANDA documents only these two) are an error, so they are
/// logged rather than silently ignored.
pub(crate) fn parse_stream_line(line: &str) -> Result<StreamLine, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("type").and_then(Value::as_str) {
        Some("HEARTBEAT") => Ok(StreamLine::Heartbeat),
        Some("PRICE") => {
            let instrument =
                value.get("instrument").and_then(Value::as_str).ok_or("PRICE without an instrument")?.to_string();
            let time = time(value.get("time"), "time")?;
            let bid = best(&value, "bids")?;
            let ask = best(&value, "asks")?;
            if ask.value() < bid.value() {
                return Err(format!("{instrument} ask {} is below bid {}", ask.value(), bid.value()));
            }
            Ok(StreamLine::Price { instrument, time, bid, ask })
        }
        Some(other) => Err(format!("unknown line type {other:?}")),
        None => Err("line has no type".into()),
    }
}

/// OANDA's error text from `{"errorMessage": "…"}`, or the start of whatever else came back.
pub(crate) fn error_text(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: &str = r#"{"instrument":"EUR_USD","granularity":"H1","candles":[
        {"complete":true,"volume":1234,"time":"2024-01-02T10:00:00.000000000Z","mid":{"o":"1.10001","h":"1.10100","l":"1.09950","c":"1.10050"}},
        {"complete":false,"volume":12,"time":"2024-01-02T11:00:00.000000000Z","mid":{"o":"1.10050","h":"1.10060","l":"1.10040","c":"1.10055"}}]}"#;

    #[test]
    fn parses_mid_candles_with_nanosecond_times() {
        let candles = parse_candles(MID, "EUR_USD", "H1", Component::Mid).unwrap();
        let first = candles[0].as_ref().unwrap();
        assert!(first.complete);
        assert_eq!(first.candle.time.to_rfc3339(), "2024-01-02T10:00:00+00:00");
        assert_eq!(first.candle.high, Decimal::from_str("1.10100").unwrap());
        assert_eq!(first.candle.volume, Decimal::from(1234));
        assert!(!candles[1].as_ref().unwrap().complete);
        assert!(parse_candles(MID, "XAU_USD", "H1", Component::Mid).is_err());
        assert!(parse_candles(MID, "EUR_USD", "M1", Component::Mid).is_err());
    }

    #[test]
    fn bid_candles_need_both_sides_and_a_bad_candle_is_an_error_in_place() {
        let body = r#"{"candles":[
            {"complete":true,"volume":1,"time":"2024-01-02T10:00:00Z","bid":{"o":"2","h":"3","l":"1","c":"2"},"ask":{"o":"2.1","h":"3.1","l":"1.1","c":"2.1"}},
            {"complete":true,"volume":1,"time":"2024-01-02T11:00:00Z","bid":{"o":"2","h":"3","l":"1","c":"2"}},
            {"complete":true,"volume":1,"time":"2024-01-02T12:00:00Z","bid":{"o":"2","h":"1","l":"1","c":"2"},"ask":{"o":"2","h":"3","l":"1","c":"2"}}]}"#;
        let candles = parse_candles(body, "EUR_USD", "H1", Component::Bid).unwrap();
        assert_eq!(candles[0].as_ref().unwrap().candle.close, Decimal::TWO);
        assert!(candles[1].as_ref().unwrap_err().contains("ask"));
        assert!(candles[2].as_ref().unwrap_err().contains("bad candle"));
        assert!(parse_candles("{\"candles\":", "EUR_USD", "H1", Component::Mid).is_err());
    }

    #[test]
    fn parses_price_and_heartbeat_lines() {
        let line = r#"{"type":"PRICE","instrument":"EUR_USD","time":"2024-01-02T10:00:01.123456789Z","bids":[{"price":"1.10010","liquidity":1000000}],"asks":[{"price":"1.10022","liquidity":1000000}],"closeoutBid":"1.10005","closeoutAsk":"1.10027","status":"tradeable","tradeable":true}"#;
        let StreamLine::Price { instrument, time, bid, ask } = parse_stream_line(line).unwrap() else { panic!() };
        assert_eq!(instrument, "EUR_USD");
        assert_eq!(time.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(
            (bid.value(), ask.value()),
            (Decimal::from_str("1.1001").unwrap(), Decimal::from_str("1.10022").unwrap())
        );
        assert_eq!(
            parse_stream_line(r#"{"type":"HEARTBEAT","time":"2024-01-02T10:00:05.000000000Z"}"#),
            Ok(StreamLine::Heartbeat)
        );
        assert!(
            parse_stream_line(r#"{"type":"PRICE","instrument":"EUR_USD","time":"x","bids":[],"asks":[]}"#).is_err()
        );
        assert!(parse_stream_line("{\"type\":").is_err());
    }

    #[test]
    fn error_text_prefers_error_message() {
        assert_eq!(
            error_text(r#"{"errorMessage":"Invalid value specified for 'instrument'"}"#),
            "Invalid value specified for 'instrument'"
        );
        assert_eq!(error_text("<html>"), "<html>");
        assert_eq!(
            parse_account_instruments(
                r#"{"instruments":[{"name":"EUR_USD","type":"CURRENCY"}],"lastTransactionID":"1"}"#
            )
            .unwrap(),
            vec!["EUR_USD"]
        );
    }
}

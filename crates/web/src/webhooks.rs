//! `POST /webhooks/tradingview`: TradingView alerts become webhook signals (issue 6), and the one place that
//! turns a parsed provider message into a [`Signal`], which the app's provider-channel intake reuses (the web
//! crate cannot depend on the app, the app depends on this crate).
//!
//! The shared secret (the `X-Signalpost-Secret` header, or the JSON body's `secret`) is compared in constant
//! time before anything in the alert is interpreted. A delivery is stored once: under its `id`, or the
//! SHA-256 of its body when it has none, in the provider-message table (pseudo-channel `tradingview`), in the
//! same transaction as its signal, so a replay stores no second signal. The secret itself is never stored.

use crate::WebState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::{Entry, Price, Side, Signal, SignalSource, Symbol};
use parser::{EntryPrice, MessageKind, ParsedMessage, UpdateAction};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use store::{NewProviderMessage, ProviderIntake, ProviderMessageKind, WEBHOOK_CHANNEL};

/// The header a TradingView alert may carry its secret in (TradingView itself cannot set headers, so the
/// body field is the usual way; the header suits other senders).
pub const SECRET_HEADER: &str = "x-signalpost-secret";

/// The TradingView shared secret; `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// `None` for an empty secret: an empty string must not open the webhook.
    pub fn new(secret: &str) -> Option<WebhookSecret> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| WebhookSecret(secret.to_string()))
    }

    /// Constant time whatever the lengths: both sides are hashed first, so the comparison is always of 32
    /// bytes and leaks neither the secret's length nor a matching prefix.
    fn matches(&self, offered: &str) -> bool {
        let (a, b) = (Sha256::digest(self.0.as_bytes()), Sha256::digest(offered.as_bytes()));
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// Lower-case hex SHA-256 of a message's text, as provider messages are stored with.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Why a parsed message cannot become a signal; shown to whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Builds the signal an `open` message describes and checks it as the store will: a symbol and a side, prices
/// that are positive, a stop and targets on the right sides of the entry.
pub fn signal_from_parsed(
    parsed: &ParsedMessage,
    source: SignalSource,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Signal, Refusal> {
    let symbol = parsed.symbol.clone().ok_or_else(|| Refusal("no symbol: which instrument is it?".into()))?;
    let side = parsed.side.ok_or_else(|| Refusal("no side: buy/long or sell/short?".into()))?;
    let price = |what: &str, value: Decimal| {
        Price::new(value).map_err(|e| Refusal(format!("the {what} {value} is not a usable price: {e}")))
    };
    let entry = match parsed.entry {
        None => Entry::Market,
        Some(EntryPrice::Price(p)) => Entry::Price { price: price("entry", p)? },
        Some(EntryPrice::Zone { low, high }) if low == high => Entry::Price { price: price("entry", low)? },
        Some(EntryPrice::Zone { low, high }) => {
            let (low, high) = if low < high { (low, high) } else { (high, low) };
            Entry::Zone { low: price("entry", low)?, high: price("entry", high)? }
        }
    };
    let stop_loss = parsed.stop_loss.map(|sl| price("stop loss", sl)).transpose()?;
    let take_profits = parsed.take_profits.iter().map(|tp| price("take profit", *tp)).collect::<Result<Vec<_>, _>>()?;
    let signal = Signal {
        symbol,
        timeframe: None,
        side,
        entry,
        stop_loss,
        take_profits,
        leverage: parsed.leverage,
        confidence: None,
        source,
        model_version: None,
        stage1_prob: None,
        stage2_prob: None,
        created_at: at,
    };
    signal.validate().map_err(|e| Refusal(e.to_string()))?;
    Ok(signal)
}

/// What an update or close asked for, stored as the message's outcome until the copier (announced with
/// `Event::ProviderUpdate`) applies it to followers' trades and replaces the text with what it did.
pub fn actions_outcome(parsed: &ParsedMessage) -> String {
    let actions: Vec<String> = parsed.actions.iter().map(describe_action).collect();
    let what = if actions.is_empty() { "no action recognised".to_string() } else { actions.join(", ") };
    format!("{}: {what} (not applied yet: waiting for the copier)", parsed.kind.as_str())
}

fn describe_action(action: &UpdateAction) -> String {
    match action {
        UpdateAction::MoveStopToBreakeven => "move stop to breakeven".into(),
        UpdateAction::MoveStop(p) => format!("move stop to {p}"),
        UpdateAction::ClosePartial(pct) => format!("close {pct}%"),
        UpdateAction::CloseAll => "close all".into(),
        UpdateAction::SetTakeProfits(tps) => {
            format!("take profits {}", tps.iter().map(ToString::to_string).collect::<Vec<_>>().join(" / "))
        }
        UpdateAction::AddTakeProfit(p) => format!("add take profit {p}"),
        UpdateAction::SetEntry(EntryPrice::Price(p)) => format!("entry {p}"),
        UpdateAction::SetEntry(EntryPrice::Zone { low, high }) => format!("entry {low}-{high}"),
        UpdateAction::TakeProfitHit(Some(n)) => format!("TP{n} hit"),
        UpdateAction::TakeProfitHit(None) => "take profit hit".into(),
        UpdateAction::EntryFilled => "entry filled".into(),
        UpdateAction::Cancel => "cancel".into(),
    }
}

pub(crate) fn routes() -> Router<WebState> {
    Router::new().route("/webhooks/tradingview", post(tradingview))
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

/// A JSON price: a number, or a string holding one (TradingView placeholders are often quoted).
fn decimal(value: &Value, field: &str) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err(format!("`{field}` must be a number")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("`{field}` is not a number: {text:?}"))
}

/// A structured alert: `{"symbol", "side", "entry"?, "sl"?, "tp"?: [..] or number, "leverage"?}`.
fn parse_alert(alert: &serde_json::Map<String, Value>) -> Result<ParsedMessage, String> {
    let text = |field: &str| alert.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let symbol = text("symbol").ok_or("`symbol` is missing")?;
    // TradingView's {{ticker}} may carry the exchange (`BINANCE:BTCUSDT`); the instrument is what follows.
    let symbol = Symbol::normalize(symbol.rsplit(':').next().unwrap_or(symbol));
    let side = Side::parse(text("side").ok_or("`side` is missing (buy/long or sell/short)")?)
        .map_err(|e| format!("`side`: {e}"))?;
    let entry = alert.get("entry").filter(|v| !v.is_null()).map(|v| decimal(v, "entry")).transpose()?;
    let stop_loss = alert.get("sl").filter(|v| !v.is_null()).map(|v| decimal(v, "sl")).transpose()?;
    let take_profits = match alert.get("tp") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(|v| decimal(v, "tp")).collect::<Result<_, _>>()?,
        Some(one) => vec![decimal(one, "tp")?],
    };
    let leverage = match alert.get("leverage") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64().and_then(|l| u32::try_from(l).ok()).ok_or("`leverage` must be a whole number".to_string())?,
        ),
    };
    Ok(ParsedMessage {
        kind: MessageKind::Open,
        symbol: Some(symbol),
        side: Some(side),
        entry: entry.map(EntryPrice::Price),
        stop_loss,
        take_profits,
        leverage,
        actions: Vec::new(),
    })
}

async fn tradingview(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.config.tradingview_secret.as_ref() else {
        return refuse(StatusCode::UNAUTHORIZED, "the TradingView webhook is off: no secret is configured");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(StatusCode::UNAUTHORIZED, "the webhook secret is missing or wrong");
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
        || text.trim_start().starts_with('{');
    // Only the JSON envelope is read before the secret check, to find the secret; the alert is interpreted
    // after it.
    let mut json_body = if is_json { serde_json::from_str::<Value>(text).ok() } else { None };
    let from_header = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok());
    let from_body = json_body.as_ref().and_then(|v| v.get("secret")).and_then(Value::as_str);
    if !from_header.or(from_body).is_some_and(|offered| secret.matches(offered)) {
        tracing::info!("refused a TradingView webhook with a missing or wrong secret");
        return refuse(StatusCode::UNAUTHORIZED, "the webhook secret is missing or wrong");
    }
    let (parsed, stored_text, id) = if is_json {
        let Some(Value::Object(alert)) = json_body.as_mut() else {
            return refuse(StatusCode::BAD_REQUEST, "the body is not a JSON object");
        };
        alert.remove("secret");
        let id = alert.get("id").and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let parsed = match (alert.contains_key("symbol"), alert.get("message").and_then(Value::as_str)) {
            (false, Some(message)) => parser::parse(message),
            _ => match parse_alert(alert) {
                Ok(parsed) => parsed,
                Err(reason) => return refuse(StatusCode::BAD_REQUEST, format!("invalid alert: {reason}")),
            },
        };
        (parsed, Value::Object(alert.clone()).to_string(), id)
    } else {
        if text.trim().is_empty() {
            return refuse(StatusCode::BAD_REQUEST, "the body is empty");
        }
        (parser::parse(text), text.to_string(), None)
    };
    let hash = content_hash(&stored_text);
    let message_id = match id {
        Some(id) => format!("id:{id}"),
        None => format!("sha256:{hash}"),
    };
    let now = state.clock.now();
    let (kind, outcome, signal) = match parsed.kind {
        MessageKind::Open => match signal_from_parsed(&parsed, SignalSource::Webhook, now) {
            Ok(signal) => (ProviderMessageKind::Open, String::new(), Some(signal)),
            Err(refusal) => {
                return refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("not a usable signal: {refusal}"));
            }
        },
        MessageKind::Update => (ProviderMessageKind::Update, actions_outcome(&parsed), None),
        MessageKind::Close => (ProviderMessageKind::Close, actions_outcome(&parsed), None),
        MessageKind::Noise => (ProviderMessageKind::Noise, "noise".to_string(), None),
    };
    let new = NewProviderMessage {
        channel_id: WEBHOOK_CHANNEL,
        message_id: &message_id,
        author: None,
        content: &stored_text,
        hash: &hash,
        received_at: now,
        kind,
        outcome: outcome.clone(),
        signal: signal.as_ref(),
        reply_to: None,
        // The followers' copies are begun with the signal: one commit before the copier's orders.
        begin_copies: Some(store::BeginCopies { client_order_id: broker::ClientOrderId::text_for_signal, at: now }),
    };
    match state.store.record_provider_message(&new).await {
        Ok(ProviderIntake::Stored { signal: Some(signal_id) }) => {
            if let Some(signal) = signal {
                state.announce(bus::Event::SignalCreated { signal_id, signal }).await;
            }
            reply(StatusCode::CREATED, json!({ "status": "stored", "signal_id": signal_id.0 }))
        }
        Ok(ProviderIntake::Stored { signal: None }) => {
            if matches!(kind, ProviderMessageKind::Update | ProviderMessageKind::Close) {
                let event =
                    bus::Event::ProviderUpdate { channel_id: WEBHOOK_CHANNEL.into(), message_id: message_id.clone() };
                state.announce(event).await;
            }
            reply(StatusCode::OK, json!({ "status": kind.as_str(), "outcome": outcome }))
        }
        Ok(ProviderIntake::Duplicate { signal }) => {
            reply(StatusCode::OK, json!({ "status": "duplicate", "signal_id": signal.map(|s| s.0) }))
        }
        Err(store::StoreError::Invalid(e)) => {
            refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("not a usable signal: {e}"))
        }
        Err(error) => {
            tracing::error!(%error, "could not store a TradingView alert");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "the alert could not be stored; retry later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn secrets_compare_whole() {
        let s = WebhookSecret::new("hunter2").unwrap();
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter"));
        assert!(!s.matches("hunter22"));
        assert!(WebhookSecret::new("  ").is_none());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn alerts_take_numbers_or_strings_and_strip_the_exchange() {
        let alert = json!({"symbol": "BINANCE:BTCUSDT", "side": "buy", "entry": "100", "sl": 95, "tp": [110, "120"]});
        let parsed = parse_alert(alert.as_object().unwrap()).unwrap();
        assert_eq!(parsed.symbol.as_ref().map(Symbol::as_str), Some("BTCUSDT"));
        assert_eq!(parsed.side, Some(Side::Long));
        assert_eq!(parsed.take_profits, vec![dec("110"), dec("120")]);
        let single = json!({"symbol": "EURUSD", "side": "sell", "tp": 1.07});
        assert_eq!(parse_alert(single.as_object().unwrap()).unwrap().take_profits, vec![dec("1.07")]);
        let bad = json!({"symbol": "EURUSD", "side": "up"});
        assert!(parse_alert(bad.as_object().unwrap()).unwrap_err().contains("side"));
    }

    #[test]
    fn wrong_side_stops_and_missing_symbols_are_refused() {
        let mut parsed = ParsedMessage::noise();
        parsed.kind = MessageKind::Open;
        parsed.side = Some(Side::Long);
        assert!(
            signal_from_parsed(&parsed, SignalSource::Webhook, chrono::Utc::now()).unwrap_err().0.contains("symbol")
        );
        parsed.symbol = Some(Symbol::normalize("EURUSD"));
        parsed.entry = Some(EntryPrice::Price(dec("1.08")));
        parsed.stop_loss = Some(dec("1.09"));
        let refusal = signal_from_parsed(&parsed, SignalSource::Webhook, chrono::Utc::now()).unwrap_err();
        assert!(refusal.0.contains("stop loss"), "{refusal}");
        parsed.stop_loss = Some(dec("1.07"));
        assert!(signal_from_parsed(&parsed, SignalSource::Webhook, chrono::Utc::now()).is_ok());
    }
}

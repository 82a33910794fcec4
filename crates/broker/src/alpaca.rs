//! Alpaca's trading API (v2) through a small reqwest client of our own: the `apca` crate is GPL.
//!
//! Orders go out as brackets (`order_class: "bracket"`, or `"oto"` with only a stop loss), the stop loss is
//! moved by replacing the bracket's stop leg, closes go through `DELETE /v2/positions/{symbol}`. Alpaca keeps
//! one position per symbol, so a close acts on the whole symbol's position, not only on the order's share.
//! Alpaca brackets take one take profit: the first of the order's is used.
//!
//! Not yet handled: on the real API the open stop and take-profit legs hold the position's quantity, so a
//! close may need the legs cancelled or resized first (Alpaca answers 403 "insufficient qty available"),
//! and after a partial close the legs still carry the original quantity.

use crate::order::{ClientOrderId, CloseAck, OrderAck, OrderEntry, OrderRef, OrderState, OrderStatus, PlaceOrder};
use crate::{Broker, BrokerError, check_fraction};
use async_trait::async_trait;
use domain::{AssetClass, InstrumentRegistry, Price, Side, Symbol};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An Alpaca key pair. Neither half appears in `Debug` output or in any error.
#[derive(Clone)]
pub struct AlpacaCredentials {
    key_id: String,
    secret_key: String,
}

impl AlpacaCredentials {
    pub fn new(key_id: impl Into<String>, secret_key: impl Into<String>) -> AlpacaCredentials {
        AlpacaCredentials { key_id: key_id.into(), secret_key: secret_key.into() }
    }

    /// Replaces either key in `text`, should Alpaca ever echo one back in an error message.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for key in [&self.secret_key, &self.key_id] {
            if !key.is_empty() {
                text = text.replace(key.as_str(), "[redacted]");
            }
        }
        text
    }
}

impl std::fmt::Debug for AlpacaCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlpacaCredentials([redacted])")
    }
}

/// Where and how to reach Alpaca (`ALPACA_BASE_URL`, `ALPACA_API_KEY_ID`, `ALPACA_API_SECRET_KEY`).
#[derive(Debug, Clone)]
pub struct AlpacaConfig {
    /// `https://paper-api.alpaca.markets` or `https://api.alpaca.markets`, without `/v2`.
    pub base_url: String,
    pub credentials: AlpacaCredentials,
    /// `gtc` by default: brackets take `day` or `gtc`, crypto takes `gtc` or `ioc`.
    pub time_in_force: String,
    pub timeout: Duration,
}

impl AlpacaConfig {
    pub const PAPER_URL: &'static str = "https://paper-api.alpaca.markets";

    pub fn new(base_url: impl Into<String>, credentials: AlpacaCredentials) -> AlpacaConfig {
        AlpacaConfig {
            base_url: base_url.into(),
            credentials,
            time_in_force: "gtc".to_string(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Builds [`AlpacaBroker`]s for many accounts on one HTTP client: one connection pool, and the TLS roots
/// loaded once rather than per account. Cheap to clone. The client carries no account's keys; each broker
/// sends its own on every request.
#[derive(Debug, Clone)]
pub struct AlpacaConnector {
    http: reqwest::Client,
}

impl AlpacaConnector {
    pub fn new(timeout: Duration) -> Result<AlpacaConnector, BrokerError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| BrokerError::rejected("http_client", e.without_url().to_string()))?;
        Ok(AlpacaConnector { http })
    }

    /// A broker for one account. (`config.timeout` was fixed when the connector was built.)
    pub fn connect(&self, config: AlpacaConfig) -> Result<AlpacaBroker, BrokerError> {
        AlpacaBroker::with_client(config, self.http.clone())
    }
}

/// A follower's Alpaca account.
#[derive(Debug)]
pub struct AlpacaBroker {
    http: reqwest::Client,
    /// The account's key headers, sent on every request rather than as the client's defaults, so one
    /// connection pool serves every follower.
    keys: HeaderMap,
    base_url: String,
    credentials: AlpacaCredentials,
    time_in_force: String,
}

/// Alpaca's error body: `{"code": 40010001, "message": "..."}`.
#[derive(Debug, Deserialize)]
struct AlpacaError {
    code: Option<Value>,
    message: Option<String>,
}

/// The fields of Alpaca's order object we read; amounts come as decimal strings.
#[derive(Debug, Clone, Deserialize)]
struct AlpacaOrder {
    id: String,
    client_order_id: String,
    symbol: String,
    qty: Option<Decimal>,
    #[serde(default)]
    filled_qty: Option<Decimal>,
    filled_avg_price: Option<Decimal>,
    status: String,
    side: String,
    #[serde(rename = "type")]
    kind: String,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    #[serde(default)]
    legs: Option<Vec<AlpacaOrder>>,
}

/// Leg states that no longer protect the position.
fn leg_is_live(leg: &AlpacaOrder) -> bool {
    !matches!(leg.status.as_str(), "canceled" | "replaced" | "expired" | "rejected")
}

impl AlpacaOrder {
    fn stop_leg(&self) -> Option<&AlpacaOrder> {
        self.legs.iter().flatten().find(|l| matches!(l.kind.as_str(), "stop" | "stop_limit") && leg_is_live(l))
    }

    fn into_state(self) -> Result<OrderState, BrokerError> {
        let bad = |what: &str| BrokerError::retryable(format!("Alpaca sent an order with an unreadable {what}"));
        let price = |value: Option<Decimal>| value.and_then(|v| Price::new(v).ok());
        let side = match self.side.as_str() {
            "buy" => Side::Long,
            "sell" => Side::Short,
            _ => return Err(bad("side")),
        };
        let status = match self.status.as_str() {
            "filled" => OrderStatus::Filled,
            "partially_filled" => OrderStatus::PartiallyFilled,
            "canceled" | "expired" | "done_for_day" => OrderStatus::Cancelled,
            "rejected" => OrderStatus::Rejected,
            _ => OrderStatus::Pending,
        };
        let entry = match self.kind.as_str() {
            "limit" => OrderEntry::Limit(price(self.limit_price).ok_or_else(|| bad("limit price"))?),
            _ => OrderEntry::Market,
        };
        let stop_loss = self.stop_leg().and_then(|l| price(l.stop_price));
        let take_profits = self
            .legs
            .iter()
            .flatten()
            .filter(|l| l.kind == "limit" && leg_is_live(l))
            .filter_map(|l| price(l.limit_price))
            .collect();
        Ok(OrderState {
            client_order_id: ClientOrderId::new(self.client_order_id).map_err(|_| bad("client order id"))?,
            broker_order_id: self.id,
            symbol: Symbol::normalize(&self.symbol),
            side,
            entry,
            qty: self.qty.ok_or_else(|| bad("qty"))?,
            filled_qty: self.filled_qty.unwrap_or_default(),
            avg_fill_price: price(self.filled_avg_price),
            status,
            stop_loss,
            take_profits,
        })
    }
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Long => "buy",
        Side::Short => "sell",
    }
}

/// Seconds until Alpaca's rate-limit window resets: `Retry-After` if sent, else `X-RateLimit-Reset` (a Unix
/// time in seconds) minus now.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    let reset = number("x-ratelimit-reset")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

impl AlpacaBroker {
    /// A broker with its own HTTP client. Building a client loads the TLS roots (milliseconds): a process
    /// serving many accounts builds brokers with one [`AlpacaConnector`] instead.
    pub fn new(config: AlpacaConfig) -> Result<AlpacaBroker, BrokerError> {
        AlpacaConnector::new(config.timeout)?.connect(config)
    }

    fn with_client(config: AlpacaConfig, http: reqwest::Client) -> Result<AlpacaBroker, BrokerError> {
        let header = |value: &str| {
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                BrokerError::rejected("bad_credentials", "an Alpaca key holds characters a header cannot")
            })?;
            // Keeps the value out of reqwest's and hyper's Debug output.
            value.set_sensitive(true);
            Ok::<_, BrokerError>(value)
        };
        let mut keys = HeaderMap::new();
        keys.insert(HeaderName::from_static("apca-api-key-id"), header(&config.credentials.key_id)?);
        keys.insert(HeaderName::from_static("apca-api-secret-key"), header(&config.credentials.secret_key)?);
        Ok(AlpacaBroker {
            http,
            keys,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            credentials: config.credentials,
            time_in_force: config.time_in_force,
        })
    }

    /// Alpaca's name for one of our symbols: crypto as `BTC/USD`; forex and metals are not traded there.
    /// Symbols outside our registry go as they are and Alpaca judges them.
    fn alpaca_symbol(symbol: &Symbol) -> Result<String, BrokerError> {
        match InstrumentRegistry::global().get(symbol.as_str()) {
            Ok(i) if i.asset_class == AssetClass::Crypto => Ok(format!("{}/{}", i.base, i.quote)),
            Ok(i) if i.asset_class == AssetClass::Stock => Ok(symbol.to_string()),
            Ok(i) => Err(BrokerError::rejected(
                "unsupported_symbol",
                format!("Alpaca does not trade {} ({:?})", i.symbol, i.asset_class),
            )),
            Err(_) => Ok(symbol.to_string()),
        }
    }

    /// Sends one request and sorts the answer: the body of a 2xx, or the error it stands for.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Vec<u8>, BrokerError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url)).headers(self.keys.clone());
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            // The request may have reached Alpaca: the caller retries with the same client order id.
            BrokerError::retryable(format!(
                "could not reach Alpaca: {}",
                self.credentials.scrub(&e.without_url().to_string())
            ))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| BrokerError::retryable(format!("Alpaca's answer was cut off: {}", e.without_url())))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(self.map_error(status, &headers, &bytes))
    }

    fn map_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> BrokerError {
        let parsed: Option<AlpacaError> = serde_json::from_slice(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|e| e.code.as_ref())
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
            .unwrap_or_else(|| status.as_u16().to_string());
        let message = parsed
            .and_then(|e| e.message)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given").to_string());
        let message = self.credentials.scrub(&message);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return BrokerError::Retryable {
                reason: format!("Alpaca rate limit: {message}"),
                retry_after: retry_after(headers),
            };
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return BrokerError::retryable(format!("Alpaca answered {}: {message}", status.as_u16()));
        }
        if status == StatusCode::NOT_FOUND {
            return BrokerError::UnknownOrder(message);
        }
        BrokerError::Rejected { code, reason: message }
    }

    fn parse_order(bytes: &[u8]) -> Result<AlpacaOrder, BrokerError> {
        serde_json::from_slice(bytes)
            .map_err(|e| BrokerError::retryable(format!("Alpaca sent an unreadable order: {e}")))
    }

    async fn order_by_id(&self, id: &str) -> Result<AlpacaOrder, BrokerError> {
        let bytes = self.call(Method::GET, &format!("/v2/orders/{id}"), &[("nested", "true")], None).await?;
        Self::parse_order(&bytes)
    }

    fn body(&self, order: &PlaceOrder) -> Result<Value, BrokerError> {
        let mut body = json!({
            "symbol": Self::alpaca_symbol(&order.symbol)?,
            "qty": order.qty.value().to_string(),
            "side": side_word(order.side),
            "time_in_force": self.time_in_force,
            "client_order_id": order.client_order_id.as_str(),
        });
        match order.entry {
            OrderEntry::Market => body["type"] = json!("market"),
            OrderEntry::Limit(price) => {
                body["type"] = json!("limit");
                body["limit_price"] = json!(price.to_string());
            }
        }
        let take_profit = order.take_profits.first();
        body["order_class"] = json!(match (order.stop_loss, take_profit) {
            (Some(_), Some(_)) => "bracket",
            (None, None) => "simple",
            _ => "oto",
        });
        if let Some(tp) = take_profit {
            body["take_profit"] = json!({ "limit_price": tp.to_string() });
        }
        if let Some(sl) = order.stop_loss {
            body["stop_loss"] = json!({ "stop_price": sl.to_string() });
        }
        Ok(body)
    }

    /// The first order under a client order id, when a placement met "client_order_id must be unique".
    async fn existing(&self, order: &PlaceOrder) -> Result<OrderAck, BrokerError> {
        let state = self.order(&order.client_order_id).await?.ok_or_else(|| {
            BrokerError::retryable(format!(
                "Alpaca knows client order id {} but did not return it",
                order.client_order_id
            ))
        })?;
        if !order.same_order_as(&state) {
            return Err(BrokerError::rejected(
                "client_order_id_reused",
                format!("client order id {} belongs to a different order", order.client_order_id),
            ));
        }
        Ok(OrderAck { state, duplicate: true })
    }
}

#[async_trait]
impl Broker for AlpacaBroker {
    async fn place(&self, order: &PlaceOrder) -> Result<OrderAck, BrokerError> {
        let body = self.body(order)?;
        match self.call(Method::POST, "/v2/orders", &[], Some(body)).await {
            Ok(bytes) => Ok(OrderAck { state: Self::parse_order(&bytes)?.into_state()?, duplicate: false }),
            Err(BrokerError::Rejected { reason, .. }) if reason.contains("client_order_id must be unique") => {
                self.existing(order).await
            }
            Err(other) => Err(other),
        }
    }

    async fn modify_stop(&self, order: &OrderRef, stop_loss: Price) -> Result<OrderState, BrokerError> {
        let parent = self.order_by_id(&order.broker_order_id).await?;
        let leg = parent.stop_leg().ok_or_else(|| {
            BrokerError::rejected(
                "no_stop_leg",
                format!("order {} has no stop loss leg to move", order.client_order_id),
            )
        })?;
        let path = format!("/v2/orders/{}", leg.id);
        let bytes = self.call(Method::PATCH, &path, &[], Some(json!({ "stop_price": stop_loss.to_string() }))).await?;
        let new_leg = Self::parse_order(&bytes)?;
        // The replacement is a new leg order; the parent's legs list it in place of the old one.
        let mut updated = parent.clone();
        if let Some(legs) = updated.legs.as_mut() {
            legs.retain(|l| l.id != leg.id);
            legs.push(new_leg);
        }
        updated.into_state()
    }

    async fn close(&self, order: &OrderRef, fraction: Decimal) -> Result<CloseAck, BrokerError> {
        check_fraction(fraction)?;
        let percentage = (fraction * Decimal::ONE_HUNDRED).normalize().to_string();
        let path = format!("/v2/positions/{}", order.symbol);
        let bytes = match self.call(Method::DELETE, &path, &[("percentage", &percentage)], None).await {
            Err(BrokerError::UnknownOrder(message)) => return Err(BrokerError::rejected("not_open", message)),
            other => other?,
        };
        let closing = Self::parse_order(&bytes)?;
        Ok(CloseAck {
            qty: closing.qty.unwrap_or_default(),
            price: closing.filled_avg_price.and_then(|p| Price::new(p).ok()),
            remaining: None,
        })
    }

    async fn cancel(&self, order: &OrderRef) -> Result<OrderState, BrokerError> {
        let path = format!("/v2/orders/{}", order.broker_order_id);
        self.call(Method::DELETE, &path, &[], None).await?;
        self.order_by_id(&order.broker_order_id).await?.into_state()
    }

    async fn order(&self, client_order_id: &ClientOrderId) -> Result<Option<OrderState>, BrokerError> {
        let query = [("client_order_id", client_order_id.as_str())];
        match self.call(Method::GET, "/v2/orders:by_client_order_id", &query, None).await {
            Ok(bytes) => Ok(Some(Self::parse_order(&bytes)?.into_state()?)),
            Err(BrokerError::UnknownOrder(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

//! Binance spot and USDⓈ-M futures through the official `binance-sdk` connector: its REST client signs every
//! request (HMAC-SHA256 over the query string), adds `timestamp` from our [`Clock`] and `X-MBX-APIKEY`, and sorts
//! HTTP failures into its `ConnectorError`, which we map to [`BrokerError`]. The calls go through the SDK's
//! generic `send_signed_request` with the wire parameters, so one code path serves both markets.
//!
//! Every order is checked against exchangeInfo (cached) before anything is sent: unknown symbols, quantities
//! below LOT_SIZE's minimum and notionals below NOTIONAL/MIN_NOTIONAL are refused here, quantities are rounded
//! down to the step and prices to the tick. Brackets: on spot the stop loss and take profit are an OCO order
//! list placed once a market entry has filled, and a limit entry goes out as an OTOCO (or OTO with one leg) so
//! Binance arms the legs when it fills; on futures they are conditional algo orders (`STOP_MARKET`,
//! `TAKE_PROFIT_MARKET`, reduce-only with the entry's quantity), and the order's leverage is set first.
//! Brackets take one take profit (the first), as Alpaca's do.
//!
//! Our client order id becomes Binance's `newClientOrderId` (kept when it fits Binance's 36 characters, else a
//! SHA-256-based id). Legs and closes carry derived ids, `<base>:s<n>`, `<base>:t<n>`, `<base>:l<n>`,
//! `<base>:c<n>` (`:` never occurs in our ids), so the broker finds an order's legs and closes at Binance
//! without keeping any state of its own, and `n` grows with each replacement. Binance accepts a spot client id
//! again once the first order is done, so `place` first asks whether the id is known. A retry that finds the
//! entry but no legs (the first attempt failed between the two) places the legs.
//!
//! Modifying a stop replaces the leg: on futures the new algo order goes out before the old one is cancelled;
//! on spot the OCO holds the coins, so it is cancelled first and put back as it was if the new one is refused.
//! A spot stop cannot move while an OTOCO's entry is unfilled (Binance has no amend for pending legs).
//!
//! Binance's order queries need the symbol; [`Broker::order`] knows it for orders this process placed and
//! otherwise looks among the open orders of every symbol, so a filled order placed before a restart reads as
//! unknown there (placing it again is still recognised, since [`PlaceOrder`] carries the symbol). Not handled:
//! spot fees taken in the base asset by an OTOCO's fill (a market entry's own fills are netted from the OCO),
//! and futures legs that triggered at Binance, which show as gone rather than as closes.

use crate::order::{ClientOrderId, CloseAck, OrderAck, OrderEntry, OrderRef, OrderState, OrderStatus, PlaceOrder};
use crate::{Broker, BrokerError, check_fraction};
use async_trait::async_trait;
use binance_sdk::config::{ConfigurationRestApi, TimestampProvider};
use binance_sdk::derivatives_trading_usds_futures::{self, DerivativesTradingUsdsFuturesRestApi};
use binance_sdk::errors::ConnectorError;
use binance_sdk::spot::{self, SpotRestApi};
use domain::{Clock, Price, Side, Symbol, SystemClock};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which Binance market an account trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinanceMarket {
    Spot,
    /// USDⓈ-M perpetual futures in one-way position mode.
    UsdmFutures,
}

/// A Binance API key and its HMAC secret. Neither appears in `Debug` output or in any error.
#[derive(Clone)]
pub struct BinanceCredentials {
    api_key: String,
    api_secret: String,
}

impl BinanceCredentials {
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> BinanceCredentials {
        BinanceCredentials { api_key: api_key.into(), api_secret: api_secret.into() }
    }

    /// Replaces either key in `text`, and drops URL query strings (they carry the signature).
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for key in [&self.api_secret, &self.api_key] {
            if !key.is_empty() {
                text = text.replace(key.as_str(), "[redacted]");
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut in_query = false;
        for c in text.chars() {
            if c == '?' {
                in_query = true;
                out.push_str("?[query]");
            } else if in_query && (c.is_whitespace() || c == ')') {
                in_query = false;
                out.push(c);
            } else if !in_query {
                out.push(c);
            }
        }
        out
    }
}

impl std::fmt::Debug for BinanceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BinanceCredentials([redacted])")
    }
}

/// Where and how to reach Binance (`BINANCE_BASE_URL`, `BINANCE_API_KEY`, `BINANCE_API_SECRET`).
#[derive(Debug, Clone)]
pub struct BinanceConfig {
    /// `https://api.binance.com` (spot) or `https://fapi.binance.com` (futures), without a path.
    pub base_url: String,
    pub market: BinanceMarket,
    pub credentials: BinanceCredentials,
    /// How long after its `timestamp` Binance may still accept a request (5 s by default, at most 60 s).
    pub recv_window: Duration,
    pub timeout: Duration,
    /// The source of the signed requests' `timestamp`.
    pub clock: Arc<dyn Clock>,
}

impl BinanceConfig {
    pub const SPOT_URL: &'static str = "https://api.binance.com";
    pub const FUTURES_URL: &'static str = "https://fapi.binance.com";

    pub fn new(base_url: impl Into<String>, market: BinanceMarket, credentials: BinanceCredentials) -> BinanceConfig {
        BinanceConfig {
            base_url: base_url.into(),
            market,
            credentials,
            recv_window: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The SDK's client for the account's market; both expose the same signed-request call.
#[derive(Debug)]
enum Api {
    Spot(Box<spot::rest_api::RestApi>),
    Futures(Box<derivatives_trading_usds_futures::rest_api::RestApi>),
}

/// A symbol's trading rules from exchangeInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rules {
    tick: Decimal,
    step: Decimal,
    min_qty: Decimal,
    min_notional: Decimal,
}

impl Rules {
    fn qty(&self, qty: Decimal) -> Decimal {
        if self.step.is_zero() { qty } else { ((qty / self.step).floor() * self.step).normalize() }
    }

    fn price(&self, price: Price) -> Decimal {
        let value = price.value();
        if self.tick.is_zero() { value } else { ((value / self.tick).round() * self.tick).normalize() }
    }
}

#[derive(Debug, Default)]
struct RulesCache {
    symbols: HashMap<String, Rules>,
    loaded: Option<Instant>,
}

/// A follower's Binance account, spot or USDⓈ-M futures.
#[derive(Debug)]
pub struct BinanceBroker {
    api: Api,
    market: BinanceMarket,
    credentials: BinanceCredentials,
    recv_window: u64,
    rules: Mutex<RulesCache>,
    /// The symbol of each order this process placed: Binance's order queries need it.
    symbols: Mutex<HashMap<ClientOrderId, Symbol>>,
}

/// An order's bracket legs as they stand at Binance.
#[derive(Debug, Default)]
struct Legs {
    stop: Option<Leg>,
    take_profit: Option<Leg>,
}

#[derive(Debug, Clone)]
struct Leg {
    /// The order id (spot) or algo id (futures).
    id: String,
    /// The spot order list holding it, if any (-1 otherwise).
    list_id: i64,
    /// The `n` of its `<base>:s<n>` / `<base>:t<n>` id.
    generation: u32,
    price: Decimal,
    qty: Decimal,
    pending: bool,
}

fn words(v: &Value, name: &str) -> String {
    match &v[name] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &Value, name: &str) -> Decimal {
    Decimal::from_str(&words(v, name)).unwrap_or_default()
}

fn unreadable(what: &str) -> BrokerError {
    BrokerError::retryable(format!("Binance sent an unreadable {what}"))
}

/// Binance's id for our client order id: ours when it fits the 36 characters, else a hash of it.
fn binance_id(id: &ClientOrderId) -> String {
    let text = id.as_str();
    if text.len() <= 36 { text.to_string() } else { hashed(text, 36) }
}

/// The stem of the ids of an order's legs and closes, leaving room for `:s<n>`.
fn leg_base(id: &ClientOrderId) -> String {
    let text = id.as_str();
    if text.len() <= 30 { text.to_string() } else { hashed(text, 30) }
}

/// `x:` and hex digits of SHA-256, `len` characters in all; `:` keeps it apart from any of our own ids.
fn hashed(text: &str, len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("x:{}", &hex[..len - 2])
}

/// The generation of a derived id (`base:s3` → 3), if `id` belongs to `base`.
fn generation(id: &str, base: &str) -> Option<u32> {
    let rest = id.strip_prefix(base)?.strip_prefix(':')?;
    rest.get(1..)?.parse().ok()
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Long => "BUY",
        Side::Short => "SELL",
    }
}

fn exit_word(side: Side) -> &'static str {
    match side {
        Side::Long => "SELL",
        Side::Short => "BUY",
    }
}

type Params = Vec<(&'static str, String)>;

impl BinanceBroker {
    pub fn new(config: BinanceConfig) -> Result<BinanceBroker, BrokerError> {
        let recv_window = u64::try_from(config.recv_window.as_millis()).unwrap_or(u64::MAX);
        if !(1..=60_000).contains(&recv_window) {
            return Err(BrokerError::rejected("bad_config", "Binance's recvWindow is 1 ms to 60 s"));
        }
        let clock = Arc::clone(&config.clock);
        let timestamps: TimestampProvider =
            Arc::new(move || u64::try_from(clock.now().timestamp_millis()).unwrap_or_default());
        let rest = ConfigurationRestApi::builder()
            .api_key(config.credentials.api_key.clone())
            .api_secret(config.credentials.api_secret.clone())
            .base_path(config.base_url.trim_end_matches('/').to_string())
            .timeout(u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX))
            // The caller retries with the same client order id; the SDK's own retries would hide the error.
            .retries(0)
            .timestamp_provider(timestamps)
            .build()
            .map_err(|e| BrokerError::rejected("bad_config", e.to_string()))?;
        let api = match config.market {
            BinanceMarket::Spot => Api::Spot(Box::new(SpotRestApi::from_config(rest))),
            BinanceMarket::UsdmFutures => {
                Api::Futures(Box::new(DerivativesTradingUsdsFuturesRestApi::from_config(rest)))
            }
        };
        Ok(BinanceBroker {
            api,
            market: config.market,
            credentials: config.credentials,
            recv_window,
            rules: Mutex::new(RulesCache::default()),
            symbols: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, route: &str) -> String {
        match self.market {
            BinanceMarket::Spot => format!("/api/v3/{route}"),
            BinanceMarket::UsdmFutures => format!("/fapi/v1/{route}"),
        }
    }

    /// One request through the SDK; `signed` adds `recvWindow`, `timestamp` and the signature.
    async fn call(&self, method: Method, route: &str, params: Params, signed: bool) -> Result<Value, BrokerError> {
        let path = self.path(route);
        let mut query: BTreeMap<String, Value> =
            params.into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
        if signed {
            query.insert("recvWindow".to_string(), Value::String(self.recv_window.to_string()));
        }
        let none = BTreeMap::new();
        let sent = match (&self.api, signed) {
            (Api::Spot(api), true) => api.send_signed_request::<Value>(&path, method, query, none).await,
            (Api::Spot(api), false) => api.send_request::<Value>(&path, method, query, none).await,
            (Api::Futures(api), true) => api.send_signed_request::<Value>(&path, method, query, none).await,
            (Api::Futures(api), false) => api.send_request::<Value>(&path, method, query, none).await,
        };
        let response = sent.map_err(|e| match e.downcast::<ConnectorError>() {
            Ok(error) => self.map_error(error),
            Err(other) => BrokerError::rejected("binance_client", self.credentials.scrub(&format!("{other:#}"))),
        })?;
        response.data().await.map_err(|e| self.map_error(e))
    }

    fn map_error(&self, error: ConnectorError) -> BrokerError {
        let scrub = |text: &str| self.credentials.scrub(text);
        let seconds = |s: Option<u32>| s.map(|s| Duration::from_secs(u64::from(s)));
        match error {
            ConnectorError::TooManyRequestsError { msg, retry_after, .. } => BrokerError::Retryable {
                reason: format!("Binance rate limit: {}", scrub(&msg)),
                retry_after: seconds(retry_after),
            },
            ConnectorError::RateLimitBanError { msg, retry_after, .. } => BrokerError::Retryable {
                reason: format!("Binance banned this IP for exceeding its rate limits: {}", scrub(&msg)),
                retry_after: seconds(retry_after),
            },
            ConnectorError::ServerError { status_code, .. } => BrokerError::retryable(format!(
                "Binance answered {}",
                status_code.map_or_else(|| "a server error".to_string(), |s| s.to_string())
            )),
            ConnectorError::NetworkError(msg) | ConnectorError::ConnectorClientError { msg, code: None } => {
                // The request may have reached Binance: the caller retries with the same client order id.
                BrokerError::retryable(format!("could not reach Binance: {}", scrub(&msg)))
            }
            ConnectorError::ConnectorClientError { msg, code: Some(code) }
            | ConnectorError::BadRequestError { msg, code: Some(code) }
            | ConnectorError::UnauthorizedError { msg, code: Some(code) }
            | ConnectorError::ForbiddenError { msg, code: Some(code) }
            | ConnectorError::NotFoundError { msg, code: Some(code) } => {
                let msg = scrub(&msg);
                match code {
                    // Unknown order (cancel), order does not exist (query).
                    -2011 | -2013 => BrokerError::UnknownOrder(msg),
                    // Disconnected, timeout waiting for the matching engine, server busy, too many requests:
                    // Binance's own transient failures.
                    -1001 | -1003 | -1007 | -1008 => BrokerError::retryable(format!("Binance ({code}): {msg}")),
                    _ => BrokerError::Rejected { code: code.to_string(), reason: msg },
                }
            }
            ConnectorError::BadRequestError { msg, code: None }
            | ConnectorError::UnauthorizedError { msg, code: None }
            | ConnectorError::ForbiddenError { msg, code: None }
            | ConnectorError::NotFoundError { msg, code: None } => {
                BrokerError::rejected("binance", format!("Binance refused the request: {}", scrub(&msg)))
            }
        }
    }

    /// The symbol's rules, from the cached exchangeInfo; a symbol missing from a cache older than a minute
    /// loads it again (new listings).
    async fn rules(&self, symbol: &Symbol) -> Result<Rules, BrokerError> {
        let stale = {
            let cache = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(rules) = cache.symbols.get(symbol.as_str()) {
                return Ok(rules.clone());
            }
            cache.loaded.is_none_or(|at| at.elapsed() > Duration::from_secs(60))
        };
        if stale {
            let info = self.call(Method::GET, "exchangeInfo", vec![], false).await?;
            let symbols = parse_exchange_info(&info)?;
            let mut cache = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            cache.symbols = symbols;
            cache.loaded = Some(Instant::now());
            if let Some(rules) = cache.symbols.get(symbol.as_str()) {
                return Ok(rules.clone());
            }
        }
        Err(BrokerError::rejected("unknown_symbol", format!("Binance {} does not list {symbol}", self.market_name())))
    }

    fn market_name(&self) -> &'static str {
        match self.market {
            BinanceMarket::Spot => "spot",
            BinanceMarket::UsdmFutures => "USD-M futures",
        }
    }

    fn remember(&self, id: &ClientOrderId, symbol: &Symbol) {
        self.symbols.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), symbol.clone());
    }

    fn known_symbol(&self, id: &ClientOrderId) -> Option<Symbol> {
        self.symbols.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// The entry order under our client order id, or None if Binance never received it.
    async fn entry(&self, symbol: &Symbol, id: &ClientOrderId) -> Result<Option<Value>, BrokerError> {
        let params = vec![("symbol", symbol.to_string()), ("origClientOrderId", binance_id(id))];
        match self.call(Method::GET, "order", params, true).await {
            Ok(order) => Ok(Some(order)),
            Err(BrokerError::UnknownOrder(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn market_price(&self, symbol: &Symbol) -> Result<Decimal, BrokerError> {
        let ticker = self.call(Method::GET, "ticker/price", vec![("symbol", symbol.to_string())], false).await?;
        Some(number(&ticker, "price")).filter(|p| *p > Decimal::ZERO).ok_or_else(|| unreadable("price"))
    }

    /// The open legs of the order whose ids start with `base`.
    async fn legs(&self, symbol: &Symbol, base: &str) -> Result<Legs, BrokerError> {
        let mut legs = Legs::default();
        match self.market {
            BinanceMarket::Spot => {
                let open = self.call(Method::GET, "openOrders", vec![("symbol", symbol.to_string())], true).await?;
                for order in open.as_array().ok_or_else(|| unreadable("list of open orders"))? {
                    let id = words(order, "clientOrderId");
                    let Some(generation) = generation(&id, base) else { continue };
                    let kind = words(order, "type");
                    let level = if matches!(kind.as_str(), "LIMIT" | "LIMIT_MAKER") { "price" } else { "stopPrice" };
                    let leg = Leg {
                        id: words(order, "orderId"),
                        list_id: words(order, "orderListId").parse().unwrap_or(-1),
                        generation,
                        price: number(order, level),
                        qty: number(order, "origQty"),
                        pending: words(order, "status") == "PENDING_NEW",
                    };
                    match id[base.len() + 1..].chars().next() {
                        Some('s') => legs.stop = Some(leg),
                        Some('t') => legs.take_profit = Some(leg),
                        _ => {}
                    }
                }
            }
            BinanceMarket::UsdmFutures => {
                let open = self.call(Method::GET, "openAlgoOrders", vec![("symbol", symbol.to_string())], true).await?;
                for order in open.as_array().ok_or_else(|| unreadable("list of algo orders"))? {
                    let id = words(order, "clientAlgoId");
                    let Some(generation) = generation(&id, base) else { continue };
                    let leg = Leg {
                        id: words(order, "algoId"),
                        list_id: -1,
                        generation,
                        price: number(order, "triggerPrice"),
                        qty: number(order, "quantity"),
                        pending: false,
                    };
                    match words(order, "type").as_str() {
                        "STOP_MARKET" | "STOP" => legs.stop = Some(leg),
                        "TAKE_PROFIT_MARKET" | "TAKE_PROFIT" => legs.take_profit = Some(leg),
                        _ => {}
                    }
                }
            }
        }
        Ok(legs)
    }

    /// The next generation for derived ids, and what the order's closes (and spot legs that filled) took.
    async fn history(&self, symbol: &Symbol, base: &str, legs: &Legs) -> Result<(u32, Decimal), BrokerError> {
        let all = self.call(Method::GET, "allOrders", vec![("symbol", symbol.to_string())], true).await?;
        let mut top = 0;
        let mut closed = Decimal::ZERO;
        for order in all.as_array().ok_or_else(|| unreadable("list of orders"))? {
            let id = words(order, "clientOrderId");
            let Some(generation) = generation(&id, base) else { continue };
            top = top.max(generation);
            closed += number(order, "executedQty");
        }
        // Futures legs are algo orders, which allOrders does not list.
        for leg in [&legs.stop, &legs.take_profit].into_iter().flatten() {
            top = top.max(leg.generation);
        }
        Ok((top + 1, closed))
    }

    /// The order as Binance reports it, with its open legs.
    async fn state(&self, symbol: &Symbol, id: &ClientOrderId, entry: &Value) -> Result<OrderState, BrokerError> {
        let legs = self.legs(symbol, &leg_base(id)).await?;
        read_state(id, symbol, entry, &legs)
    }

    #[allow(clippy::too_many_arguments)]
    /// Places the legs protecting `qty` of a filled entry: an OCO (or a lone order) on spot, algo orders on
    /// futures.
    async fn place_legs(
        &self,
        symbol: &Symbol,
        side: Side,
        base: &str,
        generation: u32,
        qty: Decimal,
        stop: Option<Decimal>,
        take_profit: Option<Decimal>,
    ) -> Result<(), BrokerError> {
        let exit = exit_word(side);
        let sym = symbol.to_string();
        match self.market {
            BinanceMarket::Spot => match (stop, take_profit) {
                (None, None) => Ok(()),
                (Some(stop), Some(tp)) => {
                    let mut params: Params = vec![
                        ("symbol", sym),
                        ("side", exit.to_string()),
                        ("quantity", qty.to_string()),
                        ("listClientOrderId", format!("{base}:l{generation}")),
                        ("newOrderRespType", "RESULT".to_string()),
                    ];
                    params.extend(spot_oco_legs("", side, base, generation, stop, tp));
                    self.call(Method::POST, "orderList/oco", params, true).await.map(drop)
                }
                (stop, tp) => {
                    let mut params: Params = vec![
                        ("symbol", sym),
                        ("side", exit.to_string()),
                        ("quantity", qty.to_string()),
                        ("newOrderRespType", "RESULT".to_string()),
                    ];
                    params.extend(spot_lone_leg("", side, base, generation, stop, tp));
                    self.call(Method::POST, "order", params, true).await.map(drop)
                }
            },
            BinanceMarket::UsdmFutures => {
                for (kind, letter, trigger) in [("STOP_MARKET", 's', stop), ("TAKE_PROFIT_MARKET", 't', take_profit)] {
                    let Some(trigger) = trigger else { continue };
                    let params: Params = vec![
                        ("algoType", "CONDITIONAL".to_string()),
                        ("symbol", sym.clone()),
                        ("side", exit.to_string()),
                        ("type", kind.to_string()),
                        ("quantity", qty.to_string()),
                        ("triggerPrice", trigger.to_string()),
                        ("reduceOnly", "true".to_string()),
                        ("workingType", "MARK_PRICE".to_string()),
                        ("clientAlgoId", format!("{base}:{letter}{generation}")),
                    ];
                    self.call(Method::POST, "algoOrder", params, true).await?;
                }
                Ok(())
            }
        }
    }

    async fn cancel_legs(&self, symbol: &Symbol, legs: &Legs) -> Result<(), BrokerError> {
        let mut lists_done = Vec::new();
        for leg in [&legs.stop, &legs.take_profit].into_iter().flatten() {
            let params = |name: &'static str, value: String| vec![("symbol", symbol.to_string()), (name, value)];
            let result = match self.market {
                BinanceMarket::Spot if leg.list_id >= 0 => {
                    if lists_done.contains(&leg.list_id) {
                        continue;
                    }
                    lists_done.push(leg.list_id);
                    self.call(Method::DELETE, "orderList", params("orderListId", leg.list_id.to_string()), true).await
                }
                BinanceMarket::Spot => {
                    self.call(Method::DELETE, "order", params("orderId", leg.id.clone()), true).await
                }
                BinanceMarket::UsdmFutures => {
                    self.call(Method::DELETE, "algoOrder", params("algoId", leg.id.clone()), true).await
                }
            };
            match result {
                // Gone already (filled or cancelled with its list): nothing left to cancel.
                Ok(_) | Err(BrokerError::UnknownOrder(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// The first order under a client order id the placement met again.
    /// The first order under a client order id the placement met again. When that first attempt's entry went
    /// through but its legs did not (the error reached the caller, who retries), the retry places them.
    async fn existing(
        &self,
        order: &PlaceOrder,
        rules: &Rules,
        qty: Decimal,
        entry: Value,
    ) -> Result<OrderAck, BrokerError> {
        let mut state = self.state(&order.symbol, &order.client_order_id, &entry).await?;
        if state.symbol != order.symbol || state.side != order.side || state.qty != qty {
            return Err(BrokerError::rejected(
                "client_order_id_reused",
                format!("client order id {} belongs to a different order", order.client_order_id),
            ));
        }
        let wanted = order.stop_loss.is_some() || !order.take_profits.is_empty();
        let missing = state.stop_loss.is_none() && state.take_profits.is_empty();
        // Spot legs protect coins already bought; futures legs wait for the position, filled or not.
        let legs_qty = match (self.market, state.status) {
            (_, OrderStatus::Cancelled | OrderStatus::Rejected) => Decimal::ZERO,
            (BinanceMarket::Spot, _) => rules.qty(state.filled_qty),
            (BinanceMarket::UsdmFutures, _) => state.qty,
        };
        if wanted && missing && legs_qty > Decimal::ZERO {
            let base = leg_base(&order.client_order_id);
            let (generation, closed) = self.history(&order.symbol, &base, &Legs::default()).await?;
            // Only an order that never had legs or closes: ones that filled or were closed stay gone.
            if generation == 1 && closed.is_zero() {
                let stop = order.stop_loss.map(|p| rules.price(p));
                let tp = order.take_profits.first().map(|p| rules.price(*p));
                self.place_legs(&order.symbol, order.side, &base, 1, legs_qty, stop, tp).await?;
                state = self.state(&order.symbol, &order.client_order_id, &entry).await?;
            }
        }
        Ok(OrderAck { state, duplicate: true })
    }

    async fn place_entry(&self, order: &PlaceOrder, rules: &Rules, qty: Decimal) -> Result<Value, BrokerError> {
        let symbol = order.symbol.to_string();
        let id = binance_id(&order.client_order_id);
        let base = leg_base(&order.client_order_id);
        let stop = order.stop_loss.map(|p| rules.price(p));
        let tp = order.take_profits.first().map(|p| rules.price(*p));
        match (self.market, order.entry) {
            (BinanceMarket::Spot, OrderEntry::Limit(limit)) if stop.is_some() || tp.is_some() => {
                let mut params: Params = vec![
                    ("symbol", symbol),
                    ("workingType", "LIMIT".to_string()),
                    ("workingSide", side_word(order.side).to_string()),
                    ("workingClientOrderId", id.clone()),
                    ("workingPrice", rules.price(limit).to_string()),
                    ("workingQuantity", qty.to_string()),
                    ("workingTimeInForce", "GTC".to_string()),
                    ("pendingSide", exit_word(order.side).to_string()),
                    ("pendingQuantity", qty.to_string()),
                    ("newOrderRespType", "RESULT".to_string()),
                    ("listClientOrderId", format!("{base}:l1")),
                ];
                let route = match (stop, tp) {
                    (Some(stop), Some(tp)) => {
                        params.extend(spot_oco_legs("pending", order.side, &base, 1, stop, tp));
                        "orderList/otoco"
                    }
                    _ => {
                        params.extend(spot_lone_leg("pending", order.side, &base, 1, stop, tp));
                        "orderList/oto"
                    }
                };
                self.call(Method::POST, route, params, true).await?;
                self.entry(&order.symbol, &order.client_order_id)
                    .await?
                    .ok_or_else(|| BrokerError::retryable("Binance accepted the order list but cannot find its entry"))
            }
            (market, entry) => {
                let mut params: Params = vec![
                    ("symbol", symbol),
                    ("side", side_word(order.side).to_string()),
                    ("quantity", qty.to_string()),
                    ("newClientOrderId", id),
                ];
                params.push((
                    "newOrderRespType",
                    if market == BinanceMarket::Spot { "FULL" } else { "RESULT" }.to_string(),
                ));
                match entry {
                    OrderEntry::Market => params.push(("type", "MARKET".to_string())),
                    OrderEntry::Limit(limit) => {
                        params.push(("type", "LIMIT".to_string()));
                        params.push(("timeInForce", "GTC".to_string()));
                        params.push(("price", rules.price(limit).to_string()));
                    }
                }
                let placed = self.call(Method::POST, "order", params, true).await?;
                let filled = number(&placed, "executedQty");
                // Spot legs wait for the fill; futures legs are reduce-only and wait for the position.
                let legs_qty = match market {
                    BinanceMarket::Spot => rules.qty(filled - fees_in(&placed, base_asset(order))),
                    BinanceMarket::UsdmFutures => qty,
                };
                if legs_qty > Decimal::ZERO {
                    self.place_legs(&order.symbol, order.side, &base, 1, legs_qty, stop, tp).await?;
                }
                Ok(placed)
            }
        }
    }
}

/// The base asset, for netting spot fees: the symbol less its quote (USDT, USDC, FDUSD, BTC...). A wrong
/// guess only means fees are not netted.
fn base_asset(order: &PlaceOrder) -> String {
    let symbol = order.symbol.as_str();
    ["USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY"]
        .iter()
        .find_map(|quote| symbol.strip_suffix(quote))
        .unwrap_or(symbol)
        .to_string()
}

/// Commission a spot FULL response took in `asset`.
fn fees_in(placed: &Value, asset: String) -> Decimal {
    placed["fills"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| words(f, "commissionAsset") == asset)
        .map(|f| number(f, "commission"))
        .sum()
}

/// The two legs of a spot OCO closing a position opened on `side`, named with `prefix` (`""` for an OCO,
/// `"pending"` for an OTOCO). Binance wants the order above the market and the one below it: for a long
/// the take profit (LIMIT_MAKER) is above and the stop (STOP_LOSS) below, for a short the stop is above
/// and the take profit (TAKE_PROFIT, a stop-triggered market) below.
fn spot_oco_legs(prefix: &str, side: Side, base: &str, generation: u32, stop: Decimal, tp: Decimal) -> Params {
    let pending = !prefix.is_empty();
    let name = |above: bool, field: &str| -> &'static str {
        match (pending, above, field) {
            (false, true, "Type") => "aboveType",
            (false, true, "Price") => "abovePrice",
            (false, true, "StopPrice") => "aboveStopPrice",
            (false, true, _) => "aboveClientOrderId",
            (false, false, "Type") => "belowType",
            (false, false, "Price") => "belowPrice",
            (false, false, "StopPrice") => "belowStopPrice",
            (false, false, _) => "belowClientOrderId",
            (true, true, "Type") => "pendingAboveType",
            (true, true, "Price") => "pendingAbovePrice",
            (true, true, "StopPrice") => "pendingAboveStopPrice",
            (true, true, _) => "pendingAboveClientOrderId",
            (true, false, "Type") => "pendingBelowType",
            (true, false, "Price") => "pendingBelowPrice",
            (true, false, "StopPrice") => "pendingBelowStopPrice",
            (true, false, _) => "pendingBelowClientOrderId",
        }
    };
    let stop_id = format!("{base}:s{generation}");
    let tp_id = format!("{base}:t{generation}");
    match side {
        Side::Long => vec![
            (name(true, "Type"), "LIMIT_MAKER".to_string()),
            (name(true, "Price"), tp.to_string()),
            (name(true, "ClientOrderId"), tp_id),
            (name(false, "Type"), "STOP_LOSS".to_string()),
            (name(false, "StopPrice"), stop.to_string()),
            (name(false, "ClientOrderId"), stop_id),
        ],
        Side::Short => vec![
            (name(true, "Type"), "STOP_LOSS".to_string()),
            (name(true, "StopPrice"), stop.to_string()),
            (name(true, "ClientOrderId"), stop_id),
            (name(false, "Type"), "TAKE_PROFIT".to_string()),
            (name(false, "StopPrice"), tp.to_string()),
            (name(false, "ClientOrderId"), tp_id),
        ],
    }
}

/// A lone stop (STOP_LOSS) or take profit (LIMIT_MAKER for a long, TAKE_PROFIT for a short), as a plain order
/// (`prefix` `""`) or the pending order of an OTO (`"pending"`).
fn spot_lone_leg(
    prefix: &str,
    side: Side,
    base: &str,
    generation: u32,
    stop: Option<Decimal>,
    tp: Option<Decimal>,
) -> Params {
    let pending = !prefix.is_empty();
    let name = |field: &str| -> &'static str {
        match (pending, field) {
            (false, "Type") => "type",
            (false, "Price") => "price",
            (false, "StopPrice") => "stopPrice",
            (false, _) => "newClientOrderId",
            (true, "Type") => "pendingType",
            (true, "Price") => "pendingPrice",
            (true, "StopPrice") => "pendingStopPrice",
            (true, _) => "pendingClientOrderId",
        }
    };
    let id_field = name("ClientOrderId");
    match (stop, tp, side) {
        (Some(stop), _, _) => vec![
            (name("Type"), "STOP_LOSS".to_string()),
            (name("StopPrice"), stop.to_string()),
            (id_field, format!("{base}:s{generation}")),
        ],
        (None, Some(tp), Side::Long) => vec![
            (name("Type"), "LIMIT_MAKER".to_string()),
            (name("Price"), tp.to_string()),
            (id_field, format!("{base}:t{generation}")),
        ],
        (None, Some(tp), Side::Short) => vec![
            (name("Type"), "TAKE_PROFIT".to_string()),
            (name("StopPrice"), tp.to_string()),
            (id_field, format!("{base}:t{generation}")),
        ],
        (None, None, _) => vec![],
    }
}

fn parse_exchange_info(info: &Value) -> Result<HashMap<String, Rules>, BrokerError> {
    let symbols = info["symbols"].as_array().ok_or_else(|| unreadable("exchangeInfo"))?;
    let mut rules = HashMap::new();
    for symbol in symbols {
        if words(symbol, "status") != "TRADING" {
            continue;
        }
        let mut entry =
            Rules { tick: Decimal::ZERO, step: Decimal::ZERO, min_qty: Decimal::ZERO, min_notional: Decimal::ZERO };
        for filter in symbol["filters"].as_array().into_iter().flatten() {
            match words(filter, "filterType").as_str() {
                "PRICE_FILTER" => entry.tick = number(filter, "tickSize").normalize(),
                "LOT_SIZE" => {
                    entry.step = number(filter, "stepSize").normalize();
                    entry.min_qty = number(filter, "minQty");
                }
                "NOTIONAL" | "MIN_NOTIONAL" => {
                    // Spot's NOTIONAL says `minNotional`, futures' MIN_NOTIONAL says `notional`.
                    let min = number(filter, "minNotional").max(number(filter, "notional"));
                    entry.min_notional = entry.min_notional.max(min);
                }
                _ => {}
            }
        }
        rules.insert(words(symbol, "symbol"), entry);
    }
    Ok(rules)
}

/// An order from Binance's order object (spot or futures) and its open legs.
fn read_state(id: &ClientOrderId, symbol: &Symbol, entry: &Value, legs: &Legs) -> Result<OrderState, BrokerError> {
    let price = |value: Decimal| Price::new(value).ok();
    let side = match words(entry, "side").as_str() {
        "BUY" => Side::Long,
        "SELL" => Side::Short,
        _ => return Err(unreadable("order side")),
    };
    let status = match words(entry, "status").as_str() {
        "FILLED" => OrderStatus::Filled,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "CANCELED" | "EXPIRED" | "EXPIRED_IN_MATCH" | "PENDING_CANCEL" => OrderStatus::Cancelled,
        "REJECTED" => OrderStatus::Rejected,
        _ => OrderStatus::Pending,
    };
    let entry_kind = match words(entry, "type").as_str() {
        "LIMIT" => OrderEntry::Limit(price(number(entry, "price")).ok_or_else(|| unreadable("limit price"))?),
        _ => OrderEntry::Market,
    };
    let filled = number(entry, "executedQty");
    let avg = if entry.get("avgPrice").is_some() {
        number(entry, "avgPrice")
    } else if filled.is_zero() {
        Decimal::ZERO
    } else {
        number(entry, "cummulativeQuoteQty") / filled
    };
    Ok(OrderState {
        client_order_id: id.clone(),
        broker_order_id: words(entry, "orderId"),
        symbol: symbol.clone(),
        side,
        entry: entry_kind,
        qty: number(entry, "origQty").normalize(),
        filled_qty: filled.normalize(),
        avg_fill_price: price(avg.normalize()),
        status,
        stop_loss: legs.stop.as_ref().and_then(|l| price(l.price.normalize())),
        take_profits: legs.take_profit.as_ref().and_then(|l| price(l.price.normalize())).into_iter().collect(),
    })
}

#[async_trait]
impl Broker for BinanceBroker {
    async fn place(&self, order: &PlaceOrder) -> Result<OrderAck, BrokerError> {
        let rules = self.rules(&order.symbol).await?;
        let qty = rules.qty(order.qty.value());
        if qty.is_zero() || qty < rules.min_qty {
            return Err(BrokerError::rejected(
                "below_min_qty",
                format!("{qty} {} is below Binance's minimum quantity {} (LOT_SIZE)", order.symbol, rules.min_qty),
            ));
        }
        self.remember(&order.client_order_id, &order.symbol);
        if let Some(entry) = self.entry(&order.symbol, &order.client_order_id).await? {
            return self.existing(order, &rules, qty, entry).await;
        }
        let reference = match order.entry {
            OrderEntry::Limit(limit) => rules.price(limit),
            OrderEntry::Market => self.market_price(&order.symbol).await?,
        };
        if qty * reference < rules.min_notional {
            return Err(BrokerError::rejected(
                "below_min_notional",
                format!(
                    "{qty} {} at {reference} is {}, below Binance's minimum order value {} (NOTIONAL)",
                    order.symbol,
                    (qty * reference).normalize(),
                    rules.min_notional.normalize()
                ),
            ));
        }
        if let (BinanceMarket::UsdmFutures, Some(leverage)) = (self.market, order.leverage) {
            let params = vec![("symbol", order.symbol.to_string()), ("leverage", leverage.to_string())];
            self.call(Method::POST, "leverage", params, true).await?;
        }
        let placed = match self.place_entry(order, &rules, qty).await {
            Ok(placed) => placed,
            // A spot duplicate (-2010) or futures one (-4116): the first attempt reached Binance after all.
            Err(BrokerError::Rejected { reason, .. })
                if reason.contains("Duplicate order") || reason.contains("ClientOrderId is duplicated") =>
            {
                let entry = self.entry(&order.symbol, &order.client_order_id).await?.ok_or_else(|| {
                    BrokerError::retryable(format!(
                        "Binance knows client order id {} but did not return it",
                        order.client_order_id
                    ))
                })?;
                return self.existing(order, &rules, qty, entry).await;
            }
            Err(other) => return Err(other),
        };
        let state = self.state(&order.symbol, &order.client_order_id, &placed).await?;
        Ok(OrderAck { state, duplicate: false })
    }

    async fn modify_stop(&self, order: &OrderRef, stop_loss: Price) -> Result<OrderState, BrokerError> {
        let rules = self.rules(&order.symbol).await?;
        let stop = rules.price(stop_loss);
        let entry = self
            .entry(&order.symbol, &order.client_order_id)
            .await?
            .ok_or_else(|| BrokerError::UnknownOrder(order.client_order_id.to_string()))?;
        let base = leg_base(&order.client_order_id);
        let legs = self.legs(&order.symbol, &base).await?;
        let Some(old) = legs.stop.clone() else {
            return Err(BrokerError::rejected(
                "no_stop_leg",
                format!("order {} has no open stop loss to move", order.client_order_id),
            ));
        };
        let side = read_state(&order.client_order_id, &order.symbol, &entry, &legs)?.side;
        let (generation, _) = self.history(&order.symbol, &base, &legs).await?;
        let tp = legs.take_profit.as_ref().map(|l| l.price);
        match self.market {
            BinanceMarket::Spot => {
                if old.pending {
                    return Err(BrokerError::rejected(
                        "entry_not_filled",
                        "Binance spot arms an OTOCO's legs when its entry fills; cancel and place the order again",
                    ));
                }
                // The OCO holds the coins, so it goes before its replacement can be placed.
                self.cancel_legs(&order.symbol, &legs).await?;
                let placed = self.place_legs(&order.symbol, side, &base, generation, old.qty, Some(stop), tp).await;
                if let Err(error) = placed {
                    // Put the old bracket back rather than leave the position unprotected.
                    self.place_legs(&order.symbol, side, &base, generation + 1, old.qty, Some(old.price), tp).await?;
                    return Err(error);
                }
            }
            BinanceMarket::UsdmFutures => {
                // Reduce-only legs may overlap for a moment; the old one goes once the new one stands.
                self.place_legs(&order.symbol, side, &base, generation, old.qty, Some(stop), None).await?;
                self.cancel_legs(&order.symbol, &Legs { stop: Some(old), take_profit: None }).await?;
            }
        }
        self.state(&order.symbol, &order.client_order_id, &entry).await
    }

    async fn close(&self, order: &OrderRef, fraction: Decimal) -> Result<CloseAck, BrokerError> {
        check_fraction(fraction)?;
        let rules = self.rules(&order.symbol).await?;
        let entry = self
            .entry(&order.symbol, &order.client_order_id)
            .await?
            .ok_or_else(|| BrokerError::UnknownOrder(order.client_order_id.to_string()))?;
        let base = leg_base(&order.client_order_id);
        let legs = self.legs(&order.symbol, &base).await?;
        let state = read_state(&order.client_order_id, &order.symbol, &entry, &legs)?;
        let (generation, closed) = self.history(&order.symbol, &base, &legs).await?;
        let open = rules.qty(state.filled_qty - closed);
        if open <= Decimal::ZERO {
            return Err(BrokerError::rejected(
                "not_open",
                format!("order {} has no open quantity to close", order.client_order_id),
            ));
        }
        let qty = if fraction == Decimal::ONE { open } else { rules.qty(open * fraction) };
        if qty.is_zero() || qty < rules.min_qty {
            return Err(BrokerError::rejected(
                "below_min_qty",
                format!("closing {fraction} of {open} is below Binance's minimum quantity {}", rules.min_qty),
            ));
        }
        let left = open - qty;
        let stop = legs.stop.as_ref().map(|l| l.price);
        let tp = legs.take_profit.as_ref().map(|l| l.price);
        let mut params: Params = vec![
            ("symbol", order.symbol.to_string()),
            ("side", exit_word(state.side).to_string()),
            ("type", "MARKET".to_string()),
            ("quantity", qty.to_string()),
            ("newClientOrderId", format!("{base}:c{generation}")),
            ("newOrderRespType", if self.market == BinanceMarket::Spot { "FULL" } else { "RESULT" }.to_string()),
        ];
        let closing = match self.market {
            BinanceMarket::Spot => {
                // The legs hold the coins: cancel, sell, then protect what is left.
                self.cancel_legs(&order.symbol, &legs).await?;
                match self.call(Method::POST, "order", params, true).await {
                    Ok(closing) => {
                        if left > Decimal::ZERO {
                            self.place_legs(&order.symbol, state.side, &base, generation, left, stop, tp).await?;
                        }
                        closing
                    }
                    Err(error) => {
                        self.place_legs(&order.symbol, state.side, &base, generation, open, stop, tp).await?;
                        return Err(error);
                    }
                }
            }
            BinanceMarket::UsdmFutures => {
                params.push(("reduceOnly", "true".to_string()));
                let closing = self.call(Method::POST, "order", params, true).await?;
                if left > Decimal::ZERO {
                    self.place_legs(&order.symbol, state.side, &base, generation, left, stop, tp).await?;
                }
                self.cancel_legs(&order.symbol, &legs).await?;
                closing
            }
        };
        let filled = number(&closing, "executedQty");
        let avg = if closing.get("avgPrice").is_some() {
            number(&closing, "avgPrice")
        } else if filled.is_zero() {
            Decimal::ZERO
        } else {
            number(&closing, "cummulativeQuoteQty") / filled
        };
        Ok(CloseAck {
            qty: qty.normalize(),
            price: Price::new(avg.normalize()).ok(),
            remaining: Some(left.normalize()),
        })
    }

    async fn cancel(&self, order: &OrderRef) -> Result<OrderState, BrokerError> {
        let entry = self
            .entry(&order.symbol, &order.client_order_id)
            .await?
            .ok_or_else(|| BrokerError::UnknownOrder(order.client_order_id.to_string()))?;
        let base = leg_base(&order.client_order_id);
        let legs = self.legs(&order.symbol, &base).await?;
        let state = read_state(&order.client_order_id, &order.symbol, &entry, &legs)?;
        match state.status {
            OrderStatus::Cancelled | OrderStatus::Rejected => return Ok(state),
            OrderStatus::Filled | OrderStatus::PartiallyFilled => {
                return Err(BrokerError::rejected(
                    "not_cancellable",
                    format!("order {} has filled; close it instead", order.client_order_id),
                ));
            }
            OrderStatus::Pending => {}
        }
        let params =
            vec![("symbol", order.symbol.to_string()), ("origClientOrderId", binance_id(&order.client_order_id))];
        match self.call(Method::DELETE, "order", params, true).await {
            Ok(_) => {}
            // Filled between the two calls: Binance no longer knows it as cancellable.
            Err(BrokerError::UnknownOrder(message)) => return Err(BrokerError::rejected("not_cancellable", message)),
            Err(other) => return Err(other),
        }
        // Spot cancels an order list's legs with its entry; futures legs are orders of their own.
        let legs = self.legs(&order.symbol, &base).await?;
        self.cancel_legs(&order.symbol, &legs).await?;
        let entry = self
            .entry(&order.symbol, &order.client_order_id)
            .await?
            .ok_or_else(|| BrokerError::retryable("Binance lost the order it just cancelled"))?;
        self.state(&order.symbol, &order.client_order_id, &entry).await
    }

    async fn order(&self, client_order_id: &ClientOrderId) -> Result<Option<OrderState>, BrokerError> {
        let symbol = match self.known_symbol(client_order_id) {
            Some(symbol) => symbol,
            None => {
                let open = self.call(Method::GET, "openOrders", vec![], true).await?;
                let wanted = binance_id(client_order_id);
                let found = open
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|o| words(o, "clientOrderId") == wanted)
                    .map(|o| Symbol::normalize(&words(o, "symbol")));
                match found {
                    Some(symbol) => symbol,
                    None => return Ok(None),
                }
            }
        };
        match self.entry(&symbol, client_order_id).await? {
            Some(entry) => Ok(Some(self.state(&symbol, client_order_id, &entry).await?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_binances_36_characters_and_legs_are_found_by_their_base() {
        let short = ClientOrderId::new("sp-42-7").unwrap();
        assert_eq!(binance_id(&short), "sp-42-7");
        let long = ClientOrderId::new("a".repeat(48)).unwrap();
        let id = binance_id(&long);
        assert_eq!(id.len(), 36);
        assert_eq!(id, binance_id(&long), "the same id maps the same way every time");
        assert_ne!(id, binance_id(&ClientOrderId::new(format!("{}b", "a".repeat(47))).unwrap()));
        let base = leg_base(&long);
        assert_eq!(base.len(), 30);
        assert_eq!(generation(&format!("{base}:s12"), &base), Some(12));
        assert_eq!(generation("sp-42-7", "sp-42"), None);
        assert_eq!(generation("sp-42-7:t3", "sp-42-7"), Some(3));
    }

    #[test]
    fn quantities_round_down_to_the_step_and_prices_to_the_tick() {
        let rules = Rules {
            tick: Decimal::new(1, 1),
            step: Decimal::new(1, 3),
            min_qty: Decimal::new(1, 3),
            min_notional: Decimal::from(5),
        };
        assert_eq!(rules.qty(Decimal::new(12_349, 4)), Decimal::new(1234, 3));
        assert_eq!(rules.price(Price::new(Decimal::new(500_004, 1)).unwrap()), Decimal::new(500_004, 1));
        assert_eq!(rules.price(Price::new(Decimal::new(5_000_047, 2)).unwrap()), Decimal::new(500_005, 1));
    }

    #[test]
    fn secrets_and_signed_queries_are_scrubbed() {
        let credentials = BinanceCredentials::new("KEY123", "SECRET456");
        let text = credentials.scrub("error for url (http://h/api/v3/order?symbol=X&signature=abc) SECRET456 KEY123");
        assert!(!text.contains("SECRET456") && !text.contains("KEY123") && !text.contains("signature"), "{text}");
        assert_eq!(format!("{credentials:?}"), "BinanceCredentials([redacted])");
    }
}

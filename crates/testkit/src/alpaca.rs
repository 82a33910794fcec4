//! [`FakeAlpaca`]: Alpaca's trading API (v2) on `127.0.0.1:0`, for the routes Signalpost's broker uses.
//!
//! Each request meets, in order: a scripted fault if a test queued one, the key headers (401 otherwise), the
//! 200-requests-a-minute limit (429 with `X-RateLimit-*` headers), then the route, which validates the body
//! as Alpaca does (known symbol, qty > 0, bracket legs on the right sides of the symbol's price, unique
//! `client_order_id`). Errors use Alpaca's body, `{"code": 40010001, "message": "..."}`. Market orders fill
//! at once at the price the test set for the symbol; limit orders rest.

use crate::scripted_http::{DropConnection, dropped, serve};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

pub const DEFAULT_KEY_ID: &str = "PKFAKEKEYID0000000000";
pub const DEFAULT_SECRET_KEY: &str = "fake-secret-key-0123456789abcdefghijklmnop";

/// A failure the fake serves instead of (or after) the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 500 with Alpaca's error body; nothing is done.
    ServerError,
    /// 429 with `X-RateLimit-Reset` two seconds ahead; nothing is done.
    RateLimited,
    /// The connection is closed before anything is done.
    Disconnect,
    /// The request is carried out, then the connection is closed without an answer: the client cannot
    /// know its order went through.
    DropResponse,
    /// Any status with Alpaca's error body; nothing is done.
    Error { status: u16, code: u64, message: String },
}

/// One request as the fake received it, with the status it answered (`None`: the connection was dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct AlpacaRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Names lower case.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub status: Option<u16>,
}

impl AlpacaRequest {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Configures a [`FakeAlpaca`] before it starts.
#[derive(Debug, Clone)]
pub struct FakeAlpacaBuilder {
    key_id: String,
    secret_key: String,
    per_minute: usize,
    prices: HashMap<String, Decimal>,
}

impl Default for FakeAlpacaBuilder {
    fn default() -> Self {
        FakeAlpacaBuilder {
            key_id: DEFAULT_KEY_ID.to_string(),
            secret_key: DEFAULT_SECRET_KEY.to_string(),
            per_minute: 200,
            prices: HashMap::new(),
        }
    }
}

impl FakeAlpacaBuilder {
    pub fn keys(mut self, key_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        self.key_id = key_id.into();
        self.secret_key = secret_key.into();
        self
    }

    /// Requests a minute before 429 (Alpaca's default is 200).
    pub fn rate_limit(mut self, per_minute: usize) -> Self {
        self.per_minute = per_minute;
        self
    }

    /// A tradable symbol, as Alpaca spells it (`AAPL`, `BTC/USD`), and its price.
    pub fn price(mut self, symbol: impl Into<String>, price: Decimal) -> Self {
        self.prices.insert(symbol.into(), price);
        self
    }

    pub async fn start(self) -> FakeAlpaca {
        FakeAlpaca::start_with(self).await
    }
}

#[derive(Debug)]
struct FakeState {
    prices: HashMap<String, Decimal>,
    /// Parent orders (with their legs nested) and closing orders, in arrival order.
    orders: Vec<Value>,
    /// Legs that a replacement took out of their parent, still answerable by id.
    replaced: Vec<Value>,
    /// Signed quantity per symbol without `/` (Alpaca's position ids).
    positions: HashMap<String, Decimal>,
    faults: VecDeque<Fault>,
    window: VecDeque<Instant>,
    requests: Vec<AlpacaRequest>,
    next_id: u64,
    rate_limited: usize,
}

#[derive(Debug)]
struct Shared {
    key_id: String,
    secret_key: String,
    per_minute: usize,
    state: Mutex<FakeState>,
    /// The number of orders held, for waiting on arrivals without copying the order list.
    order_count: tokio::sync::watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread must not hide what the fake recorded from the next assertion.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A fake of Alpaca's trading API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeAlpaca {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeAlpaca {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAlpaca {
    /// A fake with the default keys, no symbols and Alpaca's 200 requests a minute.
    pub async fn start() -> FakeAlpaca {
        FakeAlpacaBuilder::default().start().await
    }

    pub fn builder() -> FakeAlpacaBuilder {
        FakeAlpacaBuilder::default()
    }

    async fn start_with(builder: FakeAlpacaBuilder) -> FakeAlpaca {
        let shared = Arc::new(Shared {
            key_id: builder.key_id,
            secret_key: builder.secret_key,
            per_minute: builder.per_minute,
            state: Mutex::new(FakeState {
                prices: builder.prices,
                orders: Vec::new(),
                replaced: Vec::new(),
                positions: HashMap::new(),
                faults: VecDeque::new(),
                window: VecDeque::new(),
                requests: Vec::new(),
                next_id: 0,
                rate_limited: 0,
            }),
            order_count: tokio::sync::watch::Sender::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let router = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let server = tokio::spawn(serve(listener, router));
        FakeAlpaca { shared, addr, server }
    }

    /// `http://127.0.0.1:PORT`: what `ALPACA_BASE_URL` points at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn key_id(&self) -> &str {
        &self.shared.key_id
    }

    pub fn secret_key(&self) -> &str {
        &self.shared.secret_key
    }

    /// Sets (or adds) a symbol's price, as Alpaca spells the symbol.
    pub fn set_price(&self, symbol: &str, price: Decimal) {
        self.shared.lock().prices.insert(symbol.to_string(), price);
    }

    /// Serves `fault` to each of the next `n` requests.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.shared.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Every order accepted (parents with their legs, and closing orders), as it stands now.
    pub fn orders(&self) -> Vec<Value> {
        self.shared.lock().orders.clone()
    }

    /// How many orders the fake holds (as [`FakeAlpaca::orders`]' length, without copying them).
    pub fn order_count(&self) -> usize {
        *self.shared.order_count.borrow()
    }

    /// Waits until the fake holds at least `n` orders; the error says how many arrived within `timeout`.
    pub async fn wait_for_orders(&self, n: usize, timeout: Duration) -> Result<(), usize> {
        let mut count = self.shared.order_count.subscribe();
        match tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.order_count()),
        }
    }

    /// The signed position quantity of a symbol (`BTCUSD` or `BTC/USD`), if any.
    pub fn position(&self, symbol: &str) -> Option<Decimal> {
        self.shared.lock().positions.get(&symbol.replace('/', "")).copied()
    }

    pub fn requests(&self) -> Vec<AlpacaRequest> {
        self.shared.lock().requests.clone()
    }

    /// 429s sent because the 200-a-minute limit was really exceeded (scripted ones excluded).
    pub fn rate_limited_count(&self) -> usize {
        self.shared.lock().rate_limited
    }
}

fn alpaca_error(status: StatusCode, code: u64, message: &str) -> Response {
    (status, axum::Json(json!({"code": code, "message": message}))).into_response()
}

fn unprocessable(message: &str) -> Response {
    alpaca_error(StatusCode::UNPROCESSABLE_ENTITY, 40010001, message)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rate_headers(response: &mut Response, limit: usize, remaining: usize, reset: u64) {
    let headers = response.headers_mut();
    for (name, value) in
        [("x-ratelimit-limit", limit as u64), ("x-ratelimit-remaining", remaining as u64), ("x-ratelimit-reset", reset)]
    {
        if let Ok(value) = value.to_string().parse() {
            headers.insert(name, value);
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let mut record = AlpacaRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: serde_json::from_slice(&bytes).ok(),
        status: None,
    };
    let response = answer(&shared, &parts.method, &parts.uri, &parts.headers, &bytes);
    if response.extensions().get::<DropConnection>().is_none() {
        record.status = Some(response.status().as_u16());
    }
    let orders = {
        let mut state = shared.lock();
        state.requests.push(record);
        state.orders.len()
    };
    shared.order_count.send_if_modified(|count| std::mem::replace(count, orders) != orders);
    response
}

fn answer(shared: &Shared, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut state = shared.lock();
    let fault = state.faults.pop_front();
    match fault {
        Some(Fault::ServerError) => {
            return alpaca_error(StatusCode::INTERNAL_SERVER_ERROR, 50010000, "internal server error");
        }
        Some(Fault::RateLimited) => {
            let mut response = alpaca_error(StatusCode::TOO_MANY_REQUESTS, 42910000, "rate limit exceeded");
            rate_headers(&mut response, shared.per_minute, 0, unix_now() + 2);
            return response;
        }
        Some(Fault::Disconnect) => return dropped(),
        Some(Fault::Error { status, code, message }) => {
            return alpaca_error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                code,
                &message,
            );
        }
        Some(Fault::DropResponse) | None => {}
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("apca-api-key-id") != Some(shared.key_id.as_str())
        || header("apca-api-secret-key") != Some(shared.secret_key.as_str())
    {
        return alpaca_error(StatusCode::UNAUTHORIZED, 40110000, "request is not authorized");
    }
    let now = Instant::now();
    while state.window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
        state.window.pop_front();
    }
    let reset = unix_now() + state.window.front().map_or(60, |t| 60 - now.duration_since(*t).as_secs());
    if state.window.len() >= shared.per_minute {
        state.rate_limited += 1;
        let mut response = alpaca_error(StatusCode::TOO_MANY_REQUESTS, 42910000, "rate limit exceeded");
        rate_headers(&mut response, shared.per_minute, 0, reset);
        return response;
    }
    state.window.push_back(now);
    let remaining = shared.per_minute - state.window.len();
    let query: HashMap<String, String> = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let mut response = match (method, segments.as_slice()) {
        (&Method::POST, ["v2", "orders"]) => create_order(&mut state, body),
        (&Method::GET, ["v2", "orders:by_client_order_id"]) => {
            let wanted = query.get("client_order_id").map(String::as_str).unwrap_or("");
            match state.orders.iter().find(|o| o["client_order_id"] == wanted) {
                Some(order) => axum::Json(order.clone()).into_response(),
                None => alpaca_error(StatusCode::NOT_FOUND, 40410000, "order not found"),
            }
        }
        (&Method::GET, ["v2", "orders", id]) => match find_order(&state, id) {
            Some(order) => axum::Json(order).into_response(),
            None => alpaca_error(StatusCode::NOT_FOUND, 40410000, "order not found"),
        },
        (&Method::PATCH, ["v2", "orders", id]) => replace_order(&mut state, id, body),
        (&Method::DELETE, ["v2", "orders", id]) => cancel_order(&mut state, id),
        (&Method::DELETE, ["v2", "positions", symbol]) => {
            close_position(&mut state, symbol, query.get("percentage").map(String::as_str))
        }
        _ => alpaca_error(StatusCode::NOT_FOUND, 40410000, "endpoint not found"),
    };
    rate_headers(&mut response, shared.per_minute, remaining, reset);
    if fault == Some(Fault::DropResponse) {
        return dropped();
    }
    response
}

fn decimal_field(value: &Value) -> Option<Decimal> {
    value
        .as_str()
        .and_then(|s| Decimal::from_str(s).ok())
        .or_else(|| value.as_f64().and_then(|f| Decimal::try_from(f).ok()))
}

fn new_id(state: &mut FakeState) -> String {
    state.next_id += 1;
    format!("{:08x}-0000-4000-8000-{:012x}", 0x5167_u32, state.next_id)
}

/// An order object as Alpaca answers it; the caller sets `order_class`, `time_in_force` and the prices.
fn order_object(id: String, client_order_id: &str, symbol: &str, qty: Decimal, side: &str, kind: &str) -> Value {
    json!({
        "id": id,
        "client_order_id": client_order_id,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "symbol": symbol,
        "asset_class": if symbol.contains('/') { "crypto" } else { "us_equity" },
        "qty": qty.to_string(),
        "filled_qty": "0",
        "filled_avg_price": null,
        "order_class": "simple",
        "order_type": kind,
        "type": kind,
        "side": side,
        "time_in_force": "day",
        "limit_price": null,
        "stop_price": null,
        "status": "new",
        "legs": null,
    })
}

fn create_order(state: &mut FakeState, body: &Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return alpaca_error(StatusCode::BAD_REQUEST, 40010000, "request body format is invalid");
    };
    let text = |name: &str| body[name].as_str().unwrap_or("");
    let symbol = text("symbol");
    let Some(&price) = state.prices.get(symbol) else {
        return unprocessable(&format!("asset \"{symbol}\" not found"));
    };
    let qty = match decimal_field(&body["qty"]) {
        Some(qty) if qty > Decimal::ZERO => qty,
        _ => return unprocessable("qty must be > 0"),
    };
    let side = text("side");
    if !matches!(side, "buy" | "sell") {
        return unprocessable("invalid side");
    }
    let kind = text("type");
    let limit_price = match kind {
        "market" => None,
        "limit" => match decimal_field(&body["limit_price"]) {
            Some(p) if p > Decimal::ZERO => Some(p),
            _ => return unprocessable("limit_price is required for limit orders"),
        },
        _ => return unprocessable(&format!("unsupported order type \"{kind}\"")),
    };
    let tif = text("time_in_force");
    if !matches!(tif, "day" | "gtc" | "ioc" | "fok" | "opg" | "cls") {
        return unprocessable("invalid time_in_force");
    }
    let order_class = body["order_class"].as_str().unwrap_or("simple");
    let take_profit = decimal_field(&body["take_profit"]["limit_price"]);
    let stop_loss = decimal_field(&body["stop_loss"]["stop_price"]);
    match order_class {
        "simple" | "" if take_profit.is_none() && stop_loss.is_none() => {}
        "bracket" if take_profit.is_some() && stop_loss.is_some() => {}
        "oto" if take_profit.is_some() != stop_loss.is_some() => {}
        "bracket" => return unprocessable("bracket orders must have take_profit and stop_loss"),
        "oto" => return unprocessable("oto orders must have either take_profit or stop_loss"),
        _ => return unprocessable(&format!("invalid order_class \"{order_class}\" for these legs")),
    }
    if order_class != "simple" && !matches!(tif, "day" | "gtc") {
        return unprocessable("time_in_force must be day or gtc for advanced orders");
    }
    let base = limit_price.unwrap_or(price);
    let cent = Decimal::new(1, 2);
    let buy = side == "buy";
    if let Some(tp) = take_profit
        && (if buy { tp < base + cent } else { tp > base - cent })
    {
        let rule = if buy { ">= base_price + 0.01" } else { "<= base_price - 0.01" };
        return unprocessable(&format!("take_profit.limit_price must be {rule}"));
    }
    if let Some(sl) = stop_loss
        && (if buy { sl > base - cent } else { sl < base + cent })
    {
        let rule = if buy { "<= base_price - 0.01" } else { ">= base_price + 0.01" };
        return unprocessable(&format!("stop_loss.stop_price must be {rule}"));
    }
    let client_order_id = match body["client_order_id"].as_str() {
        Some(id) if id.len() > 128 => return unprocessable("client_order_id must be no more than 128 characters"),
        Some(id) if state.orders.iter().any(|o| o["client_order_id"] == id) => {
            return unprocessable("client_order_id must be unique");
        }
        Some(id) => id.to_string(),
        None => new_id(state),
    };
    let id = new_id(state);
    let mut order = order_object(id, &client_order_id, symbol, qty, side, kind);
    order["order_class"] = json!(order_class);
    order["time_in_force"] = json!(tif);
    order["limit_price"] = json!(limit_price.map(|p| p.to_string()));
    let exit_side = if buy { "sell" } else { "buy" };
    let filled = kind == "market" || limit_price.is_some_and(|l| if buy { l >= price } else { l <= price });
    let mut legs = Vec::new();
    for (leg_kind, leg_price) in [("limit", take_profit), ("stop", stop_loss)] {
        let Some(leg_price) = leg_price else { continue };
        let (leg_id, leg_client) = (new_id(state), new_id(state));
        let mut leg = order_object(leg_id, &leg_client, symbol, qty, exit_side, leg_kind);
        leg["order_class"] = json!(order_class);
        leg["time_in_force"] = json!(tif);
        leg[if leg_kind == "limit" { "limit_price" } else { "stop_price" }] = json!(leg_price.to_string());
        leg["status"] = json!(if filled { "new" } else { "held" });
        legs.push(leg);
    }
    if !legs.is_empty() {
        order["legs"] = json!(legs);
    }
    if filled {
        order["status"] = json!("filled");
        order["filled_qty"] = json!(qty.to_string());
        order["filled_avg_price"] = json!(price.to_string());
        *state.positions.entry(symbol.replace('/', "")).or_default() += if buy { qty } else { -qty };
    }
    state.orders.push(order.clone());
    axum::Json(order).into_response()
}

fn find_order(state: &FakeState, id: &str) -> Option<Value> {
    state
        .orders
        .iter()
        .flat_map(|o| std::iter::once(o).chain(o["legs"].as_array().into_iter().flatten()))
        .chain(state.replaced.iter())
        .find(|o| o["id"] == id)
        .cloned()
}

fn replace_order(state: &mut FakeState, id: &str, body: &Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return alpaca_error(StatusCode::BAD_REQUEST, 40010000, "request body format is invalid");
    };
    let located = state.orders.iter().enumerate().find_map(|(i, parent)| {
        parent["legs"].as_array().and_then(|legs| legs.iter().position(|l| l["id"] == id)).map(|j| (i, j))
    });
    let Some((i, j)) = located else {
        // Only bracket legs are replaced through this fake; a missing id is Alpaca's 404.
        return alpaca_error(StatusCode::NOT_FOUND, 40410000, "order not found");
    };
    let old = state.orders[i]["legs"][j].clone();
    if !matches!(old["status"].as_str(), Some("new" | "held" | "accepted")) {
        return unprocessable("order is not replaceable");
    }
    let mut new = old.clone();
    if let Some(stop) = body.get("stop_price") {
        let Some(stop) = decimal_field(stop).filter(|s| *s > Decimal::ZERO) else {
            return unprocessable("invalid stop_price");
        };
        if old["type"] != "stop" {
            return unprocessable("stop_price is only for stop orders");
        }
        let symbol = old["symbol"].as_str().unwrap_or("");
        let price = state.prices.get(symbol).copied().unwrap_or_default();
        // A sell stop at or above the market (a buy stop at or below) would trigger at once.
        let wrong = if old["side"] == "sell" { stop >= price } else { stop <= price };
        if wrong {
            let rule = if old["side"] == "sell" { "below" } else { "above" };
            return unprocessable(&format!("stop_price must be {rule} the current price {price}"));
        }
        new["stop_price"] = json!(stop.to_string());
    }
    if let Some(limit) = body.get("limit_price") {
        let Some(limit) = decimal_field(limit).filter(|l| *l > Decimal::ZERO) else {
            return unprocessable("invalid limit_price");
        };
        new["limit_price"] = json!(limit.to_string());
    }
    new["id"] = json!(new_id(state));
    new["replaces"] = old["id"].clone();
    let mut old = old;
    old["status"] = json!("replaced");
    old["replaced_by"] = new["id"].clone();
    state.replaced.push(old);
    state.orders[i]["legs"][j] = new.clone();
    axum::Json(new).into_response()
}

fn cancel_order(state: &mut FakeState, id: &str) -> Response {
    let Some(parent) = state.orders.iter_mut().find(|o| o["id"] == id) else {
        return alpaca_error(StatusCode::NOT_FOUND, 40410000, "order not found");
    };
    let status = parent["status"].as_str().unwrap_or("").to_string();
    if !matches!(status.as_str(), "new" | "accepted" | "held" | "pending_new") {
        return unprocessable(&format!("order is already in \"{status}\" state"));
    }
    parent["status"] = json!("canceled");
    for leg in parent["legs"].as_array_mut().into_iter().flatten() {
        leg["status"] = json!("canceled");
    }
    StatusCode::NO_CONTENT.into_response()
}

fn close_position(state: &mut FakeState, symbol: &str, percentage: Option<&str>) -> Response {
    let key = symbol.replace('/', "");
    let position = state.positions.get(&key).copied().unwrap_or_default();
    if position.is_zero() {
        return alpaca_error(StatusCode::NOT_FOUND, 40410000, "position does not exist");
    }
    let percentage = match percentage.map(Decimal::from_str) {
        None => Decimal::ONE_HUNDRED,
        Some(Ok(p)) if p > Decimal::ZERO && p <= Decimal::ONE_HUNDRED => p,
        Some(_) => return unprocessable("percentage must be > 0 and <= 100"),
    };
    let qty = (position.abs() * percentage / Decimal::ONE_HUNDRED).round_dp(9).normalize();
    // The position's own legs hold its quantity on the real API; the fake trusts the client to have
    // arranged that and only moves the position.
    let alpaca_symbol = state.prices.keys().find(|s| s.replace('/', "") == key).cloned().unwrap_or(key.clone());
    let price = state.prices.get(&alpaca_symbol).copied().unwrap_or_default();
    let side = if position > Decimal::ZERO { "sell" } else { "buy" };
    let (id, client) = (new_id(state), new_id(state));
    let mut order = order_object(id, &client, &alpaca_symbol, qty, side, "market");
    order["status"] = json!("filled");
    order["filled_qty"] = json!(qty.to_string());
    order["filled_avg_price"] = json!(price.to_string());
    let signed = if position > Decimal::ZERO { -qty } else { qty };
    *state.positions.entry(key).or_default() += signed;
    state.orders.push(order.clone());
    axum::Json(order).into_response()
}

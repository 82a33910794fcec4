//! [`FakeBinance`]: Binance's spot REST API (`/api/v3/...`) or its USDⓈ-M futures API (`/fapi/v1/...`) on
//! `127.0.0.1:0`, for the routes Signalpost's Binance broker uses.
//!
//! Each request meets, in Binance's order: a scripted fault if a test queued one, the request-weight limit
//! (every answer carries `X-MBX-USED-WEIGHT-1M`; past the limit a 429 with code -1003 and `Retry-After`), then
//! for signed routes the `X-MBX-APIKEY` header (-2015), the `timestamp` against `recvWindow` on the fake's
//! injectable clock (-1021) and the HMAC-SHA256 `signature` recomputed over the exact query string and body
//! (-1022). Orders are checked against an exchangeInfo built from the recorded payload in
//! `data/binance/` with the test's PRICE_FILTER, LOT_SIZE and NOTIONAL/MIN_NOTIONAL (-1013 "Filter failure:
//! ..."), against the account's balance (spot -2010, futures -2019), and for duplicate client order ids. Errors
//! use Binance's body, `{"code": -1013, "msg": "..."}`.
//!
//! Market orders fill at once at the price the test set; limits rest until [`FakeBinance::set_price`] crosses
//! them. Spot brackets are order lists (OCO, OTO, OTOCO) whose pending legs wake when the working order
//! fills; futures brackets are conditional algo orders (`STOP_MARKET`, `TAKE_PROFIT_MARKET`). Stops and take
//! profits never trigger here: tests move them and read them back.

// A refusal here is the HTTP answer itself, built once per request; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use crate::scripted_http::{DropConnection, dropped, serve};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{Clock, SystemClock};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub const DEFAULT_API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
pub const DEFAULT_API_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

const SPOT_EXCHANGE_INFO: &str = include_str!("../data/binance/spot_exchange_info.json");
const SPOT_ORDER: &str = include_str!("../data/binance/spot_order.json");
const FUTURES_ORDER: &str = include_str!("../data/binance/futures_order.json");
const FUTURES_ALGO_ORDERS: &str = include_str!("../data/binance/futures_open_algo_orders.json");

/// Which of Binance's APIs the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// `/api/v3/...`
    Spot,
    /// `/fapi/v1/...`, one-way position mode.
    UsdmFutures,
}

/// A failure the fake serves instead of (or after) the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 500 with an HTML body, as Binance's gateway answers; nothing is done.
    ServerError,
    /// 429 with code -1003 and `Retry-After: 2`; nothing is done.
    RateLimited,
    /// The connection is closed before anything is done.
    Disconnect,
    /// The request is carried out, then the connection is closed without an answer.
    DropResponse,
    /// Any status with Binance's error body; nothing is done.
    Error { status: u16, code: i64, msg: String },
}

/// One request as the fake received it, with the status it answered (`None`: the connection was dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct BinanceRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Names lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: Option<u16>,
}

impl BinanceRequest {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A parameter from the query string or the form body.
    pub fn param(&self, name: &str) -> Option<String> {
        params(self.query.as_deref().unwrap_or(""), &self.body).remove(name)
    }
}

/// A symbol the fake lists, with its filters and the price market orders fill at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price: Decimal,
    pub tick_size: Decimal,
    pub step_size: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_notional: Decimal,
}

impl Listing {
    /// A symbol with Binance's usual USDT-pair filters: tick 0.01, step 0.00001, min qty 0.00001, notional 5.
    pub fn new(symbol: &str, base: &str, quote: &str, price: Decimal) -> Listing {
        Listing {
            symbol: symbol.to_string(),
            base: base.to_string(),
            quote: quote.to_string(),
            price,
            tick_size: Decimal::new(1, 2),
            step_size: Decimal::new(1, 5),
            min_qty: Decimal::new(1, 5),
            max_qty: Decimal::from(9000),
            min_notional: Decimal::from(5),
        }
    }

    pub fn tick(mut self, tick_size: Decimal) -> Listing {
        self.tick_size = tick_size;
        self
    }

    pub fn step(mut self, step_size: Decimal, min_qty: Decimal) -> Listing {
        self.step_size = step_size;
        self.min_qty = min_qty;
        self
    }

    pub fn min_notional(mut self, min_notional: Decimal) -> Listing {
        self.min_notional = min_notional;
        self
    }
}

/// Configures a [`FakeBinance`] before it starts.
#[derive(Debug, Clone)]
pub struct FakeBinanceBuilder {
    market: Market,
    api_key: String,
    api_secret: String,
    weight_limit: u32,
    listings: Vec<Listing>,
    balances: HashMap<String, Decimal>,
    clock: Arc<dyn Clock>,
}

impl FakeBinanceBuilder {
    fn new(market: Market) -> FakeBinanceBuilder {
        FakeBinanceBuilder {
            market,
            api_key: DEFAULT_API_KEY.to_string(),
            api_secret: DEFAULT_API_SECRET.to_string(),
            // Binance's limits: 6000 weight a minute on spot, 2400 on futures.
            weight_limit: if market == Market::Spot { 6000 } else { 2400 },
            listings: Vec::new(),
            balances: HashMap::new(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn keys(mut self, api_key: impl Into<String>, api_secret: impl Into<String>) -> Self {
        self.api_key = api_key.into();
        self.api_secret = api_secret.into();
        self
    }

    /// Request weight a minute before 429.
    pub fn weight_limit(mut self, per_minute: u32) -> Self {
        self.weight_limit = per_minute;
        self
    }

    pub fn listing(mut self, listing: Listing) -> Self {
        self.listings.push(listing);
        self
    }

    /// A `BASEQUOTE` symbol with the usual filters (see [`Listing::new`]).
    pub fn symbol(self, base: &str, quote: &str, price: Decimal) -> Self {
        let symbol = format!("{base}{quote}");
        self.listing(Listing::new(&symbol, base, quote, price))
    }

    /// An asset's free balance (spot), or the futures wallet's balance of the margin asset (USDT).
    pub fn balance(mut self, asset: &str, amount: Decimal) -> Self {
        self.balances.insert(asset.to_string(), amount);
        self
    }

    /// The clock `timestamp` is checked against (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub async fn start(self) -> FakeBinance {
        FakeBinance::start_with(self).await
    }
}

/// An order as the fake keeps it; rendered in the recorded wire shapes.
#[derive(Debug, Clone)]
struct Order {
    id: u64,
    client_id: String,
    symbol: String,
    side: String,
    kind: String,
    qty: Decimal,
    price: Option<Decimal>,
    stop_price: Option<Decimal>,
    tif: String,
    status: String,
    executed: Decimal,
    quote: Decimal,
    list_id: i64,
    reduce_only: bool,
    time: i64,
    update_time: i64,
}

#[derive(Debug, Clone)]
struct OrderList {
    id: i64,
    client_id: String,
    contingency: String,
    orders: Vec<u64>,
    /// The working order of an OTO/OTOCO; its pending legs wake when it fills.
    working: Option<u64>,
    status: String,
}

#[derive(Debug, Clone)]
struct AlgoOrder {
    id: u64,
    client_id: String,
    symbol: String,
    side: String,
    kind: String,
    qty: Option<Decimal>,
    trigger: Decimal,
    close_position: bool,
    reduce_only: bool,
    working_type: String,
    status: String,
    time: i64,
    update_time: i64,
}

#[derive(Debug)]
struct FakeState {
    listings: BTreeMap<String, Listing>,
    balances: HashMap<String, Decimal>,
    positions: HashMap<String, Decimal>,
    leverage: HashMap<String, u32>,
    orders: Vec<Order>,
    lists: Vec<OrderList>,
    algos: Vec<AlgoOrder>,
    faults: VecDeque<Fault>,
    /// Faults for the next request to one route: (method, path, fault).
    targeted: Vec<(String, String, Fault)>,
    window: VecDeque<(Instant, u32)>,
    requests: Vec<BinanceRequest>,
    next_id: u64,
}

#[derive(Debug)]
struct Shared {
    market: Market,
    api_key: String,
    api_secret: String,
    weight_limit: u32,
    clock: Arc<dyn Clock>,
    state: Mutex<FakeState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread must not hide what the fake recorded from the next assertion.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}

/// A fake of Binance's spot or USDⓈ-M futures REST API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeBinance {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeBinance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeBinance {
    pub fn spot() -> FakeBinanceBuilder {
        FakeBinanceBuilder::new(Market::Spot)
    }

    pub fn futures() -> FakeBinanceBuilder {
        FakeBinanceBuilder::new(Market::UsdmFutures)
    }

    async fn start_with(builder: FakeBinanceBuilder) -> FakeBinance {
        let shared = Arc::new(Shared {
            market: builder.market,
            api_key: builder.api_key,
            api_secret: builder.api_secret,
            weight_limit: builder.weight_limit,
            clock: builder.clock,
            state: Mutex::new(FakeState {
                listings: builder.listings.into_iter().map(|l| (l.symbol.clone(), l)).collect(),
                balances: builder.balances,
                positions: HashMap::new(),
                leverage: HashMap::new(),
                orders: Vec::new(),
                lists: Vec::new(),
                algos: Vec::new(),
                faults: VecDeque::new(),
                targeted: Vec::new(),
                window: VecDeque::new(),
                requests: Vec::new(),
                next_id: 1000,
            }),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let router = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let server = tokio::spawn(serve(listener, router));
        FakeBinance { shared, addr, server }
    }

    /// `http://127.0.0.1:PORT`: what `BINANCE_BASE_URL` points at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn market(&self) -> Market {
        self.shared.market
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    pub fn api_secret(&self) -> &str {
        &self.shared.api_secret
    }

    /// Moves a symbol's price; resting limit orders it crosses fill, and their pending legs wake.
    pub fn set_price(&self, symbol: &str, price: Decimal) {
        let mut state = self.shared.lock();
        let now = self.shared.now_ms();
        if let Some(listing) = state.listings.get_mut(symbol) {
            listing.price = price;
        }
        let crossed: Vec<u64> = state
            .orders
            .iter()
            .filter(|o| o.symbol == symbol && o.status == "NEW" && matches!(o.kind.as_str(), "LIMIT" | "LIMIT_MAKER"))
            .filter(|o| o.price.is_some_and(|p| if o.side == "BUY" { p >= price } else { p <= price }))
            .map(|o| o.id)
            .collect();
        for id in crossed {
            fill(&mut state, self.shared.market, id, None, now);
        }
    }

    /// Queues faults served to the next `count` requests.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut state = self.shared.lock();
        state.faults.extend(std::iter::repeat_n(fault, count));
    }

    /// Serves `fault` to the next request for `method` and `path` (`"POST"`, `"/api/v3/order"`), whatever
    /// comes before it.
    pub fn fail_on(&self, method: &str, path: &str, fault: Fault) {
        self.shared.lock().targeted.push((method.to_string(), path.to_string(), fault));
    }

    pub fn requests(&self) -> Vec<BinanceRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every order the fake holds, in the wire shape `GET .../order` answers, oldest first.
    pub fn orders(&self) -> Vec<Value> {
        let state = self.shared.lock();
        state.orders.iter().map(|o| order_json(self.shared.market, o)).collect()
    }

    /// Orders that are not done yet (`NEW`, `PENDING_NEW`, `PARTIALLY_FILLED`).
    pub fn open_orders(&self) -> Vec<Value> {
        let state = self.shared.lock();
        state.orders.iter().filter(|o| is_open(o)).map(|o| order_json(self.shared.market, o)).collect()
    }

    /// Futures conditional orders in the wire shape of `GET /fapi/v1/openAlgoOrders`, oldest first.
    pub fn algo_orders(&self) -> Vec<Value> {
        self.shared.lock().algos.iter().map(algo_json).collect()
    }

    /// The leverage last set on a futures symbol.
    pub fn leverage(&self, symbol: &str) -> Option<u32> {
        self.shared.lock().leverage.get(symbol).copied()
    }

    /// A spot asset's total balance, or the futures wallet (`USDT`).
    pub fn balance(&self, asset: &str) -> Decimal {
        self.shared.lock().balances.get(asset).copied().unwrap_or_default()
    }

    /// A futures symbol's signed position.
    pub fn position(&self, symbol: &str) -> Decimal {
        self.shared.lock().positions.get(symbol).copied().unwrap_or_default()
    }

    /// Request weight used in the current minute.
    pub fn used_weight(&self) -> u32 {
        let mut state = self.shared.lock();
        used_weight(&mut state, Instant::now())
    }
}

fn binance_error(status: StatusCode, code: i64, msg: &str) -> Response {
    (status, axum::Json(json!({"code": code, "msg": msg}))).into_response()
}

fn bad(code: i64, msg: &str) -> Response {
    binance_error(StatusCode::BAD_REQUEST, code, msg)
}

/// HMAC-SHA256 (RFC 2104) over sha2, hex encoded as Binance expects.
pub fn sign(secret: &str, payload: &str) -> String {
    const BLOCK: usize = 64;
    let mut key = secret.as_bytes().to_vec();
    if key.len() > BLOCK {
        key = Sha256::digest(&key).to_vec();
    }
    key.resize(BLOCK, 0);
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(payload.as_bytes()).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    hex::encode(outer)
}

fn params(query: &str, body: &str) -> HashMap<String, String> {
    let mut all: HashMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
    let body: HashMap<String, String> = serde_urlencoded::from_str(body).unwrap_or_default();
    all.extend(body);
    all
}

fn used_weight(state: &mut FakeState, now: Instant) -> u32 {
    while state.window.front().is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60)) {
        state.window.pop_front();
    }
    state.window.iter().map(|(_, w)| w).sum()
}

/// Binance's request weights for the routes the fake serves.
fn weight(market: Market, method: &Method, path: &str, has_symbol: bool) -> u32 {
    match (market, path) {
        (Market::Spot, "/api/v3/exchangeInfo") => 20,
        (Market::Spot, "/api/v3/order") if method == Method::GET => 4,
        (Market::Spot, "/api/v3/openOrders") => {
            if has_symbol {
                6
            } else {
                80
            }
        }
        (Market::Spot, "/api/v3/allOrders") => 20,
        (Market::Spot, "/api/v3/ticker/price") => 2,
        (Market::UsdmFutures, "/fapi/v1/openOrders" | "/fapi/v1/openAlgoOrders") => {
            if has_symbol {
                1
            } else {
                40
            }
        }
        (Market::UsdmFutures, "/fapi/v1/allOrders") => 5,
        _ => 1,
    }
}

fn with_weight_header(mut response: Response, used: u32) -> Response {
    if let Ok(value) = HeaderValue::from_str(&used.to_string()) {
        response.headers_mut().insert("x-mbx-used-weight-1m", value.clone());
        response.headers_mut().insert("x-mbx-used-weight", value);
    }
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let mut record = BinanceRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: None,
    };
    let response = answer(&shared, &parts.method, &parts.uri, &parts.headers, &bytes);
    if response.extensions().get::<DropConnection>().is_none() {
        record.status = Some(response.status().as_u16());
    }
    shared.lock().requests.push(record);
    response
}

fn answer(shared: &Shared, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut state = shared.lock();
    let targeted = state
        .targeted
        .iter()
        .position(|(m, p, _)| m == method.as_str() && p == uri.path())
        .map(|i| state.targeted.remove(i).2);
    let fault = targeted.or_else(|| state.faults.pop_front());
    match fault {
        Some(Fault::ServerError) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "<html><body><h1>500 Internal Server Error</h1></body></html>")
                .into_response();
        }
        Some(Fault::RateLimited) => {
            let mut response = binance_error(
                StatusCode::TOO_MANY_REQUESTS,
                -1003,
                "Too many requests; please use the websocket for live updates to avoid polling the API.",
            );
            response.headers_mut().insert("retry-after", HeaderValue::from_static("2"));
            return response;
        }
        Some(Fault::Disconnect) => return dropped(),
        Some(Fault::Error { status, code, msg }) => {
            return binance_error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), code, &msg);
        }
        Some(Fault::DropResponse) | None => {}
    }
    let query = uri.query().unwrap_or("");
    let body = String::from_utf8_lossy(body).into_owned();
    let p = params(query, &body);
    let path = uri.path();
    let now = Instant::now();
    let cost = weight(shared.market, method, path, p.contains_key("symbol"));
    let current = used_weight(&mut state, now);
    if current + cost > shared.weight_limit {
        let wait = state.window.front().map_or(60, |(t, _)| 60u64.saturating_sub(now.duration_since(*t).as_secs()));
        let mut response = binance_error(
            StatusCode::TOO_MANY_REQUESTS,
            -1003,
            &format!(
                "Too many requests; current limit of IP(127.0.0.1) request weight per minute is {}. Please use \
                 WebSocket Streams for live updates to avoid polling the API.",
                shared.weight_limit
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.max(1).to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return with_weight_header(response, current);
    }
    state.window.push_back((now, cost));
    let used = current + cost;
    let prefix = if shared.market == Market::Spot { "/api/v3" } else { "/fapi/v1" };
    let Some(route) = path.strip_prefix(prefix) else {
        return with_weight_header(binance_error(StatusCode::NOT_FOUND, -1000, "Not found."), used);
    };
    let response = if route == "/exchangeInfo" && method == Method::GET {
        axum::Json(exchange_info(shared.market, &state, shared.now_ms())).into_response()
    } else if route == "/ticker/price" && method == Method::GET {
        match p.get("symbol").and_then(|s| state.listings.get(s)) {
            Some(l) => {
                axum::Json(json!({"symbol": l.symbol, "price": text(l.price), "time": shared.now_ms()})).into_response()
            }
            None => bad(-1121, "Invalid symbol."),
        }
    } else {
        match authenticate(shared, headers, query, &body, &p) {
            Err(response) => response,
            Ok(()) => route_signed(shared, &mut state, method, route, &p),
        }
    };
    let response = with_weight_header(response, used);
    if fault == Some(Fault::DropResponse) {
        return dropped();
    }
    response
}

fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query: &str,
    body: &str,
    p: &HashMap<String, String>,
) -> Result<(), Response> {
    let unauthorized = |code, msg| Err(binance_error(StatusCode::UNAUTHORIZED, code, msg));
    if headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok()) != Some(shared.api_key.as_str()) {
        return unauthorized(-2015, "Invalid API-key, IP, or permissions for action.");
    }
    let Some(timestamp) = p.get("timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return Err(bad(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."));
    };
    let recv_window = p.get("recvWindow").and_then(|r| r.parse::<i64>().ok()).unwrap_or(5000);
    if !(1..=60_000).contains(&recv_window) {
        return Err(bad(-1131, "recvWindow must be less than 60000"));
    }
    let now = shared.now_ms();
    if timestamp > now + 1000 || now - timestamp > recv_window {
        return Err(bad(-1021, "Timestamp for this request is outside of the recvWindow."));
    }
    // Binance signs the query string as sent, then the body, with only the `signature` pair taken out.
    let Some((payload_query, signature)) = split_signature(query).or_else(|| split_signature(body)) else {
        return Err(bad(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."));
    };
    let payload =
        if query.contains("signature=") { format!("{payload_query}{body}") } else { format!("{query}{payload_query}") };
    if !sign(&shared.api_secret, &payload).eq_ignore_ascii_case(&signature) {
        return unauthorized(-1022, "Signature for this request is not valid.");
    }
    Ok(())
}

/// Splits `...&signature=abc` into the signed part and the signature.
fn split_signature(text: &str) -> Option<(String, String)> {
    let mut kept = Vec::new();
    let mut signature = None;
    for pair in text.split('&') {
        match pair.strip_prefix("signature=") {
            Some(s) => signature = Some(s.to_string()),
            None => kept.push(pair),
        }
    }
    signature.map(|s| (kept.join("&"), s))
}

fn route_signed(
    shared: &Shared,
    state: &mut FakeState,
    method: &Method,
    route: &str,
    p: &HashMap<String, String>,
) -> Response {
    let market = shared.market;
    let now = shared.now_ms();
    match (market, method.as_str(), route) {
        (_, "POST", "/order") => new_order(state, market, p, now),
        (_, "GET", "/order") => match find_order(state, p) {
            Ok(i) => axum::Json(order_json(market, &state.orders[i])).into_response(),
            Err(_) => bad(-2013, "Order does not exist."),
        },
        (_, "DELETE", "/order") => cancel_order(state, market, p, now),
        (_, "GET", "/openOrders") => {
            let symbol = p.get("symbol");
            let open: Vec<Value> = state
                .orders
                .iter()
                .filter(|o| is_open(o) && symbol.is_none_or(|s| *s == o.symbol))
                .map(|o| order_json(market, o))
                .collect();
            axum::Json(open).into_response()
        }
        (_, "GET", "/allOrders") => {
            let Some(symbol) = p.get("symbol") else {
                return bad(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
            };
            let all: Vec<Value> =
                state.orders.iter().filter(|o| o.symbol == *symbol).map(|o| order_json(market, o)).collect();
            axum::Json(all).into_response()
        }
        (Market::Spot, "POST", "/orderList/oco" | "/orderList/oto" | "/orderList/otoco") => {
            new_order_list(state, route.trim_start_matches("/orderList/"), p, now)
        }
        (Market::Spot, "DELETE", "/orderList") => cancel_order_list(state, p, now),
        (Market::UsdmFutures, "POST", "/leverage") => {
            let Some(symbol) = p.get("symbol").filter(|s| state.listings.contains_key(*s)) else {
                return bad(-1121, "Invalid symbol.");
            };
            match p.get("leverage").and_then(|l| l.parse::<u32>().ok()) {
                Some(leverage) if (1..=125).contains(&leverage) => {
                    state.leverage.insert(symbol.clone(), leverage);
                    axum::Json(json!({"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol}))
                        .into_response()
                }
                _ => bad(-4028, &format!("Leverage {} is not valid", p.get("leverage").map_or("", |l| l))),
            }
        }
        (Market::UsdmFutures, "POST", "/algoOrder") => new_algo_order(state, p, now),
        (Market::UsdmFutures, "DELETE", "/algoOrder") => {
            let found = state.algos.iter_mut().find(|a| {
                p.get("algoId").is_some_and(|id| *id == a.id.to_string())
                    || p.get("clientAlgoId").is_some_and(|id| *id == a.client_id)
            });
            match found {
                Some(algo) if algo.status == "NEW" => {
                    algo.status = "CANCELED".to_string();
                    algo.update_time = now;
                    axum::Json(json!({
                        "algoId": algo.id, "clientAlgoId": algo.client_id, "code": "200", "msg": "success"
                    }))
                    .into_response()
                }
                _ => bad(-2011, "Unknown order sent."),
            }
        }
        (Market::UsdmFutures, "GET", "/openAlgoOrders") => {
            let symbol = p.get("symbol");
            let open: Vec<Value> = state
                .algos
                .iter()
                .filter(|a| a.status == "NEW" && symbol.is_none_or(|s| *s == a.symbol))
                .map(algo_json)
                .collect();
            axum::Json(open).into_response()
        }
        _ => binance_error(StatusCode::NOT_FOUND, -1000, "Not found."),
    }
}

fn exchange_info(market: Market, state: &FakeState, now: i64) -> Value {
    let mut info: Value = serde_json::from_str(SPOT_EXCHANGE_INFO).expect("recorded exchangeInfo");
    let template = info["symbols"][0].clone();
    info["serverTime"] = json!(now);
    info["rateLimits"] = json!([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": if market == Market::Spot { 6000 } else { 2400 }},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}
    ]);
    let symbols: Vec<Value> = state
        .listings
        .values()
        .map(|l| {
            let mut s = template.clone();
            s["symbol"] = json!(l.symbol);
            s["baseAsset"] = json!(l.base);
            s["quoteAsset"] = json!(l.quote);
            let notional = match market {
                Market::Spot => json!({
                    "filterType": "NOTIONAL", "minNotional": l.min_notional.to_string(), "applyMinToMarket": true,
                    "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5
                }),
                Market::UsdmFutures => json!({"filterType": "MIN_NOTIONAL", "notional": l.min_notional.to_string()}),
            };
            s["filters"] = json!([
                {"filterType": "PRICE_FILTER", "minPrice": l.tick_size.to_string(),
                 "maxPrice": "1000000.00000000", "tickSize": l.tick_size.to_string()},
                {"filterType": "LOT_SIZE", "minQty": l.min_qty.to_string(), "maxQty": l.max_qty.to_string(),
                 "stepSize": l.step_size.to_string()},
                notional
            ]);
            if market == Market::UsdmFutures {
                s["pair"] = json!(l.symbol);
                s["contractType"] = json!("PERPETUAL");
                s["marginAsset"] = json!(l.quote);
                s["orderTypes"] =
                    json!(["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"]);
            }
            s
        })
        .collect();
    info["symbols"] = json!(symbols);
    if market == Market::UsdmFutures {
        info.as_object_mut().map(|o| o.remove("sors"));
    }
    info
}

fn decimal(p: &HashMap<String, String>, name: &str) -> Result<Option<Decimal>, Response> {
    match p.get(name) {
        None => Ok(None),
        Some(text) => Decimal::from_str(text)
            .map(Some)
            .map_err(|_| bad(-1100, &format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."))),
    }
}

fn mandatory(name: &str) -> Response {
    bad(-1102, &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))
}

fn is_open(order: &Order) -> bool {
    matches!(order.status.as_str(), "NEW" | "PENDING_NEW" | "PARTIALLY_FILLED")
}

fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step.is_zero() || (value % step).is_zero()
}

/// LOT_SIZE, PRICE_FILTER and NOTIONAL as Binance applies them; `Err` is the -1013 (or -4164) answer.
fn check_filters(
    market: Market,
    listing: &Listing,
    qty: Decimal,
    prices: &[Decimal],
    reduce_only: bool,
) -> Result<(), Response> {
    if qty < listing.min_qty || qty > listing.max_qty || !is_multiple(qty, listing.step_size) {
        return Err(bad(-1013, "Filter failure: LOT_SIZE"));
    }
    if prices.iter().any(|p| *p < listing.tick_size || !is_multiple(*p, listing.tick_size)) {
        return Err(bad(-1013, "Filter failure: PRICE_FILTER"));
    }
    let reference = prices.first().copied().unwrap_or(listing.price);
    if qty * reference < listing.min_notional && !reduce_only {
        return Err(match market {
            Market::Spot => bad(-1013, "Filter failure: NOTIONAL"),
            Market::UsdmFutures => bad(
                -4164,
                &format!(
                    "Order's notional must be no smaller than {} (unless you choose reduce only).",
                    listing.min_notional.normalize()
                ),
            ),
        });
    }
    Ok(())
}

/// What a spot account has free of `asset`: its balance less what open orders and order lists hold.
fn spot_free(state: &FakeState, asset: &str) -> Decimal {
    let total = state.balances.get(asset).copied().unwrap_or_default();
    let mut locked = Decimal::ZERO;
    let mut counted_lists = Vec::new();
    for order in state.orders.iter().filter(|o| o.status == "NEW" || o.status == "PARTIALLY_FILLED") {
        let Some(listing) = state.listings.get(&order.symbol) else { continue };
        if order.list_id >= 0 {
            // The two legs of an OCO hold the same coins once.
            if counted_lists.contains(&order.list_id) {
                continue;
            }
            counted_lists.push(order.list_id);
        }
        let left = order.qty - order.executed;
        if order.side == "BUY" && listing.quote == asset {
            let price = order.price.or(order.stop_price).unwrap_or(listing.price);
            locked += left * price;
        } else if order.side == "SELL" && listing.base == asset {
            locked += left;
        }
    }
    total - locked
}

/// Futures margin not yet used by positions and open orders, at each symbol's leverage (20 by default).
fn futures_available(state: &FakeState) -> Decimal {
    let wallet = state.balances.get("USDT").copied().unwrap_or_default();
    let leverage = |symbol: &str| Decimal::from(state.leverage.get(symbol).copied().unwrap_or(20));
    let mut used = Decimal::ZERO;
    for (symbol, position) in &state.positions {
        let price = state.listings.get(symbol).map_or(Decimal::ZERO, |l| l.price);
        used += position.abs() * price / leverage(symbol);
    }
    for order in state.orders.iter().filter(|o| is_open(o) && !o.reduce_only) {
        used += (order.qty - order.executed) * order.price.unwrap_or_default() / leverage(&order.symbol);
    }
    wallet - used
}

fn next_id(state: &mut FakeState) -> u64 {
    state.next_id += 1;
    state.next_id
}

fn generated_client_id(id: u64) -> String {
    format!("x-fake{id:026}")
}

/// Fills an order at the symbol's price (or `at`), moving balances or the position, and wakes the pending legs
/// of its order list.
fn fill(state: &mut FakeState, market: Market, id: u64, at: Option<Decimal>, now: i64) {
    let Some(index) = state.orders.iter().position(|o| o.id == id) else { return };
    let order = state.orders[index].clone();
    let Some(listing) = state.listings.get(&order.symbol).cloned() else { return };
    let price = at.unwrap_or(listing.price);
    let qty = order.qty - order.executed;
    {
        let order = &mut state.orders[index];
        order.executed += qty;
        order.quote += qty * price;
        order.status = "FILLED".to_string();
        order.update_time = now;
    }
    let signed = if order.side == "BUY" { qty } else { -qty };
    match market {
        Market::Spot => {
            *state.balances.entry(listing.base.clone()).or_default() += signed;
            *state.balances.entry(listing.quote.clone()).or_default() -= signed * price;
        }
        Market::UsdmFutures => *state.positions.entry(order.symbol.clone()).or_default() += signed,
    }
    if order.list_id < 0 {
        return;
    }
    let Some(list) = state.lists.iter().find(|l| l.id == order.list_id).cloned() else { return };
    if list.working == Some(id) {
        for leg in state.orders.iter_mut().filter(|o| list.orders.contains(&o.id) && o.status == "PENDING_NEW") {
            leg.status = "NEW".to_string();
            leg.update_time = now;
        }
    } else {
        // One leg of an OCO filled: the other is cancelled, the list is done.
        for leg in state.orders.iter_mut().filter(|o| list.orders.contains(&o.id) && is_open(o)) {
            leg.status = "EXPIRED".to_string();
            leg.update_time = now;
        }
        if let Some(list) = state.lists.iter_mut().find(|l| l.id == order.list_id) {
            list.status = "ALL_DONE".to_string();
        }
    }
}

/// One order's parameters, as `POST .../order` or a leg of an order list carries them.
#[derive(Debug, Clone)]
struct Draft {
    client_id: Option<String>,
    side: String,
    kind: String,
    qty: Option<Decimal>,
    price: Option<Decimal>,
    stop_price: Option<Decimal>,
    tif: Option<String>,
}

impl Draft {
    /// Reads a draft from `p` with every name prefixed (`working`, `pendingAbove`, `above`...).
    fn read(p: &HashMap<String, String>, prefix: &str) -> Result<Draft, Response> {
        let name = |field: &str| {
            if prefix.is_empty() {
                let mut chars = field.chars();
                chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
            } else {
                format!("{prefix}{field}")
            }
        };
        let client_field = if prefix.is_empty() { "newClientOrderId".to_string() } else { name("ClientOrderId") };
        let side = p.get(&name("Side")).cloned().ok_or_else(|| mandatory(&name("Side")))?;
        if side != "BUY" && side != "SELL" {
            return Err(bad(-1100, &format!("Illegal characters found in parameter '{}'.", name("Side"))));
        }
        Ok(Draft {
            client_id: p.get(&client_field).cloned(),
            side,
            kind: p.get(&name("Type")).cloned().ok_or_else(|| mandatory(&name("Type")))?,
            qty: decimal(p, &name("Quantity"))?,
            price: decimal(p, &name("Price"))?,
            stop_price: decimal(p, &name("StopPrice"))?,
            tif: p.get(&name("TimeInForce")).cloned(),
        })
    }
}

fn check_client_id(id: &str) -> Result<(), Response> {
    let valid = !id.is_empty()
        && id.len() <= 36
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(bad(
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        ))
    }
}

/// Validates a draft against the symbol's rules and the account; builds the order without storing it.
#[allow(clippy::too_many_arguments)]
fn build_order(
    state: &mut FakeState,
    market: Market,
    symbol: &str,
    draft: &Draft,
    qty: Decimal,
    reduce_only: bool,
    list_id: i64,
    now: i64,
) -> Result<Order, Response> {
    let Some(listing) = state.listings.get(symbol).cloned() else {
        return Err(bad(-1121, "Invalid symbol."));
    };
    let allowed: &[&str] = match market {
        Market::Spot => &["MARKET", "LIMIT", "LIMIT_MAKER", "STOP_LOSS", "TAKE_PROFIT"],
        Market::UsdmFutures => &["MARKET", "LIMIT"],
    };
    if !allowed.contains(&draft.kind.as_str()) {
        return Err(bad(-1116, "Invalid orderType."));
    }
    let needs_price = matches!(draft.kind.as_str(), "LIMIT" | "LIMIT_MAKER");
    let needs_stop = matches!(draft.kind.as_str(), "STOP_LOSS" | "TAKE_PROFIT");
    if needs_price && draft.price.is_none() {
        return Err(mandatory("price"));
    }
    if needs_stop && draft.stop_price.is_none() {
        return Err(mandatory("stopPrice"));
    }
    if draft.kind == "LIMIT" && draft.tif.is_none() {
        return Err(mandatory("timeInForce"));
    }
    let prices: Vec<Decimal> = draft.price.iter().chain(draft.stop_price.iter()).copied().collect();
    check_filters(market, &listing, qty, &prices, reduce_only)?;
    let client_id = match &draft.client_id {
        Some(id) => {
            check_client_id(id)?;
            id.clone()
        }
        None => generated_client_id(state.next_id + 1),
    };
    let duplicate = state
        .orders
        .iter()
        .any(|o| o.client_id == client_id && (market == Market::UsdmFutures || is_open(o)) && o.symbol == symbol);
    if duplicate {
        return Err(match market {
            Market::Spot => bad(-2010, "Duplicate order sent."),
            Market::UsdmFutures => bad(-4116, "ClientOrderId is duplicated."),
        });
    }
    let id = next_id(state);
    Ok(Order {
        id,
        client_id,
        symbol: symbol.to_string(),
        side: draft.side.clone(),
        kind: draft.kind.clone(),
        qty,
        price: if draft.kind == "MARKET" { None } else { draft.price },
        stop_price: draft.stop_price,
        tif: draft.tif.clone().unwrap_or_else(|| "GTC".to_string()),
        status: "NEW".to_string(),
        executed: Decimal::ZERO,
        quote: Decimal::ZERO,
        list_id,
        reduce_only,
        time: now,
        update_time: now,
    })
}

/// Whether a new order of `qty` at `price` fits the account (spot balance, futures margin or reduce-only).
fn check_funds(state: &FakeState, market: Market, order: &Order) -> Result<(), Response> {
    let Some(listing) = state.listings.get(&order.symbol) else { return Err(bad(-1121, "Invalid symbol.")) };
    let price = order.price.or(order.stop_price).unwrap_or(listing.price);
    match market {
        Market::Spot => {
            let (asset, needed) =
                if order.side == "BUY" { (&listing.quote, order.qty * price) } else { (&listing.base, order.qty) };
            if spot_free(state, asset) < needed {
                return Err(bad(-2010, "Account has insufficient balance for requested action."));
            }
        }
        Market::UsdmFutures => {
            let position = state.positions.get(&order.symbol).copied().unwrap_or_default();
            if order.reduce_only {
                let reduces = if order.side == "BUY" { position < Decimal::ZERO } else { position > Decimal::ZERO };
                if !reduces || order.qty > position.abs() {
                    return Err(bad(-2022, "ReduceOnly Order is rejected."));
                }
            } else {
                let leverage = Decimal::from(state.leverage.get(&order.symbol).copied().unwrap_or(20));
                if futures_available(state) < order.qty * price / leverage {
                    return Err(bad(-2019, "Margin is insufficient."));
                }
            }
        }
    }
    Ok(())
}

/// Whether an order would execute at once at the current price (a LIMIT crossing, a stop already passed).
fn crosses(order: &Order, market_price: Decimal) -> bool {
    let buy = order.side == "BUY";
    match order.kind.as_str() {
        "MARKET" => true,
        "LIMIT" | "LIMIT_MAKER" => order.price.is_some_and(|p| if buy { p >= market_price } else { p <= market_price }),
        // A buy stop sits above the market, a sell stop below; a take profit the other way round.
        "STOP_LOSS" => order.stop_price.is_some_and(|s| if buy { s <= market_price } else { s >= market_price }),
        "TAKE_PROFIT" => order.stop_price.is_some_and(|s| if buy { s >= market_price } else { s <= market_price }),
        _ => false,
    }
}

fn new_order(state: &mut FakeState, market: Market, p: &HashMap<String, String>, now: i64) -> Response {
    let Some(symbol) = p.get("symbol").cloned() else { return mandatory("symbol") };
    let draft = match Draft::read(p, "") {
        Ok(draft) => draft,
        Err(response) => return response,
    };
    let reduce_only = p.get("reduceOnly").is_some_and(|r| r == "true");
    if reduce_only && market == Market::Spot {
        return bad(-1104, "Not all sent parameters were read; read '8' parameter(s) but was sent '9'.");
    }
    let Some(qty) = draft.qty else { return mandatory("quantity") };
    let order = match build_order(state, market, &symbol, &draft, qty, reduce_only, -1, now) {
        Ok(order) => order,
        Err(response) => return response,
    };
    if let Err(response) = check_funds(state, market, &order) {
        return response;
    }
    let price = state.listings[&symbol].price;
    let immediate = crosses(&order, price);
    if immediate && order.kind == "LIMIT_MAKER" {
        return bad(-2010, "Order would immediately match and take.");
    }
    if immediate && matches!(order.kind.as_str(), "STOP_LOSS" | "TAKE_PROFIT") {
        return bad(-2010, "Order would trigger immediately.");
    }
    let id = order.id;
    state.orders.push(order);
    if immediate {
        fill(state, market, id, None, now);
    }
    let order = state.orders.iter().find(|o| o.id == id).cloned().expect("just stored");
    axum::Json(new_order_json(market, &order, price, p.get("newOrderRespType").map(String::as_str))).into_response()
}

fn find_order(state: &FakeState, p: &HashMap<String, String>) -> Result<usize, Response> {
    let Some(symbol) = p.get("symbol") else { return Err(mandatory("symbol")) };
    let by_id = p.get("orderId");
    let by_client = p.get("origClientOrderId");
    if by_id.is_none() && by_client.is_none() {
        return Err(bad(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"));
    }
    // The newest order under a client id: Binance reuses spot ids once the first order is done.
    state
        .orders
        .iter()
        .rposition(|o| {
            o.symbol == *symbol
                && by_id.is_none_or(|id| *id == o.id.to_string())
                && by_client.is_none_or(|c| *c == o.client_id)
        })
        .ok_or_else(|| bad(-2013, "Order does not exist."))
}

fn cancel_order(state: &mut FakeState, market: Market, p: &HashMap<String, String>, now: i64) -> Response {
    let index = match find_order(state, p) {
        Ok(index) => index,
        Err(_) => return bad(-2011, "Unknown order sent."),
    };
    if !is_open(&state.orders[index]) {
        return bad(-2011, "Unknown order sent.");
    }
    let list_id = state.orders[index].list_id;
    state.orders[index].status = "CANCELED".to_string();
    state.orders[index].update_time = now;
    // Cancelling one order of a list cancels the whole list.
    if list_id >= 0 {
        for order in state.orders.iter_mut().filter(|o| o.list_id == list_id && is_open(o)) {
            order.status = "CANCELED".to_string();
            order.update_time = now;
        }
        if let Some(list) = state.lists.iter_mut().find(|l| l.id == list_id) {
            list.status = "ALL_DONE".to_string();
        }
    }
    let mut answer = order_json(market, &state.orders[index]);
    if let Some(orig) = p.get("origClientOrderId") {
        answer["origClientOrderId"] = json!(orig);
    }
    axum::Json(answer).into_response()
}

/// `POST /api/v3/orderList/{oco,oto,otoco}`: the legs are validated together and stored only if all pass.
fn new_order_list(state: &mut FakeState, kind: &str, p: &HashMap<String, String>, now: i64) -> Response {
    let Some(symbol) = p.get("symbol").cloned() else { return mandatory("symbol") };
    let Some(listing) = state.listings.get(&symbol).cloned() else { return bad(-1121, "Invalid symbol.") };
    let result = (|| -> Result<(Option<Draft>, Vec<Draft>), Response> {
        Ok(match kind {
            "oco" => {
                let mut above = Draft::read(&with_side(p, "above", "side"), "above")?;
                let mut below = Draft::read(&with_side(p, "below", "side"), "below")?;
                let qty = decimal(p, "quantity")?.ok_or_else(|| mandatory("quantity"))?;
                above.qty = Some(qty);
                below.qty = Some(qty);
                (None, vec![above, below])
            }
            "oto" => (Some(Draft::read(p, "working")?), vec![Draft::read(p, "pending")?]),
            _ => {
                let mut above = Draft::read(&with_side(p, "pendingAbove", "pendingSide"), "pendingAbove")?;
                let mut below = Draft::read(&with_side(p, "pendingBelow", "pendingSide"), "pendingBelow")?;
                let qty = decimal(p, "pendingQuantity")?.ok_or_else(|| mandatory("pendingQuantity"))?;
                above.qty = Some(qty);
                below.qty = Some(qty);
                (Some(Draft::read(p, "working")?), vec![above, below])
            }
        })
    })();
    let (working, pending) = match result {
        Ok(drafts) => drafts,
        Err(response) => return response,
    };
    let list_id = state.lists.len() as i64;
    // Legs are judged against the working order's price when there is one, else against the market.
    let reference = working.as_ref().and_then(|w| w.price).unwrap_or(listing.price);
    let mut built = Vec::new();
    for (draft, is_working) in working.iter().map(|w| (w, true)).chain(pending.iter().map(|d| (d, false))) {
        let Some(qty) = draft.qty else { return mandatory("quantity") };
        let order = match build_order(state, Market::Spot, &symbol, draft, qty, false, list_id, now) {
            Ok(order) => order,
            Err(response) => return response,
        };
        if !is_working && crosses(&order, reference) {
            return bad(-2010, "Order would trigger immediately.");
        }
        built.push((order, is_working));
    }
    if kind == "oco" {
        let above = &built[0].0;
        let below = &built[1].0;
        let above_level = above.stop_price.or(above.price).unwrap_or_default();
        let below_level = below.stop_price.or(below.price).unwrap_or_default();
        if above_level <= below_level {
            return bad(-1167, "The relationship of the prices for the orders is not correct.");
        }
    }
    // The working order of an OTO holds funds; an OCO holds its coins once.
    let funded = built.iter().find(|(_, w)| *w).or(built.first()).map(|(o, _)| o.clone()).expect("a leg");
    if let Err(response) = check_funds(state, Market::Spot, &funded) {
        return response;
    }
    let list_client = p.get("listClientOrderId").cloned().unwrap_or_else(|| generated_client_id(state.next_id));
    if let Err(response) = check_client_id(&list_client) {
        return response;
    }
    let mut ids = Vec::new();
    let mut working_id = None;
    for (mut order, is_working) in built {
        if working.is_some() && !is_working {
            order.status = "PENDING_NEW".to_string();
        }
        if is_working {
            working_id = Some(order.id);
        }
        ids.push(order.id);
        state.orders.push(order);
    }
    state.lists.push(OrderList {
        id: list_id,
        client_id: list_client,
        contingency: if kind == "oco" { "OCO" } else { "OTO" }.to_string(),
        orders: ids.clone(),
        working: working_id,
        status: "EXECUTING".to_string(),
    });
    if let Some(id) = working_id
        && state.orders.iter().any(|o| o.id == id && crosses(o, listing.price))
    {
        fill(state, Market::Spot, id, None, now);
    }
    axum::Json(list_json(state, list_id, now)).into_response()
}

/// An OCO leg takes the list's side when it names none.
fn with_side(p: &HashMap<String, String>, prefix: &str, side_field: &str) -> HashMap<String, String> {
    let mut p = p.clone();
    if let Some(side) = p.get(side_field).cloned() {
        p.entry(format!("{prefix}Side")).or_insert(side);
    }
    p
}

fn cancel_order_list(state: &mut FakeState, p: &HashMap<String, String>, now: i64) -> Response {
    let found = state.lists.iter().position(|l| {
        p.get("orderListId").is_some_and(|id| *id == l.id.to_string())
            || p.get("listClientOrderId").is_some_and(|c| *c == l.client_id && l.status == "EXECUTING")
    });
    let Some(index) = found.filter(|i| state.lists[*i].status == "EXECUTING") else {
        return bad(-2011, "Unknown order list sent.");
    };
    let list_id = state.lists[index].id;
    state.lists[index].status = "ALL_DONE".to_string();
    for order in state.orders.iter_mut().filter(|o| o.list_id == list_id && is_open(o)) {
        order.status = "CANCELED".to_string();
        order.update_time = now;
    }
    axum::Json(list_json(state, list_id, now)).into_response()
}

fn list_json(state: &FakeState, list_id: i64, now: i64) -> Value {
    let list = state.lists.iter().find(|l| l.id == list_id).expect("list exists");
    let legs: Vec<&Order> = state.orders.iter().filter(|o| o.list_id == list_id).collect();
    json!({
        "orderListId": list.id,
        "contingencyType": list.contingency,
        "listStatusType": if list.status == "EXECUTING" { "EXEC_STARTED" } else { "ALL_DONE" },
        "listOrderStatus": list.status,
        "listClientOrderId": list.client_id,
        "transactionTime": now,
        "symbol": legs.first().map(|o| o.symbol.clone()),
        "orders": legs.iter().map(|o| json!({"symbol": o.symbol, "orderId": o.id, "clientOrderId": o.client_id}))
            .collect::<Vec<_>>(),
        "orderReports": legs.iter().map(|o| order_json(Market::Spot, o)).collect::<Vec<_>>(),
    })
}

fn new_algo_order(state: &mut FakeState, p: &HashMap<String, String>, now: i64) -> Response {
    if p.get("algoType").map(String::as_str) != Some("CONDITIONAL") {
        return bad(-1116, "Invalid algoType.");
    }
    let Some(symbol) = p.get("symbol").cloned() else { return mandatory("symbol") };
    let Some(listing) = state.listings.get(&symbol).cloned() else { return bad(-1121, "Invalid symbol.") };
    let side = p.get("side").cloned().unwrap_or_default();
    if side != "BUY" && side != "SELL" {
        return mandatory("side");
    }
    let kind = p.get("type").cloned().unwrap_or_default();
    if !matches!(kind.as_str(), "STOP_MARKET" | "TAKE_PROFIT_MARKET") {
        return bad(-1116, "Invalid orderType.");
    }
    let trigger = match decimal(p, "triggerPrice") {
        Ok(Some(trigger)) => trigger,
        Ok(None) => return mandatory("triggerPrice"),
        Err(response) => return response,
    };
    let close_position = p.get("closePosition").is_some_and(|c| c == "true");
    let reduce_only = p.get("reduceOnly").is_some_and(|r| r == "true");
    let qty = match decimal(p, "quantity") {
        Ok(qty) => qty,
        Err(response) => return response,
    };
    if close_position && (qty.is_some() || reduce_only) {
        return bad(-1106, "Parameter 'quantity' sent when not required.");
    }
    if !close_position && qty.is_none() {
        return mandatory("quantity");
    }
    let prices = [trigger];
    if let Err(response) = check_filters(Market::UsdmFutures, &listing, qty.unwrap_or(listing.max_qty), &prices, true) {
        return response;
    }
    let buy = side == "BUY";
    let wrong = match kind.as_str() {
        "STOP_MARKET" => {
            if buy {
                trigger <= listing.price
            } else {
                trigger >= listing.price
            }
        }
        _ => {
            if buy {
                trigger >= listing.price
            } else {
                trigger <= listing.price
            }
        }
    };
    if wrong {
        return bad(-2021, "Order would immediately trigger.");
    }
    let client_id = match p.get("clientAlgoId") {
        Some(id) => {
            if let Err(response) = check_client_id(id) {
                return response;
            }
            if state.algos.iter().any(|a| a.client_id == *id) {
                return bad(-4116, "ClientOrderId is duplicated.");
            }
            id.clone()
        }
        None => generated_client_id(state.next_id + 1),
    };
    let id = next_id(state);
    let algo = AlgoOrder {
        id,
        client_id,
        symbol,
        side,
        kind,
        qty,
        trigger,
        close_position,
        reduce_only,
        working_type: p.get("workingType").cloned().unwrap_or_else(|| "CONTRACT_PRICE".to_string()),
        status: "NEW".to_string(),
        time: now,
        update_time: now,
    };
    let answer = algo_json(&algo);
    state.algos.push(algo);
    axum::Json(answer).into_response()
}

fn text(value: Decimal) -> String {
    value.normalize().to_string()
}

fn order_json(market: Market, order: &Order) -> Value {
    let zero = Decimal::ZERO;
    match market {
        Market::Spot => {
            let mut v: Value = serde_json::from_str(SPOT_ORDER).expect("recorded spot order");
            v["symbol"] = json!(order.symbol);
            v["orderId"] = json!(order.id);
            v["orderListId"] = json!(order.list_id);
            v["clientOrderId"] = json!(order.client_id);
            v["price"] = json!(text(order.price.unwrap_or(zero)));
            v["origQty"] = json!(text(order.qty));
            v["executedQty"] = json!(text(order.executed));
            v["cummulativeQuoteQty"] = json!(text(order.quote));
            v["status"] = json!(order.status);
            v["timeInForce"] = json!(order.tif);
            v["type"] = json!(order.kind);
            v["side"] = json!(order.side);
            v["stopPrice"] = json!(text(order.stop_price.unwrap_or(zero)));
            v["icebergQty"] = json!("0");
            v["time"] = json!(order.time);
            v["updateTime"] = json!(order.update_time);
            v["isWorking"] = json!(order.status != "PENDING_NEW");
            v["workingTime"] = json!(if order.status == "PENDING_NEW" { -1 } else { order.time });
            v
        }
        Market::UsdmFutures => {
            let mut v: Value = serde_json::from_str(FUTURES_ORDER).expect("recorded futures order");
            let avg = if order.executed.is_zero() { zero } else { order.quote / order.executed };
            v["orderId"] = json!(order.id);
            v["symbol"] = json!(order.symbol);
            v["status"] = json!(order.status);
            v["clientOrderId"] = json!(order.client_id);
            v["price"] = json!(text(order.price.unwrap_or(zero)));
            v["avgPrice"] = json!(text(avg));
            v["origQty"] = json!(text(order.qty));
            v["executedQty"] = json!(text(order.executed));
            v["cumQuote"] = json!(text(order.quote));
            v["timeInForce"] = json!(order.tif);
            v["type"] = json!(order.kind);
            v["origType"] = json!(order.kind);
            v["reduceOnly"] = json!(order.reduce_only);
            v["side"] = json!(order.side);
            v["time"] = json!(order.time);
            v["updateTime"] = json!(order.update_time);
            v
        }
    }
}

/// The answer to `POST .../order`: spot's FULL response with its fills, futures' order without `time`.
fn new_order_json(market: Market, order: &Order, price: Decimal, resp_type: Option<&str>) -> Value {
    let mut v = order_json(market, order);
    let object = v.as_object_mut().expect("an object");
    match market {
        Market::Spot => {
            for gone in ["stopPrice", "icebergQty", "time", "updateTime", "isWorking"] {
                object.remove(gone);
            }
            object.insert("transactTime".to_string(), json!(order.update_time));
            if resp_type != Some("ACK") && resp_type != Some("RESULT") {
                let fills = if order.executed.is_zero() {
                    json!([])
                } else {
                    json!([{"price": text(price), "qty": text(order.executed), "commission": "0",
                            "commissionAsset": "BNB", "tradeId": order.id}])
                };
                object.insert("fills".to_string(), fills);
            }
        }
        Market::UsdmFutures => {
            object.remove("time");
        }
    }
    v
}

fn algo_json(algo: &AlgoOrder) -> Value {
    let templates: Value = serde_json::from_str(FUTURES_ALGO_ORDERS).expect("recorded algo orders");
    let mut v = templates[0].clone();
    v["algoId"] = json!(algo.id);
    v["clientAlgoId"] = json!(algo.client_id);
    v["type"] = json!(algo.kind);
    v["orderType"] = json!(algo.kind);
    v["symbol"] = json!(algo.symbol);
    v["side"] = json!(algo.side);
    v["quantity"] = json!(text(algo.qty.unwrap_or_default()));
    v["algoStatus"] = json!(algo.status);
    v["triggerPrice"] = json!(text(algo.trigger));
    v["price"] = json!("0");
    v["workingType"] = json!(algo.working_type);
    v["reduceOnly"] = json!(algo.reduce_only);
    v["closePosition"] = json!(algo.close_position);
    v["createTime"] = json!(algo.time);
    v["updateTime"] = json!(algo.update_time);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_binances_documented_example() {
        // From Binance's API docs ("SIGNED endpoint examples for POST /api/v3/order").
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(sign(secret, payload), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
    }

    /// Sends a signed request the way Binance documents it: parameters, then `signature` over them.
    async fn signed(fake: &FakeBinance, method: reqwest::Method, path: &str, query: &str) -> (u16, HeaderMap, Value) {
        let now = chrono::Utc::now().timestamp_millis();
        let query = format!("{query}&timestamp={now}");
        let url = format!("{}{path}?{query}&signature={}", fake.base_url(), sign(fake.api_secret(), &query));
        let response =
            reqwest::Client::new().request(method, url).header("X-MBX-APIKEY", fake.api_key()).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn the_fake_applies_binances_filters_and_reports_its_weight() {
        let fake = FakeBinance::spot()
            .listing(
                Listing::new("BTCUSDT", "BTC", "USDT", Decimal::from(50_000))
                    .step(Decimal::new(1, 3), Decimal::new(1, 3)),
            )
            .balance("USDT", Decimal::from(1_000))
            .start()
            .await;
        let post = reqwest::Method::POST;
        let cases = [
            ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.0015", -1013, "Filter failure: LOT_SIZE"),
            (
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=49000.005",
                -1013,
                "Filter failure: PRICE_FILTER",
            ),
            (
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=4000",
                -1013,
                "Filter failure: NOTIONAL",
            ),
            (
                "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.1",
                -2010,
                "Account has insufficient balance for requested action.",
            ),
            ("symbol=ETHUSDT&side=BUY&type=MARKET&quantity=1", -1121, "Invalid symbol."),
        ];
        for (query, code, msg) in cases {
            let (status, headers, body) = signed(&fake, post.clone(), "/api/v3/order", query).await;
            assert_eq!((status, body["code"].as_i64(), body["msg"].as_str()), (400, Some(code), Some(msg)), "{query}");
            assert!(headers.contains_key("x-mbx-used-weight-1m"));
        }
        let (status, headers, body) = signed(
            &fake,
            post.clone(),
            "/api/v3/order",
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newClientOrderId=a",
        )
        .await;
        assert_eq!(
            (status, body["status"].as_str(), body["executedQty"].as_str()),
            (200, Some("FILLED"), Some("0.01"))
        );
        assert_eq!(headers["x-mbx-used-weight-1m"], "6");
        assert_eq!(fake.balance("USDT"), Decimal::from(500));
        // A forged signature is Binance's 401 -1022.
        let url = format!(
            "{}/api/v3/openOrders?timestamp={}&signature=00",
            fake.base_url(),
            chrono::Utc::now().timestamp_millis()
        );
        let response = reqwest::Client::new().get(url).header("X-MBX-APIKEY", fake.api_key()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(response.json::<Value>().await.unwrap()["code"], -1022);
    }
}

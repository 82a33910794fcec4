//! A fake of OANDA v20's market data for the live OANDA feed: `GET /v3/accounts/{id}/instruments` and
//! `GET /v3/instruments/{instrument}/candles` on one port (`rest_url`, like `api-fxpractice.oanda.com`) and the
//! newline-delimited pricing stream `GET /v3/accounts/{id}/pricing/stream?instruments=…` on another
//! (`stream_url`, like `stream-fxpractice.oanda.com`).
//!
//! The payload shapes follow OANDA's public v20 REST documentation (the Instrument, Account and Pricing
//! endpoints); no payloads were recorded from OANDA's servers. Every request must carry
//! `Authorization: Bearer <token>` (401 `{"errorMessage":"Insufficient authorization to perform request."}`
//! otherwise), and an instrument the fake does not serve is a 400
//! `{"errorMessage":"Invalid value specified for 'instrument'"}`.
//!
//! The candles side serves a scripted history that the test extends as candles close; the forming candle is
//! listed with `"complete": false`. `from`/`includeFirst`/`count` behave as OANDA documents them (without
//! `from`, the most recent `count`). Scripted trouble: 429 and 500 answers, a malformed body, an answer in
//! reverse order, extra (duplicate or old) candles appended to the next answer, REST held (503) while the
//! test says so; on the stream: dropping the connection mid-candle, holding reconnects off (503), stalls (no
//! heartbeats, nothing), malformed lines and lines split across chunks. The stream sends a heartbeat every
//! [`HEARTBEAT_INTERVAL`], as OANDA does every 5 s. Waits are built on a watch channel, not sleeps.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::{Candle, Timeframe};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

/// How often the fake sends a heartbeat line (OANDA: every 5 s).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// The token the fake accepts unless told otherwise.
pub const TOKEN: &str = "fake-oanda-token-0123456789abcdef";
/// The account the fake knows.
pub const ACCOUNT: &str = "101-004-1234567-001";
/// What the fake adds to a bid candle to make its ask candle.
pub const SPREAD: &str = "0.0002";

/// A scripted answer to the next candles request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFault {
    /// 429 with OANDA's error body (and no `Retry-After`, which OANDA does not document).
    RateLimited,
    /// 500 with an error body.
    ServerError,
    /// 200 with a body that is not a candles answer.
    Malformed,
    /// 200 with the right candles, newest first.
    Reversed,
}

/// One REST request the fake answered.
#[derive(Debug, Clone)]
pub struct RestRequest {
    pub path: String,
    pub query: HashMap<String, String>,
    pub at: Instant,
    pub status: u16,
}

enum Command {
    Text(String),
    Drop,
    Stall,
}

struct Live {
    connection: u64,
    instruments: Vec<String>,
    out: mpsc::UnboundedSender<Command>,
}

type Key = (String, Timeframe);

#[derive(Default)]
struct Market {
    token: String,
    /// Instruments the candles and pricing endpoints serve.
    served: HashSet<String>,
    /// Instruments `GET /v3/accounts/{id}/instruments` lists.
    account: Vec<String>,
    complete: HashMap<Key, BTreeMap<DateTime<Utc>, Candle>>,
    forming: HashMap<Key, Candle>,
    extra: HashMap<Key, Vec<Candle>>,
    faults: VecDeque<RestFault>,
    requests: Vec<RestRequest>,
    rest_held: bool,
    stream_held: bool,
    connections: u64,
    /// Instruments each stream connection asked for, in connection order.
    stream_instruments: Vec<Vec<String>>,
    live: Option<Live>,
}

struct Shared {
    state: Mutex<Market>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Market> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// The fake; dropping it stops both servers.
pub struct FakeOanda {
    shared: Arc<Shared>,
    rest: SocketAddr,
    stream: SocketAddr,
    tasks: Vec<AbortHandle>,
}

impl std::fmt::Debug for FakeOanda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOanda").field("rest", &self.rest).field("stream", &self.stream).finish()
    }
}

impl Drop for FakeOanda {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(live) = self.shared.lock().live.take() {
            let _ = live.out.send(Command::Drop);
        }
    }
}

/// OANDA's time format: RFC 3339 with nanoseconds.
pub fn oanda_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn granularity(name: &str) -> Option<Timeframe> {
    Some(match name {
        "M1" => Timeframe::M1,
        "M5" => Timeframe::M5,
        "M15" => Timeframe::M15,
        "M30" => Timeframe::M30,
        "H1" => Timeframe::H1,
        "H4" => Timeframe::H4,
        "D" => Timeframe::D1,
        _ => return None,
    })
}

fn ohlc(candle: &Candle, add: Decimal) -> Value {
    json!({
        "o": (candle.open + add).to_string(),
        "h": (candle.high + add).to_string(),
        "l": (candle.low + add).to_string(),
        "c": (candle.close + add).to_string(),
    })
}

/// One element of a candles answer, in OANDA's documented shape. `price` is the query's (`M`, `B`, `A`,
/// `BA`, …); the fake's candles are bid candles when bid is asked, with the ask [`SPREAD`] above.
pub fn candle_json(candle: &Candle, complete: bool, price: &str) -> Value {
    let mut value = json!({
        "complete": complete,
        "volume": candle.volume.trunc().to_string().parse::<u64>().unwrap_or(0),
        "time": oanda_time(candle.time),
    });
    let spread: Decimal = SPREAD.parse().unwrap_or_default();
    if price.contains('M') {
        value["mid"] = ohlc(candle, spread / Decimal::TWO);
    }
    if price.contains('B') {
        value["bid"] = ohlc(candle, Decimal::ZERO);
    }
    if price.contains('A') {
        value["ask"] = ohlc(candle, spread);
    }
    value
}

/// A `PRICE` line in OANDA's documented shape (with its newline).
pub fn price_line(instrument: &str, bid: &str, ask: &str, time: DateTime<Utc>) -> String {
    let line = json!({
        "type": "PRICE", "instrument": instrument, "time": oanda_time(time),
        "bids": [{"price": bid, "liquidity": 1000000}], "asks": [{"price": ask, "liquidity": 1000000}],
        "closeoutBid": bid, "closeoutAsk": ask, "status": "tradeable", "tradeable": true,
    });
    format!("{line}\n")
}

fn heartbeat_line() -> String {
    format!("{}\n", json!({"type": "HEARTBEAT", "time": oanda_time(Utc::now())}))
}

impl FakeOanda {
    /// Serves `instruments` (OANDA's names, `EUR_USD`), all tradeable by [`ACCOUNT`], with no candles yet.
    pub async fn start(instruments: &[&str]) -> FakeOanda {
        let market = Market {
            token: TOKEN.into(),
            served: instruments.iter().map(|s| s.to_string()).collect(),
            account: instruments.iter().map(|s| s.to_string()).collect(),
            ..Market::default()
        };
        let shared = Arc::new(Shared { state: Mutex::new(market), changed: watch::Sender::new(0) });
        let rest_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let stream_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let rest = rest_listener.local_addr().expect("local address");
        let stream = stream_listener.local_addr().expect("local address");
        let rest_router = Router::new().fallback(rest_handler).with_state(Arc::clone(&shared));
        let stream_router = Router::new().fallback(stream_handler).with_state(Arc::clone(&shared));
        let rest_task = tokio::spawn(async move {
            let _ = axum::serve(crate::no_delay(rest_listener), rest_router).await;
        });
        let stream_task = tokio::spawn(async move {
            let _ = axum::serve(crate::no_delay(stream_listener), stream_router).await;
        });
        FakeOanda { shared, rest, stream, tasks: vec![rest_task.abort_handle(), stream_task.abort_handle()] }
    }

    /// What `OANDA_API_URL` points at.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    /// What `OANDA_STREAM_URL` points at.
    pub fn stream_url(&self) -> String {
        format!("http://{}", self.stream)
    }

    /// Accept this token instead of [`TOKEN`].
    pub fn set_token(&self, token: &str) {
        self.shared.lock().token = token.into();
    }

    /// What the account lists as tradeable, apart from what the candles and pricing endpoints serve.
    pub fn set_account_instruments(&self, instruments: &[&str]) {
        self.shared.lock().account = instruments.iter().map(|s| s.to_string()).collect();
    }

    /// The candles and pricing endpoints stop serving `instrument` (400), though the account still lists it.
    pub fn forget_instrument(&self, instrument: &str) {
        self.shared.lock().served.remove(instrument);
    }

    /// Adds complete candles to the history (replacing the forming one at the same time).
    pub fn add_candles(&self, instrument: &str, timeframe: Timeframe, candles: &[Candle]) {
        let mut state = self.shared.lock();
        let key = (instrument.to_string(), timeframe);
        for candle in candles {
            if state.forming.get(&key).is_some_and(|f| f.time <= candle.time) {
                state.forming.remove(&key);
            }
            state.complete.entry(key.clone()).or_default().insert(candle.time, candle.clone());
        }
        drop(state);
        self.shared.bump();
    }

    /// A candle closes: OANDA now lists it as complete.
    pub fn close_candle(&self, instrument: &str, timeframe: Timeframe, candle: &Candle) {
        self.add_candles(instrument, timeframe, std::slice::from_ref(candle));
    }

    /// The candle still forming, listed with `"complete": false` after the complete ones.
    pub fn set_forming(&self, instrument: &str, timeframe: Timeframe, candle: &Candle) {
        self.shared.lock().forming.insert((instrument.to_string(), timeframe), candle.clone());
    }

    /// Appends these candles, as they are, to the next candles answer for the pair: duplicates, old ones.
    pub fn append_to_next_answer(&self, instrument: &str, timeframe: Timeframe, candles: &[Candle]) {
        self.shared.lock().extra.entry((instrument.to_string(), timeframe)).or_default().extend_from_slice(candles);
    }

    /// Answers the next candles requests with these faults, one each.
    pub fn fail_candles(&self, faults: &[RestFault]) {
        self.shared.lock().faults.extend(faults.iter().copied());
    }

    /// Candles requests get 503 until [`release_rest`](Self::release_rest).
    pub fn hold_rest(&self) {
        self.shared.lock().rest_held = true;
    }

    pub fn release_rest(&self) {
        self.shared.lock().rest_held = false;
    }

    /// New pricing-stream requests get 503 until [`release_stream`](Self::release_stream).
    pub fn hold_stream(&self) {
        self.shared.lock().stream_held = true;
    }

    pub fn release_stream(&self) {
        self.shared.lock().stream_held = false;
    }

    /// Sends a `PRICE` line if the live stream subscribed to the instrument.
    pub fn push_price(&self, instrument: &str, bid: &str, ask: &str, time: DateTime<Utc>) {
        self.send(Some(instrument), price_line(instrument, bid, ask, time));
    }

    /// Sends text as one chunk, as it is (add the newline yourself): malformed lines, or half a line.
    pub fn push_raw(&self, text: &str) {
        self.send(None, text.to_string());
    }

    fn send(&self, instrument: Option<&str>, text: String) {
        let state = self.shared.lock();
        if let Some(live) = &state.live
            && instrument.is_none_or(|i| live.instruments.iter().any(|l| l == i))
        {
            let _ = live.out.send(Command::Text(text));
        }
    }

    /// Ends the stream's response abruptly, without the final chunk (a network failure mid-candle).
    pub fn disconnect(&self) {
        if let Some(live) = self.shared.lock().live.take() {
            let _ = live.out.send(Command::Drop);
        }
    }

    /// The stream goes silent: no heartbeats, no prices, the connection open.
    pub fn stall(&self) {
        if let Some(live) = self.shared.lock().live.take() {
            let _ = live.out.send(Command::Stall);
        }
    }

    pub fn requests(&self) -> Vec<RestRequest> {
        self.shared.lock().requests.clone()
    }

    /// The candles requests answered so far.
    pub fn candle_requests(&self) -> Vec<RestRequest> {
        self.requests().into_iter().filter(|r| r.path.ends_with("/candles")).collect()
    }

    /// Pricing-stream connections opened so far.
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }

    /// The instruments each stream connection asked for, in connection order.
    pub fn stream_instruments(&self) -> Vec<Vec<String>> {
        self.shared.lock().stream_instruments.clone()
    }

    /// Waits until `n` stream connections have been opened, the newest one live.
    pub async fn wait_for_connections(&self, n: u64, timeout: Duration) -> Result<(), String> {
        self.wait_until(timeout, &format!("{n} pricing-stream connections"), move |state| {
            state.connections >= n && state.live.as_ref().is_some_and(|l| l.connection >= n)
        })
        .await
    }

    /// Waits until `n` candles requests have been answered.
    pub async fn wait_for_candle_requests(&self, n: usize, timeout: Duration) -> Result<(), String> {
        self.wait_until(timeout, &format!("{n} candles requests"), move |state| {
            state.requests.iter().filter(|r| r.path.ends_with("/candles")).count() >= n
        })
        .await
    }

    async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Market) -> bool + Send + 'static,
    ) -> Result<(), String> {
        let mut changed = self.shared.changed.subscribe();
        let shared = Arc::clone(&self.shared);
        let wait = changed.wait_for(move |_| done(&shared.lock()));
        match tokio::time::timeout(timeout, wait).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("no {what} after {timeout:?}")),
        }
    }
}

fn oanda_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"errorMessage": message}))).into_response()
}

fn authorized(state: &Market, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == state.token)
}

fn unauthorized() -> Response {
    oanda_error(StatusCode::UNAUTHORIZED, "Insufficient authorization to perform request.")
}

fn invalid_instrument() -> Response {
    oanda_error(StatusCode::BAD_REQUEST, "Invalid value specified for 'instrument'")
}

async fn rest_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    let response = answer(&shared, &path, &headers, &query);
    shared.lock().requests.push(RestRequest { path, query, at: Instant::now(), status: response.status().as_u16() });
    shared.bump();
    response
}

fn answer(shared: &Shared, path: &str, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
    let mut state = shared.lock();
    if !authorized(&state, headers) {
        return unauthorized();
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v3", "accounts", account, "instruments"] => {
            if *account != ACCOUNT {
                return oanda_error(StatusCode::BAD_REQUEST, "Invalid value specified for 'accountID'");
            }
            let instruments: Vec<Value> = state
                .account
                .iter()
                .map(|name| {
                    let kind = if name.starts_with("XA") { "METAL" } else { "CURRENCY" };
                    json!({"name": name, "type": kind, "displayName": name.replace('_', "/"), "pipLocation": -4,
                           "displayPrecision": 5, "tradeUnitsPrecision": 0, "minimumTradeSize": "1"})
                })
                .collect();
            axum::Json(json!({"instruments": instruments, "lastTransactionID": "6356"})).into_response()
        }
        ["v3", "instruments", instrument, "candles"] => {
            if state.rest_held {
                return oanda_error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable, please try again later.");
            }
            let fault = state.faults.pop_front();
            match fault {
                Some(RestFault::RateLimited) => {
                    return oanda_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Requests per second exceeds maximum allowed value",
                    );
                }
                Some(RestFault::ServerError) => {
                    return oanda_error(StatusCode::INTERNAL_SERVER_ERROR, "An internal server error occurred");
                }
                Some(RestFault::Malformed) => {
                    return (StatusCode::OK, "{\"instrument\":\"EUR_USD\",\"candl").into_response();
                }
                Some(RestFault::Reversed) | None => {}
            }
            if !state.served.contains(*instrument) {
                return invalid_instrument();
            }
            let Some(timeframe) = query.get("granularity").map_or(Some(Timeframe::M1), |g| granularity(g)) else {
                return oanda_error(StatusCode::BAD_REQUEST, "Invalid value specified for 'granularity'");
            };
            let price = query.get("price").cloned().unwrap_or_else(|| "M".into());
            let count = match query.get("count").map(|c| c.parse::<usize>()) {
                None => 500,
                Some(Ok(c)) if (1..=5000).contains(&c) => c,
                Some(_) => return oanda_error(StatusCode::BAD_REQUEST, "Invalid value specified for 'count'"),
            };
            let from = match query.get("from").map(|f| DateTime::parse_from_rfc3339(f)) {
                None => None,
                Some(Ok(f)) => Some(f.with_timezone(&Utc)),
                Some(Err(_)) => return oanda_error(StatusCode::BAD_REQUEST, "Invalid value specified for 'from'"),
            };
            let include_first = query.get("includeFirst").is_none_or(|v| v != "false");
            let key = (instrument.to_string(), timeframe);
            let mut all: Vec<(Candle, bool)> = state
                .complete
                .get(&key)
                .map(|series| series.values().map(|c| (c.clone(), true)).collect())
                .unwrap_or_default();
            if let Some(forming) = state.forming.get(&key)
                && all.last().is_none_or(|(c, _)| c.time < forming.time)
            {
                all.push((forming.clone(), false));
            }
            let chosen: Vec<(Candle, bool)> = match from {
                Some(from) => all
                    .into_iter()
                    .filter(|(c, _)| if include_first { c.time >= from } else { c.time > from })
                    .take(count)
                    .collect(),
                None => {
                    let skip = all.len().saturating_sub(count);
                    all.into_iter().skip(skip).collect()
                }
            };
            let mut candles: Vec<Value> =
                chosen.iter().map(|(c, complete)| candle_json(c, *complete, &price)).collect();
            if fault == Some(RestFault::Reversed) {
                candles.reverse();
            }
            for extra in state.extra.remove(&key).unwrap_or_default() {
                candles.push(candle_json(&extra, true, &price));
            }
            let name = query.get("granularity").cloned().unwrap_or_else(|| "S5".into());
            axum::Json(json!({"instrument": instrument, "granularity": name, "candles": candles})).into_response()
        }
        _ => oanda_error(StatusCode::NOT_FOUND, "The path is invalid."),
    }
}

async fn stream_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut state = shared.lock();
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let parts: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    if !matches!(parts.as_slice(), ["v3", "accounts", account, "pricing", "stream"] if *account == ACCOUNT) {
        return oanda_error(StatusCode::NOT_FOUND, "The path is invalid.");
    }
    if state.stream_held {
        return oanda_error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable, please try again later.");
    }
    let instruments: Vec<String> =
        query.get("instruments").map(|i| i.split(',').map(str::to_string).collect()).unwrap_or_default();
    if instruments.is_empty() || instruments.iter().any(|i| !state.served.contains(i)) {
        return invalid_instrument();
    }
    let (out, commands) = mpsc::unbounded_channel();
    state.connections += 1;
    let connection = state.connections;
    state.stream_instruments.push(instruments.clone());
    // Pushes go to the newest connection only.
    if let Some(old) = state.live.replace(Live { connection, instruments, out }) {
        let _ = old.out.send(Command::Drop);
    }
    drop(state);
    shared.bump();
    let heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    let body = futures::stream::unfold(
        (commands, heartbeat, false),
        |(mut commands, mut heartbeat, mut stalled)| async move {
            loop {
                if stalled {
                    // Silent but open, until the client gives up and the response is dropped.
                    std::future::pending::<()>().await;
                }
                tokio::select! {
                    _ = heartbeat.tick() => {
                        return Some((Ok::<_, std::io::Error>(Bytes::from(heartbeat_line())), (commands, heartbeat, stalled)));
                    }
                    command = commands.recv() => match command {
                        Some(Command::Text(text)) => return Some((Ok(Bytes::from(text)), (commands, heartbeat, stalled))),
                        Some(Command::Stall) => stalled = true,
                        // An error from the body makes the server abort the response without its last chunk.
                        Some(Command::Drop) | None => {
                            return Some((Err(std::io::Error::other("connection dropped by the test")), (commands, heartbeat, true)));
                        }
                    },
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/octet-stream"));
    response
}

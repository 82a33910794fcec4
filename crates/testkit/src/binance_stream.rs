//! A fake of Binance's public market data: `GET /api/v3/klines`, `GET /fapi/v1/klines`, `GET /api/v3/exchangeInfo`
//! and `GET /fapi/v1/exchangeInfo` on one port (`rest_url`), and the combined-stream WebSocket
//! `/stream?streams=btcusdt@kline_1h/btcusdt@trade/…` on another (`stream_url`), as Binance runs them on separate
//! hosts. Payload shapes are the recorded ones in `data/binance_market/` (see its SOURCE.md).
//!
//! The REST side serves a scripted candle history; the test adds candles as they close. The stream side sends
//! only what the test pushes (closed and open klines, trades, book tickers, raw text), and only for streams
//! the connection subscribed to, like Binance. Scripted trouble: dropping the connection, holding reconnects
//! off (so candles close while the client is away and must come back through REST), stalls (no pings, no
//! frames), duplicate and out-of-order frames (push the same kline twice, or an older one), malformed frames,
//! and REST faults (429 and 418 with `Retry-After`, 500, a malformed body). It pings every connection at a
//! fixed interval, as Binance does. Waits are built on a watch channel, not sleeps.
//!
//! A connection can change its streams as Binance allows, with `{"method":"SUBSCRIBE"|"UNSUBSCRIBE",
//! "params":[…],"id":n}` text frames answered `{"result":null,"id":n}`; pushes follow the connection's
//! current streams, and [`FakeBinanceMarket::live_streams`] and [`FakeBinanceMarket::stream_requests`] show
//! what the client asked for.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use domain::{Candle, Timeframe};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response as WsResponse};

/// How often the fake pings a connection (Binance: every 20 s on spot, 3 min on futures).
pub const PING_INTERVAL: Duration = Duration::from_millis(100);

/// A scripted REST answer to the next klines request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFault {
    /// 429 with `Retry-After` seconds and Binance's `-1003` body.
    RateLimited { retry_after_secs: u64 },
    /// 418: the IP is banned for `Retry-After` seconds.
    Banned { retry_after_secs: u64 },
    /// 500 with an HTML body.
    ServerError,
    /// 200 with a body that is not klines.
    Malformed,
}

/// One REST request the fake answered.
#[derive(Debug, Clone)]
pub struct RestRequest {
    pub path: String,
    pub query: HashMap<String, String>,
    pub at: Instant,
    pub status: u16,
}

/// A SUBSCRIBE or UNSUBSCRIBE a connection sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// Which connection (1 for the first).
    pub connection: u64,
    pub method: String,
    pub params: Vec<String>,
}

enum Command {
    Text(String),
    Drop,
    Stall,
}

struct Live {
    connection: u64,
    streams: Vec<String>,
    out: mpsc::UnboundedSender<Command>,
}

#[derive(Default)]
struct Market {
    symbols: Vec<String>,
    /// (SYMBOL, interval) → open time in ms → candle.
    klines: HashMap<(String, String), BTreeMap<i64, Candle>>,
    faults: VecDeque<RestFault>,
    requests: Vec<RestRequest>,
    connections: u64,
    /// Streams each connection asked for, in connection order.
    subscriptions: Vec<Vec<String>>,
    /// SUBSCRIBE and UNSUBSCRIBE requests, in arrival order.
    stream_requests: Vec<StreamRequest>,
    client_closes: u64,
    held: bool,
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
pub struct FakeBinanceMarket {
    shared: Arc<Shared>,
    rest: SocketAddr,
    stream: SocketAddr,
    tasks: Vec<AbortHandle>,
}

impl std::fmt::Debug for FakeBinanceMarket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBinanceMarket").field("rest", &self.rest).field("stream", &self.stream).finish()
    }
}

impl Drop for FakeBinanceMarket {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn interval_ms(timeframe: Timeframe) -> i64 {
    timeframe.seconds() * 1000
}

fn kline_row(candle: &Candle, timeframe: Timeframe) -> Value {
    let open = candle.time.timestamp_millis();
    // The recorded klines answer: open time, OHLCV as strings, close time, quote volume, trades, taker volumes.
    json!([
        open,
        candle.open.to_string(),
        candle.high.to_string(),
        candle.low.to_string(),
        candle.close.to_string(),
        candle.volume.to_string(),
        open + interval_ms(timeframe) - 1,
        "0",
        0,
        "0",
        "0",
        "0"
    ])
}

/// A kline stream frame in the recorded shape, wrapped in the combined-stream envelope.
pub fn kline_frame(symbol: &str, timeframe: Timeframe, candle: &Candle, closed: bool) -> String {
    let open = candle.time.timestamp_millis();
    let close = open + interval_ms(timeframe) - 1;
    let data = json!({
        "e": "kline", "E": close, "s": symbol,
        "k": {
            "t": open, "T": close, "s": symbol, "i": timeframe.as_str(), "f": 100, "L": 200,
            "o": candle.open.to_string(), "c": candle.close.to_string(), "h": candle.high.to_string(),
            "l": candle.low.to_string(), "v": candle.volume.to_string(), "n": 100, "x": closed,
            "q": "0", "V": "0", "Q": "0", "B": "0"
        }
    });
    json!({"stream": format!("{}@kline_{}", symbol.to_ascii_lowercase(), timeframe.as_str()), "data": data}).to_string()
}

/// A trade stream frame in the recorded shape.
pub fn trade_frame(symbol: &str, price: &str, time_ms: i64) -> String {
    let data =
        json!({"e": "trade", "E": time_ms, "s": symbol, "t": 5933014, "p": price, "q": "1", "T": time_ms, "m": true});
    json!({"stream": format!("{}@trade", symbol.to_ascii_lowercase()), "data": data}).to_string()
}

impl FakeBinanceMarket {
    /// Serves an exchange listing `symbols` (as Binance spells them, `BTCUSDT`) with no candles yet.
    pub async fn start(symbols: &[&str]) -> FakeBinanceMarket {
        let shared = Arc::new(Shared {
            state: Mutex::new(Market { symbols: symbols.iter().map(|s| s.to_string()).collect(), ..Market::default() }),
            changed: watch::Sender::new(0),
        });
        let rest_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let stream_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let rest = rest_listener.local_addr().expect("local address");
        let stream = stream_listener.local_addr().expect("local address");
        let router = Router::new().fallback(rest_handler).with_state(Arc::clone(&shared));
        let rest_task = tokio::spawn(async move {
            let _ = axum::serve(crate::no_delay(rest_listener), router).await;
        });
        let stream_task = tokio::spawn(accept_loop(stream_listener, Arc::clone(&shared)));
        FakeBinanceMarket { shared, rest, stream, tasks: vec![rest_task.abort_handle(), stream_task.abort_handle()] }
    }

    /// What `BINANCE_BASE_URL` points at.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    /// What `BINANCE_STREAM_URL` points at.
    pub fn stream_url(&self) -> String {
        format!("ws://{}", self.stream)
    }

    /// Adds closed (or still forming) candles to the REST history; the client decides closedness by its clock.
    pub fn add_candles(&self, symbol: &str, timeframe: Timeframe, candles: &[Candle]) {
        let mut state = self.shared.lock();
        let series = state.klines.entry((symbol.to_string(), timeframe.as_str().to_string())).or_default();
        for candle in candles {
            series.insert(candle.time.timestamp_millis(), candle.clone());
        }
    }

    /// A candle closes: it joins the REST history and a closed kline goes to the connection, if there is one.
    pub fn close_candle(&self, symbol: &str, timeframe: Timeframe, candle: &Candle) {
        self.add_candles(symbol, timeframe, std::slice::from_ref(candle));
        self.push_kline(symbol, timeframe, candle, true);
    }

    /// Sends a kline frame only (no history change): open klines, duplicates, out-of-order ones.
    pub fn push_kline(&self, symbol: &str, timeframe: Timeframe, candle: &Candle, closed: bool) {
        let stream = format!("{}@kline_{}", symbol.to_ascii_lowercase(), timeframe.as_str());
        self.send(Some(&stream), kline_frame(symbol, timeframe, candle, closed));
    }

    pub fn push_trade(&self, symbol: &str, price: &str, time_ms: i64) {
        let stream = format!("{}@trade", symbol.to_ascii_lowercase());
        self.send(Some(&stream), trade_frame(symbol, price, time_ms));
    }

    /// Sends any text, subscribed or not: malformed frames.
    pub fn push_raw(&self, text: &str) {
        self.send(None, text.to_string());
    }

    fn send(&self, stream: Option<&str>, text: String) {
        let state = self.shared.lock();
        if let Some(live) = &state.live
            && stream.is_none_or(|s| live.streams.iter().any(|l| l == s))
        {
            let _ = live.out.send(Command::Text(text));
        }
    }

    /// Drops the current connection without a close frame (a network failure).
    pub fn disconnect(&self) {
        if let Some(live) = self.shared.lock().live.take() {
            let _ = live.out.send(Command::Drop);
        }
    }

    /// The current connection goes silent: no pings, no frames, but the socket stays open.
    pub fn stall(&self) {
        if let Some(live) = self.shared.lock().live.take() {
            let _ = live.out.send(Command::Stall);
        }
    }

    /// Refuses new connections (HTTP 503 on the upgrade) until [`release_connections`](Self::release_connections).
    pub fn hold_connections(&self) {
        self.shared.lock().held = true;
    }

    pub fn release_connections(&self) {
        self.shared.lock().held = false;
    }

    /// Answers the next klines requests with these faults, one each.
    pub fn fail_klines(&self, faults: &[RestFault]) {
        self.shared.lock().faults.extend(faults.iter().copied());
    }

    pub fn requests(&self) -> Vec<RestRequest> {
        self.shared.lock().requests.clone()
    }

    /// WebSocket connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }

    /// The streams each connection subscribed to, in connection order.
    pub fn subscriptions(&self) -> Vec<Vec<String>> {
        self.shared.lock().subscriptions.clone()
    }

    /// The streams the live connection receives now: its URL's, changed by its SUBSCRIBE and UNSUBSCRIBE
    /// requests. Empty when no connection is live.
    pub fn live_streams(&self) -> Vec<String> {
        self.shared.lock().live.as_ref().map(|l| l.streams.clone()).unwrap_or_default()
    }

    /// Every SUBSCRIBE and UNSUBSCRIBE received, in order.
    pub fn stream_requests(&self) -> Vec<StreamRequest> {
        self.shared.lock().stream_requests.clone()
    }

    /// Waits until the REST requests answered so far satisfy `check`.
    pub async fn wait_for_requests(
        &self,
        timeout: Duration,
        check: impl Fn(&[RestRequest]) -> bool,
    ) -> Result<(), String> {
        let mut changed = self.shared.changed.subscribe();
        let shared = Arc::clone(&self.shared);
        let wait = changed.wait_for(move |_| check(&shared.lock().requests));
        match tokio::time::timeout(timeout, wait).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("REST requests after {timeout:?}: {:?}", self.requests())),
        }
    }

    /// Waits until the live connection's streams satisfy `check`.
    pub async fn wait_for_streams(
        &self,
        timeout: Duration,
        check: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, String> {
        let mut changed = self.shared.changed.subscribe();
        let shared = Arc::clone(&self.shared);
        let wait = changed.wait_for(move |_| shared.lock().live.as_ref().is_some_and(|l| check(&l.streams)));
        match tokio::time::timeout(timeout, wait).await {
            Ok(_) => Ok(self.live_streams()),
            Err(_) => Err(format!("live streams after {timeout:?}: {:?}", self.live_streams())),
        }
    }

    /// Connections the client closed itself with a close frame (retiring one ahead of the 24-hour limit).
    pub fn client_closes(&self) -> u64 {
        self.shared.lock().client_closes
    }

    /// Waits until `n` connections have been accepted, the newest one live.
    pub async fn wait_for_connections(&self, n: u64, timeout: Duration) -> Result<(), String> {
        let mut changed = self.shared.changed.subscribe();
        let shared = Arc::clone(&self.shared);
        let wait = changed.wait_for(move |_| {
            let state = shared.lock();
            state.connections >= n && state.live.as_ref().is_some_and(|l| l.connection >= n)
        });
        match tokio::time::timeout(timeout, wait).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{} connections after {timeout:?}, waited for {n}", self.connections())),
        }
    }
}

async fn rest_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    let response = answer(&shared, &path, &query);
    shared.lock().requests.push(RestRequest { path, query, at: Instant::now(), status: response.status().as_u16() });
    shared.bump();
    response
}

fn binance_error(status: StatusCode, code: i64, msg: &str) -> Response {
    (status, axum::Json(json!({"code": code, "msg": msg}))).into_response()
}

fn answer(shared: &Shared, path: &str, query: &HashMap<String, String>) -> Response {
    let mut state = shared.lock();
    match path {
        "/api/v3/exchangeInfo" | "/fapi/v1/exchangeInfo" => {
            let symbols: Vec<Value> = state
                .symbols
                .iter()
                .map(|s| json!({"symbol": s, "status": "TRADING", "baseAsset": s.trim_end_matches("USDT"), "quoteAsset": "USDT"}))
                .collect();
            axum::Json(json!({"timezone": "UTC", "serverTime": 0, "rateLimits": [], "exchangeFilters": [], "symbols": symbols}))
                .into_response()
        }
        "/api/v3/klines" | "/fapi/v1/klines" => {
            if let Some(fault) = state.faults.pop_front() {
                return match fault {
                    RestFault::RateLimited { retry_after_secs } | RestFault::Banned { retry_after_secs } => {
                        let (status, msg) = if matches!(fault, RestFault::RateLimited { .. }) {
                            (
                                StatusCode::TOO_MANY_REQUESTS,
                                "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
                            )
                        } else {
                            (StatusCode::IM_A_TEAPOT, "Way too many requests; IP banned until 1700000000000.")
                        };
                        let mut response = binance_error(status, -1003, msg);
                        if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                            response.headers_mut().insert("retry-after", value);
                        }
                        response
                    }
                    RestFault::ServerError => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "<html><body>502 Bad Gateway</body></html>").into_response()
                    }
                    RestFault::Malformed => (StatusCode::OK, "{\"unexpected\": true").into_response(),
                };
            }
            let Some(symbol) = query.get("symbol") else {
                return binance_error(StatusCode::BAD_REQUEST, -1102, "Mandatory parameter 'symbol' was not sent.");
            };
            if !state.symbols.contains(symbol) {
                return binance_error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.");
            }
            let Some(timeframe) = query.get("interval").and_then(|i| Timeframe::parse(i).ok()) else {
                return binance_error(StatusCode::BAD_REQUEST, -1120, "Invalid interval.");
            };
            let max = if path.starts_with("/fapi") { 1500 } else { 1000 };
            let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
                None => 500,
                Some(Ok(l)) if (1..=max).contains(&l) => l,
                Some(_) => return binance_error(StatusCode::BAD_REQUEST, -1130, "Invalid data sent for a parameter."),
            };
            let start = query.get("startTime").and_then(|s| s.parse::<i64>().ok()).unwrap_or(i64::MIN);
            let end = query.get("endTime").and_then(|s| s.parse::<i64>().ok()).unwrap_or(i64::MAX);
            let rows: Vec<Value> = state
                .klines
                .entry((symbol.clone(), timeframe.as_str().to_string()))
                .or_default()
                .range(start..=end)
                .take(limit)
                .map(|(_, candle)| kline_row(candle, timeframe))
                .collect();
            axum::Json(Value::Array(rows)).into_response()
        }
        _ => binance_error(StatusCode::NOT_FOUND, -1000, "Unknown path."),
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // Without TCP_NODELAY a frame sent soon after the last one waits for its delayed ACK (40 ms on Linux):
        // that was issue 7's 40 ms candle-to-signal outliers, every one a candle right after a signal.
        let _ = stream.set_nodelay(true);
        connections.spawn(serve(stream, Arc::clone(&shared)));
        while connections.try_join_next().is_some() {}
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let target = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&target);
    let held_shared = Arc::clone(&shared);
    // tungstenite fixes the callback's error type (an HTTP response), large or not.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, response: WsResponse| -> Result<WsResponse, ErrorResponse> {
        let refuse = |status: StatusCode| {
            let mut error = ErrorResponse::new(None);
            *error.status_mut() = status;
            Err(error)
        };
        if held_shared.lock().held {
            return refuse(StatusCode::SERVICE_UNAVAILABLE);
        }
        if request.uri().path() != "/stream" || !request.uri().query().unwrap_or("").starts_with("streams=") {
            return refuse(StatusCode::BAD_REQUEST);
        }
        if let Ok(mut t) = seen.lock() {
            *t = request.uri().query().unwrap_or("").trim_start_matches("streams=").to_string();
        }
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
    let streams: Vec<String> = target.lock().map(|t| t.split('/').map(str::to_string).collect()).unwrap_or_default();
    let (out, mut commands) = mpsc::unbounded_channel();
    let connection = {
        let mut state = shared.lock();
        state.connections += 1;
        let connection = state.connections;
        state.subscriptions.push(streams.clone());
        // Pushes go to the newest connection only.
        if let Some(old) = state.live.replace(Live { connection, streams, out }) {
            let _ = old.out.send(Command::Drop);
        }
        connection
    };
    shared.bump();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let mut stalled = false;
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(WsMessage::Close(_))) => {
                    shared.lock().client_closes += 1;
                    shared.bump();
                    let _ = ws.close(None).await;
                    break;
                }
                Some(Ok(WsMessage::Text(text))) => {
                    let answer = stream_request(&shared, connection, text.as_str());
                    shared.bump();
                    if ws.send(WsMessage::text(answer)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = ping.tick(), if !stalled => {
                if ws.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            // A stalled connection no longer listens, not even to its sender going away.
            command = commands.recv(), if !stalled => match command {
                Some(Command::Text(text)) => {
                    if ws.send(WsMessage::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Command::Stall) => stalled = true,
                // Dropping the socket ends the TCP connection without a close frame.
                Some(Command::Drop) | None => break,
            },
        }
    }
}

/// Applies a SUBSCRIBE or UNSUBSCRIBE to the connection's streams and returns Binance's answer: `{"result":
/// null,"id":n}`, or an error object for anything else, as Binance answers a request it cannot read.
fn stream_request(shared: &Shared, connection: u64, text: &str) -> String {
    let request: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("").to_string();
    let params: Option<Vec<String>> = request
        .get("params")
        .and_then(Value::as_array)
        .and_then(|p| p.iter().map(|v| v.as_str().map(str::to_string)).collect());
    let (Some(params), "SUBSCRIBE" | "UNSUBSCRIBE") = (params, method.as_str()) else {
        return json!({"error": {"code": 2, "msg": "Invalid request: unknown method or malformed params"}, "id": id})
            .to_string();
    };
    let mut state = shared.lock();
    if let Some(live) = state.live.as_mut().filter(|l| l.connection == connection) {
        if method == "SUBSCRIBE" {
            for stream in &params {
                if !live.streams.contains(stream) {
                    live.streams.push(stream.clone());
                }
            }
        } else {
            live.streams.retain(|s| !params.contains(s));
        }
    }
    state.stream_requests.push(StreamRequest { connection, method, params });
    json!({"result": null, "id": id}).to_string()
}

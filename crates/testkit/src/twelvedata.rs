//! A fake of Twelve Data's REST API for the live feed: `GET /time_series` with the API key checked (the
//! `Authorization: apikey …` header or the `apikey` query parameter), a scripted candle history the test adds
//! to as candles close (a still-forming candle is served like any other; the client decides closedness by its
//! clock), and API credits counted per minute of the clock the test controls, answered with Twelve Data's
//! `{"code":429,…}` body once spent.
//!
//! The answer and error formats follow Twelve Data's public API documentation (https://twelvedata.com/docs):
//! `{"meta": {…}, "values": [{"datetime": "2024-01-02 10:00:00", "open": "…", …}], "status": "ok"}`, newest
//! first unless `order=asc`, `YYYY-MM-DD` datetimes for daily bars, a `volume` for stocks only, `start_date` and
//! `end_date` as inclusive bounds, `outputsize` keeping the newest rows, and errors as `{"code", "message",
//! "status": "error"}`, sent with HTTP 200 as Twelve Data usually does, or with the matching status when the
//! test asks. Scripted trouble: 500s, malformed bodies and rows, a connection closed before the answer or cut
//! in the middle of it, duplicate and out-of-order rows, forced 429s, and unknown symbols (400). Waits are
//! built on a watch channel, not sleeps.

use crate::scripted_http;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::{Candle, Clock, Timeframe};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// Scripted trouble for the next `time_series` requests that pass the key and credit checks, one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `{"code":500,…}` (HTTP 500 when errors go with their status).
    ServerError,
    /// HTTP 200 with a body cut short: not JSON.
    Malformed,
    /// A normal answer whose first row has a price that is not a number.
    MalformedRow,
    /// The connection closes without an answer.
    DropConnection,
    /// The answer's headers and the first part of its body arrive, then the connection closes.
    CutMidBody,
    /// The rows come newest first whatever `order` says, with the newest one repeated at the end.
    Shuffled,
    /// `{"code":429,…}` although credits are left (another process spending the same key).
    RateLimited,
}

/// How error bodies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    /// HTTP 200, the code only in the body: what Twelve Data usually does.
    InBody,
    /// The HTTP status matches the body's code.
    Http,
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
    /// The fake's clock when it arrived.
    pub at: DateTime<Utc>,
    pub http_status: u16,
    /// The error body's `code`; `None` for values (and dropped connections).
    pub code: Option<i64>,
}

impl Request {
    /// The clock minute it was counted in.
    pub fn minute(&self) -> i64 {
        self.at.timestamp().div_euclid(60)
    }
}

struct Data {
    api_key: String,
    clock: Arc<dyn Clock>,
    credits_per_minute: u32,
    error_status: ErrorStatus,
    symbols: BTreeSet<String>,
    /// (symbol, interval) → open time → candle.
    series: HashMap<(String, String), BTreeMap<DateTime<Utc>, Candle>>,
    faults: VecDeque<Fault>,
    /// Credits spent per clock minute.
    spent: HashMap<i64, u32>,
    requests: Vec<Request>,
}

struct Shared {
    data: Mutex<Data>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake; dropping it stops the server.
pub struct FakeTwelveData {
    shared: Arc<Shared>,
    address: SocketAddr,
    task: AbortHandle,
}

impl std::fmt::Debug for FakeTwelveData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTwelveData").field("address", &self.address).finish()
    }
}

impl Drop for FakeTwelveData {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Twelve Data's interval names.
pub fn interval(timeframe: Timeframe) -> &'static str {
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

impl FakeTwelveData {
    /// Serves Twelve Data for `api_key`, counting credits by `clock`, 8 a minute (the free plan).
    pub async fn start(api_key: &str, clock: Arc<dyn Clock>) -> FakeTwelveData {
        let shared = Arc::new(Shared {
            data: Mutex::new(Data {
                api_key: api_key.to_string(),
                clock,
                credits_per_minute: 8,
                error_status: ErrorStatus::InBody,
                symbols: BTreeSet::new(),
                series: HashMap::new(),
                faults: VecDeque::new(),
                spent: HashMap::new(),
                requests: Vec::new(),
            }),
            changed: watch::Sender::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let router = Router::new().fallback(handler).with_state(Arc::clone(&shared));
        let task = tokio::spawn(scripted_http::serve(listener, router)).abort_handle();
        FakeTwelveData { shared, address, task }
    }

    /// What `TWELVEDATA_API_URL` points at.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_credits_per_minute(&self, credits: u32) {
        self.shared.lock().credits_per_minute = credits;
    }

    pub fn set_error_status(&self, status: ErrorStatus) {
        self.shared.lock().error_status = status;
    }

    /// Makes a symbol known (as Twelve Data spells it, `EUR/USD`) without candles yet.
    pub fn list(&self, symbol: &str) {
        self.shared.lock().symbols.insert(symbol.to_string());
    }

    /// Adds candles to the history, closed or still forming.
    pub fn add_candles(&self, symbol: &str, timeframe: Timeframe, candles: &[Candle]) {
        let mut data = self.shared.lock();
        data.symbols.insert(symbol.to_string());
        let series = data.series.entry((symbol.to_string(), interval(timeframe).to_string())).or_default();
        for candle in candles {
            series.insert(candle.time, candle.clone());
        }
    }

    /// Answers the next `time_series` requests with these faults, one each.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.shared.lock().faults.extend(faults.iter().copied());
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// Requests that cost a credit (everything but bad keys and 429s), per clock minute.
    pub fn credits_by_minute(&self) -> BTreeMap<i64, u32> {
        self.shared.lock().spent.iter().map(|(m, n)| (*m, *n)).collect()
    }

    /// Waits until `ready` holds for the requests so far.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&[Request]) -> bool,
    ) -> Result<(), String> {
        let mut changed = self.shared.changed.subscribe();
        let shared = Arc::clone(&self.shared);
        let wait = changed.wait_for(move |_| ready(&shared.lock().requests));
        match tokio::time::timeout(timeout, wait).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("timed out after {timeout:?} waiting for {what}; requests: {:?}", self.requests())),
        }
    }
}

fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .map(|t| t.and_utc())
}

fn timeframe_of(name: &str) -> Option<Timeframe> {
    Timeframe::ALL.into_iter().find(|t| interval(*t) == name)
}

/// An error answer in Twelve Data's shape.
fn error(status: ErrorStatus, code: u16, message: &str) -> Response {
    let http = match status {
        ErrorStatus::InBody => StatusCode::OK,
        ErrorStatus::Http => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    (http, axum::Json(json!({"code": code, "message": message, "status": "error"}))).into_response()
}

fn row(candle: &Candle, timeframe: Timeframe, stock: bool) -> Value {
    let datetime = if timeframe == Timeframe::D1 {
        candle.time.format("%Y-%m-%d").to_string()
    } else {
        candle.time.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    let mut row = json!({
        "datetime": datetime,
        "open": candle.open.to_string(),
        "high": candle.high.to_string(),
        "low": candle.low.to_string(),
        "close": candle.close.to_string(),
    });
    if stock {
        row["volume"] = json!(candle.volume.to_string());
    }
    row
}

fn meta(symbol: &str, interval: &str) -> Value {
    match symbol.split_once('/') {
        Some((base, quote)) => json!({
            "symbol": symbol, "interval": interval, "currency_base": base, "currency_quote": quote,
            "type": if base == "XAU" || base == "XAG" { "Physical Metal" } else { "Physical Currency" }
        }),
        None => json!({
            "symbol": symbol, "interval": interval, "currency": "USD", "exchange_timezone": "America/New_York",
            "exchange": "NASDAQ", "mic_code": "XNGS", "type": "Common Stock"
        }),
    }
}

async fn handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (response, code, at) = {
        let mut data = shared.lock();
        let at = data.clock.now();
        let (response, code) = answer(&mut data, uri.path(), &query, authorization.as_deref(), at);
        (response, code, at)
    };
    let dropped = response.extensions().get::<scripted_http::DropConnection>().is_some();
    let http_status = if dropped { 0 } else { response.status().as_u16() };
    shared.lock().requests.push(Request { path: uri.path().to_string(), query, authorization, at, http_status, code });
    shared.changed.send_modify(|n| *n += 1);
    response
}

/// The answer and its error code, if it is an error.
fn answer(
    data: &mut Data,
    path: &str,
    query: &HashMap<String, String>,
    authorization: Option<&str>,
    now: DateTime<Utc>,
) -> (Response, Option<i64>) {
    let status = data.error_status;
    let key = authorization.and_then(|a| a.strip_prefix("apikey ")).or(query.get("apikey").map(String::as_str));
    if key != Some(data.api_key.as_str()) {
        let message = "**apikey** parameter is incorrect or not specified. You can get your free API key instantly \
                       following this link: https://twelvedata.com/pricing. If you believe that everything is \
                       correct, you can contact us at https://twelvedata.com/contact/customer";
        return (error(status, 401, message), Some(401));
    }
    let minute = now.timestamp().div_euclid(60);
    let spent = data.spent.get(&minute).copied().unwrap_or(0);
    let forced = data.faults.front() == Some(&Fault::RateLimited);
    if spent >= data.credits_per_minute || forced {
        if forced {
            data.faults.pop_front();
        }
        let message = format!(
            "You have run out of API credits for the current minute. {} API credits were used, with the current \
             limit being {}. Wait for the next minute or consider switching to a higher tier plan at \
             https://twelvedata.com/pricing",
            spent + 1,
            data.credits_per_minute
        );
        return (error(status, 429, &message), Some(429));
    }
    *data.spent.entry(minute).or_default() += 1;
    if path != "/time_series" {
        return (error(status, 404, "Not found"), Some(404));
    }
    let fault = data.faults.pop_front();
    match fault {
        Some(Fault::ServerError) => {
            return (error(status, 500, "Internal server error. Please try again later."), Some(500));
        }
        Some(Fault::Malformed) => {
            return ((StatusCode::OK, "{\"meta\":{\"symbol\":\"EUR/USD\",\"interval\":").into_response(), None);
        }
        Some(Fault::DropConnection) => return (scripted_http::dropped(), None),
        _ => {}
    }
    let Some(symbol) = query.get("symbol") else {
        return (error(status, 400, "**symbol** parameter is missing or invalid."), Some(400));
    };
    let Some(timeframe) = query.get("interval").and_then(|i| timeframe_of(i)) else {
        let message = "**interval** is missing or invalid. Supported: 1min, 5min, 15min, 30min, 45min, 1h, 2h, 4h, \
                       1day, 1week, 1month";
        return (error(status, 400, message), Some(400));
    };
    if !data.symbols.contains(symbol) {
        let message = format!(
            "**symbol** {symbol} not found: the symbol may be delisted or not supported. Check the symbol at \
             https://twelvedata.com/symbols"
        );
        return (error(status, 400, &message), Some(400));
    }
    let bound = |name: &str| query.get(name).map(|v| parse_date(v).ok_or(()));
    let (start, end) = match (bound("start_date"), bound("end_date")) {
        (Some(Err(())), _) | (_, Some(Err(()))) => {
            return (error(status, 400, "**start_date** or **end_date** has an invalid format."), Some(400));
        }
        (start, end) => (start.and_then(Result::ok), end.and_then(Result::ok)),
    };
    let dated = start.is_some() || end.is_some();
    let outputsize = match query.get("outputsize").map(|s| s.parse::<usize>()) {
        None => {
            if dated {
                5000
            } else {
                30
            }
        }
        Some(Ok(n)) if (1..=5000).contains(&n) => n,
        Some(_) => return (error(status, 400, "**outputsize** must be between 1 and 5000."), Some(400)),
    };
    let series = data.series.get(&(symbol.clone(), interval(timeframe).to_string()));
    let in_range: Vec<&Candle> = series
        .map(|s| s.values().filter(|c| start.is_none_or(|t| c.time >= t) && end.is_none_or(|t| c.time <= t)).collect())
        .unwrap_or_default();
    // Twelve Data keeps the newest rows of a range longer than outputsize.
    let mut rows: Vec<&Candle> = in_range.iter().rev().take(outputsize).copied().collect();
    if rows.is_empty() {
        let message = "No data is available on the specified dates. Try setting different start/end dates.";
        return (error(status, 400, message), Some(400));
    }
    let stock = !symbol.contains('/');
    if fault == Some(Fault::Shuffled) {
        rows.push(rows[0]);
    } else if query.get("order").is_some_and(|o| o.eq_ignore_ascii_case("asc")) {
        rows.reverse();
    }
    let mut values: Vec<Value> = rows.iter().map(|c| row(c, timeframe, stock)).collect();
    if fault == Some(Fault::MalformedRow) {
        values[0]["open"] = json!("n/a");
    }
    let body = json!({"meta": meta(symbol, interval(timeframe)), "values": values, "status": "ok"}).to_string();
    if fault == Some(Fault::CutMidBody) {
        return (cut(body), None);
    }
    (([("content-type", "application/json")], body).into_response(), None)
}

/// A 200 that promises the whole body but sends half of it, then fails the stream so the connection closes.
fn cut(body: String) -> Response {
    let length = body.len();
    let half = Bytes::from(body.into_bytes()).slice(..length / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "scripted cut"))];
    let mut response = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/json"));
    response.headers_mut().insert("content-length", axum::http::HeaderValue::from(length));
    response
}

//! The live Binance feed (spot and USDⓈ-M futures): closed candles and ticks from Binance's public market data,
//! behind the same [`MarketFeed`] trait as the replay.
//!
//! A run first checks every subscribed instrument against `exchangeInfo` (and refuses forex, metals and stocks
//! outright), so a pair Binance cannot serve is an error at start naming it rather than a silent empty stream.
//! Then, for every connection: open the combined stream (`/stream?streams=btcusdt@kline_1h/btcusdt@trade/…`),
//! backfill by REST (`/api/v3/klines` or `/fapi/v1/klines`) from the last candle already delivered (or
//! `warmup_candles` back) up to now, and read the stream. Connecting before backfilling means a candle closing
//! during the backfill is buffered in the socket rather than lost. Every (symbol, timeframe) remembers the
//! open time of the last candle it delivered and drops anything not newer, so the overlap between REST and
//! the stream, duplicates and out-of-order frames all collapse to each candle exactly once, in order; a
//! closed kline that skips ahead triggers a REST fill of the hole first.
//!
//! Connections end on purpose before Binance's 24-hour limit (`connection_lifetime`), and by accident on a
//! network failure, a close frame or a stall (`stall_timeout` without any frame, pings included). Accidents are
//! retried with exponential backoff; each reconnect re-runs the backfill, which is what fills the gap. A
//! malformed frame or REST row is logged and skipped; REST 429 and 418 wait out `Retry-After`.
//!
//! The pair set can change mid-run (`updates`): the feed sends `UNSUBSCRIBE` and `SUBSCRIBE` on the open
//! socket rather than reconnecting, so pairs kept in both sets lose nothing, then backfills each gained pair
//! (after the last candle it delivered, else the last one the app stores, else `warmup_candles` back). A
//! gained instrument Binance cannot serve is logged and skipped: a settings change must not stop the feed.

mod wire;

use crate::feed::{
    FeedEnd, FeedError, FeedEvent, FeedObserver, FeedStats, MarketFeed, ResumePoints, SubscriptionUpdates,
};
use crate::sequencer::{CandleSequencer, Sequence};
use chrono::{DateTime, Utc};
use domain::{AssetClass, Clock, InstrumentRegistry, Symbol, Tick, Timeframe};
use futures::StreamExt as _;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wire::{Kline, StreamEvent};

const FEED: &str = "binance";

/// Which Binance market: the paths differ, the formats do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinanceMarket {
    Spot,
    /// USDⓈ-M futures.
    UsdFutures,
}

impl BinanceMarket {
    pub fn default_rest_url(self) -> &'static str {
        match self {
            BinanceMarket::Spot => "https://api.binance.com",
            BinanceMarket::UsdFutures => "https://fapi.binance.com",
        }
    }

    pub fn default_stream_url(self) -> &'static str {
        match self {
            BinanceMarket::Spot => "wss://stream.binance.com:9443",
            BinanceMarket::UsdFutures => "wss://fstream.binance.com",
        }
    }

    fn klines_path(self) -> &'static str {
        match self {
            BinanceMarket::Spot => "/api/v3/klines",
            BinanceMarket::UsdFutures => "/fapi/v1/klines",
        }
    }

    fn exchange_info_path(self) -> &'static str {
        match self {
            BinanceMarket::Spot => "/api/v3/exchangeInfo",
            BinanceMarket::UsdFutures => "/fapi/v1/exchangeInfo",
        }
    }
}

/// Where ticks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickSource {
    /// No ticks, candles only.
    None,
    /// `<symbol>@trade`: every trade's price as bid and ask.
    Trade,
    /// `<symbol>@bookTicker`: best bid and ask.
    BookTicker,
}

/// How a [`BinanceFeed`] runs.
#[derive(Debug, Clone)]
pub struct BinanceFeedConfig {
    pub market: BinanceMarket,
    /// REST base, `https://api.binance.com` or a fake's `http://127.0.0.1:PORT`.
    pub rest_url: String,
    /// WebSocket base, `wss://stream.binance.com:9443` or a fake's `ws://127.0.0.1:PORT`.
    pub stream_url: String,
    /// The (instrument, timeframe) pairs to deliver closed candles for.
    pub subscriptions: Vec<(Symbol, Timeframe)>,
    pub ticks: TickSource,
    /// Candles to backfill for a pair with nothing in `resume_after`.
    pub warmup_candles: u32,
    /// Open time of the last candle already stored per pair: the backfill starts after it.
    pub resume_after: HashMap<(Symbol, Timeframe), DateTime<Utc>>,
    /// Klines per REST page (Binance allows up to 1000 on spot, 1500 on futures).
    pub page_limit: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Binance closes a connection after 24 hours; we retire it before.
    pub connection_lifetime: Duration,
    /// No frame at all (Binance pings every few minutes) for this long means the connection is dead.
    pub stall_timeout: Duration,
    /// REST attempts per request before the connection cycle starts over.
    pub rest_attempts: u32,
    /// New pair sets from the app; `None`: `subscriptions` for the whole run.
    pub updates: Option<SubscriptionUpdates>,
    /// Where a pair gained mid-run resumes when the run has not delivered it yet; `None`: `warmup_candles`.
    pub resume_points: Option<Arc<dyn ResumePoints>>,
}

impl BinanceFeedConfig {
    /// Binance's own hosts and production timings.
    pub fn new(market: BinanceMarket, subscriptions: Vec<(Symbol, Timeframe)>) -> Self {
        BinanceFeedConfig {
            market,
            rest_url: market.default_rest_url().into(),
            stream_url: market.default_stream_url().into(),
            subscriptions,
            ticks: TickSource::Trade,
            warmup_candles: 200,
            resume_after: HashMap::new(),
            page_limit: 1000,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            connection_lifetime: Duration::from_secs(23 * 3600 + 50 * 60),
            stall_timeout: Duration::from_secs(10 * 60),
            rest_attempts: 5,
            updates: None,
            resume_points: None,
        }
    }
}

/// A [`MarketFeed`] reading Binance.
#[derive(Debug, Clone)]
pub struct BinanceFeed {
    config: BinanceFeedConfig,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    observer: Option<Arc<dyn FeedObserver>>,
}

/// Why reading stopped before the feed's end.
enum Interrupt {
    /// The feed is over (shutdown, receiver gone).
    Stop(FeedEnd),
    /// Something transient; reconnect after a backoff.
    Retry(String),
    /// Retrying cannot help (an unknown symbol, a refused request).
    Fatal(FeedError),
}

/// How a connection ended.
enum ConnectionEnd {
    Retired,
    /// Why, and how long the connection had been up.
    Lost(String, Duration),
}

fn source_error(message: impl Into<String>) -> FeedError {
    FeedError::Source { feed: FEED.into(), message: message.into() }
}

impl BinanceFeed {
    /// Checks the configuration offline: at least one pair, and no instrument Binance cannot list at all.
    pub fn new(config: BinanceFeedConfig, clock: Arc<dyn Clock>) -> Result<BinanceFeed, FeedError> {
        if config.subscriptions.is_empty() {
            return Err(source_error("no (instrument, timeframe) pairs to stream"));
        }
        if config.page_limit == 0 || config.rest_attempts == 0 {
            return Err(source_error("page_limit and rest_attempts must be at least 1"));
        }
        for (symbol, _) in &config.subscriptions {
            if let Ok(instrument) = InstrumentRegistry::global().get(symbol.as_str())
                && instrument.asset_class != AssetClass::Crypto
            {
                return Err(source_error(format!(
                    "cannot serve {symbol}: it is a {:?} instrument and Binance lists crypto pairs only",
                    instrument.asset_class
                )));
            }
        }
        // rustls needs a process-wide crypto provider for wss://; ring is the one the workspace builds.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| source_error(format!("cannot build the HTTP client: {e}")))?;
        Ok(BinanceFeed { config, clock, http, observer: None })
    }

    pub fn with_observer(mut self, observer: Arc<dyn FeedObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn config(&self) -> &BinanceFeedConfig {
        &self.config
    }

    /// Feeds the run new pair sets; see [`BinanceFeedConfig::updates`].
    pub fn with_updates(mut self, updates: SubscriptionUpdates) -> Self {
        self.config.updates = Some(updates);
        self
    }

    /// See [`BinanceFeedConfig::resume_points`].
    pub fn with_resume_points(mut self, resume_points: Arc<dyn ResumePoints>) -> Self {
        self.config.resume_points = Some(resume_points);
        self
    }

    /// The combined-stream URL for the subscriptions.
    pub fn stream_url(&self) -> String {
        self.stream_url_for(&self.config.subscriptions)
    }

    fn stream_url_for(&self, pairs: &[(Symbol, Timeframe)]) -> String {
        let streams = self.stream_names(pairs);
        format!("{}/stream?streams={}", self.config.stream_url.trim_end_matches('/'), streams.join("/"))
    }

    /// The stream names `pairs` need: a kline stream per pair and a tick stream per symbol.
    fn stream_names(&self, pairs: &[(Symbol, Timeframe)]) -> Vec<String> {
        let mut streams = Vec::new();
        for (symbol, timeframe) in pairs {
            streams.push(format!("{}@kline_{}", binance_name(symbol), wire::interval(*timeframe)));
        }
        let symbols: BTreeSet<&Symbol> = pairs.iter().map(|(s, _)| s).collect();
        for symbol in symbols {
            match self.config.ticks {
                TickSource::None => {}
                TickSource::Trade => streams.push(format!("{}@trade", binance_name(symbol))),
                TickSource::BookTicker => streams.push(format!("{}@bookTicker", binance_name(symbol))),
            }
        }
        streams
    }

    /// Binance's symbols and their trading status, from `exchangeInfo`.
    async fn listing(&self) -> Result<HashMap<String, String>, FeedError> {
        let url = format!("{}{}", self.rest_base(), self.config.market.exchange_info_path());
        let body = match self.get_with_retries(&url, &[]).await {
            Ok(body) => body,
            Err(Interrupt::Fatal(e)) => return Err(e),
            Err(Interrupt::Retry(message)) => return Err(source_error(format!("exchangeInfo: {message}"))),
            Err(Interrupt::Stop(_)) => return Err(source_error("exchangeInfo: stopped")),
        };
        Ok(wire::parse_exchange_symbols(&body).map_err(source_error)?.into_iter().collect())
    }

    /// Asks `exchangeInfo` whether Binance lists every subscribed symbol; the error names the first it does not.
    pub async fn check_instruments(&self) -> Result<(), FeedError> {
        self.check_listed(&self.listing().await?)
    }

    fn check_listed(&self, listed: &HashMap<String, String>) -> Result<(), FeedError> {
        for (symbol, _) in &self.config.subscriptions {
            match listed.get(symbol.as_str()) {
                None => {
                    return Err(source_error(format!(
                        "cannot serve {symbol}: Binance {:?} does not list it in exchangeInfo",
                        self.config.market
                    )));
                }
                Some(status) if status != "TRADING" => {
                    tracing::warn!(%symbol, %status, "Binance lists the symbol but it is not trading now");
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn rest_base(&self) -> &str {
        self.config.rest_url.trim_end_matches('/')
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.config.backoff_initial.saturating_mul(factor).min(self.config.backoff_max)
    }

    /// GET with retries: 429/418 wait `Retry-After`, 5xx and network errors back off, other refusals are fatal.
    async fn get_with_retries(&self, url: &str, query: &[(&str, String)]) -> Result<String, Interrupt> {
        let mut last = String::new();
        for attempt in 1..=self.config.rest_attempts {
            let wait = match self.http.get(url).query(query).send().await {
                Err(e) => {
                    last = format!("request failed: {e}");
                    self.backoff(attempt)
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        match response.text().await {
                            Ok(body) => return Ok(body),
                            Err(e) => {
                                last = format!("reading the answer failed: {e}");
                                self.backoff(attempt)
                            }
                        }
                    } else if status.as_u16() == 429 || status.as_u16() == 418 {
                        let retry_after = response
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        let body = response.text().await.unwrap_or_default();
                        last = format!("HTTP {status}: {}", wire::error_text(&body));
                        let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                        tracing::warn!(%url, %status, ?wait, "Binance rate limit; waiting as Retry-After asks");
                        wait
                    } else if status.is_server_error() {
                        let body = response.text().await.unwrap_or_default();
                        last = format!("HTTP {status}: {}", wire::error_text(&body));
                        self.backoff(attempt)
                    } else {
                        let body = response.text().await.unwrap_or_default();
                        return Err(Interrupt::Fatal(source_error(format!(
                            "GET {url} refused: HTTP {status}: {}",
                            wire::error_text(&body)
                        ))));
                    }
                }
            };
            if attempt < self.config.rest_attempts {
                tracing::warn!(%url, attempt, error = %last, "Binance REST request failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
        Err(Interrupt::Retry(format!("GET {url}: {last}")))
    }
}

/// Binance's stream names are lower case: `btcusdt@kline_1h`.
fn binance_name(symbol: &Symbol) -> String {
    symbol.as_str().to_ascii_lowercase()
}

/// The state one run carries across connections.
struct Run<'a> {
    feed: &'a BinanceFeed,
    tx: mpsc::Sender<FeedEvent>,
    shutdown: CancellationToken,
    /// The last candle delivered per pair, kept across connections and pair-set changes.
    sequencer: CandleSequencer,
    /// Binance's symbol and interval → our pair.
    pairs: HashMap<(String, String), (Symbol, Timeframe)>,
    symbols: HashMap<String, Symbol>,
    stats: FeedStats,
    /// The pairs streamed now: the configuration's until an update changes them.
    subscriptions: Vec<(Symbol, Timeframe)>,
    updates: Option<SubscriptionUpdates>,
    /// `exchangeInfo`'s symbols and status, looked up again when an update names one it lacks.
    listed: HashMap<String, String>,
    /// The id of the last SUBSCRIBE or UNSUBSCRIBE sent; Binance echoes it in its answer.
    request_id: u64,
}

/// Binance's symbol and interval → our pair, for reading kline frames.
fn pair_index(pairs: &[(Symbol, Timeframe)]) -> HashMap<(String, String), (Symbol, Timeframe)> {
    pairs.iter().map(|(s, t)| ((s.as_str().to_string(), wire::interval(*t).to_string()), (s.clone(), *t))).collect()
}

fn symbol_index(pairs: &[(Symbol, Timeframe)]) -> HashMap<String, Symbol> {
    pairs.iter().map(|(s, _)| (s.as_str().to_string(), s.clone())).collect()
}

/// The next pair set sent on `updates`. Never resolves when there is none, or once its sender is gone (the
/// app stopped sending: the current set stays).
async fn next_update(updates: &mut Option<SubscriptionUpdates>) -> Vec<(Symbol, Timeframe)> {
    if let Some(receiver) = updates {
        if receiver.changed().await.is_ok() {
            return receiver.borrow_and_update().clone();
        }
        *updates = None;
    }
    std::future::pending().await
}

impl Run<'_> {
    async fn emit(&mut self, event: FeedEvent) -> Result<(), Interrupt> {
        let is_candle = matches!(event, FeedEvent::CandleClosed { .. });
        tokio::select! {
            () = self.shutdown.cancelled() => Err(Interrupt::Stop(FeedEnd::Shutdown)),
            sent = self.tx.send(event) => match sent {
                Ok(()) => {
                    if is_candle { self.stats.candles += 1 } else { self.stats.ticks += 1 }
                    Ok(())
                }
                Err(_) => Err(Interrupt::Stop(FeedEnd::ReceiverDropped)),
            }
        }
    }

    /// Delivers a closed candle unless one at or after its open time was delivered already.
    async fn deliver(&mut self, pair: &(Symbol, Timeframe), kline: Kline) -> Result<bool, Interrupt> {
        if !self.sequencer.record(pair, kline.candle.time) {
            return Ok(false);
        }
        let (symbol, timeframe) = pair.clone();
        self.emit(FeedEvent::CandleClosed { symbol, timeframe, candle: kline.candle }).await?;
        Ok(true)
    }

    /// REST backfill of one pair: closed candles after the last delivered one, with open time before `until`
    /// (all closed ones when `None`). Returns how many were delivered.
    async fn backfill(&mut self, pair: &(Symbol, Timeframe), until: Option<DateTime<Utc>>) -> Result<u64, Interrupt> {
        let (symbol, timeframe) = pair;
        if !self.sequencer.knows(pair)
            && let Some(points) = self.feed.config.resume_points.clone()
        {
            match points.last_stored(symbol, *timeframe).await {
                Ok(Some(last)) => {
                    self.sequencer.resume(pair, last);
                }
                Ok(None) => {}
                Err(problem) => {
                    tracing::warn!(%symbol, %timeframe, %problem, "could not read where the store ends; backfilling the warm-up");
                }
            }
        }
        let config = &self.feed.config;
        let now = self.feed.clock.now();
        let now_ms = now.timestamp_millis();
        let step = timeframe.duration();
        let mut start = match self.sequencer.last(pair) {
            Some(last) => last + step,
            None => timeframe.bucket_start(now) - step * config.warmup_candles as i32,
        };
        let url = format!("{}{}", self.feed.rest_base(), config.market.klines_path());
        let mut delivered = 0;
        loop {
            let query = [
                ("symbol", symbol.as_str().to_string()),
                ("interval", wire::interval(*timeframe).to_string()),
                ("startTime", start.timestamp_millis().to_string()),
                ("limit", config.page_limit.to_string()),
            ];
            let body = self.feed.get_with_retries(&url, &query).await?;
            let rows = match wire::parse_rest_klines(&body) {
                Ok(rows) => rows,
                Err(problem) => return Err(Interrupt::Retry(format!("GET {url}: {problem}"))),
            };
            let full_page = rows.len() >= config.page_limit as usize;
            let mut newest: Option<DateTime<Utc>> = None;
            let mut reached_now = false;
            for row in rows {
                let kline = match row {
                    Ok(kline) => kline,
                    Err(problem) => {
                        tracing::warn!(%symbol, %timeframe, %problem, "malformed kline row from Binance REST; skipped");
                        continue;
                    }
                };
                if kline.close_ms >= now_ms || until.is_some_and(|until| kline.candle.time >= until) {
                    reached_now = true;
                    break;
                }
                newest = Some(kline.candle.time);
                if self.deliver(pair, kline).await? {
                    delivered += 1;
                }
            }
            match newest {
                Some(newest) if full_page && !reached_now => start = newest + step,
                _ => return Ok(delivered),
            }
        }
    }

    async fn backfill_all(&mut self, after_reconnect: bool) -> Result<(), Interrupt> {
        let pairs = self.subscriptions.clone();
        for pair in &pairs {
            let filled = self.backfill(pair, None).await?;
            if after_reconnect && filled > 0 {
                tracing::info!(symbol = %pair.0, timeframe = %pair.1, candles = filled, "gap filled from Binance REST");
                if let Some(observer) = &self.feed.observer {
                    observer.gap_filled(FEED, filled);
                }
            }
        }
        Ok(())
    }

    async fn on_frame(&mut self, text: &str) -> Result<(), Interrupt> {
        let event = match wire::parse_frame(text) {
            Ok(event) => event,
            Err(problem) => {
                tracing::warn!(%problem, "malformed Binance stream frame; skipped");
                return Ok(());
            }
        };
        match event {
            StreamEvent::Kline { symbol, interval, kline, closed } => {
                if !closed {
                    return Ok(());
                }
                let Some(pair) = self.pairs.get(&(symbol.clone(), interval.clone())).cloned() else {
                    if self.sequencer.pairs().any(|(s, t)| s.as_str() == symbol && wire::interval(*t) == interval) {
                        // Frames still in flight when the pair was unsubscribed.
                        tracing::debug!(%symbol, %interval, "kline for a pair no longer subscribed; skipped");
                    } else {
                        tracing::warn!(%symbol, %interval, "kline for a pair we did not subscribe to; skipped");
                    }
                    return Ok(());
                };
                let time = kline.candle.time;
                match self.sequencer.check(&pair, time) {
                    Sequence::Deliver => {}
                    Sequence::Stale { .. } => {
                        tracing::debug!(%symbol, %interval, %time, "duplicate or out-of-order kline dropped");
                        return Ok(());
                    }
                    Sequence::Gap { to, .. } => {
                        // The stream skipped candles: fetch them before this one so order holds.
                        let filled = self.backfill(&pair, Some(to)).await?;
                        if filled > 0
                            && let Some(observer) = &self.feed.observer
                        {
                            observer.gap_filled(FEED, filled);
                        }
                    }
                }
                let close_time = kline.candle.close_time(pair.1);
                if self.deliver(&pair, kline).await?
                    && let Some(observer) = &self.feed.observer
                {
                    let lag = (self.feed.clock.now() - close_time).to_std().unwrap_or_default();
                    observer.candle_lag(FEED, lag);
                }
            }
            StreamEvent::Trade { symbol, time, price } => {
                if let Some(symbol) = self.symbols.get(&symbol).cloned() {
                    self.emit(FeedEvent::Tick(Tick { symbol, time, bid: price, ask: price, synthetic_from: None }))
                        .await?;
                }
            }
            StreamEvent::Book { symbol, time, bid, ask } => {
                if let Some(symbol) = self.symbols.get(&symbol).cloned() {
                    let time = time.unwrap_or_else(|| self.feed.clock.now());
                    self.emit(FeedEvent::Tick(Tick { symbol, time, bid, ask, synthetic_from: None })).await?;
                }
            }
            StreamEvent::Other => {}
        }
        Ok(())
    }

    /// The pairs of `wanted` Binance can serve, in order, without repeats; the rest are logged and skipped.
    async fn servable(&mut self, wanted: Vec<(Symbol, Timeframe)>) -> Vec<(Symbol, Timeframe)> {
        if wanted.iter().any(|(symbol, _)| !self.listed.contains_key(symbol.as_str())) {
            // A symbol listed since the run started deserves one more look before it is refused.
            match self.feed.listing().await {
                Ok(listed) => self.listed = listed,
                Err(error) => tracing::warn!(%error, "could not refresh Binance's exchangeInfo; using the last one"),
            }
        }
        let mut servable: Vec<(Symbol, Timeframe)> = Vec::new();
        for pair in wanted {
            let symbol = &pair.0;
            if let Ok(instrument) = InstrumentRegistry::global().get(symbol.as_str())
                && instrument.asset_class != AssetClass::Crypto
            {
                tracing::warn!(%symbol, class = ?instrument.asset_class, "Binance lists crypto pairs only; pair skipped");
                continue;
            }
            match self.listed.get(symbol.as_str()) {
                None => {
                    tracing::warn!(%symbol, market = ?self.feed.config.market, "Binance does not list the symbol; pair skipped");
                    continue;
                }
                Some(status) if status != "TRADING" => {
                    tracing::warn!(%symbol, %status, "Binance lists the symbol but it is not trading now");
                }
                Some(_) => {}
            }
            if !servable.contains(&pair) {
                servable.push(pair);
            }
        }
        servable
    }

    /// Makes `wanted` the streamed set. Returns the streams to drop, the streams to add and the pairs gained.
    fn apply(&mut self, wanted: Vec<(Symbol, Timeframe)>) -> (Vec<String>, Vec<String>, Vec<(Symbol, Timeframe)>) {
        let old = self.feed.stream_names(&self.subscriptions);
        let new = self.feed.stream_names(&wanted);
        let dropped = old.iter().filter(|s| !new.contains(s)).cloned().collect();
        let added = new.iter().filter(|s| !old.contains(s)).cloned().collect();
        let gained = wanted.iter().filter(|p| !self.subscriptions.contains(p)).cloned().collect();
        self.pairs = pair_index(&wanted);
        self.symbols = symbol_index(&wanted);
        self.subscriptions = wanted;
        (dropped, added, gained)
    }

    /// The servable part of `wanted`, or `None` (logged) when nothing changes: an update naming nothing
    /// Binance serves keeps the current pairs rather than leaving the feed with no stream at all.
    async fn next_set(&mut self, wanted: Vec<(Symbol, Timeframe)>) -> Option<Vec<(Symbol, Timeframe)>> {
        let wanted = self.servable(wanted).await;
        if wanted.is_empty() {
            tracing::warn!("the new pair set has nothing Binance can serve; keeping the current pairs");
            return None;
        }
        let unchanged =
            wanted.len() == self.subscriptions.len() && wanted.iter().all(|p| self.subscriptions.contains(p));
        (!unchanged).then_some(wanted)
    }

    /// A new pair set while connected: UNSUBSCRIBE and SUBSCRIBE on the socket, then backfill the gained pairs.
    /// Subscribing first means a candle closing during the backfill waits in the socket, as on connecting.
    /// `Some(problem)` when the socket failed; the new set is in place for the reconnect either way.
    async fn resubscribe<S>(
        &mut self,
        socket: &mut S,
        wanted: Vec<(Symbol, Timeframe)>,
    ) -> Result<Option<String>, Interrupt>
    where
        S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
    {
        use futures::SinkExt as _;
        let Some(wanted) = self.next_set(wanted).await else { return Ok(None) };
        let (dropped, added, gained) = self.apply(wanted);
        tracing::info!(?dropped, ?added, "Binance pair set changed");
        for (method, params) in [("UNSUBSCRIBE", dropped), ("SUBSCRIBE", added)] {
            if params.is_empty() {
                continue;
            }
            self.request_id += 1;
            let request = serde_json::json!({"method": method, "params": params, "id": self.request_id});
            if let Err(e) = socket.send(Message::text(request.to_string())).await {
                return Ok(Some(format!("could not send {method}: {e}")));
            }
        }
        for pair in &gained {
            let filled = self.backfill(pair, None).await?;
            tracing::info!(symbol = %pair.0, timeframe = %pair.1, candles = filled, "pair added to the Binance stream");
        }
        Ok(None)
    }

    /// One connection: backfill, then read until it ends.
    async fn connection(&mut self, after_reconnect: bool) -> Result<ConnectionEnd, Interrupt> {
        // A set sent while disconnected goes straight into the URL.
        let pending = match &mut self.updates {
            Some(receiver) => match receiver.has_changed() {
                Ok(true) => Some(receiver.borrow_and_update().clone()),
                Ok(false) => None,
                Err(_) => {
                    self.updates = None;
                    None
                }
            },
            None => None,
        };
        if let Some(wanted) = pending
            && let Some(wanted) = self.next_set(wanted).await
        {
            self.apply(wanted);
        }
        let url = self.feed.stream_url_for(&self.subscriptions);
        let connected = tokio::select! {
            () = self.shutdown.cancelled() => return Err(Interrupt::Stop(FeedEnd::Shutdown)),
            // Nagle off: a SUBSCRIBE or a pong must not wait for the server's delayed ACK.
            connected = tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)) => connected,
        };
        let mut socket = match connected {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(e)) => return Err(Interrupt::Retry(format!("cannot connect to {url}: {e}"))),
            Err(_) => return Err(Interrupt::Retry(format!("connecting to {url} timed out"))),
        };
        let opened = Instant::now();
        let retire_at = opened + self.feed.config.connection_lifetime;
        let lost = |why: String| ConnectionEnd::Lost(why, opened.elapsed());
        tracing::info!(%url, "connected to the Binance stream");
        self.backfill_all(after_reconnect).await?;
        // Connected means caught up: a stream that opens but whose backfill fails is still down for the user.
        if let Some(observer) = &self.feed.observer {
            observer.connected(FEED);
        }
        let stall = self.feed.config.stall_timeout;
        loop {
            let next = tokio::select! {
                () = self.shutdown.cancelled() => {
                    let _ = socket.close(None).await;
                    return Err(Interrupt::Stop(FeedEnd::Shutdown));
                }
                () = tokio::time::sleep_until(retire_at) => {
                    let _ = socket.close(None).await;
                    return Ok(ConnectionEnd::Retired);
                }
                wanted = next_update(&mut self.updates) => {
                    match self.resubscribe(&mut socket, wanted).await? {
                        Some(problem) => return Ok(lost(problem)),
                        None => continue,
                    }
                }
                next = tokio::time::timeout(stall, socket.next()) => next,
            };
            match next {
                Err(_) => return Ok(lost(format!("no frame for {stall:?}"))),
                Ok(None) => return Ok(lost("the connection ended".into())),
                Ok(Some(Err(e))) => return Ok(lost(e.to_string())),
                Ok(Some(Ok(Message::Text(text)))) => self.on_frame(text.as_str()).await?,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let reason = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                    return Ok(lost(format!("closed by Binance: {reason}")));
                }
                Ok(Some(Ok(Message::Binary(_)))) => tracing::warn!("binary frame on the Binance stream; skipped"),
                // tungstenite answers pings itself.
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

#[async_trait::async_trait]
impl MarketFeed for BinanceFeed {
    fn name(&self) -> &str {
        FEED
    }

    async fn run(
        self: Box<Self>,
        tx: mpsc::Sender<FeedEvent>,
        shutdown: CancellationToken,
    ) -> Result<FeedStats, FeedError> {
        let mut run = Run {
            feed: &self,
            tx,
            shutdown: shutdown.clone(),
            sequencer: CandleSequencer::resuming(self.config.resume_after.clone()),
            pairs: pair_index(&self.config.subscriptions),
            symbols: symbol_index(&self.config.subscriptions),
            stats: FeedStats { candles: 0, ticks: 0, end: FeedEnd::Shutdown },
            subscriptions: self.config.subscriptions.clone(),
            updates: self.config.updates.clone(),
            listed: HashMap::new(),
            request_id: 0,
        };
        run.listed = tokio::select! {
            () = shutdown.cancelled() => return Ok(FeedStats { end: FeedEnd::Shutdown, ..run.stats }),
            listed = self.listing() => listed?,
        };
        self.check_listed(&run.listed)?;
        let mut failures = 0u32;
        let mut reconnecting = false;
        loop {
            if reconnecting && let Some(observer) = &self.observer {
                observer.reconnected(FEED);
            }
            let problem = match run.connection(reconnecting).await {
                Ok(ConnectionEnd::Retired) => {
                    tracing::info!("retiring the Binance stream connection ahead of its 24-hour limit");
                    failures = 0;
                    reconnecting = true;
                    continue;
                }
                Ok(ConnectionEnd::Lost(problem, lived)) => {
                    // A connection that stayed up a while starts a fresh run of failures; one dropped right after
                    // opening keeps the backoff growing, so a server that accepts and hangs up is not hammered.
                    if lived >= self.config.backoff_max {
                        failures = 0;
                    }
                    problem
                }
                Err(Interrupt::Stop(end)) => return Ok(FeedStats { end, ..run.stats }),
                Err(Interrupt::Fatal(error)) => return Err(error),
                Err(Interrupt::Retry(problem)) => problem,
            };
            failures += 1;
            reconnecting = true;
            if let Some(observer) = &self.observer {
                observer.disconnected(FEED, &problem);
            }
            let wait = self.backoff(failures);
            tracing::warn!(%problem, ?wait, "Binance stream lost; reconnecting");
            tokio::select! {
                () = shutdown.cancelled() => return Ok(FeedStats { end: FeedEnd::Shutdown, ..run.stats }),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

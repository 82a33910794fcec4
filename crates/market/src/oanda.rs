//! The live OANDA v20 feed (forex and metals): closed candles polled from
//! `GET /v3/instruments/{instrument}/candles` and ticks from the account's pricing stream, behind the same
//! [`MarketFeed`] trait as the replay.
//!
//! A run first maps every subscribed instrument to OANDA's name (`EURUSD` → `EUR_USD`, `XAUUSD` → `XAU_USD`),
//! refusing crypto and stocks outright, and asks `GET /v3/accounts/{id}/instruments` whether the account can
//! trade each one, so a pair OANDA cannot serve is an error at start naming it.
//!
//! OANDA has no candle stream, so each (instrument, timeframe) is polled just after its candle's close time by
//! the injected [`Clock`] (plus `poll_delay`), asking for everything after the last candle delivered
//! (`from=…&includeFirst=false`, paged by `count`). Only `"complete": true` candles are delivered; when the
//! candle that just closed still shows incomplete the pair is re-polled every `repoll_interval` until it
//! does. Because every poll starts from the last delivered open time, a poll that failed, a candle OANDA was
//! late to finish and candles that closed while OANDA was unreachable all come back on a later poll, and
//! duplicates or out-of-order candles in an answer collapse: each candle once, in order.
//!
//! Ticks come from `GET {stream}/v3/accounts/{id}/pricing/stream`, newline-delimited JSON read chunk by chunk
//! (a line may span chunks). OANDA sends a heartbeat every 5 s, so `stall_timeout` without a byte means the
//! stream is dead; drops and stalls reconnect with exponential backoff. When the subscription set changes,
//! added pairs are backfilled and polled, removed ones stop, and the stream re-opens on the new instrument
//! list. A malformed line, answer or candle is logged and skipped; 429 and 5xx answers are retried with
//! backoff; a refused token (401/403) or an instrument OANDA rejects (400/404) ends the run with an error
//! naming it.

mod wire;

use crate::feed::{
    FeedEnd, FeedError, FeedEvent, FeedObserver, FeedStats, MarketFeed, ResumePoints, SubscriptionUpdates,
};
use crate::sequencer::CandleSequencer;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{AssetClass, Clock, InstrumentRegistry, Symbol, Tick, Timeframe};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wire::{Component, StreamLine};

const FEED: &str = "oanda";

/// OANDA's practice (fxTrade Practice) REST host.
pub const PRACTICE_REST_URL: &str = "https://api-fxpractice.oanda.com";
/// OANDA's practice streaming host.
pub const PRACTICE_STREAM_URL: &str = "https://stream-fxpractice.oanda.com";
/// OANDA's live (fxTrade) REST host.
pub const LIVE_REST_URL: &str = "https://api-fxtrade.oanda.com";
/// OANDA's live streaming host.
pub const LIVE_STREAM_URL: &str = "https://stream-fxtrade.oanda.com";

/// OANDA's largest `count` per candles request.
pub const MAX_CANDLES_PER_REQUEST: u32 = 5000;

/// How long a request may wait for the head of its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A pricing-stream line longer than this without a newline is not a line OANDA would send.
const MAX_LINE: usize = 1 << 20;

/// Which prices candles are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OandaPrice {
    /// `price=M`: OANDA's mid-point candles.
    Mid,
    /// `price=BA`: the candle is the bid side's OHLC (what MetaTrader-style charts show, so signals match the
    /// charts forex users look at); the ask side must be present and well-formed but is not used.
    BidAsk,
}

impl OandaPrice {
    fn query(self) -> &'static str {
        match self {
            OandaPrice::Mid => "M",
            OandaPrice::BidAsk => "BA",
        }
    }

    fn component(self) -> Component {
        match self {
            OandaPrice::Mid => Component::Mid,
            OandaPrice::BidAsk => Component::Bid,
        }
    }
}

/// How an [`OandaFeed`] runs.
#[derive(Clone)]
pub struct OandaFeedConfig {
    /// REST base: [`PRACTICE_REST_URL`], [`LIVE_REST_URL`] or a fake's `http://127.0.0.1:PORT`.
    pub rest_url: String,
    /// Streaming base: [`PRACTICE_STREAM_URL`], [`LIVE_STREAM_URL`] or a fake's.
    pub stream_url: String,
    /// The personal access token sent as `Authorization: Bearer …`; never shown by `Debug`.
    pub token: String,
    /// The v20 account whose instruments and pricing stream are used (`101-004-1234567-001`).
    pub account_id: String,
    /// The (instrument, timeframe) pairs to deliver closed candles for.
    pub subscriptions: Vec<(Symbol, Timeframe)>,
    /// Later subscription sets from the app; `None` keeps `subscriptions` for the whole run.
    pub updates: Option<SubscriptionUpdates>,
    /// Where a pair gained mid-run resumes when the run has not delivered it yet; `None`: `warmup_candles`.
    pub resume_points: Option<Arc<dyn ResumePoints>>,
    pub price: OandaPrice,
    /// Stream ticks for the subscribed instruments (off: candles only).
    pub ticks: bool,
    /// Candles to backfill for a pair with nothing in `resume_after` (at most 4999: one request).
    pub warmup_candles: u32,
    /// Open time of the last candle already stored per pair: the backfill starts after it.
    pub resume_after: HashMap<(Symbol, Timeframe), DateTime<Utc>>,
    /// Candles per request when catching up (OANDA allows up to 5000).
    pub page_limit: u32,
    /// How long after a candle's close time it is first asked for.
    pub poll_delay: Duration,
    /// How soon a candle that just closed is asked for again while OANDA still shows it incomplete.
    pub repoll_interval: Duration,
    /// Re-polls after a close that showed no candle at all (no trading in that bucket, e.g. a weekend)
    /// before waiting for the next close.
    pub repoll_attempts: u32,
    /// The longest the poller sleeps before looking at the clock again, so a clock that jumps (a test's
    /// manual clock, a corrected system clock) is noticed.
    pub clock_recheck: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// No byte on the pricing stream (OANDA sends a heartbeat every 5 s) for this long means it is dead.
    pub stall_timeout: Duration,
    /// REST attempts per request before the poll counts as failed and is rescheduled.
    pub rest_attempts: u32,
}

impl std::fmt::Debug for OandaFeedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OandaFeedConfig")
            .field("rest_url", &self.rest_url)
            .field("stream_url", &self.stream_url)
            .field("token", &"[redacted]")
            .field("account_id", &self.account_id)
            .field("subscriptions", &self.subscriptions)
            .field("updates", &self.updates.is_some())
            .field("resume_points", &self.resume_points)
            .field("price", &self.price)
            .field("ticks", &self.ticks)
            .field("warmup_candles", &self.warmup_candles)
            .field("resume_after", &self.resume_after)
            .field("page_limit", &self.page_limit)
            .field("poll_delay", &self.poll_delay)
            .field("repoll_interval", &self.repoll_interval)
            .field("repoll_attempts", &self.repoll_attempts)
            .field("clock_recheck", &self.clock_recheck)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("stall_timeout", &self.stall_timeout)
            .field("rest_attempts", &self.rest_attempts)
            .finish()
    }
}

impl OandaFeedConfig {
    /// The practice hosts and production timings.
    pub fn new(
        token: impl Into<String>,
        account_id: impl Into<String>,
        subscriptions: Vec<(Symbol, Timeframe)>,
    ) -> Self {
        OandaFeedConfig {
            rest_url: PRACTICE_REST_URL.into(),
            stream_url: PRACTICE_STREAM_URL.into(),
            token: token.into(),
            account_id: account_id.into(),
            subscriptions,
            updates: None,
            resume_points: None,
            price: OandaPrice::Mid,
            ticks: true,
            warmup_candles: 200,
            resume_after: HashMap::new(),
            page_limit: MAX_CANDLES_PER_REQUEST,
            poll_delay: Duration::from_secs(2),
            repoll_interval: Duration::from_secs(1),
            repoll_attempts: 3,
            clock_recheck: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(20),
            rest_attempts: 5,
        }
    }

    /// Points at OANDA's live (fxTrade) hosts instead of practice.
    pub fn live(mut self) -> Self {
        self.rest_url = LIVE_REST_URL.into();
        self.stream_url = LIVE_STREAM_URL.into();
        self
    }
}

/// A [`MarketFeed`] reading OANDA v20.
#[derive(Debug, Clone)]
pub struct OandaFeed {
    config: OandaFeedConfig,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// Without an overall timeout: the pricing stream is one response that lasts for hours.
    stream_http: reqwest::Client,
    observer: Option<Arc<dyn FeedObserver>>,
}

/// Why a loop stopped before the feed's end.
enum Interrupt {
    /// The feed is over (shutdown, receiver gone).
    Stop(FeedEnd),
    /// Something transient; try again after a backoff.
    Retry(String),
    /// Retrying cannot help (a refused token, an instrument OANDA rejects).
    Fatal(FeedError),
}

fn source_error(message: impl Into<String>) -> FeedError {
    FeedError::Source { feed: FEED.into(), message: message.into() }
}

/// OANDA's name for an instrument (`EUR_USD`), or why the feed cannot serve it.
pub fn oanda_instrument(symbol: &Symbol) -> Result<String, FeedError> {
    let instrument = InstrumentRegistry::global()
        .get(symbol.as_str())
        .map_err(|e| source_error(format!("cannot serve {symbol}: {e}")))?;
    match instrument.asset_class {
        AssetClass::Forex | AssetClass::Metal => Ok(format!("{}_{}", instrument.base, instrument.quote)),
        other => Err(source_error(format!(
            "cannot serve {symbol}: it is a {other:?} instrument and OANDA serves forex and metals only"
        ))),
    }
}

impl OandaFeed {
    /// Checks the configuration offline: credentials, at least one pair, and no instrument OANDA cannot serve.
    pub fn new(config: OandaFeedConfig, clock: Arc<dyn Clock>) -> Result<OandaFeed, FeedError> {
        if config.token.trim().is_empty() || config.account_id.trim().is_empty() {
            return Err(source_error("an API token and an account id are required"));
        }
        if config.subscriptions.is_empty() {
            return Err(source_error("no (instrument, timeframe) pairs to poll"));
        }
        if !(1..=MAX_CANDLES_PER_REQUEST).contains(&config.page_limit) || config.rest_attempts == 0 {
            return Err(source_error("page_limit must be 1 to 5000 and rest_attempts at least 1"));
        }
        if config.warmup_candles >= MAX_CANDLES_PER_REQUEST {
            return Err(source_error(format!(
                "warmup_candles must be below {MAX_CANDLES_PER_REQUEST} (one request), got {}",
                config.warmup_candles
            )));
        }
        for (symbol, _) in &config.subscriptions {
            oanda_instrument(symbol)?;
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |timeout: Option<Duration>| {
            let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
            if let Some(timeout) = timeout {
                builder = builder.timeout(timeout);
            }
            builder.build().map_err(|e| source_error(format!("cannot build the HTTP client: {e}")))
        };
        Ok(OandaFeed {
            http: build(Some(Duration::from_secs(30)))?,
            stream_http: build(None)?,
            config,
            clock,
            observer: None,
        })
    }

    pub fn with_observer(mut self, observer: Arc<dyn FeedObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// See [`OandaFeedConfig::updates`].
    pub fn with_updates(mut self, updates: SubscriptionUpdates) -> Self {
        self.config.updates = Some(updates);
        self
    }

    /// See [`OandaFeedConfig::resume_points`].
    pub fn with_resume_points(mut self, resume_points: Arc<dyn ResumePoints>) -> Self {
        self.config.resume_points = Some(resume_points);
        self
    }

    pub fn config(&self) -> &OandaFeedConfig {
        &self.config
    }

    /// Asks `GET /v3/accounts/{id}/instruments` which instruments the account can trade and refuses the
    /// first subscribed one it cannot, by name. Returns OANDA's names of all the account's instruments.
    pub async fn check_instruments(&self) -> Result<HashSet<String>, FeedError> {
        let url = format!("{}/v3/accounts/{}/instruments", rest_base(&self.config.rest_url), self.config.account_id);
        let what = format!("the instruments of account {}", self.config.account_id);
        let body = match self.get_with_retries(&self.http, &url, &[], &what).await {
            Ok(response) => response.text().await.map_err(|e| source_error(format!("{what}: {e}")))?,
            Err(Interrupt::Fatal(e)) => return Err(e),
            Err(Interrupt::Retry(message)) => return Err(source_error(message)),
            Err(Interrupt::Stop(_)) => return Err(source_error(format!("{what}: stopped"))),
        };
        let listed: HashSet<String> = wire::parse_account_instruments(&body)
            .map_err(|e| source_error(format!("{what}: {e}")))?
            .into_iter()
            .collect();
        for (symbol, _) in &self.config.subscriptions {
            let name = oanda_instrument(symbol)?;
            if !listed.contains(&name) {
                return Err(source_error(format!(
                    "cannot serve {symbol}: OANDA account {} cannot trade {name}",
                    self.config.account_id
                )));
            }
        }
        Ok(listed)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.config.backoff_initial.saturating_mul(factor).min(self.config.backoff_max)
    }

    /// GET with the token and retries: 429 and 5xx back off (429 honours `Retry-After` when sent), network
    /// errors back off, 401/403 and other refusals are fatal. `what` names the request in errors.
    async fn get_with_retries(
        &self,
        client: &reqwest::Client,
        url: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<reqwest::Response, Interrupt> {
        let mut last = String::new();
        for attempt in 1..=self.config.rest_attempts {
            let request = client
                .get(url)
                .query(query)
                .bearer_auth(&self.config.token)
                .header("Accept-Datetime-Format", "RFC3339");
            // The streaming client has no overall timeout (its response lasts for hours), so the wait for the
            // response's head is bounded here for both clients.
            let sent = tokio::time::timeout(ANSWER_TIMEOUT, request.send())
                .await
                .map_err(|_| format!("no answer within {ANSWER_TIMEOUT:?}"))
                .and_then(|sent| sent.map_err(|e| format!("request failed: {e}")));
            let wait = match sent {
                Err(problem) => {
                    last = problem;
                    self.backoff(attempt)
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok(response);
                    }
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.text().await.unwrap_or_default();
                    let message = wire::error_text(&body);
                    match status.as_u16() {
                        401 | 403 => {
                            return Err(Interrupt::Fatal(source_error(format!(
                                "OANDA refused the API token for {what}: HTTP {status}: {message}"
                            ))));
                        }
                        429 => {
                            last = format!("rate limited: HTTP {status}: {message}");
                            retry_after.unwrap_or_else(|| self.backoff(attempt))
                        }
                        _ if status.is_server_error() => {
                            last = format!("HTTP {status}: {message}");
                            self.backoff(attempt)
                        }
                        _ => {
                            return Err(Interrupt::Fatal(source_error(format!(
                                "OANDA refused {what}: HTTP {status}: {message}"
                            ))));
                        }
                    }
                }
            };
            if attempt < self.config.rest_attempts {
                tracing::warn!(%url, attempt, error = %last, ?wait, "OANDA request failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
        Err(Interrupt::Retry(format!("{what}: {last}")))
    }
}

fn rest_base(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// What the candle poller and the pricing stream share within one run.
struct Shared<'a> {
    feed: &'a OandaFeed,
    tx: mpsc::Sender<FeedEvent>,
    candles: AtomicU64,
    ticks: AtomicU64,
    /// OANDA's names of the instruments the account can trade, from the start-up check.
    tradeable: HashSet<String>,
}

impl Shared<'_> {
    async fn emit(&self, event: FeedEvent) -> Result<(), Interrupt> {
        let counter = if matches!(event, FeedEvent::CandleClosed { .. }) { &self.candles } else { &self.ticks };
        self.tx.send(event).await.map_err(|_| Interrupt::Stop(FeedEnd::ReceiverDropped))?;
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn observe(&self, f: impl FnOnce(&dyn FeedObserver)) {
        if let Some(observer) = &self.feed.observer {
            f(observer.as_ref());
        }
    }

    /// The pairs of a new subscription set the feed can serve; the others are logged and left out, since
    /// a settings change must not take the whole feed down.
    fn servable(&self, pairs: &[(Symbol, Timeframe)]) -> Vec<((Symbol, Timeframe), String)> {
        let mut out = Vec::new();
        for (symbol, timeframe) in pairs {
            match oanda_instrument(symbol) {
                Ok(name) if self.tradeable.contains(&name) => out.push(((symbol.clone(), *timeframe), name)),
                Ok(name) => tracing::error!(%symbol, %name, "subscription refused: the OANDA account cannot trade it"),
                Err(e) => tracing::error!(%symbol, error = %e, "subscription refused"),
            }
        }
        out
    }
}

/// When a pair is polled next. Closes are in the feed's clock time; retries and re-polls are plain delays, so
/// they run out even while the clock stands still (a test's manual clock between two closes).
#[derive(Debug, Clone, Copy)]
enum Due {
    Close(DateTime<Utc>),
    After(Instant),
}

impl Due {
    /// How long until it is due (zero: now).
    fn remaining(self, clock_now: DateTime<Utc>) -> Duration {
        match self {
            Due::Close(at) => (at - clock_now).to_std().unwrap_or_default(),
            Due::After(at) => at.saturating_duration_since(Instant::now()),
        }
    }
}

/// One polled pair.
struct PairState {
    instrument: String,
    due: Due,
    /// Polls in a row that failed; non-zero means the next success is a recovery.
    failures: u32,
    /// Re-polls spent waiting for a just-closed candle that OANDA showed nothing for.
    repolls: u32,
    /// The first successful poll is the backfill; candles it delivers are neither gaps nor live.
    backfilled: bool,
}

/// The closed-candle side of a run.
struct Poller<'s, 'a> {
    shared: &'s Shared<'a>,
    pairs: BTreeMap<(Symbol, Timeframe), PairState>,
    /// Open time of the last candle delivered per pair; kept when a pair is dropped, so one that comes back
    /// does not repeat candles.
    sequencer: CandleSequencer,
    updates: Option<SubscriptionUpdates>,
}

/// What one candles answer held for the poller.
struct Page {
    delivered: u64,
    /// Candles in the answer (before filtering), to tell a full page.
    count: usize,
    /// Open time of the first incomplete candle, if any.
    incomplete: Option<DateTime<Utc>>,
}

impl Poller<'_, '_> {
    fn add(&mut self, pair: (Symbol, Timeframe), instrument: String, now: DateTime<Utc>) {
        self.pairs.entry(pair).or_insert(PairState {
            instrument,
            due: Due::Close(now),
            failures: 0,
            repolls: 0,
            backfilled: false,
        });
    }

    async fn apply_update(&mut self, wanted: &[(Symbol, Timeframe)]) {
        let now = self.shared.feed.clock.now();
        let servable = self.shared.servable(wanted);
        let keep: BTreeSet<&(Symbol, Timeframe)> = servable.iter().map(|(pair, _)| pair).collect();
        self.pairs.retain(|pair, _| {
            let kept = keep.contains(pair);
            if !kept {
                tracing::info!(symbol = %pair.0, timeframe = %pair.1, "OANDA candle polling stopped for a removed pair");
            }
            kept
        });
        for (pair, instrument) in servable {
            if !self.pairs.contains_key(&pair) {
                tracing::info!(symbol = %pair.0, timeframe = %pair.1, "OANDA candle polling started for an added pair");
                if !self.sequencer.knows(&pair)
                    && let Some(points) = &self.shared.feed.config.resume_points
                {
                    match points.last_stored(&pair.0, pair.1).await {
                        Ok(Some(stored)) => {
                            self.sequencer.resume(&pair, stored);
                        }
                        Ok(None) => {}
                        Err(problem) => {
                            tracing::warn!(symbol = %pair.0, timeframe = %pair.1, %problem, "cannot read where the pair resumes; backfilling the warm-up");
                        }
                    }
                }
                self.add(pair, instrument, now);
            }
        }
    }

    async fn run(mut self) -> Interrupt {
        let now = self.shared.feed.clock.now();
        for (pair, instrument) in self.shared.servable(&self.shared.feed.config.subscriptions) {
            self.add(pair, instrument, now);
        }
        loop {
            let now = self.shared.feed.clock.now();
            let next = self
                .pairs
                .iter()
                .map(|(pair, state)| (pair.clone(), state.due.remaining(now)))
                .min_by_key(|(_, remaining)| *remaining);
            if let Some((pair, remaining)) = &next
                && remaining.is_zero()
            {
                if let Err(interrupt) = self.poll(pair).await {
                    return interrupt;
                }
                continue;
            }
            let wait =
                next.map_or(Duration::MAX, |(_, remaining)| remaining).min(self.shared.feed.config.clock_recheck);
            let updates = &mut self.updates;
            let update = tokio::select! {
                () = tokio::time::sleep(wait) => None,
                ok = async {
                    match updates {
                        Some(updates) => updates.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => Some(ok),
            };
            match update {
                None => {}
                Some(true) => {
                    let wanted = self.updates.as_mut().map(|u| u.borrow_and_update().clone()).unwrap_or_default();
                    self.apply_update(&wanted).await;
                }
                // The app dropped its sender: the set is final.
                Some(false) => self.updates = None,
            }
        }
    }

    /// Polls one pair (all pages of it) and schedules its next poll.
    async fn poll(&mut self, pair: &(Symbol, Timeframe)) -> Result<(), Interrupt> {
        let feed = self.shared.feed;
        let config = &feed.config;
        let timeframe = pair.1;
        let mut delivered = 0u64;
        let outcome = loop {
            match self.page(pair).await {
                Ok(page) => {
                    delivered += page.delivered;
                    let full = page.count >= config.page_limit as usize && self.sequencer.knows(pair);
                    if !(full && page.incomplete.is_none() && page.delivered > 0) {
                        break Ok(page.incomplete);
                    }
                }
                Err(Interrupt::Retry(problem)) => break Err(problem),
                Err(other) => return Err(other),
            }
        };
        let now = feed.clock.now();
        let just_closed = timeframe.bucket_start(now) - timeframe.duration();
        let next_close = timeframe.bucket_start(now) + timeframe.duration();
        let poll_delay = chrono::Duration::from_std(config.poll_delay).unwrap_or_default();
        let last = self.sequencer.last(pair);
        let Some(state) = self.pairs.get_mut(pair) else { return Ok(()) };
        let incomplete = match outcome {
            Ok(incomplete) => incomplete,
            Err(problem) => {
                state.failures += 1;
                let wait = feed.backoff(state.failures);
                tracing::warn!(symbol = %pair.0, %timeframe, %problem, ?wait, "OANDA candle poll failed; retrying");
                self.shared.observe(|o| o.disconnected(FEED, &problem));
                state.due = Due::After(Instant::now() + wait);
                return Ok(());
            }
        };
        if state.failures > 0 {
            self.shared.observe(|o| o.connected(FEED));
        }
        state.failures = 0;
        let caught_up = last.is_some_and(|last| last >= just_closed);
        if caught_up {
            state.repolls = 0;
            state.due = Due::Close(next_close + poll_delay);
        } else if incomplete.is_some_and(|t| t <= just_closed) {
            // OANDA has not finished the candle that closed: ask again soon, as long as it takes.
            state.due = Due::After(Instant::now() + config.repoll_interval);
        } else if state.repolls < config.repoll_attempts {
            state.repolls += 1;
            state.due = Due::After(Instant::now() + config.repoll_interval);
        } else {
            // Nothing traded in that bucket (a weekend, a holiday); whatever OANDA adds later comes with the
            // next poll, which starts from the last delivered candle.
            state.repolls = 0;
            state.due = Due::Close(next_close + poll_delay);
        }
        // The first successful poll is the backfill. After it, the candle that just closed is live and
        // anything older delivered alongside it closed while a poll was failing or late: a gap filled.
        let was_backfilled = std::mem::replace(&mut state.backfilled, true);
        if was_backfilled && delivered > 0 {
            let live = u64::from(caught_up);
            let gap = delivered - live;
            if gap > 0 {
                tracing::info!(symbol = %pair.0, %timeframe, candles = gap, "gap filled from OANDA candles");
                self.shared.observe(|o| o.gap_filled(FEED, gap));
            }
            if let (1, Some(last)) = (live, last) {
                let lag = (now - (last + timeframe.duration())).to_std().unwrap_or_default();
                self.shared.observe(|o| o.candle_lag(FEED, lag));
            }
        }
        Ok(())
    }

    /// One candles request for a pair: delivers the complete candles newer than the last delivered one,
    /// oldest first, stopping at the first incomplete one.
    async fn page(&mut self, pair: &(Symbol, Timeframe)) -> Result<Page, Interrupt> {
        let feed = self.shared.feed;
        let config = &feed.config;
        let (symbol, timeframe) = pair;
        let instrument = self.pairs.get(pair).map(|s| s.instrument.clone()).unwrap_or_default();
        let granularity = wire::granularity(*timeframe);
        let mut query = vec![
            ("granularity", granularity.to_string()),
            ("price", config.price.query().to_string()),
            ("dailyAlignment", "0".to_string()),
            ("alignmentTimezone", "UTC".to_string()),
        ];
        match self.sequencer.last(pair) {
            Some(last) => {
                query.push(("from", last.to_rfc3339_opts(SecondsFormat::Secs, true)));
                query.push(("includeFirst", "false".to_string()));
                query.push(("count", config.page_limit.to_string()));
            }
            // The most recent candles: the forming one plus `warmup_candles` closed ones, weekends or not.
            None => query.push(("count", (config.warmup_candles + 1).to_string())),
        }
        let url = format!("{}/v3/instruments/{instrument}/candles", rest_base(&config.rest_url));
        let what = format!("{symbol} ({instrument}) {granularity} candles");
        let response = feed.get_with_retries(&feed.http, &url, &query, &what).await?;
        let body = response.text().await.map_err(|e| Interrupt::Retry(format!("{what}: reading the answer: {e}")))?;
        let rows = match wire::parse_candles(&body, &instrument, granularity, config.price.component()) {
            Ok(rows) => rows,
            Err(problem) => {
                tracing::warn!(%symbol, %timeframe, %problem, "malformed OANDA candles answer; skipped");
                return Err(Interrupt::Retry(format!("{what}: {problem}")));
            }
        };
        let count = rows.len();
        let mut candles = Vec::with_capacity(count);
        for row in rows {
            match row {
                Ok(candle) => candles.push(candle),
                Err(problem) => tracing::warn!(%symbol, %timeframe, %problem, "malformed OANDA candle; skipped"),
            }
        }
        // An answer out of order must not make an older candle look like a duplicate of a newer one.
        candles.sort_by_key(|c| c.candle.time);
        let mut page = Page { delivered: 0, count, incomplete: None };
        for candle in candles {
            if !candle.complete {
                page.incomplete = Some(candle.candle.time);
                break;
            }
            if !self.sequencer.record(pair, candle.candle.time) {
                tracing::debug!(%symbol, %timeframe, time = %candle.candle.time, "duplicate or old OANDA candle dropped");
                continue;
            }
            self.shared
                .emit(FeedEvent::CandleClosed { symbol: symbol.clone(), timeframe: *timeframe, candle: candle.candle })
                .await?;
            page.delivered += 1;
        }
        Ok(page)
    }
}

/// How a pricing-stream connection ended without an error.
enum StreamEnd {
    /// The subscription set changed the instrument list: re-open at once.
    Resubscribe,
    /// Why, and how long the connection had been up.
    Lost(String, Duration),
}

/// The tick side of a run.
struct Streamer<'s, 'a> {
    shared: &'s Shared<'a>,
    /// OANDA name → our symbol, for the current subscription set.
    instruments: BTreeMap<String, Symbol>,
    updates: Option<SubscriptionUpdates>,
}

impl Streamer<'_, '_> {
    fn set_instruments(&mut self, pairs: &[(Symbol, Timeframe)]) -> bool {
        let next: BTreeMap<String, Symbol> =
            self.shared.servable(pairs).into_iter().map(|((symbol, _), name)| (name, symbol)).collect();
        let changed = next != self.instruments;
        self.instruments = next;
        changed
    }

    /// Waits for the next subscription set; `false` when there will be none.
    async fn next_update(&mut self) -> bool {
        let Some(updates) = &mut self.updates else { return std::future::pending().await };
        if updates.changed().await.is_err() {
            self.updates = None;
            return std::future::pending().await;
        }
        let wanted = updates.borrow_and_update().clone();
        self.set_instruments(&wanted)
    }

    async fn run(mut self) -> Interrupt {
        let feed = self.shared.feed;
        self.set_instruments(&feed.config.subscriptions);
        let mut failures = 0u32;
        let mut reconnecting = false;
        loop {
            if self.instruments.is_empty() {
                // Nothing to stream until the set names an instrument again.
                while !self.next_update().await {}
                continue;
            }
            if reconnecting {
                self.shared.observe(|o| o.reconnected(FEED));
            }
            let problem = match self.connection().await {
                Ok(StreamEnd::Resubscribe) => {
                    tracing::info!(instruments = ?self.instruments.keys().collect::<Vec<_>>(), "re-opening the OANDA pricing stream for new subscriptions");
                    reconnecting = false;
                    failures = 0;
                    continue;
                }
                Ok(StreamEnd::Lost(problem, lived)) => {
                    // A stream that stayed up a while starts a fresh run of failures; one dropped right after
                    // opening keeps the backoff growing.
                    if lived >= feed.config.backoff_max {
                        failures = 0;
                    }
                    problem
                }
                Err(Interrupt::Retry(problem)) => problem,
                Err(other) => return other,
            };
            failures += 1;
            reconnecting = true;
            self.shared.observe(|o| o.disconnected(FEED, &problem));
            let wait = feed.backoff(failures);
            tracing::warn!(%problem, ?wait, "OANDA pricing stream lost; reconnecting");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = self.next_update() => {
                    if changed {
                        reconnecting = false;
                    }
                }
            }
        }
    }

    async fn connection(&mut self) -> Result<StreamEnd, Interrupt> {
        let feed = self.shared.feed;
        let config = &feed.config;
        let names: Vec<&str> = self.instruments.keys().map(String::as_str).collect();
        let url = format!("{}/v3/accounts/{}/pricing/stream", rest_base(&config.stream_url), config.account_id);
        let what = format!(
            "the pricing stream for {}",
            self.instruments.iter().map(|(name, symbol)| format!("{symbol} ({name})")).collect::<Vec<_>>().join(", ")
        );
        let query = [("instruments", names.join(","))];
        let mut response = feed.get_with_retries(&feed.stream_http, &url, &query, &what).await?;
        let opened = Instant::now();
        let lost = |why: String| StreamEnd::Lost(why, opened.elapsed());
        tracing::info!(%url, instruments = %names.join(","), "connected to the OANDA pricing stream");
        self.shared.observe(|o| o.connected(FEED));
        let stall = config.stall_timeout;
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let chunk = tokio::select! {
                changed = self.next_update() => {
                    if changed {
                        return Ok(StreamEnd::Resubscribe);
                    }
                    continue;
                }
                chunk = tokio::time::timeout(stall, response.chunk()) => chunk,
            };
            let bytes = match chunk {
                Err(_) => return Ok(lost(format!("no heartbeat or price for {stall:?}"))),
                Ok(Ok(Some(bytes))) => bytes,
                Ok(Ok(None)) => return Ok(lost("the stream ended".into())),
                Ok(Err(e)) => return Ok(lost(format!("reading the stream failed: {e}"))),
            };
            buffer.extend_from_slice(&bytes);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                self.on_line(&line).await?;
            }
            if buffer.len() > MAX_LINE {
                tracing::warn!(bytes = buffer.len(), "OANDA pricing stream line too long; skipped");
                buffer.clear();
            }
        }
    }

    async fn on_line(&mut self, line: &[u8]) -> Result<(), Interrupt> {
        let Ok(text) = std::str::from_utf8(line) else {
            tracing::warn!("OANDA pricing stream line is not UTF-8; skipped");
            return Ok(());
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        match wire::parse_stream_line(text) {
            Err(problem) => tracing::warn!(%problem, "malformed OANDA pricing line; skipped"),
            Ok(StreamLine::Heartbeat) => {}
            Ok(StreamLine::Price { instrument, time, bid, ask }) => match self.instruments.get(&instrument) {
                Some(symbol) => {
                    let tick = Tick { symbol: symbol.clone(), time, bid, ask, synthetic_from: None };
                    self.shared.emit(FeedEvent::Tick(tick)).await?;
                }
                None => tracing::debug!(%instrument, "price for an instrument not subscribed; skipped"),
            },
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MarketFeed for OandaFeed {
    fn name(&self) -> &str {
        FEED
    }

    async fn run(
        self: Box<Self>,
        tx: mpsc::Sender<FeedEvent>,
        shutdown: CancellationToken,
    ) -> Result<FeedStats, FeedError> {
        let tradeable = tokio::select! {
            () = shutdown.cancelled() => return Ok(FeedStats { candles: 0, ticks: 0, end: FeedEnd::Shutdown }),
            checked = self.check_instruments() => checked?,
        };
        let shared = Shared { feed: &self, tx, candles: AtomicU64::new(0), ticks: AtomicU64::new(0), tradeable };
        let poller = Poller {
            shared: &shared,
            pairs: BTreeMap::new(),
            sequencer: CandleSequencer::resuming(self.config.resume_after.clone()),
            updates: self.config.updates.clone(),
        };
        let streamer = Streamer { shared: &shared, instruments: BTreeMap::new(), updates: self.config.updates.clone() };
        let ticks = async { if self.config.ticks { streamer.run().await } else { std::future::pending().await } };
        let interrupt = tokio::select! {
            () = shutdown.cancelled() => Interrupt::Stop(FeedEnd::Shutdown),
            interrupt = poller.run() => interrupt,
            interrupt = ticks => interrupt,
        };
        let stats = |end| FeedStats {
            candles: shared.candles.load(Ordering::Relaxed),
            ticks: shared.ticks.load(Ordering::Relaxed),
            end,
        };
        match interrupt {
            Interrupt::Stop(end) => Ok(stats(end)),
            Interrupt::Fatal(error) => Err(error),
            // Both loops retry transient trouble themselves; one giving up on it is a bug, reported plainly.
            Interrupt::Retry(problem) => Err(source_error(format!("gave up: {problem}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_map_to_oanda_names_and_other_classes_are_refused_by_name() {
        assert_eq!(oanda_instrument(&Symbol::normalize("EURUSD")).unwrap(), "EUR_USD");
        assert_eq!(oanda_instrument(&Symbol::normalize("XAUUSD")).unwrap(), "XAU_USD");
        for symbol in ["BTCUSDT", "AAPL", "NOPE"] {
            let error = oanda_instrument(&Symbol::normalize(symbol)).unwrap_err().to_string();
            assert!(error.contains(symbol), "{error}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config =
            OandaFeedConfig::new("secret-token-123", "101-1", vec![(Symbol::normalize("EURUSD"), Timeframe::H1)]);
        let feed = OandaFeed::new(config.clone(), Arc::new(domain::SystemClock)).unwrap();
        for shown in [format!("{config:?}"), format!("{feed:?}")] {
            assert!(!shown.contains("secret-token-123") && shown.contains("[redacted]"), "{shown}");
        }
        assert_eq!(config.clone().live().rest_url, LIVE_REST_URL);
        assert_eq!(config.live().stream_url, LIVE_STREAM_URL);
    }

    #[test]
    fn a_config_without_credentials_or_with_an_oversized_warmup_is_refused() {
        let pairs = vec![(Symbol::normalize("EURUSD"), Timeframe::H1)];
        assert!(
            OandaFeed::new(OandaFeedConfig::new(" ", "101-1", pairs.clone()), Arc::new(domain::SystemClock)).is_err()
        );
        let mut config = OandaFeedConfig::new("t", "101-1", pairs);
        config.warmup_candles = 5000;
        assert!(OandaFeed::new(config, Arc::new(domain::SystemClock)).is_err());
    }
}

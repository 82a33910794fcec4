//! The live Twelve Data feed (forex, metals, US stocks): closed candles polled from `GET /time_series`, behind
//! the same [`MarketFeed`] trait as the replay and Binance.
//!
//! Twelve Data's free plan has no stream, and every `time_series` call costs one API credit out of a small
//! budget (8 a minute, 800 a day), counted by the minute on the clock. So the feed is a scheduler: each
//! (symbol, timeframe) pair is due `poll_delay` after its next candle closes, and one call at a time goes to
//! the due pair whose candle closed first, as long as the minute's and the day's credits allow. When they do
//! not, the feed waits for the next minute (or day) instead of asking; more pairs than the budget serves make
//! candles late, never missing, and the feed says so at start with the numbers.
//!
//! Each pair remembers the open time of the last candle it delivered, and every request asks for the window
//! from the candle after it (`start_date`/`end_date`, never more than `page_size` candles, because Twelve Data
//! truncates a longer window from the old end). Rows are sorted and deduplicated, rows not newer than the last
//! delivered one dropped and the still-forming candle (close time after now, on the injected clock) held back,
//! so duplicates, newest-first answers, a failed poll or a connection killed mid-answer all end with every
//! candle delivered once, in order.
//!
//! Errors come in Twelve Data's `{"code", "message", "status": "error"}` body, often with HTTP 200: 429 waits
//! for the next minute (or day), 401 and 403 end the run with the reason, a 400 other than "no data" means
//! the vendor does not know the instrument (fatal for a pair the feed started with, the pair is dropped when
//! it came from a subscription update), 5xx, network failures and malformed answers back off and retry.
//!
//! Limits: there are no real ticks. For every candle that closes while the feed runs it sends one synthetic
//! tick at the close price (marked with `synthetic_from`, like the replay's, so the position monitor applies
//! its conservative rule to the candle's range) just before the candle; history fetched at start or after
//! downtime gets none, so old prices never reach open trades. Prices therefore move once per candle.

mod wire;

use crate::feed::{
    FeedEnd, FeedError, FeedEvent, FeedObserver, FeedStats, MarketFeed, ResumePoints, SubscriptionUpdates,
};
use crate::sequencer::{CandleSequencer, Sequence};
use chrono::{DateTime, Utc};
use domain::price::MAX_PRICE_SCALE;
use domain::{Candle, CandleRange, Clock, Price, Symbol, Tick, Timeframe};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wire::Answer;

pub use wire::vendor_symbol;

const FEED: &str = "twelvedata";

/// A Twelve Data API key; `Debug` never shows it, and the feed sends it in the `Authorization` header rather
/// than the query string so that request errors, which quote the URL, cannot leak it into logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TwelveDataKey(String);

impl TwelveDataKey {
    pub fn new(key: impl Into<String>) -> Self {
        TwelveDataKey(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TwelveDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a [`TwelveDataFeed`] runs.
#[derive(Debug, Clone)]
pub struct TwelveDataFeedConfig {
    /// `https://api.twelvedata.com` or a fake's `http://127.0.0.1:PORT`.
    pub rest_url: String,
    pub api_key: TwelveDataKey,
    /// The (instrument, timeframe) pairs to deliver closed candles for.
    pub subscriptions: Vec<(Symbol, Timeframe)>,
    /// New pair sets from the app: added pairs are backfilled and polled, removed ones stop; `None`:
    /// `subscriptions` for the whole run.
    pub updates: Option<SubscriptionUpdates>,
    /// Where a pair gained mid-run resumes when the run has not delivered it yet; `None`: `resume_after`, else
    /// `warmup_candles`.
    pub resume_points: Option<Arc<dyn ResumePoints>>,
    /// The plan's credits per minute (8 on the free plan); one `time_series` call costs one.
    pub credits_per_minute: u32,
    /// The plan's credits per UTC day (800 on the free plan).
    pub credits_per_day: u32,
    /// Candles to backfill for a pair with nothing in `resume_after`.
    pub warmup_candles: u32,
    /// Open time of the last candle already stored per pair: the backfill starts after it.
    pub resume_after: HashMap<(Symbol, Timeframe), DateTime<Utc>>,
    /// Candles per request window; Twelve Data answers at most 5000.
    pub page_size: u32,
    /// How long after a candle's close the feed asks for it, so the vendor has finished it.
    pub poll_delay: Duration,
    /// When the candle that should have closed is not there yet (a late vendor, or a closed market), ask again
    /// after this long, up to `late_retries` times; after that, only at the next close.
    pub late_retry: Duration,
    pub late_retries: u32,
    /// After a failed poll (network, 5xx, malformed answer) the pair waits this long, doubling up to the max.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A new minute's credits are spent only this long after the minute starts on our clock, and a 429 is
    /// waited out until this long after the next minute, so a clock slightly off Twelve Data's does not
    /// overspend at the boundary.
    pub clock_margin: Duration,
    /// A waiting feed reads the clock at least this often, so a clock that jumps (a suspended host, a test's
    /// manual clock) is noticed without waiting out a stale sleep.
    pub recheck: Duration,
    /// An answer with malformed rows is retried; after this many in a row for a pair, its bad rows are skipped.
    pub skip_bad_rows_after: u32,
}

impl TwelveDataFeedConfig {
    /// Twelve Data's host and the free plan's budget.
    pub fn new(api_key: TwelveDataKey, subscriptions: Vec<(Symbol, Timeframe)>) -> Self {
        TwelveDataFeedConfig {
            rest_url: "https://api.twelvedata.com".into(),
            api_key,
            subscriptions,
            updates: None,
            resume_points: None,
            credits_per_minute: 8,
            credits_per_day: 800,
            warmup_candles: 200,
            resume_after: HashMap::new(),
            page_size: 5000,
            poll_delay: Duration::from_secs(5),
            late_retry: Duration::from_secs(60),
            late_retries: 2,
            backoff_initial: Duration::from_secs(2),
            backoff_max: Duration::from_secs(120),
            clock_margin: Duration::from_secs(2),
            recheck: Duration::from_secs(1),
            skip_bad_rows_after: 3,
        }
    }
}

/// What the pairs need against what the plan allows, one sentence per shortfall; empty when it fits.
pub fn budget_warnings(
    subscriptions: &[(Symbol, Timeframe)],
    credits_per_minute: u32,
    credits_per_day: u32,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let per_minute: f64 = subscriptions.iter().map(|(_, t)| 60.0 / t.seconds() as f64).sum();
    let per_day: i64 = subscriptions.iter().map(|(_, t)| 86_400 / t.seconds()).sum();
    let pairs = subscriptions.len();
    if per_minute > f64::from(credits_per_minute) {
        warnings.push(format!(
            "{pairs} pairs need about {per_minute:.1} time_series calls a minute but the plan allows \
             {credits_per_minute}: candles will arrive later and later, in catch-up batches"
        ));
    }
    if pairs > credits_per_minute as usize {
        let minutes = pairs.div_ceil(credits_per_minute.max(1) as usize);
        warnings.push(format!(
            "{pairs} pairs close together at the top of the hour but the plan allows {credits_per_minute} calls a \
             minute: the last of them arrive up to {minutes} minutes after the close"
        ));
    }
    if per_day > i64::from(credits_per_day) {
        warnings.push(format!(
            "{pairs} pairs need {per_day} time_series calls a day but the plan allows {credits_per_day}: once \
             the day's credits are spent, candles wait for the next UTC day"
        ));
    }
    warnings
}

/// A [`MarketFeed`] polling Twelve Data.
#[derive(Debug, Clone)]
pub struct TwelveDataFeed {
    config: TwelveDataFeedConfig,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    observer: Option<Arc<dyn FeedObserver>>,
    usage: Arc<tokio::sync::watch::Sender<CreditUsage>>,
}

/// The API credits a running feed has spent, as it counts them, and whether it is holding calls back for
/// lack of them; see [`TwelveDataFeed::usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreditUsage {
    /// The clock minute the count is for, and the calls made in it.
    pub minute: Option<DateTime<Utc>>,
    pub used_this_minute: u32,
    pub used_today: u32,
    /// A pair is due but the credits are spent: no call goes out before this time.
    pub waiting_until: Option<DateTime<Utc>>,
}

fn source_error(message: impl Into<String>) -> FeedError {
    FeedError::Source { feed: FEED.into(), message: message.into() }
}

fn chrono_of(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl TwelveDataFeed {
    /// Checks the configuration offline: at least one pair, sane budget, and every instrument one Twelve Data
    /// can be asked for (forex, metals, stocks of the registry); the error names the first that is not.
    pub fn new(config: TwelveDataFeedConfig, clock: Arc<dyn Clock>) -> Result<TwelveDataFeed, FeedError> {
        if config.subscriptions.is_empty() {
            return Err(source_error("no (instrument, timeframe) pairs to poll"));
        }
        if config.api_key.expose().trim().is_empty() {
            return Err(source_error("no API key (TWELVEDATA_API_KEY)"));
        }
        if config.credits_per_minute == 0 || config.credits_per_day == 0 {
            return Err(source_error("credits_per_minute and credits_per_day must be at least 1"));
        }
        if config.page_size == 0 || config.page_size > 5000 {
            return Err(source_error(format!(
                "page_size must be 1 to 5000 (Twelve Data's maximum), got {}",
                config.page_size
            )));
        }
        if config.recheck.is_zero() {
            return Err(source_error("recheck must be longer than zero"));
        }
        for (symbol, _) in &config.subscriptions {
            vendor_symbol(symbol).map_err(source_error)?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| source_error(format!("cannot build the HTTP client: {e}")))?;
        let usage = Arc::new(tokio::sync::watch::Sender::new(CreditUsage::default()));
        Ok(TwelveDataFeed { config, clock, http, observer: None, usage })
    }

    pub fn with_observer(mut self, observer: Arc<dyn FeedObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn config(&self) -> &TwelveDataFeedConfig {
        &self.config
    }

    /// Feeds the run new pair sets; see [`TwelveDataFeedConfig::updates`].
    pub fn with_updates(mut self, updates: SubscriptionUpdates) -> Self {
        self.config.updates = Some(updates);
        self
    }

    /// See [`TwelveDataFeedConfig::resume_points`].
    pub fn with_resume_points(mut self, resume_points: Arc<dyn ResumePoints>) -> Self {
        self.config.resume_points = Some(resume_points);
        self
    }

    /// Follows the credits the run spends: for a dashboard or a health report, and for tests, which learn
    /// from `waiting_until` that the feed has stopped calling for the minute.
    pub fn usage(&self) -> tokio::sync::watch::Receiver<CreditUsage> {
        self.usage.subscribe()
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.config.backoff_initial.saturating_mul(factor).min(self.config.backoff_max)
    }
}

/// The credits Twelve Data counts: per clock minute and per UTC day, refilled whole at each boundary as the
/// vendor does, which makes it a token bucket whose refill is the minute tick.
#[derive(Debug)]
struct Credits {
    per_minute: u32,
    per_day: u32,
    margin: chrono::Duration,
    minute: i64,
    used_minute: u32,
    day: chrono::NaiveDate,
    used_day: u32,
    /// Set by a 429: no calls before this.
    blocked_until: Option<DateTime<Utc>>,
    day_warned: Option<chrono::NaiveDate>,
    /// The last minute whose credits ran out.
    last_full: Option<i64>,
}

impl Credits {
    fn new(config: &TwelveDataFeedConfig) -> Credits {
        Credits {
            per_minute: config.credits_per_minute,
            per_day: config.credits_per_day,
            margin: chrono_of(config.clock_margin),
            minute: i64::MIN,
            used_minute: 0,
            day: chrono::NaiveDate::MIN,
            used_day: 0,
            blocked_until: None,
            day_warned: None,
            last_full: None,
        }
    }

    fn minute_start(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn next_minute(now: DateTime<Utc>) -> DateTime<Utc> {
        Self::minute_start(now.timestamp().div_euclid(60) + 1)
    }

    fn next_day(now: DateTime<Utc>) -> DateTime<Utc> {
        now.date_naive()
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
    }

    fn roll(&mut self, now: DateTime<Utc>) {
        let minute = now.timestamp().div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.used_minute = 0;
        }
        if now.date_naive() != self.day {
            self.day = now.date_naive();
            self.used_day = 0;
        }
    }

    /// `None` when a call may go now, else when one may.
    fn ready_at(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Some(until);
            }
            self.blocked_until = None;
        }
        self.roll(now);
        if self.used_day >= self.per_day {
            if self.day_warned != Some(self.day) {
                self.day_warned = Some(self.day);
                tracing::warn!(
                    credits_per_day = self.per_day,
                    "the day's Twelve Data credits are spent; waiting for the next UTC day"
                );
            }
            return Some(Self::next_day(now) + self.margin);
        }
        if self.used_minute >= self.per_minute {
            return Some(Self::next_minute(now) + self.margin);
        }
        // The first seconds of a minute belong to whichever side's clock is behind.
        let opened = Self::minute_start(self.minute) + self.margin;
        if self.used_minute == 0 && now < opened && self.minute_was_full() {
            return Some(opened);
        }
        None
    }

    /// Whether the previous minute ran out, the only case where spending right at the boundary risks a 429.
    fn minute_was_full(&self) -> bool {
        self.last_full == Some(self.minute - 1)
    }

    fn spend(&mut self, now: DateTime<Utc>) {
        self.roll(now);
        self.used_minute += 1;
        self.used_day += 1;
        if self.used_minute >= self.per_minute {
            self.last_full = Some(self.minute);
        }
    }

    /// Twelve Data said the credits are gone: the minute's, or the day's when its message says so.
    fn exhausted(&mut self, now: DateTime<Utc>, message: &str) -> DateTime<Utc> {
        let until = if message.contains("for the day") {
            self.used_day = self.per_day;
            Self::next_day(now)
        } else {
            Self::next_minute(now)
        } + self.margin;
        self.blocked_until = Some(until);
        until
    }
}

/// One (symbol, timeframe) the feed polls.
#[derive(Debug)]
struct Pair {
    symbol: Symbol,
    timeframe: Timeframe,
    /// Twelve Data's spelling, `EUR/USD`.
    vendor: String,
    /// Open time of the first candle the next request asks for.
    cursor: DateTime<Utc>,
    /// Candles closing before this are history: no synthetic tick, so no old price reaches an open trade.
    live_from: DateTime<Utc>,
    /// Past its first backfill: from now on its candles count for lag and gap metrics.
    caught_up: bool,
    /// From the set the feed started with: Twelve Data refusing it ends the run rather than dropping it.
    initial: bool,
    /// Twelve Data has answered for it once, so it knows the symbol.
    known: bool,
    /// Clock time from which it may be polled.
    due: DateTime<Utc>,
    /// A candle of it closed (or its backfill continues); a re-check for a late candle waits behind these.
    urgent: bool,
    /// Backoff after a failed poll, in tokio time so it passes whatever the clock does.
    not_before: Instant,
    failures: u32,
    late_polls: u32,
    bad_answers: u32,
}

/// Why a poll did not yield rows.
enum PollError {
    Stop(FeedEnd),
    Fatal(FeedError),
    /// Out of credits (429); the message says whether for the minute or the day.
    RateLimited(String),
    /// Twelve Data does not serve this instrument (400 other than "no data", 403, 404).
    Refused(String),
    /// Network failure, 5xx, malformed answer: back off and ask again.
    Retry(String),
}

/// Why a run ends.
enum Interrupt {
    Stop(FeedEnd),
    Fatal(FeedError),
}

/// The state of one run.
struct Run<'a> {
    feed: &'a TwelveDataFeed,
    tx: mpsc::Sender<FeedEvent>,
    shutdown: CancellationToken,
    pairs: Vec<Pair>,
    credits: Credits,
    /// The last candle delivered (or resumed from) per pair; a pair removed by an update keeps its entry, so
    /// adding it back resumes instead of warming up again.
    sequencer: CandleSequencer,
    updates: Option<SubscriptionUpdates>,
    /// `None` before the first answer; then whether the last poll reached Twelve Data.
    healthy: Option<bool>,
    stats: FeedStats,
}

impl Run<'_> {
    fn new_pair(
        &mut self,
        symbol: Symbol,
        timeframe: Timeframe,
        resume: Option<DateTime<Utc>>,
        initial: bool,
    ) -> Result<Pair, String> {
        let vendor = vendor_symbol(&symbol)?;
        if let Some(last) = resume {
            self.sequencer.resume(&(symbol.clone(), timeframe), last);
        }
        let now = self.feed.clock.now();
        let step = timeframe.duration();
        let cursor = match resume {
            Some(last) => last + step,
            None => timeframe.bucket_start(now) - step * self.feed.config.warmup_candles as i32,
        };
        Ok(Pair {
            symbol,
            timeframe,
            vendor,
            cursor,
            live_from: timeframe.bucket_start(now),
            caught_up: false,
            initial,
            known: false,
            due: now,
            urgent: true,
            not_before: Instant::now(),
            failures: 0,
            late_polls: 0,
            bad_answers: 0,
        })
    }

    fn warn_about_budget(&self) {
        let subscriptions: Vec<(Symbol, Timeframe)> =
            self.pairs.iter().map(|p| (p.symbol.clone(), p.timeframe)).collect();
        let config = &self.feed.config;
        for warning in budget_warnings(&subscriptions, config.credits_per_minute, config.credits_per_day) {
            tracing::warn!(%warning, "Twelve Data credit budget too small for the subscribed pairs");
        }
    }

    /// A new set of pairs from the app: stop the ones gone, start (backfilling) the ones added.
    async fn apply_update(&mut self, wanted: Vec<(Symbol, Timeframe)>) {
        let mut kept = Vec::new();
        for pair in std::mem::take(&mut self.pairs) {
            let key = (pair.symbol.clone(), pair.timeframe);
            if wanted.contains(&key) {
                kept.push(pair);
            } else {
                tracing::info!(symbol = %pair.symbol, timeframe = %pair.timeframe, "stopped polling Twelve Data");
            }
        }
        self.pairs = kept;
        for (symbol, timeframe) in wanted {
            if self.pairs.iter().any(|p| p.symbol == symbol && p.timeframe == timeframe) {
                continue;
            }
            let key = (symbol.clone(), timeframe);
            let resume = match self.sequencer.last(&key) {
                Some(last) => Some(last),
                None => self.stored_until(&symbol, timeframe).await,
            };
            match self.new_pair(symbol.clone(), timeframe, resume, false) {
                Ok(pair) => {
                    tracing::info!(%symbol, %timeframe, "started polling Twelve Data");
                    self.pairs.push(pair);
                }
                Err(problem) => {
                    tracing::error!(%problem, "a subscription update names a pair Twelve Data cannot serve; skipped")
                }
            }
        }
        self.warn_about_budget();
    }

    fn publish_usage(&self, waiting_until: Option<DateTime<Utc>>) {
        let usage = CreditUsage {
            minute: Some(Credits::minute_start(self.credits.minute)),
            used_this_minute: self.credits.used_minute,
            used_today: self.credits.used_day,
            waiting_until,
        };
        self.feed.usage.send_if_modified(|current| {
            let changed = *current != usage;
            *current = usage;
            changed
        });
    }

    /// Where the app's store ends for a pair gained mid-run; a store that cannot answer means the warm-up.
    async fn stored_until(&self, symbol: &Symbol, timeframe: Timeframe) -> Option<DateTime<Utc>> {
        let config = &self.feed.config;
        let Some(points) = &config.resume_points else {
            return config.resume_after.get(&(symbol.clone(), timeframe)).copied();
        };
        match points.last_stored(symbol, timeframe).await {
            Ok(last) => last,
            Err(problem) => {
                tracing::warn!(%symbol, %timeframe, %problem, "could not read where the store ends; backfilling the warm-up");
                None
            }
        }
    }

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

    /// The due pair to poll now: those whose candle closed first, re-checks for late candles after them.
    fn next_ready(&self, now: DateTime<Utc>) -> Option<usize> {
        let instant = Instant::now();
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.due <= now && p.not_before <= instant)
            .min_by_key(|(i, p)| (!p.urgent, p.due, *i))
            .map(|(i, _)| i)
    }

    /// How long to sleep before something may be ready; `None` when there is no pair at all.
    fn idle_for(&mut self, now: DateTime<Utc>) -> Option<Duration> {
        let recheck = self.feed.config.recheck;
        if let Some(at) = self.credits.ready_at(now) {
            return Some((at - now).to_std().unwrap_or_default().clamp(Duration::from_millis(1), recheck));
        }
        let instant = Instant::now();
        self.pairs
            .iter()
            .map(|p| {
                let backoff = p.not_before.saturating_duration_since(instant);
                match (p.due - now).to_std() {
                    Ok(clock) if !clock.is_zero() => backoff.max(clock.min(recheck)),
                    _ => backoff,
                }
            })
            .min()
            .map(|d| d.max(Duration::from_millis(1)))
    }

    async fn changed_updates(&mut self) -> Option<Vec<(Symbol, Timeframe)>> {
        match &mut self.updates {
            Some(rx) => match rx.changed().await {
                Ok(()) => Some(rx.borrow_and_update().clone()),
                Err(_) => {
                    // The app stopped sending updates: the current set stays.
                    self.updates = None;
                    None
                }
            },
            None => std::future::pending().await,
        }
    }

    async fn run(&mut self) -> Result<(), Interrupt> {
        loop {
            if let Some(rx) = &mut self.updates
                && rx.has_changed().unwrap_or(false)
            {
                let wanted = rx.borrow_and_update().clone();
                self.apply_update(wanted).await;
            }
            let now = self.feed.clock.now();
            if self.credits.ready_at(now).is_none()
                && let Some(i) = self.next_ready(now)
            {
                self.credits.spend(now);
                self.publish_usage(None);
                self.poll(i).await?;
                continue;
            }
            let waiting = match self.next_ready(now) {
                Some(_) => self.credits.ready_at(now),
                None => None,
            };
            self.publish_usage(waiting);
            let idle = self.idle_for(now);
            let shutdown = self.shutdown.clone();
            tokio::select! {
                () = shutdown.cancelled() => return Err(Interrupt::Stop(FeedEnd::Shutdown)),
                wanted = self.changed_updates() => {
                    if let Some(wanted) = wanted {
                        self.apply_update(wanted).await;
                    }
                }
                () = async {
                    match idle {
                        Some(idle) => tokio::time::sleep(idle).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    /// One `time_series` request for pair `i`, its candles delivered and the pair rescheduled.
    async fn poll(&mut self, i: usize) -> Result<(), Interrupt> {
        let config = &self.feed.config;
        let now = self.feed.clock.now();
        let pair = &self.pairs[i];
        let step = pair.timeframe.duration();
        let start = pair.cursor;
        // The window holds at most page_size candles, so Twelve Data never truncates it.
        let window_close = start + step * config.page_size as i32;
        let complete = window_close <= now;
        let end = if complete { window_close - chrono::Duration::seconds(1) } else { now };
        let (vendor, timeframe) = (pair.vendor.clone(), pair.timeframe);
        let answer = self.fetch(&vendor, timeframe, start, end).await;
        let rows = match answer {
            Ok(rows) => rows,
            Err(PollError::Stop(end)) => return Err(Interrupt::Stop(end)),
            Err(PollError::Fatal(error)) => return Err(Interrupt::Fatal(error)),
            Err(PollError::RateLimited(message)) => {
                let until = self.credits.exhausted(now, &message);
                tracing::warn!(%message, %until, "Twelve Data credits spent; waiting");
                self.failed(&format!("rate limited until {until}: {message}"));
                return Ok(());
            }
            Err(PollError::Refused(message)) => return self.refused(i, &message),
            Err(PollError::Retry(problem)) => {
                self.retry_later(i, &problem);
                return Ok(());
            }
        };
        let mut good = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for row in rows {
            match row {
                Ok(candle) => good.push(candle),
                Err(problem) => bad.push(problem),
            }
        }
        let pair = &mut self.pairs[i];
        if !bad.is_empty() {
            pair.bad_answers += 1;
            if pair.bad_answers < config.skip_bad_rows_after {
                let problem = format!("{} malformed rows for {vendor}, the first: {}", bad.len(), bad[0]);
                self.retry_later(i, &problem);
                return Ok(());
            }
            tracing::error!(symbol = %pair.symbol, rows = bad.len(), first = %bad[0],
                "Twelve Data keeps sending malformed rows; skipping them");
        }
        pair.bad_answers = 0;
        pair.failures = 0;
        pair.known = true;
        good.sort_by_key(|c| c.time);
        good.dedup_by_key(|c| c.time);
        let was_caught_up = pair.caught_up;
        let key = (pair.symbol.clone(), timeframe);
        let mut fresh: Vec<Candle> = Vec::new();
        for candle in good {
            if let Sequence::Stale { .. } = self.sequencer.check(&key, candle.time) {
                continue;
            }
            if candle.close_time(timeframe) > now {
                // The still-forming candle: it comes with a later poll, once closed.
                break;
            }
            self.sequencer.record(&key, candle.time);
            fresh.push(candle);
        }
        if complete {
            pair.cursor = window_close;
            pair.due = now;
            pair.urgent = true;
        } else {
            pair.caught_up = true;
            if let Some(last) = self.sequencer.last(&key) {
                pair.cursor = pair.cursor.max(last + step);
            }
            if !fresh.is_empty() {
                pair.late_polls = 0;
            }
            let expected = pair.cursor + step + chrono_of(config.poll_delay);
            if expected > now {
                pair.due = expected;
                pair.urgent = true;
            } else if pair.late_polls < config.late_retries {
                // The candle that should be there is not: Twelve Data is late, or the market is closed.
                pair.late_polls += 1;
                pair.due = now + chrono_of(config.late_retry);
                pair.urgent = false;
            } else {
                pair.due = timeframe.bucket_start(now) + step + chrono_of(config.poll_delay);
                pair.urgent = true;
            }
        }
        let (symbol, live_from) = (pair.symbol.clone(), pair.live_from);
        self.answered();
        let mut gaps = 0;
        for candle in fresh {
            let close = candle.close_time(timeframe);
            if close >= live_from {
                match Price::new(candle.close.round_dp(MAX_PRICE_SCALE)) {
                    Ok(price) => {
                        let range = CandleRange { open: candle.open, high: candle.high, low: candle.low };
                        let tick = Tick {
                            symbol: symbol.clone(),
                            time: close - chrono::Duration::milliseconds(1),
                            bid: price,
                            ask: price,
                            synthetic_from: Some(range),
                        };
                        self.emit(FeedEvent::Tick(tick)).await?;
                    }
                    Err(error) => {
                        tracing::warn!(%symbol, %error, "no synthetic tick for a candle whose close is not a price")
                    }
                }
            }
            if was_caught_up {
                if let Some(observer) = &self.feed.observer {
                    observer.candle_lag(FEED, (now - close).to_std().unwrap_or_default());
                }
                // Anything but the newest closed candle should have come with an earlier poll.
                if close + step <= now {
                    gaps += 1;
                }
            }
            self.emit(FeedEvent::CandleClosed { symbol: symbol.clone(), timeframe, candle }).await?;
        }
        if gaps > 0 {
            tracing::info!(%symbol, %timeframe, candles = gaps, "late candles caught up from Twelve Data");
            if let Some(observer) = &self.feed.observer {
                observer.gap_filled(FEED, gaps);
            }
        }
        Ok(())
    }

    fn answered(&mut self) {
        if self.healthy == Some(true) {
            return;
        }
        if let Some(observer) = &self.feed.observer {
            if self.healthy == Some(false) {
                observer.reconnected(FEED);
            }
            observer.connected(FEED);
        }
        self.healthy = Some(true);
    }

    fn failed(&mut self, problem: &str) {
        self.healthy = Some(false);
        if let Some(observer) = &self.feed.observer {
            observer.disconnected(FEED, problem);
        }
    }

    fn retry_later(&mut self, i: usize, problem: &str) {
        let pair = &mut self.pairs[i];
        pair.failures += 1;
        let wait = self.feed.backoff(pair.failures);
        pair.not_before = Instant::now() + wait;
        tracing::warn!(symbol = %pair.symbol, timeframe = %pair.timeframe, %problem, ?wait,
            "Twelve Data poll failed; retrying");
        self.failed(problem);
    }

    /// Twelve Data does not serve the pair: the run ends if the feed started with it, else the pair goes.
    fn refused(&mut self, i: usize, message: &str) -> Result<(), Interrupt> {
        let pair = &self.pairs[i];
        let problem = format!("cannot serve {} ({}): Twelve Data answered {message}", pair.symbol, pair.vendor);
        if pair.initial && !pair.known {
            return Err(Interrupt::Fatal(source_error(problem)));
        }
        if pair.known {
            // It was served before: a passing refusal, not an unknown symbol.
            self.retry_later(i, &problem);
            return Ok(());
        }
        tracing::error!(%problem, "dropping a pair added by a subscription update");
        self.pairs.remove(i);
        Ok(())
    }

    async fn fetch(
        &self,
        vendor: &str,
        timeframe: Timeframe,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Result<Candle, String>>, PollError> {
        let config = &self.feed.config;
        let url = format!("{}/time_series", config.rest_url.trim_end_matches('/'));
        let query = [
            ("symbol", vendor.to_string()),
            ("interval", wire::interval(timeframe).to_string()),
            ("start_date", wire::format_datetime(start)),
            ("end_date", wire::format_datetime(end)),
            ("outputsize", config.page_size.to_string()),
            ("timezone", "UTC".to_string()),
            ("order", "asc".to_string()),
        ];
        let request = self
            .feed
            .http
            .get(&url)
            .query(&query)
            .header(reqwest::header::AUTHORIZATION, format!("apikey {}", config.api_key.expose()));
        let response = tokio::select! {
            () = self.shutdown.cancelled() => return Err(PollError::Stop(FeedEnd::Shutdown)),
            response = request.send() => response.map_err(|e| PollError::Retry(format!("GET {url} for {vendor}: {e}")))?,
        };
        let status = response.status();
        let body = tokio::select! {
            () = self.shutdown.cancelled() => return Err(PollError::Stop(FeedEnd::Shutdown)),
            body = response.text() => body.map_err(|e| PollError::Retry(format!("reading the answer for {vendor} failed: {e}")))?,
        };
        match wire::parse_time_series(&body) {
            Ok(Answer::Values(rows)) if status.is_success() => Ok(rows),
            Ok(Answer::Error { code, message }) => classify(code, &message),
            Ok(Answer::Values(_)) => classify(i64::from(status.as_u16()), "values with an error status"),
            Err(problem) if status.is_success() => {
                Err(PollError::Retry(format!("malformed answer for {vendor}: {problem}")))
            }
            Err(_) => classify(i64::from(status.as_u16()), &wire::error_text(&body)),
        }
    }
}

/// What Twelve Data's error code means for the feed.
fn classify(code: i64, message: &str) -> Result<Vec<Result<Candle, String>>, PollError> {
    match code {
        429 => Err(PollError::RateLimited(message.to_string())),
        401 => Err(PollError::Fatal(source_error(format!("Twelve Data refused the API key ({code}): {message}")))),
        // Twelve Data's answer to a window without candles (a weekend, a holiday): nothing to deliver.
        400 | 404 if message.contains("No data is available") => Ok(Vec::new()),
        400 | 403 | 404 => Err(PollError::Refused(format!("{code}: {message}"))),
        _ => Err(PollError::Retry(format!("Twelve Data answered {code}: {message}"))),
    }
}

#[async_trait::async_trait]
impl MarketFeed for TwelveDataFeed {
    fn name(&self) -> &str {
        FEED
    }

    async fn run(
        self: Box<Self>,
        tx: mpsc::Sender<FeedEvent>,
        shutdown: CancellationToken,
    ) -> Result<FeedStats, FeedError> {
        // A set the app marked changed before the run started is applied at once, as any later one.
        let updates = self.config.updates.clone();
        let mut run = Run {
            feed: &self,
            tx,
            shutdown,
            pairs: Vec::new(),
            credits: Credits::new(&self.config),
            sequencer: CandleSequencer::new(),
            updates,
            healthy: None,
            stats: FeedStats { candles: 0, ticks: 0, end: FeedEnd::Shutdown },
        };
        for (symbol, timeframe) in &self.config.subscriptions {
            let resume = self.config.resume_after.get(&(symbol.clone(), *timeframe)).copied();
            let pair = run.new_pair(symbol.clone(), *timeframe, resume, true).map_err(source_error)?;
            run.pairs.push(pair);
        }
        run.warn_about_budget();
        tracing::info!(
            pairs = run.pairs.len(),
            credits_per_minute = self.config.credits_per_minute,
            "Twelve Data feed started"
        );
        match run.run().await {
            Ok(()) => Ok(FeedStats { end: FeedEnd::Finished, ..run.stats }),
            Err(Interrupt::Stop(end)) => Ok(FeedStats { end, ..run.stats }),
            Err(Interrupt::Fatal(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn config() -> TwelveDataFeedConfig {
        TwelveDataFeedConfig::new(TwelveDataKey::new("k"), vec![(Symbol::normalize("EURUSD"), Timeframe::H1)])
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let config = TwelveDataFeedConfig::new(TwelveDataKey::new("td-secret-123"), Vec::new());
        assert!(!format!("{config:?}").contains("td-secret-123"));
    }

    #[test]
    fn credits_run_out_per_minute_and_refill_at_the_next_one() {
        let mut config = config();
        config.credits_per_minute = 2;
        config.clock_margin = Duration::from_secs(2);
        let mut credits = Credits::new(&config);
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 10).unwrap();
        assert_eq!(credits.ready_at(t), None);
        credits.spend(t);
        credits.spend(t);
        let next = Utc.with_ymd_and_hms(2026, 11, 20, 12, 1, 2).unwrap();
        assert_eq!(credits.ready_at(t), Some(next));
        // The boundary's first seconds are left alone after a full minute.
        assert_eq!(credits.ready_at(next - chrono::Duration::seconds(1)), Some(next));
        assert_eq!(credits.ready_at(next), None);
    }

    #[test]
    fn a_429_for_the_day_waits_for_the_next_utc_day() {
        let mut credits = Credits::new(&config());
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 23, 0, 0).unwrap();
        let until = credits.exhausted(t, "You have run out of API credits for the day.");
        assert_eq!(until, Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 2).unwrap());
        assert_eq!(credits.ready_at(t), Some(until));
        assert_eq!(credits.ready_at(until), None);
    }

    #[test]
    fn the_day_budget_is_counted() {
        let mut config = config();
        config.credits_per_day = 3;
        let mut credits = Credits::new(&config);
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        for minute in 0..3 {
            credits.spend(t + chrono::Duration::minutes(minute));
        }
        let later = t + chrono::Duration::minutes(5);
        assert_eq!(credits.ready_at(later), Some(Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 2).unwrap()));
    }

    #[test]
    fn budget_warnings_give_the_numbers() {
        let pairs: Vec<_> =
            ["EURUSD", "GBPUSD", "USDJPY"].iter().map(|s| (Symbol::normalize(s), Timeframe::M1)).collect();
        let warnings = budget_warnings(&pairs, 2, 800);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("3 pairs") && warnings[0].contains("3.0") && warnings[0].contains('2'));
        assert!(warnings[2].contains("4320") && warnings[2].contains("800"));
        assert!(budget_warnings(&pairs[..1], 8, 800).iter().any(|w| w.contains("1440")));
        let hourly = vec![(Symbol::normalize("EURUSD"), Timeframe::H1)];
        assert!(budget_warnings(&hourly, 8, 800).is_empty());
    }

    #[test]
    fn errors_are_classified_as_twelve_data_documents_them() {
        assert!(matches!(classify(429, "out of credits"), Err(PollError::RateLimited(_))));
        assert!(matches!(classify(401, "bad key"), Err(PollError::Fatal(_))));
        assert!(matches!(classify(400, "No data is available on the specified dates."), Ok(rows) if rows.is_empty()));
        assert!(matches!(classify(400, "**symbol** XXX/YYY not found"), Err(PollError::Refused(_))));
        assert!(matches!(classify(403, "plan"), Err(PollError::Refused(_))));
        assert!(matches!(classify(500, "oops"), Err(PollError::Retry(_))));
    }
}

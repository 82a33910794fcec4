//! The copier (issue 6): a provider's or TradingView's signal becomes an order on every follower's broker,
//! and the provider's later updates ("move SL to entry", "close half") are applied to the trades it opened.
//!
//! For each stored signal from a provider channel or the webhook, the followers of that channel get one
//! `pending` copy order each in a single batch (`Store::begin_copies`, whose UNIQUE key keeps a replayed
//! signal or a second process from copying twice), then each follower, concurrently and bounded, passes the
//! risk pipeline on its own account and, when approved, reaches its broker with a client order id derived
//! from (signal, user). A user follows a channel once and a signal comes from one channel, so that id is
//! unique per copy; brokers answer a repeated id with the first order, never a second one. The copy is
//! finished as placed (opening the trade and announcing it, so the position monitor watches it like any
//! other), refused (the gate and its sentence), rejected (the broker's reason) or failed (retries spent).
//!
//! Updates arrive as [`bus::Event::ProviderUpdate`], published by the gateway path (`providers.rs`) and by
//! the TradingView webhook alike: one design for both, and it works when the copier runs in another
//! process. The stored message is re-read and re-parsed (the store is the source of truth), applied to the
//! broker first and then to the store, and the message's stored outcome says what was done.
//!
//! Copies still `pending` after a crash are re-driven at start: the broker is asked for the order by its
//! client order id first, so an order that went out before the crash is recorded, not placed again.

use broker::{
    AlpacaConfig, AlpacaConnector, AlpacaCredentials, BinanceBroker, BinanceConfig, BinanceCredentials, BinanceMarket,
    Broker, BrokerError, ClientOrderId, InMemoryQuotes, OrderRef, OrderState, OrderStatus, PaperBroker, PaperConfig,
    PlaceOrder, Quote, QuoteSource,
};
use bus::{Bus, Event};
use chrono::{DateTime, Utc};
use domain::{
    Clock, CloseReason, Closing, Entry, InstrumentRegistry, Lots, NewTrade, Price, RateBook, Side, Signal, SignalId,
    SignalSource, Symbol, Trade, TradeStatus,
};
use futures::StreamExt;
use parser::{MessageKind, ParsedMessage, UpdateAction};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{
    BrokerKind, CopyOrder, CopyStatus, Follower, FollowerDayStats, FollowerId, KeyCipher, NewCopy, PlacedCopy, Store,
    StoreError,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Followers worked on at once for one signal: enough to keep 1,000 broker round trips well inside a
/// second, few enough not to exhaust the database pool or a broker's connection limits.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Retries of a `Retryable` broker answer before the copy is marked failed.
pub const PLACE_RETRIES: u32 = 3;
/// The longest a retry waits, whatever a broker's `Retry-After` says: a copy must not stall the queue.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// A pending copy older than this at start-up belongs to a run that stopped half-way.
pub const RECOVER_AFTER: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Debug, thiserror::Error)]
pub enum CopierError {
    #[error("the copier could not read or write the store")]
    Store(#[from] StoreError),
    /// The batch a placed copy was recorded in failed as a whole; the copy stays pending and is re-driven.
    #[error("the copier could not record placed copies")]
    Recording(#[source] Arc<StoreError>),
    /// The task recording placed copies is gone (the runtime is shutting down); the copy stays pending.
    #[error("the copier's recorder stopped")]
    RecorderStopped,
}

/// Placed copies recorded in one transaction at most: bounds how long one commit holds the writer.
const PLACED_BATCH: usize = 256;

/// One placed copy's answer from the recorder: the whole batch's error is shared by its copies.
type Recorded = Result<Option<Trade>, Arc<StoreError>>;

/// Records placed copies for every copy in flight. Whatever is waiting when the previous commit ends goes
/// into the next transaction: with one follower that is one copy (no added wait, as no timer is involved);
/// with a thousand it is a few commits instead of a thousand, each a disk flush on SQLite. A crash before
/// the commit leaves the copies pending, and recovery asks the broker for them by client order id.
async fn record_placed(store: Arc<dyn Store>, mut queue: mpsc::Receiver<(PlacedCopy, oneshot::Sender<Recorded>)>) {
    let mut batch = Vec::with_capacity(PLACED_BATCH);
    while queue.recv_many(&mut batch, PLACED_BATCH).await > 0 {
        let (copies, answers): (Vec<PlacedCopy>, Vec<oneshot::Sender<Recorded>>) = batch.drain(..).unzip();
        match store.finish_copies_placed(&copies).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result.map_err(Arc::new));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

/// What copying one signal did, follower by follower.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub placed: usize,
    pub refused: usize,
    pub rejected: usize,
    pub failed: usize,
    /// Copies another run had finished already, or that were finished meanwhile.
    pub skipped: usize,
}

impl CopyReport {
    fn add(&mut self, status: Option<CopyStatus>) {
        match status {
            Some(CopyStatus::Placed) => self.placed += 1,
            Some(CopyStatus::Refused) => self.refused += 1,
            Some(CopyStatus::Rejected) => self.rejected += 1,
            Some(CopyStatus::Failed) => self.failed += 1,
            Some(CopyStatus::Pending) | None => self.skipped += 1,
        }
    }
}

/// Where each kind of broker is reached (`ALPACA_BASE_URL`, `BINANCE_BASE_URL`).
#[derive(Debug, Clone, Default)]
pub struct BrokerUrls {
    /// Unset: Alpaca's paper-trading API.
    pub alpaca: Option<String>,
    /// Unset: Binance's production API for the market the follower chose.
    pub binance: Option<String>,
}

/// Why a follower has no broker to copy to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoBroker {
    /// This build or configuration cannot reach that broker: the copy is rejected with the reason.
    #[error("{0}")]
    Unavailable(String),
    /// The stored keys are missing or do not open with this server's key: the copy fails until the follower
    /// enters them again. Never carries the keys.
    #[error("{0}")]
    Credentials(String),
}

/// Broker clients per follower, built once and kept while the follower's row is unchanged (keyed by its id
/// and `updated_at`), so a signal to 1,000 followers does not build 1,000 HTTP clients.
pub struct BrokerDirectory {
    urls: BrokerUrls,
    cipher: Arc<KeyCipher>,
    quotes: Arc<dyn QuoteSource>,
    cache: Mutex<HashMap<FollowerId, CachedBroker>>,
    /// One HTTP client (one connection pool, TLS roots loaded once) for every Alpaca follower.
    alpaca: Mutex<Option<AlpacaConnector>>,
}

/// A built client and the follower row version (`updated_at`) it was built from.
type CachedBroker = (DateTime<Utc>, Arc<dyn Broker>);

impl std::fmt::Debug for BrokerDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerDirectory").field("urls", &self.urls).finish_non_exhaustive()
    }
}

impl BrokerDirectory {
    pub fn new(urls: BrokerUrls, cipher: Arc<KeyCipher>, quotes: Arc<dyn QuoteSource>) -> BrokerDirectory {
        BrokerDirectory { urls, cipher, quotes, cache: Mutex::new(HashMap::new()), alpaca: Mutex::new(None) }
    }

    /// The follower's broker, from the cache when its row has not changed since the client was built.
    pub fn broker_for(&self, follower: &Follower) -> Result<Arc<dyn Broker>, NoBroker> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, broker)) = cache.get(&follower.id)
                && *at == follower.updated_at
            {
                return Ok(broker.clone());
            }
        }
        let broker = self.build(follower)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Two signals racing may both build one; the later insert wins and both clients work.
        cache.insert(follower.id, (follower.updated_at, broker.clone()));
        Ok(broker)
    }

    fn credentials(&self, follower: &Follower) -> Result<store::BrokerCredentials, NoBroker> {
        let sealed = follower.sealed_credentials.as_ref().ok_or_else(|| {
            NoBroker::Credentials(format!(
                "no API keys are stored for {}; enter them in the settings",
                follower.broker.as_str()
            ))
        })?;
        self.cipher.open(sealed, follower.user_id).map_err(|_| {
            NoBroker::Credentials(format!(
                "the stored {} API keys cannot be opened with this server's key; enter them again",
                follower.broker.as_str()
            ))
        })
    }

    fn build(&self, follower: &Follower) -> Result<Arc<dyn Broker>, NoBroker> {
        match follower.broker {
            BrokerKind::Paper => Ok(Arc::new(PaperBroker::new(self.quotes.clone(), PaperConfig::default()))),
            BrokerKind::Alpaca => {
                let keys = self.credentials(follower)?;
                let url = self.urls.alpaca.clone().unwrap_or_else(|| AlpacaConfig::PAPER_URL.to_string());
                let config = AlpacaConfig::new(url, AlpacaCredentials::new(keys.api_key, keys.api_secret));
                let connector = {
                    let mut shared = self.alpaca.lock().unwrap_or_else(|p| p.into_inner());
                    match shared.as_ref() {
                        Some(connector) => connector.clone(),
                        None => {
                            let connector = AlpacaConnector::new(config.timeout)
                                .map_err(|e| NoBroker::Unavailable(e.to_string()))?;
                            *shared = Some(connector.clone());
                            connector
                        }
                    }
                };
                let broker = connector.connect(config).map_err(|e| match e {
                    // The only failure is a key a header cannot carry, or the HTTP client itself.
                    BrokerError::Rejected { reason, .. } => NoBroker::Credentials(reason),
                    other => NoBroker::Unavailable(other.to_string()),
                })?;
                Ok(Arc::new(broker))
            }
            BrokerKind::BinanceSpot | BrokerKind::BinanceFutures => self.binance(follower),
        }
    }

    fn binance(&self, follower: &Follower) -> Result<Arc<dyn Broker>, NoBroker> {
        let keys = self.credentials(follower)?;
        let (market, default_url) = match follower.broker {
            BrokerKind::BinanceFutures => (BinanceMarket::UsdmFutures, BinanceConfig::FUTURES_URL),
            _ => (BinanceMarket::Spot, BinanceConfig::SPOT_URL),
        };
        // One BINANCE_BASE_URL serves both markets (a fake or a proxy); unset, each market's own host.
        let url = self.urls.binance.clone().unwrap_or_else(|| default_url.to_string());
        let config = BinanceConfig::new(url, market, BinanceCredentials::new(keys.api_key, keys.api_secret));
        let broker = BinanceBroker::new(config).map_err(|e| match e {
            BrokerError::Rejected { reason, .. } => NoBroker::Unavailable(reason),
            other => NoBroker::Unavailable(other.to_string()),
        })?;
        Ok(Arc::new(broker))
    }
}

/// The copier service. Cheap to clone; every clone shares the broker cache.
#[derive(Clone)]
pub struct Copier {
    inner: Arc<Inner>,
    concurrency: usize,
}

struct Inner {
    /// Hands placed copies to [`record_placed`].
    recorder: mpsc::Sender<(PlacedCopy, oneshot::Sender<Recorded>)>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    quotes: Arc<InMemoryQuotes>,
    brokers: BrokerDirectory,
}

impl std::fmt::Debug for Copier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Copier").field("brokers", &self.inner.brokers).finish_non_exhaustive()
    }
}

/// One follower's copy, with what the decision reads.
struct Job {
    row: CopyOrder,
    follower: Follower,
    stats: FollowerDayStats,
    /// A run that stopped half-way may have reached the broker: ask it before placing.
    recovering: bool,
}

/// What one signal's copies share.
struct SignalContext<'a> {
    signal_id: SignalId,
    signal: &'a Signal,
    provider: String,
    market_price: Option<Quote>,
}

impl Copier {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        quotes: Arc<InMemoryQuotes>,
        brokers: BrokerDirectory,
    ) -> Copier {
        let (recorder, queue) = mpsc::channel(PLACED_BATCH * 4);
        // Ends when the last copier clone (and so the sender) is dropped.
        tokio::spawn(record_placed(store.clone(), queue));
        Copier {
            inner: Arc::new(Inner { recorder, store, bus, clock, quotes, brokers }),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Followers (or copied trades) worked on at once, at least 1.
    pub fn with_concurrency(self, n: usize) -> Copier {
        Copier { concurrency: n.max(1), ..self }
    }

    /// Handles bus events until `shutdown`: signals are copied and updates applied in the order they were
    /// published, so an update never overtakes the copies of the signal it refers to. Pending copies a
    /// stopped run left behind are re-driven first.
    pub async fn run(self, mut events: Box<dyn bus::Subscription>, shutdown: CancellationToken) {
        // Building a broker client loads TLS roots (milliseconds each): done for every follower now, off the
        // signal path, so the first signal after a start does not pay it 1,000 times.
        let warming = tokio::spawn(self.clone().warm_up());
        match self.recover().await {
            Ok(report) if report != CopyReport::default() => tracing::info!(?report, "re-drove pending copies"),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "could not re-drive pending copies"),
        }
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.next() => event,
            };
            match event {
                Ok(Event::SignalCreated { signal_id, signal }) => {
                    if let Err(error) = self.copy_signal(signal_id, &signal).await {
                        tracing::error!(%error, signal = %signal_id, "could not copy a signal");
                    }
                }
                Ok(Event::ProviderUpdate { channel_id, message_id }) => {
                    if let Err(error) = self.apply_update(&channel_id, &message_id).await {
                        tracing::error!(%error, channel_id, message_id, "could not apply a provider update");
                    }
                }
                Ok(_) => {}
                Err(bus::BusError::Lagged(missed)) => {
                    // Copies already begun are re-driven from the store; signals whose event was missed
                    // entirely are not copied (their followers see no copy order for them).
                    tracing::warn!(missed, "the copier fell behind the bus; re-driving pending copies");
                    if let Err(error) = self.recover_older_than(chrono::Duration::zero()).await {
                        tracing::error!(%error, "could not re-drive pending copies");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the copier's bus subscription ended");
                    break;
                }
            }
        }
        warming.abort();
        tracing::info!("copier stopped");
    }

    /// Builds (and caches) the broker client of every enabled follower.
    pub async fn warm_up(self) {
        let mut channels: Vec<String> = match self.inner.store.provider_channels().await {
            Ok(channels) => channels.into_iter().filter(|c| c.enabled).map(|c| c.channel_id).collect(),
            Err(error) => {
                tracing::warn!(%error, "could not list provider channels to warm broker clients");
                return;
            }
        };
        channels.push(store::WEBHOOK_CHANNEL.to_string());
        let mut built = 0usize;
        for channel in channels {
            let Ok(followers) = self.inner.store.followers_of(&channel).await else { continue };
            for follower in followers {
                // On the blocking pool: a client build is synchronous work that must not hold up a runtime
                // worker.
                let copier = self.clone();
                let ok = tokio::task::spawn_blocking(move || copier.inner.brokers.broker_for(&follower).is_ok()).await;
                built += usize::from(ok.unwrap_or(false));
            }
        }
        tracing::debug!(built, "broker clients ready");
    }

    fn channel_of(signal: &Signal) -> Option<&str> {
        match &signal.source {
            SignalSource::Provider(channel) => Some(channel),
            SignalSource::Webhook => Some(store::WEBHOOK_CHANNEL),
            _ => None,
        }
    }

    async fn provider_name(&self, channel: &str) -> String {
        if channel == store::WEBHOOK_CHANNEL {
            return "TradingView".into();
        }
        match self.inner.store.provider_channel(channel).await {
            Ok(Some(c)) => c.name,
            _ => format!("channel {channel}"),
        }
    }

    /// The latest quote: the feed's in memory, else the store's last price (another process's feed).
    async fn quote(&self, symbol: &Symbol) -> Option<Quote> {
        if let Some(q) = self.inner.quotes.quote(symbol) {
            return Some(q);
        }
        match self.inner.store.last_price(symbol).await {
            Ok(Some(tick)) => {
                // The paper brokers fill against the same source.
                self.inner.quotes.update(&tick);
                Some(Quote::BidAsk { bid: tick.bid, ask: tick.ask })
            }
            _ => None,
        }
    }

    /// Copies one stored signal to every enabled follower of its channel. Signals from elsewhere (the
    /// engine) are not copied.
    pub async fn copy_signal(&self, signal_id: SignalId, signal: &Signal) -> Result<CopyReport, CopierError> {
        let Some(channel) = Self::channel_of(signal) else {
            return Ok(CopyReport::default());
        };
        let store = &self.inner.store;
        // Stage times for issue 6's message-to-order latency, logged at debug level.
        let started = std::time::Instant::now();
        let followers = store.followers_of(channel).await?;
        if followers.is_empty() {
            return Ok(CopyReport::default());
        }
        let listed = started.elapsed();
        let now = self.inner.clock.now();
        // The intake usually began every follower's copy with the signal (`store::BeginCopies`): then this is
        // a read, and no commit stands between the signal and the orders. Otherwise (a follower added since,
        // a signal stored another way) the missing ones are begun here.
        let mut existing = store.copy_orders_for_signal(signal_id).await?;
        let begun: std::collections::HashSet<FollowerId> = existing.iter().map(|c| c.follower_id).collect();
        let rows = if followers.iter().all(|f| begun.contains(&f.id)) {
            existing.retain(|c| c.status == CopyStatus::Pending);
            existing.sort_by_key(|c| c.id);
            existing
        } else {
            let ids: Vec<String> =
                followers.iter().map(|f| ClientOrderId::text_for_signal(signal_id, f.user_id)).collect();
            let copies: Vec<NewCopy<'_>> = followers
                .iter()
                .zip(&ids)
                .map(|(f, id)| NewCopy { follower_id: f.id, user_id: f.user_id, client_order_id: id })
                .collect();
            store.begin_copies(signal_id, &copies, now).await?
        };
        tracing::debug!(signal = %signal_id, ?listed, begun = ?started.elapsed(), "copies begun");
        let mut by_id: HashMap<FollowerId, Follower> = followers.into_iter().map(|f| (f.id, f)).collect();
        let jobs: Vec<(CopyOrder, Follower, bool)> = rows
            .into_iter()
            .filter_map(|row| {
                // A row from before this call is a stopped run's leftover: it may have reached the broker. (A
                // second's margin: the store may keep timestamps coarser than the clock.)
                let recovering = row.created_at < now - chrono::Duration::seconds(1);
                by_id.remove(&row.follower_id).map(|f| (row, f, recovering))
            })
            .collect();
        self.drive(signal_id, signal, channel, jobs).await
    }

    /// Re-drives copies left `pending` for longer than [`RECOVER_AFTER`].
    pub async fn recover(&self) -> Result<CopyReport, CopierError> {
        self.recover_older_than(RECOVER_AFTER).await
    }

    async fn recover_older_than(&self, age: chrono::Duration) -> Result<CopyReport, CopierError> {
        let store = &self.inner.store;
        let before = self.inner.clock.now() - age;
        let mut report = CopyReport::default();
        let pending = store.pending_copies(before, 10_000).await?;
        let mut by_signal: HashMap<SignalId, Vec<CopyOrder>> = HashMap::new();
        for row in pending {
            by_signal.entry(row.signal_id).or_default().push(row);
        }
        for (signal_id, rows) in by_signal {
            let Some(stored) = store.get_signal(signal_id).await? else { continue };
            let Some(channel) = Self::channel_of(&stored.signal).map(str::to_string) else { continue };
            let mut followers = Vec::with_capacity(rows.len());
            for row in &rows {
                if let Some(f) = store.get_follower(row.follower_id).await? {
                    followers.push(f);
                }
            }
            let mut by_id: HashMap<FollowerId, Follower> = followers.into_iter().map(|f| (f.id, f)).collect();
            let jobs = rows.into_iter().filter_map(|r| by_id.remove(&r.follower_id).map(|f| (r, f, true))).collect();
            let r = self.drive(signal_id, &stored.signal, &channel, jobs).await?;
            report.placed += r.placed;
            report.refused += r.refused;
            report.rejected += r.rejected;
            report.failed += r.failed;
            report.skipped += r.skipped;
        }
        Ok(report)
    }

    async fn drive(
        &self,
        signal_id: SignalId,
        signal: &Signal,
        channel: &str,
        jobs: Vec<(CopyOrder, Follower, bool)>,
    ) -> Result<CopyReport, CopierError> {
        if jobs.is_empty() {
            return Ok(CopyReport::default());
        }
        let started_drive = std::time::Instant::now();
        let now = self.inner.clock.now();
        // One stats query per distinct trading-day start (followers in one time zone share it: usually one).
        let mut by_day: HashMap<DateTime<Utc>, Vec<FollowerId>> = HashMap::new();
        for (_, f, _) in &jobs {
            by_day.entry(f.risk_settings.trading_day(now).0).or_default().push(f.id);
        }
        let mut stats = HashMap::new();
        for (day_start, ids) in by_day {
            stats.extend(self.inner.store.follower_day_stats(&ids, day_start).await?);
        }
        let stats_read = started_drive.elapsed();
        let context = SignalContext {
            signal_id,
            signal,
            provider: self.provider_name(channel).await,
            market_price: self.quote(&signal.symbol).await,
        };
        tracing::debug!(signal = %signal_id, ?stats_read, context = ?started_drive.elapsed(), "copies ready to place");
        let jobs: Vec<Job> = jobs
            .into_iter()
            .map(|(row, follower, recovering)| Job {
                stats: stats.get(&follower.id).copied().unwrap_or_default(),
                row,
                follower,
                recovering,
            })
            .collect();
        let context = &context;
        let outcomes: Vec<Result<Option<CopyStatus>, CopierError>> = futures::stream::iter(jobs)
            .map(|job| async move { self.copy_one(context, job).await })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut report = CopyReport::default();
        for outcome in outcomes {
            report.add(outcome?);
        }
        tracing::info!(signal = %signal_id, channel, placed = report.placed, refused = report.refused,
            rejected = report.rejected, failed = report.failed, "signal copied to followers");
        Ok(report)
    }

    async fn unplaced(
        &self,
        row: &CopyOrder,
        status: CopyStatus,
        gate: Option<&str>,
        reason: &str,
    ) -> Result<Option<CopyStatus>, CopierError> {
        let now = self.inner.clock.now();
        let done = self.inner.store.finish_copy_unplaced(row.id, status, gate, reason, now).await?;
        if done {
            tracing::info!(
                copy = row.id.0,
                follower = row.follower_id.0,
                status = status.as_str(),
                reason,
                "copy not placed"
            );
        }
        Ok(done.then_some(status))
    }

    /// Decides, places and records one follower's copy. Returns the status it was finished with, or None when
    /// another run finished it first.
    async fn copy_one(&self, cx: &SignalContext<'_>, job: Job) -> Result<Option<CopyStatus>, CopierError> {
        let Job { row, follower, stats, recovering } = job;
        let follower = &follower;
        let broker = match self.inner.brokers.broker_for(follower) {
            Ok(b) => b,
            Err(NoBroker::Unavailable(reason)) => {
                return self.unplaced(&row, CopyStatus::Rejected, None, &reason).await;
            }
            Err(NoBroker::Credentials(reason)) => {
                return self.unplaced(&row, CopyStatus::Failed, None, &reason).await;
            }
        };
        let client_order_id = match ClientOrderId::new(row.client_order_id.clone()) {
            Ok(id) => id,
            Err(e) => return self.unplaced(&row, CopyStatus::Failed, None, &e.to_string()).await,
        };
        if recovering {
            match broker.order(&client_order_id).await {
                Ok(Some(state)) if state.status != OrderStatus::Rejected => {
                    let lots = Lots::new_checked(state.qty.round_dp_with_strategy(2, RoundingStrategy::ToZero)).ok();
                    if let Some(lots) = lots {
                        return self.placed(cx, &row, follower, &state, lots, None).await;
                    }
                }
                Ok(Some(state)) => {
                    let reason = format!("the broker rejected order {}", state.broker_order_id);
                    return self.unplaced(&row, CopyStatus::Rejected, None, &reason).await;
                }
                Ok(None) => {}
                Err(error) => {
                    // The broker cannot say yet; the next start tries again.
                    tracing::warn!(%error, copy = row.id.0, "could not ask the broker about a pending copy");
                    return Ok(None);
                }
            }
        }
        let Ok(instrument) = InstrumentRegistry::global().get(cx.signal.symbol.as_str()) else {
            let reason = format!("{} is not an instrument Signalpost knows", cx.signal.symbol);
            return self.unplaced(&row, CopyStatus::Refused, Some(risk::Gate::Signal.as_str()), &reason).await;
        };
        let account = risk::AccountSnapshot {
            currency: follower.currency.clone(),
            balance: follower.balance + stats.realised_pnl_total,
            realised_pnl_today: stats.realised_pnl_today,
            open_positions: stats.open_positions,
            signals_taken_today: stats.signals_taken_today,
        };
        let intent = risk::SignalIntent::from_signal(cx.signal);
        let market_price = cx.market_price.map(|q| match (q, cx.signal.side) {
            (Quote::BidAsk { ask, .. }, Side::Long) => ask,
            (Quote::BidAsk { bid, .. }, Side::Short) => bid,
            (Quote::Mid(m), _) => m,
        });
        let mut rates = RateBook::default();
        if let Some(price) = market_price {
            rates.set(instrument.symbol.as_str(), price.value());
        }
        let request = risk::RiskRequest {
            settings: &follower.risk_settings,
            account: &account,
            intent: &intent,
            instrument,
            market_price,
            // The provider's record is not summarised yet: Kelly followers are sized at their % risk cap.
            provider: None,
            rates: &rates,
            now: self.inner.clock.now(),
        };
        let approved = match risk::evaluate(&request) {
            Ok(approved) => approved,
            Err(refused) => {
                return self.unplaced(&row, CopyStatus::Refused, Some(refused.gate.as_str()), &refused.reason).await;
            }
        };
        let mut order = PlaceOrder::from_approved(&approved, client_order_id);
        // Futures brokers set the provider's leverage on the symbol first; the others ignore it.
        order.leverage = cx.signal.leverage;
        let placing = std::time::Instant::now();
        let placed = place_with_retry(broker.as_ref(), &order).await;
        tracing::debug!(copy = row.id.0, took = ?placing.elapsed(), "order sent to the broker");
        match placed {
            Ok(ack) if ack.state.status == OrderStatus::Rejected => {
                let reason = format!("the broker rejected order {}", ack.state.broker_order_id);
                self.unplaced(&row, CopyStatus::Rejected, None, &reason).await
            }
            Ok(ack) => {
                let reference = Some(approved.order().reference_price);
                self.placed(cx, &row, follower, &ack.state, order.qty, reference).await
            }
            Err(BrokerError::Rejected { code, reason }) => {
                self.unplaced(&row, CopyStatus::Rejected, None, &format!("{reason} ({code})")).await
            }
            Err(error @ BrokerError::Retryable { .. }) => {
                let reason = format!("gave up after {} retries: {error}", PLACE_RETRIES);
                self.unplaced(&row, CopyStatus::Failed, None, &reason).await
            }
            Err(error @ BrokerError::UnknownOrder(_)) => {
                self.unplaced(&row, CopyStatus::Failed, None, &error.to_string()).await
            }
        }
    }

    /// Records a copy the broker took: the follower's trade opens at the fill (or the limit, or the price the
    /// size was computed from) and the monitor is told.
    async fn placed(
        &self,
        cx: &SignalContext<'_>,
        row: &CopyOrder,
        follower: &Follower,
        state: &OrderState,
        lots: Lots,
        reference: Option<Price>,
    ) -> Result<Option<CopyStatus>, CopierError> {
        let precision = InstrumentRegistry::global().get(cx.signal.symbol.as_str()).map_or(8, |i| i.price_precision);
        let limit = match state.entry {
            broker::OrderEntry::Limit(p) => Some(p),
            broker::OrderEntry::Market => None,
        };
        let entry_signal = match cx.signal.entry {
            Entry::Price { price } => Some(price),
            _ => None,
        };
        let Some(entry) =
            state.avg_fill_price.or(limit).or(reference).or(entry_signal).and_then(|p| rounded(p, precision))
        else {
            let reason = format!("order {} was placed but no entry price is known to record it", state.broker_order_id);
            return self.unplaced(row, CopyStatus::Failed, None, &reason).await;
        };
        let now = self.inner.clock.now();
        let trade = NewTrade {
            user_id: follower.user_id,
            symbol: cx.signal.symbol.clone(),
            side: cx.signal.side,
            entry,
            lots,
            stop_loss: state.stop_loss.or(cx.signal.stop_loss),
            take_profit: state.take_profits.first().copied().or(cx.signal.take_profits.first().copied()),
            notes: Some(format!("copied from {} via {}", cx.provider, follower.broker.as_str())),
            signal_id: Some(cx.signal_id),
            notification_id: None,
            opened_at: now,
        };
        let copy = PlacedCopy { id: row.id, broker_order_id: state.broker_order_id.clone(), trade, at: now };
        let (answer, recorded) = oneshot::channel();
        // The recorder lives as long as any copier clone; it is gone only when the runtime is shutting down.
        self.inner.recorder.send((copy, answer)).await.map_err(|_| CopierError::RecorderStopped)?;
        match recorded.await.map_err(|_| CopierError::RecorderStopped)? {
            Ok(Some(opened)) => {
                tracing::info!(copy = row.id.0, trade = %opened.id, follower = follower.id.0,
                    broker = follower.broker.as_str(), "copy placed");
                if let Err(error) = self.inner.bus.publish(Event::TradeOpened { trade: opened }).await {
                    tracing::warn!(%error, "could not announce a copied trade; the monitor will find it in the store");
                }
                Ok(Some(CopyStatus::Placed))
            }
            Ok(None) => Ok(None),
            Err(error) if matches!(*error, StoreError::Invalid(_)) => {
                let why = &error;
                // The broker holds the order, but its fill left the levels on the wrong side: say so plainly.
                let reason = format!("order {} was placed but could not be recorded: {why}", state.broker_order_id);
                tracing::error!(copy = row.id.0, %reason, "copy placed at the broker but not recorded");
                self.unplaced(row, CopyStatus::Failed, None, &reason).await
            }
            Err(error) => Err(CopierError::Recording(error)),
        }
    }

    /// Applies a stored update or close message to the trades copied from the signal it refers to, and
    /// replaces the message's stored outcome with what was done. Returns that outcome.
    pub async fn apply_update(&self, channel_id: &str, message_id: &str) -> Result<Option<String>, CopierError> {
        let store = &self.inner.store;
        let messages = store.provider_messages(channel_id, 200).await?;
        let Some(message) = messages.into_iter().find(|m| m.message_id == message_id) else {
            tracing::warn!(channel_id, message_id, "an update to apply is not among the channel's recent messages");
            return Ok(None);
        };
        // Applied once: the outcome loses "not applied yet" when an update was applied. (Two copier processes
        // reading it at the same instant could both apply it; run one copier per deployment.)
        if !message.outcome.contains("not applied yet") {
            return Ok(None);
        }
        let parsed = reparse(&message.content);
        if !matches!(parsed.kind, MessageKind::Update | MessageKind::Close) {
            return Ok(None);
        }
        let kind = parsed.kind.as_str();
        let signal =
            store.provider_signal_for_update(channel_id, message.reply_to.as_deref(), parsed.symbol.as_ref()).await?;
        let outcome = match signal {
            None => format!("{kind}: no earlier signal of this channel to apply it to"),
            Some(signal_id) => {
                let summary = self.apply_to_signal(signal_id, &parsed.actions).await?;
                format!("{kind} of signal #{}: {summary}", signal_id.0)
            }
        };
        store.set_provider_message_outcome(channel_id, message_id, &outcome).await?;
        tracing::info!(channel_id, message_id, %outcome, "provider update applied");
        Ok(Some(outcome))
    }

    async fn apply_to_signal(&self, signal_id: SignalId, actions: &[UpdateAction]) -> Result<String, CopierError> {
        if actions.is_empty() {
            return Ok("no action recognised; nothing done".into());
        }
        let store = &self.inner.store;
        let copies: Vec<CopyOrder> = store
            .copy_orders_for_signal(signal_id)
            .await?
            .into_iter()
            .filter(|c| c.status == CopyStatus::Placed && c.trade_id.is_some())
            .collect();
        let results: Vec<Result<Option<Vec<ActionResult>>, CopierError>> = futures::stream::iter(copies)
            .map(|copy| async move { self.apply_to_copy(&copy, actions).await })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut tallies: Vec<Tally> = actions.iter().map(|_| Tally::default()).collect();
        let mut trades = 0usize;
        for result in results {
            let Some(per_action) = result? else { continue };
            trades += 1;
            for (tally, r) in tallies.iter_mut().zip(per_action) {
                tally.add(r);
            }
        }
        if trades == 0 {
            return Ok("no copied trade of it is open; nothing done".into());
        }
        let parts: Vec<String> = actions.iter().zip(&tallies).map(|(a, t)| t.describe(a)).collect();
        Ok(parts.join("; "))
    }

    /// Applies every action to one copy's trade, broker first, then the store. None when the trade is not
    /// open (closed by its stop, or by an earlier update).
    async fn apply_to_copy(
        &self,
        copy: &CopyOrder,
        actions: &[UpdateAction],
    ) -> Result<Option<Vec<ActionResult>>, CopierError> {
        let store = &self.inner.store;
        let Some(trade_id) = copy.trade_id else { return Ok(None) };
        let Some(mut trade) = store.get_trade(trade_id).await?.filter(|t| t.status == TradeStatus::Open) else {
            return Ok(None);
        };
        let follower = store.get_follower(copy.follower_id).await?;
        let currency = follower.as_ref().map_or_else(|| "USD".to_string(), |f| f.currency.clone());
        let broker = match &follower {
            Some(follower) => self.inner.brokers.broker_for(follower).map_err(|e| e.to_string()),
            None => Err("the follower no longer exists".to_string()),
        };
        let order = OrderRef {
            client_order_id: match ClientOrderId::new(copy.client_order_id.clone()) {
                Ok(id) => id,
                Err(e) => return Ok(Some(actions.iter().map(|_| ActionResult::Failed(e.to_string())).collect())),
            },
            broker_order_id: copy.broker_order_id.clone().unwrap_or_default(),
            symbol: trade.symbol.clone(),
        };
        let mut results = Vec::with_capacity(actions.len());
        for action in actions {
            if trade.status != TradeStatus::Open {
                results.push(ActionResult::Skipped);
                continue;
            }
            let broker = match &broker {
                Ok(b) => b.as_ref(),
                Err(reason) if needs_broker(action) => {
                    results.push(ActionResult::Failed(reason.clone()));
                    continue;
                }
                Err(_) => {
                    // Store-only actions still apply without a broker.
                    results.push(self.store_only(&mut trade, action).await?);
                    continue;
                }
            };
            let result = self.apply_action(broker, &order, &mut trade, action, &currency).await?;
            results.push(result);
        }
        Ok(Some(results))
    }

    async fn move_stop(
        &self,
        broker: &dyn Broker,
        order: &OrderRef,
        trade: &mut Trade,
        stop: Price,
    ) -> Result<ActionResult, CopierError> {
        if let Err(error) = broker.modify_stop(order, stop).await {
            return Ok(ActionResult::Failed(format!("trade #{}: {error}", trade.id)));
        }
        let now = self.inner.clock.now();
        match self.inner.store.set_trade_levels(trade.id, Some(stop), trade.take_profit, now).await {
            Ok(Some(updated)) => {
                *trade = updated.clone();
                // Announced as opened again so the position monitor re-arms the trade at its new stop.
                self.announce(Event::TradeOpened { trade: updated }).await;
                Ok(ActionResult::Done)
            }
            Ok(None) => Ok(ActionResult::Failed(format!("trade #{} closed meanwhile", trade.id))),
            Err(StoreError::Invalid(why)) => {
                Ok(ActionResult::Failed(format!("trade #{}: moved at the broker, but {why}", trade.id)))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn announce(&self, event: Event) {
        if let Err(error) = self.inner.bus.publish(event).await {
            tracing::warn!(%error, "could not announce a copied trade's change; subscribers will find it in the store");
        }
    }

    async fn exit_price(&self, trade: &Trade, filled_at: Option<Price>) -> Option<Price> {
        let precision = InstrumentRegistry::global().get(trade.symbol.as_str()).map_or(8, |i| i.price_precision);
        if let Some(p) = filled_at {
            return rounded(p, precision);
        }
        let quote = self.quote(&trade.symbol).await?;
        // A close sells a long at the bid and buys a short back at the ask.
        let price = match (quote, trade.side) {
            (Quote::BidAsk { bid, .. }, Side::Long) => bid,
            (Quote::BidAsk { ask, .. }, Side::Short) => ask,
            (Quote::Mid(m), _) => m,
        };
        rounded(price, precision)
    }

    fn closing(&self, trade: &Trade, follower_currency: &str, exit: Price, lots: Lots) -> Option<Closing> {
        let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok()?;
        let mut rates = RateBook::default();
        rates.set(instrument.symbol.as_str(), exit.value());
        let outcome = domain::pnl::outcome(instrument, trade.side, trade.entry, exit, lots, &rates, follower_currency);
        Some(Closing::new(exit, CloseReason::ManualClose, self.inner.clock.now(), &outcome))
    }

    async fn close(
        &self,
        broker: &dyn Broker,
        order: &OrderRef,
        trade: &mut Trade,
        fraction: Decimal,
        currency: &str,
    ) -> Result<ActionResult, CopierError> {
        let whole = fraction >= Decimal::ONE;
        let lots = if whole {
            trade.lots
        } else {
            let part = (trade.lots.value() * fraction).round_dp_with_strategy(2, RoundingStrategy::ToZero);
            match Lots::new_checked(part) {
                Ok(l) if l < trade.lots => l,
                _ => {
                    return Ok(ActionResult::Failed(format!(
                        "trade #{}: {} lots cannot be split at {}%",
                        trade.id,
                        trade.lots.value(),
                        fraction * Decimal::ONE_HUNDRED
                    )));
                }
            }
        };
        let ack = match broker.close(order, if whole { Decimal::ONE } else { fraction }).await {
            Ok(ack) => ack,
            Err(error) => return Ok(ActionResult::Failed(format!("trade #{}: {error}", trade.id))),
        };
        let Some(exit) = self.exit_price(trade, ack.price).await else {
            return Ok(ActionResult::Failed(format!(
                "trade #{}: closed at the broker, but no exit price is known to record it",
                trade.id
            )));
        };
        let Some(closing) = self.closing(trade, currency, exit, lots) else {
            return Ok(ActionResult::Failed(format!("trade #{}: unknown instrument {}", trade.id, trade.symbol)));
        };
        let store = &self.inner.store;
        if whole {
            match store.close_trade(trade.id, &closing).await? {
                Some(closed) => {
                    *trade = closed.clone();
                    self.announce(Event::TradeClosed { trade: closed }).await;
                    Ok(ActionResult::Done)
                }
                None => Ok(ActionResult::Failed(format!("trade #{} closed meanwhile", trade.id))),
            }
        } else {
            match store.partially_close_trade(trade.id, lots, &closing).await? {
                Some((open, part)) => {
                    *trade = open;
                    self.announce(Event::TradeClosed { trade: part }).await;
                    Ok(ActionResult::Done)
                }
                None => Ok(ActionResult::Failed(format!("trade #{} closed meanwhile", trade.id))),
            }
        }
    }

    async fn apply_action(
        &self,
        broker: &dyn Broker,
        order: &OrderRef,
        trade: &mut Trade,
        action: &UpdateAction,
        currency: &str,
    ) -> Result<ActionResult, CopierError> {
        match action {
            UpdateAction::MoveStopToBreakeven => match breakeven_stop(trade) {
                Some(stop) => self.move_stop(broker, order, trade, stop).await,
                None => {
                    Ok(ActionResult::Failed(format!("trade #{}: no breakeven stop for {}", trade.id, trade.symbol)))
                }
            },
            UpdateAction::MoveStop(p) => match Price::new(*p) {
                Ok(stop) => self.move_stop(broker, order, trade, stop).await,
                Err(e) => Ok(ActionResult::Failed(format!("stop {p}: {e}"))),
            },
            UpdateAction::ClosePartial(pct) => {
                if *pct <= Decimal::ZERO || *pct > Decimal::ONE_HUNDRED {
                    return Ok(ActionResult::Failed(format!("{pct}% is not a share of a position")));
                }
                self.close(broker, order, trade, *pct / Decimal::ONE_HUNDRED, currency).await
            }
            UpdateAction::CloseAll => self.close(broker, order, trade, Decimal::ONE, currency).await,
            UpdateAction::Cancel => {
                if let Err(error) = broker.cancel(order).await {
                    return Ok(ActionResult::Failed(format!("trade #{}: {error}", trade.id)));
                }
                match self.inner.store.cancel_trade(trade.id, self.inner.clock.now()).await? {
                    Some(cancelled) => {
                        *trade = cancelled.clone();
                        self.announce(Event::TradeCancelled { trade: cancelled }).await;
                        Ok(ActionResult::Done)
                    }
                    None => Ok(ActionResult::Failed(format!("trade #{} closed meanwhile", trade.id))),
                }
            }
            _ => self.store_only(trade, action).await,
        }
    }

    /// Actions the brokers' brackets cannot follow (a bracket keeps the take profit it was placed with), or
    /// that only inform.
    async fn store_only(&self, trade: &mut Trade, action: &UpdateAction) -> Result<ActionResult, CopierError> {
        let target = match action {
            UpdateAction::SetTakeProfits(tps) => tps.first().copied(),
            UpdateAction::AddTakeProfit(p) if trade.take_profit.is_none() => Some(*p),
            _ => return Ok(ActionResult::Informational),
        };
        let Some(target) = target.and_then(|t| Price::new(t).ok()) else {
            return Ok(ActionResult::Informational);
        };
        match self.inner.store.set_trade_levels(trade.id, trade.stop_loss, Some(target), self.inner.clock.now()).await {
            Ok(Some(updated)) => {
                *trade = updated.clone();
                self.announce(Event::TradeOpened { trade: updated }).await;
                Ok(ActionResult::Done)
            }
            Ok(None) => Ok(ActionResult::Failed(format!("trade #{} closed meanwhile", trade.id))),
            Err(StoreError::Invalid(why)) => Ok(ActionResult::Failed(format!("trade #{}: {why}", trade.id))),
            Err(error) => Err(error.into()),
        }
    }
}

/// "Stop to entry": the store (like every venue's trigger rules) wants a stop strictly on the losing side of
/// the entry, so breakeven is the entry less one quoted tick for a long (plus one for a short).
fn breakeven_stop(trade: &Trade) -> Option<Price> {
    let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok()?;
    let tick = Decimal::new(1, instrument.price_precision);
    Price::new(trade.entry.value() - tick * trade.side.direction()).ok()
}

fn needs_broker(action: &UpdateAction) -> bool {
    matches!(
        action,
        UpdateAction::MoveStopToBreakeven
            | UpdateAction::MoveStop(_)
            | UpdateAction::ClosePartial(_)
            | UpdateAction::CloseAll
            | UpdateAction::Cancel
    )
}

/// `p` at the instrument's quoted precision, as the store requires.
fn rounded(p: Price, precision: u32) -> Option<Price> {
    Price::new(p.value().round_dp_with_strategy(precision, RoundingStrategy::MidpointNearestEven)).ok()
}

/// Places `order`, retrying a `Retryable` answer with the same client order id (the broker keeps it to one
/// order), waiting what the broker asked or a doubling backoff.
pub async fn place_with_retry(broker: &dyn Broker, order: &PlaceOrder) -> Result<broker::OrderAck, BrokerError> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match broker.place(order).await {
            Err(BrokerError::Retryable { retry_after, reason }) if attempt < PLACE_RETRIES => {
                let wait = retry_after.unwrap_or(backoff).min(MAX_RETRY_WAIT);
                tracing::info!(client_order_id = %order.client_order_id, attempt, ?wait, reason, "broker busy; retrying");
                tokio::time::sleep(wait).await;
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The stored text of an update as the parser reads it: a TradingView JSON body carries it in `message`.
pub fn reparse(content: &str) -> ParsedMessage {
    if content.trim_start().starts_with('{')
        && let Ok(serde_json::Value::Object(body)) = serde_json::from_str::<serde_json::Value>(content)
        && let Some(text) = body.get("message").and_then(serde_json::Value::as_str)
    {
        return parser::parse(text);
    }
    parser::parse(content)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ActionResult {
    Done,
    Failed(String),
    /// The trade closed by an earlier action of the same message.
    Skipped,
    /// Nothing to do (TP hit, entry filled, an entry change after the order is placed).
    Informational,
}

#[derive(Debug, Default)]
struct Tally {
    done: usize,
    failed: Vec<String>,
    informational: bool,
}

impl Tally {
    fn add(&mut self, result: ActionResult) {
        match result {
            ActionResult::Done => self.done += 1,
            ActionResult::Failed(reason) => self.failed.push(reason),
            ActionResult::Skipped => {}
            ActionResult::Informational => self.informational = true,
        }
    }

    fn describe(&self, action: &UpdateAction) -> String {
        let what = match action {
            UpdateAction::MoveStopToBreakeven => "moved stop to entry".to_string(),
            UpdateAction::MoveStop(p) => format!("moved stop to {p}"),
            UpdateAction::ClosePartial(pct) => format!("closed {pct}%"),
            UpdateAction::CloseAll => "closed".to_string(),
            UpdateAction::Cancel => "cancelled".to_string(),
            UpdateAction::SetTakeProfits(tps) => format!(
                "set take profit to {} (store only: brackets keep their target)",
                tps.first().map_or_else(String::new, ToString::to_string)
            ),
            UpdateAction::AddTakeProfit(p) => format!("added take profit {p} where none was set (store only)"),
            UpdateAction::SetEntry(_) => return "entry change noted (orders are already placed)".into(),
            UpdateAction::TakeProfitHit(Some(n)) => return format!("TP{n} hit noted"),
            UpdateAction::TakeProfitHit(None) => return "take profit hit noted".into(),
            UpdateAction::EntryFilled => return "entry filled noted".into(),
        };
        if self.informational && self.done == 0 && self.failed.is_empty() {
            return format!("{what}: nothing to change");
        }
        let trades = |n: usize| if n == 1 { "1 trade".to_string() } else { format!("{n} trades") };
        let mut text = format!("{what} on {}", trades(self.done));
        if let Some(first) = self.failed.first() {
            text.push_str(&format!(", {} failed: {first}", self.failed.len()));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_bodies_are_reparsed_from_their_message() {
        let parsed = reparse(r#"{"message":"EURUSD move SL to entry"}"#);
        assert_ne!(parsed.kind, MessageKind::Noise, "{parsed:?}");
        assert_eq!(reparse("gm").kind, MessageKind::Noise);
    }

    #[test]
    fn the_key_file_lives_beside_the_sqlite_database() {
        use crate::startup::data_dir;
        use std::path::PathBuf;
        assert_eq!(data_dir("sqlite:///var/lib/sp/signalpost.db?mode=rwc"), PathBuf::from("/var/lib/sp"));
        assert_eq!(data_dir("sqlite://data/sp.db"), PathBuf::from("data"));
        assert_eq!(data_dir("sqlite://signalpost.db"), PathBuf::from("."));
        assert_eq!(data_dir("postgres://u@db/x"), PathBuf::from("."));
    }

    #[test]
    fn tallies_say_what_was_done_and_the_first_failure() {
        let mut t = Tally::default();
        t.add(ActionResult::Done);
        t.add(ActionResult::Done);
        t.add(ActionResult::Failed("trade #3: broker down".into()));
        let price = Decimal::new(10850, 4);
        assert_eq!(
            t.describe(&UpdateAction::MoveStop(price)),
            "moved stop to 1.0850 on 2 trades, 1 failed: trade #3: broker down"
        );
        let mut one = Tally::default();
        one.add(ActionResult::Done);
        assert_eq!(one.describe(&UpdateAction::CloseAll), "closed on 1 trade");
    }
}

//! The scanner service: runs the reversal engine on every candle close of every (instrument, timeframe)
//! and stores a signal for each one that any user subscribes to.
//!
//! Every series' engine sees every candle, subscribed or not, so its indicators are warm the moment a user
//! subscribes. Subscriptions are read from the store at start and re-read off the candle path: when this
//! process writes settings or users (the store's settings generation, one atomic load per signal), when a
//! `SettingsChanged` event arrives from another process, and every `subscription_recheck` as a safety net.
//! Signals are stored with a dedup key (`engine:<symbol>:<timeframe>:<close time>`), so a restart
//! replaying the same candle, or a second scanner process, stores each signal once.
//!
//! On a live feed a series' engine is warmed from the candle store before its first candle of the run (the
//! last `warmup_from_store` stored candles before it), so after a restart, or when a pair joins the feed
//! mid-run, its indicators hold what a continuous run would hold and the vendor is asked only for the
//! candles the store lacks. Warm-up candles never produce signals.

use bus::{Bus, BusError, Event};
use chrono::{DateTime, Utc};
use domain::{
    Clock, Entry, Instrument, InstrumentRegistry, Price, Signal, SignalSource, Symbol, Timeframe, UserSettings,
};
use engine::reversal::{EngineSignal, ReversalModel, ReversalScanner};
use rust_decimal::{Decimal, prelude::FromPrimitive};
use std::collections::{HashMap, HashSet, hash_map};
use std::sync::Arc;
use store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SignalLevelsError {
    #[error("{what} {value} is not a usable price")]
    NotAPrice { what: &'static str, value: f64 },
    #[error(transparent)]
    Invalid(#[from] domain::SignalError),
}

fn to_price(what: &'static str, value: f64, places: u32) -> Result<Price, SignalLevelsError> {
    Decimal::from_f64(value)
        .map(|d| d.round_dp(places))
        .and_then(|d| Price::new(d).ok())
        .ok_or(SignalLevelsError::NotAPrice { what, value })
}

/// Turns an engine signal into a domain signal at the instrument's precision, validated.
pub fn to_signal(s: &EngineSignal, instrument: &Instrument, timeframe: Timeframe) -> Result<Signal, SignalLevelsError> {
    let places = instrument.price_precision;
    let signal = Signal {
        symbol: instrument.symbol.clone(),
        timeframe: Some(timeframe),
        side: s.side,
        entry: Entry::Price { price: to_price("entry", s.entry, places)? },
        stop_loss: Some(to_price("stop loss", s.stop_loss, places)?),
        take_profits: vec![to_price("take profit", s.take_profit, places)?],
        leverage: None,
        confidence: Decimal::from_f64(s.confidence).map(|d| d.round_dp(4)),
        source: SignalSource::Engine,
        model_version: Some(s.model_version.clone()),
        stage1_prob: Some(s.stage1_prob),
        stage2_prob: Some(s.stage2_prob),
        created_at: DateTime::from_timestamp(s.close_time, 0).unwrap_or_default(),
    };
    signal.validate()?;
    Ok(signal)
}

/// Stored candles a series reads before its first candle of a run: enough for the engine's exponential
/// indicators (MACD's 26-bar EMA, ADX's double smoothing) to settle to a continuous run's values. The same
/// as the Binance feed's vendor warm-up.
pub const DEFAULT_WARMUP_CANDLES: u32 = 300;

/// A fresh engine for a series, fed the last `count` stored candles that opened before `before`. A store
/// that cannot answer leaves the engine cold (logged): the feed's own backfill still warms it, later.
async fn warmed_scanner(
    store: &dyn Store,
    model: Arc<ReversalModel>,
    symbol: &Symbol,
    timeframe: Timeframe,
    before: DateTime<Utc>,
    count: u32,
) -> ReversalScanner {
    let mut scanner = ReversalScanner::new(model, timeframe.seconds());
    if count == 0 {
        return scanner;
    }
    // `recent_candles` includes its bound; candles open on whole seconds, so this excludes `before` itself.
    let until = before - chrono::Duration::seconds(1);
    match store.recent_candles(symbol, timeframe, until, count).await {
        Ok(candles) => {
            for candle in &candles {
                // Their signals were due (and handled) when those candles were live.
                let _ = scanner.on_bar(&engine::Bar::from(candle));
            }
            tracing::info!(%symbol, %timeframe, candles = candles.len(), "scanner warmed from the candle store");
        }
        Err(error) => tracing::warn!(%error, %symbol, %timeframe, "could not read stored candles; scanner starts cold"),
    }
    scanner
}

/// Which (instrument, timeframe) pairs any user with notifications on asked for.
#[derive(Debug, Default)]
struct Subscriptions {
    /// Timeframes subscribed to for every pair.
    all_pairs: HashSet<Timeframe>,
    pairs: HashSet<(Symbol, Timeframe)>,
}

impl Subscriptions {
    fn from_settings<'a>(settings: impl Iterator<Item = &'a UserSettings>) -> Subscriptions {
        let mut subs = Subscriptions::default();
        for s in settings.filter(|s| s.notifications_enabled) {
            let timeframes: Vec<Timeframe> =
                if s.enabled_timeframes.is_empty() { Timeframe::ALL.to_vec() } else { s.enabled_timeframes.clone() };
            for tf in timeframes {
                if s.preferred_pairs.is_empty() {
                    subs.all_pairs.insert(tf);
                } else {
                    for pair in &s.preferred_pairs {
                        subs.pairs.insert((pair.clone(), tf));
                    }
                }
            }
        }
        subs
    }

    fn wants(&self, symbol: &Symbol, timeframe: Timeframe) -> bool {
        self.all_pairs.contains(&timeframe) || self.pairs.contains(&(symbol.clone(), timeframe))
    }
}

pub struct ScannerService {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    model: Arc<ReversalModel>,
    scanners: HashMap<(Symbol, Timeframe), ReversalScanner>,
    subscriptions: Subscriptions,
    /// The store's settings generation loaded before `subscriptions` were read; `None`: never read, or
    /// known to be out of date.
    subscriptions_read_under: Option<u64>,
    /// How often the run loop re-reads subscriptions regardless, for changes no event announced (another
    /// process's write on a bus that does not carry `SettingsChanged`).
    pub subscription_recheck: std::time::Duration,
    pub signals_stored: Option<prometheus::IntCounter>,
    /// On a live feed, candles that closed longer ago than their timeframe (a start-up backfill) only warm
    /// the indicators: a signal on them would reach users hours late. `false` for a replay, whose whole
    /// history is in the past by design.
    pub warm_up_only_stale_candles: bool,
    /// Stored candles each series reads before its first candle ([`DEFAULT_WARMUP_CANDLES`] on a live feed);
    /// 0, the default: none, as for a replay, whose store may hold another run's candles.
    pub warmup_from_store: u32,
}

impl std::fmt::Debug for ScannerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannerService").field("series", &self.scanners.len()).finish_non_exhaustive()
    }
}

impl ScannerService {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, clock: Arc<dyn Clock>, model: Arc<ReversalModel>) -> Self {
        ScannerService {
            store,
            bus,
            clock,
            model,
            scanners: HashMap::new(),
            subscriptions: Subscriptions::default(),
            subscriptions_read_under: None,
            subscription_recheck: std::time::Duration::from_secs(60),
            signals_stored: None,
            warm_up_only_stale_candles: false,
            warmup_from_store: 0,
        }
    }

    /// Re-reads subscriptions if they may be out of date: never read, marked stale, or this process wrote
    /// settings or users since. Otherwise one atomic load, so a signal does not wait on the store for them.
    async fn refresh_subscriptions(&mut self) {
        // Loaded before the read: a write that lands during it bumps past this and is read next time.
        let generation = store::generations::Generations::now().settings;
        if self.subscriptions_read_under == Some(generation) {
            return;
        }
        match self.store.users_with_settings().await {
            Ok(users) => {
                self.subscriptions = Subscriptions::from_settings(users.iter().map(|(_, s)| s));
                self.subscriptions_read_under = Some(generation);
            }
            Err(error) => tracing::warn!(%error, "could not read subscriptions; keeping the last ones"),
        }
    }

    /// Marks subscriptions stale and re-reads them now, between candles.
    async fn reread_subscriptions(&mut self) {
        self.subscriptions_read_under = None;
        self.refresh_subscriptions().await;
    }

    fn is_stale(&self, candle: &domain::Candle, timeframe: Timeframe) -> bool {
        let age = self.clock.now() - candle.close_time(timeframe);
        age > chrono::Duration::seconds(timeframe.seconds())
    }

    /// Runs the engine on one closed candle; stores and announces the signal if someone subscribes to it.
    pub async fn on_candle(&mut self, symbol: &Symbol, timeframe: Timeframe, candle: &domain::Candle) {
        let Ok(instrument) = InstrumentRegistry::global().get(symbol.as_str()) else { return };
        // Stage times for the candle-to-signal latency (issue 7), logged at debug level.
        let started = std::time::Instant::now();
        let scanner = match self.scanners.entry((symbol.clone(), timeframe)) {
            hash_map::Entry::Occupied(entry) => entry.into_mut(),
            hash_map::Entry::Vacant(entry) => {
                let (model, count) = (self.model.clone(), self.warmup_from_store);
                entry.insert(warmed_scanner(self.store.as_ref(), model, symbol, timeframe, candle.time, count).await)
            }
        };
        let warmed = started.elapsed();
        let found = scanner.on_bar(&engine::Bar::from(candle));
        let scanned = started.elapsed();
        let Some(found) = found else {
            tracing::debug!(%symbol, %timeframe, time = %candle.time, ?warmed, ?scanned, "candle scanned");
            return;
        };
        if self.warm_up_only_stale_candles && self.is_stale(candle, timeframe) {
            tracing::debug!(%symbol, %timeframe, time = %candle.time, "signal on a backfilled candle not sent");
            return;
        }
        self.refresh_subscriptions().await;
        let refreshed = started.elapsed();
        if !self.subscriptions.wants(symbol, timeframe) {
            return;
        }
        let signal = match to_signal(&found, instrument, timeframe) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::debug!(%error, %symbol, %timeframe, "engine candidate with unusable levels skipped");
                return;
            }
        };
        let key = format!("engine:{symbol}:{timeframe}:{}", found.close_time);
        match self.store.insert_signal(&signal, Some(&key)).await {
            Ok((id, true)) => {
                let inserted = started.elapsed();
                if let Some(c) = &self.signals_stored {
                    c.inc();
                }
                tracing::info!(signal = %id, %symbol, %timeframe, side = %signal.side,
                    confidence = found.confidence, "engine signal stored");
                if let Err(error) = self.bus.publish(Event::SignalCreated { signal_id: id, signal }).await {
                    tracing::warn!(%error, "could not announce a signal; the router will find it in the store");
                }
                tracing::debug!(%symbol, %timeframe, time = %candle.time, ?warmed, ?scanned, ?refreshed, ?inserted,
                    published = ?started.elapsed(), "candle scanned and its signal announced");
            }
            Ok((_, false)) => {}
            Err(error) => tracing::error!(%error, %symbol, %timeframe, "could not store an engine signal"),
        }
    }

    /// Scans every candle close it is sent until the sender goes away or shutdown. Candles come over a
    /// bounded channel rather than the broadcast bus so that a slow store slows the feed instead of making the
    /// scanner skip candles, which would corrupt its indicators.
    ///
    /// Subscriptions are read before the first candle and re-read between candles (see the module docs), so
    /// the candle path only reads them after this process changed them.
    pub async fn run(mut self, mut candles: mpsc::Receiver<ClosedCandle>, shutdown: CancellationToken) {
        let mut settings_events = match self.bus.subscribe().await {
            Ok(events) => Some(events),
            Err(error) => {
                tracing::warn!(%error, "the scanner could not subscribe to settings events; relying on the periodic re-read");
                None
            }
        };
        self.refresh_subscriptions().await;
        let recheck = self.subscription_recheck.max(std::time::Duration::from_secs(1));
        let mut recheck_timer = tokio::time::interval_at(tokio::time::Instant::now() + recheck, recheck);
        recheck_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Bus events before candles: a settings change announced before a candle arrived applies to it.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = next_event(&mut settings_events) => match event {
                    Ok(Event::SettingsChanged { .. }) | Err(BusError::Lagged(_)) => self.reread_subscriptions().await,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "settings events stopped; relying on the periodic re-read");
                        settings_events = None;
                    }
                },
                next = candles.recv() => match next {
                    Some(c) => self.on_candle(&c.symbol, c.timeframe, &c.candle).await,
                    None => break,
                },
                _ = recheck_timer.tick() => self.reread_subscriptions().await,
            }
        }
    }
}

/// The next event of a subscription, or never when there is none.
async fn next_event(events: &mut Option<Box<dyn bus::Subscription>>) -> Result<Event, BusError> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

/// A candle close on its way to the scanner.
#[derive(Debug, Clone)]
pub struct ClosedCandle {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub candle: domain::Candle,
}

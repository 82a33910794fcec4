//! What every market feed speaks, replayed or live: the events it sends, the trait it implements, and how
//! it reports the end of its run.
//!
//! A feed pushes [`FeedEvent`]s into a bounded tokio channel, so a slow consumer slows the feed instead of
//! letting memory grow, and stops when its `CancellationToken` is cancelled or the receiver goes away.
//! Either is a clean stop, not an error: shutting down is what the app asked for, and a dropped receiver
//! means nobody is listening any more.

use chrono::{DateTime, Utc};
use domain::{Candle, Symbol, Tick, Timeframe};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One thing that happened in a market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A price update; replays mark ticks they invented with `synthetic_from`.
    Tick(Tick),
    /// A candle is final: the scanner runs on this.
    CandleClosed { symbol: Symbol, timeframe: Timeframe, candle: Candle },
}

impl FeedEvent {
    /// When the event happened in market time: a tick's time, or the close time of a closed candle.
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            FeedEvent::Tick(tick) => tick.time,
            FeedEvent::CandleClosed { timeframe, candle, .. } => candle.close_time(*timeframe),
        }
    }

    pub fn symbol(&self) -> &Symbol {
        match self {
            FeedEvent::Tick(tick) => &tick.symbol,
            FeedEvent::CandleClosed { symbol, .. } => symbol,
        }
    }
}

/// Why a feed's run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnd {
    /// The feed had nothing more to send (the end of a replay).
    Finished,
    /// The shutdown token was cancelled.
    Shutdown,
    /// The receiving end of the channel was dropped.
    ReceiverDropped,
}

/// What a feed sent before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStats {
    /// `CandleClosed` events delivered.
    pub candles: u64,
    /// `Tick` events delivered.
    pub ticks: u64,
    pub end: FeedEnd,
}

/// The replay's name for its statistics.
pub type ReplayStats = FeedStats;

/// Why a feed could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedError {
    #[error("replay speed must be a positive number of candles per second, got {0}")]
    BadSpeed(f64),
    #[error("series {symbol} {timeframe}: {problem}")]
    BadSeries { symbol: Symbol, timeframe: Timeframe, problem: String },
    /// A live source failed (connection, protocol, authentication); the message names the feed.
    #[error("{feed}: {message}")]
    Source { feed: String, message: String },
}

/// A source of market events. `ReplayFeed` is one; live exchange and broker feeds implement it too, so the
/// app can run whichever the configuration picks.
#[async_trait::async_trait]
pub trait MarketFeed: Send + std::fmt::Debug {
    /// A short name for logs and errors (`replay`, `binance`).
    fn name(&self) -> &str;

    /// Sends events until the feed ends, `shutdown` is cancelled or `tx`'s receiver is dropped.
    async fn run(
        self: Box<Self>,
        tx: mpsc::Sender<FeedEvent>,
        shutdown: CancellationToken,
    ) -> Result<FeedStats, FeedError>;
}

/// Hooks a live feed calls as it runs; the app implements them for its Prometheus registry and for the feed
/// health `/healthz` and the dashboard report. Every method has a default so a feed or an observer only deals
/// with what it knows about.
pub trait FeedObserver: Send + Sync + std::fmt::Debug {
    /// The feed is receiving from its vendor again (a stream opened, or a poll answered).
    fn connected(&self, _feed: &str) {}
    /// The feed lost its vendor (a dropped connection, a failed poll, a rate-limit wait) and is retrying;
    /// `problem` says why, for the health report.
    fn disconnected(&self, _feed: &str, _problem: &str) {}
    /// A connection was lost (or retired at its lifetime limit) and a new one is being opened.
    fn reconnected(&self, _feed: &str) {}
    /// Candles missed while disconnected (or skipped by the stream) were delivered from REST.
    fn gap_filled(&self, _feed: &str, _candles: u64) {}
    /// From a live candle's close time to its delivery.
    fn candle_lag(&self, _feed: &str, _lag: Duration) {}
}

/// The (instrument, timeframe) pairs a live feed delivers closed candles for, as the app last computed them
/// from users' settings. When a new set is sent, a feed starts on the pairs it gained (backfilled as at
/// start) and stops the ones it lost, without a restart.
pub type SubscriptionUpdates = tokio::sync::watch::Receiver<Vec<(Symbol, Timeframe)>>;

/// Where a live feed resumes a pair it starts on mid-run (a pair gained through [`SubscriptionUpdates`]):
/// the open time of the newest candle the app already stores, so the backfill asks the vendor only for what
/// is missing. The app implements it on its candle store.
#[async_trait::async_trait]
pub trait ResumePoints: Send + Sync + std::fmt::Debug {
    /// `Ok(None)`: nothing stored, the feed backfills its usual warm-up. An error is logged by the feed, which
    /// then backfills as if nothing were stored.
    async fn last_stored(&self, symbol: &Symbol, timeframe: Timeframe) -> Result<Option<DateTime<Utc>>, String>;
}

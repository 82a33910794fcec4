//! What every market feed speaks, replayed or live: the events it sends, the trait it implements, and how
//! it reports the end of its run.
//!
//! A feed pushes [`FeedEvent`]s into a bounded tokio channel, so a slow consumer slows the feed instead of
//! letting memory grow, and stops when its `CancellationToken` is cancelled or the receiver goes away.
//! Either is a clean stop, not an error: shutting down is what the app asked for, and a dropped receiver
//! means nobody is listening any more.

use chrono::{DateTime, Utc};
use domain::{Candle, Symbol, Tick, Timeframe};
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

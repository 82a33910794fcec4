//! Market data for Signalpost: reading candle and tick files, resampling candles into coarser timeframes,
//! and feeds that deliver ticks and closed candles to the rest of the system. The replay feed plays
//! recorded history (the bundled data by default) through the same [`MarketFeed`] trait live exchange feeds
//! will implement, so the scanner and the position monitor cannot tell the difference.
//!
//! Files are validated on the way in: a bad row is an error naming the file and line, never a silently
//! skipped bar, because a backtest or a signal computed on quietly damaged data is worse than none.

pub mod binance;
pub mod bundled;
pub mod candles;
pub mod contract;
pub mod error;
pub mod feed;
mod input;
pub mod oanda;
pub mod replay;
pub mod resample;
pub mod sequencer;
pub mod ticks;
pub mod timestamp;
pub mod twelvedata;

pub use binance::{BinanceFeed, BinanceFeedConfig, BinanceMarket, TickSource};
pub use bundled::{BUNDLED_FILES, BundledFile, bundled_series};
pub use candles::{
    CandleFile, Gap, LoadOptions, PriceSide, UnknownPriceSide, find_gaps, infer_timeframe, load_candle_file,
    load_candles, parse_candle_file, parse_candles,
};
pub use error::{HeaderProblem, LoadError, RowProblem};
pub use feed::{
    FeedEnd, FeedError, FeedEvent, FeedObserver, FeedStats, MarketFeed, ReplayStats, ResumePoints, SubscriptionUpdates,
};
pub use oanda::{OandaFeed, OandaFeedConfig, OandaPrice};
pub use replay::{ReplayEvents, ReplayFeed, ReplayGate, ReplaySeries, ReplaySpeed, synthetic_ticks};
pub use resample::{Emitted, Resampler, resample};
pub use sequencer::{CandleSequencer, Sequence};
pub use ticks::{load_ticks, parse_ticks};
pub use timestamp::{TimeParser, parse_timestamp};
/// The shutdown signal [`MarketFeed::run`] takes, so code that runs a feed needs no `tokio-util` of its own.
pub use tokio_util::sync::CancellationToken;
pub use twelvedata::{CreditUsage, TwelveDataFeed, TwelveDataFeedConfig, TwelveDataKey};

#[cfg(test)]
mod tests {
    /// The app carries these errors across tasks and into `anyhow`.
    #[test]
    fn errors_and_events_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<crate::LoadError>();
        send_sync::<crate::FeedError>();
        send_sync::<crate::FeedEvent>();
        send_sync::<crate::ReplayFeed>();
    }
}

//! The candle writer: every closed candle (the feed's and the coarser ones resampled from them) is stored,
//! so any process can show recent history (Details' chart and indicators) and a restart can backfill only
//! what it missed.
//!
//! The market pump must not wait for the database on every candle, so it hands candles to this task through
//! a bounded channel, and the task writes them in batches: it takes what is waiting, up to [`BATCH`] candles,
//! and writes that as one transaction per series. When candles arrive slower than the database writes, each
//! candle is written as soon as it arrives (the channel is idle); when they arrive faster (an unpaced
//! replay), batches fill up and the cost per candle falls. No timer is involved, so nothing waits for one.
//!
//! The channel is bounded so a database that cannot keep up slows the pump rather than filling memory;
//! nothing is dropped. A batch the store refuses is logged and skipped: the candles are market data that a
//! backfill can fetch again, and one bad write must not stop the feed.

use domain::{Candle, Symbol, Timeframe};
use std::collections::HashMap;
use std::sync::Arc;
use store::Store;
use tokio::sync::{mpsc, oneshot};

/// Candles the pump may run ahead of the writer.
pub const CHANNEL_CAPACITY: usize = 8192;
/// The most candles written in one go.
pub const BATCH: usize = 1024;

/// One closed candle of one series, on its way to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCandle {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    pub candle: Candle,
}

/// A running writer: send candles to `sender`; `finished` resolves once the sender (and every clone) is
/// dropped and the last batch was written.
#[derive(Debug)]
pub struct CandleWriter {
    pub sender: mpsc::Sender<StoredCandle>,
    pub finished: oneshot::Receiver<WriterStats>,
}

/// What a writer did, reported when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub candles: u64,
    pub batches: u64,
    pub failed_batches: u64,
}

/// Starts the writer task.
pub fn spawn(store: Arc<dyn Store>) -> CandleWriter {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let (done, finished) = oneshot::channel();
    tokio::spawn(async move {
        let stats = run(store, receiver, BATCH).await;
        tracing::debug!(?stats, "candle writer stopped");
        let _ = done.send(stats);
    });
    CandleWriter { sender, finished }
}

/// Writes what arrives on `candles` in batches of at most `batch` until the channel closes.
pub async fn run(store: Arc<dyn Store>, mut candles: mpsc::Receiver<StoredCandle>, batch: usize) -> WriterStats {
    let batch = batch.max(1);
    let mut stats = WriterStats::default();
    let mut pending = Vec::with_capacity(batch);
    while let Some(first) = candles.recv().await {
        pending.push(first);
        // Whatever else is already waiting joins this batch; an empty channel means write now.
        while pending.len() < batch {
            match candles.try_recv() {
                Ok(candle) => pending.push(candle),
                Err(_) => break,
            }
        }
        write(store.as_ref(), &mut pending, &mut stats).await;
    }
    stats
}

async fn write(store: &dyn Store, pending: &mut Vec<StoredCandle>, stats: &mut WriterStats) {
    // One call per series, in arrival order within each.
    let mut series: HashMap<(Symbol, Timeframe), Vec<Candle>> = HashMap::new();
    for StoredCandle { symbol, timeframe, candle } in pending.drain(..) {
        series.entry((symbol, timeframe)).or_default().push(candle);
    }
    for ((symbol, timeframe), candles) in series {
        stats.batches += 1;
        match store.save_candles(&symbol, timeframe, &candles).await {
            Ok(()) => stats.candles += candles.len() as u64,
            Err(error) => {
                stats.failed_batches += 1;
                tracing::warn!(%error, %symbol, %timeframe, count = candles.len(), "could not store candles");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use rust_decimal_macros::dec;

    fn candle(hour: i64) -> Candle {
        Candle {
            time: Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap() + Duration::hours(hour),
            open: dec!(1.1),
            high: dec!(1.2),
            low: dec!(1.0),
            close: dec!(1.15),
            volume: dec!(0),
        }
    }

    #[tokio::test]
    async fn everything_sent_is_stored_in_batches_and_bad_batches_are_skipped() {
        let store = store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let (tx, rx) = mpsc::channel(4096);
        let eurusd = Symbol::normalize("EURUSD");
        // Queued before the writer starts, so batches are full: 1000 candles in batches of 300.
        for hour in 0..1000 {
            tx.send(StoredCandle { symbol: eurusd.clone(), timeframe: Timeframe::H1, candle: candle(hour) })
                .await
                .unwrap();
        }
        let mut broken = candle(5);
        broken.low = dec!(2);
        tx.send(StoredCandle { symbol: Symbol::normalize("GBPUSD"), timeframe: Timeframe::H4, candle: broken })
            .await
            .unwrap();
        drop(tx);
        let stats = run(store.clone(), rx, 300).await;
        assert_eq!(stats.candles, 1000);
        assert_eq!(stats.failed_batches, 1);
        assert!(stats.batches <= 5, "{stats:?}");
        let far = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let stored = store.recent_candles(&eurusd, Timeframe::H1, far, 5000).await.unwrap();
        assert_eq!(stored.len(), 1000);
        assert_eq!(stored.last().unwrap().time, candle(999).time);
    }
}

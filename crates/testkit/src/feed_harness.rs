//! Running a live market feed in a test: [`FeedCounts`] counts what the feed tells its [`FeedObserver`], and
//! [`RunningFeed`] spawns the feed, hands out its closed candles one by one (ticks skipped, or read with
//! [`RunningFeed::next`]) and stops it, returning whatever was still queued so a test can assert nothing was.
//!
//! Every wait is bounded by [`WAIT`]: a feed that never sends what a test expects fails the test with a
//! message instead of hanging it.

use domain::{Candle, Symbol, Timeframe};
use market::{CancellationToken, FeedEnd, FeedError, FeedEvent, FeedObserver, FeedStats, MarketFeed};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long [`RunningFeed`] waits for an event before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A [`FeedObserver`] counting each hook: how often the feed connected, lost its vendor, reconnected, how many
/// candles it filled a gap with, and how many candle lags it reported.
#[derive(Debug, Default)]
pub struct FeedCounts {
    pub connected: AtomicU64,
    pub disconnected: AtomicU64,
    pub reconnects: AtomicU64,
    /// Candles, not calls: the sum of every `gap_filled` count.
    pub gaps: AtomicU64,
    pub lags: AtomicU64,
}

impl FeedCounts {
    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::SeqCst)
    }

    pub fn disconnected(&self) -> u64 {
        self.disconnected.load(Ordering::SeqCst)
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::SeqCst)
    }

    pub fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::SeqCst)
    }

    pub fn lags(&self) -> u64 {
        self.lags.load(Ordering::SeqCst)
    }
}

impl FeedObserver for FeedCounts {
    fn connected(&self, _feed: &str) {
        self.connected.fetch_add(1, Ordering::SeqCst);
    }
    fn disconnected(&self, _feed: &str, _problem: &str) {
        self.disconnected.fetch_add(1, Ordering::SeqCst);
    }
    fn reconnected(&self, _feed: &str) {
        self.reconnects.fetch_add(1, Ordering::SeqCst);
    }
    fn gap_filled(&self, _feed: &str, candles: u64) {
        self.gaps.fetch_add(candles, Ordering::SeqCst);
    }
    fn candle_lag(&self, _feed: &str, _lag: Duration) {
        self.lags.fetch_add(1, Ordering::SeqCst);
    }
}

/// What a test makes of a closed candle: an index into its fixtures, say, after checking the prices are the
/// ones the fake was given. It may panic: that is the test failing.
pub type CandleReader<T> = fn(Symbol, Timeframe, Candle) -> T;

/// A feed spawned on the test's runtime, sending into a channel the test reads.
#[derive(Debug)]
pub struct RunningFeed<T> {
    /// The feed's events; a test may read it directly (`try_recv` to assert nothing is queued).
    pub rx: mpsc::Receiver<FeedEvent>,
    /// What the feed reported to its observer; see [`RunningFeed::spawn`].
    pub counts: Arc<FeedCounts>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<FeedStats, FeedError>>,
    read: CandleReader<T>,
}

impl<T> RunningFeed<T> {
    /// Runs `feed` (built with `counts` as its observer, so the test can read what it reported) until
    /// [`RunningFeed::stop`]; its closed candles come back through `read`.
    pub fn spawn<F: MarketFeed + 'static>(feed: F, counts: Arc<FeedCounts>, read: CandleReader<T>) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(Box::new(feed).run(tx, shutdown.clone()));
        RunningFeed { rx, counts, shutdown, task, read }
    }

    /// The next event, ticks included.
    pub async fn next(&mut self) -> FeedEvent {
        tokio::time::timeout(WAIT, self.rx.recv()).await.expect("an event in time").expect("the feed is running")
    }

    /// The next closed candle, skipping ticks.
    pub async fn next_candle(&mut self) -> T {
        loop {
            if let FeedEvent::CandleClosed { symbol, timeframe, candle } = self.next().await {
                return (self.read)(symbol, timeframe, candle);
            }
        }
    }

    /// The next `n` closed candles, skipping ticks.
    pub async fn candles(&mut self, n: usize) -> Vec<T> {
        let mut got = Vec::with_capacity(n);
        for _ in 0..n {
            got.push(self.next_candle().await);
        }
        got
    }

    /// Whether the feed's run has ended (an error, or a stop).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the feed to end on its own with an error and returns it: for a feed expected to refuse to run.
    pub async fn failure(self) -> FeedError {
        match tokio::time::timeout(WAIT, self.task).await {
            Ok(Ok(Err(error))) => error,
            Ok(Ok(Ok(stats))) => panic!("the feed ended without an error: {stats:?}"),
            Ok(Err(join)) => panic!("the feed task failed: {join}"),
            Err(_) => panic!("the feed did not fail within {WAIT:?}"),
        }
    }

    /// Stops the feed, which must end cleanly on the shutdown, and returns the closed candles still queued:
    /// a test that has read everything it expected asserts there are none.
    pub async fn stop(mut self) -> Vec<T> {
        self.shutdown.cancel();
        let stats = self.task.await.expect("the feed task did not panic").expect("the feed ended without an error");
        assert_eq!(stats.end, FeedEnd::Shutdown);
        let mut left = Vec::new();
        while let Ok(event) = self.rx.try_recv() {
            if let FeedEvent::CandleClosed { symbol, timeframe, candle } = event {
                left.push((self.read)(symbol, timeframe, candle));
            }
        }
        left
    }
}

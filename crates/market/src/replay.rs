//! Replaying recorded candles (and ticks, where we have them) as if they were a live market.
//!
//! The embedded default of `signalpost serve` and every end-to-end test run on this feed, so it behaves like
//! a live one: for each candle it first sends the ticks inside it, then `CandleClosed` at the candle's close
//! time, and several series are merged so that events come in market-time order across all of them.
//!
//! Ticks come from the series' tick data where some fall inside the candle. Otherwise four synthetic ticks
//! walk the candle's range in the order a bar most plausibly traded: a bullish bar open → low → high →
//! close, a bearish one open → high → low → close. They sit at the open time, a third and two thirds of the
//! way in, and one millisecond before the close, with bid = ask = price (rounded to the eight places a
//! [`Price`] holds) and `synthetic_from` set, so the position monitor can apply the conservative rule when a
//! bar touched both a stop loss and a take profit.
//!
//! Pacing is in market time: at `CandlesPerSecond(r)`, one candle of the finest series' timeframe passes every
//! `1/r` seconds and ticks are spread in between. A market closure (a weekend, a holiday) counts as at most
//! one candle, so replays do not idle for the length of a weekend. Sleeping goes through `tokio::time`, so
//! tests run paced replays instantly with paused time.

use crate::feed::{FeedEnd, FeedError, FeedEvent, FeedStats, MarketFeed, ReplayStats};
use chrono::{DateTime, Utc};
use domain::price::MAX_PRICE_SCALE;
use domain::{Candle, CandleRange, Price, Symbol, Tick, Timeframe};
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::iter::Peekable;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One instrument's history at one timeframe, with optional real ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySeries {
    pub symbol: Symbol,
    pub timeframe: Timeframe,
    /// In strictly increasing time, as the loaders return them.
    pub candles: Vec<Candle>,
    /// Real ticks of `symbol` in time order; candles they do not cover get synthetic ticks.
    pub ticks: Option<Vec<Tick>>,
}

impl ReplaySeries {
    pub fn new(symbol: Symbol, timeframe: Timeframe, candles: Vec<Candle>) -> Self {
        ReplaySeries { symbol, timeframe, candles, ticks: None }
    }

    pub fn with_ticks(mut self, ticks: Vec<Tick>) -> Self {
        self.ticks = Some(ticks);
        self
    }

    fn check(&self) -> Result<(), FeedError> {
        let bad =
            |problem: String| FeedError::BadSeries { symbol: self.symbol.clone(), timeframe: self.timeframe, problem };
        for (i, candle) in self.candles.iter().enumerate() {
            candle.validate().map_err(|e| bad(format!("candle {i}: {e}")))?;
            // With the OHLC invariants holding, these two bounds make every synthetic tick a valid Price.
            for extreme in [candle.low, candle.high] {
                Price::new(extreme.round_dp(MAX_PRICE_SCALE)).map_err(|e| bad(format!("candle {i}: {e}")))?;
            }
            if i > 0 && self.candles[i - 1].time >= candle.time {
                return Err(bad(format!(
                    "candle {i} does not come after candle {}: candles must be in strictly increasing time",
                    i - 1
                )));
            }
        }
        let ticks = self.ticks.as_deref().unwrap_or_default();
        if let Some((i, tick)) = ticks.iter().enumerate().find(|(_, t)| t.symbol != self.symbol) {
            return Err(bad(format!("tick {i} is for {}", tick.symbol)));
        }
        if let Some(i) = ticks.windows(2).position(|pair| pair[0].time > pair[1].time) {
            return Err(bad(format!("tick {} is earlier than tick {i}", i + 1)));
        }
        Ok(())
    }
}

/// How fast a replay runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReplaySpeed {
    /// As fast as the receiver takes events.
    #[default]
    Unpaced,
    /// This many candles of the finest series per second of wall-clock time.
    CandlesPerSecond(f64),
}

/// Holds a replay back at a point in market time until its holder lets it go further.
///
/// The replay sends an event only once the gate is open up to that event's time, so a test (or a
/// demonstration) can stop the market right after a signal, act on it, and then let the market run on to the
/// trade's take profit, in one process and without racing a paced replay against the wall clock.
#[derive(Debug, Clone)]
pub struct ReplayGate(std::sync::Arc<watch::Sender<GateLimit>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateLimit {
    Until(DateTime<Utc>),
    Open,
}

impl GateLimit {
    fn admits(self, time: DateTime<Utc>) -> bool {
        match self {
            GateLimit::Until(until) => time <= until,
            GateLimit::Open => true,
        }
    }
}

/// Two gates are equal when they are the same gate, so configurations holding one still compare.
impl PartialEq for ReplayGate {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl ReplayGate {
    /// A gate that lets nothing through yet.
    pub fn closed() -> Self {
        ReplayGate(std::sync::Arc::new(watch::Sender::new(GateLimit::Until(DateTime::<Utc>::MIN_UTC))))
    }

    /// Lets through every event at or before `until`, market time. Moving the limit back holds nothing back
    /// that has already passed.
    pub fn open_until(&self, until: DateTime<Utc>) {
        self.0.send_replace(GateLimit::Until(until));
    }

    /// Lets the rest of the replay through.
    pub fn open(&self) {
        self.0.send_replace(GateLimit::Open);
    }

    async fn admit(&self, time: DateTime<Utc>) {
        let mut limit = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = limit.wait_for(|limit| limit.admits(time)).await;
    }
}

/// A [`MarketFeed`] replaying recorded series.
#[derive(Clone)]
pub struct ReplayFeed {
    name: String,
    series: Vec<ReplaySeries>,
    speed: ReplaySpeed,
    start_at: Option<DateTime<Utc>>,
    gate: Option<ReplayGate>,
}

impl ReplayFeed {
    /// An unpaced replay of `series`, from their first candles.
    pub fn new(series: Vec<ReplaySeries>) -> Self {
        ReplayFeed { name: "replay".to_string(), series, speed: ReplaySpeed::Unpaced, start_at: None, gate: None }
    }

    pub fn with_speed(mut self, speed: ReplaySpeed) -> Self {
        self.speed = speed;
        self
    }

    /// Skips candles that open before `start_at` (and their ticks).
    pub fn with_start_at(mut self, start_at: Option<DateTime<Utc>>) -> Self {
        self.start_at = start_at;
        self
    }

    /// Holds each event back until `gate` admits its time.
    pub fn with_gate(mut self, gate: Option<ReplayGate>) -> Self {
        self.gate = gate;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn series(&self) -> &[ReplaySeries] {
        &self.series
    }

    /// The replay's events in order, without pacing or a runtime: what the backtester walks.
    pub fn events(self) -> Result<ReplayEvents, FeedError> {
        for series in &self.series {
            series.check()?;
        }
        let start_at = self.start_at;
        Ok(ReplayEvents { cursors: self.series.into_iter().map(|s| Cursor::new(s, start_at)).collect() })
    }

    /// Sends every event to `tx`, paced as configured, until the replay ends, `shutdown` is cancelled or
    /// the receiver is dropped.
    pub async fn run(self, tx: mpsc::Sender<FeedEvent>, shutdown: CancellationToken) -> Result<ReplayStats, FeedError> {
        let finest = self.series.iter().map(|s| s.timeframe).min();
        let mut pacer = match (self.speed, finest) {
            (ReplaySpeed::CandlesPerSecond(rate), _) if !(rate.is_finite() && rate > 0.0) => {
                return Err(FeedError::BadSpeed(rate));
            }
            (ReplaySpeed::CandlesPerSecond(rate), Some(tf)) => Some(Pacer::new(rate, tf)),
            _ => None,
        };
        let name = self.name.clone();
        let gate = self.gate.clone();
        let mut stats = FeedStats { candles: 0, ticks: 0, end: FeedEnd::Finished };
        let stopped = |mut stats: FeedStats, end| {
            stats.end = end;
            tracing::debug!(
                feed = %name,
                candles = stats.candles,
                ticks = stats.ticks,
                ?end,
                "replay stopped"
            );
            Ok(stats)
        };
        for event in self.events()? {
            if let Some(gate) = &gate {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return stopped(stats, FeedEnd::Shutdown),
                    () = tx.closed() => return stopped(stats, FeedEnd::ReceiverDropped),
                    () = gate.admit(event.time()) => {}
                }
            }
            if let Some(pacer) = pacer.as_mut() {
                let deadline = pacer.deadline(event.time());
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return stopped(stats, FeedEnd::Shutdown),
                    () = tx.closed() => return stopped(stats, FeedEnd::ReceiverDropped),
                    () = sleep_until(deadline) => {}
                }
            }
            let is_tick = matches!(event, FeedEvent::Tick(_));
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return stopped(stats, FeedEnd::Shutdown),
                sent = tx.send(event) => {
                    if sent.is_err() {
                        return stopped(stats, FeedEnd::ReceiverDropped);
                    }
                }
            }
            if is_tick {
                stats.ticks += 1;
            } else {
                stats.candles += 1;
            }
        }
        stopped(stats, FeedEnd::Finished)
    }
}

/// Summarises the series: a feed is logged at start-up, and 74,000 candles do not belong in a log line.
impl std::fmt::Debug for ReplayFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let series: Vec<_> = self
            .series
            .iter()
            .map(|s| {
                let ticks = s.ticks.as_ref().map_or(0, Vec::len);
                format!("{} {} ({} candles, {ticks} ticks)", s.symbol, s.timeframe, s.candles.len())
            })
            .collect();
        f.debug_struct("ReplayFeed")
            .field("name", &self.name)
            .field("series", &series)
            .field("speed", &self.speed)
            .field("start_at", &self.start_at)
            .field("gated", &self.gate.is_some())
            .finish()
    }
}

#[async_trait::async_trait]
impl MarketFeed for ReplayFeed {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        self: Box<Self>,
        tx: mpsc::Sender<FeedEvent>,
        shutdown: CancellationToken,
    ) -> Result<FeedStats, FeedError> {
        ReplayFeed::run(*self, tx, shutdown).await
    }
}

/// Sleeps until `deadline`; None is a deadline too far away to represent, so it never comes.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Maps market time to wall-clock deadlines.
#[derive(Debug)]
struct Pacer {
    started: Option<Instant>,
    /// Wall-clock seconds per second of market time.
    scale: f64,
    /// The longest stretch of market time that counts; closures beyond it are skipped.
    cap: chrono::Duration,
    elapsed_secs: f64,
    last: Option<DateTime<Utc>>,
}

impl Pacer {
    fn new(candles_per_second: f64, finest: Timeframe) -> Self {
        Pacer {
            started: None,
            scale: 1.0 / (candles_per_second * finest.seconds() as f64),
            cap: finest.duration(),
            elapsed_secs: 0.0,
            last: None,
        }
    }

    fn deadline(&mut self, market_time: DateTime<Utc>) -> Option<Instant> {
        let started = *self.started.get_or_insert_with(Instant::now);
        if let Some(last) = self.last {
            let step = (market_time - last).clamp(chrono::Duration::zero(), self.cap);
            let step_secs = step.num_microseconds().unwrap_or(0) as f64 / 1e6;
            self.elapsed_secs += step_secs * self.scale;
        }
        self.last = Some(market_time);
        started.checked_add(Duration::try_from_secs_f64(self.elapsed_secs).ok()?)
    }
}

/// The events of a replay in market-time order; see [`ReplayFeed::events`].
pub struct ReplayEvents {
    cursors: Vec<Cursor>,
}

impl std::fmt::Debug for ReplayEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remaining: Vec<_> = self
            .cursors
            .iter()
            .map(|c| format!("{} {}: {} candles left", c.symbol, c.timeframe, c.candles.len()))
            .collect();
        f.debug_struct("ReplayEvents").field("series", &remaining).finish()
    }
}

impl Iterator for ReplayEvents {
    type Item = FeedEvent;

    fn next(&mut self) -> Option<FeedEvent> {
        // Few series, so a linear scan beats a heap. At equal times a close goes before a tick, as within
        // one series the close of a bar comes before the first tick of the next; then series order decides.
        let mut best: Option<(usize, (DateTime<Utc>, bool))> = None;
        for (i, cursor) in self.cursors.iter_mut().enumerate() {
            if let Some(key) = cursor.front_key()
                && best.is_none_or(|(_, best_key)| key < best_key)
            {
                best = Some((i, key));
            }
        }
        let (i, _) = best?;
        self.cursors[i].pending.pop_front()
    }
}

/// One series' position in the replay.
struct Cursor {
    symbol: Symbol,
    timeframe: Timeframe,
    candles: std::vec::IntoIter<Candle>,
    ticks: Option<Peekable<std::vec::IntoIter<Tick>>>,
    start_at: Option<DateTime<Utc>>,
    /// The current candle's events not yet sent.
    pending: VecDeque<FeedEvent>,
}

impl Cursor {
    fn new(series: ReplaySeries, start_at: Option<DateTime<Utc>>) -> Self {
        Cursor {
            symbol: series.symbol,
            timeframe: series.timeframe,
            candles: series.candles.into_iter(),
            ticks: series.ticks.map(|t| t.into_iter().peekable()),
            start_at,
            pending: VecDeque::new(),
        }
    }

    /// The (time, is-a-tick) of the next event, loading the next candle when needed.
    fn front_key(&mut self) -> Option<(DateTime<Utc>, bool)> {
        if self.pending.is_empty() {
            self.load_next_candle()?;
        }
        self.pending.front().map(|e| (e.time(), matches!(e, FeedEvent::Tick(_))))
    }

    fn load_next_candle(&mut self) -> Option<()> {
        let candle = loop {
            let candle = self.candles.next()?;
            if self.start_at.is_none_or(|start| candle.time >= start) {
                break candle;
            }
        };
        let close = candle.close_time(self.timeframe);
        if let Some(ticks) = self.ticks.as_mut() {
            // Ticks before this candle fall in a gap or before the start: nothing to attach them to.
            while ticks.next_if(|t| t.time < candle.time).is_some() {}
            while let Some(tick) = ticks.next_if(|t| t.time < close) {
                self.pending.push_back(FeedEvent::Tick(tick));
            }
        }
        if self.pending.is_empty() {
            for tick in synthetic_ticks(&self.symbol, self.timeframe, &candle) {
                self.pending.push_back(FeedEvent::Tick(tick));
            }
        }
        self.pending.push_back(FeedEvent::CandleClosed {
            symbol: self.symbol.clone(),
            timeframe: self.timeframe,
            candle,
        });
        Some(())
    }
}

/// The four ticks a candle most plausibly traded through; see the module docs.
pub fn synthetic_ticks(symbol: &Symbol, timeframe: Timeframe, candle: &Candle) -> [Tick; 4] {
    let path = if candle.is_bullish() {
        [candle.open, candle.low, candle.high, candle.close]
    } else {
        [candle.open, candle.high, candle.low, candle.close]
    };
    let span_ms = timeframe.seconds() * 1000;
    let offsets_ms = [0, span_ms / 3, span_ms * 2 / 3, span_ms - 1];
    let range = CandleRange { open: candle.open, high: candle.high, low: candle.low };
    std::array::from_fn(|i| {
        let price = tick_price(path[i]);
        Tick {
            symbol: symbol.clone(),
            time: candle.time + chrono::Duration::milliseconds(offsets_ms[i]),
            bid: price,
            ask: price,
            synthetic_from: Some(range),
        }
    })
}

fn tick_price(value: Decimal) -> Price {
    Price::new(value.round_dp(MAX_PRICE_SCALE))
        .expect("candle prices lie between a low and high that ReplaySeries::check proved are valid Prices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn eurusd() -> Symbol {
        Symbol::normalize("EURUSD")
    }

    fn candle(h: u32, o: Decimal, hi: Decimal, lo: Decimal, c: Decimal) -> Candle {
        Candle {
            time: Utc.with_ymd_and_hms(2024, 1, 2, h, 0, 0).unwrap(),
            open: o,
            high: hi,
            low: lo,
            close: c,
            volume: dec!(0),
        }
    }

    fn prices(events: &[FeedEvent]) -> Vec<Decimal> {
        events
            .iter()
            .filter_map(|e| match e {
                FeedEvent::Tick(t) => Some(t.bid.value()),
                FeedEvent::CandleClosed { .. } => None,
            })
            .collect()
    }

    #[test]
    fn synthetic_ticks_follow_the_candle_direction() {
        let up = candle(0, dec!(1.1), dec!(1.3), dec!(1.0), dec!(1.2));
        let down = candle(1, dec!(1.2), dec!(1.3), dec!(1.0), dec!(1.1));
        let series = ReplaySeries::new(eurusd(), Timeframe::H1, vec![up.clone(), down.clone()]);
        let events: Vec<_> = ReplayFeed::new(vec![series]).events().unwrap().collect();
        assert_eq!(events.len(), 10);
        assert_eq!(prices(&events[..5]), vec![dec!(1.1), dec!(1.0), dec!(1.3), dec!(1.2)]);
        assert_eq!(prices(&events[5..]), vec![dec!(1.2), dec!(1.3), dec!(1.0), dec!(1.1)]);
        let times: Vec<_> = events.iter().map(FeedEvent::time).collect();
        let h = |m: i64| up.time + chrono::Duration::milliseconds(m);
        assert_eq!(&times[..5], &[h(0), h(1_200_000), h(2_400_000), h(3_599_999), h(3_600_000)]);
        assert!(matches!(&events[4], FeedEvent::CandleClosed { candle, .. } if *candle == up));
        for e in &events {
            if let FeedEvent::Tick(t) = e {
                assert_eq!(t.bid, t.ask);
                assert!(t.synthetic_from.is_some());
            }
        }
    }

    #[test]
    fn prices_finer_than_a_price_holds_are_rounded() {
        let c = candle(0, dec!(0.099469990000000001), dec!(0.1), dec!(0.09), dec!(0.095));
        let ticks = synthetic_ticks(&eurusd(), Timeframe::H1, &c);
        assert_eq!(ticks[0].bid.value(), dec!(0.09946999));
    }

    #[test]
    fn bad_series_are_refused_before_anything_is_sent() {
        let a = candle(1, dec!(1), dec!(1), dec!(1), dec!(1));
        let b = candle(0, dec!(1), dec!(1), dec!(1), dec!(1));
        let err =
            ReplayFeed::new(vec![ReplaySeries::new(eurusd(), Timeframe::H1, vec![a.clone(), b])]).events().unwrap_err();
        assert!(err.to_string().contains("strictly increasing"), "{err}");
        let tiny = candle(0, dec!(1), dec!(1), dec!(0.000000001), dec!(1));
        let err = ReplayFeed::new(vec![ReplaySeries::new(eurusd(), Timeframe::H1, vec![tiny])]).events().unwrap_err();
        assert!(err.to_string().contains("greater than zero"), "{err}");
        let other = Tick {
            symbol: Symbol::normalize("GBPUSD"),
            time: a.time,
            bid: Price::new(dec!(1)).unwrap(),
            ask: Price::new(dec!(1)).unwrap(),
            synthetic_from: None,
        };
        let err = ReplayFeed::new(vec![ReplaySeries::new(eurusd(), Timeframe::H1, vec![a]).with_ticks(vec![other])])
            .events()
            .unwrap_err();
        assert!(err.to_string().contains("tick 0 is for GBPUSD"), "{err}");
    }

    #[tokio::test]
    async fn bad_speed_is_an_error() {
        for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let (tx, _rx) = mpsc::channel(1);
            let feed = ReplayFeed::new(vec![]).with_speed(ReplaySpeed::CandlesPerSecond(speed));
            let err = feed.run(tx, CancellationToken::new()).await.unwrap_err();
            assert!(matches!(err, FeedError::BadSpeed(_)), "{speed}");
        }
    }

    #[test]
    fn debug_output_summarises_instead_of_dumping_candles() {
        let candles = (0..1000)
            .map(|i| {
                let mut c = candle(0, dec!(1), dec!(1), dec!(1), dec!(1));
                c.time += chrono::Duration::hours(i);
                c
            })
            .collect();
        let feed = ReplayFeed::new(vec![ReplaySeries::new(eurusd(), Timeframe::H1, candles)]);
        let text = format!("{feed:?}");
        assert!(text.contains("EURUSD 1h (1000 candles, 0 ticks)"), "{text}");
        assert!(text.len() < 300, "{text}");
        let events = feed.events().unwrap();
        assert!(format!("{events:?}").contains("1000 candles left"));
    }

    #[test]
    fn pacer_caps_closures_at_one_candle() {
        let mut p = Pacer::new(2.0, Timeframe::H1);
        let t0 = Utc.with_ymd_and_hms(2024, 1, 5, 21, 0, 0).unwrap();
        let first = p.deadline(t0).unwrap();
        let after_hour = p.deadline(t0 + chrono::Duration::hours(1)).unwrap();
        assert_eq!(after_hour - first, Duration::from_millis(500));
        let after_weekend = p.deadline(t0 + chrono::Duration::hours(49)).unwrap();
        assert_eq!(after_weekend - after_hour, Duration::from_millis(500));
    }
}

//! The behaviour every [`MarketFeed`] owes its consumers, as checks a test can run against any feed: the
//! replay's own tests use them, and live feeds run against `testkit`'s fakes can use them too.
//!
//! The contract: events come in nondecreasing market time; every `CandleClosed` is preceded by ticks of its
//! symbol that fall inside the candle; synthetic ticks walk the candle open → low → high → close when it is
//! bullish and open → high → low → close when bearish; the feed stops cleanly, soon, when its shutdown token
//! is cancelled or its receiver is dropped; and its statistics count what it delivered. The tick checks
//! assume one series per symbol, which is how feeds are configured.

use crate::feed::{FeedEnd, FeedError, FeedEvent, FeedStats, MarketFeed};
use domain::{Candle, CandleRange, Symbol, Tick};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long, in tokio time, a feed may take to stop after being told to. Under paused time it costs nothing.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A broken promise, at the index of the event (in the order received) that broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index}: {message}")]
pub struct ContractViolation {
    pub index: usize,
    pub message: String,
}

fn violation(index: usize, message: impl Into<String>) -> ContractViolation {
    ContractViolation { index, message: message.into() }
}

/// Checks a recorded event stream against the ordering and tick rules of the contract.
pub fn check_events(events: &[FeedEvent]) -> Result<(), ContractViolation> {
    let mut since_close: HashMap<&Symbol, Vec<&Tick>> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(previous) = index.checked_sub(1).map(|i| &events[i])
            && event.time() < previous.time()
        {
            return Err(violation(
                index,
                format!("time {} is before the previous event's {}", event.time(), previous.time()),
            ));
        }
        match event {
            FeedEvent::Tick(tick) => since_close.entry(&tick.symbol).or_default().push(tick),
            FeedEvent::CandleClosed { symbol, timeframe, candle } => {
                let ticks = since_close.remove(symbol).unwrap_or_default();
                check_candle_ticks(candle, candle.close_time(*timeframe), &ticks)
                    .map_err(|m| violation(index, format!("{symbol} {timeframe} candle at {}: {m}", candle.time)))?;
            }
        }
    }
    Ok(())
}

fn check_candle_ticks(candle: &Candle, close: chrono::DateTime<chrono::Utc>, ticks: &[&Tick]) -> Result<(), String> {
    if ticks.is_empty() {
        return Err("closed without a tick inside it".into());
    }
    if let Some(t) = ticks.iter().find(|t| t.time < candle.time || t.time >= close) {
        return Err(format!("tick at {} lies outside the candle", t.time));
    }
    let range = CandleRange { open: candle.open, high: candle.high, low: candle.low };
    let synthetic: Vec<_> = ticks.iter().filter(|t| t.synthetic_from.is_some()).collect();
    if synthetic.is_empty() {
        return Ok(());
    }
    if synthetic.len() != ticks.len() {
        return Err("mixes real and synthetic ticks".into());
    }
    if synthetic.iter().any(|t| t.synthetic_from != Some(range)) {
        return Err("a synthetic tick names another candle's range".into());
    }
    let walked: Vec<_> = synthetic.iter().map(|t| t.bid.value()).collect();
    let expected = if candle.close >= candle.open {
        [candle.open, candle.low, candle.high, candle.close]
    } else {
        [candle.open, candle.high, candle.low, candle.close]
    };
    // Compared after rounding to what a tick can hold, as the replay rounds.
    let expected: Vec<_> = expected.iter().map(|p| p.round_dp(domain::price::MAX_PRICE_SCALE).normalize()).collect();
    if walked != expected {
        return Err(format!(
            "synthetic ticks walk {walked:?}, expected {expected:?} for a {} candle",
            if candle.close >= candle.open { "bullish" } else { "bearish" }
        ));
    }
    Ok(())
}

/// Runs two feeds from `make_feed` and checks the whole contract: one to collect up to
/// `max_events` events and cancel (the events must satisfy [`check_events`], the stats must count them and
/// the feed must stop within [`STOP_GRACE`]), and one dropping the receiver halfway (the feed must end
/// cleanly). Returns the first run's statistics.
pub async fn check_feed_contract(
    mut make_feed: impl FnMut() -> Box<dyn MarketFeed>,
    max_events: usize,
) -> Result<FeedStats, ContractViolation> {
    let max_events = max_events.max(2);
    let (stats, events) = run_and_stop(make_feed(), max_events, Stop::Cancel).await?;
    check_events(&events)?;
    let delivered = usize::try_from(stats.candles + stats.ticks).unwrap_or(usize::MAX);
    if delivered != events.len() {
        return Err(violation(events.len(), format!("stats count {delivered} events but {} arrived", events.len())));
    }
    // A feed that ran out just as it was cancelled may well report Finished.
    if stats.end == FeedEnd::ReceiverDropped {
        return Err(violation(events.len(), "cancelled, but reported a dropped receiver"));
    }

    let half = max_events / 2;
    let (dropped, received) = run_and_stop(make_feed(), half, Stop::DropReceiver).await?;
    if dropped.end == FeedEnd::Shutdown {
        return Err(violation(received.len(), "receiver dropped, but the feed reported a shutdown"));
    }
    check_events(&received)?;
    Ok(stats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancel,
    DropReceiver,
}

/// Runs `feed`, collecting events until `max_events` have arrived, then stops it the `how` way and
/// waits for it to end.
async fn run_and_stop(
    feed: Box<dyn MarketFeed>,
    max_events: usize,
    how: Stop,
) -> Result<(FeedStats, Vec<FeedEvent>), ContractViolation> {
    let name = feed.name().to_string();
    let (tx, mut rx) = mpsc::channel(16);
    let token = CancellationToken::new();
    let mut run = feed.run(tx, token.clone());
    let mut events = Vec::new();
    let mut result = None;
    while events.len() < max_events {
        tokio::select! {
            finished = &mut run => {
                result = Some(finished);
                break;
            }
            event = rx.recv() => match event {
                Some(event) => events.push(event),
                // The feed dropped its sender; it is about to return.
                None => break,
            },
        }
    }
    let result = match result {
        Some(result) => {
            while let Ok(event) = rx.try_recv() {
                events.push(event);
            }
            result
        }
        None => {
            let rx = match how {
                Stop::Cancel => {
                    token.cancel();
                    Some(rx)
                }
                Stop::DropReceiver => {
                    drop(rx);
                    None
                }
            };
            let stopping = async {
                match rx {
                    // Keep receiving so that a feed blocked on a full channel still sees the cancellation.
                    Some(mut rx) => {
                        let (result, ()) = tokio::join!(&mut run, async {
                            while let Some(event) = rx.recv().await {
                                events.push(event);
                            }
                        });
                        result
                    }
                    None => (&mut run).await,
                }
            };
            tokio::time::timeout(STOP_GRACE, stopping)
                .await
                .map_err(|_| violation(max_events, format!("{name} did not stop within {STOP_GRACE:?} of {how:?}")))?
        }
    };
    let stats = result.map_err(|e: FeedError| violation(events.len(), format!("{name} failed: {e}")))?;
    Ok((stats, events))
}

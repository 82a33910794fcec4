//! Live feeds following users' settings, and resuming from the candle store.
//!
//! [`spawn_subscription_watch`] owns the `watch::Sender` a live feed reads its pair set from
//! ([`market::SubscriptionUpdates`]): it re-derives the set ([`crate::subscriptions::derive`], with the feed's
//! own filter and extra pairs) whenever a `SettingsChanged` event says a user saved settings, and every
//! `recheck` as a safety net for changes no event announced (another process without NATS, a hand-edited
//! database), and sends only when the set changed. Each feed wiring calls it with its own [`FeedPairs`].
//!
//! Also here, what a feed needs from the store to pick up where it left off: [`StoredResume`] tells a feed where
//! a pair gained mid-run resumes, and [`resampler_chain`] seeds the pump's coarser candles with the finer ones
//! already stored in their current bucket, so the first coarse candle after a restart is whole.

use anyhow::Context as _;
use bus::{Bus, BusError, Event};
use chrono::{DateTime, Utc};
use domain::{Candle, Instrument, Symbol, Timeframe};
use market::{Resampler, SubscriptionUpdates};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Which instruments a feed can serve.
pub type Serves = Arc<dyn Fn(&Instrument) -> bool + Send + Sync>;

/// Which pairs one feed streams: what it can serve of users' settings, its configured extra pairs, and
/// the pair it falls back to when that leaves nothing.
#[derive(Clone)]
pub struct FeedPairs {
    /// The feed's name, for the log.
    pub feed: String,
    pub serves: Serves,
    /// `SYMBOL:TIMEFRAME` from configuration.
    pub extra: Vec<String>,
    pub fallback: (Symbol, Timeframe),
}

impl std::fmt::Debug for FeedPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedPairs").field("feed", &self.feed).field("extra", &self.extra).finish_non_exhaustive()
    }
}

impl FeedPairs {
    /// The set as the store's settings say now.
    pub async fn current(&self, store: &dyn Store) -> anyhow::Result<Vec<(Symbol, Timeframe)>> {
        let users = store
            .users_with_settings()
            .await
            .with_context(|| format!("could not read users' settings for the {} feed", self.feed))?;
        crate::subscriptions::derive(
            users.iter().map(|(_, settings)| settings),
            |i| (self.serves)(i),
            &self.extra,
            self.fallback.clone(),
        )
    }
}

/// Derives the feed's pair set now and starts the task that keeps it current; returns the set and the
/// receiver to hand the feed. The bus is subscribed before the first read, so a change saved in between is
/// not missed. The task ends at `shutdown` or when the feed drops the receiver.
pub async fn spawn_subscription_watch(
    store: Arc<dyn Store>,
    bus: &dyn Bus,
    pairs: FeedPairs,
    recheck: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<(Vec<(Symbol, Timeframe)>, SubscriptionUpdates)> {
    let events = bus.subscribe().await.context("the subscription watch could not subscribe to the bus")?;
    let initial = pairs.current(store.as_ref()).await?;
    let (sender, receiver) = watch::channel(initial.clone());
    tokio::spawn(watch_settings(store, events, pairs, recheck, sender, shutdown));
    Ok((initial, receiver))
}

async fn watch_settings(
    store: Arc<dyn Store>,
    mut events: Box<dyn bus::Subscription>,
    pairs: FeedPairs,
    recheck: Duration,
    sender: watch::Sender<Vec<(Symbol, Timeframe)>>,
    shutdown: CancellationToken,
) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + recheck, recheck);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut bus_open = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = sender.closed() => return,
            event = events.next(), if bus_open => match event {
                Ok(Event::SettingsChanged { .. }) => {}
                Ok(_) => continue,
                // Missed events may have included a settings change.
                Err(BusError::Lagged(_)) => {}
                Err(error) => {
                    tracing::warn!(%error, feed = %pairs.feed, "settings events stopped; relying on the periodic check");
                    bus_open = false;
                    continue;
                }
            },
            _ = timer.tick() => {}
        }
        let wanted = match pairs.current(store.as_ref()).await {
            Ok(wanted) => wanted,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), feed = %pairs.feed, "could not re-derive the feed's pairs; keeping them");
                continue;
            }
        };
        let changed = sender.send_if_modified(|current| {
            if *current == wanted {
                return false;
            }
            *current = wanted.clone();
            true
        });
        if changed {
            tracing::info!(feed = %pairs.feed, pairs = ?wanted, "users' settings changed the feed's pairs");
        }
    }
}

/// Where a pair gained mid-run resumes: after the last candle the store holds.
#[derive(Debug, Clone)]
pub struct StoredResume(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl market::ResumePoints for StoredResume {
    async fn last_stored(&self, symbol: &Symbol, timeframe: Timeframe) -> Result<Option<DateTime<Utc>>, String> {
        self.0.last_candle_time(symbol, timeframe).await.map_err(|e| e.to_string())
    }
}

/// The pump's resamplers for a series whose first candle of the run is `first`: one per coarser timeframe.
/// With a store (a live feed), each is seeded with the stored candles of the series that fall in its bucket
/// before `first`, so a restart mid-bucket (or a pair re-joining) does not emit, and store over the whole
/// one, a coarse candle built from only the hours after it. A store that cannot answer leaves them unseeded
/// (logged). Without a store (a replay), they start empty.
pub async fn resampler_chain(
    store: Option<&dyn Store>,
    symbol: &Symbol,
    timeframe: Timeframe,
    first: &Candle,
) -> Vec<Resampler> {
    let mut chain = Vec::new();
    let mut to = timeframe;
    while let Some(next) = to.coarser() {
        chain.push(Resampler::with_source(timeframe, next));
        to = next;
    }
    let (Some(store), Some(coarsest)) = (store, chain.last().map(Resampler::timeframe)) else { return chain };
    let since = coarsest.bucket_start(first.time);
    let count = (first.time - since).num_seconds() / timeframe.seconds().max(1);
    if count <= 0 {
        return chain;
    }
    let until = first.time - chrono::Duration::seconds(1);
    let stored = match store.recent_candles(symbol, timeframe, until, u32::try_from(count).unwrap_or(u32::MAX)).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(%error, %symbol, %timeframe, "could not read stored candles; coarser candles start fresh");
            return chain;
        }
    };
    for resampler in &mut chain {
        let bucket = resampler.timeframe().bucket_start(first.time);
        for candle in stored.iter().filter(|c| c.time >= bucket) {
            // Nothing completes: every seeded candle shares `first`'s bucket and comes before it.
            let _ = resampler.push(candle);
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use rust_decimal::Decimal;

    fn hour(h: u32, low: i64, high: i64) -> Candle {
        Candle {
            time: Utc.with_ymd_and_hms(2026, 11, 20, h, 0, 0).unwrap(),
            open: Decimal::from(low + 1),
            high: Decimal::from(high),
            low: Decimal::from(low),
            close: Decimal::from(high - 1),
            volume: Decimal::ONE,
        }
    }

    /// The 4h candle the chain completes when 14:00 and 15:00 arrive.
    async fn four_hours(store: Option<&dyn Store>) -> Candle {
        let btc = Symbol::normalize("BTCUSDT");
        let (first, last) = (hour(14, 100, 110), hour(15, 105, 112));
        let mut chain = resampler_chain(store, &btc, Timeframe::H1, &first).await;
        let four = chain.iter_mut().find(|r| r.timeframe() == Timeframe::H4).unwrap();
        assert!(four.push(&first).next().is_none());
        four.push(&last).next().expect("15:00 closes the 12:00 bucket")
    }

    #[tokio::test]
    async fn the_first_coarse_candle_after_a_restart_includes_the_stored_hours_of_its_bucket() {
        let store = store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let btc = Symbol::normalize("BTCUSDT");
        // 11:00 belongs to the previous bucket and must stay out.
        let stored = [hour(11, 1, 1000), hour(12, 90, 120), hour(13, 95, 101)];
        store.save_candles(&btc, Timeframe::H1, &stored).await.unwrap();

        let whole = four_hours(Some(store.as_ref())).await;
        assert_eq!(whole.time, hour(12, 0, 1).time);
        assert_eq!((whole.open, whole.high, whole.low), (Decimal::from(91), Decimal::from(120), Decimal::from(90)));
        assert_eq!((whole.close, whole.volume), (Decimal::from(111), Decimal::from(4)));

        // Without the store (a replay) the bucket holds only what this run saw.
        let partial = four_hours(None).await;
        assert_eq!(
            (partial.open, partial.high, partial.volume),
            (Decimal::from(101), Decimal::from(112), Decimal::from(2))
        );
    }
}

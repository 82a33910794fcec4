//! `SIGNALPOST_FEED=twelvedata` end to end against `FakeTwelveData`: the backfill and then each candle polled
//! after its close reach the candle store, the feed's lag shows on `/metrics`, and a pair Twelve Data cannot
//! serve (crypto) stops the app at start by name. Time is a `ManualClock` the test moves; nothing sleeps.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone as _, Utc};
use domain::{Candle, ManualClock, Symbol, Timeframe};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use testkit::twelvedata::FakeTwelveData;
use testkit::wait::eventually;
use testkit::{AppOptions, ConfigTweak, spawn_app};

const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "td-app-test-key";

/// A Friday: forex trades.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

/// EURUSD 1m candle `i` from `t0`.
fn candle(i: i64) -> Candle {
    let base = Decimal::new(108_000 + i * 7, 5);
    Candle {
        time: t0() + ChronoDuration::minutes(i),
        open: base,
        high: base + Decimal::new(40, 5),
        low: base - Decimal::new(25, 5),
        close: base + Decimal::new(15, 5),
        volume: Decimal::ZERO,
    }
}

fn twelvedata(fake: &FakeTwelveData, pairs: &[&str]) -> ConfigTweak {
    let (url, pairs) = (fake.url(), pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    ConfigTweak::new(move |c| {
        c.feed = "twelvedata".into();
        c.twelvedata_feed.api_url = Some(url.clone());
        c.twelvedata_feed.api_key = Some(signalpost::config::Secret::new(KEY));
        c.twelvedata_feed.pairs = pairs.clone();
        c.twelvedata_feed.warmup_candles = 10;
        c.twelvedata_feed.poll_delay_secs = 1;
        // The clock is moved by hand: the feed reads it often rather than sleeping out its own estimate.
        c.twelvedata_feed.recheck_ms = 5;
    })
}

#[tokio::test]
async fn polled_candles_reach_the_store_and_the_lag_shows_on_metrics() {
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(3 * 60 + 30));
    let fake = FakeTwelveData::start(KEY, Arc::new(clock.clone())).await;
    // Candle 3 is still forming.
    fake.add_candles("EUR/USD", Timeframe::M1, &(0..=3).map(candle).collect::<Vec<_>>());
    let (app, _db) = spawn_app(AppOptions {
        clock: Some(Arc::new(clock.clone())),
        configure: Some(twelvedata(&fake, &["EURUSD:1m"])),
        ..AppOptions::default()
    })
    .await;
    let (store, symbol) = (app.store.clone(), Symbol::normalize("EURUSD"));
    let stored = |n: usize| {
        let (store, symbol) = (store.clone(), symbol.clone());
        async move {
            let candles =
                store.recent_candles(&symbol, Timeframe::M1, t0() + ChronoDuration::hours(1), 100).await.ok()?;
            (candles.len() >= n).then_some(candles)
        }
    };
    let candles = eventually("the backfill stored", WAIT, || stored(3)).await;
    assert_eq!(candles, (0..3).map(candle).collect::<Vec<_>>(), "closed candles only, in order");

    fake.add_candles("EUR/USD", Timeframe::M1, &[candle(4)]);
    clock.set(t0() + ChronoDuration::seconds(4 * 60 + 2));
    let candles = eventually("the polled candle stored", WAIT, || stored(4)).await;
    assert_eq!(candles, (0..4).map(candle).collect::<Vec<_>>());
    let request = fake.requests().pop().unwrap();
    assert_eq!((request.query["symbol"].as_str(), request.query["interval"].as_str()), ("EUR/USD", "1min"));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("signalpost_feed_lag_seconds_count{feed=\"twelvedata\"} 1"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_crypto_pair_stops_the_app_at_start_by_name() {
    let clock = ManualClock::new(t0());
    let fake = FakeTwelveData::start(KEY, Arc::new(clock.clone())).await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let mut config = signalpost::config::Config {
        database_url: signalpost::config::Secret::new(url),
        bind: "127.0.0.1:0".into(),
        secret_key: Some(signalpost::config::Secret::new(testkit::app::TEST_SECRET_KEY)),
        ..signalpost::config::Config::default()
    };
    (twelvedata(&fake, &["BTCUSDT:1h"]).0)(&mut config);
    config.validate().unwrap();
    let error = match signalpost::startup::Application::build(config, Arc::new(clock)).await {
        Ok(_) => panic!("the app started on a crypto pair"),
        Err(error) => error,
    };
    let shown = format!("{error:#}");
    assert!(shown.contains("BTCUSDT") && shown.contains("crypto"), "{shown}");
    assert!(!shown.contains(KEY), "the key leaked: {shown}");
    assert!(fake.requests().is_empty(), "nothing was asked of Twelve Data");
}

//! On a live feed the start-up backfill runs through the scanner to warm its indicators; a signal found on a
//! candle that closed longer ago than its timeframe is not stored or sent, because it would reach users hours
//! late. A replay keeps every signal (its whole history is in the past by design).

use domain::{Clock, ManualClock, Timeframe};
use market::LoadOptions;
use signalpost::scanner::ScannerService;
use std::sync::Arc;

async fn signals_after_scanning(warm_up_only_stale: bool, now: chrono::DateTime<chrono::Utc>) -> usize {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    testkit::fixtures::eurusd_subscriber(&store, "1100000000000000001", "ann").await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
    let bus: Arc<dyn bus::Bus> = Arc::new(bus::InProcessBus::new(1024));
    let model = signalpost::commands::model::load_model(None).unwrap();
    let mut scanner = ScannerService::new(store.clone(), bus, clock, model);
    scanner.warm_up_only_stale_candles = warm_up_only_stale;
    let candles = market::load_candles(&testkit::fixtures::eurusd_300_path(), &LoadOptions::default()).unwrap();
    let symbol = domain::Symbol::normalize("EURUSD");
    for candle in &candles {
        scanner.on_candle(&symbol, Timeframe::H1, candle).await;
    }
    store.recent_signals(10_000).await.unwrap().len()
}

#[tokio::test]
async fn a_live_feed_backfill_warms_the_scanner_without_sending_old_signals() {
    let candles = market::load_candles(&testkit::fixtures::eurusd_300_path(), &LoadOptions::default()).unwrap();
    let after_last_close = candles.last().unwrap().close_time(Timeframe::H1) + chrono::Duration::minutes(5);
    let a_day_later = after_last_close + chrono::Duration::days(1);

    let replayed = signals_after_scanning(false, a_day_later).await;
    assert!(replayed >= 2, "the fixture's history makes signals when replayed: {replayed}");
    assert_eq!(signals_after_scanning(true, a_day_later).await, 0, "every candle is a day old");
    // Five minutes after the last close only that candle is fresh: at most its own signal survives.
    assert!(signals_after_scanning(true, after_last_close).await <= 1);
}

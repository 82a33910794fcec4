//! After a restart the scanner's engines are warmed from the candle store, so the signals found on the candles
//! after the restart are the ones a run that never stopped finds on them. Without the warm-up they are not,
//! which is what makes this observable: a cold engine misses or invents signals until its indicators settle.

use chrono::{DateTime, Utc};
use domain::{Candle, Clock, ManualClock, Symbol, Timeframe};
use market::LoadOptions;
use signalpost::scanner::{DEFAULT_WARMUP_CANDLES, ScannerService};
use std::sync::Arc;

/// Where the "restart" falls in the fixture's 300 hourly candles.
const RESTART_AT: usize = 150;

fn candles() -> Vec<Candle> {
    market::load_candles(&testkit::fixtures::eurusd_300_path(), &LoadOptions::default()).unwrap()
}

/// Runs a scanner over `live` with `stored` already in its store, and returns the signals it stored as
/// (time, side, entry, stop loss).
async fn signals(stored: &[Candle], live: &[Candle], warmup: u32) -> Vec<(DateTime<Utc>, String, String, String)> {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    testkit::fixtures::eurusd_subscriber(&store, "1100000000000000001", "ann").await;
    let symbol = Symbol::normalize("EURUSD");
    if !stored.is_empty() {
        store.save_candles(&symbol, Timeframe::H1, stored).await.unwrap();
    }
    let now = live.last().unwrap().close_time(Timeframe::H1);
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
    let bus: Arc<dyn bus::Bus> = Arc::new(bus::InProcessBus::new(1024));
    let model = signalpost::commands::model::load_model(None).unwrap();
    let mut scanner = ScannerService::new(store.clone(), bus, clock, model);
    scanner.warmup_from_store = warmup;
    for candle in live {
        scanner.on_candle(&symbol, Timeframe::H1, candle).await;
    }
    let mut found: Vec<_> = store
        .recent_signals(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            let s = s.signal;
            (s.created_at, s.side.to_string(), format!("{:?}", s.entry), format!("{:?}", s.stop_loss))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_scanner_warmed_from_the_store_finds_what_a_continuous_run_finds() {
    let all = candles();
    let (before, after) = all.split_at(RESTART_AT);
    let restart = after[0].time;
    let continuous: Vec<_> = signals(&[], &all, 0).await.into_iter().filter(|(time, ..)| *time > restart).collect();
    assert!(!continuous.is_empty(), "the fixture makes signals after the restart point");

    let warmed = signals(before, after, DEFAULT_WARMUP_CANDLES).await;
    assert_eq!(warmed, continuous, "warmed from the store, the engine finds exactly the continuous run's signals");

    let cold = signals(before, after, 0).await;
    assert_ne!(cold, continuous, "a cold engine finds other signals, so the comparison above can fail");

    // The live candles already in the store (the writer stores them before the scanner sees them) are not
    // read as warm-up: the engine warms only on candles before its first one.
    let warmed_with_overlap = signals(&all[..RESTART_AT + 1], after, DEFAULT_WARMUP_CANDLES).await;
    assert_eq!(warmed_with_overlap, continuous);
}

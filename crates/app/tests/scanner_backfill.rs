//! On a live feed the start-up backfill runs through the scanner to warm its indicators; a signal found on a
//! candle that closed longer ago than its timeframe is not stored or sent, because it would reach users hours
//! late. A replay keeps every signal (its whole history is in the past by design).
//!
//! Subscriptions: a settings change made in this process applies from the next candle, and one made by
//! another process applies once its `SettingsChanged` event arrives; neither waits for the clock.

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

/// The close times of the signals a replay of the test sample stores for a subscriber whose settings never
/// change, oldest first.
async fn signals_with_settings_unchanged() -> Vec<chrono::DateTime<chrono::Utc>> {
    let (store, _db) = testkit::db::fresh_store().await;
    testkit::fixtures::eurusd_subscriber(&store, "1100000000000000002", "bo").await;
    let mut scanner = fixed_clock_scanner(&store);
    let symbol = domain::Symbol::normalize("EURUSD");
    for candle in &sample_candles() {
        scanner.on_candle(&symbol, Timeframe::H1, candle).await;
    }
    stored_signal_times(&store).await
}

fn sample_candles() -> Vec<domain::Candle> {
    market::load_candles(&testkit::fixtures::eurusd_300_path(), &LoadOptions::default()).unwrap()
}

/// A replay's scanner whose clock never moves: nothing it does may depend on time passing.
fn fixed_clock_scanner(store: &Arc<dyn store::Store>) -> ScannerService {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(testkit::fixtures::wave_start()));
    let bus: Arc<dyn bus::Bus> = Arc::new(bus::InProcessBus::new(1024));
    ScannerService::new(store.clone(), bus, clock, signalpost::commands::model::load_model(None).unwrap())
}

async fn stored_signal_times(store: &Arc<dyn store::Store>) -> Vec<chrono::DateTime<chrono::Utc>> {
    let mut times: Vec<_> =
        store.recent_signals(10_000).await.unwrap().into_iter().map(|s| s.signal.created_at).collect();
    times.sort();
    times
}

async fn set_notifications(store: &Arc<dyn store::Store>, user: domain::UserId, enabled: bool) {
    let mut settings = store.get_settings(user).await.unwrap();
    settings.notifications_enabled = enabled;
    store.save_settings(user, &settings).await.unwrap();
}

#[tokio::test]
async fn a_settings_change_in_this_process_applies_from_the_next_candle() {
    let expected_all = signals_with_settings_unchanged().await;
    assert!(expected_all.len() >= 2, "the sample makes signals: {expected_all:?}");
    let muted = expected_all[1];

    let (store, _db) = testkit::db::fresh_store().await;
    let user = testkit::fixtures::eurusd_subscriber(&store, "1100000000000000003", "cy").await;
    let mut scanner = fixed_clock_scanner(&store);
    let symbol = domain::Symbol::normalize("EURUSD");
    for candle in &sample_candles() {
        let close = candle.close_time(Timeframe::H1);
        // Notifications off for exactly the candle that makes the second signal.
        if close == muted {
            set_notifications(&store, user, false).await;
        }
        scanner.on_candle(&symbol, Timeframe::H1, candle).await;
        if close == muted {
            set_notifications(&store, user, true).await;
        }
    }
    let expected: Vec<_> = expected_all.iter().copied().filter(|t| *t != muted).collect();
    assert_eq!(stored_signal_times(&store).await, expected);
}

#[tokio::test]
async fn a_settings_change_by_another_process_applies_once_its_event_arrives() {
    let expected_all = signals_with_settings_unchanged().await;
    let first = expected_all[0];

    let (url, db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    let user = testkit::fixtures::eurusd_subscriber(&store, "1100000000000000004", "di").await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(testkit::fixtures::wave_start()));
    let bus: Arc<dyn bus::Bus> = Arc::new(bus::InProcessBus::new(1024));
    let mut events = bus.subscribe().await.unwrap();
    let scanner =
        ScannerService::new(store.clone(), bus.clone(), clock, signalpost::commands::model::load_model(None).unwrap());
    let (candles, receiver) = tokio::sync::mpsc::channel(1024);
    let running = tokio::spawn(scanner.run(receiver, tokio_util::sync::CancellationToken::new()));

    let sample = sample_candles();
    let split = sample.iter().position(|c| c.close_time(Timeframe::H1) == first).unwrap() + 1;
    let symbol = domain::Symbol::normalize("EURUSD");
    for candle in &sample[..split] {
        let closed = signalpost::scanner::ClosedCandle {
            symbol: symbol.clone(),
            timeframe: Timeframe::H1,
            candle: candle.clone(),
        };
        candles.send(closed).await.unwrap();
    }
    // The first signal is announced: the scanner is running and subscribed to the bus.
    let announced = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            if let bus::Event::SignalCreated { signal, .. } = events.next().await.unwrap() {
                return signal.created_at;
            }
        }
    })
    .await
    .expect("the first signal is announced");
    assert_eq!(announced, first);

    let changed = db.execute_as_another_process("UPDATE user_settings SET notifications_enabled = false").await;
    assert_eq!(changed, 1);
    bus.publish(bus::Event::SettingsChanged { user_id: user }).await.unwrap();
    for candle in &sample[split..] {
        let closed = signalpost::scanner::ClosedCandle {
            symbol: symbol.clone(),
            timeframe: Timeframe::H1,
            candle: candle.clone(),
        };
        candles.send(closed).await.unwrap();
    }
    drop(candles);
    running.await.unwrap();
    assert!(expected_all.len() >= 2, "later candles would have made signals: {expected_all:?}");
    assert_eq!(stored_signal_times(&store).await, vec![first], "no signal after notifications were turned off");
}

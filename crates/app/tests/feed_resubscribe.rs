//! Black-box: the app on the live Binance feed (`FakeBinanceMarket`) follows users' settings without a
//! restart. A user adding ETHUSDT on the dashboard's settings form makes the running feed subscribe to it on
//! the open connection and its candles reach the store; removing it unsubscribes it. A change no event
//! announced is found by the periodic re-check. After a restart, Binance is asked only for the candles the
//! store lacks.

mod web_support;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use domain::{Candle, Symbol, Timeframe, UserSettings};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use store::{Role, Store};
use testkit::binance_stream::FakeBinanceMarket;
use testkit::{AppOptions, ConfigTweak, TestApp};
use web_support::{WebClient, user_with_password};

const WAIT: Duration = Duration::from_secs(15);
const TF: Timeframe = Timeframe::M15;

/// The start of the 15-minute bucket `back` buckets before the one current when the tests began, by the system
/// clock the app runs on. Fixed once, so a quarter hour turning mid-test cannot shift the candles: they only
/// grow older, and every one the tests call closed stays closed.
fn bucket(back: i64) -> DateTime<Utc> {
    static BASE: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| TF.bucket_start(Utc::now())) - ChronoDuration::minutes(15 * back)
}

fn candle(symbol: &str, time: DateTime<Utc>) -> Candle {
    let base = Decimal::from(if symbol == "BTCUSDT" { 90_000 } else { 3_000 } + time.timestamp() % 1000);
    Candle {
        time,
        open: base,
        high: base + Decimal::from(7),
        low: base - Decimal::from(5),
        close: base + Decimal::from(3),
        volume: Decimal::from(12),
    }
}

/// Closed 15m candles from `from` buckets ago to two buckets ago: none of them can still be forming.
fn history(symbol: &str, from: i64) -> Vec<Candle> {
    (2..=from).rev().map(|back| candle(symbol, bucket(back))).collect()
}

fn settings_form<'a>(pairs: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("notifications_enabled", "on"),
        ("timeframes", "15m"),
        ("min_confidence", "60"),
        ("max_notifications_per_day", "12"),
        ("notification_cooldown_minutes", "45"),
        ("running_update_minutes", "30"),
        ("delivery", "dm"),
    ];
    form.extend(pairs.iter().map(|p| ("pairs", *p)));
    form
}

async fn btc_only_user(store: &Arc<dyn Store>, username: &str) -> domain::UserId {
    let user = user_with_password(store, username, "a-password-long-enough", Role::User).await;
    let settings = UserSettings {
        preferred_pairs: vec![Symbol::normalize("BTCUSDT")],
        enabled_timeframes: vec![TF],
        ..UserSettings::default()
    };
    store.save_settings(user.id, &settings).await.unwrap();
    user.id
}

async fn binance_app(url: &str, fake: &FakeBinanceMarket, recheck_secs: u64) -> TestApp {
    let stream_url = fake.stream_url();
    testkit::spawn_app_on(
        url,
        AppOptions {
            binance_base_url: Some(fake.rest_url()),
            configure: Some(ConfigTweak::new(move |c| {
                c.feed = "binance".into();
                c.binance_feed.stream_url = Some(stream_url.clone());
                c.live.subscription_recheck_secs = recheck_secs;
            })),
            ..AppOptions::default()
        },
    )
    .await
}

async fn stored(store: &Arc<dyn Store>, symbol: &str) -> Vec<DateTime<Utc>> {
    let far = Utc::now() + ChronoDuration::days(1);
    store.recent_candles(&Symbol::normalize(symbol), TF, far, 1000).await.unwrap().into_iter().map(|c| c.time).collect()
}

/// Waits until the store holds exactly `times` for the symbol's 15m series.
async fn wait_stored(store: &Arc<dyn Store>, symbol: &str, times: Vec<DateTime<Utc>>) {
    testkit::wait::eventually(&format!("{symbol} candles in the store"), WAIT, || {
        let times = times.clone();
        async move { (stored(store, symbol).await == times).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn adding_a_pair_on_the_settings_page_streams_it_without_a_restart_and_removing_it_stops_it() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 4));
    fake.add_candles("ETHUSDT", TF, &history("ETHUSDT", 5));
    let (url, _db) = testkit::db::fresh_database_url().await;
    {
        let store = signalpost::startup::open_store(&test_config(&url)).await.unwrap();
        btc_only_user(&store, "gale").await;
    }
    let app = binance_app(&url, &fake, 3600).await;
    fake.wait_for_connections(1, WAIT).await.unwrap();
    assert_eq!(fake.subscriptions()[0], ["btcusdt@kline_15m", "btcusdt@trade"]);
    wait_stored(&app.store, "BTCUSDT", history("BTCUSDT", 4).iter().map(|c| c.time).collect()).await;

    // Gale adds ETHUSDT on the dashboard.
    let mut browser = WebClient::new(&app.address);
    browser.login("gale", "a-password-long-enough").await;
    let saved = browser.submit("/settings", "/settings", &settings_form(&["BTCUSDT", "ETHUSDT"])).await;
    assert_eq!(saved.location(), Some("/settings?saved=1"));
    fake.wait_for_streams(WAIT, |s| s.iter().any(|s| s == "ethusdt@kline_15m")).await.unwrap();
    // Its backfill, then a live close, reach the store.
    wait_stored(&app.store, "ETHUSDT", history("ETHUSDT", 5).iter().map(|c| c.time).collect()).await;
    fake.close_candle("ETHUSDT", TF, &candle("ETHUSDT", bucket(1)));
    let mut eth: Vec<_> = history("ETHUSDT", 5).iter().map(|c| c.time).collect();
    eth.push(bucket(1));
    wait_stored(&app.store, "ETHUSDT", eth.clone()).await;
    assert_eq!(fake.connections(), 1, "the same connection, no restart");

    // Gale removes it again: unsubscribed, and a late ETHUSDT frame is not stored.
    let saved = browser.submit("/settings", "/settings", &settings_form(&["BTCUSDT"])).await;
    assert_eq!(saved.location(), Some("/settings?saved=1"));
    fake.wait_for_streams(WAIT, |s| !s.iter().any(|s| s.starts_with("ethusdt"))).await.unwrap();
    let late = candle("ETHUSDT", bucket(0));
    fake.push_raw(&testkit::binance_stream::kline_frame("ETHUSDT", TF, &late, true));
    // BTCUSDT's close comes after the late frame on the same socket: once it is stored, the frame was handled.
    fake.close_candle("BTCUSDT", TF, &candle("BTCUSDT", bucket(1)));
    let mut btc: Vec<_> = history("BTCUSDT", 4).iter().map(|c| c.time).collect();
    btc.push(bucket(1));
    wait_stored(&app.store, "BTCUSDT", btc).await;
    assert_eq!(stored(&app.store, "ETHUSDT").await, eth, "nothing of ETHUSDT after it was removed");
    let methods: Vec<_> = fake.stream_requests().into_iter().map(|r| (r.method, r.params)).collect();
    assert_eq!(
        methods,
        vec![
            ("SUBSCRIBE".to_string(), vec!["ethusdt@kline_15m".to_string(), "ethusdt@trade".to_string()]),
            ("UNSUBSCRIBE".to_string(), vec!["ethusdt@kline_15m".to_string(), "ethusdt@trade".to_string()]),
        ]
    );
    assert_eq!(fake.connections(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_change_no_event_announced_is_found_by_the_periodic_check() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 3));
    fake.add_candles("ETHUSDT", TF, &history("ETHUSDT", 3));
    let (url, _db) = testkit::db::fresh_database_url().await;
    let user = {
        let store = signalpost::startup::open_store(&test_config(&url)).await.unwrap();
        btc_only_user(&store, "hal").await
    };
    let app = binance_app(&url, &fake, 1).await;
    fake.wait_for_connections(1, WAIT).await.unwrap();
    // Written straight to the database, as another process without the bus would: no event.
    let mut settings = app.store.get_settings(user).await.unwrap();
    settings.preferred_pairs.push(Symbol::normalize("ETHUSDT"));
    app.store.save_settings(user, &settings).await.unwrap();
    fake.wait_for_streams(WAIT, |s| s.iter().any(|s| s == "ethusdt@kline_15m")).await.unwrap();
    wait_stored(&app.store, "ETHUSDT", history("ETHUSDT", 3).iter().map(|c| c.time).collect()).await;
    app.stop().await;
}

#[tokio::test]
async fn a_restart_asks_binance_only_for_the_candles_the_store_lacks() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 8));
    let (url, _db) = testkit::db::fresh_database_url().await;
    {
        let store = signalpost::startup::open_store(&test_config(&url)).await.unwrap();
        btc_only_user(&store, "ivy").await;
        // The previous run stored up to five buckets ago.
        store.save_candles(&Symbol::normalize("BTCUSDT"), TF, &history("BTCUSDT", 8)[..4]).await.unwrap();
    }
    let app = binance_app(&url, &fake, 3600).await;
    wait_stored(&app.store, "BTCUSDT", history("BTCUSDT", 8).iter().map(|c| c.time).collect()).await;
    let klines: Vec<_> = fake.requests().into_iter().filter(|r| r.path == "/api/v3/klines").collect();
    assert_eq!(klines.len(), 1, "{klines:?}");
    assert_eq!(klines[0].query["startTime"], bucket(4).timestamp_millis().to_string(), "right after the stored ones");
    app.stop().await;
}

fn test_config(url: &str) -> signalpost::config::Config {
    signalpost::config::Config {
        database_url: signalpost::config::Secret::new(url),
        ..signalpost::config::Config::default()
    }
}

//! The live Binance feed (`market::BinanceFeed`) against `FakeBinanceMarket`: backfill then live, a connection
//! killed mid-candle with the gap filled by REST, duplicates and out-of-order frames dropped, malformed frames
//! skipped, 429s waited out, stalls and the 24-hour retirement survived, and instruments Binance cannot serve
//! refused at start. Every test ends by checking each candle arrived exactly once, in order.
//!
//! These live here rather than in `crates/market/tests` because testkit depends on market.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone as _, Utc};
use domain::{Candle, ManualClock, Symbol, Timeframe};
use market::{BinanceFeed, BinanceFeedConfig, BinanceMarket, FeedEvent, MarketFeed, TickSource};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use testkit::binance_stream::{FakeBinanceMarket, RestFault};
use testkit::feed_harness::{FeedCounts, RunningFeed, WAIT};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TF: Timeframe = Timeframe::M1;

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

/// Candle `i` of BTCUSDT 1m from `t0`; prices differ per candle so a mix-up shows.
fn candle(i: i64) -> Candle {
    let base = Decimal::from(90_000 + i * 10);
    Candle {
        time: t0() + ChronoDuration::minutes(i),
        open: base,
        high: base + Decimal::from(7),
        low: base - Decimal::from(5),
        close: base + Decimal::from(3),
        volume: Decimal::from(12 + i),
    }
}

fn config(fake: &FakeBinanceMarket, market: BinanceMarket) -> BinanceFeedConfig {
    let mut config = BinanceFeedConfig::new(market, vec![(Symbol::normalize("BTCUSDT"), TF)]);
    config.rest_url = fake.rest_url();
    config.stream_url = fake.stream_url();
    config.warmup_candles = 10;
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    config.stall_timeout = Duration::from_secs(2);
    config
}

type Running = RunningFeed<i64>;

/// A BTCUSDT 1m candle as its index from `t0`, checked against the prices the fake was given.
fn read(symbol: Symbol, timeframe: Timeframe, c: Candle) -> i64 {
    assert_eq!((symbol.as_str(), timeframe), ("BTCUSDT", TF));
    let i = (c.time - t0()).num_minutes();
    assert_eq!(c, candle(i), "candle {i} arrived with other prices");
    i
}

fn start(config: BinanceFeedConfig, clock: &ManualClock) -> Running {
    let counts = Arc::new(FeedCounts::default());
    let feed = BinanceFeed::new(config, Arc::new(clock.clone())).unwrap().with_observer(counts.clone());
    RunningFeed::spawn(feed, counts, read)
}

#[tokio::test]
async fn backfills_then_streams_and_a_connection_killed_mid_candle_loses_and_repeats_nothing() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    // History up to candle 6, which is still forming at 12:06:30.
    fake.add_candles("BTCUSDT", TF, &(0..=6).map(candle).collect::<Vec<_>>());
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(6 * 60 + 30));
    let mut feed = start(config(&fake, BinanceMarket::Spot), &clock);

    // Backfill: only the closed klines, in order.
    assert_eq!(feed.candles(6).await, vec![0, 1, 2, 3, 4, 5]);
    fake.wait_for_connections(1, WAIT).await.unwrap();
    assert_eq!(fake.subscriptions()[0], vec!["btcusdt@kline_1m".to_string(), "btcusdt@trade".to_string()]);
    let klines = fake.requests().into_iter().find(|r| r.path == "/api/v3/klines").expect("a klines request");
    assert_eq!(klines.query["interval"], "1m");
    assert_eq!(klines.query["startTime"], (t0() + ChronoDuration::minutes(6 - 10)).timestamp_millis().to_string());

    // Live: an open kline is not a candle; a trade is a tick; the close is.
    fake.push_kline("BTCUSDT", TF, &candle(6), false);
    let trade_ms = (t0() + ChronoDuration::seconds(400)).timestamp_millis();
    fake.push_trade("BTCUSDT", "90065.5", trade_ms);
    let FeedEvent::Tick(tick) = feed.next().await else { panic!("expected the trade as a tick") };
    assert_eq!(
        (tick.symbol.as_str(), tick.bid.value(), tick.time.timestamp_millis()),
        ("BTCUSDT", dec("90065.5"), trade_ms)
    );
    assert_eq!(tick.bid, tick.ask);
    clock.set(t0() + ChronoDuration::minutes(7));
    fake.close_candle("BTCUSDT", TF, &candle(6));
    assert_eq!(feed.next_candle().await, 6);

    // Killed mid-candle 7; candles 7 and 8 close while the client cannot get back in.
    fake.add_candles("BTCUSDT", TF, &[candle(7)]);
    fake.push_kline("BTCUSDT", TF, &candle(7), false);
    fake.hold_connections();
    fake.disconnect();
    clock.set(t0() + ChronoDuration::seconds(9 * 60 + 10));
    fake.close_candle("BTCUSDT", TF, &candle(8)); // nobody is connected: only REST has it
    fake.add_candles("BTCUSDT", TF, &[candle(9)]); // forming
    fake.release_connections();
    fake.wait_for_connections(2, WAIT).await.unwrap();
    assert_eq!(feed.candles(2).await, vec![7, 8], "the gap comes back through REST, in order");

    // After the reconnect: a duplicate, an out-of-order kline and a malformed frame change nothing.
    fake.push_kline("BTCUSDT", TF, &candle(8), true);
    fake.push_kline("BTCUSDT", TF, &candle(3), true);
    fake.push_raw("{\"stream\":\"btcusdt@kline_1m\",\"data\":{\"e\":\"kline\"");
    fake.push_raw("{\"stream\":\"btcusdt@kline_1m\",\"data\":{\"e\":\"kline\",\"s\":\"BTCUSDT\",\"k\":{\"t\":1,\"T\":2,\"i\":\"1m\",\"o\":\"abc\",\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"1\",\"x\":true}}}");
    clock.set(t0() + ChronoDuration::minutes(10));
    fake.close_candle("BTCUSDT", TF, &candle(9));
    assert_eq!(feed.next_candle().await, 9, "nothing came between 8 and 9");

    assert!(feed.counts.reconnects() >= 1);
    assert!(feed.counts.gaps() >= 2, "candles 7 and 8 count as gap filled");
    assert!(feed.counts.lags() >= 2, "live candles 6 and 9 report their lag");
    assert_eq!(feed.stop().await, Vec::<i64>::new());
}

#[tokio::test]
async fn a_stream_that_skips_a_candle_is_filled_from_rest_before_the_next_one() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &(0..=2).map(candle).collect::<Vec<_>>());
    let clock = ManualClock::new(t0() + ChronoDuration::minutes(2));
    let mut feed = start(config(&fake, BinanceMarket::Spot), &clock);
    assert_eq!(feed.candles(2).await, vec![0, 1]);
    fake.wait_for_connections(1, WAIT).await.unwrap();
    clock.set(t0() + ChronoDuration::minutes(4));
    // Candle 2 closes on REST only; the stream jumps straight to 3.
    fake.add_candles("BTCUSDT", TF, &[candle(3)]);
    fake.push_kline("BTCUSDT", TF, &candle(3), true);
    assert_eq!(feed.candles(2).await, vec![2, 3]);
    assert_eq!(feed.counts.gaps(), 1);
    assert_eq!(feed.stop().await, Vec::<i64>::new());
}

#[tokio::test]
async fn rate_limited_backfill_waits_out_retry_after_and_other_faults_are_retried() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &(0..4).map(candle).collect::<Vec<_>>());
    fake.fail_klines(&[RestFault::RateLimited { retry_after_secs: 1 }, RestFault::ServerError, RestFault::Malformed]);
    let clock = ManualClock::new(t0() + ChronoDuration::minutes(4));
    let mut feed = start(config(&fake, BinanceMarket::Spot), &clock);
    assert_eq!(feed.candles(4).await, vec![0, 1, 2, 3]);
    let klines: Vec<_> = fake.requests().into_iter().filter(|r| r.path == "/api/v3/klines").collect();
    assert_eq!(klines[0].status, 429);
    assert!(
        klines[1].at.duration_since(klines[0].at) >= Duration::from_secs(1),
        "the retry came {:?} after the 429, before Retry-After",
        klines[1].at.duration_since(klines[0].at)
    );
    assert!(klines.iter().any(|r| r.status == 200));
    assert_eq!(feed.stop().await, Vec::<i64>::new());
}

#[tokio::test]
async fn futures_use_the_fapi_paths_and_book_tickers() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &(0..2).map(candle).collect::<Vec<_>>());
    let clock = ManualClock::new(t0() + ChronoDuration::minutes(2));
    let mut config = config(&fake, BinanceMarket::UsdFutures);
    config.ticks = TickSource::BookTicker;
    let mut feed = start(config, &clock);
    assert_eq!(feed.candles(2).await, vec![0, 1]);
    fake.wait_for_connections(1, WAIT).await.unwrap();
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.contains(&"/fapi/v1/exchangeInfo".to_string()) && paths.contains(&"/fapi/v1/klines".to_string()),
        "{paths:?}"
    );
    assert!(fake.subscriptions()[0].contains(&"btcusdt@bookTicker".to_string()));
    // The recorded futures bookTicker payload, renamed to our symbol.
    fake.push_raw(r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BTCUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#);
    let FeedEvent::Tick(tick) = feed.next().await else { panic!("expected a tick") };
    assert_eq!((tick.bid.value(), tick.ask.value()), (dec("25.3519"), dec("25.3652")));
    assert_eq!(feed.stop().await, Vec::<i64>::new());
}

#[tokio::test]
async fn connections_are_retired_before_their_limit_without_losing_or_repeating_a_candle() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &[candle(0)]);
    let clock = ManualClock::new(t0() + ChronoDuration::minutes(1));
    let mut config = config(&fake, BinanceMarket::Spot);
    config.connection_lifetime = Duration::from_millis(300);
    let mut feed = start(config, &clock);
    assert_eq!(feed.candles(1).await, vec![0]);
    // The first connection is retired by the client (a close frame), not dropped by the fake.
    fake.wait_for_connections(2, WAIT).await.unwrap();
    assert!(fake.client_closes() >= 1, "the client closed its old connection itself");
    // Candles close across several retirements; some frames reach a connection being retired.
    for i in 1..5 {
        clock.set(t0() + ChronoDuration::minutes(i + 1));
        fake.close_candle("BTCUSDT", TF, &candle(i));
        fake.wait_for_connections(fake.connections() + 1, WAIT).await.unwrap();
    }
    assert_eq!(feed.candles(4).await, vec![1, 2, 3, 4]);
    assert!(feed.counts.reconnects() >= 5);
    assert_eq!(feed.stop().await, Vec::<i64>::new());
}

#[tokio::test]
async fn a_stalled_connection_is_noticed_and_what_closed_meanwhile_comes_back() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &[candle(0)]);
    let clock = ManualClock::new(t0() + ChronoDuration::minutes(1));
    let mut config = config(&fake, BinanceMarket::Spot);
    // Five of the fake's ping intervals: a live connection is never this quiet.
    config.stall_timeout = Duration::from_millis(500);
    let mut feed = start(config, &clock);
    assert_eq!(feed.candles(1).await, vec![0]);
    fake.wait_for_connections(1, WAIT).await.unwrap();
    fake.stall();
    clock.set(t0() + ChronoDuration::minutes(2));
    fake.add_candles("BTCUSDT", TF, &[candle(1)]);
    fake.wait_for_connections(2, WAIT).await.unwrap();
    assert_eq!(feed.candles(1).await, vec![1]);
    assert_eq!(fake.connections(), 2, "the healthy connection after the stall was kept");
    assert_eq!(feed.stop().await, Vec::<i64>::new());
}

#[tokio::test]
async fn instruments_binance_cannot_serve_are_refused_at_start_by_name() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    let clock = ManualClock::new(t0());

    let forex = BinanceFeedConfig::new(BinanceMarket::Spot, vec![(Symbol::normalize("EURUSD"), Timeframe::H1)]);
    let refused = BinanceFeed::new(forex, Arc::new(clock.clone())).unwrap_err().to_string();
    assert!(refused.contains("EURUSD") && refused.contains("crypto"), "{refused}");

    let mut unlisted = config(&fake, BinanceMarket::Spot);
    unlisted.subscriptions.push((Symbol::normalize("SOLUSDT"), Timeframe::H1));
    let feed = BinanceFeed::new(unlisted, Arc::new(clock.clone())).unwrap();
    let refused = feed.check_instruments().await.unwrap_err().to_string();
    assert!(refused.contains("SOLUSDT") && refused.contains("exchangeInfo"), "{refused}");
    let (tx, _rx) = mpsc::channel(8);
    let run = Box::new(feed).run(tx, CancellationToken::new()).await.unwrap_err().to_string();
    assert!(run.contains("SOLUSDT"), "{run}");
    assert_eq!(fake.connections(), 0, "no stream is opened for a feed that cannot serve its pairs");
}

#[test]
fn the_recorded_payloads_the_fake_copies_are_in_place() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/binance_market");
    for file in ["klines_response.json", "kline_stream_closed.json", "trade_stream.json", "exchange_info_response.json"]
    {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let _: serde_json::Value = serde_json::from_str(&text).unwrap();
    }
    // The fake's frame carries the recorded frame's keys.
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kline_stream_closed.json")).unwrap()).unwrap();
    let ours: serde_json::Value =
        serde_json::from_str(&testkit::binance_stream::kline_frame("BTCUSDT", TF, &candle(0), true)).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&recorded), keys(&ours["data"]));
    assert_eq!(keys(&recorded["k"]), keys(&ours["data"]["k"]));
}

/// `SIGNALPOST_FEED=binance` pointed at the fake: candles from the backfill and from the stream reach the
/// candle store, and `/metrics` shows the feed's counters.
#[tokio::test]
async fn signalpost_on_the_binance_feed_stores_backfilled_and_streamed_candles() {
    use signalpost::config::{Config, Secret};
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &(0..=3).map(candle).collect::<Vec<_>>());
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(3 * 60 + 20));
    let (url, _guard) = testkit::db::fresh_database_url().await;
    let defaults = Config::default();
    let mut config = Config {
        database_url: Secret::new(url),
        bind: "127.0.0.1:0".into(),
        feed: "binance".into(),
        secret_key: Some(Secret::new(testkit::app::TEST_SECRET_KEY)),
        ..defaults
    };
    config.binance.base_url = Some(fake.rest_url());
    config.binance_feed.stream_url = Some(fake.stream_url());
    config.binance_feed.pairs = vec!["BTCUSDT:1m".into()];
    config.binance_feed.warmup_candles = 10;
    config.validate().unwrap();
    let app = signalpost::startup::Application::build(config, Arc::new(clock.clone())).await.expect("the app starts");
    let store = app.store.clone();
    let symbol = Symbol::normalize("BTCUSDT");
    let stored = |n: usize| {
        let (store, symbol) = (store.clone(), symbol.clone());
        async move {
            let candles = store.recent_candles(&symbol, TF, t0() + ChronoDuration::hours(1), 100).await.ok()?;
            (candles.len() >= n).then_some(candles)
        }
    };
    let candles = testkit::wait::eventually("the backfill stored", WAIT, || stored(3)).await;
    assert_eq!(candles, (0..3).map(candle).collect::<Vec<_>>());

    fake.wait_for_connections(1, WAIT).await.unwrap();
    clock.set(t0() + ChronoDuration::minutes(4));
    fake.close_candle("BTCUSDT", TF, &candle(3));
    let candles = testkit::wait::eventually("the streamed candle stored", WAIT, || stored(4)).await;
    assert_eq!(candles, (0..4).map(candle).collect::<Vec<_>>());
    assert!(app.metrics.render().contains("signalpost_feed_lag_seconds_count{feed=\"binance\"} 1"));

    app.shutdown_token().cancel();
    app.run_until_stopped().await.unwrap();
}

#[tokio::test]
async fn signalpost_refuses_to_start_on_a_pair_binance_does_not_list() {
    use signalpost::config::{Config, Secret};
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    let (url, _guard) = testkit::db::fresh_database_url().await;
    let mut config = Config {
        database_url: Secret::new(url),
        bind: "127.0.0.1:0".into(),
        feed: "binance".into(),
        secret_key: Some(Secret::new(testkit::app::TEST_SECRET_KEY)),
        ..Config::default()
    };
    config.binance.base_url = Some(fake.rest_url());
    config.binance_feed.stream_url = Some(fake.stream_url());
    config.binance_feed.pairs = vec!["PEPEUSDT:1h".into()];
    let refused = match signalpost::startup::Application::build(config, Arc::new(ManualClock::new(t0()))).await {
        Ok(_) => panic!("the app started on a pair Binance does not list"),
        Err(error) => error,
    };
    let refused = format!("{refused:#}");
    assert!(refused.contains("PEPEUSDT"), "{refused}");
}

#[tokio::test]
async fn the_streamed_pairs_come_from_users_settings_finest_timeframe_per_crypto_symbol() {
    use domain::UserSettings;
    use store::{NewUser, Role};
    let (store, _guard) = testkit::db::fresh_store().await;
    let mut config = signalpost::config::Config::default();
    // No users, no configured pairs: BTCUSDT 1h.
    let pairs = signalpost::startup::feed_pairs(&config, "binance").current(store.as_ref()).await.unwrap();
    assert_eq!(pairs, vec![(Symbol::normalize("BTCUSDT"), Timeframe::H1)]);

    let user = store
        .create_user(&NewUser { discord_user_id: None, display_name: "trader".into(), role: Role::User })
        .await
        .unwrap();
    let settings = UserSettings {
        preferred_pairs: vec![Symbol::normalize("ETHUSDT"), Symbol::normalize("EURUSD")],
        enabled_timeframes: vec![Timeframe::H4, Timeframe::M15],
        ..UserSettings::default()
    };
    store.save_settings(user.id, &settings).await.unwrap();
    config.binance_feed.pairs = vec!["SOLUSDT:1d".into()];
    let pairs = signalpost::startup::feed_pairs(&config, "binance").current(store.as_ref()).await.unwrap();
    // EURUSD is forex (another feed's); ETHUSDT streams 15m only, the pump resamples 4h from it.
    assert_eq!(
        pairs,
        vec![(Symbol::normalize("ETHUSDT"), Timeframe::M15), (Symbol::normalize("SOLUSDT"), Timeframe::D1)]
    );
}

//! The live Binance feed changing its pairs mid-run (`BinanceFeedConfig::updates`) against
//! `FakeBinanceMarket`: a gained pair is subscribed on the open socket and backfilled (from the store's last
//! candle when the app knows one), a lost pair is unsubscribed and its late frames dropped, instruments Binance
//! cannot serve are skipped without stopping the feed, and a set sent while disconnected goes into the next
//! connection's URL. Every test checks the kept pairs' candles arrive exactly once, in order.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone as _, Utc};
use domain::{Candle, ManualClock, Symbol, Timeframe};
use market::{BinanceFeed, BinanceFeedConfig, BinanceMarket, ResumePoints};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use testkit::binance_stream::{FakeBinanceMarket, StreamRequest};
use testkit::feed_harness::{FeedCounts, RunningFeed, WAIT};
use tokio::sync::watch;

const TF: Timeframe = Timeframe::M1;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

/// Candle `i` of `symbol` 1m from `t0`; BTCUSDT and ETHUSDT prices differ so a mix-up shows.
fn candle(symbol: &str, i: i64) -> Candle {
    let base = Decimal::from(if symbol == "BTCUSDT" { 90_000 } else { 3_000 } + i * 10);
    Candle {
        time: t0() + ChronoDuration::minutes(i),
        open: base,
        high: base + Decimal::from(7),
        low: base - Decimal::from(5),
        close: base + Decimal::from(3),
        volume: Decimal::from(12 + i),
    }
}

fn history(symbol: &str, upto: i64) -> Vec<Candle> {
    (0..=upto).map(|i| candle(symbol, i)).collect()
}

fn pair(symbol: &str) -> (Symbol, Timeframe) {
    (Symbol::normalize(symbol), TF)
}

fn requests(requests: &[(&str, &[&str])]) -> Vec<StreamRequest> {
    requests
        .iter()
        .map(|(method, params)| StreamRequest {
            connection: 1,
            method: method.to_string(),
            params: params.iter().map(|p| p.to_string()).collect(),
        })
        .collect()
}

/// The running feed, and the app's side of its pair-set updates.
struct Running {
    feed: RunningFeed<(String, i64)>,
    pairs: watch::Sender<Vec<(Symbol, Timeframe)>>,
}

impl std::ops::Deref for Running {
    type Target = RunningFeed<(String, i64)>;
    fn deref(&self) -> &Self::Target {
        &self.feed
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.feed
    }
}

/// A 1m candle as (symbol, index from `t0`), checked against the prices the fake was given.
fn read(symbol: Symbol, timeframe: Timeframe, c: Candle) -> (String, i64) {
    assert_eq!(timeframe, TF);
    let i = (c.time - t0()).num_minutes();
    assert_eq!(c, candle(symbol.as_str(), i), "{symbol} candle {i} arrived with other prices");
    (symbol.as_str().to_string(), i)
}

fn start(fake: &FakeBinanceMarket, clock: &ManualClock, resume: Option<Arc<dyn ResumePoints>>) -> Running {
    let mut config = BinanceFeedConfig::new(BinanceMarket::Spot, vec![pair("BTCUSDT")]);
    config.rest_url = fake.rest_url();
    config.stream_url = fake.stream_url();
    config.warmup_candles = 10;
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    let (pairs, updates) = watch::channel(config.subscriptions.clone());
    let counts = Arc::new(FeedCounts::default());
    let mut feed =
        BinanceFeed::new(config, Arc::new(clock.clone())).unwrap().with_updates(updates).with_observer(counts.clone());
    if let Some(resume) = resume {
        feed = feed.with_resume_points(resume);
    }
    Running { feed: RunningFeed::spawn(feed, counts, read), pairs }
}

impl Running {
    fn set(&self, symbols: &[&str]) {
        self.pairs.send(symbols.iter().map(|s| pair(s)).collect()).unwrap();
    }

    /// Stops the feed and returns the candles still queued: there must be none.
    async fn stop(self) -> Vec<(String, i64)> {
        self.feed.stop().await
    }
}

fn of(symbol: &str, range: std::ops::RangeInclusive<i64>) -> Vec<(String, i64)> {
    range.map(|i| (symbol.to_string(), i)).collect()
}

#[tokio::test]
async fn a_new_set_subscribes_and_unsubscribes_on_the_open_socket_without_losing_a_candle() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 6));
    fake.add_candles("ETHUSDT", TF, &history("ETHUSDT", 6));
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(6 * 60 + 30));
    let mut feed = start(&fake, &clock, None);
    assert_eq!(feed.candles(6).await, of("BTCUSDT", 0..=5));
    fake.wait_for_connections(1, WAIT).await.unwrap();

    // ETHUSDT joins while BTCUSDT's candle 6 is forming.
    feed.set(&["BTCUSDT", "ETHUSDT"]);
    fake.wait_for_streams(WAIT, |s| s.iter().any(|s| s == "ethusdt@kline_1m")).await.unwrap();
    // Its backfill: the 10-candle warm-up, of which 0..=5 exist and are closed.
    assert_eq!(feed.candles(6).await, of("ETHUSDT", 0..=5));
    clock.set(t0() + ChronoDuration::seconds(7 * 60 + 5));
    fake.close_candle("BTCUSDT", TF, &candle("BTCUSDT", 6));
    assert_eq!(feed.next_candle().await, ("BTCUSDT".into(), 6), "the kept pair lost nothing");
    fake.close_candle("ETHUSDT", TF, &candle("ETHUSDT", 6));
    assert_eq!(feed.next_candle().await, ("ETHUSDT".into(), 6), "the gained pair streams live");
    assert_eq!(fake.connections(), 1, "no reconnect");
    assert_eq!(
        fake.stream_requests(),
        requests(&[("SUBSCRIBE", &["ethusdt@kline_1m", "ethusdt@trade"])]),
        "only the new streams were asked for"
    );
    let eth_start = fake.requests().into_iter().find(|r| r.query.get("symbol").is_some_and(|s| s == "ETHUSDT"));
    assert_eq!(
        eth_start.expect("an ETHUSDT klines request").query["startTime"],
        (t0() + ChronoDuration::minutes(6 - 10)).timestamp_millis().to_string()
    );

    // BTCUSDT leaves: unsubscribed, and a frame of it still in flight is dropped.
    feed.set(&["ETHUSDT"]);
    fake.wait_for_streams(WAIT, |s| !s.iter().any(|s| s.starts_with("btcusdt"))).await.unwrap();
    clock.set(t0() + ChronoDuration::seconds(8 * 60 + 5));
    fake.add_candles("BTCUSDT", TF, &[candle("BTCUSDT", 7)]);
    fake.push_raw(&testkit::binance_stream::kline_frame("BTCUSDT", TF, &candle("BTCUSDT", 7), true));
    fake.close_candle("ETHUSDT", TF, &candle("ETHUSDT", 7));
    assert_eq!(feed.next_candle().await, ("ETHUSDT".into(), 7), "nothing of BTCUSDT came first");
    assert_eq!(
        fake.stream_requests(),
        requests(&[
            ("SUBSCRIBE", &["ethusdt@kline_1m", "ethusdt@trade"]),
            ("UNSUBSCRIBE", &["btcusdt@kline_1m", "btcusdt@trade"]),
        ])
    );

    // BTCUSDT comes back: it resumes after the last candle it delivered (6), so 7 is filled, once.
    feed.set(&["BTCUSDT", "ETHUSDT"]);
    assert_eq!(feed.next_candle().await, ("BTCUSDT".into(), 7));
    // The backfilled candle can arrive before the fake has read the SUBSCRIBE frame; a kline pushed before
    // that would not be sent (the feed would fill it from REST when the next one skips ahead).
    fake.wait_for_streams(WAIT, |s| s.iter().any(|s| s == "btcusdt@kline_1m")).await.unwrap();
    clock.set(t0() + ChronoDuration::seconds(9 * 60 + 5));
    fake.close_candle("BTCUSDT", TF, &candle("BTCUSDT", 8));
    assert_eq!(feed.next_candle().await, ("BTCUSDT".into(), 8));
    assert_eq!(fake.connections(), 1);
    assert_eq!(feed.stop().await, Vec::<(String, i64)>::new());
}

#[tokio::test]
async fn instruments_binance_cannot_serve_are_skipped_and_the_feed_carries_on() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 3));
    fake.add_candles("ETHUSDT", TF, &history("ETHUSDT", 3));
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(3 * 60 + 30));
    let mut feed = start(&fake, &clock, None);
    assert_eq!(feed.candles(3).await, of("BTCUSDT", 0..=2));
    fake.wait_for_connections(1, WAIT).await.unwrap();

    // Each set naming a symbol the feed has not seen listed makes it look at exchangeInfo again; waiting for
    // that look means the set was taken, not coalesced with the next one.
    let listings = |n: usize| {
        move |r: &[testkit::binance_stream::RestRequest]| {
            r.iter().filter(|r| r.path == "/api/v3/exchangeInfo").count() >= n
        }
    };
    // EURUSD is forex and PEPEUSDT is not listed: nothing is left to change, so nothing is sent.
    feed.set(&["BTCUSDT", "EURUSD", "PEPEUSDT"]);
    fake.wait_for_requests(WAIT, listings(2)).await.unwrap();
    // Only forex and unlisted pairs: the current pairs stay.
    feed.set(&["EURUSD", "PEPEUSDT"]);
    fake.wait_for_requests(WAIT, listings(3)).await.unwrap();
    // A servable pair among unservable ones still joins.
    feed.set(&["BTCUSDT", "PEPEUSDT", "ETHUSDT"]);
    assert_eq!(feed.candles(3).await, of("ETHUSDT", 0..=2));
    // The backfill's candles can arrive before the fake has read the SUBSCRIBE frame sent ahead of them.
    fake.wait_for_streams(WAIT, |s| s.iter().any(|s| s == "ethusdt@kline_1m")).await.unwrap();
    assert_eq!(fake.stream_requests(), requests(&[("SUBSCRIBE", &["ethusdt@kline_1m", "ethusdt@trade"])]));
    clock.set(t0() + ChronoDuration::seconds(4 * 60 + 5));
    fake.close_candle("BTCUSDT", TF, &candle("BTCUSDT", 3));
    assert_eq!(feed.next_candle().await, ("BTCUSDT".into(), 3));
    assert!(!feed.is_finished(), "the feed is still running");
    assert_eq!(feed.stop().await, Vec::<(String, i64)>::new());
}

/// The app's candle store, as far as the feed sees it: ETHUSDT is stored up to candle 3.
#[derive(Debug)]
struct Stored;

#[async_trait::async_trait]
impl ResumePoints for Stored {
    async fn last_stored(&self, symbol: &Symbol, _timeframe: Timeframe) -> Result<Option<DateTime<Utc>>, String> {
        Ok((symbol.as_str() == "ETHUSDT").then(|| candle("ETHUSDT", 3).time))
    }
}

#[tokio::test]
async fn a_pair_gained_mid_run_asks_the_vendor_only_for_what_the_store_lacks() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 6));
    fake.add_candles("ETHUSDT", TF, &history("ETHUSDT", 6));
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(6 * 60 + 30));
    let mut feed = start(&fake, &clock, Some(Arc::new(Stored)));
    assert_eq!(feed.candles(6).await, of("BTCUSDT", 0..=5));
    fake.wait_for_connections(1, WAIT).await.unwrap();

    feed.set(&["BTCUSDT", "ETHUSDT"]);
    assert_eq!(feed.candles(2).await, of("ETHUSDT", 4..=5), "only the candles after the stored ones");
    let eth: Vec<_> =
        fake.requests().into_iter().filter(|r| r.query.get("symbol").is_some_and(|s| s == "ETHUSDT")).collect();
    assert_eq!(eth.len(), 1);
    assert_eq!(eth[0].query["startTime"], candle("ETHUSDT", 4).time.timestamp_millis().to_string());
    assert_eq!(feed.stop().await, Vec::<(String, i64)>::new());
}

#[tokio::test]
async fn a_set_sent_while_disconnected_goes_into_the_next_connections_url() {
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", TF, &history("BTCUSDT", 3));
    fake.add_candles("ETHUSDT", TF, &history("ETHUSDT", 3));
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(3 * 60 + 30));
    let mut feed = start(&fake, &clock, None);
    assert_eq!(feed.candles(3).await, of("BTCUSDT", 0..=2));
    fake.wait_for_connections(1, WAIT).await.unwrap();

    fake.hold_connections();
    fake.disconnect();
    feed.set(&["ETHUSDT"]);
    clock.set(t0() + ChronoDuration::seconds(4 * 60 + 5));
    fake.release_connections();
    // Whether the set arrived before or after the socket was found dead, ETHUSDT is in and BTCUSDT is out.
    fake.wait_for_streams(WAIT, |s| s == ["ethusdt@kline_1m", "ethusdt@trade"]).await.unwrap();
    assert_eq!(feed.candles(4).await, of("ETHUSDT", 0..=3));
    clock.set(t0() + ChronoDuration::seconds(5 * 60 + 5));
    fake.close_candle("ETHUSDT", TF, &candle("ETHUSDT", 4));
    assert_eq!(feed.next_candle().await, ("ETHUSDT".into(), 4), "BTCUSDT's missed candle 3 was not filled");
    assert_eq!(feed.stop().await, Vec::<(String, i64)>::new());
}

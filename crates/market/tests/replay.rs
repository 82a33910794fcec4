//! The replay feed against the feed contract, with real candles from tests/data, plus pacing, shutdown and
//! real-tick behaviour. Paced tests run on tokio's paused clock: they never sleep for real.

use chrono::{DateTime, TimeZone, Utc};
use domain::{Candle, Price, Symbol, Tick, Timeframe};
use market::contract::{check_events, check_feed_contract};
use market::{FeedEnd, FeedEvent, LoadOptions, MarketFeed, ReplayFeed, ReplaySeries, ReplaySpeed, load_candles};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::path::PathBuf;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn eurusd_h1() -> ReplaySeries {
    let candles = load_candles(&data("lean_oanda_EURUSD_H1_head300.csv.gz"), &LoadOptions::default()).unwrap();
    ReplaySeries::new(Symbol::normalize("EURUSD"), Timeframe::H1, candles)
}

fn spx_d1() -> ReplaySeries {
    let candles = load_candles(&data("stockindicators_default.csv"), &LoadOptions::default()).unwrap();
    ReplaySeries::new(Symbol::normalize("SPY"), Timeframe::D1, candles)
}

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, d, h, m, 0).unwrap()
}

fn bar(time: DateTime<Utc>, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Candle {
    Candle { time, open: o, high: h, low: l, close: c, volume: dec!(1) }
}

fn real_tick(symbol: &Symbol, time: DateTime<Utc>, price: Decimal) -> Tick {
    let p = Price::new(price).unwrap();
    Tick { symbol: symbol.clone(), time, bid: p, ask: p, synthetic_from: None }
}

async fn collect(feed: ReplayFeed) -> (market::FeedStats, Vec<FeedEvent>) {
    let (tx, mut rx) = mpsc::channel(8);
    let run = feed.run(tx, CancellationToken::new());
    let gather = async {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    };
    let (stats, events) = tokio::join!(run, gather);
    (stats.unwrap(), events)
}

#[tokio::test]
async fn replay_meets_the_feed_contract_on_two_merged_series() {
    let make = || Box::new(ReplayFeed::new(vec![eurusd_h1(), spx_d1()])) as Box<dyn MarketFeed>;
    let stats = check_feed_contract(make, 600).await.unwrap();
    assert_eq!(stats.end, FeedEnd::Shutdown);
    assert!(stats.candles + stats.ticks >= 600);
}

#[tokio::test(start_paused = true)]
async fn paced_replay_meets_the_feed_contract() {
    let make = || {
        Box::new(ReplayFeed::new(vec![eurusd_h1()]).with_speed(ReplaySpeed::CandlesPerSecond(4.0)))
            as Box<dyn MarketFeed>
    };
    check_feed_contract(make, 50).await.unwrap();
}

#[tokio::test]
async fn a_whole_replay_is_in_order_and_counted() {
    let (h1, d1) = (eurusd_h1(), spx_d1());
    let candles = (h1.candles.len() + d1.candles.len()) as u64;
    let (stats, events) = collect(ReplayFeed::new(vec![h1, d1])).await;
    assert_eq!(stats.end, FeedEnd::Finished);
    assert_eq!(stats.candles, candles);
    assert_eq!(stats.ticks, candles * 4);
    assert_eq!(events.len() as u64, candles * 5);
    check_events(&events).unwrap();
    // 2007 EURUSD comes wholly before 2017 SPY; series_interleave_by_market_time covers overlap.
    let symbols: Vec<_> = events.iter().map(|e| e.symbol().as_str().to_string()).collect();
    assert!(symbols.contains(&"EURUSD".to_string()) && symbols.contains(&"SPY".to_string()));
}

#[tokio::test]
async fn series_interleave_by_market_time() {
    let (a, b) = (Symbol::normalize("EURUSD"), Symbol::normalize("BTCUSD"));
    let hourly: Vec<_> = (0..24).map(|h| bar(utc(2, h, 0), dec!(1.1), dec!(1.2), dec!(1.0), dec!(1.15))).collect();
    let daily = vec![bar(utc(2, 0, 0), dec!(40000), dec!(41000), dec!(39000), dec!(39500))];
    let feed = ReplayFeed::new(vec![
        ReplaySeries::new(b.clone(), Timeframe::D1, daily),
        ReplaySeries::new(a.clone(), Timeframe::H1, hourly),
    ]);
    let events: Vec<_> = feed.events().unwrap().collect();
    check_events(&events).unwrap();
    // The daily bar's open tick comes first (series order at equal times) and its high tick at 08:00
    // right after the 07:00-08:00 hourly close.
    assert_eq!(events[0].symbol(), &b);
    let daily_high =
        events.iter().position(|e| matches!(e, FeedEvent::Tick(t) if t.symbol == b && t.time == utc(2, 8, 0))).unwrap();
    assert!(
        matches!(&events[daily_high - 1], FeedEvent::CandleClosed { symbol, candle, .. } if *symbol == a && candle.time == utc(2, 7, 0))
    );
    // Both close at midnight; series order breaks the tie.
    let closes: Vec<_> = events[events.len() - 2..]
        .iter()
        .map(|e| match e {
            FeedEvent::CandleClosed { symbol, .. } => symbol.clone(),
            FeedEvent::Tick(_) => panic!("expected closes at the end"),
        })
        .collect();
    assert_eq!(closes, vec![b, a]);
}

#[tokio::test]
async fn real_ticks_replace_synthetic_ones_where_they_cover_a_candle() {
    let s = Symbol::normalize("EURUSD");
    let candles: Vec<_> = (0..3).map(|h| bar(utc(2, h, 0), dec!(1.1), dec!(1.2), dec!(1.0), dec!(1.15))).collect();
    let ticks = vec![
        // before the first candle: dropped
        real_tick(&s, utc(1, 23, 59), dec!(1.09)),
        real_tick(&s, utc(2, 1, 0), dec!(1.11)),
        real_tick(&s, utc(2, 1, 30), dec!(1.12)),
        real_tick(&s, utc(2, 1, 30), dec!(1.13)),
    ];
    let series = ReplaySeries::new(s, Timeframe::H1, candles).with_ticks(ticks);
    let events: Vec<_> = ReplayFeed::new(vec![series]).events().unwrap().collect();
    check_events(&events).unwrap();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match e {
            FeedEvent::Tick(t) if t.synthetic_from.is_some() => 's',
            FeedEvent::Tick(_) => 'r',
            FeedEvent::CandleClosed { .. } => 'C',
        })
        .collect();
    assert_eq!(kinds.iter().collect::<String>(), "ssssCrrrCssssC");
}

#[tokio::test]
async fn start_at_skips_earlier_candles() {
    let series = eurusd_h1();
    let start = series.candles[10].time;
    let events: Vec<_> = ReplayFeed::new(vec![series.clone()])
        .with_start_at(Some(start - chrono::Duration::minutes(1)))
        .events()
        .unwrap()
        .collect();
    assert_eq!(events[0].time(), start);
    assert_eq!(events.len(), (series.candles.len() - 10) * 5);
}

#[tokio::test(start_paused = true)]
async fn paced_replay_spaces_candles_in_tokio_time_and_skips_closures() {
    let s = Symbol::normalize("EURUSD");
    // Three hours on Friday, then the market reopens on Sunday.
    let times = [utc(5, 19, 0), utc(5, 20, 0), utc(5, 21, 0), utc(7, 22, 0)];
    let candles: Vec<_> = times.iter().map(|t| bar(*t, dec!(1.1), dec!(1.2), dec!(1.0), dec!(1.15))).collect();
    let feed = ReplayFeed::new(vec![ReplaySeries::new(s, Timeframe::H1, candles)])
        .with_speed(ReplaySpeed::CandlesPerSecond(2.0));
    let (tx, mut rx) = mpsc::channel(1);
    let started = Instant::now();
    let run = tokio::spawn(feed.run(tx, CancellationToken::new()));
    let mut closes = Vec::new();
    while let Some(event) = rx.recv().await {
        if matches!(event, FeedEvent::CandleClosed { .. }) {
            closes.push(started.elapsed());
        }
    }
    assert_eq!(run.await.unwrap().unwrap().candles, 4);
    // Half a second a candle; the weekend counts as one candle, not 49.
    let want = [500, 1000, 1500, 2500].map(Duration::from_millis);
    for (got, want) in closes.iter().zip(want) {
        assert!(got.abs_diff(want) <= Duration::from_millis(2), "{closes:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_a_paced_replay_mid_way() {
    let feed = ReplayFeed::new(vec![eurusd_h1()]).with_speed(ReplaySpeed::CandlesPerSecond(1.0));
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(feed.run(tx, shutdown.clone()));
    let mut received = 0;
    while let Some(event) = rx.recv().await {
        received += 1;
        if matches!(event, FeedEvent::CandleClosed { .. }) && received == 10 {
            shutdown.cancel();
        }
    }
    let stats = run.await.unwrap().unwrap();
    assert_eq!(stats.end, FeedEnd::Shutdown);
    assert_eq!(stats.candles, 2);
    assert_eq!(stats.candles + stats.ticks, received);
}

#[tokio::test]
async fn shutdown_stops_a_replay_blocked_on_a_full_channel() {
    let feed = ReplayFeed::new(vec![eurusd_h1()]);
    let (tx, _rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(feed.run(tx, shutdown.clone()));
    tokio::task::yield_now().await;
    shutdown.cancel();
    let stats = run.await.unwrap().unwrap();
    assert_eq!(stats.end, FeedEnd::Shutdown);
    assert!(stats.candles + stats.ticks <= 4);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_receiver_ends_the_replay_cleanly() {
    for speed in [ReplaySpeed::Unpaced, ReplaySpeed::CandlesPerSecond(10.0)] {
        let feed = ReplayFeed::new(vec![eurusd_h1()]).with_speed(speed);
        let (tx, mut rx) = mpsc::channel(1);
        let run = tokio::spawn(feed.run(tx, CancellationToken::new()));
        for _ in 0..7 {
            rx.recv().await.unwrap();
        }
        drop(rx);
        let stats = run.await.unwrap().unwrap();
        assert_eq!(stats.end, FeedEnd::ReceiverDropped, "{speed:?}");
        assert!(stats.candles + stats.ticks >= 7);
    }
}

#[tokio::test]
async fn a_replay_is_a_market_feed() {
    let feed: Box<dyn MarketFeed> = Box::new(ReplayFeed::new(vec![]).with_name("bundled"));
    assert_eq!(feed.name(), "bundled");
    let (tx, mut rx) = mpsc::channel(1);
    let stats = feed.run(tx, CancellationToken::new()).await.unwrap();
    assert_eq!((stats.candles, stats.ticks, stats.end), (0, 0, FeedEnd::Finished));
    assert!(rx.recv().await.is_none());
}

#[test]
fn the_checker_catches_broken_streams() {
    let s = Symbol::normalize("EURUSD");
    let up = bar(utc(2, 0, 0), dec!(1.1), dec!(1.2), dec!(1.0), dec!(1.15));
    let series = ReplaySeries::new(s.clone(), Timeframe::H1, vec![up.clone()]);
    let good: Vec<_> = ReplayFeed::new(vec![series]).events().unwrap().collect();
    check_events(&good).unwrap();

    let mut swapped = good.clone();
    swapped.swap(1, 2);
    let err = check_events(&swapped).unwrap_err();
    assert!(err.message.contains("before the previous"), "{err}");

    let mut reordered = good.clone();
    if let (FeedEvent::Tick(low), FeedEvent::Tick(high)) = (&good[1], &good[2]) {
        let (mut low, mut high) = (low.clone(), high.clone());
        std::mem::swap(&mut low.bid, &mut high.bid);
        std::mem::swap(&mut low.ask, &mut high.ask);
        reordered[1] = FeedEvent::Tick(low);
        reordered[2] = FeedEvent::Tick(high);
    }
    let err = check_events(&reordered).unwrap_err();
    assert!(err.message.contains("bullish"), "{err}");

    let err = check_events(&good[4..]).unwrap_err();
    assert!(err.message.contains("without a tick"), "{err}");
}

/// A gated replay stops at the gate's time and goes on only when the gate moves; shutdown still works while it
/// waits. Paused time: a receive that would wait forever times out at once, and only when the feed is stuck.
#[tokio::test(start_paused = true)]
async fn a_gated_replay_holds_at_the_gate_until_it_moves() {
    let series = eurusd_h1();
    let third_close = series.candles[2].close_time(Timeframe::H1);
    let gate = market::ReplayGate::closed();
    let feed = ReplayFeed::new(vec![series]).with_gate(Some(gate.clone()));
    let (tx, mut rx) = mpsc::channel(1024);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(feed.run(tx, shutdown.clone()));
    let quiet = Duration::from_secs(3600);

    assert!(tokio::time::timeout(quiet, rx.recv()).await.is_err(), "a closed gate lets nothing through");

    gate.open_until(third_close);
    let mut candles = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(quiet, rx.recv()).await {
        assert!(event.time() <= third_close, "{event:?} is past the gate");
        if let FeedEvent::CandleClosed { candle, .. } = event {
            candles.push(candle.time);
        }
    }
    assert_eq!(candles.len(), 3, "the three candles that close by the gate's time, and nothing after");

    gate.open();
    let next = tokio::time::timeout(quiet, rx.recv()).await.unwrap().unwrap();
    assert!(next.time() > third_close);

    shutdown.cancel();
    let stats = running.await.unwrap().unwrap();
    assert_eq!(stats.end, FeedEnd::Shutdown);
}

//! Issue 7's latency figure (docs/BENCHMARKS.md): from a closed-kline frame sent on the fake Binance stream to
//! the engine's signal stored and announced (`SignalCreated` on the bus, published after the insert commits),
//! through the real app on SQLite: the live Binance feed, the pump, the scanner and the store. Target: p50 and
//! p99 at most 5 ms. The one network hop is the fake's WebSocket frame over loopback.
//!
//! The candles are the first EURUSD hours of the embedded default series (`crates/market/data`, 100 for the
//! warm-up and then `C2S_CANDLES`, default 1,500, sent live), scaled to bitcoin prices and served as BTCUSDT
//! (Binance lists crypto only): the engine's features are relative, so they signal as the EURUSD series
//! does. About one candle in ten makes a signal, so the default run times well over a hundred signals and
//! its p99 is not just the slowest one. The first `WARM` candles are the REST history the feed backfills at start; each later
//! one is sent closed, with the app's clock set to just after its close so it is live, not stale. A candle
//! that makes no signal is given `QUIET` to show it does not; only candles that make one are timed.
//!
//! A custom harness (`harness = false`): the figure is an end-to-end percentile, which criterion's
//! per-iteration model does not fit.

use bus::Event;
use chrono::{DateTime, Utc};
use domain::{Candle, ManualClock, Symbol, Timeframe, UserSettings};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::binance_stream::FakeBinanceMarket;
use testkit::{AppOptions, ConfigTweak, spawn_app_on};

/// Candles the feed backfills at start (the indicators' warm-up).
const WARM: usize = 100;
/// How long a candle that made no signal is waited on before the next one is sent.
const QUIET: Duration = Duration::from_millis(50);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn bitcoin_candles(live: usize) -> Vec<Candle> {
    let scale = Decimal::from(40_000);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../market/data/lean_oanda_EURUSD_H1_2007-2018.csv.gz");
    market::load_candles(&path, &market::LoadOptions::default())
        .expect("the embedded EURUSD series loads")
        .into_iter()
        .take(WARM + live)
        .map(|c| Candle {
            time: c.time,
            open: (c.open * scale).round_dp(2),
            high: (c.high * scale).round_dp(2),
            low: (c.low * scale).round_dp(2),
            close: (c.close * scale).round_dp(2),
            volume: c.volume,
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run() {
    let candles = bitcoin_candles(env_usize("C2S_CANDLES", 1500));
    let close_of = |c: &Candle| c.close_time(Timeframe::H1);
    let fake = FakeBinanceMarket::start(&["BTCUSDT"]).await;
    fake.add_candles("BTCUSDT", Timeframe::H1, &candles[..WARM]);
    let clock = ManualClock::new(close_of(&candles[WARM - 1]) + chrono::Duration::seconds(1));

    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.expect("the database");
    store.migrate().await.expect("migrations");
    // Someone must want BTCUSDT 1h signals, at any confidence, or the scanner stores none.
    let user = store.ensure_discord_user("4400000000000000004", "bench").await.expect("a user");
    let settings = UserSettings {
        enabled_timeframes: vec![Timeframe::H1],
        preferred_pairs: vec![Symbol::normalize("BTCUSDT")],
        min_confidence: Decimal::ZERO,
        notification_cooldown_minutes: 0,
        max_notifications_per_day: 1000,
        ..UserSettings::default()
    };
    store.save_settings(user.id, &settings).await.expect("settings");

    let (rest, stream) = (fake.rest_url(), fake.stream_url());
    let configure = ConfigTweak::new(move |c| {
        c.feed = "binance".into();
        c.binance.base_url = Some(rest.clone());
        c.binance_feed.stream_url = Some(stream.clone());
        c.binance_feed.pairs = vec!["BTCUSDT:1h".into()];
        c.binance_feed.warmup_candles = WARM as u32;
    });
    let mut app = spawn_app_on(
        &url,
        AppOptions { clock: Some(Arc::new(clock.clone())), configure: Some(configure), ..AppOptions::default() },
    )
    .await;
    fake.wait_for_connections(1, Duration::from_secs(30)).await.expect("the feed connects");
    // The backfill is written by the candle writer; the live candles start once it is in.
    let last_warm = candles[WARM - 1].time;
    let started = Instant::now();
    while app.store.last_candle_time(&Symbol::normalize("BTCUSDT"), Timeframe::H1).await.ok().flatten()
        != Some(last_warm)
    {
        assert!(started.elapsed() < Duration::from_secs(30), "the backfill was not stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut sent_at: HashMap<DateTime<Utc>, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    // (when it was timed, since the first live candle; how long it took; the live candle's index and open time).
    let mut timeline: Vec<(Duration, Duration, usize, DateTime<Utc>)> = Vec::new();
    let run_started = Instant::now();
    for (index, candle) in candles[WARM..].iter().enumerate() {
        let close = close_of(candle);
        clock.set(close + chrono::Duration::milliseconds(50));
        sent_at.insert(close, Instant::now());
        fake.close_candle("BTCUSDT", Timeframe::H1, candle);
        // Signals are attributed by their candle's close, so one that came late is still timed right.
        while let Some(event) = app.next_event(QUIET).await {
            if let Event::SignalCreated { signal, .. } = event
                && let Some(at) = sent_at.get(&signal.created_at)
            {
                let took = at.elapsed();
                latencies.push(took);
                timeline.push((run_started.elapsed(), took, index, candle.time));
                if signal.created_at == close {
                    break;
                }
            }
        }
    }
    latencies.sort();
    if latencies.is_empty() {
        println!("candle-to-signal: no candle made a signal; nothing to time");
    } else {
        println!(
            "candle-to-signal over {} signals from {} live candles (SQLite, Binance feed): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            candles.len() - WARM,
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().expect("not empty")),
        );
        timeline.sort_by_key(|&(_, took, _, _)| std::cmp::Reverse(took));
        let slowest: Vec<String> = timeline
            .iter()
            .take(5)
            .map(|(at, took, index, time)| {
                format!("{:.2} ms at {:.1} s (live candle {index}, {time})", ms(*took), at.as_secs_f64())
            })
            .collect();
        println!("candle-to-signal: slowest {}", slowest.join(", "));
    }
    app.stop().await;
}

fn main() {
    // `cargo bench` passes `--bench`; a filter naming another bench skips this one.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if args.iter().any(|f| !"candle_to_signal".contains(f.as_str())) {
        return;
    }
    // `C2S_LOG=signalpost=debug` prints the app's stage timings (scanner, pump) to stderr.
    if let Ok(filter) = std::env::var("C2S_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run());
}

//! The dashboard's data benchmarks (docs/BENCHMARKS.md, "Dashboard data pages"): 1,000,000 trades of one user
//! seeded in bulk (`Store::import_trades`), then the history page's latency, the streamed CSV export of every
//! row (time, and the growth of the process's resident memory while it streams), and `/api/trades` under 200
//! concurrent connections. Ignored by default; run in release, on SQLite or (with TEST_DATABASE_URL)
//! PostgreSQL:
//!
//! ```text
//! cargo test --release -p signalpost --test web_bench -- --ignored --nocapture
//! BENCH_TRADES=100000 cargo test --release -p signalpost --test web_bench -- --ignored --nocapture
//! ```
//!
//! The server and the clients share this process (and the machine's cores), so the figures include the
//! clients' own work.

mod web_support;

use chrono::{DateTime, Duration, Utc};
use domain::{CloseReason, Closing, Lots, NewTrade, Price, Side, Trade, TradeId, TradeResult};
use rust_decimal_macros::dec;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};
use store::Role;
use testkit::{AppOptions, spawn_app};
use web_support::{COOKIE, WebClient, user_with_password};

fn percentile(sorted: &[StdDuration], p: f64) -> StdDuration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn report(name: &str, mut latencies: Vec<StdDuration>) {
    latencies.sort();
    println!(
        "{name}: n={} median={:.2?} p99={:.2?} max={:.2?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `count` trades for `user`, one a minute, every fourth still open, the rest closed with a mix of results
/// over four pairs.
fn trades(user: domain::UserId, count: usize, start: DateTime<Utc>) -> impl Iterator<Item = Trade> {
    let pairs = [("EURUSD", "1.08000", "1.08250", "1.07800"), ("GBPUSD", "1.26000", "1.26300", "1.25700")];
    (0..count).map(move |i| {
        let (symbol, entry, win, loss) = pairs[i % pairs.len()];
        let at = start + Duration::minutes(i as i64);
        let new = NewTrade::new(
            user,
            symbol,
            Side::Long,
            Price::parse(entry).unwrap(),
            Lots::parse("0.1").unwrap(),
            None,
            None,
            at,
        )
        .unwrap();
        let mut trade = Trade::from_new(TradeId(0), new);
        if i % 4 != 0 {
            let won = i % 3 != 0;
            let closing = Closing {
                exit_price: Price::parse(if won { win } else { loss }).unwrap(),
                reason: if won { CloseReason::TpHit } else { CloseReason::SlHit },
                at: at + Duration::minutes(30),
                result: if won { TradeResult::Win } else { TradeResult::Loss },
                pips: Some(if won { dec!(25) } else { dec!(-20) }),
                profit: Some(if won { dec!(25) } else { dec!(-20) }),
            };
            trade.close(&closing).unwrap();
        }
        trade
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand in release, see the file's docs"]
async fn dashboard_data_with_a_million_trades() {
    let count: usize = std::env::var("BENCH_TRADES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (path, dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "140.10", "140.20", "140.00", "140.15")]);
    let options = AppOptions { replay_series: vec![format!("USDJPY:1h:{}", path.display())], ..AppOptions::default() };
    let (mut app, _db) = spawn_app(options).await;
    app.wait_for_replay_end().await;
    drop(dir);
    let user = user_with_password(&app.store, "bench", "bench-password", Role::User).await;
    let other = user_with_password(&app.store, "other", "other-password", Role::User).await;
    println!("backend: {}", app.store.backend_name());

    let seeding = Instant::now();
    let start: DateTime<Utc> = "2020-01-01T00:00:00Z".parse().unwrap();
    let mut batch = Vec::with_capacity(10_000);
    for trade in trades(user.id, count, start) {
        batch.push(trade);
        if batch.len() == 10_000 {
            app.store.import_trades(&batch).await.unwrap();
            batch.clear();
        }
    }
    app.store.import_trades(&batch).await.unwrap();
    let others: Vec<Trade> = trades(other.id, 1000, start).collect();
    app.store.import_trades(&others).await.unwrap();
    println!("seeded {count} trades in {:.1?}", seeding.elapsed());

    let mut web = WebClient::new(&app.address);
    web.login("bench", "bench-password").await;
    let cookie = format!("{COOKIE}={}", web.cookie.clone().unwrap());

    // History: the first page, filtered pages, and pages deep in the history through their cursors.
    let deep = start + Duration::minutes(count as i64 / 2);
    let deep_cursor = format!("{}_{}", deep.timestamp_micros(), i64::MAX);
    let paths = [
        "/trades".to_string(),
        "/trades?status=closed".to_string(),
        "/trades?status=open&pair=GBPUSD".to_string(),
        "/trades?result=loss&from=2020-06-01&to=2020-06-30".to_string(),
        format!("/trades?after={deep_cursor}"),
        format!("/trades?status=closed&result=win&after={deep_cursor}"),
    ];
    for path in &paths {
        assert_eq!(web.get(path).await.status, reqwest::StatusCode::OK, "{path}");
    }
    let mut latencies = Vec::new();
    for round in 0..100 {
        for path in &paths {
            let started = Instant::now();
            let answer = web.get(path).await;
            latencies.push(started.elapsed());
            assert_eq!(answer.status, reqwest::StatusCode::OK, "{path} in round {round}");
        }
    }
    report("history page (6 query shapes, sequential)", latencies);

    // The CSV of every row, streamed; a sampler records the process's resident memory meanwhile.
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            }
        })
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut response =
        client.get(format!("{}/trades.csv", app.address)).header("cookie", &cookie).send().await.unwrap();
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(lines, count + 1, "a header and every trade");
    println!(
        "csv export: {count} rows, {:.1} MB in {:.2?}; RSS before {} MiB, peak growth {} MiB",
        bytes as f64 / 1e6,
        elapsed,
        before / 1024,
        (peak.load(Ordering::Relaxed) - before) / 1024
    );

    // The JSON API at 200 concurrent connections: a fixed number of requests, one client (and connection)
    // per worker, every latency recorded.
    const CONNECTIONS: usize = 200;
    const REQUESTS: usize = 20_000;
    let remaining = Arc::new(AtomicU64::new(REQUESTS as u64));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (remaining, cookie, url) = (remaining.clone(), cookie.clone(), format!("{}/api/trades", app.address));
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            let mut latencies = Vec::new();
            while remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                let sent = Instant::now();
                let response = client.get(&url).header("cookie", &cookie).send().await.unwrap();
                assert_eq!(response.status(), reqwest::StatusCode::OK);
                response.bytes().await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    println!("api: {REQUESTS} requests in {elapsed:.2?} ({:.0} req/s)", REQUESTS as f64 / elapsed.as_secs_f64());
    report("GET /api/trades (50 rows), 200 connections", latencies);
    app.stop().await;
}

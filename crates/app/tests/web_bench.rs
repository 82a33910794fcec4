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
//! clients' own work. The API is measured twice: with a reqwest client per connection (as first measured),
//! and with a minimal keep-alive HTTP/1.1 client per connection that costs the server's cores less.
//!
//! The file also holds the (not ignored) correctness tests of what made those pages fast: the API's page
//! cache follows every write to a user's trades, made by any process, and never outlives a session.

mod web_support;

use chrono::{DateTime, Duration, Utc};
use domain::{CloseReason, Closing, Lots, NewTrade, Price, Side, Trade, TradeId, TradeResult};
use rust_decimal_macros::dec;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};
use store::Role;
use testkit::{AppOptions, spawn_app};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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
    let mut by_shape = vec![Vec::new(); paths.len()];
    for round in 0..100 {
        for (path, latencies) in paths.iter().zip(&mut by_shape) {
            let started = Instant::now();
            let answer = web.get(path).await;
            latencies.push(started.elapsed());
            assert_eq!(answer.status, reqwest::StatusCode::OK, "{path} in round {round}");
        }
    }
    for (path, latencies) in paths.iter().zip(&by_shape) {
        report(&format!("  {path}"), latencies.clone());
    }
    report("history page (6 query shapes, sequential)", by_shape.concat());

    // Shapes the six above do not cover, each matching little or nothing: every one must be an index probe.
    let sparse = [
        "/trades?pair=XAUUSD",
        "/trades?result=breakeven",
        "/trades?status=open&result=win",
        "/trades?status=cancelled&result=loss&pair=EURUSD",
        "/trades?result=breakeven&pair=GBPUSD&from=2020-03-01&to=2020-09-30",
    ];
    let mut latencies = Vec::new();
    for _ in 0..20 {
        for path in sparse {
            let started = Instant::now();
            let answer = web.get(path).await;
            latencies.push(started.elapsed());
            assert_eq!(answer.status, reqwest::StatusCode::OK, "{path}");
        }
    }
    report("history page (5 sparse filter shapes, sequential)", latencies);

    // What the process's resident memory does with no request at all, over a window as long as the export
    // takes at most: the app's own services (the position monitor reloads every open trade every few
    // seconds) move it too, and the sampler cannot tell their peaks from the export's.
    let idle_before = rss_kib();
    let idle_peak = Arc::new(AtomicU64::new(idle_before));
    let idle_started = Instant::now();
    while idle_started.elapsed() < StdDuration::from_secs(8) {
        idle_peak.fetch_max(rss_kib(), Ordering::Relaxed);
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    println!(
        "idle for 8 s: RSS before {} MiB, peak growth {} MiB",
        idle_before / 1024,
        (idle_peak.load(Ordering::Relaxed) - idle_before) / 1024
    );

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
    // per worker, every latency recorded. First with reqwest, then with the minimal client.
    let url = format!("{}/api/trades", app.address);
    let latencies = api_load(200, 20_000, move |_| {
        let (url, cookie) = (url.clone(), cookie.clone());
        async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            move || {
                let request = client.get(&url).header("cookie", &cookie).send();
                async move {
                    let response = request.await.unwrap();
                    assert_eq!(response.status(), reqwest::StatusCode::OK);
                    response.bytes().await.unwrap().len()
                }
            }
        }
    })
    .await;
    report("GET /api/trades (50 rows), 200 connections, reqwest client", latencies);
    let address = app.address.trim_start_matches("http://").to_string();
    let session = web.cookie.clone().unwrap();
    let latencies = api_load(200, 20_000, move |_| {
        let (address, session) = (address.clone(), session.clone());
        async move {
            let connection = Arc::new(tokio::sync::Mutex::new(Http1::connect(&address).await));
            move || {
                let (connection, session) = (connection.clone(), session.clone());
                async move { connection.lock().await.get("/api/trades", &session).await }
            }
        }
    })
    .await;
    report("GET /api/trades (50 rows), 200 connections, minimal keep-alive client", latencies);
    app.stop().await;
}

/// Runs `requests` requests over `connections` workers, each with its own client (`client(i)` builds it and
/// returns the request to repeat), and returns every latency.
async fn api_load<C, CF, R, RF>(connections: usize, requests: usize, client: C) -> Vec<StdDuration>
where
    C: Fn(usize) -> CF,
    CF: std::future::Future<Output = R> + Send + 'static,
    R: Fn() -> RF + Send + 'static,
    RF: std::future::Future<Output = usize> + Send,
{
    let remaining = Arc::new(AtomicU64::new(requests as u64));
    let mut workers = Vec::new();
    let started = Instant::now();
    for i in 0..connections {
        let (remaining, make) = (remaining.clone(), client(i));
        workers.push(tokio::spawn(async move {
            let request = make.await;
            let mut latencies = Vec::new();
            while remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                let sent = Instant::now();
                let bytes = request().await;
                assert!(bytes > 0);
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    println!("api: {requests} requests in {elapsed:.2?} ({:.0} req/s)", requests as f64 / elapsed.as_secs_f64());
    latencies
}

/// The least an HTTP/1.1 keep-alive client can be: one connection, GET with a cookie, a body read by its
/// Content-Length. Enough for the API's answers (never chunked), and far cheaper than a full client.
struct Http1 {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl Http1 {
    async fn connect(address: &str) -> Http1 {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Http1 { stream, buffer: Vec::with_capacity(64 * 1024) }
    }

    /// GETs `path` and returns the body's length, asserting a 200.
    async fn get(&mut self, path: &str, session: &str) -> usize {
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nCookie: {COOKIE}={session}\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        let head_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a Content-Length");
        while self.buffer.len() < head_end + length {
            self.fill().await;
        }
        self.buffer.drain(..head_end + length);
        length
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..read]);
    }
}

fn api_trade_ids(body: &str) -> Vec<i64> {
    let page: serde_json::Value = serde_json::from_str(body).unwrap();
    page["trades"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect()
}

/// The API's page cache is keyed by the trades version read with the session, which every write to the
/// user's trades changes in its own transaction: writes made outside this server (another store connection,
/// as another process or the CLI would make them) show on the very next request, and another user's
/// identical query never gets this user's page.
#[tokio::test]
async fn api_pages_follow_writes_from_other_processes_and_stay_per_user() {
    let (app, db) = spawn_app(AppOptions::default()).await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
    app.store.import_trades(&trades(ann.id, 3, start).collect::<Vec<_>>()).await.unwrap();
    app.store.import_trades(&trades(bob.id, 2, start).collect::<Vec<_>>()).await.unwrap();
    let (mut ann_web, mut bob_web) = (WebClient::new(&app.address), WebClient::new(&app.address));
    ann_web.login("ann", "ann-password").await;
    bob_web.login("bob", "bob-password").await;

    let first = ann_web.get("/api/trades").await;
    let ann_ids = api_trade_ids(&first.body);
    assert_eq!(ann_ids.len(), 3);
    assert_eq!(ann_web.get("/api/trades").await.body, first.body, "the same page again");
    let bob_ids = api_trade_ids(&bob_web.get("/api/trades").await.body);
    assert_eq!(bob_ids.len(), 2);
    assert!(bob_ids.iter().all(|id| !ann_ids.contains(id)), "bob never sees ann's trades");

    // Another process writes: a new trade, then a close of the open one.
    let other = store::connect(db.url()).await.unwrap();
    let later = start + Duration::days(1);
    other.import_trades(&trades(ann.id, 1, later).collect::<Vec<_>>()).await.unwrap();
    let after_insert = api_trade_ids(&ann_web.get("/api/trades").await.body);
    assert_eq!(after_insert.len(), 4, "the new trade shows at once");
    let page: serde_json::Value = serde_json::from_str(&ann_web.get("/api/trades").await.body).unwrap();
    let open =
        page["trades"].as_array().unwrap().iter().find(|t| t["status"] == "open").unwrap()["id"].as_i64().unwrap();
    let closing = Closing {
        exit_price: Price::parse("1.09").unwrap(),
        reason: CloseReason::ManualClose,
        at: later,
        result: TradeResult::Win,
        pips: Some(dec!(100)),
        profit: Some(dec!(100)),
    };
    other.close_trade(TradeId(open), &closing).await.unwrap().expect("it was open");
    let page: serde_json::Value = serde_json::from_str(&ann_web.get("/api/trades").await.body).unwrap();
    let closed = page["trades"].as_array().unwrap().iter().find(|t| t["id"] == open).unwrap();
    assert_eq!(closed["status"], "closed", "the close shows at once");
    assert_eq!(api_trade_ids(&bob_web.get("/api/trades").await.body), bob_ids, "bob's page is untouched");
    app.stop().await;
}

/// Sessions are never cached: a session ended by sign-out, or revoked by another process (as
/// `signalpost users set-password` does), is refused on its next request, even right after its page was
/// served from the cache.
#[tokio::test]
async fn a_signed_out_or_revoked_session_is_never_served() {
    let (app, db) = spawn_app(AppOptions::default()).await;
    let cy = user_with_password(&app.store, "cy", "cy-password", Role::User).await;
    app.store
        .import_trades(&trades(cy.id, 2, "2024-01-01T00:00:00Z".parse().unwrap()).collect::<Vec<_>>())
        .await
        .unwrap();

    let mut browser = WebClient::new(&app.address);
    browser.login("cy", "cy-password").await;
    for _ in 0..2 {
        assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::OK);
    }
    let token = browser.cookie.clone().unwrap();
    assert_eq!(browser.submit("/", "/logout", &[]).await.status, reqwest::StatusCode::SEE_OTHER);
    let mut replay = WebClient::new(&app.address);
    replay.cookie = Some(token);
    assert_eq!(replay.get("/api/trades").await.status, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(replay.get("/trades").await.status, reqwest::StatusCode::SEE_OTHER);

    let mut browser = WebClient::new(&app.address);
    browser.login("cy", "cy-password").await;
    for _ in 0..2 {
        assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::OK);
    }
    let other = store::connect(db.url()).await.unwrap();
    assert!(other.delete_user_web_sessions(cy.id).await.unwrap() >= 1);
    assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(browser.get("/trades.csv").await.status, reqwest::StatusCode::SEE_OTHER);
    app.stop().await;
}

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
//! The in-process clients share this process (and the machine's cores) with the server, so their figures
//! include the clients' own work. The API is measured three times: with a reqwest client per connection (as
//! first measured), with a minimal keep-alive HTTP/1.1 client per connection that costs the server's cores
//! less, and with `wrk` (`-c200 -t2 -d10s --latency`, keep-alive) in its own process: a C client that costs
//! least, and the figure issue 5 names. Without `wrk` on the PATH that last run says it skipped.
//!
//! The file also holds the (not ignored) correctness tests of what made those pages fast: the API's page
//! cache and the session cache follow every write made by this process at once, and another process's
//! within the session cache's TTL; neither outlives a session.

mod web_support;

use chrono::{DateTime, Duration, Utc};
use domain::{Clock as _, CloseReason, Closing, Lots, ManualClock, NewTrade, Price, Side, Trade, TradeId, TradeResult};
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
    // `WEB_BENCH_ONLY=csv` stops after the export, for measuring it alone.
    if std::env::var("WEB_BENCH_ONLY").is_ok_and(|only| only == "csv") {
        app.stop().await;
        return;
    }

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
    let address = app.address.clone();
    let session = web.cookie.clone().unwrap();
    let wrk = tokio::task::spawn_blocking(move || run_wrk(&format!("{address}/api/trades"), &session)).await.unwrap();
    match wrk {
        Some(figures) => println!(
            "GET /api/trades (50 rows), 200 connections, wrk -c200 -t2 -d10s (out of process): {:.0} req/s, \
             p50={:.2?} p75={:.2?} p90={:.2?} p99={:.2?}, {} requests",
            figures.requests_per_second, figures.p50, figures.p75, figures.p90, figures.p99, figures.requests
        ),
        None => println!("GET /api/trades with wrk: skipped, `wrk` is not installed"),
    }
    app.stop().await;
}

/// What `wrk --latency` reports.
#[derive(Debug)]
struct WrkFigures {
    requests: u64,
    requests_per_second: f64,
    p50: StdDuration,
    p75: StdDuration,
    p90: StdDuration,
    p99: StdDuration,
}

/// Runs wrk against `url` with the session cookie, keep-alive, 200 connections on 2 threads for 10 s, and
/// parses its latency distribution; `None` when wrk is not installed. Every answer must be a 200.
fn run_wrk(url: &str, session: &str) -> Option<WrkFigures> {
    let output = std::process::Command::new("wrk")
        .args(["-c200", "-t2", "-d10s", "--latency", "-H"])
        .arg(format!("Cookie: {COOKIE}={session}"))
        .arg(url)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("could not run wrk: {error}"),
    };
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    println!("{}", text.trim_end());
    Some(parse_wrk(&text))
}

fn parse_wrk(text: &str) -> WrkFigures {
    assert!(!text.contains("Non-2xx"), "every answer must be a 200: {text}");
    let percentile = |label: &str| {
        let line = text.lines().map(str::trim).find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{text}"));
        wrk_duration(line.split_whitespace().nth(1).unwrap())
    };
    let requests_per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("{text}"));
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .map(|v| v.parse().unwrap())
        .unwrap_or_else(|| panic!("{text}"));
    WrkFigures {
        requests,
        requests_per_second,
        p50: percentile("50%"),
        p75: percentile("75%"),
        p90: percentile("90%"),
        p99: percentile("99%"),
    }
}

/// wrk's durations: `812.00us`, `4.21ms`, `1.02s`, `2.00m`.
fn wrk_duration(text: &str) -> StdDuration {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or_else(|| panic!("{text}"));
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("{text}"));
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        other => panic!("unknown wrk unit {other:?} in {text}"),
    };
    StdDuration::from_secs_f64(seconds)
}

#[test]
fn wrk_reports_are_parsed() {
    let text = "Running 10s test @ http://127.0.0.1:1/api/trades
  2 threads and 200 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.03ms    1.20ms  41.00ms   90.00%
    Req/Sec    20.10k     1.00k   22.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    4.21ms
     90%    6.50ms
     99%    1.02s
  400123 requests in 10.00s, 1.20GB read
Requests/sec:  40001.23
Transfer/sec:    122.00MB
";
    let figures = parse_wrk(text);
    assert_eq!(figures.requests, 400_123);
    assert!((figures.requests_per_second - 40_001.23).abs() < 1e-6);
    assert_eq!(figures.p50, StdDuration::from_micros(812));
    assert_eq!(figures.p75, StdDuration::from_micros(4210));
    assert_eq!(figures.p90, StdDuration::from_micros(6500));
    assert_eq!(figures.p99, StdDuration::from_millis(1020));
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

/// The app on a clock that only the test moves, so the session cache's TTL never lapses unless it says so:
/// what shows at once must have been seen through the store's write generations.
async fn app_on_a_frozen_clock() -> (testkit::TestApp, testkit::db::DbGuard, ManualClock) {
    // Whole seconds: the store keeps microseconds, and the tests compare stored times with the clock's.
    let clock = ManualClock::new(DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap());
    let (app, db) = spawn_app(AppOptions { clock: Some(Arc::new(clock.clone())), ..AppOptions::default() }).await;
    (app, db, clock)
}

/// The API's page cache is keyed by the trades version read with the session, which every write to the
/// user's trades changes in its own transaction, and the session cache is ended by every store write of
/// this process: writes made through another store connection of this process (as an in-process command
/// would make them) show on the very next request, with the clock frozen, and another user's identical
/// query never gets this user's page. (Another *process*'s writes are seen once the session cache's TTL has
/// passed; see `a_session_revoked_by_another_process_is_refused_once_the_ttl_passes`.)
#[tokio::test]
async fn api_pages_follow_writes_from_other_processes_and_stay_per_user() {
    let (app, db, _clock) = app_on_a_frozen_clock().await;
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

/// A session ended by sign-out, or revoked through another store connection of this process, is refused on
/// its very next request, even right after its page and its context were served from the caches, with the
/// clock frozen (so not because the session cache's TTL lapsed).
#[tokio::test]
async fn a_signed_out_or_revoked_session_is_never_served() {
    let (app, db, _clock) = app_on_a_frozen_clock().await;
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

/// A session revoked by another process (`signalpost users set-password`, run as its own process) may be
/// served from the session cache until its TTL passes, and is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_by_another_process_is_refused_once_the_ttl_passes() {
    let (app, db, clock) = app_on_a_frozen_clock().await;
    user_with_password(&app.store, "dee", "dee-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    browser.login("dee", "dee-password").await;
    assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::OK);

    let url = db.url().to_string();
    tokio::task::spawn_blocking(move || set_password_in_another_process(&url, "dee", "a-new-password")).await.unwrap();
    // Still within the TTL: served from the cache, or refused if a write of this process (another test of
    // this binary) ended the entry meanwhile. Both are allowed.
    let within = browser.get("/api/trades").await.status;
    assert!([reqwest::StatusCode::OK, reqwest::StatusCode::UNAUTHORIZED].contains(&within), "{within}");
    clock.advance(web::session_cache::TTL);
    assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(browser.get("/trades").await.status, reqwest::StatusCode::SEE_OTHER);
    let mut again = WebClient::new(&app.address);
    again.login("dee", "a-new-password").await;
    assert_eq!(again.get("/api/trades").await.status, reqwest::StatusCode::OK, "the new password works");
    app.stop().await;
}

/// `signalpost users set-password USER`, the password on stdin, against `database_url`. Blocking: run it off
/// the test's runtime, so the app in it keeps serving (and never holds a write the CLI waits for).
fn set_password_in_another_process(database_url: &str, user: &str, password: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_signalpost"));
    command.current_dir(dir.path());
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("DISCORD_") || k.starts_with("SIGNALPOST_")) {
        command.env_remove(name);
    }
    let mut child = command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .args(["users", "set-password", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A trade opened, and then closed, by this process shows in `/api/trades` on the very next request, with
/// the clock frozen: the write ends the cached session context, whose fresh trades version misses the page
/// cache.
#[tokio::test]
async fn a_trade_written_in_this_process_shows_on_the_next_request() {
    let (app, _db, clock) = app_on_a_frozen_clock().await;
    let eve = user_with_password(&app.store, "eve", "eve-password", Role::User).await;
    let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
    app.store.import_trades(&trades(eve.id, 2, start + Duration::days(1)).collect::<Vec<_>>()).await.unwrap();
    let mut browser = WebClient::new(&app.address);
    browser.login("eve", "eve-password").await;
    let before = api_trade_ids(&browser.get("/api/trades").await.body);
    assert_eq!(before.len(), 2);
    assert_eq!(api_trade_ids(&browser.get("/api/trades").await.body), before, "served again");

    let new = NewTrade::new(
        eve.id,
        "EURUSD",
        Side::Long,
        Price::parse("1.08").unwrap(),
        Lots::parse("0.1").unwrap(),
        None,
        None,
        clock.now(),
    )
    .unwrap();
    let opened = app.store.open_trade(&new).await.unwrap().trade;
    let after = api_trade_ids(&browser.get("/api/trades").await.body);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], opened.id.0, "the new trade shows at once, newest first");

    let closing = Closing {
        exit_price: Price::parse("1.09").unwrap(),
        reason: CloseReason::ManualClose,
        at: clock.now(),
        result: TradeResult::Win,
        pips: Some(dec!(100)),
        profit: Some(dec!(100)),
    };
    app.store.close_trade(opened.id, &closing).await.unwrap().expect("it was open");
    let page: serde_json::Value = serde_json::from_str(&browser.get("/api/trades").await.body).unwrap();
    assert_eq!(page["trades"][0]["status"], "closed", "the close shows at once");
    app.stop().await;
}

/// The session cache does not stop a busy session's expiry from moving forward: a request more than five
/// minutes after the last touch extends it, and the next one (its context read again after that write)
/// does not write again.
#[tokio::test]
async fn a_cached_session_is_still_touched() {
    let (app, _db, clock) = app_on_a_frozen_clock().await;
    user_with_password(&app.store, "fay", "fay-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    browser.login("fay", "fay-password").await;
    let id_hash = web::session::id_hash(browser.cookie.as_deref().unwrap());
    assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::OK);
    let signed_in = app.store.web_session(&id_hash, clock.now()).await.unwrap().unwrap();

    clock.advance(Duration::minutes(6));
    assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::OK);
    let touched = app.store.web_session(&id_hash, clock.now()).await.unwrap().unwrap();
    assert_eq!(touched.last_seen, clock.now());
    assert!(touched.expires_at > signed_in.expires_at);

    let touched_at = clock.now();
    clock.advance(Duration::minutes(1));
    for _ in 0..3 {
        assert_eq!(browser.get("/api/trades").await.status, reqwest::StatusCode::OK);
    }
    let later = app.store.web_session(&id_hash, clock.now()).await.unwrap().unwrap();
    assert_eq!(later.last_seen, touched_at, "not touched again within five minutes");
    app.stop().await;
}

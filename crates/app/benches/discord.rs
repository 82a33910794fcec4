//! Issue 4's Discord figures, recorded in docs/BENCHMARKS.md.
//!
//! - Fan-out of one signal to 10,000 users, on a SQLite file and, when `TEST_DATABASE_URL` is set, on
//!   PostgreSQL: the routing decision until it is durable (`Router::route`), then, reported separately, the
//!   time until every per-user row exists (`materialise_pending`), one signal at a time and in a burst with
//!   the materialiser running; also the first route after taking the lease, the route after a settings
//!   change, and the bulk insert of issue 4's first round once for comparison. Timed loops print p50/p99
//!   (criterion has none); criterion times the in-memory decision and the read of the users.
//! - The interaction handler: everything `POST /discord/interactions` does but the socket (signature,
//!   parsing, handler, JSON answer) for the Open Trade click and the modal submit, 2,000 times each on
//!   SQLite; p50 and p99 are printed, as criterion reports no percentiles.
//!
//! `cargo bench -p signalpost --bench discord` (PostgreSQL too with `TEST_DATABASE_URL=postgres://…`).

use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion};
use domain::{Entry, NotificationId, Price, Side, Signal, SignalId, SignalSource, Symbol, Timeframe, UserSettings};
use ed25519_dalek::{Signer, SigningKey};
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use signalpost::router::{self, MATERIALISE_BATCH, Router, materialise_pending};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use store::{NewNotification, NewUser, NotificationBatch, NotifyOutcome, Role, Store};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const USERS: usize = 10_000;
const INTERACTIONS: usize = 2_000;
/// Signals routed one at a time, each followed by writing its rows.
const ROUTES: usize = 50;
/// Signals routed back to back while the materialiser runs.
const BURST: usize = 10;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn signal(at: DateTime<Utc>) -> Signal {
    let p = |s: &str| Price::parse(s).unwrap();
    Signal {
        symbol: Symbol::normalize("EURUSD"),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.0854") },
        stop_loss: Some(p("1.08")),
        take_profits: vec![p("1.0962")],
        leverage: None,
        confidence: Some(dec!(0.82)),
        source: SignalSource::Engine,
        model_version: Some("rev-2".into()),
        stage1_prob: Some(0.91),
        stage2_prob: Some(0.73),
        created_at: at,
    }
}

/// 10,000 users; one in ten prefers other pairs and declines EURUSD, the rest keep the defaults (cap 20 a
/// day, 60-minute cooldown), so the figure includes real filtering and real limit checks.
async fn populate(store: &Arc<dyn Store>) {
    let started = Instant::now();
    for i in 0..USERS {
        let new = NewUser {
            discord_user_id: Some(format!("{}", 1_000_000 + i)),
            display_name: format!("u{i}"),
            role: Role::User,
        };
        let user = store.create_user(&new).await.unwrap();
        if i % 10 == 0 {
            let settings =
                UserSettings { preferred_pairs: vec![Symbol::normalize("XAUUSD")], ..UserSettings::default() };
            store.save_settings(user.id, &settings).await.unwrap();
        }
    }
    eprintln!("({} users created in {:.1?})", USERS, started.elapsed());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    format!(
        "n = {}, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        times.len(),
        percentile(times, 0.50),
        percentile(times, 0.99),
        times.last().unwrap()
    )
}

/// The routing decision as the running router makes it (`Router::route`: the users version and limit
/// changes read, 10k users filtered and limit-checked in memory, the audience written and committed), then
/// the time until every per-user notification row exists (`materialise_pending`), each reported separately.
fn bench_route(c: &mut Criterion, rt: &Runtime, backend: &str, store: Arc<dyn Store>) {
    rt.block_on(populate(&store));
    // Each routed signal is a day later than the last, so every route queues 9,000 notifications instead of
    // meeting the cap or the cooldown.
    let day = Arc::new(AtomicI64::new(0));
    let next_signal = || {
        let at = t0() + Days::days(day.fetch_add(1, Ordering::Relaxed));
        let s = signal(at);
        let (id, _) = rt.block_on(store.insert_signal(&s, None)).unwrap();
        (id, s)
    };
    let wanted = USERS - USERS / 10;
    let clock: Arc<dyn domain::Clock> = Arc::new(domain::SystemClock);

    // Before: the bulk INSERT … SELECT of issue 4's first round, once, for comparison.
    let (id, s) = next_signal();
    let started = Instant::now();
    let users = rt.block_on(store.users_with_settings()).unwrap();
    let (candidates, _) = router::candidates(&users, &s);
    let batch = NotificationBatch { signal_id: id, symbol: s.symbol.clone(), created_at: s.created_at };
    let outcomes = rt.block_on(store.create_notifications_within_limits(&batch, &candidates)).unwrap();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, NotifyOutcome::Created(_))).count(), wanted);
    eprintln!("{backend}: before (read users + one bulk INSERT of 9,000 rows): {:.1?}", started.elapsed());

    // A router taking the lease: acquire, seed its limits from the database, load the users, route.
    let mut router = Router::new(clock.clone(), Router::unique_holder());
    let (id, s) = next_signal();
    let started = Instant::now();
    let routed = rt.block_on(router.route(store.as_ref(), id, &s)).unwrap();
    eprintln!("{backend}: first route after taking the lease (seed + users + decision): {:.1?}", started.elapsed());
    assert_eq!(routed.queued, wanted);
    rt.block_on(materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {})).unwrap();

    // Steady state, one signal at a time: the decision, then (timed separately) writing its 9,000 rows.
    let mut decisions = Vec::new();
    let mut rows = Vec::new();
    let mut end_to_end = Vec::new();
    for _ in 0..ROUTES {
        let (id, s) = next_signal();
        let started = Instant::now();
        let routed = rt.block_on(router.route(store.as_ref(), id, &s)).unwrap();
        let decided = started.elapsed();
        assert_eq!(routed.queued, wanted);
        let written = rt.block_on(materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {})).unwrap();
        assert_eq!(written as usize, wanted);
        decisions.push(decided);
        end_to_end.push(started.elapsed());
        rows.push(started.elapsed() - decided);
    }
    eprintln!("{backend}: decision, durable (Router::route): {}", summary(&mut decisions));
    eprintln!("{backend}: then writing the 9,000 rows (materialise_pending): {}", summary(&mut rows));
    eprintln!("{backend}: end to end, until every row exists: {}", summary(&mut end_to_end));

    // A burst (many instruments close at once): routed back to back while the materialiser writes rows in
    // the background, as `router::run` does; on SQLite the routes queue behind its write transactions.
    let burst: Vec<(SignalId, Signal)> = (0..BURST).map(|_| next_signal()).collect();
    let (decisions, all_rows) = rt.block_on(async {
        let done = Arc::new(tokio::sync::Notify::new());
        let (store2, done2) = (store.clone(), done.clone());
        let background = tokio::spawn(async move {
            let mut written = 0;
            loop {
                written += materialise_pending(store2.as_ref(), MATERIALISE_BATCH, |_| {}).await.unwrap();
                if written as usize >= BURST * (USERS - USERS / 10) {
                    return;
                }
                done2.notified().await;
            }
        });
        let started = Instant::now();
        let mut decisions = Vec::new();
        for (id, s) in &burst {
            let t = Instant::now();
            router.route(store.as_ref(), *id, s).await.unwrap();
            decisions.push(t.elapsed());
            done.notify_one();
        }
        background.await.unwrap();
        (decisions, started.elapsed())
    });
    let mut decisions = decisions;
    eprintln!(
        "{backend}: burst of {BURST} signals, materialiser running: decision {}; all {} rows in {:.1?}",
        summary(&mut decisions),
        BURST * wanted,
        all_rows
    );

    // After a settings change the cached users are reloaded once.
    let some_user = users[5].0.id;
    rt.block_on(store.save_settings(some_user, &UserSettings::default())).unwrap();
    let (id, s) = next_signal();
    let started = Instant::now();
    rt.block_on(router.route(store.as_ref(), id, &s)).unwrap();
    eprintln!("{backend}: decision right after a settings change (users reloaded): {:.1?}", started.elapsed());
    rt.block_on(materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {})).unwrap();
    rt.block_on(router.release(store.as_ref())).unwrap();

    let mut group = c.benchmark_group("route_10k_users");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    if backend == "sqlite" {
        let s = signal(t0());
        group.bench_function("decision_in_memory", |b| b.iter(|| router::candidates(&users, &s)));
    }
    group.bench_function(BenchmarkId::new("users_with_settings", backend), |b| {
        b.iter(|| rt.block_on(store.users_with_settings()).unwrap())
    });
    group.finish();
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn envelope(kind: u8, user: &str, data: Value) -> Value {
    json!({
        "id": "1300000000000000001", "application_id": "1000000000000000001", "type": kind,
        "token": "interaction-token", "version": 1, "locale": "en-US", "app_permissions": "0", "entitlements": [],
        "authorizing_integration_owners": {}, "context": 1, "attachment_size_limit": 10485760,
        "channel_id": "1000000000000000010",
        "user": {"id": user, "username": "someone", "global_name": "Someone", "discriminator": "0", "avatar": null},
        "data": data,
    })
}

fn click(user: &str, notification: NotificationId) -> Value {
    envelope(3, user, json!({"custom_id": format!("open:{notification}"), "component_type": 2}))
}

fn submit(user: &str, notification: NotificationId) -> Value {
    let values =
        [("entry", "1.0854"), ("lots", "0.1"), ("stop_loss", "1.08"), ("take_profit", "1.0962"), ("notes", "")];
    let rows: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, (id, v))| json!({"type": 1, "id": 2 * i + 1, "components": [{"type": 4, "id": 2 * i + 2, "custom_id": id, "value": v}]}))
        .collect();
    envelope(5, user, json!({"custom_id": format!("trade:{notification}"), "components": rows}))
}

fn signed(body: &Value) -> Request<Body> {
    let bytes = serde_json::to_vec(body).unwrap();
    let ts = Utc::now().timestamp().to_string();
    let signature = key().sign(&[ts.as_bytes(), &bytes].concat());
    Request::post("/discord/interactions")
        .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
        .header("x-signature-timestamp", ts)
        .header("content-type", "application/json")
        .body(Body::from(bytes))
        .unwrap()
}

/// Times `INTERACTIONS` requests through the route, each for its own notification, and prints p50/p99.
async fn time_route(app: &axum::Router, what: &str, requests: Vec<Request<Body>>, expect: &str) {
    let mut times = Vec::with_capacity(requests.len());
    for request in requests {
        let started = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        times.push(started.elapsed());
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(expect), "{what}: {text}");
    }
    times.sort();
    eprintln!(
        "interactions, SQLite: {what}: n = {}, p50 {:.3?}, p99 {:.3?}, max {:.3?}",
        times.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().unwrap()
    );
}

async fn bench_interactions() {
    let (store, _db) = testkit::db::fresh_sqlite().await;
    let discord_id = "1100000000000000000";
    let owner = store.ensure_discord_user(discord_id, "ann").await.unwrap();
    let mut notifications = Vec::with_capacity(2 * INTERACTIONS);
    for i in 0..2 * INTERACTIONS {
        let s = signal(t0() + Days::minutes(i as i64));
        let (signal_id, _) = store.insert_signal(&s, None).await.unwrap();
        let new = NewNotification { signal_id, user_id: owner.id, symbol: s.symbol.clone(), created_at: s.created_at };
        notifications.push(store.create_notification(&new).await.unwrap().unwrap());
    }
    let clock: Arc<dyn domain::Clock> = Arc::new(domain::SystemClock);
    let bus: Arc<dyn bus::Bus> = Arc::new(bus::InProcessBus::default());
    let endpoint = signalpost::http::InteractionEndpoint {
        verifier: discord::signature::InteractionVerifier::new(&hex::encode(key().verifying_key().as_bytes())).unwrap(),
        handler: signalpost::interactions::InteractionHandler::new(store.clone(), bus, clock.clone()),
    };
    let app = signalpost::http::router(signalpost::http::HttpState {
        store: store.clone(),
        metrics: signalpost::metrics::Metrics::new(),
        interactions: Some(Arc::new(endpoint)),
        clock,
        feed: None,
    });
    let (clicks, submits) = notifications.split_at(INTERACTIONS);
    // Signing is the client's work (Discord's), so the requests are built before the clock starts.
    let requests = clicks.iter().map(|n| signed(&click(discord_id, *n))).collect();
    time_route(&app, "Open Trade click (modal)", requests, "\"type\":9").await;
    let requests = submits.iter().map(|n| signed(&submit(discord_id, *n))).collect();
    time_route(&app, "modal submit (trade opened)", requests, "opened").await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut c = Criterion::default().configure_from_args();
    let only = std::env::var("DISCORD_BENCH").unwrap_or_default();
    if only.is_empty() || only == "interactions" {
        rt.block_on(bench_interactions());
    }
    if only.is_empty() || only == "route" {
        let (sqlite, _sqlite_db) = rt.block_on(testkit::db::fresh_sqlite());
        bench_route(&mut c, &rt, "sqlite", sqlite);
        if let Some((pg, _pg_db)) = rt.block_on(testkit::db::fresh_postgres()) {
            bench_route(&mut c, &rt, "postgres", pg);
        }
    }
    c.final_summary();
}

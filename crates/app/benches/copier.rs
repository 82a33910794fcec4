//! Issue 6's copier figures (docs/BENCHMARKS.md), over loopback against the real app on SQLite:
//!
//! 1. Signal-to-order latency: a provider's MESSAGE_CREATE sent on the fake gateway until the copied order
//!    arrives at the fake Alpaca, one follower; p50/p99 over `COPIER_MESSAGES` (default 200), once with the
//!    messages back to back and once `COPIER_GAP_MS` (default 100) apart. Targets: p50 ≤ 5 ms, p99 ≤ 20 ms.
//! 2. 1,000 followers of one provider (`COPIER_FOLLOWERS`): one MESSAGE_CREATE until the 1,000th order is at
//!    the fake. Target: within 1 s. The copier builds every follower's broker client at start, off the signal
//!    path; two signals are sent, and both figures printed.
//!
//! A custom harness (`harness = false`): the work is end to end and the figures are percentiles, which
//! criterion's per-iteration model does not fit. The fake signals each order's arrival (a watch channel),
//! so the figures are not bounded by a polling interval. (Until session 5 this polled a full copy of the
//! fake's order list every 100 µs under the fake's lock, which slowed the fake itself as orders piled up.)

use chrono::Utc;
use risk::{FollowerRiskSettings, RiskSettingsDraft, Sizing};
use rust_decimal_macros::dec;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{BrokerCredentials, BrokerKind, KeyCipher, NewFollower, NewUser, Role, Store};
use testkit::alpaca::FakeAlpaca;
use testkit::discord::FakeDiscord;
use testkit::discord::gateway::FakeGateway;
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};

const LATENCY_CHANNEL: &str = "2200000000000000001";
const FANOUT_CHANNEL: &str = "2200000000000000002";
const PROVIDER: &str = "3300000000000000003";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn followers(store: &Arc<dyn Store>, alpaca: &FakeAlpaca, channel: &str, n: usize, offset: usize) {
    let cipher = KeyCipher::from_base64(testkit::app::TEST_SECRET_KEY).expect("the test key");
    // Every copy stays open at the fake and in the store, so the open-positions gate must not stop the run.
    let draft = RiskSettingsDraft {
        sizing: Sizing::FixedLots { lots: dec!(0.01) },
        max_open_positions: 1_000_000,
        ..RiskSettingsDraft::default()
    };
    let settings = FollowerRiskSettings::new_checked(draft).expect("valid settings");
    let keys = BrokerCredentials { api_key: alpaca.key_id().to_string(), api_secret: alpaca.secret_key().to_string() };
    for i in 0..n {
        let user = NewUser { discord_user_id: None, display_name: format!("follower{}", offset + i), role: Role::User };
        let user = store.create_user(&user).await.expect("a user").id;
        let new = NewFollower {
            user_id: user,
            provider_channel: channel,
            broker: BrokerKind::Alpaca,
            sealed_credentials: Some(cipher.seal(&keys, user)),
            risk_settings: &settings,
            balance: dec!(100000),
            currency: "USD",
            at: Utc::now(),
        };
        store.save_follower(&new).await.expect("a follower");
    }
}

/// Waits until the fake holds `n` orders; the elapsed time since `since`. The fake signals each arrival, so
/// nothing polls, and counting does not copy the order list.
async fn until_orders(alpaca: &FakeAlpaca, n: usize, since: Instant, limit: Duration) -> Option<Duration> {
    alpaca.wait_for_orders(n, limit).await.ok().map(|()| since.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn start(fake: &FakeDiscord, gateway: &FakeGateway, alpaca: &FakeAlpaca, url: &str) -> TestApp {
    let discord = DiscordOptions {
        token: Some("bench-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        api_base: Some(fake.base_url()),
        ..DiscordOptions::default()
    };
    let (candles, _dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "50000", "50000", "50000", "50000")]);
    let mut app = spawn_app_on(
        url,
        AppOptions {
            discord: Some(discord),
            discord_gateway_url: Some(gateway.url()),
            alpaca_base_url: Some(alpaca.base_url()),
            replay_series: vec![format!("BTCUSD:1h:{}", candles.display())],
            ..AppOptions::default()
        },
    )
    .await;
    app.wait_for_replay_end().await;
    gateway.wait_for_identify(1, Duration::from_secs(30)).await.expect("the app connects to the gateway");
    app
}

/// Times `messages` provider messages to the follower's order (after one untimed warm-up message), `gap`
/// apart, and prints the percentiles and the slowest five.
async fn latency(gateway: &FakeGateway, alpaca: &FakeAlpaca, messages: usize, gap: Duration, first_id: usize) {
    let mut latencies = Vec::with_capacity(messages);
    // (when it was sent, since the first timed message; how long it took), for the slowest ones' report.
    let mut timeline: Vec<(Duration, Duration)> = Vec::with_capacity(messages);
    let run_started = Instant::now();
    for i in 0..=messages {
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        // Distinct text per message (a limit a cent apart), as a provider's signals are.
        let content = format!("BUY BTCUSD {}.{:02}\nSL 48000\nTP 52000", 49000 + i / 100, i % 100);
        let before = alpaca.order_count();
        let sent = Instant::now();
        gateway.message_create(LATENCY_CHANNEL, &format!("{}", first_id + i), PROVIDER, &content);
        let took = until_orders(alpaca, before + 1, sent, Duration::from_secs(10)).await.expect("the order arrives");
        if i > 0 {
            latencies.push(took);
            timeline.push((sent.duration_since(run_started), took));
        }
    }
    latencies.sort();
    let pacing = if gap.is_zero() { "back to back".to_string() } else { format!("{} ms apart", gap.as_millis()) };
    println!(
        "copier signal-to-order latency over {} messages {pacing} (SQLite, 1 Alpaca follower): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().expect("messages > 0")),
    );
    timeline.sort_by_key(|&(_, took)| std::cmp::Reverse(took));
    let slowest: Vec<String> =
        timeline.iter().take(5).map(|(at, took)| format!("{:.2} ms at {:.2} s", ms(*took), at.as_secs_f64())).collect();
    println!("copier latency ({pacing}): slowest {}", slowest.join(", "));
}

async fn run() {
    let messages = env_usize("COPIER_MESSAGES", 200);
    let fanout = env_usize("COPIER_FOLLOWERS", 1000);
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder().token("bench-bot-token").start().await;
    let alpaca = FakeAlpaca::builder().price("BTC/USD", dec!(50000)).rate_limit(10_000_000).start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.expect("the database");
    store.migrate().await.expect("migrations");
    store.add_provider_channel(LATENCY_CHANNEL, "Latency", "bench", Utc::now()).await.expect("a channel");
    store.add_provider_channel(FANOUT_CHANNEL, "Fan-out", "bench", Utc::now()).await.expect("a channel");
    followers(&store, &alpaca, LATENCY_CHANNEL, 1, 0).await;
    followers(&store, &alpaca, FANOUT_CHANNEL, fanout, 1).await;
    let app = start(&fake, &gateway, &alpaca, &url).await;

    // 1. Latency, one follower: back to back (each message as soon as the last order arrived), then paced
    // `COPIER_GAP_MS` apart (default 100), as a provider posts. Back to back, each message's intake commit
    // queues behind the previous signal's trailing writes (its notifications, the copied trade); paced, it
    // does not.
    latency(&gateway, &alpaca, messages, Duration::ZERO, 10_000).await;
    let gap = Duration::from_millis(env_usize("COPIER_GAP_MS", 100) as u64);
    latency(&gateway, &alpaca, messages, gap, 20_000).await;

    // 2. Fan-out to every follower of one channel, twice.
    for (round, label) in [(0, "first signal"), (1, "second signal")] {
        let before = alpaca.order_count();
        let content = format!("BUY BTCUSD 4{round}000\nSL 39000\nTP 52000");
        let sent = Instant::now();
        gateway.message_create(FANOUT_CHANNEL, &format!("{}", 90_000 + round), PROVIDER, &content);
        match until_orders(&alpaca, before + fanout, sent, Duration::from_secs(60)).await {
            Some(took) => println!(
                "copier fan-out to {fanout} followers ({label}): last order at the fake after {:.1} ms",
                ms(took)
            ),
            None => println!(
                "copier fan-out to {fanout} followers ({label}): only {} orders within 60 s",
                alpaca.order_count() - before
            ),
        }
    }
    app.stop().await;
}

fn main() {
    // `cargo bench` passes `--bench`; a filter naming another bench skips this one.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if args.iter().any(|f| !"copier".contains(f.as_str())) {
        return;
    }
    // `COPIER_LOG=signalpost=debug` prints the app's stage timings (intake, copier, broker) to stderr.
    if let Ok(filter) = std::env::var("COPIER_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run());
}

//! Delivery held to Discord's global limit (issue 4), recorded in docs/BENCHMARKS.md: the real outbox and
//! the real `DiscordNotifier` deliver 500 queued notifications to the fake Discord with its global limit of
//! 50 requests a second, and this prints the delivery rate and the 429s the fake answered.
//!
//! Each user posts to a channel of their own, so no per-channel limit binds and the global one is all that
//! paces. A second run delivers by DM with the DM-channel route's own limit lifted: opening each user's DM
//! channel is a request too, so messages/s is about half the request rate there. A third run turns the
//! notifier's pacer off, to show what it prevents.
//!
//! `cargo bench -p signalpost --bench discord_delivery`

use chrono::{TimeZone, Utc};
use discord::client::DiscordNotifier;
use discord::{DeliveryError, DeliveryTarget, Notifier, OutgoingMessage, SentMessage};
use domain::{Delivery, Entry, Price, Side, Signal, SignalSource, Symbol, Timeframe, UserSettings};
use rust_decimal::Decimal;
use signalpost::outbox::Outbox;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{NewUser, Role};
use testkit::discord::{FakeDiscord, Limit, Route};

const NOTIFICATIONS: usize = 500;

/// The notifier under test, noting when each send finished.
#[derive(Debug)]
struct Timed {
    inner: DiscordNotifier,
    done: Mutex<Vec<Instant>>,
}

#[async_trait::async_trait]
impl Notifier for Timed {
    async fn send(&self, target: &DeliveryTarget, message: &OutgoingMessage) -> Result<SentMessage, DeliveryError> {
        let sent = self.inner.send(target, message).await;
        if sent.is_ok() {
            self.done.lock().unwrap().push(Instant::now());
        }
        sent
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Channels,
    Dms,
    ChannelsUnpaced,
}

async fn run(mode: Mode) {
    let mut builder =
        FakeDiscord::builder().global_limit(50).limit(Route::CreateDm, Limit::new(10_000, Duration::from_secs(1)));
    let channel = |i: usize| format!("{}", 1_200_000_000_000_000_000_u64 + i as u64);
    for i in 0..NOTIFICATIONS {
        builder = builder.channel(channel(i));
    }
    let fake = builder.start().await;
    let (store, _db) = testkit::db::fresh_sqlite().await;
    for i in 0..NOTIFICATIONS {
        let discord_user_id = Some(format!("{}", 1_100_000_000_000_000_000_u64 + i as u64));
        let user = store
            .create_user(&NewUser { discord_user_id, display_name: format!("u{i}"), role: Role::User })
            .await
            .unwrap();
        let delivery = if mode == Mode::Dms { Delivery::Dm } else { Delivery::Channel(channel(i)) };
        let settings = UserSettings { min_confidence: Decimal::ZERO, delivery, ..UserSettings::default() };
        store.save_settings(user.id, &settings).await.unwrap();
    }
    let p = |s: &str| Price::parse(s).unwrap();
    let signal = Signal {
        symbol: Symbol::normalize("EURUSD"),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.0854") },
        stop_loss: Some(p("1.08")),
        take_profits: vec![p("1.0962")],
        leverage: None,
        confidence: Some(Decimal::new(82, 2)),
        source: SignalSource::Engine,
        model_version: Some("rev-2".into()),
        stage1_prob: Some(0.91),
        stage2_prob: Some(0.73),
        created_at: Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap(),
    };
    let (signal_id, _) = store.insert_signal(&signal, None).await.unwrap();
    let routed = signalpost::router::route(store.as_ref(), signal_id, &signal).await.unwrap();
    assert_eq!(routed.queued, NOTIFICATIONS);

    let mut inner = DiscordNotifier::new("bench-bot-token".into(), Some(fake.base_url())).unwrap();
    if mode == Mode::ChannelsUnpaced {
        inner = inner.with_global_limit(None).with_rate_limit_pause(Duration::from_millis(100));
    }
    let timed = Arc::new(Timed { inner, done: Mutex::new(Vec::new()) });
    let notifier: Arc<dyn Notifier> = timed.clone();
    let clock: Arc<dyn domain::Clock> = Arc::new(domain::SystemClock);
    let mut outbox = Outbox::new(store.clone(), notifier, clock, Arc::new(tokio::sync::Notify::new()));
    let started = Instant::now();
    let mut sent = 0;
    // Transient failures (429s without pacing) are retried after a back-off; keep draining until done.
    while sent < NOTIFICATIONS && started.elapsed() < Duration::from_secs(120) {
        sent += outbox.drain().await;
        if sent < NOTIFICATIONS {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let elapsed = started.elapsed();
    let done = timed.done.lock().unwrap().clone();
    // Steady state: from the 10th to the 90th percentile of completions, leaving out the start and the tail.
    let (from, to) = (done.len() / 10, done.len() * 9 / 10);
    let steady = (to - from) as f64 / (done[to] - done[from]).as_secs_f64();
    let requests = fake.requests().len();
    let name = match mode {
        Mode::Channels => "channel delivery, 500 channels, pacer on",
        Mode::Dms => "DM delivery, 500 users (DM channel opened for each), pacer on",
        Mode::ChannelsUnpaced => "channel delivery, 500 channels, pacer OFF",
    };
    println!(
        "{name}: {} messages in {:.2?} ({:.1} msg/s overall), steady state {steady:.1} msg/s; {} requests \
         ({:.1} req/s overall); 429s: {}",
        done.len(),
        elapsed,
        done.len() as f64 / elapsed.as_secs_f64(),
        requests,
        requests as f64 / elapsed.as_secs_f64(),
        fake.rate_limited_count(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for mode in [Mode::Channels, Mode::Dms, Mode::ChannelsUnpaced] {
        rt.block_on(run(mode));
    }
}

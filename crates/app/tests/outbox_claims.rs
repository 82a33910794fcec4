//! Two `signalpost serve` processes on one PostgreSQL database, both with Discord on, share the signal
//! notification outbox: each queued notification is claimed by one of them and sent once. Needs
//! `TEST_DATABASE_URL` (one SQLite file is never shared by two processes); without it the test says it
//! skipped and passes.

use chrono::Utc;
use domain::{Entry, Price, Side, Signal, SignalSource, Symbol, Timeframe, UserId};
use rust_decimal_macros::dec;
use std::collections::HashSet;
use std::sync::Arc;
use store::{NewNotification, NotificationStatus, Store};
use testkit::discord::FakeDiscord;
use testkit::{AppOptions, DiscordOptions, spawn_app_on};

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
const USERS: usize = 12;
const SIGNALS: usize = 4;

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

fn discord_on(fake: &FakeDiscord) -> DiscordOptions {
    DiscordOptions {
        token: Some("test-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        public_key_hex: None,
        api_base: Some(fake.base_url()),
    }
}

/// An app whose market feed is one candle, so it routes nothing itself: every message it sends is one of
/// the notifications the test queued.
fn quiet(fake: &FakeDiscord) -> (AppOptions, tempfile::TempDir) {
    let (file, dir) = testkit::write_candles(&[("2020-01-01T00:00:00Z", "1.09", "1.09", "1.09", "1.09")]);
    let options = AppOptions {
        replay_series: vec![format!("EURUSD:1h:{}", file.display())],
        replay_speed: 0.0,
        discord: Some(discord_on(fake)),
        ..AppOptions::default()
    };
    (options, dir)
}

/// A linked Discord user who asked for no signals, so the apps' routers never queue anything for them.
async fn linked(store: &Arc<dyn Store>, i: usize) -> UserId {
    let discord_id = format!("11000000000000{i:05}");
    let user = store.ensure_discord_user(&discord_id, &discord_id).await.unwrap().id;
    let settings = domain::UserSettings { notifications_enabled: false, ..domain::UserSettings::default() };
    store.save_settings(user, &settings).await.unwrap();
    user
}

fn signal(symbol: &str) -> Signal {
    Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.0854") },
        stop_loss: Some(p("1.0800")),
        take_profits: vec![p("1.0962")],
        leverage: None,
        confidence: Some(dec!(0.82)),
        source: SignalSource::Engine,
        model_version: None,
        stage1_prob: None,
        stage2_prob: None,
        // Now: stored after both outboxes started, so no backlog TTL applies anyway.
        created_at: Utc::now(),
    }
}

/// The notification a signal message is about, from its buttons' custom ids (`open:<id>` and so on).
fn notification_of(body: &serde_json::Value) -> i64 {
    let custom_id = body["components"][0]["components"][0]["custom_id"].as_str().expect("a button");
    custom_id.rsplit(':').next().unwrap().parse().expect("ends in the notification id")
}

#[tokio::test]
async fn two_app_instances_on_one_postgres_database_send_each_signal_notification_once() {
    let Some((store, db)) = testkit::db::fresh_postgres().await else {
        eprintln!("skipped: two processes sharing the outbox need PostgreSQL (TEST_DATABASE_URL)");
        return;
    };
    let fake = FakeDiscord::start().await;
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(linked(&store, i).await);
    }
    let (first_options, _a) = quiet(&fake);
    let (second_options, _b) = quiet(&fake);
    let first = spawn_app_on(db.url(), first_options).await;
    let second = spawn_app_on(db.url(), second_options).await;

    // Queued while both outboxes run (each polls every second), half through each instance's store.
    let mut queued = Vec::new();
    for s in 0..SIGNALS {
        let signal = signal(["EURUSD", "GBPUSD", "AUDUSD", "NZDUSD"][s % 4]);
        let (signal_id, _) = store.insert_signal(&signal, None).await.unwrap();
        for (i, user) in users.iter().enumerate() {
            let via = if i % 2 == 0 { &first.store } else { &second.store };
            let new = NewNotification {
                signal_id,
                user_id: *user,
                symbol: signal.symbol.clone(),
                created_at: signal.created_at,
            };
            queued.push(via.create_notification(&new).await.unwrap().expect("a new notification").0);
        }
    }
    let n = queued.len();
    fake.wait_for_messages(n, WAIT).await.unwrap();
    // Stopping waits for any send in flight, so a duplicate would be counted below.
    first.stop().await;
    second.stop().await;

    let sent = fake.messages_sent();
    assert_eq!(sent.len(), n, "one message per notification, across both instances");
    let about: HashSet<i64> = sent.iter().map(|m| notification_of(&m.body)).collect();
    assert_eq!(about, queued.iter().copied().collect::<HashSet<_>>(), "every notification, none twice");
    for id in queued {
        let stored = store.get_notification(domain::NotificationId(id)).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts), (NotificationStatus::Sent, 1), "{stored:?}");
    }
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
}

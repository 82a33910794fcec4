//! Provider channels end to end: the real app on the fake gateway, a registered channel's MESSAGE_CREATE
//! stored with its hash and turned into a `provider:<channel>` signal that the router routes to a subscriber;
//! noise, unregistered channels and replays store no signal; edits become revisions and deletions are
//! marked, both visible on `/providers`.
//!
//! The gateway handles dispatches in order, so each test waits for the effect of a later message to know the
//! earlier ones were handled, instead of sleeping.

mod web_support;

use domain::SignalSource;
use std::time::Duration;
use store::{ProviderMessageKind, Store};
use testkit::discord::FakeDiscord;
use testkit::discord::gateway::{FakeGateway, message_object};
use testkit::wait::eventually;
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};
use web_support::{WebClient, user_with_password};

const ANN: &str = "1100000000000000000";
const CHANNEL: &str = "2200000000000000001";
const OTHER: &str = "2200000000000000002";
const PROVIDER: &str = "3300000000000000003";
const WAIT: Duration = Duration::from_secs(30);

const OPEN: &str = "EURUSD BUY 1.0850\nSL 1.0800\nTP 1.0950";

async fn start(fake: &FakeDiscord, gateway: &FakeGateway, url: &str) -> TestApp {
    let discord = DiscordOptions {
        token: Some("test-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        api_base: Some(fake.base_url()),
        ..DiscordOptions::default()
    };
    spawn_app_on(
        url,
        AppOptions { discord: Some(discord), discord_gateway_url: Some(gateway.url()), ..AppOptions::default() },
    )
    .await
}

async fn messages(store: &dyn Store, channel: &str, n: usize) -> Vec<store::ProviderMessage> {
    eventually(&format!("{n} stored messages in {channel}"), WAIT, || async {
        let stored = store.provider_messages(channel, 100).await.unwrap();
        (stored.len() >= n).then_some(stored)
    })
    .await
}

async fn provider_signals(store: &dyn Store) -> Vec<store::StoredSignal> {
    let all = store.recent_signals(1_000_000).await.unwrap();
    all.into_iter().filter(|s| matches!(s.signal.source, SignalSource::Provider(_))).collect()
}

#[tokio::test]
async fn a_registered_channel_makes_provider_signals_once_and_keeps_edits_and_deletions() {
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder().token("test-bot-token").start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;
    store.add_provider_channel(CHANNEL, "EURUSD VIP", "test", chrono::Utc::now()).await.unwrap();
    let app = start(&fake, &gateway, &url).await;
    gateway.wait_for_identify(1, WAIT).await.unwrap();

    // Unregistered channel, then noise, then a half-parsed signal, then a real one: in order.
    gateway.message_create(OTHER, "9001", PROVIDER, OPEN);
    gateway.message_create(CHANNEL, "9002", PROVIDER, "Good morning everyone, big week ahead");
    gateway.message_create(CHANNEL, "9003", PROVIDER, "EURUSD BUY 1.0850\nSL 1.0900\nTP 1.0950");
    gateway.message_create(CHANNEL, "9010", PROVIDER, "BUY @ 1.0850\nSL 1.0800\nTP 1.0950");
    gateway.message_create(CHANNEL, "9004", PROVIDER, OPEN);
    let stored = messages(&*app.store, CHANNEL, 4).await;
    assert!(app.store.provider_messages(OTHER, 10).await.unwrap().is_empty(), "unregistered channel ignored");
    let by_id = |id: &str| stored.iter().find(|m| m.message_id == id).unwrap().clone();
    assert_eq!(by_id("9002").kind, ProviderMessageKind::Noise);
    assert_eq!(by_id("9002").signal_id, None);
    let refused = by_id("9003");
    assert_eq!(refused.kind, ProviderMessageKind::Refused);
    assert!(refused.outcome.starts_with("refused:") && refused.outcome.contains("take profit"), "{}", refused.outcome);
    let no_symbol = by_id("9010");
    assert_eq!(no_symbol.kind, ProviderMessageKind::Refused);
    assert!(no_symbol.outcome.contains("no symbol"), "{}", no_symbol.outcome);
    let open = by_id("9004");
    assert_eq!(open.kind, ProviderMessageKind::Open);
    assert_eq!(open.author.as_deref(), Some(PROVIDER));
    assert_eq!(open.hash.len(), 64);
    let signal_id = open.signal_id.expect("the open made a signal");
    let signals = provider_signals(&*app.store).await;
    assert_eq!(signals.len(), 1, "noise, refusals and other channels make no signal");
    assert_eq!(signals[0].id, signal_id);
    assert_eq!(signals[0].signal.source, SignalSource::Provider(CHANNEL.into()));
    assert_eq!(signals[0].signal.symbol.as_str(), "EURUSD");

    // The router treats it like an engine signal: Ann (EURUSD) is notified about it.
    eventually("a notification for the provider signal", WAIT, || async {
        let inbox = app.store.notifications_for_user(ann, 50, 0).await.unwrap();
        inbox.iter().any(|n| n.signal_id == signal_id).then_some(())
    })
    .await;

    // A replayed dispatch (same ids) stores nothing new; the next message proves it was handled.
    gateway.message_create(CHANNEL, "9004", PROVIDER, OPEN);
    gateway.message_create(CHANNEL, "9005", PROVIDER, "gm");
    messages(&*app.store, CHANNEL, 5).await;
    assert_eq!(provider_signals(&*app.store).await.len(), 1, "a replay places no second signal");
    assert_eq!(app.store.provider_messages(CHANNEL, 100).await.unwrap().len(), 5);

    // An edit is a revision with the new hash; the original text stays.
    let mut edited = message_object(CHANNEL, "9004", PROVIDER, "EURUSD BUY 1.0850\nSL 1.0700\nTP 1.0950");
    edited["edited_timestamp"] = serde_json::json!("2026-01-02T03:04:05.000000+00:00");
    gateway.dispatch_message_update(edited);
    gateway.dispatch_message_delete(CHANNEL, "9002", Some("1000000000000000001"));
    let after = eventually("the edit and the deletion", WAIT, || async {
        let stored = app.store.provider_messages(CHANNEL, 100).await.unwrap();
        let edited = stored.iter().find(|m| m.message_id == "9004")?.clone();
        let deleted = stored.iter().find(|m| m.message_id == "9002")?.clone();
        (!edited.revisions.is_empty() && deleted.deleted_at.is_some()).then_some((edited, deleted))
    })
    .await;
    let (edited, _deleted) = after;
    assert_eq!(edited.content, OPEN, "the original is kept");
    assert_eq!(edited.revisions.len(), 1);
    assert_ne!(edited.revisions[0].hash, edited.hash);
    assert!(edited.revisions[0].content.contains("1.0700"));
    assert_eq!(provider_signals(&*app.store).await.len(), 1, "an edit makes no new signal");

    // Shown on /providers to a signed-in user.
    user_with_password(&app.store, "viewer", "correct horse battery", store::Role::User).await;
    let mut web = WebClient::new(&app.address);
    web.login("viewer", "correct horse battery").await;
    let page = web.get("/providers").await.body;
    assert!(page.contains("EURUSD VIP"), "{page}");
    assert!(page.contains(&edited.revisions[0].hash[..12]), "the edit's hash is shown");
    assert!(page.contains("deleted"), "the deletion is shown");
    app.stop().await;
}

/// `signalpost providers add` registers a channel once; `providers list` shows it.
#[tokio::test]
async fn the_cli_registers_and_lists_provider_channels() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signalpost"));
        for var in ["SIGNALPOST_CONFIG", "SIGNALPOST_BIND", "SIGNALPOST_FEED", "SIGNALPOST_REPLAY_SERIES"] {
            cmd.env_remove(var);
        }
        cmd.current_dir(dir.path()).env("DATABASE_URL", &url).env("RUST_LOG", "warn").args(args);
        cmd.output().expect("the binary runs")
    };
    assert!(run(&["migrate"]).status.success());
    let added = run(&["providers", "add", "--channel", CHANNEL, "--name", "Gold VIP"]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let again = run(&["providers", "add", "--channel", CHANNEL, "--name", "Gold VIP"]);
    assert!(!again.status.success(), "a channel is registered once");
    let listed = run(&["providers", "list", "--json"]);
    assert!(listed.status.success());
    let rows: Vec<serde_json::Value> =
        String::from_utf8(listed.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["channel_id"].as_str(), rows[0]["name"].as_str()), (Some(CHANNEL), Some("Gold VIP")));
    assert_eq!(rows[0]["added_by"], "cli");
    assert_eq!(rows[0]["enabled"], true);
}

/// The `/providers` form registers a channel for an admin only, and refuses a bad id with a reason.
#[tokio::test]
async fn admins_register_provider_channels_on_the_providers_page() {
    let (app, _db) = testkit::spawn_app(AppOptions::default()).await;
    user_with_password(&app.store, "root", "correct horse battery", store::Role::Admin).await;
    user_with_password(&app.store, "bob", "correct horse battery", store::Role::User).await;

    let mut bob = WebClient::new(&app.address);
    bob.login("bob", "correct horse battery").await;
    assert!(!bob.get("/providers").await.body.contains("add-provider"), "no form for a user");
    let refused = bob.submit("/providers", "/providers", &[("channel_id", CHANNEL), ("name", "Bob's")]).await;
    assert_eq!(refused.status, reqwest::StatusCode::FORBIDDEN);
    assert!(app.store.provider_channels().await.unwrap().is_empty());

    let mut root = WebClient::new(&app.address);
    root.login("root", "correct horse battery").await;
    let bad = root.submit("/providers", "/providers", &[("channel_id", "general"), ("name", "x")]).await;
    assert_eq!(bad.status, reqwest::StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("channel id is a number"), "{}", bad.body);
    let added = root.submit("/providers", "/providers", &[("channel_id", CHANNEL), ("name", "Gold VIP")]).await;
    assert_eq!(added.location(), Some("/providers"), "{}", added.body);
    let channels = app.store.provider_channels().await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!((channels[0].channel_id.as_str(), channels[0].added_by.as_str()), (CHANNEL, "root (display)"));
    assert!(root.get("/providers").await.body.contains("Gold VIP"));
    let twice = root.submit("/providers", "/providers", &[("channel_id", CHANNEL), ("name", "Gold VIP")]).await;
    assert_eq!(twice.status, reqwest::StatusCode::BAD_REQUEST);
    assert!(twice.body.contains("registered already"), "{}", twice.body);
    app.stop().await;
}

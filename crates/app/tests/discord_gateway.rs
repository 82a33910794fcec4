//! Interactions over the Discord gateway, end to end: the real app identifies with the fake gateway, an Open
//! Trade click dispatched as INTERACTION_CREATE is answered with the modal through the interaction callback
//! on the fake Discord (which checks the body against Discord's OpenAPI description), the modal submitted
//! over the gateway opens one trade, and after a dropped connection the app RESUMEs and handles an
//! interaction made during the outage exactly once. No public key is configured, so the HTTP endpoint is off
//! and every answer here came through the gateway path.

use serde_json::{Value, json};
use std::time::Duration;
use store::TradeFilter;
use testkit::discord::FakeDiscord;
use testkit::discord::gateway::{Disconnect, FakeGateway};
use testkit::discord::interact;
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};

const ANN: &str = "1100000000000000000";
const WAIT: Duration = Duration::from_secs(30);
/// GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT.
const INTENTS: u64 = (1 << 9) | (1 << 12) | (1 << 15);

/// An interaction as Discord dispatches it (the same object it posts to an Interactions Endpoint); each has
/// its own id and token, as real ones do.
fn envelope(n: u64, kind: u8, user: &str, data: Value) -> Value {
    let id = (1_300_000_000_000_000_000u64 + n).to_string();
    interact::envelope_with(&id, &format!("interaction-token-{n}"), kind, user, data)
}

fn click(n: u64, user: &str, custom_id: &str) -> Value {
    envelope(n, interact::MESSAGE_COMPONENT, user, json!({"custom_id": custom_id, "component_type": 2}))
}

fn submit(n: u64, user: &str, notification: i64, values: &[(&str, &str)]) -> Value {
    envelope(n, interact::MODAL_SUBMIT, user, interact::modal_data(&format!("trade:{notification}"), values))
}

/// The callback the app posted for interaction `n`.
async fn callback(fake: &FakeDiscord, count: usize, n: u64) -> Value {
    let id = (1_300_000_000_000_000_000u64 + n).to_string();
    let callbacks = fake.wait_for_interaction_callbacks(count, WAIT).await.unwrap();
    let found = callbacks.iter().find(|c| c.interaction_id == id).unwrap_or_else(|| panic!("no callback for {id}"));
    assert_eq!(found.token, format!("interaction-token-{n}"));
    found.body.clone()
}

/// Text inputs sit in Label components (`component`) or, in the older layout, action rows (`components`).
fn modal_value(modal: &Value, id: &str) -> String {
    modal["data"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            let nested = row["components"].as_array().cloned().unwrap_or_default();
            nested.into_iter().chain(std::iter::once(row["component"].clone()))
        })
        .find(|c| c["custom_id"] == id)
        .and_then(|c| c["value"].as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn start(fake: &FakeDiscord, gateway: &FakeGateway, url: &str) -> TestApp {
    let discord = DiscordOptions {
        token: Some("test-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        api_base: Some(fake.base_url()),
        ..DiscordOptions::default()
    };
    spawn_app_on(
        url,
        AppOptions {
            replay_series: vec![testkit::fixtures::eurusd_300_series()],
            replay_speed: 0.0,
            discord: Some(discord),
            discord_gateway_url: Some(gateway.url()),
            ..AppOptions::default()
        },
    )
    .await
}

#[tokio::test]
async fn gateway_interactions_open_one_trade_and_survive_a_dropped_connection_by_resuming() {
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder()
        .token("test-bot-token")
        .required_intents(INTENTS)
        .heartbeat_interval(Duration::from_millis(500))
        .start()
        .await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;
    let app = start(&fake, &gateway, &url).await;

    gateway.wait_for_identify(1, WAIT).await.unwrap();
    let query = gateway.connection_queries()[0].clone();
    assert!(query.contains("v=10") && query.contains("encoding=json") && !query.contains("compress"), "{query}");
    // Heartbeats keep the session alive; the fake answers each with an ACK.
    gateway.wait_for_heartbeats(1, WAIT).await.unwrap();

    // A real notification: the replay's first signal, delivered to Ann by DM.
    let sent = fake.wait_for_messages(1, WAIT).await.unwrap();
    let buttons = &sent[0].body["components"][0]["components"];
    let nid: i64 = buttons[0]["custom_id"].as_str().unwrap().strip_prefix("open:").unwrap().parse().unwrap();

    // Open Trade over the gateway: the modal is the first (and only) response, through the callback route.
    gateway.dispatch_interaction(click(1, ANN, &format!("open:{nid}")));
    let modal = callback(&fake, 1, 1).await;
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(modal["data"]["custom_id"], format!("trade:{nid}"));
    let (entry, sl, tp) =
        (modal_value(&modal, "entry"), modal_value(&modal, "stop_loss"), modal_value(&modal, "take_profit"));
    assert!(!entry.is_empty() && !sl.is_empty() && !tp.is_empty(), "{modal}");

    // A provider-channel message on the way is read (and counted) in order with the interactions.
    gateway.message_create("1000000000000000010", "1000000000000000100", "1000000000000000030", "BUY EURUSD 1.0850");

    // The submitted modal opens exactly one trade.
    let values = [("entry", entry.as_str()), ("lots", "0.1"), ("stop_loss", sl.as_str()), ("take_profit", tp.as_str())];
    gateway.dispatch_interaction(submit(2, ANN, nid, &values));
    let opened = callback(&fake, 2, 2).await;
    assert_eq!((opened["type"].as_u64(), opened["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert!(opened["data"]["content"].as_str().unwrap().starts_with("Trade #"), "{opened}");
    let trades = store.list_trades(&TradeFilter::default()).await.unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!((trades[0].user_id, trades[0].notification_id), (ann, Some(domain::NotificationId(nid))));

    // The connection drops; an interaction made meanwhile waits in the session and arrives with the resume.
    assert!(gateway.disconnect(Disconnect::Drop));
    gateway.dispatch_interaction(submit(3, ANN, nid, &values));
    gateway.wait_for_resume(1, WAIT).await.unwrap();
    let again = callback(&fake, 3, 3).await;
    assert!(again["data"]["content"].as_str().unwrap().contains("already open"), "{again}");
    // One more, live after the resume: by the time it is answered, a duplicate of the last would have been.
    gateway.dispatch_interaction(click(4, ANN, &format!("ignore:{nid}")));
    let ignored = callback(&fake, 4, 4).await;
    assert_eq!(ignored["type"], 7, "Ignore updates the signal message: {ignored}");

    let callbacks = fake.interaction_callbacks();
    let ids: Vec<&str> = callbacks.iter().map(|c| c.interaction_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "each interaction answered once: {ids:?}");
    let callback_requests = fake.requests().iter().filter(|r| r.path.ends_with("/callback")).count();
    assert_eq!(callback_requests, 4, "no second answer was even attempted");
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
    assert_eq!(store.list_trades(&TradeFilter::default()).await.unwrap().len(), 1);
    assert_eq!(gateway.identify_count(), 1, "the app resumed rather than identifying again");
    assert_eq!(gateway.resume_count(), 1);
    assert!(gateway.problems().is_empty(), "{:?}", gateway.problems());

    // Counted in the service loop, in order with the interactions, so they are in by the last callback. (The
    // interaction outcomes are counted after Discord's answer and could still be on their way.)
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "signalpost_gateway_connection_events_total{event=\"ready\"} 1",
        "signalpost_gateway_connection_events_total{event=\"resumed\"} 1",
        "signalpost_gateway_connection_events_total{event=\"disconnected\"} 1",
        "signalpost_gateway_messages_total{kind=\"create\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    app.stop().await;
    // A clean stop closes the session with 1000 (nothing left to resume).
    assert_eq!(gateway.client_closes().last().copied().flatten(), Some(1000));
}

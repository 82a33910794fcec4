//! Discord end to end through the real app: the replay makes engine signals, the router queues them, the
//! outbox delivers them to the fake Discord (which checks every body against Discord's OpenAPI
//! description), and signed interactions on `POST /discord/interactions` open trades from the buttons.

use discord::render::ENGINE_TITLE;
use serde_json::{Value, json};
use std::time::Duration;
use store::{NotificationStatus, TradeFilter};
use testkit::discord::FakeDiscord;
use testkit::discord::interact::{InteractionSigner, button_click, modal_submit, modal_value};
use testkit::discord::openapi::Spec;
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};

const ANN: &str = "1100000000000000000";
const BOB: &str = "1100000000000000099";

fn signer() -> InteractionSigner {
    InteractionSigner::default()
}

async fn start(fake: Option<&FakeDiscord>, url: &str) -> TestApp {
    let discord = DiscordOptions {
        token: fake.map(|_| "test-bot-token".to_string()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        public_key_hex: Some(signer().public_key_hex()),
        api_base: fake.map(|f| f.base_url()),
    };
    spawn_app_on(
        url,
        AppOptions {
            replay_series: vec![testkit::fixtures::eurusd_300_series()],
            replay_speed: 0.0,
            discord: Some(discord),
            ..AppOptions::default()
        },
    )
    .await
}

/// Posts an interaction signed as Discord would sign it.
async fn interact(app: &TestApp, body: &Value, timestamp: i64, signing: &InteractionSigner) -> reqwest::Response {
    signing.post(&app.client, &app.url("/discord/interactions"), body, timestamp).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn click(user: &str, custom_id: &str) -> Value {
    button_click(user, custom_id)
}

fn submit(user: &str, notification: i64, values: &[(&str, &str)]) -> Value {
    modal_submit(user, &format!("trade:{notification}"), values)
}

async fn answer(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    Spec::global().validate_interaction_response(&body).unwrap_or_else(|e| panic!("{body} is not valid: {e:?}"));
    body
}

#[tokio::test]
async fn interactions_need_a_valid_fresh_signature_and_ping_gets_pong() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let app = start(None, &url).await;
    let ping = json!({"id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1});
    let unsigned = app.client.post(app.url("/discord/interactions")).json(&ping).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(interact(&app, &ping, now(), &InteractionSigner::from_seed(9)).await.status(), 401, "wrong key");
    assert_eq!(interact(&app, &ping, now() - 3600, &signer()).await.status(), 401, "stale timestamp");
    let pong = answer(interact(&app, &ping, now(), &signer()).await).await;
    assert_eq!(pong, json!({"type": 1}));
    // A signed click from someone who never linked an account is told how to link.
    let refused = answer(interact(&app, &click(BOB, "open:1"), now(), &signer()).await).await;
    assert_eq!(refused["data"]["flags"], 64);
    assert!(refused["data"]["content"].as_str().unwrap().contains("/link"));
    app.stop().await;
}

#[tokio::test]
async fn a_signal_reaches_discord_and_its_buttons_open_exactly_one_trade() {
    let fake = FakeDiscord::start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;
    testkit::fixtures::eurusd_subscriber(&store, BOB, "bob").await;
    let mut app = start(Some(&fake), &url).await;
    app.wait_for_replay_end().await;

    // Once the replay has ended every signal is stored; routing and delivery may still be under way. Both
    // users take every signal (no cooldown, no cap), so the fake is owed two messages per signal.
    let signals = store.recent_signals(1000).await.unwrap().len();
    assert!(signals > 0, "the replay produced signals");
    let sent = fake.wait_for_messages(2 * signals, Duration::from_secs(30)).await.unwrap();
    assert_eq!(sent.len(), 2 * signals, "one message per (signal, user), no more");
    assert_eq!(store.notifications_for_user(ann, 1000, 0).await.unwrap().len(), signals);
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
    assert_eq!(fake.rate_limited_count(), 0);
    let to_ann: Vec<_> = sent.iter().filter(|m| m.recipient_id.as_deref() == Some(ANN)).collect();
    assert_eq!(to_ann.len(), signals);
    let first = &to_ann[0].body;
    assert_eq!(first["embeds"][0]["title"], ENGINE_TITLE);
    let ids: Vec<&str> = first["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap())
        .collect();
    let nid: i64 = ids[0].strip_prefix("open:").unwrap().parse().unwrap();
    assert_eq!(ids, vec![format!("open:{nid}"), format!("ignore:{nid}"), format!("details:{nid}")]);
    let notification = store.get_notification(domain::NotificationId(nid)).await.unwrap().unwrap();
    assert_eq!(notification.user_id, ann);
    assert_eq!(notification.status, NotificationStatus::Sent);
    assert_eq!(notification.discord_message_id.as_deref(), Some(to_ann[0].message_id.as_str()));

    // Open Trade answers with the modal first, pre-filled from the signal.
    let modal = answer(interact(&app, &click(ANN, &format!("open:{nid}")), now(), &signer()).await).await;
    assert_eq!(modal["type"], 9);
    assert_eq!(modal["data"]["custom_id"], format!("trade:{nid}"));
    let input = |id: &str| modal_value(&modal, id).unwrap_or_default();
    let (entry, sl, tp) = (input("entry"), input("stop_loss"), input("take_profit"));
    assert!(!entry.is_empty() && !sl.is_empty() && !tp.is_empty());

    // Someone else's notification, a bad number and a stop loss on the wrong side are refused; nothing stored.
    let theirs = answer(interact(&app, &click(BOB, &format!("open:{nid}")), now(), &signer()).await).await;
    assert!(theirs["data"]["content"].as_str().unwrap().contains("someone else"));
    let bad = answer(
        interact(
            &app,
            &submit(ANN, nid, &[("entry", "abc"), ("lots", "0.1"), ("stop_loss", &sl), ("take_profit", &tp)]),
            now(),
            &signer(),
        )
        .await,
    )
    .await;
    assert!(bad["data"]["content"].as_str().unwrap().contains("not a number"), "{bad}");
    let wrong = answer(
        interact(
            &app,
            &submit(ANN, nid, &[("entry", &entry), ("lots", "0.1"), ("stop_loss", &tp), ("take_profit", &sl)]),
            now(),
            &signer(),
        )
        .await,
    )
    .await;
    assert!(wrong["data"]["content"].as_str().unwrap().contains("stop loss"), "{wrong}");
    let too_big = answer(
        interact(
            &app,
            &submit(ANN, nid, &[("entry", &entry), ("lots", "500"), ("stop_loss", &sl), ("take_profit", &tp)]),
            now(),
            &signer(),
        )
        .await,
    )
    .await;
    assert!(too_big["data"]["content"].as_str().unwrap().contains("lots"), "{too_big}");
    assert!(store.list_trades(&TradeFilter::default()).await.unwrap().is_empty());

    // A valid submit opens one trade; submitting again opens nothing new.
    let values = [
        ("entry", entry.as_str()),
        ("lots", "0.1"),
        ("stop_loss", sl.as_str()),
        ("take_profit", tp.as_str()),
        ("notes", "from the test"),
    ];
    let opened = answer(interact(&app, &submit(ANN, nid, &values), now(), &signer()).await).await;
    assert_eq!(opened["data"]["flags"], 64);
    assert!(opened["data"]["content"].as_str().unwrap().starts_with("Trade #"), "{opened}");
    let again = answer(interact(&app, &submit(ANN, nid, &values), now(), &signer()).await).await;
    assert!(again["data"]["content"].as_str().unwrap().contains("already open"), "{again}");
    let trades = store.list_trades(&TradeFilter::default()).await.unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].user_id, ann);
    assert_eq!(trades[0].notification_id, Some(domain::NotificationId(nid)));
    assert_eq!(trades[0].notes.as_deref(), Some("from the test"));

    // Ignore updates the message and acknowledges the notification; Details answers privately.
    let other =
        to_ann.last().unwrap().body["components"][0]["components"][1]["custom_id"].as_str().unwrap().to_string();
    let ignored = answer(interact(&app, &click(ANN, &other), now(), &signer()).await).await;
    assert_eq!(ignored["type"], 7);
    let other_id: i64 = other.strip_prefix("ignore:").unwrap().parse().unwrap();
    assert!(store.get_notification(domain::NotificationId(other_id)).await.unwrap().unwrap().acknowledged);
    // Details defers (ephemeral) and follows up with the details and the chart.
    let details = answer(interact(&app, &click(ANN, &format!("details:{nid}")), now(), &signer()).await).await;
    assert_eq!((details["type"].as_u64(), details["data"]["flags"].as_u64()), (Some(5), Some(64)), "{details}");
    let followup = fake.wait_for_followups(1, Duration::from_secs(20)).await.unwrap().remove(0);
    assert!(followup.body["embeds"][0].to_string().contains("Stage 2"), "{}", followup.body);
    assert_eq!(followup.files.len(), 1, "the chart is attached");
    let unknown = answer(interact(&app, &click(ANN, "frobnicate:1"), now(), &signer()).await).await;
    assert_eq!(unknown["data"]["flags"], 64);
    assert!(unknown["data"]["content"].as_str().unwrap().contains("nothing was done"), "{unknown}");
    app.stop().await;
}

#[tokio::test]
async fn a_dm_discord_refuses_is_recorded_and_not_retried() {
    let fake = FakeDiscord::start().await;
    fake.refuse_dms(ANN);
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;
    let mut app = start(Some(&fake), &url).await;
    app.wait_for_replay_end().await;
    let expected = store.recent_signals(1000).await.unwrap().len();
    assert!(expected > 0);
    // Each notification is tried once (the DM channel opens, the message is refused), then given up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let all = store.notifications_for_user(ann, 1000, 0).await.unwrap();
        if all.len() == expected && all.iter().all(|n| n.status == NotificationStatus::Failed) {
            assert!(all.iter().all(|n| n.last_error.as_deref().unwrap_or("").contains("50007")), "{all:?}");
            assert!(all.iter().all(|n| n.attempts <= 1), "{all:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every refusal was recorded: {all:?}");
        fake.wait_for_requests(fake.requests().len() + 1, Duration::from_millis(200)).await.ok();
    }
    app.stop().await;
}

#[tokio::test]
async fn a_trade_closing_at_its_take_profit_is_reported_by_dm_with_pips_money_and_duration() {
    let fake = FakeDiscord::start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;
    let opened_at = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let new = domain::NewTrade::new(
        ann,
        "EURUSD",
        domain::Side::Long,
        domain::Price::parse("1.0854").unwrap(),
        domain::Lots::parse("0.5").unwrap(),
        Some(domain::Price::parse("1.0800").unwrap()),
        Some(domain::Price::parse("1.0962").unwrap()),
        opened_at,
    )
    .unwrap();
    let trade = store.open_trade(&new).await.unwrap().trade;
    let (candles, _dir) = testkit::write_candles(&[
        ("2024-01-01T00:00:00Z", "1.0850", "1.0860", "1.0830", "1.0855"),
        ("2024-01-01T01:00:00Z", "1.0855", "1.0970", "1.0850", "1.0960"),
    ]);
    let discord = DiscordOptions {
        token: Some("test-bot-token".into()),
        api_base: Some(fake.base_url()),
        ..DiscordOptions::default()
    };
    let options = AppOptions {
        replay_series: vec![format!("EURUSD:1h:{}", candles.display())],
        replay_speed: 0.0,
        discord: Some(discord),
        ..AppOptions::default()
    };
    let mut app = spawn_app_on(&url, options).await;
    app.wait_for_event(
        Duration::from_secs(30),
        |e| matches!(e, bus::Event::TradeClosed { trade: t } if t.id == trade.id),
    )
    .await;
    let sent = fake.wait_for_messages(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(sent[0].recipient_id.as_deref(), Some(ANN));
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
    let embed = &sent[0].body["embeds"][0];
    let field = |name: &str| -> String {
        embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map_or(String::new(), |f| f["value"].as_str().unwrap().to_string())
    };
    let text = embed.to_string();
    assert!(text.contains("108"), "pips in {text}");
    assert!(field("Profit").contains("540"), "{text}");
    assert!(field("Duration").contains('h') || field("Duration").contains('m'), "{text}");
    app.stop().await;
}

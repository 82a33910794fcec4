//! Details with its indicator state and PNG chart, `/settings` edited through its components, and the
//! candle store that feeds Details, end to end through the real app: signed interactions on
//! `POST /discord/interactions`, every answer checked against Discord's OpenAPI description, and the fake
//! Discord checking the follow-up (multipart: `payload_json` + `files[0]`) it receives.
//!
//! Runs on SQLite, or on PostgreSQL when `TEST_DATABASE_URL` is set.

use chrono::{TimeZone, Utc};
use domain::{Symbol, Timeframe, UserId, UserSettings};
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use testkit::discord::FakeDiscord;
use testkit::discord::interact::{self, InteractionSigner};
use testkit::discord::openapi::Spec;
use testkit::{AppOptions, DiscordOptions, TestApp, fixtures, spawn_app_on};

const ANN: &str = "1100000000000000011";
const BOB: &str = "1100000000000000012";
const STRANGER: &str = "1100000000000000013";

fn signer() -> InteractionSigner {
    InteractionSigner::default()
}

struct Setup {
    app: TestApp,
    store: Arc<dyn Store>,
    fake: FakeDiscord,
    _candles: tempfile::TempDir,
    _db: testkit::db::DbGuard,
}

/// The app with Discord on (a bot token only when `token`), replaying two USDJPY candles.
async fn start(token: bool) -> Setup {
    let fake = FakeDiscord::start().await;
    let (url, db) = testkit::db::fresh_database_url().await;
    let (path, candles) = testkit::write_candles(&[
        ("2024-01-02T00:00:00Z", "141.00", "141.20", "140.90", "141.10"),
        ("2024-01-02T01:00:00Z", "141.10", "141.30", "141.00", "141.20"),
    ]);
    let app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("USDJPY:1h:{}", path.display())],
            replay_speed: 0.0,
            discord: Some(DiscordOptions {
                token: token.then(|| "test-bot-token".into()),
                application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
                public_key_hex: Some(signer().public_key_hex()),
                api_base: Some(fake.base_url()),
            }),
            ..AppOptions::default()
        },
    )
    .await;
    let store = app.store.clone();
    Setup { app, store, fake, _candles: candles, _db: db }
}

fn envelope(kind: u8, user: &str, token: &str, data: Value) -> Value {
    interact::envelope_with("1300000000000000001", token, kind, user, data)
}

fn click(user: &str, custom_id: &str, token: &str) -> Value {
    envelope(3, user, token, json!({"custom_id": custom_id, "component_type": 2}))
}

fn choose(user: &str, custom_id: &str, values: &[&str]) -> Value {
    envelope(3, user, "settings-token", json!({"custom_id": custom_id, "component_type": 3, "values": values}))
}

fn slash(user: &str, name: &str, options: Value) -> Value {
    envelope(2, user, "slash-token", json!({"id": "1400000000000000001", "name": name, "type": 1, "options": options}))
}

/// Posts a signed interaction and returns the answer, checked against Discord's OpenAPI description.
async fn interact(app: &TestApp, body: &Value) -> Value {
    let response = signer().post(&app.client, &app.url("/discord/interactions"), body, Utc::now().timestamp()).await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    Spec::global().validate_interaction_response(&answer).unwrap_or_else(|e| panic!("{answer} is not valid: {e:?}"));
    answer
}

async fn linked(store: &Arc<dyn Store>, discord_id: &str, name: &str) -> UserId {
    store.ensure_discord_user(discord_id, name).await.unwrap().id
}

fn field<'a>(embed: &'a Value, name: &str) -> &'a str {
    embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
        .unwrap_or_else(|| panic!("no field {name:?} in {embed}"))
}

#[tokio::test]
async fn details_defers_then_follows_up_with_the_indicator_state_and_a_png_chart() {
    let s = start(true).await;
    let ann = linked(&s.store, ANN, "ann").await;
    linked(&s.store, BOB, "bob").await;
    let candles = fixtures::eurusd_wave(120);
    s.store.save_candles(&Symbol::normalize("EURUSD"), Timeframe::H1, &candles).await.unwrap();
    // The signal is on candle 99: later candles are not the signal's history and must not be used.
    let nid = fixtures::notified_signal(&s.store, ann, "EURUSD", candles[99].time).await;

    let answer = interact(&s.app, &click(ANN, &format!("details:{nid}"), "details-token")).await;
    assert_eq!(answer["type"], 5, "deferred: {answer}");
    assert_eq!(answer["data"]["flags"], 64, "ephemeral: {answer}");

    let followups = s
        .fake
        .wait_for_followups(1, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}; refused bodies: {:?}", s.fake.invalid_bodies()));
    assert_eq!(followups.len(), 1);
    let followup = &followups[0];
    assert!(s.fake.invalid_bodies().is_empty(), "{:?}", s.fake.invalid_bodies());
    let request =
        s.fake.requests().into_iter().find(|r| r.route == Some(testkit::discord::Route::CreateFollowup)).unwrap();
    assert_eq!(request.path, format!("/api/v10/webhooks/{}/details-token", testkit::discord::DEFAULT_APPLICATION_ID));
    assert!(request.header("content-type").unwrap().starts_with("multipart/form-data"), "{request:?}");
    assert_eq!(request.status, Some(200));
    // The payload_json is a valid execute-webhook body and is ephemeral.
    Spec::global()
        .validate_request("POST", "/webhooks/{webhook_id}/{webhook_token}", &followup.body)
        .unwrap_or_else(|e| panic!("{} is not valid: {e:?}", followup.body));
    assert_eq!(followup.body["flags"], 64, "{}", followup.body);

    let embed = &followup.body["embeds"][0];
    assert_eq!(field(embed, "Stage 1 (rules) probability"), "61.0%");
    assert_eq!(field(embed, "Stage 2 (model) probability"), "41.2%");
    assert_eq!(field(embed, "Confidence"), "41.2%");
    assert_eq!(field(embed, "Model"), "reversal-test-1");
    assert_eq!(field(embed, "Indicators at"), "2024-03-08 03:00 UTC", "the signal's candle, not a later one");
    // The indicator state is computed from the stored candles up to the signal's candle.
    let state = signalpost::interactions::indicator_state(&candles[..100]).unwrap();
    assert_eq!(field(embed, "RSI(14)"), format!("{:.1}", state.rsi14.unwrap()));
    assert_eq!(field(embed, "ADX(14)"), format!("{:.1}", state.adx14.unwrap()));
    assert_eq!(field(embed, "Bollinger %B (20, 2)"), format!("{:.2}", state.bollinger_percent_b.unwrap()));
    assert!(field(embed, "ATR(14)").contains("pips"), "{embed}");
    assert!(!field(embed, "MACD histogram (12, 26, 9)").contains("warming"), "{embed}");
    assert_eq!(embed["image"]["url"], "attachment://chart.png");

    // The PNG, as Discord would receive it.
    assert_eq!(followup.files.len(), 1);
    let file = &followup.files[0];
    assert_eq!((file.field.as_str(), file.filename.as_str()), ("files[0]", "chart.png"));
    assert_eq!(followup.body["attachments"][0]["filename"], "chart.png");
    assert_eq!(file.bytes[..8], [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n']);
    assert_eq!(&file.bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(file.bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(file.bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (discord::chart::WIDTH, discord::chart::HEIGHT));
    // It is the chart of the last 60 candles up to the signal's, with the signal's levels.
    let levels =
        discord::chart::ChartLevels { entry: dec!(1.08520), stop_loss: dec!(1.08300), take_profit: dec!(1.08960) };
    assert_eq!(file.bytes, discord::chart::render_png(&candles[40..100], &levels).unwrap());

    // Someone else's Details is refused at once, privately, and nothing is sent later.
    let refused = interact(&s.app, &click(BOB, &format!("details:{nid}"), "bob-token")).await;
    assert_eq!((refused["type"].as_u64(), refused["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert!(refused["data"]["content"].as_str().unwrap().contains("someone else"), "{refused}");
    s.app.stop().await;
    assert_eq!(s.fake.followups().len(), 1);
}

#[tokio::test]
async fn details_without_stored_candles_says_so_instead_of_a_chart() {
    let s = start(true).await;
    let ann = linked(&s.store, ANN, "ann").await;
    let nid = fixtures::notified_signal(&s.store, ann, "GBPUSD", fixtures::wave_start()).await;
    let answer = interact(&s.app, &click(ANN, &format!("details:{nid}"), "empty-token")).await;
    assert_eq!(answer["type"], 5);
    let followup = s.fake.wait_for_followups(1, Duration::from_secs(20)).await.unwrap().remove(0);
    assert!(s.fake.invalid_bodies().is_empty(), "{:?}", s.fake.invalid_bodies());
    assert!(followup.files.is_empty());
    let embed = &followup.body["embeds"][0];
    assert!(embed["description"].as_str().unwrap().contains("No GBPUSD 1h candles"), "{embed}");
    assert!(embed.get("image").is_none_or(Value::is_null), "{embed}");
    assert_eq!(field(embed, "Stage 1 (rules) probability"), "61.0%");
    s.app.stop().await;
}

#[tokio::test]
async fn without_a_bot_token_details_answers_directly_and_says_the_chart_needs_it() {
    let s = start(false).await;
    let ann = linked(&s.store, ANN, "ann").await;
    let candles = fixtures::eurusd_wave(60);
    s.store.save_candles(&Symbol::normalize("EURUSD"), Timeframe::H1, &candles).await.unwrap();
    let nid = fixtures::notified_signal(&s.store, ann, "EURUSD", candles[59].time).await;
    let answer = interact(&s.app, &click(ANN, &format!("details:{nid}"), "t")).await;
    assert_eq!((answer["type"].as_u64(), answer["data"]["flags"].as_u64()), (Some(4), Some(64)), "{answer}");
    assert!(answer["data"]["content"].as_str().unwrap().contains("DISCORD_TOKEN"), "{answer}");
    let embed = &answer["data"]["embeds"][0];
    assert_eq!(field(embed, "Stage 2 (model) probability"), "41.2%");
    assert!(field(embed, "RSI(14)").parse::<f64>().is_ok(), "{embed}");
    s.app.stop().await;
    assert!(s.fake.followups().is_empty());
}

#[tokio::test]
async fn settings_components_change_the_callers_settings_and_refuse_bad_values() {
    let s = start(true).await;
    let ann = linked(&s.store, ANN, "ann").await;
    let bob = linked(&s.store, BOB, "bob").await;

    let shown = interact(&s.app, &slash(ANN, "settings", json!([]))).await;
    assert_eq!((shown["type"].as_u64(), shown["data"]["flags"].as_u64()), (Some(4), Some(64)), "{shown}");
    let rows = shown["data"]["components"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{shown}");
    let ids: Vec<&str> = rows
        .iter()
        .flat_map(|r| r["components"].as_array().unwrap())
        .map(|c| c["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "settings:timeframes",
            "settings:pairs",
            "settings:min_confidence",
            "settings:limits",
            "settings:notifications",
            "settings:ml_only"
        ]
    );
    assert_eq!(rows[1]["components"][0]["options"].as_array().unwrap().len(), 25);
    let chosen: Vec<&str> = rows[0]["components"][0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["default"] == true)
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert_eq!(chosen, ["1h", "4h"], "the defaults are shown chosen");

    // Each control changes what it names; the answer updates the message in place.
    let updated = interact(&s.app, &choose(ANN, "settings:timeframes", &["15m", "1d", "1h"])).await;
    assert_eq!(updated["type"], 7, "{updated}");
    assert_eq!(updated["data"]["components"].as_array().unwrap().len(), 5);
    interact(&s.app, &choose(ANN, "settings:pairs", &["XAUUSD", "EURUSD"])).await;
    interact(&s.app, &choose(ANN, "settings:min_confidence", &["0.55"])).await;
    interact(&s.app, &choose(ANN, "settings:limits", &["cooldown:240", "cap:50", "updates:30"])).await;
    let toggled = interact(&s.app, &click(ANN, "settings:notifications", "settings-token")).await;
    assert_eq!(toggled["type"], 7);
    interact(&s.app, &click(ANN, "settings:ml_only", "settings-token")).await;

    let expected = UserSettings {
        notifications_enabled: false,
        enabled_timeframes: vec![Timeframe::M15, Timeframe::H1, Timeframe::D1],
        preferred_pairs: vec![Symbol::normalize("XAUUSD"), Symbol::normalize("EURUSD")],
        min_confidence: dec!(0.55),
        only_ml_enhanced: true,
        max_notifications_per_day: 50,
        notification_cooldown_minutes: 240,
        running_update_minutes: 30,
        ..UserSettings::default()
    };
    assert_eq!(s.store.get_settings(ann).await.unwrap(), expected);
    // The update shows the new state.
    let last = interact(&s.app, &choose(ANN, "settings:limits", &["cap:50"])).await;
    let text = last["data"]["embeds"][0].to_string();
    assert!(text.contains("55%") && text.contains("240 min") && text.contains("XAUUSD, EURUSD"), "{text}");

    // Bad values are refused privately and change nothing.
    for (control, values, why) in [
        ("settings:timeframes", vec!["2h"], "2h"),
        ("settings:pairs", vec!["FOOBAR"], "FOOBAR"),
        ("settings:min_confidence", vec!["1.5"], "between 0 and 1"),
        ("settings:min_confidence", vec!["0.5", "0.6"], "exactly one"),
        ("settings:limits", vec!["cap:5000"], "1000"),
        ("settings:limits", vec!["cooldown:15", "cooldown:30"], "one cooldown"),
        ("settings:limits", vec!["volume:3"], "not a cooldown or a cap"),
        ("settings:limits", vec!["updates:3"], "running updates"),
        ("settings:frobnicate", vec![], "no settings control"),
    ] {
        let refused = interact(&s.app, &choose(ANN, control, &values)).await;
        assert_eq!((refused["type"].as_u64(), refused["data"]["flags"].as_u64()), (Some(4), Some(64)), "{refused}");
        let content = refused["data"]["content"].as_str().unwrap();
        assert!(content.contains("Nothing was changed") && content.contains(why), "{control} {values:?}: {content}");
        assert_eq!(s.store.get_settings(ann).await.unwrap(), expected, "{control} {values:?} changed something");
    }

    // Bob clicking a control (on Ann's message or his own: the message does not matter) changes only Bob's.
    interact(&s.app, &choose(BOB, "settings:pairs", &["BTCUSDT"])).await;
    assert_eq!(s.store.get_settings(bob).await.unwrap().preferred_pairs, vec![Symbol::normalize("BTCUSDT")]);
    assert_eq!(s.store.get_settings(ann).await.unwrap(), expected);
    // Someone who never linked is told how to, and nothing is stored for anyone.
    let stranger = interact(&s.app, &choose(STRANGER, "settings:pairs", &["BTCUSDT"])).await;
    assert!(stranger["data"]["content"].as_str().unwrap().contains("/link"), "{stranger}");
    assert!(s.store.user_by_discord_id(STRANGER).await.unwrap().is_none());

    // Pairs outside the menu come from the text option, and a menu pick keeps them.
    let set =
        interact(&s.app, &slash(ANN, "settings", json!([{"name": "pairs", "type": 3, "value": "audnzd, EURUSD"}])))
            .await;
    assert_eq!(set["type"], 4, "{set}");
    interact(&s.app, &choose(ANN, "settings:pairs", &["GBPUSD"])).await;
    assert_eq!(
        s.store.get_settings(ann).await.unwrap().preferred_pairs,
        vec![Symbol::normalize("AUDNZD"), Symbol::normalize("GBPUSD")]
    );
    let unknown =
        interact(&s.app, &slash(ANN, "settings", json!([{"name": "pairs", "type": 3, "value": "EURUSD, NOPE"}]))).await;
    assert!(unknown["data"]["content"].as_str().unwrap().contains("NOPE"), "{unknown}");
    assert_eq!(s.store.get_settings(ann).await.unwrap().preferred_pairs.len(), 2);
    s.app.stop().await;
}

#[tokio::test]
async fn closed_candles_and_their_resamples_are_stored_by_the_replay() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../market/tests/data/lean_oanda_EURUSD_H1_head300.csv.gz");
    let (url, _db) = testkit::db::fresh_database_url().await;
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("EURUSD:1h:{}", file.display())],
            replay_speed: 0.0,
            ..AppOptions::default()
        },
    )
    .await;
    // The end of the feed is announced only once the writer has stored everything.
    app.wait_for_replay_end().await;
    let eurusd = Symbol::normalize("EURUSD");
    let far = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    let hours = app.store.recent_candles(&eurusd, Timeframe::H1, far, 1000).await.unwrap();
    let loaded = market::load_candles(&file, &market::LoadOptions::default()).unwrap();
    assert_eq!(hours.len(), loaded.len());
    assert_eq!(hours, loaded, "every candle, exactly");
    assert_eq!(app.store.last_candle_time(&eurusd, Timeframe::H1).await.unwrap(), Some(loaded.last().unwrap().time));
    let h4 = app.store.recent_candles(&eurusd, Timeframe::H4, far, 1000).await.unwrap();
    // Weekend gaps leave some 4h buckets short, so about a quarter as many.
    assert!((loaded.len() / 4 - 15..=loaded.len() / 4 + 15).contains(&h4.len()), "{}", h4.len());
    assert!(h4.iter().all(|c| c.time.timestamp() % (4 * 3600) == 0));
    assert!(!app.store.recent_candles(&eurusd, Timeframe::D1, far, 100).await.unwrap().is_empty());
    app.stop().await;
}

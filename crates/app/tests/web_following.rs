//! Black-box tests of `/following`: following a provider with broker keys (sealed, never shown again), the
//! risk settings checked field by field with nothing stored on a refusal, keys kept on a re-save without
//! them, pausing a follow, the copied orders with their refusal reasons, and the JSON API, each checked with
//! two users who must never reach each other's follows. SQLite, or PostgreSQL with TEST_DATABASE_URL.

mod web_support;

use chrono::Utc;
use domain::{Entry, Lots, NewTrade, Price, Side, Signal, SignalId, SignalSource, Symbol, Timeframe, UserId};
use reqwest::StatusCode;
use rust_decimal_macros::dec;
use serde_json::Value;
use std::sync::Arc;
use store::vault::{BrokerCredentials, KeyCipher};
use store::{BrokerKind, CopyStatus, Follower, NewCopy, Role, Store};
use testkit::{AppOptions, TestApp, spawn_app};
use web_support::{WebClient, element_text, user_with_password};

const CHANNEL: &str = "555000111222333444";
const API_KEY: &str = "PKALICE0KEY0ID0XYZ";
const API_SECRET: &str = "alice-secret-9f8e7d6c5b4a-never-shown";

async fn app() -> (TestApp, testkit::db::DbGuard) {
    spawn_app(AppOptions::default()).await
}

fn cipher() -> KeyCipher {
    KeyCipher::from_base64(testkit::app::TEST_SECRET_KEY).unwrap()
}

async fn register_channel(store: &Arc<dyn Store>) {
    store.add_provider_channel(CHANNEL, "Gold Room", "cli", Utc::now()).await.unwrap();
}

async fn signed_in(app: &TestApp, name: &str) -> (WebClient, store::User) {
    let user = user_with_password(&app.store, name, &format!("{name}-password"), Role::User).await;
    let mut browser = WebClient::new(&app.address);
    assert_eq!(browser.login(name, &format!("{name}-password")).await.status, StatusCode::SEE_OTHER);
    (browser, user)
}

/// The follow form as a browser sends it, with every field valid (alpaca with keys); `overrides` replace
/// fields by name (all fields of that name).
fn follow_form<'a>(form: &'a str, overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("form", form),
        ("provider_channel", CHANNEL),
        ("broker", "alpaca"),
        ("api_key", API_KEY),
        ("api_secret", API_SECRET),
        ("balance", "25000"),
        ("currency", "USD"),
        ("signals_per_day", "6"),
        ("daily_loss_percent", "5"),
        ("time_zone", "Europe/London"),
        ("hours_start", "08:00"),
        ("hours_end", "17:00"),
        ("weekdays", "Mon"),
        ("weekdays", "Tue"),
        ("max_open_positions", "3"),
        ("sizing", "risk_percent"),
        ("fixed_lots", "0.1"),
        ("risk_percent", "2"),
        ("kelly_fraction", "0.25"),
        ("kelly_max_risk_percent", "2"),
        ("kelly_min_trades", "20"),
        ("min_lots", "0.01"),
        ("max_lots", "10"),
        ("lot_step", "0.01"),
    ];
    for (name, value) in overrides {
        fields.retain(|(n, _)| n != name);
        fields.push((name, value));
    }
    fields
}

async fn follows_of(store: &Arc<dyn Store>, user: UserId) -> Vec<Follower> {
    store.followers_for_user(user).await.unwrap()
}

fn assert_no_keys(body: &str, what: &str) {
    assert!(!body.contains(API_SECRET), "the API secret is in {what}");
    assert!(!body.contains(API_KEY), "the API key is in {what}");
    assert!(!body.contains("new-secret-value-123"), "the replaced secret is in {what}");
}

#[tokio::test]
async fn following_a_provider_seals_the_keys_and_never_shows_them_again() {
    let (app, _db) = app().await;
    register_channel(&app.store).await;
    let (mut alice, alice_user) = signed_in(&app, "alice").await;

    // Each registered channel links to the form with itself chosen.
    let providers = alice.get("/providers").await;
    let link = format!("href=\"/following?channel={CHANNEL}#follow-new\"");
    assert!(providers.body.contains(&link), "{}", providers.body);
    let page = alice.get(&format!("/following?channel={CHANNEL}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("<option value=\"{CHANNEL}\" selected>")), "{}", page.body);
    assert!(page.body.contains("href=\"/following\""), "the nav links the page");
    // The defaults: 5% daily loss, 3 open positions, 2% risk per trade.
    assert!(page.body.contains("id=\"new-daily_loss_percent\" inputmode=\"decimal\" value=\"5\""), "{}", page.body);
    assert!(page.body.contains("id=\"new-max_open_positions\" min=\"1\" value=\"3\""));
    assert!(page.body.contains("id=\"new-risk_percent\" inputmode=\"decimal\" value=\"2\""));

    let saved = alice.submit("/following", "/following", &follow_form("new", &[])).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let follows = follows_of(&app.store, alice_user.id).await;
    assert_eq!(follows.len(), 1);
    let follow = &follows[0];
    assert_eq!(saved.location(), Some(format!("/following?saved={0}#follow-{0}", follow.id.0).as_str()));
    assert_eq!((follow.provider_channel.as_str(), follow.broker, follow.enabled), (CHANNEL, BrokerKind::Alpaca, true));
    assert_eq!((follow.balance, follow.currency.as_str()), (dec!(25000), "USD"));
    let risk = &follow.risk_settings;
    assert_eq!((risk.daily_loss_percent(), risk.max_open_positions(), risk.signals_per_day()), (dec!(5), 3, Some(6)));
    assert_eq!(risk.time_zone().name(), "Europe/London");
    assert_eq!(risk.hours().unwrap().weekdays(), &[chrono::Weekday::Mon, chrono::Weekday::Tue]);

    // Sealed for alice: opens with the server's key for her only, and the stored bytes are not the keys.
    let sealed = follow.sealed_credentials.clone().expect("the keys are stored");
    let opened = cipher().open(&sealed, alice_user.id).unwrap();
    assert_eq!(opened, BrokerCredentials { api_key: API_KEY.into(), api_secret: API_SECRET.into() });
    assert!(cipher().open(&sealed, UserId(alice_user.id.0 + 1)).is_err());
    assert!(!String::from_utf8_lossy(sealed.as_bytes()).contains(API_SECRET));

    let page = alice.get(saved.location().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    let id = follow.id.0;
    assert!(element_text(&page.body, &format!("saved-{id}")).is_some(), "{}", page.body);
    assert!(element_text(&page.body, &format!("{id}-keys-stored")).unwrap().starts_with("Keys stored."));
    assert!(page.body.contains(&format!("id=\"{id}-api_secret\" autocomplete=\"off\" value=\"\"")), "{}", page.body);
    assert!(page.body.contains(&format!("id=\"{id}-api_key\" autocomplete=\"off\" value=\"\"")));
    assert_no_keys(&page.body, "the page");
    let api = alice.get("/api/following").await;
    assert_eq!(api.status, StatusCode::OK);
    assert_no_keys(&api.body, "/api/following");
    let json: Value = serde_json::from_str(&api.body).unwrap();
    let listed = &json["follows"][0];
    assert_eq!(listed["id"], id);
    assert_eq!(listed["keys_stored"], true);
    assert_eq!(listed["broker"], "alpaca");
    assert_eq!(listed["provider_name"], "Gold Room");
    assert_eq!(listed["risk_settings"]["daily_loss_percent"], "5");
    assert!(listed.get("sealed_credentials").is_none(), "{listed}");

    // Re-saving with the key fields empty keeps the keys and changes the settings.
    let id_text = id.to_string();
    let resave = follow_form(&id_text, &[("api_key", ""), ("api_secret", ""), ("daily_loss_percent", "3")]);
    let again = alice.submit("/following", "/following", &resave).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let after = &follows_of(&app.store, alice_user.id).await[0];
    assert_eq!(after.id, follow.id, "the same follow is updated");
    assert_eq!(after.risk_settings.daily_loss_percent(), dec!(3));
    assert_eq!(after.sealed_credentials.as_ref(), Some(&sealed), "the stored keys are kept");

    // A new pair replaces them.
    let replace = follow_form(&id_text, &[("api_key", "PKNEWKEY"), ("api_secret", "new-secret-value-123")]);
    assert_eq!(alice.submit("/following", "/following", &replace).await.status, StatusCode::SEE_OTHER);
    let replaced = follows_of(&app.store, alice_user.id).await[0].sealed_credentials.clone().unwrap();
    assert_eq!(cipher().open(&replaced, alice_user.id).unwrap().api_secret, "new-secret-value-123");
    assert_no_keys(&alice.get("/following").await.body, "the page after replacing the keys");
    app.stop().await;
}

#[tokio::test]
async fn every_invalid_field_is_shown_beside_it_and_nothing_is_stored() {
    let (app, _db) = app().await;
    register_channel(&app.store).await;
    let (mut alice, alice_user) = signed_in(&app, "alice").await;

    let bad = follow_form(
        "new",
        &[
            ("broker", "binance_spot"),
            ("api_key", ""),
            ("api_secret", ""),
            ("daily_loss_percent", "0"),
            ("time_zone", "Mars/Olympus"),
            ("min_lots", "5"),
            ("max_lots", "1"),
        ],
    );
    let refused = alice.submit("/following", "/following", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (field, expected) in [
        ("daily_loss_percent", "daily loss limit"),
        ("time_zone", "Mars/Olympus"),
        ("min_lots", "minimum lots"),
        ("api_key", "Binance spot needs an API key and secret"),
    ] {
        let message = element_text(&refused.body, &format!("error-new-{field}"))
            .unwrap_or_else(|| panic!("no message beside {field}: {}", refused.body));
        assert!(message.contains(expected), "{field}: {message}");
    }
    // What was typed comes back, so it can be corrected.
    assert!(refused.body.contains("value=\"Mars/Olympus\""));
    assert!(refused.body.contains("<option value=\"binance_spot\" selected>"));
    assert!(follows_of(&app.store, alice_user.id).await.is_empty(), "nothing is stored");

    // A channel nobody registered cannot be followed.
    let unknown = follow_form("new", &[("provider_channel", "999")]);
    let refused = alice.submit("/following", "/following", &unknown).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&refused.body, "error-new-provider_channel").is_some(), "{}", refused.body);
    assert_no_keys(&refused.body, "a refused form");
    assert!(follows_of(&app.store, alice_user.id).await.is_empty());

    // A refused edit leaves the stored follow as it was, and shows the message in that follow's form.
    let saved = alice.submit("/following", "/following", &follow_form("new", &[])).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let before = follows_of(&app.store, alice_user.id).await;
    let id = before[0].id.0.to_string();
    let edit = follow_form(&id, &[("api_key", ""), ("api_secret", ""), ("sizing", "fixed"), ("fixed_lots", "20")]);
    let refused = alice.submit("/following", "/following", &edit).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = element_text(&refused.body, &format!("error-{id}-fixed_lots")).unwrap();
    assert!(message.contains("outside the allowed"), "{message}");
    assert_eq!(follows_of(&app.store, alice_user.id).await, before);
    // Switching broker needs that broker's keys.
    let switch = follow_form(&id, &[("api_key", ""), ("api_secret", ""), ("broker", "binance_futures")]);
    let refused = alice.submit("/following", "/following", &switch).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&refused.body, &format!("error-{id}-api_key")).is_some());
    assert_eq!(follows_of(&app.store, alice_user.id).await, before);
    app.stop().await;
}

#[tokio::test]
async fn another_user_can_neither_see_nor_change_a_follow() {
    let (app, _db) = app().await;
    register_channel(&app.store).await;
    let (mut alice, alice_user) = signed_in(&app, "alice").await;
    let (mut bob, bob_user) = signed_in(&app, "bob").await;
    assert_eq!(alice.submit("/following", "/following", &follow_form("new", &[])).await.status, StatusCode::SEE_OTHER);
    let follow = follows_of(&app.store, alice_user.id).await.remove(0);
    let id = follow.id.0;

    let page = bob.get("/following").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(&format!("id=\"follow-{id}\"")), "bob sees alice's follow");
    assert!(!page.body.contains("25000"));
    let api: Value = serde_json::from_str(&bob.get("/api/following").await.body).unwrap();
    assert_eq!(api["follows"], serde_json::json!([]));

    // Bob can neither pause nor edit it: 404, as if it did not exist.
    let toggle = bob.submit("/following", &format!("/following/{id}/enabled"), &[("enabled", "false")]).await;
    assert_eq!(toggle.status, StatusCode::NOT_FOUND);
    let id_text = id.to_string();
    let edit = bob.submit("/following", "/following", &follow_form(&id_text, &[("balance", "1")])).await;
    assert_eq!(edit.status, StatusCode::NOT_FOUND);
    assert_eq!(follows_of(&app.store, alice_user.id).await, vec![follow.clone()]);
    assert!(follows_of(&app.store, bob_user.id).await.is_empty());

    // Alice pauses and resumes her own.
    let paused = alice.submit("/following", &format!("/following/{id}/enabled"), &[("enabled", "false")]).await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    assert!(!follows_of(&app.store, alice_user.id).await[0].enabled);
    let page = alice.get("/following").await;
    assert!(element_text(&page.body, &format!("enable-{id}")).is_some(), "a paused follow offers Resume");
    let resumed = alice.submit("/following", &format!("/following/{id}/enabled"), &[("enabled", "true")]).await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert!(follows_of(&app.store, alice_user.id).await[0].enabled);

    // Without a session: sign-in for the page, 401 for the API, 403 for a POST.
    let mut anonymous = WebClient::new(&app.address);
    let page = anonymous.get("/following").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login?next=/following"));
    for path in ["/api/following", "/api/copy-orders"] {
        assert_eq!(anonymous.get(path).await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let post = anonymous.post(&format!("/following/{id}/enabled"), &[("enabled", "false")]).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert!(follows_of(&app.store, alice_user.id).await[0].enabled);
    app.stop().await;
}

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

async fn signal(store: &Arc<dyn Store>, symbol: &str) -> SignalId {
    let signal = Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.08520") },
        stop_loss: Some(p("1.08300")),
        take_profits: vec![p("1.08960")],
        leverage: None,
        confidence: None,
        source: SignalSource::Provider(CHANNEL.into()),
        model_version: None,
        stage1_prob: None,
        stage2_prob: None,
        created_at: Utc::now(),
    };
    store.insert_signal(&signal, None).await.unwrap().0
}

#[tokio::test]
async fn copied_orders_show_with_the_gate_and_reason_of_each_refusal() {
    let (app, _db) = app().await;
    register_channel(&app.store).await;
    let (mut alice, alice_user) = signed_in(&app, "alice").await;
    let (mut bob, _) = signed_in(&app, "bob").await;
    let paper = follow_form("new", &[("broker", "paper"), ("api_key", ""), ("api_secret", "")]);
    assert_eq!(alice.submit("/following", "/following", &paper).await.status, StatusCode::SEE_OTHER);
    let follow = follows_of(&app.store, alice_user.id).await.remove(0);
    assert!(follow.sealed_credentials.is_none(), "paper trading stores no keys");

    let now = Utc::now();
    let placed_signal = signal(&app.store, "EURUSD").await;
    let copy = NewCopy { follower_id: follow.id, user_id: alice_user.id, client_order_id: "sp-test-placed" };
    let placed = app.store.begin_copies(placed_signal, &[copy], now).await.unwrap().remove(0);
    let trade = NewTrade {
        user_id: alice_user.id,
        symbol: Symbol::normalize("EURUSD"),
        side: Side::Long,
        entry: p("1.08520"),
        lots: Lots::parse("0.5").unwrap(),
        stop_loss: Some(p("1.08300")),
        take_profit: Some(p("1.08960")),
        notes: None,
        signal_id: Some(placed_signal),
        notification_id: None,
        opened_at: now,
    };
    let trade = app.store.finish_copy_placed(placed.id, "paper-1", &trade, now).await.unwrap().unwrap();

    let refused_signal = signal(&app.store, "GBPUSD").await;
    let copy = NewCopy { follower_id: follow.id, user_id: alice_user.id, client_order_id: "sp-test-refused" };
    let later = now + chrono::Duration::seconds(1);
    let refused = app.store.begin_copies(refused_signal, &[copy], later).await.unwrap().remove(0);
    let reason = "the daily loss limit of 5% is reached";
    assert!(
        app.store
            .finish_copy_unplaced(refused.id, CopyStatus::Refused, Some("daily_loss"), reason, later)
            .await
            .unwrap()
    );

    let page = alice.get("/following").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |id: i64| {
        let start =
            page.body.find(&format!("id=\"copy-{id}\"")).unwrap_or_else(|| panic!("no row {id}: {}", page.body));
        let end = page.body[start..].find("</tr>").unwrap() + start;
        page.body[start..end].to_string()
    };
    let refused_row = row(refused.id.0);
    assert!(refused_row.contains("refused") && refused_row.contains("daily_loss"), "{refused_row}");
    assert!(refused_row.contains(reason), "{refused_row}");
    assert!(refused_row.contains("GBPUSD") && refused_row.contains("Gold Room"), "{refused_row}");
    let placed_row = row(placed.id.0);
    assert!(placed_row.contains("placed") && placed_row.contains("EURUSD"), "{placed_row}");
    assert!(placed_row.contains(&format!("#trade-{}", trade.id)), "the trade links into the history: {placed_row}");
    assert!(
        page.body.find(&format!("id=\"copy-{}\"", refused.id.0))
            < page.body.find(&format!("id=\"copy-{}\"", placed.id.0)),
        "newest first"
    );

    let api: Value = serde_json::from_str(&alice.get("/api/copy-orders").await.body).unwrap();
    let orders = api["copy_orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["status"], "refused");
    assert_eq!(orders[0]["gate"], "daily_loss");
    assert_eq!(orders[0]["reason"], reason);
    assert_eq!(orders[1]["status"], "placed");
    assert_eq!(orders[1]["trade_id"], trade.id.0);

    // Bob sees none of it.
    let bobs = bob.get("/following").await;
    assert!(!bobs.body.contains("id=\"copy-") && !bobs.body.contains(reason), "{}", bobs.body);
    assert!(element_text(&bobs.body, "no-copies").is_some());
    let api: Value = serde_json::from_str(&bob.get("/api/copy-orders").await.body).unwrap();
    assert_eq!(api["copy_orders"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test]
async fn without_a_secret_key_broker_keys_are_refused_and_nothing_is_stored() {
    let (app, _db) = app().await;
    register_channel(&app.store).await;
    // The same database behind a dashboard that was given no cipher.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let state =
        web::WebState::new(app.store.clone(), Arc::new(domain::SystemClock), web::WebConfig::new(&address)).unwrap();
    assert!(state.cipher.is_none());
    let server = tokio::spawn(async move { axum::serve(listener, web::router(state)).await });
    let alice_user = user_with_password(&app.store, "alice", "alice-password", Role::User).await;
    let mut alice = WebClient::new(&address);
    assert_eq!(alice.login("alice", "alice-password").await.status, StatusCode::SEE_OTHER);

    let page = alice.get("/following").await;
    assert!(element_text(&page.body, "no-cipher").unwrap().contains("no secret key configured"));
    let refused = alice.submit("/following", "/following", &follow_form("new", &[])).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = element_text(&refused.body, "error-new-api_key").unwrap();
    assert!(message.contains("Broker keys cannot be stored: no secret key configured"), "{message}");
    assert_no_keys(&refused.body, "the refusal");
    assert!(follows_of(&app.store, alice_user.id).await.is_empty());
    // Paper trading needs no keys, so it can still be followed.
    let paper = follow_form("new", &[("broker", "paper"), ("api_key", ""), ("api_secret", "")]);
    assert_eq!(alice.submit("/following", "/following", &paper).await.status, StatusCode::SEE_OTHER);
    assert_eq!(follows_of(&app.store, alice_user.id).await.len(), 1);
    server.abort();
    app.stop().await;
}

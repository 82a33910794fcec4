//! `POST /webhooks/tradingview` end to end on the real app: the secret (body field or header) is checked
//! first and a wrong or missing one gets 401 with nothing stored; a JSON alert becomes a `webhook` signal; a
//! plain-text body goes through the provider parser; a replay (same id, or same body without one) stores no
//! second signal; a stop on the wrong side or a malformed body is refused with a reason and stores nothing.

use domain::SignalSource;
use reqwest::StatusCode;
use serde_json::{Value, json};
use signalpost::config::{Secret, WebConfig};
use store::{Store, WEBHOOK_CHANNEL};
use testkit::{AppOptions, TestApp, spawn_app};

const SECRET: &str = "tv-shared-secret-123";

async fn app() -> (TestApp, testkit::db::DbGuard) {
    spawn_app(AppOptions {
        web: Some(WebConfig {
            first_run_admin: false,
            tradingview_secret: Some(Secret::new(SECRET)),
            ..WebConfig::default()
        }),
        ..AppOptions::default()
    })
    .await
}

async fn post_json(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    let response = app.client.post(app.url("/webhooks/tradingview")).json(body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn webhook_signals(store: &dyn Store) -> Vec<store::StoredSignal> {
    let all = store.recent_signals(1_000_000).await.unwrap();
    all.into_iter().filter(|s| s.signal.source == SignalSource::Webhook).collect()
}

#[tokio::test]
async fn wrong_or_missing_secrets_get_401_and_store_nothing() {
    let (app, _db) = app().await;
    let alert = json!({"secret": "nope", "id": "a1", "symbol": "EURUSD", "side": "buy", "entry": 1.085, "sl": 1.08});
    let (status, body) = post_json(&app, &alert).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("secret"));

    let mut missing = alert.clone();
    missing.as_object_mut().unwrap().remove("secret");
    assert_eq!(post_json(&app, &missing).await.0, StatusCode::UNAUTHORIZED);

    let text = app
        .client
        .post(app.url("/webhooks/tradingview"))
        .header("content-type", "text/plain")
        .header("X-Signalpost-Secret", "tv-shared-secret-12")
        .body("EURUSD BUY 1.0850\nSL 1.0800\nTP 1.0950")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNAUTHORIZED, "a prefix of the secret is not the secret");

    assert!(webhook_signals(&*app.store).await.is_empty());
    assert!(app.store.provider_messages(WEBHOOK_CHANNEL, 10).await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_json_alert_is_a_webhook_signal_stored_once() {
    let (mut app, _db) = app().await;
    let alert = json!({
        "secret": SECRET, "id": "alert-42", "symbol": "OANDA:EURUSD", "side": "sell",
        "entry": "1.0850", "sl": 1.09, "tp": [1.08, "1.075"]
    });
    let (status, body) = post_json(&app, &alert).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["signal_id"].as_i64().unwrap();
    // Announced for the router (the replay's engine signals are announced on the same bus).
    app.wait_for_event(std::time::Duration::from_secs(10), |e| {
        matches!(e, bus::Event::SignalCreated { signal_id, signal }
            if signal_id.0 == id && signal.source == SignalSource::Webhook)
    })
    .await;

    let signals = webhook_signals(&*app.store).await;
    assert_eq!(signals.len(), 1);
    let s = &signals[0].signal;
    assert_eq!(s.symbol.as_str(), "EURUSD");
    assert_eq!(s.side, domain::Side::Short);
    assert_eq!(s.take_profits.len(), 2);
    assert_eq!(s.stop_loss.unwrap().to_string(), "1.09");

    // The same alert again: 200 duplicate, the first signal's id, nothing new.
    let (status, body) = post_json(&app, &alert).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "duplicate");
    assert_eq!(body["signal_id"].as_i64(), Some(id));
    assert_eq!(webhook_signals(&*app.store).await.len(), 1);

    // The secret is not kept with the stored delivery.
    let stored = app.store.provider_messages(WEBHOOK_CHANNEL, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].content.contains(SECRET), "{}", stored[0].content);
    app.stop().await;
}

#[tokio::test]
async fn a_text_body_goes_through_the_parser_and_a_replay_is_one_signal() {
    let (app, _db) = app().await;
    let send = |text: &'static str| {
        app.client
            .post(app.url("/webhooks/tradingview"))
            .header("content-type", "text/plain; charset=utf-8")
            .header("X-Signalpost-Secret", SECRET)
            .body(text)
            .send()
    };
    let first = send("EURUSD BUY 1.0850\nSL 1.0800\nTP 1.0950").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = send("EURUSD BUY 1.0850\nSL 1.0800\nTP 1.0950").await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
    let signals = webhook_signals(&*app.store).await;
    assert_eq!(signals.len(), 1, "no id: the body's hash deduplicates");
    assert_eq!(signals[0].signal.side, domain::Side::Long);
    assert_eq!(signals[0].signal.entry, domain::Entry::Price { price: domain::Price::parse("1.085").unwrap() });

    let noise = send("Good morning, big week ahead").await.unwrap();
    assert_eq!(noise.status(), StatusCode::OK);
    assert_eq!(noise.json::<Value>().await.unwrap()["status"], "noise");
    assert_eq!(webhook_signals(&*app.store).await.len(), 1, "noise changes nothing");
    app.stop().await;
}

#[tokio::test]
async fn bad_alerts_are_refused_with_a_reason_and_store_nothing() {
    let (app, _db) = app().await;
    let wrong_side =
        json!({"secret": SECRET, "id": "w1", "symbol": "EURUSD", "side": "buy", "entry": 1.085, "sl": 1.09});
    let (status, body) = post_json(&app, &wrong_side).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("stop loss"), "{body}");

    let no_symbol = json!({"secret": SECRET, "side": "buy", "entry": 1.085});
    let (status, body) = post_json(&app, &no_symbol).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("symbol"), "{body}");

    let bad_number = json!({"secret": SECRET, "symbol": "EURUSD", "side": "buy", "entry": "soon"});
    let (status, body) = post_json(&app, &bad_number).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("entry"), "{body}");

    let not_an_object = app
        .client
        .post(app.url("/webhooks/tradingview"))
        .header("content-type", "application/json")
        .header("X-Signalpost-Secret", SECRET)
        .body("[1, 2]")
        .send()
        .await
        .unwrap();
    assert_eq!(not_an_object.status(), StatusCode::BAD_REQUEST);

    assert!(webhook_signals(&*app.store).await.is_empty());
    assert!(app.store.provider_messages(WEBHOOK_CHANNEL, 10).await.unwrap().is_empty());
    app.stop().await;
}

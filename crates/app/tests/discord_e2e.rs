//! The whole Discord journey in one run of the real app, as a user lives it: the replay produces an engine
//! signal, the router queues it and the outbox delivers its embed to the (fake) Discord; the user clicks
//! Open Trade, gets the pre-filled modal and submits it, which opens the trade; the market then runs on until
//! the take profit, and the user receives the close message with the right pips and money.
//!
//! The replay is held by a gate at the signal's candle close while the user acts, the way a live market
//! would not wait but a test must, so nothing races a paced replay against the wall clock.

use discord::render::ENGINE_TITLE;
use domain::{CloseReason, InstrumentRegistry, Side, Symbol, Timeframe, TradeStatus};
use rust_decimal::Decimal;
use serde_json::Value;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use store::TradeFilter;
use testkit::discord::FakeDiscord;
use testkit::discord::interact::{InteractionSigner, button_click, modal_submit, modal_value};
use testkit::discord::openapi::Spec;
use testkit::{AppOptions, DiscordOptions, spawn_app_on};

const ANN: &str = "1100000000000000042";

fn candles_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../market/tests/data/lean_oanda_EURUSD_H1_head300.csv.gz")
}

/// An engine signal the replay will produce, and what the market does after it.
#[derive(Debug)]
struct Expected {
    close_time: chrono::DateTime<chrono::Utc>,
    side: Side,
    entry: Decimal,
    take_profit: Decimal,
    /// The 1h signals up to and including this one: the messages the user has by then.
    signals_so_far: usize,
}

/// Runs the engine over the file as the app's scanner does, and picks the first signal whose take profit the
/// market reaches cleanly: a later candle trades through the take profit without touching the stop loss and
/// without opening beyond it, so the exit is exactly the take profit whichever way the bar is walked.
fn first_signal_reaching_its_take_profit() -> Expected {
    let candles = market::load_candles(&candles_file(), &market::LoadOptions::default()).unwrap();
    let instrument = InstrumentRegistry::global().get("EURUSD").unwrap();
    let model = signalpost::commands::model::load_model(None).unwrap();
    let mut scanner = engine::reversal::scanner::ReversalScanner::new(model, Timeframe::H1.seconds());
    let mut signals_so_far = 0;
    for (i, candle) in candles.iter().enumerate() {
        let Some(found) = scanner.on_bar(&engine::Bar::from(candle)) else { continue };
        let Ok(signal) = signalpost::scanner::to_signal(&found, instrument, Timeframe::H1) else { continue };
        signals_so_far += 1;
        let domain::Entry::Price { price: entry } = signal.entry else { continue };
        let (Some(sl), Some(tp)) = (signal.stop_loss, signal.take_profits.first()) else { continue };
        let (entry, sl, tp) = (entry.value(), sl.value(), tp.value());
        let long = signal.side == Side::Long;
        for later in &candles[i + 1..] {
            let touches_sl = if long { later.low <= sl } else { later.high >= sl };
            let touches_tp = if long { later.high >= tp } else { later.low <= tp };
            let opens_beyond_tp = if long { later.open >= tp } else { later.open <= tp };
            if touches_sl || opens_beyond_tp {
                break;
            }
            if touches_tp {
                return Expected {
                    close_time: candle.close_time(Timeframe::H1),
                    side: signal.side,
                    entry,
                    take_profit: tp,
                    signals_so_far,
                };
            }
        }
    }
    panic!("no signal in the file reaches its take profit cleanly; the test needs other data");
}

fn field(embed: &Value, name: &str) -> String {
    embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The first number in `text`, signs and decimal point included ("+$23.40" → 23.40, "-5.1 pips" → -5.1).
fn number_in(text: &str) -> Decimal {
    let negative = text.trim_start().starts_with('-');
    let digits: String =
        text.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value = Decimal::from_str(&digits).unwrap_or_else(|e| panic!("no number in {text:?}: {e}"));
    if negative { -value } else { value }
}

#[tokio::test]
async fn a_replayed_signal_becomes_a_trade_in_discord_and_its_take_profit_is_reported() {
    let expected = first_signal_reaching_its_take_profit();
    let fake = FakeDiscord::start().await;
    let signer = InteractionSigner::default();
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = store.ensure_discord_user(ANN, "ann").await.unwrap().id;
    let settings = domain::UserSettings {
        enabled_timeframes: vec![Timeframe::H1],
        preferred_pairs: vec![Symbol::normalize("EURUSD")],
        min_confidence: Decimal::ZERO,
        notification_cooldown_minutes: 0,
        max_notifications_per_day: 1000,
        ..domain::UserSettings::default()
    };
    store.save_settings(ann, &settings).await.unwrap();

    let gate = market::ReplayGate::closed();
    gate.open_until(expected.close_time);
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("EURUSD:1h:{}", candles_file().display())],
            replay_speed: 0.0,
            replay_gate: Some(gate.clone()),
            discord: Some(DiscordOptions {
                token: Some("test-bot-token".into()),
                application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
                public_key_hex: Some(signer.public_key_hex()),
                api_base: Some(fake.base_url()),
            }),
            ..AppOptions::default()
        },
    )
    .await;

    // 1. The signal reaches Discord as the embed with its three buttons, after the ones before it.
    let notification_of = |message: &testkit::discord::SentMessage| {
        let open_id = message.body["components"][0]["components"][0]["custom_id"].as_str().unwrap_or_default();
        open_id.strip_prefix("open:").and_then(|id| id.parse::<i64>().ok())
    };
    let sent = fake.wait_for_messages(expected.signals_so_far, Duration::from_secs(30)).await.unwrap();
    let mut ours = None;
    for message in &sent {
        let id = notification_of(message).expect("every message so far is a signal with buttons");
        let notification = store.get_notification(domain::NotificationId(id)).await.unwrap().unwrap();
        assert_eq!(notification.user_id, ann);
        let signal = store.get_signal(notification.signal_id).await.unwrap().unwrap();
        if signal.signal.created_at == expected.close_time {
            ours = Some((message.clone(), id));
        }
    }
    let (message, notification_id) = ours.expect("the engine's signal at the gate reached Discord");
    assert_eq!(sent.len(), expected.signals_so_far, "one message per 1h signal so far, no more");
    assert_eq!(message.recipient_id.as_deref(), Some(ANN));
    let embed = &message.body["embeds"][0];
    assert_eq!(embed["title"], ENGINE_TITLE);
    assert_eq!(field(embed, "Pair"), "EURUSD");
    assert!(field(embed, "Signal").eq_ignore_ascii_case(&expected.side.to_string()), "{embed}");
    let open_id = format!("open:{notification_id}");

    // 2. Open Trade: the modal comes first, pre-filled from the signal.
    let post = |body: Value| {
        let (client, url, signer) = (app.client.clone(), app.url("/discord/interactions"), signer.clone());
        async move {
            let response = signer.post(&client, &url, &body, chrono::Utc::now().timestamp()).await;
            assert_eq!(response.status(), 200);
            let answer: Value = response.json().await.unwrap();
            Spec::global().validate_interaction_response(&answer).unwrap_or_else(|e| panic!("{answer}: {e:?}"));
            answer
        }
    };
    let modal = post(button_click(ANN, &open_id)).await;
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(modal["data"]["custom_id"], format!("trade:{notification_id}"));
    let value = |id: &str| modal_value(&modal, id).unwrap_or_default();
    let (entry, stop_loss, take_profit) = (value("entry"), value("stop_loss"), value("take_profit"));
    assert_eq!(Decimal::from_str(&entry).unwrap(), expected.entry);
    assert_eq!(Decimal::from_str(&take_profit).unwrap(), expected.take_profit);

    // 3. The submit opens the trade, confirmed privately with its id.
    let lots = "0.1";
    let values = [
        ("entry", entry.as_str()),
        ("lots", lots),
        ("stop_loss", stop_loss.as_str()),
        ("take_profit", take_profit.as_str()),
        ("notes", ""),
    ];
    let confirmation = post(modal_submit(ANN, &format!("trade:{notification_id}"), &values)).await;
    assert_eq!(confirmation["data"]["flags"], 64);
    let trades = store.list_trades(&TradeFilter::default()).await.unwrap();
    assert_eq!(trades.len(), 1);
    let trade = &trades[0];
    assert!(confirmation["data"]["content"].as_str().unwrap().contains(&format!("#{}", trade.id)), "{confirmation}");
    assert_eq!((trade.user_id, trade.status, trade.side), (ann, TradeStatus::Open, expected.side));

    // 4. The market goes on; the monitor closes the trade at its take profit and the user is told.
    gate.open();
    let trade_id = trade.id;
    app.wait_for_event(
        Duration::from_secs(30),
        |e| matches!(e, bus::Event::TradeClosed { trade } if trade.id == trade_id),
    )
    .await;
    let closed = store.get_trade(trade_id).await.unwrap().unwrap();
    assert_eq!(closed.close_reason, Some(CloseReason::TpHit));
    assert_eq!(closed.exit_price.map(|p| p.value()), Some(expected.take_profit));

    let close_message = loop {
        let all = fake.wait_for_messages(fake.messages_sent().len() + 1, Duration::from_secs(30)).await.unwrap();
        if let Some(found) =
            all.iter().find(|m| m.body["embeds"][0]["title"].as_str().is_some_and(|t| t.starts_with("TAKE PROFIT HIT")))
        {
            break found.clone();
        }
    };
    assert_eq!(close_message.recipient_id.as_deref(), Some(ANN));
    let embed = &close_message.body["embeds"][0];
    // EURUSD: a pip is 0.0001; a lot is 100,000 euros and the quote currency is the account's (USD).
    let direction = if expected.side == Side::Long { Decimal::ONE } else { -Decimal::ONE };
    let gain = (expected.take_profit - expected.entry) * direction;
    let pips = gain / Decimal::from_str("0.0001").unwrap();
    let dollars = gain * Decimal::from(100_000) * Decimal::from_str(lots).unwrap();
    assert!(pips > Decimal::ZERO);
    assert_eq!(number_in(&field(embed, "Pips")), pips.round_dp(1), "{embed}");
    assert_eq!(number_in(&field(embed, "Profit")), dollars.round_dp(2), "{embed}");
    assert!(field(embed, "Profit").starts_with("+$"), "{embed}");
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
    assert_eq!(fake.rate_limited_count(), 0);
    app.stop().await;
}

//! The copier end to end: the real app on the fake gateway and a fake Alpaca. A provider's open becomes an
//! order at the broker for each approved follower (Alpaca and paper) and a refusal naming the gate for the
//! others; replies that move the stop, close half and close the rest reach the broker and the store; a
//! replayed dispatch places nothing twice; a broker rejection is stored with its reason and no trade; a copy a
//! stopped run left pending is re-driven at start. Runs on SQLite, or PostgreSQL with `TEST_DATABASE_URL`.
//!
//! The gateway handles dispatches in order, so a test waits for the effect of a later message (in the store)
//! to know an earlier one was handled, rather than sleeping.

use chrono::{Duration as ChronoDuration, Timelike, Utc};
use domain::{Entry, Lots, NewTrade, Price, Side, Signal, SignalId, SignalSource, Symbol, TradeStatus, UserId};
use risk::{FollowerRiskSettings, HoursDraft, RiskSettingsDraft, Sizing};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use store::{
    BrokerCredentials, BrokerKind, CopyOrder, CopyStatus, Follower, KeyCipher, NewCopy, NewFollower, NewUser, Role,
    Store,
};
use testkit::alpaca::{FakeAlpaca, Fault};
use testkit::discord::FakeDiscord;
use testkit::discord::gateway::{FakeGateway, message_object};
use testkit::wait::eventually;
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};

const CHANNEL: &str = "2200000000000000001";
const PROVIDER: &str = "3300000000000000003";
const WAIT: Duration = Duration::from_secs(30);
const OPEN: &str = "BTCUSD BUY\nSL 49000\nTP 52000";

fn candle_start() -> chrono::DateTime<Utc> {
    "2024-01-02T00:00:00Z".parse().unwrap()
}

async fn start(
    fake: &FakeDiscord,
    gateway: &FakeGateway,
    alpaca: &FakeAlpaca,
    url: &str,
    gate: Option<market::ReplayGate>,
    series: Vec<String>,
) -> TestApp {
    let discord = DiscordOptions {
        token: Some("test-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        api_base: Some(fake.base_url()),
        ..DiscordOptions::default()
    };
    spawn_app_on(
        url,
        AppOptions {
            discord: Some(discord),
            discord_gateway_url: Some(gateway.url()),
            alpaca_base_url: Some(alpaca.base_url()),
            replay_series: series,
            replay_gate: gate,
            ..AppOptions::default()
        },
    )
    .await
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    let new = NewUser { discord_user_id: None, display_name: name.into(), role: Role::User };
    store.create_user(&new).await.unwrap().id
}

fn settings(draft: RiskSettingsDraft) -> FollowerRiskSettings {
    FollowerRiskSettings::new_checked(draft).unwrap()
}

fn fixed(lots: Decimal) -> RiskSettingsDraft {
    RiskSettingsDraft { sizing: Sizing::FixedLots { lots }, ..RiskSettingsDraft::default() }
}

async fn follow(
    store: &Arc<dyn Store>,
    user: UserId,
    broker: BrokerKind,
    draft: RiskSettingsDraft,
    alpaca: Option<&FakeAlpaca>,
) -> Follower {
    let cipher = KeyCipher::from_base64(testkit::app::TEST_SECRET_KEY).unwrap();
    let sealed = alpaca.map(|a| {
        cipher
            .seal(&BrokerCredentials { api_key: a.key_id().to_string(), api_secret: a.secret_key().to_string() }, user)
    });
    let settings = settings(draft);
    let new = NewFollower {
        user_id: user,
        provider_channel: CHANNEL,
        broker,
        sealed_credentials: sealed,
        risk_settings: &settings,
        balance: dec!(100000),
        currency: "USD",
        at: Utc::now(),
    };
    store.save_follower(&new).await.unwrap()
}

/// Every copy of `signal` once none is pending.
async fn finished_copies(store: &Arc<dyn Store>, signal: SignalId, n: usize) -> Vec<CopyOrder> {
    eventually(&format!("{n} finished copies of signal {signal}"), WAIT, || async {
        let copies = store.copy_orders_for_signal(signal).await.unwrap();
        (copies.len() == n && copies.iter().all(|c| c.status != CopyStatus::Pending)).then_some(copies)
    })
    .await
}

async fn signal_of(store: &Arc<dyn Store>, message_id: &str) -> SignalId {
    eventually(&format!("the signal of message {message_id}"), WAIT, || async {
        let stored = store.provider_messages(CHANNEL, 100).await.unwrap();
        stored.iter().find(|m| m.message_id == message_id).and_then(|m| m.signal_id)
    })
    .await
}

/// The stored outcome of a message once the copier has replaced the "not applied yet" text.
async fn applied_outcome(store: &Arc<dyn Store>, message_id: &str) -> String {
    eventually(&format!("the applied outcome of message {message_id}"), WAIT, || async {
        let stored = store.provider_messages(CHANNEL, 100).await.unwrap();
        let m = stored.into_iter().find(|m| m.message_id == message_id)?;
        (!m.outcome.contains("not applied yet")).then_some(m.outcome)
    })
    .await
}

fn reply(message_id: &str, replying_to: &str, content: &str) -> Value {
    let mut m = message_object(CHANNEL, message_id, PROVIDER, content);
    // A reply is message type 19 with a default (type 0) reference.
    m["type"] = serde_json::json!(19);
    m["message_reference"] =
        serde_json::json!({ "type": 0, "message_id": replying_to, "channel_id": CHANNEL, "guild_id": m["guild_id"] });
    m
}

fn copy_of(copies: &[CopyOrder], user: UserId) -> &CopyOrder {
    copies.iter().find(|c| c.user_id == user).expect("a copy for the user")
}

/// Parent orders the fake Alpaca accepted (closing orders left out).
fn entries(alpaca: &FakeAlpaca) -> Vec<Value> {
    alpaca
        .orders()
        .into_iter()
        .filter(|o| o["client_order_id"].as_str().is_some_and(|id| id.starts_with("sp-")))
        .collect()
}

fn live_stop(order: &Value) -> Option<String> {
    order["legs"]
        .as_array()?
        .iter()
        .find(|l| l["type"] == "stop" && l["status"] != "replaced")
        .map(|l| l["stop_price"].as_str().map_or_else(|| l["stop_price"].to_string(), str::to_string))
}

fn provider_signal(symbol: &str) -> Signal {
    Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: None,
        side: Side::Long,
        entry: Entry::Market,
        stop_loss: Some(Price::new(dec!(40000)).unwrap()),
        take_profits: vec![Price::new(dec!(60000)).unwrap()],
        leverage: None,
        confidence: None,
        source: SignalSource::Provider(CHANNEL.into()),
        model_version: None,
        stage1_prob: None,
        stage2_prob: None,
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn a_provider_signal_is_copied_to_approved_followers_and_its_updates_reach_broker_and_store() {
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder().token("test-bot-token").start().await;
    let alpaca = FakeAlpaca::builder().price("BTC/USD", dec!(50000)).rate_limit(100_000).start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.add_provider_channel(CHANNEL, "BTC VIP", "test", Utc::now()).await.unwrap();

    let ann = user(&store, "ann").await; // Alpaca, approved
    let bob = user(&store, "bob").await; // paper, approved
    let cat = user(&store, "cat").await; // paper, at her one open position already
    let dan = user(&store, "dan").await; // paper, outside his trading hours
    let ann_f = follow(&store, ann, BrokerKind::Alpaca, fixed(dec!(0.1)), Some(&alpaca)).await;
    follow(&store, bob, BrokerKind::Paper, fixed(dec!(0.2)), None).await;
    let cat_f =
        follow(&store, cat, BrokerKind::Paper, RiskSettingsDraft { max_open_positions: 1, ..fixed(dec!(0.1)) }, None)
            .await;
    let later = Utc::now() + ChronoDuration::hours(3);
    let start_at = later.time().with_second(0).unwrap().with_nanosecond(0).unwrap();
    let hours = HoursDraft { start: start_at, end: start_at + ChronoDuration::minutes(1), weekdays: Vec::new() };
    follow(&store, dan, BrokerKind::Paper, RiskSettingsDraft { hours: Some(hours), ..fixed(dec!(0.1)) }, None).await;

    // Cat already holds one copied position (set up through the store, as an earlier copy would have left it).
    let (earlier, _) = store.insert_signal(&provider_signal("BTCUSD"), None).await.unwrap();
    let rows = store
        .begin_copies(
            earlier,
            &[NewCopy { follower_id: cat_f.id, user_id: cat, client_order_id: "setup-cat" }],
            Utc::now(),
        )
        .await
        .unwrap();
    let held = NewTrade {
        user_id: cat,
        symbol: Symbol::normalize("BTCUSD"),
        side: Side::Long,
        entry: Price::new(dec!(50000)).unwrap(),
        lots: Lots::new_checked(dec!(0.1)).unwrap(),
        stop_loss: Some(Price::new(dec!(40000)).unwrap()),
        take_profit: Some(Price::new(dec!(60000)).unwrap()),
        notes: None,
        signal_id: Some(earlier),
        notification_id: None,
        opened_at: Utc::now(),
    };
    store.finish_copy_placed(rows[0].id, "setup", &held, Utc::now()).await.unwrap().unwrap();

    // BTCUSD at 50,000 for the first hour, then 51,000: the gate holds the market at the first hour.
    let (candles, _dir) = testkit::write_candles(&[
        ("2024-01-02T00:00:00Z", "50000", "50000", "50000", "50000"),
        ("2024-01-02T01:00:00Z", "51000", "51000", "51000", "51000"),
    ]);
    let gate = market::ReplayGate::closed();
    gate.open_until(candle_start() + ChronoDuration::minutes(59));
    let series = vec![format!("BTCUSD:1h:{}", candles.display())];
    let mut app = start(&fake, &gateway, &alpaca, &url, Some(gate.clone()), series).await;
    gateway.wait_for_identify(1, WAIT).await.unwrap();
    eventually("the first hour's price", WAIT, || async {
        app.store.last_price(&Symbol::normalize("BTCUSD")).await.unwrap()
    })
    .await;

    gateway.message_create(CHANNEL, "9001", PROVIDER, OPEN);
    let signal = signal_of(&app.store, "9001").await;
    let copies = finished_copies(&app.store, signal, 4).await;
    let (a, b, c, d) = (copy_of(&copies, ann), copy_of(&copies, bob), copy_of(&copies, cat), copy_of(&copies, dan));
    assert_eq!(a.status, CopyStatus::Placed, "{a:?}");
    assert_eq!(b.status, CopyStatus::Placed, "{b:?}");
    assert_eq!((c.status, c.gate.as_deref()), (CopyStatus::Refused, Some("max_open_positions")), "{c:?}");
    assert_eq!((d.status, d.gate.as_deref()), (CopyStatus::Refused, Some("trading_hours")), "{d:?}");
    assert!(c.trade_id.is_none() && d.trade_id.is_none());
    assert_eq!(a.client_order_id, broker::ClientOrderId::for_signal(signal, ann).to_string());

    let orders = entries(&alpaca);
    assert_eq!(orders.len(), 1, "one order at Alpaca: {orders:?}");
    assert_eq!(orders[0]["client_order_id"], a.client_order_id.as_str());
    assert_eq!(orders[0]["symbol"], "BTC/USD");
    assert_eq!(orders[0]["qty"], "0.1");
    assert_eq!(orders[0]["id"].as_str(), a.broker_order_id.as_deref());
    let ann_trade = app.store.get_trade(a.trade_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((ann_trade.user_id, ann_trade.signal_id, ann_trade.status), (ann, Some(signal), TradeStatus::Open));
    assert_eq!(ann_trade.entry.value(), dec!(50000));
    assert_eq!(ann_trade.stop_loss.map(Price::value), Some(dec!(49000)));
    assert_eq!(ann_trade.take_profit.map(Price::value), Some(dec!(52000)));
    assert_eq!(ann_trade.notes.as_deref(), Some("copied from BTC VIP via alpaca"));
    let bob_trade = app.store.get_trade(b.trade_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(bob_trade.lots.value(), dec!(0.2));
    assert_eq!(bob_trade.notes.as_deref(), Some("copied from BTC VIP via paper"));

    // A replayed dispatch places nothing twice; the noise after it proves it was handled.
    gateway.message_create(CHANNEL, "9001", PROVIDER, OPEN);
    gateway.message_create(CHANNEL, "9002", PROVIDER, "gm everyone");
    eventually("the noise after the replay", WAIT, || async {
        let stored = app.store.provider_messages(CHANNEL, 100).await.unwrap();
        stored.iter().any(|m| m.message_id == "9002").then_some(())
    })
    .await;
    assert_eq!(entries(&alpaca).len(), 1, "a replayed MESSAGE_CREATE places no second order");
    assert_eq!(app.store.copy_orders_for_signal(signal).await.unwrap().len(), 4);

    // The market moves up; the provider moves the stop to entry in a reply.
    gate.open();
    app.wait_for_replay_end().await;
    alpaca.set_price("BTC/USD", dec!(51000));
    gateway.dispatch_message_create(reply("9003", "9001", "BTCUSD move SL to entry"));
    let outcome = applied_outcome(&app.store, "9003").await;
    assert!(outcome.contains("moved stop to entry on 2 trades"), "{outcome}");
    assert!(!outcome.contains("failed"), "{outcome}");
    // Breakeven is the entry less one quoted tick: a stop must sit strictly below a long's entry.
    let ann_trade = app.store.get_trade(ann_trade.id).await.unwrap().unwrap();
    assert_eq!(ann_trade.stop_loss.map(Price::value), Some(dec!(49999.99)), "the store's stop moved to the entry");
    let bob_trade = app.store.get_trade(bob_trade.id).await.unwrap().unwrap();
    assert_eq!(bob_trade.stop_loss.map(Price::value), Some(bob_trade.entry.value() - dec!(0.01)));
    let order = entries(&alpaca).remove(0);
    assert_eq!(live_stop(&order).as_deref(), Some("49999.99"), "the exchange's stop moved: {order}");

    // Close half, then the rest.
    gateway.dispatch_message_create(reply("9004", "9001", "BTCUSD close 50%"));
    let outcome = applied_outcome(&app.store, "9004").await;
    assert!(outcome.contains("closed 50% on 2 trades"), "{outcome}");
    assert_eq!(alpaca.position("BTC/USD"), Some(dec!(0.05)), "half the position is left at Alpaca");
    let ann_trade = app.store.get_trade(ann_trade.id).await.unwrap().unwrap();
    assert_eq!((ann_trade.status, ann_trade.lots.value()), (TradeStatus::Open, dec!(0.05)));
    let bob_trade = app.store.get_trade(bob_trade.id).await.unwrap().unwrap();
    assert_eq!(bob_trade.lots.value(), dec!(0.1));

    gateway.dispatch_message_create(reply("9005", "9001", "Close all BTCUSD"));
    let outcome = applied_outcome(&app.store, "9005").await;
    assert!(outcome.contains("closed on 2 trades"), "{outcome}");
    assert_eq!(alpaca.position("BTC/USD").unwrap_or_default(), Decimal::ZERO, "nothing left at Alpaca");
    let ann_trade = app.store.get_trade(ann_trade.id).await.unwrap().unwrap();
    assert_eq!(ann_trade.status, TradeStatus::Closed);
    assert_eq!(ann_trade.exit_price.map(Price::value), Some(dec!(51000)));
    assert!(ann_trade.profit.unwrap() > Decimal::ZERO, "{ann_trade:?}");
    // Ann's trades for the signal: the closed half and the closed rest.
    let ann_trades = app.store.list_trades(&store::TradeFilter { user_id: Some(ann), ..Default::default() }).await;
    let ann_trades: Vec<_> = ann_trades.unwrap().into_iter().filter(|t| t.signal_id == Some(signal)).collect();
    assert_eq!(ann_trades.len(), 2, "{ann_trades:?}");
    assert!(ann_trades.iter().all(|t| t.status == TradeStatus::Closed));

    // A signal on an instrument Alpaca does not trade: rejected for Ann with the reason, nothing sent.
    gateway.message_create(CHANNEL, "9006", PROVIDER, "EURUSD BUY 1.0850\nSL 1.0800\nTP 1.0950");
    let eurusd = signal_of(&app.store, "9006").await;
    let copies = finished_copies(&app.store, eurusd, 4).await;
    let a = copy_of(&copies, ann);
    assert_eq!(a.status, CopyStatus::Rejected, "{a:?}");
    assert!(a.reason.as_deref().unwrap_or_default().contains("does not trade EURUSD"), "{a:?}");
    assert!(a.trade_id.is_none());
    assert_eq!(entries(&alpaca).len(), 1, "nothing sent for EURUSD");
    let _ = ann_f;
    app.stop().await;
}

#[tokio::test]
async fn a_broker_rejection_is_stored_with_its_reason_and_a_busy_broker_is_retried() {
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder().token("test-bot-token").start().await;
    let alpaca = FakeAlpaca::builder().price("BTC/USD", dec!(50000)).rate_limit(100_000).start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.add_provider_channel(CHANNEL, "BTC VIP", "test", Utc::now()).await.unwrap();
    let ann = user(&store, "ann").await;
    follow(&store, ann, BrokerKind::Alpaca, fixed(dec!(0.1)), Some(&alpaca)).await;
    let (candles, _dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "50000", "50000", "50000", "50000")]);
    let mut app = start(&fake, &gateway, &alpaca, &url, None, vec![format!("BTCUSD:1h:{}", candles.display())]).await;
    app.wait_for_replay_end().await;
    gateway.wait_for_identify(1, WAIT).await.unwrap();

    let fault = Fault::Error { status: 403, code: 40310000, message: "insufficient buying power".into() };
    alpaca.fail_next(1, fault);
    gateway.message_create(CHANNEL, "9101", PROVIDER, OPEN);
    let signal = signal_of(&app.store, "9101").await;
    let copies = finished_copies(&app.store, signal, 1).await;
    assert_eq!(copies[0].status, CopyStatus::Rejected, "{:?}", copies[0]);
    assert!(copies[0].reason.as_deref().unwrap().contains("insufficient buying power"), "{:?}", copies[0]);
    assert!(copies[0].trade_id.is_none());
    let trades = app.store.list_trades(&store::TradeFilter { user_id: Some(ann), ..Default::default() }).await;
    assert!(trades.unwrap().is_empty(), "a rejected copy opens no trade");
    assert!(entries(&alpaca).is_empty());

    // Two 500s, then the order goes through: one order, placed.
    alpaca.fail_next(2, Fault::ServerError);
    gateway.message_create(CHANNEL, "9102", PROVIDER, OPEN);
    let signal = signal_of(&app.store, "9102").await;
    let copies = finished_copies(&app.store, signal, 1).await;
    assert_eq!(copies[0].status, CopyStatus::Placed, "{:?}", copies[0]);
    assert_eq!(entries(&alpaca).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_copy_left_pending_by_a_stopped_run_is_placed_once_at_start() {
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder().token("test-bot-token").start().await;
    let alpaca = FakeAlpaca::builder().price("BTC/USD", dec!(50000)).rate_limit(100_000).start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.add_provider_channel(CHANNEL, "BTC VIP", "test", Utc::now()).await.unwrap();
    let ann = user(&store, "ann").await;
    let ann_f = follow(&store, ann, BrokerKind::Alpaca, fixed(dec!(0.1)), Some(&alpaca)).await;
    let mut signal = provider_signal("BTCUSD");
    signal.entry = Entry::Price { price: Price::new(dec!(50000)).unwrap() };
    let (signal_id, _) = store.insert_signal(&signal, None).await.unwrap();
    let id = broker::ClientOrderId::for_signal(signal_id, ann).to_string();
    let copy = NewCopy { follower_id: ann_f.id, user_id: ann, client_order_id: &id };
    store.begin_copies(signal_id, &[copy], Utc::now() - ChronoDuration::minutes(5)).await.unwrap();

    let (candles, _dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "50000", "50000", "50000", "50000")]);
    let app = start(&fake, &gateway, &alpaca, &url, None, vec![format!("BTCUSD:1h:{}", candles.display())]).await;
    let copies = finished_copies(&app.store, signal_id, 1).await;
    assert_eq!(copies[0].status, CopyStatus::Placed, "{:?}", copies[0]);
    let orders = entries(&alpaca);
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["client_order_id"], id.as_str());
    assert_eq!(orders[0]["type"], "limit");
    let trade = app.store.get_trade(copies[0].trade_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(trade.entry.value(), dec!(50000), "a resting limit is recorded at its price");
    app.stop().await;
}

/// A signal on BTCUSDT becomes an order on the fake Binance (USD-M futures, with its stop and target as
/// conditional orders) and on the fake Alpaca; a symbol Binance does not list is rejected before anything is
/// sent; "move SL to entry" moves the stop on both exchanges and in the store.
#[tokio::test]
async fn binance_futures_and_alpaca_followers_get_orders_and_stop_moves() {
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::builder().token("test-bot-token").start().await;
    let alpaca = FakeAlpaca::builder().price("BTC/USDT", dec!(50000)).rate_limit(100_000).start().await;
    let binance = testkit::binance::FakeBinance::futures()
        .symbol("BTC", "USDT", dec!(50000))
        .balance("USDT", dec!(100000))
        .start()
        .await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.add_provider_channel(CHANNEL, "BTC VIP", "test", Utc::now()).await.unwrap();
    let ann = user(&store, "ann").await; // Alpaca
    let fay = user(&store, "fay").await; // Binance futures
    follow(&store, ann, BrokerKind::Alpaca, fixed(dec!(0.01)), Some(&alpaca)).await;
    let cipher = KeyCipher::from_base64(testkit::app::TEST_SECRET_KEY).unwrap();
    let keys = BrokerCredentials { api_key: binance.api_key().into(), api_secret: binance.api_secret().into() };
    let settings = settings(fixed(dec!(0.01)));
    let new = NewFollower {
        user_id: fay,
        provider_channel: CHANNEL,
        broker: BrokerKind::BinanceFutures,
        sealed_credentials: Some(cipher.seal(&keys, fay)),
        risk_settings: &settings,
        balance: dec!(100000),
        currency: "USD",
        at: Utc::now(),
    };
    store.save_follower(&new).await.unwrap();

    let (candles, _dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "50000", "50000", "50000", "50000")]);
    let discord = DiscordOptions {
        token: Some("test-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        api_base: Some(fake.base_url()),
        ..DiscordOptions::default()
    };
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            discord: Some(discord),
            discord_gateway_url: Some(gateway.url()),
            alpaca_base_url: Some(alpaca.base_url()),
            binance_base_url: Some(binance.base_url()),
            replay_series: vec![format!("BTCUSDT:1h:{}", candles.display())],
            ..AppOptions::default()
        },
    )
    .await;
    app.wait_for_replay_end().await;
    gateway.wait_for_identify(1, WAIT).await.unwrap();

    gateway.message_create(CHANNEL, "9201", PROVIDER, "BTCUSDT BUY\nSL 49000\nTP 52000");
    let signal = signal_of(&app.store, "9201").await;
    let copies = finished_copies(&app.store, signal, 2).await;
    let (a, f) = (copy_of(&copies, ann), copy_of(&copies, fay));
    assert_eq!(a.status, CopyStatus::Placed, "{a:?}");
    assert_eq!(f.status, CopyStatus::Placed, "{f:?}");
    assert_eq!(entries(&alpaca).len(), 1);
    let orders = binance.orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["symbol"], "BTCUSDT");
    assert_eq!(orders[0]["side"], "BUY");
    let algos = binance.algo_orders();
    assert!(algos.iter().any(|o| o["type"] == "STOP_MARKET" && o["triggerPrice"] == "49000"), "{algos:?}");
    assert!(algos.iter().any(|o| o["type"] == "TAKE_PROFIT_MARKET"), "{algos:?}");
    let fay_trade = app.store.get_trade(f.trade_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(fay_trade.notes.as_deref(), Some("copied from BTC VIP via binance_futures"));

    // EURUSD is not listed on Binance: rejected with the reason, nothing sent.
    gateway.message_create(CHANNEL, "9202", PROVIDER, "EURUSD BUY 1.0850\nSL 1.0800\nTP 1.0950");
    let eurusd = signal_of(&app.store, "9202").await;
    let copies = finished_copies(&app.store, eurusd, 2).await;
    let f = copy_of(&copies, fay);
    assert_eq!(f.status, CopyStatus::Rejected, "{f:?}");
    assert!(f.reason.as_deref().unwrap_or_default().contains("EURUSD"), "{f:?}");
    assert_eq!(binance.orders().len(), 1, "nothing sent for EURUSD");

    // The market moves up; the stop goes to entry on both exchanges and in the store.
    binance.set_price("BTCUSDT", dec!(51000));
    alpaca.set_price("BTC/USDT", dec!(51000));
    gateway.dispatch_message_create(reply("9203", "9201", "BTCUSDT move SL to entry"));
    let outcome = applied_outcome(&app.store, "9203").await;
    assert!(outcome.contains("moved stop to entry on 2 trades") && !outcome.contains("failed"), "{outcome}");
    let fay_trade = app.store.get_trade(fay_trade.id).await.unwrap().unwrap();
    let stop = fay_trade.entry.value() - dec!(0.01);
    assert_eq!(fay_trade.stop_loss.map(Price::value), Some(stop));
    let algos = binance.algo_orders();
    let live_stop = algos.iter().find(|o| o["type"] == "STOP_MARKET" && o["algoStatus"] == "NEW");
    assert_eq!(live_stop.map(|o| o["triggerPrice"].clone()), Some(Value::from(stop.to_string())), "{algos:?}");
    assert_eq!(live_stop_of_first(&alpaca), Some(stop.to_string()));
    app.stop().await;
}

fn live_stop_of_first(alpaca: &FakeAlpaca) -> Option<String> {
    entries(alpaca).first().and_then(live_stop)
}

/// The TradingView webhook takes the same path: an alert is copied to the webhook channel's followers, and
/// an update body ("move SL to entry") reaches the copier over the bus and moves the stop.
#[tokio::test]
async fn tradingview_alerts_are_copied_and_their_updates_applied() {
    let alpaca = FakeAlpaca::builder().price("BTC/USD", dec!(50000)).rate_limit(100_000).start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = user(&store, "ann").await;
    let cipher = KeyCipher::from_base64(testkit::app::TEST_SECRET_KEY).unwrap();
    let keys = BrokerCredentials { api_key: alpaca.key_id().into(), api_secret: alpaca.secret_key().into() };
    let settings = settings(fixed(dec!(0.1)));
    let new = NewFollower {
        user_id: ann,
        provider_channel: store::WEBHOOK_CHANNEL,
        broker: BrokerKind::Alpaca,
        sealed_credentials: Some(cipher.seal(&keys, ann)),
        risk_settings: &settings,
        balance: dec!(100000),
        currency: "USD",
        at: Utc::now(),
    };
    store.save_follower(&new).await.unwrap();
    let secret = "tv-shared-secret-123";
    let app = spawn_app_on(
        &url,
        AppOptions {
            alpaca_base_url: Some(alpaca.base_url()),
            web: Some(signalpost::config::WebConfig {
                first_run_admin: false,
                tradingview_secret: Some(signalpost::config::Secret::new(secret)),
                ..signalpost::config::WebConfig::default()
            }),
            ..AppOptions::default()
        },
    )
    .await;
    let post = |body: Value| {
        let request = app.client.post(app.url("/webhooks/tradingview")).json(&body);
        async move { request.send().await.unwrap().status() }
    };
    let open = serde_json::json!({"secret": secret, "id": "a1", "symbol": "BTCUSD", "side": "buy", "entry": 50000,
        "sl": 49000, "tp": 52000});
    assert_eq!(post(open).await, reqwest::StatusCode::CREATED);
    let signal = eventually("the webhook signal", WAIT, || async {
        let stored = app.store.provider_messages(store::WEBHOOK_CHANNEL, 10).await.unwrap();
        stored.iter().find_map(|m| m.signal_id)
    })
    .await;
    let copies = finished_copies(&app.store, signal, 1).await;
    assert_eq!(copies[0].status, CopyStatus::Placed, "{:?}", copies[0]);
    assert_eq!(entries(&alpaca).len(), 1);

    alpaca.set_price("BTC/USD", dec!(51000));
    let update = serde_json::json!({"secret": secret, "id": "a2", "message": "BTCUSD move SL to entry"});
    assert_eq!(post(update).await, reqwest::StatusCode::OK);
    let outcome = eventually("the applied webhook update", WAIT, || async {
        let stored = app.store.provider_messages(store::WEBHOOK_CHANNEL, 10).await.unwrap();
        let m = stored.into_iter().find(|m| m.message_id == "id:a2")?;
        (!m.outcome.contains("not applied yet")).then_some(m.outcome)
    })
    .await;
    assert!(outcome.contains("moved stop to entry on 1 trade"), "{outcome}");
    let trade = app.store.get_trade(copies[0].trade_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(trade.stop_loss.map(Price::value), Some(dec!(49999.99)));
    assert_eq!(live_stop_of_first(&alpaca).as_deref(), Some("49999.99"));
    app.stop().await;
}

//! Black-box tests of `serve`: the real application on port 0, a fresh database (SQLite, or PostgreSQL
//! when TEST_DATABASE_URL is set), and a replay of candles written for each test.

use bus::Event;
use chrono::{DateTime, Utc};
use domain::{CloseReason, Lots, NewTrade, Price, Side, TradeResult, TradeStatus, TradeUpdateKind, UserId};
use rust_decimal_macros::dec;
use std::time::Duration;
use store::{NewUser, Role};
use testkit::{AppOptions, spawn_app, spawn_app_on, write_candles};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

async fn user(store: &std::sync::Arc<dyn store::Store>) -> UserId {
    store
        .create_user(&NewUser { discord_user_id: None, display_name: "trader".into(), role: Role::User })
        .await
        .unwrap()
        .id
}

async fn open(
    store: &std::sync::Arc<dyn store::Store>,
    symbol: &str,
    side: Side,
    entry: &str,
    lots: &str,
    sl: &str,
    tp: &str,
) -> domain::Trade {
    let user = user(store).await;
    let new = NewTrade::new(
        user,
        symbol,
        side,
        Price::parse(entry).unwrap(),
        Lots::parse(lots).unwrap(),
        Some(Price::parse(sl).unwrap()),
        Some(Price::parse(tp).unwrap()),
        at("2024-01-01T00:00:00Z"),
    )
    .unwrap();
    store.open_trade(&new).await.unwrap().trade
}

/// EURUSD drifting up until the third candle reaches 1.0970.
const EURUSD_RISING: &[(&str, &str, &str, &str, &str)] = &[
    ("2024-01-01T00:00:00Z", "1.0850", "1.0860", "1.0830", "1.0855"),
    ("2024-01-01T01:00:00Z", "1.0855", "1.0900", "1.0840", "1.0890"),
    ("2024-01-01T02:00:00Z", "1.0890", "1.0970", "1.0880", "1.0960"),
    ("2024-01-01T03:00:00Z", "1.0960", "1.0965", "1.0940", "1.0950"),
];

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let (path, _dir) = write_candles(EURUSD_RISING);
    let (mut app, _db) = spawn_app(AppOptions {
        replay_series: vec![format!("EURUSD:1h:{}", path.display())],
        replay_speed: 0.0,
        ..AppOptions::default()
    })
    .await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.wait_for_replay_end().await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    // 4 candles × 4 synthetic ticks each.
    assert!(metrics.contains("signalpost_ticks_total 16"), "{metrics}");
    // Four 1h closes, and the 4h candle they complete (00:00–04:00).
    assert!(metrics.contains("signalpost_candles_closed_total 5"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "signalpost_replay_finished 1"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_paper_trade_closes_at_its_take_profit_with_the_conventions_pnl() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let trade = open(&store, "EURUSD", Side::Long, "1.0854", "0.5", "1.0800", "1.0962").await;
    let (path, _dir) = write_candles(EURUSD_RISING);
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("EURUSD:1h:{}", path.display())],
            replay_speed: 0.0,
            ..AppOptions::default()
        },
    )
    .await;
    let closed = app
        .wait_for_event(Duration::from_secs(30), |e| matches!(e, Event::TradeClosed { trade: t } if t.id == trade.id))
        .await;
    let Event::TradeClosed { trade: closed } = closed else { unreachable!() };
    assert_eq!(closed.status, TradeStatus::Closed);
    assert_eq!(closed.close_reason, Some(CloseReason::TpHit));
    assert_eq!(closed.exit_price, Some(Price::parse("1.0962").unwrap()));
    assert_eq!(closed.pips, Some(dec!(108)));
    assert_eq!(closed.profit, Some(dec!(540)));
    assert_eq!(closed.result, Some(TradeResult::Win));
    let closed_at = closed.closed_at.unwrap();
    assert!(
        closed_at >= at("2024-01-01T02:00:00Z") && closed_at < at("2024-01-01T03:00:00Z"),
        "closed in the third candle: {closed_at}"
    );
    let stored = app.store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(stored, closed);
    let kinds: Vec<_> = app.store.trade_updates(trade.id).await.unwrap().into_iter().map(|u| u.kind).collect();
    assert_eq!(kinds, vec![TradeUpdateKind::Opened, TradeUpdateKind::Closed]);
    app.stop().await;
}

#[tokio::test]
async fn a_candle_touching_both_levels_closes_at_the_stop_loss() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let trade = open(&store, "USDJPY", Side::Long, "150.00", "1", "149.50", "150.50").await;
    // Bearish: the synthetic path goes up to 150.60 (past the TP) before down to 149.40 (past the SL).
    let (path, _dir) = write_candles(&[("2024-01-01T00:00:00Z", "150.10", "150.60", "149.40", "149.60")]);
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("USDJPY:1h:{}", path.display())],
            replay_speed: 0.0,
            ..AppOptions::default()
        },
    )
    .await;
    app.wait_for_replay_end().await;
    let closed = app.store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(closed.close_reason, Some(CloseReason::SlHit));
    assert_eq!(closed.exit_price, Some(Price::parse("149.50").unwrap()));
    assert_eq!(closed.pips, Some(dec!(-50)));
    // -50,000 JPY at the exit price of 149.50.
    assert_eq!(closed.profit, Some(dec!(-334.45)));
    assert_eq!(closed.result, Some(TradeResult::Loss));
    app.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_the_open_trade_and_closes_it_once() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let trade = open(&store, "EURUSD", Side::Short, "1.0854", "0.1", "1.0900", "1.0800").await;
    let (quiet, _d1) = write_candles(&[
        ("2024-01-01T00:00:00Z", "1.0850", "1.0870", "1.0830", "1.0855"),
        ("2024-01-01T01:00:00Z", "1.0855", "1.0880", "1.0820", "1.0830"),
    ]);
    let (falling, _d2) = write_candles(&[
        ("2024-01-01T02:00:00Z", "1.0830", "1.0840", "1.0790", "1.0795"),
        ("2024-01-01T03:00:00Z", "1.0795", "1.0800", "1.0700", "1.0710"),
    ]);
    let series = |p: &std::path::Path| AppOptions {
        replay_series: vec![format!("EURUSD:1h:{}", p.display())],
        replay_speed: 0.0,
        ..AppOptions::default()
    };

    let mut first = spawn_app_on(&url, series(&quiet)).await;
    first.wait_for_replay_end().await;
    assert_eq!(first.store.get_trade(trade.id).await.unwrap().unwrap().status, TradeStatus::Open);
    first.stop().await;

    let mut second = spawn_app_on(&url, series(&falling)).await;
    second.wait_for_replay_end().await;
    let closed = second.store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(closed.close_reason, Some(CloseReason::TpHit));
    assert_eq!(closed.pips, Some(dec!(54)));
    assert_eq!(closed.profit, Some(dec!(54)));
    second.stop().await;

    // Replaying the same market again must not close it a second time.
    let mut third = spawn_app_on(&url, series(&falling)).await;
    third.wait_for_replay_end().await;
    let updates = third.store.trade_updates(trade.id).await.unwrap();
    assert_eq!(updates.iter().filter(|u| u.kind == TradeUpdateKind::Closed).count(), 1);
    assert_eq!(third.store.get_trade(trade.id).await.unwrap().unwrap(), closed);
    third.stop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error_not_a_panic() {
    let mut config = signalpost::Config::default();
    config.database_url = signalpost::config::Secret::new("postgres://signalpost:hunter2@127.0.0.1:1/nowhere");
    config.bind = "127.0.0.1:0".into();
    let err = signalpost::Application::build(config, std::sync::Arc::new(domain::SystemClock)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("could not connect to the database"), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
}

#[tokio::test]
async fn a_malformed_replay_file_names_the_file_and_line() {
    let (path, _dir) = write_candles(&[
        ("2024-01-01T00:00:00Z", "1.0850", "1.0860", "1.0830", "1.0855"),
        ("2024-01-01T01:00:00Z", "1.0855", "oops", "1.0840", "1.0890"),
    ]);
    let (url, _db) = testkit::db::fresh_database_url().await;
    let mut config = signalpost::Config::default();
    config.database_url = signalpost::config::Secret::new(url);
    config.bind = "127.0.0.1:0".into();
    config.replay.series = vec![format!("EURUSD:1h:{}", path.display())];
    let err = signalpost::Application::build(config, std::sync::Arc::new(domain::SystemClock)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("candles.csv") && text.contains("line 3"), "{text}");
}

#[tokio::test]
async fn real_ticks_inside_a_candle_decide_which_level_came_first() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let trade = open(&store, "EURUSD", Side::Long, "1.0854", "0.5", "1.0800", "1.0962").await;
    // A falling candle that touched both levels: from candles alone the stop loss would count.
    let (candles, _dir) = write_candles(&[("2024-01-01T00:00:00Z", "1.0850", "1.0970", "1.0790", "1.0800")]);
    // The real ticks say the take profit came first.
    let ticks = _dir.path().join("ticks.csv");
    std::fs::write(
        &ticks,
        "time,bid,ask\n\
         2024-01-01T00:00:01Z,1.0850,1.0851\n\
         2024-01-01T00:10:00Z,1.0963,1.0964\n\
         2024-01-01T00:40:00Z,1.0790,1.0791\n\
         2024-01-01T00:59:00Z,1.0800,1.0801\n",
    )
    .unwrap();
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("EURUSD:1h:{}", candles.display())],
            replay_ticks: vec![format!("EURUSD:{}", ticks.display())],
            replay_speed: 0.0,
            discord: None,
            ..AppOptions::default()
        },
    )
    .await;
    app.wait_for_replay_end().await;
    let closed = app.store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(closed.close_reason, Some(CloseReason::TpHit));
    // A real tick fills at its own price: the bid, for a long.
    assert_eq!(closed.exit_price, Some(Price::parse("1.0963").unwrap()));
    assert_eq!(closed.pips, Some(dec!(109)));
    assert_eq!(closed.profit, Some(dec!(545)));
    assert_eq!(closed.closed_at, Some(at("2024-01-01T00:10:00Z")));
    app.stop().await;
}

/// What `scan` finds on a file, computed with the same engine the scanner service runs.
fn expected_signals(path: &std::path::Path) -> Vec<(i64, Side)> {
    let candles = market::load_candles(path, &market::LoadOptions::default()).unwrap();
    let model = signalpost::commands::model::load_model(None).unwrap();
    let mut scanner = engine::reversal::ReversalScanner::new(model, 3600);
    let eurusd = domain::InstrumentRegistry::global().get("EURUSD").unwrap();
    candles
        .iter()
        .filter_map(|c| scanner.on_bar(&engine::Bar::from(c)))
        .filter(|s| signalpost::scanner::to_signal(s, eurusd, domain::Timeframe::H1).is_ok())
        .map(|s| (s.close_time, s.side))
        .collect()
}

#[tokio::test]
async fn serve_stores_engine_signals_for_subscribed_pairs_as_the_replay_closes_candles() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../market/tests/data/lean_oanda_EURUSD_H1_head300.csv.gz");
    let expected = expected_signals(&file);
    assert!(!expected.is_empty());
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let user = user(&store).await;
    let settings = domain::UserSettings {
        enabled_timeframes: vec![domain::Timeframe::H1],
        preferred_pairs: vec![domain::Symbol::normalize("EURUSD")],
        ..domain::UserSettings::default()
    };
    store.save_settings(user, &settings).await.unwrap();
    let options = AppOptions {
        replay_series: vec![format!("EURUSD:1h:{}", file.display())],
        replay_speed: 0.0,
        ..AppOptions::default()
    };
    let mut app = spawn_app_on(&url, options.clone()).await;
    app.wait_for_replay_end().await;
    let mut stored: Vec<(i64, Side)> = app
        .store
        .recent_signals(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!(s.signal.source, domain::SignalSource::Engine);
            assert_eq!(s.signal.timeframe, Some(domain::Timeframe::H1));
            assert!(s.signal.model_version.as_deref().unwrap().starts_with("reversal-lr-v1-"));
            assert!(s.signal.stage1_prob.is_some() && s.signal.stage2_prob.is_some());
            (s.signal.created_at.timestamp(), s.signal.side)
        })
        .collect();
    stored.sort();
    assert_eq!(stored, expected, "one stored signal per engine signal, at the signal candle's close");
    app.stop().await;

    // Replaying the same candles again stores nothing twice.
    let mut again = spawn_app_on(&url, options).await;
    again.wait_for_replay_end().await;
    assert_eq!(again.store.recent_signals(1000).await.unwrap().len(), expected.len());
    again.stop().await;
}

#[tokio::test]
async fn nothing_is_stored_for_pairs_nobody_subscribes_to() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../market/tests/data/lean_oanda_EURUSD_H1_head300.csv.gz");
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let user = user(&store).await;
    let settings = domain::UserSettings {
        preferred_pairs: vec![domain::Symbol::normalize("GBPUSD")],
        ..domain::UserSettings::default()
    };
    store.save_settings(user, &settings).await.unwrap();
    let mut app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("EURUSD:1h:{}", file.display())],
            replay_speed: 0.0,
            ..AppOptions::default()
        },
    )
    .await;
    app.wait_for_replay_end().await;
    assert!(app.store.recent_signals(10).await.unwrap().is_empty());
    app.stop().await;
}

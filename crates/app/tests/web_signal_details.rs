//! The dashboard's signal Details shows what Discord's Details shows: the indicator state at the signal's
//! candle and a chart of the recent candles with the entry, stop loss and take profit. Black-box: the real
//! app on port 0 with a fresh database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), candles
//! written to its store, and pages read as a browser reads them.

mod web_support;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use domain::{Candle, Entry, Price, Side, Signal, SignalSource, Symbol, Timeframe, UserId};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;
use store::{NewNotification, Role, Store};
use testkit::{AppOptions, TestApp, spawn_app};
use web_support::{WebClient, element_text, user_with_password};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap()
}

/// `n` EURUSD hourly candles from `t0()`, a gentle wave so every indicator has something to say.
fn wave(n: i64) -> Vec<Candle> {
    (0..n)
        .map(|i| {
            let phase = (i as f64 / 6.0).sin();
            let open = dec!(1.0850) + Decimal::try_from(phase * 0.0030).unwrap().round_dp(5);
            let close = open + if i % 3 == 0 { dec!(-0.0004) } else { dec!(0.0005) };
            Candle {
                time: t0() + Span::hours(i),
                open,
                high: open.max(close) + dec!(0.0003),
                low: open.min(close) - dec!(0.0003),
                close,
                volume: dec!(100),
            }
        })
        .collect()
}

/// An engine signal on `symbol` 1h at the close of the candle that opened at `candle_open`, notified to `user`.
async fn notified_signal(store: &Arc<dyn Store>, user: UserId, symbol: &str, candle_open: DateTime<Utc>) -> i64 {
    let p = |t: &str| Price::parse(t).unwrap();
    let signal = Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.08520") },
        stop_loss: Some(p("1.08300")),
        take_profits: vec![p("1.08960")],
        leverage: None,
        confidence: Some(dec!(0.4123)),
        source: SignalSource::Engine,
        model_version: Some("reversal-test-1".into()),
        stage1_prob: Some(0.61),
        stage2_prob: Some(0.4123),
        created_at: candle_open + Span::hours(1),
    };
    let (signal_id, _) = store.insert_signal(&signal, None).await.unwrap();
    let new = NewNotification { signal_id, user_id: user, symbol: Symbol::normalize(symbol), created_at: Utc::now() };
    store.create_notification(&new).await.unwrap().unwrap().0
}

/// The app replaying one USDJPY candle, so the only EURUSD and GBPUSD candles stored are the test's.
async fn app() -> (TestApp, testkit::db::DbGuard, tempfile::TempDir) {
    let (path, dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "141.00", "141.20", "140.90", "141.10")]);
    let options = AppOptions {
        replay_series: vec![format!("USDJPY:1h:{}", path.display())],
        replay_speed: 0.0,
        ..AppOptions::default()
    };
    let (app, db) = spawn_app(options).await;
    (app, db, dir)
}

#[tokio::test]
async fn details_show_the_indicator_state_at_the_signals_candle_and_a_chart() {
    let (app, _db, _candles) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let candles = wave(120);
    app.store.save_candles(&Symbol::normalize("EURUSD"), Timeframe::H1, &candles).await.unwrap();
    // The signal is on candle 99: the 20 later candles are not its history and must not count.
    let nid = notified_signal(&app.store, ann.id, "EURUSD", candles[99].time).await;
    let mut browser = WebClient::new(&app.address);
    assert_eq!(browser.login("ann", "ann-password").await.status, StatusCode::SEE_OTHER);

    let page = browser.get(&format!("/signals/{nid}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("does not show them yet"), "the old placeholder is gone");
    assert!(element_text(&page.body, "market-note").is_none(), "{}", page.body);

    let state = engine::indicator_state(&candles[..100]).unwrap();
    let text = |id: &str| element_text(&page.body, id).unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    assert_eq!(text("indicator-rsi"), format!("{:.1}", state.rsi14.unwrap()));
    assert_eq!(text("indicator-macd"), format!("{:.6}", state.macd_histogram.unwrap()));
    assert_eq!(text("indicator-bollinger"), format!("{:.2}", state.bollinger_percent_b.unwrap()));
    let atr = state.atr14.unwrap();
    assert_eq!(text("indicator-atr"), format!("{atr:.5} ({:.1} pips)", atr / 0.0001));
    assert_eq!(text("indicator-adx"), format!("{:.1}", state.adx14.unwrap()));
    assert_eq!(text("indicator-at"), "2024-03-08 03:00 UTC", "the signal's candle, not a later one");
    // Computed over all 120 candles the numbers would differ: the page really stops at the signal's candle.
    let later = engine::indicator_state(&candles).unwrap();
    assert_ne!(format!("{:.1}", later.rsi14.unwrap()), text("indicator-rsi"));

    // The chart: an inline SVG with the three levels labelled, and one candle body per candle shown.
    let start = page.body.find("<svg id=\"signal-chart\"").unwrap_or_else(|| panic!("no chart in {}", page.body));
    let end = page.body[start..].find("</svg>").unwrap() + start;
    let svg = &page.body[start..end];
    for label in ["Entry 1.08520", "SL 1.08300", "TP 1.08960"] {
        assert!(svg.contains(label), "no {label:?} in {svg}");
    }
    assert!(!svg.contains("<script"), "drawn on the server, no JavaScript in it");
    // 60 candles: a wick and a body each.
    assert_eq!(svg.matches("<rect").count(), 60 + 1, "the background and 60 bodies: {svg}");
    app.stop().await;
}

#[tokio::test]
async fn details_without_stored_candles_say_so_and_another_users_signal_shows_nothing() {
    let (app, _db, _candles) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    app.store.save_candles(&Symbol::normalize("EURUSD"), Timeframe::H1, &wave(120)).await.unwrap();
    let no_candles = notified_signal(&app.store, ann.id, "GBPUSD", t0()).await;
    let bobs = notified_signal(&app.store, bob.id, "EURUSD", t0() + Span::hours(99)).await;
    let mut browser = WebClient::new(&app.address);
    assert_eq!(browser.login("ann", "ann-password").await.status, StatusCode::SEE_OTHER);

    let page = browser.get(&format!("/signals/{no_candles}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        element_text(&page.body, "market-note").as_deref(),
        Some("No GBPUSD 1h candles are stored up to this signal, so there is no chart and no indicator state.")
    );
    assert!(!page.body.contains("signal-chart") && !page.body.contains("indicator-rsi"), "{}", page.body);
    // The rest of Details is still there.
    assert_eq!(element_text(&page.body, "stage1").as_deref(), Some("61.0%"));

    let refused = browser.get(&format!("/signals/{bobs}")).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    for secret in ["signal-chart", "indicator-rsi", "1.08520", "reversal-test-1"] {
        assert!(!refused.body.contains(secret), "{secret} leaked: {}", refused.body);
    }
    app.stop().await;
}

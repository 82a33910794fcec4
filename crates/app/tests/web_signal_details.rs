//! The dashboard's signal Details shows what Discord's Details shows: the indicator state at the signal's
//! candle and a chart of the recent candles with the entry, stop loss and take profit. Black-box: the real
//! app on port 0 with a fresh database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), candles
//! written to its store, and pages read as a browser reads them.

mod web_support;

use chrono::Duration as Span;
use domain::{Symbol, Timeframe};
use reqwest::StatusCode;
use store::Role;
use testkit::{AppOptions, TestApp, fixtures, spawn_app};
use web_support::{WebClient, element_text, user_with_password};

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
    let candles = fixtures::eurusd_wave(120);
    app.store.save_candles(&Symbol::normalize("EURUSD"), Timeframe::H1, &candles).await.unwrap();
    // The signal is on candle 99: the 20 later candles are not its history and must not count.
    let nid = fixtures::notified_signal(&app.store, ann.id, "EURUSD", candles[99].time).await;
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
    app.store.save_candles(&Symbol::normalize("EURUSD"), Timeframe::H1, &fixtures::eurusd_wave(120)).await.unwrap();
    let no_candles = fixtures::notified_signal(&app.store, ann.id, "GBPUSD", fixtures::wave_start()).await;
    let bobs = fixtures::notified_signal(&app.store, bob.id, "EURUSD", fixtures::wave_start() + Span::hours(99)).await;
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

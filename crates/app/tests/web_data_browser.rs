//! The dashboard's data pages in headless Chromium (see `testkit::browser`): a trade opened from the inbox
//! shows in the history, closes with its button, comes back in the CSV fetched in the page's session, and
//! draws the stats charts. A failing test leaves `target/browser-failures/<test>.png`.

mod web_support;

use chrono::{Duration, Utc};
use domain::{Entry, Price, Side, Signal, SignalSource, Symbol, Tick, Timeframe};
use fantoccini::{Client, Locator};
use rust_decimal_macros::dec;
use store::{NewNotification, Role, TradeQuery};
use testkit::{AppOptions, spawn_app};
use web_support::user_with_password;

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

async fn replace(browser: &Client, id: &str, text: &str) {
    let input = browser.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

#[tokio::test]
async fn a_trade_opened_from_the_inbox_reaches_the_history_the_csv_and_the_stats_charts() {
    let (path, dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "140.10", "140.20", "140.00", "140.15")]);
    let options = AppOptions { replay_series: vec![format!("USDJPY:1h:{}", path.display())], ..AppOptions::default() };
    let (mut app, _db) = spawn_app(options).await;
    app.wait_for_replay_end().await;
    drop(dir);
    let rae = user_with_password(&app.store, "rae", "rae-password", Role::User).await;
    let now = Utc::now();
    let signal = Signal {
        symbol: Symbol::normalize("EURUSD"),
        timeframe: Some(Timeframe::H4),
        side: Side::Long,
        entry: Entry::Price { price: p("1.08520") },
        stop_loss: Some(p("1.08300")),
        take_profits: vec![p("1.08960")],
        leverage: None,
        confidence: Some(dec!(0.66)),
        source: SignalSource::Engine,
        model_version: Some("reversal-browser".into()),
        stage1_prob: Some(0.7),
        stage2_prob: Some(0.66),
        created_at: now,
    };
    let (signal_id, _) = app.store.insert_signal(&signal, None).await.unwrap();
    let new = NewNotification { signal_id, user_id: rae.id, symbol: signal.symbol.clone(), created_at: now };
    let notification = app.store.create_notification(&new).await.unwrap().unwrap().0;
    let (base, store) = (app.address.clone(), app.store.clone());

    testkit::browser::run(
        "a_trade_opened_from_the_inbox_reaches_the_history_the_csv_and_the_stats_charts",
        |browser| {
            async move {
                browser.goto(&format!("{base}/login")).await.unwrap();
                browser.find(Locator::Id("username")).await.unwrap().send_keys("rae").await.unwrap();
                browser.find(Locator::Id("password")).await.unwrap().send_keys("rae-password").await.unwrap();
                browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
                browser.wait().for_element(Locator::Id("greeting")).await.unwrap();

                browser.goto(&format!("{base}/signals")).await.unwrap();
                browser.find(Locator::Id(&format!("open-{notification}"))).await.unwrap().click().await.unwrap();
                browser.wait().for_element(Locator::Id("open-form")).await.unwrap();
                // A bad lot size comes back beside its field; then a good one opens the trade.
                replace(&browser, "lots", "lots").await;
                browser.find(Locator::Id("open-trade")).await.unwrap().click().await.unwrap();
                browser.wait().for_element(Locator::Id("error-lots")).await.unwrap();
                replace(&browser, "lots", "0.3").await;
                replace(&browser, "notes", "seen in the browser").await;
                browser.find(Locator::Id("open-trade")).await.unwrap().click().await.unwrap();
                browser.wait().for_element(Locator::Id("flash")).await.unwrap();

                let trades = store.trades_page(&TradeQuery::of(rae.id)).await.unwrap();
                assert_eq!(trades.len(), 1);
                let id = trades[0].id;
                let row = browser.find(Locator::Id(&format!("trade-{id}"))).await.unwrap();
                assert!(row.text().await.unwrap().contains("seen in the browser"));

                // Close it at market once a price is known: +0.0020 × 0.3 lots × 100,000 = 60 USD.
                let tick = Tick {
                    symbol: Symbol::normalize("EURUSD"),
                    time: now + Duration::minutes(1),
                    bid: p("1.08720"),
                    ask: p("1.08740"),
                    synthetic_from: None,
                };
                store.set_last_price(&tick).await.unwrap();
                browser.find(Locator::Id(&format!("close-{id}"))).await.unwrap().click().await.unwrap();
                browser.wait().for_element(Locator::Css(&format!("#trade-{id}.status-closed"))).await.unwrap();

                // The CSV, fetched with the page's own session cookie.
                let csv = browser
                    .execute_async(
                        "const done = arguments[arguments.length - 1];
                     fetch('/trades.csv').then(r => r.text()).then(done, e => done('failed: ' + e));",
                        vec![],
                    )
                    .await
                    .unwrap();
                let csv = csv.as_str().unwrap().to_string();
                let lines: Vec<&str> = csv.lines().collect();
                assert_eq!(lines.len(), 2, "{csv}");
                assert!(lines[0].starts_with("id,symbol,side,status,result"));
                assert!(lines[1].starts_with(&format!("{id},EURUSD,long,closed,win,0.3,1.0852,")), "{}", lines[1]);
                assert!(lines[1].contains(",60,seen in the browser,"), "{}", lines[1]);

                browser.find(Locator::LinkText("Stats")).await.unwrap().click().await.unwrap();
                let equity = browser.wait().for_element(Locator::Css("#chart-equity svg")).await.unwrap();
                let svg = equity.html(false).await.unwrap();
                assert!(svg.contains("<polyline"), "the equity curve is drawn: {svg}");
                browser.find(Locator::Css("#chart-drawdown svg")).await.unwrap();
                browser.find(Locator::Css("#chart-calibration svg")).await.unwrap();
                let win_rate = browser.find(Locator::Id("stat-win-rate")).await.unwrap().text().await.unwrap();
                assert_eq!(win_rate, "100.0%");
            }
        },
    )
    .await;
    app.stop().await;
}

//! Black-box tests of the dashboard's data pages: the signals inbox with Open Trade and Ignore, the trade
//! history with its close button and CSV export, the stats page, the live overview and the JSON API, each
//! checked with two users who must never reach each other's data. SQLite, or PostgreSQL with
//! TEST_DATABASE_URL.

mod web_support;

use chrono::{DateTime, Duration, Utc};
use domain::{Entry, Price, Side, Signal, SignalSource, Symbol, Tick, Timeframe, TradeStatus, UserId};
use reqwest::StatusCode;
use rust_decimal_macros::dec;
use serde_json::Value;
use std::sync::Arc;
use store::{NewNotification, Role, Store, TradeQuery};
use testkit::{AppOptions, TestApp, spawn_app};
use web_support::{WebClient, element_text, user_with_password};

/// An app whose replay is one USDJPY candle, played to its end before the test starts: no EURUSD price,
/// signal or monitor close happens unless the test makes it.
async fn app() -> (TestApp, testkit::db::DbGuard) {
    let (path, dir) = testkit::write_candles(&[("2024-01-02T00:00:00Z", "140.10", "140.20", "140.00", "140.15")]);
    let options = AppOptions { replay_series: vec![format!("USDJPY:1h:{}", path.display())], ..AppOptions::default() };
    let (mut app, db) = spawn_app(options).await;
    app.wait_for_replay_end().await;
    drop(dir);
    (app, db)
}

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

/// A EURUSD 1h long signal (entry 1.08520, SL 1.08300, TP 1.08960, confidence 62%) notified to `user`.
async fn notified(store: &Arc<dyn Store>, user: UserId, created_at: DateTime<Utc>) -> i64 {
    let signal = Signal {
        symbol: Symbol::normalize("EURUSD"),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.08520") },
        stop_loss: Some(p("1.08300")),
        take_profits: vec![p("1.08960")],
        leverage: None,
        confidence: Some(dec!(0.62)),
        source: SignalSource::Engine,
        model_version: Some("reversal-test-7".into()),
        stage1_prob: Some(0.71),
        stage2_prob: Some(0.62),
        created_at,
    };
    let (signal_id, _) = store.insert_signal(&signal, None).await.unwrap();
    let new = NewNotification { signal_id, user_id: user, symbol: signal.symbol.clone(), created_at };
    store.create_notification(&new).await.unwrap().unwrap().0
}

async fn set_price(store: &Arc<dyn Store>, bid: &str, ask: &str, time: DateTime<Utc>) {
    let tick = Tick { symbol: Symbol::normalize("EURUSD"), time, bid: p(bid), ask: p(ask), synthetic_from: None };
    store.set_last_price(&tick).await.unwrap();
}

async fn trades_of(store: &Arc<dyn Store>, user: UserId) -> Vec<domain::Trade> {
    store.trades_page(&TradeQuery::of(user)).await.unwrap()
}

fn open_form<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("entry", "1.08520"),
        ("lots", "0.5"),
        ("stop_loss", "1.08300"),
        ("take_profit", "1.08960"),
        ("notes", "from the dashboard"),
    ];
    for (name, value) in overrides {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    form
}

#[tokio::test]
async fn a_trade_opened_from_the_inbox_is_the_same_trade_discord_makes_and_shows_in_the_history() {
    let (app, _db) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    let now = Utc::now();
    let mine = notified(&app.store, ann.id, now).await;
    let bobs = notified(&app.store, bob.id, now).await;
    let market_time = now - Duration::minutes(3);
    set_price(&app.store, "1.08510", "1.08530", market_time).await;

    let mut web = WebClient::new(&app.address);
    web.login("ann", "ann-password").await;
    let inbox = web.get("/signals").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.body.contains(&format!("id=\"signal-{mine}\"")), "{}", inbox.body);
    assert!(!inbox.body.contains(&format!("id=\"signal-{bobs}\"")), "only her own signals");

    // Details: probabilities and the model, and the form pre-filled like Discord's modal.
    let details = web.get(&format!("/signals/{mine}")).await;
    assert_eq!(element_text(&details.body, "stage1").as_deref(), Some("71.0%"));
    assert_eq!(element_text(&details.body, "model-version").as_deref(), Some("reversal-test-7"));
    assert!(details.body.contains("id=\"entry\" inputmode=\"decimal\" value=\"1.0852\""), "{}", details.body);
    assert!(details.body.contains("id=\"lots\" inputmode=\"decimal\" value=\"0.01\""), "the default lots");

    // Bad values: each message beside its field, the typed values kept, nothing stored.
    let action = format!("/signals/{mine}/open");
    let page = format!("/signals/{mine}");
    let bad = web.submit(&page, &action, &open_form(&[("entry", "abc"), ("lots", "0"), ("take_profit", "x")])).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["entry", "lots", "take_profit"] {
        assert!(element_text(&bad.body, &format!("error-{field}")).is_some(), "{field}: {}", bad.body);
    }
    assert!(element_text(&bad.body, "error-stop_loss").is_none());
    assert!(bad.body.contains("value=\"abc\""));
    let wrong_side = web.submit(&page, &action, &open_form(&[("stop_loss", "1.09000")])).await;
    assert_eq!(wrong_side.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&wrong_side.body, "error-stop_loss").unwrap().contains("below its entry"));
    assert!(trades_of(&app.store, ann.id).await.is_empty(), "nothing stored");

    // Bob's notification id in Ann's session: refused, nothing stored for anyone.
    let theirs = web.submit(&page, &format!("/signals/{bobs}/open"), &open_form(&[])).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(web.get(&format!("/signals/{bobs}")).await.status, StatusCode::NOT_FOUND);
    let ignored = web.submit(&page, &format!("/signals/{bobs}/ignore"), &[]).await;
    assert_eq!(ignored.status, StatusCode::NOT_FOUND);
    assert!(trades_of(&app.store, bob.id).await.is_empty() && trades_of(&app.store, ann.id).await.is_empty());
    assert!(!app.store.get_notification(store_id(bobs)).await.unwrap().unwrap().acknowledged);

    // A good submit opens one trade, stamped with the market's time; a repeat opens nothing new.
    let opened = web.submit(&page, &action, &open_form(&[])).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let trades = trades_of(&app.store, ann.id).await;
    assert_eq!(trades.len(), 1);
    let trade = &trades[0];
    assert_eq!((trade.entry, trade.lots.value(), trade.stop_loss), (p("1.08520"), dec!(0.5), Some(p("1.08300"))));
    assert_eq!(trade.notification_id.map(|n| n.0), Some(mine));
    assert_eq!(trade.opened_at.timestamp_micros(), market_time.timestamp_micros());
    assert_eq!(trade.notes.as_deref(), Some("from the dashboard"));
    assert!(app.store.get_notification(store_id(mine)).await.unwrap().unwrap().acknowledged);
    assert_eq!(opened.location(), Some(format!("/trades?opened={}", trade.id).as_str()));
    let again = web.submit(&page, &action, &open_form(&[("lots", "2")])).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(trades_of(&app.store, ann.id).await.len(), 1, "one trade per notification");

    let history = web.get(opened.location().unwrap()).await;
    assert!(history.body.contains(&format!("id=\"trade-{}\"", trade.id)));
    assert!(history.body.contains(&format!("id=\"close-{}\"", trade.id)), "open trades have a close button");
    app.stop().await;
}

fn store_id(id: i64) -> domain::NotificationId {
    domain::NotificationId(id)
}

/// Opens a EURUSD long for `user` straight in the store.
async fn open_trade(
    store: &Arc<dyn Store>,
    user: UserId,
    entry: &str,
    at: DateTime<Utc>,
    notes: &str,
) -> domain::Trade {
    let mut new =
        domain::NewTrade::new(user, "EURUSD", Side::Long, p(entry), domain::Lots::parse("1").unwrap(), None, None, at)
            .unwrap();
    new.notes = Some(notes.to_string());
    store.open_trade(&new).await.unwrap().trade
}

#[tokio::test]
async fn the_close_button_closes_only_your_own_open_trade_at_market() {
    let (app, _db) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    let now = Utc::now();
    let hers = open_trade(&app.store, ann.id, "1.08000", now - Duration::hours(2), "a").await;
    let his = open_trade(&app.store, bob.id, "1.08000", now - Duration::hours(2), "b").await;
    let mut web = WebClient::new(&app.address);
    web.login("ann", "ann-password").await;

    // No price yet: refused with a reason, nothing changed.
    let early = web.submit("/trades", &format!("/trades/{}/close", hers.id), &[]).await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST);
    assert!(early.body.contains("No price for EURUSD"), "{}", early.body);
    set_price(&app.store, "1.08250", "1.08270", now - Duration::minutes(1)).await;

    let other = web.submit("/trades", &format!("/trades/{}/close", his.id), &[]).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(app.store.get_trade(his.id).await.unwrap().unwrap().status, TradeStatus::Open);
    // Without the CSRF token nothing runs.
    assert_eq!(web.post(&format!("/trades/{}/close", hers.id), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.get_trade(hers.id).await.unwrap().unwrap().status, TradeStatus::Open);

    let closed = web.submit("/trades", &format!("/trades/{}/close", hers.id), &[]).await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER);
    let trade = app.store.get_trade(hers.id).await.unwrap().unwrap();
    assert_eq!(trade.status, TradeStatus::Closed);
    assert_eq!(trade.exit_price, Some(p("1.08250")), "a long closes at the bid");
    assert_eq!(trade.close_reason, Some(domain::CloseReason::ManualClose));
    assert_eq!(trade.profit, Some(dec!(250)), "0.0025 × 1 lot × 100,000");
    let again = web.submit("/trades", &format!("/trades/{}/close", hers.id), &[]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("already closed"));
    app.stop().await;
}

#[tokio::test]
async fn history_filters_and_pages_and_the_csv_export_streams_your_trades_only() {
    let (app, _db) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    let base: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().unwrap();
    let mut ids = Vec::new();
    for i in 0..55 {
        let notes = if i == 0 { "has \"quotes\", and a comma" } else { "plain" };
        ids.push(open_trade(&app.store, ann.id, "1.08000", base + Duration::hours(i), notes).await.id);
    }
    open_trade(&app.store, bob.id, "1.08000", base, "bob's secret").await;
    set_price(&app.store, "1.08100", "1.08120", base + Duration::days(5)).await;
    let closed = store::actions::close_at_market(app.store.as_ref(), &ann, ids[3]).await.unwrap();
    assert_eq!(closed.result, Some(domain::TradeResult::Win));

    let mut web = WebClient::new(&app.address);
    web.login("ann", "ann-password").await;
    let first = web.get("/trades").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.matches("<tr id=\"trade-").count(), 50);
    assert!(first.body.contains(&format!("id=\"trade-{}\"", ids[54])), "newest first");
    assert!(!first.body.contains("bob&#39;s secret") && !first.body.contains("bob's secret"));
    let next = first.body.split("id=\"next-page\"").next().unwrap();
    let href = next.rsplit("href=\"").next().unwrap().trim_end_matches("\" ").replace("&amp;", "&");
    let second = web.get(&href).await;
    assert_eq!(second.body.matches("<tr id=\"trade-").count(), 5, "{href}");
    assert!(second.body.contains(&format!("id=\"trade-{}\"", ids[0])));
    assert!(!second.body.contains("id=\"next-page\""));

    let wins = web.get("/trades?status=closed&result=win&pair=eurusd&from=2026-03-02&to=2026-03-02").await;
    assert_eq!(wins.body.matches("<tr id=\"trade-").count(), 1);
    assert!(wins.body.contains(&format!("id=\"trade-{}\"", ids[3])));
    assert_eq!(web.get("/trades?from=2026-03-03&to=2026-03-02").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(web.get("/trades?status=nope").await.status, StatusCode::BAD_REQUEST);

    let csv = web.get("/trades.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "id,symbol,side,status,result,lots,entry,stop_loss,take_profit,exit_price,opened_at,closed_at,close_reason,pips,profit,notes,signal_id"
    );
    assert_eq!(lines.len(), 56, "a header and Ann's 55 trades");
    assert!(lines[55].starts_with(&format!("{},EURUSD,long,open,", ids[0])));
    assert!(lines[55].contains(",\"has \"\"quotes\"\", and a comma\","), "{}", lines[55]);
    assert!(!csv.body.contains("bob's secret"));
    let filtered = web.get("/trades.csv?status=closed").await;
    assert_eq!(filtered.body.lines().count(), 2);
    assert!(filtered.body.contains(",closed,win,") && filtered.body.contains(",manual_close,"));

    let mut anonymous = WebClient::new(&app.address);
    assert_eq!(anonymous.get("/trades.csv").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn the_json_api_answers_401_without_a_session_and_only_with_your_data() {
    let (app, _db) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    let now = Utc::now();
    let hers = open_trade(&app.store, ann.id, "1.08000", now - Duration::hours(3), "a").await;
    let older = open_trade(&app.store, ann.id, "1.08000", now - Duration::hours(4), "a2").await;
    let his = open_trade(&app.store, bob.id, "1.08000", now - Duration::hours(3), "b").await;
    notified(&app.store, ann.id, now).await;
    notified(&app.store, bob.id, now).await;
    set_price(&app.store, "1.08100", "1.08120", now).await;

    let mut anonymous = WebClient::new(&app.address);
    for path in ["/api/trades", &format!("/api/trades/{}", hers.id), "/api/signals", "/api/stats", "/api/overview"] {
        let answer = anonymous.get(path).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(serde_json::from_str::<Value>(&answer.body).unwrap()["error"].is_string());
    }

    let mut web = WebClient::new(&app.address);
    web.login("ann", "ann-password").await;
    let json = |body: &str| serde_json::from_str::<Value>(body).unwrap();
    let page = json(&web.get("/api/trades?limit=1").await.body);
    assert_eq!(page["trades"].as_array().unwrap().len(), 1);
    assert_eq!(page["trades"][0]["id"], hers.id.0);
    let next = page["next"].as_str().unwrap().to_string();
    let page2 = json(&web.get(&format!("/api/trades?limit=1&after={next}")).await.body);
    assert_eq!(page2["trades"][0]["id"], older.id.0);
    assert!(page2["next"].is_null());
    assert_eq!(json(&web.get(&format!("/api/trades/{}", hers.id)).await.body)["notes"], "a");
    assert_eq!(web.get(&format!("/api/trades/{}", his.id)).await.status, StatusCode::NOT_FOUND);

    let signals = json(&web.get("/api/signals").await.body);
    assert_eq!(signals["items"].as_array().unwrap().len(), 1);
    assert_eq!(signals["items"][0]["model_version"], "reversal-test-7");

    let overview = json(&web.get("/api/overview").await.body);
    assert_eq!(overview["open"]["open_count"], 2);
    // 1.08100 − 1.08000 = 0.0010 × 100,000 = 100 USD on each.
    assert_eq!(overview["open"]["trades"][0]["profit"], "100");
    assert_eq!(overview["open"]["unrealised"], "200");
    assert_eq!(overview["todays_signals"].as_array().unwrap().len(), 1);
    let stats = json(&web.get("/api/stats").await.body);
    assert_eq!(stats["summary"]["closed"], 0);
    app.stop().await;
}

#[tokio::test]
async fn stats_show_the_figures_and_svg_charts_of_your_closed_trades() {
    let (app, _db) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let bob = user_with_password(&app.store, "bob", "bob-password", Role::User).await;
    let now = Utc::now();
    let mut web = WebClient::new(&app.address);
    web.login("ann", "ann-password").await;
    assert!(web.get("/stats").await.body.contains("id=\"no-stats\""));

    let first = open_trade(&app.store, ann.id, "1.08000", now - Duration::hours(5), "").await;
    let second = open_trade(&app.store, ann.id, "1.08200", now - Duration::hours(4), "").await;
    open_trade(&app.store, bob.id, "1.08000", now - Duration::hours(4), "").await;
    set_price(&app.store, "1.08100", "1.08120", now - Duration::hours(1)).await;
    store::actions::close_at_market(app.store.as_ref(), &ann, first.id).await.unwrap(); // +100
    store::actions::close_at_market(app.store.as_ref(), &ann, second.id).await.unwrap(); // −100
    let stats = web.get("/stats").await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(element_text(&stats.body, "stat-win-rate").as_deref(), Some("50.0%"));
    assert_eq!(element_text(&stats.body, "stat-profit-factor").as_deref(), Some("1"));
    assert_eq!(element_text(&stats.body, "stat-drawdown").as_deref(), Some("−100.00 USD"));
    assert!(element_text(&stats.body, "stat-closed").unwrap().starts_with("2 "), "Bob's trade is not counted");
    for chart in ["chart-equity", "chart-drawdown"] {
        let at = stats.body.find(&format!("id=\"{chart}\"")).unwrap_or_else(|| panic!("{chart}"));
        let svg = &stats.body[at..];
        assert!(svg.contains("<svg") && svg[..svg.find("</svg>").unwrap()].contains("<polyline"), "{chart}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_overview_shows_open_trades_and_the_live_feed_pushes_their_pnl() {
    let (app, _db) = app().await;
    let ann = user_with_password(&app.store, "ann", "ann-password", Role::User).await;
    let now = Utc::now();
    let trade = open_trade(&app.store, ann.id, "1.08000", now - Duration::hours(1), "").await;
    set_price(&app.store, "1.08100", "1.08120", now).await;
    let mut web = WebClient::new(&app.address);
    web.login("ann", "ann-password").await;
    let overview = web.get("/").await;
    assert!(overview.body.contains(&format!("id=\"live-{}\"", trade.id)));
    assert_eq!(element_text(&overview.body, "summary-open").as_deref(), Some("1"));
    assert_eq!(element_text(&overview.body, "live-unrealised").as_deref(), Some("+100.00 USD"));

    // The first event arrives at once; read it off the stream without waiting for more.
    let response = reqwest::Client::new()
        .get(format!("{}/live", app.address))
        .header("cookie", format!("{}={}", web_support::COOKIE, web.cookie.clone().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut response = response;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk()).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.starts_with("event: pnl\ndata: "), "{text}");
    let data: Value = serde_json::from_str(text.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!(data["trades"][0]["id"], trade.id.0);
    assert_eq!(data["trades"][0]["profit"], "100");
    app.stop().await;
}

//! `SIGNALPOST_FEED=binance` end to end against `FakeBinanceMarket`: closed klines reach the scanner and the
//! candle store, trades reach the position monitor and close a trade at its take profit, and the feed's
//! health shows on `/healthz`, `/metrics`, `/api/feed` and the dashboard's banner: a vendor held off past the
//! grace is a 503 naming `binance` and the problem, and a pair whose candles stop while the connection stays
//! up is a stale alarm after two timeframes. Time is a `ManualClock` the tests move; nothing sleeps.

mod web_support;

use bus::Event;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone as _, Utc};
use domain::{CloseReason, Lots, ManualClock, NewTrade, Price, Side, Symbol, Timeframe, UserSettings};
use rust_decimal::Decimal;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use store::{NewUser, Role, Store};
use testkit::binance_stream::FakeBinanceMarket;
use testkit::wait::eventually;
use testkit::{AppOptions, ConfigTweak, TestApp, spawn_app_on};
use web_support::{WebClient, user_with_password};

const WAIT: Duration = Duration::from_secs(20);
const GRACE_SECS: u64 = 5;

/// A Wednesday morning: crypto trades anyway, but nothing here leans on the weekend rule.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 18, 10, 0, 0).unwrap()
}

/// BTCUSDT 1h candle opening `hours` after `t0` (negative: before).
fn candle(hours: i64) -> domain::Candle {
    let base = Decimal::from(90_000 + hours * 10);
    domain::Candle {
        time: t0() + ChronoDuration::hours(hours),
        open: base,
        high: base + Decimal::from(40),
        low: base - Decimal::from(30),
        close: base + Decimal::from(20),
        volume: Decimal::from(5),
    }
}

/// Every user gets BTCUSDT 1h only, so the feed streams exactly that pair (a user without settings would ask
/// for every USDT pair, which the fake does not list).
async fn btc_only(store: &Arc<dyn Store>, user: domain::UserId) {
    let settings = UserSettings {
        preferred_pairs: vec![Symbol::normalize("BTCUSDT")],
        enabled_timeframes: vec![Timeframe::H1],
        ..UserSettings::default()
    };
    store.save_settings(user, &settings).await.unwrap();
}

struct Live {
    app: TestApp,
    fake: FakeBinanceMarket,
    clock: ManualClock,
    _db: testkit::db::DbGuard,
}

/// The app on the Binance feed, pointed at a fake with three closed BTCUSDT 1h candles of history, the clock
/// 30 s into the 10:00 candle; `before` runs on the fresh store first.
async fn start<F, Fut>(before: F) -> Live
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let fake = FakeBinanceMarket::start(&["BTCUSDT", "ETHUSDT"]).await;
    fake.add_candles("BTCUSDT", Timeframe::H1, &[candle(-3), candle(-2), candle(-1)]);
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(30));
    let (url, db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    before(store).await;
    let (rest, stream) = (fake.rest_url(), fake.stream_url());
    let app = spawn_app_on(
        &url,
        AppOptions {
            clock: Some(Arc::new(clock.clone())),
            configure: Some(ConfigTweak::new(move |c| {
                c.feed = "binance".into();
                c.binance.base_url = Some(rest.clone());
                c.binance_feed.stream_url = Some(stream.clone());
                c.binance_feed.pairs = vec!["BTCUSDT:1h".into()];
                c.binance_feed.warmup_candles = 10;
                c.feed_health.down_grace_secs = GRACE_SECS;
            })),
            ..AppOptions::default()
        },
    )
    .await;
    fake.wait_for_connections(1, WAIT).await.unwrap();
    Live { app, fake, clock, _db: db }
}

/// `/healthz`: status and JSON body.
async fn health(app: &TestApp) -> (u16, Value) {
    let response = app.get("/healthz").await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("/healthz answers JSON"))
}

/// Waits until `/healthz` says the feed is in `state` (with this HTTP status).
async fn health_becomes(app: &TestApp, status: u16, state: &str) -> Value {
    eventually(&format!("/healthz {status} with the feed {state}"), WAIT, || async {
        let (got, body) = health(app).await;
        (got == status && body["feed"]["state"] == state).then_some(body)
    })
    .await
}

async fn metric(app: &TestApp, line_start: &str) -> Option<String> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines().find(|l| l.starts_with(line_start)).map(|l| l.rsplit(' ').next().unwrap().to_string())
}

#[tokio::test]
async fn closed_klines_reach_the_scanner_and_store_and_trades_close_a_trade_at_its_take_profit() {
    let opened_at = t0();
    let trade = Arc::new(std::sync::Mutex::new(None));
    let slot = trade.clone();
    let mut live = start(move |store| async move {
        let user = store
            .create_user(&NewUser { discord_user_id: None, display_name: "trader".into(), role: Role::User })
            .await
            .unwrap();
        btc_only(&store, user.id).await;
        let new = NewTrade::new(
            user.id,
            "BTCUSDT",
            Side::Long,
            Price::parse("90000").unwrap(),
            Lots::parse("0.1").unwrap(),
            Some(Price::parse("89000").unwrap()),
            Some(Price::parse("91000").unwrap()),
            opened_at,
        )
        .unwrap();
        *slot.lock().unwrap() = Some(store.open_trade(&new).await.unwrap().trade);
    })
    .await;
    let trade = trade.lock().unwrap().clone().unwrap();
    let btc = Symbol::normalize("BTCUSDT");

    // The backfill went through the pump into the candle store.
    eventually("the backfilled candles in the store", WAIT, || async {
        let last = live.app.store.last_candle_time(&btc, Timeframe::H1).await.unwrap();
        (last == Some(candle(-1).time)).then_some(())
    })
    .await;
    let body = health_becomes(&live.app, 200, "up").await;
    assert_eq!(body["feed"]["name"], "binance");
    assert_eq!(metric(&live.app, "signalpost_feed_up{feed=\"binance\"}").await.as_deref(), Some("1"));

    // 11:00: the 10:00 candle closes on the stream and reaches the scanner's path (the pump, the store).
    live.clock.set(t0() + ChronoDuration::hours(1) + ChronoDuration::seconds(1));
    live.fake.close_candle("BTCUSDT", Timeframe::H1, &candle(0));
    eventually("the streamed candle in the store", WAIT, || async {
        let last = live.app.store.last_candle_time(&btc, Timeframe::H1).await.unwrap();
        (last == Some(candle(0).time)).then_some(())
    })
    .await;
    let closed = metric(&live.app, "signalpost_candles_closed_total").await.unwrap();
    assert!(closed.parse::<u64>().unwrap() >= 4, "three backfilled and one streamed candle: {closed}");

    // A trade through the take profit on the stream reaches the position monitor.
    live.fake.push_trade("BTCUSDT", "90500.00", (t0() + ChronoDuration::minutes(61)).timestamp_millis());
    live.fake.push_trade("BTCUSDT", "91000.50", (t0() + ChronoDuration::minutes(62)).timestamp_millis());
    let event =
        live.app.wait_for_event(WAIT, |e| matches!(e, Event::TradeClosed { trade: t } if t.id == trade.id)).await;
    let Event::TradeClosed { trade: closed } = event else { unreachable!() };
    assert_eq!(closed.close_reason, Some(CloseReason::TpHit));
    live.app.stop().await;
}

#[tokio::test]
async fn a_feed_held_off_past_its_grace_is_a_503_naming_binance_and_the_problem_then_200_when_back() {
    let live = start(|_| async {}).await;
    health_becomes(&live.app, 200, "up").await;

    live.fake.hold_connections();
    live.fake.disconnect();
    // Down, but inside the grace: still healthy.
    let body = health_becomes(&live.app, 200, "down").await;
    assert_eq!(body["feed"]["healthy"], true);

    live.clock.advance(ChronoDuration::seconds(GRACE_SECS as i64 + 1));
    let (status, body) = health(&live.app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["feed"]["name"], "binance");
    assert_eq!(body["feed"]["state"], "down");
    let problem = body["feed"]["problem"].as_str().expect("the problem is named");
    assert!(!problem.is_empty());
    assert!(!problem.contains('?'), "no URL query (where vendors put keys) reaches /healthz: {problem}");
    let since: DateTime<Utc> = body["feed"]["since"].as_str().unwrap().parse().unwrap();
    assert!(since <= t0() + ChronoDuration::seconds(30), "down since the drop, not since the last retry: {since}");
    assert_eq!(metric(&live.app, "signalpost_feed_up{feed=\"binance\"}").await.as_deref(), Some("0"));

    live.fake.release_connections();
    let body = health_becomes(&live.app, 200, "up").await;
    assert_eq!(body["status"], "ok");
    assert!(body["feed"].get("problem").is_none());
    live.app.stop().await;
}

#[tokio::test]
async fn a_pair_whose_candles_stop_while_connected_is_a_stale_alarm_after_two_timeframes() {
    let live = start(|_| async {}).await;
    health_becomes(&live.app, 200, "up").await;
    // The newest candle (09:00) closed at 10:00, but the pair has been watched only since the app started at
    // 10:00:30: the vendor's two timeframes count from then. At 12:00:30 it is not yet late…
    live.clock.set(t0() + ChronoDuration::hours(2) + ChronoDuration::seconds(30));
    assert_eq!(health(&live.app).await.0, 200);
    // …a second later it is, though the connection never dropped.
    live.clock.set(t0() + ChronoDuration::hours(2) + ChronoDuration::seconds(31));
    let (status, body) = health(&live.app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["feed"]["state"], "up");
    assert_eq!(body["feed"]["stale"][0]["symbol"], "BTCUSDT");
    assert_eq!(body["feed"]["stale"][0]["timeframe"], "1h");
    assert_eq!(body["feed"]["stale"][0]["last_candle_close"], "2026-11-18T10:00:00Z");
    assert_eq!(metric(&live.app, "signalpost_feed_stale_pairs{feed=\"binance\"}").await.as_deref(), Some("1"));
    // Asked again: the same episode, one alarm. (Also none while the start-up backfill was arriving, when the
    // newest candle so far was hours old: that once counted a second alarm here.)
    health(&live.app).await;
    assert_eq!(metric(&live.app, "signalpost_feed_stale_alarms_total{feed=\"binance\"}").await.as_deref(), Some("1"));

    // The 11:00 candle arrives (the 10:00 one comes from REST as the gap): the alarm clears.
    live.fake.add_candles("BTCUSDT", Timeframe::H1, &[candle(0)]);
    live.fake.close_candle("BTCUSDT", Timeframe::H1, &candle(1));
    health_becomes(&live.app, 200, "up").await;
    assert_eq!(metric(&live.app, "signalpost_feed_stale_pairs{feed=\"binance\"}").await.as_deref(), Some("0"));
    live.app.stop().await;
}

#[tokio::test]
async fn the_dashboard_shows_a_banner_while_the_feed_is_down() {
    let live = start(|_| async {}).await;
    let user = user_with_password(&live.app.store, "ann", "correct horse battery", Role::User).await;
    btc_only(&live.app.store, user.id).await;
    let mut browser = WebClient::new(&live.app.address);
    assert!(browser.login("ann", "correct horse battery").await.status.is_redirection());
    health_becomes(&live.app, 200, "up").await;
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"feed-alert\""), "no banner while healthy");

    live.fake.hold_connections();
    live.fake.disconnect();
    health_becomes(&live.app, 200, "down").await;
    live.clock.advance(ChronoDuration::seconds(GRACE_SECS as i64 + 1));
    for path in ["/", "/trades"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains("id=\"feed-alert\""), "{path} has the banner: {}", page.body);
        assert!(page.body.contains("Market data from binance is down since 2026-11-18 10:00 UTC"), "{}", page.body);
    }
    let api = browser.get("/api/feed").await;
    assert_eq!(api.status, 200);
    let status: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!((status["feed"].as_str(), status["healthy"].as_bool()), (Some("binance"), Some(false)));

    live.fake.release_connections();
    health_becomes(&live.app, 200, "up").await;
    assert!(!browser.get("/").await.body.contains("id=\"feed-alert\""), "the banner goes when the feed is back");
    live.app.stop().await;
}

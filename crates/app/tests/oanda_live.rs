//! `SIGNALPOST_FEED=oanda` end to end against `FakeOanda`: the warm-up and each polled closed candle reach the
//! candle store through the pump, a `PRICE` line through a trade's take profit closes it in the
//! position monitor, and a bad token stops the app at start with an error naming the problem. Time is a
//! `ManualClock` the test moves; nothing sleeps.

use bus::Event;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone as _, Utc};
use domain::{CloseReason, Lots, ManualClock, NewTrade, Price, Side, Symbol, Timeframe, UserSettings};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use store::{NewUser, Role};
use testkit::oanda::{ACCOUNT, FakeOanda, TOKEN};
use testkit::wait::eventually;
use testkit::{AppOptions, ConfigTweak, spawn_app_on};

const WAIT: Duration = Duration::from_secs(20);

/// A Wednesday morning, while the forex market is open.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 18, 10, 0, 0).unwrap()
}

/// EURUSD 1h candle opening `hours` after `t0` (negative: before).
fn candle(hours: i64) -> domain::Candle {
    let base = Decimal::new(110_000 + hours * 10, 5);
    domain::Candle {
        time: t0() + ChronoDuration::hours(hours),
        open: base,
        high: base + Decimal::new(40, 5),
        low: base - Decimal::new(30, 5),
        close: base + Decimal::new(20, 5),
        volume: Decimal::from(1234),
    }
}

fn options(fake: &FakeOanda, clock: &ManualClock, token: &str) -> AppOptions {
    let (rest, stream, token) = (fake.rest_url(), fake.stream_url(), token.to_string());
    AppOptions {
        clock: Some(Arc::new(clock.clone())),
        configure: Some(ConfigTweak::new(move |c| {
            c.feed = "oanda".into();
            c.oanda_feed.api_url = Some(rest.clone());
            c.oanda_feed.stream_url = Some(stream.clone());
            c.oanda_feed.token = Some(signalpost::config::Secret::new(token.clone()));
            c.oanda_feed.account_id = Some(ACCOUNT.into());
            c.oanda_feed.pairs = vec!["EURUSD:1h".into()];
            c.oanda_feed.warmup_candles = 10;
            c.oanda_feed.poll_delay_ms = 0;
            c.oanda_feed.recheck_ms = 10;
        })),
        ..AppOptions::default()
    }
}

#[tokio::test]
async fn polled_candles_reach_the_store_and_a_price_closes_a_trade_at_its_take_profit() {
    let fake = FakeOanda::start(&["EUR_USD", "XAU_USD"]).await;
    fake.add_candles("EUR_USD", Timeframe::H1, &[candle(-3), candle(-2), candle(-1)]);
    fake.set_forming("EUR_USD", Timeframe::H1, &candle(0));
    let clock = ManualClock::new(t0() + ChronoDuration::seconds(30));
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let user = store
        .create_user(&NewUser { discord_user_id: None, display_name: "trader".into(), role: Role::User })
        .await
        .unwrap();
    // EURUSD 1h only, so the feed polls exactly that pair (no settings would ask for every forex pair).
    let settings = UserSettings {
        preferred_pairs: vec![Symbol::normalize("EURUSD")],
        enabled_timeframes: vec![Timeframe::H1],
        ..UserSettings::default()
    };
    store.save_settings(user.id, &settings).await.unwrap();
    let new = NewTrade::new(
        user.id,
        "EURUSD",
        Side::Long,
        Price::parse("1.10000").unwrap(),
        Lots::parse("0.1").unwrap(),
        Some(Price::parse("1.09000").unwrap()),
        Some(Price::parse("1.10500").unwrap()),
        t0(),
    )
    .unwrap();
    let trade = store.open_trade(&new).await.unwrap().trade;

    let mut app = spawn_app_on(&url, options(&fake, &clock, TOKEN)).await;
    let eur = Symbol::normalize("EURUSD");
    eventually("the warm-up candles in the store", WAIT, || async {
        let last = app.store.last_candle_time(&eur, Timeframe::H1).await.unwrap();
        (last == Some(candle(-1).time)).then_some(())
    })
    .await;
    let warmup = &fake.candle_requests()[0];
    assert_eq!((warmup.query["granularity"].as_str(), warmup.query["price"].as_str()), ("H1", "M"));

    // 11:00: the 10:00 candle closes; the poll after the close brings it through the pump into the store.
    // (The pump publishes `CandleClosed` on the bus only when NATS carries it to other processes.)
    clock.set(t0() + ChronoDuration::hours(1));
    fake.close_candle("EUR_USD", Timeframe::H1, &candle(0));
    eventually("the polled candle in the store", WAIT, || async {
        let last = app.store.last_candle_time(&eur, Timeframe::H1).await.unwrap();
        (last == Some(candle(0).time)).then_some(())
    })
    .await;
    let stored = app.store.recent_candles(&eur, Timeframe::H1, candle(0).time, 4).await.unwrap();
    let times: Vec<_> = stored.iter().map(|c| c.time).collect();
    assert_eq!(times, vec![candle(-3).time, candle(-2).time, candle(-1).time, candle(0).time], "each candle once");
    // The fake's mid candles sit half its spread above its bid prices.
    let half = Decimal::new(1, 4);
    assert_eq!((stored[3].open, stored[3].close), (candle(0).open + half, candle(0).close + half));

    // A price through the take profit on the pricing stream reaches the position monitor.
    fake.wait_for_connections(1, WAIT).await.unwrap();
    let at = t0() + ChronoDuration::minutes(61);
    fake.push_price("EUR_USD", "1.10300", "1.10312", at);
    fake.push_price("EUR_USD", "1.10510", "1.10522", at + ChronoDuration::seconds(1));
    let event = app.wait_for_event(WAIT, |e| matches!(e, Event::TradeClosed { trade: t } if t.id == trade.id)).await;
    let Event::TradeClosed { trade: closed } = event else { unreachable!() };
    assert_eq!(closed.close_reason, Some(CloseReason::TpHit));
    app.stop().await;
}

#[tokio::test]
async fn a_bad_token_stops_the_app_at_start_with_a_clear_error() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    let clock = ManualClock::new(t0());
    let (url, _db) = testkit::db::fresh_database_url().await;
    let mut config = signalpost::config::Config::default();
    if let Some(tweak) = options(&fake, &clock, "revoked-token").configure {
        (tweak.0)(&mut config);
    }
    config.database_url = signalpost::config::Secret::new(url);
    config.bind = "127.0.0.1:0".into();
    let Err(error) = signalpost::startup::Application::build(config, Arc::new(clock)).await else {
        panic!("the app started with a token OANDA refuses");
    };
    let shown = format!("{error:#}");
    assert!(shown.contains("OANDA") && shown.contains("Insufficient authorization"), "{shown}");
    assert!(!shown.contains("revoked-token"), "the token leaked: {shown}");
}

//! Trade notices in Discord (issue 4): the close report and the "still running" updates go through the
//! store's trade-notice outbox to the fake Discord, which checks every body against Discord's OpenAPI
//! description; and queued signal notifications too old to send are expired instead.
//!
//! The sender and the running-update service are driven directly where timing matters (a `ManualClock`
//! and explicit `drain` / `tick` calls, no sleeps); restarts and two processes go through the real app.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    Clock as _, CloseReason, Closing, ManualClock, NewTrade, Price, Side, Symbol, Tick, Trade, TradeResult, UserId,
};
use rust_decimal_macros::dec;
use serde_json::Value;
use signalpost::outbox::{Expiry, Outbox};
use signalpost::trade_notices::{CLAIM, RunningUpdates, TradeNotices};
use std::sync::Arc;
use store::{NotificationStatus, Store, TradeNoticeKind, TradeNoticeStatus};
use testkit::discord::{FakeDiscord, Route, ScriptedResponse};
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};

const ANN: &str = "1100000000000000001";
const BOB: &str = "1100000000000000002";
const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

/// A linked Discord user who gets no signals (so only trade messages reach the fake).
async fn linked(store: &Arc<dyn Store>, discord_id: &str, running_update_minutes: u32) -> UserId {
    let user = store.ensure_discord_user(discord_id, discord_id).await.unwrap().id;
    let settings = domain::UserSettings {
        notifications_enabled: false,
        running_update_minutes,
        ..domain::UserSettings::default()
    };
    store.save_settings(user, &settings).await.unwrap();
    user
}

async fn open_eurusd(store: &Arc<dyn Store>, user: UserId, opened_at: DateTime<Utc>) -> Trade {
    let new = NewTrade::new(
        user,
        "EURUSD",
        Side::Long,
        p("1.0854"),
        domain::Lots::parse("0.5").unwrap(),
        Some(p("1.0800")),
        Some(p("1.0962")),
        opened_at,
    )
    .unwrap();
    store.open_trade(&new).await.unwrap().trade
}

fn tp_hit(at: DateTime<Utc>) -> Closing {
    Closing {
        exit_price: p("1.0962"),
        reason: CloseReason::TpHit,
        at,
        result: TradeResult::Win,
        pips: Some(dec!(108)),
        profit: Some(dec!(540)),
    }
}

async fn set_price(store: &Arc<dyn Store>, bid: &str, ask: &str, time: DateTime<Utc>) {
    let tick = Tick { symbol: Symbol::normalize("EURUSD"), time, bid: p(bid), ask: p(ask), synthetic_from: None };
    store.set_last_price(&tick).await.unwrap();
}

fn notifier(fake: &FakeDiscord) -> Arc<dyn discord::Notifier> {
    Arc::new(discord::client::DiscordNotifier::new("test-bot-token".into(), Some(fake.base_url())).unwrap())
}

fn title(message: &Value) -> String {
    message["embeds"][0]["title"].as_str().unwrap_or_default().to_string()
}

fn field<'a>(message: &'a Value, name: &str) -> &'a str {
    message["embeds"][0]["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["value"]
        .as_str()
        .unwrap()
}

/// Requests that tried to post a message (whatever the fake answered).
fn message_posts(fake: &FakeDiscord) -> usize {
    fake.requests().iter().filter(|r| r.route == Some(Route::CreateMessage)).count()
}

#[tokio::test]
async fn a_close_gives_exactly_one_dm_even_when_the_first_send_fails() {
    let fake = FakeDiscord::start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = linked(&store, ANN, 0).await;
    let clock = ManualClock::new(t0() + Duration::hours(4));
    let sender = TradeNotices::new(store.clone(), notifier(&fake), Arc::new(clock.clone()));

    let trade = open_eurusd(&store, ann, t0()).await;
    store.close_trade(trade.id, &tp_hit(t0() + Duration::hours(3))).await.unwrap().unwrap();
    fake.script_next(Route::CreateMessage, ScriptedResponse::ServerError500);
    assert_eq!(sender.drain().await, 0, "Discord answered 500");
    let notice = store.trade_notices(trade.id).await.unwrap().remove(0);
    assert_eq!((notice.status, notice.attempts), (TradeNoticeStatus::Queued, 1));
    assert!(notice.last_error.unwrap().contains("500"));
    // Backing off: nothing is tried before the retry time, by this sender or any other.
    assert_eq!(sender.drain().await, 0);
    assert_eq!(message_posts(&fake), 1);

    clock.advance(Duration::seconds(2));
    assert_eq!(sender.drain().await, 1);
    assert_eq!(sender.drain().await, 0, "sent once, never again");
    let sent = fake.messages_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient_id.as_deref(), Some(ANN));
    assert_eq!(title(&sent[0].body), "TAKE PROFIT HIT · EURUSD LONG");
    assert_eq!((field(&sent[0].body, "Pips"), field(&sent[0].body, "Profit")), ("+108 pips", "+$540.00"));
    assert_eq!(field(&sent[0].body, "Duration"), "3h 0m");
    let notice = store.trade_notices(trade.id).await.unwrap().remove(0);
    assert_eq!(notice.status, TradeNoticeStatus::Sent);
    assert_eq!(notice.discord_message_id.as_deref(), Some(sent[0].message_id.as_str()));

    // A cancel is reported too, without P&L.
    let cancelled = open_eurusd(&store, ann, t0()).await;
    store.cancel_trade(cancelled.id, t0() + Duration::hours(1)).await.unwrap().unwrap();
    assert_eq!(sender.drain().await, 1);
    assert_eq!(title(&fake.messages_sent()[1].body), "TRADE CANCELLED · EURUSD LONG");
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
}

#[tokio::test]
async fn a_user_who_refuses_dms_is_recorded_and_not_retried() {
    let fake = FakeDiscord::start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = linked(&store, ANN, 0).await;
    fake.refuse_dms(ANN);
    let clock = ManualClock::new(t0() + Duration::hours(4));
    let sender = TradeNotices::new(store.clone(), notifier(&fake), Arc::new(clock.clone()));

    let trade = open_eurusd(&store, ann, t0()).await;
    store.close_trade(trade.id, &tp_hit(t0() + Duration::hours(3))).await.unwrap().unwrap();
    assert_eq!(sender.drain().await, 0);
    let notice = store.trade_notices(trade.id).await.unwrap().remove(0);
    assert_eq!((notice.status, notice.attempts), (TradeNoticeStatus::Failed, 1));
    assert!(notice.last_error.as_deref().unwrap().contains("50007"), "{:?}", notice.last_error);
    let posts = message_posts(&fake);
    clock.advance(Duration::days(1));
    assert_eq!(sender.drain().await, 0);
    assert_eq!(message_posts(&fake), posts, "a refusal is final");
    assert!(fake.messages_sent().is_empty());
}

#[tokio::test]
async fn running_updates_go_out_once_per_slot_with_the_live_pnl() {
    let fake = FakeDiscord::start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = linked(&store, ANN, 30).await;
    let bob = linked(&store, BOB, 0).await;
    let clock = ManualClock::new(t0());
    let clock_dyn: Arc<dyn domain::Clock> = Arc::new(clock.clone());
    let sender = TradeNotices::new(store.clone(), notifier(&fake), clock_dyn.clone());
    let running = RunningUpdates::new(store.clone(), clock_dyn.clone());
    // A second process ticking the same trades queues nothing more.
    let other_process = RunningUpdates::new(store.clone(), clock_dyn);

    let trade = open_eurusd(&store, ann, t0()).await;
    open_eurusd(&store, bob, t0()).await;
    clock.set(t0() + Duration::minutes(29));
    set_price(&store, "1.0864", "1.0866", clock.now()).await;
    assert_eq!(running.tick().await.unwrap(), 0, "not yet a whole period");

    clock.set(t0() + Duration::minutes(30));
    assert_eq!(running.tick().await.unwrap(), 1, "slot 1, for Ann only");
    assert_eq!(running.tick().await.unwrap(), 0);
    assert_eq!(other_process.tick().await.unwrap(), 0);
    assert_eq!(sender.drain().await, 1);
    let first = fake.messages_sent().remove(0);
    assert_eq!(first.recipient_id.as_deref(), Some(ANN));
    assert_eq!(title(&first.body), "STILL RUNNING · EURUSD LONG");
    // Long at the bid: 1.0864 - 1.0854 = +10 pips, 0.5 lot = +$50.
    assert_eq!((field(&first.body, "Now"), field(&first.body, "Pips")), ("1.08640", "+10 pips"));
    assert_eq!((field(&first.body, "Profit"), field(&first.body, "Open for")), ("+$50.00", "30m"));

    clock.set(t0() + Duration::minutes(59));
    set_price(&store, "1.0844", "1.0846", clock.now()).await;
    assert_eq!(running.tick().await.unwrap(), 0, "still slot 1");
    clock.set(t0() + Duration::minutes(61));
    assert_eq!(other_process.tick().await.unwrap(), 1, "slot 2");
    assert_eq!(running.tick().await.unwrap(), 0);
    assert_eq!(sender.drain().await, 1);
    let second = fake.messages_sent().remove(1);
    assert_eq!((field(&second.body, "Pips"), field(&second.body, "Profit")), ("-10 pips", "-$50.00"));
    assert_eq!(field(&second.body, "Open for"), "1h 1m");

    // A slot missed while nothing ran is not made up: one update for the current slot only.
    clock.set(t0() + Duration::minutes(185));
    assert_eq!(running.tick().await.unwrap(), 1);
    let slots: Vec<i64> = store.trade_notices(trade.id).await.unwrap().iter().map(|n| n.slot).collect();
    assert_eq!(slots, [1, 2, 6]);
    // The close, before the update went out: the update expires, the close report goes.
    store.close_trade(trade.id, &tp_hit(clock.now())).await.unwrap().unwrap();
    assert_eq!(sender.drain().await, 1);
    assert_eq!(title(&fake.messages_sent()[2].body), "TAKE PROFIT HIT · EURUSD LONG");
    let notices = store.trade_notices(trade.id).await.unwrap();
    let states: Vec<(TradeNoticeKind, TradeNoticeStatus)> = notices.iter().map(|n| (n.kind, n.status)).collect();
    assert_eq!(
        states,
        [
            (TradeNoticeKind::Running, TradeNoticeStatus::Sent),
            (TradeNoticeKind::Running, TradeNoticeStatus::Sent),
            (TradeNoticeKind::Running, TradeNoticeStatus::Expired),
            (TradeNoticeKind::Closed, TradeNoticeStatus::Sent),
        ]
    );
    clock.advance(Duration::hours(1));
    assert_eq!(running.tick().await.unwrap(), 0, "closed trades get no updates");
    assert_eq!(fake.messages_sent().len(), 3);
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
}

fn discord_on(fake: &FakeDiscord) -> DiscordOptions {
    DiscordOptions {
        token: Some("test-bot-token".into()),
        application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
        public_key_hex: None,
        api_base: Some(fake.base_url()),
    }
}

/// An app with no market data worth mentioning: one candle between the test trades' stop loss and take
/// profit, so the feed ends at once and closes nothing.
fn quiet(discord: Option<DiscordOptions>, clock: Option<Arc<dyn domain::Clock>>) -> (AppOptions, tempfile::TempDir) {
    let (file, dir) = testkit::write_candles(&[("2020-01-01T00:00:00Z", "1.09", "1.09", "1.09", "1.09")]);
    let options = AppOptions {
        replay_series: vec![format!("EURUSD:1h:{}", file.display())],
        replay_speed: 0.0,
        discord,
        clock,
        ..AppOptions::default()
    };
    (options, dir)
}

#[tokio::test]
async fn notices_queued_while_discord_was_off_or_held_by_a_crashed_sender_are_delivered_after_a_restart() {
    let fake = FakeDiscord::start().await;
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = linked(&store, ANN, 0).await;

    // Discord off: closes queue their notices and nothing is sent.
    let (options, _candles) = quiet(None, None);
    let app = spawn_app_on(&url, options).await;
    let closed_while_off = open_eurusd(&store, ann, t0()).await;
    app.store.close_trade(closed_while_off.id, &tp_hit(t0() + Duration::hours(1))).await.unwrap().unwrap();
    app.stop().await;
    // A sender that claimed a notice and died before sending it.
    let held = open_eurusd(&store, ann, t0()).await;
    store.close_trade(held.id, &tp_hit(t0() + Duration::hours(2))).await.unwrap().unwrap();
    let now = Utc::now();
    let claimed = store.claim_trade_notices(now, now + CLAIM, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store.mark_trade_notice_failed(claimed[0].id, "simulated: released", Some(now)).await.unwrap();

    // Discord on: the released notice goes at once; the held one when its claim has run out.
    let clock = ManualClock::new(now);
    let (options, _candles) = quiet(Some(discord_on(&fake)), Some(Arc::new(clock.clone())));
    let app: TestApp = spawn_app_on(&url, options).await;
    let first = fake.wait_for_messages(1, WAIT).await.unwrap();
    assert!(field(&first[0].body, "Exit").starts_with("1.0962"));
    assert!(first[0].body["embeds"][0]["description"].as_str().unwrap().contains(&format!("#{}", closed_while_off.id)));
    clock.advance(CLAIM);
    let both = fake.wait_for_messages(2, WAIT).await.unwrap();
    assert!(both[1].body["embeds"][0]["description"].as_str().unwrap().contains(&format!("#{}", held.id)));
    app.stop().await;
    assert_eq!(fake.messages_sent().len(), 2, "each once");
    for trade in [closed_while_off.id, held.id] {
        assert_eq!(store.trade_notices(trade).await.unwrap()[0].status, TradeNoticeStatus::Sent);
    }
}

#[tokio::test]
async fn two_app_instances_on_one_postgres_database_send_each_notice_once() {
    let Some((store, db)) = testkit::db::fresh_postgres().await else {
        return;
    };
    let fake = FakeDiscord::start().await;
    let users = [linked(&store, ANN, 0).await, linked(&store, BOB, 0).await];
    let (first_options, _a) = quiet(Some(discord_on(&fake)), None);
    let (second_options, _b) = quiet(Some(discord_on(&fake)), None);
    let first = spawn_app_on(db.url(), first_options).await;
    let second = spawn_app_on(db.url(), second_options).await;

    const TRADES: usize = 30;
    let mut ids = Vec::new();
    for i in 0..TRADES {
        let trade = open_eurusd(&store, users[i % 2], t0()).await;
        // Half the closes through each instance's store, as their monitors or /stop would.
        let via = if i % 2 == 0 { &first.store } else { &second.store };
        via.close_trade(trade.id, &tp_hit(t0() + Duration::hours(1))).await.unwrap().unwrap();
        ids.push(trade.id);
    }
    fake.wait_for_messages(TRADES, WAIT).await.unwrap();
    first.stop().await;
    second.stop().await;
    let sent = fake.messages_sent();
    assert_eq!(sent.len(), TRADES, "one DM per close, across both instances");
    let mut reported: Vec<String> =
        sent.iter().map(|m| m.body["embeds"][0]["description"].as_str().unwrap().to_string()).collect();
    reported.sort();
    reported.dedup();
    assert_eq!(reported.len(), TRADES);
    for id in ids {
        assert_eq!(store.trade_notices(id).await.unwrap()[0].status, TradeNoticeStatus::Sent);
    }
}

/// Finishes routing what a stopped app left half done (audiences recorded, rows not yet written), as the
/// next router would, so the test sees every notification the replay owes.
async fn finish_routing(store: &Arc<dyn Store>) -> Vec<store::StoredSignal> {
    let mut signals = store.recent_signals(1000).await.unwrap();
    for s in &signals {
        signalpost::router::route(store.as_ref(), s.id, &s.signal).await.unwrap();
    }
    signalpost::router::materialise_pending(store.as_ref(), 1000, |_| {}).await.unwrap();
    signals.sort_by_key(|s| s.signal.created_at);
    signals
}

#[tokio::test]
async fn discord_switched_on_after_a_replay_sends_only_the_fresh_signals() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;

    // The replay runs with Discord off: every signal is queued for Ann, nothing sent.
    let options = AppOptions {
        replay_series: vec![testkit::fixtures::eurusd_300_series()],
        replay_speed: 0.0,
        ..AppOptions::default()
    };
    let mut off = spawn_app_on(&url, options).await;
    off.wait_for_replay_end().await;
    off.stop().await;
    let signals = finish_routing(&store).await;
    assert!(signals.len() >= 3, "the replay produced signals");
    let queued = store.queued_notifications(1000).await.unwrap();
    assert_eq!(queued.len(), signals.len());

    // Discord comes on 40 minutes after the last signal's candle closed: only signals younger than their
    // timeframe (1h) are worth sending, so the last one goes and the older ones expire.
    let now = signals.last().unwrap().signal.created_at + Duration::minutes(40);
    let fresh: Vec<_> =
        signals.iter().filter(|s| now - s.signal.created_at <= Duration::hours(1)).map(|s| s.id).collect();
    assert!(!fresh.is_empty() && fresh.len() < signals.len());
    let fake = FakeDiscord::start().await;
    let clock: Arc<dyn domain::Clock> = Arc::new(ManualClock::new(now));
    let backlog_until = signals.iter().map(|s| s.id).max().unwrap();
    let mut outbox = Outbox::new(store.clone(), notifier(&fake), clock, Arc::new(tokio::sync::Notify::new()))
        .with_expiry(Expiry { backlog_until, ttl: None });
    assert_eq!(outbox.drain().await, fresh.len());
    assert_eq!(fake.messages_sent().len(), fresh.len());
    let inbox = store.notifications_for_user(ann, 1000, 0).await.unwrap();
    for n in &inbox {
        if fresh.contains(&n.signal_id) {
            assert_eq!(n.status, NotificationStatus::Sent);
        } else {
            assert!(n.is_expired(), "{n:?}");
            assert!(n.last_error.as_deref().unwrap().contains("old"), "{:?}", n.last_error);
        }
    }
    assert!(store.queued_notifications(10).await.unwrap().is_empty());

    // With a longer TTL configured, an equally old backlog is sent.
    let expiry = Expiry { backlog_until, ttl: Some(Duration::days(3650)) };
    let old = inbox.iter().find(|n| n.is_expired()).unwrap();
    assert!(expiry.expired(old, &store.get_signal(old.signal_id).await.unwrap().unwrap().signal, now).is_none());
    // Signals stored after the outbox started are never expired by age (a replay's times are past).
    let later = store::Notification { signal_id: domain::SignalId(backlog_until.0 + 1), ..old.clone() };
    let stale = &store.get_signal(old.signal_id).await.unwrap().unwrap().signal;
    assert!(Expiry { backlog_until, ttl: None }.expired(&later, stale, now + Duration::days(30)).is_none());
}

#[tokio::test]
async fn discord_switched_on_through_the_app_expires_the_stale_backlog() {
    let (url, _db) = testkit::db::fresh_database_url().await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ann = testkit::fixtures::eurusd_subscriber(&store, ANN, "ann").await;
    let options = AppOptions {
        replay_series: vec![testkit::fixtures::eurusd_300_series()],
        replay_speed: 0.0,
        ..AppOptions::default()
    };
    let mut off = spawn_app_on(&url, options.clone()).await;
    off.wait_for_replay_end().await;
    off.stop().await;
    let signals = finish_routing(&store).await;
    let newest = signals.iter().map(|s| s.signal.created_at).max().unwrap();

    // The same replay again (its signals are stored already), Discord on, the clock 40 minutes after the
    // newest signal.
    let fake = FakeDiscord::start().await;
    let clock = ManualClock::new(newest + Duration::minutes(40));
    let on_options = AppOptions { discord: Some(discord_on(&fake)), clock: Some(Arc::new(clock)), ..options };
    let mut on = spawn_app_on(&url, on_options).await;
    on.wait_for_replay_end().await;
    let sent = fake.wait_for_messages(1, WAIT).await.unwrap();
    // The fresh one may be sent before later batches of the backlog are expired.
    testkit::wait::eventually("the backlog to be expired", WAIT, || async {
        store.queued_notifications(1).await.unwrap().is_empty().then_some(())
    })
    .await;
    on.stop().await;
    assert_eq!(sent.len(), 1);
    let inbox = store.notifications_for_user(ann, 1000, 0).await.unwrap();
    assert_eq!(inbox.len(), signals.len());
    assert_eq!(inbox.iter().filter(|n| n.status == NotificationStatus::Sent).count(), 1);
    assert_eq!(inbox.iter().filter(|n| n.is_expired()).count(), signals.len() - 1);
}

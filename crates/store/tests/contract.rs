//! The store's contract, run against both backends: every test below is one `async fn(Arc<dyn Store>,
//! &DbGuard)`, and `contract!` turns it into `sqlite::<name>` and `postgres::<name>`. The PostgreSQL tests
//! use `TEST_DATABASE_URL` and print `skipped: …` and pass when it is unset.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    CloseReason, Closing, Delivery, Entry, Lots, NewTrade, NotificationId, Price, Side, Signal, SignalId, SignalSource,
    Symbol, Tick, Timeframe, Trade, TradeId, TradeResult, TradeStatus, TradeUpdateKind, UserId, UserSettings,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;
use store::{
    LinkOutcome, NewNotification, NewTradeUpdate, NewUser, NotificationBatch, NotificationLimits, NotificationStatus,
    NotifyOutcome, Role, Store, StoreError, TradeFilter, TradeUpdateId, UserUpdate,
};
use testkit::db::DbGuard;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, db) = testkit::db::fresh_sqlite().await;
                    super::$name(store, &db).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, db)) = testkit::db::fresh_postgres().await else {
                        return;
                    };
                    super::$name(store, &db).await;
                }
            )*
        }
    };
}

contract!(
    migrating_twice_is_harmless,
    users_are_created_found_and_updated,
    discord_users_are_created_once,
    settings_default_round_trip_and_reject_invalid,
    signals_round_trip_and_dedup,
    one_notification_per_signal_and_user,
    notification_outbox_lifecycle,
    routing_respects_cap_cooldown_and_races,
    bulk_routing_has_the_per_user_rules,
    bulk_routers_racing_respect_uniqueness_and_caps,
    open_trade_writes_trade_and_history_together,
    repeated_submit_gives_one_trade,
    trade_closes_exactly_once,
    concurrent_closes_have_one_winner,
    cancel_is_once_and_excludes_close,
    decimals_round_trip_exactly,
    trades_list_filter_and_page,
    open_trades_and_tailing,
    levels_move_only_on_open_trades_and_right_sides,
    history_entries_and_change_feed,
    last_price_is_upserted,
    corrupt_rows_are_errors_not_panics,
    link_codes_link_once_and_expire,
    link_codes_replace_older_ones,
    link_codes_refuse_a_discord_account_linked_elsewhere,
    concurrent_redeems_link_once,
);

// ---------- fixtures ----------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

fn lots(text: &str) -> Lots {
    Lots::parse(text).unwrap()
}

fn sym(text: &str) -> Symbol {
    Symbol::normalize(text)
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store.create_user(&NewUser { discord_user_id: None, display_name: name.into(), role: Role::User }).await.unwrap().id
}

fn signal(symbol: &str, created_at: DateTime<Utc>) -> Signal {
    Signal {
        symbol: sym(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.0854") },
        stop_loss: Some(p("1.08")),
        take_profits: vec![p("1.0962"), p("1.1")],
        leverage: None,
        confidence: Some(dec!(0.82)),
        source: SignalSource::Engine,
        model_version: Some("rev-2".into()),
        stage1_prob: Some(0.91),
        stage2_prob: Some(0.7345),
        created_at,
    }
}

async fn signal_id(store: &Arc<dyn Store>) -> SignalId {
    store.insert_signal(&signal("EURUSD", t0()), None).await.unwrap().0
}

fn eurusd_long(user: UserId, opened_at: DateTime<Utc>) -> NewTrade {
    let mut t = NewTrade::new(
        user,
        "EURUSD",
        Side::Long,
        p("1.0854"),
        lots("0.5"),
        Some(p("1.08")),
        Some(p("1.0962")),
        opened_at,
    )
    .unwrap();
    t.notes = Some("first trade".into());
    t
}

fn tp_hit(at: DateTime<Utc>) -> Closing {
    Closing {
        exit_price: p("1.0962"),
        reason: CloseReason::TpHit,
        at,
        result: TradeResult::Win,
        pips: Some(dec!(108.0)),
        profit: Some(dec!(540.00)),
    }
}

async fn open(store: &Arc<dyn Store>, new: &NewTrade) -> Trade {
    store.open_trade(new).await.unwrap().trade
}

async fn notification(store: &Arc<dyn Store>, user: UserId, signal: SignalId) -> NotificationId {
    store.create_notification(&new_notification(signal, user, "EURUSD", t0())).await.unwrap().unwrap()
}

fn new_notification(signal_id: SignalId, user_id: UserId, symbol: &str, at: DateTime<Utc>) -> NewNotification {
    NewNotification { signal_id, user_id, symbol: sym(symbol), created_at: at }
}

/// Runs one statement directly on the test database, bypassing the store, to plant bad data.
async fn raw_execute(db: &DbGuard, sql: &'static str, id: i64) {
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
        sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

// ---------- the contract ----------

async fn migrating_twice_is_harmless(store: Arc<dyn Store>, db: &DbGuard) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let expected = if db.is_postgres() { "postgres" } else { "sqlite" };
    assert_eq!(store.backend_name(), expected);
    // A second store on the same database sees the same schema and migrates as a no-op.
    let other = store::connect(db.url()).await.unwrap();
    other.migrate().await.unwrap();
    let id = user(&store, "ann").await;
    assert_eq!(other.get_user(id).await.unwrap().unwrap().display_name, "ann");
}

async fn users_are_created_found_and_updated(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = store
        .create_user(&NewUser { discord_user_id: Some("1001".into()), display_name: " Ann ".into(), role: Role::Admin })
        .await
        .unwrap();
    assert_eq!(ann.display_name, "Ann");
    assert_eq!(ann.role, Role::Admin);
    assert_eq!(ann.account_currency, "USD");
    assert_eq!(ann.default_lots, lots("0.01"));
    assert_eq!(store.get_user(ann.id).await.unwrap(), Some(ann.clone()));
    assert_eq!(store.user_by_discord_id("1001").await.unwrap(), Some(ann.clone()));
    assert_eq!(store.user_by_discord_id("999").await.unwrap(), None);
    assert_eq!(store.get_user(UserId(424242)).await.unwrap(), None);

    let dup = store
        .create_user(&NewUser {
            discord_user_id: Some("1001".into()),
            display_name: "Imposter".into(),
            role: Role::User,
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let blank =
        store.create_user(&NewUser { discord_user_id: None, display_name: "  ".into(), role: Role::User }).await;
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");

    let bob = user(&store, "bob").await;
    let updated = store
        .update_user(
            bob,
            &UserUpdate {
                discord_user_id: Some("2002".into()),
                account_currency: Some("EUR".into()),
                default_lots: Some(lots("0.25")),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name, "bob");
    assert_eq!(updated.discord_user_id.as_deref(), Some("2002"));
    assert_eq!(updated.account_currency, "EUR");
    assert_eq!(updated.default_lots, lots("0.25"));
    assert_eq!(updated.role, Role::User);

    let bad =
        store.update_user(bob, &UserUpdate { account_currency: Some("euro".into()), ..UserUpdate::default() }).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    let taken =
        store.update_user(bob, &UserUpdate { discord_user_id: Some("1001".into()), ..UserUpdate::default() }).await;
    assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
    assert_eq!(store.get_user(bob).await.unwrap(), Some(updated));
    let missing = store.update_user(UserId(424242), &UserUpdate::default()).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");

    let names: Vec<String> = store.list_users().await.unwrap().into_iter().map(|u| u.display_name).collect();
    assert_eq!(names, ["Ann", "bob"]);
}

async fn discord_users_are_created_once(store: Arc<dyn Store>, _db: &DbGuard) {
    let (a, b) = tokio::join!(store.ensure_discord_user("555", "Zed"), store.ensure_discord_user("555", "Zed again"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    assert_eq!(store.ensure_discord_user("555", "other").await.unwrap().id, a.id);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    assert_eq!(store.ensure_discord_user("556", "").await.unwrap().display_name, "556");
}

async fn settings_default_round_trip_and_reject_invalid(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    assert_eq!(store.get_settings(ann).await.unwrap(), UserSettings::default());

    let custom = UserSettings {
        notifications_enabled: false,
        enabled_timeframes: vec![Timeframe::M15, Timeframe::D1],
        preferred_pairs: vec![sym("EURUSD"), sym("XAUUSD")],
        min_confidence: dec!(0.755),
        only_ml_enhanced: true,
        max_notifications_per_day: 7,
        notification_cooldown_minutes: 90,
        delivery: Delivery::Channel("123456789012345678".into()),
        running_update_minutes: 30,
    };
    store.save_settings(ann, &custom).await.unwrap();
    assert_eq!(store.get_settings(ann).await.unwrap(), custom);

    // Saving again replaces, including going back to an empty list and a DM.
    let cleared = UserSettings { enabled_timeframes: vec![], preferred_pairs: vec![], ..UserSettings::default() };
    store.save_settings(ann, &cleared).await.unwrap();
    assert_eq!(store.get_settings(ann).await.unwrap(), cleared);

    for invalid in [
        UserSettings { min_confidence: dec!(1.5), ..custom.clone() },
        UserSettings { max_notifications_per_day: 5000, ..custom.clone() },
        UserSettings { delivery: Delivery::Channel("general".into()), ..custom.clone() },
        UserSettings { running_update_minutes: 2, ..custom.clone() },
    ] {
        let err = store.save_settings(ann, &invalid).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        let err = store.save_settings(bob, &invalid).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    assert_eq!(store.get_settings(ann).await.unwrap(), cleared);
    assert_eq!(store.get_settings(bob).await.unwrap(), UserSettings::default());

    let all = store.users_with_settings().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].0.id, &all[0].1), (ann, &cleared));
    assert_eq!((all[1].0.id, &all[1].1), (bob, &UserSettings::default()));

    let missing = store.save_settings(UserId(424242), &custom).await;
    assert!(matches!(missing, Err(StoreError::MissingReference { .. })), "{missing:?}");
}

async fn signals_round_trip_and_dedup(store: Arc<dyn Store>, _db: &DbGuard) {
    let engine = signal("EURUSD", t0());
    let (first, inserted) = store.insert_signal(&engine, Some("engine:EURUSD:1h:2026-03-02T10:00Z")).await.unwrap();
    assert!(inserted);
    let (again, inserted) = store.insert_signal(&engine, Some("engine:EURUSD:1h:2026-03-02T10:00Z")).await.unwrap();
    assert_eq!((again, inserted), (first, false));

    let stored = store.get_signal(first).await.unwrap().unwrap();
    assert_eq!(stored.signal, engine);
    assert_eq!(stored.dedup_key.as_deref(), Some("engine:EURUSD:1h:2026-03-02T10:00Z"));

    let provider = Signal {
        symbol: sym("BTCUSDT"),
        timeframe: None,
        side: Side::Short,
        entry: Entry::Zone { low: p("64100.5"), high: p("64123.12345678") },
        stop_loss: Some(p("65000")),
        take_profits: vec![p("63000"), p("62000.25"), p("61000")],
        leverage: Some(20),
        confidence: None,
        source: SignalSource::Provider("987654321".into()),
        model_version: None,
        stage1_prob: None,
        stage2_prob: None,
        created_at: t0() + Duration::minutes(5),
    };
    let (second, _) = store.insert_signal(&provider, None).await.unwrap();
    let (third, _) = store.insert_signal(&provider, None).await.unwrap();
    assert_ne!(second, third, "without a dedup key every insert is a new signal");
    assert_eq!(store.get_signal(second).await.unwrap().unwrap().signal, provider);
    let market = Signal { entry: Entry::Market, source: SignalSource::Webhook, ..engine.clone() };
    let (fourth, _) = store.insert_signal(&market, Some("tv:1")).await.unwrap();
    assert_eq!(store.get_signal(fourth).await.unwrap().unwrap().signal, market);

    let recent: Vec<SignalId> = store.recent_signals(3).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(recent, [fourth, third, second]);
    assert_eq!(store.get_signal(SignalId(424242)).await.unwrap(), None);

    let wrong_side = Signal { stop_loss: Some(p("1.09")), ..engine.clone() };
    let err = store.insert_signal(&wrong_side, Some("bad")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let nan = Signal { stage1_prob: Some(f64::NAN), ..engine };
    assert!(matches!(store.insert_signal(&nan, None).await, Err(StoreError::Invalid(_))));
    assert_eq!(store.recent_signals(100).await.unwrap().len(), 4);
}

async fn one_notification_per_signal_and_user(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let s = signal_id(&store).await;
    let first = store.create_notification(&new_notification(s, ann, "EURUSD", t0())).await.unwrap();
    assert!(first.is_some());
    assert_eq!(store.create_notification(&new_notification(s, ann, "EURUSD", t0())).await.unwrap(), None);
    assert!(store.create_notification(&new_notification(s, bob, "EURUSD", t0())).await.unwrap().is_some());

    // Racing routers: exactly one of them creates it.
    let s2 = signal_id(&store).await;
    let n = new_notification(s2, ann, "EURUSD", t0());
    let (a, b) = tokio::join!(store.create_notification(&n), store.create_notification(&n));
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| x.is_some()).count(), 1);

    let missing = store.create_notification(&new_notification(SignalId(424242), ann, "EURUSD", t0())).await;
    assert!(matches!(missing, Err(StoreError::MissingReference { .. })), "{missing:?}");
}

async fn notification_outbox_lifecycle(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let mut ids = Vec::new();
    for minutes in [0, 10, 20] {
        let s = signal_id(&store).await;
        let symbol = if minutes == 20 { "XAUUSD" } else { "EURUSD" };
        let n = new_notification(s, ann, symbol, t0() + Duration::minutes(minutes));
        ids.push(store.create_notification(&n).await.unwrap().unwrap());
    }
    let n = store.get_notification(ids[0]).await.unwrap().unwrap();
    assert_eq!(n.status, NotificationStatus::Queued);
    assert_eq!((n.attempts, n.acknowledged, n.sent_at, n.created_at), (0, false, None, t0()));
    assert_eq!(n.symbol, sym("EURUSD"));

    let queued: Vec<NotificationId> = store.queued_notifications(10).await.unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(queued, ids);

    store.mark_notification_failed(ids[0], "discord 503", true).await.unwrap();
    let n = store.get_notification(ids[0]).await.unwrap().unwrap();
    assert_eq!((n.status, n.attempts, n.last_error.as_deref()), (NotificationStatus::Queued, 1, Some("discord 503")));
    store.mark_notification_sent(ids[0], "1234567890", t0() + Duration::seconds(3)).await.unwrap();
    let n = store.get_notification(ids[0]).await.unwrap().unwrap();
    assert_eq!(n.status, NotificationStatus::Sent);
    assert_eq!((n.attempts, n.last_error, n.discord_message_id.as_deref()), (2, None, Some("1234567890")));
    assert_eq!(n.sent_at, Some(t0() + Duration::seconds(3)));
    store.mark_notification_failed(ids[1], "unknown channel", false).await.unwrap();
    assert_eq!(store.get_notification(ids[1]).await.unwrap().unwrap().status, NotificationStatus::Failed);
    store.acknowledge_notification(ids[0]).await.unwrap();
    assert!(store.get_notification(ids[0]).await.unwrap().unwrap().acknowledged);

    let queued: Vec<NotificationId> = store.queued_notifications(10).await.unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(queued, [ids[2]]);
    let inbox: Vec<NotificationId> =
        store.notifications_for_user(ann, 2, 0).await.unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(inbox, [ids[2], ids[1]]);
    let inbox: Vec<NotificationId> =
        store.notifications_for_user(ann, 2, 2).await.unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(inbox, [ids[0]]);

    // The failed one counts toward neither the cap nor the cooldown.
    assert_eq!(store.count_notifications_since(ann, t0()).await.unwrap(), 2);
    assert_eq!(store.count_notifications_since(ann, t0() + Duration::minutes(1)).await.unwrap(), 1);
    assert_eq!(store.last_notification_for_pair(ann, &sym("EURUSD")).await.unwrap(), Some(t0()));
    assert_eq!(
        store.last_notification_for_pair(ann, &sym("XAUUSD")).await.unwrap(),
        Some(t0() + Duration::minutes(20))
    );
    assert_eq!(store.last_notification_for_pair(ann, &sym("GBPUSD")).await.unwrap(), None);

    for result in [
        store.mark_notification_sent(NotificationId(424242), "1", t0()).await,
        store.mark_notification_failed(NotificationId(424242), "x", true).await,
        store.acknowledge_notification(NotificationId(424242)).await,
    ] {
        assert!(matches!(result, Err(StoreError::NotFound { .. })), "{result:?}");
    }
    assert_eq!(store.get_notification(NotificationId(424242)).await.unwrap(), None);
}

async fn routing_respects_cap_cooldown_and_races(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let limits = |now: DateTime<Utc>| NotificationLimits {
        window_start: now - Duration::hours(24),
        max_in_window: 3,
        cooldown_start: Some(now - Duration::minutes(60)),
    };
    let s1 = signal_id(&store).await;
    let n1 = new_notification(s1, ann, "EURUSD", t0());
    let NotifyOutcome::Created(id1) = store.create_notification_within_limits(&n1, &limits(t0())).await.unwrap() else {
        panic!("the first notification is created");
    };
    assert_eq!(
        store.create_notification_within_limits(&n1, &limits(t0())).await.unwrap(),
        NotifyOutcome::AlreadyNotified(id1)
    );
    let s2 = signal_id(&store).await;
    let later = t0() + Duration::minutes(30);
    assert_eq!(
        store
            .create_notification_within_limits(&new_notification(s2, ann, "EURUSD", later), &limits(later))
            .await
            .unwrap(),
        NotifyOutcome::CoolingDown
    );
    let after_cooldown = t0() + Duration::minutes(61);
    assert!(matches!(
        store
            .create_notification_within_limits(
                &new_notification(s2, ann, "EURUSD", after_cooldown),
                &limits(after_cooldown)
            )
            .await
            .unwrap(),
        NotifyOutcome::Created(_)
    ));

    // Two routers race over several signals for other pairs: the cap of 3 holds exactly.
    let mut pending = Vec::new();
    for symbol in ["GBPUSD", "USDJPY", "XAUUSD", "AUDUSD", "NZDUSD", "USDCAD"] {
        let s = signal_id(&store).await;
        pending.push(new_notification(s, ann, symbol, after_cooldown));
    }
    let (left, right) = pending.split_at(3);
    let route = |batch: Vec<NewNotification>| {
        let store = store.clone();
        let limits = limits(after_cooldown);
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in batch {
                outcomes.push(store.create_notification_within_limits(&n, &limits).await.unwrap());
            }
            outcomes
        })
    };
    let (a, b) = tokio::join!(route(left.to_vec()), route(right.to_vec()));
    let outcomes: Vec<NotifyOutcome> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    let created = outcomes.iter().filter(|o| matches!(o, NotifyOutcome::Created(_))).count();
    assert_eq!(created, 1, "two were already used, so one more fits under the cap of 3: {outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == NotifyOutcome::DailyCapReached).count(), 5);
    assert_eq!(store.count_notifications_since(ann, after_cooldown - Duration::hours(24)).await.unwrap(), 3);

    let missing = store
        .create_notification_within_limits(&new_notification(s2, UserId(424242), "EURUSD", t0()), &limits(t0()))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
}

fn batch(signal_id: SignalId, symbol: &str, at: DateTime<Utc>) -> NotificationBatch {
    NotificationBatch { signal_id, symbol: sym(symbol), created_at: at }
}

fn hour_limits(now: DateTime<Utc>, cap: u32) -> NotificationLimits {
    NotificationLimits {
        window_start: now - Duration::hours(24),
        max_in_window: cap,
        cooldown_start: Some(now - Duration::minutes(60)),
    }
}

async fn bulk_routing_has_the_per_user_rules(store: Arc<dyn Store>, _db: &DbGuard) {
    let (ann, bob, cid) = (user(&store, "ann").await, user(&store, "bob").await, user(&store, "cid").await);
    let all = |now: DateTime<Utc>, users: &[UserId]| -> Vec<(UserId, NotificationLimits)> {
        users.iter().map(|u| (*u, hour_limits(now, 3))).collect()
    };
    assert_eq!(store.create_notifications_within_limits(&batch(SignalId(1), "EURUSD", t0()), &[]).await.unwrap(), []);

    // Created once per (signal, user); a user listed twice, or routed again, is already notified.
    let s1 = signal_id(&store).await;
    let out = store.create_notifications_within_limits(&batch(s1, "EURUSD", t0()), &all(t0(), &[ann, bob, ann])).await;
    let [NotifyOutcome::Created(a1), NotifyOutcome::Created(b1), again] = out.unwrap()[..] else {
        panic!("ann and bob are notified");
    };
    assert_eq!(again, NotifyOutcome::AlreadyNotified(a1));
    let n = store.get_notification(a1).await.unwrap().unwrap();
    assert_eq!((n.signal_id, n.user_id, n.symbol.as_str(), n.created_at), (s1, ann, "EURUSD", t0()));
    assert_eq!(n.status, NotificationStatus::Queued);
    assert_eq!(
        store.create_notifications_within_limits(&batch(s1, "EURUSD", t0()), &all(t0(), &[bob])).await.unwrap(),
        [NotifyOutcome::AlreadyNotified(b1)]
    );
    // The per-user method sees what the bulk one wrote, and the other way round.
    assert_eq!(
        store
            .create_notification_within_limits(&new_notification(s1, ann, "EURUSD", t0()), &hour_limits(t0(), 3))
            .await
            .unwrap(),
        NotifyOutcome::AlreadyNotified(a1)
    );

    // Cooldown per pair: the same pair 30 minutes later cools down; another pair does not; a user who was not
    // notified about the pair is not cooling down.
    let later = t0() + Duration::minutes(30);
    let s2 = signal_id(&store).await;
    assert!(matches!(
        store
            .create_notifications_within_limits(&batch(s2, "EURUSD", later), &all(later, &[ann, bob, cid]))
            .await
            .unwrap()[..],
        [NotifyOutcome::CoolingDown, NotifyOutcome::CoolingDown, NotifyOutcome::Created(_)]
    ));
    // A cooldown of none lets it through.
    let s3 = signal_id(&store).await;
    let no_cooldown = NotificationLimits { cooldown_start: None, ..hour_limits(later, 3) };
    assert!(matches!(
        store.create_notifications_within_limits(&batch(s3, "EURUSD", later), &[(ann, no_cooldown)]).await.unwrap()[..],
        [NotifyOutcome::Created(_)]
    ));

    // Cap: ann has 2 in the window, bob 1. A third fits for ann, then she is capped; the cap counts what the
    // per-user method wrote too.
    let s4 = signal_id(&store).await;
    let n4 = new_notification(s4, ann, "GBPUSD", later);
    assert!(matches!(
        store.create_notification_within_limits(&n4, &hour_limits(later, 3)).await.unwrap(),
        NotifyOutcome::Created(_)
    ));
    let s5 = signal_id(&store).await;
    assert!(matches!(
        store.create_notifications_within_limits(&batch(s5, "USDJPY", later), &all(later, &[ann, bob])).await.unwrap()
            [..],
        [NotifyOutcome::DailyCapReached, NotifyOutcome::Created(_)]
    ));
    // Given-up notifications count toward neither the cap nor the cooldown.
    store.mark_notification_failed(a1, "gave up", false).await.unwrap();
    let s6 = signal_id(&store).await;
    assert!(matches!(
        store.create_notifications_within_limits(&batch(s6, "AUDUSD", later), &all(later, &[ann])).await.unwrap()[..],
        [NotifyOutcome::Created(_)]
    ));
    // A capped user that is also cooling down is reported capped, as the per-user method does.
    let s7 = signal_id(&store).await;
    assert_eq!(
        store.create_notifications_within_limits(&batch(s7, "AUDUSD", later), &all(later, &[ann])).await.unwrap(),
        [NotifyOutcome::DailyCapReached]
    );
    assert_eq!(
        store
            .create_notification_within_limits(&new_notification(s7, ann, "AUDUSD", later), &hour_limits(later, 3))
            .await
            .unwrap(),
        NotifyOutcome::DailyCapReached
    );

    // An unknown user fails the call, and nothing is written for the others.
    let s8 = signal_id(&store).await;
    let before = store.count_notifications_since(cid, t0() - Duration::days(1)).await.unwrap();
    let missing = store
        .create_notifications_within_limits(&batch(s8, "NZDUSD", later), &all(later, &[cid, UserId(424242)]))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { what: "user", id: 424242 })), "{missing:?}");
    assert_eq!(store.count_notifications_since(cid, t0() - Duration::days(1)).await.unwrap(), before);
}

async fn bulk_routers_racing_respect_uniqueness_and_caps(store: Arc<dyn Store>, _db: &DbGuard) {
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(user(&store, &format!("user {i}")).await);
    }
    let limits: Vec<(UserId, NotificationLimits)> = users.iter().map(|u| (*u, hour_limits(t0(), 3))).collect();

    // Two routers (bulk, bulk and per-user) route the same signal at once: one notification per user.
    let s1 = signal_id(&store).await;
    let bulk = |signal: NotificationBatch, limits: Vec<(UserId, NotificationLimits)>| {
        let store = store.clone();
        tokio::spawn(async move { store.create_notifications_within_limits(&signal, &limits).await.unwrap() })
    };
    let per_user = {
        let (store, limits) = (store.clone(), limits.clone());
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for (user, limits) in limits.iter().rev() {
                let n = new_notification(s1, *user, "EURUSD", t0());
                outcomes.push(store.create_notification_within_limits(&n, limits).await.unwrap());
            }
            outcomes
        })
    };
    let (a, b, c) = tokio::join!(
        bulk(batch(s1, "EURUSD", t0()), limits.clone()),
        bulk(batch(s1, "EURUSD", t0()), limits.clone()),
        per_user
    );
    let outcomes: Vec<NotifyOutcome> = a.unwrap().into_iter().chain(b.unwrap()).chain(c.unwrap()).collect();
    let created = outcomes.iter().filter(|o| matches!(o, NotifyOutcome::Created(_))).count();
    assert_eq!(created, 20, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, NotifyOutcome::AlreadyNotified(_))).count(), 40);
    for user in &users {
        assert_eq!(store.notifications_for_user(*user, 10, 0).await.unwrap().len(), 1);
    }

    // Routers racing over different signals for other pairs: each user's cap of 3 holds exactly.
    let mut handles = Vec::new();
    for symbol in ["GBPUSD", "USDJPY", "XAUUSD", "AUDUSD"] {
        let s = signal_id(&store).await;
        handles.push(bulk(batch(s, symbol, t0()), limits.clone()));
    }
    let mut capped = 0;
    let mut created = 0;
    for handle in handles {
        for outcome in handle.await.unwrap() {
            match outcome {
                NotifyOutcome::Created(_) => created += 1,
                NotifyOutcome::DailyCapReached => capped += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!((created, capped), (40, 40));
    for user in &users {
        assert_eq!(store.count_notifications_since(*user, t0() - Duration::hours(24)).await.unwrap(), 3);
    }
}

async fn open_trade_writes_trade_and_history_together(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let new = eurusd_long(ann, t0());
    let outcome = store.open_trade(&new).await.unwrap();
    assert!(outcome.created);
    let trade = outcome.trade;
    assert_eq!(trade, Trade::from_new(trade.id, new.clone()));
    assert_eq!(store.get_trade(trade.id).await.unwrap(), Some(trade.clone()));

    let history = store.trade_updates(trade.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, TradeUpdateKind::Opened);
    assert_eq!(
        (history[0].price, history[0].stop_loss, history[0].take_profit),
        (Some(p("1.0854")), Some(p("1.08")), Some(p("1.0962")))
    );
    assert_eq!(history[0].created_at, t0());

    // A trade for a user that does not exist is refused, and leaves neither a trade nor a history entry.
    let orphan = eurusd_long(UserId(424242), t0());
    let err = store.open_trade(&orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::MissingReference { .. }), "{err:?}");
    assert_eq!(store.count_trades(&TradeFilter::default()).await.unwrap(), 1);
    assert_eq!(store.last_trade_update_id().await.unwrap(), history[0].id);

    // Levels on the wrong side are refused before anything is written.
    let wrong = NewTrade { stop_loss: Some(p("1.09")), ..new };
    assert!(matches!(store.open_trade(&wrong).await, Err(StoreError::Invalid(_))));
    assert_eq!(store.count_trades(&TradeFilter::default()).await.unwrap(), 1);
    assert_eq!(store.get_trade(TradeId(424242)).await.unwrap(), None);
}

async fn repeated_submit_gives_one_trade(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let s = signal_id(&store).await;
    let n = notification(&store, ann, s).await;
    let new = NewTrade { signal_id: Some(s), notification_id: Some(n), ..eurusd_long(ann, t0()) };
    let first = store.open_trade(&new).await.unwrap();
    assert!(first.created);
    assert_eq!((first.trade.signal_id, first.trade.notification_id), (Some(s), Some(n)));
    let second = store.open_trade(&NewTrade { lots: lots("2"), ..new.clone() }).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.trade, first.trade);

    // Discord delivering the same submit twice at once.
    let n2 = store
        .create_notification(&new_notification(signal_id(&store).await, ann, "EURUSD", t0()))
        .await
        .unwrap()
        .unwrap();
    let new2 = NewTrade { notification_id: Some(n2), ..new };
    let (a, b) = tokio::join!(store.open_trade(&new2), store.open_trade(&new2));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.trade.id, b.trade.id);
    assert!(a.created ^ b.created);

    assert_eq!(store.count_trades(&TradeFilter::default()).await.unwrap(), 2);
    assert_eq!(store.trade_updates(a.trade.id).await.unwrap().len(), 1);
    assert_eq!(store.trade_updates(first.trade.id).await.unwrap().len(), 1);
}

async fn trade_closes_exactly_once(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let trade = open(&store, &eurusd_long(ann, t0())).await;
    let at = t0() + Duration::hours(3);
    let closed = store.close_trade(trade.id, &tp_hit(at)).await.unwrap().unwrap();
    let mut expected = trade.clone();
    expected.close(&tp_hit(at)).unwrap();
    assert_eq!(closed, expected);
    assert_eq!(store.get_trade(trade.id).await.unwrap(), Some(expected.clone()));

    let again = Closing { exit_price: p("1.08"), reason: CloseReason::SlHit, result: TradeResult::Loss, ..tp_hit(at) };
    assert_eq!(store.close_trade(trade.id, &again).await.unwrap(), None);
    assert_eq!(store.cancel_trade(trade.id, at).await.unwrap(), None);
    assert_eq!(store.get_trade(trade.id).await.unwrap(), Some(expected));

    let history = store.trade_updates(trade.id).await.unwrap();
    let kinds: Vec<TradeUpdateKind> = history.iter().map(|u| u.kind).collect();
    assert_eq!(kinds, [TradeUpdateKind::Opened, TradeUpdateKind::Closed]);
    assert_eq!(
        (history[1].price, history[1].note.as_deref(), history[1].created_at),
        (Some(p("1.0962")), Some("tp_hit"), at)
    );

    let missing = store.close_trade(TradeId(424242), &tp_hit(at)).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    let missing = store.cancel_trade(TradeId(424242), at).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");

    // A close whose profit could not be converted yet still closes the trade.
    let other = open(&store, &eurusd_long(ann, t0())).await;
    let no_rate = Closing { profit: None, pips: None, ..tp_hit(at) };
    let closed = store.close_trade(other.id, &no_rate).await.unwrap().unwrap();
    assert_eq!((closed.status, closed.profit, closed.pips), (TradeStatus::Closed, None, None));
}

async fn concurrent_closes_have_one_winner(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    for round in 0..5 {
        let trade = open(&store, &eurusd_long(ann, t0() + Duration::minutes(round))).await;
        let sl = Closing {
            exit_price: p("1.08"),
            reason: CloseReason::SlHit,
            at: t0() + Duration::hours(1),
            result: TradeResult::Loss,
            pips: Some(dec!(-54.0)),
            profit: Some(dec!(-270.00)),
        };
        let tp = tp_hit(t0() + Duration::hours(1));
        let (a, b) = tokio::join!(
            tokio::spawn({
                let store = store.clone();
                async move { store.close_trade(trade.id, &sl).await }
            }),
            tokio::spawn({
                let store = store.clone();
                async move { store.close_trade(trade.id, &tp).await }
            }),
        );
        let results = [a.unwrap().unwrap(), b.unwrap().unwrap()];
        let winners: Vec<&Trade> = results.iter().flatten().collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one close wins");
        let stored = store.get_trade(trade.id).await.unwrap().unwrap();
        assert_eq!(&stored, winners[0]);
        let closes = store
            .trade_updates(trade.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.kind == TradeUpdateKind::Closed)
            .count();
        assert_eq!(closes, 1);
    }
}

async fn cancel_is_once_and_excludes_close(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let trade = open(&store, &eurusd_long(ann, t0())).await;
    let at = t0() + Duration::minutes(1);
    let cancelled = store.cancel_trade(trade.id, at).await.unwrap().unwrap();
    assert_eq!((cancelled.status, cancelled.closed_at, cancelled.exit_price), (TradeStatus::Cancelled, Some(at), None));
    assert_eq!(store.cancel_trade(trade.id, at).await.unwrap(), None);
    assert_eq!(store.close_trade(trade.id, &tp_hit(at)).await.unwrap(), None);
    let kinds: Vec<TradeUpdateKind> =
        store.trade_updates(trade.id).await.unwrap().into_iter().map(|u| u.kind).collect();
    assert_eq!(kinds, [TradeUpdateKind::Opened, TradeUpdateKind::Cancelled]);
    assert!(store.open_trades().await.unwrap().is_empty());
}

async fn decimals_round_trip_exactly(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    // Built field by field: the store must keep any valid Price, whatever an instrument's quoting rules.
    let btc = NewTrade {
        user_id: ann,
        symbol: sym("BTCUSDT"),
        side: Side::Short,
        entry: p("64123.12345678"),
        lots: lots("0.37"),
        stop_loss: Some(p("65000.00000001")),
        take_profit: Some(p("0.00000001")),
        notes: None,
        signal_id: None,
        notification_id: None,
        opened_at: t0(),
    };
    let trade = open(&store, &btc).await;
    let read = store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(read.entry.value().to_string(), "64123.12345678");
    assert_eq!(read.stop_loss.unwrap().value().to_string(), "65000.00000001");
    assert_eq!(read.take_profit.unwrap().value().to_string(), "0.00000001");
    assert_eq!(read.lots.value().to_string(), "0.37");

    let jpy = NewTrade::new(ann, "USDJPY", Side::Short, p("150.5"), lots("1"), None, None, t0()).unwrap();
    let trade = open(&store, &jpy).await;
    let closing = Closing {
        exit_price: p("151"),
        reason: CloseReason::ManualClose,
        at: t0() + Duration::hours(1),
        result: TradeResult::Loss,
        pips: Some(dec!(-50.0)),
        profit: Some(dec!(-332.23)),
    };
    store.close_trade(trade.id, &closing).await.unwrap().unwrap();
    let read = store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(read.profit.unwrap().to_string(), "-332.23");
    assert_eq!(read.pips.unwrap(), dec!(-50));

    let eur =
        NewTrade::new(ann, "EURUSD", Side::Long, p("1.08545"), lots("0.01"), Some(p("1.08001")), None, t0()).unwrap();
    let trade = open(&store, &eur).await;
    let read = store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(read.entry.value().to_string(), "1.08545");
    assert_eq!(read.stop_loss.unwrap().value().to_string(), "1.08001");

    let ann_settings = UserSettings { min_confidence: dec!(0.123456789), ..UserSettings::default() };
    store.save_settings(ann, &ann_settings).await.unwrap();
    assert_eq!(store.get_settings(ann).await.unwrap().min_confidence.to_string(), "0.123456789");

    let huge: Decimal = dec!(9999999999.99999999);
    let sig = Signal {
        symbol: sym("BTCUSDT"),
        entry: Entry::Price { price: Price::new(huge).unwrap() },
        stop_loss: Some(p("64123.12345678")),
        take_profits: vec![],
        confidence: Some(dec!(0.999999)),
        ..signal("BTCUSDT", t0())
    };
    let (id, _) = store.insert_signal(&sig, None).await.unwrap();
    let read = store.get_signal(id).await.unwrap().unwrap().signal;
    assert_eq!(read, sig);
    assert_eq!(read.stage2_prob, Some(0.7345));
}

async fn trades_list_filter_and_page(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let mut ann_trades = Vec::new();
    for i in 0..5 {
        let symbol = if i % 2 == 0 { "EURUSD" } else { "XAUUSD" };
        let entry = if symbol == "EURUSD" { "1.0854" } else { "2345.5" };
        let new = NewTrade::new(ann, symbol, Side::Long, p(entry), lots("1"), None, None, t0() + Duration::minutes(i))
            .unwrap();
        ann_trades.push(open(&store, &new).await.id);
    }
    let bob_trade = open(&store, &eurusd_long(bob, t0() + Duration::minutes(30))).await.id;
    store.close_trade(ann_trades[0], &tp_hit(t0() + Duration::hours(1))).await.unwrap().unwrap();
    store.cancel_trade(ann_trades[1], t0() + Duration::hours(1)).await.unwrap().unwrap();

    let ids = |trades: Vec<Trade>| trades.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let all = store.list_trades(&TradeFilter::default()).await.unwrap();
    assert_eq!(ids(all), [bob_trade, ann_trades[4], ann_trades[3], ann_trades[2], ann_trades[1], ann_trades[0]]);

    let mine = TradeFilter { user_id: Some(ann), ..TradeFilter::default() };
    assert_eq!(store.count_trades(&mine).await.unwrap(), 5);
    let page1 = store.list_trades(&TradeFilter { limit: 2, offset: 0, ..mine.clone() }).await.unwrap();
    let page2 = store.list_trades(&TradeFilter { limit: 2, offset: 2, ..mine.clone() }).await.unwrap();
    let page3 = store.list_trades(&TradeFilter { limit: 2, offset: 4, ..mine.clone() }).await.unwrap();
    assert_eq!(ids(page1), [ann_trades[4], ann_trades[3]]);
    assert_eq!(ids(page2), [ann_trades[2], ann_trades[1]]);
    assert_eq!(ids(page3), [ann_trades[0]]);

    let open_mine = TradeFilter { status: Some(TradeStatus::Open), ..mine.clone() };
    assert_eq!(ids(store.list_trades(&open_mine).await.unwrap()), [ann_trades[4], ann_trades[3], ann_trades[2]]);
    let gold = TradeFilter { symbol: Some(sym("xau/usd")), ..mine.clone() };
    assert_eq!(ids(store.list_trades(&gold).await.unwrap()), [ann_trades[3], ann_trades[1]]);
    let closed_eur =
        TradeFilter { status: Some(TradeStatus::Closed), symbol: Some(sym("EURUSD")), ..TradeFilter::default() };
    assert_eq!(ids(store.list_trades(&closed_eur).await.unwrap()), [ann_trades[0]]);
    assert_eq!(store.count_trades(&closed_eur).await.unwrap(), 1);
    let nobody = TradeFilter { user_id: Some(UserId(424242)), ..TradeFilter::default() };
    assert!(store.list_trades(&nobody).await.unwrap().is_empty());
    assert_eq!(store.count_trades(&nobody).await.unwrap(), 0);
}

async fn open_trades_and_tailing(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(open(&store, &eurusd_long(ann, t0() + Duration::minutes(i))).await.id);
    }
    store.close_trade(ids[1], &tp_hit(t0() + Duration::hours(1))).await.unwrap().unwrap();
    let open_ids: Vec<TradeId> = store.open_trades().await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(open_ids, [ids[0], ids[2], ids[3]]);
    assert_eq!(store.open_trade_ids().await.unwrap(), open_ids);
    let after: Vec<TradeId> = store.open_trades_after(ids[0]).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(after, [ids[2], ids[3]]);
    assert!(store.open_trades_after(ids[3]).await.unwrap().is_empty());
    let from_start: Vec<TradeId> =
        store.open_trades_after(TradeId(0)).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(from_start, open_ids);
}

async fn levels_move_only_on_open_trades_and_right_sides(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let trade = open(&store, &eurusd_long(ann, t0())).await;
    let at = t0() + Duration::minutes(5);

    // Breakeven: only the stop loss changes.
    let moved = store.set_trade_levels(trade.id, Some(p("1.0854")), Some(p("1.0962")), at).await;
    assert!(matches!(moved, Err(StoreError::Invalid(_))), "a long's stop loss at its entry is refused: {moved:?}");
    let moved = store.set_trade_levels(trade.id, Some(p("1.085")), Some(p("1.0962")), at).await.unwrap().unwrap();
    assert_eq!((moved.stop_loss, moved.take_profit), (Some(p("1.085")), Some(p("1.0962"))));
    // No change: nothing recorded.
    store.set_trade_levels(trade.id, Some(p("1.085")), Some(p("1.0962")), at).await.unwrap().unwrap();
    // Both change, and the take profit is removed.
    let moved = store.set_trade_levels(trade.id, Some(p("1.0852")), None, at).await.unwrap().unwrap();
    assert_eq!((moved.stop_loss, moved.take_profit), (Some(p("1.0852")), None));
    assert_eq!(store.get_trade(trade.id).await.unwrap(), Some(moved));

    let kinds: Vec<TradeUpdateKind> =
        store.trade_updates(trade.id).await.unwrap().into_iter().map(|u| u.kind).collect();
    assert_eq!(
        kinds,
        [
            TradeUpdateKind::Opened,
            TradeUpdateKind::StopLossMoved,
            TradeUpdateKind::StopLossMoved,
            TradeUpdateKind::TakeProfitMoved
        ]
    );

    store.close_trade(trade.id, &tp_hit(at)).await.unwrap().unwrap();
    assert_eq!(store.set_trade_levels(trade.id, Some(p("1.07")), None, at).await.unwrap(), None);
    let missing = store.set_trade_levels(TradeId(424242), None, None, at).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
}

async fn history_entries_and_change_feed(store: Arc<dyn Store>, _db: &DbGuard) {
    assert_eq!(store.last_trade_update_id().await.unwrap(), TradeUpdateId(0));
    let ann = user(&store, "ann").await;
    let first = open(&store, &eurusd_long(ann, t0())).await;
    let cursor = store.last_trade_update_id().await.unwrap();

    let snapshot = NewTradeUpdate {
        trade_id: first.id,
        kind: TradeUpdateKind::PriceSnapshot,
        price: Some(p("1.0901")),
        stop_loss: None,
        take_profit: None,
        note: Some("+47 pips".into()),
        at: t0() + Duration::minutes(15),
    };
    let stored = store.add_trade_update(&snapshot).await.unwrap();
    assert_eq!(
        (stored.kind, stored.price, stored.note.as_deref()),
        (TradeUpdateKind::PriceSnapshot, Some(p("1.0901")), Some("+47 pips"))
    );
    assert_eq!(stored.created_at, t0() + Duration::minutes(15));
    for kind in
        [TradeUpdateKind::Opened, TradeUpdateKind::Closed, TradeUpdateKind::Cancelled, TradeUpdateKind::StopLossMoved]
    {
        let err = store.add_trade_update(&NewTradeUpdate { kind, ..snapshot.clone() }).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{kind}: {err:?}");
    }
    let orphan = store.add_trade_update(&NewTradeUpdate { trade_id: TradeId(424242), ..snapshot }).await;
    assert!(matches!(orphan, Err(StoreError::MissingReference { .. })), "{orphan:?}");

    // What a monitor in another process sees after its cursor: a new trade, then a close.
    let second = open(&store, &eurusd_long(ann, t0() + Duration::minutes(20))).await;
    store.close_trade(first.id, &tp_hit(t0() + Duration::minutes(30))).await.unwrap().unwrap();
    let feed = store.trade_updates_after(cursor, 100).await.unwrap();
    let events: Vec<(TradeId, TradeUpdateKind)> = feed.iter().map(|u| (u.trade_id, u.kind)).collect();
    assert_eq!(
        events,
        [
            (first.id, TradeUpdateKind::PriceSnapshot),
            (second.id, TradeUpdateKind::Opened),
            (first.id, TradeUpdateKind::Closed)
        ]
    );
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id));
    let page = store.trade_updates_after(cursor, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    let rest = store.trade_updates_after(page[1].id, 100).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(store.last_trade_update_id().await.unwrap(), rest[0].id);
}

async fn last_price_is_upserted(store: Arc<dyn Store>, _db: &DbGuard) {
    assert_eq!(store.last_price(&sym("EURUSD")).await.unwrap(), None);
    let tick = |bid: &str, ask: &str, secs: i64| Tick {
        symbol: sym("EURUSD"),
        time: t0() + Duration::seconds(secs),
        bid: p(bid),
        ask: p(ask),
        synthetic_from: None,
    };
    store.set_last_price(&tick("1.08541", "1.08543", 0)).await.unwrap();
    assert_eq!(store.last_price(&sym("EURUSD")).await.unwrap(), Some(tick("1.08541", "1.08543", 0)));
    store.set_last_price(&tick("1.08545", "1.08547", 1)).await.unwrap();
    assert_eq!(store.last_price(&sym("EURUSD")).await.unwrap(), Some(tick("1.08545", "1.08547", 1)));
    let btc = Tick { symbol: sym("BTCUSDT"), bid: p("64123.12345678"), ask: p("64123.5"), ..tick("1", "1", 2) };
    store.set_last_price(&btc).await.unwrap();
    assert_eq!(store.last_price(&sym("BTCUSDT")).await.unwrap(), Some(btc));
    assert_eq!(store.last_price(&sym("EURUSD")).await.unwrap(), Some(tick("1.08545", "1.08547", 1)));
    // Sub-microsecond digits are dropped the same way on both backends.
    let precise = Tick { time: t0() + Duration::nanoseconds(1_234_567), ..tick("1.1", "1.2", 0) };
    store.set_last_price(&precise).await.unwrap();
    assert_eq!(store.last_price(&sym("EURUSD")).await.unwrap().unwrap().time, t0() + Duration::microseconds(1_234));
}

async fn corrupt_rows_are_errors_not_panics(store: Arc<dyn Store>, db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let (sid, _) = store.insert_signal(&signal("EURUSD", t0()), None).await.unwrap();
    raw_execute(db, "UPDATE signals SET take_profits = '[oops' WHERE id = $1", sid.0).await;
    let err = store.get_signal(sid).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { column, .. } if column == "take_profits"), "{err:?}");
    assert!(store.recent_signals(10).await.is_err());

    raw_execute(db, "UPDATE signals SET take_profits = '[]', source = 'carrier-pigeon' WHERE id = $1", sid.0).await;
    let err = store.get_signal(sid).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { column, .. } if column == "source"), "{err:?}");
    assert!(err.to_string().contains("carrier-pigeon"), "{err}");

    // Numbers the types refuse: lots above the maximum, a negative price.
    let trade = open(&store, &eurusd_long(ann, t0())).await;
    raw_execute(db, "UPDATE user_trades SET lots = 1000 WHERE id = $1", trade.id.0).await;
    let err = store.get_trade(trade.id).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { column, .. } if column == "lots"), "{err:?}");
    raw_execute(db, "UPDATE user_trades SET lots = 1, entry = -1 WHERE id = $1", trade.id.0).await;
    let err = store.get_trade(trade.id).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { column, .. } if column == "entry"), "{err:?}");
    assert!(store.list_trades(&TradeFilter::default()).await.is_err());

    if !db.is_postgres() {
        // Only SQLite can hold text where a decimal belongs.
        let trade = open(&store, &eurusd_long(ann, t0())).await;
        raw_execute(db, "UPDATE user_trades SET entry = 'garbage' WHERE id = $1", trade.id.0).await;
        let err = store.get_trade(trade.id).await.unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt { column, .. } if column == "entry"), "{err:?}");
        assert!(err.to_string().contains("garbage"), "{err}");
        assert!(store.open_trades().await.is_err());
    }
}

// ---------- linking Discord accounts ----------

fn linked_id(outcome: &LinkOutcome) -> Option<UserId> {
    match outcome {
        LinkOutcome::Linked(user) => Some(user.id),
        _ => None,
    }
}

async fn link_codes_link_once_and_expire(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let expires = t0() + Duration::minutes(15);
    store.create_link_code(ann, "hash-ann", expires).await.unwrap();
    store.create_link_code(bob, "hash-bob", expires).await.unwrap();

    assert_eq!(store.redeem_link_code("no-such-hash", "3001", t0()).await.unwrap(), LinkOutcome::InvalidCode);
    let linked = store.redeem_link_code("hash-ann", "3001", t0() + Duration::minutes(1)).await.unwrap();
    let LinkOutcome::Linked(linked) = linked else { panic!("{linked:?}") };
    assert_eq!((linked.id, linked.discord_user_id.as_deref()), (ann, Some("3001")));
    assert_eq!(store.user_by_discord_id("3001").await.unwrap().map(|u| u.id), Some(ann));
    assert_eq!(store.get_user(ann).await.unwrap(), Some(linked));

    // Spent: neither the same Discord account nor another one can use it again.
    for discord in ["3001", "3002"] {
        let again = store.redeem_link_code("hash-ann", discord, t0() + Duration::minutes(2)).await.unwrap();
        assert_eq!(again, LinkOutcome::InvalidCode, "{discord}");
    }
    assert_eq!(store.user_by_discord_id("3002").await.unwrap(), None);

    // Expiry is exclusive: at the instant it expires the code is already dead; nothing is written.
    for at in [expires, expires + Duration::microseconds(1), expires + Duration::hours(1)] {
        assert_eq!(store.redeem_link_code("hash-bob", "3003", at).await.unwrap(), LinkOutcome::InvalidCode);
    }
    assert_eq!(store.get_user(bob).await.unwrap().unwrap().discord_user_id, None);
    let just_in_time = store.redeem_link_code("hash-bob", "3003", expires - Duration::microseconds(1)).await.unwrap();
    assert_eq!(linked_id(&just_in_time), Some(bob));

    let missing = store.create_link_code(UserId(424242), "hash-nobody", expires).await;
    assert!(matches!(missing, Err(StoreError::MissingReference { .. })), "{missing:?}");
    let blank = store.create_link_code(ann, " ", expires).await;
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");
}

async fn link_codes_replace_older_ones(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let expires = t0() + Duration::minutes(15);
    store.create_link_code(ann, "first", expires).await.unwrap();
    store.create_link_code(ann, "second", expires).await.unwrap();
    store.create_link_code(bob, "bobs", expires).await.unwrap();
    assert_eq!(store.redeem_link_code("first", "4001", t0()).await.unwrap(), LinkOutcome::InvalidCode);
    // Another user's new code does not touch Ann's.
    assert_eq!(linked_id(&store.redeem_link_code("second", "4001", t0()).await.unwrap()), Some(ann));
    let taken = store.create_link_code(ann, "bobs", expires).await;
    assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
    assert_eq!(linked_id(&store.redeem_link_code("bobs", "4002", t0()).await.unwrap()), Some(bob));

    // Relinking moves the user to the new Discord account.
    store.create_link_code(ann, "third", expires).await.unwrap();
    assert_eq!(linked_id(&store.redeem_link_code("third", "4003", t0()).await.unwrap()), Some(ann));
    assert_eq!(store.user_by_discord_id("4001").await.unwrap(), None);
    assert_eq!(store.user_by_discord_id("4003").await.unwrap().map(|u| u.id), Some(ann));
}

async fn link_codes_refuse_a_discord_account_linked_elsewhere(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = store
        .create_user(&NewUser { discord_user_id: Some("5001".into()), display_name: "ann".into(), role: Role::User })
        .await
        .unwrap();
    let bob = user(&store, "bob").await;
    let expires = t0() + Duration::minutes(15);
    store.create_link_code(bob, "bobs", expires).await.unwrap();
    assert_eq!(store.redeem_link_code("bobs", "5001", t0()).await.unwrap(), LinkOutcome::DiscordAccountTaken);
    assert_eq!(store.get_user(bob).await.unwrap().unwrap().discord_user_id, None);
    assert_eq!(store.user_by_discord_id("5001").await.unwrap(), Some(ann.clone()));
    // The refusal did not spend Bob's code.
    assert_eq!(linked_id(&store.redeem_link_code("bobs", "5002", t0()).await.unwrap()), Some(bob));

    // Linking the account a user already carries is no conflict.
    store.create_link_code(ann.id, "anns", expires).await.unwrap();
    assert_eq!(linked_id(&store.redeem_link_code("anns", "5001", t0()).await.unwrap()), Some(ann.id));
}

async fn concurrent_redeems_link_once(store: Arc<dyn Store>, _db: &DbGuard) {
    let ann = user(&store, "ann").await;
    store.create_link_code(ann, "race", t0() + Duration::minutes(15)).await.unwrap();
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.redeem_link_code("race", &format!("600{i}"), t0()).await.unwrap() })
        })
        .collect();
    let mut linked = Vec::new();
    for attempt in attempts {
        if let LinkOutcome::Linked(user) = attempt.await.unwrap() {
            linked.push(user);
        }
    }
    assert_eq!(linked.len(), 1, "{linked:?}");
    let winner = linked[0].discord_user_id.clone().unwrap();
    assert_eq!(store.user_by_discord_id(&winner).await.unwrap().map(|u| u.id), Some(ann));
}

// ---------- candles ----------

mod candles {
    use super::*;
    use domain::Candle;

    contract!(
        candles_are_stored_once_and_read_oldest_first,
        candles_are_kept_per_series_and_bounded_by_time,
        invalid_candles_store_nothing,
    );

    fn candle(hour: i64, close: Decimal) -> Candle {
        Candle {
            time: t0() + Duration::hours(hour),
            open: dec!(1.08540),
            high: close.max(dec!(1.08540)) + dec!(0.00010),
            low: close.min(dec!(1.08540)) - dec!(0.00010),
            close,
            volume: dec!(1234.5),
        }
    }

    fn eurusd() -> Symbol {
        Symbol::normalize("EURUSD")
    }

    async fn candles_are_stored_once_and_read_oldest_first(store: Arc<dyn Store>, _db: &DbGuard) {
        let series: Vec<Candle> = (0..5).map(|h| candle(h, dec!(1.08550) + Decimal::from(h) / dec!(10000))).collect();
        store.save_candles(&eurusd(), Timeframe::H1, &series).await.unwrap();
        // A replay of the same candles, one of them corrected, and a repeat inside one call: each open time once.
        let mut again = series[2..].to_vec();
        again[0].close = dec!(1.08612345);
        again[0].high = dec!(1.08700);
        again.push(again[2].clone());
        store.save_candles(&eurusd(), Timeframe::H1, &again).await.unwrap();
        store.save_candles(&eurusd(), Timeframe::H1, &[]).await.unwrap();

        let far = t0() + Duration::days(30);
        let stored = store.recent_candles(&eurusd(), Timeframe::H1, far, 100).await.unwrap();
        assert_eq!(stored.len(), 5, "{stored:?}");
        assert_eq!(
            stored.iter().map(|c| c.time).collect::<Vec<_>>(),
            series.iter().map(|c| c.time).collect::<Vec<_>>()
        );
        assert_eq!(stored[0], series[0], "every digit survives");
        assert_eq!(stored[2].close, dec!(1.08612345), "the later save wins");
        assert_eq!(stored[2].high, dec!(1.08700));
        assert_eq!(stored[4].volume, dec!(1234.5));
        assert_eq!(store.last_candle_time(&eurusd(), Timeframe::H1).await.unwrap(), Some(t0() + Duration::hours(4)));
    }

    async fn candles_are_kept_per_series_and_bounded_by_time(store: Arc<dyn Store>, _db: &DbGuard) {
        assert_eq!(store.last_candle_time(&eurusd(), Timeframe::H1).await.unwrap(), None);
        assert!(store.recent_candles(&eurusd(), Timeframe::H1, t0(), 10).await.unwrap().is_empty());
        let hours: Vec<Candle> = (0..10).map(|h| candle(h, dec!(1.08600))).collect();
        store.save_candles(&eurusd(), Timeframe::H1, &hours).await.unwrap();
        store.save_candles(&eurusd(), Timeframe::H4, &[candle(0, dec!(1.09))]).await.unwrap();
        store.save_candles(&Symbol::normalize("GBPUSD"), Timeframe::H1, &[candle(20, dec!(1.27))]).await.unwrap();

        // The latest three that opened at or before 06:00 (inclusive), oldest first.
        let until = t0() + Duration::hours(6);
        let window = store.recent_candles(&eurusd(), Timeframe::H1, until, 3).await.unwrap();
        let times: Vec<i64> = window.iter().map(|c| (c.time - t0()).num_hours()).collect();
        assert_eq!(times, vec![4, 5, 6]);
        let h4 = store.recent_candles(&eurusd(), Timeframe::H4, until, 10).await.unwrap();
        assert_eq!(h4.len(), 1);
        assert_eq!(h4[0].close, dec!(1.09));
        assert_eq!(store.last_candle_time(&eurusd(), Timeframe::H1).await.unwrap(), Some(t0() + Duration::hours(9)));
        assert_eq!(
            store.last_candle_time(&Symbol::normalize("GBPUSD"), Timeframe::H1).await.unwrap(),
            Some(t0() + Duration::hours(20))
        );
        assert_eq!(store.last_candle_time(&Symbol::normalize("GBPUSD"), Timeframe::D1).await.unwrap(), None);
        // Large batches go through in several statements.
        let many: Vec<Candle> = (100..2600).map(|h| candle(h, dec!(1.1))).collect();
        store.save_candles(&eurusd(), Timeframe::H1, &many).await.unwrap();
        let all = store.recent_candles(&eurusd(), Timeframe::H1, t0() + Duration::days(365), 5000).await.unwrap();
        assert_eq!(all.len(), 2510);
        assert!(all.windows(2).all(|w| w[0].time < w[1].time));
    }

    async fn invalid_candles_store_nothing(store: Arc<dyn Store>, _db: &DbGuard) {
        let good = candle(0, dec!(1.0860));
        let mut bad = candle(1, dec!(1.0860));
        bad.high = dec!(1.0);
        let err = store.save_candles(&eurusd(), Timeframe::H1, &[good, bad]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("EURUSD"), "{err}");
        assert_eq!(store.last_candle_time(&eurusd(), Timeframe::H1).await.unwrap(), None);
    }
}

// ---------- fan-out: the router lease and signal audiences (issue 4) ----------

mod fanout {
    use super::*;
    use store::{AudienceOutcome, MaterialiseProgress, NewAudience, RouterLease};

    contract!(
        the_router_lease_has_one_holder_at_a_time,
        audiences_are_recorded_once_fenced_and_materialised_once,
        materialisers_racing_write_each_notification_once,
        routing_changes_report_settings_and_limit_changes,
        counted_notifications_leave_out_given_up_and_older_ones,
    );

    fn ttl() -> Duration {
        Duration::seconds(10)
    }

    fn audience(signal_id: SignalId, recipients: &[UserId]) -> NewAudience {
        NewAudience { signal_id, symbol: sym("EURUSD"), created_at: t0(), recipients: recipients.to_vec() }
    }

    async fn lease(store: &Arc<dyn Store>, holder: &str) -> RouterLease {
        store.acquire_router_lease(holder, t0(), ttl()).await.unwrap().expect("the lease is free")
    }

    async fn the_router_lease_has_one_holder_at_a_time(store: Arc<dyn Store>, _db: &DbGuard) {
        let a1 = lease(&store, "a").await;
        assert_eq!((a1.holder.as_str(), a1.expires_at), ("a", t0() + ttl()));
        assert_eq!(store.acquire_router_lease("b", t0() + Duration::seconds(9), ttl()).await.unwrap(), None);
        // Taking it again starts a new epoch: whatever the holder knew before is stale.
        let a2 = store.acquire_router_lease("a", t0(), ttl()).await.unwrap().unwrap();
        assert!(a2.epoch > a1.epoch);
        assert_eq!(store.renew_router_lease(&a1, t0(), ttl()).await.unwrap(), None, "an old epoch cannot renew");
        let renewed = store.renew_router_lease(&a2, t0() + Duration::seconds(5), ttl()).await.unwrap().unwrap();
        assert_eq!((renewed.epoch, renewed.expires_at), (a2.epoch, t0() + Duration::seconds(15)));
        assert_eq!(store.acquire_router_lease("b", t0() + Duration::seconds(14), ttl()).await.unwrap(), None);

        // Expired, it goes to whoever asks; the old holder can neither renew nor release it.
        let b = store.acquire_router_lease("b", t0() + Duration::seconds(15), ttl()).await.unwrap().unwrap();
        assert!(b.epoch > a2.epoch);
        assert_eq!(store.renew_router_lease(&a2, t0() + Duration::seconds(16), ttl()).await.unwrap(), None);
        store.release_router_lease(&a2).await.unwrap();
        assert_eq!(store.acquire_router_lease("c", t0() + Duration::seconds(16), ttl()).await.unwrap(), None);
        // Released, it is free at once.
        store.release_router_lease(&b).await.unwrap();
        let c = store.acquire_router_lease("c", t0() + Duration::seconds(16), ttl()).await.unwrap().unwrap();
        assert!(c.epoch > b.epoch);
        assert_eq!(store.take_routing_changes(&b).await.unwrap(), None, "a released lease is not held");

        let bad = store.acquire_router_lease("d", t0(), Duration::zero()).await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
        let bad = store.acquire_router_lease(" ", t0(), ttl()).await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

        // Many takers at once: exactly one wins.
        let later = t0() + Duration::hours(1);
        let mut takers = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            takers.push(tokio::spawn(async move {
                store.acquire_router_lease(&format!("taker {i}"), later, Duration::seconds(10)).await.unwrap()
            }));
        }
        let mut won = 0;
        for taker in takers {
            won += usize::from(taker.await.unwrap().is_some());
        }
        assert_eq!(won, 1);
    }

    async fn audiences_are_recorded_once_fenced_and_materialised_once(store: Arc<dyn Store>, _db: &DbGuard) {
        let (ann, bob, cid) = (user(&store, "ann").await, user(&store, "bob").await, user(&store, "cid").await);
        let held = lease(&store, "router").await;
        let s1 = signal_id(&store).await;
        // cid was notified about s1 some other way: the audience does not write a second one.
        let earlier = notification(&store, cid, s1).await;
        assert_eq!(
            store.record_audience(&held, &audience(s1, &[cid, bob, ann, bob]), t0(), ttl()).await.unwrap(),
            AudienceOutcome::Recorded
        );
        assert_eq!(
            store.record_audience(&held, &audience(s1, &[ann]), t0(), ttl()).await.unwrap(),
            AudienceOutcome::AlreadyRouted { recipients: 3 },
            "a signal is routed once"
        );
        // Recording extended the lease.
        assert_eq!(store.acquire_router_lease("other", t0() + Duration::seconds(9), ttl()).await.unwrap(), None);

        // Durable but not yet materialised: the inbox and the outbox do not see it.
        let pending = store.pending_audiences(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].signal_id, pending[0].recipients, pending[0].materialised), (s1, 3, 0));
        assert!(store.notifications_for_user(ann, 10, 0).await.unwrap().is_empty());
        assert_eq!(store.queued_notifications(10).await.unwrap().len(), 1, "only cid's earlier one");

        // Ascending user ids, two at a time.
        assert_eq!(store.materialise_audience(s1, 2).await.unwrap(), MaterialiseProgress { created: 2, remaining: 1 });
        assert_eq!(store.pending_audiences(10).await.unwrap()[0].materialised, 2);
        assert_eq!(
            store.materialise_audience(s1, 2).await.unwrap(),
            MaterialiseProgress { created: 0, remaining: 0 },
            "cid already had one"
        );
        assert!(store.pending_audiences(10).await.unwrap().is_empty());
        assert_eq!(store.materialise_audience(s1, 2).await.unwrap(), MaterialiseProgress::default());
        for user in [ann, bob, cid] {
            let inbox = store.notifications_for_user(user, 10, 0).await.unwrap();
            assert_eq!(inbox.len(), 1, "{inbox:?}");
            let n = store.get_notification(inbox[0].id).await.unwrap().unwrap();
            assert_eq!((n.signal_id, n.user_id, n.symbol.as_str(), n.created_at), (s1, user, "EURUSD", t0()));
            assert_eq!(n.status, NotificationStatus::Queued);
        }
        assert_eq!(store.notifications_for_user(cid, 10, 0).await.unwrap()[0].id, earlier);
        assert_eq!(store.queued_notifications(10).await.unwrap().len(), 3);

        // A router whose lease was taken over writes nothing.
        let s2 = signal_id(&store).await;
        let later = t0() + Duration::minutes(5);
        let taken = store.acquire_router_lease("successor", later, ttl()).await.unwrap().unwrap();
        assert_eq!(
            store.record_audience(&held, &audience(s2, &[ann]), later, ttl()).await.unwrap(),
            AudienceOutcome::LeaseLost
        );
        assert!(store.pending_audiences(10).await.unwrap().is_empty());
        // The successor routes it; an empty audience still marks the signal routed and has nothing pending.
        assert_eq!(
            store.record_audience(&taken, &audience(s2, &[]), later, ttl()).await.unwrap(),
            AudienceOutcome::Recorded
        );
        assert_eq!(
            store.record_audience(&taken, &audience(s2, &[ann]), later, ttl()).await.unwrap(),
            AudienceOutcome::AlreadyRouted { recipients: 0 }
        );
        assert!(store.pending_audiences(10).await.unwrap().is_empty());

        let missing = store.materialise_audience(SignalId(424242), 10).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
        let unknown_user = store.record_audience(&taken, &audience(SignalId(424242), &[ann]), later, ttl()).await;
        assert!(unknown_user.is_err(), "an audience needs a stored signal: {unknown_user:?}");
    }

    async fn materialisers_racing_write_each_notification_once(store: Arc<dyn Store>, _db: &DbGuard) {
        let mut users = Vec::new();
        for i in 0..50 {
            users.push(user(&store, &format!("user {i}")).await);
        }
        let held = lease(&store, "router").await;
        let s = signal_id(&store).await;
        store.record_audience(&held, &audience(s, &users), t0(), ttl()).await.unwrap();
        let materialise = || {
            let store = store.clone();
            tokio::spawn(async move {
                let mut created = 0;
                loop {
                    let progress = store.materialise_audience(s, 7).await.unwrap();
                    created += progress.created;
                    if progress.remaining == 0 {
                        return created;
                    }
                }
            })
        };
        let (a, b, c) = tokio::join!(materialise(), materialise(), materialise());
        assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 50);
        for user in &users {
            assert_eq!(store.notifications_for_user(*user, 10, 0).await.unwrap().len(), 1);
        }
        assert!(store.pending_audiences(10).await.unwrap().is_empty());
    }

    async fn routing_changes_report_settings_and_limit_changes(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let held = lease(&store, "router").await;
        let first = store.take_routing_changes(&held).await.unwrap().unwrap();
        let quiet = store.take_routing_changes(&held).await.unwrap().unwrap();
        assert_eq!(quiet.users_version, first.users_version);
        assert!(quiet.limit_changes.is_empty());

        // Any change to a user or their settings moves the version.
        store.save_settings(ann, &UserSettings { min_confidence: dec!(0.9), ..UserSettings::default() }).await.unwrap();
        let after_settings = store.take_routing_changes(&held).await.unwrap().unwrap().users_version;
        assert_ne!(after_settings, first.users_version);
        let bob = user(&store, "bob").await;
        let after_user = store.take_routing_changes(&held).await.unwrap().unwrap().users_version;
        assert_ne!(after_user, after_settings);
        store
            .update_user(bob, &UserUpdate { display_name: Some("Bob".into()), ..UserUpdate::default() })
            .await
            .unwrap();
        assert_ne!(store.take_routing_changes(&held).await.unwrap().unwrap().users_version, after_user);

        // A notification written outside an audience counts; one given up stops counting; a retry does not
        // change anything; notifications written from an audience are the router's own and are not logged.
        let s1 = signal_id(&store).await;
        let n1 = notification(&store, ann, s1).await;
        let s2 = signal_id(&store).await;
        store.record_audience(&held, &audience(s2, &[ann, bob]), t0(), ttl()).await.unwrap();
        store.materialise_audience(s2, 10).await.unwrap();
        let from_audience = store.notifications_for_user(bob, 10, 0).await.unwrap()[0].id;
        store.mark_notification_failed(n1, "try again", true).await.unwrap();
        store.mark_notification_failed(from_audience, "Discord error 50007", false).await.unwrap();
        store.mark_notification_sent(from_audience, "m1", t0()).await.unwrap();

        // A router that lost the lease consumes nothing.
        let successor = store.acquire_router_lease("router", t0(), ttl()).await.unwrap().unwrap();
        assert_eq!(store.take_routing_changes(&held).await.unwrap(), None);
        let changes = store.take_routing_changes(&successor).await.unwrap().unwrap().limit_changes;
        let seen: Vec<(SignalId, UserId, bool)> =
            changes.iter().map(|c| (c.notification.signal_id, c.notification.user_id, c.counts)).collect();
        assert_eq!(seen, vec![(s1, ann, true), (s2, bob, false), (s2, bob, true)]);
        assert_eq!(changes[0].notification.symbol, sym("EURUSD"));
        assert_eq!(changes[0].notification.created_at, t0());
        assert!(store.take_routing_changes(&successor).await.unwrap().unwrap().limit_changes.is_empty());
    }

    async fn counted_notifications_leave_out_given_up_and_older_ones(store: Arc<dyn Store>, _db: &DbGuard) {
        let (ann, bob) = (user(&store, "ann").await, user(&store, "bob").await);
        let s = signal_id(&store).await;
        let old = new_notification(s, ann, "EURUSD", t0() - Duration::days(2));
        store.create_notification(&old).await.unwrap();
        let given_up = store.create_notification(&new_notification(s, bob, "EURUSD", t0())).await.unwrap().unwrap();
        store.mark_notification_failed(given_up, "gave up", false).await.unwrap();
        let s2 = signal_id(&store).await;
        store.create_notification(&new_notification(s2, bob, "GBPUSD", t0())).await.unwrap();
        let counted = store.counted_notifications_since(t0() - Duration::days(1)).await.unwrap();
        assert_eq!(counted.len(), 1, "{counted:?}");
        assert_eq!(
            (counted[0].signal_id, counted[0].user_id, counted[0].symbol.as_str(), counted[0].created_at),
            (s2, bob, "GBPUSD", t0())
        );
        assert_eq!(store.counted_notifications_since(t0() - Duration::days(3)).await.unwrap().len(), 2);
    }
}

// ---------- dashboard sign-in: local credentials, sessions, one-time links (issue 5) ----------

mod web_sign_in {
    use super::*;
    use store::{NewWebSession, OAuthPending};

    contract!(
        local_credentials_are_unique_per_username_and_replaced_per_user,
        sessions_round_trip_expire_and_end,
        pre_sessions_carry_oauth_state_and_are_taken_once,
        sign_in_tokens_work_once_until_they_expire,
        concurrent_sign_in_token_redeems_have_one_winner,
    );

    fn session(id: &str, user: Option<UserId>, expires_at: DateTime<Utc>) -> NewWebSession {
        NewWebSession {
            id_hash: id.into(),
            user_id: user,
            csrf_token: format!("csrf-{id}"),
            oauth: None,
            next_path: None,
            created_at: t0(),
            expires_at,
        }
    }

    async fn local_credentials_are_unique_per_username_and_replaced_per_user(store: Arc<dyn Store>, _db: &DbGuard) {
        let (ann, ben) = (user(&store, "ann").await, user(&store, "ben").await);
        assert_eq!(store.local_credentials(ann).await.unwrap(), None);
        store.set_local_credentials(ann, "ann", None, t0()).await.unwrap();
        let stored = store.local_credentials_by_username("ann").await.unwrap().unwrap();
        assert_eq!((stored.user_id, stored.password_hash), (ann, None));
        store.set_local_credentials(ann, "ann", Some("$argon2id$hash"), t0()).await.unwrap();
        assert_eq!(
            store.local_credentials(ann).await.unwrap().unwrap().password_hash.as_deref(),
            Some("$argon2id$hash")
        );
        assert!(!format!("{:?}", store.local_credentials(ann).await.unwrap()).contains("argon2id"), "Debug hides it");

        let taken = store.set_local_credentials(ben, "ann", Some("$argon2id$other"), t0()).await;
        assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
        assert_eq!(store.local_credentials(ben).await.unwrap(), None, "nothing was stored for ben");
        let missing = store.set_local_credentials(UserId(9999), "ghost", None, t0()).await;
        assert!(matches!(missing, Err(StoreError::MissingReference { .. })), "{missing:?}");
        assert!(matches!(store.set_local_credentials(ben, " ", None, t0()).await, Err(StoreError::Invalid(_))));
        // Renaming frees the old name.
        store.set_local_credentials(ann, "annie", None, t0()).await.unwrap();
        assert_eq!(store.local_credentials_by_username("ann").await.unwrap(), None);
        store.set_local_credentials(ben, "ann", None, t0()).await.unwrap();
        assert_eq!(store.local_credentials_by_username("ann").await.unwrap().unwrap().user_id, ben);
    }

    async fn sessions_round_trip_expire_and_end(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let ben = user(&store, "ben").await;
        let hour = Duration::hours(1);
        store.create_web_session(&session("s1", Some(ann), t0() + hour)).await.unwrap();
        store.create_web_session(&session("s2", Some(ann), t0() + hour * 2)).await.unwrap();
        store.create_web_session(&session("s3", Some(ben), t0() + hour)).await.unwrap();
        let duplicate = store.create_web_session(&session("s1", Some(ben), t0() + hour)).await;
        assert!(matches!(duplicate, Err(StoreError::Conflict { .. })), "{duplicate:?}");

        let s1 = store.web_session("s1", t0()).await.unwrap().unwrap();
        assert_eq!((s1.user_id, s1.csrf_token.as_str(), s1.last_seen, s1.oauth), (Some(ann), "csrf-s1", t0(), None));
        assert_eq!(store.web_session("s1", t0() + hour).await.unwrap(), None, "expired at its expiry");
        assert_eq!(store.web_session("nope", t0()).await.unwrap(), None);

        // Touching extends a live session but cannot revive an expired one.
        store.touch_web_session("s1", t0() + Duration::minutes(30), t0() + hour * 5).await.unwrap();
        let touched = store.web_session("s1", t0() + hour * 4).await.unwrap().unwrap();
        assert_eq!((touched.last_seen, touched.expires_at), (t0() + Duration::minutes(30), t0() + hour * 5));
        store.touch_web_session("s3", t0() + hour * 2, t0() + hour * 9).await.unwrap();
        assert_eq!(store.web_session("s3", t0() + hour * 2).await.unwrap(), None);

        assert_eq!(store.delete_expired_web_sessions(t0() + hour).await.unwrap(), 1, "s3 only");
        assert_eq!(store.take_web_session("s2").await.unwrap().unwrap().user_id, Some(ann));
        assert_eq!(store.take_web_session("s2").await.unwrap(), None, "sign-out is once");
        store.create_web_session(&session("s4", Some(ann), t0() + hour)).await.unwrap();
        assert_eq!(store.delete_user_web_sessions(ann).await.unwrap(), 2, "s1 and s4");
        assert_eq!(store.web_session("s1", t0()).await.unwrap(), None);
        let orphan = store.create_web_session(&session("s5", Some(UserId(9999)), t0() + hour)).await;
        assert!(matches!(orphan, Err(StoreError::MissingReference { .. })), "{orphan:?}");
    }

    async fn pre_sessions_carry_oauth_state_and_are_taken_once(store: Arc<dyn Store>, _db: &DbGuard) {
        let mut pre = session("pre", None, t0() + Duration::hours(1));
        pre.oauth = Some(OAuthPending { state: "state-1".into(), pkce_verifier: "verifier-1".into() });
        pre.next_path = Some("/settings".into());
        store.create_web_session(&pre).await.unwrap();
        let read = store.web_session("pre", t0()).await.unwrap().unwrap();
        assert_eq!(read.user_id, None);
        assert_eq!(read.oauth, pre.oauth);
        assert_eq!(read.next_path.as_deref(), Some("/settings"));
        assert!(!format!("{read:?}").contains("verifier-1"), "Debug hides the PKCE verifier");
        let taken = store.take_web_session("pre").await.unwrap().unwrap();
        assert_eq!(taken.oauth.unwrap().state, "state-1");
        assert_eq!(store.take_web_session("pre").await.unwrap(), None);
    }

    async fn sign_in_tokens_work_once_until_they_expire(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let day = Duration::days(1);
        store.create_sign_in_token(ann, "t1", t0() + day, t0()).await.unwrap();
        assert_eq!(store.redeem_sign_in_token("t1", t0()).await.unwrap(), Some(ann));
        assert_eq!(store.redeem_sign_in_token("t1", t0()).await.unwrap(), None, "spent");
        assert_eq!(store.redeem_sign_in_token("unknown", t0()).await.unwrap(), None);

        store.create_sign_in_token(ann, "t2", t0() + day, t0()).await.unwrap();
        assert_eq!(store.redeem_sign_in_token("t2", t0() + day).await.unwrap(), None, "expired at its expiry");
        store.create_sign_in_token(ann, "t3", t0() + day, t0()).await.unwrap();
        store.create_sign_in_token(ann, "t4", t0() + day, t0()).await.unwrap();
        assert_eq!(store.redeem_sign_in_token("t3", t0()).await.unwrap(), None, "replaced by t4");
        assert_eq!(store.redeem_sign_in_token("t4", t0()).await.unwrap(), Some(ann));
        let missing = store.create_sign_in_token(UserId(9999), "t5", t0() + day, t0()).await;
        assert!(matches!(missing, Err(StoreError::MissingReference { .. })), "{missing:?}");
    }

    async fn concurrent_sign_in_token_redeems_have_one_winner(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        store.create_sign_in_token(ann, "race", t0() + Duration::days(1), t0()).await.unwrap();
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.redeem_sign_in_token("race", t0()).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            winners += usize::from(racer.await.unwrap().is_some());
        }
        assert_eq!(winners, 1);
    }
}

// ---------- trade notices and stale notifications (issue 4) ----------

mod trade_notices {
    use super::*;
    use store::{NOTIFICATION_EXPIRED, NewRunningNotice, TradeNoticeKind, TradeNoticeStatus};

    contract!(
        closing_queues_one_notice_in_the_same_transaction,
        running_updates_are_one_per_slot_and_only_the_newest_stays_queued,
        a_claimed_notice_goes_to_one_claimer_until_its_claim_runs_out,
        concurrent_claimers_never_share_a_notice,
        failures_retry_later_or_give_up,
        expired_notifications_are_failed_as_expired_and_not_counted,
        running_update_minutes_round_trip,
    );

    async fn linked(store: &Arc<dyn Store>, discord_id: &str) -> UserId {
        store.ensure_discord_user(discord_id, discord_id).await.unwrap().id
    }

    fn running(trade: TradeId, slot: i64, price: &str, at: DateTime<Utc>) -> NewRunningNotice {
        NewRunningNotice {
            trade_id: trade,
            slot,
            price: p(price),
            pips: Some(dec!(10.5)),
            profit: Some(dec!(52.5)),
            at,
        }
    }

    fn kinds(notices: &[store::TradeNotice]) -> Vec<(TradeNoticeKind, i64, TradeNoticeStatus)> {
        notices.iter().map(|n| (n.kind, n.slot, n.status)).collect()
    }

    async fn closing_queues_one_notice_in_the_same_transaction(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = linked(&store, "1100000000000000001").await;
        let bob = user(&store, "bob").await;
        let at = t0() + Duration::hours(3);

        let trade = open(&store, &eurusd_long(ann, t0())).await;
        assert!(store.trade_notices(trade.id).await.unwrap().is_empty(), "opening queues nothing");
        store.close_trade(trade.id, &tp_hit(at)).await.unwrap().unwrap();
        let notices = store.trade_notices(trade.id).await.unwrap();
        assert_eq!(kinds(&notices), [(TradeNoticeKind::Closed, 0, TradeNoticeStatus::Queued)]);
        assert_eq!((notices[0].attempts, notices[0].created_at, notices[0].claimed_until), (0, at, None));
        // A losing second close writes no second notice.
        assert_eq!(store.close_trade(trade.id, &tp_hit(at)).await.unwrap(), None);
        assert_eq!(store.cancel_trade(trade.id, at).await.unwrap(), None);
        assert_eq!(store.trade_notices(trade.id).await.unwrap().len(), 1);

        let cancelled = open(&store, &eurusd_long(ann, t0())).await;
        store.cancel_trade(cancelled.id, at).await.unwrap().unwrap();
        let notices = store.trade_notices(cancelled.id).await.unwrap();
        assert_eq!(kinds(&notices), [(TradeNoticeKind::Cancelled, 0, TradeNoticeStatus::Queued)]);

        // An owner without Discord gets none: nobody could receive it.
        let bobs = open(&store, &eurusd_long(bob, t0())).await;
        store.close_trade(bobs.id, &tp_hit(at)).await.unwrap().unwrap();
        assert!(store.trade_notices(bobs.id).await.unwrap().is_empty());

        // Racing closers: one close, one notice.
        let raced = open(&store, &eurusd_long(ann, t0())).await;
        let closing = tp_hit(at);
        let (a, b) = tokio::join!(store.close_trade(raced.id, &closing), store.close_trade(raced.id, &closing));
        assert!(a.unwrap().is_some() ^ b.unwrap().is_some());
        assert_eq!(store.trade_notices(raced.id).await.unwrap().len(), 1);
    }

    async fn running_updates_are_one_per_slot_and_only_the_newest_stays_queued(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = linked(&store, "1100000000000000001").await;
        let bob = user(&store, "bob").await;
        let trade = open(&store, &eurusd_long(ann, t0())).await;
        let at = t0() + Duration::minutes(35);

        let first = store.queue_running_notice(&running(trade.id, 1, "1.0864", at)).await.unwrap();
        assert!(first.is_some());
        assert_eq!(store.queue_running_notice(&running(trade.id, 1, "1.0870", at)).await.unwrap(), None, "same slot");
        let notices = store.trade_notices(trade.id).await.unwrap();
        assert_eq!(kinds(&notices), [(TradeNoticeKind::Running, 1, TradeNoticeStatus::Queued)]);
        assert_eq!(
            (notices[0].price, notices[0].pips, notices[0].profit, notices[0].created_at),
            (Some(p("1.0864")), Some(dec!(10.5)), Some(dec!(52.5)), at)
        );

        // A newer slot replaces the one still queued; both processes queueing the same slot make one row.
        let slot2 = running(trade.id, 2, "1.0870", at);
        let (a, b) = tokio::join!(store.queue_running_notice(&slot2), store.queue_running_notice(&slot2));
        assert!(a.unwrap().is_some() ^ b.unwrap().is_some());
        let notices = store.trade_notices(trade.id).await.unwrap();
        assert_eq!(
            kinds(&notices),
            [
                (TradeNoticeKind::Running, 1, TradeNoticeStatus::Expired),
                (TradeNoticeKind::Running, 2, TradeNoticeStatus::Queued)
            ]
        );

        // The close expires the queued update and queues its report.
        store.close_trade(trade.id, &tp_hit(at)).await.unwrap().unwrap();
        let notices = store.trade_notices(trade.id).await.unwrap();
        assert_eq!(
            kinds(&notices),
            [
                (TradeNoticeKind::Running, 1, TradeNoticeStatus::Expired),
                (TradeNoticeKind::Running, 2, TradeNoticeStatus::Expired),
                (TradeNoticeKind::Closed, 0, TradeNoticeStatus::Queued),
            ]
        );
        // No updates for closed trades, owners without Discord, or slot 0.
        assert_eq!(store.queue_running_notice(&running(trade.id, 3, "1.0870", at)).await.unwrap(), None);
        let bobs = open(&store, &eurusd_long(bob, t0())).await;
        assert_eq!(store.queue_running_notice(&running(bobs.id, 1, "1.0870", at)).await.unwrap(), None);
        let slot0 = store.queue_running_notice(&running(bobs.id, 0, "1.0870", at)).await;
        assert!(matches!(slot0, Err(StoreError::Invalid(_))), "{slot0:?}");
    }

    async fn a_claimed_notice_goes_to_one_claimer_until_its_claim_runs_out(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = linked(&store, "1100000000000000001").await;
        let mut trades = Vec::new();
        for _ in 0..3 {
            let trade = open(&store, &eurusd_long(ann, t0())).await;
            store.close_trade(trade.id, &tp_hit(t0())).await.unwrap().unwrap();
            trades.push(trade.id);
        }
        let now = t0() + Duration::hours(1);
        let lease = Duration::minutes(2);

        let first = store.claim_trade_notices(now, now + lease, 2).await.unwrap();
        assert_eq!(first.iter().map(|n| n.trade_id).collect::<Vec<_>>(), trades[..2], "oldest first, at most 2");
        assert!(first.iter().all(|n| n.claimed_until == Some(now + lease)));
        let second = store.claim_trade_notices(now, now + lease, 10).await.unwrap();
        assert_eq!(second.iter().map(|n| n.trade_id).collect::<Vec<_>>(), trades[2..], "only the unclaimed one");
        assert!(store.claim_trade_notices(now + Duration::minutes(1), now + lease, 10).await.unwrap().is_empty());

        // Sent: never claimed again. Still held by a sender that died: claimable once its claim ran out.
        store.mark_trade_notice_sent(first[0].id, "msg-1", now).await.unwrap();
        let later = now + lease;
        let retaken = store.claim_trade_notices(later, later + lease, 10).await.unwrap();
        assert_eq!(retaken.iter().map(|n| n.id).collect::<Vec<_>>(), [first[1].id, second[0].id]);
        let sent = &store.trade_notices(trades[0]).await.unwrap()[0];
        assert_eq!(
            (sent.status, sent.discord_message_id.as_deref(), sent.sent_at, sent.attempts, sent.claimed_until),
            (TradeNoticeStatus::Sent, Some("msg-1"), Some(now), 1, None)
        );
        let missing = store.mark_trade_notice_sent(store::TradeNoticeId(424242), "m", now).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    }

    async fn concurrent_claimers_never_share_a_notice(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = linked(&store, "1100000000000000001").await;
        let mut expected = Vec::new();
        for _ in 0..40 {
            let trade = open(&store, &eurusd_long(ann, t0())).await;
            store.close_trade(trade.id, &tp_hit(t0())).await.unwrap().unwrap();
            expected.push(store.trade_notices(trade.id).await.unwrap()[0].id);
        }
        let now = t0() + Duration::hours(1);
        let claimers: Vec<_> = (0..6)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_trade_notices(now, now + Duration::minutes(2), 3).await.unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|n| n.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for claimer in claimers {
            all.extend(claimer.await.unwrap());
        }
        all.sort();
        assert_eq!(all, expected, "every notice claimed exactly once");
    }

    async fn failures_retry_later_or_give_up(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = linked(&store, "1100000000000000001").await;
        let trade = open(&store, &eurusd_long(ann, t0())).await;
        let now = t0() + Duration::hours(1);
        let running_id = store.queue_running_notice(&running(trade.id, 1, "1.0864", now)).await.unwrap().unwrap();
        let claimed = store.claim_trade_notices(now, now + Duration::minutes(2), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);

        // A transient failure: queued, but nobody may claim it before the retry time.
        let retry = now + Duration::seconds(4);
        store.mark_trade_notice_failed(running_id, "discord 500", Some(retry)).await.unwrap();
        let n = &store.trade_notices(trade.id).await.unwrap()[0];
        assert_eq!(
            (n.status, n.attempts, n.last_error.as_deref(), n.claimed_until),
            (TradeNoticeStatus::Queued, 1, Some("discord 500"), Some(retry))
        );
        assert!(
            store
                .claim_trade_notices(now + Duration::seconds(3), now + Duration::minutes(2), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.claim_trade_notices(retry, retry + Duration::minutes(2), 10).await.unwrap().len(), 1);

        // Refused for good: failed, never claimed again.
        store
            .mark_trade_notice_failed(running_id, "Discord error 50007: Cannot send messages to this user", None)
            .await
            .unwrap();
        let n = &store.trade_notices(trade.id).await.unwrap()[0];
        assert_eq!((n.status, n.attempts), (TradeNoticeStatus::Failed, 2));
        let far = retry + Duration::days(1);
        assert!(store.claim_trade_notices(far, far, 10).await.unwrap().is_empty());
        assert!(!store.expire_trade_notice(running_id, "too late").await.unwrap(), "only a queued notice expires");

        store.close_trade(trade.id, &tp_hit(now)).await.unwrap().unwrap();
        let close = store.trade_notices(trade.id).await.unwrap()[1].id;
        assert!(store.expire_trade_notice(close, "not wanted").await.unwrap());
        let n = &store.trade_notices(trade.id).await.unwrap()[1];
        assert_eq!((n.status, n.last_error.as_deref()), (TradeNoticeStatus::Expired, Some("not wanted")));
    }

    async fn expired_notifications_are_failed_as_expired_and_not_counted(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let old = notification(&store, ann, signal_id(&store).await).await;
        let fresh = notification(&store, ann, signal_id(&store).await).await;

        assert!(store.expire_notification(old, "the signal was 2d 0h old").await.unwrap());
        assert!(!store.expire_notification(old, "again").await.unwrap(), "only a queued one expires");
        let n = store.get_notification(old).await.unwrap().unwrap();
        assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 0));
        assert_eq!(n.last_error.as_deref(), Some(format!("{NOTIFICATION_EXPIRED}: the signal was 2d 0h old").as_str()));
        assert!(n.is_expired());
        assert_eq!(store.queued_notifications(10).await.unwrap().iter().map(|n| n.id).collect::<Vec<_>>(), [fresh]);
        // Never sent, so it counts neither against the daily cap nor for the cooldown.
        assert_eq!(store.count_notifications_since(ann, t0()).await.unwrap(), 1);

        store.mark_notification_sent(fresh, "m1", t0()).await.unwrap();
        assert!(!store.expire_notification(fresh, "late").await.unwrap());
        let sent = store.get_notification(fresh).await.unwrap().unwrap();
        assert!(!sent.is_expired());
        store.mark_notification_failed(fresh, "Discord error 50007", false).await.unwrap();
        assert!(!store.get_notification(fresh).await.unwrap().unwrap().is_expired(), "failed, not expired");
    }

    async fn running_update_minutes_round_trip(store: Arc<dyn Store>, db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let bob = user(&store, "bob").await;
        let settings = UserSettings { running_update_minutes: 15, ..UserSettings::default() };
        store.save_settings(ann, &settings).await.unwrap();
        assert_eq!(store.get_settings(ann).await.unwrap(), settings);
        let all = store.users_with_settings().await.unwrap();
        assert_eq!(all.iter().find(|(u, _)| u.id == ann).unwrap().1.running_update_minutes, 15);
        assert_eq!(all.iter().find(|(u, _)| u.id == bob).unwrap().1.running_update_minutes, 0);
        // A row written without the column, as before it existed, reads as off.
        raw_execute(
            db,
            "INSERT INTO user_settings (user_id, notifications_enabled, enabled_timeframes, preferred_pairs,
                 min_confidence, only_ml_enhanced, max_notifications_per_day, notification_cooldown_minutes,
                 delivery_kind, delivery_channel_id, updated_at)
             VALUES ($1, TRUE, '1h', '', '0.35', FALSE, 20, 60, 'dm', NULL, '2026-03-02T10:00:00Z')",
            bob.0,
        )
        .await;
        let old = store.get_settings(bob).await.unwrap();
        assert_eq!((old.running_update_minutes, old.enabled_timeframes), (0, vec![Timeframe::H1]));
    }
}

// --- the dashboard's trade history and the shared actions (issue 5) ---

mod trade_history {
    use super::*;
    use futures::TryStreamExt as _;
    use store::actions::{self, ActionError, TradeForm};
    use store::{TradeCursor, TradeQuery};

    contract!(
        history_pages_follow_a_cursor_with_every_filter,
        stream_and_import_round_trip_a_users_trades,
        actions_check_ownership_and_open_once
    );

    fn ids(trades: &[Trade]) -> Vec<TradeId> {
        trades.iter().map(|t| t.id).collect()
    }

    async fn history_pages_follow_a_cursor_with_every_filter(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let bob = user(&store, "bob").await;
        let mut mine = Vec::new();
        // Two trades share an opening time: the id breaks the tie, and the cursor must not skip either.
        for minutes in [0, 10, 10, 20, 30] {
            mine.push(open(&store, &eurusd_long(ann, t0() + Duration::minutes(minutes))).await.id);
        }
        open(&store, &eurusd_long(bob, t0() + Duration::minutes(15))).await;
        store.close_trade(mine[1], &tp_hit(t0() + Duration::hours(1))).await.unwrap().unwrap();

        let everything = store.trades_page(&TradeQuery::of(ann)).await.unwrap();
        assert_eq!(ids(&everything), [mine[4], mine[3], mine[2], mine[1], mine[0]]);
        let mut seen = Vec::new();
        let mut after: Option<TradeCursor> = None;
        loop {
            let query = TradeQuery { limit: Some(2), after, ..TradeQuery::of(ann) };
            let page = store.trades_page(&query).await.unwrap();
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap();
            after = Some(TradeCursor { opened_at: last.opened_at, id: last.id });
            seen.extend(ids(&page));
        }
        assert_eq!(seen, ids(&everything), "pages cover every trade once, in order");

        let wins = TradeQuery {
            status: Some(TradeStatus::Closed),
            result: Some(TradeResult::Win),
            symbol: Some(sym("eur/usd")),
            ..TradeQuery::of(ann)
        };
        assert_eq!(ids(&store.trades_page(&wins).await.unwrap()), [mine[1]]);
        let window = TradeQuery {
            opened_from: Some(t0() + Duration::minutes(10)),
            opened_until: Some(t0() + Duration::minutes(30)),
            ..TradeQuery::of(ann)
        };
        assert_eq!(ids(&store.trades_page(&window).await.unwrap()), [mine[3], mine[2], mine[1]]);
        let losses = TradeQuery { result: Some(TradeResult::Loss), ..TradeQuery::of(ann) };
        assert!(store.trades_page(&losses).await.unwrap().is_empty());
    }

    async fn stream_and_import_round_trip_a_users_trades(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let bob = user(&store, "bob").await;
        let mut template = Trade::from_new(TradeId(0), eurusd_long(ann, t0()));
        let mut batch = Vec::new();
        for i in 0..2500 {
            template.opened_at = t0() + Duration::seconds(i);
            template.user_id = if i % 5 == 0 { bob } else { ann };
            batch.push(template.clone());
        }
        let mut closed = batch[1].clone();
        closed.close(&tp_hit(t0() + Duration::hours(2))).unwrap();
        closed.notes = Some("a \"quoted\", note".into());
        batch[1] = closed.clone();
        assert_eq!(store.import_trades(&batch).await.unwrap(), 2500);

        let streamed: Vec<Trade> = store.stream_trades(&TradeQuery::of(ann)).try_collect().await.unwrap();
        assert_eq!(streamed.len(), 2000, "Ann's trades only");
        assert!(streamed.windows(2).all(|w| (w[0].opened_at, w[0].id) > (w[1].opened_at, w[1].id)), "newest first");
        let back = streamed.iter().find(|t| t.status == TradeStatus::Closed).unwrap();
        assert_eq!(
            (back.exit_price, back.profit, back.notes.as_deref(), back.opened_at),
            (closed.exit_price, closed.profit, Some("a \"quoted\", note"), closed.opened_at)
        );
        let closed_only = TradeQuery { status: Some(TradeStatus::Closed), ..TradeQuery::of(ann) };
        let streamed: Vec<Trade> = store.stream_trades(&closed_only).try_collect().await.unwrap();
        assert_eq!(ids(&streamed), [back.id]);
    }

    async fn actions_check_ownership_and_open_once(store: Arc<dyn Store>, _db: &DbGuard) {
        let ann = user(&store, "ann").await;
        let bob = user(&store, "bob").await;
        let signal = signal_id(&store).await;
        let hers = notification(&store, ann, signal).await;
        let form = TradeForm { entry: "1.0854", lots: "0.5", stop_loss: "1.08", take_profit: "", notes: " hi " };

        let refused = actions::open_from_notification(store.as_ref(), bob, hers, &form, t0()).await;
        assert!(matches!(refused, Err(ActionError::NotYourNotification)), "{refused:?}");
        let bad = TradeForm { stop_loss: "1.09", ..form.clone() };
        let refused = actions::open_from_notification(store.as_ref(), ann, hers, &bad, t0()).await;
        assert!(matches!(refused, Err(ActionError::Invalid(_))), "{refused:?}");
        assert!(store.trades_page(&TradeQuery::of(ann)).await.unwrap().is_empty());
        assert!(!store.get_notification(hers).await.unwrap().unwrap().acknowledged);

        let tick = Tick {
            symbol: sym("EURUSD"),
            time: t0() + Duration::minutes(5),
            bid: p("1.0850"),
            ask: p("1.0852"),
            synthetic_from: None,
        };
        store.set_last_price(&tick).await.unwrap();
        let opened =
            actions::open_from_notification(store.as_ref(), ann, hers, &form, t0() + Duration::days(1)).await.unwrap();
        assert!(opened.created);
        assert_eq!(opened.trade.opened_at, tick.time, "stamped with the market's time");
        assert_eq!(opened.trade.notes.as_deref(), Some("hi"));
        assert!(store.get_notification(hers).await.unwrap().unwrap().acknowledged);
        let again = actions::open_from_notification(store.as_ref(), ann, hers, &form, t0()).await.unwrap();
        assert_eq!((again.created, again.trade.id), (false, opened.trade.id));

        let bob_user = store.get_user(bob).await.unwrap().unwrap();
        let ann_user = store.get_user(ann).await.unwrap().unwrap();
        let id = opened.trade.id;
        assert!(matches!(
            actions::close_at_market(store.as_ref(), &bob_user, id).await,
            Err(ActionError::NotYourTrade(_))
        ));
        let closed = actions::close_at_market(store.as_ref(), &ann_user, id).await.unwrap();
        assert_eq!((closed.exit_price, closed.close_reason), (Some(p("1.0850")), Some(CloseReason::ManualClose)));
        assert!(matches!(
            actions::close_at_market(store.as_ref(), &ann_user, id).await,
            Err(ActionError::NotOpen { status: TradeStatus::Closed, .. })
        ));
    }
}

// ---------- claims on the signal-notification outbox ----------

mod notification_claims {
    use super::*;

    contract!(
        a_claimed_notification_goes_to_one_claimer_until_its_claim_runs_out,
        concurrent_notification_claimers_get_disjoint_rows_and_all_of_them,
        a_retry_is_held_until_its_time_and_a_given_up_one_is_never_claimed,
    );

    /// `count` queued notifications of one signal, one per user, oldest first.
    async fn queued(store: &Arc<dyn Store>, count: usize) -> Vec<NotificationId> {
        let signal = signal_id(store).await;
        let mut ids = Vec::new();
        for i in 0..count {
            let user = user(store, &format!("user-{i}")).await;
            ids.push(notification(store, user, signal).await);
        }
        ids
    }

    fn ids(claimed: &[store::Notification]) -> Vec<NotificationId> {
        claimed.iter().map(|n| n.id).collect()
    }

    async fn a_claimed_notification_goes_to_one_claimer_until_its_claim_runs_out(store: Arc<dyn Store>, _db: &DbGuard) {
        let all = queued(&store, 3).await;
        let now = t0() + Duration::hours(1);
        let lease = Duration::minutes(2);

        let first = store.claim_queued_notifications(now, now + lease, 2).await.unwrap();
        assert_eq!(ids(&first), all[..2], "oldest first, at most 2");
        let second = store.claim_queued_notifications(now, now + lease, 10).await.unwrap();
        assert_eq!(ids(&second), all[2..], "only the unclaimed one");
        let before_expiry = now + lease - Duration::seconds(1);
        assert!(store.claim_queued_notifications(before_expiry, before_expiry + lease, 10).await.unwrap().is_empty());
        // Claiming is not reading: the plain queue still lists them all.
        assert_eq!(ids(&store.queued_notifications(10).await.unwrap()), all);

        // Sent: never claimed again. Still held by a sender that died: claimable once its claim ran out.
        store.mark_notification_sent(all[0], "msg-1", now).await.unwrap();
        let later = now + lease;
        let retaken = store.claim_queued_notifications(later, later + lease, 10).await.unwrap();
        assert_eq!(ids(&retaken), all[1..]);
        let sent = store.get_notification(all[0]).await.unwrap().unwrap();
        assert_eq!(
            (sent.status, sent.discord_message_id.as_deref(), sent.attempts),
            (NotificationStatus::Sent, Some("msg-1"), 1)
        );
        let much_later = later + Duration::days(1);
        let retaken = store.claim_queued_notifications(much_later, much_later + lease, 10).await.unwrap();
        assert_eq!(ids(&retaken), all[1..], "the sent one stays out however late");
    }

    async fn concurrent_notification_claimers_get_disjoint_rows_and_all_of_them(store: Arc<dyn Store>, _db: &DbGuard) {
        let expected = queued(&store, 40).await;
        let now = t0() + Duration::hours(1);
        let claimers: Vec<_> = (0..6)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_queued_notifications(now, now + Duration::minutes(2), 3).await.unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(ids(&batch));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for claimer in claimers {
            all.extend(claimer.await.unwrap());
        }
        all.sort();
        assert_eq!(all, expected, "every notification claimed exactly once");
    }

    async fn a_retry_is_held_until_its_time_and_a_given_up_one_is_never_claimed(store: Arc<dyn Store>, _db: &DbGuard) {
        let all = queued(&store, 3).await;
        let now = t0() + Duration::hours(1);
        let lease = Duration::minutes(2);
        assert_eq!(store.claim_queued_notifications(now, now + lease, 10).await.unwrap().len(), 3);

        // A transient failure: still queued, but nobody may claim it before its retry time, even though
        // that is earlier than the claim it replaced would have run out.
        let retry = now + Duration::seconds(4);
        store.retry_notification_at(all[0], "discord 500", retry).await.unwrap();
        // Given up (50007), and a retry allowed at once.
        store.mark_notification_failed(all[1], "Discord error 50007", false).await.unwrap();
        store.mark_notification_failed(all[2], "discord 503", true).await.unwrap();
        let n = store.get_notification(all[0]).await.unwrap().unwrap();
        assert_eq!(
            (n.status, n.attempts, n.last_error.as_deref()),
            (NotificationStatus::Queued, 1, Some("discord 500"))
        );

        let soon = now + Duration::seconds(3);
        assert_eq!(ids(&store.claim_queued_notifications(soon, soon + lease, 10).await.unwrap()), [all[2]]);
        let claimed = store.claim_queued_notifications(retry, retry + lease, 10).await.unwrap();
        assert_eq!(ids(&claimed), [all[0]], "due now; the given-up one never comes back");
        let much_later = now + Duration::days(1);
        let late = store.claim_queued_notifications(much_later, much_later + lease, 10).await.unwrap();
        assert_eq!(ids(&late), [all[0], all[2]]);

        let missing = store.retry_notification_at(NotificationId(424242), "x", retry).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    }
}

// ---------- password changes and the shared sign-in lockout (issue 5) ----------

mod credentials {
    use super::*;
    use store::NewWebSession;

    contract!(
        a_password_change_needs_the_current_hash_and_ends_only_the_other_sessions,
        sign_in_failures_are_counted_per_username_in_the_window_and_forgotten,
    );

    async fn signed_in(store: &Arc<dyn Store>, id: &str, user: Option<UserId>) {
        let new = NewWebSession {
            id_hash: id.into(),
            user_id: user,
            csrf_token: format!("csrf-{id}"),
            oauth: None,
            next_path: None,
            created_at: t0(),
            expires_at: t0() + Duration::days(1),
        };
        store.create_web_session(&new).await.unwrap();
    }

    async fn alive(store: &Arc<dyn Store>, id: &str) -> bool {
        store.web_session(id, t0()).await.unwrap().is_some()
    }

    async fn a_password_change_needs_the_current_hash_and_ends_only_the_other_sessions(
        store: Arc<dyn Store>,
        _db: &DbGuard,
    ) {
        let (ann, ben) = (user(&store, "ann").await, user(&store, "ben").await);
        store.set_local_credentials(ann, "ann", Some("$argon2id$old"), t0()).await.unwrap();
        store.set_local_credentials(ben, "ben", Some("$argon2id$ben"), t0()).await.unwrap();
        for (id, owner) in [("ann-here", Some(ann)), ("ann-phone", Some(ann)), ("ben-1", Some(ben)), ("pre", None)] {
            signed_in(&store, id, owner).await;
        }

        // A stale current hash (another change got there first) changes nothing at all.
        let stale = store.change_local_password(ann, "$argon2id$wrong", "$argon2id$new", "ann-here", t0()).await;
        assert_eq!(stale.unwrap(), None);
        assert_eq!(
            store.local_credentials(ann).await.unwrap().unwrap().password_hash.as_deref(),
            Some("$argon2id$old")
        );
        assert!(alive(&store, "ann-phone").await);
        assert!(matches!(
            store.change_local_password(ann, "$argon2id$old", " ", "ann-here", t0()).await,
            Err(StoreError::Invalid(_))
        ));

        let ended = store.change_local_password(ann, "$argon2id$old", "$argon2id$new", "ann-here", t0()).await;
        assert_eq!(ended.unwrap(), Some(1), "ann's other session only");
        let stored = store.local_credentials(ann).await.unwrap().unwrap();
        assert_eq!((stored.username.as_str(), stored.password_hash.as_deref()), ("ann", Some("$argon2id$new")));
        assert!(alive(&store, "ann-here").await, "the session that changed it stays");
        assert!(!alive(&store, "ann-phone").await);
        assert!(alive(&store, "ben-1").await && alive(&store, "pre").await, "nobody else's session ends");
        assert_eq!(
            store.local_credentials(ben).await.unwrap().unwrap().password_hash.as_deref(),
            Some("$argon2id$ben")
        );

        // The old hash is gone, so a second change from it is refused; a user without a password has none.
        assert_eq!(
            store.change_local_password(ann, "$argon2id$old", "$argon2id$x", "ann-here", t0()).await.unwrap(),
            None
        );
        let cid = user(&store, "cid").await;
        store.set_local_credentials(cid, "cid", None, t0()).await.unwrap();
        assert_eq!(store.change_local_password(cid, "", "$argon2id$x", "s", t0()).await.unwrap(), None);
        assert_eq!(store.local_credentials(cid).await.unwrap().unwrap().password_hash, None);
    }

    async fn sign_in_failures_are_counted_per_username_in_the_window_and_forgotten(
        store: Arc<dyn Store>,
        _db: &DbGuard,
    ) {
        let window = Duration::minutes(1);
        assert_eq!(store.sign_in_failures_since("ann", t0() - window).await.unwrap(), 0);
        for s in [0, 10, 20] {
            let at = t0() + Duration::seconds(s);
            store.record_sign_in_failure("ann", at, at - window).await.unwrap();
        }
        let at = t0() + Duration::seconds(30);
        store.record_sign_in_failure("ben", at, at - window).await.unwrap();
        // Strictly after `since`: a failure exactly a window old no longer counts.
        assert_eq!(store.sign_in_failures_since("ann", t0() - Duration::seconds(1)).await.unwrap(), 3);
        assert_eq!(store.sign_in_failures_since("ann", t0()).await.unwrap(), 2);
        assert_eq!(store.sign_in_failures_since("ben", t0()).await.unwrap(), 1);
        assert_eq!(store.sign_in_failures_since("cid", t0() - window).await.unwrap(), 0);

        // Recording later forgets whatever is older than the window, for every username.
        let later = t0() + Duration::seconds(75);
        store.record_sign_in_failure("cid", later, later - window).await.unwrap();
        assert_eq!(
            store.sign_in_failures_since("ann", t0() - Duration::days(1)).await.unwrap(),
            1,
            "only the 0:20 one"
        );
        assert_eq!(store.sign_in_failures_since("ben", t0() - Duration::days(1)).await.unwrap(), 1);

        assert_eq!(store.clear_sign_in_failures("ann").await.unwrap(), 1);
        assert_eq!(store.sign_in_failures_since("ann", t0() - Duration::days(1)).await.unwrap(), 0);
        assert_eq!(store.sign_in_failures_since("ben", t0() - Duration::days(1)).await.unwrap(), 1, "ben's stay");
    }
}

// ---------- provider channels and messages (issue 6) ----------

mod providers {
    use super::*;
    use store::{NewProviderMessage, ProviderIntake, ProviderMessageKind};

    contract!(
        provider_channels_register_once,
        a_replayed_provider_message_stores_one_message_and_one_signal,
        provider_edits_are_revisions_and_deletions_are_marked,
        an_invalid_provider_signal_writes_nothing,
    );

    fn provider_signal(channel: &str) -> Signal {
        Signal {
            source: SignalSource::Provider(channel.into()),
            confidence: None,
            model_version: None,
            stage1_prob: None,
            stage2_prob: None,
            ..signal("EURUSD", t0())
        }
    }

    fn message<'a>(id: &'a str, content: &'a str, signal: Option<&'a Signal>) -> NewProviderMessage<'a> {
        NewProviderMessage {
            channel_id: "111",
            message_id: id,
            author: Some("alice"),
            content,
            hash: "h1",
            received_at: t0(),
            kind: if signal.is_some() { ProviderMessageKind::Open } else { ProviderMessageKind::Noise },
            outcome: "noise".into(),
            signal,
            reply_to: None,
            begin_copies: None,
        }
    }

    async fn provider_channels_register_once(store: Arc<dyn Store>, _db: &DbGuard) {
        let added = store.add_provider_channel("111", "Gold VIP", "cli", t0()).await.unwrap();
        assert!(added.enabled);
        assert_eq!(added.created_at, t0());
        let again = store.add_provider_channel("111", "Other", "cli", t0()).await;
        assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
        store.add_provider_channel("222", "FX", "admin", t0()).await.unwrap();
        let all = store.provider_channels().await.unwrap();
        assert_eq!(all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Gold VIP", "FX"]);
        assert_eq!(store.provider_channel("222").await.unwrap().unwrap().added_by, "admin");
        assert!(store.provider_channel("333").await.unwrap().is_none());
        assert!(store.add_provider_channel(" ", "x", "cli", t0()).await.is_err());
    }

    async fn a_replayed_provider_message_stores_one_message_and_one_signal(store: Arc<dyn Store>, _db: &DbGuard) {
        let signal = provider_signal("111");
        let first = store.record_provider_message(&message("m1", "BUY EURUSD", Some(&signal))).await.unwrap();
        let ProviderIntake::Stored { signal: Some(id) } = first else { panic!("no signal stored: {first:?}") };
        let replay = store.record_provider_message(&message("m1", "BUY EURUSD", Some(&signal))).await.unwrap();
        assert_eq!(replay, ProviderIntake::Duplicate { signal: Some(id) });
        let signals = store.recent_signals(10).await.unwrap();
        assert_eq!(signals.len(), 1, "a replay stores no second signal");
        assert_eq!(signals[0].signal.source, SignalSource::Provider("111".into()));

        let noise = store.record_provider_message(&message("m2", "gm", None)).await.unwrap();
        assert_eq!(noise, ProviderIntake::Stored { signal: None });
        assert_eq!(store.recent_signals(10).await.unwrap().len(), 1);

        let stored = store.provider_messages("111", 10).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].message_id, "m2", "newest first");
        assert_eq!(stored[1].signal_id, Some(id));
        assert_eq!(stored[1].outcome, format!("signal {}", id.0));
        assert_eq!(stored[1].kind, ProviderMessageKind::Open);
        assert_eq!(stored[1].author.as_deref(), Some("alice"));
        assert!(store.provider_messages("222", 10).await.unwrap().is_empty());
    }

    async fn provider_edits_are_revisions_and_deletions_are_marked(store: Arc<dyn Store>, _db: &DbGuard) {
        store.record_provider_message(&message("m1", "BUY EURUSD", None)).await.unwrap();
        let later = t0() + Duration::minutes(5);
        assert!(!store.record_provider_edit("111", "m1", "BUY EURUSD", "h1", later).await.unwrap(), "same hash");
        assert!(!store.record_provider_edit("111", "nope", "x", "h9", later).await.unwrap(), "unknown message");
        assert!(store.record_provider_edit("111", "m1", "SELL EURUSD", "h2", later).await.unwrap());
        assert!(!store.record_provider_edit("111", "m1", "SELL EURUSD", "h2", later).await.unwrap(), "replayed edit");
        let stored = &store.provider_messages("111", 10).await.unwrap()[0];
        assert_eq!(stored.content, "BUY EURUSD", "the original is kept");
        assert_eq!(stored.edited_at, Some(later));
        assert_eq!(stored.revisions.len(), 1);
        assert_eq!((stored.revisions[0].content.as_str(), stored.revisions[0].hash.as_str()), ("SELL EURUSD", "h2"));

        let gone = later + Duration::minutes(1);
        assert!(store.record_provider_delete("111", "m1", gone).await.unwrap());
        assert!(!store.record_provider_delete("111", "m1", gone + Duration::minutes(1)).await.unwrap());
        assert_eq!(store.provider_messages("111", 10).await.unwrap()[0].deleted_at, Some(gone));
    }

    async fn an_invalid_provider_signal_writes_nothing(store: Arc<dyn Store>, _db: &DbGuard) {
        let mut signal = provider_signal("111");
        signal.stop_loss = Some(p("1.2")); // above a long entry
        let refused = store.record_provider_message(&message("m1", "BUY EURUSD SL 1.2", Some(&signal))).await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
        assert!(store.provider_messages("111", 10).await.unwrap().is_empty());
        assert!(store.recent_signals(10).await.unwrap().is_empty());
    }
}

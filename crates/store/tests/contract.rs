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

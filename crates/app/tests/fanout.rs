//! The router (issue 4): one leaseholder routes, decisions are durable as audiences before any per-user row
//! exists, and a crash, a restart or a second router never loses, duplicates or over-sends a notification.
//! Runs on SQLite, and on PostgreSQL with `TEST_DATABASE_URL`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    Entry, ManualClock, Price, Side, Signal, SignalId, SignalSource, Symbol, Timeframe, UserId, UserSettings,
};
use rust_decimal_macros::dec;
use signalpost::router::{LEASE_TTL, MATERIALISE_BATCH, RouteError, Routed, Router, materialise_pending};
use std::sync::Arc;
use store::{NewUser, NotificationStatus, Role, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn signal(symbol: &str, at: DateTime<Utc>) -> Signal {
    let p = |s: &str| Price::parse(s).unwrap();
    Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.0854") },
        stop_loss: Some(p("1.08")),
        take_profits: vec![p("1.0962")],
        leverage: None,
        confidence: Some(dec!(0.82)),
        source: SignalSource::Engine,
        model_version: Some("rev-2".into()),
        stage1_prob: Some(0.91),
        stage2_prob: Some(0.73),
        created_at: at,
    }
}

async fn stored(store: &Arc<dyn Store>, symbol: &str, at: DateTime<Utc>) -> (SignalId, Signal) {
    let s = signal(symbol, at);
    (store.insert_signal(&s, None).await.unwrap().0, s)
}

async fn user(store: &Arc<dyn Store>, name: &str, settings: Option<UserSettings>) -> UserId {
    let new = NewUser { discord_user_id: None, display_name: name.into(), role: Role::User };
    let id = store.create_user(&new).await.unwrap().id;
    if let Some(settings) = settings {
        store.save_settings(id, &settings).await.unwrap();
    }
    id
}

fn limits(cap: u32, cooldown_minutes: u32) -> UserSettings {
    UserSettings {
        max_notifications_per_day: cap,
        notification_cooldown_minutes: cooldown_minutes,
        ..UserSettings::default()
    }
}

fn router(clock: &ManualClock, name: &str) -> Router {
    Router::new(Arc::new(clock.clone()), name)
}

/// Every notification of a user, oldest first, as (signal, status).
async fn inbox(store: &Arc<dyn Store>, user: UserId) -> Vec<(SignalId, NotificationStatus)> {
    let mut all = store.notifications_for_user(user, 1000, 0).await.unwrap();
    all.reverse();
    all.into_iter().map(|n| (n.signal_id, n.status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_cooldowns_settings_and_given_up_notifications_follow_the_rules() {
    let (store, _db) = testkit::db::fresh_store().await;
    let clock = ManualClock::new(t0());
    let ann = user(&store, "ann", Some(limits(2, 60))).await;
    let bob = user(&store, "bob", Some(limits(20, 0))).await;
    let off = UserSettings { notifications_enabled: false, ..UserSettings::default() };
    let cid = user(&store, "cid", Some(off)).await;
    let gold = UserSettings { preferred_pairs: vec![Symbol::normalize("XAUUSD")], ..UserSettings::default() };
    user(&store, "dan", Some(gold)).await;
    let mut router = router(&clock, "router");

    let (s1, sig1) = stored(&store, "EURUSD", t0()).await;
    let routed = router.route(store.as_ref(), s1, &sig1).await.unwrap();
    assert_eq!(routed, Routed { queued: 2, declined: 2, ..Routed::default() });
    // Durable, but the rows come from the materialiser.
    assert!(inbox(&store, ann).await.is_empty());
    assert_eq!(materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {}).await.unwrap(), 2);
    assert_eq!(inbox(&store, ann).await, vec![(s1, NotificationStatus::Queued)]);

    // Routing a signal again changes nothing.
    assert_eq!(router.route(store.as_ref(), s1, &sig1).await.unwrap().queued, 0);

    let (s2, sig2) = stored(&store, "EURUSD", t0() + Duration::minutes(30)).await;
    let routed = router.route(store.as_ref(), s2, &sig2).await.unwrap();
    assert_eq!((routed.queued, routed.cooling_down), (1, 1), "ann cools down on EURUSD, bob has no cooldown");
    let (s3, sig3) = stored(&store, "GBPUSD", t0() + Duration::minutes(31)).await;
    assert_eq!(router.route(store.as_ref(), s3, &sig3).await.unwrap().queued, 2);
    let (s4, sig4) = stored(&store, "USDJPY", t0() + Duration::minutes(32)).await;
    let routed = router.route(store.as_ref(), s4, &sig4).await.unwrap();
    assert_eq!((routed.queued, routed.capped), (1, 1), "ann's cap of 2 is reached");
    materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {}).await.unwrap();

    // The outbox gives up on ann's GBPUSD message: it no longer counts, so one more fits under her cap.
    let given_up = store.notifications_for_user(ann, 10, 0).await.unwrap();
    assert_eq!(given_up[0].signal_id, s3);
    store.mark_notification_failed(given_up[0].id, "Discord error 50007", false).await.unwrap();
    let (s5, sig5) = stored(&store, "AUDUSD", t0() + Duration::minutes(33)).await;
    let routed = router.route(store.as_ref(), s5, &sig5).await.unwrap();
    assert_eq!((routed.queued, routed.capped), (2, 0));

    // cid turns notifications on: the router's cached users are stale, and it notices.
    store.save_settings(cid, &limits(20, 60)).await.unwrap();
    let (s6, sig6) = stored(&store, "NZDUSD", t0() + Duration::minutes(34)).await;
    let routed = router.route(store.as_ref(), s6, &sig6).await.unwrap();
    assert_eq!((routed.queued, routed.capped, routed.declined), (2, 1, 1), "bob and cid; ann capped; dan declines");

    // A new day, a new cap.
    let (s7, sig7) = stored(&store, "AUDUSD", Utc.with_ymd_and_hms(2026, 3, 3, 0, 10, 0).unwrap()).await;
    assert_eq!(router.route(store.as_ref(), s7, &sig7).await.unwrap().queued, 3);
    materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {}).await.unwrap();

    use NotificationStatus::{Failed, Queued};
    assert_eq!(inbox(&store, ann).await, vec![(s1, Queued), (s3, Failed), (s5, Queued), (s7, Queued)]);
    assert_eq!(inbox(&store, bob).await.iter().map(|n| n.0).collect::<Vec<_>>(), vec![s1, s2, s3, s4, s5, s6, s7]);
    assert_eq!(inbox(&store, cid).await, vec![(s6, Queued), (s7, Queued)]);
    // What the store's own check would say agrees with what the router did.
    let day = t0() - Duration::hours(10);
    assert_eq!(store.count_notifications_since(ann, day).await.unwrap(), 3, "two on the first day, one on the second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_notifications_are_written_loses_and_duplicates_nothing() {
    let (store, db) = testkit::db::fresh_store().await;
    let clock = ManualClock::new(t0());
    let mut users = Vec::new();
    for i in 0..40 {
        let settings = (i % 4 == 0)
            .then(|| UserSettings { preferred_pairs: vec![Symbol::normalize("XAUUSD")], ..UserSettings::default() });
        users.push((user(&store, &format!("user {i}"), settings).await, i % 4 != 0));
    }
    let (s1, sig1) = stored(&store, "EURUSD", t0()).await;
    let mut first = router(&clock, "first");
    assert_eq!(first.route(store.as_ref(), s1, &sig1).await.unwrap().queued, 30);
    // The process dies here: no materialising, no lease release, the pool dropped.
    drop(first);
    drop(store);

    let store = store::connect(db.url()).await.unwrap();
    assert_eq!(store.pending_audiences(10).await.unwrap().len(), 1);
    let mut second = router(&clock, "second");
    let (s2, sig2) = stored(&store, "EURUSD", t0() + Duration::minutes(20)).await;
    // The dead router's lease still runs: nobody routes until it expires.
    assert!(matches!(second.route(store.as_ref(), s2, &sig2).await, Err(RouteError::NotLeader)));
    clock.advance(LEASE_TTL + Duration::seconds(1));
    // The successor writes what its predecessor decided before deciding anything, so the cooldown holds.
    let routed = second.route(store.as_ref(), s2, &sig2).await.unwrap();
    assert_eq!((routed.queued, routed.cooling_down), (0, 30));
    assert!(store.pending_audiences(10).await.unwrap().is_empty());
    for (user, wants) in &users {
        let expected = if *wants { vec![(s1, NotificationStatus::Queued)] } else { vec![] };
        assert_eq!(inbox(&store, *user).await, expected);
    }

    // Again, dying halfway through writing the rows: the rest are written once, by whoever comes next.
    let (s3, sig3) = stored(&store, "GBPUSD", t0() + Duration::minutes(21)).await;
    assert_eq!(second.route(store.as_ref(), s3, &sig3).await.unwrap().queued, 30);
    let progress = store.materialise_audience(s3, 12).await.unwrap();
    assert_eq!((progress.created, progress.remaining), (12, 18));
    drop(second);
    drop(store);
    let store = store::connect(db.url()).await.unwrap();
    assert_eq!(materialise_pending(store.as_ref(), 5, |_| {}).await.unwrap(), 18);
    assert_eq!(materialise_pending(store.as_ref(), 5, |_| {}).await.unwrap(), 0);
    for (user, wants) in &users {
        let expected: Vec<SignalId> = if *wants { vec![s1, s3] } else { vec![] };
        assert_eq!(inbox(&store, *user).await.iter().map(|n| n.0).collect::<Vec<_>>(), expected);
    }
    // Routing the signals again, as a lagging bus would, writes nothing new.
    clock.advance(LEASE_TTL + Duration::seconds(1));
    let mut third = router(&clock, "third");
    for (id, s) in [(s1, &sig1), (s2, &sig2), (s3, &sig3)] {
        assert_eq!(third.route(store.as_ref(), id, s).await.unwrap().queued, 0);
    }
    assert_eq!(materialise_pending(store.as_ref(), 5, |_| {}).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_router_waits_for_the_lease_and_a_deposed_one_writes_nothing() {
    let (store, _db) = testkit::db::fresh_store().await;
    let clock = ManualClock::new(t0());
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(user(&store, &format!("user {i}"), Some(limits(5, 0))).await);
    }
    let mut a = router(&clock, "a");
    let mut b = router(&clock, "b");
    let (s1, sig1) = stored(&store, "EURUSD", t0()).await;
    assert_eq!(a.route(store.as_ref(), s1, &sig1).await.unwrap().queued, 10);
    let (s2, sig2) = stored(&store, "GBPUSD", t0() + Duration::seconds(1)).await;
    assert!(matches!(b.route(store.as_ref(), s2, &sig2).await, Err(RouteError::NotLeader)));

    // a stalls (a long pause, a partition) past its lease; b takes over and routes, counting a's audience.
    clock.advance(LEASE_TTL + Duration::seconds(1));
    assert_eq!(b.route(store.as_ref(), s2, &sig2).await.unwrap().queued, 10);
    // a wakes up and tries to route with what it remembers: fenced off, nothing written.
    let (s3, sig3) = stored(&store, "USDJPY", t0() + Duration::seconds(2)).await;
    assert!(matches!(a.route(store.as_ref(), s3, &sig3).await, Err(RouteError::LeaseLost)));
    assert!(a.lease().is_none());
    // b wrote a's s1 rows when it took over; s2 is its own; s3 has no audience.
    let pending: Vec<SignalId> = store.pending_audiences(10).await.unwrap().iter().map(|a| a.signal_id).collect();
    assert_eq!(pending, vec![s2]);
    assert_eq!(b.route(store.as_ref(), s3, &sig3).await.unwrap().queued, 10);

    // Both race over more signals for other pairs: whichever holds the lease routes; the cap of 5 holds.
    let mut racers = Vec::new();
    let mut pending = Vec::new();
    for (i, symbol) in ["AUDUSD", "NZDUSD", "USDCAD", "EURGBP"].iter().enumerate() {
        pending.push(stored(&store, symbol, t0() + Duration::seconds(3 + i as i64)).await);
    }
    for mut r in [a, b] {
        let (store, pending) = (store.clone(), pending.clone());
        racers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for (id, s) in &pending {
                outcomes.push(r.route(store.as_ref(), *id, s).await.map_err(|e| e.to_string()));
            }
            outcomes
        }));
    }
    let mut queued = 0;
    for racer in racers {
        for outcome in racer.await.unwrap() {
            match outcome {
                Ok(routed) => queued += routed.queued,
                Err(error) => assert!(error.contains("lease"), "{error}"),
            }
        }
    }
    assert_eq!(queued, 20, "two more each fit under the cap");
    materialise_pending(store.as_ref(), MATERIALISE_BATCH, |_| {}).await.unwrap();
    for user in &users {
        let got = inbox(&store, *user).await.iter().map(|n| n.0).collect::<Vec<_>>();
        assert_eq!(got, vec![s1, s2, s3, pending[0].0, pending[1].0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_off_route_writes_every_notification_and_gives_the_lease_back() {
    let (store, _db) = testkit::db::fresh_store().await;
    let ann = user(&store, "ann", None).await;
    let (s1, sig1) = stored(&store, "EURUSD", t0()).await;
    let routed = signalpost::router::route(store.as_ref(), s1, &sig1).await.unwrap();
    assert_eq!(routed.queued, 1);
    assert_eq!(inbox(&store, ann).await, vec![(s1, NotificationStatus::Queued)]);
    // The lease is free again at once.
    assert!(store.acquire_router_lease("next", Utc::now(), LEASE_TTL).await.unwrap().is_some());
}

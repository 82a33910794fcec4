//! The followers, copy orders and partial closes part of the store's contract (issue 6), run against both
//! backends like `contract.rs`: each test is one `async fn(Arc<dyn Store>, &DbGuard)` and `contract!` turns
//! it into `sqlite::<name>` and `postgres::<name>`. The PostgreSQL tests use `TEST_DATABASE_URL` and print
//! `skipped: …` and pass when it is unset.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    CloseReason, Closing, Entry, Lots, NewTrade, Price, Side, Signal, SignalId, SignalSource, Symbol, Timeframe,
    TradeId, TradeResult, TradeStatus, TradeUpdateKind, UserId,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;
use store::{
    BrokerCredentials, BrokerKind, CopyStatus, FollowerDayStats, FollowerId, KeyCipher, NewCopy, NewFollower,
    NewProviderMessage, NewUser, PlacedCopy, ProviderMessageKind, Role, Store, StoreError, TradeFilter,
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
    followers_are_saved_updated_and_keep_their_keys,
    followers_of_skips_disabled_and_only_owners_toggle,
    begin_copies_is_idempotent_and_never_returns_finished_rows,
    begin_copies_refuses_a_taken_client_order_id_and_a_foreign_user,
    concurrent_begin_copies_share_one_row_per_follower,
    finish_copy_placed_opens_exactly_one_trade,
    finish_copies_placed_answers_each_copy_of_a_batch,
    finish_copy_unplaced_records_why,
    follower_day_stats_count_open_today_total_and_partials,
    provider_updates_find_their_signal,
    a_provider_signal_begins_its_copies_in_the_same_transaction,
    partial_close_splits_the_trade_or_writes_nothing,
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

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store.create_user(&NewUser { discord_user_id: None, display_name: name.into(), role: Role::User }).await.unwrap().id
}

fn provider_signal(channel: &str, symbol: &str, created_at: DateTime<Utc>) -> Signal {
    Signal {
        symbol: Symbol::normalize(symbol),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Entry::Price { price: p("1.0854") },
        stop_loss: Some(p("1.08")),
        take_profits: vec![p("1.0962")],
        leverage: None,
        confidence: None,
        source: SignalSource::Provider(channel.into()),
        model_version: None,
        stage1_prob: None,
        stage2_prob: None,
        created_at,
    }
}

async fn signal_at(store: &Arc<dyn Store>, at: DateTime<Utc>) -> SignalId {
    store.insert_signal(&provider_signal("111", "EURUSD", at), None).await.unwrap().0
}

fn keys() -> BrokerCredentials {
    BrokerCredentials { api_key: "key-id-123".into(), api_secret: "secret-456".into() }
}

fn new_follower<'a>(
    user: UserId,
    channel: &'a str,
    broker: BrokerKind,
    settings: &'a risk::FollowerRiskSettings,
    at: DateTime<Utc>,
) -> NewFollower<'a> {
    NewFollower {
        user_id: user,
        provider_channel: channel,
        broker,
        sealed_credentials: None,
        risk_settings: settings,
        balance: dec!(10000),
        currency: "USD",
        at,
    }
}

async fn paper_follower(store: &Arc<dyn Store>, user: UserId, channel: &str) -> FollowerId {
    let settings = risk::FollowerRiskSettings::default();
    store.save_follower(&new_follower(user, channel, BrokerKind::Paper, &settings, t0())).await.unwrap().id
}

fn trade_for(user: UserId, opened_at: DateTime<Utc>) -> NewTrade {
    NewTrade::new(user, "EURUSD", Side::Long, p("1.0854"), lots("0.5"), Some(p("1.08")), Some(p("1.0962")), opened_at)
        .unwrap()
}

fn closing(at: DateTime<Utc>, profit: Decimal) -> Closing {
    Closing {
        exit_price: p("1.0900"),
        reason: CloseReason::ManualClose,
        at,
        result: if profit >= Decimal::ZERO { TradeResult::Win } else { TradeResult::Loss },
        pips: Some(dec!(46)),
        profit: Some(profit),
    }
}

fn user_trades(user: UserId) -> TradeFilter {
    TradeFilter { user_id: Some(user), ..TradeFilter::default() }
}

/// The per-user trades version the migration 0009 triggers keep.
async fn trades_version(db: &DbGuard, user: UserId) -> i64 {
    const SQL: &str = "SELECT version FROM user_trade_versions WHERE user_id = $1";
    let version: Option<i64> = if db.is_postgres() {
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        let v = sqlx::query_scalar(SQL).bind(user.0).fetch_optional(&pool).await.unwrap();
        pool.close().await;
        v
    } else {
        let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
        let v = sqlx::query_scalar(SQL).bind(user.0).fetch_optional(&pool).await.unwrap();
        pool.close().await;
        v
    };
    version.unwrap_or_default()
}

/// Begins one copy order and returns it (it must be new or still pending).
async fn begin_one(
    store: &Arc<dyn Store>,
    signal: SignalId,
    follower: FollowerId,
    user: UserId,
    client: &str,
    at: DateTime<Utc>,
) -> store::CopyOrder {
    let copies = [NewCopy { follower_id: follower, user_id: user, client_order_id: client }];
    store.begin_copies(signal, &copies, at).await.unwrap().remove(0)
}

/// Begins and places one copy of a new signal for `follower`, created at `at`; returns the trade.
async fn placed_copy(
    store: &Arc<dyn Store>,
    follower: FollowerId,
    user: UserId,
    client: &str,
    at: DateTime<Utc>,
) -> domain::Trade {
    let signal = signal_at(store, at).await;
    let copy = begin_one(store, signal, follower, user, client, at).await;
    store.finish_copy_placed(copy.id, &format!("b-{client}"), &trade_for(user, at), at).await.unwrap().unwrap()
}

// ---------- followers ----------

async fn followers_are_saved_updated_and_keep_their_keys(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let cipher = KeyCipher::generate();
    let draft = risk::RiskSettingsDraft { max_open_positions: 7, signals_per_day: Some(4), ..Default::default() };
    let settings = risk::FollowerRiskSettings::new_checked(draft).unwrap();

    let mut new = new_follower(alice, "111", BrokerKind::BinanceSpot, &settings, t0());
    new.sealed_credentials = Some(cipher.seal(&keys(), alice));
    let first = store.save_follower(&new).await.unwrap();
    assert_eq!((first.user_id, first.provider_channel.as_str(), first.broker), (alice, "111", BrokerKind::BinanceSpot));
    assert_eq!(first.risk_settings, settings);
    assert_eq!((first.balance, first.currency.as_str(), first.enabled), (dec!(10000), "USD", true));
    assert_eq!((first.created_at, first.updated_at), (t0(), t0()));
    assert_eq!(cipher.open(first.sealed_credentials.as_ref().unwrap(), alice).unwrap(), keys());
    let shown = format!("{first:?}");
    assert!(shown.contains("[sealed]") && !shown.contains("secret-456"), "{shown}");
    assert_eq!(store.get_follower(first.id).await.unwrap().as_ref(), Some(&first));

    // Re-saving the settings without keys keeps the stored ones, the id and the creation time, and enables.
    assert!(store.set_follower_enabled(alice, first.id, false).await.unwrap());
    let later = t0() + Duration::hours(1);
    let mut update = new_follower(alice, "111", BrokerKind::BinanceSpot, &settings, later);
    update.balance = dec!(2500.50);
    update.currency = "EUR";
    let second = store.save_follower(&update).await.unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!((second.created_at, second.updated_at), (t0(), later));
    assert_eq!((second.balance, second.currency.as_str(), second.enabled), (dec!(2500.50), "EUR", true));
    assert_eq!(second.sealed_credentials, first.sealed_credentials, "the keys are kept");

    // Another broker without keys is refused and changes nothing.
    let refused = store.save_follower(&new_follower(alice, "111", BrokerKind::Alpaca, &settings, later)).await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
    assert_eq!(store.get_follower(first.id).await.unwrap().unwrap(), second);
    let refused = store.save_follower(&new_follower(alice, "222", BrokerKind::BinanceFutures, &settings, later)).await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
    assert_eq!(store.followers_for_user(alice).await.unwrap().len(), 1, "no row for the refused follower");

    // Paper needs no keys and keeps none; going back to a real broker then needs them again.
    let mut paper = new_follower(alice, "111", BrokerKind::Paper, &settings, later);
    paper.sealed_credentials = Some(cipher.seal(&keys(), alice));
    let third = store.save_follower(&paper).await.unwrap();
    assert_eq!((third.id, third.broker, third.sealed_credentials.as_ref()), (first.id, BrokerKind::Paper, None));
    let refused = store.save_follower(&new_follower(alice, "111", BrokerKind::BinanceSpot, &settings, later)).await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");

    // Bad input.
    for (currency, balance) in [("usd", dec!(1)), ("USD", dec!(0)), ("USD", dec!(-5))] {
        let mut bad = new_follower(alice, "333", BrokerKind::Paper, &settings, t0());
        bad.currency = currency;
        bad.balance = balance;
        let refused = store.save_follower(&bad).await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{currency} {balance}: {refused:?}");
    }
    let blank = store.save_follower(&new_follower(alice, " ", BrokerKind::Paper, &settings, t0())).await;
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");
    let nobody = store.save_follower(&new_follower(UserId(9999), "111", BrokerKind::Paper, &settings, t0())).await;
    assert!(matches!(nobody, Err(StoreError::MissingReference { .. })), "{nobody:?}");
    assert!(store.get_follower(FollowerId(9999)).await.unwrap().is_none());
}

async fn followers_of_skips_disabled_and_only_owners_toggle(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let a1 = paper_follower(&store, alice, "111").await;
    let b1 = paper_follower(&store, bob, "111").await;
    let a2 = paper_follower(&store, alice, store::WEBHOOK_CHANNEL).await;
    let ids = |fs: Vec<store::Follower>| fs.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(ids(store.followers_of("111").await.unwrap()), [a1, b1]);
    assert_eq!(ids(store.followers_of(store::WEBHOOK_CHANNEL).await.unwrap()), [a2]);
    assert!(store.followers_of("999").await.unwrap().is_empty());

    assert!(!store.set_follower_enabled(bob, a1, false).await.unwrap(), "not bob's row");
    assert!(!store.set_follower_enabled(alice, FollowerId(9999), false).await.unwrap());
    assert_eq!(ids(store.followers_of("111").await.unwrap()), [a1, b1]);
    assert!(store.set_follower_enabled(alice, a1, false).await.unwrap());
    assert_eq!(ids(store.followers_of("111").await.unwrap()), [b1]);
    let mine = store.followers_for_user(alice).await.unwrap();
    assert_eq!(mine.iter().map(|f| (f.id, f.enabled)).collect::<Vec<_>>(), [(a1, false), (a2, true)]);
    assert!(store.set_follower_enabled(alice, a1, true).await.unwrap());
    assert_eq!(ids(store.followers_of("111").await.unwrap()), [a1, b1]);
}

// ---------- copy orders ----------

async fn begin_copies_is_idempotent_and_never_returns_finished_rows(store: Arc<dyn Store>, _db: &DbGuard) {
    let users = [user(&store, "a").await, user(&store, "b").await, user(&store, "c").await];
    let mut followers = Vec::new();
    for u in users {
        followers.push(paper_follower(&store, u, "111").await);
    }
    let signal = signal_at(&store, t0()).await;
    let clients = ["c-1", "c-2", "c-3"];
    let copies: Vec<NewCopy> =
        (0..3).map(|i| NewCopy { follower_id: followers[i], user_id: users[i], client_order_id: clients[i] }).collect();
    let first = store.begin_copies(signal, &copies, t0()).await.unwrap();
    assert_eq!(first.len(), 3);
    for (i, copy) in first.iter().enumerate() {
        assert_eq!((copy.follower_id, copy.user_id, copy.signal_id), (followers[i], users[i], signal));
        assert_eq!((copy.client_order_id.as_str(), copy.status), (clients[i], CopyStatus::Pending));
        assert_eq!((copy.created_at, copy.updated_at), (t0(), t0()));
        assert_eq!((copy.gate.as_ref(), copy.reason.as_ref(), copy.trade_id), (None, None, None));
    }

    // A second run (a restart, a replayed event) gets the same rows and client order ids back.
    let rerun: Vec<NewCopy> = (0..3)
        .map(|i| NewCopy { follower_id: followers[i], user_id: users[i], client_order_id: ["x-1", "x-2", "x-3"][i] })
        .collect();
    let later = t0() + Duration::minutes(1);
    assert_eq!(store.begin_copies(signal, &rerun, later).await.unwrap(), first);

    // Finished rows never come back.
    assert!(
        store
            .finish_copy_unplaced(first[0].id, CopyStatus::Refused, Some("max_open_positions"), "full", later)
            .await
            .unwrap()
    );
    store.finish_copy_placed(first[1].id, "B-1", &trade_for(users[1], later), later).await.unwrap().unwrap();
    let third = store.begin_copies(signal, &rerun, later).await.unwrap();
    assert_eq!(third, vec![first[2].clone()]);
    let all = store.copy_orders_for_signal(signal).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.status).collect::<Vec<_>>(),
        [CopyStatus::Refused, CopyStatus::Placed, CopyStatus::Pending]
    );

    // A follower listed twice gets one row; an empty list is nothing.
    let other = signal_at(&store, later).await;
    let twice = [
        NewCopy { follower_id: followers[0], user_id: users[0], client_order_id: "d-1" },
        NewCopy { follower_id: followers[0], user_id: users[0], client_order_id: "d-2" },
    ];
    let once = store.begin_copies(other, &twice, later).await.unwrap();
    assert_eq!(once.len(), 1);
    assert_eq!(once[0].client_order_id, "d-1");
    assert!(store.begin_copies(other, &[], later).await.unwrap().is_empty());
    assert_eq!(store.copy_orders_for_signal(other).await.unwrap().len(), 1);
}

async fn begin_copies_refuses_a_taken_client_order_id_and_a_foreign_user(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let fa = paper_follower(&store, alice, "111").await;
    let fb = paper_follower(&store, bob, "111").await;
    let s1 = signal_at(&store, t0()).await;
    store.begin_copies(s1, &[NewCopy { follower_id: fa, user_id: alice, client_order_id: "dup" }], t0()).await.unwrap();

    let s2 = signal_at(&store, t0()).await;
    let batch = [
        NewCopy { follower_id: fa, user_id: alice, client_order_id: "fresh" },
        NewCopy { follower_id: fb, user_id: bob, client_order_id: "dup" },
    ];
    let taken = store.begin_copies(s2, &batch, t0()).await;
    assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
    assert!(store.copy_orders_for_signal(s2).await.unwrap().is_empty(), "the whole batch is rolled back");

    let foreign =
        store.begin_copies(s2, &[NewCopy { follower_id: fa, user_id: bob, client_order_id: "z" }], t0()).await;
    assert!(matches!(foreign, Err(StoreError::Invalid(_))), "{foreign:?}");
    assert!(store.copy_orders_for_signal(s2).await.unwrap().is_empty());

    let blank =
        store.begin_copies(s2, &[NewCopy { follower_id: fa, user_id: alice, client_order_id: " " }], t0()).await;
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");
    let unknown = [NewCopy { follower_id: FollowerId(9999), user_id: alice, client_order_id: "u" }];
    let unknown = store.begin_copies(s2, &unknown, t0());
    assert!(matches!(unknown.await, Err(StoreError::MissingReference { .. })));
    assert!(store.copy_orders_for_signal(s2).await.unwrap().is_empty());
}

async fn concurrent_begin_copies_share_one_row_per_follower(store: Arc<dyn Store>, _db: &DbGuard) {
    let mut followers = Vec::new();
    for i in 0..40 {
        let u = user(&store, &format!("user{i}")).await;
        followers.push((paper_follower(&store, u, "111").await, u));
    }
    let signal = signal_at(&store, t0()).await;
    let ids_a: Vec<String> = (0..40).map(|i| format!("a-{i}")).collect();
    let ids_b: Vec<String> = (0..40).map(|i| format!("b-{i}")).collect();
    fn copies<'a>(followers: &[(FollowerId, UserId)], ids: &'a [String]) -> Vec<NewCopy<'a>> {
        followers
            .iter()
            .zip(ids)
            .map(|((f, u), id)| NewCopy { follower_id: *f, user_id: *u, client_order_id: id })
            .collect()
    }
    let (copies_a, copies_b) = (copies(&followers, &ids_a), copies(&followers, &ids_b));
    let (a, b) = tokio::join!(store.begin_copies(signal, &copies_a, t0()), store.begin_copies(signal, &copies_b, t0()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let stored = store.copy_orders_for_signal(signal).await.unwrap();
    assert_eq!(stored.len(), 40, "one row per follower");
    // Both callers see the one row of each follower (still pending), with the client order id of whichever
    // inserted it.
    assert_eq!(a, stored);
    assert_eq!(b, stored);
    for (copy, (follower, _)) in stored.iter().zip(&followers) {
        assert_eq!(copy.follower_id, *follower);
    }
}

async fn finish_copies_placed_answers_each_copy_of_a_batch(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let fa = paper_follower(&store, alice, "111").await;
    let fb = paper_follower(&store, bob, "111").await;
    let fc = paper_follower(&store, carol, "111").await;
    let signal = signal_at(&store, t0()).await;
    let ca = begin_one(&store, signal, fa, alice, "ca", t0()).await;
    let cb = begin_one(&store, signal, fb, bob, "cb", t0()).await;
    let cc = begin_one(&store, signal, fc, carol, "cc", t0()).await;
    let at = t0() + Duration::seconds(2);
    // Carol's copy was finished by another run already.
    store.finish_copy_placed(cc.id, "C-0", &trade_for(carol, at), at).await.unwrap().unwrap();

    let mut inverted = trade_for(bob, at);
    inverted.stop_loss = Some(p("200"));
    let placed = |id, broker: &str, trade| PlacedCopy { id, broker_order_id: broker.into(), trade, at };
    let answers = store
        .finish_copies_placed(&[
            placed(ca.id, "A-1", trade_for(alice, at)),
            // Levels on the wrong side: refused before anything is written.
            placed(cb.id, "B-1", inverted),
            placed(cc.id, "C-1", trade_for(carol, at)),
            // Alice's trade on Bob's copy.
            placed(cb.id, "B-2", trade_for(alice, at)),
            placed(store::CopyOrderId(9999), "X", trade_for(alice, at)),
        ])
        .await
        .unwrap();
    assert_eq!(answers.len(), 5);
    let opened = answers[0].as_ref().unwrap().as_ref().expect("alice's copy opens a trade");
    assert_eq!((opened.user_id, opened.signal_id), (alice, Some(signal)));
    assert!(matches!(answers[1], Err(StoreError::Invalid(_))), "{:?}", answers[1]);
    assert!(matches!(answers[2], Ok(None)), "{:?}", answers[2]);
    assert!(matches!(answers[3], Err(StoreError::Invalid(_))), "{:?}", answers[3]);
    assert!(matches!(answers[4], Err(StoreError::NotFound { .. })), "{:?}", answers[4]);

    // Only Alice's copy changed; Bob's is still pending, Carol's kept its first order.
    let rows = store.copy_orders_for_signal(signal).await.unwrap();
    let by_user = |u| rows.iter().find(|r| r.user_id == u).unwrap();
    assert_eq!((by_user(alice).status, by_user(alice).broker_order_id.as_deref()), (CopyStatus::Placed, Some("A-1")));
    assert_eq!(by_user(bob).status, CopyStatus::Pending);
    assert_eq!(by_user(bob).updated_at, t0());
    assert_eq!(by_user(carol).broker_order_id.as_deref(), Some("C-0"));
    assert_eq!(store.count_trades(&user_trades(bob)).await.unwrap(), 0);
    assert_eq!(store.count_trades(&user_trades(carol)).await.unwrap(), 1);
    assert!(store.finish_copies_placed(&[]).await.unwrap().is_empty());
}

async fn finish_copy_placed_opens_exactly_one_trade(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let fa = paper_follower(&store, alice, "111").await;
    let signal = signal_at(&store, t0()).await;
    let copy = begin_one(&store, signal, fa, alice, "c1", t0()).await;
    let at = t0() + Duration::seconds(3);

    // The trade must be the copy's user's; a refused placement leaves the copy pending.
    let wrong = store.finish_copy_placed(copy.id, "B-1", &trade_for(bob, at), at).await;
    assert!(matches!(wrong, Err(StoreError::Invalid(_))), "{wrong:?}");
    let mut other_signal = trade_for(alice, at);
    other_signal.signal_id = Some(SignalId(signal.0 + 100));
    let wrong = store.finish_copy_placed(copy.id, "B-1", &other_signal, at).await;
    assert!(matches!(wrong, Err(StoreError::Invalid(_))), "{wrong:?}");
    assert_eq!(store.count_trades(&user_trades(alice)).await.unwrap(), 0);

    let trade = store.finish_copy_placed(copy.id, "B-1", &trade_for(alice, at), at).await.unwrap().unwrap();
    assert_eq!((trade.user_id, trade.signal_id, trade.status), (alice, Some(signal), TradeStatus::Open));
    let history = store.trade_updates(trade.id).await.unwrap();
    assert_eq!(history.iter().map(|u| u.kind).collect::<Vec<_>>(), [TradeUpdateKind::Opened]);
    let placed = &store.copy_orders_for_signal(signal).await.unwrap()[0];
    assert_eq!(placed.status, CopyStatus::Placed);
    assert_eq!((placed.broker_order_id.as_deref(), placed.trade_id), (Some("B-1"), Some(trade.id)));
    assert_eq!((placed.created_at, placed.updated_at), (t0(), at));

    // Finished: a second placement or an unplaced finish writes nothing.
    assert!(store.finish_copy_placed(copy.id, "B-2", &trade_for(alice, at), at).await.unwrap().is_none());
    assert!(!store.finish_copy_unplaced(copy.id, CopyStatus::Failed, None, "late", at).await.unwrap());
    assert_eq!(store.count_trades(&user_trades(alice)).await.unwrap(), 1);
    assert_eq!(store.copy_orders_for_signal(signal).await.unwrap()[0], placed.clone());
    let missing = store.finish_copy_placed(store::CopyOrderId(9999), "B", &trade_for(alice, at), at).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");

    // Newest first for the user; pending leftovers oldest first and only before the cut-off.
    let s2 = signal_at(&store, t0()).await;
    let s3 = signal_at(&store, t0()).await;
    let c2 = begin_one(&store, s2, fa, alice, "c2", at).await;
    let c3 = begin_one(&store, s3, fa, alice, "c3", at + Duration::minutes(1)).await;
    let mine = store.copy_orders_for_user(alice, 10).await.unwrap();
    assert_eq!(mine.iter().map(|c| c.id).collect::<Vec<_>>(), [c3.id, c2.id, copy.id]);
    assert_eq!(store.copy_orders_for_user(alice, 1).await.unwrap().len(), 1);
    assert!(store.copy_orders_for_user(bob, 10).await.unwrap().is_empty());
    let pending = store.pending_copies(at + Duration::hours(1), 10).await.unwrap();
    assert_eq!(pending.iter().map(|c| c.id).collect::<Vec<_>>(), [c2.id, c3.id]);
    let pending = store.pending_copies(at + Duration::seconds(30), 10).await.unwrap();
    assert_eq!(pending.iter().map(|c| c.id).collect::<Vec<_>>(), [c2.id]);
    assert_eq!(store.pending_copies(at + Duration::hours(1), 1).await.unwrap().len(), 1);
}

async fn finish_copy_unplaced_records_why(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let fa = paper_follower(&store, alice, "111").await;
    let signal = signal_at(&store, t0()).await;
    let copy = begin_one(&store, signal, fa, alice, "c1", t0()).await;
    let at = t0() + Duration::seconds(1);
    for status in [CopyStatus::Pending, CopyStatus::Placed] {
        let refused = store.finish_copy_unplaced(copy.id, status, None, "x", at).await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{status}: {refused:?}");
    }
    assert!(
        store
            .finish_copy_unplaced(copy.id, CopyStatus::Refused, Some("daily_loss"), "daily loss limit hit", at)
            .await
            .unwrap()
    );
    let stored = &store.copy_orders_for_signal(signal).await.unwrap()[0];
    assert_eq!(stored.status, CopyStatus::Refused);
    assert_eq!((stored.gate.as_deref(), stored.reason.as_deref()), (Some("daily_loss"), Some("daily loss limit hit")));
    assert_eq!((stored.updated_at, stored.trade_id), (at, None));
    assert!(!store.finish_copy_unplaced(copy.id, CopyStatus::Rejected, None, "again", at).await.unwrap());
    assert_eq!(store.copy_orders_for_signal(signal).await.unwrap()[0].status, CopyStatus::Refused);

    for (i, status) in [CopyStatus::Rejected, CopyStatus::Failed].into_iter().enumerate() {
        let s = signal_at(&store, t0()).await;
        let client = format!("r{i}");
        let c = begin_one(&store, s, fa, alice, &client, t0()).await;
        assert!(store.finish_copy_unplaced(c.id, status, None, "insufficient balance", at).await.unwrap());
        assert_eq!(store.copy_orders_for_signal(s).await.unwrap()[0].status, status);
    }
}

async fn follower_day_stats_count_open_today_total_and_partials(store: Arc<dyn Store>, _db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let f1 = paper_follower(&store, alice, "111").await;
    let f2 = paper_follower(&store, bob, "111").await;
    let f3 = paper_follower(&store, bob, "222").await;
    let day = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let yesterday = day - Duration::hours(5);
    let today = day + Duration::hours(2);

    // Copied and closed yesterday: total only.
    let t1 = placed_copy(&store, f1, alice, "k1", yesterday).await;
    store.close_trade(t1.id, &closing(yesterday + Duration::hours(1), dec!(10.25))).await.unwrap().unwrap();
    // Copied yesterday, closed today: today's P&L, not a signal taken today.
    let t2 = placed_copy(&store, f1, alice, "k2", yesterday).await;
    store.close_trade(t2.id, &closing(today, dec!(-4))).await.unwrap().unwrap();
    // Copied today and open.
    placed_copy(&store, f1, alice, "k3", today).await;
    // Copied yesterday, partly closed yesterday and today, the rest open: only today's part counts today.
    let t4 = placed_copy(&store, f1, alice, "k4", yesterday + Duration::hours(2)).await;
    store.partially_close_trade(t4.id, lots("0.1"), &closing(yesterday + Duration::hours(3), dec!(1))).await.unwrap();
    store.partially_close_trade(t4.id, lots("0.2"), &closing(today, dec!(3))).await.unwrap().unwrap();
    // Refused and pending copies are no positions and no signals taken.
    let s5 = signal_at(&store, today).await;
    let c5 = begin_one(&store, s5, f1, alice, "k5", today).await;
    store.finish_copy_unplaced(c5.id, CopyStatus::Refused, Some("hours"), "outside hours", today).await.unwrap();
    let s6 = signal_at(&store, today).await;
    store.begin_copies(s6, &[NewCopy { follower_id: f1, user_id: alice, client_order_id: "k6" }], today).await.unwrap();
    // A trade of alice's own, not copied, is not the follower's.
    let own = store.open_trade(&trade_for(alice, today)).await.unwrap().trade;
    store.close_trade(own.id, &closing(today, dec!(100))).await.unwrap().unwrap();
    // Bob's follower f2: one copy placed today, closed today.
    let tb = placed_copy(&store, f2, bob, "b1", today).await;
    store.close_trade(tb.id, &closing(today + Duration::minutes(5), dec!(2.5))).await.unwrap().unwrap();

    let stats = store.follower_day_stats(&[f1, f2, f3, FollowerId(9999)], day).await.unwrap();
    assert_eq!(stats.len(), 4);
    assert_eq!(
        stats[&f1],
        FollowerDayStats {
            open_positions: 2,
            realised_pnl_today: dec!(-1),
            realised_pnl_total: dec!(10.25),
            signals_taken_today: 1,
        }
    );
    assert_eq!(
        stats[&f2],
        FollowerDayStats {
            open_positions: 0,
            realised_pnl_today: dec!(2.5),
            realised_pnl_total: dec!(2.5),
            signals_taken_today: 1,
        }
    );
    assert_eq!(stats[&f3], FollowerDayStats::default());
    assert_eq!(stats[&FollowerId(9999)], FollowerDayStats::default());
    assert!(store.follower_day_stats(&[], day).await.unwrap().is_empty());
    // The next day starts clean but keeps the total.
    let next = store.follower_day_stats(&[f1], day + Duration::days(1)).await.unwrap();
    assert_eq!(next[&f1].realised_pnl_today, Decimal::ZERO);
    assert_eq!(next[&f1].signals_taken_today, 0);
    assert_eq!((next[&f1].open_positions, next[&f1].realised_pnl_total), (2, dec!(10.25)));
}

// ---------- provider updates ----------

async fn provider_updates_find_their_signal(store: Arc<dyn Store>, _db: &DbGuard) {
    async fn post(
        store: &Arc<dyn Store>,
        channel: &str,
        id: &str,
        symbol: Option<&str>,
        minutes: i64,
        reply_to: Option<&str>,
    ) -> Option<SignalId> {
        let at = t0() + Duration::minutes(minutes);
        let signal = symbol.map(|s| provider_signal(channel, s, at));
        let new = NewProviderMessage {
            channel_id: channel,
            message_id: id,
            author: None,
            content: "text",
            hash: "h",
            received_at: at,
            kind: if signal.is_some() { ProviderMessageKind::Open } else { ProviderMessageKind::Update },
            outcome: String::new(),
            signal: signal.as_ref(),
            reply_to,
            begin_copies: None,
        };
        match store.record_provider_message(&new).await.unwrap() {
            store::ProviderIntake::Stored { signal } => signal,
            other => panic!("{other:?}"),
        }
    }
    let s1 = post(&store, "111", "m1", Some("EURUSD"), 0, None).await.unwrap();
    let s2 = post(&store, "111", "m2", Some("GBPUSD"), 1, None).await.unwrap();
    assert!(post(&store, "111", "m3", None, 2, Some("m1")).await.is_none());
    let s4 = post(&store, "111", "m4", Some("EURUSD"), 3, None).await.unwrap();
    store.record_provider_delete("111", "m4", t0() + Duration::minutes(4)).await.unwrap();
    let s5 = post(&store, "222", "m5", Some("EURUSD"), 5, None).await.unwrap();

    let eurusd = Symbol::normalize("EURUSD");
    let find = |reply: Option<&'static str>, symbol: Option<&'static str>| {
        let store = store.clone();
        async move {
            let symbol = symbol.map(Symbol::normalize);
            store.provider_signal_for_update("111", reply, symbol.as_ref()).await.unwrap()
        }
    };
    assert_eq!(find(Some("m1"), None).await, Some(s1), "a reply names its signal");
    assert_eq!(find(Some("m1"), Some("GBPUSD")).await, Some(s1), "the reply wins over the symbol");
    assert_eq!(find(Some("m4"), None).await, Some(s4), "even when the provider deleted it since");
    assert_eq!(find(Some("m3"), None).await, Some(s2), "a reply to a message without a signal: the newest");
    assert_eq!(find(Some("m5"), None).await, Some(s2), "another channel's message is not this channel's");
    assert_eq!(find(None, None).await, Some(s2), "the newest not deleted");
    assert_eq!(find(None, Some("EURUSD")).await, Some(s1), "the newest of the symbol, deleted ones skipped");
    assert_eq!(find(None, Some("XAUUSD")).await, None);
    assert_eq!(store.provider_signal_for_update("222", None, Some(&eurusd)).await.unwrap(), Some(s5));
    assert_eq!(store.provider_signal_for_update("333", Some("m1"), None).await.unwrap(), None);

    let stored = store.provider_messages("111", 10).await.unwrap();
    let m3 = stored.iter().find(|m| m.message_id == "m3").unwrap();
    assert_eq!(m3.reply_to.as_deref(), Some("m1"));
    assert!(stored.iter().filter(|m| m.message_id != "m3").all(|m| m.reply_to.is_none()));

    assert!(store.set_provider_message_outcome("111", "m3", "closed 2 trades").await.unwrap());
    assert!(!store.set_provider_message_outcome("111", "nope", "x").await.unwrap());
    assert!(!store.set_provider_message_outcome("222", "m3", "x").await.unwrap());
    let stored = store.provider_messages("111", 10).await.unwrap();
    assert_eq!(stored.iter().find(|m| m.message_id == "m3").unwrap().outcome, "closed 2 trades");
}

fn client_order_id(signal: SignalId, user: UserId) -> String {
    format!("test-{signal}-{user}")
}

async fn a_provider_signal_begins_its_copies_in_the_same_transaction(store: Arc<dyn Store>, _db: &DbGuard) {
    let (alice, bob, carol) = (user(&store, "alice").await, user(&store, "bob").await, user(&store, "carol").await);
    let a = paper_follower(&store, alice, "111").await;
    let b = paper_follower(&store, bob, "111").await;
    let c = paper_follower(&store, carol, "111").await;
    paper_follower(&store, carol, "222").await;
    assert!(store.set_follower_enabled(bob, b, false).await.unwrap());
    let begun_at = t0() + Duration::seconds(90);
    let record = |id: &'static str, symbol: Option<&'static str>| {
        let store = store.clone();
        async move {
            let signal = symbol.map(|s| provider_signal("111", s, t0()));
            let new = NewProviderMessage {
                channel_id: "111",
                message_id: id,
                author: None,
                content: "text",
                hash: "h",
                received_at: t0(),
                kind: if signal.is_some() { ProviderMessageKind::Open } else { ProviderMessageKind::Noise },
                outcome: String::new(),
                signal: signal.as_ref(),
                reply_to: None,
                begin_copies: Some(store::BeginCopies { client_order_id, at: begun_at }),
            };
            store.record_provider_message(&new).await.unwrap()
        }
    };

    let store::ProviderIntake::Stored { signal: Some(signal) } = record("m1", Some("EURUSD")).await else {
        panic!("the signal is stored")
    };
    let copies = store.copy_orders_for_signal(signal).await.unwrap();
    let begun: Vec<_> =
        copies.iter().map(|c| (c.follower_id, c.user_id, c.client_order_id.as_str(), c.status, c.created_at)).collect();
    let (id_a, id_c) = (client_order_id(signal, alice), client_order_id(signal, carol));
    assert_eq!(
        begun,
        [
            (a, alice, id_a.as_str(), store::CopyStatus::Pending, begun_at),
            (c, carol, id_c.as_str(), store::CopyStatus::Pending, begun_at)
        ],
        "one pending copy per enabled follower of this channel only"
    );
    // The copier's own begin_copies then finds them: no second row, the same ids.
    let again: Vec<store::NewCopy<'_>> = [(a, alice, &id_a), (c, carol, &id_c)]
        .into_iter()
        .map(|(follower_id, user_id, id)| store::NewCopy { follower_id, user_id, client_order_id: id })
        .collect();
    let rows = store.begin_copies(signal, &again, t0() + Duration::minutes(5)).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), copies.iter().map(|r| r.id).collect::<Vec<_>>());

    assert!(matches!(record("m1", Some("EURUSD")).await, store::ProviderIntake::Duplicate { .. }));
    assert!(matches!(record("m2", None).await, store::ProviderIntake::Stored { signal: None }));
    assert_eq!(store.copy_orders_for_signal(signal).await.unwrap().len(), 2, "a replay and noise begin nothing");
}

// ---------- partial closes ----------

async fn partial_close_splits_the_trade_or_writes_nothing(store: Arc<dyn Store>, db: &DbGuard) {
    let alice = user(&store, "alice").await;
    let signal = signal_at(&store, t0()).await;
    let mut new = trade_for(alice, t0());
    new.signal_id = Some(signal);
    let trade = store.open_trade(&new).await.unwrap().trade;
    let version = trades_version(db, alice).await;
    let at = t0() + Duration::hours(1);

    let (rest, part) =
        store.partially_close_trade(trade.id, lots("0.2"), &closing(at, dec!(9.2))).await.unwrap().unwrap();
    assert_eq!((rest.id, rest.lots, rest.status), (trade.id, lots("0.3"), TradeStatus::Open));
    assert_eq!((rest.stop_loss, rest.take_profit, rest.notes.clone()), (trade.stop_loss, trade.take_profit, None));
    assert_ne!(part.id, trade.id);
    assert_eq!(
        (part.user_id, part.symbol.clone(), part.side, part.entry),
        (alice, trade.symbol.clone(), trade.side, trade.entry)
    );
    assert_eq!(
        (part.lots, part.status, part.opened_at, part.closed_at),
        (lots("0.2"), TradeStatus::Closed, t0(), Some(at))
    );
    assert_eq!((part.stop_loss, part.take_profit, part.signal_id), (trade.stop_loss, trade.take_profit, Some(signal)));
    assert_eq!(
        (part.exit_price, part.close_reason, part.result),
        (Some(p("1.0900")), Some(CloseReason::ManualClose), Some(TradeResult::Win))
    );
    assert_eq!((part.pips, part.profit), (Some(dec!(46)), Some(dec!(9.2))));
    assert_eq!(part.notes, Some(format!("partial close of #{}", trade.id.0)));
    assert_eq!(part.notification_id, None);
    assert_eq!(store.get_trade(trade.id).await.unwrap().unwrap(), rest);
    assert_eq!(store.get_trade(part.id).await.unwrap().unwrap(), part);
    let history = store.trade_updates(trade.id).await.unwrap();
    assert_eq!(
        history.iter().map(|u| u.kind).collect::<Vec<_>>(),
        [TradeUpdateKind::Opened, TradeUpdateKind::PartialClose]
    );
    assert_eq!((history[1].price, history[1].created_at), (Some(p("1.0900")), at));
    assert!(trades_version(db, alice).await > version, "a partial close is a trade write");
    assert_eq!(store.open_trade_ids().await.unwrap(), [trade.id], "the closed part is not open");

    // The rest (0.3) or more cannot be "partly" closed; nothing is written.
    let version = trades_version(db, alice).await;
    for size in ["0.3", "0.5", "1"] {
        assert!(
            store.partially_close_trade(trade.id, lots(size), &closing(at, dec!(1))).await.unwrap().is_none(),
            "{size}"
        );
    }
    assert_eq!(store.count_trades(&user_trades(alice)).await.unwrap(), 2);
    assert_eq!(store.get_trade(trade.id).await.unwrap().unwrap().lots, lots("0.3"));
    assert_eq!(store.trade_updates(trade.id).await.unwrap().len(), 2);
    assert_eq!(trades_version(db, alice).await, version);

    // A closed trade cannot be partly closed; an unknown one is not found.
    store.close_trade(trade.id, &closing(at, dec!(5))).await.unwrap().unwrap();
    assert!(store.partially_close_trade(trade.id, lots("0.1"), &closing(at, dec!(1))).await.unwrap().is_none());
    assert!(store.partially_close_trade(part.id, lots("0.1"), &closing(at, dec!(1))).await.unwrap().is_none());
    assert_eq!(store.count_trades(&user_trades(alice)).await.unwrap(), 2);
    let missing = store.partially_close_trade(TradeId(9999), lots("0.1"), &closing(at, dec!(1))).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
}

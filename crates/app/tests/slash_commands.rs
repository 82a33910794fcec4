//! The slash commands end to end through the real app: signed interactions on `POST /discord/interactions`,
//! every answer checked against Discord's OpenAPI description, link codes made by the real
//! `signalpost users link-code` command, and the commands registered on the fake Discord at start-up.
//!
//! The replay plays two USDJPY candles only, so the prices of EURUSD and XAUUSD are exactly the ones each
//! test records in the store.

use bus::Event;
use chrono::{Duration as Span, Utc};
use domain::{
    Clock, CloseReason, Closing, Lots, ManualClock, NewTrade, Price, Side, Symbol, Tick, Timeframe, Trade, TradeId,
    TradeResult, TradeStatus, TradeUpdateKind, UserId, UserSettings,
};
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use store::{NewUser, Role, Store};
use testkit::discord::FakeDiscord;
use testkit::discord::interact::{self, InteractionSigner};
use testkit::discord::openapi::Spec;
use testkit::{AppOptions, DiscordOptions, TestApp, spawn_app_on};

const ANN: &str = "1100000000000000001";
const BOB: &str = "1100000000000000002";
const CARL: &str = "1100000000000000003";

fn signer() -> InteractionSigner {
    InteractionSigner::default()
}

struct Setup {
    app: TestApp,
    store: Arc<dyn Store>,
    clock: ManualClock,
    fake: FakeDiscord,
    _candles: tempfile::TempDir,
    _db: testkit::db::DbGuard,
}

async fn start() -> Setup {
    let fake = FakeDiscord::start().await;
    let (url, db) = testkit::db::fresh_database_url().await;
    let (path, candles) = testkit::write_candles(&[
        ("2024-01-02T00:00:00Z", "141.00", "141.20", "140.90", "141.10"),
        ("2024-01-02T01:00:00Z", "141.10", "141.30", "141.00", "141.20"),
    ]);
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_on(
        &url,
        AppOptions {
            replay_series: vec![format!("USDJPY:1h:{}", path.display())],
            replay_speed: 0.0,
            discord: Some(DiscordOptions {
                token: Some("test-bot-token".into()),
                application_id: Some(testkit::discord::DEFAULT_APPLICATION_ID.to_string()),
                public_key_hex: Some(signer().public_key_hex()),
                api_base: Some(fake.base_url()),
            }),
            clock: Some(Arc::new(clock.clone())),
            ..AppOptions::default()
        },
    )
    .await;
    let store = app.store.clone();
    Setup { app, store, clock, fake, _candles: candles, _db: db }
}

/// Posts an interaction signed as Discord would sign it and returns the checked answer. The timestamp is the
/// app's clock, since the endpoint refuses signatures that are stale by that clock.
async fn interact(s: &Setup, body: &Value) -> Value {
    let app = &s.app;
    let response = signer().post(&app.client, &app.url("/discord/interactions"), body, s.clock.now().timestamp()).await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    Spec::global().validate_interaction_response(&answer).unwrap_or_else(|e| panic!("{answer} is not valid: {e:?}"));
    assert_eq!(answer["type"], 4, "{answer}");
    assert_eq!(answer["data"]["flags"], 64, "every answer is ephemeral: {answer}");
    let content = answer["data"]["content"].as_str().map_or(0, |c| c.chars().count());
    assert!(content <= 2000, "{answer}");
    answer
}

/// A slash command as Discord sends it; `options` are (name, option type, value).
fn slash(user: &str, name: &str, options: &[(&str, u8, Value)]) -> Value {
    let options: Vec<Value> =
        options.iter().map(|(n, kind, value)| json!({"name": n, "type": kind, "value": value})).collect();
    let data = json!({"id": "1400000000000000001", "name": name, "type": 1, "options": options});
    interact::envelope(interact::APPLICATION_COMMAND, user, data)
}

async fn run(s: &Setup, user: &str, name: &str, options: &[(&str, u8, Value)]) -> Value {
    interact(s, &slash(user, name, options)).await
}

fn content(answer: &Value) -> String {
    answer["data"]["content"].as_str().unwrap_or_else(|| panic!("no content in {answer}")).to_string()
}

/// Everything an embed answer shows, as one text to search.
fn embed_text(answer: &Value) -> String {
    let embed = &answer["data"]["embeds"][0];
    assert!(embed.is_object(), "no embed in {answer}");
    let mut text =
        format!("{}\n{}\n", embed["title"].as_str().unwrap_or(""), embed["description"].as_str().unwrap_or(""));
    for field in embed["fields"].as_array().cloned().unwrap_or_default() {
        text.push_str(&format!("{}: {}\n", field["name"].as_str().unwrap(), field["value"].as_str().unwrap()));
    }
    text.push_str(embed["footer"]["text"].as_str().unwrap_or(""));
    text
}

fn fields(answer: &Value) -> Vec<Value> {
    answer["data"]["embeds"][0]["fields"].as_array().cloned().unwrap_or_default()
}

/// `signalpost users link-code --user ID`, run as an operator would against the app's database. It runs
/// off the test's runtime: blocking that thread would stall the app in it, and a write transaction the app
/// had open would then hold the CLI's write until SQLite's busy timeout.
async fn link_code(database_url: &str, user: UserId) -> String {
    let database_url = database_url.to_string();
    tokio::task::spawn_blocking(move || link_code_blocking(&database_url, user)).await.unwrap()
}

fn link_code_blocking(database_url: &str, user: UserId) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_signalpost"));
    command.current_dir(dir.path());
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("DISCORD_") || k.starts_with("SIGNALPOST_")) {
        command.env_remove(name);
    }
    let output = command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .args(["users", "link-code", "--user", &user.0.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let code = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert_eq!(code.len(), 8, "{code:?}");
    code
}

async fn plain_user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store.create_user(&NewUser { discord_user_id: None, display_name: name.into(), role: Role::User }).await.unwrap().id
}

fn p(text: &str) -> Price {
    Price::parse(text).unwrap()
}

async fn set_price(store: &Arc<dyn Store>, symbol: &str, bid: &str, ask: &str) {
    let tick =
        Tick { symbol: Symbol::normalize(symbol), time: Utc::now(), bid: p(bid), ask: p(ask), synthetic_from: None };
    store.set_last_price(&tick).await.unwrap();
}

async fn open(
    store: &Arc<dyn Store>,
    user: UserId,
    symbol: &str,
    side: Side,
    entry: &str,
    sl: &str,
    tp: &str,
) -> Trade {
    let opened_at = Utc::now() - Span::hours(3);
    let new =
        NewTrade::new(user, symbol, side, p(entry), Lots::parse("0.5").unwrap(), Some(p(sl)), Some(p(tp)), opened_at)
            .unwrap();
    store.open_trade(&new).await.unwrap().trade
}

async fn close(store: &Arc<dyn Store>, trade: &Trade, exit: &str, result: TradeResult, pips: &str, profit: &str) {
    let closing = Closing {
        exit_price: p(exit),
        reason: if result == TradeResult::Win { CloseReason::TpHit } else { CloseReason::SlHit },
        at: trade.opened_at + Span::hours(2),
        result,
        pips: Some(pips.parse().unwrap()),
        profit: Some(profit.parse().unwrap()),
    };
    store.close_trade(trade.id, &closing).await.unwrap().unwrap();
}

#[tokio::test]
async fn link_codes_link_once_and_refuse_reused_expired_unknown_and_taken() {
    let s = start().await;
    let (store, clock) = (s.store.clone(), s.clock.clone());
    let ann = plain_user(&store, "ann").await;
    let bob = plain_user(&store, "bob").await;
    let carl = plain_user(&store, "carl").await;

    // Unlinked callers are told about /link, whatever they ask.
    for name in ["settings", "trades", "history", "stats", "stop"] {
        let options: &[(&str, u8, Value)] = if name == "stop" { &[("trade_id", 4, json!(1))] } else { &[] };
        let answer = run(&s, ANN, name, options).await;
        assert!(content(&answer).contains("/link"), "{name}: {answer}");
    }
    let unknown = run(&s, ANN, "link", &[("code", 3, json!("ZZZZ2222"))]).await;
    assert!(content(&unknown).contains("does not work"), "{unknown}");

    // A valid code, typed carelessly, links Ann's Discord account to her Signalpost account.
    let code = link_code(&s.app.database_url, ann).await;
    let typed = format!("{}-{}", code[..4].to_lowercase(), &code[4..]);
    let linked = run(&s, ANN, "link", &[("code", 3, json!(typed))]).await;
    assert!(content(&linked).contains("Linked") && content(&linked).contains("ann"), "{linked}");
    assert_eq!(store.user_by_discord_id(ANN).await.unwrap().map(|u| u.id), Some(ann));
    // Now her commands work.
    assert!(content(&run(&s, ANN, "trades", &[]).await).contains("no open trades"));

    // The same code again, by anyone, is refused.
    let reused = run(&s, BOB, "link", &[("code", 3, json!(code))]).await;
    assert!(content(&reused).contains("does not work"), "{reused}");
    assert_eq!(store.user_by_discord_id(BOB).await.unwrap(), None);

    // A code past its 15 minutes is refused; the app's clock says so, no sleeping.
    let late = link_code(&s.app.database_url, bob).await;
    clock.advance(Span::minutes(16));
    let expired = run(&s, BOB, "link", &[("code", 3, json!(late))]).await;
    assert!(content(&expired).contains("expired"), "{expired}");
    assert_eq!(store.get_user(bob).await.unwrap().unwrap().discord_user_id, None);
    clock.set(Utc::now());

    // A newer code replaces the older one.
    let older = link_code(&s.app.database_url, bob).await;
    let newer = link_code(&s.app.database_url, bob).await;
    assert!(content(&run(&s, BOB, "link", &[("code", 3, json!(older))]).await).contains("does not work"));
    assert!(content(&run(&s, BOB, "link", &[("code", 3, json!(newer))]).await).contains("Linked"));
    assert_eq!(store.user_by_discord_id(BOB).await.unwrap().map(|u| u.id), Some(bob));

    // A Discord account already linked to someone else is refused, and the code survives for its owner.
    let carls = link_code(&s.app.database_url, carl).await;
    let taken = run(&s, ANN, "link", &[("code", 3, json!(carls))]).await;
    assert!(content(&taken).contains("already linked"), "{taken}");
    assert_eq!(store.user_by_discord_id(ANN).await.unwrap().map(|u| u.id), Some(ann));
    assert!(content(&run(&s, CARL, "link", &[("code", 3, json!(carls))]).await).contains("Linked"));

    let missing = run(&s, CARL, "link", &[]).await;
    assert!(content(&missing).contains("code"), "{missing}");
    s.app.stop().await;
}

#[tokio::test]
async fn each_command_shows_the_callers_own_data_only() {
    let s = start().await;
    let store = s.store.clone();
    let ann = store.ensure_discord_user(ANN, "ann").await.unwrap().id;
    let bob = store.ensure_discord_user(BOB, "bob").await.unwrap().id;
    let anns_settings = UserSettings {
        preferred_pairs: vec![Symbol::normalize("EURUSD"), Symbol::normalize("GBPJPY")],
        enabled_timeframes: vec![Timeframe::M15],
        max_notifications_per_day: 7,
        ..UserSettings::default()
    };
    store.save_settings(ann, &anns_settings).await.unwrap();

    set_price(&store, "EURUSD", "1.0864", "1.0866").await;
    set_price(&store, "XAUUSD", "2010.0", "2010.5").await;
    let anns_open = open(&store, ann, "EURUSD", Side::Long, "1.0854", "1.0800", "1.0962").await;
    let bobs_open = open(&store, bob, "XAUUSD", Side::Short, "2020.0", "2030.0", "2000.0").await;
    let win = open(&store, ann, "EURUSD", Side::Long, "1.0854", "1.0800", "1.0962").await;
    close(&store, &win, "1.0962", TradeResult::Win, "108", "540").await;
    let loss = open(&store, ann, "EURUSD", Side::Long, "1.0854", "1.0800", "1.0962").await;
    close(&store, &loss, "1.0800", TradeResult::Loss, "-54", "-270").await;
    let bobs_closed = open(&store, bob, "XAUUSD", Side::Short, "2020.0", "2030.0", "2000.0").await;
    close(&store, &bobs_closed, "2000.0", TradeResult::Win, "200", "1000").await;

    // /settings
    let settings = embed_text(&run(&s, ANN, "settings", &[]).await);
    assert!(
        settings.contains("EURUSD, GBPJPY") && settings.contains("15m") && settings.contains("7 signals"),
        "{settings}"
    );
    assert!(settings.contains("dashboard"), "{settings}");
    let bobs_settings = embed_text(&run(&s, BOB, "settings", &[]).await);
    assert!(!bobs_settings.contains("GBPJPY") && bobs_settings.contains("Pairs: All"), "{bobs_settings}");

    // /trades: Ann's open trade with its live P&L at the bid (1.0864 - 1.0854 = +10 pips, 0.5 lot = +$50).
    let trades = run(&s, ANN, "trades", &[]).await;
    assert_eq!(fields(&trades).len(), 1, "{trades}");
    let text = embed_text(&trades);
    assert!(text.contains(&format!("#{} EURUSD LONG", anns_open.id)), "{text}");
    assert!(text.contains("+10 pips") && text.contains("+$50.00"), "{text}");
    assert!(!text.contains(&format!("#{} ", bobs_open.id)) && !text.contains("XAUUSD"), "{text}");
    let bobs_trades = embed_text(&run(&s, BOB, "trades", &[]).await);
    assert!(bobs_trades.contains(&format!("#{} XAUUSD SHORT", bobs_open.id)), "{bobs_trades}");
    assert!(!bobs_trades.contains("EURUSD"), "{bobs_trades}");

    // /history: closed trades only, newest first, with pips and profit.
    let history = run(&s, ANN, "history", &[]).await;
    let names: Vec<String> = fields(&history).iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 2, "{history}");
    let text = embed_text(&history);
    assert!(text.contains("+108 pips") && text.contains("+$540.00") && text.contains("-$270.00"), "{text}");
    assert!(!text.contains("XAUUSD") && !text.contains(&format!("#{} ", anns_open.id)), "{text}");

    // /stats over Ann's two closed trades: one win, one loss, +$270, 2:1 and -1:1 realised.
    let stats = embed_text(&run(&s, ANN, "stats", &[]).await);
    assert!(stats.contains("50% (1 W / 1 L / 0 BE)"), "{stats}");
    assert!(stats.contains("Total P&L: +$270.00"), "{stats}");
    assert!(stats.contains("+0.5R"), "{stats}");
    assert!(stats.contains("Average holding time: 2h 0m"), "{stats}");
    let bobs_stats = embed_text(&run(&s, BOB, "stats", &[]).await);
    assert!(bobs_stats.contains("100% (1 W / 0 L / 0 BE)") && bobs_stats.contains("+$1000.00"), "{bobs_stats}");
    s.app.stop().await;
}

#[tokio::test]
async fn history_pages_hold_ten_trades_newest_first() {
    let s = start().await;
    let store = s.store.clone();
    let ann = store.ensure_discord_user(ANN, "ann").await.unwrap().id;
    let base = Utc::now() - Span::days(30);
    let mut ids = Vec::new();
    for i in 0..12 {
        let new = NewTrade::new(
            ann,
            "EURUSD",
            Side::Long,
            p("1.0854"),
            Lots::parse("0.1").unwrap(),
            None,
            None,
            base + Span::hours(i),
        )
        .unwrap();
        let trade = store.open_trade(&new).await.unwrap().trade;
        close(&store, &trade, "1.0864", TradeResult::Win, "10", "10").await;
        ids.push(trade.id);
    }
    let first = run(&s, ANN, "history", &[]).await;
    let names = |answer: &Value| -> Vec<String> {
        fields(answer).iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
    };
    let page1 = names(&first);
    assert_eq!(page1.len(), 10);
    assert!(page1[0].starts_with(&format!("#{} ", ids[11])), "{page1:?}");
    assert!(embed_text(&first).contains("page 1 of 2") && embed_text(&first).contains("/history page:2"));
    let page2 = names(&run(&s, ANN, "history", &[("page", 4, json!(2))]).await);
    assert_eq!(page2.len(), 2);
    assert!(page2[1].starts_with(&format!("#{} ", ids[0])), "{page2:?}");
    let beyond = run(&s, ANN, "history", &[("page", 4, json!(3))]).await;
    assert!(content(&beyond).contains("no page 3"), "{beyond}");
    // Someone else's history is empty, not Ann's.
    store.ensure_discord_user(BOB, "bob").await.unwrap();
    assert!(content(&run(&s, BOB, "history", &[]).await).contains("no closed trades"));
    s.app.stop().await;
}

#[tokio::test]
async fn stop_closes_your_own_trade_once_at_market_and_refuses_the_rest() {
    let mut s = start().await;
    let store = s.store.clone();
    let ann = store.ensure_discord_user(ANN, "ann").await.unwrap().id;
    store.ensure_discord_user(BOB, "bob").await.unwrap();
    let trade = open(&store, ann, "EURUSD", Side::Long, "1.0854", "1.0800", "1.0962").await;
    let stop = |id: TradeId| vec![("trade_id", 4u8, json!(id.0))];

    let missing = run(&s, ANN, "stop", &stop(TradeId(999_999))).await;
    assert!(content(&missing).contains("no trade #999999"), "{missing}");
    let theirs = run(&s, BOB, "stop", &stop(trade.id)).await;
    assert!(content(&theirs).contains("not yours"), "{theirs}");
    let no_price = run(&s, ANN, "stop", &stop(trade.id)).await;
    assert!(content(&no_price).contains("No price for EURUSD"), "{no_price}");
    assert_eq!(store.get_trade(trade.id).await.unwrap().unwrap().status, TradeStatus::Open);

    // A long closes at the bid.
    set_price(&store, "EURUSD", "1.0874", "1.0876").await;
    let closed = run(&s, ANN, "stop", &stop(trade.id)).await;
    let text = embed_text(&closed);
    assert!(text.contains("TRADE CLOSED") && text.contains("+20 pips") && text.contains("+$100.00"), "{text}");
    let event = s
        .app
        .wait_for_event(Duration::from_secs(10), |e| matches!(e, Event::TradeClosed { trade: t } if t.id == trade.id))
        .await;
    let Event::TradeClosed { trade: announced } = event else { unreachable!() };
    assert_eq!(announced.close_reason, Some(CloseReason::ManualClose));
    let stored = store.get_trade(trade.id).await.unwrap().unwrap();
    assert_eq!(stored.status, TradeStatus::Closed);
    assert_eq!(stored.exit_price, Some(p("1.0874")));
    assert_eq!(stored.close_reason, Some(CloseReason::ManualClose));
    assert_eq!((stored.pips, stored.profit), (Some(dec!(20)), Some(dec!(100))));

    // Once only.
    let again = run(&s, ANN, "stop", &stop(trade.id)).await;
    assert!(content(&again).contains("already closed"), "{again}");
    let closes = store.trade_updates(trade.id).await.unwrap();
    assert_eq!(closes.iter().filter(|u| u.kind == TradeUpdateKind::Closed).count(), 1);
    // The owner also gets the close report by DM, as for any other close.
    let dms = s.fake.wait_for_messages(1, Duration::from_secs(10)).await.unwrap();
    assert!(dms.iter().any(|m| m.recipient_id.as_deref() == Some(ANN)));
    assert!(s.fake.invalid_bodies().is_empty(), "{:?}", s.fake.invalid_bodies());
    s.app.stop().await;
}

#[tokio::test]
async fn commands_are_registered_at_start_up_with_the_options_the_handler_reads() {
    let s = start().await;
    let fake = &s.fake;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fake.commands().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no PUT /applications/{{id}}/commands reached the fake");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fake.invalid_bodies().is_empty(), "{:?}", fake.invalid_bodies());
    let commands = fake.commands();
    let names: Vec<&str> = commands.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["link", "settings", "trades", "history", "stats", "stop"]);
    let option =
        |command: &str| -> Value { commands.iter().find(|c| c["name"] == command).unwrap()["options"][0].clone() };
    assert_eq!((option("link")["name"].clone(), option("link")["type"].clone()), (json!("code"), json!(3)));
    assert_eq!((option("history")["name"].clone(), option("history")["type"].clone()), (json!("page"), json!(4)));
    assert_eq!((option("stop")["name"].clone(), option("stop")["type"].clone()), (json!("trade_id"), json!(4)));
    let puts: Vec<_> = fake.requests().into_iter().filter(|r| r.path.ends_with("/commands")).collect();
    assert_eq!(puts.len(), 1, "one bulk overwrite");
    s.app.stop().await;
}

//! The live OANDA feed (`market::OandaFeed`) against `FakeOanda`: warm-up then a poll after each close by the
//! (manual) clock, the pricing stream's ticks, a stream and polls killed mid-candle with the candles that
//! closed meanwhile coming back in order, incomplete candles held back, duplicates, reversed answers and
//! malformed lines skipped, 429/500 retried, stalls reconnected, live subscription changes, and a bad token or
//! an instrument OANDA cannot serve refused with an error naming it. Every test that streams candles ends by
//! checking each arrived exactly once, in order.

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, TimeZone as _, Utc};
use domain::{Candle, ManualClock, Symbol, Timeframe};
use market::{FeedEvent, OandaFeed, OandaFeedConfig, OandaPrice};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use testkit::feed_harness::{FeedCounts, RunningFeed, WAIT};
use testkit::oanda::{ACCOUNT, FakeOanda, RestFault, TOKEN};
use tokio::sync::watch;

const TF: Timeframe = Timeframe::M1;

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn at(minutes: i64, seconds: i64) -> DateTime<Utc> {
    t0() + ChronoDuration::minutes(minutes) + ChronoDuration::seconds(seconds)
}

/// Candle `i` from `t0`, around `base`; prices differ per candle so a mix-up shows.
fn candle_at(base: &str, i: i64) -> Candle {
    let open = dec(base) + Decimal::new(i * 10, 5);
    Candle {
        time: t0() + ChronoDuration::minutes(i),
        open,
        high: open + dec("0.00070"),
        low: open - dec("0.00050"),
        close: open + dec("0.00030"),
        volume: Decimal::from(100 + i),
    }
}

fn eur(i: i64) -> Candle {
    candle_at("1.10000", i)
}

fn gold(i: i64) -> Candle {
    candle_at("2650.00000", i)
}

/// What a `price=M` answer turns a fake candle into: the fake's mid is half its spread above its bid.
fn as_mid(candle: &Candle) -> Candle {
    let half = dec(testkit::oanda::SPREAD) / Decimal::TWO;
    Candle {
        open: candle.open + half,
        high: candle.high + half,
        low: candle.low + half,
        close: candle.close + half,
        ..candle.clone()
    }
}

fn config(fake: &FakeOanda, pairs: &[(&str, Timeframe)]) -> OandaFeedConfig {
    let pairs = pairs.iter().map(|(s, t)| (Symbol::normalize(s), *t)).collect();
    let mut config = OandaFeedConfig::new(TOKEN, ACCOUNT, pairs);
    config.rest_url = fake.rest_url();
    config.stream_url = fake.stream_url();
    config.warmup_candles = 10;
    config.poll_delay = Duration::ZERO;
    config.repoll_interval = Duration::from_millis(10);
    config.clock_recheck = Duration::from_millis(10);
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(50);
    config.stall_timeout = Duration::from_secs(1);
    config.rest_attempts = 2;
    config
}

type Running = RunningFeed<(String, i64)>;

/// A 1m candle as (symbol, index from `t0`), checked against the prices the fake was given.
fn read(symbol: Symbol, timeframe: Timeframe, candle: Candle) -> (String, i64) {
    assert_eq!(timeframe, TF);
    let i = (candle.time - t0()).num_minutes();
    let expected = if symbol.as_str() == "XAUUSD" { gold(i) } else { eur(i) };
    assert_eq!(candle, as_mid(&expected), "{symbol} candle {i} arrived with other prices");
    (symbol.as_str().to_string(), i)
}

fn start(config: OandaFeedConfig, clock: &ManualClock) -> Running {
    let counts = Arc::new(FeedCounts::default());
    let feed = OandaFeed::new(config, Arc::new(clock.clone())).unwrap().with_observer(counts.clone());
    RunningFeed::spawn(feed, counts, read)
}

/// The next `n` closed candles, which must all be EURUSD's, as indexes.
async fn eurusd(feed: &mut Running, n: usize) -> Vec<i64> {
    let candles = feed.candles(n).await;
    assert!(candles.iter().all(|(symbol, _)| symbol == "EURUSD"), "{candles:?}");
    candles.into_iter().map(|(_, i)| i).collect()
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test]
async fn warms_up_polls_each_close_and_a_feed_killed_mid_candle_loses_and_repeats_nothing() {
    let fake = FakeOanda::start(&["EUR_USD", "XAU_USD"]).await;
    fake.add_candles("EUR_USD", TF, &(0..=5).map(eur).collect::<Vec<_>>());
    fake.set_forming("EUR_USD", TF, &eur(6));
    let clock = ManualClock::new(at(6, 30));
    let mut feed = start(config(&fake, &[("EURUSD", TF)]), &clock);

    // Warm-up: the most recent candles, only the complete ones, in order.
    assert_eq!(eurusd(&mut feed, 6).await, vec![0, 1, 2, 3, 4, 5]);
    let first = &fake.candle_requests()[0];
    assert_eq!(first.path, "/v3/instruments/EUR_USD/candles");
    assert_eq!(
        (first.query["granularity"].as_str(), first.query["price"].as_str(), first.query["count"].as_str()),
        ("M1", "M", "11")
    );
    assert_eq!((first.query["dailyAlignment"].as_str(), first.query["alignmentTimezone"].as_str()), ("0", "UTC"));
    assert!(!first.query.contains_key("from"));

    // Ticks from PRICE lines.
    fake.wait_for_connections(1, WAIT).await.unwrap();
    assert_eq!(fake.stream_instruments()[0], vec!["EUR_USD".to_string()]);
    fake.push_price("EUR_USD", "1.10010", "1.10022", at(6, 40));
    let FeedEvent::Tick(tick) = feed.next().await else { panic!("expected the price as a tick") };
    assert_eq!(
        (tick.symbol.as_str(), tick.bid.value(), tick.ask.value(), tick.time),
        ("EURUSD", dec("1.1001"), dec("1.10022"), at(6, 40))
    );

    // Candle 6 closes by the clock, and the poll after it asks for what follows candle 5.
    clock.set(at(7, 0));
    fake.close_candle("EUR_USD", TF, &eur(6));
    fake.set_forming("EUR_USD", TF, &eur(7));
    assert_eq!(eurusd(&mut feed, 1).await, vec![6]);
    let polled = fake.candle_requests().into_iter().find(|r| r.query.contains_key("from")).expect("a from= poll");
    assert_eq!(polled.query["from"], rfc3339(at(5, 0)));
    assert_eq!(polled.query["includeFirst"], "false");

    // Killed mid-candle 7: the stream drops and cannot come back, polls fail; 7 and 8 close meanwhile.
    fake.hold_stream();
    fake.hold_rest();
    fake.disconnect();
    let before = fake.candle_requests().len();
    clock.set(at(9, 10));
    fake.close_candle("EUR_USD", TF, &eur(7));
    fake.close_candle("EUR_USD", TF, &eur(8));
    fake.set_forming("EUR_USD", TF, &eur(9));
    // Both attempts of the poll are refused, so the poll fails and is retried after a backoff.
    fake.wait_for_candle_requests(before + 2, WAIT).await.unwrap();
    assert_eq!((fake.candle_requests()[before].status, fake.candle_requests()[before + 1].status), (503, 503));
    fake.release_rest();
    fake.release_stream();
    assert_eq!(eurusd(&mut feed, 2).await, vec![7, 8], "what closed while away comes back, in order");
    fake.wait_for_connections(2, WAIT).await.unwrap();

    // Duplicates and an old candle appended to the answer, which is also newest-first, change nothing.
    fake.append_to_next_answer("EUR_USD", TF, &[eur(8), eur(3)]);
    fake.fail_candles(&[RestFault::Reversed]);
    clock.set(at(11, 5));
    fake.close_candle("EUR_USD", TF, &eur(9));
    fake.close_candle("EUR_USD", TF, &eur(10));
    assert_eq!(eurusd(&mut feed, 2).await, vec![9, 10]);

    assert!(feed.counts.reconnects() >= 1);
    assert!(feed.counts.disconnected() >= 2, "the stream and the polls both went down");
    assert!(feed.counts.gaps() >= 2, "candles 7 and 9 closed before the poll that got them");
    assert!(feed.counts.lags() >= 3, "candles 6, 8 and 10 were live");
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn an_incomplete_candle_is_not_delivered_until_oanda_completes_it() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    fake.add_candles("EUR_USD", TF, &(0..=1).map(eur).collect::<Vec<_>>());
    fake.set_forming("EUR_USD", TF, &eur(2));
    let clock = ManualClock::new(at(2, 30));
    let mut config = config(&fake, &[("EURUSD", TF)]);
    config.ticks = false;
    let mut feed = start(config, &clock);
    assert_eq!(eurusd(&mut feed, 2).await, vec![0, 1]);

    // The clock says candle 2 closed; OANDA still lists it incomplete, however often it is asked.
    let before = fake.candle_requests().len();
    clock.set(at(3, 0));
    fake.wait_for_candle_requests(before + 3, WAIT).await.unwrap();
    assert!(feed.rx.try_recv().is_err(), "an incomplete candle was delivered");
    fake.close_candle("EUR_USD", TF, &eur(2));
    assert_eq!(eurusd(&mut feed, 1).await, vec![2]);
    assert_eq!(fake.connections(), 0, "ticks were off");
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_and_a_malformed_answer_is_skipped() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    fake.add_candles("EUR_USD", TF, &(0..4).map(eur).collect::<Vec<_>>());
    fake.fail_candles(&[RestFault::RateLimited, RestFault::ServerError, RestFault::Malformed]);
    let clock = ManualClock::new(at(4, 0));
    let mut feed = start(config(&fake, &[("EURUSD", TF)]), &clock);
    assert_eq!(eurusd(&mut feed, 4).await, vec![0, 1, 2, 3]);
    let statuses: Vec<u16> = fake.candle_requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..4], &[429, 500, 200, 200], "{statuses:?}");
    assert!(feed.counts.disconnected() >= 1, "failed polls are reported");
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn backfill_resumes_after_the_stored_candle_across_pages() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    fake.add_candles("EUR_USD", TF, &(0..=30).map(eur).collect::<Vec<_>>());
    let clock = ManualClock::new(at(31, 0));
    let mut config = config(&fake, &[("EURUSD", TF)]);
    config.page_limit = 10;
    config.resume_after.insert((Symbol::normalize("EURUSD"), TF), at(5, 0));
    let mut feed = start(config, &clock);
    assert_eq!(eurusd(&mut feed, 25).await, (6..=30).collect::<Vec<_>>());
    let requests = fake.candle_requests();
    assert_eq!(requests[0].query["from"], rfc3339(at(5, 0)));
    assert_eq!(requests[0].query["count"], "10");
    assert_eq!(requests[1].query["from"], rfc3339(at(15, 0)), "the second page follows the first");
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn a_bad_token_is_fatal_with_a_clear_error() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    let clock = ManualClock::new(at(1, 0));
    let mut config = config(&fake, &[("EURUSD", TF)]);
    config.token = "not-the-token".into();
    let feed = start(config, &clock);
    let error = feed.failure().await.to_string();
    assert!(error.contains("token") && error.contains("Insufficient authorization"), "{error}");
    assert!(!error.contains("not-the-token"), "the token leaked into the error: {error}");
}

#[tokio::test]
async fn instruments_oanda_cannot_serve_are_refused_by_name() {
    let fake = FakeOanda::start(&["EUR_USD", "XAU_USD"]).await;
    let clock = ManualClock::new(at(1, 0));
    for (symbol, why) in [("BTCUSD", "Crypto"), ("AAPL", "Stock")] {
        let error = OandaFeed::new(config(&fake, &[(symbol, TF)]), Arc::new(clock.clone())).unwrap_err().to_string();
        assert!(error.contains(symbol) && error.contains(why) && error.contains("forex and metals"), "{error}");
    }

    // Known to OANDA, but not tradeable by this account: refused at start, by name.
    let feed = start(config(&fake, &[("EURUSD", TF), ("XAGUSD", TF)]), &clock);
    let error = feed.failure().await.to_string();
    assert!(error.contains("XAGUSD") && error.contains("XAG_USD") && error.contains(ACCOUNT), "{error}");

    // Listed by the account, but rejected by the candles endpoint: fatal, naming it and OANDA's reason.
    fake.forget_instrument("XAU_USD");
    let feed = start(config(&fake, &[("XAUUSD", TF)]), &clock);
    let error = feed.failure().await.to_string();
    assert!(error.contains("XAUUSD") && error.contains("Invalid value specified for 'instrument'"), "{error}");
}

#[tokio::test]
async fn malformed_lines_are_skipped_split_lines_joined_and_the_stream_carries_on() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    let clock = ManualClock::new(at(0, 30));
    let mut feed = start(config(&fake, &[("EURUSD", TF)]), &clock);
    fake.wait_for_connections(1, WAIT).await.unwrap();
    fake.push_raw("{\"type\":\"PRICE\",\"instrument\":\"EUR_USD\",\"bids\":[\n");
    fake.push_raw("this is not json\n");
    fake.push_raw(r#"{"type":"PRICE","instrument":"EUR_USD","time":"2026-11-20T12:00:31Z","bids":[{"price":"abc"}],"asks":[{"price":"1.1"}]}"#);
    fake.push_raw("\n");
    let line = testkit::oanda::price_line("EUR_USD", "1.10100", "1.10110", at(0, 32));
    let (head, tail) = line.split_at(40);
    fake.push_raw(head);
    fake.push_raw(tail);
    fake.push_price("EUR_USD", "1.10200", "1.10215", at(0, 33));
    let FeedEvent::Tick(first) = feed.next().await else { panic!("expected a tick") };
    assert_eq!((first.bid.value(), first.time), (dec("1.101"), at(0, 32)), "the split line is one price");
    let FeedEvent::Tick(second) = feed.next().await else { panic!("expected a tick") };
    assert_eq!(second.ask.value(), dec("1.10215"));
    assert_eq!(fake.connections(), 1, "bad lines do not cost the connection");
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn a_stream_without_heartbeats_is_reconnected() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    let clock = ManualClock::new(at(0, 30));
    let mut feed = start(config(&fake, &[("EURUSD", TF)]), &clock);
    fake.wait_for_connections(1, WAIT).await.unwrap();
    fake.stall();
    fake.wait_for_connections(2, WAIT).await.unwrap();
    fake.push_price("EUR_USD", "1.10300", "1.10310", at(0, 40));
    let FeedEvent::Tick(tick) = feed.next().await else { panic!("expected a tick") };
    assert_eq!(tick.bid.value(), dec("1.103"));
    assert!(feed.counts.reconnects() >= 1);
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn a_subscription_update_adds_and_removes_pairs_live() {
    let fake = FakeOanda::start(&["EUR_USD", "XAU_USD"]).await;
    fake.add_candles("EUR_USD", TF, &(0..=1).map(eur).collect::<Vec<_>>());
    fake.add_candles("XAU_USD", TF, &(0..=1).map(gold).collect::<Vec<_>>());
    let clock = ManualClock::new(at(2, 0));
    let (updates, watch_rx) = watch::channel(vec![(Symbol::normalize("EURUSD"), TF)]);
    let mut config = config(&fake, &[("EURUSD", TF)]);
    config.updates = Some(watch_rx);
    let mut feed = start(config, &clock);
    assert_eq!(eurusd(&mut feed, 2).await, vec![0, 1]);
    fake.wait_for_connections(1, WAIT).await.unwrap();

    // Gold joins and the euro leaves: gold is backfilled and the stream re-opens on gold only.
    updates.send(vec![(Symbol::normalize("XAUUSD"), TF)]).unwrap();
    assert_eq!(feed.next_candle().await, ("XAUUSD".to_string(), 0));
    assert_eq!(feed.next_candle().await, ("XAUUSD".to_string(), 1));
    fake.wait_for_connections(2, WAIT).await.unwrap();
    assert_eq!(fake.stream_instruments()[1], vec!["XAU_USD".to_string()]);
    fake.push_price("XAU_USD", "2650.10", "2650.45", at(2, 10));
    let FeedEvent::Tick(tick) = feed.next().await else { panic!("expected a gold tick") };
    assert_eq!(tick.symbol.as_str(), "XAUUSD");

    // The next close: only gold is polled and delivered.
    clock.set(at(3, 0));
    fake.close_candle("EUR_USD", TF, &eur(2));
    fake.close_candle("XAU_USD", TF, &gold(2));
    assert_eq!(feed.next_candle().await, ("XAUUSD".to_string(), 2));
    let euro_polls_after = fake
        .candle_requests()
        .iter()
        .filter(|r| r.path.contains("EUR_USD") && r.query.get("from") == Some(&rfc3339(at(1, 0))))
        .count();
    assert_eq!(euro_polls_after, 0, "the removed pair is no longer polled");
    assert_eq!(feed.stop().await, Vec::new());
}

#[tokio::test]
async fn bid_ask_candles_are_the_bid_side() {
    let fake = FakeOanda::start(&["EUR_USD"]).await;
    fake.add_candles("EUR_USD", TF, &[eur(0), eur(1)]);
    let clock = ManualClock::new(at(2, 0));
    let mut config = config(&fake, &[("EURUSD", TF)]);
    config.price = OandaPrice::BidAsk;
    let mut feed = start(config, &clock);
    for i in 0..2 {
        loop {
            if let FeedEvent::CandleClosed { candle, .. } = feed.next().await {
                assert_eq!(candle, eur(i), "the fake's bid candle, unchanged");
                break;
            }
        }
    }
    assert_eq!(fake.candle_requests()[0].query["price"], "BA");
    assert_eq!(feed.stop().await, Vec::new());
}

//! The market feed's health, for `/healthz`, the dashboard's banner and `/metrics`.
//!
//! [`FeedHealth`] hears the live feed's connection hooks (it is a [`market::FeedObserver`]; [`Observers`]
//! hands the feed one observer that tells both it and the Prometheus registry) and, from the pump, the close
//! time of every candle routed. From those and the injected clock it reports whether the feed is up, still
//! connecting, or down (with the problem and since when), and which subscribed pairs have gone quiet. A feed
//! down (or never connected) for longer than its grace is unhealthy, and so is a stale pair: one whose newest
//! candle closed more than two timeframes of *trading* time ago, so forex and metals over the weekend and
//! stocks outside their session are not an alarm (see [`domain::hours`]). A vendor that stays down can thus
//! never turn into silent staleness. Each alarm is logged at error level once per episode, however often the
//! status is asked for, and shows in the `signalpost_feed_up` and `signalpost_feed_stale_pairs` gauges.
//!
//! The replay feed's market time is not the clock's, so its health is always "up".

use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use domain::{AssetClass, Clock, InstrumentRegistry, Symbol, Timeframe};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use web::feed_status::{FeedState, FeedStatus, FeedStatusSource, StalePair};

/// How long a feed may be down (or still connecting) before it is reported unhealthy: long enough for a
/// routine reconnect with its backoff, short enough that users hear of an outage within a minute or two.
pub const DEFAULT_DOWN_GRACE: Duration = Duration::from_secs(60);

/// How often the health is evaluated in the background, so an alarm is logged and counted even when nobody
/// asks `/healthz`.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(15);

/// Longest problem text kept: enough for any vendor's message, short enough for a banner.
const PROBLEM_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Connection {
    Connecting { since: DateTime<Utc> },
    Up { since: DateTime<Utc> },
    Down { since: DateTime<Utc>, problem: String },
}

type Pair = (Symbol, Timeframe);

#[derive(Debug)]
struct State {
    connection: Connection,
    /// Subscribed pairs → when they were first watched (the baseline before their first candle).
    watched: BTreeMap<Pair, DateTime<Utc>>,
    /// Close time of the newest candle routed, per pair.
    newest: BTreeMap<Pair, DateTime<Utc>>,
    /// Pairs whose stale alarm was raised and not yet cleared.
    stale_alarms: BTreeSet<Pair>,
    /// Whether the "down past its grace" alarm was raised for the current outage.
    down_alarm: bool,
}

#[derive(Debug)]
struct Inner {
    feed: String,
    /// False for the replay: always up, never stale.
    live: bool,
    clock: Arc<dyn Clock>,
    grace: chrono::Duration,
    metrics: Metrics,
    state: Mutex<State>,
}

/// The feed's health; cheap to clone (every clone is the same monitor).
#[derive(Debug, Clone)]
pub struct FeedHealth {
    inner: Arc<Inner>,
}

impl FeedHealth {
    /// A live feed named `feed` (as it names itself in the observer hooks), connecting from now on, watching
    /// `subscriptions` (the (symbol, finest timeframe) pairs it streams).
    pub fn live(
        feed: &str,
        subscriptions: Vec<Pair>,
        clock: Arc<dyn Clock>,
        grace: Duration,
        metrics: Metrics,
    ) -> FeedHealth {
        FeedHealth::build(feed, true, subscriptions, clock, grace, metrics)
    }

    /// The replay: up from the start and never stale.
    pub fn replay(clock: Arc<dyn Clock>, metrics: Metrics) -> FeedHealth {
        let health = FeedHealth::build("replay", false, Vec::new(), clock, DEFAULT_DOWN_GRACE, metrics);
        health.lock().connection = Connection::Up { since: health.inner.clock.now() };
        health.status();
        health
    }

    fn build(
        feed: &str,
        live: bool,
        subscriptions: Vec<Pair>,
        clock: Arc<dyn Clock>,
        grace: Duration,
        metrics: Metrics,
    ) -> FeedHealth {
        let now = clock.now();
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let state = State {
            connection: Connection::Connecting { since: now },
            watched: subscriptions.into_iter().map(|pair| (pair, now)).collect(),
            newest: BTreeMap::new(),
            stale_alarms: BTreeSet::new(),
            down_alarm: false,
        };
        let health = FeedHealth {
            inner: Arc::new(Inner { feed: feed.to_string(), live, clock, grace, metrics, state: Mutex::new(state) }),
        };
        health.inner.metrics.feed_up.with_label_values(&[feed]).set(0);
        health.inner.metrics.feed_stale_pairs.with_label_values(&[feed]).set(0);
        health
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn feed(&self) -> &str {
        &self.inner.feed
    }

    /// The observer to give the feed: this monitor and the Prometheus registry.
    pub fn observer(&self) -> Arc<dyn market::FeedObserver> {
        Arc::new(Observers(vec![Arc::new(self.inner.metrics.clone()), Arc::new(self.clone())]))
    }

    /// The pairs the feed streams now. Pairs gained are watched from now (their first candle is due within
    /// two timeframes); pairs lost are forgotten, alarms included.
    pub fn set_subscriptions(&self, subscriptions: Vec<Pair>) {
        let now = self.inner.clock.now();
        let mut state = self.lock();
        let wanted: BTreeSet<Pair> = subscriptions.into_iter().collect();
        state.watched.retain(|pair, _| wanted.contains(pair));
        for pair in wanted {
            state.watched.entry(pair).or_insert(now);
        }
        let State { watched, stale_alarms, .. } = &mut *state;
        stale_alarms.retain(|pair| watched.contains_key(pair));
    }

    /// The pump routed a closed candle of `symbol` `timeframe` that closed at `close_time`.
    pub fn candle_closed(&self, symbol: &Symbol, timeframe: Timeframe, close_time: DateTime<Utc>) {
        let mut state = self.lock();
        let newest = state.newest.entry((symbol.clone(), timeframe)).or_insert(close_time);
        if close_time > *newest {
            *newest = close_time;
        }
    }

    /// The health now: evaluates the alarms (logging and counting the ones that start or end) and returns
    /// what `/healthz` and the dashboard show.
    pub fn status(&self) -> FeedStatus {
        let now = self.inner.clock.now();
        let feed = self.inner.feed.as_str();
        let mut state = self.lock();
        let (feed_state, since, problem) = match &state.connection {
            Connection::Up { since } => (FeedState::Up, *since, None),
            Connection::Connecting { since } => (FeedState::Connecting, *since, None),
            Connection::Down { since, problem } => (FeedState::Down, *since, Some(problem.clone())),
        };
        let stale = if self.inner.live { stale_pairs(&state, now) } else { Vec::new() };
        let out_too_long = feed_state != FeedState::Up && now - since >= self.inner.grace;

        if out_too_long && !state.down_alarm {
            state.down_alarm = true;
            tracing::error!(
                feed,
                state = feed_state.as_str(),
                since = %since,
                problem = problem.as_deref().unwrap_or(""),
                "market feed has not been receiving for longer than its grace; users get no signals"
            );
        } else if !out_too_long && state.down_alarm {
            state.down_alarm = false;
            if feed_state == FeedState::Up {
                tracing::info!(feed, "market feed is receiving again");
            }
        }
        let stale_now: BTreeSet<Pair> = stale.iter().map(|(pair, _, _)| pair.clone()).collect();
        for (pair, last, since) in &stale {
            if !state.stale_alarms.contains(pair) {
                self.inner.metrics.feed_stale_alarms.with_label_values(&[feed]).inc();
                tracing::error!(
                    feed,
                    symbol = %pair.0,
                    timeframe = %pair.1,
                    since = %since,
                    last_candle_close = ?last,
                    "no candle for more than two timeframes of trading time: the pair is stale"
                );
            }
        }
        for pair in state.stale_alarms.difference(&stale_now) {
            tracing::info!(feed, symbol = %pair.0, timeframe = %pair.1, "candles are arriving again (or the market closed)");
        }
        state.stale_alarms = stale_now;
        drop(state);

        self.inner.metrics.feed_up.with_label_values(&[feed]).set(i64::from(feed_state == FeedState::Up));
        self.inner.metrics.feed_stale_pairs.with_label_values(&[feed]).set(stale.len() as i64);
        FeedStatus {
            feed: feed.to_string(),
            state: feed_state,
            since,
            problem,
            healthy: !out_too_long && stale.is_empty(),
            stale: stale
                .into_iter()
                .map(|((symbol, timeframe), last, since)| StalePair {
                    symbol: symbol.to_string(),
                    timeframe: timeframe.as_str().to_string(),
                    last_candle_close: last,
                    since,
                })
                .collect(),
            checked_at: now,
        }
    }

    /// Evaluates the health every `every` until `shutdown`, so alarms are logged and the gauges current
    /// without anyone asking.
    pub async fn run_checks(self, every: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {
                    self.status();
                }
            }
        }
    }
}

/// Subscribed pairs that are stale at `now`: (pair, newest close if any, waiting since).
fn stale_pairs(state: &State, now: DateTime<Utc>) -> Vec<(Pair, Option<DateTime<Utc>>, DateTime<Utc>)> {
    let registry = InstrumentRegistry::global();
    let mut stale = Vec::new();
    for (pair, watched_since) in &state.watched {
        let (symbol, timeframe) = pair;
        // A symbol outside the registry cannot be subscribed today; if one ever is, assume it never closes.
        let class = registry.get(symbol.as_str()).map_or(AssetClass::Crypto, |i| i.asset_class);
        if !domain::hours::is_open(class, now) {
            continue;
        }
        let last = state.newest.get(pair).copied();
        // The vendor gets two timeframes from its newest candle or from when the pair was first watched,
        // whichever is later: while a start-up backfill is still arriving, the newest candle so far is old
        // history, and that is no outage.
        let since = last.map_or(*watched_since, |last| last.max(*watched_since));
        if open_time_exceeds_budget(class, *timeframe, since, now) {
            stale.push((pair.clone(), last, since));
        }
    }
    stale
}

/// Whether more than two timeframes of `class`'s trading time passed from `since` to `now`. For a class
/// with sessions, a timeframe longer than the session counts as one session, so a stock's daily candle is
/// late after two sessions rather than after two days' worth of trading hours (a week and a half).
fn open_time_exceeds_budget(class: AssetClass, timeframe: Timeframe, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let step = match domain::hours::longest_session(class) {
        Some(session) => timeframe.duration().min(session),
        None => timeframe.duration(),
    };
    domain::hours::open_time_between(class, since, now) > step * 2
}

/// A vendor's problem as users and `/healthz` may see it: URLs lose their query and credentials (where
/// vendors put API keys), and the text is cut to a banner's length.
pub fn public_problem(problem: &str) -> String {
    let cleaned: Vec<String> = problem
        .split(' ')
        .map(|word| {
            let Some(scheme_end) = word.find("://") else { return word.to_string() };
            let (scheme, rest) = word.split_at(scheme_end + 3);
            let trailing_colon = rest.ends_with(':');
            let rest = rest.trim_end_matches(':');
            let rest = rest.split(['?', '#']).next().unwrap_or_default();
            // user:password@host → host
            let rest = match rest.split_once('/') {
                Some((authority, path)) => {
                    format!("{}/{path}", authority.rsplit_once('@').map_or(authority, |(_, host)| host))
                }
                None => rest.rsplit_once('@').map_or(rest, |(_, host)| host).to_string(),
            };
            format!("{scheme}{rest}{}", if trailing_colon { ":" } else { "" })
        })
        .collect();
    let text = cleaned.join(" ");
    match text.char_indices().nth(PROBLEM_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

impl market::FeedObserver for FeedHealth {
    fn connected(&self, _feed: &str) {
        let now = self.inner.clock.now();
        let mut state = self.lock();
        if !matches!(state.connection, Connection::Up { .. }) {
            state.connection = Connection::Up { since: now };
        }
    }

    fn disconnected(&self, _feed: &str, problem: &str) {
        let now = self.inner.clock.now();
        let problem = public_problem(problem);
        let mut state = self.lock();
        // A retry that fails again keeps the outage's start; the newest problem is the one to show.
        let since = match &state.connection {
            Connection::Down { since, .. } => *since,
            Connection::Up { .. } | Connection::Connecting { .. } => now,
        };
        state.connection = Connection::Down { since, problem };
    }
}

impl FeedStatusSource for FeedHealth {
    fn feed_status(&self) -> FeedStatus {
        self.status()
    }
}

/// Several observers behind the one hook a feed takes; each hears every call, in order.
#[derive(Debug, Clone)]
pub struct Observers(pub Vec<Arc<dyn market::FeedObserver>>);

impl market::FeedObserver for Observers {
    fn connected(&self, feed: &str) {
        self.0.iter().for_each(|o| o.connected(feed));
    }

    fn disconnected(&self, feed: &str, problem: &str) {
        self.0.iter().for_each(|o| o.disconnected(feed, problem));
    }

    fn reconnected(&self, feed: &str) {
        self.0.iter().for_each(|o| o.reconnected(feed));
    }

    fn gap_filled(&self, feed: &str, candles: u64) {
        self.0.iter().for_each(|o| o.gap_filled(feed, candles));
    }

    fn candle_lag(&self, feed: &str, lag: Duration) {
        self.0.iter().for_each(|o| o.candle_lag(feed, lag));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ManualClock;
    use market::FeedObserver as _;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn pair(symbol: &str, timeframe: Timeframe) -> Pair {
        (Symbol::normalize(symbol), timeframe)
    }

    fn health(start: &str, pairs: Vec<Pair>) -> (FeedHealth, ManualClock, Metrics) {
        let clock = ManualClock::new(at(start));
        let metrics = Metrics::new();
        let health =
            FeedHealth::live("binance", pairs, Arc::new(clock.clone()), Duration::from_secs(60), metrics.clone());
        (health, clock, metrics)
    }

    fn gauge(metrics: &Metrics, name: &str) -> String {
        metrics
            .render()
            .lines()
            .find(|l| l.starts_with(&format!("signalpost_{name}{{feed=\"binance\"}}")))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_start_up_backfill_still_arriving_is_no_stale_alarm() {
        let btc = pair("BTCUSDT", Timeframe::H1);
        let (health, clock, metrics) = health("2026-11-18T10:00:30Z", vec![btc.clone()]);
        health.connected("binance");
        // The backfill's first candle closed hours ago; the rest are still on their way.
        health.candle_closed(&btc.0, btc.1, at("2026-11-18T06:00:00Z"));
        assert!(health.status().healthy);
        // A labelled counter is not rendered before its first increment.
        assert_eq!(gauge(&metrics, "feed_stale_alarms_total"), "");
        // Two timeframes after the pair was first watched with nothing newer, it is late.
        clock.set(at("2026-11-18T12:00:31Z"));
        let status = health.status();
        assert!(!status.healthy);
        assert_eq!(status.stale[0].last_candle_close, Some(at("2026-11-18T06:00:00Z")));
        assert_eq!(gauge(&metrics, "feed_stale_alarms_total"), "1");
    }

    #[test]
    fn connecting_then_up_then_down_past_the_grace_then_up_again() {
        // A Wednesday.
        let (health, clock, metrics) = health("2026-11-18T10:00:00Z", vec![]);
        let status = health.status();
        assert_eq!((status.state, status.healthy), (FeedState::Connecting, true));
        assert_eq!(gauge(&metrics, "feed_up"), "0");

        health.connected("binance");
        assert_eq!(health.status().state, FeedState::Up);
        assert_eq!(gauge(&metrics, "feed_up"), "1");

        clock.advance(chrono::Duration::seconds(5));
        health.disconnected("binance", "the connection ended");
        clock.advance(chrono::Duration::seconds(30));
        health.disconnected("binance", "cannot connect to wss://stream.example/stream?streams=a@b&key=SECRET: 503");
        let status = health.status();
        assert_eq!((status.state, status.healthy), (FeedState::Down, true), "inside the grace");
        assert_eq!(status.since, at("2026-11-18T10:00:05Z"), "the outage started at the first failure");
        assert_eq!(status.problem.as_deref(), Some("cannot connect to wss://stream.example/stream: 503"));

        clock.advance(chrono::Duration::seconds(30));
        let status = health.status();
        assert!(!status.healthy, "down for 60 s");
        assert_eq!(gauge(&metrics, "feed_up"), "0");
        assert_eq!(status.banner_lines().len(), 1);

        health.connected("binance");
        let status = health.status();
        assert_eq!((status.state, status.healthy, status.problem), (FeedState::Up, true, None));
        assert_eq!(status.since, at("2026-11-18T10:01:05Z"));
    }

    #[test]
    fn never_connecting_is_unhealthy_after_the_grace() {
        let (health, clock, _) = health("2026-11-18T10:00:00Z", vec![]);
        clock.advance(chrono::Duration::seconds(61));
        let status = health.status();
        assert_eq!((status.state, status.healthy), (FeedState::Connecting, false));
        assert_eq!(
            status.banner_lines(),
            vec!["Market data from binance has not connected since 2026-11-18 10:00 UTC"]
        );
    }

    #[test]
    fn a_pair_is_stale_after_two_timeframes_without_a_candle_and_recovers_with_one() {
        let btc = pair("BTCUSDT", Timeframe::H1);
        let (health, clock, metrics) = health("2026-11-18T10:00:00Z", vec![btc.clone()]);
        health.connected("binance");
        health.candle_closed(&btc.0, btc.1, at("2026-11-18T10:00:00Z"));
        clock.set(at("2026-11-18T12:00:00Z"));
        assert!(health.status().healthy, "exactly two timeframes is not yet late");
        clock.set(at("2026-11-18T12:00:01Z"));
        let status = health.status();
        assert!(!status.healthy);
        assert_eq!(
            status.stale,
            vec![StalePair {
                symbol: "BTCUSDT".into(),
                timeframe: "1h".into(),
                last_candle_close: Some(at("2026-11-18T10:00:00Z")),
                since: at("2026-11-18T10:00:00Z"),
            }]
        );
        assert_eq!(status.banner_lines(), vec!["No BTCUSDT 1h candle since 2026-11-18 10:00 UTC"]);
        assert_eq!(gauge(&metrics, "feed_stale_pairs"), "1");
        // Asked again: still stale, but one episode, one alarm.
        health.status();
        assert_eq!(gauge(&metrics, "feed_stale_alarms_total"), "1");

        health.candle_closed(&btc.0, btc.1, at("2026-11-18T12:00:00Z"));
        assert!(health.status().healthy);
        assert_eq!(gauge(&metrics, "feed_stale_pairs"), "0");
    }

    #[test]
    fn a_pair_without_any_candle_counts_from_when_it_was_watched() {
        let eth = pair("ETHUSDT", Timeframe::M15);
        let (health, clock, _) = health("2026-11-18T10:00:00Z", vec![]);
        health.connected("binance");
        clock.set(at("2026-11-18T11:00:00Z"));
        health.set_subscriptions(vec![eth.clone()]);
        clock.set(at("2026-11-18T11:30:00Z"));
        assert!(health.status().healthy);
        clock.set(at("2026-11-18T11:31:00Z"));
        let status = health.status();
        assert_eq!(status.stale.len(), 1);
        assert_eq!((status.stale[0].last_candle_close, status.stale[0].since), (None, at("2026-11-18T11:00:00Z")));
        health.set_subscriptions(vec![]);
        assert!(health.status().healthy, "a pair no longer streamed is not watched");
    }

    #[test]
    fn forex_is_not_stale_over_the_weekend_but_crypto_is() {
        let eur = pair("EURUSD", Timeframe::H1);
        let btc = pair("BTCUSDT", Timeframe::H1);
        let (health, clock, _) = health("2026-11-20T20:00:00Z", vec![eur.clone(), btc.clone()]);
        health.connected("binance");
        // The last candles of the forex week: 21:00–22:00 on Friday.
        health.candle_closed(&eur.0, eur.1, at("2026-11-20T22:00:00Z"));
        health.candle_closed(&btc.0, btc.1, at("2026-11-20T22:00:00Z"));
        clock.set(at("2026-11-21T12:00:00Z"));
        let stale: Vec<String> = health.status().stale.into_iter().map(|p| p.symbol).collect();
        assert_eq!(stale, vec!["BTCUSDT"], "Saturday: only crypto should be trading");
        health.candle_closed(&btc.0, btc.1, at("2026-11-22T23:00:00Z"));
        // Sunday 23:30: the forex market reopened 90 minutes ago; 1.5 h of trading time is within two hours.
        clock.set(at("2026-11-22T23:30:00Z"));
        assert!(health.status().healthy);
        clock.set(at("2026-11-23T00:01:00Z"));
        let stale: Vec<String> = health.status().stale.into_iter().map(|p| p.symbol).collect();
        assert_eq!(stale, vec!["EURUSD"], "two hours and a minute of trading without a EURUSD candle");
    }

    #[test]
    fn the_replay_is_always_up() {
        let clock = ManualClock::new(at("2026-11-18T10:00:00Z"));
        let health = FeedHealth::replay(Arc::new(clock.clone()), Metrics::new());
        clock.advance(chrono::Duration::days(3));
        let status = health.status();
        assert_eq!((status.feed.as_str(), status.state, status.healthy), ("replay", FeedState::Up, true));
    }

    #[test]
    fn problems_lose_credentials_and_queries() {
        assert_eq!(
            public_problem("GET https://user:pw@api.example.com/v1/quote?apikey=abc: 401 Unauthorized"),
            "GET https://api.example.com/v1/quote: 401 Unauthorized"
        );
        assert_eq!(public_problem("no frame for 600s"), "no frame for 600s");
        assert_eq!(public_problem(&"x".repeat(300)).chars().count(), PROBLEM_CHARS + 1);
    }
}

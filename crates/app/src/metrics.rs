//! Prometheus metrics, served as text on `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub ticks: IntCounter,
    pub candles_closed: IntCounter,
    pub trades_closed: IntCounterVec,
    pub open_trades: IntGauge,
    pub monitor_errors: IntCounter,
    pub replay_finished: IntGauge,
    pub signals_stored: IntCounter,
    /// Discord gateway sessions started (`ready`), resumed (`resumed`) and connections lost (`disconnected`).
    pub gateway_connection_events: IntCounterVec,
    /// Channel messages seen on the gateway, by `kind` (create, update, delete).
    pub gateway_messages: IntCounterVec,
    /// Interactions from the gateway, by `outcome` (answered, deferred, failed, unreadable).
    pub gateway_interactions: IntCounterVec,
    /// Trade notices (close reports, running updates) by `outcome`: sent, retry, failed, expired.
    pub trade_notices: IntCounterVec,
    /// Running updates queued.
    pub running_updates_queued: IntCounter,
    /// Live feeds, by `feed`: seconds from a candle's close to its arrival, reconnects, candles filled by REST.
    pub feed_lag_seconds: HistogramVec,
    pub feed_reconnects: IntCounterVec,
    pub feed_gaps_filled: IntCounterVec,
    /// Feed health (see `feed_health`), by `feed`: 1 while receiving, 0 while connecting or down; subscribed
    /// pairs stale now; stale alarms raised (one per episode).
    pub feed_up: IntGaugeVec,
    pub feed_stale_pairs: IntGaugeVec,
    pub feed_stale_alarms: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("signalpost".into()), None).expect("a valid prefix");
        let ticks = IntCounter::new("ticks_total", "Ticks the position monitor processed").unwrap();
        let candles_closed =
            IntCounter::new("candles_closed_total", "Candle closes seen from the market feed").unwrap();
        let trades_closed =
            IntCounterVec::new(Opts::new("trades_closed_total", "Trades the monitor closed, by reason"), &["reason"])
                .unwrap();
        let open_trades = IntGauge::new("open_trades", "Open trades the position monitor watches").unwrap();
        let monitor_errors =
            IntCounter::new("monitor_errors_total", "Failed attempts to close or sync trades").unwrap();
        let replay_finished =
            IntGauge::new("replay_finished", "Whether the replay feed has played all its data: 0 until it has, then 1")
                .unwrap();
        let signals_stored = IntCounter::new("signals_stored_total", "Engine signals stored for subscribers").unwrap();
        for c in [&ticks, &candles_closed, &monitor_errors, &signals_stored] {
            registry.register(Box::new(c.clone())).expect("unique metric names");
        }
        registry.register(Box::new(trades_closed.clone())).expect("unique metric names");
        registry.register(Box::new(open_trades.clone())).expect("unique metric names");
        registry.register(Box::new(replay_finished.clone())).expect("unique metric names");
        let gateway_connection_events = IntCounterVec::new(
            Opts::new("gateway_connection_events_total", "Discord gateway sessions, resumes and lost connections"),
            &["event"],
        )
        .unwrap();
        let gateway_messages = IntCounterVec::new(
            Opts::new("gateway_messages_total", "Channel messages seen on the Discord gateway, by kind"),
            &["kind"],
        )
        .unwrap();
        let gateway_interactions = IntCounterVec::new(
            Opts::new("gateway_interactions_total", "Interactions received over the Discord gateway, by outcome"),
            &["outcome"],
        )
        .unwrap();
        for c in [&gateway_connection_events, &gateway_messages, &gateway_interactions] {
            registry.register(Box::new(c.clone())).expect("unique metric names");
        }
        let trade_notices = IntCounterVec::new(
            Opts::new("trade_notices_total", "Trade notice delivery attempts to Discord, by outcome"),
            &["outcome"],
        )
        .unwrap();
        let running_updates_queued =
            IntCounter::new("running_updates_queued_total", "Still-running trade updates queued").unwrap();
        registry.register(Box::new(trade_notices.clone())).expect("unique metric names");
        registry.register(Box::new(running_updates_queued.clone())).expect("unique metric names");
        let feed_lag_seconds = HistogramVec::new(
            HistogramOpts::new("feed_lag_seconds", "From a live candle's close time to its arrival from the feed")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0]),
            &["feed"],
        )
        .unwrap();
        let feed_reconnects =
            IntCounterVec::new(Opts::new("feed_reconnects_total", "Live feed reconnections"), &["feed"]).unwrap();
        let feed_gaps_filled = IntCounterVec::new(
            Opts::new("feed_gaps_filled_total", "Candles missed by a live stream and fetched by REST"),
            &["feed"],
        )
        .unwrap();
        registry.register(Box::new(feed_lag_seconds.clone())).expect("unique metric names");
        for c in [&feed_reconnects, &feed_gaps_filled] {
            registry.register(Box::new(c.clone())).expect("unique metric names");
        }
        let feed_up = IntGaugeVec::new(
            Opts::new("feed_up", "Whether the market feed is receiving from its vendor: 1 up, 0 connecting or down"),
            &["feed"],
        )
        .unwrap();
        let feed_stale_pairs = IntGaugeVec::new(
            Opts::new("feed_stale_pairs", "Subscribed pairs with no candle for more than two timeframes of trading"),
            &["feed"],
        )
        .unwrap();
        let feed_stale_alarms = IntCounterVec::new(
            Opts::new("feed_stale_alarms_total", "Stale-pair alarms raised, one per pair and episode"),
            &["feed"],
        )
        .unwrap();
        registry.register(Box::new(feed_up.clone())).expect("unique metric names");
        registry.register(Box::new(feed_stale_pairs.clone())).expect("unique metric names");
        registry.register(Box::new(feed_stale_alarms.clone())).expect("unique metric names");
        Metrics {
            registry,
            ticks,
            candles_closed,
            trades_closed,
            open_trades,
            monitor_errors,
            replay_finished,
            signals_stored,
            gateway_connection_events,
            gateway_messages,
            gateway_interactions,
            trade_notices,
            running_updates_queued,
            feed_lag_seconds,
            feed_reconnects,
            feed_gaps_filled,
            feed_up,
            feed_stale_pairs,
            feed_stale_alarms,
        }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl market::FeedObserver for Metrics {
    fn reconnected(&self, feed: &str) {
        self.feed_reconnects.with_label_values(&[feed]).inc();
    }

    fn gap_filled(&self, feed: &str, candles: u64) {
        self.feed_gaps_filled.with_label_values(&[feed]).inc_by(candles);
    }

    fn candle_lag(&self, feed: &str, lag: std::time::Duration) {
        self.feed_lag_seconds.with_label_values(&[feed]).observe(lag.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

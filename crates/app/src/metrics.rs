//! Prometheus metrics, served as text on `/metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

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
            IntGauge::new("replay_finished", "1 once the replay feed has played all its data").unwrap();
        let signals_stored = IntCounter::new("signals_stored_total", "Engine signals stored for subscribers").unwrap();
        for c in [&ticks, &candles_closed, &monitor_errors, &signals_stored] {
            registry.register(Box::new(c.clone())).expect("unique metric names");
        }
        registry.register(Box::new(trades_closed.clone())).expect("unique metric names");
        registry.register(Box::new(open_trades.clone())).expect("unique metric names");
        registry.register(Box::new(replay_finished.clone())).expect("unique metric names");
        Metrics {
            registry,
            ticks,
            candles_closed,
            trades_closed,
            open_trades,
            monitor_errors,
            replay_finished,
            signals_stored,
        }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

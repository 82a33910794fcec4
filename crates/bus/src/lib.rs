//! Events between Signalpost's services. Services publish what happened (a trade opened or closed, a
//! candle closed) and others react, without knowing about each other. The store stays the source of truth:
//! an event tells a service to look, it never carries the only copy of a fact.
//!
//! `InProcessBus` (tokio broadcast) is the default for one process. A NATS JetStream bus for several
//! processes implements the same `Bus` trait and passes the same contract tests.

mod nats;

pub use nats::NatsBus;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Candle, Symbol, Timeframe, Trade};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Something that happened, as every service sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    TradeOpened {
        trade: Trade,
    },
    TradeClosed {
        trade: Trade,
    },
    TradeCancelled {
        trade: Trade,
    },
    CandleClosed {
        symbol: Symbol,
        timeframe: Timeframe,
        candle: Candle,
        closed_at: DateTime<Utc>,
    },
    /// A signal was stored (by the engine, a provider parser or a webhook) and awaits routing.
    SignalCreated {
        signal_id: domain::SignalId,
        signal: domain::Signal,
    },
    /// A market feed has nothing more to send (the end of a replay).
    FeedFinished {
        feed: String,
    },
    /// A provider's update or close message was stored (from a Discord channel or the TradingView webhook,
    /// `channel_id` then being `store::WEBHOOK_CHANNEL`); the copier re-reads and applies it to the copied
    /// trades.
    ProviderUpdate {
        channel_id: String,
        message_id: String,
    },
    /// A user's settings were saved (on the dashboard or by a Discord command); the live feeds re-derive the
    /// pairs they stream from the store.
    SettingsChanged {
        user_id: domain::UserId,
    },
}

impl Event {
    /// The subject this event travels under; a subscriber can filter on its prefix.
    pub fn subject(&self) -> String {
        match self {
            Event::TradeOpened { .. } => "trades.opened".into(),
            Event::TradeClosed { .. } => "trades.closed".into(),
            Event::TradeCancelled { .. } => "trades.cancelled".into(),
            Event::CandleClosed { symbol, timeframe, .. } => format!("candles.{symbol}.{timeframe}"),
            Event::SignalCreated { .. } => "signals.created".into(),
            Event::FeedFinished { feed } => format!("feeds.{feed}.finished"),
            Event::ProviderUpdate { .. } => "providers.update".into(),
            Event::SettingsChanged { .. } => "settings.changed".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is closed")]
    Closed,
    #[error("a subscriber fell behind and missed {0} events")]
    Lagged(u64),
    #[error("could not encode or decode an event: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("bus transport failed: {0}")]
    Transport(String),
}

/// A stream of events for one subscriber.
#[async_trait]
pub trait Subscription: Send + std::fmt::Debug {
    /// The next event; `Err(Lagged)` tells a slow subscriber to reconcile from the store, `Err(Closed)` ends it.
    async fn next(&mut self) -> Result<Event, BusError>;
}

#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug {
    async fn publish(&self, event: Event) -> Result<(), BusError>;
    /// Events published after this call, in publish order.
    async fn subscribe(&self) -> Result<Box<dyn Subscription>, BusError>;
}

/// One process: a tokio broadcast channel. A subscriber that falls more than `capacity` events behind is
/// told so (`Lagged`) instead of silently missing them.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Event>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        InProcessBus { sender }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus::new(4096)
    }
}

#[derive(Debug)]
struct InProcessSubscription(broadcast::Receiver<Event>);

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Result<Event, BusError> {
        self.0.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Closed => BusError::Closed,
            broadcast::error::RecvError::Lagged(n) => BusError::Lagged(n),
        })
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, event: Event) -> Result<(), BusError> {
        // No subscribers is not an error: nobody needed to know.
        let _ = self.sender.send(event);
        Ok(())
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(InProcessSubscription(self.sender.subscribe())))
    }
}

/// The behaviour every `Bus` must have; run it against each implementation.
pub mod contract {
    use super::*;

    fn candle_event(n: i64) -> Event {
        let time = DateTime::from_timestamp(1_700_000_000 + n * 3600, 0).unwrap();
        let one = rust_decimal::Decimal::ONE;
        Event::CandleClosed {
            symbol: Symbol::normalize("EURUSD"),
            timeframe: Timeframe::H1,
            candle: Candle { time, open: one, high: one, low: one, close: one, volume: rust_decimal::Decimal::ZERO },
            closed_at: time,
        }
    }

    /// Every subscriber gets every event published after it subscribed, in order, intact.
    pub async fn delivers_in_order_to_every_subscriber(bus: &dyn Bus) {
        let mut first = bus.subscribe().await.unwrap();
        let mut second = bus.subscribe().await.unwrap();
        let sent: Vec<Event> = (0..20).map(candle_event).collect();
        for e in &sent {
            bus.publish(e.clone()).await.unwrap();
        }
        for sub in [&mut first, &mut second] {
            for expected in &sent {
                let got = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
                    .await
                    .expect("an event within 5 s")
                    .unwrap();
                assert_eq!(&got, expected);
            }
        }
    }

    /// Publishing with nobody listening succeeds, and a later subscriber does not see the old event.
    pub async fn later_subscribers_start_from_now(bus: &dyn Bus) {
        bus.publish(candle_event(100)).await.unwrap();
        let mut sub = bus.subscribe().await.unwrap();
        bus.publish(candle_event(101)).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        assert_eq!(got, candle_event(101));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_bus_meets_the_contract() {
        contract::delivers_in_order_to_every_subscriber(&InProcessBus::default()).await;
        contract::later_subscribers_start_from_now(&InProcessBus::default()).await;
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = InProcessBus::new(2);
        let mut sub = bus.subscribe().await.unwrap();
        for n in 0..5 {
            bus.publish(contract_event(n)).await.unwrap();
        }
        assert!(matches!(sub.next().await, Err(BusError::Lagged(3))));
    }

    fn contract_event(n: i64) -> Event {
        let mut e = Event::TradeCancelled { trade: sample_trade() };
        if let Event::TradeCancelled { trade } = &mut e {
            trade.id = domain::TradeId(n);
        }
        e
    }

    fn sample_trade() -> Trade {
        let new = domain::NewTrade::new(
            domain::UserId(1),
            "EURUSD",
            domain::Side::Long,
            domain::Price::parse("1.1").unwrap(),
            domain::Lots::parse("1").unwrap(),
            None,
            None,
            Utc::now(),
        )
        .unwrap();
        Trade::from_new(domain::TradeId(1), new)
    }

    /// A prefix no other test run uses, so parallel runs on one server never see each other's events.
    fn unique_prefix() -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("test-{}-{nanos}", std::process::id())
    }

    #[tokio::test]
    async fn nats_bus_meets_the_contract() {
        let Ok(url) = std::env::var("TEST_NATS_URL") else {
            println!("skipped: TEST_NATS_URL is unset, so the NATS bus contract did not run");
            return;
        };
        let bus = NatsBus::connect(&url, &unique_prefix()).await.expect("NATS with JetStream answers");
        contract::delivers_in_order_to_every_subscriber(&bus).await;
        contract::later_subscribers_start_from_now(&bus).await;
        // A second process on the same prefix sees the first one's events.
        let prefix = unique_prefix();
        let (a, b) = (NatsBus::connect(&url, &prefix).await.unwrap(), NatsBus::connect(&url, &prefix).await.unwrap());
        let mut sub = b.subscribe().await.unwrap();
        let sent = Event::TradeOpened { trade: sample_trade() };
        a.publish(sent.clone()).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn an_unreachable_nats_is_a_clear_error() {
        let err = NatsBus::connect("nats://127.0.0.1:1", "x").await.unwrap_err();
        assert!(err.to_string().contains("could not connect to NATS"), "{err}");
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = Event::TradeOpened { trade: sample_trade() };
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.subject(), "trades.opened");
        let settings = Event::SettingsChanged { user_id: domain::UserId(7) };
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(json, r#"{"type":"settings_changed","user_id":7}"#);
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), settings);
        assert_eq!(settings.subject(), "settings.changed");
    }
}

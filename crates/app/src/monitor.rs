//! The position monitor: watches every open trade and closes it, exactly once, when a tick reaches its stop
//! loss or take profit.
//!
//! Trades are indexed in a `TriggerBook`, so a tick costs O(log n + hits). The store is the source of truth:
//! the book is rebuilt from it at start, trades opened by another process are picked up by tailing it, and
//! a close is an `UPDATE … WHERE status = 'open'` so a second process or a replayed tick cannot close a trade
//! twice.

use crate::metrics::Metrics;
use bus::{Bus, Event};
use chrono::{DateTime, Utc};
use domain::{
    Clock, CloseReason, Closing, InstrumentRegistry, RateBook, Symbol, Tick, Trade, TradeId, TradeStatus, Trigger,
    TriggerBook, TriggerKind, WatchedTrade, pnl, resolve_fill,
};
use std::collections::HashMap;
use std::sync::Arc;
use store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("could not load open trades from the store")]
    Load(#[source] store::StoreError),
}

pub struct PositionMonitor {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    account_currency: String,
    book: TriggerBook,
    rates: RateBook,
    newest_seen: TradeId,
    fired: Vec<Trigger>,
    /// Latest tick per symbol and when it was last written to the store, so prices are saved at most once a second.
    last_prices: HashMap<Symbol, (Tick, Option<DateTime<Utc>>)>,
}

impl std::fmt::Debug for PositionMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionMonitor").field("watched", &self.book.len()).finish_non_exhaustive()
    }
}

fn watched(trade: &Trade) -> Option<WatchedTrade> {
    let instrument = InstrumentRegistry::global().get(trade.symbol.as_str()).ok()?;
    Some(WatchedTrade {
        id: trade.id,
        instrument: instrument.index,
        side: trade.side,
        stop_loss: trade.stop_loss,
        take_profit: trade.take_profit,
    })
}

impl PositionMonitor {
    /// Loads every open trade from the store, so a restart picks up where the last run stopped.
    pub async fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
        account_currency: String,
    ) -> Result<PositionMonitor, MonitorError> {
        let mut monitor = PositionMonitor {
            store,
            bus,
            metrics,
            clock,
            account_currency,
            book: TriggerBook::new(),
            rates: RateBook::default(),
            newest_seen: TradeId(0),
            fired: Vec::new(),
            last_prices: HashMap::new(),
        };
        monitor.reload().await?;
        tracing::info!(open_trades = monitor.book.len(), "position monitor loaded open trades");
        Ok(monitor)
    }

    pub fn watched(&self) -> usize {
        self.book.len()
    }

    fn watch(&mut self, trade: &Trade) {
        if trade.status != TradeStatus::Open {
            return;
        }
        match watched(trade) {
            Some(w) => self.book.insert(w),
            None => {
                tracing::error!(trade = %trade.id, symbol = %trade.symbol, "open trade on an unknown instrument is not watched")
            }
        }
        self.newest_seen = self.newest_seen.max(trade.id);
        self.metrics.open_trades.set(self.book.len() as i64);
    }

    fn unwatch(&mut self, id: TradeId) {
        self.book.remove(id);
        self.metrics.open_trades.set(self.book.len() as i64);
    }

    /// Rebuilds the book from the store's open trades.
    async fn reload(&mut self) -> Result<(), MonitorError> {
        let open = self.store.open_trades().await.map_err(MonitorError::Load)?;
        self.book = TriggerBook::new();
        for trade in &open {
            self.watch(trade);
        }
        self.metrics.open_trades.set(self.book.len() as i64);
        Ok(())
    }

    /// Picks up trades another process opened since the last look.
    async fn tail(&mut self) -> Result<(), MonitorError> {
        let new = self.store.open_trades_after(self.newest_seen).await.map_err(MonitorError::Load)?;
        for trade in &new {
            self.watch(trade);
        }
        Ok(())
    }

    /// Applies one tick: closes every trade whose level it reached.
    pub async fn on_tick(&mut self, tick: &Tick) {
        self.metrics.ticks.inc();
        let Ok(instrument) = InstrumentRegistry::global().get(tick.symbol.as_str()) else {
            tracing::warn!(symbol = %tick.symbol, "tick for an unknown instrument ignored");
            return;
        };
        self.rates.set(instrument.symbol.as_str(), tick.mid());
        self.remember_price(tick);
        self.book.on_tick(
            instrument.index,
            domain::FixedPrice::from_price(tick.bid),
            domain::FixedPrice::from_price(tick.ask),
            &mut self.fired,
        );
        if self.fired.is_empty() {
            return;
        }
        let fired = std::mem::take(&mut self.fired);
        for trigger in &fired {
            self.close_fired(trigger, tick).await;
        }
        self.fired = fired;
        self.fired.clear();
        self.metrics.open_trades.set(self.book.len() as i64);
    }

    async fn close_fired(&mut self, trigger: &Trigger, tick: &Tick) {
        let trade = match self.store.get_trade(trigger.trade).await {
            Ok(Some(trade)) if trade.status == TradeStatus::Open => trade,
            // Closed or cancelled elsewhere since we loaded it: nothing to do.
            Ok(_) => return,
            Err(error) => {
                self.retry_later(trigger.trade, &error.to_string()).await;
                return;
            }
        };
        let Ok(instrument) = InstrumentRegistry::global().get(trade.symbol.as_str()) else {
            return;
        };
        let (kind, exit) = resolve_fill(trade.side, trade.stop_loss, trade.take_profit, trigger.kind, tick);
        let reason = match kind {
            TriggerKind::StopLoss => CloseReason::SlHit,
            TriggerKind::TakeProfit => CloseReason::TpHit,
        };
        let outcome =
            pnl::outcome(instrument, trade.side, trade.entry, exit, trade.lots, &self.rates, &self.account_currency);
        if outcome.profit.is_none() {
            tracing::warn!(trade = %trade.id, symbol = %trade.symbol, account = %self.account_currency,
                "closing without an account-currency profit: no price links the quote currency to the account currency yet");
        }
        let closing = Closing::new(exit, reason, tick.time, &outcome);
        match self.store.close_trade(trade.id, &closing).await {
            Ok(Some(closed)) => {
                self.metrics.trades_closed.with_label_values(&[reason.as_str()]).inc();
                tracing::info!(trade = %closed.id, symbol = %closed.symbol, reason = %reason, exit = %exit,
                    pips = ?closed.pips, profit = ?closed.profit, "trade closed");
                if let Err(error) = self.bus.publish(Event::TradeClosed { trade: closed }).await {
                    tracing::warn!(%error, "could not publish a trade close; subscribers will reconcile from the store");
                }
            }
            Ok(None) => {}
            Err(error) => self.retry_later(trade.id, &error.to_string()).await,
        }
    }

    /// The book already let go of a trade whose close failed; put it back so the next tick tries again.
    async fn retry_later(&mut self, id: TradeId, error: &str) {
        self.metrics.monitor_errors.inc();
        tracing::error!(trade = %id, error, "could not close a trade; it stays watched and the next tick retries");
        if let Ok(Some(trade)) = self.store.get_trade(id).await {
            self.watch(&trade);
        } else {
            // The store is unreachable: the periodic full reload will restore the trade.
        }
    }

    fn remember_price(&mut self, tick: &Tick) {
        match self.last_prices.get_mut(&tick.symbol) {
            Some(slot) => slot.0 = tick.clone(),
            None => {
                self.last_prices.insert(tick.symbol.clone(), (tick.clone(), None));
            }
        }
    }

    /// Writes the latest price of each symbol that changed, at most once a second each, so a CLI or another
    /// process can open and close trades at market.
    async fn save_prices(&mut self, force: bool) {
        let now = self.clock.now();
        for (tick, saved_at) in self.last_prices.values_mut() {
            let due = force || saved_at.is_none_or(|t| now - t >= chrono::Duration::seconds(1));
            if due && let Err(error) = self.store.set_last_price(tick).await {
                tracing::warn!(%error, symbol = %tick.symbol, "could not save the latest price");
                continue;
            }
            if due {
                *saved_at = Some(now);
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::TradeOpened { trade } => self.watch(&trade),
            Event::TradeClosed { trade } | Event::TradeCancelled { trade } => self.unwatch(trade.id),
            Event::CandleClosed { .. }
            | Event::FeedFinished { .. }
            | Event::SignalCreated { .. }
            | Event::ProviderUpdate { .. }
            | Event::SettingsChanged { .. } => {}
        }
    }

    /// Runs until `shutdown`: ticks from the feed, trade events from the bus, and a periodic look at the store.
    pub async fn run(
        mut self,
        mut ticks: mpsc::Receiver<Tick>,
        shutdown: CancellationToken,
        sync_every: std::time::Duration,
        full_reload_every: u32,
        drained: tokio::sync::oneshot::Sender<()>,
    ) {
        let mut drained = Some(drained);
        let mut events = match self.bus.subscribe().await {
            Ok(s) => Some(s),
            Err(error) => {
                tracing::warn!(%error, "monitor runs without bus events; it relies on syncing with the store");
                None
            }
        };
        let mut sync = tokio::time::interval(sync_every);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut syncs: u32 = 0;
        let mut feed_open = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                tick = ticks.recv(), if feed_open => match tick {
                    Some(tick) => self.on_tick(&tick).await,
                    None => {
                        // The feed ended and every tick it sent is applied; trades opened or closed by hand are
                        // still tracked until shutdown.
                        feed_open = false;
                        self.save_prices(true).await;
                        if let Some(done) = drained.take() {
                            let _ = done.send(());
                        }
                    }
                },
                event = async { match events.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => match event {
                    Ok(event) => self.on_event(event).await,
                    Err(bus::BusError::Lagged(missed)) => {
                        tracing::warn!(missed, "monitor fell behind the bus; reloading open trades");
                        self.metrics.monitor_errors.inc();
                        if let Err(error) = self.reload().await { tracing::error!(%error, "reload failed"); }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "bus subscription ended");
                        events = None;
                    }
                },
                _ = sync.tick() => {
                    syncs = syncs.wrapping_add(1);
                    let result = if full_reload_every > 0 && syncs.is_multiple_of(full_reload_every) { self.reload().await } else { self.tail().await };
                    if let Err(error) = result {
                        self.metrics.monitor_errors.inc();
                        tracing::error!(error = %error, source = ?std::error::Error::source(&error), "monitor could not sync with the store");
                    }
                    self.save_prices(false).await;
                }
            }
        }
        self.save_prices(true).await;
        tracing::info!("position monitor stopped");
    }
}

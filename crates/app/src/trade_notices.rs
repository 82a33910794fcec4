//! Trade updates in Discord: when a trade closes (take profit, stop loss, by hand) or is cancelled, its owner
//! gets a direct message with the pips, the money and how long it ran; and, when they ask for it
//! (`running_update_minutes`), a "still running" message with the live P&L every that many minutes.
//!
//! Every such message is a row of the store's trade-notice outbox before it is sent:
//! - the close notice is written by `Store::close_trade` / `cancel_trade` in the transaction that closes the
//!   trade, whichever path closed it (monitor, CLI, `/stop`), so a crash cannot lose it;
//! - [`RunningUpdates`] queues one update per (trade, slot), slot = whole periods since the trade opened, so
//!   any number of processes ticking queue it once;
//! - [`TradeNotices`] sends what is queued. It claims rows first (a lease in the store), so two processes
//!   never send the same notice; the retry, backoff and give-up rules are the outbox's (shared code). A crash
//!   between Discord's answer and recording it resends that notice once, when its claim has run out
//!   ([`CLAIM`]); nothing is lost.
//!
//! Close notices are queued only for owners with a linked Discord account: nobody else could receive one,
//! and a user who links later would otherwise get a burst of reports about long-closed trades.

use crate::metrics::Metrics;
use crate::outbox::{Attempt, Deliverable, Sender, deliver_due, retry_at};
use bus::{BusError, Event, Subscription};
use discord::render::RunningView;
use discord::{DeliveryTarget, Notifier, OutgoingMessage};
use domain::{Clock, InstrumentRegistry, RateBook, Symbol, Tick, TradeStatus, UserId, pnl};
use std::collections::HashMap;
use std::sync::Arc;
use store::{NewRunningNotice, Store, StoreError, TradeNotice, TradeNoticeKind};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a sender holds a claimed notice: longer than the notifier may take over one send (its deadline is
/// a minute), so a live sender's claim never runs out under it.
pub const CLAIM: chrono::Duration = chrono::Duration::minutes(2);
/// How often the sender looks for due notices without being woken: retries, and notices other processes
/// queued.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The trade-notice rows as a [`Deliverable`]: rendered from the trade as stored, sent by DM.
#[derive(Debug)]
struct NoticeQueue {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Deliverable for NoticeQueue {
    type Item = TradeNotice;

    async fn prepare(&self, notice: &TradeNotice) -> Result<(DeliveryTarget, OutgoingMessage), Attempt> {
        let unreadable = |e: StoreError| Attempt::Retry(format!("could not read the store: {e}"), None);
        let trade = self
            .store
            .get_trade(notice.trade_id)
            .await
            .map_err(unreadable)?
            .ok_or_else(|| Attempt::Refused(format!("trade {} no longer exists", notice.trade_id)))?;
        let owner = self
            .store
            .get_user(trade.user_id)
            .await
            .map_err(unreadable)?
            .ok_or_else(|| Attempt::Refused("the trade's owner no longer exists".into()))?;
        let Some(discord_user_id) = owner.discord_user_id else {
            return Err(Attempt::Refused("no Discord account is linked: use /link in Discord".into()));
        };
        let message = match notice.kind {
            TradeNoticeKind::Closed => discord::render::trade_closed_message(&trade, &owner.account_currency)
                .map_err(|e| Attempt::Refused(e.to_string()))?,
            TradeNoticeKind::Cancelled => discord::render::trade_cancelled_message(&trade),
            TradeNoticeKind::Running => {
                // Queued just before a close committed; the close report says everything now.
                if trade.status != TradeStatus::Open {
                    return Err(Attempt::Expired("the trade closed before it was sent".into()));
                }
                let Some(price) = notice.price else {
                    return Err(Attempt::Refused("a running update without a price".into()));
                };
                let view = RunningView {
                    price,
                    pips: notice.pips,
                    profit: notice.profit,
                    currency: owner.account_currency.clone(),
                    at: notice.created_at,
                };
                discord::render::trade_running_message(&trade, &view)
            }
        };
        Ok((DeliveryTarget::Dm { discord_user_id }, message))
    }

    async fn mark_sent(&self, notice: &TradeNotice, discord_message_id: &str) -> Result<(), StoreError> {
        self.store.mark_trade_notice_sent(notice.id, discord_message_id, self.clock.now()).await
    }
}

/// Sends the queued trade notices.
#[derive(Debug, Clone)]
pub struct TradeNotices {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    queue: Arc<NoticeQueue>,
    wake: Arc<Notify>,
    metrics: Option<Metrics>,
}

impl TradeNotices {
    pub fn new(store: Arc<dyn Store>, notifier: Arc<dyn Notifier>, clock: Arc<dyn Clock>) -> TradeNotices {
        let queue = Arc::new(NoticeQueue { store: store.clone(), clock: clock.clone() });
        TradeNotices { store, notifier, clock, queue, wake: Arc::new(Notify::new()), metrics: None }
    }

    /// Counts every attempt's outcome in `trade_notices_total`.
    pub fn with_metrics(mut self, metrics: Metrics) -> TradeNotices {
        self.metrics = Some(metrics);
        self
    }

    /// Wakes the sender; [`RunningUpdates`] calls it when it queued something.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and sends every notice that is due; returns how many were sent.
    pub async fn drain(&self) -> usize {
        self.drain_until(&CancellationToken::new()).await
    }

    /// [`TradeNotices::drain`], stopping between batches once `shutdown` is cancelled; the rest stays queued.
    async fn drain_until(&self, shutdown: &CancellationToken) -> usize {
        deliver_due(&self.queue, &self.notifier, shutdown, self).await
    }

    /// Sends whenever a trade closes (the close notice is already stored when the event arrives), when
    /// woken, and at least every second for retries and other processes' notices, until shutdown.
    pub async fn run(self, mut events: Box<dyn Subscription>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut subscribed = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = events.next(), if subscribed => match event {
                    Ok(Event::TradeClosed { .. } | Event::TradeCancelled { .. }) => {}
                    Ok(_) => continue,
                    // Nothing is lost: the notices are in the store and the poll finds them.
                    Err(BusError::Lagged(_)) => {}
                    Err(error) => {
                        tracing::warn!(%error, "trade notices' bus subscription ended; polling only");
                        subscribed = false;
                    }
                },
                _ = self.wake.notified() => {},
                _ = tick.tick() => {},
            }
            self.drain_until(&shutdown).await;
        }
    }
}

impl Sender<TradeNotice> for TradeNotices {
    async fn claim(&self, limit: u32) -> Option<Vec<TradeNotice>> {
        let now = self.clock.now();
        self.store
            .claim_trade_notices(now, now + CLAIM, limit)
            .await
            .inspect_err(|error| tracing::error!(%error, "could not claim trade notices"))
            .ok()
    }

    async fn record(&self, notice: TradeNotice, outcome: Attempt) {
        if let Some(metrics) = &self.metrics {
            let label = match &outcome {
                Attempt::Sent => "sent",
                Attempt::Refused(_) => "failed",
                Attempt::Retry(..) => "retry",
                Attempt::Expired(_) => "expired",
            };
            metrics.trade_notices.with_label_values(&[label]).inc();
        }
        let result = match outcome {
            Attempt::Sent => Ok(()),
            Attempt::Refused(reason) => {
                tracing::warn!(notice = %notice.id, trade = %notice.trade_id, reason, "trade notice not deliverable");
                self.store.mark_trade_notice_failed(notice.id, &reason, None).await
            }
            Attempt::Expired(reason) => self.store.expire_trade_notice(notice.id, &reason).await.map(|_| ()),
            Attempt::Retry(reason, retry_after) => {
                let attempts = notice.attempts + 1;
                // The next attempt's time is stored as the claim, so every process honours the backoff.
                let next = retry_at(attempts, retry_after, self.clock.now());
                tracing::warn!(notice = %notice.id, attempts, reason, retry = next.is_some(), "trade notice failed");
                self.store.mark_trade_notice_failed(notice.id, &reason, next).await
            }
        };
        if let Err(error) = result {
            // The claim runs out and the notice is tried again: at worst one more send.
            tracing::error!(%error, notice = %notice.id, "could not record a trade notice's delivery");
        }
    }
}

/// Queues the "still running" updates of open trades whose owners asked for them.
#[derive(Debug, Clone)]
pub struct RunningUpdates {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Option<Arc<Notify>>,
    metrics: Option<Metrics>,
}

impl RunningUpdates {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> RunningUpdates {
        RunningUpdates { store, clock, wake: None, metrics: None }
    }

    /// Counts the updates it queues in `running_updates_queued_total`.
    pub fn with_metrics(mut self, metrics: Metrics) -> RunningUpdates {
        self.metrics = Some(metrics);
        self
    }

    /// Wakes `sender` (see [`TradeNotices::waker`]) whenever an update was queued.
    pub fn waking(mut self, sender: Arc<Notify>) -> RunningUpdates {
        self.wake = Some(sender);
        self
    }

    /// Queues, for every open trade whose owner wants updates every P minutes and has been open at least P,
    /// the update of the current slot (whole periods open) at the latest price, unless that slot already has
    /// one. A trade without a price yet gets its update once one arrives. Returns how many were queued.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let wanted: HashMap<UserId, (u32, String)> = self
            .store
            .users_with_settings()
            .await?
            .into_iter()
            .filter(|(user, settings)| settings.running_update_minutes > 0 && user.discord_user_id.is_some())
            .map(|(user, settings)| (user.id, (settings.running_update_minutes, user.account_currency)))
            .collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let mut prices: HashMap<Symbol, Option<Tick>> = HashMap::new();
        let mut queued = 0;
        for trade in self.store.open_trades().await? {
            let Some((minutes, currency)) = wanted.get(&trade.user_id) else { continue };
            let period = i64::from(*minutes) * 60;
            let slot = (now - trade.opened_at).num_seconds() / period;
            if slot < 1 {
                continue;
            }
            let Ok(instrument) = InstrumentRegistry::global().get(trade.symbol.as_str()) else { continue };
            let Some(tick) = self.price(&mut prices, &trade.symbol).await? else { continue };
            let price = tick.exit_price(trade.side);
            let rates = self.rates(&mut prices, instrument, currency).await?;
            let live = pnl::outcome(instrument, trade.side, trade.entry, price, trade.lots, &rates, currency);
            let new =
                NewRunningNotice { trade_id: trade.id, slot, price, pips: live.pips, profit: live.profit, at: now };
            if self.store.queue_running_notice(&new).await?.is_some() {
                queued += 1;
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.running_updates_queued.inc_by(queued as u64);
        }
        if queued > 0
            && let Some(wake) = &self.wake
        {
            wake.notify_one();
        }
        Ok(queued)
    }

    async fn price(
        &self,
        cache: &mut HashMap<Symbol, Option<Tick>>,
        symbol: &Symbol,
    ) -> Result<Option<Tick>, StoreError> {
        if let Some(tick) = cache.get(symbol) {
            return Ok(tick.clone());
        }
        let tick = self.store.last_price(symbol).await?;
        cache.insert(symbol.clone(), tick.clone());
        Ok(tick)
    }

    /// The latest prices that convert the instrument's quote currency into the account currency.
    async fn rates(
        &self,
        cache: &mut HashMap<Symbol, Option<Tick>>,
        instrument: &domain::Instrument,
        account: &str,
    ) -> Result<RateBook, StoreError> {
        let mut rates = RateBook::default();
        for pair in [format!("{}{account}", instrument.quote), format!("{account}{}", instrument.quote)] {
            if let Ok(i) = InstrumentRegistry::global().get(&pair)
                && let Some(tick) = self.price(cache, &i.symbol).await?
            {
                rates.set(i.symbol.as_str(), tick.mid());
            }
        }
        Ok(rates)
    }

    /// Ticks every `every` until shutdown; a failed tick is logged and the next one tries again.
    pub async fn run(self, every: std::time::Duration, shutdown: CancellationToken) {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = timer.tick() => {},
            }
            if let Err(error) = self.tick().await {
                tracing::error!(%error, "could not queue running trade updates");
            }
        }
    }
}

/// How long the next tick of [`RunningUpdates`] should wait: a fraction of the shortest period allowed, so
/// an update goes out within a minute of its slot starting.
pub const RUNNING_TICK: std::time::Duration = std::time::Duration::from_secs(30);

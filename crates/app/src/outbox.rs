//! The outbox: delivers queued notifications to Discord and records the answer. A notification is stored
//! (queued) before it is sent and marked sent only after Discord answered, so a crash in between resends it
//! rather than losing it. The outbox claims notifications before sending them (a lease in the store,
//! [`CLAIM`]), so any number of processes sharing a database never both send one; a crash between Discord's
//! answer and recording it resends that notification once, when the crashed process's claim has run out.
//! Failures back off exponentially, the next attempt's time stored as the claim so every process honours
//! it; a refusal that will not change (a user who does not accept DMs, error 50007) is recorded on the
//! notification and not retried; after `MAX_ATTEMPTS` transient failures it is given up and recorded the
//! same way. Discord's rate limits are honoured inside
//! the notifier (twilight's ratelimiter), so sending in parallel never turns into a 429 storm.
//!
//! A notification of a signal stored before this outbox started (the backlog that built up while Discord
//! was off or the process was down) is not sent when the signal is older than the TTL ([`Expiry`]): it is
//! given up as expired, and the user's inbox shows it so. Notifications of signals stored while the outbox
//! runs are sent whatever the signal's time, because a replay's signals carry the replayed market's (past)
//! time. The line is drawn by signal, not by notification, because the router writes a signal's
//! notifications in batches after deciding its audience, possibly after a restart.
//!
//! The attempt / retry / give-up rules live here once ([`Deliverable`], [`deliver_due`], [`retry_at`]) and
//! are shared with the trade notices (`trade_notices.rs`).

use chrono::{DateTime, Utc};
use discord::{DeliveryError, DeliveryTarget, Notifier, OutgoingMessage, render::SignalView};
use domain::{Clock, Delivery, Entry, InstrumentRegistry, SignalId};
use std::sync::Arc;
use store::{Notification, Store};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

/// Transient failures after which a message is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// Messages sent at once.
pub(crate) const CONCURRENCY: usize = 16;
/// How long a sender holds a claimed notification: longer than the notifier may take over one send (its
/// deadline is a minute), so a live sender's claim never runs out under it.
pub const CLAIM: chrono::Duration = chrono::Duration::minutes(2);

/// How one attempt to deliver a queued message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Discord has it, and that is recorded.
    Sent,
    /// Given up: recorded on the message for the dashboard.
    Refused(String),
    Retry(String, Option<std::time::Duration>),
    /// No longer worth sending; nothing was sent.
    Expired(String),
}

/// A queue of stored messages the shared delivery rules apply to.
pub(crate) trait Deliverable: Send + Sync + 'static {
    type Item: Send + Sync + 'static;

    /// Where the item goes and what it says; an `Err` is the attempt's outcome without sending.
    fn prepare(
        &self,
        item: &Self::Item,
    ) -> impl Future<Output = Result<(DeliveryTarget, OutgoingMessage), Attempt>> + Send;

    /// Records that Discord took the item.
    fn mark_sent(
        &self,
        item: &Self::Item,
        discord_message_id: &str,
    ) -> impl Future<Output = Result<(), store::StoreError>> + Send;
}

/// One attempt: prepare, send, and record a delivery at once, so a crash after Discord answered resends at
/// most the items in flight.
async fn attempt<Q: Deliverable>(queue: Arc<Q>, notifier: Arc<dyn Notifier>, item: Q::Item) -> (Q::Item, Attempt) {
    let (target, message) = match queue.prepare(&item).await {
        Ok(prepared) => prepared,
        Err(outcome) => return (item, outcome),
    };
    let outcome = match notifier.send(&target, &message).await {
        Ok(sent) => match queue.mark_sent(&item, &sent.message_id).await {
            Ok(()) => Attempt::Sent,
            // Discord has it; failing to record that would resend it, which is the lesser evil.
            Err(error) => Attempt::Retry(format!("sent, but could not record it: {error}"), None),
        },
        Err(DeliveryError::Refused { code, message }) => Attempt::Refused(format!("Discord error {code}: {message}")),
        Err(DeliveryError::Transient { message, retry_after }) => Attempt::Retry(message, retry_after),
    };
    (item, outcome)
}

/// Where a delivery loop takes its items from and records their outcomes.
pub(crate) trait Sender<Item>: Sync {
    /// Claims up to `limit` due items; `None` when the claim failed (and was logged).
    fn claim(&self, limit: u32) -> impl Future<Output = Option<Vec<Item>>> + Send;

    /// Records one attempt's outcome; failures are logged, and the claim running out retries the item.
    fn record(&self, item: Item, outcome: Attempt) -> impl Future<Output = ()> + Send;
}

/// Claims, sends and records until nothing is due or `shutdown` is cancelled; returns how many were sent.
///
/// Up to `CONCURRENCY` attempts are in flight, and the next claim is made once half of them are done rather
/// than after the last one: a paced notifier then always has a request waiting for its next slot, instead of
/// idling for a claim query between batches (which cost ~5% of Discord's global rate). Nothing is claimed
/// that is not sent at once, so every claim is done well within its lease.
pub(crate) async fn deliver_due<Q: Deliverable>(
    queue: &Arc<Q>,
    notifier: &Arc<dyn Notifier>,
    shutdown: &CancellationToken,
    sender: &impl Sender<Q::Item>,
) -> usize {
    let mut in_flight = JoinSet::new();
    let mut nothing_due = false;
    let mut sent = 0;
    loop {
        if !nothing_due && !shutdown.is_cancelled() && in_flight.len() <= CONCURRENCY / 2 {
            let room = u32::try_from(CONCURRENCY - in_flight.len()).unwrap_or(1);
            match sender.claim(room).await {
                Some(items) if !items.is_empty() => {
                    for item in items {
                        in_flight.spawn(attempt(queue.clone(), notifier.clone(), item));
                    }
                }
                // Nothing due, or the claim failed (logged by `claim`): finish what is in flight.
                _ => nothing_due = true,
            }
        }
        match in_flight.join_next().await {
            Some(Ok((item, outcome))) => {
                sent += usize::from(outcome == Attempt::Sent);
                sender.record(item, outcome).await;
            }
            Some(Err(error)) => tracing::error!(%error, "a delivery task failed"),
            None if nothing_due || shutdown.is_cancelled() => return sent,
            None => {}
        }
    }
}

/// When a message that has now failed `attempts` times may be tried again: Discord's hint when it gave one,
/// else exponential backoff; `None` once it has failed `MAX_ATTEMPTS` times and is given up.
pub(crate) fn retry_at(
    attempts: u32,
    retry_after: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let backoff = retry_after
        .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(1)))
        .unwrap_or_else(|| chrono::Duration::seconds(1 << attempts.min(9)));
    Some(now + backoff)
}

/// When a queued signal notification is too old to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Signals up to this id were stored before the outbox started: only their notifications can expire.
    pub backlog_until: SignalId,
    /// The TTL for every signal; `None`: the signal's timeframe, and at least [`MIN_TTL_MINUTES`].
    pub ttl: Option<chrono::Duration>,
}

/// The shortest default TTL, and the TTL of a signal without a timeframe (a provider's).
pub const MIN_TTL_MINUTES: i64 = 60;

impl Expiry {
    /// How old `signal` may be and still be sent.
    pub fn ttl_for(&self, signal: &domain::Signal) -> chrono::Duration {
        self.ttl.unwrap_or_else(|| {
            let floor = chrono::Duration::minutes(MIN_TTL_MINUTES);
            signal.timeframe.map_or(floor, |tf| tf.duration().max(floor))
        })
    }

    /// Why `n` should not be sent at `now`, if it should not.
    pub fn expired(&self, n: &Notification, signal: &domain::Signal, now: DateTime<Utc>) -> Option<String> {
        if n.signal_id > self.backlog_until {
            return None;
        }
        let (age, ttl) = (now - signal.created_at, self.ttl_for(signal));
        (age > ttl).then(|| {
            format!(
                "the signal was {} old when Discord could take it, past its {} limit",
                discord::render::duration(age.num_seconds()),
                discord::render::duration(ttl.num_seconds())
            )
        })
    }
}

/// The signal notifications as a [`Deliverable`].
#[derive(Debug)]
struct SignalQueue {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    expiry: Option<Expiry>,
}

impl Deliverable for SignalQueue {
    type Item = Notification;

    async fn prepare(&self, n: &Notification) -> Result<(DeliveryTarget, OutgoingMessage), Attempt> {
        let (view, signal) = signal_view(self.store.as_ref(), n).await.map_err(Attempt::Refused)?;
        if let Some(reason) = self.expiry.and_then(|e| e.expired(n, &signal, self.clock.now())) {
            return Err(Attempt::Expired(reason));
        }
        let target = target_for(self.store.as_ref(), n).await.map_err(Attempt::Refused)?;
        Ok((target, discord::render::signal_message(&view)))
    }

    async fn mark_sent(&self, n: &Notification, discord_message_id: &str) -> Result<(), store::StoreError> {
        self.store.mark_notification_sent(n.id, discord_message_id, Utc::now()).await
    }
}

pub struct Outbox {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    queue: Arc<SignalQueue>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("expiry", &self.queue.expiry).finish_non_exhaustive()
    }
}

/// Where a user's notifications go.
pub async fn target_for(store: &dyn Store, n: &Notification) -> Result<DeliveryTarget, String> {
    let user = store.get_user(n.user_id).await.map_err(|e| e.to_string())?.ok_or("the user no longer exists")?;
    let settings = store.get_settings(n.user_id).await.map_err(|e| e.to_string())?;
    match settings.delivery {
        Delivery::Channel(channel_id) => Ok(DeliveryTarget::Channel { channel_id }),
        Delivery::Dm => match user.discord_user_id {
            Some(discord_user_id) => Ok(DeliveryTarget::Dm { discord_user_id }),
            None => Err("no Discord account is linked: use /link in Discord".into()),
        },
    }
}

/// What the signal message shows for a notification; shared by delivery and the buttons' updates.
pub async fn signal_view(store: &dyn Store, n: &Notification) -> Result<(SignalView, domain::Signal), String> {
    let stored = store
        .get_signal(n.signal_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("signal {} no longer exists", n.signal_id))?;
    let signal = stored.signal;
    let instrument = InstrumentRegistry::global().get(signal.symbol.as_str()).map_err(|e| e.to_string())?;
    let entry = match signal.entry {
        Entry::Price { price } => price,
        // The edge of the zone a fill would be worst at, as the levels were checked against.
        Entry::Zone { low, high } => {
            if signal.side == domain::Side::Long {
                high
            } else {
                low
            }
        }
        Entry::Market => return Err("a market-entry signal has no price to show".into()),
    };
    let (Some(stop_loss), Some(take_profit)) = (signal.stop_loss, signal.take_profits.first().copied()) else {
        return Err("the signal has no stop loss or take profit to show".into());
    };
    let view = SignalView {
        notification_id: n.id.0,
        title: match &signal.source {
            domain::SignalSource::Engine => discord::render::ENGINE_TITLE.to_string(),
            domain::SignalSource::Provider(channel) => format!("Signal from {channel}"),
            domain::SignalSource::Webhook => "TRADINGVIEW ALERT".to_string(),
        },
        instrument: instrument.clone(),
        timeframe: signal.timeframe,
        side: signal.side,
        entry,
        stop_loss,
        take_profit,
        confidence: signal.confidence,
        model_version: signal.model_version.clone(),
    };
    Ok((view, signal))
}

/// Builds the Discord message for a notification and where it goes.
pub async fn render(store: &dyn Store, n: &Notification) -> Result<(DeliveryTarget, OutgoingMessage), String> {
    let target = target_for(store, n).await?;
    let (view, _) = signal_view(store, n).await?;
    Ok((target, discord::render::signal_message(&view)))
}

impl Outbox {
    /// An outbox that sends every queued notification, however old (see [`Outbox::with_expiry`]).
    pub fn new(store: Arc<dyn Store>, notifier: Arc<dyn Notifier>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        let queue = Arc::new(SignalQueue { store: store.clone(), clock: clock.clone(), expiry: None });
        Outbox { store, notifier, clock, wake, queue }
    }

    /// Gives up, as expired, notifications of the backlog whose signal is older than the TTL.
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        self.queue =
            Arc::new(SignalQueue { store: self.store.clone(), clock: self.clock.clone(), expiry: Some(expiry) });
        self
    }

    /// Claims and sends everything that is due, `CONCURRENCY` at a time; returns how many were sent.
    pub async fn drain(&mut self) -> usize {
        self.drain_until(&CancellationToken::new()).await
    }

    /// [`Outbox::drain`], stopping between batches once `shutdown` is cancelled: a long backlog paced at
    /// Discord's limit must not hold a stopping process for minutes, and what is left stays queued.
    async fn drain_until(&mut self, shutdown: &CancellationToken) -> usize {
        deliver_due(&self.queue, &self.notifier, shutdown, &*self).await
    }

    /// Delivers whenever the router wakes it, and at least once a second for retries, until shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {},
                _ = tick.tick() => {},
            }
            self.drain_until(&shutdown).await;
        }
    }
}

impl Sender<Notification> for Outbox {
    async fn claim(&self, limit: u32) -> Option<Vec<Notification>> {
        let now = self.clock.now();
        self.store
            .claim_queued_notifications(now, now + CLAIM, limit)
            .await
            .inspect_err(|error| tracing::error!(%error, "outbox could not claim queued notifications"))
            .ok()
    }

    async fn record(&self, n: Notification, outcome: Attempt) {
        let result = match outcome {
            Attempt::Sent => Ok(()),
            Attempt::Refused(reason) => {
                tracing::warn!(notification = %n.id, reason, "notification not deliverable; recorded for the dashboard");
                self.store.mark_notification_failed(n.id, &reason, false).await
            }
            Attempt::Expired(reason) => {
                tracing::info!(notification = %n.id, reason, "notification expired unsent");
                self.store.expire_notification(n.id, &reason).await.map(|_| ())
            }
            Attempt::Retry(reason, retry_after) => {
                let attempts = n.attempts + 1;
                // The next attempt's time is stored as the claim, so every process honours the backoff.
                let next = retry_at(attempts, retry_after, self.clock.now());
                tracing::warn!(notification = %n.id, attempts, reason, retry = next.is_some(), "delivery failed");
                match next {
                    Some(at) => self.store.retry_notification_at(n.id, &reason, at).await,
                    None => self.store.mark_notification_failed(n.id, &reason, false).await,
                }
            }
        };
        if let Err(error) = result {
            // The claim runs out and the notification is tried again: at worst one more send.
            tracing::error!(%error, notification = %n.id, "could not record a delivery attempt");
        }
    }
}

//! The outbox: delivers queued notifications to Discord and records the answer. A notification is stored
//! (queued) before it is sent and marked sent only after Discord answered, so a crash in between resends it
//! rather than losing it. Failures back off exponentially; a refusal that will not change (a user who does
//! not accept DMs, error 50007) is recorded on the notification and not retried; after `MAX_ATTEMPTS`
//! transient failures it is given up and recorded the same way. Discord's rate limits are honoured inside
//! the notifier (twilight's ratelimiter), so sending in parallel never turns into a 429 storm.

use chrono::{DateTime, Utc};
use discord::{DeliveryError, DeliveryTarget, Notifier, OutgoingMessage, render::SignalView};
use domain::{Clock, Delivery, Entry, InstrumentRegistry, NotificationId};
use std::collections::HashMap;
use std::sync::Arc;
use store::{Notification, Store};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

const MAX_ATTEMPTS: u32 = 8;
const CONCURRENCY: usize = 16;
const BATCH: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Sent,
    /// Given up: recorded on the notification for the dashboard.
    Refused(String),
    Retry(String, Option<std::time::Duration>),
}

pub struct Outbox {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// When each failed notification may be tried again (kept in memory: after a restart it is tried at once).
    not_before: HashMap<NotificationId, DateTime<Utc>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("backing_off", &self.not_before.len()).finish_non_exhaustive()
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
    pub fn new(store: Arc<dyn Store>, notifier: Arc<dyn Notifier>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        Outbox { store, notifier, clock, wake, not_before: HashMap::new() }
    }

    async fn attempt(store: Arc<dyn Store>, notifier: Arc<dyn Notifier>, n: Notification) -> (Notification, Attempt) {
        let (target, message) = match render(store.as_ref(), &n).await {
            Ok(rendered) => rendered,
            Err(reason) => return (n, Attempt::Refused(reason)),
        };
        let attempt = match notifier.send(&target, &message).await {
            Ok(sent) => match store.mark_notification_sent(n.id, &sent.message_id, Utc::now()).await {
                Ok(()) => Attempt::Sent,
                // Discord has it; failing to record that would resend it, which is the lesser evil.
                Err(error) => Attempt::Retry(format!("sent, but could not record it: {error}"), None),
            },
            Err(DeliveryError::Refused { code, message }) => {
                Attempt::Refused(format!("Discord error {code}: {message}"))
            }
            Err(DeliveryError::Transient { message, retry_after }) => Attempt::Retry(message, retry_after),
        };
        (n, attempt)
    }

    /// Sends everything that is due, `CONCURRENCY` at a time; returns how many were sent.
    pub async fn drain(&mut self) -> usize {
        let mut sent = 0;
        loop {
            let now = self.clock.now();
            let queued = match self.store.queued_notifications(BATCH).await {
                Ok(q) => q,
                Err(error) => {
                    tracing::error!(%error, "outbox could not read queued notifications");
                    return sent;
                }
            };
            let due: Vec<Notification> =
                queued.into_iter().filter(|n| self.not_before.get(&n.id).is_none_or(|t| *t <= now)).collect();
            if due.is_empty() {
                return sent;
            }
            let mut tasks = JoinSet::new();
            let mut due = due.into_iter();
            let mut results = Vec::new();
            loop {
                while tasks.len() < CONCURRENCY {
                    let Some(n) = due.next() else { break };
                    tasks.spawn(Outbox::attempt(self.store.clone(), self.notifier.clone(), n));
                }
                match tasks.join_next().await {
                    Some(Ok(result)) => results.push(result),
                    Some(Err(error)) => tracing::error!(%error, "a delivery task failed"),
                    None => break,
                }
            }
            for (n, attempt) in results {
                sent += usize::from(attempt == Attempt::Sent);
                self.record(&n, attempt).await;
            }
        }
    }

    async fn record(&mut self, n: &Notification, attempt: Attempt) {
        let result = match attempt {
            Attempt::Sent => {
                self.not_before.remove(&n.id);
                Ok(())
            }
            Attempt::Refused(reason) => {
                self.not_before.remove(&n.id);
                tracing::warn!(notification = %n.id, reason, "notification not deliverable; recorded for the dashboard");
                self.store.mark_notification_failed(n.id, &reason, false).await
            }
            Attempt::Retry(reason, retry_after) => {
                let attempts = n.attempts + 1;
                let retry = attempts < MAX_ATTEMPTS;
                if retry {
                    let backoff = retry_after
                        .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(1)))
                        .unwrap_or_else(|| chrono::Duration::seconds(1 << attempts.min(9)));
                    self.not_before.insert(n.id, self.clock.now() + backoff);
                } else {
                    self.not_before.remove(&n.id);
                }
                tracing::warn!(notification = %n.id, attempts, reason, retry, "delivery failed");
                self.store.mark_notification_failed(n.id, &reason, retry).await
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, notification = %n.id, "could not record a delivery attempt");
        }
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
            self.drain().await;
        }
    }
}

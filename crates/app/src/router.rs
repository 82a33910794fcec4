//! The router: for each stored signal, picks the users whose settings want it and queues one notification
//! per user. The per-user filter is `UserSettings::declines`; the cooldown and the daily cap are checked by
//! the store in the same transaction that writes the notifications (one set-based insert for all the users of
//! a signal, so fan-out to thousands stays one transaction), and (signal, user) is unique there, so neither a
//! restart nor a second router process ever queues twice.
//!
//! Time is the signal's own (its candle's close), not the wall clock, so a replay at any speed sees the
//! cooldowns and caps a live market would have.

use bus::{BusError, Event, Subscription};
use chrono::{DateTime, Utc};
use domain::{Signal, SignalId, UserId, UserSettings};
use std::sync::Arc;
use store::{NotificationBatch, NotificationLimits, NotifyOutcome, Store, StoreError, User};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How a routing pass went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routed {
    pub queued: usize,
    pub already: usize,
    pub declined: usize,
    pub capped: usize,
    pub cooling_down: usize,
}

fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    domain::Timeframe::D1.bucket_start(t)
}

/// Queues the notifications `signal` earns: the users whose settings want it, filtered here, then every
/// notification written by one set-based store call (one transaction however many users there are).
pub async fn route(store: &dyn Store, signal_id: SignalId, signal: &Signal) -> Result<Routed, StoreError> {
    let users = store.users_with_settings().await?;
    let (candidates, declined) = candidates(&users, signal);
    let batch = NotificationBatch { signal_id, symbol: signal.symbol.clone(), created_at: signal.created_at };
    let mut routed = Routed { declined, ..Routed::default() };
    for outcome in store.create_notifications_within_limits(&batch, &candidates).await? {
        match outcome {
            NotifyOutcome::Created(_) => routed.queued += 1,
            NotifyOutcome::AlreadyNotified(_) => routed.already += 1,
            NotifyOutcome::DailyCapReached => routed.capped += 1,
            NotifyOutcome::CoolingDown => routed.cooling_down += 1,
        }
    }
    Ok(routed)
}

/// The routing decision in memory: which users want `signal`, each with the limits their settings set, and
/// how many declined it.
pub fn candidates(users: &[(User, UserSettings)], signal: &Signal) -> (Vec<(UserId, NotificationLimits)>, usize) {
    let now = signal.created_at;
    let window_start = day_start(now);
    let mut declined = 0;
    let wanted = users
        .iter()
        .filter(|(_, settings)| {
            let declines = settings.declines(signal).is_some();
            declined += usize::from(declines);
            !declines
        })
        .map(|(user, settings)| {
            let limits = NotificationLimits {
                window_start,
                max_in_window: settings.max_notifications_per_day,
                cooldown_start: (settings.notification_cooldown_minutes > 0)
                    .then(|| now - chrono::Duration::minutes(i64::from(settings.notification_cooldown_minutes))),
            };
            (user.id, limits)
        })
        .collect();
    (wanted, declined)
}

/// Routes every signal announced on `events` until shutdown, and wakes the outbox when it queued something.
/// The caller subscribes before any signal can be published, so none is missed at start-up.
pub async fn run(
    store: Arc<dyn Store>,
    mut events: Box<dyn Subscription>,
    outbox: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            Ok(Event::SignalCreated { signal_id, signal }) => match route(store.as_ref(), signal_id, &signal).await {
                Ok(routed) => {
                    tracing::debug!(signal = %signal_id, ?routed, "signal routed");
                    if routed.queued > 0 {
                        outbox.notify_one();
                    }
                }
                Err(error) => tracing::error!(%error, signal = %signal_id, "could not route a signal"),
            },
            Ok(_) => {}
            Err(BusError::Lagged(missed)) => {
                // Routing is idempotent, so catching up means routing the recent signals again.
                tracing::warn!(missed, "router fell behind; routing recent signals again");
                match store.recent_signals(missed.min(1000) as u32 + 100).await {
                    Ok(signals) => {
                        for s in signals.iter().rev() {
                            if let Err(error) = route(store.as_ref(), s.id, &s.signal).await {
                                tracing::error!(%error, signal = %s.id, "could not route a signal");
                            }
                        }
                        outbox.notify_one();
                    }
                    Err(error) => tracing::error!(%error, "could not read recent signals to catch up"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "router's bus subscription ended");
                break;
            }
        }
    }
}

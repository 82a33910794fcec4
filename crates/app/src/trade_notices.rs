//! Trade updates in Discord: when a trade closes (take profit, stop loss, by hand), its owner gets a direct
//! message with the pips, the money and how long it ran.
//!
//! These messages are sent once from the bus event, not through the notification outbox: a crash between the
//! close and the send loses the message (the close itself is safe in the store, and the dashboard shows it).
//! Making them durable (a `trade_messages` outbox) is open work.

use bus::{BusError, Event, Subscription};
use discord::{DeliveryTarget, Notifier};
use std::sync::Arc;
use store::Store;
use tokio_util::sync::CancellationToken;

pub async fn run(
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    mut events: Box<dyn Subscription>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            event = events.next() => event,
        };
        let trade = match event {
            Ok(Event::TradeClosed { trade }) => trade,
            Ok(_) => continue,
            Err(BusError::Lagged(missed)) => {
                tracing::warn!(missed, "trade notices fell behind; some close messages were not sent");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "trade notices' bus subscription ended");
                break;
            }
        };
        let user = match store.get_user(trade.user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, trade = %trade.id, "could not look up a trade's owner");
                continue;
            }
        };
        let Some(discord_user_id) = user.discord_user_id else { continue };
        let message = match discord::render::trade_closed_message(&trade, &user.account_currency) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, trade = %trade.id, "could not render a close message");
                continue;
            }
        };
        if let Err(error) = notifier.send(&DeliveryTarget::Dm { discord_user_id }, &message).await {
            tracing::warn!(%error, trade = %trade.id, "could not send a close message");
        }
    }
}

//! Provider channels (issue 6): a message posted in a registered Discord channel is stored with its hash,
//! parsed, and an `open` becomes a signal with source `provider:<channel>`, stored in the same transaction
//! and announced on the bus so the router fans it out like an engine signal. Edits and deletions are recorded
//! beside the original, never over it, so a provider cannot quietly rewrite its history.
//!
//! Updates and closes are recorded with the actions they ask for and announced as
//! [`Event::ProviderUpdate`]; the copier (`crate::copier`) applies them to followers' trades and replaces the
//! stored outcome with what it did.

use bus::{Bus, Event};
use chrono::{DateTime, Utc};
use domain::{Clock, SignalId, SignalSource};
use parser::MessageKind;
use std::sync::Arc;
use store::{NewProviderMessage, ProviderIntake, ProviderMessageKind, Store, StoreError};
use web::webhooks::{actions_outcome, content_hash, signal_from_parsed};

/// What happened to one channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// The channel is not a registered, enabled provider: nothing was stored.
    NotAProvider,
    /// Stored now, with the signal it made (an `open` that passed the checks).
    Stored { kind: ProviderMessageKind, signal: Option<SignalId> },
    /// Stored now as refused: it looked like a signal but could not be acted on.
    Refused { reason: String },
    /// Seen before (a replayed dispatch): nothing written, no second signal.
    Duplicate,
}

/// Turns gateway messages into stored provider messages and signals.
#[derive(Clone)]
pub struct Providers {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Providers")
    }
}

impl Providers {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, clock: Arc<dyn Clock>) -> Providers {
        Providers { store, bus, clock }
    }

    async fn is_provider(&self, channel_id: &str) -> Result<bool, StoreError> {
        Ok(self.store.provider_channel(channel_id).await?.is_some_and(|c| c.enabled))
    }

    /// A MESSAGE_CREATE. `at` is Discord's timestamp when it gave one, else now; `reply_to` the message it
    /// replies to, which names the signal an update means.
    pub async fn on_create(
        &self,
        channel_id: &str,
        message_id: &str,
        author: Option<&str>,
        content: &str,
        at: Option<DateTime<Utc>>,
        reply_to: Option<&str>,
    ) -> Result<Intake, StoreError> {
        // Stage times for issue 6's message-to-order latency, logged at debug level.
        let started = std::time::Instant::now();
        if !self.is_provider(channel_id).await? {
            return Ok(Intake::NotAProvider);
        }
        let checked = started.elapsed();
        let received_at = at.unwrap_or_else(|| self.clock.now());
        let parsed = parser::parse(content);
        let (kind, outcome, signal) = match parsed.kind {
            MessageKind::Open => {
                match signal_from_parsed(&parsed, SignalSource::Provider(channel_id.to_string()), received_at) {
                    Ok(signal) => (ProviderMessageKind::Open, String::new(), Some(signal)),
                    Err(refusal) => (ProviderMessageKind::Refused, format!("refused: {refusal}"), None),
                }
            }
            MessageKind::Update => (ProviderMessageKind::Update, actions_outcome(&parsed), None),
            MessageKind::Close => (ProviderMessageKind::Close, actions_outcome(&parsed), None),
            MessageKind::Noise => (ProviderMessageKind::Noise, "noise".to_string(), None),
        };
        let hash = content_hash(content);
        let new = NewProviderMessage {
            channel_id,
            message_id,
            author,
            content,
            hash: &hash,
            received_at,
            kind,
            outcome: outcome.clone(),
            signal: signal.as_ref(),
            reply_to,
            // The followers' copies are begun with the signal: one commit before the copier's orders.
            begin_copies: Some(store::BeginCopies {
                client_order_id: broker::ClientOrderId::text_for_signal,
                at: self.clock.now(),
            }),
        };
        let parsed_at = started.elapsed();
        let intake = self.store.record_provider_message(&new).await?;
        tracing::debug!(channel_id, message_id, ?checked, parsed = ?parsed_at, recorded = ?started.elapsed(),
            "provider message recorded");
        match intake {
            ProviderIntake::Duplicate { .. } => Ok(Intake::Duplicate),
            ProviderIntake::Stored { signal: stored } => {
                if let (Some(signal_id), Some(signal)) = (stored, signal) {
                    tracing::info!(signal = %signal_id, channel_id, message_id, symbol = %signal.symbol,
                        "provider signal stored");
                    if let Err(error) = self.bus.publish(Event::SignalCreated { signal_id, signal }).await {
                        tracing::warn!(%error, "could not announce a provider signal; the router will find it in the store");
                    }
                }
                if matches!(kind, ProviderMessageKind::Update | ProviderMessageKind::Close) {
                    let event = Event::ProviderUpdate {
                        channel_id: channel_id.to_string(),
                        message_id: message_id.to_string(),
                    };
                    if let Err(error) = self.bus.publish(event).await {
                        tracing::warn!(%error, channel_id, message_id, "could not hand a provider update to the copier");
                    }
                }
                if kind == ProviderMessageKind::Refused {
                    tracing::info!(channel_id, message_id, %outcome, "provider message refused");
                    return Ok(Intake::Refused { reason: outcome });
                }
                Ok(Intake::Stored { kind, signal: stored })
            }
        }
    }

    /// A MESSAGE_UPDATE: a revision when the text changed. `true` when one was recorded.
    pub async fn on_update(
        &self,
        channel_id: &str,
        message_id: &str,
        content: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        if !self.is_provider(channel_id).await? {
            return Ok(false);
        }
        let at = at.unwrap_or_else(|| self.clock.now());
        let recorded =
            self.store.record_provider_edit(channel_id, message_id, content, &content_hash(content), at).await?;
        if recorded {
            tracing::info!(channel_id, message_id, "provider message edited; revision recorded");
        }
        Ok(recorded)
    }

    /// A MESSAGE_DELETE: marked deleted. `true` when it was a stored message not deleted before.
    pub async fn on_delete(&self, channel_id: &str, message_id: &str) -> Result<bool, StoreError> {
        if !self.is_provider(channel_id).await? {
            return Ok(false);
        }
        let deleted = self.store.record_provider_delete(channel_id, message_id, self.clock.now()).await?;
        if deleted {
            tracing::info!(channel_id, message_id, "provider message deleted; marked");
        }
        Ok(deleted)
    }
}

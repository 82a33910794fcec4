//! The Discord gateway service: interactions that arrive over the gateway go through the same parser and
//! [`InteractionHandler`] as `POST /discord/interactions`, and their answers are posted to
//! `/interactions/{id}/{token}/callback`. Channel messages are counted and handed to
//! [`crate::providers`], which stores those of registered provider channels.
//!
//! Discord wants the first response within 3 s. The handler answers at once in practice; should it ever take
//! longer than [`DEFER_AFTER`], the interaction is deferred (an ephemeral "thinking…", or for Ignore a
//! deferred message update) and the answer replaces the original response when it is ready. An Open Trade
//! click is never deferred: the modal must be its first response.

use crate::interactions::InteractionHandler;
use crate::metrics::Metrics;
use discord::client::DiscordNotifier;
use discord::gateway::{Gateway, GatewayEvent};
use discord::interactions::{Incoming, InteractionError, ephemeral_message, parse_interaction};
use discord::render::CustomId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use twilight_model::channel::message::MessageFlags;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};

/// How long the handler may take before the interaction is deferred; leaves a second of Discord's 3 s for
/// the callback itself.
pub const DEFER_AFTER: Duration = Duration::from_secs(2);

/// `DISCORD_GATEWAY_URL` values that turn the gateway off (tests, or a deployment that takes interactions
/// only at the HTTP endpoint).
pub const OFF: &[&str] = &["off", "none", "disabled"];

/// Whether the configured gateway URL means "do not connect".
pub fn is_off(url: Option<&str>) -> bool {
    url.is_some_and(|u| OFF.iter().any(|off| u.trim().eq_ignore_ascii_case(off)))
}

/// Runs the gateway until `shutdown`, answering interactions and counting channel messages.
pub async fn run(
    gateway: Gateway,
    handler: Arc<InteractionHandler>,
    notifier: Arc<DiscordNotifier>,
    metrics: Metrics,
    shutdown: CancellationToken,
    providers: crate::providers::Providers,
) {
    let (events_tx, mut events) = mpsc::channel(1024);
    let connection = tokio::spawn(gateway.run(events_tx, shutdown.clone().cancelled_owned()));
    let mut answering = JoinSet::new();
    while let Some(event) = events.recv().await {
        match event {
            GatewayEvent::Ready { .. } => metrics.gateway_connection_events.with_label_values(&["ready"]).inc(),
            GatewayEvent::Resumed => metrics.gateway_connection_events.with_label_values(&["resumed"]).inc(),
            GatewayEvent::Disconnected { .. } => {
                metrics.gateway_connection_events.with_label_values(&["disconnected"]).inc();
            }
            GatewayEvent::Interaction(body) => {
                answering.spawn(answer(handler.clone(), notifier.clone(), metrics.clone(), body));
            }
            // Stored here; the copier picks up the signals and updates from the bus.
            // Handled in order, one at a time: an edit must not overtake the message it edits.
            GatewayEvent::MessageCreate(m) => {
                metrics.gateway_messages.with_label_values(&["create"]).inc();
                tracing::debug!(channel_id = %m.channel_id, message_id = %m.message_id, "provider channel message");
                let author = m.author_id.as_deref();
                let reply_to = m.reply_to.as_deref();
                if let Err(error) =
                    providers.on_create(&m.channel_id, &m.message_id, author, &m.content, m.timestamp, reply_to).await
                {
                    tracing::error!(%error, channel_id = %m.channel_id, "could not record a channel message");
                }
            }
            GatewayEvent::MessageUpdate(m) => {
                metrics.gateway_messages.with_label_values(&["update"]).inc();
                tracing::debug!(channel_id = %m.channel_id, message_id = %m.message_id, "provider message edited");
                // A partial update without text (an embed unfurled) is not an edit; Discord has no empty edits.
                if !m.content.is_empty()
                    && let Err(error) =
                        providers.on_update(&m.channel_id, &m.message_id, &m.content, m.edited_timestamp).await
                {
                    tracing::error!(%error, channel_id = %m.channel_id, "could not record a message edit");
                }
            }
            GatewayEvent::MessageDelete(m) => {
                metrics.gateway_messages.with_label_values(&["delete"]).inc();
                tracing::debug!(channel_id = %m.channel_id, message_id = %m.message_id, "provider message deleted");
                if let Err(error) = providers.on_delete(&m.channel_id, &m.message_id).await {
                    tracing::error!(%error, channel_id = %m.channel_id, "could not record a message deletion");
                }
            }
        }
        while answering.try_join_next().is_some() {}
    }
    match connection.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "the Discord gateway stopped; interactions still work over HTTP"),
        Err(error) => tracing::error!(%error, "the Discord gateway task failed"),
    }
    // Answers under way finish (each is bounded by the notifier's deadline) so a click is not left hanging.
    while answering.join_next().await.is_some() {}
}

/// The ids every interaction carries, read before parsing so that even an interaction we refuse is answered.
#[derive(serde::Deserialize)]
struct Envelope {
    id: String,
    application_id: String,
    token: String,
}

async fn answer(handler: Arc<InteractionHandler>, notifier: Arc<DiscordNotifier>, metrics: Metrics, body: Vec<u8>) {
    let outcome = |label: &str| metrics.gateway_interactions.with_label_values(&[label]).inc();
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        tracing::warn!("a gateway interaction without id, application id or token; not answered");
        outcome("unreadable");
        return;
    };
    let incoming = match parse_interaction(&body) {
        Ok(Incoming::Ping) => return,
        Ok(incoming) => incoming,
        // The same refusal the HTTP endpoint gives for a control we did not make.
        Err(error @ (InteractionError::CustomId(_) | InteractionError::MisplacedCustomId { .. })) => {
            let refusal =
                ephemeral_message(&format!("Signalpost does not know that control ({error}); nothing was done."));
            respond(&notifier, &envelope, &refusal, &outcome).await;
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "a gateway interaction that we could not read; not answered");
            outcome("unreadable");
            return;
        }
    };
    let deferral = deferral_for(&incoming);
    let work = handler.handle(incoming);
    tokio::pin!(work);
    let response = tokio::select! {
        response = &mut work => response,
        () = tokio::time::sleep(DEFER_AFTER), if deferral.is_some() => {
            let deferred = deferral.expect("checked by the branch condition");
            tracing::info!("interaction handler is slow; deferring the response");
            if !respond(&notifier, &envelope, &deferred, &outcome).await {
                return;
            }
            let response = work.await;
            let Some(data) = response.data.as_ref().filter(|_| response.kind != InteractionResponseType::Modal)
            else {
                tracing::error!(kind = ?response.kind, "a deferred interaction cannot be answered with this response");
                outcome("failed");
                return;
            };
            match notifier.edit_interaction_response(&envelope.application_id, &envelope.token, data).await {
                Ok(()) => outcome("deferred"),
                Err(error) => {
                    tracing::warn!(%error, "could not deliver a deferred interaction answer");
                    outcome("failed");
                }
            }
            return;
        }
    };
    respond(&notifier, &envelope, &response, &outcome).await;
}

/// Posts the interaction callback; true when Discord took it.
async fn respond(
    notifier: &DiscordNotifier,
    envelope: &Envelope,
    response: &InteractionResponse,
    outcome: &impl Fn(&str),
) -> bool {
    match notifier.create_interaction_response(&envelope.application_id, &envelope.id, &envelope.token, response).await
    {
        Ok(()) => {
            outcome("answered");
            true
        }
        Err(error) => {
            tracing::warn!(%error, interaction_id = %envelope.id, "could not answer a gateway interaction");
            outcome("failed");
            false
        }
    }
}

/// What to send if the handler is slow: nothing for Open Trade (its modal must come first), a deferred
/// update for Ignore (its answer edits the signal message), a private "thinking…" for everything else.
fn deferral_for(incoming: &Incoming) -> Option<InteractionResponse> {
    match incoming {
        Incoming::Button { custom_id: CustomId::Open(_), .. } | Incoming::Ping | Incoming::Unknown { .. } => None,
        Incoming::Button { custom_id: CustomId::Ignore(_), .. } => {
            Some(InteractionResponse { kind: InteractionResponseType::DeferredUpdateMessage, data: None })
        }
        _ => Some(InteractionResponse {
            kind: InteractionResponseType::DeferredChannelMessageWithSource,
            data: Some(InteractionResponseData { flags: Some(MessageFlags::EPHEMERAL), ..Default::default() }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_values_turn_the_gateway_off_and_urls_do_not() {
        assert!(is_off(Some("off")) && is_off(Some(" OFF ")) && is_off(Some("none")));
        assert!(!is_off(None));
        assert!(!is_off(Some("ws://127.0.0.1:9")));
    }

    #[test]
    fn open_trade_is_never_deferred_and_ignore_defers_as_an_update() {
        let user = discord::InteractionUser { id: "1".into(), name: "a".into() };
        let button = |custom_id| Incoming::Button {
            custom_id,
            user: user.clone(),
            message: None,
            interaction_id: "2".into(),
            application_id: "3".into(),
            token: "t".into(),
        };
        assert!(deferral_for(&button(CustomId::Open(1))).is_none());
        assert_eq!(
            deferral_for(&button(CustomId::Ignore(1))).unwrap().kind,
            InteractionResponseType::DeferredUpdateMessage
        );
        let details = deferral_for(&button(CustomId::Details(1))).unwrap();
        assert_eq!(details.kind, InteractionResponseType::DeferredChannelMessageWithSource);
        assert_eq!(details.data.unwrap().flags, Some(MessageFlags::EPHEMERAL));
    }
}

//! The bus for several processes: NATS JetStream. Events are published to `<prefix>.<subject>` in one
//! stream and acknowledged by the server before `publish` returns, so an event a service published is
//! stored even if that service dies the next moment. Each subscriber reads through its own ordered
//! consumer that starts at the newest message, so it sees what is published after it subscribed, in order.

use crate::{Bus, BusError, Event, Subscription};
use async_nats::jetstream::{self, consumer::DeliverPolicy, stream};
use async_trait::async_trait;
use futures::StreamExt;
use std::time::Duration;

#[derive(Clone)]
pub struct NatsBus {
    context: jetstream::Context,
    stream_name: String,
    prefix: String,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus").field("stream", &self.stream_name).field("prefix", &self.prefix).finish()
    }
}

fn transport(context: &str, error: impl std::fmt::Display) -> BusError {
    BusError::Transport(format!("{context}: {error}"))
}

impl NatsBus {
    /// Connects and makes sure the stream exists. `prefix` separates deployments (and tests) sharing one
    /// server: subjects are `<prefix>.trades.opened` and so on, in the stream `<PREFIX>_EVENTS`.
    pub async fn connect(url: &str, prefix: &str) -> Result<NatsBus, BusError> {
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(BusError::Transport(format!("bus prefix {prefix:?} must be letters, digits, _ or -")));
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| transport(&format!("could not connect to NATS at {url}"), e))?;
        let context = jetstream::new(client);
        let stream_name = format!("{}_EVENTS", prefix.to_ascii_uppercase().replace('-', "_"));
        context
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{prefix}.>")],
                // Events are notifications to look at the store, not the record itself: a day is plenty.
                max_age: Duration::from_secs(24 * 3600),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| transport("could not create the JetStream stream", e))?;
        Ok(NatsBus { context, stream_name, prefix: prefix.to_string() })
    }
}

struct NatsSubscription {
    messages: jetstream::consumer::pull::Ordered,
}

impl std::fmt::Debug for NatsSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NatsSubscription")
    }
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Result<Event, BusError> {
        match self.messages.next().await {
            None => Err(BusError::Closed),
            Some(Err(error)) => Err(transport("JetStream consumer failed", error)),
            Some(Ok(message)) => Ok(serde_json::from_slice(&message.payload)?),
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, event: Event) -> Result<(), BusError> {
        let subject = format!("{}.{}", self.prefix, event.subject());
        let payload = serde_json::to_vec(&event)?;
        self.context
            .publish(subject, payload.into())
            .await
            .map_err(|e| transport("could not publish", e))?
            .await
            .map_err(|e| transport("JetStream did not acknowledge the event", e))?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<Box<dyn Subscription>, BusError> {
        let stream = self
            .context
            .get_stream(&self.stream_name)
            .await
            .map_err(|e| transport("could not open the JetStream stream", e))?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| transport("could not create a consumer", e))?;
        let messages = consumer.messages().await.map_err(|e| transport("could not start consuming", e))?;
        Ok(Box::new(NatsSubscription { messages }))
    }
}

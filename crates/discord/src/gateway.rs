//! The Discord gateway: one twilight-gateway shard, its frames reduced to the few events Signalpost acts on.
//!
//! [`Gateway::run`] keeps the shard connected until shutdown. Reconnecting and resuming (RESUME with the
//! session id and last sequence number, to the `resume_gateway_url` of READY) are twilight's job; this module
//! reports each step as a [`GatewayEvent`] so the app can log and count them.
//!
//! Interactions are handed over as the raw JSON of the dispatch's `d`, so they go through the very same
//! [`crate::interactions::parse_interaction`] as the bodies posted to `POST /discord/interactions`. Channel
//! messages become a small [`ChannelMessage`] for the provider reader.
//!
//! Transport compression is off (see the workspace's twilight-gateway features): Discord then sends plain
//! JSON text frames, and a fake gateway need not speak zstd or zlib streams.

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use twilight_gateway::{CloseFrame, ConfigBuilder, Intents, Message, Shard, ShardId, ShardState};
use twilight_model::gateway::payload::outgoing::identify::IdentifyProperties;

/// How long a clean shutdown waits for Discord to acknowledge our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The intents Signalpost asks for: guild and DM messages with their content (the provider-channel reader
/// needs the text; MESSAGE_CONTENT is a privileged intent that must also be enabled for the bot in the
/// developer portal). Interactions need no intent.
pub fn intents() -> Intents {
    Intents::GUILD_MESSAGES | Intents::DIRECT_MESSAGES | Intents::MESSAGE_CONTENT
}

/// Where and as whom to connect.
#[derive(Clone)]
pub struct GatewaySettings {
    /// The bot token, with or without `Bot `.
    pub token: String,
    /// `wss://gateway.discord.gg` when `None`; a fake (`ws://127.0.0.1:PORT`) or a proxy otherwise. Discord's
    /// query (`/?v=10&encoding=json`) is appended by twilight.
    pub url: Option<String>,
}

impl std::fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySettings").field("url", &self.url).finish_non_exhaustive()
    }
}

/// The settings cannot make a gateway connection. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("DISCORD_TOKEN is empty")]
    EmptyToken,
    #[error("DISCORD_GATEWAY_URL {0:?} must look like ws://host:port or wss://host")]
    BadUrl(String),
    /// Discord closed the connection with a code that forbids reconnecting (4004 authentication failed,
    /// 4013/4014 invalid or disallowed intents, ...).
    #[error("the Discord gateway closed the connection for good (close code {code:?}): {reason}")]
    Fatal { code: Option<u16>, reason: String },
}

/// A message posted, edited or deleted in a channel the bot can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    pub channel_id: String,
    pub message_id: String,
    /// `None` in DMs.
    pub guild_id: Option<String>,
    /// `None` only on partial updates that leave the author out.
    pub author_id: Option<String>,
    pub author_is_bot: bool,
    /// Empty without the MESSAGE_CONTENT intent (or for embed-only messages).
    pub content: String,
    pub timestamp: Option<DateTime<Utc>>,
    pub edited_timestamp: Option<DateTime<Utc>>,
    /// The message this one replies to (`message_reference.message_id`), when it is a reply: how a
    /// provider's "move SL to entry" names the signal it means.
    pub reply_to: Option<String>,
}

/// A deleted message: Discord sends only its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedMessage {
    pub channel_id: String,
    pub message_id: String,
    pub guild_id: Option<String>,
}

/// What the gateway reports.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayEvent {
    /// A new session (after IDENTIFY): READY arrived.
    Ready {
        session_id: String,
        user_id: Option<String>,
    },
    /// A dropped session was resumed: the events missed meanwhile are replayed before this.
    Resumed,
    /// The connection closed; twilight reconnects (and resumes where Discord allows) by itself.
    /// `code` is the WebSocket close code (1006: the connection failed); `None` when it ended without a close
    /// frame, which shows only once the next READY or RESUMED arrives.
    Disconnected {
        code: Option<u16>,
        reason: String,
    },
    /// INTERACTION_CREATE: the interaction object as JSON, for [`crate::interactions::parse_interaction`].
    Interaction(Vec<u8>),
    MessageCreate(ChannelMessage),
    MessageUpdate(ChannelMessage),
    MessageDelete(DeletedMessage),
}

/// One shard, configured; [`Gateway::run`] drives it.
pub struct Gateway {
    shard: Shard,
    url: String,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(settings: GatewaySettings) -> Result<Gateway, GatewayError> {
        let token = settings.token.trim().to_string();
        if token.is_empty() || token == "Bot" {
            return Err(GatewayError::EmptyToken);
        }
        let url = match settings.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Some(gateway_base(url)?),
            None => None,
        };
        // The TLS connector is built here, from rustls's process-wide provider.
        crate::client::install_crypto_provider();
        let mut builder = ConfigBuilder::new(token, intents()).identify_properties(IdentifyProperties::new(
            "signalpost",
            "signalpost",
            std::env::consts::OS,
        ));
        if let Some(url) = &url {
            builder = builder.proxy_url(url.clone());
        }
        Ok(Gateway {
            shard: Shard::with_config(ShardId::ONE, builder.build()),
            url: url.unwrap_or_else(|| "wss://gateway.discord.gg".into()),
        })
    }

    /// Runs until `shutdown` completes (then closes the connection cleanly and returns `Ok`), or until
    /// Discord ends the session for good. Events go to `events`; when its receiver is gone the gateway stops.
    ///
    /// `events` is bounded: a consumer that falls far behind slows the shard down rather than growing memory,
    /// and if that stalls heartbeats long enough for Discord to drop us, the resume replays what was missed.
    pub async fn run(
        mut self,
        events: mpsc::Sender<GatewayEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GatewayError> {
        tracing::info!(url = %self.url, "connecting to the Discord gateway");
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_close: Option<(Option<u16>, String)> = None;
        // Between READY/RESUMED and the next close.
        let mut connected = false;
        loop {
            let item = tokio::select! {
                () = &mut shutdown => {
                    self.close().await;
                    return Ok(());
                }
                item = self.shard.next() => item,
            };
            let message = match item {
                // twilight gives up only after a close code that forbids reconnecting.
                None => {
                    let (code, reason) = last_close.unwrap_or((None, "the shard closed for good".into()));
                    tracing::error!(?code, %reason, "the Discord gateway ended the session for good");
                    return Err(GatewayError::Fatal { code, reason });
                }
                Some(Err(error)) => {
                    // twilight has already scheduled the next attempt (with back-off for connects).
                    tracing::warn!(%error, "Discord gateway error; twilight retries");
                    continue;
                }
                Some(Ok(message)) => message,
            };
            let event = match message {
                Message::Close(frame) => {
                    let (code, reason) = frame.map_or((None, String::new()), |f| (Some(f.code), f.reason.into_owned()));
                    last_close = Some((code, reason.clone()));
                    connected = false;
                    tracing::info!(?code, %reason, "Discord gateway connection closed; reconnecting");
                    Some(GatewayEvent::Disconnected { code, reason })
                }
                Message::Text(json) => match decode(&json) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::warn!(%error, "a gateway dispatch we could not read; skipped");
                        None
                    }
                },
            };
            // twilight reconnects after a connection that simply ended (EOF) without reporting it; a new
            // READY or RESUMED while we thought we were connected is how that loss shows.
            if matches!(event, Some(GatewayEvent::Ready { .. } | GatewayEvent::Resumed)) {
                if connected {
                    let lost = GatewayEvent::Disconnected {
                        code: None,
                        reason: "the connection ended without a close frame".into(),
                    };
                    tracing::info!("Discord gateway connection was lost; reconnected");
                    if events.send(lost).await.is_err() {
                        self.close().await;
                        return Ok(());
                    }
                }
                connected = true;
            }
            if let Some(event) = event {
                log(&event);
                if events.send(event).await.is_err() {
                    self.close().await;
                    return Ok(());
                }
            }
        }
    }

    /// Sends a normal close (1000: the session ends, nothing to resume) and waits briefly for it to go out.
    ///
    /// twilight reports Discord's echo of our close as a close message, or (tokio-websockets ends the stream
    /// on it) not at all and starts connecting again at once. So the wait ends at the first thing the shard
    /// yields after the close, whichever it is, or after [`CLOSE_GRACE`]; the shard is dropped right after.
    async fn close(&mut self) {
        // Between connections there is nothing to close, and polling would only connect again.
        if matches!(self.shard.state(), ShardState::Disconnected { .. } | ShardState::FatallyClosed) {
            return;
        }
        self.shard.close(CloseFrame::NORMAL);
        let _ = tokio::time::timeout(CLOSE_GRACE, self.shard.next()).await;
        tracing::info!("Discord gateway closed");
    }
}

fn log(event: &GatewayEvent) {
    match event {
        GatewayEvent::Ready { session_id, .. } => tracing::info!(%session_id, "Discord gateway session ready"),
        GatewayEvent::Resumed => tracing::info!("Discord gateway session resumed"),
        GatewayEvent::Disconnected { .. } => {}
        GatewayEvent::Interaction(_) => tracing::debug!("interaction received over the gateway"),
        GatewayEvent::MessageCreate(m) | GatewayEvent::MessageUpdate(m) => {
            tracing::debug!(channel_id = %m.channel_id, message_id = %m.message_id, "channel message");
        }
        GatewayEvent::MessageDelete(m) => {
            tracing::debug!(channel_id = %m.channel_id, message_id = %m.message_id, "channel message deleted");
        }
    }
}

/// `ws://host:port` or `wss://host[/path]`, without a trailing slash (twilight appends `/?v=10...`).
fn gateway_base(url: &str) -> Result<String, GatewayError> {
    let bad = || GatewayError::BadUrl(url.to_string());
    let rest = url.strip_prefix("ws://").or_else(|| url.strip_prefix("wss://")).ok_or_else(bad)?;
    let rest = rest.split('?').next().unwrap_or_default().trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['#', ' ', '@']) {
        return Err(bad());
    }
    let scheme = if url.starts_with("wss://") { "wss" } else { "ws" };
    Ok(format!("{scheme}://{rest}"))
}

/// The frame envelope: opcode, event name and data. Sequence numbers are twilight's business.
#[derive(Deserialize)]
struct Frame {
    op: u8,
    #[serde(default)]
    t: Option<String>,
    #[serde(default)]
    d: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the frame is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{event} is missing {field}")]
    Missing { event: &'static str, field: &'static str },
}

const DISPATCH: u8 = 0;

/// Reduces one text frame to the event it carries, if Signalpost cares about it.
pub fn decode(json: &str) -> Result<Option<GatewayEvent>, DecodeError> {
    let frame: Frame = serde_json::from_str(json)?;
    if frame.op != DISPATCH {
        return Ok(None);
    }
    let Some(name) = frame.t.as_deref() else { return Ok(None) };
    let data = frame.d;
    Ok(Some(match name {
        "READY" => GatewayEvent::Ready {
            session_id: text(&data, "session_id")
                .ok_or(DecodeError::Missing { event: "READY", field: "session_id" })?,
            user_id: data.get("user").and_then(|u| text(u, "id")),
        },
        "RESUMED" => GatewayEvent::Resumed,
        "INTERACTION_CREATE" => GatewayEvent::Interaction(serde_json::to_vec(&data)?),
        "MESSAGE_CREATE" => GatewayEvent::MessageCreate(channel_message(&data, "MESSAGE_CREATE")?),
        "MESSAGE_UPDATE" => GatewayEvent::MessageUpdate(channel_message(&data, "MESSAGE_UPDATE")?),
        "MESSAGE_DELETE" => GatewayEvent::MessageDelete(DeletedMessage {
            channel_id: text(&data, "channel_id")
                .ok_or(DecodeError::Missing { event: "MESSAGE_DELETE", field: "channel_id" })?,
            message_id: text(&data, "id").ok_or(DecodeError::Missing { event: "MESSAGE_DELETE", field: "id" })?,
            guild_id: text(&data, "guild_id"),
        }),
        _ => return Ok(None),
    }))
}

fn channel_message(data: &Value, event: &'static str) -> Result<ChannelMessage, DecodeError> {
    let author = data.get("author");
    let time = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    Ok(ChannelMessage {
        channel_id: text(data, "channel_id").ok_or(DecodeError::Missing { event, field: "channel_id" })?,
        message_id: text(data, "id").ok_or(DecodeError::Missing { event, field: "id" })?,
        guild_id: text(data, "guild_id"),
        author_id: author.and_then(|a| text(a, "id")),
        author_is_bot: author.and_then(|a| a.get("bot")).and_then(Value::as_bool).unwrap_or(false),
        content: data.get("content").and_then(Value::as_str).unwrap_or_default().to_string(),
        timestamp: time("timestamp"),
        edited_timestamp: time("edited_timestamp"),
        reply_to: data.get("message_reference").and_then(|r| text(r, "message_id")),
    })
}

/// A snowflake or other id field, as text (Discord sends strings; numbers are accepted too).
fn text(object: &Value, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gateway_urls_are_checked_and_normalised() {
        assert_eq!(gateway_base("ws://127.0.0.1:9000").unwrap(), "ws://127.0.0.1:9000");
        assert_eq!(gateway_base("ws://127.0.0.1:9000/").unwrap(), "ws://127.0.0.1:9000");
        assert_eq!(gateway_base("wss://gateway.discord.gg/?v=10").unwrap(), "wss://gateway.discord.gg");
        for bad in ["http://x", "127.0.0.1:1", "ws://", "ws:///x", "ws://a b"] {
            assert!(matches!(gateway_base(bad), Err(GatewayError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn a_reply_names_the_message_it_replies_to() {
        let frame = |d: Value| json!({"op": 0, "s": 4, "t": "MESSAGE_CREATE", "d": d}).to_string();
        let reply = json!({
            "id": "21", "channel_id": "10", "content": "move SL to entry", "author": {"id": "7"},
            "message_reference": {"message_id": "20", "channel_id": "10"},
        });
        let Some(GatewayEvent::MessageCreate(m)) = decode(&frame(reply)).unwrap() else { panic!("not a message") };
        assert_eq!(m.reply_to.as_deref(), Some("20"));
        let plain = json!({"id": "22", "channel_id": "10", "content": "gm", "author": {"id": "7"}});
        let Some(GatewayEvent::MessageCreate(m)) = decode(&frame(plain)).unwrap() else { panic!("not a message") };
        assert_eq!(m.reply_to, None);
    }

    #[test]
    fn dispatches_become_events_and_the_rest_is_ignored() {
        let frame = |t: &str, d: Value| json!({"op": 0, "s": 3, "t": t, "d": d}).to_string();
        let message = json!({
            "id": "20", "channel_id": "10", "guild_id": "5", "content": "BUY EURUSD 1.0850",
            "author": {"id": "7", "username": "provider", "bot": false},
            "timestamp": "2026-01-02T03:04:05.000000+00:00", "edited_timestamp": null,
        });
        let Some(GatewayEvent::MessageCreate(m)) = decode(&frame("MESSAGE_CREATE", message)).unwrap() else {
            panic!("not a message")
        };
        assert_eq!((m.channel_id.as_str(), m.message_id.as_str(), m.guild_id.as_deref()), ("10", "20", Some("5")));
        assert_eq!((m.author_id.as_deref(), m.content.as_str()), (Some("7"), "BUY EURUSD 1.0850"));
        assert_eq!(m.timestamp.unwrap().to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(m.edited_timestamp, None);

        let interaction = json!({"id": "1", "type": 3, "token": "t"});
        let Some(GatewayEvent::Interaction(bytes)) = decode(&frame("INTERACTION_CREATE", interaction.clone())).unwrap()
        else {
            panic!("not an interaction")
        };
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), interaction);

        let deleted = decode(&frame("MESSAGE_DELETE", json!({"id": "20", "channel_id": "10"}))).unwrap();
        assert_eq!(
            deleted,
            Some(GatewayEvent::MessageDelete(DeletedMessage {
                channel_id: "10".into(),
                message_id: "20".into(),
                guild_id: None
            }))
        );
        assert_eq!(decode(&frame("TYPING_START", json!({}))).unwrap(), None);
        assert_eq!(decode(&json!({"op": 11, "d": null}).to_string()).unwrap(), None);
        assert!(decode(&frame("MESSAGE_CREATE", json!({"id": "1"}))).is_err());
        assert!(decode("not json").is_err());
    }

    #[tokio::test]
    async fn settings_are_checked_and_the_token_is_never_shown() {
        let settings = GatewaySettings { token: "secret-token".into(), url: Some("ws://127.0.0.1:1".into()) };
        assert!(!format!("{settings:?}").contains("secret-token"));
        let gateway = Gateway::new(settings).unwrap();
        assert!(!format!("{gateway:?}").contains("secret-token"));
        let empty = GatewaySettings { token: " ".into(), url: None };
        assert_eq!(Gateway::new(empty).unwrap_err(), GatewayError::EmptyToken);
        let bad = GatewaySettings { token: "t".into(), url: Some("http://x".into()) };
        assert!(matches!(Gateway::new(bad).unwrap_err(), GatewayError::BadUrl(_)));
    }

    /// The real shard against the fake gateway: READY, a channel message, a scripted 4000 close that twilight
    /// resumes from, and a clean stop.
    #[tokio::test]
    async fn the_shard_reports_messages_and_resumes_after_a_resumable_close() {
        use testkit::discord::gateway::{Disconnect, FakeGateway};
        let fake = FakeGateway::builder().token("tok").required_intents(intents().bits()).start().await;
        let gateway = Gateway::new(GatewaySettings { token: "tok".into(), url: Some(fake.url()) }).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let running = tokio::spawn(gateway.run(tx, async move { stopped.notified().await }));
        let mut next = async || tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert!(
            matches!(next().await, GatewayEvent::Ready { session_id, .. } if Some(&session_id) == fake.session_id().as_ref())
        );
        fake.message_create("10", "20", "30", "SELL GBPUSD");
        let GatewayEvent::MessageCreate(message) = next().await else { panic!("not a message") };
        assert_eq!((message.channel_id.as_str(), message.content.as_str()), ("10", "SELL GBPUSD"));
        assert!(fake.disconnect(Disconnect::Close(4000)));
        assert!(matches!(next().await, GatewayEvent::Disconnected { code: Some(4000), .. }));
        assert_eq!(next().await, GatewayEvent::Resumed);
        assert_eq!((fake.identify_count(), fake.resume_count()), (1, 1));
        stop.notify_one();
        assert_eq!(running.await.unwrap(), Ok(()));
        assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    }

    #[tokio::test]
    async fn a_refused_token_ends_the_gateway_with_discords_close_code() {
        let fake = testkit::discord::gateway::FakeGateway::builder().token("right").start().await;
        let gateway = Gateway::new(GatewaySettings { token: "wrong".into(), url: Some(fake.url()) }).unwrap();
        let (tx, _rx) = mpsc::channel(16);
        let ended = tokio::time::timeout(Duration::from_secs(10), gateway.run(tx, std::future::pending())).await;
        assert!(matches!(ended, Ok(Err(GatewayError::Fatal { code: Some(4004), .. }))), "{ended:?}");
    }
}

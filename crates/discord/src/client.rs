//! [`DiscordNotifier`]: delivery through twilight-http.
//!
//! twilight's own rate limiter stays on: it queues requests per bucket from Discord's rate-limit headers, so
//! many notifications sent at once wait for their bucket instead of meeting 429s. What twilight does not do
//! is wait after a 429 that carries no bucket headers (a global limit, or one from a proxy): it sends again
//! at once, for ever. So the notifier takes the retry over: after any 429 it sends nothing for a pause
//! (1 s, doubling while the 429s go on; every send of this notifier waits, since a global limit binds them
//! all), then tries again, at most [`MAX_ATTEMPTS`] times in all. A whole send must also finish within a
//! deadline. Either bound gives [`DeliveryError::Transient`] for the outbox to retry later.
//!
//! Nor does twilight pace Discord's global limit (50 requests a second per bot, across every route but the
//! interaction ones): it learns of it only from a 429, so a backlog sent at full speed meets one every
//! second. The notifier therefore spaces its bot-token requests evenly at [`DEFAULT_GLOBAL_LIMIT`] (opening
//! a DM channel counts as well), a little under the limit so the jitter between here and Discord never
//! lands a 51st request in one of Discord's one-second windows.
//!
//! `api_base` points the client at a fake or a proxy: twilight always appends `/api/v10/<route>` to the host
//! it is given, so `http://127.0.0.1:PORT` is requested as `http://127.0.0.1:PORT/api/v10/...`.

use crate::{DeliveryError, DeliveryTarget, Notifier, OutgoingMessage, SentMessage};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use twilight_http::error::ErrorType;
use twilight_http::response::ResponseFuture;
use twilight_http::{Client, Response, api_error::ApiError};
use twilight_model::application::command::Command;
use twilight_model::id::Id;
use twilight_model::id::marker::{ApplicationMarker, ChannelMarker, MessageMarker, UserMarker};

/// How many times one request is sent while Discord keeps answering 429.
pub const MAX_ATTEMPTS: u32 = 4;
/// The pause after a first 429; it doubles with each further 429 of the same request.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);
/// How long one HTTP request may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one send may take in all: opening the DM channel, waiting for rate limits, retrying 429s.
pub const DEFAULT_SEND_DEADLINE: Duration = Duration::from_secs(60);

/// Discord's global limit for a bot: requests per second across every route but the interaction ones.
pub const DEFAULT_GLOBAL_LIMIT: u32 = 50;
/// The share of the global limit the pacer uses: 2% headroom (20.4 ms apart at 50/s), so a request delayed
/// by up to 20 ms on its way still cannot make 51 in one of Discord's fixed one-second windows.
const PACING_SHARE: f64 = 0.98;

/// Spaces requests evenly, one slot every `interval`: a token bucket of one token. A larger bucket would let
/// a burst of 50 follow a steady second and land 100 requests in one of Discord's windows.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl Pacer {
    fn new(per_second: u32) -> Pacer {
        let interval = Duration::from_secs_f64(1.0 / (f64::from(per_second.max(1)) * PACING_SHARE));
        Pacer { interval, next_slot: Mutex::new(None) }
    }

    /// Books the next free slot. Slots follow from the booked ones, not from when a sleep actually ended,
    /// so the rate does not drift below the target with timer granularity.
    fn reserve(&self) -> Instant {
        let now = Instant::now();
        let Ok(mut next) = self.next_slot.lock() else { return now };
        let slot = next.map_or(now, |booked| booked.max(now));
        *next = Some(slot + self.interval);
        slot
    }

    async fn wait(&self) {
        tokio::time::sleep_until(self.reserve()).await;
    }
}

/// The settings could not make a client. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("DISCORD_TOKEN is empty")]
    EmptyToken,
    #[error("DISCORD_TOKEN contains characters that cannot be sent in an HTTP header")]
    BadToken,
    #[error("DISCORD_API_BASE {0:?} must look like http://host:port or https://host")]
    BadApiBase(String),
    #[error("the Discord client must be created inside a Tokio runtime (its rate limiter runs as a task)")]
    NoRuntime,
}

/// Sends Signalpost's messages with a bot token. `Debug` shows neither the token nor message contents.
pub struct DiscordNotifier {
    http: Client,
    api_base: String,
    send_deadline: Duration,
    rate_limit_pause: Duration,
    /// Nothing is sent before this instant: set after a 429.
    paused_until: Mutex<Option<Instant>>,
    /// DM channel of each user; opening one is a request of its own, and the channel never changes.
    dm_channels: Mutex<HashMap<Id<UserMarker>, Id<ChannelMarker>>>,
    /// Paces the requests the global limit counts; `None` when the caller turned pacing off.
    pacer: Option<Pacer>,
}

impl std::fmt::Debug for DiscordNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.dm_channels.lock().map_or(0, |m| m.len());
        f.debug_struct("DiscordNotifier")
            .field("api_base", &self.api_base)
            .field("send_deadline", &self.send_deadline)
            .field("dm_channels_cached", &cached)
            .finish_non_exhaustive()
    }
}

impl DiscordNotifier {
    /// A client for `token` (with or without the `Bot ` prefix) that talks to Discord, or to `api_base`
    /// (`http://127.0.0.1:PORT`, `https://proxy.example`; a trailing `/api` or `/api/v10` is accepted).
    ///
    /// Must be called inside a Tokio runtime.
    pub fn new(token: String, api_base: Option<String>) -> Result<DiscordNotifier, ConfigError> {
        DiscordNotifier::with_timeouts(token, api_base, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SEND_DEADLINE)
    }

    /// [`new`](Self::new) with the per-request timeout and the whole-send deadline given.
    pub fn with_timeouts(
        token: String,
        api_base: Option<String>,
        request_timeout: Duration,
        send_deadline: Duration,
    ) -> Result<DiscordNotifier, ConfigError> {
        let token = token.trim().to_string();
        if token.is_empty() || token == "Bot" || token == "Bearer" {
            return Err(ConfigError::EmptyToken);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(ConfigError::BadToken);
        }
        // twilight starts its rate limiter with `tokio::spawn`, which panics outside a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        install_crypto_provider();
        let mut builder = Client::builder().token(token).timeout(request_timeout);
        let shown_base = match api_base.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(base) => {
                let (host, use_http) = proxy_host(base)?;
                builder = builder.proxy(host, use_http);
                base.trim_end_matches('/').to_string()
            }
            None => "https://discord.com".to_string(),
        };
        Ok(DiscordNotifier {
            http: builder.build(),
            api_base: shown_base,
            send_deadline,
            rate_limit_pause: DEFAULT_RATE_LIMIT_PAUSE,
            paused_until: Mutex::new(None),
            dm_channels: Mutex::new(HashMap::new()),
            pacer: Some(Pacer::new(DEFAULT_GLOBAL_LIMIT)),
        })
    }

    /// Sets the pause after a first 429 (default [`DEFAULT_RATE_LIMIT_PAUSE`]); tests shorten it.
    pub fn with_rate_limit_pause(mut self, pause: Duration) -> DiscordNotifier {
        self.rate_limit_pause = pause;
        self
    }

    /// Paces requests to `per_second` (Discord's global limit for this bot, [`DEFAULT_GLOBAL_LIMIT`] unless
    /// Discord raised it), or not at all with `None`, leaving the global limit to the 429 handling.
    pub fn with_global_limit(mut self, per_second: Option<u32>) -> DiscordNotifier {
        self.pacer = per_second.map(Pacer::new);
        self
    }

    /// The twilight client, for requests this type does not wrap.
    pub fn http(&self) -> &Client {
        &self.http
    }

    /// Replaces the embeds and components of a message we sent (after Ignore, or once a trade opened).
    pub async fn edit_message(
        &self,
        channel_id: &str,
        message_id: &str,
        message: &OutgoingMessage,
    ) -> Result<(), DeliveryError> {
        let channel = parse_id::<ChannelMarker>("channel", channel_id)?;
        let message_id = parse_id::<MessageMarker>("message", message_id)?;
        let request = || {
            self.http
                .update_message(channel, message_id)
                .embeds(Some(&message.embeds))
                .components(Some(&message.components))
        };
        self.within_deadline(async { self.execute(request).await.map(drop) }).await
    }

    /// Replaces the original response to an interaction (after a deferred response, for example).
    pub async fn edit_original_response(
        &self,
        application_id: &str,
        interaction_token: &str,
        message: &OutgoingMessage,
    ) -> Result<(), DeliveryError> {
        let application = parse_id::<ApplicationMarker>("application", application_id)?;
        let client = self.http.interaction(application);
        let request = || {
            client
                .update_response(interaction_token)
                .embeds(Some(&message.embeds))
                .components(Some(&message.components))
        };
        self.within_deadline(async { self.execute_paced(request, false).await.map(drop) }).await
    }

    /// Sends a follow-up message to an interaction, files as multipart attachments (`payload_json` plus
    /// `files[n]`, as Discord takes them). Interaction routes are not counted by the global limit, so this is
    /// not paced.
    pub async fn create_followup(
        &self,
        application_id: &str,
        interaction_token: &str,
        follow_up: &crate::FollowUp,
    ) -> Result<SentMessage, DeliveryError> {
        let application = parse_id::<ApplicationMarker>("application", application_id)?;
        let client = self.http.interaction(application);
        let attachments: Vec<twilight_model::http::attachment::Attachment> = follow_up
            .files
            .iter()
            .enumerate()
            .map(|(id, file)| {
                let mut attachment = twilight_model::http::attachment::Attachment::from_bytes(
                    file.filename.clone(),
                    file.bytes.clone(),
                    id as u64,
                );
                if let Some(description) = &file.description {
                    attachment.description(description.clone());
                }
                attachment
            })
            .collect();
        // The body is written here rather than by twilight, which sends each attachment's id as a number:
        // Discord's OpenAPI description types it as a snowflake string, and both are accepted.
        let mut payload = serde_json::json!({});
        if follow_up.ephemeral {
            payload["flags"] = serde_json::json!(twilight_model::channel::message::MessageFlags::EPHEMERAL.bits());
        }
        if let Some(content) = &follow_up.content {
            payload["content"] = serde_json::json!(content);
        }
        if !follow_up.message.embeds.is_empty() {
            payload["embeds"] = serde_json::to_value(&follow_up.message.embeds)
                .map_err(|e| DeliveryError::Refused { code: 0, message: format!("unserialisable embeds: {e}") })?;
        }
        if !follow_up.message.components.is_empty() {
            payload["components"] = serde_json::to_value(&follow_up.message.components)
                .map_err(|e| DeliveryError::Refused { code: 0, message: format!("unserialisable components: {e}") })?;
        }
        if !follow_up.files.is_empty() {
            let listed: Vec<serde_json::Value> = follow_up
                .files
                .iter()
                .enumerate()
                .map(|(id, file)| {
                    let mut entry = serde_json::json!({"id": id.to_string(), "filename": file.filename});
                    if let Some(description) = &file.description {
                        entry["description"] = serde_json::json!(description);
                    }
                    entry
                })
                .collect();
            payload["attachments"] = serde_json::Value::Array(listed);
        }
        let payload = serde_json::to_vec(&payload)
            .map_err(|e| DeliveryError::Refused { code: 0, message: format!("unserialisable follow-up: {e}") })?;
        let request = || {
            let request = client.create_followup(interaction_token).payload_json(&payload);
            if attachments.is_empty() { request } else { request.attachments(&attachments) }
        };
        let send = async {
            let response = self.execute_paced(request, false).await?;
            let body =
                response.bytes().await.map_err(|e| transient(format!("reading Discord's answer failed: {e}")))?;
            let created: Created = serde_json::from_slice(&body)
                .map_err(|e| transient(format!("Discord answered the follow-up with an unexpected body: {e}")))?;
            Ok(SentMessage { channel_id: created.channel_id.unwrap_or_default(), message_id: created.id })
        };
        self.within_deadline(send).await
    }

    /// Answers an interaction that arrived over the gateway (`POST /interactions/{id}/{token}/callback`).
    /// Discord wants this within 3 s of the interaction; interaction routes are outside the global limit.
    pub async fn create_interaction_response(
        &self,
        application_id: &str,
        interaction_id: &str,
        interaction_token: &str,
        response: &twilight_model::http::interaction::InteractionResponse,
    ) -> Result<(), DeliveryError> {
        let application = parse_id::<ApplicationMarker>("application", application_id)?;
        let interaction = parse_id::<twilight_model::id::marker::InteractionMarker>("interaction", interaction_id)?;
        let client = self.http.interaction(application);
        let request = || client.create_response(interaction, interaction_token, response);
        self.within_deadline(async { self.execute_paced(request, false).await.map(drop) }).await
    }

    /// Replaces the original response of an interaction with the text, embeds and components of `data`: how
    /// an answer follows a deferred response.
    pub async fn edit_interaction_response(
        &self,
        application_id: &str,
        interaction_token: &str,
        data: &twilight_model::http::interaction::InteractionResponseData,
    ) -> Result<(), DeliveryError> {
        let application = parse_id::<ApplicationMarker>("application", application_id)?;
        let client = self.http.interaction(application);
        let request = || {
            client
                .update_response(interaction_token)
                .content(data.content.as_deref())
                .embeds(data.embeds.as_deref())
                .components(data.components.as_deref())
        };
        self.within_deadline(async { self.execute_paced(request, false).await.map(drop) }).await
    }

    /// Makes `commands` the application's global slash commands (one bulk overwrite:
    /// `PUT /applications/{id}/commands`), so registering at every start-up is idempotent.
    pub async fn register_commands(&self, application_id: &str, commands: &[Command]) -> Result<(), DeliveryError> {
        let application = parse_id::<ApplicationMarker>("application", application_id)?;
        let client = self.http.interaction(application);
        let request = || client.set_global_commands(commands);
        self.within_deadline(async { self.execute(request).await.map(drop) }).await
    }

    /// Sends the request `build` makes, taking over twilight's retry after a 429 (see the module docs).
    async fn execute<T, R>(&self, build: impl Fn() -> R) -> Result<Response<T>, DeliveryError>
    where
        T: Unpin,
        R: IntoFuture<Output = Result<Response<T>, twilight_http::Error>, IntoFuture = ResponseFuture<T>>,
    {
        self.execute_paced(build, true).await
    }

    /// [`execute`](Self::execute); `paced` is false for the interaction routes, which Discord's global limit
    /// does not count.
    async fn execute_paced<T, R>(&self, build: impl Fn() -> R, paced: bool) -> Result<Response<T>, DeliveryError>
    where
        T: Unpin,
        R: IntoFuture<Output = Result<Response<T>, twilight_http::Error>, IntoFuture = ResponseFuture<T>>,
    {
        let mut pause = self.rate_limit_pause;
        for _ in 0..MAX_ATTEMPTS {
            self.wait_out_pause().await;
            if paced && let Some(pacer) = &self.pacer {
                pacer.wait().await;
            }
            let calls = Arc::new(AtomicU32::new(0));
            let first_sent = Arc::new(Mutex::new(None::<Instant>));
            let mut future = build().into_future();
            let (counter, sent) = (Arc::clone(&calls), Arc::clone(&first_sent));
            // twilight asks this each time its rate limiter lets the request go; a second time means the
            // first try met a 429, and that retry is ours to time.
            future.set_pre_flight(move || {
                let first = counter.fetch_add(1, Ordering::Relaxed) == 0;
                if first && let Ok(mut at) = sent.lock() {
                    *at = Some(Instant::now());
                }
                first
            });
            match future.await {
                Ok(response) => return Ok(response),
                Err(error)
                    if matches!(error.kind(), ErrorType::RequestCanceled) && calls.load(Ordering::Relaxed) > 1 =>
                {
                    let sent_at = first_sent.lock().ok().and_then(|at| *at).unwrap_or_else(Instant::now);
                    self.pause_until(sent_at + pause);
                    tracing::info!(pause_ms = pause.as_millis() as u64, "Discord answered 429; pausing sends");
                    pause = pause.saturating_mul(2);
                }
                Err(error) => return Err(map_error(error)),
            }
        }
        Err(DeliveryError::Transient {
            message: format!("Discord answered 429 (rate limited) {MAX_ATTEMPTS} times in a row"),
            retry_after: Some(pause),
        })
    }

    fn pause_until(&self, until: Instant) {
        if let Ok(mut paused) = self.paused_until.lock() {
            *paused = Some(paused.map_or(until, |current| current.max(until)));
        }
    }

    async fn wait_out_pause(&self) {
        // Looped because another 429 may lengthen the pause while this send sleeps.
        loop {
            let until = self.paused_until.lock().ok().and_then(|paused| *paused);
            match until.filter(|until| *until > Instant::now()) {
                Some(until) => tokio::time::sleep_until(until).await,
                None => return,
            }
        }
    }

    async fn within_deadline<T>(
        &self,
        work: impl Future<Output = Result<T, DeliveryError>>,
    ) -> Result<T, DeliveryError> {
        match tokio::time::timeout(self.send_deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Transient {
                message: format!(
                    "Discord did not answer within {}s (rate limited or unreachable)",
                    self.send_deadline.as_secs()
                ),
                retry_after: None,
            }),
        }
    }

    async fn dm_channel(&self, user: Id<UserMarker>) -> Result<(Id<ChannelMarker>, bool), DeliveryError> {
        if let Some(channel) = self.cached_dm(user) {
            return Ok((channel, true));
        }
        let response = self.execute(|| self.http.create_private_channel(user)).await?;
        let body = response.bytes().await.map_err(|e| transient(format!("reading the DM channel failed: {e}")))?;
        let created: Created = serde_json::from_slice(&body)
            .map_err(|e| transient(format!("Discord answered the DM channel request with an unexpected body: {e}")))?;
        let channel = parse_id::<ChannelMarker>("DM channel", &created.id)?;
        if let Ok(mut cache) = self.dm_channels.lock() {
            cache.insert(user, channel);
        }
        Ok((channel, false))
    }

    fn cached_dm(&self, user: Id<UserMarker>) -> Option<Id<ChannelMarker>> {
        self.dm_channels.lock().ok().and_then(|m| m.get(&user).copied())
    }

    fn forget_dm(&self, user: Id<UserMarker>) {
        if let Ok(mut cache) = self.dm_channels.lock() {
            cache.remove(&user);
        }
    }

    async fn create_message(
        &self,
        channel: Id<ChannelMarker>,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, DeliveryError> {
        let request = || self.http.create_message(channel).embeds(&message.embeds).components(&message.components);
        let response = self.execute(request).await?;
        let body = response.bytes().await.map_err(|e| transient(format!("reading Discord's answer failed: {e}")))?;
        let created: Created = serde_json::from_slice(&body)
            .map_err(|e| transient(format!("Discord answered the message with an unexpected body: {e}")))?;
        Ok(SentMessage {
            channel_id: created.channel_id.unwrap_or_else(|| channel.to_string()),
            message_id: created.id,
        })
    }

    async fn send_now(&self, target: &DeliveryTarget, message: &OutgoingMessage) -> Result<SentMessage, DeliveryError> {
        match target {
            DeliveryTarget::Channel { channel_id } => {
                self.create_message(parse_id("channel", channel_id)?, message).await
            }
            DeliveryTarget::Dm { discord_user_id } => {
                let user = parse_id::<UserMarker>("user", discord_user_id)?;
                let (channel, cached) = self.dm_channel(user).await?;
                match self.create_message(channel, message).await {
                    // A cached DM channel that Discord no longer knows: open it again, once.
                    Err(DeliveryError::Refused { code: UNKNOWN_CHANNEL, .. }) if cached => {
                        self.forget_dm(user);
                        let (channel, _) = self.dm_channel(user).await?;
                        self.create_message(channel, message).await
                    }
                    other => other,
                }
            }
        }
    }
}

#[async_trait]
impl Notifier for DiscordNotifier {
    async fn send(&self, target: &DeliveryTarget, message: &OutgoingMessage) -> Result<SentMessage, DeliveryError> {
        let kind = match target {
            DeliveryTarget::Dm { .. } => "dm",
            DeliveryTarget::Channel { .. } => "channel",
        };
        let result = self.within_deadline(self.send_now(target, message)).await;
        match &result {
            Ok(sent) => tracing::debug!(target = kind, message_id = %sent.message_id, "Discord message sent"),
            Err(error) => tracing::debug!(target = kind, %error, "Discord message not sent"),
        }
        result
    }
}

#[async_trait]
impl crate::FollowUps for DiscordNotifier {
    async fn follow_up(
        &self,
        application_id: &str,
        interaction_token: &str,
        follow_up: &crate::FollowUp,
    ) -> Result<SentMessage, DeliveryError> {
        self.create_followup(application_id, interaction_token, follow_up).await
    }
}

/// The part of a created message or channel we keep; the rest of Discord's object is not needed, and
/// parsing only this much keeps a sent message from being reported as failed over an unexpected field.
#[derive(Deserialize)]
struct Created {
    #[serde(deserialize_with = "snowflake")]
    id: String,
    #[serde(default, deserialize_with = "optional_snowflake")]
    channel_id: Option<String>,
}

/// Discord sends snowflakes as strings; accept numbers too.
fn snowflake<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Snowflake {
        Text(String),
        Number(u64),
    }
    Ok(match Snowflake::deserialize(deserializer)? {
        Snowflake::Text(s) => s,
        Snowflake::Number(n) => n.to_string(),
    })
}

fn optional_snowflake<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    snowflake(deserializer).map(Some)
}

/// twilight-http builds its TLS configuration from rustls's process-wide crypto provider and panics when
/// there is none, or when the features of the whole build leave rustls unable to pick one.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: any provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// 10003 Unknown Channel.
const UNKNOWN_CHANNEL: u64 = 10003;

/// Splits `http://host:port/prefix` into what twilight's `proxy` takes: the host with any prefix, and
/// whether to speak plain HTTP.
fn proxy_host(base: &str) -> Result<(String, bool), ConfigError> {
    let bad = || ConfigError::BadApiBase(base.to_string());
    let (rest, use_http) = if let Some(rest) = base.strip_prefix("http://") {
        (rest, true)
    } else if let Some(rest) = base.strip_prefix("https://") {
        (rest, false)
    } else {
        return Err(bad());
    };
    let mut host = rest.trim_end_matches('/');
    // twilight appends /api/v10 itself.
    for suffix in ["/api/v10", "/api"] {
        if let Some(stripped) = host.strip_suffix(suffix) {
            host = stripped;
            break;
        }
    }
    let authority = host.split('/').next().unwrap_or_default();
    if authority.is_empty() || host.contains(['?', '#', ' ', '@']) {
        return Err(bad());
    }
    Ok((host.to_string(), use_http))
}

fn parse_id<M>(what: &str, text: &str) -> Result<Id<M>, DeliveryError> {
    text.trim()
        .parse::<u64>()
        .ok()
        .and_then(Id::new_checked)
        .ok_or_else(|| DeliveryError::Refused { code: 0, message: format!("{text:?} is not a Discord {what} id") })
}

fn transient(message: String) -> DeliveryError {
    DeliveryError::Transient { message, retry_after: None }
}

/// Sorts a twilight error into "never" and "later". Only 401 and 429 among the 4xx are worth retrying: 401
/// is a token problem the operator can fix without the message changing, 429 a rate limit. twilight's
/// messages never contain the token.
fn map_error(error: twilight_http::Error) -> DeliveryError {
    let shown = error.to_string();
    match error.kind() {
        ErrorType::Response { error: api, status, .. } => {
            let status = status.get();
            match api {
                ApiError::Ratelimited(limited) => DeliveryError::Transient {
                    message: format!("rate limited by Discord: {}", limited.message),
                    retry_after: Duration::try_from_secs_f64(limited.retry_after).ok(),
                },
                _ if status == 429 => DeliveryError::Transient { message: shown, retry_after: None },
                _ if status == 401 => DeliveryError::Transient {
                    message: "Discord rejected the bot token (401); check DISCORD_TOKEN".into(),
                    retry_after: None,
                },
                ApiError::General(general) if (400..500).contains(&status) => {
                    DeliveryError::Refused { code: general.code, message: general.message.clone() }
                }
                _ if (400..500).contains(&status) => DeliveryError::Refused { code: 0, message: shown },
                _ => DeliveryError::Transient { message: shown, retry_after: None },
            }
        }
        ErrorType::Unauthorized => DeliveryError::Transient {
            message: "Discord rejected the bot token earlier (401); check DISCORD_TOKEN and restart".into(),
            retry_after: None,
        },
        ErrorType::Validation | ErrorType::Json | ErrorType::BuildingRequest | ErrorType::CreatingHeader { .. } => {
            let detail = std::error::Error::source(&error).map(|s| format!(": {s}")).unwrap_or_default();
            DeliveryError::Refused { code: 0, message: format!("{shown}{detail}") }
        }
        // Timeouts, connection failures, bodies that are not Discord's JSON (a proxy's 502 page), and
        // anything twilight adds later: worth another try.
        _ => DeliveryError::Transient { message: shown, retry_after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_bases_become_proxy_hosts() {
        assert_eq!(proxy_host("http://127.0.0.1:8081").unwrap(), ("127.0.0.1:8081".into(), true));
        assert_eq!(proxy_host("http://127.0.0.1:8081/").unwrap(), ("127.0.0.1:8081".into(), true));
        assert_eq!(proxy_host("http://127.0.0.1:8081/api/v10").unwrap(), ("127.0.0.1:8081".into(), true));
        assert_eq!(proxy_host("https://discord.com/api").unwrap(), ("discord.com".into(), false));
        assert_eq!(proxy_host("https://proxy.example/discord").unwrap(), ("proxy.example/discord".into(), false));
        for bad in ["127.0.0.1:8081", "ftp://x", "http://", "http:///api", "http://a b"] {
            assert!(matches!(proxy_host(bad), Err(ConfigError::BadApiBase(_))), "{bad}");
        }
    }

    #[test]
    fn ids_must_be_snowflakes() {
        assert!(parse_id::<ChannelMarker>("channel", "123").is_ok());
        for bad in ["", "0", "abc", "-1", "1.5"] {
            let err = parse_id::<ChannelMarker>("channel", bad).unwrap_err();
            assert!(matches!(err, DeliveryError::Refused { code: 0, .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn created_bodies_accept_string_or_number_ids() {
        let c: Created = serde_json::from_str(r#"{"id":"5","channel_id":"6","extra":[1]}"#).unwrap();
        assert_eq!((c.id.as_str(), c.channel_id.as_deref()), ("5", Some("6")));
        let c: Created = serde_json::from_str(r#"{"id":5}"#).unwrap();
        assert_eq!((c.id.as_str(), c.channel_id), ("5", None));
    }

    #[tokio::test]
    async fn construction_checks_settings_and_hides_the_token() {
        let secret = "MTIzNDU2Nzg5.secret-token-value";
        let notifier = DiscordNotifier::new(secret.into(), Some("http://127.0.0.1:9".into())).unwrap();
        let shown = format!("{notifier:?}");
        assert!(!shown.contains("secret-token-value"), "{shown}");
        assert!(shown.contains("127.0.0.1:9"), "{shown}");
        assert_eq!(DiscordNotifier::new("  ".into(), None).unwrap_err(), ConfigError::EmptyToken);
        assert_eq!(DiscordNotifier::new("a\nb".into(), None).unwrap_err(), ConfigError::BadToken);
        let err = DiscordNotifier::new("x".into(), Some("localhost:1".into())).unwrap_err();
        assert!(!err.to_string().contains(secret));
    }

    /// Counts, for every booked slot, the slots in the one-second window it opens: Discord's fixed window
    /// as the fake applies it, started by any request.
    fn busiest_second(slots: &[Instant]) -> usize {
        slots
            .iter()
            .map(|start| slots.iter().filter(|s| **s >= *start && **s < *start + Duration::from_secs(1)).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_keeps_under_the_global_limit_with_headroom_and_near_its_rate() {
        let pacer = Pacer::new(DEFAULT_GLOBAL_LIMIT);
        let first = Instant::now();
        let mut slots = Vec::new();
        for _ in 0..500 {
            pacer.wait().await;
            slots.push(Instant::now());
        }
        assert!(busiest_second(&slots) <= 50, "{}", busiest_second(&slots));
        // Even each slot up to 20 ms late (network jitter) keeps every window at 50 or fewer.
        let late: Vec<Instant> = slots
            .iter()
            .enumerate()
            .map(|(i, s)| *s + Duration::from_millis(if i % 2 == 0 { 20 } else { 0 }))
            .collect();
        assert!(busiest_second(&late) <= 50);
        let rate = (slots.len() - 1) as f64 / (*slots.last().unwrap() - first).as_secs_f64();
        assert!((48.5..50.0).contains(&rate), "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_books_slots_for_concurrent_senders_without_drift() {
        let pacer = Arc::new(Pacer::new(10));
        let first = Instant::now();
        let waits: Vec<_> = (0..20)
            .map(|_| {
                let pacer = Arc::clone(&pacer);
                tokio::spawn(async move {
                    pacer.wait().await;
                    Instant::now()
                })
            })
            .collect();
        let mut slots = Vec::new();
        for wait in waits {
            slots.push(wait.await.unwrap());
        }
        slots.sort();
        assert_eq!(slots[0], first, "an idle pacer lets the first request go at once");
        assert!(slots.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(100)), "{slots:?}");
        assert!(busiest_second(&slots) <= 10);
        // After a pause the pacer does not make up for lost time with a burst.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (a, b) = (pacer.reserve(), pacer.reserve());
        assert!(b - a >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn pacing_can_be_turned_off() {
        let notifier = DiscordNotifier::new("token".into(), None).unwrap();
        assert!(notifier.pacer.is_some());
        assert!(notifier.with_global_limit(None).pacer.is_none());
    }

    #[test]
    fn construction_outside_a_runtime_is_an_error_not_a_panic() {
        assert_eq!(DiscordNotifier::new("token".into(), None).unwrap_err(), ConfigError::NoRuntime);
    }
}

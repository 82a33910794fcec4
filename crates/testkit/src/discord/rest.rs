//! [`FakeDiscord`]: Discord's REST API on `127.0.0.1:0`, for the routes Signalpost uses.
//!
//! Each request goes through the same steps Discord's own front takes, in this order: a scripted answer if
//! a test queued one for the route, the bot token, the global and per-route rate limits, the body against
//! the OpenAPI spec (and Discord's rules), and only then the route itself. Every request is recorded with
//! the answer it got, so tests assert on what the bot really sent.

use super::objects::{self, Origin, Snowflakes};
use super::openapi::{Spec, Violation, discord_errors_object};
use super::ratelimit::{self, BucketState, Decision, Limit, Limiter};
use crate::scripted_http::{DropConnection, dropped, serve};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post, put};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Discord's REST API version prefix, as twilight and Discord's docs use it.
pub const API_PREFIX: &str = "/api/v10";

/// The application id (and bot user id: they are the same for applications made since 2021) the fake uses
/// unless told otherwise.
pub const DEFAULT_APPLICATION_ID: &str = "1100000000000000001";

/// Bodies larger than this are refused; Discord's own limit for non-file requests is far below it.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The routes the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /users/@me/channels`: open (or fetch) the DM channel with a user.
    CreateDm,
    /// `POST /channels/{channel_id}/messages`.
    CreateMessage,
    /// `PATCH /channels/{channel_id}/messages/{message_id}`.
    EditMessage,
    /// `POST /interactions/{interaction_id}/{interaction_token}/callback`: no bot token, no global limit.
    InteractionCallback,
    /// `POST /webhooks/{application_id}/{interaction_token}`: an interaction follow-up message.
    CreateFollowup,
    /// `PATCH /webhooks/{application_id}/{interaction_token}/messages/@original`.
    EditOriginal,
    /// `PUT /applications/{application_id}/commands`: replace the global slash commands.
    BulkOverwriteGlobalCommands,
}

impl Route {
    pub const ALL: [Route; 7] = [
        Route::CreateDm,
        Route::CreateMessage,
        Route::EditMessage,
        Route::InteractionCallback,
        Route::CreateFollowup,
        Route::EditOriginal,
        Route::BulkOverwriteGlobalCommands,
    ];

    pub fn method(self) -> Method {
        match self {
            Route::EditMessage | Route::EditOriginal => Method::PATCH,
            Route::BulkOverwriteGlobalCommands => Method::PUT,
            _ => Method::POST,
        }
    }

    /// The path template, as Discord's OpenAPI spec spells it (without `/api/v10`).
    pub fn template(self) -> &'static str {
        match self {
            Route::CreateDm => "/users/@me/channels",
            Route::CreateMessage => "/channels/{channel_id}/messages",
            Route::EditMessage => "/channels/{channel_id}/messages/{message_id}",
            Route::InteractionCallback => "/interactions/{interaction_id}/{interaction_token}/callback",
            Route::CreateFollowup => "/webhooks/{webhook_id}/{webhook_token}",
            Route::EditOriginal => "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            Route::BulkOverwriteGlobalCommands => "/applications/{application_id}/commands",
        }
    }

    /// The spec's `operationId` whose request schema validates this route's bodies.
    pub fn operation_id(self) -> &'static str {
        match self {
            Route::CreateDm => "create_dm",
            Route::CreateMessage => "create_message",
            Route::EditMessage => "update_message",
            Route::InteractionCallback => "create_interaction_response",
            Route::CreateFollowup => "execute_webhook",
            Route::EditOriginal => "update_original_webhook_message",
            Route::BulkOverwriteGlobalCommands => "bulk_set_application_commands",
        }
    }

    /// Discord's defaults as far as it documents them: 5 messages per 5 s per channel, 5 webhook
    /// executions per 2 s per webhook. The others are not published; these are of the same order.
    pub fn default_limit(self) -> Limit {
        let secs = Duration::from_secs;
        match self {
            Route::CreateMessage | Route::EditMessage => Limit::new(5, secs(5)),
            Route::CreateDm => Limit::new(10, secs(1)),
            Route::InteractionCallback => Limit::new(5, secs(5)),
            Route::CreateFollowup | Route::EditOriginal => Limit::new(5, secs(2)),
            Route::BulkOverwriteGlobalCommands => Limit::new(10, secs(10)),
        }
    }

    /// Interaction endpoints take the interaction token instead of the bot token.
    pub fn requires_bot_token(self) -> bool {
        !matches!(self, Route::InteractionCallback | Route::CreateFollowup | Route::EditOriginal)
    }

    /// Discord: "Interaction endpoints are not bound to the bot's Global Rate Limit."
    pub fn global_exempt(self) -> bool {
        !self.requires_bot_token()
    }

    /// The parameter Discord keys a bucket by, besides the route itself.
    fn major_parameter(self, params: &HashMap<String, String>) -> String {
        let key = match self {
            Route::CreateMessage | Route::EditMessage => "channel_id",
            Route::InteractionCallback => "interaction_id",
            Route::CreateFollowup | Route::EditOriginal => "webhook_token",
            Route::BulkOverwriteGlobalCommands => "application_id",
            Route::CreateDm => return String::new(),
        };
        params.get(key).cloned().unwrap_or_default()
    }

    /// An opaque, stable bucket id per route, like Discord's `X-RateLimit-Bucket` hashes.
    pub fn bucket(self) -> String {
        let hash = self
            .operation_id()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
        format!("{hash:016x}")
    }

    fn find(method: &Method, template: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|route| route.method() == method && route.template() == template)
    }
}

/// Which requests a scripted answer applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatcher {
    /// The next request, whatever it is.
    Any,
    /// The next request to this route.
    Route(Route),
    /// The next request with this method (any if `None`) whose path, without `/api/v10`, matches `pattern`:
    /// segments compared literally, `*` matching any one segment (`/channels/*/messages`).
    Path { method: Option<Method>, pattern: String },
}

impl RouteMatcher {
    pub fn path(method: Method, pattern: impl Into<String>) -> Self {
        RouteMatcher::Path { method: Some(method), pattern: pattern.into() }
    }

    fn matches(&self, route: Option<Route>, method: &Method, path: &str) -> bool {
        match self {
            RouteMatcher::Any => true,
            RouteMatcher::Route(wanted) => route == Some(*wanted),
            RouteMatcher::Path { method: wanted, pattern } => {
                let path = path.strip_prefix(API_PREFIX).unwrap_or(path);
                let (a, b): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
                wanted.as_ref().is_none_or(|m| m == method)
                    && a.len() == b.len()
                    && a.iter().zip(&b).all(|(p, s)| *p == "*" || p == s)
            }
        }
    }
}

impl From<Route> for RouteMatcher {
    fn from(route: Route) -> Self {
        RouteMatcher::Route(route)
    }
}

/// An answer a test queues for the next matching request, instead of what the route would do.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptedResponse {
    /// 429 from the route's bucket; the bucket then stays exhausted for `retry_after`, so a client that
    /// retries early meets a real (counted) 429.
    Status429 { retry_after: Duration },
    /// 429 from the global limit (`"global": true`, `X-RateLimit-Global: true`); binds the same way.
    Global429 { retry_after: Duration },
    /// 403 `{"message": "Cannot send messages to this user", "code": 50007}`: the user does not take DMs.
    Discord50007,
    /// 500 `{"message": "500: Internal Server Error", "code": 0}`.
    ServerError500,
    /// The connection is closed without any response.
    Disconnect,
    /// Any status and JSON body.
    Json { status: u16, body: Value },
}

/// One request as the fake received it, with the status it answered (`None`: the connection was dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The full path, `/api/v10/...`, without the query.
    pub path: String,
    pub query: Option<String>,
    /// Names are lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (for multipart, its `payload_json`); `None` when there was none or it was not JSON.
    pub body: Option<Value>,
    /// File names of multipart `files[n]` parts.
    pub files: Vec<String>,
    pub route: Option<Route>,
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A message the bot created through `POST /channels/{channel_id}/messages` or a follow-up.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub channel_id: String,
    pub message_id: String,
    /// The DM recipient when the channel is a DM the bot opened.
    pub recipient_id: Option<String>,
    /// What the bot sent (for a multipart body, its `payload_json`).
    pub body: Value,
    /// What the fake answered (the message object).
    pub message: Value,
    /// The files of a multipart body (`files[n]` parts), in the order sent.
    pub files: Vec<RecordedFile>,
}

/// One `files[n]` part of a multipart request, as received.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedFile {
    /// The form field, `files[0]`.
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for RecordedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedFile")
            .field("field", &self.field)
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// An interaction response the bot posted to `/interactions/{id}/{token}/callback`.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionCallback {
    pub interaction_id: String,
    pub token: String,
    pub body: Value,
}

/// A body the fake refused because Discord would have: it broke the OpenAPI schema or Discord's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidBody {
    pub method: String,
    pub path: String,
    pub operation_id: &'static str,
    pub body: Option<Value>,
    pub errors: Vec<String>,
}

/// Returned by the `wait_for_*` helpers when the deadline passes; says what did arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitTimeout {
    pub wanted: String,
    pub received: Vec<String>,
}

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timed out waiting for {}; the fake received: [{}]", self.wanted, self.received.join(", "))
    }
}

impl std::error::Error for WaitTimeout {}

/// Configures a [`FakeDiscord`] before it starts.
#[derive(Debug, Clone)]
pub struct FakeDiscordBuilder {
    token: Option<String>,
    application_id: String,
    bot_username: String,
    limits: HashMap<Route, Limit>,
    global: Limit,
    channels: Vec<String>,
}

impl Default for FakeDiscordBuilder {
    fn default() -> Self {
        Self {
            token: None,
            application_id: DEFAULT_APPLICATION_ID.to_string(),
            bot_username: "Signalpost".to_string(),
            limits: Route::ALL.into_iter().map(|r| (r, r.default_limit())).collect(),
            global: Limit::new(50, Duration::from_secs(1)),
            channels: Vec::new(),
        }
    }
}

impl FakeDiscordBuilder {
    /// Accept only `Authorization: Bot <token>` with this token (by default any non-empty token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The application id, also the bot's user id.
    pub fn application_id(mut self, id: impl Into<String>) -> Self {
        self.application_id = id.into();
        self
    }

    pub fn limit(mut self, route: Route, limit: Limit) -> Self {
        self.limits.insert(route, limit);
        self
    }

    /// Requests per second across every route but the interaction ones (Discord's default is 50).
    pub fn global_limit(mut self, per_second: u32) -> Self {
        self.global = Limit::new(per_second, Duration::from_secs(1));
        self
    }

    /// A guild text channel the bot may post to (DM channels exist once the bot opens them).
    pub fn channel(mut self, id: impl Into<String>) -> Self {
        self.channels.push(id.into());
        self
    }

    pub async fn start(self) -> FakeDiscord {
        FakeDiscord::start_with(self).await
    }
}

#[derive(Debug)]
struct Config {
    token: Option<String>,
    application_id: String,
    limits: HashMap<Route, Limit>,
    bot_user: Value,
}

impl Config {
    fn limit(&self, route: Route) -> Limit {
        self.limits.get(&route).copied().unwrap_or_else(|| route.default_limit())
    }
}

#[derive(Debug)]
struct FakeState {
    requests: Vec<RecordedRequest>,
    scripts: VecDeque<(RouteMatcher, ScriptedResponse)>,
    limiter: Limiter,
    guild_channels: HashSet<String>,
    dm_by_recipient: HashMap<String, String>,
    recipient_by_dm: HashMap<String, String>,
    refused_recipients: HashSet<String>,
    messages: HashMap<String, Value>,
    sent: Vec<SentMessage>,
    followups: Vec<SentMessage>,
    callbacks: Vec<InteractionCallback>,
    /// Interaction token → id of the original response message, once the callback created one.
    originals: HashMap<String, String>,
    /// Interaction token → the channel its messages appear in.
    interaction_channels: HashMap<String, String>,
    commands: Vec<Value>,
    invalid: Vec<InvalidBody>,
    rate_limited: usize,
    scripted_rate_limited: usize,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    state: Mutex<FakeState>,
    changed: watch::Sender<u64>,
    snowflakes: Snowflakes,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread must not hide what the fake recorded from the next assertion.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, request: RecordedRequest) {
        self.lock().requests.push(request);
        self.changed.send_modify(|version| *version += 1);
    }

    fn origin(&self, webhook: bool) -> Origin<'_> {
        Origin { author: &self.config.bot_user, application_id: &self.config.application_id, webhook }
    }
}

/// The parsed body handed from the common steps to the route handler.
#[derive(Debug, Clone)]
struct JsonBody(Value);

/// The files of a multipart body, handed on like [`JsonBody`].
#[derive(Debug, Clone, Default)]
struct FileParts(Vec<RecordedFile>);

/// A fake of Discord's REST API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeDiscord {
    /// Starts a fake with Discord's default limits, accepting any bot token.
    pub async fn start() -> FakeDiscord {
        FakeDiscordBuilder::default().start().await
    }

    pub fn builder() -> FakeDiscordBuilder {
        FakeDiscordBuilder::default()
    }

    async fn start_with(builder: FakeDiscordBuilder) -> FakeDiscord {
        // Compile the validators of every route before the first request, off the async threads.
        tokio::task::spawn_blocking(|| {
            for route in Route::ALL {
                let _ = Spec::global().check_request(route.method().as_str(), route.template(), &Value::Null);
            }
        })
        .await
        .expect("warming the OpenAPI validators");
        let bot_user = objects::user(&builder.application_id, &builder.bot_username, true);
        let shared = Arc::new(Shared {
            config: Config {
                token: builder.token,
                application_id: builder.application_id,
                limits: builder.limits,
                bot_user,
            },
            state: Mutex::new(FakeState {
                requests: Vec::new(),
                scripts: VecDeque::new(),
                limiter: Limiter::new(builder.global),
                guild_channels: builder.channels.into_iter().collect(),
                dm_by_recipient: HashMap::new(),
                recipient_by_dm: HashMap::new(),
                refused_recipients: HashSet::new(),
                messages: HashMap::new(),
                sent: Vec::new(),
                followups: Vec::new(),
                callbacks: Vec::new(),
                originals: HashMap::new(),
                interaction_channels: HashMap::new(),
                commands: Vec::new(),
                invalid: Vec::new(),
                rate_limited: 0,
                scripted_rate_limited: 0,
            }),
            changed: watch::channel(0).0,
            snowflakes: Snowflakes::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(serve(listener, router(Arc::clone(&shared))));
        FakeDiscord { shared, addr, server }
    }

    /// `http://127.0.0.1:PORT`: what `DISCORD_API_BASE` (or twilight's proxy setting) points at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/api/v10`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PREFIX}", self.base_url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn application_id(&self) -> &str {
        &self.shared.config.application_id
    }

    /// The bot's user id (the application id).
    pub fn bot_user_id(&self) -> &str {
        &self.shared.config.application_id
    }

    /// Queues an answer for the next request `matcher` matches; queued answers are used once, in order.
    pub fn script_next(&self, matcher: impl Into<RouteMatcher>, response: ScriptedResponse) {
        self.shared.lock().scripts.push_back((matcher.into(), response));
    }

    /// Messages to this user's DM channel are refused with 50007, as when the user closed their DMs.
    pub fn refuse_dms(&self, recipient_id: impl Into<String>) {
        self.shared.lock().refused_recipients.insert(recipient_id.into());
    }

    /// Makes a guild text channel known after start.
    pub fn add_channel(&self, channel_id: impl Into<String>) {
        self.shared.lock().guild_channels.insert(channel_id.into());
    }

    /// Every request received, in order, with the status it got.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Messages created through `POST /channels/{channel_id}/messages` (successful ones), in order.
    pub fn messages_sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Interaction follow-up messages, in order.
    pub fn followups(&self) -> Vec<SentMessage> {
        self.shared.lock().followups.clone()
    }

    /// Accepted interaction responses, in order.
    pub fn interaction_callbacks(&self) -> Vec<InteractionCallback> {
        self.shared.lock().callbacks.clone()
    }

    /// A message as it stands now (after edits).
    pub fn message(&self, message_id: &str) -> Option<Value> {
        self.shared.lock().messages.get(message_id).cloned()
    }

    /// The original response of an interaction, as it stands now.
    pub fn original_response(&self, interaction_token: &str) -> Option<Value> {
        let state = self.shared.lock();
        state.originals.get(interaction_token).and_then(|id| state.messages.get(id)).cloned()
    }

    /// The DM channel opened with a user, if the bot opened one.
    pub fn dm_channel_id(&self, recipient_id: &str) -> Option<String> {
        self.shared.lock().dm_by_recipient.get(recipient_id).cloned()
    }

    /// The global commands as last set.
    pub fn commands(&self) -> Vec<Value> {
        self.shared.lock().commands.clone()
    }

    /// Bodies refused because they break the OpenAPI schema or Discord's rules. A test of the bot should
    /// assert this is empty.
    pub fn invalid_bodies(&self) -> Vec<InvalidBody> {
        self.shared.lock().invalid.clone()
    }

    /// 429s the fake sent because a limit was really exceeded (scripted ones excluded): zero for a client
    /// that honours Discord's headers.
    pub fn rate_limited_count(&self) -> usize {
        self.shared.lock().rate_limited
    }

    /// 429s sent because a test scripted them.
    pub fn scripted_rate_limited_count(&self) -> usize {
        self.shared.lock().scripted_rate_limited
    }

    /// Waits until at least `n` requests have been answered (or dropped); returns all of them.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Result<Vec<RecordedRequest>, WaitTimeout> {
        self.wait_until(format!("{n} requests"), timeout, |s| (s.requests.len() >= n).then(|| s.requests.clone())).await
    }

    /// Waits until at least `n` messages have been created; returns all of them.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<SentMessage>, WaitTimeout> {
        self.wait_until(format!("{n} messages"), timeout, |s| (s.sent.len() >= n).then(|| s.sent.clone())).await
    }

    /// Waits until at least `n` follow-up messages have been created; returns all of them.
    pub async fn wait_for_followups(&self, n: usize, timeout: Duration) -> Result<Vec<SentMessage>, WaitTimeout> {
        self.wait_until(format!("{n} follow-ups"), timeout, |s| (s.followups.len() >= n).then(|| s.followups.clone()))
            .await
    }

    /// Waits until at least `n` interaction responses have been accepted; returns all of them.
    pub async fn wait_for_interaction_callbacks(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<InteractionCallback>, WaitTimeout> {
        self.wait_until(format!("{n} interaction callbacks"), timeout, |s| {
            (s.callbacks.len() >= n).then(|| s.callbacks.clone())
        })
        .await
    }

    /// Woken by every recorded request rather than polling, so waits end as soon as the condition holds.
    async fn wait_until<T>(
        &self,
        wanted: String,
        timeout: Duration,
        mut ready: impl FnMut(&FakeState) -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before the first check means no request slips between the check and the wait.
        let mut changes = self.shared.changed.subscribe();
        loop {
            if let Some(value) = ready(&self.shared.lock()) {
                return Ok(value);
            }
            if !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
                if let Some(value) = ready(&self.shared.lock()) {
                    return Ok(value);
                }
                let received = self
                    .shared
                    .lock()
                    .requests
                    .iter()
                    .map(|r| {
                        format!("{} {} -> {}", r.method, r.path, r.status.map_or("dropped".into(), |s| s.to_string()))
                    })
                    .collect();
                return Err(WaitTimeout { wanted, received });
            }
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let path = |route: Route| format!("{API_PREFIX}{}", route.template());
    Router::new()
        .route(&path(Route::CreateDm), post(create_dm).fallback(method_not_allowed))
        .route(&path(Route::CreateMessage), post(create_message).fallback(method_not_allowed))
        .route(&path(Route::EditMessage), patch(edit_message).fallback(method_not_allowed))
        .route(&path(Route::InteractionCallback), post(interaction_callback).fallback(method_not_allowed))
        .route(&path(Route::CreateFollowup), post(create_followup).fallback(method_not_allowed))
        .route(&path(Route::EditOriginal), patch(edit_original).fallback(method_not_allowed))
        .route(&path(Route::BulkOverwriteGlobalCommands), put(bulk_overwrite_commands).fallback(method_not_allowed))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), discord_front))
        .fallback(not_found)
        .with_state(shared)
}

fn discord_error(status: StatusCode, code: u64, message: &str) -> Response {
    (status, axum::Json(json!({"message": message, "code": code}))).into_response()
}

fn record_of(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, route: Option<Route>) -> RecordedRequest {
    RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: None,
        files: Vec::new(),
        route,
        status: None,
    }
}

async fn not_found(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    unrouted(&shared, request, StatusCode::NOT_FOUND, "404: Not Found").await
}

async fn method_not_allowed(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    unrouted(&shared, request, StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed").await
}

async fn unrouted(shared: &Shared, request: Request, status: StatusCode, message: &str) -> Response {
    let (parts, body) = request.into_parts();
    let mut record = record_of(&parts.method, &parts.uri, &parts.headers, None);
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    record.body = serde_json::from_slice(&bytes).ok();
    record.status = Some(status.as_u16());
    shared.record(record);
    discord_error(status, 0, message)
}

/// What every routed request goes through before its handler: scripts, token, limits, body.
async fn discord_front(
    State(shared): State<Arc<Shared>>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let template = matched.as_str().strip_prefix(API_PREFIX).unwrap_or(matched.as_str()).to_string();
    let Some(route) = Route::find(request.method(), &template) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let mut record = record_of(&parts.method, &parts.uri, &parts.headers, Some(route));
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            record.status = Some(413);
            shared.record(record);
            return discord_error(StatusCode::PAYLOAD_TOO_LARGE, 40005, "Request entity too large");
        }
    };
    let params = path_params(route.template(), parts.uri.path().strip_prefix(API_PREFIX).unwrap_or_default());
    let major = route.major_parameter(&params);
    let limit = shared.config.limit(route);

    // Validated before anything else decides the answer, so a broken body is recorded even when a script
    // or a limit answers instead.
    let parsed = parse_body(&parts.headers, &bytes);
    record.files = parsed.files;
    record.body = parsed.json.clone();
    let violations = match &parsed.json {
        Some(json) => {
            let mut violations =
                Spec::global().check_request(parts.method.as_str(), route.template(), json).err().unwrap_or_default();
            violations.extend(parsed.problem);
            (!violations.is_empty()).then_some(violations)
        }
        None => parsed.problem.map(|p| vec![p]),
    };
    let file_parts = FileParts(parsed.file_parts);
    if let Some(violations) = &violations {
        shared.lock().invalid.push(InvalidBody {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            operation_id: route.operation_id(),
            body: parsed.json.clone(),
            errors: violations.iter().map(ToString::to_string).collect(),
        });
    }

    let front = decide(&shared, route, &parts, &major, limit, violations);
    let response = match front {
        Front::Answer(response) => response,
        Front::Proceed(bucket_state) => {
            let json = parsed.json.unwrap_or(Value::Null);
            let mut request = Request::from_parts(parts, Body::empty());
            request.extensions_mut().insert(JsonBody(json));
            request.extensions_mut().insert(file_parts);
            let mut response = next.run(request).await;
            ratelimit::write_headers(response.headers_mut(), &bucket_state);
            response
        }
    };
    record.status = response.extensions().get::<DropConnection>().is_none().then(|| response.status().as_u16());
    shared.record(record);
    response
}

/// The answer of the common steps, or leave to go on to the route with the bucket's state for the headers.
enum Front {
    Answer(Response),
    Proceed(BucketState),
}

fn decide(
    shared: &Shared,
    route: Route,
    parts: &axum::http::request::Parts,
    major: &str,
    limit: Limit,
    violations: Option<Vec<Violation>>,
) -> Front {
    let bucket = route.bucket();
    let mut state = shared.lock();
    let script = state.scripts.iter().position(|(m, _)| m.matches(Some(route), &parts.method, parts.uri.path()));
    if let Some(index) = script {
        let (_, scripted) = state.scripts.remove(index).expect("index from position");
        return Front::Answer(scripted_answer(&mut state, scripted, route, major, limit));
    }
    if route.requires_bot_token() && !authorized(&parts.headers, shared.config.token.as_deref()) {
        let mut response = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
        ratelimit::write_headers(response.headers_mut(), &state.limiter.peek(&bucket, major, limit));
        return Front::Answer(response);
    }
    match state.limiter.acquire(&bucket, major, limit, route.global_exempt()) {
        Decision::Limited { state: bucket_state, retry_after, global } => {
            state.rate_limited += 1;
            Front::Answer(rate_limited(&bucket_state, retry_after, global))
        }
        Decision::Allowed(bucket_state) => match violations {
            Some(violations) => {
                let mut response = invalid_body_response(&violations);
                ratelimit::write_headers(response.headers_mut(), &bucket_state);
                Front::Answer(response)
            }
            None => Front::Proceed(bucket_state),
        },
    }
}

fn authorized(headers: &HeaderMap, expected: Option<&str>) -> bool {
    let Some(token) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bot "))
    else {
        return false;
    };
    !token.trim().is_empty() && expected.is_none_or(|expected| token == expected)
}

fn rate_limited(state: &BucketState, retry_after: Duration, global: bool) -> Response {
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": ratelimit::seconds(retry_after),
        "global": global,
        "code": 0,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    ratelimit::write_headers(response.headers_mut(), state);
    ratelimit::write_limited_headers(response.headers_mut(), retry_after, global);
    response
}

fn scripted_answer(
    state: &mut FakeState,
    scripted: ScriptedResponse,
    route: Route,
    major: &str,
    limit: Limit,
) -> Response {
    let bucket = route.bucket();
    let mut response = match scripted {
        ScriptedResponse::Status429 { retry_after } | ScriptedResponse::Global429 { retry_after } => {
            let global = matches!(scripted, ScriptedResponse::Global429 { .. });
            state.limiter.exhaust(&bucket, major, limit, retry_after, global);
            state.scripted_rate_limited += 1;
            return rate_limited(&state.limiter.peek(&bucket, major, limit), retry_after, global);
        }
        ScriptedResponse::Discord50007 => {
            discord_error(StatusCode::FORBIDDEN, 50007, "Cannot send messages to this user")
        }
        ScriptedResponse::ServerError500 => {
            discord_error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error")
        }
        ScriptedResponse::Disconnect => {
            return dropped();
        }
        ScriptedResponse::Json { status, body } => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body))
                .into_response()
        }
    };
    ratelimit::write_headers(response.headers_mut(), &state.limiter.peek(&bucket, major, limit));
    response
}

fn invalid_body_response(violations: &[Violation]) -> Response {
    // Discord answers an empty message with its own code rather than a form error.
    if violations.iter().all(|v| v.code == "EMPTY_MESSAGE") {
        return discord_error(StatusCode::BAD_REQUEST, 50006, "Cannot send an empty message");
    }
    if violations.iter().any(|v| v.code == "INVALID_JSON") {
        return discord_error(StatusCode::BAD_REQUEST, 50109, "The request body contains invalid JSON.");
    }
    let body = json!({
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": discord_errors_object(violations),
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Path parameters by aligning a concrete path with its template.
fn path_params(template: &str, path: &str) -> HashMap<String, String> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, p)| Some((t.strip_prefix('{')?.strip_suffix('}')?.to_string(), p.to_string())))
        .collect()
}

#[derive(Debug, Default)]
struct ParsedBody {
    json: Option<Value>,
    files: Vec<String>,
    file_parts: Vec<RecordedFile>,
    /// With `json` set, a rule of Discord's the body breaks besides the schema; without, why it is unreadable.
    problem: Option<Violation>,
}

/// JSON bodies, and the `payload_json` part of multipart ones (how Discord takes a message with files).
fn parse_body(headers: &HeaderMap, bytes: &Bytes) -> ParsedBody {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let invalid_json = |e: serde_json::Error| ParsedBody {
        problem: Some(Violation::new("", format!("The request body contains invalid JSON: {e}"), "INVALID_JSON")),
        ..ParsedBody::default()
    };
    if content_type.starts_with("multipart/form-data") {
        let Some(boundary) = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary=")) else {
            return ParsedBody {
                problem: Some(Violation::new("", "multipart body without a boundary", "INVALID_FORM")),
                ..ParsedBody::default()
            };
        };
        return parse_multipart(boundary.trim_matches('"'), bytes);
    }
    if bytes.is_empty() {
        return ParsedBody { json: Some(Value::Null), ..ParsedBody::default() };
    }
    if !content_type.starts_with("application/json") {
        return ParsedBody {
            problem: Some(Violation::new(
                "",
                format!("Content-Type must be application/json for a JSON body, not {content_type:?}"),
                "CONTENT_TYPE_INVALID",
            )),
            ..ParsedBody::default()
        };
    }
    match serde_json::from_slice(bytes) {
        Ok(json) => ParsedBody { json: Some(json), ..ParsedBody::default() },
        Err(e) => invalid_json(e),
    }
}

/// A `multipart/form-data` body as Discord takes a message with files: a `payload_json` part (the JSON body)
/// and `files[n]` parts, whose bytes are kept as they are (a PNG is not text). Each `attachments[].id` of
/// the payload must name a `files[id]` part, and each file must be named by an attachment when the payload
/// lists attachments, as Discord requires.
fn parse_multipart(boundary: &str, bytes: &Bytes) -> ParsedBody {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parsed = ParsedBody { json: Some(json!({})), ..ParsedBody::default() };
    for part in split_bytes(bytes, &delimiter) {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split) = find_bytes(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]);
        let content = &part[split + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.trim().to_string())
        };
        let disposition = header("content-disposition");
        let field = |key: &str| {
            disposition
                .as_deref()
                .and_then(|d| d.split(';').find_map(|p| p.trim().strip_prefix(&format!("{key}=\""))))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        match field("name").as_deref() {
            Some("payload_json") => match serde_json::from_slice(content) {
                Ok(json) => parsed.json = Some(json),
                Err(e) => {
                    parsed.json = None;
                    parsed.problem =
                        Some(Violation::new("/payload_json", format!("invalid JSON: {e}"), "INVALID_JSON"));
                    return parsed;
                }
            },
            Some(name) if name.starts_with("files[") => {
                let filename = field("filename").unwrap_or_default();
                parsed.files.push(filename.clone());
                parsed.file_parts.push(RecordedFile {
                    field: name.to_string(),
                    filename,
                    content_type: header("content-type"),
                    bytes: content.to_vec(),
                });
            }
            _ => {}
        }
    }
    parsed.problem = attachment_mismatch(parsed.json.as_ref(), &parsed.file_parts);
    parsed
}

fn attachment_mismatch(payload: Option<&Value>, files: &[RecordedFile]) -> Option<Violation> {
    let attachments = payload.and_then(|p| p.get("attachments")).and_then(Value::as_array)?;
    let ids: Vec<String> = attachments
        .iter()
        .map(|a| match a.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        })
        .collect();
    for (index, id) in ids.iter().enumerate() {
        if !files.iter().any(|f| f.field == format!("files[{id}]")) {
            return Some(Violation::new(
                format!("/attachments/{index}/id"),
                format!("attachment {id} has no files[{id}] part"),
                "ATTACHMENT_NOT_FOUND",
            ));
        }
    }
    files.iter().find(|f| !ids.iter().any(|id| f.field == format!("files[{id}]"))).map(|f| {
        Violation::new("/attachments", format!("{} is not listed in attachments", f.field), "ATTACHMENT_NOT_FOUND")
    })
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(bytes: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while let Some(at) = find_bytes(rest, delimiter) {
        parts.push(&rest[..at]);
        rest = &rest[at + delimiter.len()..];
    }
    parts.push(rest);
    parts
}

fn ok_json(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn create_dm(State(shared): State<Arc<Shared>>, Extension(JsonBody(body)): Extension<JsonBody>) -> Response {
    let Some(recipient) = body.get("recipient_id").and_then(Value::as_str).map(str::to_string) else {
        let violation = Violation::new("/recipient_id", "This field is required", "BASE_TYPE_REQUIRED");
        return invalid_body_response(&[violation]);
    };
    let mut state = shared.lock();
    let channel_id = match state.dm_by_recipient.get(&recipient) {
        Some(id) => id.clone(),
        None => {
            let id = shared.snowflakes.next();
            state.dm_by_recipient.insert(recipient.clone(), id.clone());
            state.recipient_by_dm.insert(id.clone(), recipient.clone());
            id
        }
    };
    ok_json(objects::dm_channel(&channel_id, &recipient))
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    Extension(JsonBody(body)): Extension<JsonBody>,
) -> Response {
    let mut state = shared.lock();
    let recipient = state.recipient_by_dm.get(&channel_id).cloned();
    if recipient.is_none() && !state.guild_channels.contains(&channel_id) {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    if recipient.as_ref().is_some_and(|r| state.refused_recipients.contains(r)) {
        return discord_error(StatusCode::FORBIDDEN, 50007, "Cannot send messages to this user");
    }
    let message_id = shared.snowflakes.next();
    let message = objects::message(&message_id, &channel_id, &shared.origin(false), &body);
    state.messages.insert(message_id.clone(), message.clone());
    state.sent.push(SentMessage {
        channel_id,
        message_id,
        recipient_id: recipient,
        body,
        message: message.clone(),
        files: Vec::new(),
    });
    ok_json(message)
}

async fn edit_message(
    State(shared): State<Arc<Shared>>,
    Path((channel_id, message_id)): Path<(String, String)>,
    Extension(JsonBody(body)): Extension<JsonBody>,
) -> Response {
    let mut state = shared.lock();
    match state.messages.get_mut(&message_id) {
        Some(message) if message["channel_id"] == channel_id.as_str() => {
            objects::apply_edit(message, &body);
            message["edited_timestamp"] = json!(objects::timestamp_now());
            ok_json(message.clone())
        }
        _ => discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
    }
}

async fn interaction_callback(
    State(shared): State<Arc<Shared>>,
    Path((interaction_id, token)): Path<(String, String)>,
    Extension(JsonBody(body)): Extension<JsonBody>,
) -> Response {
    let mut state = shared.lock();
    if state.callbacks.iter().any(|c| c.interaction_id == interaction_id) {
        return discord_error(StatusCode::BAD_REQUEST, 40060, "Interaction has already been acknowledged.");
    }
    let kind = body.get("type").and_then(Value::as_u64);
    // Types 4 (message) and 5 (deferred, "thinking...") create the original response message.
    if matches!(kind, Some(4 | 5)) {
        let channel_id = interaction_channel(&shared, &mut state, &token);
        let message_id = shared.snowflakes.next();
        let mut data = body.get("data").cloned().filter(|d| !d.is_null()).unwrap_or_else(|| json!({}));
        if kind == Some(5) {
            data["flags"] = json!(data.get("flags").and_then(Value::as_u64).unwrap_or(0) | 128);
        }
        let mut message = objects::message(&message_id, &channel_id, &shared.origin(true), &data);
        message["type"] = json!(20);
        state.messages.insert(message_id.clone(), message);
        state.originals.insert(token.clone(), message_id);
    }
    state.callbacks.push(InteractionCallback { interaction_id, token, body });
    StatusCode::NO_CONTENT.into_response()
}

fn interaction_channel(shared: &Shared, state: &mut FakeState, token: &str) -> String {
    state.interaction_channels.entry(token.to_string()).or_insert_with(|| shared.snowflakes.next()).clone()
}

async fn create_followup(
    State(shared): State<Arc<Shared>>,
    Path((webhook_id, token)): Path<(String, String)>,
    Extension(JsonBody(body)): Extension<JsonBody>,
    files: Option<Extension<FileParts>>,
) -> Response {
    let files = files.map(|Extension(FileParts(files))| files).unwrap_or_default();
    if webhook_id != shared.config.application_id {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    let mut state = shared.lock();
    let channel_id = interaction_channel(&shared, &mut state, &token);
    let message_id = shared.snowflakes.next();
    let message = objects::message(&message_id, &channel_id, &shared.origin(true), &body);
    state.messages.insert(message_id.clone(), message.clone());
    state.followups.push(SentMessage {
        channel_id,
        message_id,
        recipient_id: None,
        body,
        message: message.clone(),
        files,
    });
    ok_json(message)
}

async fn edit_original(
    State(shared): State<Arc<Shared>>,
    Path((webhook_id, token)): Path<(String, String)>,
    Extension(JsonBody(body)): Extension<JsonBody>,
) -> Response {
    if webhook_id != shared.config.application_id {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    let mut state = shared.lock();
    let acknowledged = state.callbacks.iter().find(|c| c.token == token).map(|c| c.body["type"].as_u64());
    let message_id = match (state.originals.get(&token).cloned(), acknowledged) {
        (Some(id), _) => id,
        // Types 6 and 7 answer a component on a message the fake never saw: stand that message in.
        (None, Some(Some(6 | 7))) => {
            let channel_id = interaction_channel(&shared, &mut state, &token);
            let id = shared.snowflakes.next();
            let message = objects::message(&id, &channel_id, &shared.origin(true), &json!({}));
            state.messages.insert(id.clone(), message);
            state.originals.insert(token.clone(), id.clone());
            id
        }
        _ => return discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
    };
    let message = state.messages.get_mut(&message_id).expect("originals point at stored messages");
    objects::apply_edit(message, &body);
    message["edited_timestamp"] = json!(objects::timestamp_now());
    ok_json(message.clone())
}

async fn bulk_overwrite_commands(
    State(shared): State<Arc<Shared>>,
    Path(application_id): Path<String>,
    Extension(JsonBody(body)): Extension<JsonBody>,
) -> Response {
    if application_id != shared.config.application_id {
        return discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access");
    }
    let mut state = shared.lock();
    let requested = body.as_array().cloned().unwrap_or_default();
    let commands: Vec<Value> = requested
        .iter()
        .map(|command| {
            // A command keeps its id across overwrites when its name and type stay the same.
            let same = |existing: &&Value| {
                existing["name"] == command["name"]
                    && existing["type"] == command.get("type").cloned().unwrap_or(json!(1))
            };
            let id = state.commands.iter().find(same).and_then(|c| c["id"].as_str().map(str::to_string));
            let id = id.unwrap_or_else(|| shared.snowflakes.next());
            objects::command(command, &id, &shared.snowflakes.next(), &shared.config.application_id)
        })
        .collect();
    state.commands = commands.clone();
    ok_json(Value::Array(commands))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_align_with_the_template() {
        let params = path_params(Route::EditMessage.template(), "/channels/1/messages/2");
        assert_eq!(params["channel_id"], "1");
        assert_eq!(params["message_id"], "2");
    }

    #[test]
    fn matchers() {
        let post = Method::POST;
        assert!(RouteMatcher::Any.matches(None, &post, "/x"));
        assert!(RouteMatcher::from(Route::CreateMessage).matches(Some(Route::CreateMessage), &post, "/x"));
        let path = RouteMatcher::path(Method::POST, "/channels/*/messages");
        assert!(path.matches(None, &post, "/api/v10/channels/5/messages"));
        assert!(!path.matches(None, &Method::PATCH, "/api/v10/channels/5/messages"));
        assert!(!path.matches(None, &post, "/api/v10/channels/5/messages/6"));
    }

    #[test]
    fn bucket_ids_are_stable_and_distinct() {
        assert_eq!(Route::CreateMessage.bucket(), Route::CreateMessage.bucket());
        assert_ne!(Route::CreateMessage.bucket(), Route::EditMessage.bucket());
    }

    #[test]
    fn multipart_files_keep_their_bytes_and_must_match_the_attachments() {
        let body = |payload: &str| {
            let mut bytes = format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n\
                 {payload}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"chart.png\"\r\n\r\n"
            )
            .into_bytes();
            bytes.extend_from_slice(&[0x89, b'P', b'N', b'G', 0, 0xFF, b'\r', b'\n', 7]);
            bytes.extend_from_slice(b"\r\n--XyZ--");
            Bytes::from(bytes)
        };
        let parsed = parse_multipart("XyZ", &body(r#"{"attachments":[{"id":0,"filename":"chart.png"}]}"#));
        assert!(parsed.problem.is_none(), "{:?}", parsed.problem);
        assert_eq!(parsed.file_parts.len(), 1);
        assert_eq!(parsed.file_parts[0].field, "files[0]");
        assert_eq!(parsed.file_parts[0].bytes, [0x89, b'P', b'N', b'G', 0, 0xFF, b'\r', b'\n', 7]);
        let missing = parse_multipart("XyZ", &body(r#"{"attachments":[{"id":1,"filename":"chart.png"}]}"#));
        assert_eq!(missing.problem.map(|p| p.code), Some("ATTACHMENT_NOT_FOUND"));
        let broken = parse_multipart("XyZ", &body("{not json"));
        assert!(broken.json.is_none());
        assert_eq!(broken.problem.map(|p| p.code), Some("INVALID_JSON"));
    }

    #[test]
    fn multipart_payload_json_is_the_body() {
        let body = Bytes::from(
            "--b\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n--b\r\n\
             Content-Disposition: form-data; name=\"files[0]\"; filename=\"chart.png\"\r\n\r\nPNG\r\n--b--\r\n",
        );
        let parsed = parse_multipart("b", &body);
        assert_eq!(parsed.json, Some(json!({"content": "hi"})));
        assert_eq!(parsed.files, vec!["chart.png".to_string()]);
    }
}

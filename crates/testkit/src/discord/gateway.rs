//! A fake of Discord's gateway (API v10, JSON encoding, no transport compression) on `ws://127.0.0.1:PORT`.
//!
//! It speaks the session protocol a bot sees: HELLO on connect; IDENTIFY checked (token, intents,
//! properties) and answered with READY (whose `resume_gateway_url` is the fake itself); heartbeats answered
//! with ACK; dispatches numbered with `s`; RESUME (token, session id, last sequence) answered by replaying the
//! dispatches after that sequence and then RESUMED, or by INVALID_SESSION (op 9) when the session cannot be
//! resumed. A test dispatches MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE / INTERACTION_CREATE and
//! scripts disconnects (a dropped TCP connection, close codes such as 4000, RECONNECT, INVALID_SESSION).
//!
//! Dispatches belong to the session, as on Discord: one made while the bot is disconnected is kept and
//! replayed when the bot resumes, so "an event during the outage" is one `dispatch` after a `disconnect`.
//!
//! Every frame the client sends is recorded, and protocol mistakes (a bad token, a missing identify field, a
//! connection asking for compression) are listed by [`FakeGateway::problems`]. Waits are built on a watch
//! channel, not sleeps.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use testkit::discord::gateway::{Disconnect, FakeGateway};
//!
//! let gateway = FakeGateway::start().await;
//! // Point DISCORD_GATEWAY_URL at gateway.url(), start the bot, then:
//! gateway.wait_for_identify(1, Duration::from_secs(10)).await.unwrap();
//! gateway.disconnect(Disconnect::Drop);
//! gateway.message_create("1000000000000000010", "1000000000000000020", "1000000000000000030", "BUY EURUSD");
//! gateway.wait_for_resume(1, Duration::from_secs(10)).await.unwrap();
//! assert!(gateway.problems().is_empty());
//! # }
//! ```

use super::objects;
use super::openapi::Spec;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Discord's usual heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(41_250);
/// The bot user READY announces (the application's id doubles as the bot's user id, as on Discord).
pub const BOT_USER_ID: &str = super::DEFAULT_APPLICATION_ID;

const DISPATCH: u64 = 0;
const HEARTBEAT: u64 = 1;
const IDENTIFY: u64 = 2;
const RESUME: u64 = 6;
const RECONNECT: u64 = 7;
const INVALID_SESSION: u64 = 9;
const HELLO: u64 = 10;
const HEARTBEAT_ACK: u64 = 11;

/// How the fake ends the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// Drop the TCP connection without a close frame (a network failure). The session stays resumable.
    Drop,
    /// Send a close frame with this code (4000 unknown error: resumable; 4004 authentication failed:
    /// fatal; ...), then drop the connection.
    Close(u16),
    /// Send op 7 RECONNECT: the client should reconnect and resume.
    Reconnect,
    /// Send op 9 INVALID_SESSION with `d` = `resumable`; when false the session is forgotten.
    InvalidSession { resumable: bool },
}

/// One frame the client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    /// 1 for the first connection, 2 for the next, ...
    pub connection: u64,
    pub op: u64,
    pub payload: Value,
}

/// A wait ran out; says what was seen instead.
#[derive(Debug, Clone, thiserror::Error)]
#[error("timed out waiting for {wanted}; the fake gateway saw: {seen}")]
pub struct GatewayWaitTimeout {
    pub wanted: String,
    pub seen: String,
}

/// Settings of a [`FakeGateway`].
#[derive(Debug, Clone)]
pub struct FakeGatewayBuilder {
    heartbeat_interval: Duration,
    token: Option<String>,
    required_intents: Option<u64>,
    application_id: String,
}

impl Default for FakeGatewayBuilder {
    fn default() -> Self {
        FakeGatewayBuilder {
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            token: None,
            required_intents: None,
            application_id: super::DEFAULT_APPLICATION_ID.to_string(),
        }
    }
}

impl FakeGatewayBuilder {
    /// The interval HELLO announces; tests shorten it to see heartbeats quickly.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Accept only this bot token (with or without `Bot `); by default any non-empty token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Refuse an IDENTIFY whose intents lack any of these bits (close 4014, as Discord does for a
    /// privileged intent the bot may not use).
    pub fn required_intents(mut self, intents: u64) -> Self {
        self.required_intents = Some(intents);
        self
    }

    pub async fn start(self) -> FakeGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake gateway");
        let address = listener.local_addr().expect("a local address");
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            settings: self,
            url: format!("ws://{address}"),
            state: Mutex::new(State::default()),
            changed,
            snowflakes: objects::Snowflakes::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        shared.lock().tasks.push(accept.abort_handle());
        FakeGateway { address, shared }
    }
}

/// The fake gateway; dropping it stops it and ends its connections.
#[derive(Debug)]
pub struct FakeGateway {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        for task in self.shared.lock().tasks.drain(..) {
            task.abort();
        }
    }
}

#[derive(Debug)]
struct Shared {
    settings: FakeGatewayBuilder,
    url: String,
    state: Mutex<State>,
    /// Bumped on every change, so waits wake up without polling.
    changed: watch::Sender<u64>,
    snowflakes: objects::Snowflakes,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

#[derive(Debug, Default)]
struct State {
    frames: Vec<ClientFrame>,
    connections: u64,
    /// The request target (`/?v=10&encoding=json`) of each connection.
    queries: Vec<String>,
    identifies: u64,
    resumes: u64,
    refused_resumes: u64,
    heartbeats: u64,
    /// Close codes the client sent when it closed a connection.
    client_closes: Vec<Option<u16>>,
    sessions: HashMap<String, Session>,
    /// The session dispatches go to: the last one READY started.
    current: Option<String>,
    /// The connection that receives dispatches, once it is attached to `current`.
    live: Option<Live>,
    problems: Vec<String>,
    tasks: Vec<AbortHandle>,
}

#[derive(Debug)]
struct Session {
    seq: u64,
    resumable: bool,
    /// Every dispatch of the session, numbered, for replay on RESUME.
    log: Vec<(u64, Value)>,
}

#[derive(Debug)]
struct Live {
    connection: u64,
    /// The session this connection is identified or resumed into; dispatches flow only once it is set.
    session: Option<String>,
    out: mpsc::UnboundedSender<Outgoing>,
}

#[derive(Debug)]
enum Outgoing {
    Frame(Value),
    End(Disconnect),
}

impl FakeGateway {
    /// A fake with the default settings.
    pub async fn start() -> FakeGateway {
        FakeGatewayBuilder::default().start().await
    }

    pub fn builder() -> FakeGatewayBuilder {
        FakeGatewayBuilder::default()
    }

    /// `ws://127.0.0.1:PORT`: what `DISCORD_GATEWAY_URL` should be.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The id of the session READY last started.
    pub fn session_id(&self) -> Option<String> {
        self.shared.lock().current.clone()
    }

    /// Sends (or, while the bot is disconnected, keeps for the resume) a dispatch `t` with data `d` in the
    /// current session; returns its sequence number. Panics when no session was started yet: wait for the
    /// identify first.
    pub fn dispatch(&self, t: &str, d: Value) -> u64 {
        let seq = {
            let mut state = self.shared.lock();
            let Some(session_id) = state.current.clone() else {
                panic!("dispatch {t}: no session yet; call wait_for_identify first")
            };
            push_dispatch(&mut state, &session_id, t, d)
        };
        self.shared.bump();
        seq
    }

    /// MESSAGE_CREATE for `message` (checked against Discord's `MessageResponse` schema).
    pub fn dispatch_message_create(&self, message: Value) -> u64 {
        check_message("MESSAGE_CREATE", &message);
        self.dispatch("MESSAGE_CREATE", message)
    }

    /// MESSAGE_UPDATE for `message`, the whole edited message as Discord sends it (checked likewise).
    pub fn dispatch_message_update(&self, message: Value) -> u64 {
        check_message("MESSAGE_UPDATE", &message);
        self.dispatch("MESSAGE_UPDATE", message)
    }

    /// MESSAGE_DELETE: only the ids, as Discord sends them.
    pub fn dispatch_message_delete(&self, channel_id: &str, message_id: &str, guild_id: Option<&str>) -> u64 {
        let mut d = json!({"id": message_id, "channel_id": channel_id});
        if let Some(guild) = guild_id {
            d["guild_id"] = json!(guild);
        }
        self.dispatch("MESSAGE_DELETE", d)
    }

    /// A plain text message from `author_id` in a guild channel, dispatched as MESSAGE_CREATE.
    pub fn message_create(&self, channel_id: &str, message_id: &str, author_id: &str, content: &str) -> u64 {
        self.dispatch_message_create(message_object(channel_id, message_id, author_id, content))
    }

    /// INTERACTION_CREATE with `interaction`, the same object Discord posts to an Interactions Endpoint.
    pub fn dispatch_interaction(&self, interaction: Value) -> u64 {
        for field in ["id", "application_id", "type", "token"] {
            assert!(interaction.get(field).is_some(), "an interaction needs `{field}`: {interaction}");
        }
        self.dispatch("INTERACTION_CREATE", interaction)
    }

    /// Ends the current connection the way `how` says; returns false when no client was connected. Dispatches
    /// made afterwards wait in the session for the resume.
    pub fn disconnect(&self, how: Disconnect) -> bool {
        let live = {
            let mut state = self.shared.lock();
            if let Disconnect::InvalidSession { resumable: false } = how
                && let Some(id) = state.current.clone()
                && let Some(session) = state.sessions.get_mut(&id)
            {
                session.resumable = false;
            }
            state.live.take()
        };
        match live {
            Some(live) => live.out.send(Outgoing::End(how)).is_ok(),
            None => false,
        }
    }

    /// Makes the next RESUME of the current session fail with INVALID_SESSION.
    pub fn invalidate_session(&self) {
        let mut state = self.shared.lock();
        if let Some(id) = state.current.clone()
            && let Some(session) = state.sessions.get_mut(&id)
        {
            session.resumable = false;
        }
    }

    /// Every frame the client sent, in order.
    pub fn frames(&self) -> Vec<ClientFrame> {
        self.shared.lock().frames.clone()
    }

    pub fn connection_count(&self) -> u64 {
        self.shared.lock().connections
    }

    /// The request target of each connection (`/?v=10&encoding=json`).
    pub fn connection_queries(&self) -> Vec<String> {
        self.shared.lock().queries.clone()
    }

    /// IDENTIFYs accepted (each started a session).
    pub fn identify_count(&self) -> u64 {
        self.shared.lock().identifies
    }

    /// RESUMEs accepted.
    pub fn resume_count(&self) -> u64 {
        self.shared.lock().resumes
    }

    /// RESUMEs answered with INVALID_SESSION.
    pub fn refused_resume_count(&self) -> u64 {
        self.shared.lock().refused_resumes
    }

    pub fn heartbeat_count(&self) -> u64 {
        self.shared.lock().heartbeats
    }

    /// Close codes of the connections the client closed (`None`: a close frame without a code).
    pub fn client_closes(&self) -> Vec<Option<u16>> {
        self.shared.lock().client_closes.clone()
    }

    /// Protocol mistakes of the client; a well-behaved bot leaves this empty.
    pub fn problems(&self) -> Vec<String> {
        self.shared.lock().problems.clone()
    }

    /// Waits until `n` IDENTIFYs have been accepted (READY sent).
    pub async fn wait_for_identify(&self, n: u64, timeout: Duration) -> Result<(), GatewayWaitTimeout> {
        self.wait_until(format!("{n} identifies"), timeout, |s| s.identifies >= n).await
    }

    /// Waits until `n` RESUMEs have been accepted (replay and RESUMED sent).
    pub async fn wait_for_resume(&self, n: u64, timeout: Duration) -> Result<(), GatewayWaitTimeout> {
        self.wait_until(format!("{n} resumes"), timeout, |s| s.resumes >= n).await
    }

    /// Waits until `n` RESUMEs have been refused with INVALID_SESSION.
    pub async fn wait_for_refused_resume(&self, n: u64, timeout: Duration) -> Result<(), GatewayWaitTimeout> {
        self.wait_until(format!("{n} refused resumes"), timeout, |s| s.refused_resumes >= n).await
    }

    pub async fn wait_for_heartbeats(&self, n: u64, timeout: Duration) -> Result<(), GatewayWaitTimeout> {
        self.wait_until(format!("{n} heartbeats"), timeout, |s| s.heartbeats >= n).await
    }

    pub async fn wait_for_connections(&self, n: u64, timeout: Duration) -> Result<(), GatewayWaitTimeout> {
        self.wait_until(format!("{n} connections"), timeout, |s| s.connections >= n).await
    }

    async fn wait_until(
        &self,
        wanted: String,
        timeout: Duration,
        ready: impl Fn(&State) -> bool,
    ) -> Result<(), GatewayWaitTimeout> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before the first check means no change slips between the check and the wait.
        let mut changes = self.shared.changed.subscribe();
        loop {
            if ready(&self.shared.lock()) {
                return Ok(());
            }
            if !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
                if ready(&self.shared.lock()) {
                    return Ok(());
                }
                let state = self.shared.lock();
                let seen = format!(
                    "{} connections, {} identifies, {} resumes ({} refused), {} heartbeats, problems {:?}",
                    state.connections,
                    state.identifies,
                    state.resumes,
                    state.refused_resumes,
                    state.heartbeats,
                    state.problems
                );
                return Err(GatewayWaitTimeout { wanted, seen });
            }
        }
    }
}

/// A guild text message shaped as Discord's message object (`MessageResponse`, plus the gateway's
/// `guild_id`). Adjust fields before dispatching when a test needs more.
pub fn message_object(channel_id: &str, message_id: &str, author_id: &str, content: &str) -> Value {
    json!({
        "type": 0,
        "id": message_id,
        "channel_id": channel_id,
        "guild_id": "1000000000000000001",
        "author": objects::user(author_id, "provider", false),
        "content": content,
        "timestamp": objects::timestamp_now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": false,
        "flags": 0,
    })
}

/// Panics when a test's message is not one Discord could send: the schema covers the REST object, so the
/// gateway-only fields are set aside first.
fn check_message(event: &str, message: &Value) {
    let mut rest = message.clone();
    if let Some(object) = rest.as_object_mut() {
        object.remove("guild_id");
        object.remove("member");
    }
    if let Err(errors) = Spec::global().validate_schema("MessageResponse", &rest) {
        panic!("the test dispatched a {event} that is not a Discord message: {errors:?}\n{message}");
    }
}

/// Appends a dispatch to the session log and sends it to the live connection when that is in the session.
fn push_dispatch(state: &mut State, session_id: &str, t: &str, d: Value) -> u64 {
    let session = state.sessions.get_mut(session_id).expect("the session exists");
    session.seq += 1;
    let seq = session.seq;
    let frame = json!({"op": DISPATCH, "s": seq, "t": t, "d": d});
    session.log.push((seq, frame.clone()));
    if let Some(live) = &state.live
        && live.session.as_deref() == Some(session_id)
    {
        let _ = live.out.send(Outgoing::Frame(frame));
    }
    seq
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // Without TCP_NODELAY an event sent soon after the last one waits for its delayed ACK (40 ms).
        let _ = stream.set_nodelay(true);
        let task = tokio::spawn(serve(stream, Arc::clone(&shared)));
        shared.lock().tasks.push(task.abort_handle());
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let target = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&target);
    // tungstenite fixes the callback's error type (an HTTP response), large or not.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, response: Response| {
        if let Ok(mut t) = seen.lock() {
            *t = request.uri().to_string();
        }
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
    let query = target.lock().map(|t| t.clone()).unwrap_or_default();
    let (out, mut outgoing) = mpsc::unbounded_channel();
    let connection = {
        let mut state = shared.lock();
        state.connections += 1;
        let connection = state.connections;
        check_query(&mut state, &query);
        state.queries.push(query);
        // The newest connection is the one dispatches go to; an older one still open gets nothing more.
        state.live = Some(Live { connection, session: None, out: out.clone() });
        connection
    };
    shared.bump();
    let hello =
        json!({"op": HELLO, "d": {"heartbeat_interval": shared.settings.heartbeat_interval.as_millis() as u64}});
    if ws.send(WsMessage::text(hello.to_string())).await.is_err() {
        return;
    }
    let mut conn = Connection { connection, shared: Arc::clone(&shared), out, identified: false };
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(text))) => text.to_string(),
                    Some(Ok(WsMessage::Close(frame))) => {
                        shared.lock().client_closes.push(frame.map(|f| u16::from(f.code)));
                        shared.bump();
                        let _ = ws.close(None).await;
                        break;
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        conn.problem("the client sent a binary frame (the fake speaks JSON text only)".into());
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break,
                };
                conn.receive(&text);
            }
            command = outgoing.recv() => match command {
                Some(Outgoing::Frame(frame)) => {
                    if ws.send(WsMessage::text(frame.to_string())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::End(how)) => {
                    match how {
                        // Dropping the stream closes the socket with no close frame.
                        Disconnect::Drop => {}
                        Disconnect::Close(code) => {
                            let frame = CloseFrame { code: CloseCode::from(code), reason: "closed by the fake".into() };
                            let _ = ws.close(Some(frame)).await;
                        }
                        Disconnect::Reconnect => {
                            let frame = json!({"op": RECONNECT, "d": null});
                            let _ = ws.send(WsMessage::text(frame.to_string())).await;
                            // The client closes and reconnects; keep reading until it does.
                            continue;
                        }
                        Disconnect::InvalidSession { resumable } => {
                            let frame = json!({"op": INVALID_SESSION, "d": resumable});
                            let _ = ws.send(WsMessage::text(frame.to_string())).await;
                            continue;
                        }
                    }
                    break;
                }
                None => break,
            },
        }
    }
    let mut state = shared.lock();
    if state.live.as_ref().is_some_and(|l| l.connection == connection) {
        state.live = None;
    }
    drop(state);
    shared.bump();
}

fn check_query(state: &mut State, query: &str) {
    let params: Vec<&str> = query.split_once('?').map_or("", |(_, q)| q).split('&').collect();
    for wanted in ["v=10", "encoding=json"] {
        if !params.contains(&wanted) {
            state.problems.push(format!("connection {query:?} lacks {wanted}"));
        }
    }
    if params.iter().any(|p| p.starts_with("compress=")) {
        state.problems.push(format!("connection {query:?} asks for transport compression, which the fake lacks"));
    }
}

/// One connection's protocol state.
struct Connection {
    connection: u64,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outgoing>,
    identified: bool,
}

impl Connection {
    fn problem(&self, problem: String) {
        self.shared.lock().problems.push(problem);
        self.shared.bump();
    }

    fn send(&self, frame: Value) {
        let _ = self.out.send(Outgoing::Frame(frame));
    }

    fn close(&self, code: u16) {
        let _ = self.out.send(Outgoing::End(Disconnect::Close(code)));
    }

    fn receive(&mut self, text: &str) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            self.problem(format!("a frame that is not JSON: {text:?}"));
            self.close(4002);
            return;
        };
        let Some(op) = frame.get("op").and_then(Value::as_u64) else {
            self.problem(format!("a frame without an opcode: {frame}"));
            self.close(4001);
            return;
        };
        self.shared.lock().frames.push(ClientFrame { connection: self.connection, op, payload: frame.clone() });
        let d = frame.get("d").cloned().unwrap_or(Value::Null);
        match op {
            HEARTBEAT => {
                self.shared.lock().heartbeats += 1;
                self.send(json!({"op": HEARTBEAT_ACK}));
            }
            IDENTIFY => self.identify(&d),
            RESUME => self.resume(&d),
            other => self.problem(format!("unexpected opcode {other}: {frame}")),
        }
        self.shared.bump();
    }

    fn token_ok(&self, token: Option<&str>) -> bool {
        let Some(token) = token else { return false };
        let bare = token.strip_prefix("Bot ").unwrap_or(token);
        match &self.shared.settings.token {
            Some(expected) => bare == expected.strip_prefix("Bot ").unwrap_or(expected),
            None => !bare.trim().is_empty(),
        }
    }

    fn identify(&mut self, d: &Value) {
        if self.identified {
            self.problem("a second IDENTIFY on one connection".into());
            self.close(4005);
            return;
        }
        if !self.token_ok(d.get("token").and_then(Value::as_str)) {
            self.problem("IDENTIFY with a wrong or missing token".into());
            self.close(4004);
            return;
        }
        let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
            self.problem(format!("IDENTIFY without integer intents: {d}"));
            self.close(4013);
            return;
        };
        let properties = d.get("properties");
        for key in ["os", "browser", "device"] {
            if properties.and_then(|p| p.get(key)).and_then(Value::as_str).is_none() {
                self.problem(format!("IDENTIFY properties lack {key}"));
                self.close(4002);
                return;
            }
        }
        if let Some(required) = self.shared.settings.required_intents
            && intents & required != required
        {
            self.problem(format!("IDENTIFY intents {intents} lack {}", required & !intents));
            self.close(4014);
            return;
        }
        self.identified = true;
        let session_id = format!("fake-session-{}", self.shared.snowflakes.next());
        let ready = json!({
            "v": 10,
            "user": objects::user(BOT_USER_ID, "Signalpost", true),
            "guilds": [],
            "session_id": session_id,
            "resume_gateway_url": self.shared.url,
            "shard": [0, 1],
            "application": {"id": self.shared.settings.application_id, "flags": 0},
        });
        let mut state = self.shared.lock();
        state.identifies += 1;
        state.sessions.insert(session_id.clone(), Session { seq: 0, resumable: true, log: Vec::new() });
        state.current = Some(session_id.clone());
        if let Some(live) = state.live.as_mut().filter(|l| l.connection == self.connection) {
            live.session = Some(session_id.clone());
        }
        push_dispatch(&mut state, &session_id, "READY", ready);
    }

    fn resume(&mut self, d: &Value) {
        let session_id = d.get("session_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let seq = d.get("seq").and_then(Value::as_u64);
        if !self.token_ok(d.get("token").and_then(Value::as_str)) {
            self.problem("RESUME with a wrong or missing token".into());
            self.close(4004);
            return;
        }
        let mut state = self.shared.lock();
        let replay = match (state.sessions.get(&session_id), seq) {
            (Some(session), Some(seq)) if session.resumable && seq <= session.seq => Some(
                session
                    .log
                    .iter()
                    .filter(|(s, frame)| *s > seq && frame["t"] != "READY" && frame["t"] != "RESUMED")
                    .map(|(_, frame)| frame.clone())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        };
        let Some(replay) = replay else {
            state.refused_resumes += 1;
            drop(state);
            self.send(json!({"op": INVALID_SESSION, "d": false}));
            return;
        };
        state.resumes += 1;
        // Under the lock: a dispatch made meanwhile comes after the replay, never inside or before it.
        for frame in replay {
            self.send(frame);
        }
        self.identified = true;
        state.current = Some(session_id.clone());
        if let Some(live) = state.live.as_mut().filter(|l| l.connection == self.connection) {
            live.session = Some(session_id.clone());
        }
        push_dispatch(&mut state, &session_id, "RESUMED", Value::Null);
    }
}

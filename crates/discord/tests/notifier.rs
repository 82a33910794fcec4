//! `DiscordNotifier` against a small local stand-in for Discord's REST API (an axum stub in this file): the
//! URLs and bodies it sends, the DM channel cache, and how Discord's answers map to `DeliveryError`:
//! refusals (50007 and friends), server errors, timeouts, and 429s that are waited out or given up on.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use discord::client::MAX_ATTEMPTS;
use discord::render::{self, SignalView};
use discord::{DeliveryError, DeliveryTarget, DiscordNotifier, Notifier, OutgoingMessage};
use domain::{InstrumentRegistry, Price, Side, Timeframe};
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const TOKEN: &str = "MTEwMDAw.stub-secret-token";
const USER: &str = "1100000000000000000";
const DM_CHANNEL: &str = "3000000000000000001";
const GUILD_CHANNEL: &str = "1000000000000000010";

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    authorization: Option<String>,
    body: Value,
    at: Instant,
}

/// An answer the stub gives instead of its normal one.
#[derive(Debug, Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    delay: Duration,
    /// Used for every request from now on rather than once.
    sticky: bool,
}

impl Scripted {
    fn json(status: u16, body: Value) -> Scripted {
        Scripted { status, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO, sticky: false }
    }
}

#[derive(Debug, Default)]
struct Stub {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Scripted>>,
    next_id: AtomicU64,
}

impl Stub {
    fn script(&self, answer: Scripted) {
        self.script.lock().unwrap().push_back(answer);
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn handle(State(stub): State<Arc<Stub>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let parsed = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    stub.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        authorization,
        body: parsed.clone(),
        at: Instant::now(),
    });
    let scripted = {
        let mut script = stub.script.lock().unwrap();
        match script.front() {
            Some(s) if s.sticky => Some(s.clone()),
            _ => script.pop_front(),
        }
    };
    if let Some(s) = scripted {
        tokio::time::sleep(s.delay).await;
        let mut response = (StatusCode::from_u16(s.status).unwrap(), s.body).into_response();
        for (name, value) in s.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        if !response.headers().contains_key("content-type") {
            response.headers_mut().insert("content-type", "application/json".parse().unwrap());
        }
        return response;
    }
    let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let answer = match (method.as_str(), segments.as_slice()) {
        ("POST", ["users", "@me", "channels"]) => json!({
            "id": DM_CHANNEL, "type": 1, "last_message_id": null, "flags": 0,
            "recipients": [{"id": parsed["recipient_id"], "username": "ann", "discriminator": "0", "avatar": null}],
        }),
        ("POST", ["channels", channel, "messages"]) => {
            let id = 1_400_000_000_000_000_000u64 + stub.next_id.fetch_add(1, Ordering::Relaxed);
            json!({"id": id.to_string(), "channel_id": channel, "type": 0, "content": "",
                   "embeds": parsed["embeds"], "components": parsed["components"]})
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            json!({"id": message, "channel_id": channel, "type": 0, "content": "", "embeds": parsed["embeds"]})
        }
        ("PUT", ["applications", _, "commands"]) => parsed.clone(),
        _ => {
            return (StatusCode::NOT_FOUND, json!({"message": "404: Not Found", "code": 0}).to_string())
                .into_response();
        }
    };
    axum::Json(answer).into_response()
}

async fn start() -> (Arc<Stub>, String) {
    let stub = Arc::new(Stub::default());
    let app = axum::Router::new().fallback(handle).with_state(Arc::clone(&stub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stub, base)
}

fn message() -> OutgoingMessage {
    render::signal_message(&SignalView {
        notification_id: 42,
        title: render::ENGINE_TITLE.into(),
        instrument: InstrumentRegistry::global().get("EURUSD").unwrap().clone(),
        timeframe: Some(Timeframe::H1),
        side: Side::Long,
        entry: Price::parse("1.0854").unwrap(),
        stop_loss: Price::parse("1.08").unwrap(),
        take_profit: Price::parse("1.0962").unwrap(),
        confidence: Some(dec!(0.78)),
        model_version: Some("v1".into()),
    })
}

fn dm() -> DeliveryTarget {
    DeliveryTarget::Dm { discord_user_id: USER.into() }
}

fn channel() -> DeliveryTarget {
    DeliveryTarget::Channel { channel_id: GUILD_CHANNEL.into() }
}

fn assert_message_body(body: &Value) {
    let expected = message();
    assert_eq!(body["embeds"], serde_json::to_value(&expected.embeds).unwrap());
    assert_eq!(body["components"], serde_json::to_value(&expected.components).unwrap());
    assert_eq!(body["components"][0]["components"][0]["custom_id"], "open:42");
}

#[tokio::test]
async fn dm_opens_the_channel_once_then_sends_to_it() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap();

    let sent = notifier.send(&dm(), &message()).await.unwrap();
    assert_eq!(sent.channel_id, DM_CHANNEL);
    let again = notifier.send(&dm(), &message()).await.unwrap();
    assert_ne!(again.message_id, sent.message_id);

    let requests = stub.requests();
    let calls: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("POST", "/api/v10/users/@me/channels"),
            ("POST", "/api/v10/channels/3000000000000000001/messages"),
            ("POST", "/api/v10/channels/3000000000000000001/messages"),
        ]
    );
    assert_eq!(requests[0].body, json!({"recipient_id": USER}));
    assert_message_body(&requests[1].body);
    let authorization = format!("Bot {TOKEN}");
    assert!(requests.iter().all(|r| r.authorization.as_deref() == Some(authorization.as_str())));
}

#[tokio::test]
async fn channel_messages_go_straight_to_the_channel() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(format!("{base}/api/v10/"))).unwrap();
    let sent = notifier.send(&channel(), &message()).await.unwrap();
    assert_eq!(sent.channel_id, GUILD_CHANNEL);
    assert!(sent.message_id.starts_with("14"), "{sent:?}");
    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/api/v10/channels/1000000000000000010/messages");
    assert_message_body(&requests[0].body);
}

#[tokio::test]
async fn refusals_are_permanent_with_discords_code() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap();
    let cases = [
        (403, 50007, "Cannot send messages to this user"),
        (403, 50001, "Missing Access"),
        (403, 50013, "Missing Permissions"),
        (404, 10003, "Unknown Channel"),
        (404, 10013, "Unknown User"),
        (400, 50035, "Invalid Form Body"),
    ];
    for (status, code, text) in cases {
        stub.script(Scripted::json(status, json!({"code": code, "message": text})));
        let err = notifier.send(&channel(), &message()).await.unwrap_err();
        assert_eq!(err, DeliveryError::Refused { code, message: text.into() });
        assert!(err.is_permanent());
    }
    // A refused DM channel is refused just the same, and nothing is cached for the user.
    stub.script(Scripted::json(400, json!({"code": 50007, "message": "Cannot send messages to this user"})));
    let err = notifier.send(&dm(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Refused { code: 50007, .. }), "{err}");
    notifier.send(&dm(), &message()).await.unwrap();
    assert_eq!(stub.requests().iter().filter(|r| r.path.ends_with("/users/@me/channels")).count(), 2);
    // Ids that are not snowflakes never leave.
    let before = stub.requests().len();
    let err = notifier.send(&DeliveryTarget::Dm { discord_user_id: "ann".into() }, &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Refused { code: 0, .. }), "{err}");
    assert_eq!(stub.requests().len(), before);
}

#[tokio::test]
async fn a_forgotten_dm_channel_is_opened_again() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap();
    notifier.send(&dm(), &message()).await.unwrap();
    stub.script(Scripted::json(404, json!({"code": 10003, "message": "Unknown Channel"})));
    notifier.send(&dm(), &message()).await.unwrap();
    let paths: Vec<String> = stub.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.iter().filter(|p| p.ends_with("/users/@me/channels")).count(), 2, "{paths:?}");
}

#[tokio::test]
async fn server_errors_timeouts_and_dead_hosts_are_transient() {
    let (stub, base) = start().await;
    let notifier =
        DiscordNotifier::with_timeouts(TOKEN.into(), Some(base), Duration::from_millis(300), Duration::from_secs(10))
            .unwrap();
    stub.script(Scripted::json(500, json!({"code": 0, "message": "500: Internal Server Error"})));
    let err = notifier.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");

    stub.script(Scripted {
        status: 502,
        headers: vec![("content-type", "text/html")],
        body: "<html>Bad Gateway</html>".into(),
        delay: Duration::ZERO,
        sticky: false,
    });
    let err = notifier.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");

    let slow = Scripted { delay: Duration::from_secs(2), ..Scripted::json(200, json!({"id": "1"})) };
    stub.script(slow);
    let err = notifier.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");

    // Nothing listens on port 9 of the loopback.
    let dead = DiscordNotifier::new(TOKEN.into(), Some("http://127.0.0.1:9".into())).unwrap();
    let err = dead.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");
    assert!(!err.to_string().contains("stub-secret-token"), "{err}");
}

#[tokio::test]
async fn a_bad_token_is_transient_and_never_shown() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap();
    stub.script(Scripted::json(401, json!({"code": 0, "message": "401: Unauthorized"})));
    let err = notifier.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("DISCORD_TOKEN") && !err.to_string().contains("stub-secret-token"), "{err}");
    assert!(!format!("{notifier:?}").contains("stub-secret-token"));
}

/// A 429 with Discord's bucket headers: twilight waits for the reset, then the message goes through.
#[tokio::test]
async fn a_rate_limit_is_waited_out_not_hammered() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap();
    stub.script(Scripted {
        status: 429,
        headers: vec![
            ("x-ratelimit-scope", "user"),
            ("x-ratelimit-bucket", "abcd1234"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "0.6"),
            ("retry-after", "1"),
        ],
        body: json!({"message": "You are being rate limited.", "retry_after": 0.6, "global": false}).to_string(),
        delay: Duration::ZERO,
        sticky: false,
    });
    let sent = notifier.send(&channel(), &message()).await.unwrap();
    assert!(!sent.message_id.is_empty());
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "one 429, one retry: {requests:?}");
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_millis(500), "retried after {waited:?}");
    assert_message_body(&requests[1].body);
}

/// A 429 without bucket headers (global or from a proxy) that never ends: twilight would retry at once and
/// for ever; the notifier pauses between tries, stops after `MAX_ATTEMPTS` and reports it as transient.
#[tokio::test]
async fn an_endless_rate_limit_is_given_up_after_a_few_tries() {
    let (stub, base) = start().await;
    let pause = Duration::from_millis(100);
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap().with_rate_limit_pause(pause);
    stub.script(Scripted {
        sticky: true,
        ..Scripted::json(429, json!({"message": "You are being rate limited.", "retry_after": 0.05, "global": true}))
    });
    let err = notifier.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("429"), "{err}");
    let requests = stub.requests();
    assert_eq!(requests.len() as u32, MAX_ATTEMPTS);
    // 100 ms, then 200 ms, then 400 ms between tries.
    for (i, pair) in requests.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= pause * 2u32.pow(i as u32) - Duration::from_millis(10), "try {}: {gap:?}", i + 2);
    }
    // Other sends wait out the pause too instead of meeting the same limit at once.
    stub.script.lock().unwrap().clear();
    let started = Instant::now();
    notifier.send(&channel(), &message()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_send_stuck_behind_limits_ends_at_the_deadline() {
    let (stub, base) = start().await;
    let notifier =
        DiscordNotifier::with_timeouts(TOKEN.into(), Some(base), Duration::from_secs(10), Duration::from_millis(500))
            .unwrap();
    stub.script(Scripted { delay: Duration::from_secs(3), ..Scripted::json(200, json!({"id": "1"})) });
    let started = Instant::now();
    let err = notifier.send(&channel(), &message()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn edits_and_command_registration_hit_the_right_routes() {
    let (stub, base) = start().await;
    let notifier = DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap();
    let view_message = message();
    let ignored = OutgoingMessage {
        embeds: view_message.embeds.clone(),
        components: render::disable_buttons(&view_message.components),
    };
    notifier.edit_message(GUILD_CHANNEL, "1400000000000000000", &ignored).await.unwrap();
    let commands = discord::commands::slash_commands();
    notifier.register_commands("1200000000000000000", &commands).await.unwrap();

    let requests = stub.requests();
    assert_eq!(requests[0].method, Method::PATCH);
    assert_eq!(requests[0].path, "/api/v10/channels/1000000000000000010/messages/1400000000000000000");
    assert_eq!(requests[0].body["components"][0]["components"][2]["disabled"], true);
    assert_eq!(requests[1].method, Method::PUT);
    assert_eq!(requests[1].path, "/api/v10/applications/1200000000000000000/commands");
    let names: Vec<&str> = requests[1].body.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["link", "settings", "trades", "history", "stats", "stop"]);

    let err = notifier.edit_message("x", "1", &ignored).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Refused { code: 0, .. }), "{err}");
}

#[tokio::test]
async fn parallel_sends_all_arrive() {
    let (stub, base) = start().await;
    let notifier = Arc::new(DiscordNotifier::new(TOKEN.into(), Some(base)).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let notifier = Arc::clone(&notifier);
        tasks.spawn(async move { notifier.send(&dm(), &message()).await });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(result) = tasks.join_next().await {
        ids.insert(result.unwrap().unwrap().message_id);
    }
    assert_eq!(ids.len(), 20);
    let posted = stub.requests().iter().filter(|r| r.path.ends_with("/messages")).count();
    assert_eq!(posted, 20);
}

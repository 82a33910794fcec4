//! The fake gateway's protocol, driven by a raw WebSocket client: HELLO → IDENTIFY → READY, heartbeat ACKs,
//! numbered dispatches, RESUME replaying what the client missed, and INVALID_SESSION for a bad resume.

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::discord::gateway::{Disconnect, FakeGateway, message_object};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);
const CHANNEL: &str = "1000000000000000010";
const AUTHOR: &str = "1000000000000000030";

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("{url}/?v=10&encoding=json")).await.expect("the fake accepts").0
}

/// The next JSON frame, or `Err(close code)` when the server closed.
async fn next(ws: &mut Ws) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame within 5 s") {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

fn identify(token: &str) -> Value {
    json!({"op": 2, "d": {
        "token": token, "intents": 37376,
        "properties": {"os": "linux", "browser": "test", "device": "test"},
    }})
}

/// Connects, identifies and returns the socket with READY's data.
async fn ready(gateway: &FakeGateway) -> (Ws, Value) {
    let mut ws = connect(&gateway.url()).await;
    let hello = next(&mut ws).await.unwrap();
    assert_eq!(hello["op"], 10);
    send(&mut ws, identify("Bot test-bot-token")).await;
    let ready = next(&mut ws).await.unwrap();
    assert_eq!((ready["op"].as_u64(), ready["t"].as_str(), ready["s"].as_u64()), (Some(0), Some("READY"), Some(1)));
    (ws, ready["d"].clone())
}

#[tokio::test]
async fn hello_identify_ready_and_heartbeats_are_acknowledged() {
    let gateway = FakeGateway::builder().heartbeat_interval(Duration::from_millis(250)).start().await;
    let mut ws = connect(&gateway.url()).await;
    let hello = next(&mut ws).await.unwrap();
    assert_eq!(hello, json!({"op": 10, "d": {"heartbeat_interval": 250}}));
    send(&mut ws, identify("Bot test-bot-token")).await;
    let ready = next(&mut ws).await.unwrap();
    assert_eq!(ready["t"], "READY");
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["resume_gateway_url"], gateway.url());
    assert_eq!(d["application"]["id"], testkit::discord::DEFAULT_APPLICATION_ID);
    assert_eq!(d["user"]["bot"], true);
    assert!(d["guilds"].is_array());
    assert_eq!(d["session_id"].as_str(), gateway.session_id().as_deref());

    send(&mut ws, json!({"op": 1, "d": 1})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"op": 11}));
    send(&mut ws, json!({"op": 1, "d": 1})).await;
    assert_eq!(next(&mut ws).await.unwrap()["op"], 11);
    gateway.wait_for_heartbeats(2, WAIT).await.unwrap();

    assert_eq!(gateway.identify_count(), 1);
    assert_eq!(gateway.connection_count(), 1);
    assert_eq!(gateway.connection_queries(), vec!["/?v=10&encoding=json".to_string()]);
    let ops: Vec<u64> = gateway.frames().iter().map(|f| f.op).collect();
    assert_eq!(ops, vec![2, 1, 1]);
    assert!(gateway.problems().is_empty(), "{:?}", gateway.problems());
}

#[tokio::test]
async fn dispatches_are_numbered_in_order_and_shaped_like_discord() {
    let gateway = FakeGateway::start().await;
    let (mut ws, _) = ready(&gateway).await;
    assert_eq!(gateway.message_create(CHANNEL, "1000000000000000100", AUTHOR, "BUY EURUSD @ 1.0850"), 2);
    let mut edited = message_object(CHANNEL, "1000000000000000100", AUTHOR, "BUY EURUSD @ 1.0860");
    edited["edited_timestamp"] = json!("2026-01-01T00:00:00.000000+00:00");
    assert_eq!(gateway.dispatch_message_update(edited), 3);
    assert_eq!(gateway.dispatch_message_delete(CHANNEL, "1000000000000000100", Some("1000000000000000001")), 4);
    let interaction = json!({"id": "1300000000000000001", "application_id": "1", "type": 3, "token": "tok"});
    assert_eq!(gateway.dispatch_interaction(interaction.clone()), 5);

    let frames = [next(&mut ws).await.unwrap(), next(&mut ws).await.unwrap(), next(&mut ws).await.unwrap()];
    let kinds: Vec<(&str, u64)> = frames.iter().map(|f| (f["t"].as_str().unwrap(), f["s"].as_u64().unwrap())).collect();
    assert_eq!(kinds, vec![("MESSAGE_CREATE", 2), ("MESSAGE_UPDATE", 3), ("MESSAGE_DELETE", 4)]);
    assert_eq!(frames[0]["d"]["content"], "BUY EURUSD @ 1.0850");
    assert_eq!(frames[0]["d"]["author"]["id"], AUTHOR);
    assert_eq!(
        frames[2]["d"],
        json!({"id": "1000000000000000100", "channel_id": CHANNEL, "guild_id": "1000000000000000001"})
    );
    let last = next(&mut ws).await.unwrap();
    assert_eq!((last["t"].as_str(), last["s"].as_u64()), (Some("INTERACTION_CREATE"), Some(5)));
    assert_eq!(last["d"], interaction);
}

#[test]
#[should_panic(expected = "not a Discord message")]
fn a_message_discord_could_not_send_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let gateway = FakeGateway::start().await;
        let (_ws, _) = ready(&gateway).await;
        let mut message = message_object(CHANNEL, "1000000000000000100", AUTHOR, "x");
        message["content"] = json!(42);
        gateway.dispatch_message_create(message);
    });
}

#[tokio::test]
async fn resume_replays_the_dispatches_missed_during_a_drop_then_goes_live() {
    let gateway = FakeGateway::start().await;
    let (mut ws, ready_data) = ready(&gateway).await;
    gateway.message_create(CHANNEL, "1000000000000000100", AUTHOR, "seen");
    let seen = next(&mut ws).await.unwrap();
    assert_eq!(seen["s"], 2);

    assert!(gateway.disconnect(Disconnect::Drop));
    assert_eq!(next(&mut ws).await, Err(None), "the TCP connection drops without a close frame");
    // Made while the client is away: kept in the session for the resume.
    gateway.message_create(CHANNEL, "1000000000000000101", AUTHOR, "missed 1");
    gateway.message_create(CHANNEL, "1000000000000000102", AUTHOR, "missed 2");

    let mut ws = connect(ready_data["resume_gateway_url"].as_str().unwrap()).await;
    assert_eq!(next(&mut ws).await.unwrap()["op"], 10);
    let session_id = ready_data["session_id"].as_str().unwrap();
    send(&mut ws, json!({"op": 6, "d": {"token": "Bot test-bot-token", "session_id": session_id, "seq": 2}})).await;
    let replayed = [next(&mut ws).await.unwrap(), next(&mut ws).await.unwrap()];
    assert_eq!(replayed[0]["s"], 3);
    assert_eq!(replayed[0]["d"]["content"], "missed 1");
    assert_eq!(replayed[1]["s"], 4);
    let resumed = next(&mut ws).await.unwrap();
    assert_eq!((resumed["t"].as_str(), resumed["s"].as_u64()), (Some("RESUMED"), Some(5)));
    gateway.wait_for_resume(1, WAIT).await.unwrap();

    // After the resume, dispatches go out live again, numbered on.
    assert_eq!(gateway.message_create(CHANNEL, "1000000000000000103", AUTHOR, "live"), 6);
    let live = next(&mut ws).await.unwrap();
    assert_eq!((live["s"].as_u64(), live["d"]["content"].as_str()), (Some(6), Some("live")));
    assert_eq!(gateway.identify_count(), 1, "a resume is not a new session");
    assert_eq!(gateway.connection_count(), 2);
    assert!(gateway.problems().is_empty(), "{:?}", gateway.problems());
}

#[tokio::test]
async fn a_bad_resume_gets_invalid_session_and_a_scripted_close_carries_its_code() {
    let gateway = FakeGateway::start().await;
    let (mut ws, ready_data) = ready(&gateway).await;
    assert!(gateway.disconnect(Disconnect::Close(4000)));
    assert_eq!(next(&mut ws).await, Err(Some(4000)));

    // An unknown session.
    let mut ws = connect(&gateway.url()).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, json!({"op": 6, "d": {"token": "Bot test-bot-token", "session_id": "nope", "seq": 1}})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"op": 9, "d": false}));
    gateway.wait_for_refused_resume(1, WAIT).await.unwrap();

    // A known session the fake was told to invalidate.
    gateway.invalidate_session();
    let session_id = ready_data["session_id"].as_str().unwrap();
    send(&mut ws, json!({"op": 6, "d": {"token": "Bot test-bot-token", "session_id": session_id, "seq": 1}})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"op": 9, "d": false}));
    assert_eq!((gateway.resume_count(), gateway.refused_resume_count()), (0, 2));

    // The client may then identify afresh on the same connection.
    send(&mut ws, identify("test-bot-token")).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "READY");
    assert_eq!(gateway.identify_count(), 2);
    assert_ne!(gateway.session_id().as_deref(), Some(session_id));
}

#[tokio::test]
async fn a_wrong_token_or_missing_intents_or_compression_is_a_problem() {
    let gateway = FakeGateway::builder().token("right-token").required_intents(1 << 15).start().await;
    let mut ws = connect(&gateway.url()).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, identify("Bot wrong-token")).await;
    assert_eq!(next(&mut ws).await, Err(Some(4004)));

    let mut ws = connect(&gateway.url()).await;
    next(&mut ws).await.unwrap();
    send(&mut ws, json!({"op": 2, "d": {"token": "right-token", "intents": 512, "properties": {"os": "x", "browser": "y", "device": "z"}}})).await;
    assert_eq!(next(&mut ws).await, Err(Some(4014)));

    let mut ws =
        tokio_tungstenite::connect_async(format!("{}/?v=10&encoding=json&compress=zlib-stream", gateway.url()))
            .await
            .unwrap()
            .0;
    next(&mut ws).await.unwrap();
    send(&mut ws, identify("Bot right-token")).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "READY", "intents 37376 include MESSAGE_CONTENT");

    let problems = gateway.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("token") && problems[1].contains("intents") && problems[2].contains("compression"));
    assert_eq!(gateway.identify_count(), 1);
}

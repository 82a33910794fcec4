//! The fake Discord REST API exercised with plain reqwest: what it answers must be what Discord answers
//! (statuses, error bodies, rate-limit headers, objects that validate against the OpenAPI spec and that
//! twilight-model reads), and what it records must be what was sent.

use reqwest::{Client, Method, Response};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::discord::openapi::Spec;
use testkit::discord::{FakeDiscord, Limit, Route, RouteMatcher, ScriptedResponse};

const TOKEN: &str = "Bot test-token";
const WAIT: Duration = Duration::from_secs(5);

async fn call(fake: &FakeDiscord, method: Method, path: &str, auth: Option<&str>, body: &Value) -> Response {
    let mut request = Client::new().request(method, format!("{}{path}", fake.api_url())).json(body);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    request.send().await.expect("the fake answers")
}

async fn json_of(response: Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("missing header {name}"))
}

fn signal(id: u32) -> Value {
    json!({
        "embeds": [{"title": "REVERSAL SIGNAL DETECTED", "color": 3066993, "fields": [
            {"name": "Pair", "value": "EURUSD", "inline": true},
            {"name": "Signal", "value": "LONG", "inline": true}
        ]}],
        "components": [{"type": 1, "components": [
            {"type": 2, "style": 3, "label": "Open Trade", "custom_id": format!("open:{id}")},
            {"type": 2, "style": 2, "label": "Ignore", "custom_id": format!("ignore:{id}")},
            {"type": 2, "style": 1, "label": "Details", "custom_id": format!("details:{id}")}
        ]}]
    })
}

async fn open_dm(fake: &FakeDiscord, user: &str) -> String {
    let (status, _, channel) =
        json_of(call(fake, Method::POST, "/users/@me/channels", Some(TOKEN), &json!({"recipient_id": user})).await)
            .await;
    assert_eq!(status, 200, "{channel}");
    channel["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn dm_and_message_speak_discords_wire_format() {
    let fake = FakeDiscord::start().await;
    assert!(fake.base_url().starts_with("http://127.0.0.1:"));
    let (status, _, channel) = json_of(
        call(&fake, Method::POST, "/users/@me/channels", Some(TOKEN), &json!({"recipient_id": "200000000000000001"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(channel["type"], 1);
    assert_eq!(channel["recipients"][0]["id"], "200000000000000001");
    Spec::global().validate_response("POST", "/users/@me/channels", 200, &channel).unwrap();
    let twilight_channel: twilight_model::channel::Channel = serde_json::from_value(channel.clone()).unwrap();
    assert_eq!(twilight_channel.kind, twilight_model::channel::ChannelType::Private);
    // The same recipient gets the same channel.
    assert_eq!(open_dm(&fake, "200000000000000001").await, channel["id"].as_str().unwrap());

    let channel_id = channel["id"].as_str().unwrap();
    let path = format!("/channels/{channel_id}/messages");
    let (status, _, message) = json_of(call(&fake, Method::POST, &path, Some(TOKEN), &signal(1)).await).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["channel_id"], channel_id);
    assert_eq!(message["author"]["id"], fake.bot_user_id());
    assert_eq!(message["embeds"][0]["fields"][1]["value"], "LONG");
    assert_eq!(message["components"][0]["components"][0]["custom_id"], "open:1");
    Spec::global().validate_response("POST", &path, 200, &message).unwrap();
    let twilight_message: twilight_model::channel::Message = serde_json::from_value(message.clone()).unwrap();
    assert_eq!(twilight_message.embeds[0].fields.len(), 2);
    assert_eq!(twilight_message.components.len(), 1);

    let sent = fake.messages_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient_id.as_deref(), Some("200000000000000001"));
    assert_eq!(sent[0].body, signal(1));
    assert_eq!(sent[0].message_id, message["id"].as_str().unwrap());

    // Editing keeps the id, replaces the components and sets edited_timestamp.
    let edit_path = format!("{path}/{}", sent[0].message_id);
    let (status, _, edited) =
        json_of(call(&fake, Method::PATCH, &edit_path, Some(TOKEN), &json!({"components": []})).await).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["id"], message["id"]);
    assert_eq!(edited["components"], json!([]));
    assert!(edited["edited_timestamp"].is_string());
    Spec::global().validate_response("PATCH", &edit_path, 200, &edited).unwrap();
    let _: twilight_model::channel::Message = serde_json::from_value(edited).unwrap();
    assert!(fake.invalid_bodies().is_empty());
    assert_eq!(fake.rate_limited_count(), 0);
}

#[tokio::test]
async fn bot_token_is_required() {
    let fake = FakeDiscord::builder().token("test-token").channel("300").start().await;
    for auth in [None, Some("test-token"), Some("Bearer test-token"), Some("Bot other-token"), Some("Bot ")] {
        let (status, headers, body) =
            json_of(call(&fake, Method::POST, "/channels/300/messages", auth, &json!({"content": "hi"})).await).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body, json!({"message": "401: Unauthorized", "code": 0}));
        header(&headers, "x-ratelimit-limit");
        Spec::global().validate_response("POST", "/channels/300/messages", 401, &body).unwrap();
    }
    let response = call(&fake, Method::POST, "/channels/300/messages", Some(TOKEN), &json!({"content": "hi"})).await;
    assert_eq!(response.status(), 200);
    assert!(fake.messages_sent().len() == 1 && fake.requests().len() == 6);
}

#[tokio::test]
async fn rate_limit_headers_count_down_then_429() {
    let fake = FakeDiscord::start().await;
    let channel = open_dm(&fake, "200000000000000002").await;
    let path = format!("/channels/{channel}/messages");
    let mut bucket = None;
    for (i, expected_remaining) in [4, 3, 2, 1, 0].into_iter().enumerate() {
        let (status, headers, _) =
            json_of(call(&fake, Method::POST, &path, Some(TOKEN), &json!({"content": format!("m{i}")})).await).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-ratelimit-limit"), "5");
        assert_eq!(header(&headers, "x-ratelimit-remaining"), expected_remaining.to_string());
        assert_eq!(header(&headers, "x-ratelimit-scope"), "user");
        let reset_after: f64 = header(&headers, "x-ratelimit-reset-after").parse().unwrap();
        assert!(reset_after > 0.0 && reset_after <= 5.0, "{reset_after}");
        let reset: f64 = header(&headers, "x-ratelimit-reset").parse().unwrap();
        assert!(reset > 1.7e9, "{reset}");
        let this_bucket = header(&headers, "x-ratelimit-bucket").to_string();
        assert_eq!(bucket.get_or_insert_with(|| this_bucket.clone()), &this_bucket);
    }

    let (status, headers, body) =
        json_of(call(&fake, Method::POST, &path, Some(TOKEN), &json!({"content": "one too many"})).await).await;
    assert_eq!(status, 429);
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["global"], false);
    let retry_after = body["retry_after"].as_f64().expect("retry_after is a number of seconds");
    assert!(retry_after > 0.0 && retry_after <= 5.0, "{retry_after}");
    let header_retry: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=5).contains(&header_retry));
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
    assert!(headers.get("x-ratelimit-global").is_none());
    Spec::global().validate_response("POST", &path, 429, &body).unwrap();
    assert_eq!(fake.rate_limited_count(), 1);
    assert_eq!(fake.messages_sent().len(), 5);

    // Buckets are per channel: another DM is not limited.
    let other = open_dm(&fake, "200000000000000003").await;
    let response =
        call(&fake, Method::POST, &format!("/channels/{other}/messages"), Some(TOKEN), &json!({"content": "x"})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn global_limit_spans_routes_but_not_interactions() {
    let fake = FakeDiscord::builder().global_limit(3).channel("1").channel("2").channel("3").channel("4").start().await;
    for channel in 1..=3 {
        let path = format!("/channels/{channel}/messages");
        assert_eq!(call(&fake, Method::POST, &path, Some(TOKEN), &json!({"content": "x"})).await.status(), 200);
    }
    let (status, headers, body) =
        json_of(call(&fake, Method::POST, "/channels/4/messages", Some(TOKEN), &json!({"content": "x"})).await).await;
    assert_eq!(status, 429);
    assert_eq!(body["global"], true);
    assert_eq!(header(&headers, "x-ratelimit-global"), "true");
    assert_eq!(fake.rate_limited_count(), 1);
    // Interaction responses are not bound to the global limit.
    let response = call(&fake, Method::POST, "/interactions/9/tok/callback", None, &json!({"type": 6})).await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn scripted_50007_500_and_custom_answers_are_used_once() {
    let fake = FakeDiscord::builder().channel("300").start().await;
    fake.script_next(Route::CreateMessage, ScriptedResponse::Discord50007);
    fake.script_next(RouteMatcher::path(Method::POST, "/channels/*/messages"), ScriptedResponse::ServerError500);
    fake.script_next(
        RouteMatcher::Any,
        ScriptedResponse::Json { status: 418, body: json!({"message": "teapot", "code": 0}) },
    );
    let path = "/channels/300/messages";
    let (status, _, body) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "a"})).await).await;
    assert_eq!((status, body), (403, json!({"message": "Cannot send messages to this user", "code": 50007})));
    let (status, _, body) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "b"})).await).await;
    assert_eq!((status, body["message"].as_str()), (500, Some("500: Internal Server Error")));
    let (status, _, _) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "c"})).await).await;
    assert_eq!(status, 418);
    let (status, _, _) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "d"})).await).await;
    assert_eq!(status, 200);
    assert_eq!(fake.messages_sent().len(), 1);
    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(403), Some(500), Some(418), Some(200)]);
}

#[tokio::test]
async fn refused_dms_answer_50007_every_time() {
    let fake = FakeDiscord::start().await;
    fake.refuse_dms("200000000000000009");
    let channel = open_dm(&fake, "200000000000000009").await;
    for _ in 0..2 {
        let (status, _, body) =
            json_of(call(&fake, Method::POST, &format!("/channels/{channel}/messages"), Some(TOKEN), &signal(9)).await)
                .await;
        assert_eq!((status, body["code"].as_u64()), (403, Some(50007)));
    }
    assert!(fake.messages_sent().is_empty());
}

#[tokio::test]
async fn scripted_disconnect_drops_the_connection() {
    let fake = FakeDiscord::builder().channel("300").start().await;
    fake.script_next(Route::CreateMessage, ScriptedResponse::Disconnect);
    let error = Client::new()
        .post(format!("{}/channels/300/messages", fake.api_url()))
        .header("Authorization", TOKEN)
        .json(&json!({"content": "lost"}))
        .send()
        .await
        .expect_err("no response to a dropped connection");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    let requests = fake.wait_for_requests(1, WAIT).await.unwrap();
    assert_eq!(requests[0].status, None);
    assert_eq!(requests[0].body, Some(json!({"content": "lost"})));
    // The server keeps serving afterwards.
    let response = call(&fake, Method::POST, "/channels/300/messages", Some(TOKEN), &json!({"content": "again"})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn scripted_429_binds_the_bucket_like_a_real_one() {
    let fake = FakeDiscord::builder().channel("300").start().await;
    fake.script_next(Route::CreateMessage, ScriptedResponse::Status429 { retry_after: Duration::from_millis(300) });
    let path = "/channels/300/messages";
    let (status, headers, body) =
        json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "a"})).await).await;
    assert_eq!(status, 429);
    assert_eq!(body["retry_after"], 0.3);
    assert_eq!(header(&headers, "retry-after"), "1");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
    // A client that does not wait meets a real 429, which counts against it.
    let (status, _, _) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "b"})).await).await;
    assert_eq!(status, 429);
    assert_eq!((fake.scripted_rate_limited_count(), fake.rate_limited_count()), (1, 1));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, _, _) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "c"})).await).await;
    assert_eq!(status, 200);

    fake.script_next(Route::CreateMessage, ScriptedResponse::Global429 { retry_after: Duration::from_secs(2) });
    let (status, headers, body) =
        json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": "d"})).await).await;
    assert_eq!((status, body["global"].as_bool()), (429, Some(true)));
    assert_eq!(header(&headers, "x-ratelimit-global"), "true");
}

#[tokio::test]
async fn invalid_bodies_are_refused_and_recorded() {
    let fake = FakeDiscord::builder().channel("300").start().await;
    let path = "/channels/300/messages";
    let mut body = signal(1);
    body["embeds"][0]["fields"][0].as_object_mut().unwrap().remove("name");
    body["components"][0]["components"][2].as_object_mut().unwrap().remove("custom_id");
    let (status, _, answer) = json_of(call(&fake, Method::POST, path, Some(TOKEN), &body).await).await;
    assert_eq!(status, 400);
    assert_eq!(answer["code"], 50035);
    assert_eq!(answer["message"], "Invalid Form Body");
    assert_eq!(answer["errors"]["embeds"]["0"]["fields"]["0"]["name"]["_errors"][0]["code"], "BASE_TYPE_REQUIRED");
    assert!(answer["errors"]["components"]["0"]["components"]["2"]["custom_id"]["_errors"].is_array(), "{answer}");
    Spec::global().validate_response("POST", path, 400, &answer).unwrap();

    let invalid = fake.invalid_bodies();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0].operation_id, "create_message");
    assert_eq!(invalid[0].body.as_ref(), Some(&body));
    assert!(invalid[0].errors.iter().any(|e| e.starts_with("/embeds/0/fields/0/name: ")), "{:?}", invalid[0].errors);
    assert!(fake.messages_sent().is_empty());

    let (status, _, answer) =
        json_of(call(&fake, Method::POST, path, Some(TOKEN), &json!({"content": ""})).await).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(50006)));
    let response = Client::new()
        .post(format!("{}{path}", fake.api_url()))
        .header("Authorization", TOKEN)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, _, answer) = json_of(response).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(50109)));
    let (status, _, _) = json_of(
        call(&fake, Method::PUT, "/applications/1100000000000000001/commands", Some(TOKEN), &json!([{"name": ""}]))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(fake.invalid_bodies().len(), 4);
}

#[tokio::test]
async fn unknown_channels_messages_and_routes() {
    let fake = FakeDiscord::start().await;
    // Posting to a user id instead of the DM channel id is the classic mistake Discord answers with 10003.
    let (status, _, body) =
        json_of(call(&fake, Method::POST, "/channels/200000000000000001/messages", Some(TOKEN), &signal(1)).await)
            .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(10003)));
    let (status, _, body) =
        json_of(call(&fake, Method::PATCH, "/channels/1/messages/2", Some(TOKEN), &json!({"content": "x"})).await)
            .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(10008)));
    let (status, _, body) = json_of(call(&fake, Method::GET, "/gateway/bot", Some(TOKEN), &Value::Null).await).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("404: Not Found")));
    let (status, _, _) =
        json_of(call(&fake, Method::DELETE, "/channels/1/messages", Some(TOKEN), &Value::Null).await).await;
    assert_eq!(status, 405);
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn interaction_callback_followup_and_original() {
    let fake = FakeDiscord::start().await;
    let app = fake.application_id().to_string();
    let modal = json!({"type": 9, "data": {"custom_id": "trade:1", "title": "Open trade", "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "entry", "label": "Entry", "style": 1}]}
    ]}});
    let response = call(&fake, Method::POST, "/interactions/500/tok-a/callback", None, &modal).await;
    assert_eq!(response.status(), 204);
    assert!(response.headers().get("x-ratelimit-bucket").is_some());
    // An interaction is answered once.
    let (status, _, body) =
        json_of(call(&fake, Method::POST, "/interactions/500/tok-a/callback", None, &json!({"type": 1})).await).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(40060)));
    let callbacks = fake.wait_for_interaction_callbacks(1, WAIT).await.unwrap();
    assert_eq!((callbacks[0].interaction_id.as_str(), callbacks[0].token.as_str()), ("500", "tok-a"));
    assert_eq!(callbacks[0].body, modal);

    let message = json!({"type": 4, "data": {"content": "Trade opened", "flags": 64}});
    assert_eq!(call(&fake, Method::POST, "/interactions/501/tok-b/callback", None, &message).await.status(), 204);
    let original_path = format!("/webhooks/{app}/tok-b/messages/@original");
    let (status, _, original) =
        json_of(call(&fake, Method::PATCH, &original_path, None, &json!({"content": "Trade #7 opened"})).await).await;
    assert_eq!(status, 200, "{original}");
    assert_eq!(original["content"], "Trade #7 opened");
    assert_eq!(original["flags"], 64);
    Spec::global().validate_response("PATCH", &original_path, 200, &original).unwrap();
    let _: twilight_model::channel::Message = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(fake.original_response("tok-b").unwrap()["content"], "Trade #7 opened");

    let followup_path = format!("/webhooks/{app}/tok-b");
    let (status, _, followup) = json_of(
        call(
            &fake,
            Method::POST,
            &followup_path,
            None,
            &json!({"content": "Details", "embeds": [{"title": "EURUSD"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{followup}");
    assert_eq!(followup["webhook_id"], app.as_str());
    assert_eq!(followup["embeds"][0]["type"], "rich");
    Spec::global().validate_response("POST", &followup_path, 200, &followup).unwrap();
    let _: twilight_model::channel::Message = serde_json::from_value(followup).unwrap();
    assert_eq!(fake.followups().len(), 1);

    // No original before the interaction was answered.
    let (status, _, _) = json_of(
        call(
            &fake,
            Method::PATCH,
            &format!("/webhooks/{app}/tok-z/messages/@original"),
            None,
            &json!({"content": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    // A broken modal is refused like any other body.
    let broken = json!({"type": 9, "data": {"custom_id": "trade:2", "components": []}});
    let (status, _, _) =
        json_of(call(&fake, Method::POST, "/interactions/502/tok-c/callback", None, &broken).await).await;
    assert_eq!(status, 400);
    assert_eq!(fake.invalid_bodies().len(), 1);
}

#[tokio::test]
async fn commands_are_echoed_with_stable_ids() {
    let fake = FakeDiscord::start().await;
    let path = format!("/applications/{}/commands", fake.application_id());
    let commands = json!([
        {"name": "link", "description": "Link your account", "type": 1},
        {"name": "stop", "description": "Close a trade", "type": 1, "default_member_permissions": null,
         "options": [{"type": 4, "name": "trade_id", "description": "Trade id", "required": true}]}
    ]);
    let (status, _, first) = json_of(call(&fake, Method::PUT, &path, Some(TOKEN), &commands).await).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first.as_array().unwrap().len(), 2);
    Spec::global().validate_response("PUT", &path, 200, &first).unwrap();
    let parsed: Vec<twilight_model::application::command::Command> = serde_json::from_value(first.clone()).unwrap();
    assert_eq!(parsed[1].options[0].name, "trade_id");
    let (_, _, second) = json_of(call(&fake, Method::PUT, &path, Some(TOKEN), &commands).await).await;
    assert_eq!(first[0]["id"], second[0]["id"]);
    assert_eq!(fake.commands(), second.as_array().unwrap().clone());
    let (status, _, _) =
        json_of(call(&fake, Method::PUT, "/applications/42/commands", Some(TOKEN), &commands).await).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn waits_wake_on_requests_and_time_out_with_what_arrived() {
    let fake = FakeDiscord::builder()
        .channel("300")
        .limit(Route::CreateMessage, Limit::new(50, Duration::from_secs(1)))
        .start()
        .await;
    let url = format!("{}/channels/300/messages", fake.api_url());
    let sender = tokio::spawn(async move {
        for i in 0..3 {
            let body = json!({"content": format!("m{i}")});
            Client::new().post(&url).header("Authorization", TOKEN).json(&body).send().await.unwrap();
        }
    });
    let messages = fake.wait_for_messages(3, WAIT).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.body["content"].as_str().unwrap()).collect::<Vec<_>>(), ["m0", "m1", "m2"]);
    sender.await.unwrap();
    let timeout = fake.wait_for_requests(4, Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(timeout.received.len(), 3);
    assert!(timeout.to_string().contains("POST /api/v10/channels/300/messages -> 200"), "{timeout}");
    let recorded = fake.requests();
    assert_eq!(recorded[0].header("authorization"), Some(TOKEN));
    assert_eq!(recorded[0].route, Some(Route::CreateMessage));
}

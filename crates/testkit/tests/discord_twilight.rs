//! The fake against the client Signalpost really uses: twilight-http 0.18 with its rate limiter reaches the
//! fake through its proxy setting, reads every answer as twilight-model objects, sends only bodies the
//! OpenAPI spec accepts, and never meets a 429 because the fake's headers tell it when to wait.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use testkit::discord::{FakeDiscord, Limit, Route};
use twilight_http::Client;
use twilight_model::application::command::{Command, CommandType};
use twilight_model::channel::message::{Component, Embed};
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};
use twilight_model::id::Id;

fn client(fake: &FakeDiscord) -> Client {
    Client::builder().proxy(fake.addr().to_string(), true).token("twilight-token".to_string()).build()
}

fn signal_embed() -> Embed {
    serde_json::from_value(json!({
        "type": "rich",
        "title": "REVERSAL SIGNAL DETECTED",
        "color": 3066993,
        "fields": [{"name": "Pair", "value": "EURUSD", "inline": true}, {"name": "Signal", "value": "LONG", "inline": true}]
    }))
    .unwrap()
}

fn buttons(id: u32) -> Component {
    serde_json::from_value(json!({"type": 1, "components": [
        {"type": 2, "style": 3, "label": "Open Trade", "custom_id": format!("open:{id}")},
        {"type": 2, "style": 2, "label": "Ignore", "custom_id": format!("ignore:{id}")},
        {"type": 2, "style": 1, "label": "Details", "custom_id": format!("details:{id}")}
    ]}))
    .unwrap()
}

#[tokio::test]
async fn twilight_sends_valid_bodies_and_honours_the_limits() {
    let fake = FakeDiscord::builder()
        .token("twilight-token")
        .limit(Route::CreateMessage, Limit::new(3, Duration::from_millis(400)))
        .start()
        .await;
    let client = Arc::new(client(&fake));
    let channel = client.create_private_channel(Id::new(200_000_000_000_000_001)).await.unwrap().model().await.unwrap();
    assert_eq!(fake.dm_channel_id("200000000000000001"), Some(channel.id.to_string()));

    // Twice the bucket's size at once: twilight must queue on the fake's headers, not collide with them.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..7 {
        let client = Arc::clone(&client);
        sends.spawn(async move {
            let embeds = [signal_embed()];
            let components = [buttons(i)];
            let response = client.create_message(channel.id).embeds(&embeds).components(&components).await;
            response.map_err(|e| e.to_string())?.model().await.map_err(|e| e.to_string())
        });
    }
    let mut ids = Vec::new();
    while let Some(sent) = sends.join_next().await {
        ids.push(sent.unwrap().expect("twilight reads the message").id);
    }
    assert_eq!(fake.messages_sent().len(), 7);

    let edited = client.update_message(channel.id, ids[0]).components(Some(&[])).await.unwrap().model().await.unwrap();
    assert!(edited.edited_timestamp.is_some() && edited.components.is_empty());

    let app = Id::new(fake.application_id().parse().unwrap());
    let interaction = client.interaction(app);
    let modal = InteractionResponse {
        kind: InteractionResponseType::Modal,
        data: Some(InteractionResponseData {
            custom_id: Some("trade:1".to_string()),
            title: Some("Open EURUSD LONG".to_string()),
            components: Some(vec![
                serde_json::from_value(json!({"type": 1, "components": [
                    {"type": 4, "custom_id": "entry", "label": "Entry", "style": 1, "value": "1.0854"}
                ]}))
                .unwrap(),
            ]),
            ..InteractionResponseData::default()
        }),
    };
    interaction.create_response(Id::new(900), "token-1", &modal).await.unwrap();
    let ack = InteractionResponse { kind: InteractionResponseType::DeferredChannelMessageWithSource, data: None };
    interaction.create_response(Id::new(901), "token-2", &ack).await.unwrap();
    let original =
        interaction.update_response("token-2").content(Some("Trade opened")).await.unwrap().model().await.unwrap();
    assert_eq!(original.content, "Trade opened");
    let followup = interaction.create_followup("token-2").content("Details").await.unwrap().model().await.unwrap();
    assert_eq!(followup.content, "Details");

    let commands: Vec<Command> = serde_json::from_value(json!([
        {"name": "link", "description": "Link your account", "type": 1, "version": "1"},
        {"name": "stop", "description": "Close a trade", "type": 1, "version": "1", "default_member_permissions": "8",
         "options": [{"type": 4, "name": "trade_id", "description": "Trade id", "required": true}]}
    ]))
    .unwrap();
    let set = interaction.set_global_commands(&commands).await.unwrap().models().await.unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|c| c.id.is_some() && c.kind == CommandType::ChatInput));

    assert_eq!(fake.invalid_bodies(), vec![], "twilight sent bodies Discord would refuse");
    assert_eq!(fake.rate_limited_count(), 0, "twilight met a 429: {:?}", fake.requests());
    assert_eq!(fake.interaction_callbacks().len(), 2);
}

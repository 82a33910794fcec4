//! Interaction bodies as Discord posts them, parsed; and the JSON of each response we answer with.

use discord::interactions::{self, Incoming, InteractionError, parse_interaction};
use discord::render::{self, CustomId, SignalView};
use discord::{CustomIdError, InteractionUser, MessageRef};
use domain::{InstrumentRegistry, Price, Side};
use serde_json::{Value, json};

fn body(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn envelope(kind: u8, data: Value) -> Value {
    json!({
        "id": "1300000000000000001",
        "application_id": "1200000000000000000",
        "type": kind,
        "token": "interaction-token",
        "version": 1,
        "locale": "en-US",
        "app_permissions": "562949953601536",
        "entitlements": [],
        "authorizing_integration_owners": {"0": "1100000000000000000"},
        "context": 0,
        "attachment_size_limit": 10485760,
        "guild_id": "1000000000000000000",
        "channel_id": "1000000000000000010",
        "channel": {"id": "1000000000000000010", "type": 0, "name": "signals", "some_new_field": {"x": 1}},
        "member": {
            "user": {"id": "1100000000000000000", "username": "ann", "global_name": "Ann", "discriminator": "0", "avatar": null},
            "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0
        },
        "data": data,
    })
}

/// A message object as Discord includes it with a button click, abridged but with its real shape.
fn message_object() -> Value {
    json!({
        "id": "1400000000000000000",
        "channel_id": "1000000000000000010",
        "type": 0,
        "content": "",
        "author": {"id": "1200000000000000000", "username": "signalpost", "discriminator": "0", "avatar": null, "bot": true},
        "embeds": [{"type": "rich", "title": "REVERSAL SIGNAL DETECTED", "fields": []}],
        "components": [{"type": 1, "id": 1, "components": [{"type": 2, "id": 2, "style": 3, "label": "Open Trade", "custom_id": "open:42"}]}],
        "attachments": [], "mentions": [], "mention_roles": [], "mention_everyone": false, "pinned": false, "tts": false,
        "timestamp": "2026-03-02T09:00:00.000000+00:00", "edited_timestamp": null, "flags": 0,
    })
}

fn ann() -> InteractionUser {
    InteractionUser { id: "1100000000000000000".into(), name: "Ann".into() }
}

#[test]
fn ping_needs_nothing_but_its_type() {
    assert_eq!(parse_interaction(br#"{"type":1}"#), Ok(Incoming::Ping));
    let ping = json!({"id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1, "user": {"id": "3"}});
    assert_eq!(parse_interaction(&body(ping)), Ok(Incoming::Ping));
}

#[test]
fn button_clicks_carry_the_custom_id_user_and_message() {
    let mut click = envelope(3, json!({"custom_id": "ignore:42", "component_type": 2}));
    click["message"] = message_object();
    let parsed = parse_interaction(&body(click.clone())).unwrap();
    assert_eq!(
        parsed,
        Incoming::Button {
            custom_id: CustomId::Ignore(42),
            user: ann(),
            message: Some(MessageRef {
                channel_id: "1000000000000000010".into(),
                message_id: "1400000000000000000".into()
            }),
            interaction_id: "1300000000000000001".into(),
            application_id: "1200000000000000000".into(),
            token: "interaction-token".into(),
        }
    );

    // In a DM the user is top-level and there is no member.
    let obj = click.as_object_mut().unwrap();
    obj.remove("member");
    obj.remove("guild_id");
    obj.insert("user".into(), json!({"id": "1100000000000000005", "username": "bob", "discriminator": "0"}));
    obj.insert("data".into(), json!({"custom_id": "open:7", "component_type": 2}));
    let Incoming::Button { custom_id, user, .. } = parse_interaction(&body(click)).unwrap() else { panic!() };
    assert_eq!(custom_id, CustomId::Open(7));
    assert_eq!(user, InteractionUser { id: "1100000000000000005".into(), name: "bob".into() });
}

#[test]
fn modal_submissions_give_the_values_by_input_id() {
    let label = |id: i32, custom_id: &str, value: &str| json!({"type": 18, "id": id, "component": {"type": 4, "id": id + 1, "custom_id": custom_id, "value": value}});
    let data = json!({
        "custom_id": "trade:42",
        "components": [
            label(1, "entry", "1.0854"),
            label(3, "lots", "0.5"),
            label(5, "stop_loss", "1.0800"),
            label(7, "take_profit", "1.0962"),
            label(9, "notes", ""),
        ]
    });
    let mut submit = envelope(5, data);
    submit["message"] = message_object();
    let Incoming::ModalSubmit { notification_id, values, user, message, token, .. } =
        parse_interaction(&body(submit)).unwrap()
    else {
        panic!("not a modal submit")
    };
    assert_eq!(notification_id, 42);
    assert_eq!(values.len(), 5);
    assert_eq!(values["entry"], "1.0854");
    assert_eq!(values["lots"], "0.5");
    assert_eq!(values["stop_loss"], "1.0800");
    assert_eq!(values["take_profit"], "1.0962");
    assert_eq!(values["notes"], "");
    assert_eq!(user, ann());
    assert_eq!(message.unwrap().message_id, "1400000000000000000");
    assert_eq!(token, "interaction-token");
}

#[test]
fn older_modals_with_action_rows_are_read_too() {
    let data = json!({
        "custom_id": "trade:5",
        "components": [{"type": 1, "id": 1, "components": [{"type": 4, "id": 2, "custom_id": "entry", "value": "2000"}]}]
    });
    let Incoming::ModalSubmit { values, .. } = parse_interaction(&body(envelope(5, data))).unwrap() else { panic!() };
    assert_eq!(values["entry"], "2000");
}

#[test]
fn slash_commands_flatten_their_options() {
    let data = json!({"id": "1500000000000000000", "name": "stop", "type": 1,
        "options": [{"name": "trade_id", "type": 4, "value": 12}]});
    let Incoming::SlashCommand { name, subcommand, options, user, .. } =
        parse_interaction(&body(envelope(2, data))).unwrap()
    else {
        panic!()
    };
    assert_eq!((name.as_str(), subcommand, options["trade_id"].as_str()), ("stop", None, "12"));
    assert_eq!(user, ann());

    let data = json!({"id": "1500000000000000001", "name": "settings", "type": 1, "options": [
        {"name": "pairs", "type": 1, "options": [{"name": "symbol", "type": 3, "value": "EURUSD"}, {"name": "on", "type": 5, "value": true}]}
    ]});
    let Incoming::SlashCommand { name, subcommand, options, .. } = parse_interaction(&body(envelope(2, data))).unwrap()
    else {
        panic!()
    };
    assert_eq!((name.as_str(), subcommand.as_deref()), ("settings", Some("pairs")));
    assert_eq!((options["symbol"].as_str(), options["on"].as_str()), ("EURUSD", "true"));
}

#[test]
fn other_interactions_are_unknown() {
    let autocomplete = json!({"id": "1500000000000000000", "name": "stop", "type": 1,
        "options": [{"name": "trade_id", "type": 4, "value": "1", "focused": true}]});
    assert_eq!(parse_interaction(&body(envelope(4, autocomplete))), Ok(Incoming::Unknown { kind: 4 }));
    let user_command = json!({"id": "1500000000000000000", "name": "Inspect", "type": 2, "target_id": "1"});
    assert_eq!(parse_interaction(&body(envelope(2, user_command))), Ok(Incoming::Unknown { kind: 2 }));
    let select = json!({"custom_id": "pick", "component_type": 3, "values": ["a"]});
    assert_eq!(parse_interaction(&body(envelope(3, select))), Ok(Incoming::Unknown { kind: 3 }));
}

#[test]
fn bad_bodies_are_clear_errors() {
    assert!(matches!(parse_interaction(b"not json"), Err(InteractionError::Json(_))));
    assert!(matches!(parse_interaction(b"[1]"), Err(InteractionError::Shape(_))));
    assert!(matches!(parse_interaction(br#"{"id":"1"}"#), Err(InteractionError::Shape(_))));
    let mut no_token = envelope(3, json!({"custom_id": "open:1", "component_type": 2}));
    no_token.as_object_mut().unwrap().remove("token");
    let err = parse_interaction(&body(no_token)).unwrap_err();
    assert!(err.to_string().contains("token"), "{err}");
    let mut no_data = envelope(3, Value::Null);
    no_data.as_object_mut().unwrap().remove("data");
    assert!(matches!(parse_interaction(&body(no_data)), Err(InteractionError::Shape(_))));
    let mut no_user = envelope(3, json!({"custom_id": "open:1", "component_type": 2}));
    no_user.as_object_mut().unwrap().remove("member");
    assert_eq!(parse_interaction(&body(no_user)), Err(InteractionError::NoUser));

    let foreign = envelope(3, json!({"custom_id": "delete_everything", "component_type": 2}));
    assert!(matches!(
        parse_interaction(&body(foreign)),
        Err(InteractionError::CustomId(CustomIdError::NoSeparator(_)))
    ));
    let misplaced = envelope(3, json!({"custom_id": "trade:1", "component_type": 2}));
    assert!(matches!(parse_interaction(&body(misplaced)), Err(InteractionError::MisplacedCustomId { .. })));
    let misplaced = envelope(5, json!({"custom_id": "open:1", "components": []}));
    let err = parse_interaction(&body(misplaced)).unwrap_err();
    assert!(err.to_string().contains("modal"), "{err}");
}

#[test]
fn responses_serialize_as_discord_expects() {
    assert_eq!(serde_json::to_value(interactions::pong()).unwrap(), json!({"type": 1}));
    assert_eq!(
        serde_json::to_value(interactions::ephemeral_message("Trade #3 opened")).unwrap(),
        json!({"type": 4, "data": {"content": "Trade #3 opened", "flags": 64}})
    );
    assert_eq!(serde_json::to_value(interactions::deferred(false)).unwrap(), json!({"type": 5}));
    assert_eq!(serde_json::to_value(interactions::deferred(true)).unwrap(), json!({"type": 5, "data": {"flags": 64}}));
    assert_eq!(serde_json::to_value(interactions::deferred_update()).unwrap(), json!({"type": 6}));
    let long = interactions::ephemeral_message(&"x".repeat(5000));
    assert_eq!(long.data.unwrap().content.unwrap().chars().count(), 2000);

    let view = SignalView {
        notification_id: 42,
        title: render::ENGINE_TITLE.into(),
        instrument: InstrumentRegistry::global().get("EURUSD").unwrap().clone(),
        timeframe: None,
        side: Side::Long,
        entry: Price::parse("1.0854").unwrap(),
        stop_loss: Price::parse("1.08").unwrap(),
        take_profit: Price::parse("1.0962").unwrap(),
        confidence: None,
        model_version: None,
    };
    let update = serde_json::to_value(interactions::update_message(&render::ignored_message(&view))).unwrap();
    assert_eq!(update["type"], 7);
    assert_eq!(update["data"]["embeds"][0]["footer"]["text"], "Ignored");
    assert_eq!(update["data"]["components"][0]["components"][1]["disabled"], true);
    assert!(update["data"].get("flags").is_none());

    let details = serde_json::to_value(interactions::ephemeral_embeds(&render::signal_message(&view))).unwrap();
    assert_eq!((details["type"].clone(), details["data"]["flags"].clone()), (json!(4), json!(64)));
}

//! The OpenAPI validator against the bodies Signalpost sends to Discord and answers on its Interactions
//! Endpoint: the good ones pass, broken ones fail with an error that names the place.

use serde_json::{Value, json};
use testkit::discord::openapi::{INTERACTION_RESPONSE_SCHEMA, Spec};

const MESSAGES: &str = "/channels/{channel_id}/messages";
const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";

fn signal_message() -> Value {
    json!({
        "content": "New signal",
        "embeds": [{
            "type": "rich",
            "title": "REVERSAL SIGNAL DETECTED",
            "color": 3066993,
            "timestamp": "2026-11-21T12:00:00.000000+00:00",
            "fields": [
                {"name": "Pair", "value": "EURUSD", "inline": true},
                {"name": "Timeframe", "value": "1h", "inline": true},
                {"name": "Signal", "value": "LONG", "inline": true},
                {"name": "Confidence", "value": "78%", "inline": true}
            ],
            "footer": {"text": "Model v3"}
        }],
        "components": [{
            "type": 1,
            "components": [
                {"type": 2, "style": 3, "label": "Open Trade", "custom_id": "open:1"},
                {"type": 2, "style": 2, "label": "Ignore", "custom_id": "ignore:1"},
                {"type": 2, "style": 1, "label": "Details", "custom_id": "details:1"}
            ]
        }]
    })
}

fn failures(result: Result<(), Vec<String>>) -> Vec<String> {
    result.expect_err("the body should not validate")
}

#[test]
fn signal_message_validates() {
    Spec::global().validate_request("POST", MESSAGES, &signal_message()).unwrap();
    // Concrete paths, the /api/v10 prefix and a query string resolve to the same operation.
    Spec::global().validate_request("POST", "/api/v10/channels/1234/messages?x=1", &signal_message()).unwrap();
    Spec::global().validate_schema("MessageCreateRequest", &signal_message()).unwrap();
}

#[test]
fn button_without_style_names_its_place() {
    let mut body = signal_message();
    body["components"][0]["components"][1].as_object_mut().unwrap().remove("style");
    let errors = failures(Spec::global().validate_request("POST", MESSAGES, &body));
    assert!(errors.iter().any(|e| e.starts_with("/components/0/components/1/style: ")), "{errors:?}");
}

#[test]
fn button_without_custom_id_names_its_place() {
    let mut body = signal_message();
    body["components"][0]["components"][0].as_object_mut().unwrap().remove("custom_id");
    let errors = failures(Spec::global().validate_request("POST", MESSAGES, &body));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/components/0/components/0/custom_id: "), "{errors:?}");
}

#[test]
fn embed_field_without_name_names_its_place() {
    let mut body = signal_message();
    body["embeds"][0]["fields"][2].as_object_mut().unwrap().remove("name");
    let errors = failures(Spec::global().validate_request("POST", MESSAGES, &body));
    assert_eq!(errors, vec!["/embeds/0/fields/2/name: This field is required (BASE_TYPE_REQUIRED)".to_string()]);
}

#[test]
fn other_broken_messages_fail() {
    let spec = Spec::global();
    let cases = [
        (json!({"content": "x".repeat(4001)}), "/content"),
        (json!({"embeds": [{"title": "t", "color": -1}]}), "/embeds/0/color"),
        (json!({"embeds": [{"title": "t", "timestamp": "yesterday"}]}), "/embeds/0/timestamp"),
        (json!({"embeds": [{"title": "t", "fields": [{"name": "", "value": "v"}]}]}), "/embeds/0/fields/0/name"),
        (json!({"components": [{"type": 1, "components": []}]}), "/components/0/components"),
        (
            json!({"components": [{"type": 1, "components": [{"type": 2, "style": 9, "custom_id": "a"}]}]}),
            "/components/0/components/0/style",
        ),
        (json!({"components": [{"type": 2, "style": 1, "custom_id": "a", "label": "x"}]}), "/components/0/type"),
        (json!({"content": ""}), "/"),
        (json!({"content": 5}), "/content"),
    ];
    for (body, path) in cases {
        let errors = failures(spec.validate_request("POST", MESSAGES, &body));
        assert!(errors.iter().any(|e| e.starts_with(&format!("{path}: "))), "{body} gave {errors:?}, wanted {path}");
    }
}

#[test]
fn interaction_responses_validate() {
    let spec = Spec::global();
    spec.validate_schema(INTERACTION_RESPONSE_SCHEMA, &json!({"type": 1})).unwrap();
    spec.validate_interaction_response(&json!({"type": 1})).unwrap();
    let modal = json!({
        "type": 9,
        "data": {
            "custom_id": "trade:1",
            "title": "Open EURUSD LONG",
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "entry", "label": "Entry", "style": 1, "value": "1.0854", "required": true}]},
                {"type": 1, "components": [{"type": 4, "custom_id": "lots", "label": "Lots", "style": 1, "value": "0.5"}]},
                {"type": 1, "components": [{"type": 4, "custom_id": "stop_loss", "label": "Stop loss", "style": 1, "value": "1.0800"}]},
                {"type": 1, "components": [{"type": 4, "custom_id": "take_profit", "label": "Take profit", "style": 1, "value": "1.0962"}]},
                {"type": 1, "components": [{"type": 4, "custom_id": "notes", "label": "Notes", "style": 2, "required": false}]}
            ]
        }
    });
    spec.validate_interaction_response(&modal).unwrap();
    spec.validate_request("POST", CALLBACK, &json!({"type": 4, "data": {"content": "Ignored", "flags": 64}})).unwrap();
    spec.validate_request("POST", CALLBACK, &json!({"type": 5})).unwrap();
    spec.validate_request("POST", CALLBACK, &json!({"type": 6})).unwrap();
    spec.validate_request("POST", CALLBACK, &json!({"type": 7, "data": {"components": []}})).unwrap();
}

#[test]
fn broken_interaction_responses_fail() {
    let spec = Spec::global();
    assert!(spec.validate_interaction_response(&json!({"type": 3})).is_err());
    assert!(spec.validate_interaction_response(&json!({})).is_err());
    let mut modal = json!({"type": 9, "data": {"custom_id": "trade:1", "title": "t", "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "entry", "label": "Entry", "style": 1}]}
    ]}});
    modal["data"]["title"] = json!("x".repeat(46));
    let errors = failures(spec.validate_interaction_response(&modal));
    assert!(errors.iter().any(|e| e.starts_with("/data/title: ")), "{errors:?}");
    modal["data"]["title"] = json!("t");
    modal["data"]["components"][0]["components"][0].as_object_mut().unwrap().remove("label");
    let errors = failures(spec.validate_interaction_response(&modal));
    assert!(errors.iter().any(|e| e.starts_with("/data/components/0/components/0/label: ")), "{errors:?}");
    let errors = failures(spec.validate_interaction_response(&json!({"type": 4})));
    assert!(errors.iter().any(|e| e.starts_with("/data: ")), "{errors:?}");
}

#[test]
fn routes_map_to_operations() {
    let spec = Spec::global();
    let cases = [
        ("POST", "/api/v10/users/@me/channels", "create_dm"),
        ("POST", "/api/v10/channels/1/messages", "create_message"),
        ("PATCH", "/api/v10/channels/1/messages/2", "update_message"),
        ("POST", "/api/v10/interactions/1/tok/callback", "create_interaction_response"),
        ("POST", "/api/v10/webhooks/1/tok", "execute_webhook"),
        ("PATCH", "/api/v10/webhooks/1/tok/messages/@original", "update_original_webhook_message"),
        ("PUT", "/api/v10/applications/1/commands", "bulk_set_application_commands"),
    ];
    for (method, path, operation) in cases {
        assert_eq!(spec.operation_id(method, path), Some(operation), "{method} {path}");
    }
    assert!(spec.validate_request("POST", "/nowhere", &json!({})).is_err());
}

#[test]
fn commands_as_twilight_sends_them_validate() {
    let commands = json!([
        {"name": "link", "description": "Link your account", "type": 1, "default_member_permissions": null, "options": []},
        {"name": "stop", "description": "Close a trade", "type": 1, "default_member_permissions": "8",
         "options": [{"type": 4, "name": "trade_id", "description": "Trade", "required": true}]}
    ]);
    Spec::global().validate_request("PUT", "/applications/1/commands", &commands).unwrap();
    let bad = json!([{"name": "", "description": "x"}]);
    assert!(Spec::global().validate_request("PUT", "/applications/1/commands", &bad).is_err());
}

#[test]
fn responses_validate() {
    let spec = Spec::global();
    // The spec's RatelimitedResponse extends Error, so it requires `code` although Discord's docs call it
    // optional: the fake sends `"code": 0`.
    let limited = json!({"message": "You are being rate limited.", "retry_after": 0.5, "global": false, "code": 0});
    spec.validate_response("POST", MESSAGES, 429, &limited).unwrap();
    spec.validate_schema("RatelimitedResponse", &limited).unwrap();
    assert!(spec.validate_response("POST", MESSAGES, 429, &json!({"message": "x"})).is_err());
    let refused = json!({"message": "Cannot send messages to this user", "code": 50007});
    spec.validate_response("POST", MESSAGES, 403, &refused).unwrap();
    let invalid = json!({"message": "Invalid Form Body", "code": 50035, "errors": {"embeds": {"0": {"fields": {
        "2": {"name": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}}
    }}}}});
    spec.validate_response("POST", MESSAGES, 400, &invalid).unwrap();
    spec.validate_response("POST", CALLBACK, 204, &Value::Null).unwrap();
}

#[test]
fn unknown_schema_is_an_error_not_a_pass() {
    let errors = failures(Spec::global().validate_schema("NoSuchSchema", &json!({})));
    assert!(errors[0].contains("NoSuchSchema"), "{errors:?}");
}

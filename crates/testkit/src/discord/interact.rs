//! Interactions as Discord sends them: signed with an Ed25519 key, in the envelope Discord wraps them in, for
//! tests that drive `POST /discord/interactions` like Discord would.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

/// The interaction types the tests send (Discord's numbers).
pub const PING: u8 = 1;
pub const APPLICATION_COMMAND: u8 = 2;
pub const MESSAGE_COMPONENT: u8 = 3;
pub const MODAL_SUBMIT: u8 = 5;

/// Signs interactions as the Discord application whose public key the app was given.
#[derive(Debug, Clone)]
pub struct InteractionSigner {
    key: SigningKey,
}

impl Default for InteractionSigner {
    fn default() -> Self {
        InteractionSigner::from_seed(7)
    }
}

impl InteractionSigner {
    /// A deterministic key; tests that need a wrong key use another seed.
    pub fn from_seed(seed: u8) -> Self {
        InteractionSigner { key: SigningKey::from_bytes(&[seed; 32]) }
    }

    /// The public key, hex-encoded, as `DISCORD_PUBLIC_KEY` takes it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The `X-Signature-Ed25519` value for `body` sent at `timestamp` (Unix seconds).
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        hex::encode(self.key.sign(&[ts.as_bytes(), body].concat()).to_bytes())
    }

    /// Posts `body` to `url` signed at `timestamp`.
    pub async fn post(&self, client: &reqwest::Client, url: &str, body: &Value, timestamp: i64) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
        client
            .post(url)
            .header("X-Signature-Ed25519", self.signature(timestamp, &bytes))
            .header("X-Signature-Timestamp", timestamp.to_string())
            .header("Content-Type", "application/json")
            .body(bytes)
            .send()
            .await
            .expect("the request reaches the app")
    }
}

/// An interaction of `kind` from the Discord user `user_id` in a DM, carrying `data`.
pub fn envelope(kind: u8, user_id: &str, data: Value) -> Value {
    envelope_with("1300000000000000001", "interaction-token", kind, user_id, data)
}

/// [`envelope`] with its own interaction id and token, for tests that follow up on one interaction among many.
pub fn envelope_with(id: &str, token: &str, kind: u8, user_id: &str, data: Value) -> Value {
    json!({
        "id": id, "application_id": super::DEFAULT_APPLICATION_ID, "type": kind,
        "token": token, "version": 1, "locale": "en-US", "app_permissions": "0", "entitlements": [],
        "authorizing_integration_owners": {}, "context": 1, "attachment_size_limit": 10485760,
        "channel_id": "1000000000000000010",
        "user": {"id": user_id, "username": "someone", "global_name": "Someone", "discriminator": "0", "avatar": null},
        "data": data,
    })
}

/// A click on the button `custom_id`.
pub fn button_click(user_id: &str, custom_id: &str) -> Value {
    envelope(MESSAGE_COMPONENT, user_id, json!({"custom_id": custom_id, "component_type": 2}))
}

/// A submit of the modal `custom_id` with text inputs `values` (custom id, value), one per action row.
pub fn modal_submit(user_id: &str, custom_id: &str, values: &[(&str, &str)]) -> Value {
    envelope(MODAL_SUBMIT, user_id, modal_data(custom_id, values))
}

/// The `data` of a modal submit: the modal's custom id and its text inputs, one per action row.
pub fn modal_data(custom_id: &str, values: &[(&str, &str)]) -> Value {
    let rows: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, (id, v))| {
            json!({"type": 1, "id": 2 * i + 1, "components": [{"type": 4, "id": 2 * i + 2, "custom_id": id, "value": v}]})
        })
        .collect();
    json!({"custom_id": custom_id, "components": rows})
}

/// The value of the text input `custom_id` in a modal response (type 9), whether the input sits in a Label
/// (`component`) or, in the older layout, in an action row (`components`).
pub fn modal_value(modal: &Value, custom_id: &str) -> Option<String> {
    modal["data"]["components"]
        .as_array()?
        .iter()
        .flat_map(|row| {
            let nested = row["components"].as_array().cloned().unwrap_or_default();
            nested.into_iter().chain(std::iter::once(row["component"].clone()))
        })
        .find(|c| c["custom_id"] == custom_id)
        .and_then(|c| c["value"].as_str().map(str::to_string))
}

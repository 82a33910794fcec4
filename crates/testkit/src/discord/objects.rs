//! Discord objects as Discord returns them: a request body (embeds, components, commands) becomes the
//! response shape Discord documents, which differs from the request shape (ids on every component, embed
//! `type` and field `inline` always present, no `null`s for absent optional fields).

use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Discord's epoch (2015-01-01) in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Real-looking snowflakes: time since Discord's epoch in the high bits, so ids sort by creation and
/// twilight's `Id` (non-zero `u64`) accepts them; strictly increasing even within one millisecond.
#[derive(Debug, Default)]
pub(crate) struct Snowflakes {
    last: AtomicU64,
}

impl Snowflakes {
    pub(crate) fn next(&self) -> String {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let candidate = (now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22).max(1);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + 1);
            match self.last.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next.to_string(),
                Err(actual) => last = actual,
            }
        }
    }
}

/// ISO 8601 with microseconds and `+00:00`, as Discord writes timestamps.
pub(crate) fn timestamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// A user object (`UserResponse`).
pub(crate) fn user(id: &str, username: &str, bot: bool) -> Value {
    let mut user = json!({
        "id": id,
        "username": username,
        "avatar": null,
        "discriminator": if bot { "0001" } else { "0" },
        "public_flags": 0,
        "flags": 0,
        "global_name": if bot { Value::Null } else { Value::String(username.to_string()) },
        "primary_guild": null,
    });
    if bot {
        user["bot"] = json!(true);
    }
    user
}

/// A DM channel object (`PrivateChannelResponse`).
pub(crate) fn dm_channel(channel_id: &str, recipient_id: &str) -> Value {
    json!({
        "id": channel_id,
        "type": 1,
        "last_message_id": null,
        "flags": 0,
        "recipients": [user(recipient_id, &format!("user{recipient_id}"), false)],
    })
}

/// Where a message came from, for the fields that differ between a bot message and an interaction one.
#[derive(Debug, Clone)]
pub(crate) struct Origin<'a> {
    pub author: &'a Value,
    pub application_id: &'a str,
    /// Interaction responses and follow-ups are sent through the application's webhook.
    pub webhook: bool,
}

/// A message object (`MessageResponse`) for a create-message style request body.
pub(crate) fn message(id: &str, channel_id: &str, origin: &Origin<'_>, body: &Value) -> Value {
    let mut message = json!({
        "id": id,
        "channel_id": channel_id,
        "type": 0,
        "content": "",
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "timestamp": timestamp_now(),
        "edited_timestamp": null,
        "flags": 0,
        "author": origin.author,
        "pinned": false,
        "mention_everyone": false,
        "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
    });
    if let Some(nonce) = body.get("nonce").filter(|n| !n.is_null()) {
        message["nonce"] = nonce.clone();
    }
    if origin.webhook {
        message["webhook_id"] = json!(origin.application_id);
        message["application_id"] = json!(origin.application_id);
    }
    apply_edit(&mut message, body);
    message
}

/// Applies the editable fields of a create or edit body to a stored message.
pub(crate) fn apply_edit(message: &mut Value, body: &Value) {
    if let Some(content) = body.get("content") {
        message["content"] = json!(content.as_str().unwrap_or_default());
    }
    if let Some(embeds) = body.get("embeds") {
        let embeds = embeds.as_array().map(|list| list.iter().map(embed).collect()).unwrap_or_default();
        message["embeds"] = Value::Array(embeds);
    }
    if let Some(components) = body.get("components") {
        let mut next_id = 1;
        let components = components
            .as_array()
            .map(|list| list.iter().map(|c| component(c, &mut next_id)).collect())
            .unwrap_or_default();
        message["components"] = Value::Array(components);
    }
    if let Some(flags) = body.get("flags").and_then(Value::as_u64) {
        message["flags"] = json!(flags);
    }
}

/// Drops `null` members: Discord leaves absent optional fields out of what it returns.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn embed(request: &Value) -> Value {
    let mut embed = without_nulls(request);
    let Some(map) = embed.as_object_mut() else {
        return embed;
    };
    map.entry("type").or_insert_with(|| json!("rich"));
    if let Some(Value::Array(fields)) = map.get_mut("fields") {
        for field in fields.iter_mut().filter_map(Value::as_object_mut) {
            field.entry("inline").or_insert(json!(false));
        }
    }
    embed
}

/// Discord numbers every component of a message depth-first when the request leaves `id` out.
fn component(request: &Value, next_id: &mut u64) -> Value {
    let mut component = without_nulls(request);
    if let Some(map) = component.as_object_mut() {
        number(map, next_id);
    }
    component
}

fn number(map: &mut Map<String, Value>, next_id: &mut u64) {
    let id = map.get("id").and_then(Value::as_u64).unwrap_or(*next_id);
    map.insert("id".to_string(), json!(id));
    *next_id = (*next_id).max(id) + 1;
    for key in ["components", "items"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            for child in children.iter_mut().filter_map(Value::as_object_mut) {
                number(child, next_id);
            }
        }
    }
    for key in ["accessory", "component"] {
        if let Some(Value::Object(child)) = map.get_mut(key) {
            number(child, next_id);
        }
    }
}

/// An application command object (`ApplicationCommandResponse`) for one entry of a bulk-overwrite body.
pub(crate) fn command(request: &Value, id: &str, version: &str, application_id: &str) -> Value {
    let mut command = without_nulls(request);
    let Some(map) = command.as_object_mut() else {
        return command;
    };
    map.insert("id".to_string(), json!(id));
    map.insert("version".to_string(), json!(version));
    map.insert("application_id".to_string(), json!(application_id));
    map.entry("type").or_insert(json!(1));
    map.entry("description").or_insert(json!(""));
    let permissions = match request.get("default_member_permissions") {
        Some(Value::Number(n)) => json!(n.to_string()),
        Some(Value::String(s)) => json!(s),
        _ => Value::Null,
    };
    map.insert("default_member_permissions".to_string(), permissions);
    map.entry("dm_permission").or_insert(json!(true));
    map.entry("nsfw").or_insert(json!(false));
    map.entry("integration_types").or_insert(json!([0]));
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_increase() {
        let ids = Snowflakes::default();
        let a: u64 = ids.next().parse().unwrap();
        let b: u64 = ids.next().parse().unwrap();
        assert!(b > a && a > 0);
    }

    #[test]
    fn components_are_numbered_depth_first() {
        let body = json!({"components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "custom_id": "a", "url": null}, {"type": 2, "style": 1, "custom_id": "b"}
        ]}]});
        let mut message = json!({});
        apply_edit(&mut message, &body);
        assert_eq!(message["components"][0]["id"], 1);
        assert_eq!(message["components"][0]["components"][1]["id"], 3);
        assert!(message["components"][0]["components"][0].get("url").is_none());
    }
}

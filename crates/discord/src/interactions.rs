//! Interactions posted to `POST /discord/interactions`: the body parsed into [`Incoming`], a small enum the
//! app can act on, and the responses it answers with (PONG, ephemeral messages, deferrals, message updates;
//! the trade modal is [`crate::render::trade_modal`]).
//!
//! Check the signature with [`crate::InteractionVerifier`] before calling [`parse_interaction`]. The HTTP
//! edge (axum) belongs to the app.
//!
//! Only what Signalpost acts on is read: the kind, the ids and token, the user, the `data` (through
//! twilight-model's types) and the ids of the message a button sits on. The envelope's other objects (the
//! whole message, member, channel, guild) are skipped rather than parsed, so a field Discord adds to them
//! later cannot make a click fail.

use crate::OutgoingMessage;
use crate::render::{CustomId, CustomIdError, parse_custom_id};
use serde::Deserialize as _;
use serde_json::{Map, Value};
use std::collections::HashMap;
use twilight_model::application::interaction::application_command::{
    CommandData, CommandDataOption, CommandOptionValue,
};
use twilight_model::application::interaction::message_component::MessageComponentInteractionData;
use twilight_model::application::interaction::modal::{ModalInteractionComponent, ModalInteractionData};
use twilight_model::channel::message::MessageFlags;
use twilight_model::channel::message::component::ComponentType;
use twilight_model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};

/// Who clicked, submitted or typed the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionUser {
    /// Discord user id (a snowflake, as text).
    pub id: String,
    /// Display name where set, else the username.
    pub name: String,
}

/// The message a button was clicked on (or a modal was opened from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub channel_id: String,
    pub message_id: String,
}

/// An interaction, reduced to what the app handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Discord checking the endpoint: answer [`pong`].
    Ping,
    /// One of our buttons: Open Trade, Ignore or Details.
    Button {
        custom_id: CustomId,
        user: InteractionUser,
        message: Option<MessageRef>,
        interaction_id: String,
        application_id: String,
        token: String,
    },
    /// The trade modal, submitted. `values` maps each input's custom id (`entry`, `lots`, `stop_loss`,
    /// `take_profit`, `notes`) to what the user left in it.
    ModalSubmit {
        notification_id: i64,
        values: HashMap<String, String>,
        user: InteractionUser,
        message: Option<MessageRef>,
        interaction_id: String,
        application_id: String,
        token: String,
    },
    /// A slash command. `subcommand` is the sub-command path, space-separated, where there is one;
    /// `options` are the innermost options, values as text (ids as their snowflakes).
    SlashCommand {
        name: String,
        subcommand: Option<String>,
        options: HashMap<String, String>,
        user: InteractionUser,
        interaction_id: String,
        application_id: String,
        token: String,
    },
    /// One of the `/settings` controls, whose custom ids start with [`SETTINGS_PREFIX`]: a button (no
    /// `values`) or a select menu (the options chosen). `control` is the custom id without the prefix
    /// (`timeframes`, `notifications`, ...); which controls exist is the app's business.
    SettingsComponent {
        control: String,
        values: Vec<String>,
        user: InteractionUser,
        message: Option<MessageRef>,
        interaction_id: String,
        application_id: String,
        token: String,
    },
    /// Anything else (autocomplete, other select menus, context-menu commands): `kind` is Discord's
    /// interaction type. Answer with an ephemeral message or ignore.
    Unknown { kind: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    #[error("the interaction body is not JSON: {0}")]
    Json(String),
    #[error("the interaction body is not a Discord interaction: {0}")]
    Shape(String),
    #[error("the interaction names no user")]
    NoUser,
    #[error(transparent)]
    CustomId(#[from] CustomIdError),
    #[error("custom id {custom_id:?} does not belong on a {place}")]
    MisplacedCustomId { custom_id: String, place: &'static str },
}

/// The envelope fields every non-PING interaction has.
#[derive(Debug, serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(deserialize_with = "snowflake")]
    id: String,
    #[serde(deserialize_with = "snowflake")]
    application_id: String,
    token: String,
    #[serde(default)]
    data: Option<Value>,
}

/// The custom-id prefix of the `/settings` controls.
pub const SETTINGS_PREFIX: &str = "settings:";

const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const MODAL_SUBMIT: u8 = 5;
/// Chat-input (slash) commands, as opposed to user and message context-menu commands.
const CHAT_INPUT: u8 = 1;

/// Parses an interaction body (after its signature was checked).
pub fn parse_interaction(body: &[u8]) -> Result<Incoming, InteractionError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| InteractionError::Json(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(InteractionError::Shape("expected a JSON object".into()));
    };
    let kind = object.get("type").and_then(Value::as_u64).ok_or_else(|| shape("`type` is missing"))?;
    if kind == u64::from(PING) {
        return Ok(Incoming::Ping);
    }
    let user = user_of(&object);
    let message = message_of(&object);
    let envelope: Envelope = serde_json::from_value(Value::Object(object)).map_err(|e| shape(e.to_string()))?;
    let data = || envelope.data.clone().ok_or_else(|| shape("`data` is missing"));
    match envelope.kind {
        APPLICATION_COMMAND => {
            let data: CommandData = serde_json::from_value(data()?).map_err(|e| shape(e.to_string()))?;
            if u8::from(data.kind) != CHAT_INPUT {
                return Ok(Incoming::Unknown { kind: envelope.kind });
            }
            let mut path = Vec::new();
            let mut options = HashMap::new();
            flatten_options(&data.options, &mut path, &mut options);
            Ok(Incoming::SlashCommand {
                name: data.name,
                subcommand: (!path.is_empty()).then(|| path.join(" ")),
                options,
                user: user?,
                interaction_id: envelope.id,
                application_id: envelope.application_id,
                token: envelope.token,
            })
        }
        MESSAGE_COMPONENT => {
            let data: MessageComponentInteractionData =
                serde_json::from_value(data()?).map_err(|e| shape(e.to_string()))?;
            if let Some(control) = data.custom_id.strip_prefix(SETTINGS_PREFIX) {
                return Ok(Incoming::SettingsComponent {
                    control: control.to_string(),
                    values: data.values,
                    user: user?,
                    message,
                    interaction_id: envelope.id,
                    application_id: envelope.application_id,
                    token: envelope.token,
                });
            }
            if data.component_type != ComponentType::Button {
                return Ok(Incoming::Unknown { kind: envelope.kind });
            }
            let custom_id = parse_custom_id(&data.custom_id)?;
            if matches!(custom_id, CustomId::TradeModal(_)) {
                return Err(InteractionError::MisplacedCustomId { custom_id: data.custom_id, place: "button" });
            }
            Ok(Incoming::Button {
                custom_id,
                user: user?,
                message,
                interaction_id: envelope.id,
                application_id: envelope.application_id,
                token: envelope.token,
            })
        }
        MODAL_SUBMIT => {
            let data: ModalInteractionData = serde_json::from_value(data()?).map_err(|e| shape(e.to_string()))?;
            let CustomId::TradeModal(notification_id) = parse_custom_id(&data.custom_id)? else {
                return Err(InteractionError::MisplacedCustomId { custom_id: data.custom_id, place: "modal" });
            };
            let mut values = HashMap::new();
            collect_values(&data.components, &mut values);
            Ok(Incoming::ModalSubmit {
                notification_id,
                values,
                user: user?,
                message,
                interaction_id: envelope.id,
                application_id: envelope.application_id,
                token: envelope.token,
            })
        }
        other => Ok(Incoming::Unknown { kind: other }),
    }
}

fn shape(message: impl Into<String>) -> InteractionError {
    InteractionError::Shape(message.into())
}

/// `member.user` in a guild, `user` in a DM.
fn user_of(object: &Map<String, Value>) -> Result<InteractionUser, InteractionError> {
    let user = object
        .get("member")
        .and_then(|m| m.get("user"))
        .or_else(|| object.get("user"))
        .filter(|u| u.is_object())
        .ok_or(InteractionError::NoUser)?;
    let id = user.get("id").and_then(snowflake_text).ok_or(InteractionError::NoUser)?;
    let name = ["global_name", "username"]
        .iter()
        .find_map(|key| user.get(*key).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or(id.as_str())
        .to_string();
    Ok(InteractionUser { id, name })
}

fn message_of(object: &Map<String, Value>) -> Option<MessageRef> {
    let message = object.get("message")?;
    Some(MessageRef {
        channel_id: message.get("channel_id").and_then(snowflake_text)?,
        message_id: message.get("id").and_then(snowflake_text)?,
    })
}

fn snowflake_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn snowflake<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = Value::deserialize(deserializer)?;
    snowflake_text(&value).ok_or_else(|| serde::de::Error::custom("expected a snowflake id"))
}

fn flatten_options(options: &[CommandDataOption], path: &mut Vec<String>, out: &mut HashMap<String, String>) {
    for option in options {
        let text = match &option.value {
            CommandOptionValue::SubCommand(inner) | CommandOptionValue::SubCommandGroup(inner) => {
                path.push(option.name.clone());
                flatten_options(inner, path, out);
                continue;
            }
            CommandOptionValue::String(s) | CommandOptionValue::Focused(s, _) => s.clone(),
            CommandOptionValue::Integer(i) => i.to_string(),
            CommandOptionValue::Number(n) => n.to_string(),
            CommandOptionValue::Boolean(b) => b.to_string(),
            CommandOptionValue::User(id) => id.to_string(),
            CommandOptionValue::Channel(id) => id.to_string(),
            CommandOptionValue::Role(id) => id.to_string(),
            CommandOptionValue::Mentionable(id) => id.to_string(),
            CommandOptionValue::Attachment(id) => id.to_string(),
        };
        out.insert(option.name.clone(), text);
    }
}

/// Text inputs sit in a Label (current modals) or an action row (older ones); both are read.
fn collect_values(components: &[ModalInteractionComponent], out: &mut HashMap<String, String>) {
    for component in components {
        match component {
            ModalInteractionComponent::TextInput(input) => {
                out.insert(input.custom_id.clone(), input.value.clone());
            }
            ModalInteractionComponent::Label(label) => collect_values(std::slice::from_ref(&*label.component), out),
            ModalInteractionComponent::ActionRow(row) => collect_values(&row.components, out),
            _ => {}
        }
    }
}

/// `{"type":1}`: the answer to a PING.
pub fn pong() -> InteractionResponse {
    InteractionResponse { kind: InteractionResponseType::Pong, data: None }
}

/// A reply only the user who clicked sees (flags 64), such as an error or a confirmation.
pub fn ephemeral_message(content: &str) -> InteractionResponse {
    let content = if content.chars().count() > 2000 {
        content.chars().take(1999).chain(std::iter::once('…')).collect()
    } else {
        content.to_string()
    };
    InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData {
            content: Some(content),
            flags: Some(MessageFlags::EPHEMERAL),
            ..InteractionResponseData::default()
        }),
    }
}

/// Embeds only the user who clicked sees (the answer to Details, `/stats`, ...).
pub fn ephemeral_embeds(message: &OutgoingMessage) -> InteractionResponse {
    InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData {
            embeds: Some(message.embeds.clone()),
            components: (!message.components.is_empty()).then(|| message.components.clone()),
            flags: Some(MessageFlags::EPHEMERAL),
            ..InteractionResponseData::default()
        }),
    }
}

/// "Thinking…": the answer comes later through [`crate::DiscordNotifier::edit_original_response`]. Use
/// when the work may take longer than Discord's three seconds.
pub fn deferred(ephemeral: bool) -> InteractionResponse {
    InteractionResponse {
        kind: InteractionResponseType::DeferredChannelMessageWithSource,
        data: ephemeral.then(|| InteractionResponseData {
            flags: Some(MessageFlags::EPHEMERAL),
            ..InteractionResponseData::default()
        }),
    }
}

/// Acknowledges a button without changing its message yet.
pub fn deferred_update() -> InteractionResponse {
    InteractionResponse { kind: InteractionResponseType::DeferredUpdateMessage, data: None }
}

/// Replaces the message the button sits on, such as [`crate::render::ignored_message`] after Ignore.
pub fn update_message(message: &OutgoingMessage) -> InteractionResponse {
    InteractionResponse {
        kind: InteractionResponseType::UpdateMessage,
        data: Some(InteractionResponseData {
            embeds: Some(message.embeds.clone()),
            components: Some(message.components.clone()),
            ..InteractionResponseData::default()
        }),
    }
}

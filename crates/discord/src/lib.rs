//! Signalpost on Discord: rendering a signal as an embed with Open Trade / Ignore / Details buttons,
//! delivering it through twilight-http (with Discord's rate limits honoured), and checking the Ed25519
//! signature of interactions before anything is parsed.
//!
//! Every request goes to a base URL from configuration, so tests point it at the fake in `testkit`.
//!
//! - [`render`]: embeds, buttons, the trade modal and the custom ids they carry.
//! - [`client`]: [`DiscordNotifier`], the twilight-http implementation of [`Notifier`].
//! - [`signature`]: [`InteractionVerifier`], the Ed25519 check of `POST /discord/interactions`.
//! - [`interactions`]: an interaction body parsed into [`Incoming`], and the responses to it.
//! - [`commands`]: the slash commands Signalpost registers.
//! - [`chart`]: the PNG chart of recent candles with entry, stop loss and take profit that Details attaches.
//! - [`gateway`]: [`gateway::Gateway`], one twilight-gateway shard: interactions and channel messages.
//!
//! The HTTP edge itself (axum) belongs to the app; nothing here listens on a socket (the gateway connects out).

use async_trait::async_trait;
use std::time::Duration;

pub mod chart;
pub mod client;
pub mod commands;
pub mod gateway;
pub mod interactions;
pub mod render;
pub mod signature;

pub use client::{ConfigError, DiscordNotifier};
pub use interactions::{Incoming, InteractionError, InteractionUser, MessageRef, parse_interaction};
pub use render::{CustomId, CustomIdError, SignalView, TradeModalDefaults, parse_custom_id};
pub use signature::{InteractionVerifier, PublicKeyError, SignatureError};

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryTarget {
    /// A direct message to this Discord user (a DM channel is opened first).
    Dm { discord_user_id: String },
    /// A message in this guild channel.
    Channel { channel_id: String },
}

/// A message ready to send: the JSON body of Discord's "create message" request.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub embeds: Vec<twilight_model::channel::message::Embed>,
    pub components: Vec<twilight_model::channel::message::Component>,
}

/// What Discord answered when a message was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub channel_id: String,
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// Discord refused for good (for example 50007: the user does not accept DMs). Do not retry.
    ///
    /// Code 0 means the message was refused before it left, or Discord gave no code: an id that is not a
    /// snowflake, or a body that fails Discord's limits. Retrying would fail the same way.
    #[error("Discord refused the message (code {code}): {message}")]
    Refused { code: u64, message: String },
    /// Try again later; `retry_after` is Discord's hint when it gave one.
    #[error("Discord could not take the message now: {message}")]
    Transient { message: String, retry_after: Option<Duration> },
}

impl DeliveryError {
    /// Whether sending again can ever succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Refused { .. })
    }
}

/// Sends notifications. The Discord implementation uses twilight-http; tests may use a recording fake.
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    async fn send(&self, target: &DeliveryTarget, message: &OutgoingMessage) -> Result<SentMessage, DeliveryError>;
}

/// A file sent with a message, such as the PNG chart of Details.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// The name Discord shows, and the one an embed refers to as `attachment://<filename>`.
    pub filename: String,
    /// Alt text.
    pub description: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for OutgoingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingFile").field("filename", &self.filename).field("bytes", &self.bytes.len()).finish()
    }
}

/// The later answer to a deferred interaction: a follow-up message, with files when there are any.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub content: Option<String>,
    pub message: OutgoingMessage,
    pub files: Vec<OutgoingFile>,
    /// Only the user who interacted sees it (flags 64).
    pub ephemeral: bool,
}

/// Sends follow-up messages to interactions (`POST /webhooks/{application_id}/{interaction_token}`). The
/// Discord implementation is [`DiscordNotifier`]; the interaction token is what authorises it, valid for
/// 15 minutes after the interaction.
#[async_trait]
pub trait FollowUps: Send + Sync + std::fmt::Debug {
    async fn follow_up(
        &self,
        application_id: &str,
        interaction_token: &str,
        follow_up: &FollowUp,
    ) -> Result<SentMessage, DeliveryError>;
}

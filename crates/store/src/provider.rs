//! Provider channels and their messages (issue 6): the rows `provider_repo.rs` reads and writes.
//!
//! A provider message is stored once, as it first arrived, with the SHA-256 of its text; edits and deletions
//! are recorded beside it and never overwrite it. TradingView webhook deliveries use the same table under the
//! pseudo-channel [`WEBHOOK_CHANNEL`], so one UNIQUE key deduplicates both.

use chrono::{DateTime, Utc};
use domain::{Signal, SignalId, UserId};

/// The channel id webhook deliveries are stored under; Discord channel ids are numbers, so it cannot clash.
pub const WEBHOOK_CHANNEL: &str = "tradingview";

/// A Discord channel whose messages are parsed into signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderChannel {
    pub channel_id: String,
    pub name: String,
    /// Who registered it (a user name or `cli`).
    pub added_by: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// What the parser made of a message, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMessageKind {
    Open,
    Update,
    Close,
    Noise,
    /// Looked like a signal but could not be acted on (no symbol, a stop on the wrong side…).
    Refused,
}

impl ProviderMessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderMessageKind::Open => "open",
            ProviderMessageKind::Update => "update",
            ProviderMessageKind::Close => "close",
            ProviderMessageKind::Noise => "noise",
            ProviderMessageKind::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<ProviderMessageKind> {
        Some(match text {
            "open" => ProviderMessageKind::Open,
            "update" => ProviderMessageKind::Update,
            "close" => ProviderMessageKind::Close,
            "noise" => ProviderMessageKind::Noise,
            "refused" => ProviderMessageKind::Refused,
            _ => return None,
        })
    }
}

/// A message to record, with the signal it yields (if any).
#[derive(Debug, Clone)]
pub struct NewProviderMessage<'a> {
    pub channel_id: &'a str,
    pub message_id: &'a str,
    pub author: Option<&'a str>,
    pub content: &'a str,
    /// Lower-case hex SHA-256 of `content`.
    pub hash: &'a str,
    pub received_at: DateTime<Utc>,
    pub kind: ProviderMessageKind,
    /// For everything but a stored signal: `noise`, `refused: <reason>`, the update's actions…
    pub outcome: String,
    /// Stored in the same transaction as the message, with the dedup key `<channel>:<message>`.
    pub signal: Option<&'a Signal>,
    /// The Discord message id this message replied to: which signal an update refers to.
    pub reply_to: Option<&'a str>,
    /// With a stored signal: begin its copies in the same transaction (see [`BeginCopies`]). `None`: no
    /// copies are begun here (the copier's `begin_copies` does it).
    pub begin_copies: Option<BeginCopies>,
}

/// Begins a `pending` copy order for every enabled follower of the channel in the transaction that stores
/// the signal, so the copier can send the orders without a commit of its own first: one disk sync stands
/// between a provider's message and the orders instead of two. A crash after the commit leaves the copies
/// to the copier's recovery, exactly like ones `begin_copies` wrote.
#[derive(Debug, Clone, Copy)]
pub struct BeginCopies {
    /// The client order id of the copy of a signal for a follower's user (the broker crate's scheme).
    pub client_order_id: fn(SignalId, UserId) -> String,
    /// The copies' creation time, by the caller's clock: the copier tells new copies from a stopped run's
    /// leftovers by it.
    pub at: DateTime<Utc>,
}

/// What recording a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderIntake {
    /// Stored now; with the signal's id when it carried one.
    Stored { signal: Option<SignalId> },
    /// This (channel, message) was stored before: nothing was written, no second signal.
    Duplicate { signal: Option<SignalId> },
}

/// One edit of a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRevision {
    pub content: String,
    pub hash: String,
    pub at: DateTime<Utc>,
}

/// A stored message with its edits, oldest edit first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMessage {
    pub channel_id: String,
    pub message_id: String,
    pub author: Option<String>,
    /// The text as first received; edits are in `revisions`.
    pub content: String,
    pub hash: String,
    pub received_at: DateTime<Utc>,
    pub kind: ProviderMessageKind,
    pub outcome: String,
    pub signal_id: Option<SignalId>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The Discord message id this message replied to.
    pub reply_to: Option<String>,
    pub revisions: Vec<ProviderRevision>,
}

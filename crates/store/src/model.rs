//! The records the store reads and writes that are not domain types: users, stored signals,
//! notifications, trade history entries, and the arguments of the richer queries.

use chrono::{DateTime, Utc};
use domain::{
    Lots, NotificationId, Price, Signal, SignalId, Symbol, Trade, TradeId, TradeStatus, TradeUpdateKind, UserId,
};
use serde::{Deserialize, Serialize};

/// What a user may do: admins see the admin pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A Signalpost account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub discord_user_id: Option<String>,
    pub display_name: String,
    pub role: Role,
    /// ISO 4217 code profits are reported in.
    pub account_currency: String,
    /// The lot size the Open Trade modal is pre-filled with.
    pub default_lots: Lots,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub discord_user_id: Option<String>,
    pub display_name: String,
    pub role: Role,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// Links a Discord account (`/link`); a Discord account already linked to another user is a conflict.
    pub discord_user_id: Option<String>,
    pub account_currency: Option<String>,
    pub default_lots: Option<Lots>,
}

/// What [`Store::redeem_link_code`](crate::Store::redeem_link_code) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The code was good: it is spent, and the user now carries the Discord account.
    Linked(User),
    /// No code with that hash is usable: unknown, already spent, expired, or replaced by a newer one.
    /// Nothing changed.
    InvalidCode,
    /// The Discord account already belongs to another user. Nothing changed; the code stays unspent.
    DiscordAccountTaken,
}

/// A signal as stored, with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSignal {
    pub id: SignalId,
    pub signal: Signal,
    pub dedup_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// Stored, not yet delivered: the outbox will (re)send it.
    Queued,
    Sent,
    /// Given up on; never resent.
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Queued => "queued",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationStatus> {
        match text {
            "queued" => Some(NotificationStatus::Queued),
            "sent" => Some(NotificationStatus::Sent),
            "failed" => Some(NotificationStatus::Failed),
            _ => None,
        }
    }
}

/// One signal delivered (or to be delivered) to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: NotificationId,
    pub signal_id: SignalId,
    pub user_id: UserId,
    pub symbol: Symbol,
    pub discord_message_id: Option<String>,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub acknowledged: bool,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub signal_id: SignalId,
    pub user_id: UserId,
    /// The signal's symbol, kept on the notification for the cooldown check.
    pub symbol: Symbol,
    /// The router's clock, so cooldowns and daily caps follow the same time as the checks against them.
    pub created_at: DateTime<Utc>,
}

/// What every notification of one signal shares, for
/// [`Store::create_notifications_within_limits`](crate::Store::create_notifications_within_limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationBatch {
    pub signal_id: SignalId,
    pub symbol: Symbol,
    pub created_at: DateTime<Utc>,
}

/// The router's per-user limits, checked in the same transaction that writes the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationLimits {
    /// Notifications created at or after this instant count against `max_in_window`.
    pub window_start: DateTime<Utc>,
    pub max_in_window: u32,
    /// Refuse when the user got a notification for the same symbol at or after this instant.
    pub cooldown_start: Option<DateTime<Utc>>,
}

/// What [`Store::create_notification_within_limits`](crate::Store::create_notification_within_limits)
/// decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    Created(NotificationId),
    /// This (signal, user) was notified before; nothing new was written.
    AlreadyNotified(NotificationId),
    DailyCapReached,
    CoolingDown,
}

/// The result of [`Store::open_trade`](crate::Store::open_trade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOutcome {
    pub trade: Trade,
    /// False when the notification already had a trade, which is returned instead of a duplicate.
    pub created: bool,
}

/// Which trades [`Store::list_trades`](crate::Store::list_trades) returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeFilter {
    pub user_id: Option<UserId>,
    pub status: Option<TradeStatus>,
    pub symbol: Option<Symbol>,
    pub limit: u32,
    pub offset: u32,
}

impl Default for TradeFilter {
    fn default() -> Self {
        TradeFilter { user_id: None, status: None, symbol: None, limit: 100, offset: 0 }
    }
}

/// The id of an entry in a trade's history. Ids grow with every write, so they double as a change-feed
/// cursor (see [`Store::trade_updates_after`](crate::Store::trade_updates_after)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TradeUpdateId(pub i64);

impl std::fmt::Display for TradeUpdateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An entry in a trade's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeUpdate {
    pub id: TradeUpdateId,
    pub trade_id: TradeId,
    pub kind: TradeUpdateKind,
    pub price: Option<Price>,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A history entry that does not change the trade itself: a price snapshot or a partial close note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTradeUpdate {
    pub trade_id: TradeId,
    pub kind: TradeUpdateKind,
    pub price: Option<Price>,
    pub stop_loss: Option<Price>,
    pub take_profit: Option<Price>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

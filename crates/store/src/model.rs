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

/// A local account name and password hash (the dashboard's sign-in without Discord).
#[derive(Clone, PartialEq, Eq)]
pub struct LocalCredentials {
    pub user_id: UserId,
    pub username: String,
    /// An argon2 PHC string; `None` until a password is set (sign-in by one-time link only).
    pub password_hash: Option<String>,
}

// A password hash is not a password, but it is an offline guessing target: keep it out of logs.
impl std::fmt::Debug for LocalCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCredentials")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A Discord sign-in under way: what the OAuth callback must match, kept on the browser's pre-session.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthPending {
    pub state: String,
    pub pkce_verifier: String,
}

impl std::fmt::Debug for OAuthPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthPending([redacted])")
    }
}

/// A dashboard session to store. The id is the SHA-256 of the cookie's token, so a database reader cannot
/// ride a session; `user_id: None` is a pre-session (sign-in form, OAuth under way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebSession {
    pub id_hash: String,
    pub user_id: Option<UserId>,
    pub csrf_token: String,
    pub oauth: Option<OAuthPending>,
    /// Where to go after signing in (a local path).
    pub next_path: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored dashboard session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id_hash: String,
    pub user_id: Option<UserId>,
    pub csrf_token: String,
    pub oauth: Option<OAuthPending>,
    pub next_path: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

// ---------- fan-out: the router lease and signal audiences (issue 4) ----------

/// The router lease as one router holds it. Whoever holds the row's current epoch is the only router whose
/// routing writes commit; taking the lease over starts a new epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLease {
    pub holder: String,
    pub epoch: i64,
    pub expires_at: DateTime<Utc>,
}

/// What changed, since the lease holder last looked, that its in-memory routing state depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingChanges {
    /// Changes whenever a user or a user's settings change.
    pub users_version: i64,
    /// Changes to what counts toward caps and cooldowns that no audience made, oldest first.
    pub limit_changes: Vec<LimitChange>,
}

/// A notification that started or stopped counting toward its user's cap and cooldown other than through
/// an audience: given up on, taken back from given up, or written by
/// [`Store::create_notification`](crate::Store::create_notification) and its limit-checking siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitChange {
    pub notification: CountedNotification,
    /// Whether it counts now.
    pub counts: bool,
}

/// A notification as far as caps and cooldowns are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedNotification {
    pub signal_id: SignalId,
    pub user_id: UserId,
    pub symbol: Symbol,
    pub created_at: DateTime<Utc>,
}

/// A signal's recipients as the router decided them: one row, written in the routing transaction, from
/// which the per-user notifications are written afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudience {
    pub signal_id: SignalId,
    /// The signal's symbol and time, which every notification written from the audience carries.
    pub symbol: Symbol,
    pub created_at: DateTime<Utc>,
    /// Each user once; the order does not matter (they are stored ascending).
    pub recipients: Vec<UserId>,
}

/// What [`Store::record_audience`](crate::Store::record_audience) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceOutcome {
    /// The audience is durable; its notifications are still to be written.
    Recorded,
    /// The signal was routed before, to this many users; nothing was written.
    AlreadyRouted { recipients: u64 },
    /// The caller no longer holds the lease (another router took it over); nothing was written.
    LeaseLost,
}

/// An audience some of whose notifications are not written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingAudience {
    pub signal_id: SignalId,
    pub recipients: u64,
    pub materialised: u64,
}

/// What one [`Store::materialise_audience`](crate::Store::materialise_audience) call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaterialiseProgress {
    /// Notification rows written (recipients that already had one, or no longer exist, get none).
    pub created: u64,
    /// Recipients still without their row.
    pub remaining: u64,
}

/// Recipients as stored: ascending ids, each the LEB128 varint of its difference from the previous one
/// (starting from 0), so 9,000 users close in id take about 9 kB rather than 72.
pub(crate) fn encode_recipients(recipients: &[UserId]) -> Result<(Vec<u8>, Vec<i64>), String> {
    let mut ids: Vec<i64> = recipients.iter().map(|u| u.0).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.first().is_some_and(|first| *first < 0) {
        return Err("a user id cannot be negative".into());
    }
    let mut bytes = Vec::with_capacity(ids.len() + 8);
    let mut previous = 0i64;
    for id in &ids {
        let mut delta = (id - previous) as u64;
        previous = *id;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                bytes.push(byte);
                break;
            }
            bytes.push(byte | 0x80);
        }
    }
    Ok((bytes, ids))
}

/// The inverse of [`encode_recipients`]; an error names what is wrong with the bytes.
pub(crate) fn decode_recipients(bytes: &[u8]) -> Result<Vec<i64>, String> {
    let mut ids = Vec::with_capacity(bytes.len());
    let (mut previous, mut delta, mut shift) = (0i64, 0u64, 0u32);
    for byte in bytes {
        if shift > 63 {
            return Err("a varint is longer than 64 bits".into());
        }
        delta |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            previous =
                i64::try_from(delta).ok().and_then(|d| previous.checked_add(d)).ok_or("a user id overflows 64 bits")?;
            ids.push(previous);
            (delta, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err("the last varint is cut short".into());
    }
    Ok(ids)
}

#[cfg(test)]
mod recipients_tests {
    use super::*;

    #[test]
    fn recipients_round_trip_sorted_and_deduplicated() {
        let users = [UserId(300), UserId(2), UserId(2), UserId(i64::MAX), UserId(0), UserId(129)];
        let (bytes, ids) = encode_recipients(&users).unwrap();
        assert_eq!(ids, vec![0, 2, 129, 300, i64::MAX]);
        assert_eq!(decode_recipients(&bytes).unwrap(), ids);
        let dense: Vec<UserId> = (1..=9000).map(UserId).collect();
        assert_eq!(encode_recipients(&dense).unwrap().0.len(), 9000, "one byte per close id");
        assert!(encode_recipients(&[UserId(-1)]).is_err());
        assert!(decode_recipients(&[0x80]).is_err(), "cut short");
        assert!(decode_recipients(&[0xff; 11]).is_err(), "too long");
    }
}

/// The last error of a queued notification the outbox did not send because its signal had gone stale: the
/// notification is [`NotificationStatus::Failed`] with a `last_error` that starts with this. A status of its
/// own would need the notifications table rebuilt on SQLite (a CHECK constraint cannot be altered there).
pub const NOTIFICATION_EXPIRED: &str = "expired";

impl Notification {
    /// Given up on because its signal was too old to be worth sending (see [`NOTIFICATION_EXPIRED`]).
    pub fn is_expired(&self) -> bool {
        self.status == NotificationStatus::Failed
            && self.last_error.as_deref().is_some_and(|e| e.starts_with(NOTIFICATION_EXPIRED))
    }
}

/// The id of a trade notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TradeNoticeId(pub i64);

impl std::fmt::Display for TradeNoticeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a trade notice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TradeNoticeKind {
    /// The trade closed (take profit, stop loss, by hand, timeout).
    Closed,
    Cancelled,
    /// A "still running" update with the live P&L.
    Running,
}

impl TradeNoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeNoticeKind::Closed => "closed",
            TradeNoticeKind::Cancelled => "cancelled",
            TradeNoticeKind::Running => "running",
        }
    }

    pub fn parse(text: &str) -> Option<TradeNoticeKind> {
        match text {
            "closed" => Some(TradeNoticeKind::Closed),
            "cancelled" => Some(TradeNoticeKind::Cancelled),
            "running" => Some(TradeNoticeKind::Running),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TradeNoticeStatus {
    /// Stored, not yet delivered: a sender will (re)send it.
    Queued,
    Sent,
    /// Given up on (Discord refused it, or it failed too often); never resent.
    Failed,
    /// No longer worth sending: a running update whose trade closed, or that a newer update replaced.
    Expired,
}

impl TradeNoticeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeNoticeStatus::Queued => "queued",
            TradeNoticeStatus::Sent => "sent",
            TradeNoticeStatus::Failed => "failed",
            TradeNoticeStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<TradeNoticeStatus> {
        match text {
            "queued" => Some(TradeNoticeStatus::Queued),
            "sent" => Some(TradeNoticeStatus::Sent),
            "failed" => Some(TradeNoticeStatus::Failed),
            "expired" => Some(TradeNoticeStatus::Expired),
            _ => None,
        }
    }
}

/// A message about a trade owed to its owner: one per (trade, kind, slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeNotice {
    pub id: TradeNoticeId,
    pub trade_id: TradeId,
    pub kind: TradeNoticeKind,
    /// Running updates: whole periods the trade had been open when it was queued; 0 for the others.
    pub slot: i64,
    /// Running updates: the live price the P&L was taken at, and that P&L.
    pub price: Option<Price>,
    pub pips: Option<rust_decimal::Decimal>,
    pub profit: Option<rust_decimal::Decimal>,
    pub status: TradeNoticeStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Until when a sender holds it (or, after a failure, when it may next be tried).
    pub claimed_until: Option<DateTime<Utc>>,
    pub discord_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A "still running" update to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunningNotice {
    pub trade_id: TradeId,
    /// Whole update periods since the trade opened; one update per slot.
    pub slot: i64,
    pub price: Price,
    pub pips: Option<rust_decimal::Decimal>,
    pub profit: Option<rust_decimal::Decimal>,
    pub at: DateTime<Utc>,
}

/// Where a page of trade history ends: the (opened_at, id) of its last row. The next page starts strictly
/// after it, so a page costs the same however deep it is (no OFFSET over a million rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCursor {
    pub opened_at: DateTime<Utc>,
    pub id: TradeId,
}

/// One user's trades for the dashboard's history, its CSV export and its API, newest first (by opened_at,
/// then id). See [`Store::trades_page`](crate::Store::trades_page) and
/// [`Store::stream_trades`](crate::Store::stream_trades).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeQuery {
    /// Always one user's: the dashboard never lists anyone else's trades.
    pub user_id: UserId,
    pub status: Option<TradeStatus>,
    pub result: Option<domain::TradeResult>,
    pub symbol: Option<Symbol>,
    /// Opened at or after this instant.
    pub opened_from: Option<DateTime<Utc>>,
    /// Opened strictly before this instant.
    pub opened_until: Option<DateTime<Utc>>,
    /// Only trades after this cursor in the order above: the next page.
    pub after: Option<TradeCursor>,
    /// At most this many; `None` means all of them (the streamed export).
    pub limit: Option<u32>,
}

impl TradeQuery {
    /// Every trade of `user`.
    pub fn of(user_id: UserId) -> TradeQuery {
        TradeQuery {
            user_id,
            status: None,
            result: None,
            symbol: None,
            opened_from: None,
            opened_until: None,
            after: None,
            limit: None,
        }
    }
}

// ---------- the dashboard's data pages at scale (issue 5, item 9) ----------

/// A session looked up together with what a signed-in request needs next, in one query (see
/// [`Store::web_session_context`](crate::Store::web_session_context)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    pub session: WebSession,
    /// The session's user; `None` for a pre-session (or a user that no longer exists).
    pub user: Option<User>,
    /// The user's trades version: it changes, in the same transaction, with every write to the user's trades
    /// by any process. 0 when their trades were never written since the counter was added (migration 0009).
    pub trades_version: i64,
}

/// Positions of one row's texts in a [`TradeTexts`] batch; `NONE` marks a NULL.
#[derive(Debug, Clone, Copy)]
struct TextSpan(u32, u32);

impl TextSpan {
    const NONE: TextSpan = TextSpan(u32::MAX, u32::MAX);
}

#[derive(Debug, Clone)]
struct TextRow {
    id: i64,
    signal_id: Option<i64>,
    opened_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    spans: [TextSpan; TEXT_FIELDS],
}

const TEXT_FIELDS: usize = 13;

/// Trades as their stored text, a batch at a time, for exports (see
/// [`Store::stream_trade_texts`](crate::Store::stream_trade_texts)): decimals are the exact decimal text the
/// database holds (checked, not parsed and re-printed), so writing a row costs copies, not conversions, and
/// a batch holds all its texts in one string rather than a dozen small ones per row.
#[derive(Debug, Clone, Default)]
pub struct TradeTexts {
    text: String,
    rows: Vec<TextRow>,
}

/// One trade of a [`TradeTexts`] batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeText<'a> {
    pub id: TradeId,
    pub symbol: &'a str,
    pub side: &'a str,
    pub status: &'a str,
    pub result: Option<&'a str>,
    /// Decimals: plain decimal text (`-?digits[.digits]`), as `Decimal`'s `Display` writes it.
    pub lots: &'a str,
    pub entry: &'a str,
    pub stop_loss: Option<&'a str>,
    pub take_profit: Option<&'a str>,
    pub exit_price: Option<&'a str>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<&'a str>,
    pub pips: Option<&'a str>,
    pub profit: Option<&'a str>,
    pub notes: Option<&'a str>,
    pub signal_id: Option<SignalId>,
}

/// The text columns of a [`TradeText`], in the order [`TradeTexts::push`] takes them.
pub(crate) struct TradeTextFields<'a> {
    pub id: i64,
    pub signal_id: Option<i64>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// symbol, side, status, result, lots, entry, stop_loss, take_profit, exit_price, close_reason, pips,
    /// profit, notes.
    pub texts: [Option<&'a str>; TEXT_FIELDS],
}

impl TradeTexts {
    pub(crate) fn with_capacity(rows: usize) -> TradeTexts {
        TradeTexts { text: String::with_capacity(rows * 128), rows: Vec::with_capacity(rows) }
    }

    pub(crate) fn push(&mut self, fields: TradeTextFields<'_>) {
        let mut spans = [TextSpan::NONE; TEXT_FIELDS];
        for (span, text) in spans.iter_mut().zip(fields.texts) {
            if let Some(text) = text {
                let start = self.text.len();
                self.text.push_str(text);
                *span = TextSpan(start as u32, self.text.len() as u32);
            }
        }
        self.rows.push(TextRow {
            id: fields.id,
            signal_id: fields.signal_id,
            opened_at: fields.opened_at,
            closed_at: fields.closed_at,
            spans,
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch's trades, in the query's order.
    pub fn rows(&self) -> impl Iterator<Item = TradeText<'_>> + '_ {
        self.rows.iter().map(move |row| {
            let text = |i: usize| {
                let TextSpan(start, end) = row.spans[i];
                (start != u32::MAX).then(|| &self.text[start as usize..end as usize])
            };
            TradeText {
                id: TradeId(row.id),
                symbol: text(0).unwrap_or_default(),
                side: text(1).unwrap_or_default(),
                status: text(2).unwrap_or_default(),
                result: text(3),
                lots: text(4).unwrap_or_default(),
                entry: text(5).unwrap_or_default(),
                stop_loss: text(6),
                take_profit: text(7),
                exit_price: text(8),
                opened_at: row.opened_at,
                closed_at: row.closed_at,
                close_reason: text(9),
                pips: text(10),
                profit: text(11),
                notes: text(12),
                signal_id: row.signal_id.map(SignalId),
            }
        })
    }
}

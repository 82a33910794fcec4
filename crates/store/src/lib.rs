//! Signalpost's persistence: one repository API, [`Store`], over SQLite (the embedded default) and
//! PostgreSQL (for several processes sharing one database).
//!
//! [`connect`] picks the backend from the URL. Both backends run the same SQL through the same code
//! (see `repo.rs`); only the schema files, the decimal encoding (NUMERIC in PostgreSQL, exact text in
//! SQLite) and a few locking statements differ.
//!
//! The rules every caller may rely on, on both backends and across processes:
//! - a signal with a dedup key is stored once; a (signal, user) pair gets one notification;
//! - an Open Trade submit (one notification id) gives one trade, written together with its `opened`
//!   history entry;
//! - a trade is closed or cancelled exactly once: the losing racer gets `None` and writes nothing;
//! - bad input is rejected before anything is written, and a corrupt row is an error, never a panic.

mod codec;
pub mod error;
pub mod model;
pub mod postgres;
pub mod sqlite;

pub use error::{StoreError, ValidationError, redact_url};
pub use model::{
    LinkOutcome, NewNotification, NewTradeUpdate, NewUser, Notification, NotificationBatch, NotificationLimits,
    NotificationStatus, NotifyOutcome, OpenOutcome, Role, StoredSignal, TradeFilter, TradeUpdate, TradeUpdateId, User,
    UserUpdate,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Closing, NewTrade, NotificationId, Price, Signal, SignalId, Symbol, Tick, Trade, TradeId, UserId, UserSettings,
};
use std::sync::Arc;

/// The repository API the services use. Every write is atomic: it happens completely or not at all.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend_name(&self) -> &'static str;

    /// Applies the pending migrations; running it again, or from two processes at once, is harmless.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A round trip to the database, for `/healthz`.
    async fn ping(&self) -> Result<(), StoreError>;

    // --- users ---

    /// Fails with [`StoreError::Conflict`] when the Discord account already belongs to a user.
    async fn create_user(&self, new: &NewUser) -> Result<User, StoreError>;

    /// The user linked to a Discord account, created with `display_name` on first sight. Safe to race.
    async fn ensure_discord_user(&self, discord_user_id: &str, display_name: &str) -> Result<User, StoreError>;

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn user_by_discord_id(&self, discord_user_id: &str) -> Result<Option<User>, StoreError>;

    /// Every user, oldest first.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Changes the given fields; [`StoreError::NotFound`] when there is no such user.
    async fn update_user(&self, id: UserId, update: &UserUpdate) -> Result<User, StoreError>;

    // --- linking Discord accounts ---

    /// Stores a one-time `/link` code for `user` (only its hash, valid until `expires_at`), replacing every
    /// code the user had before. [`StoreError::MissingReference`] when there is no such user,
    /// [`StoreError::Conflict`] when another user holds a code with the same hash.
    async fn create_link_code(
        &self,
        user: UserId,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Spends the code and links `discord_user_id` to its user, in one transaction: the code must exist, be
    /// unspent and expire after `now`, and the Discord account must not belong to another user. Two
    /// redeemers of one code get one [`LinkOutcome::Linked`] between them.
    async fn redeem_link_code(
        &self,
        code_hash: &str,
        discord_user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, StoreError>;

    // --- settings ---

    /// The user's settings, or the defaults when they never saved any.
    async fn get_settings(&self, user: UserId) -> Result<UserSettings, StoreError>;

    /// Validates, then replaces the user's settings. Invalid settings change nothing.
    async fn save_settings(&self, user: UserId, settings: &UserSettings) -> Result<(), StoreError>;

    /// Every user with their settings (defaults where none were saved), for the router.
    async fn users_with_settings(&self) -> Result<Vec<(User, UserSettings)>, StoreError>;

    // --- signals ---

    /// Validates and stores a signal. With a `dedup_key` seen before, returns the earlier signal's id and
    /// `false` instead of storing it again.
    async fn insert_signal(&self, signal: &Signal, dedup_key: Option<&str>) -> Result<(SignalId, bool), StoreError>;

    async fn get_signal(&self, id: SignalId) -> Result<Option<StoredSignal>, StoreError>;

    /// The latest signals, newest first.
    async fn recent_signals(&self, limit: u32) -> Result<Vec<StoredSignal>, StoreError>;

    // --- notifications ---

    /// Queues a notification; `None` when this (signal, user) already has one.
    async fn create_notification(&self, new: &NewNotification) -> Result<Option<NotificationId>, StoreError>;

    /// Checks the user's daily cap and per-pair cooldown and queues the notification in one transaction,
    /// serialised per user, so two routers (or a restarted one) never exceed the limits or send twice.
    async fn create_notification_within_limits(
        &self,
        new: &NewNotification,
        limits: &NotificationLimits,
    ) -> Result<NotifyOutcome, StoreError>;

    async fn get_notification(&self, id: NotificationId) -> Result<Option<Notification>, StoreError>;

    /// Records a delivery; [`StoreError::NotFound`] when there is no such notification.
    async fn mark_notification_sent(
        &self,
        id: NotificationId,
        discord_message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a failed attempt. With `retry` it stays queued for the outbox; without, it is given up.
    async fn mark_notification_failed(&self, id: NotificationId, error: &str, retry: bool) -> Result<(), StoreError>;

    /// The user answered the message (Ignore, Open Trade).
    async fn acknowledge_notification(&self, id: NotificationId) -> Result<(), StoreError>;

    /// The outbox: queued notifications, oldest first.
    async fn queued_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError>;

    /// A user's inbox, newest first.
    async fn notifications_for_user(
        &self,
        user: UserId,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Notifications (not given up) created for the user at or after `since`: the daily cap.
    async fn count_notifications_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u64, StoreError>;

    /// When the user was last notified (not given up) about `symbol`: the cooldown.
    async fn last_notification_for_pair(
        &self,
        user: UserId,
        symbol: &Symbol,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    // --- trades ---

    /// Validates and stores a trade with its `opened` history entry, atomically. A second submit for the same
    /// notification returns the first trade with `created: false`, whatever it carries; checking that the
    /// notification belongs to the submitting user is the caller's job.
    async fn open_trade(&self, new: &NewTrade) -> Result<OpenOutcome, StoreError>;

    async fn get_trade(&self, id: TradeId) -> Result<Option<Trade>, StoreError>;

    /// Trades matching the filter, newest first.
    async fn list_trades(&self, filter: &TradeFilter) -> Result<Vec<Trade>, StoreError>;

    /// How many trades match the filter, ignoring its limit and offset.
    async fn count_trades(&self, filter: &TradeFilter) -> Result<u64, StoreError>;

    /// Every open trade, by id: what the position monitor loads at start-up.
    async fn open_trades(&self) -> Result<Vec<Trade>, StoreError>;

    /// The ids of every open trade, ascending: cheap enough to reconcile a monitor's set now and then.
    async fn open_trade_ids(&self) -> Result<Vec<TradeId>, StoreError>;

    /// Open trades with an id above `after`, ascending: new trades opened by another process.
    ///
    /// PostgreSQL hands out ids when a row is inserted, not when it commits, so a trade can become visible
    /// after one with a higher id; a tailer should reconcile with [`Store::open_trade_ids`] from time to time.
    async fn open_trades_after(&self, after: TradeId) -> Result<Vec<Trade>, StoreError>;

    /// Closes an open trade and records a `closed` history entry in the same transaction. `None`, with
    /// nothing written, when the trade is no longer open (another process closed it first);
    /// [`StoreError::NotFound`] when there is no such trade.
    async fn close_trade(&self, id: TradeId, closing: &Closing) -> Result<Option<Trade>, StoreError>;

    /// Cancels an open trade, like [`Store::close_trade`].
    async fn cancel_trade(&self, id: TradeId, at: DateTime<Utc>) -> Result<Option<Trade>, StoreError>;

    /// Replaces an open trade's stop loss and take profit (`None` removes one), after checking they sit on
    /// the right sides of the entry, and records a history entry for each that changed. `None` when the
    /// trade is not open.
    async fn set_trade_levels(
        &self,
        id: TradeId,
        stop_loss: Option<Price>,
        take_profit: Option<Price>,
        at: DateTime<Utc>,
    ) -> Result<Option<Trade>, StoreError>;

    /// Appends a history entry that does not change the trade (a price snapshot, a partial-close note).
    /// The kinds the transitions write (`opened`, `closed`, `cancelled`, level moves) are refused here.
    async fn add_trade_update(&self, update: &NewTradeUpdate) -> Result<TradeUpdate, StoreError>;

    /// A trade's history, oldest first.
    async fn trade_updates(&self, trade: TradeId) -> Result<Vec<TradeUpdate>, StoreError>;

    /// Every trade's history entries after a cursor, ascending, at most `limit`: a change feed through which
    /// a position monitor learns of trades opened, closed, cancelled or re-levelled by another process.
    /// Start the cursor at [`Store::last_trade_update_id`] taken *before* loading [`Store::open_trades`].
    async fn trade_updates_after(&self, after: TradeUpdateId, limit: u32) -> Result<Vec<TradeUpdate>, StoreError>;

    /// The highest history entry id, or 0 when there is none.
    async fn last_trade_update_id(&self) -> Result<TradeUpdateId, StoreError>;

    // --- prices ---

    /// Records the latest tick of an instrument, replacing the previous one.
    async fn set_last_price(&self, tick: &Tick) -> Result<(), StoreError>;

    /// The latest recorded tick of an instrument, if any.
    async fn last_price(&self, symbol: &Symbol) -> Result<Option<Tick>, StoreError>;

    // --- routing in bulk ---

    /// [`Store::create_notification_within_limits`] for many users of one signal at once: one transaction,
    /// one set-based insert with the cap and cooldown evaluated in SQL. The rules are the same as the per-user
    /// method's (one notification per (signal, user), cap and cooldown over notifications not given up,
    /// serialised per user against any other router), and so is each answer, returned in `candidates` order;
    /// a user listed twice gets `AlreadyNotified` the second time. A user that does not exist fails the whole
    /// call with [`StoreError::NotFound`], and nothing is written.
    async fn create_notifications_within_limits(
        &self,
        signal: &NotificationBatch,
        candidates: &[(UserId, NotificationLimits)],
    ) -> Result<Vec<NotifyOutcome>, StoreError>;
}

/// Opens the database a URL names: `sqlite:PATH` or `sqlite://PATH` (the file is created if missing) or
/// `postgres://…` / `postgresql://…`. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Ok(Arc::new(SqliteStore::connect(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::connect(url).await?)),
        _ => Err(StoreError::UnsupportedUrl { url_redacted: redact_url(url) }),
    }
}

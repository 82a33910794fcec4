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

pub mod actions;
mod codec;
pub mod error;
pub mod follower;
pub mod generations;
pub mod model;
pub mod postgres;
pub mod provider;
pub mod sqlite;
pub mod vault;

pub use error::{StoreError, ValidationError, redact_url};
pub use follower::{
    BrokerKind, CopyOrder, CopyOrderId, CopyStatus, Follower, FollowerDayStats, FollowerId, NewCopy, NewFollower,
    PlacedCopy,
};
pub use model::{
    AudienceOutcome, CountedNotification, LimitChange, MaterialiseProgress, NewAudience, PendingAudience, RouterLease,
    RoutingChanges,
};
pub use model::{
    LinkOutcome, NewNotification, NewTradeUpdate, NewUser, Notification, NotificationBatch, NotificationLimits,
    NotificationStatus, NotifyOutcome, OpenOutcome, Role, StoredSignal, TradeFilter, TradeUpdate, TradeUpdateId, User,
    UserUpdate,
};
pub use model::{LocalCredentials, NewWebSession, OAuthPending, WebSession};
pub use model::{
    NOTIFICATION_EXPIRED, NewRunningNotice, TradeNotice, TradeNoticeId, TradeNoticeKind, TradeNoticeStatus,
};
pub use model::{SessionContext, TradeText, TradeTexts};
pub use model::{TradeCursor, TradeQuery};
pub use postgres::PgStore;
pub use provider::{
    BeginCopies, NewProviderMessage, ProviderChannel, ProviderIntake, ProviderMessage, ProviderMessageKind,
    ProviderRevision, WEBHOOK_CHANNEL,
};
pub use sqlite::{SqliteStore, WalCheckpoint};
pub use vault::{BrokerCredentials, KeyCipher, SealedCredentials, VaultError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Candle, Closing, Lots, NewTrade, NotificationId, Price, Signal, SignalId, Symbol, Tick, Timeframe, Trade, TradeId,
    UserId, UserSettings,
};
use std::collections::HashMap;
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

    /// Records a failed attempt. With `retry` it stays queued for the outbox, claimable at once (see
    /// [`Store::retry_notification_at`] for a later time); without, it is given up. Either way any claim ends.
    async fn mark_notification_failed(&self, id: NotificationId, error: &str, retry: bool) -> Result<(), StoreError>;

    /// The user answered the message (Ignore, Open Trade).
    async fn acknowledge_notification(&self, id: NotificationId) -> Result<(), StoreError>;

    /// Queued notifications, oldest first, whether or not a sender holds them (the outbox claims instead).
    async fn queued_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError>;

    /// The outbox: claims up to `limit` queued notifications that nobody holds at `now`, oldest first, until
    /// `lease_until`, and returns them. A notification is claimed by one caller only, across processes; a
    /// claim that ran out (its holder crashed) can be taken again. Sent and given-up ones are never claimed.
    async fn claim_queued_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Records a failed attempt and keeps the notification queued, held until `retry_at` so that no process
    /// claims it sooner: the backoff is shared. [`StoreError::NotFound`] when there is no such notification.
    async fn retry_notification_at(
        &self,
        id: NotificationId,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

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

    // --- candles ---

    /// Stores closed candles of one series, keyed by open time, in one transaction. Idempotent: a candle
    /// saved again (a replay, a backfill that overlaps) replaces its row, so each open time is stored once.
    /// Every candle is validated first; one bad candle stores none of them.
    async fn save_candles(&self, symbol: &Symbol, timeframe: Timeframe, candles: &[Candle]) -> Result<(), StoreError>;

    /// The latest `limit` candles of a series that opened at or before `until`, oldest first.
    async fn recent_candles(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Candle>, StoreError>;

    /// The open time of the series' latest stored candle: where a restart's backfill starts.
    async fn last_candle_time(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

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

    // --- fan-out: the router lease and signal audiences (issue 4) ---
    //
    // One router at a time (the lease holder) decides each signal's recipients in memory and records them as
    // one audience row, fenced by its lease epoch; the per-user notifications are written from the audience
    // afterwards, in batches, with UNIQUE (signal, user) as the final guard. The holder keeps caps and
    // cooldowns in memory, seeded from `counted_notifications_since` and kept current with
    // `take_routing_changes`.

    /// Takes the router lease for `holder` until `now + ttl` when it is free, expired, or already
    /// `holder`'s, always with a new epoch: whatever the caller knew as a router before is stale. `None` while
    /// another holder's lease runs.
    async fn acquire_router_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<RouterLease>, StoreError>;

    /// Extends a held lease to `now + ttl`, keeping its epoch; `None` when another router took it over.
    async fn renew_router_lease(
        &self,
        lease: &RouterLease,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<RouterLease>, StoreError>;

    /// Gives the lease up so another router may take it at once; a lease taken over already is left alone.
    async fn release_router_lease(&self, lease: &RouterLease) -> Result<(), StoreError>;

    /// The users version and the limit changes not consumed yet, which this call consumes. `None`, with
    /// nothing consumed, when `lease` is no longer the current one.
    async fn take_routing_changes(&self, lease: &RouterLease) -> Result<Option<RoutingChanges>, StoreError>;

    /// Every notification created at or after `since` that counts toward caps and cooldowns (not given up):
    /// what a new lease holder seeds its limits from, after writing every pending audience's notifications.
    async fn counted_notifications_since(&self, since: DateTime<Utc>) -> Result<Vec<CountedNotification>, StoreError>;

    /// Records a signal's audience and extends the lease to `now + ttl`, in one transaction that first checks
    /// `lease` is still the current one. A signal is routed once: a second audience for it writes nothing.
    async fn record_audience(
        &self,
        lease: &RouterLease,
        audience: &NewAudience,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<AudienceOutcome, StoreError>;

    /// Audiences not all of whose notifications are written, oldest signal first.
    async fn pending_audiences(&self, limit: u32) -> Result<Vec<PendingAudience>, StoreError>;

    /// Writes the notifications (queued, with the signal's symbol and time) of the audience's next
    /// `max_rows` recipients and records the progress, in one transaction. Idempotent and safe to race: a
    /// recipient that already has a notification for the signal, or no longer exists, gets none.
    /// [`StoreError::NotFound`] when the signal has no audience.
    async fn materialise_audience(&self, signal: SignalId, max_rows: u32) -> Result<MaterialiseProgress, StoreError>;

    // --- dashboard sign-in (issue 5) ---

    /// Sets the user's local username and password hash (an argon2 PHC string; `None` for sign-in by one-time
    /// link only), replacing earlier ones. [`StoreError::Conflict`] when another user has the username,
    /// [`StoreError::MissingReference`] when there is no such user.
    async fn set_local_credentials(
        &self,
        user: UserId,
        username: &str,
        password_hash: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The local credentials with this username (exact match).
    async fn local_credentials_by_username(&self, username: &str) -> Result<Option<LocalCredentials>, StoreError>;

    /// The user's local credentials, if they have any.
    async fn local_credentials(&self, user: UserId) -> Result<Option<LocalCredentials>, StoreError>;

    /// Stores a dashboard session or pre-session. [`StoreError::Conflict`] when the id is taken.
    async fn create_web_session(&self, new: &NewWebSession) -> Result<(), StoreError>;

    /// The session with this id hash, unless it expired at or before `now`.
    async fn web_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<WebSession>, StoreError>;

    /// Records activity and moves the expiry of a session that has not expired yet; an expired one stays so.
    async fn touch_web_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes the session and returns it, expired or not: sign-out, and the single use of a pre-session.
    async fn take_web_session(&self, id_hash: &str) -> Result<Option<WebSession>, StoreError>;

    /// Deletes every session that expired at or before `now`; returns how many.
    async fn delete_expired_web_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Ends every session of a user (after a password change); returns how many.
    async fn delete_user_web_sessions(&self, user: UserId) -> Result<u64, StoreError>;

    /// Stores a one-time sign-in token (only its hash), replacing the user's earlier ones.
    /// [`StoreError::MissingReference`] when there is no such user.
    async fn create_sign_in_token(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Spends a sign-in token: its user when it exists, is unspent and expires after `now`, else `None`.
    /// Two redeemers of one token get one user between them.
    async fn redeem_sign_in_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<UserId>, StoreError>;

    /// Replaces the user's password hash, only if it is still `current_hash` (the one the caller verified the
    /// current password against), and ends every other session of the user, keeping `keep_session` (an id
    /// hash), in one transaction. `Some(sessions ended)`, or `None` with nothing changed when the user has no
    /// such hash (no credentials, no password, or a change that got there first).
    async fn change_local_password(
        &self,
        user: UserId,
        current_hash: &str,
        new_hash: &str,
        keep_session: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError>;

    /// Records a failed sign-in for `username_key` at `at`, and forgets every failure (of any username) from
    /// before `forget_before`, so the table holds only the lockout window's failures.
    async fn record_sign_in_failure(
        &self,
        username_key: &str,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// How many failed sign-ins `username_key` has strictly after `since`, across every process.
    async fn sign_in_failures_since(&self, username_key: &str, since: DateTime<Utc>) -> Result<u32, StoreError>;

    /// Forgets `username_key`'s failed sign-ins (after a successful one); returns how many.
    async fn clear_sign_in_failures(&self, username_key: &str) -> Result<u64, StoreError>;

    // --- stale notifications ---

    /// Gives up a queued notification without sending it because its signal is too old: it becomes
    /// [`NotificationStatus::Failed`] with a `last_error` of [`NOTIFICATION_EXPIRED`]`: <reason>`, and counts
    /// as no delivery attempt. `false`, with nothing changed, when it was no longer queued.
    async fn expire_notification(&self, id: NotificationId, reason: &str) -> Result<bool, StoreError>;

    // --- trade notices ---
    //
    // `close_trade` and `cancel_trade` queue the trade's close notice in their own transaction when the
    // owner has a linked Discord account (nobody else could receive it), and expire the trade's queued
    // running updates, which the close makes stale.

    /// Queues a "still running" update. `None`, with nothing written, when the trade already has one for
    /// `slot`, is no longer open, or its owner has no linked Discord account. Queued updates of the trade for
    /// earlier slots are expired in the same transaction: only the newest is worth sending.
    async fn queue_running_notice(&self, new: &NewRunningNotice) -> Result<Option<TradeNoticeId>, StoreError>;

    /// Claims up to `limit` queued notices that nobody holds at `now`, oldest first, until `until`, and returns
    /// them. A notice is claimed by one caller only, across processes; a claim that ran out (its holder
    /// crashed) can be taken again.
    async fn claim_trade_notices(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TradeNotice>, StoreError>;

    /// Records a delivery; [`StoreError::NotFound`] when there is no such notice.
    async fn mark_trade_notice_sent(
        &self,
        id: TradeNoticeId,
        discord_message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a failed attempt. With `retry_at` it stays queued and unclaimable until then; without, it is
    /// given up ([`TradeNoticeStatus::Failed`]).
    async fn mark_trade_notice_failed(
        &self,
        id: TradeNoticeId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Gives up a queued notice that is no longer worth sending ([`TradeNoticeStatus::Expired`]). `false`,
    /// with nothing changed, when it was no longer queued.
    async fn expire_trade_notice(&self, id: TradeNoticeId, reason: &str) -> Result<bool, StoreError>;

    /// A trade's notices, oldest first.
    async fn trade_notices(&self, trade: TradeId) -> Result<Vec<TradeNotice>, StoreError>;

    // --- the dashboard's trade history (issue 5) ---

    /// One page of a user's trades matching the query, newest first; the next page is the same query with
    /// `after` set to the last row's [`TradeCursor`].
    async fn trades_page(&self, query: &TradeQuery) -> Result<Vec<Trade>, StoreError>;

    /// Every trade matching the query, newest first, read from the database as the stream is polled (one
    /// query, rows decoded one at a time), so exporting a million rows holds a few rows in memory, not all.
    fn stream_trades<'a>(&'a self, query: &TradeQuery) -> futures::stream::BoxStream<'a, Result<Trade, StoreError>>;

    /// Inserts stored trades as they are (ids are assigned anew), in multi-row statements inside one
    /// transaction, without history entries or notices: for seeding benchmarks and importing history, not
    /// for opening trades (use [`Store::open_trade`]). Each trade is checked as a stored row is read back.
    async fn import_trades(&self, trades: &[Trade]) -> Result<u64, StoreError>;

    // --- the dashboard's data pages at scale (issue 5, item 9) ---

    /// The unexpired session with this id hash, its user and the user's trades version, in one query: what
    /// every signed-in dashboard request needs first. The store caches nothing; the dashboard keeps the
    /// answer briefly, checked against [`generations`] so this process's own writes are seen at once.
    async fn web_session_context(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionContext>, StoreError>;

    /// The trades of [`Store::stream_trades`] as their stored text, in batches of at most `batch_rows`, for
    /// exports: the same rows in the same order, read as the stream is polled. A decimal that is not plain
    /// decimal text, a non-positive price or lot size, or an unknown status is an error, as it is there.
    fn stream_trade_texts<'a>(
        &'a self,
        query: &TradeQuery,
        batch_rows: usize,
    ) -> futures::stream::BoxStream<'a, Result<TradeTexts, StoreError>>;

    // --- provider channels and webhook deliveries (issue 6) ---

    /// Registers a Discord channel as a provider. [`StoreError::Conflict`] when it is registered already.
    async fn add_provider_channel(
        &self,
        channel_id: &str,
        name: &str,
        added_by: &str,
        at: DateTime<Utc>,
    ) -> Result<ProviderChannel, StoreError>;

    /// Every registered provider channel, oldest first.
    async fn provider_channels(&self) -> Result<Vec<ProviderChannel>, StoreError>;

    async fn provider_channel(&self, channel_id: &str) -> Result<Option<ProviderChannel>, StoreError>;

    /// Stores a message (or webhook delivery) and the signal it yields, in one transaction, with the signal's
    /// pending copy orders when [`NewProviderMessage::begin_copies`] asks. A (channel, message) stored before
    /// writes nothing and answers [`ProviderIntake::Duplicate`]: a replay never makes a second signal. An
    /// invalid signal is refused before anything is written.
    async fn record_provider_message(&self, new: &NewProviderMessage<'_>) -> Result<ProviderIntake, StoreError>;

    /// Records an edit as a revision when its hash differs from the latest text; `false`, with nothing
    /// written, for an unknown message or unchanged text. The original text is never overwritten.
    async fn record_provider_edit(
        &self,
        channel_id: &str,
        message_id: &str,
        content: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Marks a message deleted (the first time only); `false` for an unknown or already deleted message.
    async fn record_provider_delete(
        &self,
        channel_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// A channel's latest messages with their revisions, newest first.
    async fn provider_messages(&self, channel_id: &str, limit: u32) -> Result<Vec<ProviderMessage>, StoreError>;

    // --- followers and copy orders (issue 6) ---

    /// Creates the user's follower of the channel, or updates it (keeping its id and creation time, and
    /// enabling it again). See [`NewFollower::sealed_credentials`] for when stored credentials are kept.
    /// [`StoreError::Invalid`] for a bad currency, balance or channel, or a broker without credentials;
    /// [`StoreError::MissingReference`] when there is no such user.
    async fn save_follower(&self, new: &NewFollower<'_>) -> Result<Follower, StoreError>;

    async fn get_follower(&self, id: FollowerId) -> Result<Option<Follower>, StoreError>;

    /// The enabled followers of a provider channel (or [`WEBHOOK_CHANNEL`]), by id.
    async fn followers_of(&self, provider_channel: &str) -> Result<Vec<Follower>, StoreError>;

    /// Every follower of the user, enabled or not, by id.
    async fn followers_for_user(&self, user: UserId) -> Result<Vec<Follower>, StoreError>;

    /// Only the owner's row; false when it is not theirs or does not exist.
    async fn set_follower_enabled(&self, user: UserId, id: FollowerId, enabled: bool) -> Result<bool, StoreError>;

    /// Per follower, from its copy orders and their trades: `open_positions` = placed copies whose trade is
    /// open; `realised_pnl_today` = the summed `profit` of those trades, and of partial closes of them, closed
    /// at or after `day_start`; `realised_pnl_total` = the same over all time; `signals_taken_today` = placed
    /// copies created at or after `day_start`. One query for the whole slice; a follower without copies
    /// maps to the default.
    async fn follower_day_stats(
        &self,
        followers: &[FollowerId],
        day_start: DateTime<Utc>,
    ) -> Result<HashMap<FollowerId, FollowerDayStats>, StoreError>;

    /// In one transaction: inserts a `pending` copy order for each follower that has none for this signal,
    /// and returns the rows still to work on, by id: those inserted now plus existing rows still `pending`
    /// (a crashed run's leftovers, re-driven with the same client order id). Finished rows are not returned.
    /// Racing callers share the one row per (follower, signal): neither inserts a second. A client order id
    /// already used by another copy is a [`StoreError::Conflict`], a user id that is not the follower's
    /// [`StoreError::Invalid`]; nothing is written then.
    async fn begin_copies(
        &self,
        signal: SignalId,
        copies: &[NewCopy<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<CopyOrder>, StoreError>;

    /// In one transaction: opens `trade` (its user must be the copy's; its signal becomes the copy's signal)
    /// with its `opened` history entry, and marks the copy `placed` with the broker's order id and the trade.
    /// `None`, with nothing written, when the copy is no longer `pending`; [`StoreError::NotFound`] when
    /// there is no such copy.
    async fn finish_copy_placed(
        &self,
        id: CopyOrderId,
        broker_order_id: &str,
        trade: &NewTrade,
        at: DateTime<Utc>,
    ) -> Result<Option<Trade>, StoreError>;

    /// [`Store::finish_copy_placed`] for many copies in one write transaction, so a signal copied to many
    /// followers pays one commit per batch rather than one per follower. Each copy gets its own answer, in
    /// order: one copy's invalid trade or lost race does not hold back the others. The outer error means
    /// the transaction failed and nothing was written.
    async fn finish_copies_placed(
        &self,
        copies: &[PlacedCopy],
    ) -> Result<Vec<Result<Option<Trade>, StoreError>>, StoreError>;

    /// Marks a pending copy refused, rejected or failed (any other status is [`StoreError::Invalid`]) with
    /// the gate (risk refusals) and a reason a user can read. `false` when it was not pending.
    async fn finish_copy_unplaced(
        &self,
        id: CopyOrderId,
        status: CopyStatus,
        gate: Option<&str>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// A signal's copy orders, by id.
    async fn copy_orders_for_signal(&self, signal: SignalId) -> Result<Vec<CopyOrder>, StoreError>;

    /// A user's latest copy orders, newest first.
    async fn copy_orders_for_user(&self, user: UserId, limit: u32) -> Result<Vec<CopyOrder>, StoreError>;

    /// Copy orders still `pending` that were created before `created_before`, oldest first: a crashed run's
    /// leftovers.
    async fn pending_copies(&self, created_before: DateTime<Utc>, limit: u32) -> Result<Vec<CopyOrder>, StoreError>;

    /// The signal a provider's update refers to: if `reply_to` names a stored message of this channel that
    /// made a signal, that signal; else the signal of the channel's newest not-deleted message that made one
    /// (with that symbol when `symbol` is given).
    async fn provider_signal_for_update(
        &self,
        channel_id: &str,
        reply_to: Option<&str>,
        symbol: Option<&Symbol>,
    ) -> Result<Option<SignalId>, StoreError>;

    /// Replaces the stored outcome text of a provider message (the copier records what an update did).
    /// `false` when there is no such message.
    async fn set_provider_message_outcome(
        &self,
        channel_id: &str,
        message_id: &str,
        outcome: &str,
    ) -> Result<bool, StoreError>;

    /// Closes `lots` of an open trade, in one transaction: the open trade keeps `trade.lots - lots`, and a
    /// new closed trade of `lots` (same user, symbol, side, entry, levels, signal and open time; notes
    /// `partial close of #<id>`; its `partial_of` column naming the original) records the `closing`; a
    /// `partial_close` history entry is added to the original. Returns (the remaining open trade, the
    /// closed part), or `None`, with nothing written, when the trade is not open or `lots` is not below its
    /// size. [`StoreError::NotFound`] when there is no such trade.
    async fn partially_close_trade(
        &self,
        id: TradeId,
        lots: Lots,
        closing: &Closing,
    ) -> Result<Option<(Trade, Trade)>, StoreError>;
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

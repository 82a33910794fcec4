//! The [`Store`] implementation, written once for both backends.
//!
//! This file is compiled twice, as `sqlite::repo` and as `postgres::repo`: each parent declares it with
//! `#[path = "repo.rs"]` and provides `Db` (the sqlx database), `Backend` (the store type), the migrator and
//! the few statements whose SQL differs (`BEGIN_WRITE`, `LOCK_USER`, `SELECT_TRADE_FOR_UPDATE`). Everything
//! else is shared: the SQL uses `$n` parameters, which SQLite accepts too, and decimals go through
//! [`Dec`], whose encoding is chosen by the backend's type. This keeps one copy of every query without the
//! pile of trait bounds a generic implementation over `sqlx::Database` needs.

use super::{
    BEGIN_WRITE, Backend, Db, LOCK_USER, LOCK_USERS, MIGRATOR, NAME, ROUTING_CANDIDATES, SELECT_TRADE_FOR_UPDATE,
};
use crate::codec::{self, Dec, ts};
use crate::model::TradeQuery;
use crate::model::{
    LinkOutcome, NewNotification, NewTradeUpdate, NewUser, Notification, NotificationBatch, NotificationLimits,
    NotificationStatus, NotifyOutcome, OpenOutcome, Role, StoredSignal, TradeFilter, TradeUpdate, TradeUpdateId, User,
    UserUpdate,
};
use crate::model::{
    NOTIFICATION_EXPIRED, NewRunningNotice, TradeNotice, TradeNoticeId, TradeNoticeKind, TradeNoticeStatus,
};
use crate::{Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::trade::check_levels;
use domain::{
    Candle, Closing, Delivery, Entry, NewTrade, NotificationId, Price, Side, Signal, SignalId, SignalSource, Symbol,
    Tick, Timeframe, Trade, TradeId, TradeResult, TradeStatus, TradeUpdateKind, UserId, UserSettings,
};
use rust_decimal::Decimal;
use sqlx::{Executor, QueryBuilder, Row as _};
use std::sync::LazyLock;

pub(super) type DbRow = <Db as sqlx::Database>::Row;

/// Wraps a driver error with the operation it interrupted.
pub(super) fn op(name: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::from_sqlx(name, e)
}

/// Reads a column, turning an undecodable value into [`StoreError::Corrupt`].
pub(super) fn get<'r, T>(row: &'r DbRow, table: &'static str, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(column).map_err(|e| match e {
        sqlx::Error::ColumnDecode { source, .. } => StoreError::corrupt(table, column, source),
        other => StoreError::Query { op: table, source: other },
    })
}

/// Validates and writes one signal row through any executor (the pool, or a caller's transaction); `None`
/// when another signal already holds `dedup_key`.
pub(super) async fn write_signal<'e>(
    executor: impl Executor<'e, Database = Db>,
    signal: &Signal,
    dedup_key: Option<&str>,
) -> Result<Option<SignalId>, StoreError> {
    signal.validate()?;
    for p in [signal.stage1_prob, signal.stage2_prob].into_iter().flatten() {
        if !p.is_finite() {
            return Err(StoreError::invalid(format!("a stage probability must be a finite number, got {p}")));
        }
    }
    let (kind, price, low, high) = match signal.entry {
        Entry::Market => ("market", None, None, None),
        Entry::Price { price } => ("price", Some(price), None, None),
        Entry::Zone { low, high } => ("zone", None, Some(low), Some(high)),
    };
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO signals (symbol, timeframe, side, entry_kind, entry_price, entry_low, entry_high, stop_loss,
             take_profits, leverage, confidence, source, model_version, stage1_prob, stage2_prob, created_at,
             dedup_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    .bind(signal.symbol.as_str())
    .bind(signal.timeframe.map(Timeframe::as_str))
    .bind(signal.side.as_str())
    .bind(kind)
    .bind(price.map(Dec::from))
    .bind(low.map(Dec::from))
    .bind(high.map(Dec::from))
    .bind(signal.stop_loss.map(Dec::from))
    .bind(codec::prices_to_json(&signal.take_profits))
    .bind(signal.leverage.map(i64::from))
    .bind(signal.confidence.map(Dec))
    .bind(signal.source.to_text())
    .bind(signal.model_version.as_deref())
    .bind(signal.stage1_prob)
    .bind(signal.stage2_prob)
    .bind(ts(signal.created_at))
    .bind(dedup_key)
    .fetch_optional(executor)
    .await
    .map_err(op("storing a signal"))?;
    Ok(inserted.map(SignalId))
}

fn get_dec(row: &DbRow, table: &'static str, column: &'static str) -> Result<Decimal, StoreError> {
    get::<Dec>(row, table, column).map(|d| d.0)
}

fn get_opt_dec(row: &DbRow, table: &'static str, column: &'static str) -> Result<Option<Decimal>, StoreError> {
    get::<Option<Dec>>(row, table, column).map(|d| d.map(|d| d.0))
}

fn get_price(row: &DbRow, table: &'static str, column: &'static str) -> Result<Price, StoreError> {
    codec::to_price(table, column, get_dec(row, table, column)?)
}

fn get_opt_price(row: &DbRow, table: &'static str, column: &'static str) -> Result<Option<Price>, StoreError> {
    get_opt_dec(row, table, column)?.map(|d| codec::to_price(table, column, d)).transpose()
}

fn get_side(row: &DbRow, table: &'static str) -> Result<Side, StoreError> {
    let text: String = get(row, table, "side")?;
    codec::to_enum(table, "side", &text, |s| Side::parse(s).ok())
}

fn user_from_row(row: &DbRow) -> Result<User, StoreError> {
    const T: &str = "users";
    let role: String = get(row, T, "role")?;
    Ok(User {
        id: UserId(get(row, T, "id")?),
        discord_user_id: get(row, T, "discord_user_id")?,
        display_name: get(row, T, "display_name")?,
        role: codec::to_enum(T, "role", &role, Role::parse)?,
        account_currency: get(row, T, "account_currency")?,
        default_lots: codec::to_lots(T, "default_lots", get_dec(row, T, "default_lots")?)?,
        created_at: get(row, T, "created_at")?,
    })
}

fn settings_from_row(row: &DbRow) -> Result<UserSettings, StoreError> {
    const T: &str = "user_settings";
    let timeframes: String = get(row, T, "enabled_timeframes")?;
    let pairs: String = get(row, T, "preferred_pairs")?;
    let delivery_kind: String = get(row, T, "delivery_kind")?;
    let channel: Option<String> = get(row, T, "delivery_channel_id")?;
    let delivery = match (delivery_kind.as_str(), channel) {
        ("dm", _) => Delivery::Dm,
        ("channel", Some(id)) => Delivery::Channel(id),
        (other, _) => {
            return Err(StoreError::corrupt(T, "delivery_kind", format!("{other:?} without a usable channel id")));
        }
    };
    Ok(UserSettings {
        notifications_enabled: get(row, T, "notifications_enabled")?,
        enabled_timeframes: codec::timeframes_from_text(T, "enabled_timeframes", &timeframes)?,
        preferred_pairs: codec::symbols_from_text(&pairs),
        min_confidence: get_dec(row, T, "min_confidence")?,
        only_ml_enhanced: get(row, T, "only_ml_enhanced")?,
        max_notifications_per_day: codec::to_u32(
            T,
            "max_notifications_per_day",
            get(row, T, "max_notifications_per_day")?,
        )?,
        notification_cooldown_minutes: codec::to_u32(
            T,
            "notification_cooldown_minutes",
            get(row, T, "notification_cooldown_minutes")?,
        )?,
        delivery,
        running_update_minutes: codec::to_u32(T, "running_update_minutes", get(row, T, "running_update_minutes")?)?,
    })
}

fn signal_from_row(row: &DbRow) -> Result<StoredSignal, StoreError> {
    const T: &str = "signals";
    let entry_kind: String = get(row, T, "entry_kind")?;
    let required = |column: &'static str| {
        get_opt_price(row, T, column)?
            .ok_or_else(|| StoreError::corrupt(T, column, format!("missing for a {entry_kind} entry")))
    };
    let entry = match entry_kind.as_str() {
        "market" => Entry::Market,
        "price" => Entry::Price { price: required("entry_price")? },
        "zone" => Entry::Zone { low: required("entry_low")?, high: required("entry_high")? },
        other => {
            return Err(StoreError::corrupt(T, "entry_kind", format!("unexpected value {other:?}")));
        }
    };
    let timeframe: Option<String> = get(row, T, "timeframe")?;
    let timeframe =
        timeframe.map(|t| Timeframe::parse(&t).map_err(|e| StoreError::corrupt(T, "timeframe", e))).transpose()?;
    let take_profits: String = get(row, T, "take_profits")?;
    let leverage: Option<i64> = get(row, T, "leverage")?;
    let source: String = get(row, T, "source")?;
    let signal = Signal {
        symbol: Symbol::normalize(&get::<String>(row, T, "symbol")?),
        timeframe,
        side: get_side(row, T)?,
        entry,
        stop_loss: get_opt_price(row, T, "stop_loss")?,
        take_profits: codec::prices_from_json(T, "take_profits", &take_profits)?,
        leverage: leverage.map(|l| codec::to_u32(T, "leverage", l)).transpose()?,
        confidence: get_opt_dec(row, T, "confidence")?,
        source: codec::to_enum(T, "source", &source, SignalSource::from_text)?,
        model_version: get(row, T, "model_version")?,
        stage1_prob: get(row, T, "stage1_prob")?,
        stage2_prob: get(row, T, "stage2_prob")?,
        created_at: get(row, T, "created_at")?,
    };
    Ok(StoredSignal { id: SignalId(get(row, T, "id")?), signal, dedup_key: get(row, T, "dedup_key")? })
}

fn notification_from_row(row: &DbRow) -> Result<Notification, StoreError> {
    const T: &str = "signal_notifications";
    let status: String = get(row, T, "status")?;
    Ok(Notification {
        id: NotificationId(get(row, T, "id")?),
        signal_id: SignalId(get(row, T, "signal_id")?),
        user_id: UserId(get(row, T, "user_id")?),
        symbol: Symbol::normalize(&get::<String>(row, T, "symbol")?),
        discord_message_id: get(row, T, "discord_message_id")?,
        status: codec::to_enum(T, "status", &status, NotificationStatus::parse)?,
        attempts: codec::to_u32(T, "attempts", get(row, T, "attempts")?)?,
        last_error: get(row, T, "last_error")?,
        acknowledged: get(row, T, "acknowledged")?,
        sent_at: get(row, T, "sent_at")?,
        created_at: get(row, T, "created_at")?,
    })
}

pub(super) fn trade_from_row(row: &DbRow) -> Result<Trade, StoreError> {
    const T: &str = "user_trades";
    let status: String = get(row, T, "status")?;
    let close_reason: Option<String> = get(row, T, "close_reason")?;
    let result: Option<String> = get(row, T, "result")?;
    let signal_id: Option<i64> = get(row, T, "signal_id")?;
    let notification_id: Option<i64> = get(row, T, "notification_id")?;
    Ok(Trade {
        id: TradeId(get(row, T, "id")?),
        user_id: UserId(get(row, T, "user_id")?),
        symbol: Symbol::normalize(&get::<String>(row, T, "symbol")?),
        side: get_side(row, T)?,
        entry: get_price(row, T, "entry")?,
        lots: codec::to_lots(T, "lots", get_dec(row, T, "lots")?)?,
        stop_loss: get_opt_price(row, T, "stop_loss")?,
        take_profit: get_opt_price(row, T, "take_profit")?,
        status: codec::to_enum(T, "status", &status, TradeStatus::parse)?,
        opened_at: get(row, T, "opened_at")?,
        closed_at: get(row, T, "closed_at")?,
        exit_price: get_opt_price(row, T, "exit_price")?,
        close_reason: close_reason
            .map(|r| codec::to_enum(T, "close_reason", &r, domain::CloseReason::parse))
            .transpose()?,
        result: result.map(|r| codec::to_enum(T, "result", &r, TradeResult::parse)).transpose()?,
        pips: get_opt_dec(row, T, "pips")?,
        profit: get_opt_dec(row, T, "profit")?,
        notes: get(row, T, "notes")?,
        signal_id: signal_id.map(SignalId),
        notification_id: notification_id.map(NotificationId),
    })
}

fn update_from_row(row: &DbRow) -> Result<TradeUpdate, StoreError> {
    const T: &str = "trade_updates";
    let kind: String = get(row, T, "kind")?;
    Ok(TradeUpdate {
        id: TradeUpdateId(get(row, T, "id")?),
        trade_id: TradeId(get(row, T, "trade_id")?),
        kind: codec::to_enum(T, "kind", &kind, TradeUpdateKind::parse)?,
        price: get_opt_price(row, T, "price")?,
        stop_loss: get_opt_price(row, T, "stop_loss")?,
        take_profit: get_opt_price(row, T, "take_profit")?,
        note: get(row, T, "note")?,
        created_at: get(row, T, "created_at")?,
    })
}

fn tick_from_row(row: &DbRow) -> Result<Tick, StoreError> {
    const T: &str = "last_prices";
    Ok(Tick {
        symbol: Symbol::normalize(&get::<String>(row, T, "symbol")?),
        time: get(row, T, "time")?,
        bid: get_price(row, T, "bid")?,
        ask: get_price(row, T, "ask")?,
        synthetic_from: None,
    })
}

fn candle_from_row(row: &DbRow) -> Result<Candle, StoreError> {
    const T: &str = "candles";
    Ok(Candle {
        time: get(row, T, "open_time")?,
        open: get_dec(row, T, "open")?,
        high: get_dec(row, T, "high")?,
        low: get_dec(row, T, "low")?,
        close: get_dec(row, T, "close")?,
        volume: get_dec(row, T, "volume")?,
    })
}

/// Rows of one multi-row candle insert: 8 parameters each, well under both backends' limits.
const CANDLES_PER_STATEMENT: usize = 1000;

fn trade_notice_from_row(row: &DbRow) -> Result<TradeNotice, StoreError> {
    const T: &str = "trade_notices";
    let kind: String = get(row, T, "kind")?;
    let status: String = get(row, T, "status")?;
    Ok(TradeNotice {
        id: TradeNoticeId(get(row, T, "id")?),
        trade_id: TradeId(get(row, T, "trade_id")?),
        kind: codec::to_enum(T, "kind", &kind, TradeNoticeKind::parse)?,
        slot: get(row, T, "slot")?,
        price: get_opt_price(row, T, "price")?,
        pips: get_opt_dec(row, T, "pips")?,
        profit: get_opt_dec(row, T, "profit")?,
        status: codec::to_enum(T, "status", &status, TradeNoticeStatus::parse)?,
        attempts: codec::to_u32(T, "attempts", get(row, T, "attempts")?)?,
        last_error: get(row, T, "last_error")?,
        claimed_until: get(row, T, "claimed_until")?,
        discord_message_id: get(row, T, "discord_message_id")?,
        created_at: get(row, T, "created_at")?,
        sent_at: get(row, T, "sent_at")?,
    })
}

/// The part of a trade's closing transaction that concerns its notices: queues the close notice when the
/// owner can receive one, and expires the running updates still queued, which the close makes stale.
async fn queue_close_notice(
    tx: &mut sqlx::Transaction<'_, Db>,
    trade: &Trade,
    kind: TradeNoticeKind,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    const OP: &str = "queueing a trade's close notice";
    sqlx::query(
        "INSERT INTO trade_notices (trade_id, kind, slot, created_at)
         SELECT $1, $2, 0, $3 FROM users u WHERE u.id = $4 AND u.discord_user_id IS NOT NULL
         ON CONFLICT (trade_id, kind, slot) DO NOTHING",
    )
    .bind(trade.id.0)
    .bind(kind.as_str())
    .bind(ts(at))
    .bind(trade.user_id.0)
    .execute(&mut **tx)
    .await
    .map_err(op(OP))?;
    sqlx::query(
        "UPDATE trade_notices SET status = 'expired', last_error = 'the trade closed before it was sent'
         WHERE trade_id = $1 AND kind = 'running' AND status = 'queued'",
    )
    .bind(trade.id.0)
    .execute(&mut **tx)
    .await
    .map_err(op(OP))?;
    Ok(())
}

fn map_rows<T>(rows: &[DbRow], decode: fn(&DbRow) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(decode).collect()
}

/// Builds `WHERE …` for a trade filter; limit and offset are the caller's.
fn push_trade_filter(query: &mut QueryBuilder<Db>, filter: &TradeFilter) {
    query.push(" WHERE TRUE");
    if let Some(user) = filter.user_id {
        query.push(" AND user_id = ").push_bind(user.0);
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(symbol) = &filter.symbol {
        query.push(" AND symbol = ").push_bind(symbol.as_str().to_string());
    }
}

pub(super) async fn insert_trade_update<'e, E>(executor: E, update: &NewTradeUpdate) -> Result<TradeUpdate, StoreError>
where
    E: Executor<'e, Database = Db>,
{
    let row = sqlx::query(
        "INSERT INTO trade_updates (trade_id, kind, price, stop_loss, take_profit, note, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
    )
    .bind(update.trade_id.0)
    .bind(update.kind.as_str())
    .bind(update.price.map(Dec::from))
    .bind(update.stop_loss.map(Dec::from))
    .bind(update.take_profit.map(Dec::from))
    .bind(update.note.as_deref())
    .bind(ts(update.at))
    .fetch_one(executor)
    .await
    .map_err(op("recording a trade update"))?;
    update_from_row(&row)
}

/// Counts toward the daily cap: every notification not given up on, sent or still queued.
async fn count_since<'e, E>(executor: E, user: UserId, since: DateTime<Utc>) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = Db>,
{
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM signal_notifications WHERE user_id = $1 AND created_at >= $2 AND status <> 'failed'",
    )
    .bind(user.0)
    .bind(ts(since))
    .fetch_one(executor)
    .await
    .map_err(op("counting notifications"))?;
    Ok(u64::try_from(count).unwrap_or_default())
}

async fn last_for_pair<'e, E>(executor: E, user: UserId, symbol: &Symbol) -> Result<Option<DateTime<Utc>>, StoreError>
where
    E: Executor<'e, Database = Db>,
{
    let row = sqlx::query(
        "SELECT created_at FROM signal_notifications
         WHERE user_id = $1 AND symbol = $2 AND status <> 'failed'
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(user.0)
    .bind(symbol.as_str())
    .fetch_optional(executor)
    .await
    .map_err(op("finding the last notification for a pair"))?;
    row.map(|r| get(&r, "signal_notifications", "created_at")).transpose()
}

async fn insert_notification<'e, E>(executor: E, new: &NewNotification) -> Result<Option<NotificationId>, StoreError>
where
    E: Executor<'e, Database = Db>,
{
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO signal_notifications (signal_id, user_id, symbol, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (signal_id, user_id) DO NOTHING RETURNING id",
    )
    .bind(new.signal_id.0)
    .bind(new.user_id.0)
    .bind(new.symbol.as_str())
    .bind(ts(new.created_at))
    .fetch_optional(executor)
    .await
    .map_err(op("creating a notification"))?;
    Ok(id.map(NotificationId))
}

async fn existing_notification<'e, E>(executor: E, new: &NewNotification) -> Result<Option<NotificationId>, StoreError>
where
    E: Executor<'e, Database = Db>,
{
    let id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM signal_notifications WHERE signal_id = $1 AND user_id = $2")
            .bind(new.signal_id.0)
            .bind(new.user_id.0)
            .fetch_optional(executor)
            .await
            .map_err(op("finding a notification"))?;
    Ok(id.map(NotificationId))
}

/// The candidates of a bulk routing call as [`ROUTING_CANDIDATES`] reads them. Timestamps are written as
/// sqlx writes them to SQLite (RFC 3339, fractional digits as needed), which PostgreSQL reads as well.
fn candidates_json(candidates: &[(UserId, &NotificationLimits)]) -> String {
    let at = |t: DateTime<Utc>| ts(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    let rows: Vec<serde_json::Value> = candidates
        .iter()
        .map(|(user, limits)| {
            serde_json::json!([user.0, at(limits.window_start), limits.max_in_window, limits.cooldown_start.map(at)])
        })
        .collect();
    serde_json::Value::from(rows).to_string()
}

/// The conditions of [`Store::create_notification_within_limits`], per candidate row `c`, with `$2` the
/// signal and `$3` its symbol.
const NOT_YET_NOTIFIED: &str =
    "NOT EXISTS (SELECT 1 FROM signal_notifications n WHERE n.signal_id = $2 AND n.user_id = c.user_id)";
const UNDER_CAP: &str = "(SELECT COUNT(*) FROM signal_notifications n
      WHERE n.user_id = c.user_id AND n.created_at >= c.window_start AND n.status <> 'failed') < c.max_in_window";
const COOLING_DOWN: &str = "c.cooldown_start IS NOT NULL AND EXISTS (SELECT 1 FROM signal_notifications n
      WHERE n.user_id = c.user_id AND n.symbol = $3 AND n.status <> 'failed' AND n.created_at >= c.cooldown_start)";

// Assembled once from the constants above; sqlx takes only `'static` SQL, which these are.
static LOCK_CANDIDATES: LazyLock<Option<String>> =
    LazyLock::new(|| LOCK_USERS.map(|lock| format!("{ROUTING_CANDIDATES} {lock}")));
static INSERT_CANDIDATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{ROUTING_CANDIDATES}
         INSERT INTO signal_notifications (signal_id, user_id, symbol, created_at)
         SELECT $2, c.user_id, $3, $4 FROM c
         WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id) AND {NOT_YET_NOTIFIED} AND {UNDER_CAP}
             AND NOT ({COOLING_DOWN})
         ON CONFLICT (signal_id, user_id) DO NOTHING RETURNING user_id, id"
    )
});
static CLASSIFY_CANDIDATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{ROUTING_CANDIDATES}
         SELECT c.user_id,
             CASE WHEN EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id) THEN 1 ELSE 0 END AS user_exists,
             (SELECT n.id FROM signal_notifications n WHERE n.signal_id = $2 AND n.user_id = c.user_id) AS existing_id,
             CASE WHEN {UNDER_CAP} THEN 0 ELSE 1 END AS capped,
             CASE WHEN {COOLING_DOWN} THEN 1 ELSE 0 END AS cooling
         FROM c"
    )
});

impl Backend {
    /// After an `UPDATE … WHERE status = 'open'` touched nothing: `None` when the trade exists (it was no
    /// longer open), `NotFound` when it does not.
    async fn not_open_or_missing(&self, id: TradeId) -> Result<Option<Trade>, StoreError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM user_trades WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a trade"))?;
        match exists {
            Some(_) => Ok(None),
            None => Err(StoreError::NotFound { what: "trade", id: id.0 }),
        }
    }

    async fn trades_where(&self, sql: &'static str, bind: Option<i64>) -> Result<Vec<Trade>, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(value) = bind {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(op("listing trades"))?;
        map_rows(&rows, trade_from_row)
    }
}

/// Records a failed delivery attempt of a notification; `claimed_until` is when it may be claimed again.
async fn fail_notification<'e, E>(
    executor: E,
    id: NotificationId,
    error: &str,
    status: NotificationStatus,
    claimed_until: Option<DateTime<Utc>>,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Db>,
{
    let done = sqlx::query(
        "UPDATE signal_notifications SET status = $2, last_error = $3, attempts = attempts + 1, claimed_until = $4
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(status.as_str())
    .bind(error)
    .bind(claimed_until.map(ts))
    .execute(executor)
    .await
    .map_err(op("marking a notification failed"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "notification", id: id.0 });
    }
    Ok(())
}

/// The claim of a leased outbox table (`trade_notices`, `signal_notifications`): `$1` now, `$2` the lease's
/// end, `$3` how many; oldest first.
///
/// PostgreSQL: the rows are picked and locked with `SKIP LOCKED` in a materialised CTE, so concurrent
/// claimers take the next rows instead of queueing behind each other, and the subquery runs exactly once (as
/// `IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)` the planner may re-run it and claim more than the limit).
/// Holding the row locks, the update cannot race another claimer. SQLite has no row locks and runs one writer
/// at a time, so an `UPDATE … WHERE id IN (SELECT … LIMIT)` is atomic there as it is.
fn claim_sql(table: &str) -> String {
    const CLAIMABLE: &str = "status = 'queued' AND (claimed_until IS NULL OR claimed_until <= $1)";
    if NAME == "postgres" {
        format!(
            "WITH claimable AS MATERIALIZED (
                 SELECT id FROM {table} WHERE {CLAIMABLE} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE {table} t SET claimed_until = $2 FROM claimable c WHERE t.id = c.id
             RETURNING t.*"
        )
    } else {
        format!(
            "UPDATE {table} SET claimed_until = $2
             WHERE id IN (SELECT id FROM {table} WHERE {CLAIMABLE} ORDER BY id LIMIT $3)
             RETURNING *"
        )
    }
}
static CLAIM_TRADE_NOTICES: LazyLock<String> = LazyLock::new(|| claim_sql("trade_notices"));
static CLAIM_NOTIFICATIONS: LazyLock<String> = LazyLock::new(|| claim_sql("signal_notifications"));

/// Inserts an open trade with its `opened` history entry, inside the caller's transaction. `None` when the
/// trade's notification already led to a trade (one trade per Open Trade submit); trades without a
/// notification never conflict.
pub(crate) async fn insert_trade(
    tx: &mut sqlx::Transaction<'_, Db>,
    new: &NewTrade,
) -> Result<Option<Trade>, StoreError> {
    const OP: &str = "opening a trade";
    let inserted = sqlx::query(
        "INSERT INTO user_trades (user_id, symbol, side, entry, lots, stop_loss, take_profit, status, opened_at,
             notes, signal_id, notification_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11)
         ON CONFLICT (notification_id) DO NOTHING RETURNING *",
    )
    .bind(new.user_id.0)
    .bind(new.symbol.as_str())
    .bind(new.side.as_str())
    .bind(Dec::from(new.entry))
    .bind(Dec::from(new.lots))
    .bind(new.stop_loss.map(Dec::from))
    .bind(new.take_profit.map(Dec::from))
    .bind(ts(new.opened_at))
    .bind(new.notes.as_deref())
    .bind(new.signal_id.map(|s| s.0))
    .bind(new.notification_id.map(|n| n.0))
    .fetch_optional(&mut **tx)
    .await
    .map_err(op(OP))?;
    let Some(row) = inserted else { return Ok(None) };
    let trade = trade_from_row(&row)?;
    insert_trade_update(
        &mut **tx,
        &NewTradeUpdate {
            trade_id: trade.id,
            kind: TradeUpdateKind::Opened,
            price: Some(trade.entry),
            stop_loss: trade.stop_loss,
            take_profit: trade.take_profit,
            note: None,
            at: trade.opened_at,
        },
    )
    .await?;
    Ok(Some(trade))
}

#[async_trait]
impl Store for Backend {
    fn backend_name(&self) -> &'static str {
        NAME
    }

    async fn expire_notification(&self, id: NotificationId, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signal_notifications SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .bind(format!("{NOTIFICATION_EXPIRED}: {reason}"))
        .execute(&self.writer)
        .await
        .map_err(op("expiring a notification"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn queue_running_notice(&self, new: &NewRunningNotice) -> Result<Option<TradeNoticeId>, StoreError> {
        const OP: &str = "queueing a running update";
        if new.slot < 1 {
            return Err(StoreError::invalid(format!("a running update's slot is 1 or more, got {}", new.slot)));
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO trade_notices (trade_id, kind, slot, price, pips, profit, created_at)
             SELECT t.id, 'running', $2, $3, $4, $5, $6 FROM user_trades t JOIN users u ON u.id = t.user_id
             WHERE t.id = $1 AND t.status = 'open' AND u.discord_user_id IS NOT NULL
             ON CONFLICT (trade_id, kind, slot) DO NOTHING RETURNING id",
        )
        .bind(new.trade_id.0)
        .bind(new.slot)
        .bind(Dec::from(new.price))
        .bind(new.pips.map(Dec))
        .bind(new.profit.map(Dec))
        .bind(ts(new.at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(op(OP))?;
        if id.is_some() {
            sqlx::query(
                "UPDATE trade_notices SET status = 'expired', last_error = 'a newer update replaced it'
                 WHERE trade_id = $1 AND kind = 'running' AND status = 'queued' AND slot < $2",
            )
            .bind(new.trade_id.0)
            .bind(new.slot)
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(id.map(TradeNoticeId))
    }

    async fn claim_trade_notices(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TradeNotice>, StoreError> {
        let rows = sqlx::query(CLAIM_TRADE_NOTICES.as_str())
            .bind(ts(now))
            .bind(ts(until))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map_err(op("claiming trade notices"))?;
        let mut claimed = map_rows(&rows, trade_notice_from_row)?;
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }

    async fn mark_trade_notice_sent(
        &self,
        id: TradeNoticeId,
        discord_message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE trade_notices
             SET status = 'sent', discord_message_id = $2, sent_at = $3, attempts = attempts + 1, last_error = NULL,
                 claimed_until = NULL
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(discord_message_id)
        .bind(ts(at))
        .execute(&self.writer)
        .await
        .map_err(op("marking a trade notice sent"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "trade notice", id: id.0 });
        }
        Ok(())
    }

    async fn mark_trade_notice_failed(
        &self,
        id: TradeNoticeId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let status = if retry_at.is_some() { TradeNoticeStatus::Queued } else { TradeNoticeStatus::Failed };
        let done = sqlx::query(
            "UPDATE trade_notices SET status = $2, last_error = $3, attempts = attempts + 1, claimed_until = $4
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(status.as_str())
        .bind(error)
        .bind(retry_at.map(ts))
        .execute(&self.writer)
        .await
        .map_err(op("marking a trade notice failed"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "trade notice", id: id.0 });
        }
        Ok(())
    }

    async fn expire_trade_notice(&self, id: TradeNoticeId, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE trade_notices SET status = 'expired', last_error = $2, claimed_until = NULL
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .bind(reason)
        .execute(&self.writer)
        .await
        .map_err(op("expiring a trade notice"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn trade_notices(&self, trade: TradeId) -> Result<Vec<TradeNotice>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trade_notices WHERE trade_id = $1 ORDER BY id")
            .bind(trade.0)
            .fetch_all(&self.pool)
            .await
            .map_err(op("reading a trade's notices"))?;
        map_rows(&rows, trade_notice_from_row)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(op("pinging the database"))?;
        Ok(())
    }

    async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        let _settings_bump = crate::generations::settings_write();
        let _bump = crate::generations::sessions_write();
        let name = new.display_name.trim();
        if name.is_empty() {
            return Err(StoreError::invalid("a user needs a display name"));
        }
        let row = sqlx::query(
            "INSERT INTO users (discord_user_id, display_name, role, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(new.discord_user_id.as_deref())
        .bind(name)
        .bind(new.role.as_str())
        .bind(ts(Utc::now()))
        .fetch_one(&self.writer)
        .await
        .map_err(op("creating a user"))?;
        user_from_row(&row)
    }

    async fn ensure_discord_user(&self, discord_user_id: &str, display_name: &str) -> Result<User, StoreError> {
        let _bump = crate::generations::sessions_write();
        let name = display_name.trim();
        let name = if name.is_empty() { discord_user_id } else { name };
        let inserted = sqlx::query(
            "INSERT INTO users (discord_user_id, display_name, role, created_at) VALUES ($1, $2, 'user', $3)
             ON CONFLICT (discord_user_id) DO NOTHING RETURNING *",
        )
        .bind(discord_user_id)
        .bind(name)
        .bind(ts(Utc::now()))
        .fetch_optional(&self.writer)
        .await
        .map_err(op("creating a Discord user"))?;
        if let Some(row) = inserted {
            // Only a new user changes what subscriptions are made of: this runs on every interaction, and a
            // bump makes the scanner re-read every user's settings on its next signal.
            let _settings_bump = crate::generations::settings_write();
            return user_from_row(&row);
        }
        self.user_by_discord_id(discord_user_id).await?.ok_or_else(|| StoreError::Conflict {
            op: "creating a Discord user",
            detail: format!("the user linked to {discord_user_id} disappeared while it was being read"),
        })
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a user"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_discord_id(&self, discord_user_id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE discord_user_id = $1")
            .bind(discord_user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a user"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool).await.map_err(op("listing users"))?;
        map_rows(&rows, user_from_row)
    }

    async fn update_user(&self, id: UserId, update: &UserUpdate) -> Result<User, StoreError> {
        let _settings_bump = crate::generations::settings_write();
        let _bump = crate::generations::sessions_write();
        let name = update.display_name.as_deref().map(str::trim);
        if name == Some("") {
            return Err(StoreError::invalid("a user needs a display name"));
        }
        if let Some(currency) = &update.account_currency {
            codec::check_currency(currency)?;
        }
        let row = sqlx::query(
            "UPDATE users SET
                 display_name = COALESCE($2, display_name),
                 role = COALESCE($3, role),
                 discord_user_id = COALESCE($4, discord_user_id),
                 account_currency = COALESCE($5, account_currency),
                 default_lots = COALESCE($6, default_lots)
             WHERE id = $1 RETURNING *",
        )
        .bind(id.0)
        .bind(name)
        .bind(update.role.map(Role::as_str))
        .bind(update.discord_user_id.as_deref())
        .bind(update.account_currency.as_deref())
        .bind(update.default_lots.map(Dec::from))
        .fetch_optional(&self.writer)
        .await
        .map_err(op("updating a user"))?;
        match row {
            Some(row) => user_from_row(&row),
            None => Err(StoreError::NotFound { what: "user", id: id.0 }),
        }
    }

    async fn create_link_code(
        &self,
        user: UserId,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "creating a link code";
        if code_hash.trim().is_empty() {
            return Err(StoreError::invalid("a link code needs a hash"));
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // Only the newest code works, so a code shown on a screen someone glanced at dies with the next one.
        sqlx::query("DELETE FROM link_codes WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        sqlx::query("INSERT INTO link_codes (code_hash, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)")
            .bind(code_hash)
            .bind(user.0)
            .bind(ts(expires_at))
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        tx.commit().await.map_err(op(OP))?;
        Ok(())
    }

    async fn redeem_link_code(
        &self,
        code_hash: &str,
        discord_user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, StoreError> {
        let _bump = crate::generations::sessions_write();
        const OP: &str = "redeeming a link code";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // The conditional update is the claim: a concurrent redeemer of the same code waits on the row and
        // then matches nothing, so a code links at most once.
        let owner: Option<i64> = sqlx::query_scalar(
            "UPDATE link_codes SET used_at = $3, used_by_discord_id = $2
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
        )
        .bind(code_hash)
        .bind(discord_user_id)
        .bind(ts(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(op(OP))?;
        let Some(owner) = owner else {
            return Ok(LinkOutcome::InvalidCode);
        };
        let holder: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE discord_user_id = $1")
            .bind(discord_user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(op(OP))?;
        if holder.is_some_and(|id| id != owner) {
            // Dropping the transaction rolls the claim back, so the code's owner can still use it elsewhere.
            return Ok(LinkOutcome::DiscordAccountTaken);
        }
        let row = sqlx::query("UPDATE users SET discord_user_id = $2 WHERE id = $1 RETURNING *")
            .bind(owner)
            .bind(discord_user_id)
            .fetch_one(&mut *tx)
            .await;
        let row = match row {
            Ok(row) => row,
            // Another transaction linked this Discord account between our check and our update.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(LinkOutcome::DiscordAccountTaken);
            }
            Err(error) => return Err(op(OP)(error)),
        };
        let user = user_from_row(&row)?;
        tx.commit().await.map_err(op(OP))?;
        Ok(LinkOutcome::Linked(user))
    }

    async fn get_settings(&self, user: UserId) -> Result<UserSettings, StoreError> {
        let row = sqlx::query("SELECT * FROM user_settings WHERE user_id = $1")
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading settings"))?;
        match row {
            Some(row) => settings_from_row(&row),
            None => Ok(UserSettings::default()),
        }
    }

    async fn save_settings(&self, user: UserId, settings: &UserSettings) -> Result<(), StoreError> {
        let _settings_bump = crate::generations::settings_write();
        settings.validate()?;
        let (kind, channel) = match &settings.delivery {
            Delivery::Dm => ("dm", None),
            Delivery::Channel(id) => ("channel", Some(id.as_str())),
        };
        sqlx::query(
            "INSERT INTO user_settings (user_id, notifications_enabled, enabled_timeframes, preferred_pairs,
                 min_confidence, only_ml_enhanced, max_notifications_per_day, notification_cooldown_minutes,
                 delivery_kind, delivery_channel_id, updated_at, running_update_minutes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (user_id) DO UPDATE SET
                 notifications_enabled = excluded.notifications_enabled,
                 enabled_timeframes = excluded.enabled_timeframes,
                 preferred_pairs = excluded.preferred_pairs,
                 min_confidence = excluded.min_confidence,
                 only_ml_enhanced = excluded.only_ml_enhanced,
                 max_notifications_per_day = excluded.max_notifications_per_day,
                 notification_cooldown_minutes = excluded.notification_cooldown_minutes,
                 delivery_kind = excluded.delivery_kind,
                 delivery_channel_id = excluded.delivery_channel_id,
                 updated_at = excluded.updated_at,
                 running_update_minutes = excluded.running_update_minutes",
        )
        .bind(user.0)
        .bind(settings.notifications_enabled)
        .bind(codec::timeframes_to_text(&settings.enabled_timeframes))
        .bind(codec::symbols_to_text(&settings.preferred_pairs))
        .bind(Dec(settings.min_confidence))
        .bind(settings.only_ml_enhanced)
        .bind(i64::from(settings.max_notifications_per_day))
        .bind(i64::from(settings.notification_cooldown_minutes))
        .bind(kind)
        .bind(channel)
        .bind(ts(Utc::now()))
        .bind(i64::from(settings.running_update_minutes))
        .execute(&self.writer)
        .await
        .map_err(op("saving settings"))?;
        Ok(())
    }

    async fn users_with_settings(&self) -> Result<Vec<(User, UserSettings)>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.*, s.user_id AS settings_user_id, s.notifications_enabled, s.enabled_timeframes,
                    s.preferred_pairs, s.min_confidence, s.only_ml_enhanced, s.max_notifications_per_day,
                    s.notification_cooldown_minutes, s.delivery_kind, s.delivery_channel_id, s.running_update_minutes
             FROM users u LEFT JOIN user_settings s ON s.user_id = u.id
             ORDER BY u.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(op("listing users with settings"))?;
        rows.iter()
            .map(|row| {
                let user = user_from_row(row)?;
                let has_settings: Option<i64> = get(row, "user_settings", "settings_user_id")?;
                let settings = match has_settings {
                    Some(_) => settings_from_row(row)?,
                    None => UserSettings::default(),
                };
                Ok((user, settings))
            })
            .collect()
    }

    async fn insert_signal(&self, signal: &Signal, dedup_key: Option<&str>) -> Result<(SignalId, bool), StoreError> {
        let inserted = write_signal(&self.writer, signal, dedup_key).await?;
        if let Some(id) = inserted {
            return Ok((id, true));
        }
        // Only a dedup key conflict makes the insert do nothing, so the key is set and the row exists.
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM signals WHERE dedup_key = $1")
            .bind(dedup_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("finding a signal by dedup key"))?;
        existing.map(|id| (SignalId(id), false)).ok_or_else(|| StoreError::Conflict {
            op: "storing a signal",
            detail: "the insert was skipped but no signal has its dedup key".into(),
        })
    }

    async fn get_signal(&self, id: SignalId) -> Result<Option<StoredSignal>, StoreError> {
        let row = sqlx::query("SELECT * FROM signals WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a signal"))?;
        row.as_ref().map(signal_from_row).transpose()
    }

    async fn recent_signals(&self, limit: u32) -> Result<Vec<StoredSignal>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signals ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing signals"))?;
        map_rows(&rows, signal_from_row)
    }

    async fn create_notification(&self, new: &NewNotification) -> Result<Option<NotificationId>, StoreError> {
        insert_notification(&self.writer, new).await
    }

    async fn create_notification_within_limits(
        &self,
        new: &NewNotification,
        limits: &NotificationLimits,
    ) -> Result<NotifyOutcome, StoreError> {
        const OP: &str = "routing a notification";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let user: Option<i64> =
            sqlx::query_scalar(LOCK_USER).bind(new.user_id.0).fetch_optional(&mut *tx).await.map_err(op(OP))?;
        if user.is_none() {
            return Err(StoreError::NotFound { what: "user", id: new.user_id.0 });
        }
        if let Some(id) = existing_notification(&mut *tx, new).await? {
            return Ok(NotifyOutcome::AlreadyNotified(id));
        }
        if count_since(&mut *tx, new.user_id, limits.window_start).await? >= u64::from(limits.max_in_window) {
            return Ok(NotifyOutcome::DailyCapReached);
        }
        if let Some(cooldown_start) = limits.cooldown_start
            && let Some(last) = last_for_pair(&mut *tx, new.user_id, &new.symbol).await?
            && last >= ts(cooldown_start)
        {
            return Ok(NotifyOutcome::CoolingDown);
        }
        let outcome = match insert_notification(&mut *tx, new).await? {
            Some(id) => NotifyOutcome::Created(id),
            None => match existing_notification(&mut *tx, new).await? {
                Some(id) => NotifyOutcome::AlreadyNotified(id),
                None => {
                    return Err(StoreError::NotFound { what: "notification of signal", id: new.signal_id.0 });
                }
            },
        };
        tx.commit().await.map_err(op(OP))?;
        Ok(outcome)
    }

    async fn get_notification(&self, id: NotificationId) -> Result<Option<Notification>, StoreError> {
        let row = sqlx::query("SELECT * FROM signal_notifications WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a notification"))?;
        row.as_ref().map(notification_from_row).transpose()
    }

    async fn mark_notification_sent(
        &self,
        id: NotificationId,
        discord_message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE signal_notifications
             SET status = 'sent', discord_message_id = $2, sent_at = $3, attempts = attempts + 1, last_error = NULL,
                 claimed_until = NULL
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(discord_message_id)
        .bind(ts(at))
        .execute(&self.writer)
        .await
        .map_err(op("marking a notification sent"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "notification", id: id.0 });
        }
        Ok(())
    }

    async fn mark_notification_failed(&self, id: NotificationId, error: &str, retry: bool) -> Result<(), StoreError> {
        let status = if retry { NotificationStatus::Queued } else { NotificationStatus::Failed };
        fail_notification(&self.writer, id, error, status, None).await
    }

    async fn retry_notification_at(
        &self,
        id: NotificationId,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        fail_notification(&self.writer, id, error, NotificationStatus::Queued, Some(retry_at)).await
    }

    async fn claim_queued_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(CLAIM_NOTIFICATIONS.as_str())
            .bind(ts(now))
            .bind(ts(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map_err(op("claiming notifications"))?;
        let mut claimed = map_rows(&rows, notification_from_row)?;
        // RETURNING does not promise an order.
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }

    async fn acknowledge_notification(&self, id: NotificationId) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE signal_notifications SET acknowledged = $2 WHERE id = $1")
            .bind(id.0)
            .bind(true)
            .execute(&self.writer)
            .await
            .map_err(op("acknowledging a notification"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "notification", id: id.0 });
        }
        Ok(())
    }

    async fn queued_notifications(&self, limit: u32) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signal_notifications WHERE status = 'queued' ORDER BY id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing queued notifications"))?;
        map_rows(&rows, notification_from_row)
    }

    async fn notifications_for_user(
        &self,
        user: UserId,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signal_notifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user.0)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await
        .map_err(op("listing a user's notifications"))?;
        map_rows(&rows, notification_from_row)
    }

    async fn count_notifications_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u64, StoreError> {
        count_since(&self.pool, user, since).await
    }

    async fn last_notification_for_pair(
        &self,
        user: UserId,
        symbol: &Symbol,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        last_for_pair(&self.pool, user, symbol).await
    }

    async fn open_trade(&self, new: &NewTrade) -> Result<OpenOutcome, StoreError> {
        let _bump = crate::generations::trades_write();
        const OP: &str = "opening a trade";
        check_levels(new.side, new.entry, new.stop_loss, new.take_profit)?;
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let Some(trade) = insert_trade(&mut tx, new).await? else {
            // The notification already led to a trade: this is a repeated submit, answered with that trade.
            let existing = sqlx::query("SELECT * FROM user_trades WHERE notification_id = $1")
                .bind(new.notification_id.map(|n| n.0))
                .fetch_optional(&mut *tx)
                .await
                .map_err(op(OP))?;
            return match existing {
                Some(row) => Ok(OpenOutcome { trade: trade_from_row(&row)?, created: false }),
                None => {
                    Err(StoreError::Conflict { op: OP, detail: "the insert was skipped but no trade exists".into() })
                }
            };
        };
        tx.commit().await.map_err(op(OP))?;
        Ok(OpenOutcome { trade, created: true })
    }

    async fn get_trade(&self, id: TradeId) -> Result<Option<Trade>, StoreError> {
        let row = sqlx::query("SELECT * FROM user_trades WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a trade"))?;
        row.as_ref().map(trade_from_row).transpose()
    }

    async fn list_trades(&self, filter: &TradeFilter) -> Result<Vec<Trade>, StoreError> {
        let mut query = QueryBuilder::<Db>::new("SELECT * FROM user_trades");
        push_trade_filter(&mut query, filter);
        query.push(" ORDER BY opened_at DESC, id DESC LIMIT ").push_bind(i64::from(filter.limit));
        query.push(" OFFSET ").push_bind(i64::from(filter.offset));
        let rows = query.build().fetch_all(&self.pool).await.map_err(op("listing trades"))?;
        map_rows(&rows, trade_from_row)
    }

    async fn count_trades(&self, filter: &TradeFilter) -> Result<u64, StoreError> {
        let mut query = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM user_trades");
        push_trade_filter(&mut query, filter);
        let count: i64 = query.build_query_scalar().fetch_one(&self.pool).await.map_err(op("counting trades"))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn open_trades(&self) -> Result<Vec<Trade>, StoreError> {
        self.trades_where("SELECT * FROM user_trades WHERE status = 'open' ORDER BY id", None).await
    }

    async fn open_trade_ids(&self) -> Result<Vec<TradeId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM user_trades WHERE status = 'open' ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing open trade ids"))?;
        Ok(ids.into_iter().map(TradeId).collect())
    }

    async fn open_trades_after(&self, after: TradeId) -> Result<Vec<Trade>, StoreError> {
        self.trades_where("SELECT * FROM user_trades WHERE status = 'open' AND id > $1 ORDER BY id", Some(after.0))
            .await
    }

    async fn close_trade(&self, id: TradeId, closing: &Closing) -> Result<Option<Trade>, StoreError> {
        let _bump = crate::generations::trades_write();
        const OP: &str = "closing a trade";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // The status condition is what makes a close happen once: a second closer, in this process or
        // another, matches no row.
        let row = sqlx::query(
            "UPDATE user_trades
             SET status = 'closed', closed_at = $2, exit_price = $3, close_reason = $4, result = $5, pips = $6,
                 profit = $7
             WHERE id = $1 AND status = 'open' RETURNING *",
        )
        .bind(id.0)
        .bind(ts(closing.at))
        .bind(Dec::from(closing.exit_price))
        .bind(closing.reason.as_str())
        .bind(closing.result.as_str())
        .bind(closing.pips.map(Dec))
        .bind(closing.profit.map(Dec))
        .fetch_optional(&mut *tx)
        .await
        .map_err(op(OP))?;
        let Some(row) = row else {
            drop(tx);
            return self.not_open_or_missing(id).await;
        };
        let trade = trade_from_row(&row)?;
        insert_trade_update(
            &mut *tx,
            &NewTradeUpdate {
                trade_id: id,
                kind: TradeUpdateKind::Closed,
                price: Some(closing.exit_price),
                stop_loss: trade.stop_loss,
                take_profit: trade.take_profit,
                note: Some(closing.reason.as_str().to_string()),
                at: closing.at,
            },
        )
        .await?;
        queue_close_notice(&mut tx, &trade, TradeNoticeKind::Closed, closing.at).await?;
        tx.commit().await.map_err(op(OP))?;
        Ok(Some(trade))
    }

    async fn cancel_trade(&self, id: TradeId, at: DateTime<Utc>) -> Result<Option<Trade>, StoreError> {
        let _bump = crate::generations::trades_write();
        const OP: &str = "cancelling a trade";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let row = sqlx::query(
            "UPDATE user_trades SET status = 'cancelled', closed_at = $2 WHERE id = $1 AND status = 'open' RETURNING *",
        )
        .bind(id.0)
        .bind(ts(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(op(OP))?;
        let Some(row) = row else {
            drop(tx);
            return self.not_open_or_missing(id).await;
        };
        let trade = trade_from_row(&row)?;
        insert_trade_update(
            &mut *tx,
            &NewTradeUpdate {
                trade_id: id,
                kind: TradeUpdateKind::Cancelled,
                price: None,
                stop_loss: trade.stop_loss,
                take_profit: trade.take_profit,
                note: None,
                at,
            },
        )
        .await?;
        queue_close_notice(&mut tx, &trade, TradeNoticeKind::Cancelled, at).await?;
        tx.commit().await.map_err(op(OP))?;
        Ok(Some(trade))
    }

    async fn set_trade_levels(
        &self,
        id: TradeId,
        stop_loss: Option<Price>,
        take_profit: Option<Price>,
        at: DateTime<Utc>,
    ) -> Result<Option<Trade>, StoreError> {
        let _bump = crate::generations::trades_write();
        const OP: &str = "moving a trade's levels";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let row = sqlx::query(SELECT_TRADE_FOR_UPDATE)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(op(OP))?
            .ok_or(StoreError::NotFound { what: "trade", id: id.0 })?;
        let before = trade_from_row(&row)?;
        if before.status != TradeStatus::Open {
            return Ok(None);
        }
        check_levels(before.side, before.entry, stop_loss, take_profit)?;
        if before.stop_loss == stop_loss && before.take_profit == take_profit {
            return Ok(Some(before));
        }
        let row = sqlx::query("UPDATE user_trades SET stop_loss = $2, take_profit = $3 WHERE id = $1 RETURNING *")
            .bind(id.0)
            .bind(stop_loss.map(Dec::from))
            .bind(take_profit.map(Dec::from))
            .fetch_one(&mut *tx)
            .await
            .map_err(op(OP))?;
        let after = trade_from_row(&row)?;
        let changes = [
            (before.stop_loss != stop_loss, TradeUpdateKind::StopLossMoved),
            (before.take_profit != take_profit, TradeUpdateKind::TakeProfitMoved),
        ];
        for (_, kind) in changes.into_iter().filter(|(changed, _)| *changed) {
            let update = NewTradeUpdate { trade_id: id, kind, price: None, stop_loss, take_profit, note: None, at };
            insert_trade_update(&mut *tx, &update).await?;
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(Some(after))
    }

    async fn add_trade_update(&self, update: &NewTradeUpdate) -> Result<TradeUpdate, StoreError> {
        match update.kind {
            TradeUpdateKind::PriceSnapshot | TradeUpdateKind::PartialClose => {}
            other => {
                return Err(StoreError::invalid(format!(
                    "a {other} entry is written by the trade's own transition, not added by hand"
                )));
            }
        }
        insert_trade_update(&self.writer, update).await
    }

    async fn trade_updates(&self, trade: TradeId) -> Result<Vec<TradeUpdate>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trade_updates WHERE trade_id = $1 ORDER BY id")
            .bind(trade.0)
            .fetch_all(&self.pool)
            .await
            .map_err(op("reading a trade's history"))?;
        map_rows(&rows, update_from_row)
    }

    async fn trade_updates_after(&self, after: TradeUpdateId, limit: u32) -> Result<Vec<TradeUpdate>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trade_updates WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.0)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(op("tailing trade updates"))?;
        map_rows(&rows, update_from_row)
    }

    async fn last_trade_update_id(&self) -> Result<TradeUpdateId, StoreError> {
        let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM trade_updates")
            .fetch_one(&self.pool)
            .await
            .map_err(op("reading the last trade update id"))?;
        Ok(TradeUpdateId(id))
    }

    async fn set_last_price(&self, tick: &Tick) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO last_prices (symbol, bid, ask, time) VALUES ($1, $2, $3, $4)
             ON CONFLICT (symbol) DO UPDATE SET bid = excluded.bid, ask = excluded.ask, time = excluded.time",
        )
        .bind(tick.symbol.as_str())
        .bind(Dec::from(tick.bid))
        .bind(Dec::from(tick.ask))
        .bind(ts(tick.time))
        .execute(&self.writer)
        .await
        .map_err(op("recording the last price"))?;
        Ok(())
    }

    async fn last_price(&self, symbol: &Symbol) -> Result<Option<Tick>, StoreError> {
        let row = sqlx::query("SELECT * FROM last_prices WHERE symbol = $1")
            .bind(symbol.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading the last price"))?;
        row.as_ref().map(tick_from_row).transpose()
    }

    async fn save_candles(&self, symbol: &Symbol, timeframe: Timeframe, candles: &[Candle]) -> Result<(), StoreError> {
        const OP: &str = "saving candles";
        for candle in candles {
            candle.validate().map_err(|e| {
                StoreError::invalid(format!("candle {symbol} {timeframe} at {} is not valid: {e}", candle.time))
            })?;
        }
        // The same open time twice in one statement makes PostgreSQL refuse the whole upsert ("cannot affect
        // row a second time"): the last one given wins, as it would over two calls.
        let unique: std::collections::BTreeMap<DateTime<Utc>, &Candle> =
            candles.iter().map(|c| (ts(c.time), c)).collect();
        let candles: Vec<&Candle> = unique.into_values().collect();
        if candles.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(op(OP))?;
        // 8 parameters a row; SQLite allows 32,766 per statement, PostgreSQL 65,535.
        for chunk in candles.chunks(CANDLES_PER_STATEMENT) {
            let mut query = QueryBuilder::<Db>::new(
                "INSERT INTO candles (symbol, timeframe, open_time, open, high, low, close, volume) ",
            );
            query.push_values(chunk, |mut row, candle| {
                row.push_bind(symbol.as_str())
                    .push_bind(timeframe.as_str())
                    .push_bind(ts(candle.time))
                    .push_bind(Dec(candle.open))
                    .push_bind(Dec(candle.high))
                    .push_bind(Dec(candle.low))
                    .push_bind(Dec(candle.close))
                    .push_bind(Dec(candle.volume));
            });
            query.push(
                " ON CONFLICT (symbol, timeframe, open_time) DO UPDATE SET open = excluded.open,
                  high = excluded.high, low = excluded.low, close = excluded.close, volume = excluded.volume",
            );
            query.build().execute(&mut *tx).await.map_err(op(OP))?;
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(())
    }

    async fn recent_candles(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Candle>, StoreError> {
        let rows = sqlx::query(
            "SELECT open_time, open, high, low, close, volume FROM candles
             WHERE symbol = $1 AND timeframe = $2 AND open_time <= $3
             ORDER BY open_time DESC LIMIT $4",
        )
        .bind(symbol.as_str())
        .bind(timeframe.as_str())
        .bind(ts(until))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(op("reading recent candles"))?;
        let mut candles = map_rows(&rows, candle_from_row)?;
        candles.reverse();
        Ok(candles)
    }

    async fn last_candle_time(
        &self,
        symbol: &Symbol,
        timeframe: Timeframe,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT open_time FROM candles WHERE symbol = $1 AND timeframe = $2 ORDER BY open_time DESC LIMIT 1",
        )
        .bind(symbol.as_str())
        .bind(timeframe.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(op("reading the last candle time"))?;
        row.as_ref().map(|row| get(row, "candles", "open_time")).transpose()
    }

    async fn create_notifications_within_limits(
        &self,
        signal: &NotificationBatch,
        candidates: &[(UserId, NotificationLimits)],
    ) -> Result<Vec<NotifyOutcome>, StoreError> {
        const OP: &str = "routing a signal";
        // A user listed twice is routed once; the repeat is answered from the first's outcome below.
        let mut seen = std::collections::HashSet::with_capacity(candidates.len());
        let unique: Vec<(UserId, &NotificationLimits)> =
            candidates.iter().filter(|(user, _)| seen.insert(*user)).map(|(user, limits)| (*user, limits)).collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let json = candidates_json(&unique);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        if let Some(lock) = LOCK_CANDIDATES.as_deref() {
            sqlx::query(lock).bind(&json).execute(&mut *tx).await.map_err(op(OP))?;
        }
        let created: Vec<(i64, i64)> = sqlx::query_as(INSERT_CANDIDATES.as_str())
            .bind(&json)
            .bind(signal.signal_id.0)
            .bind(signal.symbol.as_str())
            .bind(ts(signal.created_at))
            .fetch_all(&mut *tx)
            .await
            .map_err(op(OP))?;
        let mut outcomes: std::collections::HashMap<i64, NotifyOutcome> =
            created.into_iter().map(|(user, id)| (user, NotifyOutcome::Created(NotificationId(id)))).collect();
        // Why the others were not notified, read in the same transaction, in the per-user method's order.
        let rest: Vec<(UserId, &NotificationLimits)> =
            unique.iter().filter(|(user, _)| !outcomes.contains_key(&user.0)).copied().collect();
        if !rest.is_empty() {
            let rows: Vec<(i64, i32, Option<i64>, i32, i32)> = sqlx::query_as(CLASSIFY_CANDIDATES.as_str())
                .bind(candidates_json(&rest))
                .bind(signal.signal_id.0)
                .bind(signal.symbol.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(op(OP))?;
            for (user, exists, existing, capped, cooling) in rows {
                let outcome = if exists == 0 {
                    return Err(StoreError::NotFound { what: "user", id: user });
                } else if let Some(id) = existing {
                    NotifyOutcome::AlreadyNotified(NotificationId(id))
                } else if capped != 0 {
                    NotifyOutcome::DailyCapReached
                } else if cooling != 0 {
                    NotifyOutcome::CoolingDown
                } else {
                    return Err(StoreError::Conflict {
                        op: OP,
                        detail: format!("user {user} was neither notified nor refused"),
                    });
                };
                outcomes.insert(user, outcome);
            }
        }
        tx.commit().await.map_err(op(OP))?;
        let mut answered = std::collections::HashSet::with_capacity(candidates.len());
        candidates
            .iter()
            .map(|(user, _)| {
                let outcome = outcomes
                    .get(&user.0)
                    .copied()
                    .ok_or_else(|| StoreError::Conflict { op: OP, detail: format!("no outcome for user {user}") })?;
                Ok(match outcome {
                    NotifyOutcome::Created(id) if !answered.insert(*user) => NotifyOutcome::AlreadyNotified(id),
                    other => {
                        answered.insert(*user);
                        other
                    }
                })
            })
            .collect()
    }

    async fn acquire_router_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<RouterLease>, StoreError> {
        self.fanout_acquire_lease(holder, now, ttl).await
    }

    async fn renew_router_lease(
        &self,
        lease: &RouterLease,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<RouterLease>, StoreError> {
        self.fanout_renew_lease(lease, now, ttl).await
    }

    async fn release_router_lease(&self, lease: &RouterLease) -> Result<(), StoreError> {
        self.fanout_release_lease(lease).await
    }

    async fn take_routing_changes(&self, lease: &RouterLease) -> Result<Option<RoutingChanges>, StoreError> {
        self.fanout_take_changes(lease).await
    }

    async fn counted_notifications_since(&self, since: DateTime<Utc>) -> Result<Vec<CountedNotification>, StoreError> {
        self.fanout_counted_since(since).await
    }

    async fn record_audience(
        &self,
        lease: &RouterLease,
        audience: &NewAudience,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<AudienceOutcome, StoreError> {
        self.fanout_record_audience(lease, audience, now, ttl).await
    }

    async fn pending_audiences(&self, limit: u32) -> Result<Vec<PendingAudience>, StoreError> {
        self.fanout_pending(limit).await
    }

    async fn materialise_audience(&self, signal: SignalId, max_rows: u32) -> Result<MaterialiseProgress, StoreError> {
        self.fanout_materialise(signal, max_rows).await
    }

    // --- dashboard sign-in: the SQL is in web_repo.rs ---

    async fn set_local_credentials(
        &self,
        user: UserId,
        username: &str,
        password_hash: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.web_set_local_credentials(user, username, password_hash, now).await
    }

    async fn local_credentials_by_username(
        &self,
        username: &str,
    ) -> Result<Option<crate::LocalCredentials>, StoreError> {
        let sql = "SELECT * FROM local_credentials WHERE username = $1";
        self.web_credentials_where(sql, super::web_repo::WhereValue::Text(username)).await
    }

    async fn local_credentials(&self, user: UserId) -> Result<Option<crate::LocalCredentials>, StoreError> {
        let sql = "SELECT * FROM local_credentials WHERE user_id = $1";
        self.web_credentials_where(sql, super::web_repo::WhereValue::User(user)).await
    }

    async fn create_web_session(&self, new: &crate::NewWebSession) -> Result<(), StoreError> {
        self.web_create_session(new).await
    }

    async fn web_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<crate::WebSession>, StoreError> {
        Backend::web_session(self, id_hash, now).await
    }

    async fn touch_web_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _bump = crate::generations::sessions_write();
        self.web_touch_session(id_hash, now, expires_at).await
    }

    async fn take_web_session(&self, id_hash: &str) -> Result<Option<crate::WebSession>, StoreError> {
        let _bump = crate::generations::sessions_write();
        self.web_take_session(id_hash).await
    }

    async fn delete_expired_web_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.web_delete_expired_sessions(now).await
    }

    async fn delete_user_web_sessions(&self, user: UserId) -> Result<u64, StoreError> {
        let _bump = crate::generations::sessions_write();
        self.web_delete_user_sessions(user).await
    }

    // --- provider channels and messages: the SQL is in provider_repo.rs ---

    async fn add_provider_channel(
        &self,
        channel_id: &str,
        name: &str,
        added_by: &str,
        at: DateTime<Utc>,
    ) -> Result<crate::ProviderChannel, StoreError> {
        self.provider_add_channel(channel_id, name, added_by, at).await
    }

    async fn provider_channels(&self) -> Result<Vec<crate::ProviderChannel>, StoreError> {
        Backend::provider_channels(self).await
    }

    async fn provider_channel(&self, channel_id: &str) -> Result<Option<crate::ProviderChannel>, StoreError> {
        Backend::provider_channel(self, channel_id).await
    }

    async fn record_provider_message(
        &self,
        new: &crate::NewProviderMessage<'_>,
    ) -> Result<crate::ProviderIntake, StoreError> {
        self.provider_record_message(new).await
    }

    async fn record_provider_edit(
        &self,
        channel_id: &str,
        message_id: &str,
        content: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.provider_record_edit(channel_id, message_id, content, hash, at).await
    }

    async fn record_provider_delete(
        &self,
        channel_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.provider_record_delete(channel_id, message_id, at).await
    }

    async fn provider_messages(&self, channel_id: &str, limit: u32) -> Result<Vec<crate::ProviderMessage>, StoreError> {
        Backend::provider_messages(self, channel_id, limit).await
    }

    // --- followers and copy orders: the SQL is in follower_repo.rs ---

    async fn save_follower(&self, new: &crate::NewFollower<'_>) -> Result<crate::Follower, StoreError> {
        self.follower_save(new).await
    }

    async fn get_follower(&self, id: crate::FollowerId) -> Result<Option<crate::Follower>, StoreError> {
        self.follower_get(id).await
    }

    async fn followers_of(&self, provider_channel: &str) -> Result<Vec<crate::Follower>, StoreError> {
        self.followers_of_channel(provider_channel).await
    }

    async fn followers_for_user(&self, user: UserId) -> Result<Vec<crate::Follower>, StoreError> {
        self.followers_of_user(user).await
    }

    async fn set_follower_enabled(
        &self,
        user: UserId,
        id: crate::FollowerId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        self.follower_set_enabled(user, id, enabled).await
    }

    async fn follower_day_stats(
        &self,
        followers: &[crate::FollowerId],
        day_start: DateTime<Utc>,
    ) -> Result<std::collections::HashMap<crate::FollowerId, crate::FollowerDayStats>, StoreError> {
        self.follower_stats(followers, day_start).await
    }

    async fn begin_copies(
        &self,
        signal: SignalId,
        copies: &[crate::NewCopy<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<crate::CopyOrder>, StoreError> {
        self.copy_begin(signal, copies, at).await
    }

    async fn finish_copy_placed(
        &self,
        id: crate::CopyOrderId,
        broker_order_id: &str,
        trade: &NewTrade,
        at: DateTime<Utc>,
    ) -> Result<Option<Trade>, StoreError> {
        let _bump = crate::generations::trades_write();
        self.copy_finish_placed(id, broker_order_id, trade, at).await
    }

    async fn finish_copies_placed(
        &self,
        copies: &[crate::PlacedCopy],
    ) -> Result<Vec<Result<Option<Trade>, StoreError>>, StoreError> {
        let _bump = crate::generations::trades_write();
        self.copies_finish_placed(copies).await
    }

    async fn finish_copy_unplaced(
        &self,
        id: crate::CopyOrderId,
        status: crate::CopyStatus,
        gate: Option<&str>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.copy_finish_unplaced(id, status, gate, reason, at).await
    }

    async fn copy_orders_for_signal(&self, signal: SignalId) -> Result<Vec<crate::CopyOrder>, StoreError> {
        self.copies_of_signal(signal).await
    }

    async fn copy_orders_for_user(&self, user: UserId, limit: u32) -> Result<Vec<crate::CopyOrder>, StoreError> {
        self.copies_of_user(user, limit).await
    }

    async fn pending_copies(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<crate::CopyOrder>, StoreError> {
        self.copies_pending(created_before, limit).await
    }

    async fn provider_signal_for_update(
        &self,
        channel_id: &str,
        reply_to: Option<&str>,
        symbol: Option<&Symbol>,
    ) -> Result<Option<SignalId>, StoreError> {
        self.provider_update_signal(channel_id, reply_to, symbol).await
    }

    async fn set_provider_message_outcome(
        &self,
        channel_id: &str,
        message_id: &str,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        self.provider_set_outcome(channel_id, message_id, outcome).await
    }

    async fn partially_close_trade(
        &self,
        id: TradeId,
        lots: domain::Lots,
        closing: &Closing,
    ) -> Result<Option<(Trade, Trade)>, StoreError> {
        let _bump = crate::generations::trades_write();
        self.trade_close_part(id, lots, closing).await
    }

    // --- password changes and the sign-in lockout: the SQL is in credentials_repo.rs ---

    async fn change_local_password(
        &self,
        user: UserId,
        current_hash: &str,
        new_hash: &str,
        keep_session: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let _bump = crate::generations::sessions_write();
        self.credentials_change_password(user, current_hash, new_hash, keep_session, now).await
    }

    async fn record_sign_in_failure(
        &self,
        username_key: &str,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.credentials_record_failure(username_key, at, forget_before).await
    }

    async fn sign_in_failures_since(&self, username_key: &str, since: DateTime<Utc>) -> Result<u32, StoreError> {
        self.credentials_failures_since(username_key, since).await
    }

    async fn clear_sign_in_failures(&self, username_key: &str) -> Result<u64, StoreError> {
        self.credentials_clear_failures(username_key).await
    }

    async fn create_sign_in_token(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.web_create_sign_in_token(user, token_hash, expires_at, now).await
    }

    async fn redeem_sign_in_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<UserId>, StoreError> {
        self.web_redeem_sign_in_token(token_hash, now).await
    }

    async fn trades_page(&self, query: &TradeQuery) -> Result<Vec<Trade>, StoreError> {
        let rows = trade_query(query).fetch_all(&self.pool).await.map_err(op("listing a page of trades"))?;
        map_rows(&rows, trade_from_row)
    }

    fn stream_trades<'a>(&'a self, query: &TradeQuery) -> futures::stream::BoxStream<'a, Result<Trade, StoreError>> {
        use futures::StreamExt as _;
        trade_query(query)
            .fetch(&self.pool)
            .map(|row| row.map_err(op("streaming trades")).and_then(|row| trade_from_row(&row)))
            .boxed()
    }

    async fn web_session_context(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::SessionContext>, StoreError> {
        self.web_session_with_user(id_hash, now).await
    }

    fn stream_trade_texts<'a>(
        &'a self,
        query: &TradeQuery,
        batch_rows: usize,
    ) -> futures::stream::BoxStream<'a, Result<crate::TradeTexts, StoreError>> {
        use futures::StreamExt as _;
        let batch_rows = batch_rows.max(1);
        let rows = trade_query_of(TRADE_TEXT_COLUMNS, query).fetch(&self.pool);
        // Each row is copied into the batch and dropped as soon as it arrives: a batch holds text, not rows.
        futures::stream::unfold(Some(rows), move |rows| async move {
            let mut rows = rows?;
            let mut batch = crate::TradeTexts::with_capacity(batch_rows);
            while batch.len() < batch_rows {
                let pushed = match rows.next().await {
                    Some(row) => {
                        row.map_err(op("streaming trades as text")).and_then(|row| push_trade_text(&mut batch, &row))
                    }
                    None => return (!batch.is_empty()).then_some((Ok(batch), None)),
                };
                if let Err(error) = pushed {
                    return Some((Err(error), None));
                }
            }
            Some((Ok(batch), Some(rows)))
        })
        .boxed()
    }

    async fn import_trades(&self, trades: &[Trade]) -> Result<u64, StoreError> {
        let _bump = crate::generations::trades_write();
        const OP: &str = "importing trades";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let mut inserted = 0;
        for chunk in trades.chunks(IMPORT_ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO user_trades (user_id, symbol, side, entry, lots, stop_loss, take_profit, status, opened_at,
                     closed_at, exit_price, close_reason, result, pips, profit, notes, signal_id) ",
            );
            insert.push_values(chunk, |mut row, t| {
                row.push_bind(t.user_id.0)
                    .push_bind(t.symbol.as_str().to_string())
                    .push_bind(t.side.as_str())
                    .push_bind(Dec::from(t.entry))
                    .push_bind(Dec::from(t.lots))
                    .push_bind(t.stop_loss.map(Dec::from))
                    .push_bind(t.take_profit.map(Dec::from))
                    .push_bind(t.status.as_str())
                    .push_bind(ts(t.opened_at))
                    .push_bind(t.closed_at.map(ts))
                    .push_bind(t.exit_price.map(Dec::from))
                    .push_bind(t.close_reason.map(|r| r.as_str()))
                    .push_bind(t.result.map(|r| r.as_str()))
                    .push_bind(t.pips.map(Dec))
                    .push_bind(t.profit.map(Dec))
                    .push_bind(t.notes.clone())
                    .push_bind(t.signal_id.map(|s| s.0));
            });
            inserted += insert.build().execute(&mut *tx).await.map_err(op(OP))?.rows_affected();
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(inserted)
    }
}

// ---------- fan-out: the router lease and signal audiences (issue 4) ----------

use super::{MATERIALISE_INSERT, SELECT_AUDIENCE_FOR_UPDATE};
use crate::model::{
    AudienceOutcome, CountedNotification, LimitChange, MaterialiseProgress, NewAudience, PendingAudience, RouterLease,
    RoutingChanges,
};

/// The one lease row: one router routes at a time, whatever the signal.
const LEASE: &str = "router";

type LeaseRow = (String, i64, DateTime<Utc>);

fn lease_from_row((holder, epoch, expires_at): LeaseRow) -> RouterLease {
    RouterLease { holder, epoch, expires_at }
}

fn lease_until(now: DateTime<Utc>, ttl: chrono::Duration) -> Result<DateTime<Utc>, StoreError> {
    if ttl <= chrono::Duration::zero() {
        return Err(StoreError::invalid("a router lease needs a positive time to live"));
    }
    now.checked_add_signed(ttl).map(ts).ok_or_else(|| StoreError::invalid("the lease would expire out of range"))
}

impl Backend {
    pub(crate) async fn fanout_acquire_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<RouterLease>, StoreError> {
        if holder.trim().is_empty() {
            return Err(StoreError::invalid("a router lease needs a holder name"));
        }
        let until = lease_until(now, ttl)?;
        // The conditional upsert is the whole protocol: a second taker waits on the row, then finds it
        // unexpired and someone else's, and gets no row back.
        let row: Option<LeaseRow> = sqlx::query_as(
            "INSERT INTO router_lease (name, holder, epoch, expires_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = router_lease.epoch + 1,
                 expires_at = excluded.expires_at
             WHERE router_lease.expires_at <= $4 OR router_lease.holder = excluded.holder
             RETURNING holder, epoch, expires_at",
        )
        .bind(LEASE)
        .bind(holder)
        .bind(until)
        .bind(ts(now))
        .fetch_optional(&self.writer)
        .await
        .map_err(op("taking the router lease"))?;
        Ok(row.map(lease_from_row))
    }

    pub(crate) async fn fanout_renew_lease(
        &self,
        lease: &RouterLease,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<RouterLease>, StoreError> {
        let until = lease_until(now, ttl)?;
        let row: Option<LeaseRow> = sqlx::query_as(
            "UPDATE router_lease SET expires_at = $4 WHERE name = $1 AND holder = $2 AND epoch = $3
             RETURNING holder, epoch, expires_at",
        )
        .bind(LEASE)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .bind(until)
        .fetch_optional(&self.writer)
        .await
        .map_err(op("renewing the router lease"))?;
        Ok(row.map(lease_from_row))
    }

    pub(crate) async fn fanout_release_lease(&self, lease: &RouterLease) -> Result<(), StoreError> {
        sqlx::query("UPDATE router_lease SET expires_at = $4 WHERE name = $1 AND holder = $2 AND epoch = $3")
            .bind(LEASE)
            .bind(&lease.holder)
            .bind(lease.epoch)
            .bind(DateTime::<Utc>::UNIX_EPOCH)
            .execute(&self.writer)
            .await
            .map_err(op("releasing the router lease"))?;
        Ok(())
    }

    pub(crate) async fn fanout_take_changes(&self, lease: &RouterLease) -> Result<Option<RoutingChanges>, StoreError> {
        const OP: &str = "reading routing changes";
        // One read in the usual case, where nothing but the signal changed; the log is deleted from only when
        // it has rows, so a quiet SQLite database sees no write (and no fsync) here.
        let (users_version, pending, held): (i64, i32, i32) = sqlx::query_as(
            "SELECT (SELECT value FROM routing_versions WHERE name = 'users'),
                 CASE WHEN EXISTS (SELECT 1 FROM routing_limit_changes) THEN 1 ELSE 0 END,
                 CASE WHEN EXISTS (SELECT 1 FROM router_lease WHERE name = $1 AND holder = $2 AND epoch = $3)
                     THEN 1 ELSE 0 END",
        )
        .bind(LEASE)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .fetch_one(&self.pool)
        .await
        .map_err(op(OP))?;
        if held == 0 {
            return Ok(None);
        }
        let mut limit_changes = Vec::new();
        if pending != 0 {
            // Only the current holder consumes: a router that lost the lease deletes nothing, and its successor
            // seeds from the notifications themselves after taking the lease, so nothing it deleted is lost.
            let mut rows: Vec<(i64, i64, i64, String, DateTime<Utc>, bool)> = sqlx::query_as(
                "DELETE FROM routing_limit_changes
                 WHERE EXISTS (SELECT 1 FROM router_lease WHERE name = $1 AND holder = $2 AND epoch = $3)
                 RETURNING id, signal_id, user_id, symbol, created_at, counts",
            )
            .bind(LEASE)
            .bind(&lease.holder)
            .bind(lease.epoch)
            .fetch_all(&self.writer)
            .await
            .map_err(op(OP))?;
            if rows.is_empty() {
                return Ok(None);
            }
            rows.sort_unstable_by_key(|row| row.0);
            limit_changes = rows
                .into_iter()
                .map(|(_, signal_id, user_id, symbol, created_at, counts)| LimitChange {
                    notification: CountedNotification {
                        signal_id: SignalId(signal_id),
                        user_id: UserId(user_id),
                        symbol: Symbol::normalize(&symbol),
                        created_at,
                    },
                    counts,
                })
                .collect();
        }
        Ok(Some(RoutingChanges { users_version, limit_changes }))
    }

    pub(crate) async fn fanout_counted_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<CountedNotification>, StoreError> {
        let rows: Vec<(i64, i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT signal_id, user_id, symbol, created_at FROM signal_notifications
             WHERE created_at >= $1 AND status <> 'failed'",
        )
        .bind(ts(since))
        .fetch_all(&self.pool)
        .await
        .map_err(op("reading the notifications that count toward limits"))?;
        Ok(rows
            .into_iter()
            .map(|(signal_id, user_id, symbol, created_at)| CountedNotification {
                signal_id: SignalId(signal_id),
                user_id: UserId(user_id),
                symbol: Symbol::normalize(&symbol),
                created_at,
            })
            .collect())
    }

    pub(crate) async fn fanout_record_audience(
        &self,
        lease: &RouterLease,
        audience: &NewAudience,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<AudienceOutcome, StoreError> {
        const OP: &str = "recording a signal's audience";
        let until = lease_until(now, ttl)?;
        let (bytes, ids) = crate::model::encode_recipients(&audience.recipients).map_err(StoreError::invalid)?;
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // The fence: on PostgreSQL the update holds the lease row until commit, so a takeover waits for this
        // transaction and then seeds from what it wrote; on SQLite the immediate transaction excludes it.
        let fenced =
            sqlx::query("UPDATE router_lease SET expires_at = $4 WHERE name = $1 AND holder = $2 AND epoch = $3")
                .bind(LEASE)
                .bind(&lease.holder)
                .bind(lease.epoch)
                .bind(until)
                .execute(&mut *tx)
                .await
                .map_err(op(OP))?;
        if fenced.rows_affected() == 0 {
            return Ok(AudienceOutcome::LeaseLost);
        }
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO signal_audiences (signal_id, symbol, created_at, recipients, recipient_count, routed_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (signal_id) DO NOTHING RETURNING signal_id",
        )
        .bind(audience.signal_id.0)
        .bind(audience.symbol.as_str())
        .bind(ts(audience.created_at))
        .bind(bytes)
        .bind(ids.len() as i64)
        .bind(ts(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(op(OP))?;
        if inserted.is_none() {
            let recipients: i64 =
                sqlx::query_scalar("SELECT recipient_count FROM signal_audiences WHERE signal_id = $1")
                    .bind(audience.signal_id.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(op(OP))?;
            return Ok(AudienceOutcome::AlreadyRouted { recipients: u64::try_from(recipients).unwrap_or_default() });
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(AudienceOutcome::Recorded)
    }

    pub(crate) async fn fanout_pending(&self, limit: u32) -> Result<Vec<PendingAudience>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT signal_id, recipient_count, materialised FROM signal_audiences
             WHERE materialised < recipient_count ORDER BY signal_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(op("listing pending audiences"))?;
        Ok(rows
            .into_iter()
            .map(|(signal_id, recipients, materialised)| PendingAudience {
                signal_id: SignalId(signal_id),
                recipients: u64::try_from(recipients).unwrap_or_default(),
                materialised: u64::try_from(materialised).unwrap_or_default(),
            })
            .collect())
    }

    pub(crate) async fn fanout_materialise(
        &self,
        signal: SignalId,
        max_rows: u32,
    ) -> Result<MaterialiseProgress, StoreError> {
        const OP: &str = "writing an audience's notifications";
        const T: &str = "signal_audiences";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let row = sqlx::query(SELECT_AUDIENCE_FOR_UPDATE)
            .bind(signal.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(op(OP))?
            .ok_or(StoreError::NotFound { what: "audience of signal", id: signal.0 })?;
        let symbol: String = get(&row, T, "symbol")?;
        let created_at: DateTime<Utc> = get(&row, T, "created_at")?;
        let bytes: Vec<u8> = get(&row, T, "recipients")?;
        let count: i64 = get(&row, T, "recipient_count")?;
        let done: i64 = get(&row, T, "materialised")?;
        let ids = crate::model::decode_recipients(&bytes).map_err(|e| StoreError::corrupt(T, "recipients", e))?;
        if ids.len() as i64 != count || !(0..=count).contains(&done) {
            return Err(StoreError::corrupt(
                T,
                "recipients",
                format!("{} ids for a count of {count}, {done} materialised", ids.len()),
            ));
        }
        let start = done as usize;
        let end = ids.len().min(start + max_rows.max(1) as usize);
        if start == end {
            return Ok(MaterialiseProgress::default());
        }
        let slice = &ids[start..end];
        let mut json = String::with_capacity(slice.len() * 8 + 2);
        json.push('[');
        for (i, id) in slice.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&id.to_string());
        }
        json.push(']');
        let created = sqlx::query(MATERIALISE_INSERT)
            .bind(signal.0)
            .bind(symbol)
            .bind(created_at)
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?
            .rows_affected();
        sqlx::query("UPDATE signal_audiences SET materialised = $2 WHERE signal_id = $1")
            .bind(signal.0)
            .bind(end as i64)
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        tx.commit().await.map_err(op(OP))?;
        Ok(MaterialiseProgress { created, remaining: (ids.len() - end) as u64 })
    }
}

/// Rows per multi-row trade insert: 17 parameters each, under SQLite's 32,766 and PostgreSQL's 65,535.
const IMPORT_ROWS_PER_STATEMENT: usize = 1000;

/// A value bound to a trade query, owned so the query (and a stream reading it) borrows nothing.
enum TradeBind {
    Int(i64),
    Text(&'static str),
    Owned(String),
    Time(DateTime<Utc>),
}

/// The SQL of a [`TradeQuery`]: `WHERE user_id = … AND …` in the order the history index serves
/// (user_id, opened_at DESC, id DESC), with the keyset condition for the page after a cursor.
fn trade_query(query: &TradeQuery) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
    trade_query_of("*", query)
}

/// [`trade_query`] selecting `columns`.
fn trade_query_of(
    columns: &str,
    query: &TradeQuery,
) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
    let mut sql = format!("SELECT {columns} FROM user_trades WHERE user_id = $1");
    let mut binds = vec![TradeBind::Int(query.user_id.0)];
    let mut next = |sql: &mut String, text: &str, value: TradeBind| {
        binds.push(value);
        sql.push_str(&text.replace('?', &format!("${}", binds.len())));
    };
    if let Some(status) = query.status {
        next(&mut sql, " AND status = ?", TradeBind::Text(status.as_str()));
    }
    if let Some(result) = query.result {
        next(&mut sql, " AND result = ?", TradeBind::Text(result.as_str()));
    }
    if let Some(symbol) = &query.symbol {
        next(&mut sql, " AND symbol = ?", TradeBind::Owned(symbol.as_str().to_string()));
    }
    if let Some(from) = query.opened_from {
        next(&mut sql, " AND opened_at >= ?", TradeBind::Time(ts(from)));
    }
    if let Some(until) = query.opened_until {
        next(&mut sql, " AND opened_at < ?", TradeBind::Time(ts(until)));
    }
    if let Some(after) = query.after {
        // A row value, not `opened_at < ? OR (opened_at = ? AND id < ?)`: both planners turn it into a range
        // of the index, where PostgreSQL read the OR as a filter and walked every newer row to reach the page.
        next(&mut sql, " AND (opened_at, id) < (?", TradeBind::Time(ts(after.opened_at)));
        next(&mut sql, ", ?)", TradeBind::Int(after.id.0));
    }
    sql.push_str(" ORDER BY opened_at DESC, id DESC");
    if let Some(limit) = query.limit {
        next(&mut sql, " LIMIT ?", TradeBind::Int(i64::from(limit)));
    }
    let mut built = sqlx::query(sqlx::AssertSqlSafe(sql));
    for bind in binds {
        built = match bind {
            TradeBind::Int(v) => built.bind(v),
            TradeBind::Text(v) => built.bind(v),
            TradeBind::Owned(v) => built.bind(v),
            TradeBind::Time(v) => built.bind(v),
        };
    }
    built
}

// ---------- trades as text, for exports (issue 5, item 9) ----------

/// The columns of [`push_trade_text`], read by position. `CAST(… AS TEXT)` is PostgreSQL's own exact text
/// of a NUMERIC and a no-op on SQLite's decimal text: either way the decimal arrives as text that needs no
/// parsing.
const TRADE_TEXT_COLUMNS: &str = "id, signal_id, opened_at, closed_at, symbol, side, status, result,
    CAST(lots AS TEXT), CAST(entry AS TEXT), CAST(stop_loss AS TEXT), CAST(take_profit AS TEXT),
    CAST(exit_price AS TEXT), close_reason, CAST(pips AS TEXT), CAST(profit AS TEXT), notes";

/// The names of [`TRADE_TEXT_COLUMNS`] from the fifth on, for errors.
const TRADE_TEXT_NAMES: [&str; 13] = [
    "symbol",
    "side",
    "status",
    "result",
    "lots",
    "entry",
    "stop_loss",
    "take_profit",
    "exit_price",
    "close_reason",
    "pips",
    "profit",
    "notes",
];

fn at<'r, T>(row: &'r DbRow, index: usize, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    const T: &str = "user_trades";
    row.try_get(index).map_err(|e| match e {
        sqlx::Error::ColumnDecode { source, .. } => StoreError::corrupt(T, column, source),
        other => StoreError::Query { op: T, source: other },
    })
}

/// Whether `text` is a decimal as `Decimal`'s `Display` writes it: an optional minus, digits without a
/// leading zero (but for a lone one), and an optional fraction. Checking this costs a pass over a few bytes
/// where parsing and printing cost two conversions.
fn is_plain_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let (whole, fraction) = match digits.iter().position(|b| *b == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    !whole.is_empty()
        && whole.len() <= 29
        && whole.iter().all(u8::is_ascii_digit)
        && (whole.len() == 1 || whole[0] != b'0')
        && fraction.is_none_or(|f| !f.is_empty() && f.len() <= 28 && f.iter().all(u8::is_ascii_digit))
}

fn is_positive(text: &str) -> bool {
    !text.starts_with('-') && text.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

fn push_trade_text(batch: &mut crate::TradeTexts, row: &DbRow) -> Result<(), StoreError> {
    const T: &str = "user_trades";
    let mut texts: [Option<&str>; 13] = [None; 13];
    for (i, (slot, column)) in texts.iter_mut().zip(TRADE_TEXT_NAMES).enumerate() {
        *slot = at::<Option<&str>>(row, i + 4, column)?;
    }
    let required = |i: usize| texts[i].ok_or_else(|| StoreError::corrupt(T, TRADE_TEXT_NAMES[i], "unexpected NULL"));
    let side = required(1)?;
    codec::to_enum(T, "side", side, |s| Side::parse(s).ok())?;
    codec::to_enum(T, "status", required(2)?, TradeStatus::parse)?;
    if let Some(result) = texts[3] {
        codec::to_enum(T, "result", result, TradeResult::parse)?;
    }
    if let Some(reason) = texts[9] {
        codec::to_enum(T, "close_reason", reason, domain::CloseReason::parse)?;
    }
    required(0)?;
    required(4)?;
    required(5)?;
    // lots, entry, stop_loss, take_profit, exit_price must be positive; pips and profit may be anything.
    for i in 4..=11 {
        if i == 9 {
            continue;
        }
        let Some(text) = texts[i] else { continue };
        let positive = i <= 8;
        if !is_plain_decimal(text) || (positive && !is_positive(text)) {
            let reason = format!("{text:?} is not a plain {}decimal", if positive { "positive " } else { "" });
            return Err(StoreError::corrupt(T, TRADE_TEXT_NAMES[i], reason));
        }
    }
    batch.push(crate::model::TradeTextFields {
        id: at(row, 0, "id")?,
        signal_id: at(row, 1, "signal_id")?,
        opened_at: at(row, 2, "opened_at")?,
        closed_at: at(row, 3, "closed_at")?,
        texts,
    });
    Ok(())
}

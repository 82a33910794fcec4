//! Followers, copy orders, the provider lookups the copier needs, and partial closes, written once for both
//! backends like `repo.rs`: each backend module declares this file with `#[path]`, and the `Store`
//! implementation in `repo.rs` delegates to it.
//!
//! Sums of money are added up in Rust, not in SQL: SQLite keeps decimals as text and its `SUM` would turn
//! them into floating point.

use super::repo::{DbRow, get, insert_trade, insert_trade_update, op, trade_from_row};
use super::{BEGIN_WRITE, Backend, Db, SELECT_TRADE_FOR_UPDATE};
use crate::StoreError;
use crate::codec::{self, Dec, ts};
use crate::follower::{
    BrokerKind, CopyOrder, CopyOrderId, CopyStatus, Follower, FollowerDayStats, FollowerId, NewCopy, NewFollower,
    PlacedCopy,
};
use crate::model::NewTradeUpdate;
use crate::vault::SealedCredentials;
use chrono::{DateTime, Utc};
use domain::trade::check_levels;
use domain::{Closing, Lots, NewTrade, SignalId, Symbol, Trade, TradeId, TradeStatus, TradeUpdateKind, UserId};
use rust_decimal::Decimal;
use sqlx::QueryBuilder;
use std::collections::{HashMap, HashSet};

/// Ids bound per statement when a caller passes a long list: far below SQLite's 32,766 and PostgreSQL's
/// 65,535 parameters even when a statement binds the list twice.
const IDS_PER_STATEMENT: usize = 5000;
/// Copy orders inserted per statement (six parameters each).
const COPIES_PER_STATEMENT: usize = 1000;

/// Inserts a `pending` copy order per copy, skipping a (follower, signal) that has one, inside the caller's
/// transaction. No conflict target: every unique key is an arbiter, so a racing copier's row (same follower
/// and signal) is skipped rather than raised, whichever index PostgreSQL meets first. A client order id taken
/// by another (follower, signal) is skipped too; callers that must know look the rows up afterwards.
pub(crate) async fn insert_pending_copies(
    tx: &mut sqlx::Transaction<'static, Db>,
    signal: SignalId,
    copies: &[&NewCopy<'_>],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let at = ts(at);
    for chunk in copies.chunks(COPIES_PER_STATEMENT) {
        let mut query = QueryBuilder::<Db>::new(
            "INSERT INTO copy_orders (follower_id, user_id, signal_id, client_order_id, status, created_at,
                 updated_at) ",
        );
        query.push_values(chunk, |mut row, copy| {
            row.push_bind(copy.follower_id.0)
                .push_bind(copy.user_id.0)
                .push_bind(signal.0)
                .push_bind(copy.client_order_id)
                .push("'pending'")
                .push_bind(at)
                .push_bind(at);
        });
        query.push(" ON CONFLICT DO NOTHING");
        query.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn follower_from_row(row: &DbRow) -> Result<Follower, StoreError> {
    const T: &str = "followers";
    let broker: String = get(row, T, "broker")?;
    let settings: String = get(row, T, "risk_settings")?;
    let sealed: Option<Vec<u8>> = get(row, T, "sealed_credentials")?;
    Ok(Follower {
        id: FollowerId(get(row, T, "id")?),
        user_id: UserId(get(row, T, "user_id")?),
        provider_channel: get(row, T, "provider_channel")?,
        broker: codec::to_enum(T, "broker", &broker, BrokerKind::parse)?,
        sealed_credentials: sealed.map(SealedCredentials::from_bytes),
        // Deserialising validates: settings that a newer rule forbids are reported, never used.
        risk_settings: serde_json::from_str(&settings).map_err(|e| StoreError::corrupt(T, "risk_settings", e))?,
        balance: get::<Dec>(row, T, "balance")?.0,
        currency: get(row, T, "currency")?,
        enabled: get(row, T, "enabled")?,
        created_at: get(row, T, "created_at")?,
        updated_at: get(row, T, "updated_at")?,
    })
}

fn copy_from_row(row: &DbRow) -> Result<CopyOrder, StoreError> {
    const T: &str = "copy_orders";
    let status: String = get(row, T, "status")?;
    Ok(CopyOrder {
        id: CopyOrderId(get(row, T, "id")?),
        follower_id: FollowerId(get(row, T, "follower_id")?),
        user_id: UserId(get(row, T, "user_id")?),
        signal_id: SignalId(get(row, T, "signal_id")?),
        client_order_id: get(row, T, "client_order_id")?,
        status: codec::to_enum(T, "status", &status, CopyStatus::parse)?,
        gate: get(row, T, "gate")?,
        reason: get(row, T, "reason")?,
        broker_order_id: get(row, T, "broker_order_id")?,
        trade_id: get::<Option<i64>>(row, T, "trade_id")?.map(TradeId),
        created_at: get(row, T, "created_at")?,
        updated_at: get(row, T, "updated_at")?,
    })
}

fn check_text(what: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.trim().is_empty() || value.len() > max {
        return Err(StoreError::invalid(format!("{what} must be 1 to {max} characters")));
    }
    Ok(())
}

/// Appends `(id, id, …)` to a statement.
fn push_ids(query: &mut QueryBuilder<Db>, ids: &[i64]) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    list.push_unseparated(")");
}

impl Backend {
    pub(crate) async fn follower_save(&self, new: &NewFollower<'_>) -> Result<Follower, StoreError> {
        const OP: &str = "saving a follower";
        check_text("a followed channel", new.provider_channel, 200)?;
        codec::check_currency(new.currency)?;
        if new.balance <= Decimal::ZERO {
            return Err(StoreError::invalid(format!("an account balance must be above zero, got {}", new.balance)));
        }
        let settings = serde_json::to_string(new.risk_settings)
            .map_err(|e| StoreError::invalid(format!("the risk settings cannot be stored: {e}")))?;
        // Keys a broker does not use are not kept: switching to paper trading drops them.
        let sealed = match new.broker.needs_credentials() {
            true => new.sealed_credentials.as_ref().map(|s| s.as_bytes().to_vec()),
            false => None,
        };
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // One statement decides whether stored keys survive (same broker, none given), so two saves racing
        // cannot leave one broker's keys on another broker's row.
        let row = sqlx::query(
            "INSERT INTO followers (user_id, provider_channel, broker, sealed_credentials, risk_settings, balance,
                 currency, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8)
             ON CONFLICT (user_id, provider_channel) DO UPDATE SET
                 broker = excluded.broker,
                 sealed_credentials = CASE
                     WHEN excluded.broker = 'paper' THEN NULL
                     WHEN excluded.sealed_credentials IS NOT NULL THEN excluded.sealed_credentials
                     WHEN followers.broker = excluded.broker THEN followers.sealed_credentials
                     ELSE NULL END,
                 risk_settings = excluded.risk_settings,
                 balance = excluded.balance,
                 currency = excluded.currency,
                 enabled = TRUE,
                 updated_at = excluded.updated_at
             RETURNING *",
        )
        .bind(new.user_id.0)
        .bind(new.provider_channel.trim())
        .bind(new.broker.as_str())
        .bind(sealed)
        .bind(settings)
        .bind(Dec(new.balance))
        .bind(new.currency)
        .bind(ts(new.at))
        .fetch_one(&mut *tx)
        .await
        .map_err(op(OP))?;
        let follower = follower_from_row(&row)?;
        if follower.broker.needs_credentials() && follower.sealed_credentials.is_none() {
            tx.rollback().await.map_err(op(OP))?;
            return Err(StoreError::invalid(format!("the {} broker needs an API key and secret", follower.broker)));
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(follower)
    }

    pub(crate) async fn follower_get(&self, id: FollowerId) -> Result<Option<Follower>, StoreError> {
        let row = sqlx::query("SELECT * FROM followers WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a follower"))?;
        row.as_ref().map(follower_from_row).transpose()
    }

    pub(crate) async fn followers_of_channel(&self, provider_channel: &str) -> Result<Vec<Follower>, StoreError> {
        let rows = sqlx::query("SELECT * FROM followers WHERE provider_channel = $1 AND enabled = TRUE ORDER BY id")
            .bind(provider_channel)
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing a channel's followers"))?;
        rows.iter().map(follower_from_row).collect()
    }

    pub(crate) async fn followers_of_user(&self, user: UserId) -> Result<Vec<Follower>, StoreError> {
        let rows = sqlx::query("SELECT * FROM followers WHERE user_id = $1 ORDER BY id")
            .bind(user.0)
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing a user's followers"))?;
        rows.iter().map(follower_from_row).collect()
    }

    pub(crate) async fn follower_set_enabled(
        &self,
        user: UserId,
        id: FollowerId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE followers SET enabled = $3 WHERE id = $1 AND user_id = $2")
            .bind(id.0)
            .bind(user.0)
            .bind(enabled)
            .execute(&self.writer)
            .await
            .map_err(op("enabling or disabling a follower"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn follower_stats(
        &self,
        followers: &[FollowerId],
        day_start: DateTime<Utc>,
    ) -> Result<HashMap<FollowerId, FollowerDayStats>, StoreError> {
        const OP: &str = "reading followers' day statistics";
        let mut stats: HashMap<FollowerId, FollowerDayStats> =
            followers.iter().map(|f| (*f, FollowerDayStats::default())).collect();
        let ids: Vec<i64> = stats.keys().map(|f| f.0).collect();
        let day_start = ts(day_start);
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            // One row per placed copy (with its trade), then one per partial close of those trades.
            let mut query = QueryBuilder::<Db>::new(
                "SELECT c.follower_id AS follower_id, CAST(0 AS BIGINT) AS part, c.created_at AS copied_at, t.status AS status,
                     t.closed_at AS closed_at, t.profit AS profit
                 FROM copy_orders c JOIN user_trades t ON t.id = c.trade_id
                 WHERE c.status = 'placed' AND c.follower_id IN ",
            );
            push_ids(&mut query, chunk);
            query.push(
                " UNION ALL
                 SELECT c.follower_id, CAST(1 AS BIGINT), c.created_at, t.status, t.closed_at, t.profit
                 FROM copy_orders c JOIN user_trades t ON t.partial_of = c.trade_id
                 WHERE c.status = 'placed' AND c.follower_id IN ",
            );
            push_ids(&mut query, chunk);
            let rows = query.build().fetch_all(&self.pool).await.map_err(op(OP))?;
            for row in &rows {
                const T: &str = "copy_orders";
                let follower = FollowerId(get(row, T, "follower_id")?);
                let part: i64 = get(row, T, "part")?;
                let copied_at: DateTime<Utc> = get(row, T, "copied_at")?;
                let status: String = get(row, T, "status")?;
                let status = codec::to_enum("user_trades", "status", &status, TradeStatus::parse)?;
                let closed_at: Option<DateTime<Utc>> = get(row, T, "closed_at")?;
                let profit = get::<Option<Dec>>(row, T, "profit")?.map(|d| d.0);
                let Some(entry) = stats.get_mut(&follower) else { continue };
                if part == 0 {
                    if status == TradeStatus::Open {
                        entry.open_positions += 1;
                    }
                    if copied_at >= day_start {
                        entry.signals_taken_today += 1;
                    }
                }
                if status == TradeStatus::Closed {
                    let profit = profit.unwrap_or_default();
                    entry.realised_pnl_total += profit;
                    if closed_at.is_some_and(|at| at >= day_start) {
                        entry.realised_pnl_today += profit;
                    }
                }
            }
        }
        Ok(stats)
    }

    pub(crate) async fn copy_begin(
        &self,
        signal: SignalId,
        copies: &[NewCopy<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<CopyOrder>, StoreError> {
        const OP: &str = "beginning copy orders";
        let mut seen = HashSet::new();
        let copies: Vec<&NewCopy<'_>> = copies.iter().filter(|c| seen.insert(c.follower_id)).collect();
        for copy in &copies {
            check_text("a client order id", copy.client_order_id, 128)?;
        }
        if copies.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        insert_pending_copies(&mut tx, signal, &copies, at).await.map_err(op(OP))?;
        let ids: Vec<i64> = copies.iter().map(|c| c.follower_id.0).collect();
        let mut rows = Vec::with_capacity(copies.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT c.*, f.user_id AS follower_user_id FROM copy_orders c JOIN followers f ON f.id = c.follower_id
                 WHERE c.signal_id = ",
            );
            query.push_bind(signal.0).push(" AND c.follower_id IN ");
            push_ids(&mut query, chunk);
            rows.extend(query.build().fetch_all(&mut *tx).await.map_err(op(OP))?);
        }
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let copy = copy_from_row(row)?;
            let owner = UserId(get(row, "followers", "follower_user_id")?);
            if copy.user_id != owner {
                tx.rollback().await.map_err(op(OP))?;
                return Err(StoreError::invalid(format!(
                    "follower {} belongs to user {owner}, not user {}",
                    copy.follower_id, copy.user_id
                )));
            }
            found.insert(copy.follower_id, copy);
        }
        if let Some(missing) = copies.iter().find(|c| !found.contains_key(&c.follower_id)) {
            tx.rollback().await.map_err(op(OP))?;
            return Err(StoreError::Conflict {
                op: OP,
                detail: format!(
                    "follower {} got no copy order: its client order id is already used by another copy",
                    missing.follower_id
                ),
            });
        }
        tx.commit().await.map_err(op(OP))?;
        let mut pending: Vec<CopyOrder> = found.into_values().filter(|c| c.status == CopyStatus::Pending).collect();
        pending.sort_by_key(|c| c.id);
        Ok(pending)
    }

    /// After an update of a copy `WHERE status = 'pending'` touched nothing: `NotFound` when there is no such
    /// copy, else it was finished already.
    pub(crate) async fn copy_finish_placed(
        &self,
        id: CopyOrderId,
        broker_order_id: &str,
        trade: &NewTrade,
        at: DateTime<Utc>,
    ) -> Result<Option<Trade>, StoreError> {
        let copy = PlacedCopy { id, broker_order_id: broker_order_id.to_string(), trade: trade.clone(), at };
        let mut answers = self.copies_finish_placed(std::slice::from_ref(&copy)).await?;
        answers.pop().unwrap_or_else(|| Err(StoreError::invalid("no answer for a placed copy")))
    }

    pub(crate) async fn copies_finish_placed(
        &self,
        copies: &[PlacedCopy],
    ) -> Result<Vec<Result<Option<Trade>, StoreError>>, StoreError> {
        const OP: &str = "recording a placed copy order";
        // Checked before the transaction, so one bad copy is its own answer and the others still commit.
        let mut answers: Vec<Option<Result<Option<Trade>, StoreError>>> = copies
            .iter()
            .map(|copy| {
                check_text("a broker order id", &copy.broker_order_id, 200)
                    .and_then(|()| {
                        check_levels(copy.trade.side, copy.trade.entry, copy.trade.stop_loss, copy.trade.take_profit)
                            .map_err(StoreError::from)
                    })
                    .err()
                    .map(Err)
            })
            .collect();
        let mut unmatched = Vec::new();
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        for (i, copy) in copies.iter().enumerate() {
            if answers[i].is_some() {
                continue;
            }
            // Matching on the owner and the signal as well as `pending` means a copy that is not this trade's
            // is left untouched; why it did not match is worked out after the commit. Touching the row takes
            // its lock (PostgreSQL) inside the write transaction: a second finisher waits, then matches nothing.
            let row = sqlx::query(
                "UPDATE copy_orders SET updated_at = $2
                 WHERE id = $1 AND status = 'pending' AND user_id = $3 AND signal_id = COALESCE($4, signal_id)
                 RETURNING *",
            )
            .bind(copy.id.0)
            .bind(ts(copy.at))
            .bind(copy.trade.user_id.0)
            .bind(copy.trade.signal_id.map(|s| s.0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(op(OP))?;
            let Some(row) = row else {
                unmatched.push(i);
                continue;
            };
            let pending = copy_from_row(&row)?;
            let new = NewTrade { signal_id: Some(pending.signal_id), ..copy.trade.clone() };
            let opened = insert_trade(&mut tx, &new).await?.ok_or_else(|| StoreError::Conflict {
                op: OP,
                detail: "a copied trade has no notification, so nothing should conflict".into(),
            })?;
            sqlx::query(
                "UPDATE copy_orders SET status = 'placed', broker_order_id = $2, trade_id = $3, updated_at = $4
                 WHERE id = $1",
            )
            .bind(copy.id.0)
            .bind(&copy.broker_order_id)
            .bind(opened.id.0)
            .bind(ts(copy.at))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
            answers[i] = Some(Ok(Some(opened)));
        }
        tx.commit().await.map_err(op(OP))?;
        for i in unmatched {
            answers[i] = Some(self.why_unmatched(&copies[i]).await);
        }
        Ok(answers.into_iter().map(|a| a.unwrap_or(Ok(None))).collect())
    }

    /// Why a placed copy matched no pending row: another run finished it (`None`), it is not this trade's
    /// copy, or there is no such copy.
    async fn why_unmatched(&self, copy: &PlacedCopy) -> Result<Option<Trade>, StoreError> {
        let row = sqlx::query("SELECT * FROM copy_orders WHERE id = $1")
            .bind(copy.id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a copy order"))?;
        let Some(row) = row else {
            return Err(StoreError::NotFound { what: "copy order", id: copy.id.0 });
        };
        let existing = copy_from_row(&row)?;
        if copy.trade.user_id != existing.user_id {
            return Err(StoreError::invalid(format!(
                "copy order {} belongs to user {}, the trade to user {}",
                copy.id, existing.user_id, copy.trade.user_id
            )));
        }
        if copy.trade.signal_id.is_some_and(|s| s != existing.signal_id) {
            return Err(StoreError::invalid(format!("copy order {} copies signal {}", copy.id, existing.signal_id)));
        }
        Ok(None)
    }

    pub(crate) async fn copy_finish_unplaced(
        &self,
        id: CopyOrderId,
        status: CopyStatus,
        gate: Option<&str>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if !matches!(status, CopyStatus::Refused | CopyStatus::Rejected | CopyStatus::Failed) {
            return Err(StoreError::invalid(format!(
                "a copy order that was not placed is refused, rejected or failed, not {status}"
            )));
        }
        check_text("the reason a copy was not placed", reason, 2000)?;
        let done = sqlx::query(
            "UPDATE copy_orders SET status = $2, gate = $3, reason = $4, updated_at = $5
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.0)
        .bind(status.as_str())
        .bind(gate)
        .bind(reason)
        .bind(ts(at))
        .execute(&self.writer)
        .await
        .map_err(op("recording an unplaced copy order"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn copies_of_signal(&self, signal: SignalId) -> Result<Vec<CopyOrder>, StoreError> {
        let rows = sqlx::query("SELECT * FROM copy_orders WHERE signal_id = $1 ORDER BY id")
            .bind(signal.0)
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing a signal's copy orders"))?;
        rows.iter().map(copy_from_row).collect()
    }

    pub(crate) async fn copies_of_user(&self, user: UserId, limit: u32) -> Result<Vec<CopyOrder>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM copy_orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                .bind(user.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(op("listing a user's copy orders"))?;
        rows.iter().map(copy_from_row).collect()
    }

    pub(crate) async fn copies_pending(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<CopyOrder>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM copy_orders WHERE status = 'pending' AND created_at < $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(ts(created_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(op("listing pending copy orders"))?;
        rows.iter().map(copy_from_row).collect()
    }

    pub(crate) async fn provider_update_signal(
        &self,
        channel_id: &str,
        reply_to: Option<&str>,
        symbol: Option<&Symbol>,
    ) -> Result<Option<SignalId>, StoreError> {
        const OP: &str = "finding the signal an update refers to";
        if let Some(reply_to) = reply_to {
            // A reply names its signal outright, even if the provider deleted the message since: followers
            // still hold the positions it opened.
            let replied: Option<Option<i64>> =
                sqlx::query_scalar("SELECT signal_id FROM provider_messages WHERE channel_id = $1 AND message_id = $2")
                    .bind(channel_id)
                    .bind(reply_to)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(op(OP))?;
            if let Some(id) = replied.flatten() {
                return Ok(Some(SignalId(id)));
            }
        }
        let mut query = QueryBuilder::<Db>::new("SELECT m.signal_id FROM provider_messages m");
        if symbol.is_some() {
            query.push(" JOIN signals s ON s.id = m.signal_id");
        }
        query.push(" WHERE m.channel_id = ").push_bind(channel_id.to_string());
        query.push(" AND m.signal_id IS NOT NULL AND m.deleted_at IS NULL");
        if let Some(symbol) = symbol {
            query.push(" AND s.symbol = ").push_bind(symbol.as_str().to_string());
        }
        query.push(" ORDER BY m.received_at DESC, m.id DESC LIMIT 1");
        let found: Option<Option<i64>> = query.build_query_scalar().fetch_optional(&self.pool).await.map_err(op(OP))?;
        Ok(found.flatten().map(SignalId))
    }

    pub(crate) async fn provider_set_outcome(
        &self,
        channel_id: &str,
        message_id: &str,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE provider_messages SET outcome = $3 WHERE channel_id = $1 AND message_id = $2")
            .bind(channel_id)
            .bind(message_id)
            .bind(outcome)
            .execute(&self.writer)
            .await
            .map_err(op("recording a provider message's outcome"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn trade_close_part(
        &self,
        id: TradeId,
        lots: Lots,
        closing: &Closing,
    ) -> Result<Option<(Trade, Trade)>, StoreError> {
        const OP: &str = "partially closing a trade";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let row = sqlx::query(SELECT_TRADE_FOR_UPDATE)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(op(OP))?
            .ok_or(StoreError::NotFound { what: "trade", id: id.0 })?;
        let before = trade_from_row(&row)?;
        if before.status != TradeStatus::Open || lots.value() >= before.lots.value() {
            return Ok(None);
        }
        // Both sizes are on the 0.01 grid and the part is smaller, so the rest is a valid size too.
        let remaining = codec::to_lots("user_trades", "lots", before.lots.value() - lots.value())?;
        let row = sqlx::query("UPDATE user_trades SET lots = $2 WHERE id = $1 AND status = 'open' RETURNING *")
            .bind(id.0)
            .bind(Dec::from(remaining))
            .fetch_one(&mut *tx)
            .await
            .map_err(op(OP))?;
        let after = trade_from_row(&row)?;
        let row = sqlx::query(
            "INSERT INTO user_trades (user_id, symbol, side, entry, lots, stop_loss, take_profit, status, opened_at,
                 closed_at, exit_price, close_reason, result, pips, profit, notes, signal_id, partial_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'closed', $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             RETURNING *",
        )
        .bind(before.user_id.0)
        .bind(before.symbol.as_str())
        .bind(before.side.as_str())
        .bind(Dec::from(before.entry))
        .bind(Dec::from(lots))
        .bind(before.stop_loss.map(Dec::from))
        .bind(before.take_profit.map(Dec::from))
        .bind(ts(before.opened_at))
        .bind(ts(closing.at))
        .bind(Dec::from(closing.exit_price))
        .bind(closing.reason.as_str())
        .bind(closing.result.as_str())
        .bind(closing.pips.map(Dec))
        .bind(closing.profit.map(Dec))
        .bind(format!("partial close of #{}", id.0))
        .bind(before.signal_id.map(|s| s.0))
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(op(OP))?;
        let part = trade_from_row(&row)?;
        insert_trade_update(
            &mut *tx,
            &NewTradeUpdate {
                trade_id: id,
                kind: TradeUpdateKind::PartialClose,
                price: Some(closing.exit_price),
                stop_loss: after.stop_loss,
                take_profit: after.take_profit,
                note: Some(format!("{} lots closed as #{}, {} lots left", lots.value(), part.id.0, remaining.value())),
                at: closing.at,
            },
        )
        .await?;
        tx.commit().await.map_err(op(OP))?;
        Ok(Some((after, part)))
    }
}

//! Provider channels, their messages, edits and deletions, written once for both backends like `repo.rs`:
//! each backend module declares this file with `#[path]`, and the `Store` implementation in `repo.rs`
//! delegates to it.

use super::repo::{DbRow, get, op, write_signal};
use super::{BEGIN_WRITE, Backend};
use crate::StoreError;
use crate::codec::ts;
use crate::follower::{FollowerId, NewCopy};
use crate::provider::{
    NewProviderMessage, ProviderChannel, ProviderIntake, ProviderMessage, ProviderMessageKind, ProviderRevision,
};
use chrono::{DateTime, Utc};
use domain::{SignalId, UserId};

fn channel_from_row(row: &DbRow) -> Result<ProviderChannel, StoreError> {
    const T: &str = "provider_channels";
    Ok(ProviderChannel {
        channel_id: get(row, T, "channel_id")?,
        name: get(row, T, "name")?,
        added_by: get(row, T, "added_by")?,
        enabled: get(row, T, "enabled")?,
        created_at: get(row, T, "created_at")?,
    })
}

fn message_from_row(row: &DbRow) -> Result<ProviderMessage, StoreError> {
    const T: &str = "provider_messages";
    let kind: String = get(row, T, "kind")?;
    Ok(ProviderMessage {
        channel_id: get(row, T, "channel_id")?,
        message_id: get(row, T, "message_id")?,
        author: get(row, T, "author")?,
        content: get(row, T, "content")?,
        hash: get(row, T, "hash")?,
        received_at: get(row, T, "received_at")?,
        kind: ProviderMessageKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt(T, "kind", format!("unknown message kind {kind:?}")))?,
        outcome: get(row, T, "outcome")?,
        signal_id: get::<Option<i64>>(row, T, "signal_id")?.map(SignalId),
        edited_at: get(row, T, "edited_at")?,
        deleted_at: get(row, T, "deleted_at")?,
        reply_to: get(row, T, "reply_to")?,
        revisions: Vec::new(),
    })
}

fn check_id(what: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() || value.len() > 200 {
        return Err(StoreError::invalid(format!("a provider {what} must be 1 to 200 characters")));
    }
    Ok(())
}

impl Backend {
    pub(crate) async fn provider_add_channel(
        &self,
        channel_id: &str,
        name: &str,
        added_by: &str,
        at: DateTime<Utc>,
    ) -> Result<ProviderChannel, StoreError> {
        check_id("channel id", channel_id)?;
        check_id("name", name)?;
        let row = sqlx::query(
            "INSERT INTO provider_channels (channel_id, name, added_by, enabled, created_at)
             VALUES ($1, $2, $3, TRUE, $4) RETURNING *",
        )
        .bind(channel_id.trim())
        .bind(name.trim())
        .bind(added_by)
        .bind(ts(at))
        .fetch_one(&self.writer)
        .await
        .map_err(op("registering a provider channel"))?;
        channel_from_row(&row)
    }

    pub(crate) async fn provider_channels(&self) -> Result<Vec<ProviderChannel>, StoreError> {
        let rows = sqlx::query("SELECT * FROM provider_channels ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(op("listing provider channels"))?;
        rows.iter().map(channel_from_row).collect()
    }

    pub(crate) async fn provider_channel(&self, channel_id: &str) -> Result<Option<ProviderChannel>, StoreError> {
        let row = sqlx::query("SELECT * FROM provider_channels WHERE channel_id = $1")
            .bind(channel_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a provider channel"))?;
        row.as_ref().map(channel_from_row).transpose()
    }

    pub(crate) async fn provider_record_message(
        &self,
        new: &NewProviderMessage<'_>,
    ) -> Result<ProviderIntake, StoreError> {
        const OP: &str = "recording a provider message";
        check_id("channel id", new.channel_id)?;
        check_id("message id", new.message_id)?;
        if let Some(signal) = new.signal {
            signal.validate()?;
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // The UNIQUE (channel, message) key is the replay guard: a second delivery inserts nothing, and the
        // signal below is only written by the transaction whose message insert took.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO provider_messages (channel_id, message_id, author, content, hash, received_at, kind, outcome,
                 reply_to)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (channel_id, message_id) DO NOTHING RETURNING id",
        )
        .bind(new.channel_id)
        .bind(new.message_id)
        .bind(new.author)
        .bind(new.content)
        .bind(new.hash)
        .bind(ts(new.received_at))
        .bind(new.kind.as_str())
        .bind(&new.outcome)
        .bind(new.reply_to)
        .fetch_optional(&mut *tx)
        .await
        .map_err(op(OP))?;
        let Some(row_id) = inserted else {
            let earlier: Option<Option<i64>> =
                sqlx::query_scalar("SELECT signal_id FROM provider_messages WHERE channel_id = $1 AND message_id = $2")
                    .bind(new.channel_id)
                    .bind(new.message_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(op(OP))?;
            tx.rollback().await.map_err(op(OP))?;
            return Ok(ProviderIntake::Duplicate { signal: earlier.flatten().map(SignalId) });
        };
        let Some(signal) = new.signal else {
            tx.commit().await.map_err(op(OP))?;
            return Ok(ProviderIntake::Stored { signal: None });
        };
        let key = format!("{}:{}", signal.source.to_text(), new.message_id);
        // The message insert that just took proves this (channel, message) is new, so its key is unused.
        let signal_id = write_signal(&mut *tx, signal, Some(&key)).await?.ok_or_else(|| StoreError::Conflict {
            op: "storing a provider signal",
            detail: "a signal already has this message's dedup key".into(),
        })?;
        sqlx::query("UPDATE provider_messages SET signal_id = $2, outcome = $3 WHERE id = $1")
            .bind(row_id)
            .bind(signal_id.0)
            .bind(format!("signal {}", signal_id.0))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        if let Some(begin) = new.begin_copies {
            let followers: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT id, user_id FROM followers WHERE provider_channel = $1 AND enabled = TRUE ORDER BY id",
            )
            .bind(new.channel_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(op(OP))?;
            let ids: Vec<String> =
                followers.iter().map(|&(_, user)| (begin.client_order_id)(signal_id, UserId(user))).collect();
            let copies: Vec<NewCopy<'_>> = followers
                .iter()
                .zip(&ids)
                .map(|(&(follower, user), id)| NewCopy {
                    follower_id: FollowerId(follower),
                    user_id: UserId(user),
                    client_order_id: id,
                })
                .collect();
            let copies: Vec<&NewCopy<'_>> = copies.iter().collect();
            super::follower_repo::insert_pending_copies(&mut tx, signal_id, &copies, begin.at).await.map_err(op(OP))?;
        }
        tx.commit().await.map_err(op(OP))?;
        Ok(ProviderIntake::Stored { signal: Some(signal_id) })
    }

    pub(crate) async fn provider_record_edit(
        &self,
        channel_id: &str,
        message_id: &str,
        content: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "recording a provider message edit";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        let row = sqlx::query("SELECT id, hash FROM provider_messages WHERE channel_id = $1 AND message_id = $2")
            .bind(channel_id)
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(op(OP))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(op(OP))?;
            return Ok(false);
        };
        let id: i64 = get(&row, "provider_messages", "id")?;
        let first_hash: String = get(&row, "provider_messages", "hash")?;
        let latest: Option<String> =
            sqlx::query_scalar("SELECT hash FROM provider_message_revisions WHERE message_id = $1 ORDER BY id DESC")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(op(OP))?;
        // Discord also sends MESSAGE_UPDATE for embeds being unfurled: the text is the same, nothing to record.
        if latest.as_deref().unwrap_or(&first_hash) == hash {
            tx.rollback().await.map_err(op(OP))?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO provider_message_revisions (message_id, content, hash, at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(content)
            .bind(hash)
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        sqlx::query("UPDATE provider_messages SET edited_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        tx.commit().await.map_err(op(OP))?;
        Ok(true)
    }

    pub(crate) async fn provider_record_delete(
        &self,
        channel_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // The first deletion time is kept: a replayed MESSAGE_DELETE changes nothing.
        let done = sqlx::query(
            "UPDATE provider_messages SET deleted_at = $3
             WHERE channel_id = $1 AND message_id = $2 AND deleted_at IS NULL",
        )
        .bind(channel_id)
        .bind(message_id)
        .bind(ts(at))
        .execute(&self.writer)
        .await
        .map_err(op("recording a provider message deletion"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn provider_messages(
        &self,
        channel_id: &str,
        limit: u32,
    ) -> Result<Vec<ProviderMessage>, StoreError> {
        const OP: &str = "listing provider messages";
        let rows = sqlx::query("SELECT * FROM provider_messages WHERE channel_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(channel_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(op(OP))?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = get(row, "provider_messages", "id")?;
            let mut message = message_from_row(row)?;
            let revisions = sqlx::query(
                "SELECT content, hash, at FROM provider_message_revisions WHERE message_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(op(OP))?;
            const R: &str = "provider_message_revisions";
            message.revisions = revisions
                .iter()
                .map(|r| {
                    Ok(ProviderRevision {
                        content: get(r, R, "content")?,
                        hash: get(r, R, "hash")?,
                        at: get(r, R, "at")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            messages.push(message);
        }
        Ok(messages)
    }
}

//! Password changes from the dashboard and the store-backed sign-in lockout, written once for both backends
//! like `web_repo.rs`: each backend module declares this file with `#[path]`, and the `Store` implementation
//! in `repo.rs` delegates to it.

use super::repo::op;
use super::{BEGIN_WRITE, Backend};
use crate::StoreError;
use crate::codec::ts;
use chrono::{DateTime, Utc};
use domain::UserId;

impl Backend {
    pub(crate) async fn credentials_change_password(
        &self,
        user: UserId,
        current_hash: &str,
        new_hash: &str,
        keep_session: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        const OP: &str = "changing a password";
        if new_hash.trim().is_empty() {
            return Err(StoreError::invalid("a password hash must not be empty"));
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // Comparing with the hash the caller verified makes the change conditional: of two changes racing
        // from the same old password, one finds its hash gone and changes nothing.
        let changed = sqlx::query(
            "UPDATE local_credentials SET password_hash = $3, updated_at = $4 WHERE user_id = $1 AND password_hash = $2",
        )
        .bind(user.0)
        .bind(current_hash)
        .bind(new_hash)
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(op(OP))?;
        if changed.rows_affected() == 0 {
            tx.rollback().await.map_err(op(OP))?;
            return Ok(None);
        }
        let ended = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user.0)
            .bind(keep_session)
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        tx.commit().await.map_err(op(OP))?;
        Ok(Some(ended.rows_affected()))
    }

    pub(crate) async fn credentials_record_failure(
        &self,
        username_key: &str,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "recording a failed sign-in";
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        sqlx::query("DELETE FROM sign_in_failures WHERE failed_at < $1")
            .bind(ts(forget_before))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        sqlx::query("INSERT INTO sign_in_failures (username_key, failed_at) VALUES ($1, $2)")
            .bind(username_key)
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        tx.commit().await.map_err(op(OP))?;
        Ok(())
    }

    pub(crate) async fn credentials_failures_since(
        &self,
        username_key: &str,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_failures WHERE username_key = $1 AND failed_at > $2")
                .bind(username_key)
                .bind(ts(since))
                .fetch_one(&self.pool)
                .await
                .map_err(op("counting failed sign-ins"))?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    pub(crate) async fn credentials_clear_failures(&self, username_key: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sign_in_failures WHERE username_key = $1")
            .bind(username_key)
            .execute(&self.writer)
            .await
            .map_err(op("forgetting failed sign-ins"))?;
        Ok(done.rows_affected())
    }
}

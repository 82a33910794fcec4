//! The dashboard's sign-in tables (local credentials, sessions, one-time sign-in tokens), written once for
//! both backends like `repo.rs`: each backend module declares this file with `#[path]`, and the `Store`
//! implementation in `repo.rs` delegates its sign-in methods here.

use super::repo::{DbRow, get, op};
use super::{BEGIN_WRITE, Backend};
use crate::StoreError;
use crate::codec::{to_enum, to_lots, ts};
use crate::model::{LocalCredentials, NewWebSession, OAuthPending, Role, SessionContext, User, WebSession};
use chrono::{DateTime, Utc};
use domain::UserId;

fn credentials_from_row(row: &DbRow) -> Result<LocalCredentials, StoreError> {
    const T: &str = "local_credentials";
    Ok(LocalCredentials {
        user_id: UserId(get(row, T, "user_id")?),
        username: get(row, T, "username")?,
        password_hash: get(row, T, "password_hash")?,
    })
}

fn session_from_row(row: &DbRow) -> Result<WebSession, StoreError> {
    const T: &str = "web_sessions";
    let state: Option<String> = get(row, T, "oauth_state")?;
    let verifier: Option<String> = get(row, T, "oauth_verifier")?;
    let oauth = match (state, verifier) {
        (Some(state), Some(pkce_verifier)) => Some(OAuthPending { state, pkce_verifier }),
        (None, None) => None,
        _ => return Err(StoreError::corrupt(T, "oauth_state", "state and verifier must be set together")),
    };
    let user_id: Option<i64> = get(row, T, "user_id")?;
    Ok(WebSession {
        id_hash: get(row, T, "id_hash")?,
        user_id: user_id.map(UserId),
        csrf_token: get(row, T, "csrf_token")?,
        oauth,
        next_path: get(row, T, "next_path")?,
        created_at: get(row, T, "created_at")?,
        expires_at: get(row, T, "expires_at")?,
        last_seen: get(row, T, "last_seen")?,
    })
}

fn non_empty(value: &str, what: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

impl Backend {
    pub(crate) async fn web_set_local_credentials(
        &self,
        user: UserId,
        username: &str,
        password_hash: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "storing local credentials";
        non_empty(username, "a username")?;
        if password_hash.is_some_and(|h| h.trim().is_empty()) {
            return Err(StoreError::invalid("a password hash must not be empty"));
        }
        sqlx::query(
            "INSERT INTO local_credentials (user_id, username, password_hash, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE
             SET username = excluded.username, password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(user.0)
        .bind(username)
        .bind(password_hash)
        .bind(ts(now))
        .execute(&self.writer)
        .await
        .map_err(op(OP))?;
        Ok(())
    }

    pub(crate) async fn web_credentials_where(
        &self,
        sql: &'static str,
        bind: WhereValue<'_>,
    ) -> Result<Option<LocalCredentials>, StoreError> {
        let query = sqlx::query(sql);
        let query = match bind {
            WhereValue::User(user) => query.bind(user.0),
            WhereValue::Text(text) => query.bind(text),
        };
        let row = query.fetch_optional(&self.pool).await.map_err(op("reading local credentials"))?;
        row.as_ref().map(credentials_from_row).transpose()
    }

    pub(crate) async fn web_create_session(&self, new: &NewWebSession) -> Result<(), StoreError> {
        const OP: &str = "creating a web session";
        non_empty(&new.id_hash, "a session id")?;
        non_empty(&new.csrf_token, "a CSRF token")?;
        sqlx::query(
            "INSERT INTO web_sessions
                (id_hash, user_id, csrf_token, oauth_state, oauth_verifier, next_path, created_at, expires_at, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)",
        )
        .bind(&new.id_hash)
        .bind(new.user_id.map(|u| u.0))
        .bind(&new.csrf_token)
        .bind(new.oauth.as_ref().map(|o| o.state.as_str()))
        .bind(new.oauth.as_ref().map(|o| o.pkce_verifier.as_str()))
        .bind(new.next_path.as_deref())
        .bind(ts(new.created_at))
        .bind(ts(new.expires_at))
        .execute(&self.writer)
        .await
        .map_err(op(OP))?;
        Ok(())
    }

    pub(crate) async fn web_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WebSession>, StoreError> {
        let row = sqlx::query("SELECT * FROM web_sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(op("reading a web session"))?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// The session, its user and the user's trades version in one round trip; see
    /// [`Store::web_session_context`](crate::Store::web_session_context).
    pub(crate) async fn web_session_with_user(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionContext>, StoreError> {
        const U: &str = "users";
        let row = sqlx::query(
            "SELECT s.*, u.id AS u_id, u.discord_user_id AS u_discord_user_id, u.display_name AS u_display_name,
                    u.role AS u_role, u.account_currency AS u_account_currency,
                    CAST(u.default_lots AS TEXT) AS u_default_lots, u.created_at AS u_created_at,
                    v.version AS trades_version
             FROM web_sessions s
             LEFT JOIN users u ON u.id = s.user_id
             LEFT JOIN user_trade_versions v ON v.user_id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(op("reading a web session and its user"))?;
        let Some(row) = row else { return Ok(None) };
        let session = session_from_row(&row)?;
        let user = match get::<Option<i64>>(&row, U, "u_id")? {
            None => None,
            Some(id) => {
                let role: String = get(&row, U, "u_role")?;
                let lots: String = get(&row, U, "u_default_lots")?;
                let lots = lots.trim().parse().map_err(|e| StoreError::corrupt(U, "default_lots", e))?;
                Some(User {
                    id: UserId(id),
                    discord_user_id: get(&row, U, "u_discord_user_id")?,
                    display_name: get(&row, U, "u_display_name")?,
                    role: to_enum(U, "role", &role, Role::parse)?,
                    account_currency: get(&row, U, "u_account_currency")?,
                    default_lots: to_lots(U, "default_lots", lots)?,
                    created_at: get(&row, U, "u_created_at")?,
                })
            }
        };
        let trades_version = get::<Option<i64>>(&row, "user_trade_versions", "trades_version")?.unwrap_or(0);
        Ok(Some(SessionContext { session, user, trades_version }))
    }

    pub(crate) async fn web_touch_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // An expired session stays expired: touching must not revive it.
        sqlx::query("UPDATE web_sessions SET last_seen = $2, expires_at = $3 WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(ts(now))
            .bind(ts(expires_at))
            .execute(&self.writer)
            .await
            .map_err(op("extending a web session"))?;
        Ok(())
    }

    pub(crate) async fn web_take_session(&self, id_hash: &str) -> Result<Option<WebSession>, StoreError> {
        // Deleting and returning in one statement makes a pre-session single-use even under a race.
        let row = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1 RETURNING *")
            .bind(id_hash)
            .fetch_optional(&self.writer)
            .await
            .map_err(op("ending a web session"))?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub(crate) async fn web_delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(ts(now))
            .execute(&self.writer)
            .await
            .map_err(op("deleting expired web sessions"))?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn web_delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(op("ending a user's web sessions"))?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn web_create_sign_in_token(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "creating a sign-in token";
        non_empty(token_hash, "a sign-in token hash")?;
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(op(OP))?;
        // A fresh link retires the older ones, so a link printed and forgotten dies with the next.
        sqlx::query("DELETE FROM sign_in_tokens WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        sqlx::query("INSERT INTO sign_in_tokens (token_hash, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user.0)
            .bind(ts(expires_at))
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(op(OP))?;
        tx.commit().await.map_err(op(OP))?;
        Ok(())
    }

    pub(crate) async fn web_redeem_sign_in_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        // The conditional update is the claim: of two concurrent redeemers, one matches the row.
        let user: Option<i64> = sqlx::query_scalar(
            "UPDATE sign_in_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(ts(now))
        .fetch_optional(&self.writer)
        .await
        .map_err(op("redeeming a sign-in token"))?;
        Ok(user.map(UserId))
    }
}

/// The one value a credentials lookup filters on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WhereValue<'a> {
    User(UserId),
    Text(&'a str),
}

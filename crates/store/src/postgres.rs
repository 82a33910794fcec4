//! The PostgreSQL backend, for several Signalpost processes sharing one database.

use crate::{StoreError, redact_url};
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

// Deliberately compiled once per backend; see the docs of `repo.rs`.
#[allow(clippy::duplicate_mod)]
#[path = "repo.rs"]
mod repo;

// The dashboard's sign-in tables, compiled per backend like `repo.rs`.
#[allow(clippy::duplicate_mod)]
#[path = "web_repo.rs"]
mod web_repo;

// Password changes and the sign-in lockout, compiled per backend like `repo.rs`.
#[allow(clippy::duplicate_mod)]
#[path = "credentials_repo.rs"]
mod credentials_repo;

// Provider channels and their messages, compiled per backend like `repo.rs`.
#[allow(clippy::duplicate_mod)]
#[path = "provider_repo.rs"]
mod provider_repo;

// Followers, copy orders and partial closes, compiled per backend like `repo.rs`.
#[allow(clippy::duplicate_mod)]
#[path = "follower_repo.rs"]
mod follower_repo;

type Db = sqlx::Postgres;
type Backend = PgStore;

const NAME: &str = "postgres";
// `sqlx::migrate!` is compiled only with sqlx's `macros` feature, which the workspace leaves off so nobody
// reaches for the compile-time checked `query!`; the proc macro behind it is available all the same.
static MIGRATOR: Migrator = sqlx::sqlx_macros::migrate!("./migrations/postgres");

/// Row locks taken inside the transaction do the serialising; the default isolation is enough.
const BEGIN_WRITE: &str = "BEGIN";

/// Serialises the router's check-then-insert per user across processes: a second router routing to the
/// same user waits here until the first commits, then counts its notification. `NO KEY` so inserts that only
/// reference the user (its trades) are not held up.
const LOCK_USER: &str = "SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE";

/// The candidates of a bulk routing call, `$1`: a JSON array of `[user_id, window_start, max_in_window,
/// cooldown_start]`.
const ROUTING_CANDIDATES: &str = "WITH c AS (
    SELECT (value ->> 0)::bigint AS user_id,
           (value ->> 1)::timestamptz AS window_start,
           (value ->> 2)::bigint AS max_in_window,
           (value ->> 3)::timestamptz AS cooldown_start
    FROM jsonb_array_elements($1::text::jsonb) AS e(value))";

/// [`LOCK_USER`] for every candidate of a bulk routing call, in id order so two routers (bulk or per user)
/// cannot deadlock. A separate statement, so the insert that follows, under READ COMMITTED, sees what the
/// router that held the locks before committed.
const LOCK_USERS: Option<&str> =
    Some("SELECT u.id FROM users u WHERE u.id IN (SELECT user_id FROM c) ORDER BY u.id FOR NO KEY UPDATE OF u");

/// Locks the trade so a concurrent close or level change waits for this one.
const SELECT_TRADE_FOR_UPDATE: &str = "SELECT * FROM user_trades WHERE id = $1 FOR NO KEY UPDATE";

/// Locks the audience being materialised, so two materialisers take turns rather than write one slice twice.
const SELECT_AUDIENCE_FOR_UPDATE: &str = "SELECT symbol, created_at, recipients, recipient_count, materialised
    FROM signal_audiences WHERE signal_id = $1 FOR UPDATE";

/// The notifications of a slice of an audience: `$4` is a JSON array of user ids.
const MATERIALISE_INSERT: &str = "INSERT INTO signal_notifications (signal_id, user_id, symbol, created_at)
    SELECT $1, e.value::bigint, $2, $3 FROM jsonb_array_elements_text($4::text::jsonb) AS e(value)
    WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = e.value::bigint)
    ON CONFLICT (signal_id, user_id) DO NOTHING";

/// How long to wait for a pooled connection before reporting the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL implementation of [`Store`](crate::Store).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// What write statements run on; the same pool as `pool` (see `from_pool`). The shared per-backend code
    /// in `repo.rs` writes through `writer` and reads through `pool`, which matters for SQLite.
    writer: PgPool,
}

impl PgStore {
    /// Opens `postgres://…` or `postgresql://…`; fails at once, with the server's reason, when it cannot be
    /// reached or refuses the credentials.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let connect_error = |source| StoreError::Connect { url_redacted: redact_url(url), source };
        let options = PgConnectOptions::from_str(url).map_err(connect_error)?;
        // One direct attempt first: a pool that cannot connect retries until its timeout and then reports
        // only "pool timed out", hiding the refused connection or failed password behind it.
        let probe = PgConnection::connect_with(&options).await.map_err(connect_error)?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(PgStore::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> PgStore {
        // PostgreSQL queues writers itself (row locks, no database-wide write lock): writes share the pool.
        PgStore { writer: pool.clone(), pool }
    }

    /// The underlying pool, for tests and one-off maintenance.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

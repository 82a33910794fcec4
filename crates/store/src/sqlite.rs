//! The SQLite backend: one file, WAL mode so readers never wait for the writer, and a busy timeout so
//! writers from several connections (or a CLI next to the server) queue instead of failing.

use crate::{StoreError, redact_url};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
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

type Db = sqlx::Sqlite;
type Backend = SqliteStore;

const NAME: &str = "sqlite";
// `sqlx::migrate!` is compiled only with sqlx's `macros` feature, which the workspace leaves off so nobody
// reaches for the compile-time checked `query!`; the proc macro behind it is available all the same.
static MIGRATOR: Migrator = sqlx::sqlx_macros::migrate!("./migrations/sqlite");

/// Takes the write lock when the transaction starts. A deferred transaction that reads and then writes
/// fails at once with SQLITE_BUSY, without waiting, when another connection committed in between.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The router's per-user serialisation. `BEGIN IMMEDIATE` already serialises every writer, so reading the
/// row (to learn whether the user exists) is all that is needed.
const LOCK_USER: &str = "SELECT id FROM users WHERE id = $1";

/// See [`LOCK_USER`]: the immediate transaction is the lock.
const SELECT_TRADE_FOR_UPDATE: &str = "SELECT * FROM user_trades WHERE id = $1";

/// The candidates of a bulk routing call, `$1`: a JSON array of `[user_id, window_start, max_in_window,
/// cooldown_start]`, timestamps in the text form sqlx writes (so they compare as the stored ones do).
const ROUTING_CANDIDATES: &str = "WITH c AS (
    SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS user_id,
           json_extract(value, '$[1]') AS window_start,
           CAST(json_extract(value, '$[2]') AS INTEGER) AS max_in_window,
           json_extract(value, '$[3]') AS cooldown_start
    FROM json_each($1))";

/// See [`LOCK_USER`]: the immediate transaction already serialises every router.
const LOCK_USERS: Option<&str> = None;

/// The audience being materialised; the immediate transaction is the lock.
const SELECT_AUDIENCE_FOR_UPDATE: &str =
    "SELECT symbol, created_at, recipients, recipient_count, materialised FROM signal_audiences WHERE signal_id = $1";

/// The notifications of a slice of an audience: `$4` is a JSON array of user ids. The `WHERE` is needed
/// anyway (a deleted user gets nothing) and also keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
const MATERIALISE_INSERT: &str = "INSERT INTO signal_notifications (signal_id, user_id, symbol, created_at)
    SELECT $1, j.value, $2, $3 FROM json_each($4) AS j
    WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = j.value)
    ON CONFLICT (signal_id, user_id) DO NOTHING";

/// How long a writer waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite implementation of [`Store`](crate::Store).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `sqlite:PATH` or `sqlite://PATH`, creating the file if it is missing. `sqlite::memory:` gives a
    /// private in-memory database that lives as long as the store.
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let connect_error = |source| StoreError::Connect { url_redacted: redact_url(url), source };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(connect_error)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut pool = SqlitePoolOptions::new();
        if in_memory {
            // Every connection to a memory database sees its own copy unless they share one connection, and
            // the data vanishes when the last connection closes: keep exactly one, forever.
            pool = pool.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
        } else {
            // synchronous stays FULL (the default): a commit survives a power cut, not only a crash.
            options = options.journal_mode(SqliteJournalMode::Wal);
            pool = pool.max_connections(8);
        }
        let pool = pool.connect_with(options).await.map_err(connect_error)?;
        Ok(SqliteStore { pool })
    }

    /// Wraps a pool opened elsewhere; it should enable foreign keys and a busy timeout as `connect` does.
    pub fn from_pool(pool: SqlitePool) -> SqliteStore {
        SqliteStore { pool }
    }

    /// The underlying pool, for tests and one-off maintenance.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

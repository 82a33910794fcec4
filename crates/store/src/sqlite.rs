//! The SQLite backend: one file in WAL mode, so readers never wait for the writer; this process's writes
//! queue on one writer connection, and a busy timeout makes writers in other processes (the CLI next to the
//! server) wait instead of failing.

use crate::{StoreError, redact_url};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::sync::{Arc, Weak};
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

/// How often the background checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The SQLite implementation of [`Store`](crate::Store).
///
/// SQLite lets one connection write at a time. Connections that meet at the write lock do not queue: the
/// loser's busy handler sleeps in fixed steps (1, 2, 5, 10 … 100 ms) and tries again, so a write that
/// arrives a moment after another can lose tens of milliseconds for nothing. So every write of this process
/// goes through `writer`, a pool of exactly one connection, where writers wait their turn in order on an
/// async semaphore instead; the busy timeout is left for writers in *other* processes (the CLI beside the
/// server). Reads use `pool`, whose connections are `query_only`: a write sent to the wrong pool fails at
/// once instead of quietly skipping the queue.
///
/// The write-ahead log is checkpointed by a background task instead of by whichever commit happens to
/// cross SQLite's 1,000-page threshold, which would otherwise pay for copying and syncing the whole log
/// before its own commit returns.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// Dropped with the last clone of the store, which ends the checkpointer.
    _alive: Arc<()>,
}

impl SqliteStore {
    /// Opens `sqlite:PATH` or `sqlite://PATH`, creating the file if it is missing. `sqlite::memory:` gives a
    /// private in-memory database that lives as long as the store.
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let connect_error = |source| StoreError::Connect { url_redacted: redact_url(url), source };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect_error)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        if in_memory {
            // Every connection to a memory database sees its own copy unless they share one connection, and
            // the data vanishes when the last connection closes: keep exactly one, forever, for everything.
            let pool = one_connection().connect_with(options).await.map_err(connect_error)?;
            return Ok(SqliteStore::from_pool(pool));
        }
        // synchronous stays FULL (the default): a commit survives a power cut, not only a crash.
        let options = options.journal_mode(SqliteJournalMode::Wal).pragma("wal_autocheckpoint", "0");
        // The writer first: it creates the file and switches it to WAL before any reader opens it.
        let writer = one_connection().connect_with(options.clone()).await.map_err(connect_error)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(connect_error)?;
        let alive = Arc::new(());
        spawn_checkpointer(pool.clone(), Arc::downgrade(&alive));
        Ok(SqliteStore { pool, writer, _alive: alive })
    }

    /// Wraps a pool opened elsewhere; it should enable foreign keys and a busy timeout as `connect` does.
    /// Reads and writes share it, and SQLite checkpoints on its own.
    pub fn from_pool(pool: SqlitePool) -> SqliteStore {
        SqliteStore { writer: pool.clone(), pool, _alive: Arc::new(()) }
    }

    /// Runs one passive checkpoint now, as the background task does every second: for tests and maintenance.
    pub async fn checkpoint(&self) -> Result<WalCheckpoint, StoreError> {
        checkpoint(&self.pool).await
    }

    /// The underlying pool, for tests and one-off maintenance.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// What one passive checkpoint did, in pages of the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// Pages in the log when the checkpoint ran (0 when the database is not in WAL mode).
    pub log_pages: i64,
    /// Of those, pages now copied into the database file. Fewer when a reader still needs older pages.
    pub checkpointed_pages: i64,
}

async fn checkpoint(pool: &SqlitePool) -> Result<WalCheckpoint, StoreError> {
    let (_busy, log, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
        .map_err(|source| StoreError::Query { op: "checkpointing the write-ahead log", source })?;
    // SQLite answers -1 for both counts outside WAL mode (an in-memory database).
    Ok(WalCheckpoint { log_pages: log.max(0), checkpointed_pages: done.max(0) })
}

/// A pool that holds one connection for as long as it lives.
fn one_connection() -> SqlitePoolOptions {
    SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
}

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`], on a reader connection,
/// until the store is dropped. A passive checkpoint never takes the write lock, so writers carry on while
/// it runs; the log is reused from its start by the first write after a checkpoint that caught up.
fn spawn_checkpointer(readers: SqlitePool, alive: Weak<()>) {
    // Without a runtime (a store opened outside one) SQLite still checkpoints when the last connection
    // closes; nothing writes long enough for the log to matter there.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if alive.strong_count() == 0 || readers.is_closed() {
                break;
            }
            if let Err(error) = checkpoint(&readers).await {
                tracing::warn!(%error, "checkpointing the SQLite write-ahead log failed; retrying in a second");
            }
        }
    });
}

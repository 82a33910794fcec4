//! Fresh, migrated databases for tests: a SQLite file in a temporary directory, or a uniquely named
//! PostgreSQL database created through `TEST_DATABASE_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`). Every call gets its own database, so tests run in parallel
//! without seeing each other's rows.
//!
//! Keep the returned [`DbGuard`] alive as long as the database is used: dropping it deletes the SQLite
//! directory, or drops the PostgreSQL database (best effort).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use store::Store;
use tempfile::TempDir;

/// The variable naming the PostgreSQL server the tests may create databases on.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// Owns a test database; dropping it removes the database.
#[derive(Debug)]
pub struct DbGuard {
    url: String,
    kind: GuardKind,
}

#[derive(Debug)]
enum GuardKind {
    Sqlite { dir: TempDir },
    Postgres { admin_url: String, database: String },
}

impl DbGuard {
    /// The database's URL, as `DATABASE_URL` would give it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite file, when it is one (for tests that need to tamper with it directly).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.kind {
            GuardKind::Sqlite { dir } => Some(sqlite_file(dir.path())),
            GuardKind::Postgres { .. } => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, GuardKind::Postgres { .. })
    }

    /// Runs `sql` on this database over a connection of its own, as another process would: none of this
    /// process's store handles, caches or write generations see it happen. Returns the rows it changed.
    /// Write SQL both backends accept (`true`/`false` literals work in both).
    pub async fn execute_as_another_process(&self, sql: &'static str) -> u64 {
        let done = match &self.kind {
            GuardKind::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("a PostgreSQL connection");
                sqlx::query(sql).execute(&mut conn).await.map(|r| r.rows_affected())
            }
            GuardKind::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.expect("a SQLite connection");
                sqlx::query(sql).execute(&mut conn).await.map(|r| r.rows_affected())
            }
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let GuardKind::Postgres { admin_url, database } = &self.kind {
            drop_postgres_database(admin_url.clone(), database.clone());
        }
    }
}

/// A migrated SQLite database in a fresh temporary directory.
pub async fn fresh_sqlite() -> (Arc<dyn Store>, DbGuard) {
    let guard = new_sqlite_guard();
    let store = connect_and_migrate(&guard.url).await;
    (store, guard)
}

/// A migrated, empty PostgreSQL database, or `None` (after saying so on stderr) when `TEST_DATABASE_URL` is
/// unset. A set but unusable `TEST_DATABASE_URL` panics: the run asked for PostgreSQL and must not pass
/// silently without it.
pub async fn fresh_postgres() -> Option<(Arc<dyn Store>, DbGuard)> {
    let guard = new_postgres_guard().await?;
    let store = connect_and_migrate(&guard.url).await;
    Some((store, guard))
}

/// A migrated database on the backend the run asks for: PostgreSQL when `TEST_DATABASE_URL` is set,
/// SQLite otherwise.
pub async fn fresh_store() -> (Arc<dyn Store>, DbGuard) {
    match fresh_postgres_quietly().await {
        Some(found) => found,
        None => fresh_sqlite().await,
    }
}

/// A URL for black-box tests that start the real application: a migrated SQLite file by default, a fresh
/// migrated PostgreSQL database when `TEST_DATABASE_URL` is set. Migrating again, as `serve` does, is
/// harmless.
pub async fn fresh_database_url() -> (String, DbGuard) {
    let guard = match postgres_admin_url() {
        Some(_) => new_postgres_guard().await.expect("TEST_DATABASE_URL is set"),
        None => new_sqlite_guard(),
    };
    connect_and_migrate(&guard.url).await;
    (guard.url.clone(), guard)
}

async fn fresh_postgres_quietly() -> Option<(Arc<dyn Store>, DbGuard)> {
    postgres_admin_url()?;
    fresh_postgres().await
}

fn postgres_admin_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL).ok().filter(|u| !u.trim().is_empty())
}

fn sqlite_file(dir: &Path) -> PathBuf {
    dir.join("signalpost.db")
}

fn new_sqlite_guard() -> DbGuard {
    let dir = tempfile::Builder::new().prefix("signalpost-test-").tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", sqlite_file(dir.path()).display());
    DbGuard { url, kind: GuardKind::Sqlite { dir } }
}

async fn new_postgres_guard() -> Option<DbGuard> {
    let Some(admin_url) = postgres_admin_url() else {
        eprintln!("skipped: {TEST_DATABASE_URL} is unset");
        return None;
    };
    let database = unique_database_name();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", store::redact_url(&admin_url)));
    // The name is generated here from digits and underscores, so quoting it is enough.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{database}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create database {database}: {e}"));
    let _ = admin.close().await;
    let url = with_database(&admin_url, &database);
    Some(DbGuard { url, kind: GuardKind::Postgres { admin_url, database } })
}

async fn connect_and_migrate(url: &str) -> Arc<dyn Store> {
    let store = store::connect(url).await.unwrap_or_else(|e| panic!("{e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    store
}

/// Unique across the tests of one run (the counter) and across runs and processes (pid and clock).
fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("sp_test_{}_{}_{n}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Replaces the database name in a PostgreSQL URL, keeping credentials, host and parameters.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let path_start = rest.find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    let query_start = url[path_start..].find('?').map_or(url.len(), |i| path_start + i);
    format!("{}/{database}{}", &url[..path_start], &url[query_start..])
}

/// Runs on its own thread with its own runtime: `Drop` cannot await, and the test's runtime may be the one
/// calling it. Failures are ignored; a leftover `sp_test_…` database is harmless.
fn drop_postgres_database(admin_url: String, database: String) {
    let worker = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                // FORCE ends the connections the test's pool may still hold.
                let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
                let _ = admin.close().await;
            }
        });
    });
    let _ = worker.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_open_migrated_databases_that_vanish_with_the_guard() {
        let (url, guard) = fresh_database_url().await;
        let store = store::connect(&url).await.unwrap();
        let new = store::NewUser { discord_user_id: None, display_name: "ann".into(), role: store::Role::User };
        store.create_user(&new).await.unwrap();
        let path = guard.sqlite_path();
        drop(store);
        drop(guard);
        if let Some(path) = path {
            assert!(!path.exists());
        }
    }

    #[test]
    fn database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(with_database("postgres://u:p@h:5432/test", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(with_database("postgres://h/test?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgres://h?user=a", "x"), "postgres://h/x?user=a");
    }
}

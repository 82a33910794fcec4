//! The SQLite store's write path: one writer connection that this process's writes queue on, read
//! connections that refuse writes, and the checkpoint the background task runs.

use std::sync::Arc;
use store::{NewUser, Role, SqliteStore, Store, WalCheckpoint};

async fn file_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("writer.db").display());
    let store = SqliteStore::connect(&url).await.expect("the store opens");
    store.migrate().await.expect("migrations");
    (store, dir)
}

fn new_user(name: String) -> NewUser {
    NewUser { discord_user_id: None, display_name: name, role: Role::User }
}

#[tokio::test]
async fn a_write_sent_to_the_read_connections_is_refused() {
    let (store, _dir) = file_store().await;
    let refused = sqlx::query("INSERT INTO users (display_name, role, created_at) VALUES ('x', 'user', '2024-01-01')")
        .execute(store.pool())
        .await
        .expect_err("the read pool is query_only");
    assert!(refused.to_string().contains("readonly"), "unexpected error: {refused}");
    assert!(store.list_users().await.unwrap().is_empty(), "nothing was written");
}

#[tokio::test]
async fn concurrent_writes_queue_on_the_writer_and_all_commit() {
    let (store, _dir) = file_store().await;
    let store = Arc::new(store);
    let writers: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create_user(&new_user(format!("user{i}"))).await })
        })
        .collect();
    for writer in writers {
        writer.await.expect("the task runs").expect("every write commits");
    }
    let mut names: Vec<String> = store.list_users().await.unwrap().into_iter().map(|u| u.display_name).collect();
    names.sort();
    let mut expected: Vec<String> = (0..64).map(|i| format!("user{i}")).collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn a_checkpoint_copies_the_log_into_the_database() {
    let (store, _dir) = file_store().await;
    for i in 0..20 {
        store.create_user(&new_user(format!("user{i}"))).await.unwrap();
    }
    // The background task may have run in between; a second checkpoint right after the first always finds
    // everything copied, and the first copied whatever the log held.
    let first = store.checkpoint().await.unwrap();
    assert_eq!(first.checkpointed_pages, first.log_pages, "no reader holds old pages: {first:?}");
    store.create_user(&new_user("one more".into())).await.unwrap();
    let after_write = store.checkpoint().await.unwrap();
    assert!(after_write.log_pages > 0, "the write went to the log: {after_write:?}");
    assert_eq!(after_write.checkpointed_pages, after_write.log_pages);
    // Every row is still there, whichever of them the checkpoints copied.
    assert_eq!(store.list_users().await.unwrap().len(), 21);
}

#[tokio::test]
async fn an_in_memory_store_writes_and_reads_on_its_one_connection() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let user = store.create_user(&new_user("solo".into())).await.unwrap();
    assert_eq!(store.get_user(user.id).await.unwrap().unwrap().display_name, "solo");
    assert_eq!(store.checkpoint().await.unwrap(), WalCheckpoint { log_pages: 0, checkpointed_pages: 0 });
}

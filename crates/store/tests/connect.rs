//! `connect`: choosing the backend from the URL, SQLite file and memory databases, and errors that name
//! the database without revealing its password.

use store::{NewUser, Role, StoreError};

#[tokio::test]
async fn sqlite_urls_create_the_file_in_both_spellings() {
    let dir = tempfile::tempdir().unwrap();
    for (i, url) in [
        format!("sqlite://{}", dir.path().join("a.db").display()),
        format!("sqlite:{}", dir.path().join("b.db").display()),
    ]
    .iter()
    .enumerate()
    {
        let store = store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.backend_name(), "sqlite");
        let name = if i == 0 { "a.db" } else { "b.db" };
        assert!(dir.path().join(name).exists(), "{url} created its file");
    }
}

#[tokio::test]
async fn sqlite_memory_database_lives_as_long_as_the_store() {
    let store = store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let new = NewUser { discord_user_id: None, display_name: "ann".into(), role: Role::User };
    let ann = store.create_user(&new).await.unwrap();
    // Several calls at once must all see the same in-memory database.
    let (a, b) = tokio::join!(store.get_user(ann.id), store.list_users());
    assert_eq!(a.unwrap(), Some(ann));
    assert_eq!(b.unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_schemes_are_refused_without_the_password() {
    let err = store::connect("mysql://root:hunter2@localhost/db").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("mysql://root:***@localhost/db"), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_is_a_connect_error_without_the_password() {
    // Port 1 on localhost: nothing listens there, so the refusal is immediate.
    let err = store::connect("postgres://sp:hunter2@127.0.0.1:1/sp").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(err.to_string().contains("postgres://sp:***@127.0.0.1:1/sp"), "{err}");
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("no/such/dir/x.db").display());
    let err = store::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("timed out"), "the real cause is reported: {err}");
}

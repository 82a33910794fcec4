//! Changing a local password on `/settings`: black-box, the real app on port 0 with a fresh database
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), two browsers signed in as the same person.

mod web_support;

use reqwest::StatusCode;
use store::Role;
use testkit::{AppOptions, spawn_app};
use web_support::{WebClient, element_text, user_with_password};

const OLD: &str = "dana-password";
const NEW: &str = "a brand new secret";

fn form<'a>(current: &'a str, new: &'a str, confirm: &'a str) -> [(&'a str, &'a str); 3] {
    [("current_password", current), ("new_password", new), ("confirm_password", confirm)]
}

#[tokio::test]
async fn a_password_change_signs_out_the_other_sessions_and_only_the_new_password_works() {
    let (app, _db) = spawn_app(AppOptions::default()).await;
    let dana = user_with_password(&app.store, "dana", OLD, Role::User).await;
    let (mut here, mut phone) = (WebClient::new(&app.address), WebClient::new(&app.address));
    assert_eq!(here.login("dana", OLD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.login("dana", OLD).await.status, StatusCode::SEE_OTHER);
    let settings = here.get("/settings").await;
    assert!(settings.body.contains("id=\"password-form\""), "{}", settings.body);

    let changed = here.submit("/settings", "/settings/password", &form(OLD, NEW, NEW)).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let confirmation = here.get(changed.location().unwrap()).await;
    assert_eq!(confirmation.status, StatusCode::OK, "this session stays signed in");
    assert_eq!(
        element_text(&confirmation.body, "password-changed").as_deref(),
        Some("Password changed. 1 other session was signed out.")
    );
    // The other browser is signed out on its very next request.
    assert_eq!(phone.get("/settings").await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/api/me").await.status, StatusCode::UNAUTHORIZED);

    let mut fresh = WebClient::new(&app.address);
    let old = fresh.login("dana", OLD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "the old password no longer signs in");
    assert_eq!(fresh.login("dana", NEW).await.status, StatusCode::SEE_OTHER);
    let me: serde_json::Value = serde_json::from_str(&fresh.get("/api/me").await.body).unwrap();
    assert_eq!(me["id"], dana.id.0);
    let stored = app.store.local_credentials(dana.id).await.unwrap().unwrap();
    assert_eq!(stored.username, "dana", "the username is kept");
    assert!(stored.password_hash.unwrap().starts_with("$argon2id$"));
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_current_password_a_mismatch_or_a_short_password_changes_nothing() {
    let (app, _db) = spawn_app(AppOptions::default()).await;
    let dana = user_with_password(&app.store, "dana", OLD, Role::User).await;
    let (mut here, mut phone) = (WebClient::new(&app.address), WebClient::new(&app.address));
    assert_eq!(here.login("dana", OLD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.login("dana", OLD).await.status, StatusCode::SEE_OTHER);
    let before = app.store.local_credentials(dana.id).await.unwrap().unwrap();
    let min = web::password::MIN_LENGTH;
    let short = "x".repeat(min - 1);

    for (fields, field, message) in [
        (form("not-my-password", NEW, NEW), "error-current_password", "That is not your current password.".into()),
        (
            form(OLD, NEW, "a brand new secreT"),
            "error-confirm_password",
            "The two new passwords are not the same.".into(),
        ),
        (form(OLD, &short, &short), "error-new_password", format!("A password needs at least {min} characters.")),
    ] {
        let refused = here.submit("/settings", "/settings/password", &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(element_text(&refused.body, field).as_deref(), Some(message.as_str()), "{}", refused.body);
        // Only the wrong field has a message, and no password is echoed back.
        assert_eq!(refused.body.matches("class=\"error\"").count(), 1, "{field}: {}", refused.body);
        assert!(!refused.body.contains(OLD) && !refused.body.contains(NEW), "{field}");
        assert_eq!(app.store.local_credentials(dana.id).await.unwrap().unwrap(), before, "{field}: nothing stored");
        assert_eq!(phone.get("/settings").await.status, StatusCode::OK, "{field}: the other session lives");
    }
    // Everything wrong at once: every message at once.
    let all = here.submit("/settings", "/settings/password", &form("nope", "short", "other")).await;
    for field in ["error-current_password", "error-new_password", "error-confirm_password"] {
        assert!(element_text(&all.body, field).is_some(), "{field}");
    }
    // Without the session's CSRF token the form is refused before it is read.
    let forged = here.post("/settings/password", &form(OLD, NEW, NEW)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.local_credentials(dana.id).await.unwrap().unwrap(), before);
    let mut fresh = WebClient::new(&app.address);
    assert_eq!(fresh.login("dana", OLD).await.status, StatusCode::SEE_OTHER, "the old password still works");
    app.stop().await;
}

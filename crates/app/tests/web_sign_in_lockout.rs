//! The sign-in lockout is kept in the database, so two Signalpost processes on one database share it: failed
//! sign-ins spread over both count together. Two apps in this test process on one database (one SQLite file,
//! or PostgreSQL when TEST_DATABASE_URL is set), sharing a manual clock so the lockout's minute passes
//! without sleeping.

mod web_support;

use chrono::{Duration, Utc};
use domain::ManualClock;
use reqwest::StatusCode;
use std::sync::Arc;
use store::Role;
use testkit::{AppOptions, spawn_app, spawn_app_on};
use web_support::{WebClient, element_text, user_with_password};

const LOCKED: &str = "Too many failed sign-ins for this username. Wait a minute and try again.";

#[tokio::test]
async fn failed_sign_ins_on_two_processes_add_up_to_one_lock() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let options = || AppOptions { clock: Some(clock.clone()), ..AppOptions::default() };
    let (first, _db) = spawn_app(options()).await;
    let second = spawn_app_on(&first.database_url, options()).await;
    user_with_password(&first.store, "erin", "erin-password", Role::User).await;
    user_with_password(&first.store, "finn", "finn-password", Role::User).await;
    let (mut a, mut b) = (WebClient::new(&first.address), WebClient::new(&second.address));

    // Half of the allowed failures on each process: neither alone has seen enough to lock.
    let half = web::auth::MAX_FAILURES / 2;
    for (browser, tries) in [(&mut a, half), (&mut b, web::auth::MAX_FAILURES - half)] {
        for _ in 0..tries {
            let failed = browser.login("erin", "not-the-password").await;
            assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
            clock.advance(Duration::seconds(1));
        }
    }
    // The right password is refused on both, with the lock's message, and the case of the name does not help.
    for (address, name) in [(&first.address, "erin"), (&second.address, "erin"), (&second.address, " ERIN ")] {
        let mut browser = WebClient::new(address);
        let locked = browser.login(name, "erin-password").await;
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{name:?}");
        assert_eq!(element_text(&locked.body, "login-error").as_deref(), Some(LOCKED));
        assert_eq!(browser.get("/api/me").await.status, StatusCode::UNAUTHORIZED, "not signed in");
    }
    // Another username is not locked.
    assert_eq!(WebClient::new(&second.address).login("finn", "finn-password").await.status, StatusCode::SEE_OTHER);

    // A minute after the failures the lock is gone, and a success wipes the count on both processes.
    clock.advance(web::auth::FAILURE_WINDOW);
    assert_eq!(b.login("erin", "erin-password").await.status, StatusCode::SEE_OTHER);
    assert_eq!(app_failures(&first, "erin").await, 0);
    first.stop().await;
    second.stop().await;
}

async fn app_failures(app: &testkit::TestApp, key: &str) -> u32 {
    app.store.sign_in_failures_since(key, Utc::now() - Duration::days(1)).await.unwrap()
}

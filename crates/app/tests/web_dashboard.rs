//! Black-box tests of the dashboard's sign-in, sessions, CSRF, settings and admin pages: the real
//! application on port 0 with a fresh database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set).

mod web_support;

use domain::{Delivery, Timeframe, UserSettings};
use reqwest::StatusCode;
use rust_decimal_macros::dec;
use signalpost::config::{Secret, WebConfig};
use store::{LinkOutcome, Role};
use testkit::discord::oauth::{FakeDiscordOAuth, OAuthUser};
use testkit::{AppOptions, TestApp, spawn_app};
use web_support::{WebClient, element_text, user_with_password};

/// A quiet app: the replay is one empty day, and the dashboard has no first-run admin.
async fn app() -> (TestApp, testkit::db::DbGuard) {
    spawn_app(AppOptions::default()).await
}

/// The settings form as a browser sends it, with every field valid.
fn settings_form<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("notifications_enabled", "on"),
        ("timeframes", "15m"),
        ("timeframes", "4h"),
        ("pairs", "EURUSD"),
        ("pairs", "XAUUSD"),
        ("min_confidence", "60"),
        ("only_ml_enhanced", "on"),
        ("max_notifications_per_day", "12"),
        ("notification_cooldown_minutes", "45"),
        ("running_update_minutes", "30"),
        ("delivery", "channel"),
        ("channel_id", "112233445566778899"),
    ];
    for (name, value) in overrides {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    form
}

#[tokio::test]
async fn without_a_session_pages_redirect_to_sign_in_and_the_api_answers_401() {
    let (app, _db) = app().await;
    let secret = user_with_password(&app.store, "carol", "carol-password", Role::Admin).await;
    let settings = UserSettings { delivery: Delivery::Channel("998877665544332211".into()), ..UserSettings::default() };
    app.store.save_settings(secret.id, &settings).await.unwrap();

    let mut anonymous = WebClient::new(&app.address);
    for (path, next) in [
        ("/", "/"),
        ("/settings", "/settings"),
        ("/admin", "/admin"),
        ("/signals?page=2", "/signals%3Fpage%3D2"),
        ("/trades", "/trades"),
        ("/stats", "/stats"),
        ("/providers", "/providers"),
    ] {
        let answer = anonymous.get(path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.location(), Some(format!("/login?next={next}").as_str()), "{path}");
        assert!(!answer.body.contains("998877665544332211") && !answer.body.contains("carol"), "{path}");
    }
    let api = anonymous.get("/api/me").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["error"]);
    // A POST without a session cannot carry a valid token: refused before any handler runs.
    let post = anonymous.post("/settings", &settings_form(&[])).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.get_settings(secret.id).await.unwrap(), settings);
    app.stop().await;
}

#[tokio::test]
async fn sign_in_with_the_right_password_only_and_the_session_lasts_until_sign_out() {
    let (app, _db) = app().await;
    let dana = user_with_password(&app.store, "dana", "dana-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);

    for (username, password) in [("dana", "wrong-password"), ("nobody", "dana-password"), ("", "")] {
        let failed = browser.login(username, password).await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "{username}");
        assert_eq!(element_text(&failed.body, "login-error").as_deref(), Some("Wrong username or password."));
        assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "still signed out after {username:?}");
    }

    let pre_session = browser.cookie.clone();
    browser.get("/login?next=/settings").await;
    let signed_in = browser
        .submit(
            "/login?next=/settings",
            "/login",
            &[("username", "dana"), ("password", "dana-password"), ("next", "/settings")],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), Some("/settings"));
    assert_ne!(browser.cookie, pre_session, "signing in starts a new session");
    let cookie = signed_in.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    // The session carries over requests.
    for _ in 0..2 {
        let overview = browser.get("/").await;
        assert_eq!(overview.status, StatusCode::OK);
        assert!(overview.body.contains("dana (display)"), "{}", overview.body);
        assert!(overview.body.contains("href=\"/settings\""));
    }
    let me: serde_json::Value = serde_json::from_str(&browser.get("/api/me").await.body).unwrap();
    assert_eq!(me["id"], dana.id.0);

    // Sign-out ends the session in the database, not only in this browser.
    let session_token = browser.cookie.clone().unwrap();
    let out = browser.submit("/", "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/login"));
    assert_eq!(browser.cookie, None, "the cookie is cleared");
    let mut replay = WebClient::new(&app.address);
    replay.cookie = Some(session_token);
    assert_eq!(replay.get("/settings").await.status, StatusCode::SEE_OTHER);
    assert_eq!(replay.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let (app, _db) = app().await;
    let erin = user_with_password(&app.store, "erin", "erin-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    assert_eq!(browser.login("erin", "erin-password").await.status, StatusCode::SEE_OTHER);
    let before = app.store.get_settings(erin.id).await.unwrap();

    let missing = browser.post("/settings", &settings_form(&[])).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let mut wrong = settings_form(&[]);
    wrong.push(("csrf_token", "0000000000000000000000000000000000000000000000000000000000000000"));
    assert_eq!(browser.post("/settings", &wrong).await.status, StatusCode::FORBIDDEN);
    // Another session's token is no better than none.
    let mut other = WebClient::new(&app.address);
    let foreign = other.get("/login").await.csrf();
    let mut borrowed = settings_form(&[]);
    borrowed.push(("csrf_token", &foreign));
    assert_eq!(browser.post("/settings", &borrowed).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.get_settings(erin.id).await.unwrap(), before);

    assert_eq!(browser.post("/logout", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/").await.status, StatusCode::OK, "the refused sign-out left the session alone");
    assert_eq!(browser.post("/settings/link-code", &[]).await.status, StatusCode::FORBIDDEN);

    // The sign-in form is covered too, so nobody can sign a browser into their own account.
    let mut fresh = WebClient::new(&app.address);
    fresh.get("/login").await;
    let forged = fresh.post("/login", &[("username", "erin"), ("password", "erin-password")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(fresh.get("/").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn settings_are_validated_field_by_field_and_saved_only_when_all_are_valid() {
    let (app, _db) = app().await;
    let finn = user_with_password(&app.store, "finn", "finn-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    browser.login("finn", "finn-password").await;
    let before = app.store.get_settings(finn.id).await.unwrap();

    let bad = settings_form(&[
        ("min_confidence", "150"),
        ("notification_cooldown_minutes", "soon"),
        ("running_update_minutes", "2"),
        ("channel_id", "general"),
        ("timeframes", "2h"),
    ]);
    let refused = browser.submit("/settings", "/settings", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["min_confidence", "notification_cooldown_minutes", "running_update_minutes", "delivery", "timeframes"]
    {
        let message = element_text(&refused.body, &format!("error-{field}"));
        assert!(message.is_some_and(|m| !m.is_empty()), "no message beside {field}: {}", refused.body);
    }
    assert!(element_text(&refused.body, "error-max_notifications_per_day").is_none(), "a valid field has no message");
    // What was typed comes back, so it can be corrected.
    assert!(refused.body.contains("value=\"soon\"") && refused.body.contains("value=\"general\""));
    assert_eq!(app.store.get_settings(finn.id).await.unwrap(), before, "nothing was stored");

    let saved = browser.submit("/settings", "/settings", &settings_form(&[])).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), Some("/settings?saved=1"));
    let stored = app.store.get_settings(finn.id).await.unwrap();
    assert!(stored.notifications_enabled && stored.only_ml_enhanced);
    assert_eq!(stored.enabled_timeframes, vec![Timeframe::M15, Timeframe::H4]);
    assert_eq!(
        stored.preferred_pairs.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>(),
        vec!["EURUSD", "XAUUSD"]
    );
    assert_eq!(stored.min_confidence, dec!(0.6));
    assert_eq!((stored.max_notifications_per_day, stored.notification_cooldown_minutes), (12, 45));
    assert_eq!(stored.running_update_minutes, 30);
    assert_eq!(stored.delivery, Delivery::Channel("112233445566778899".into()));

    let page = browser.get("/settings?saved=1").await;
    assert_eq!(element_text(&page.body, "saved").as_deref(), Some("Settings saved."));
    assert!(page.body.contains("value=\"45\"") && page.body.contains("<option value=\"XAUUSD\" selected>"));

    // Unticked boxes mean off, and DM needs no channel.
    let minimal = [
        ("min_confidence", "0"),
        ("max_notifications_per_day", "0"),
        ("notification_cooldown_minutes", "0"),
        ("running_update_minutes", "0"),
        ("delivery", "dm"),
    ];
    assert_eq!(browser.submit("/settings", "/settings", &minimal).await.status, StatusCode::SEE_OTHER);
    let stored = app.store.get_settings(finn.id).await.unwrap();
    assert!(!stored.notifications_enabled && !stored.only_ml_enhanced);
    assert!(stored.enabled_timeframes.is_empty() && stored.preferred_pairs.is_empty());
    assert_eq!(stored.delivery, Delivery::Dm);
    app.stop().await;
}

#[tokio::test]
async fn two_users_see_and_change_only_their_own_settings() {
    let (app, _db) = app().await;
    let gina = user_with_password(&app.store, "gina", "gina-password", Role::User).await;
    let hugo = user_with_password(&app.store, "hugo", "hugo-password", Role::User).await;
    let mut as_gina = WebClient::new(&app.address);
    let mut as_hugo = WebClient::new(&app.address);
    as_gina.login("gina", "gina-password").await;
    as_hugo.login("hugo", "hugo-password").await;

    let gina_form = settings_form(&[("channel_id", "111111111111111111"), ("notification_cooldown_minutes", "77")]);
    assert_eq!(as_gina.submit("/settings", "/settings", &gina_form).await.status, StatusCode::SEE_OTHER);
    let hugo_page = as_hugo.get("/settings").await;
    assert!(!hugo_page.body.contains("111111111111111111") && !hugo_page.body.contains("value=\"77\""));
    assert!(hugo_page.body.contains("hugo (display)") && !hugo_page.body.contains("gina"));

    // The form has no user field; one slipped in is ignored and Hugo changes only Hugo.
    let gina_id = gina.id.0.to_string();
    let hugo_form = settings_form(&[("user_id", &gina_id), ("channel_id", "222222222222222222")]);
    assert_eq!(as_hugo.submit("/settings", "/settings", &hugo_form).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.store.get_settings(gina.id).await.unwrap().delivery, Delivery::Channel("111111111111111111".into()));
    assert_eq!(app.store.get_settings(hugo.id).await.unwrap().delivery, Delivery::Channel("222222222222222222".into()));
    let me: serde_json::Value = serde_json::from_str(&as_hugo.get("/api/me").await.body).unwrap();
    assert_eq!(me["id"], hugo.id.0);
    app.stop().await;
}

#[tokio::test]
async fn the_admin_page_needs_the_admin_role() {
    let (app, _db) = app().await;
    user_with_password(&app.store, "ivan", "ivan-password", Role::User).await;
    user_with_password(&app.store, "judy", "judy-password", Role::Admin).await;
    let mut user = WebClient::new(&app.address);
    user.login("ivan", "ivan-password").await;
    let refused = user.get("/admin").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("judy"));
    assert!(!user.get("/").await.body.contains("href=\"/admin\""), "no Admin link for a user");

    let mut admin = WebClient::new(&app.address);
    admin.login("judy", "judy-password").await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ivan (display)") && page.body.contains("judy (display)"));
    assert!(page.body.contains("not linked"));
    assert!(admin.get("/").await.body.contains("href=\"/admin\""));
    app.stop().await;
}

async fn app_with_discord(fake: &FakeDiscordOAuth) -> (TestApp, testkit::db::DbGuard) {
    spawn_app(AppOptions {
        web: Some(WebConfig {
            discord_client_id: Some(fake.client_id().into()),
            discord_client_secret: Some(Secret::new(fake.client_secret())),
            discord_oauth_base: Some(fake.base_url().into()),
            first_run_admin: false,
            ..WebConfig::default()
        }),
        ..AppOptions::default()
    })
    .await
}

#[tokio::test]
async fn discord_sign_in_creates_the_user_once_and_signs_them_in() {
    let fake = FakeDiscordOAuth::start().await;
    let (app, _db) = app_with_discord(&fake).await;
    fake.authorize_as(OAuthUser {
        id: "80351110224678912".into(),
        username: "nelly".into(),
        global_name: Some("Nelly".into()),
    });
    let mut browser = WebClient::new(&app.address);
    assert!(browser.get("/login").await.body.contains("/auth/discord"), "the page offers Discord sign-in");

    let start = browser.get("/auth/discord?next=/settings").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let authorize = start.location().unwrap().to_string();
    assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", fake.base_url())), "{authorize}");
    assert!(authorize.contains("scope=identify") && authorize.contains("code_challenge_method=S256"));
    // Discord's consent page sends the browser back with a code and the state.
    let consent = WebClient::new(fake.base_url()).get(&authorize).await;
    let callback = consent.location().unwrap().to_string();
    assert!(callback.starts_with(&format!("{}/auth/discord/callback?code=", app.address)), "{callback}");

    let signed_in = browser.get(&callback).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location(), Some("/settings"));
    let page = browser.get("/settings").await;
    assert!(page.body.contains("Nelly") && page.body.contains("80351110224678912"), "{}", page.body);
    let user = app.store.user_by_discord_id("80351110224678912").await.unwrap().unwrap();
    assert_eq!(user.display_name, "Nelly");

    // The callback worked once: its pre-session is gone, so a replay signs nobody in.
    let mut replay = WebClient::new(&app.address);
    assert_eq!(replay.get(&callback).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.token_requests(), 1);

    // Signing in again finds the same user.
    let mut again = WebClient::new(&app.address);
    let authorize = again.get("/auth/discord").await.location().unwrap().to_string();
    let callback = WebClient::new(fake.base_url()).get(&authorize).await.location().unwrap().to_string();
    assert_eq!(again.get(&callback).await.location(), Some("/"));
    assert_eq!(app.store.list_users().await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_discord_callback_with_the_wrong_state_is_refused_before_any_token_exchange() {
    let fake = FakeDiscordOAuth::start().await;
    let (app, _db) = app_with_discord(&fake).await;
    let mut browser = WebClient::new(&app.address);
    let authorize = browser.get("/auth/discord").await.location().unwrap().to_string();
    assert!(authorize.contains("state="));
    let code = fake.issue_code(OAuthUser::new("80351110224678913", "mallory"));
    let forged = browser.get(&format!("/auth/discord/callback?code={code}&state=forged-state")).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(forged.body.contains("could not be verified"), "{}", forged.body);
    assert_eq!(fake.token_requests(), 0, "the code was never exchanged");
    assert!(app.store.list_users().await.unwrap().is_empty(), "nobody was created");
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "nobody is signed in");
    // Without a pre-session at all (a callback link sent to someone else) it is refused the same way.
    let mut stranger = WebClient::new(&app.address);
    let code = fake.issue_code(OAuthUser::new("80351110224678914", "victim"));
    assert_eq!(stranger.get(&format!("/auth/discord/callback?code={code}&state=x")).await.status, 400);
    assert!(app.store.list_users().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn discord_sign_in_says_so_when_it_is_not_configured() {
    let (app, _db) = app().await;
    let mut browser = WebClient::new(&app.address);
    assert!(!browser.get("/login").await.body.contains("/auth/discord"));
    let answer = browser.get("/auth/discord").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.body.contains("not configured"));
    app.stop().await;
}

#[tokio::test]
async fn a_one_time_sign_in_link_works_once() {
    let (app, _db) = app().await;
    let kim = user_with_password(&app.store, "kim", "kim-password", Role::User).await;
    let (link, _) =
        web::bootstrap::sign_in_link(app.store.as_ref(), &app.address, kim.id, chrono::Utc::now()).await.unwrap();
    let path = link.strip_prefix(&app.address).unwrap().to_string();
    assert!(path.starts_with("/login/link/"));

    let mut browser = WebClient::new(&app.address);
    let confirm = browser.get(&path).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "opening the link alone signs nobody in");
    let used = browser.post(&path, &[("csrf_token", &confirm.csrf())]).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER);
    assert!(browser.get("/").await.body.contains("kim (display)"));

    let mut second = WebClient::new(&app.address);
    let again = second.submit(&path, &path, &[]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("does not work"));
    assert_eq!(second.get("/").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn the_first_start_makes_an_admin_who_signs_in_by_link_and_then_by_password() {
    let (app, _db) = spawn_app(AppOptions { web: Some(WebConfig::default()), ..AppOptions::default() }).await;
    let users = app.store.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!((users[0].display_name.as_str(), users[0].role), ("admin", Role::Admin));
    // A second start finds the admin and makes nobody.
    let again = web::bootstrap::first_run(app.store.as_ref(), &app.address, chrono::Utc::now()).await.unwrap();
    assert!(again.is_none());
    assert_eq!(app.store.list_users().await.unwrap().len(), 1);

    // `signalpost users sign-in-link admin` and `set-password admin` do what these calls do.
    let admin = web::bootstrap::resolve_user(app.store.as_ref(), "admin").await.unwrap();
    let (link, _) =
        web::bootstrap::sign_in_link(app.store.as_ref(), &app.address, admin.id, chrono::Utc::now()).await.unwrap();
    let mut browser = WebClient::new(&app.address);
    let path = link.strip_prefix(&app.address).unwrap().to_string();
    assert_eq!(browser.submit(&path, &path, &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/admin").await.status, StatusCode::OK);
    let mut other = WebClient::new(&app.address);
    assert_eq!(other.login("admin", "anything-at-all").await.status, StatusCode::UNAUTHORIZED, "no password yet");

    let username = web::bootstrap::set_password(
        app.store.as_ref(),
        &admin,
        None,
        "a long admin password".into(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(username, "admin");
    let mut fresh = WebClient::new(&app.address);
    assert_eq!(fresh.login("admin", "a long admin password").await.status, StatusCode::SEE_OTHER);
    assert_eq!(fresh.get("/admin").await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_link_code_made_on_the_dashboard_links_discord_through_the_slash_command() {
    let (app, _db) = app().await;
    let lena = user_with_password(&app.store, "lena", "lena-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    browser.login("lena", "lena-password").await;
    assert!(element_text(&browser.get("/settings").await.body, "link-status").unwrap().starts_with("Not linked"));

    let page = browser.submit("/settings", "/settings/link-code", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let code = element_text(&page.body, "link-code").expect("the page shows the new code");
    assert_eq!(code.len(), 8);
    // What `/link code:<code>` does in Discord.
    let outcome = app
        .store
        .redeem_link_code(&signalpost::slash::hash_link_code(&code), "80351110224678999", chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(outcome, LinkOutcome::Linked(ref u) if u.id == lena.id), "{outcome:?}");
    let status = element_text(&browser.get("/settings").await.body, "link-status").unwrap();
    assert!(status.contains("Linked"), "{status}");
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_username_for_a_minute() {
    let (app, _db) = app().await;
    user_with_password(&app.store, "omar", "omar-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    for _ in 0..web::auth::MAX_FAILURES {
        assert_eq!(browser.login("omar", "not-the-password").await.status, StatusCode::UNAUTHORIZED);
    }
    let locked = browser.login("omar", "omar-password").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn a_session_ends_after_a_week_without_a_visit() {
    let clock = domain::ManualClock::new(chrono::Utc::now());
    let (app, _db) =
        spawn_app(AppOptions { clock: Some(std::sync::Arc::new(clock.clone())), ..AppOptions::default() }).await;
    user_with_password(&app.store, "rosa", "rosa-password", Role::User).await;
    let mut browser = WebClient::new(&app.address);
    browser.login("rosa", "rosa-password").await;
    // Visits keep it alive past the first week...
    for _ in 0..3 {
        clock.advance(chrono::Duration::days(5));
        assert_eq!(browser.get("/settings").await.status, StatusCode::OK);
    }
    // ...but a week of silence ends it.
    clock.advance(web::session::IDLE_LIFETIME);
    assert_eq!(browser.get("/settings").await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

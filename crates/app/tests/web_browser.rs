//! The dashboard in headless Chromium (see `testkit::browser`): signing in through the form, and settings
//! changed on the page surviving a reload. A failing test leaves `target/browser-failures/<test>.png`.

mod web_support;

use domain::{Delivery, Timeframe};
use fantoccini::{Client, Locator};
use rust_decimal_macros::dec;
use store::Role;
use testkit::{AppOptions, spawn_app};
use web_support::user_with_password;

async fn sign_in(browser: &Client, base: &str, username: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    browser.find(Locator::Id("username")).await.unwrap().send_keys(username).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Id("greeting")).await.expect("the overview after signing in");
}

async fn text(browser: &Client, id: &str) -> String {
    browser.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

async fn checked(browser: &Client, id: &str) -> bool {
    browser.find(Locator::Id(id)).await.unwrap().is_selected().await.unwrap()
}

async fn value(browser: &Client, id: &str) -> String {
    browser.find(Locator::Id(id)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
}

async fn replace(browser: &Client, id: &str, text: &str) {
    let input = browser.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

#[tokio::test]
async fn signing_in_with_the_form_shows_the_overview() {
    let (app, _db) = spawn_app(AppOptions::default()).await;
    user_with_password(&app.store, "pia", "pia-password", Role::User).await;
    let base = app.address.clone();
    testkit::browser::run("signing_in_with_the_form_shows_the_overview", |browser| async move {
        browser.goto(&format!("{base}/settings")).await.unwrap();
        assert!(browser.current_url().await.unwrap().path().starts_with("/login"), "signed out: sent to sign in");
        browser.find(Locator::Id("username")).await.unwrap().send_keys("pia").await.unwrap();
        browser.find(Locator::Id("password")).await.unwrap().send_keys("wrong-password").await.unwrap();
        browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
        let error = browser.wait().for_element(Locator::Id("login-error")).await.unwrap();
        assert_eq!(error.text().await.unwrap(), "Wrong username or password.");

        sign_in(&browser, &base, "pia", "pia-password").await;
        assert!(text(&browser, "greeting").await.contains("pia (display)"));
        assert_eq!(browser.current_url().await.unwrap().path(), "/");
        browser.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
        browser.wait().for_element(Locator::Id("sign-in")).await.expect("back at the sign-in form");
        browser.goto(&format!("{base}/")).await.unwrap();
        assert!(browser.current_url().await.unwrap().path().starts_with("/login"), "signed out for good");
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn settings_changed_in_the_browser_survive_a_reload() {
    let (app, _db) = spawn_app(AppOptions::default()).await;
    let quinn = user_with_password(&app.store, "quinn", "quinn-password", Role::User).await;
    let (base, store) = (app.address.clone(), app.store.clone());
    testkit::browser::run("settings_changed_in_the_browser_survive_a_reload", |browser| async move {
        sign_in(&browser, &base, "quinn", "quinn-password").await;
        browser.find(Locator::Id("settings-link")).await.unwrap().click().await.unwrap();
        browser.wait().for_element(Locator::Id("settings-form")).await.unwrap();

        // A bad channel id is refused beside its field, with what was typed kept.
        browser.find(Locator::Id("delivery-channel")).await.unwrap().click().await.unwrap();
        replace(&browser, "channel_id", "general").await;
        browser.find(Locator::Id("save-settings")).await.unwrap().click().await.unwrap();
        let error = browser.wait().for_element(Locator::Id("error-delivery")).await.unwrap();
        assert!(error.text().await.unwrap().contains("digits only"));
        assert_eq!(value(&browser, "channel_id").await, "general");

        replace(&browser, "channel_id", "445566778899001122").await;
        replace(&browser, "notification_cooldown_minutes", "25").await;
        replace(&browser, "max_notifications_per_day", "9").await;
        browser.find(Locator::Id("tf-15m")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Id("only_ml_enhanced")).await.unwrap().click().await.unwrap();
        browser.find(Locator::Id("pairs")).await.unwrap().select_by_value("XAUUSD").await.unwrap();
        browser.find(Locator::Id("save-settings")).await.unwrap().click().await.unwrap();
        browser.wait().for_element(Locator::Id("saved")).await.expect("the save is confirmed");

        browser.refresh().await.unwrap();
        browser.wait().for_element(Locator::Id("settings-form")).await.unwrap();
        assert_eq!(value(&browser, "notification_cooldown_minutes").await, "25");
        assert_eq!(value(&browser, "max_notifications_per_day").await, "9");
        assert_eq!(value(&browser, "channel_id").await, "445566778899001122");
        assert!(checked(&browser, "delivery-channel").await);
        assert!(checked(&browser, "only_ml_enhanced").await);
        assert!(checked(&browser, "tf-15m").await && checked(&browser, "tf-1h").await);
        let pair = browser.find(Locator::Css("#pairs option[value='XAUUSD']")).await.unwrap();
        assert!(pair.is_selected().await.unwrap());

        let stored = store.get_settings(quinn.id).await.unwrap();
        assert_eq!(stored.delivery, Delivery::Channel("445566778899001122".into()));
        assert_eq!((stored.notification_cooldown_minutes, stored.max_notifications_per_day), (25, 9));
        assert!(stored.enabled_timeframes.contains(&Timeframe::M15) && stored.only_ml_enhanced);
        assert_eq!(stored.min_confidence, dec!(0.35), "the slider was left alone");
    })
    .await;
    app.stop().await;
}

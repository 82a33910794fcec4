//! The browser harness itself: a failing browser test leaves a screenshot behind and still fails.

#[tokio::test]
async fn a_failing_browser_test_leaves_a_screenshot() {
    let name = "harness_self_check_failure";
    let file = testkit::browser::failure_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    let outcome = tokio::spawn(async move {
        testkit::browser::run(name, |browser| async move {
            browser.goto("data:text/html,<h1>about to fail</h1>").await.unwrap();
            panic!("deliberate failure");
        })
        .await;
    })
    .await;
    if outcome.is_ok() {
        // Only a skip (no chromedriver outside CI) returns normally; then there is nothing to check.
        assert!(std::env::var_os("CI").is_none(), "the failing body must fail the test");
        return;
    }
    assert!(outcome.unwrap_err().is_panic(), "the body's panic reaches the test");
    let png = std::fs::read(&file).expect("a screenshot of the failing page");
    assert!(png.starts_with(b"\x89PNG"), "a PNG file");
    std::fs::remove_file(&file).unwrap();
}

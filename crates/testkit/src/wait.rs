//! Waiting for a condition that is only visible through the database, which offers no change feed to
//! subscribe to. Fakes with their own state (FakeDiscord, FakeGateway) wake their waiters instead.

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it yields a value or `within` passes, then panics naming `what`. The poll interval
/// is short because the checks are cheap queries; the deadline only bounds a failing test.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

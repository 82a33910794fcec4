//! Process-local write generations: counters this process's store methods bump after they write, so an
//! in-process cache can tell in one atomic load whether anything it read may have changed since.
//!
//! Two concerns are counted:
//! - [`Generations::sessions`]: the rows a dashboard session context is read from, `web_sessions` and
//!   `users`. Creating a session and deleting expired ones are left out: a session nobody has read cannot be
//!   in a cache, and a cache never serves an expired one (and sign-in sweeps expired sessions every time);
//! - [`Generations::trades`]: `user_trades`, whose triggers also bump the per-user trades version;
//! - [`Generations::settings`]: what `users_with_settings` reads, `user_settings` and the `users` rows (a
//!   new user has default settings, which may subscribe them to every pair). The scanner re-reads its
//!   subscriptions only when this changes, instead of on the signal path every few seconds.
//!
//! The counters are statics rather than fields of a store: every store handle of the process (the app's, a
//! command run in-process, a test's second connection) bumps the same ones, so an in-process write is seen
//! whichever handle made it. Writes by *another* process are not counted; a cache must still expire what it
//! holds. A bump comes after the write's commit (the guard is dropped when the store method returns, on
//! every path, so an error or an early return bumps too: a spare bump only costs a cache miss), and a reader
//! loads the counters *before* it reads the database, so a value it cached is never newer than the
//! generations it recorded.

use std::sync::atomic::{AtomicU64, Ordering};

static SESSIONS: AtomicU64 = AtomicU64::new(0);
static TRADES: AtomicU64 = AtomicU64::new(0);
static SETTINGS: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment; two snapshots are equal exactly when no counted write finished in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Generations {
    pub sessions: u64,
    pub trades: u64,
    pub settings: u64,
}

impl Generations {
    /// The current generations. Load them before reading what they guard.
    pub fn now() -> Generations {
        Generations {
            sessions: SESSIONS.load(Ordering::SeqCst),
            trades: TRADES.load(Ordering::SeqCst),
            settings: SETTINGS.load(Ordering::SeqCst),
        }
    }
}

/// Bumps its counter when dropped: taken at the top of a store method that writes a counted table, it
/// bumps after the method's transaction has committed or rolled back, on every return path.
#[derive(Debug)]
#[must_use = "the bump happens when the guard is dropped"]
pub(crate) struct BumpOnDrop(&'static AtomicU64);

impl Drop for BumpOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// For a store method that writes `web_sessions` or `users`.
pub(crate) fn sessions_write() -> BumpOnDrop {
    BumpOnDrop(&SESSIONS)
}

/// For a store method that writes `user_trades`.
pub(crate) fn trades_write() -> BumpOnDrop {
    BumpOnDrop(&TRADES)
}

/// For a store method that writes `user_settings` or adds or changes a `users` row.
pub(crate) fn settings_write() -> BumpOnDrop {
    BumpOnDrop(&SETTINGS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_bumps_its_own_counter_when_dropped() {
        let before = Generations::now();
        drop(trades_write());
        let after = Generations::now();
        assert!(after.trades > before.trades);
        drop(sessions_write());
        assert!(Generations::now().sessions > after.sessions);
        let after = Generations::now();
        drop(settings_write());
        let now = Generations::now();
        assert!(now.settings > after.settings);
        // Tests run in parallel and bump the other counters, so only this one is compared exactly.
        assert_eq!(now.settings, after.settings + 1);
    }
}

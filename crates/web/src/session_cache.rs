//! The session contexts (session, user, trades version) recently read, so a busy dashboard does not run the
//! session query on every request.
//!
//! An entry is served while all of these hold:
//! - it was read less than [`TTL`] ago by the app's clock: another process's change (a second server, the
//!   command line's `users set-password`) is seen within that time;
//! - no store method of this process has written sessions, users or trades since it was read (the store's
//!   [`Generations`], loaded before the read): this process's own sign-out, password change, trade write or
//!   import is seen on the very next request;
//! - the session has not expired.
//!
//! Only found sessions are kept; a cookie that names no session is looked up every time.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use store::SessionContext;
use store::generations::Generations;

/// How long another process's change to a session, its user or their trades may go unseen.
pub const TTL: Duration = Duration::seconds(1);
/// Entries kept at most: a few MB.
pub(crate) const CAPACITY: usize = 10_000;

#[derive(Debug)]
struct Entry {
    context: Arc<SessionContext>,
    read_at: DateTime<Utc>,
    generations: Generations,
}

impl Entry {
    fn is_fresh(&self, now: DateTime<Utc>, current: Generations) -> bool {
        // A clock set back must not stretch an entry's life, hence the lower bound.
        // The settings counter guards nothing a session context holds, so its bumps do not evict.
        let unchanged = self.generations.sessions == current.sessions && self.generations.trades == current.trades;
        unchanged && self.read_at <= now && now - self.read_at < TTL
    }
}

/// Session contexts by session id hash.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SessionCache {
    /// The context read for `id_hash`, if it may still be served at `now`.
    pub(crate) fn get(&self, id_hash: &str, now: DateTime<Utc>) -> Option<Arc<SessionContext>> {
        self.get_under(id_hash, now, Generations::now())
    }

    fn get_under(&self, id_hash: &str, now: DateTime<Utc>, current: Generations) -> Option<Arc<SessionContext>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(id_hash)?;
        (entry.is_fresh(now, current) && entry.context.session.expires_at > now).then(|| entry.context.clone())
    }

    /// Keeps `context`, read at `read_at` under `generations` (loaded before the read). When full, expired
    /// entries go first, and everything if that is not enough.
    pub(crate) fn put(
        &self,
        id_hash: String,
        context: Arc<SessionContext>,
        read_at: DateTime<Utc>,
        generations: Generations,
    ) {
        self.put_under(id_hash, Entry { context, read_at, generations }, Generations::now());
    }

    fn put_under(&self, id_hash: String, entry: Entry, current: Generations) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(&id_hash) {
            let now = entry.read_at;
            entries.retain(|_, kept| kept.is_fresh(now, current));
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(id_hash, entry);
    }

    /// Drops what is kept for a session the database no longer has.
    pub(crate) fn forget(&self, id_hash: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(id_hash);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

// The store's generations are process-wide and other tests of this binary move them, so these tests pass
// their own.
#[cfg(test)]
mod tests {
    use super::*;
    use domain::UserId;
    use store::WebSession;

    const G: Generations = Generations { sessions: 7, trades: 11, settings: 13 };

    fn entry(now: DateTime<Utc>, generations: Generations) -> Entry {
        let session = WebSession {
            id_hash: "id".into(),
            user_id: Some(UserId(1)),
            csrf_token: "csrf".into(),
            oauth: None,
            next_path: None,
            created_at: now,
            expires_at: now + Duration::days(7),
            last_seen: now,
        };
        Entry {
            context: Arc::new(SessionContext { session, user: None, trades_version: 3 }),
            read_at: now,
            generations,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn an_entry_is_served_until_its_ttl_and_never_from_a_clock_set_back() {
        let cache = SessionCache::default();
        cache.put_under("a".into(), entry(at(0), G), G);
        assert_eq!(cache.get_under("a", at(0), G).map(|c| c.trades_version), Some(3));
        assert!(cache.get_under("a", at(0) + TTL - Duration::milliseconds(1), G).is_some());
        assert!(cache.get_under("a", at(0) + TTL, G).is_none(), "expired at the TTL");
        assert!(cache.get_under("a", at(-1), G).is_none(), "a clock set back does not revive it");
        assert!(cache.get_under("b", at(0), G).is_none());
    }

    #[test]
    fn a_session_or_trade_write_in_this_process_ends_every_entry_read_before_it() {
        let cache = SessionCache::default();
        cache.put_under("a".into(), entry(at(0), G), G);
        assert!(cache.get_under("a", at(0), Generations { sessions: G.sessions + 1, ..G }).is_none());
        assert!(cache.get_under("a", at(0), Generations { trades: G.trades + 1, ..G }).is_none());
        assert!(cache.get_under("a", at(0), Generations { settings: G.settings + 1, ..G }).is_some());
    }

    #[test]
    fn an_expired_session_is_not_served() {
        let cache = SessionCache::default();
        let mut expiring = entry(at(0), G);
        Arc::make_mut(&mut expiring.context).session.expires_at = at(0);
        cache.put_under("a".into(), expiring, G);
        assert!(cache.get_under("a", at(0), G).is_none());
    }

    #[test]
    fn the_cache_stays_bounded_and_drops_expired_entries_first() {
        let cache = SessionCache::default();
        for i in 0..CAPACITY {
            cache.put_under(format!("old{i}"), entry(at(0), G), G);
        }
        assert_eq!(cache.len(), CAPACITY);
        // Every old entry has expired by second 5, so the first newcomer makes room by dropping them all.
        cache.put_under("new".into(), entry(at(5), G), G);
        assert_eq!(cache.len(), 1);
        for i in 0..CAPACITY + 10 {
            cache.put_under(format!("fresh{i}"), entry(at(5), G), G);
        }
        assert!(cache.len() <= CAPACITY);
        assert!(cache.get_under("fresh10009", at(5), G).is_some(), "the newest is kept");
        cache.forget("fresh10009");
        assert!(cache.get_under("fresh10009", at(5), G).is_none());
    }
}

//! Discord's rate limits as the fake applies them: a fixed window per (route bucket, major parameter) and a
//! global window per bot, with the headers Discord sends on every response.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `requests` per `per`, the shape of every Discord limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub per: Duration,
}

impl Limit {
    pub const fn new(requests: u32, per: Duration) -> Self {
        Self { requests, per }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    used: u32,
    limit: u32,
    reset_at: Instant,
}

impl Window {
    fn fresh(limit: Limit, now: Instant) -> Self {
        Self { used: 0, limit: limit.requests, reset_at: now + limit.per }
    }

    /// Opens a new window once the old one has run out, as Discord does (not a sliding window).
    fn roll(&mut self, limit: Limit, now: Instant) {
        if now >= self.reset_at {
            *self = Self::fresh(limit, now);
        }
    }
}

/// What a bucket looks like after a request: what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone)]
pub(crate) struct BucketState {
    pub bucket: String,
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: Duration,
}

#[derive(Debug, Clone)]
pub(crate) enum Decision {
    Allowed(BucketState),
    Limited { state: BucketState, retry_after: Duration, global: bool },
}

#[derive(Debug)]
pub(crate) struct Limiter {
    global: Limit,
    global_window: Option<Window>,
    buckets: HashMap<(String, String), Window>,
}

impl Limiter {
    pub(crate) fn new(global: Limit) -> Self {
        Self { global, global_window: None, buckets: HashMap::new() }
    }

    /// Counts one request against the global window (unless exempt) and its bucket.
    pub(crate) fn acquire(&mut self, bucket: &str, major: &str, limit: Limit, global_exempt: bool) -> Decision {
        let now = Instant::now();
        let key = (bucket.to_string(), major.to_string());
        let window = self.buckets.entry(key.clone()).or_insert_with(|| Window::fresh(limit, now));
        window.roll(limit, now);
        let bucket_window = *window;
        if !global_exempt {
            let global = self.global;
            let global_window = self.global_window.get_or_insert_with(|| Window::fresh(global, now));
            global_window.roll(global, now);
            if global_window.used >= global_window.limit {
                let retry_after = global_window.reset_at - now;
                return Decision::Limited { state: state(bucket, &bucket_window, now), retry_after, global: true };
            }
        }
        if bucket_window.used >= bucket_window.limit {
            let retry_after = bucket_window.reset_at - now;
            return Decision::Limited { state: state(bucket, &bucket_window, now), retry_after, global: false };
        }
        if !global_exempt && let Some(global_window) = self.global_window.as_mut() {
            global_window.used += 1;
        }
        let window = self.buckets.get_mut(&key).expect("inserted above");
        window.used += 1;
        Decision::Allowed(state(bucket, window, now))
    }

    /// The bucket's state without counting a request (for answers that are not the route's own: 401, 400).
    pub(crate) fn peek(&mut self, bucket: &str, major: &str, limit: Limit) -> BucketState {
        let now = Instant::now();
        let window =
            self.buckets.entry((bucket.to_string(), major.to_string())).or_insert_with(|| Window::fresh(limit, now));
        window.roll(limit, now);
        state(bucket, window, now)
    }

    /// Exhausts a bucket (or the global window) for `retry_after`, so a scripted 429 binds like a real one:
    /// a client that retries before `retry_after` meets a real 429.
    pub(crate) fn exhaust(&mut self, bucket: &str, major: &str, limit: Limit, retry_after: Duration, global: bool) {
        let now = Instant::now();
        let window = if global {
            let global_limit = self.global;
            self.global_window.get_or_insert_with(|| Window::fresh(global_limit, now))
        } else {
            self.buckets.entry((bucket.to_string(), major.to_string())).or_insert_with(|| Window::fresh(limit, now))
        };
        window.used = window.limit;
        window.reset_at = now + retry_after;
    }
}

fn state(bucket: &str, window: &Window, now: Instant) -> BucketState {
    BucketState {
        bucket: bucket.to_string(),
        limit: window.limit,
        remaining: window.limit.saturating_sub(window.used),
        reset_after: window.reset_at.saturating_duration_since(now),
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// The headers Discord sends with every response of a rate-limited route. `X-RateLimit-Scope: user` is
/// sent on successes too: twilight-http 0.18 reads the bucket headers only when a scope is present.
pub(crate) fn write_headers(headers: &mut HeaderMap, state: &BucketState) {
    let reset_after = state.reset_after.as_secs_f64();
    let reset_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()) + reset_after;
    insert(headers, "x-ratelimit-limit", state.limit.to_string());
    insert(headers, "x-ratelimit-remaining", state.remaining.to_string());
    insert(headers, "x-ratelimit-reset", format!("{reset_at:.3}"));
    insert(headers, "x-ratelimit-reset-after", format!("{reset_after:.3}"));
    insert(headers, "x-ratelimit-bucket", state.bucket.clone());
    insert(headers, "x-ratelimit-scope", "user".to_string());
}

/// The extra headers of a 429: whole seconds in `Retry-After` (rounded up), and the global markers.
pub(crate) fn write_limited_headers(headers: &mut HeaderMap, retry_after: Duration, global: bool) {
    insert(headers, "retry-after", retry_after.as_secs_f64().ceil().max(1.0).to_string());
    if global {
        insert(headers, "x-ratelimit-global", "true".to_string());
        insert(headers, "x-ratelimit-scope", "global".to_string());
    }
}

/// `retry_after` of a 429 body: seconds as a float, to the millisecond like Discord.
pub(crate) fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).ceil() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_runs_out_then_refuses() {
        let mut limiter = Limiter::new(Limit::new(50, Duration::from_secs(1)));
        let limit = Limit::new(2, Duration::from_secs(5));
        assert!(matches!(limiter.acquire("b", "1", limit, false), Decision::Allowed(s) if s.remaining == 1));
        assert!(matches!(limiter.acquire("b", "1", limit, false), Decision::Allowed(s) if s.remaining == 0));
        assert!(matches!(limiter.acquire("b", "1", limit, false), Decision::Limited { global: false, .. }));
        // Another major parameter has its own window.
        assert!(matches!(limiter.acquire("b", "2", limit, false), Decision::Allowed(_)));
    }

    #[test]
    fn global_limit_spans_buckets_but_not_exempt_routes() {
        let mut limiter = Limiter::new(Limit::new(2, Duration::from_secs(1)));
        let limit = Limit::new(10, Duration::from_secs(5));
        assert!(matches!(limiter.acquire("a", "1", limit, false), Decision::Allowed(_)));
        assert!(matches!(limiter.acquire("b", "1", limit, false), Decision::Allowed(_)));
        assert!(matches!(limiter.acquire("c", "1", limit, false), Decision::Limited { global: true, .. }));
        assert!(matches!(limiter.acquire("c", "1", limit, true), Decision::Allowed(_)));
    }
}

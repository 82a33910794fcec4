//! The market feed's health as the dashboard shows it: the plain [`FeedStatus`] the app reports through a
//! [`FeedStatusSource`] (the web crate cannot see the app's feed), the banner lines every signed-in page
//! carries while the feed is unhealthy, and `GET /api/feed`.

use crate::WebState;
use crate::error::{ApiError, AppError};
use crate::session::CurrentUser;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Stale pairs named one by one on the banner; the rest are counted.
const BANNER_PAIRS: usize = 5;

/// Where the feed's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedState {
    /// Receiving.
    Up,
    /// Started and not connected yet.
    Connecting,
    /// Lost its vendor and retrying.
    Down,
}

impl FeedState {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Up => "up",
            FeedState::Connecting => "connecting",
            FeedState::Down => "down",
        }
    }
}

/// A subscribed (symbol, timeframe) whose newest candle is more than two timeframes of trading time old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StalePair {
    pub symbol: String,
    pub timeframe: String,
    /// Close time of the newest candle seen; `None`: none since the feed started watching the pair.
    pub last_candle_close: Option<DateTime<Utc>>,
    /// Since when the pair has been waiting: the newest close, or when it was first watched.
    pub since: DateTime<Utc>,
}

/// The feed's health at `checked_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedStatus {
    /// `binance`, `replay`, …
    pub feed: String,
    pub state: FeedState,
    /// When the feed entered `state`.
    pub since: DateTime<Utc>,
    /// Why it is down, in words fit for a user (no URLs with credentials, no error chains).
    pub problem: Option<String>,
    /// False when the feed has been down (or not connected) longer than its grace, or any pair is stale.
    pub healthy: bool,
    pub stale: Vec<StalePair>,
    pub checked_at: DateTime<Utc>,
}

impl FeedStatus {
    /// What the banner says, one line each; empty while healthy.
    pub fn banner_lines(&self) -> Vec<String> {
        if self.healthy {
            return Vec::new();
        }
        let when = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let mut lines = Vec::new();
        match self.state {
            FeedState::Down => lines.push(format!(
                "Market data from {} is down since {}: {}",
                self.feed,
                when(&self.since),
                self.problem.as_deref().unwrap_or("the connection was lost")
            )),
            FeedState::Connecting if self.stale.is_empty() => {
                lines.push(format!("Market data from {} has not connected since {}", self.feed, when(&self.since)))
            }
            _ => {}
        }
        for pair in self.stale.iter().take(BANNER_PAIRS) {
            lines.push(format!("No {} {} candle since {}", pair.symbol, pair.timeframe, when(&pair.since)));
        }
        if self.stale.len() > BANNER_PAIRS {
            lines.push(format!("… and {} more pairs without recent candles", self.stale.len() - BANNER_PAIRS));
        }
        lines
    }
}

/// Whoever knows the feed's health; the app implements it. Asked on every signed-in request, so it must be
/// cheap and must not block on I/O.
pub trait FeedStatusSource: Send + Sync + std::fmt::Debug {
    fn feed_status(&self) -> FeedStatus;
}

pub fn routes() -> Router<WebState> {
    Router::new().route("/api/feed", get(feed))
}

/// `GET /api/feed`: the feed's health; 404 when the dashboard runs without a feed (in tests of the pages
/// alone).
async fn feed(State(state): State<WebState>, _user: CurrentUser) -> Result<Json<FeedStatus>, ApiError> {
    match &state.feed {
        Some(source) => Ok(Json(source.feed_status())),
        None => Err(ApiError(AppError::NotConfigured("no market feed is attached to this dashboard"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn status(state: FeedState, healthy: bool, stale: usize) -> FeedStatus {
        FeedStatus {
            feed: "binance".into(),
            state,
            since: at("2026-11-22T00:05:00Z"),
            problem: (state == FeedState::Down).then(|| "the connection ended".into()),
            healthy,
            stale: (0..stale)
                .map(|i| StalePair {
                    symbol: format!("PAIR{i}"),
                    timeframe: "1h".into(),
                    last_candle_close: None,
                    since: at("2026-11-21T22:00:00Z"),
                })
                .collect(),
            checked_at: at("2026-11-22T01:00:00Z"),
        }
    }

    #[test]
    fn a_healthy_feed_has_no_banner_and_an_unhealthy_one_says_why() {
        assert!(status(FeedState::Down, true, 0).banner_lines().is_empty());
        assert_eq!(
            status(FeedState::Down, false, 1).banner_lines(),
            vec![
                "Market data from binance is down since 2026-11-22 00:05 UTC: the connection ended".to_string(),
                "No PAIR0 1h candle since 2026-11-21 22:00 UTC".to_string(),
            ]
        );
        let many = status(FeedState::Up, false, 7).banner_lines();
        assert_eq!(many.len(), BANNER_PAIRS + 1);
        assert_eq!(many.last().unwrap(), "… and 2 more pairs without recent candles");
    }
}

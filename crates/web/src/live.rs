//! `/live`: server-sent events with the signed-in user's open trades at the latest prices, for the
//! overview. A snapshot is sent at once, then whenever it changes: the bus's TradeOpened / TradeClosed /
//! TradeCancelled events for this user wake it at once, and a short interval picks up price moves (and, when
//! the dashboard has no bus, opens and closes too).

use crate::WebState;
use crate::overview::{LiveSnapshot, live_snapshot};
use crate::session::CurrentUser;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use bus::Subscription;
use std::convert::Infallible;
use std::time::Duration;

/// How often prices are re-read between bus events.
pub const PRICE_INTERVAL: Duration = Duration::from_secs(2);

pub const SCRIPT: &str = include_str!("../static/live.js");

pub fn routes() -> Router<WebState> {
    Router::new().route("/live", get(live)).route(
        "/static/live.js",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                SCRIPT,
            )
                .into_response()
        }),
    )
}

struct Feed {
    state: WebState,
    user: CurrentUser,
    events: Option<Box<dyn Subscription>>,
    last: Option<LiveSnapshot>,
}

impl Feed {
    /// Waits for a reason to look again: an event about one of this user's trades, or the interval.
    async fn wake(&mut self) {
        let me = self.user.id();
        let Some(events) = self.events.as_mut() else {
            tokio::time::sleep(PRICE_INTERVAL).await;
            return;
        };
        let wait = async {
            loop {
                match events.next().await {
                    Ok(bus::Event::TradeOpened { trade })
                    | Ok(bus::Event::TradeClosed { trade })
                    | Ok(bus::Event::TradeCancelled { trade })
                        if trade.user_id == me =>
                    {
                        return true;
                    }
                    Ok(_) => continue,
                    // Missed events: the snapshot re-reads the store anyway.
                    Err(bus::BusError::Lagged(_)) => return true,
                    Err(_) => return false,
                }
            }
        };
        tokio::select! {
            alive = wait => if !alive { self.events = None },
            () = tokio::time::sleep(PRICE_INTERVAL) => {}
        }
    }
}

async fn live(axum::extract::State(state): axum::extract::State<WebState>, user: CurrentUser) -> impl IntoResponse {
    let events = match &state.bus {
        Some(bus) => bus.subscribe().await.map_err(|e| tracing::warn!(error = %e, "live P&L without the bus")).ok(),
        None => None,
    };
    let feed = Feed { state, user, events, last: None };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if feed.last.is_some() {
                feed.wake().await;
            }
            match live_snapshot(&feed.state, &feed.user).await {
                Ok(snapshot) if feed.last.as_ref() != Some(&snapshot) => {
                    let event = Event::default().event("pnl").json_data(&snapshot).ok();
                    feed.last = Some(snapshot);
                    if let Some(event) = event {
                        return Some((Ok::<Event, Infallible>(event), feed));
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not price the live overview; trying again");
                    if feed.last.is_none() {
                        // Nothing was sent yet: wait an interval instead of spinning.
                        tokio::time::sleep(PRICE_INTERVAL).await;
                    }
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

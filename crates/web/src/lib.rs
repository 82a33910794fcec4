//! Signalpost's dashboard: server-rendered pages (askama), sign-in (a local password, a one-time link, or
//! Discord OAuth2), sessions stored in the database, and CSRF protection for every form.
//!
//! [`router`] gives an `axum::Router` the app merges into its HTTP listener. Every page module takes
//! [`WebState`] and the [`CurrentUser`] or [`AdminUser`] extractor; every POST passes the CSRF check in
//! [`csrf`] before its handler runs. `README.md` beside this crate says how to add a page.

pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod bootstrap;
pub mod csrf;
pub mod data_api;
pub mod error;
pub mod feed_status;
pub mod following;
pub mod inbox;
pub mod layout;
pub mod link_code;
pub mod live;
pub mod oauth;
pub mod overview;
pub mod password;
pub mod providers_page;
pub mod session;
pub mod session_cache;
pub mod settings;
pub mod stats_page;
pub mod tokens;
pub mod trades;
pub mod views;
pub mod webhooks;

pub use error::{ApiError, AppError};
pub use session::{AdminUser, CurrentUser};

use axum::Router;
use domain::Clock;
use std::sync::Arc;
use store::Store;

/// Discord's OAuth2 application, for "Sign in with Discord".
#[derive(Clone)]
pub struct DiscordOAuthConfig {
    pub client_id: String,
    pub client_secret: String,
    /// `https://discord.com`, or a fake: the authorize page is `{base}/oauth2/authorize`, the token endpoint
    /// `{base}/api/oauth2/token` and the user `{base}/api/v10/users/@me`.
    pub base_url: String,
}

impl std::fmt::Debug for DiscordOAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordOAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// What the dashboard needs from configuration.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where people reach the dashboard, without a trailing slash: links and the OAuth redirect start here,
    /// and an `https` URL makes the session cookie `Secure`.
    pub public_url: String,
    /// `None`: Discord sign-in is off and its routes say so.
    pub discord_oauth: Option<DiscordOAuthConfig>,
    /// The TradingView webhook's shared secret; `None`: `POST /webhooks/tradingview` refuses every alert.
    pub tradingview_secret: Option<webhooks::WebhookSecret>,
}

impl WebConfig {
    pub fn new(public_url: &str) -> WebConfig {
        WebConfig {
            public_url: public_url.trim_end_matches('/').to_string(),
            discord_oauth: None,
            tradingview_secret: None,
        }
    }

    /// Cookies are `Secure` exactly when the dashboard is served over TLS; on plain `http://127.0.0.1`
    /// a Secure cookie would never come back and nobody could sign in.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Everything a dashboard handler can reach.
#[derive(Debug, Clone)]
pub struct WebState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<WebConfig>,
    /// For the Discord OAuth token exchange and `users/@me`. Redirects are off: an OAuth client must not
    /// follow them (a redirected token request could hand the code to someone else).
    pub(crate) http: reqwest::Client,
    pub(crate) login_failures: Arc<auth::FailureLimiter>,
    /// Where trades opened or closed from the dashboard are announced, and what the live overview listens
    /// to. `None` (see [`WebState::with_bus`]): the monitor still finds the trades in the store, and the live
    /// overview falls back to re-reading them on its interval.
    pub bus: Option<Arc<dyn bus::Bus>>,
    /// `/api/trades` pages already serialised, valid while the user's trades version is unchanged.
    pub(crate) trade_pages: Arc<data_api::TradePageCache>,
    /// Session contexts recently read, so most requests skip the session query (see [`session_cache`]).
    pub(crate) sessions: Arc<session_cache::SessionCache>,
    /// Seals broker keys typed on `/following` before they are stored. `None` (see [`WebState::with_cipher`]):
    /// a follow that needs keys is refused with a message, and paper follows still work.
    pub cipher: Option<Arc<store::vault::KeyCipher>>,
    /// The market feed's health, for the banner on every signed-in page and `GET /api/feed`. `None` (see
    /// [`WebState::with_feed_status`]): no banner, and `/api/feed` answers 404.
    pub feed: Option<Arc<dyn feed_status::FeedStatusSource>>,
}

impl WebState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: WebConfig) -> Result<WebState, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()?;
        Ok(WebState {
            store,
            clock,
            config: Arc::new(config),
            http,
            login_failures: Arc::new(auth::FailureLimiter::default()),
            bus: None,
            trade_pages: Arc::new(data_api::TradePageCache::default()),
            sessions: Arc::new(session_cache::SessionCache::default()),
            cipher: None,
            feed: None,
        })
    }

    /// The app's bus, for announcing dashboard trades and driving the live overview.
    pub fn with_bus(mut self, bus: Arc<dyn bus::Bus>) -> WebState {
        self.bus = Some(bus);
        self
    }

    /// The key that seals broker credentials (`SIGNALPOST_SECRET_KEY`).
    pub fn with_cipher(mut self, cipher: Arc<store::vault::KeyCipher>) -> WebState {
        self.cipher = Some(cipher);
        self
    }

    /// Where the market feed's health comes from (the app's feed health monitor).
    pub fn with_feed_status(mut self, source: Arc<dyn feed_status::FeedStatusSource>) -> WebState {
        self.feed = Some(source);
        self
    }

    /// Announces an event; a failure is logged, not returned: the store already has the fact and every
    /// consumer reconciles from it.
    pub(crate) async fn announce(&self, event: bus::Event) {
        if let Some(bus) = &self.bus
            && let Err(error) = bus.publish(event).await
        {
            tracing::warn!(%error, "could not announce a dashboard change; consumers will find it in the store");
        }
    }
}

/// The dashboard's routes, with their state applied, ready to merge into the app's router.
pub fn router(state: WebState) -> Router {
    Router::new()
        .merge(auth::routes())
        .merge(settings::routes())
        .merge(admin::routes())
        .merge(api::routes())
        .merge(overview::routes())
        .merge(live::routes())
        .merge(inbox::routes())
        .merge(trades::routes())
        .merge(stats_page::routes())
        .merge(data_api::routes())
        .merge(assets::routes())
        .merge(providers_page::routes())
        .merge(following::routes())
        .merge(feed_status::routes())
        // Runs before every handler above: a POST without the session's CSRF token never reaches one.
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::require_token))
        .layer(axum::middleware::from_fn(layout::security_headers))
        // Webhooks are called by other servers with their own secret, never by a browser session, so they
        // sit outside the CSRF check.
        .merge(webhooks::routes())
        .with_state(state)
}

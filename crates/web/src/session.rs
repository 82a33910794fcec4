//! Dashboard sessions: a random token in an HttpOnly, SameSite=Lax cookie, stored in the database only as
//! its SHA-256 together with the session's CSRF token. A session without a user is a pre-session: it
//! carries the sign-in form's CSRF token and a Discord sign-in's OAuth state.
//!
//! [`CurrentUser`] is the extractor every data page and API handler takes: without a signed-in session a
//! page answers with a redirect to `/login?next=…` and an `/api/…` route with 401, before the handler runs.
//!
//! The session is looked up through [`session_cache`](crate::session_cache): a sign-out, password change or
//! trade write made by this process is seen on the very next request, one made by another process (the
//! command line's `users set-password`, a second server) within [`TTL`](crate::session_cache::TTL).

use crate::error::AppError;
use crate::tokens::{hash_token, random_token};
use crate::{WebConfig, WebState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use domain::UserId;
use std::sync::Arc;
use store::generations::Generations;
use store::{NewWebSession, OAuthPending, Role, SessionContext, User, WebSession};

/// The session cookie's name.
pub const COOKIE: &str = "signalpost_session";
const PURPOSE: &str = "signalpost session";
/// A signed-in session ends after this long without a visit...
pub const IDLE_LIFETIME: Duration = Duration::days(7);
/// ...and at the latest this long after sign-in, however busy.
pub const MAX_LIFETIME: Duration = Duration::days(30);
/// A sign-in form or a Discord round trip must finish within this.
pub const PRE_SESSION_LIFETIME: Duration = Duration::hours(1);
/// `last_seen` is written at most this often, so reading a page is not a database write every time.
const TOUCH_EVERY: Duration = Duration::minutes(5);

/// The session (with its user and trades version) the CSRF middleware already looked up for this request
/// (`None`: no valid session).
#[derive(Debug, Clone)]
pub(crate) struct LoadedSession(pub Option<Arc<SessionContext>>);

/// The session token the browser sent, if any.
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    token_in_headers(headers).map(str::to_string)
}

/// [`token_from_headers`] without the copy, for the per-request lookup.
fn token_in_headers(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The stored id of a session token.
pub fn id_hash(token: &str) -> String {
    hash_token(PURPOSE, token)
}

/// The unexpired session the request's cookie names.
pub async fn load(state: &WebState, headers: &HeaderMap) -> Result<Option<WebSession>, AppError> {
    Ok(load_context(state, headers).await?.map(|c| c.session.clone()))
}

/// The unexpired session the request's cookie names, with its user and their trades version (one query
/// when not cached). A session ended or revoked by this process (sign-out, a password change, a
/// `delete_user_web_sessions`) is refused on its very next request; one ended by another process (a
/// password set from the command line, another server's sign-out) within [`TTL`](crate::session_cache::TTL).
pub async fn load_context(state: &WebState, headers: &HeaderMap) -> Result<Option<Arc<SessionContext>>, AppError> {
    let Some(token) = token_in_headers(headers) else { return Ok(None) };
    let id_hash = id_hash(token);
    let now = state.clock.now();
    if let Some(context) = state.sessions.get(&id_hash, now) {
        return Ok(Some(context));
    }
    // Loaded before the read: a write that commits while the query runs bumps past these, so the entry
    // cannot outlive it.
    let generations = Generations::now();
    match state.store.web_session_context(&id_hash, now).await? {
        Some(context) => {
            let context = Arc::new(context);
            state.sessions.put(id_hash, context.clone(), now, generations);
            Ok(Some(context))
        }
        None => {
            state.sessions.forget(&id_hash);
            Ok(None)
        }
    }
}

/// The session of this request: the one the middleware loaded, or a fresh lookup.
async fn context_of_request(parts: &Parts, state: &WebState) -> Result<Option<Arc<SessionContext>>, AppError> {
    match parts.extensions.get::<LoadedSession>() {
        Some(LoadedSession(context)) => Ok(context.clone()),
        None => load_context(state, &parts.headers).await,
    }
}

/// The session of this request: the one the middleware loaded, or a fresh lookup.
pub(crate) async fn of_request(parts: &Parts, state: &WebState) -> Result<Option<WebSession>, AppError> {
    Ok(context_of_request(parts, state).await?.map(|c| c.session.clone()))
}

fn cookie(config: &WebConfig, value: &str, max_age_seconds: i64) -> HeaderValue {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}");
    // Tokens are hex, so the header is always valid ASCII.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(config: &WebConfig) -> HeaderValue {
    cookie(config, "", 0)
}

/// A session just stored: its row and the `Set-Cookie` header that hands its token to the browser.
#[derive(Debug)]
pub struct Started {
    pub session: WebSession,
    pub set_cookie: HeaderValue,
}

async fn start(
    state: &WebState,
    user_id: Option<UserId>,
    oauth: Option<OAuthPending>,
    next_path: Option<String>,
    lifetime: Duration,
) -> Result<Started, AppError> {
    let now = state.clock.now();
    // Sweeping here keeps the table bounded by recent sign-ins without a background task.
    if let Err(error) = state.store.delete_expired_web_sessions(now).await {
        tracing::warn!(%error, "could not delete expired web sessions");
    }
    let token = random_token()?;
    let new = NewWebSession {
        id_hash: id_hash(&token),
        user_id,
        csrf_token: random_token()?,
        oauth,
        next_path,
        created_at: now,
        expires_at: now + lifetime,
    };
    state.store.create_web_session(&new).await?;
    let session = WebSession {
        id_hash: new.id_hash,
        user_id,
        csrf_token: new.csrf_token,
        oauth: new.oauth,
        next_path: new.next_path,
        created_at: now,
        expires_at: new.expires_at,
        last_seen: now,
    };
    Ok(Started { session, set_cookie: cookie(&state.config, &token, lifetime.num_seconds()) })
}

/// Signs `user` in with a brand-new session. The pre-session (if any) is ended by the caller, so a session
/// id planted before sign-in never becomes a signed-in one.
pub async fn start_user_session(state: &WebState, user: UserId) -> Result<Started, AppError> {
    start(state, Some(user), None, None, IDLE_LIFETIME).await
}

/// A session for someone not signed in yet.
pub async fn start_pre_session(
    state: &WebState,
    oauth: Option<OAuthPending>,
    next_path: Option<String>,
) -> Result<Started, AppError> {
    start(state, None, oauth, next_path, PRE_SESSION_LIFETIME).await
}

/// Moves a signed-in session's expiry forward, at most every few minutes and never past its maximum.
async fn touch(state: &WebState, session: &WebSession, now: DateTime<Utc>) {
    if now - session.last_seen < TOUCH_EVERY {
        return;
    }
    let expires_at = (now + IDLE_LIFETIME).min(session.created_at + MAX_LIFETIME);
    if let Err(error) = state.store.touch_web_session(&session.id_hash, now, expires_at).await {
        tracing::warn!(%error, "could not extend a web session");
    }
}

/// A local path to return to after sign-in; anything else (another host, `//evil`, `/\evil`) becomes `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control)
                && path.len() <= 512 =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Why a request did not get a user: pages go to sign-in, the API gets 401, and neither carries data.
#[derive(Debug)]
pub enum AuthRejection {
    SignIn { next: String },
    Unauthorized,
    NotAdmin { api: bool },
    Failed { error: AppError, api: bool },
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::SignIn { next } => {
                Redirect::to(&format!("/login?next={}", url_encode(&next))).into_response()
            }
            AuthRejection::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({ "error": "sign in first: this route needs a dashboard session" })),
            )
                .into_response(),
            AuthRejection::NotAdmin { api } => {
                let error = AppError::Forbidden("This page needs the admin role.");
                if api { crate::error::ApiError(error).into_response() } else { error.into_response() }
            }
            AuthRejection::Failed { error, api } => {
                if api {
                    crate::error::ApiError(error).into_response()
                } else {
                    error.into_response()
                }
            }
        }
    }
}

/// The signed-in user of a request, and their session (whose CSRF token every form must carry).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session: WebSession,
    /// The user's trades version read with the session (see [`SessionContext`]), before any page data:
    /// what a cached page of their trades must match to be served.
    pub trades_version: i64,
    /// What the market-data banner says on this request's page; empty while the feed is healthy.
    pub feed_alerts: Vec<String>,
}

impl CurrentUser {
    pub fn id(&self) -> UserId {
        self.user.id
    }

    pub fn csrf_token(&self) -> &str {
        &self.session.csrf_token
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

impl FromRequestParts<WebState> for CurrentUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let api = is_api(parts.uri.path());
        let failed = |error: AppError| AuthRejection::Failed { error, api };
        let context = context_of_request(parts, state).await.map_err(failed)?;
        match context.as_deref() {
            Some(SessionContext { session, user: Some(user), trades_version }) if session.user_id == Some(user.id) => {
                touch(state, session, state.clock.now()).await;
                let feed_alerts = state.feed.as_ref().map(|f| f.feed_status().banner_lines()).unwrap_or_default();
                Ok(CurrentUser {
                    user: user.clone(),
                    session: session.clone(),
                    trades_version: *trades_version,
                    feed_alerts,
                })
            }
            _ if api => Err(AuthRejection::Unauthorized),
            _ => {
                let next = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                Err(AuthRejection::SignIn { next })
            }
        }
    }
}

/// The request's session, signed in or not (`None`: no valid session). For the sign-in pages.
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<WebSession>);

impl FromRequestParts<WebState> for MaybeSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        Ok(MaybeSession(of_request(parts, state).await?))
    }
}

/// A signed-in user with the admin role; anyone else signed in gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequestParts<WebState> for AdminUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(AdminUser(user))
        } else {
            Err(AuthRejection::NotAdmin { api: is_api(parts.uri.path()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/settings?x=1")), "/settings?x=1");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "settings", "/a\nb"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; signalpost_session=abc123; b=2"));
        assert_eq!(token_from_headers(&headers).as_deref(), Some("abc123"));
        headers.insert(header::COOKIE, HeaderValue::from_static("other=1"));
        assert_eq!(token_from_headers(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_and_lax_and_secure_over_https() {
        let plain = cookie(&WebConfig::new("http://127.0.0.1:8080"), "t", 60);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax") && plain.contains("Path=/"));
        assert!(!plain.contains("Secure"));
        let tls = cookie(&WebConfig::new("https://signals.example/"), "t", 60);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
    }
}

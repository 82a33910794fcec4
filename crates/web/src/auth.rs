//! Local sign-in: `/login` (username and password), `/login/link/{token}` (a one-time link), `/logout`.
//!
//! Every successful sign-in ends the pre-session and starts a brand-new session, so a session id someone
//! planted in the browser before sign-in never becomes a signed-in one. A failed sign-in says the same
//! thing whether the username exists or not, and costs the same argon2 work.

use crate::error::AppError;
use crate::layout::Layout;
use crate::session::{self, MaybeSession, Started, safe_next};
use crate::{WebState, bootstrap, password};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use store::{Store, StoreError, WebSession};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/link/{token}", get(link_page).post(link_sign_in))
        .route("/logout", post(logout))
        .route("/auth/discord", get(crate::oauth::start))
        .route("/auth/discord/callback", get(crate::oauth::callback))
}

/// Failed sign-ins a username may have within [`FAILURE_WINDOW`] before further tries are refused.
pub const MAX_FAILURES: usize = 10;
pub const FAILURE_WINDOW: Duration = Duration::minutes(1);

/// Failed sign-ins per username in the last [`FAILURE_WINDOW`], kept in the store so every process on the
/// database sees the same count: a guesser spread over several processes gets no more tries than one talking
/// to a single process. Times come from the app's clock.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter { max_failures: MAX_FAILURES, window: FAILURE_WINDOW }
    }
}

impl FailureLimiter {
    /// Usernames are counted as typed but trimmed and lower-cased, so `Ann ` and `ann` share one count.
    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    pub async fn is_locked(&self, store: &dyn Store, username: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let failures = store.sign_in_failures_since(&Self::key(username), now - self.window).await?;
        Ok(failures as usize >= self.max_failures)
    }

    pub async fn record(&self, store: &dyn Store, username: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        // Forgetting what is older than the window keeps the table as small as the last minute's guessing.
        store.record_sign_in_failure(&Self::key(username), now, now - self.window).await
    }

    pub async fn clear(&self, store: &dyn Store, username: &str) -> Result<(), StoreError> {
        store.clear_sign_in_failures(&Self::key(username)).await.map(|_| ())
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    username: String,
    error: Option<String>,
    discord: bool,
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    layout: Layout,
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("username", &self.username).field("next", &self.next).finish_non_exhaustive()
    }
}

/// The pre-session to render a sign-in form with: the request's own, or a new one (with its cookie).
async fn pre_session(
    state: &WebState,
    current: Option<WebSession>,
) -> Result<(WebSession, Option<HeaderValue>), AppError> {
    match current {
        Some(session) => Ok((session, None)),
        None => {
            let Started { session, set_cookie } = session::start_pre_session(state, None, None).await?;
            Ok((session, Some(set_cookie)))
        }
    }
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn render_login(
    state: &WebState,
    session: &WebSession,
    next: &str,
    username: &str,
    error: Option<String>,
) -> Result<String, AppError> {
    Ok(LoginPage {
        layout: Layout::anonymous("Sign in", &session.csrf_token),
        next: next.to_string(),
        username: username.to_string(),
        error,
        discord: state.config.discord_oauth.is_some(),
    }
    .render()?)
}

async fn login_page(
    State(state): State<WebState>,
    MaybeSession(current): MaybeSession,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = safe_next(query.next.as_deref());
    if current.as_ref().is_some_and(|s| s.user_id.is_some()) {
        return Ok(Redirect::to(&next).into_response());
    }
    let (session, cookie) = pre_session(&state, current).await?;
    let html = render_login(&state, &session, &next, "", None)?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

/// Ends the request's previous session (if any) and signs `user` in, then sends the browser to `next`.
pub(crate) async fn sign_in(
    state: &WebState,
    previous: Option<&WebSession>,
    user: domain::UserId,
    next: &str,
) -> Result<Response, AppError> {
    if let Some(previous) = previous {
        state.store.take_web_session(&previous.id_hash).await?;
    }
    let started = session::start_user_session(state, user).await?;
    tracing::info!(user = %user, "signed in to the dashboard");
    Ok(with_cookie(Redirect::to(next).into_response(), Some(started.set_cookie)))
}

async fn login(
    State(state): State<WebState>,
    MaybeSession(current): MaybeSession,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    // The CSRF middleware let this through, so there is a session.
    let Some(session) = current else { return Err(AppError::Forbidden("Reload the sign-in page and try again.")) };
    let next = safe_next(form.next.as_deref());
    let now = state.clock.now();
    let username = form.username.trim();
    if state.login_failures.is_locked(state.store.as_ref(), username, now).await? {
        let html = render_login(
            &state,
            &session,
            &next,
            username,
            Some("Too many failed sign-ins for this username. Wait a minute and try again.".into()),
        )?;
        return Ok((StatusCode::TOO_MANY_REQUESTS, Html(html)).into_response());
    }
    let credentials =
        if username.is_empty() { None } else { state.store.local_credentials_by_username(username).await? };
    let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
    if password::verify(form.password, stored).await
        && let Some(credentials) = credentials
    {
        state.login_failures.clear(state.store.as_ref(), username).await?;
        return sign_in(&state, Some(&session), credentials.user_id, &next).await;
    }
    state.login_failures.record(state.store.as_ref(), username, now).await?;
    let html = render_login(&state, &session, &next, username, Some("Wrong username or password.".into()))?;
    Ok((StatusCode::UNAUTHORIZED, Html(html)).into_response())
}

/// A link is confirmed with a button rather than redeemed on GET: chat apps and mail scanners fetch links
/// to preview them, and must not spend (or use) a sign-in.
async fn link_page(
    State(state): State<WebState>,
    MaybeSession(current): MaybeSession,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let current = current.filter(|s| s.user_id.is_none());
    let (session, cookie) = pre_session(&state, current).await?;
    let page = LinkPage { layout: Layout::anonymous("Sign in", &session.csrf_token), token };
    Ok(with_cookie(Html(page.render()?).into_response(), cookie))
}

async fn link_sign_in(
    State(state): State<WebState>,
    MaybeSession(current): MaybeSession,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let now = state.clock.now();
    match state.store.redeem_sign_in_token(&bootstrap::hash_sign_in_token(&token), now).await? {
        Some(user) => sign_in(&state, current.as_ref(), user, "/").await,
        None => Err(AppError::BadRequest(
            "This sign-in link does not work: it was already used, replaced by a newer one, or has expired. \
             Run `signalpost users sign-in-link <user>` on the server for a new one."
                .into(),
        )),
    }
}

async fn logout(State(state): State<WebState>, MaybeSession(current): MaybeSession) -> Result<Response, AppError> {
    if let Some(session) = current {
        state.store.take_web_session(&session.id_hash).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, session::clear_cookie(&state.config));
    Ok(response)
}

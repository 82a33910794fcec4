//! CSRF protection for every state-changing request to the dashboard.
//!
//! Each session (a pre-session too, so the sign-in form is covered) has a random token. Every form carries
//! it in the hidden field [`FIELD`]; a script may send it in the [`HEADER`] header instead. The middleware
//! checks it for every method other than GET/HEAD/OPTIONS *before* routing reaches a handler, so a page
//! module cannot forget the check: a missing or wrong token is 403 and nothing runs.
//!
//! The middleware also loads the session once per request and leaves it in the request's extensions for
//! the [`CurrentUser`](crate::CurrentUser) extractor.

use crate::WebState;
use crate::error::{ApiError, AppError};
use crate::session::{LoadedSession, load_context};
use crate::tokens::constant_time_eq;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The hidden form field that carries the token.
pub const FIELD: &str = "csrf_token";
/// The header a script sends the token in.
pub const HEADER: &str = "x-csrf-token";
/// Dashboard forms are small; anything bigger is refused before it is buffered.
const MAX_FORM_BYTES: usize = 64 * 1024;

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn refuse(path: &str, error: AppError) -> Response {
    if path.starts_with("/api/") { ApiError(error).into_response() } else { error.into_response() }
}

/// The token in a form-encoded body, if any.
fn token_in_form(body: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(name, _)| name == FIELD).map(|(_, value)| value)
}

pub async fn require_token(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/static/") {
        return next.run(request).await;
    }
    let context = match load_context(&state, request.headers()).await {
        Ok(context) => context,
        Err(error) => return refuse(&path, error),
    };
    let mut request = if is_safe(request.method()) {
        request
    } else {
        let from_header = request.headers().get(HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return refuse(&path, AppError::BadRequest("That form is too large.".into()));
        };
        let submitted = from_header.or_else(|| if is_form { token_in_form(&bytes) } else { None });
        let valid = match (&context, &submitted) {
            (Some(context), Some(token)) => constant_time_eq(&context.session.csrf_token, token),
            _ => false,
        };
        if !valid {
            tracing::info!(%path, has_session = context.is_some(), "refused a request without a valid CSRF token");
            return refuse(
                &path,
                AppError::Forbidden(
                    "This form has expired or did not come from this dashboard, so nothing was changed. \
                     Reload the page and try again.",
                ),
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    request.extensions_mut().insert(LoadedSession(context));
    next.run(request).await
}

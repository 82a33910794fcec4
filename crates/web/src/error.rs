//! The one error type dashboard handlers return. Its response hides internals: a store or template failure
//! is logged with its cause and the person sees a generic page (or, from `/api`, a generic JSON error).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database error")]
    Store(#[from] store::StoreError),
    #[error("template error")]
    Template(#[from] askama::Error),
    #[error(transparent)]
    Randomness(#[from] crate::tokens::NoRandomness),
    /// Something else broke; the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("not found")]
    NotFound,
    /// A feature this server was not configured for. The text is shown.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// An outside service (Discord) failed us; the text is for the log only.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// Signed in, but not allowed (the admin pages, a CSRF failure). The text is shown.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request itself was wrong. The text is shown, so it must not carry internals.
    #[error("{0}")]
    BadRequest(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Store(_) | AppError::Template(_) | AppError::Randomness(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            AppError::NotFound | AppError::NotConfigured(_) => StatusCode::NOT_FOUND,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// What the person may read: the cause of a server-side failure stays in the log.
    pub fn public_message(&self) -> String {
        match self {
            AppError::NotFound => "There is nothing here.".into(),
            AppError::Forbidden(text) | AppError::NotConfigured(text) => (*text).into(),
            AppError::Upstream(_) => "Discord did not answer as expected, so you are not signed in. Try again.".into(),
            AppError::BadRequest(text) => text.clone(),
            _ => "Something went wrong on our side. It has been logged; please try again.".into(),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(self), "dashboard request failed");
        } else {
            tracing::debug!(error = %self, "dashboard request refused");
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: &'static str,
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.public_message(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(%error, "the error page itself failed to render");
                (status, "Something went wrong.").into_response()
            }
        }
    }
}

/// [`AppError`] answered as JSON, for `/api/…`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(error: E) -> Self {
        ApiError(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        (self.0.status(), axum::Json(serde_json::json!({ "error": self.0.public_message() }))).into_response()
    }
}

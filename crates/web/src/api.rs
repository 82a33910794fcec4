//! The dashboard's JSON API under `/api/`. Without a session every route answers 401 before its handler
//! runs (see [`CurrentUser`]); a POST needs the session's CSRF token in the `X-CSRF-Token` header.

use crate::WebState;
use crate::error::ApiError;
use crate::session::CurrentUser;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub fn routes() -> Router<WebState> {
    Router::new().route("/api/me", get(me))
}

#[derive(Debug, Serialize)]
pub struct Me {
    pub id: domain::UserId,
    pub display_name: String,
    pub role: store::Role,
    pub discord_linked: bool,
    /// For scripts that POST: the value of the `X-CSRF-Token` header.
    pub csrf_token: String,
}

/// `GET /api/me`: who the session belongs to.
async fn me(State(_state): State<WebState>, user: CurrentUser) -> Result<Json<Me>, ApiError> {
    Ok(Json(Me {
        id: user.user.id,
        display_name: user.user.display_name.clone(),
        role: user.user.role,
        discord_linked: user.user.discord_user_id.is_some(),
        csrf_token: user.session.csrf_token.clone(),
    }))
}

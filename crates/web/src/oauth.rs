//! "Sign in with Discord": OAuth2 authorization code with PKCE and the `identify` scope.
//!
//! `/auth/discord` starts a fresh pre-session holding a random `state` and the PKCE verifier, and sends the
//! browser to Discord. `/auth/discord/callback` takes (deletes) that pre-session whatever happens next, so
//! a callback works once; the `state` Discord hands back must equal the stored one, or nothing is stored.
//! Then the code is exchanged for a token, `users/@me` names the Discord account, and the Signalpost user
//! linked to it (created on first sight) is signed in.

use crate::error::AppError;
use crate::session::{self, MaybeSession, safe_next};
use crate::tokens::constant_time_eq;
use crate::{DiscordOAuthConfig, WebState};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use store::OAuthPending;

const NOT_CONFIGURED: &str =
    "Discord sign-in is not configured on this server (DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET are unset).";

fn config(state: &WebState) -> Result<&DiscordOAuthConfig, AppError> {
    state.config.discord_oauth.as_ref().ok_or(AppError::NotConfigured(NOT_CONFIGURED))
}

fn redirect_url(state: &WebState) -> String {
    format!("{}/auth/discord/callback", state.config.public_url)
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

pub async fn start(
    State(state): State<WebState>,
    MaybeSession(current): MaybeSession,
    Query(query): Query<StartQuery>,
) -> Result<Response, AppError> {
    let discord = config(&state)?;
    let next = safe_next(query.next.as_deref());
    if current.as_ref().is_some_and(|s| s.user_id.is_some()) {
        return Ok(Redirect::to(&next).into_response());
    }
    let base = discord.base_url.trim_end_matches('/');
    let auth_url = AuthUrl::new(format!("{base}/oauth2/authorize"))
        .map_err(|e| AppError::Internal(format!("DISCORD_OAUTH_BASE gives a bad authorize URL: {e}")))?;
    let client = BasicClient::new(ClientId::new(discord.client_id.clone())).set_auth_uri(auth_url).set_redirect_uri(
        RedirectUrl::new(redirect_url(&state))
            .map_err(|e| AppError::Internal(format!("the public URL gives a bad redirect URL: {e}")))?,
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("identify".into()))
        .set_pkce_challenge(challenge)
        .url();
    if let Some(previous) = current {
        state.store.take_web_session(&previous.id_hash).await?;
    }
    let pending = OAuthPending { state: csrf_state.secret().clone(), pkce_verifier: verifier.secret().clone() };
    let started = session::start_pre_session(&state, Some(pending), Some(next)).await?;
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().append(header::SET_COOKIE, started.set_cookie);
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The fields of Discord's user object that sign-in uses.
#[derive(Debug, Deserialize)]
struct DiscordUser {
    id: String,
    username: String,
    global_name: Option<String>,
}

pub async fn callback(
    State(state): State<WebState>,
    MaybeSession(current): MaybeSession,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let discord = config(&state)?.clone();
    // Taken, not read: a callback (a replay of it too) gets one chance with this pre-session.
    let pending = match current {
        Some(session) if session.user_id.is_none() => state.store.take_web_session(&session.id_hash).await?,
        _ => None,
    };
    let Some((pending, next)) = pending.and_then(|s| s.oauth.map(|o| (o, s.next_path))) else {
        return Err(AppError::BadRequest(
            "This Discord sign-in was not started in this browser, or took too long. Start again from the sign-in page."
                .into(),
        ));
    };
    if let Some(error) = query.error {
        tracing::info!(%error, "Discord sign-in was declined");
        return Err(AppError::BadRequest("Discord sign-in was cancelled, so you are not signed in.".into()));
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(AppError::BadRequest("Discord's answer lacked its code or state; start again.".into()));
    };
    if !constant_time_eq(&returned_state, &pending.state) {
        tracing::warn!("a Discord sign-in came back with the wrong state");
        return Err(AppError::BadRequest(
            "This Discord sign-in could not be verified (its state does not match), so nothing was done. \
             Start again from the sign-in page."
                .into(),
        ));
    }
    let base = discord.base_url.trim_end_matches('/');
    let token_url = TokenUrl::new(format!("{base}/api/oauth2/token"))
        .map_err(|e| AppError::Internal(format!("DISCORD_OAUTH_BASE gives a bad token URL: {e}")))?;
    let redirect = RedirectUrl::new(redirect_url(&state))
        .map_err(|e| AppError::Internal(format!("the public URL gives a bad redirect URL: {e}")))?;
    let client = BasicClient::new(ClientId::new(discord.client_id.clone()))
        .set_client_secret(ClientSecret::new(discord.client_secret.clone()))
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
        .request_async(&state.http)
        .await
        // The error names the endpoint and Discord's error code, never the secret or the code.
        .map_err(|e| AppError::Upstream(format!("Discord token exchange failed: {e}")))?;
    let me = state
        .http
        .get(format!("{base}/api/v10/users/@me"))
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| AppError::Upstream(format!("Discord users/@me failed: {}", e.without_url())))?
        .json::<DiscordUser>()
        .await
        .map_err(|e| AppError::Upstream(format!("Discord users/@me answered something unreadable: {e}")))?;
    if me.id.is_empty() || !me.id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::Upstream(format!("Discord users/@me gave a non-snowflake id {:?}", me.id)));
    }
    let name = me.global_name.filter(|n| !n.trim().is_empty()).unwrap_or(me.username);
    let user = state.store.ensure_discord_user(&me.id, &name).await?;
    crate::auth::sign_in(&state, None, user.id, &safe_next(next.as_deref())).await
}

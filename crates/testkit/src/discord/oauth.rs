//! [`FakeDiscordOAuth`]: Discord's OAuth2 endpoints on `127.0.0.1:0`, speaking Discord's wire format.
//!
//! - `GET /oauth2/authorize` (the consent page): checks the client id, `response_type=code`, the `identify`
//!   scope, the redirect URI and an S256 PKCE challenge, then redirects straight back to the redirect URI
//!   with a code for the user set by [`FakeDiscordOAuth::authorize_as`] and the caller's `state`, as Discord
//!   does after the person clicks Authorize. Tests that skip it get a code from [`FakeDiscordOAuth::issue_code`].
//! - `POST /api/oauth2/token` (also under `/api/v10`): a form-encoded authorization-code grant with the
//!   client's credentials in HTTP Basic auth or in the body; the code works once, and the redirect URI and
//!   PKCE verifier must match the authorize request. Errors are Discord's `{"error", "error_description"}`.
//! - `GET /api/users/@me` (also under `/api/v10`): the user behind a Bearer token, as Discord's user object.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The client id the fake accepts unless built with another.
pub const CLIENT_ID: &str = "1200000000000000001";
/// The client secret the fake accepts unless built with another.
pub const CLIENT_SECRET: &str = "fake-discord-client-secret";

/// A Discord account the fake signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthUser {
    pub id: String,
    pub username: String,
    pub global_name: Option<String>,
}

impl OAuthUser {
    pub fn new(id: &str, username: &str) -> OAuthUser {
        OAuthUser { id: id.into(), username: username.into(), global_name: None }
    }
}

#[derive(Debug, Clone)]
struct IssuedCode {
    user: OAuthUser,
    /// Set when the code came through `/oauth2/authorize`; then the token request must repeat it.
    redirect_uri: Option<String>,
    /// The S256 challenge of the authorize request.
    challenge: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    codes: HashMap<String, IssuedCode>,
    tokens: HashMap<String, OAuthUser>,
    authorizing: Option<OAuthUser>,
    token_requests: u64,
    refused_token_requests: u64,
}

#[derive(Debug)]
struct Shared {
    client_id: String,
    client_secret: String,
    inner: Mutex<Inner>,
    counter: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self, prefix: &str) -> String {
        format!("{prefix}{:016x}", self.counter.fetch_add(1, Ordering::Relaxed) + 0x9e37_79b9)
    }
}

/// Discord's OAuth2 endpoints; stops when dropped.
#[derive(Debug)]
pub struct FakeDiscordOAuth {
    base_url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeDiscordOAuth {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeDiscordOAuth {
    /// Starts with [`CLIENT_ID`] and [`CLIENT_SECRET`].
    pub async fn start() -> FakeDiscordOAuth {
        FakeDiscordOAuth::start_with(CLIENT_ID, CLIENT_SECRET).await
    }

    pub async fn start_with(client_id: &str, client_secret: &str) -> FakeDiscordOAuth {
        let shared = Arc::new(Shared {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            inner: Mutex::new(Inner::default()),
            counter: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/oauth2/authorize", get(authorize))
            .route("/api/oauth2/token", post(token))
            .route("/api/v10/oauth2/token", post(token))
            .route("/api/users/@me", get(me))
            .route("/api/v10/users/@me", get(me))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake OAuth server");
        let address = listener.local_addr().expect("a local address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(crate::no_delay(listener), app).await;
        });
        FakeDiscordOAuth { base_url: format!("http://{address}"), shared, server }
    }

    /// What `DISCORD_OAUTH_BASE` should be.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.client_secret
    }

    /// The account the authorize page signs in, as if that person clicked Authorize.
    pub fn authorize_as(&self, user: OAuthUser) {
        self.shared.lock().authorizing = Some(user);
    }

    /// A code for `user`, as Discord would hand the redirect after consent (no PKCE or redirect check).
    pub fn issue_code(&self, user: OAuthUser) -> String {
        let code = self.shared.next("code");
        self.shared.lock().codes.insert(code.clone(), IssuedCode { user, redirect_uri: None, challenge: None });
        code
    }

    /// Token requests received, accepted or not.
    pub fn token_requests(&self) -> u64 {
        self.shared.lock().token_requests
    }

    /// Token requests refused (bad client, code, redirect URI or verifier).
    pub fn refused_token_requests(&self) -> u64 {
        self.shared.lock().refused_token_requests
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({ "error": error, "error_description": description }))).into_response()
}

/// base64url without padding, as PKCE uses it.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = decode_base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic auth.
    let unescape = |s: &str| -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
        pairs.into_iter().next().map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

async fn authorize(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let field = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    if field("client_id") != shared.client_id {
        return (StatusCode::BAD_REQUEST, "Unknown application").into_response();
    }
    if field("response_type") != "code" || !field("scope").split(' ').any(|s| s == "identify") {
        return (StatusCode::BAD_REQUEST, "response_type=code and the identify scope are required").into_response();
    }
    if field("code_challenge_method") != "S256" || field("code_challenge").is_empty() {
        return (StatusCode::BAD_REQUEST, "an S256 PKCE challenge is required").into_response();
    }
    let redirect_uri = field("redirect_uri").to_string();
    if !redirect_uri.starts_with("http") {
        return (StatusCode::BAD_REQUEST, "Invalid OAuth2 redirect_uri").into_response();
    }
    let Some(user) = shared.lock().authorizing.clone() else {
        return (StatusCode::FORBIDDEN, "the fake has no user to authorize: call authorize_as first").into_response();
    };
    let code = shared.next("code");
    shared.lock().codes.insert(
        code.clone(),
        IssuedCode {
            user,
            redirect_uri: Some(redirect_uri.clone()),
            challenge: Some(field("code_challenge").to_string()),
        },
    );
    let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", field("state"))]).unwrap_or_default();
    Redirect::to(&format!("{redirect_uri}?{query}")).into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.lock();
    inner.token_requests += 1;
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let refuse = |inner: &mut Inner, status, error, description| {
        inner.refused_token_requests += 1;
        oauth_error(status, error, description)
    };
    let (client_id, client_secret) =
        basic_credentials(&headers).unwrap_or_else(|| (field("client_id"), field("client_secret")));
    if client_id != shared.client_id || client_secret != shared.client_secret {
        return refuse(&mut inner, StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client credentials.");
    }
    if field("grant_type") != "authorization_code" {
        return refuse(&mut inner, StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant type.");
    }
    // A code works once, whatever happens next.
    let Some(issued) = inner.codes.remove(&field("code")) else {
        return refuse(&mut inner, StatusCode::BAD_REQUEST, "invalid_grant", "Invalid \"code\" in request.");
    };
    if let Some(expected) = &issued.redirect_uri
        && *expected != field("redirect_uri")
    {
        return refuse(&mut inner, StatusCode::BAD_REQUEST, "invalid_grant", "Invalid \"redirect_uri\" in request.");
    }
    if let Some(challenge) = &issued.challenge
        && base64url(&Sha256::digest(field("code_verifier").as_bytes())) != *challenge
    {
        return refuse(&mut inner, StatusCode::BAD_REQUEST, "invalid_grant", "Invalid \"code_verifier\".");
    }
    let access_token = shared.next("access");
    inner.tokens.insert(access_token.clone(), issued.user);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 604800,
        "refresh_token": shared.next("refresh"),
        "scope": "identify",
    }))
    .into_response()
}

async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let user = token.and_then(|t| shared.lock().tokens.get(&t).cloned());
    match user {
        Some(user) => Json(json!({
            "id": user.id,
            "username": user.username,
            "discriminator": "0",
            "global_name": user.global_name,
            "avatar": null,
            "public_flags": 0,
            "flags": 0,
            "mfa_enabled": false,
        }))
        .into_response(),
        None => (StatusCode::UNAUTHORIZED, Json(json!({ "message": "401: Unauthorized", "code": 0 }))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_the_pkce_example() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(base64url(&Sha256::digest(verifier.as_bytes())), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn basic_auth_is_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic YWxhZGRpbjpvcGVuc2VzYW1l".parse().unwrap());
        assert_eq!(basic_credentials(&headers), Some(("aladdin".into(), "opensesame".into())));
    }
}

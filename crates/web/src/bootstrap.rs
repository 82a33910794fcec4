//! Accounts from the command line and the first start: the `admin` account, one-time sign-in links and
//! local passwords. `serve` and the `signalpost users` commands call these; the dashboard redeems the links.

use crate::password::{self, PasswordError};
use crate::tokens::{NoRandomness, hash_token, random_token};
use chrono::{DateTime, Duration, Utc};
use domain::UserId;
use store::{NewUser, Role, Store, StoreError, User};

/// How long a one-time sign-in link works.
pub const SIGN_IN_LINK_LIFETIME: Duration = Duration::hours(24);
/// The account the first start creates.
pub const FIRST_ADMIN: &str = "admin";
const PURPOSE: &str = "signalpost sign-in link";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("no user {0:?}: give a user id, a sign-in username or a display name (see `signalpost users list`)")]
    UnknownUser(String),
    #[error("{count} users are called {name:?}; give the user id instead")]
    Ambiguous { name: String, count: usize },
    #[error("the sign-in username {0:?} belongs to another user")]
    UsernameTaken(String),
}

/// The stored form of a sign-in token.
pub fn hash_sign_in_token(token: &str) -> String {
    hash_token(PURPOSE, token)
}

/// Makes a one-time sign-in link for `user` (replacing their older links) and returns its URL.
pub async fn sign_in_link(
    store: &dyn Store,
    public_url: &str,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>), AccountError> {
    let token = random_token()?;
    let expires_at = now + SIGN_IN_LINK_LIFETIME;
    store.create_sign_in_token(user, &hash_sign_in_token(&token), expires_at, now).await?;
    Ok((format!("{}/login/link/{token}", public_url.trim_end_matches('/')), expires_at))
}

/// On a first start (no user has the admin role), creates the `admin` account with no password and returns
/// a one-time sign-in link for it; `None` when an admin exists.
pub async fn first_run(
    store: &dyn Store,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>, AccountError> {
    let users = store.list_users().await?;
    if users.iter().any(|u| u.role == Role::Admin) {
        return Ok(None);
    }
    let admin = store
        .create_user(&NewUser { discord_user_id: None, display_name: FIRST_ADMIN.into(), role: Role::Admin })
        .await?;
    // The username `admin` may already belong to a demoted account; the new admin then signs in by link
    // until someone sets a username and password for it.
    if store.local_credentials_by_username(FIRST_ADMIN).await?.is_none() {
        store.set_local_credentials(admin.id, FIRST_ADMIN, None, now).await?;
    }
    Ok(Some(sign_in_link(store, public_url, admin.id, now).await?))
}

/// The user a command-line argument names: a user id, a sign-in username, or a display name only one user has.
pub async fn resolve_user(store: &dyn Store, given: &str) -> Result<User, AccountError> {
    if let Ok(id) = given.parse::<i64>()
        && let Some(user) = store.get_user(UserId(id)).await?
    {
        return Ok(user);
    }
    if let Some(credentials) = store.local_credentials_by_username(given).await?
        && let Some(user) = store.get_user(credentials.user_id).await?
    {
        return Ok(user);
    }
    let mut named: Vec<User> = store.list_users().await?.into_iter().filter(|u| u.display_name == given).collect();
    match named.len() {
        0 => Err(AccountError::UnknownUser(given.to_string())),
        1 => Ok(named.remove(0)),
        count => Err(AccountError::Ambiguous { name: given.to_string(), count }),
    }
}

/// Sets `user`'s password, keeping their sign-in username or giving them `username` (their display name when
/// `None`) if they have none, and ends their dashboard sessions. Returns the username to sign in with.
pub async fn set_password(
    store: &dyn Store,
    user: &User,
    username: Option<&str>,
    new_password: String,
    now: DateTime<Utc>,
) -> Result<String, AccountError> {
    let hash = password::hash(new_password).await?;
    let username = match store.local_credentials(user.id).await? {
        Some(existing) => existing.username,
        None => username.unwrap_or(&user.display_name).trim().to_string(),
    };
    match store.set_local_credentials(user.id, &username, Some(&hash), now).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => return Err(AccountError::UsernameTaken(username)),
        Err(error) => return Err(error.into()),
    }
    store.delete_user_web_sessions(user.id).await?;
    Ok(username)
}

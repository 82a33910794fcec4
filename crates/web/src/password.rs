//! Local passwords: argon2id with the crate's default (OWASP-recommended) parameters, stored as PHC strings.
//! Hashing is deliberately slow, so it runs on the blocking pool, never on the async workers.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted: argon2 takes any length, but there is no reason to hash megabytes.
pub const MAX_LENGTH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("a password may have at most {MAX_LENGTH} characters")]
    TooLong,
    #[error("the operating system gave no randomness for the salt: {0}")]
    Randomness(String),
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Checks the length rules.
pub fn check_rules(password: &str) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// A PHC string for `password`, after checking the length rules.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    check_rules(&password)?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| PasswordError::Randomness(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hash(e.to_string()))?
}

/// A valid hash of a password nobody knows, so a sign-in for an unknown user costs as much as a real one
/// and its timing does not tell which usernames exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2lnbmFscG9zdGR1bW15$Hk2U1Ih4jYbmXtTh8HaUdJ0B3o5yMx8JFkV4lOC8y9s";

/// Whether `password` matches `stored` (a PHC string); `None` checks against a dummy and answers false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let result = tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
        match PasswordHash::new(&stored) {
            Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(error) => {
                tracing::error!(%error, "a stored password hash is not a valid PHC string");
                false
            }
        }
    })
    .await;
    known && result.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(stored.clone())).await);
        assert!(!verify("wrong horse".into(), Some(stored)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert!(matches!(hash("short".into()).await, Err(PasswordError::TooShort)));
    }
}

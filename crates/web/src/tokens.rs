//! Random tokens and the hashes they are stored under. Session ids and sign-in tokens are stored only as
//! SHA-256 (with a purpose prefix, so a value of one kind never matches another kind's row).

use sha2::{Digest, Sha256};

/// The operating system gave no randomness; nothing safe can be made without it.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no randomness: {0}")]
pub struct NoRandomness(pub(crate) String);

/// 32 random bytes as 64 hex characters.
pub fn random_token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// The stored form of a token of the given purpose.
pub fn hash_token(purpose: &str, token: &str) -> String {
    let digest = Sha256::new().chain_update(purpose.as_bytes()).chain_update(b"\0").chain_update(token).finalize();
    hex::encode(digest)
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_depend_on_purpose() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(hash_token("session", &a), hash_token("sign-in", &a));
        assert_eq!(hash_token("session", &a), hash_token("session", &a));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }
}

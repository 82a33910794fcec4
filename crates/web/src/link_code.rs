//! One-time `/link` codes made on the dashboard. They must be exactly what the `/link` slash command
//! redeems (`signalpost::slash`): the same alphabet and length, the same normalisation and the same salted
//! SHA-256, so a code shown here works in Discord. `crates/app/tests/web_dashboard.rs` redeems a code made
//! here through the slash command's hash to keep the two in step.

use crate::tokens::NoRandomness;
use sha2::{Digest, Sha256};

/// How long a code can be redeemed after it was made (as `signalpost users link-code`).
pub const TTL_MINUTES: i64 = 15;
const LENGTH: usize = 8;
/// Letters and digits nobody confuses when reading a code off a screen.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A fresh code from the operating system's randomness.
pub fn new_code() -> Result<String, NoRandomness> {
    let mut code = String::with_capacity(LENGTH);
    // Bytes at or above the largest multiple of the alphabet's size are dropped so every character is
    // equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    while code.len() < LENGTH {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
        for b in bytes.into_iter().map(usize::from).filter(|b| *b < limit) {
            if code.len() < LENGTH {
                code.push(char::from(ALPHABET[b % ALPHABET.len()]));
            }
        }
    }
    Ok(code)
}

/// The form a code is stored and looked up in.
pub fn hash(code: &str) -> String {
    let normalized: String =
        code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect();
    let digest = Sha256::new().chain_update(b"signalpost link code\0").chain_update(normalized).finalize();
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_differ() {
        let (a, b) = (new_code().unwrap(), new_code().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), LENGTH);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert_eq!(hash("ABCD2345"), hash(" abcd-2345 "));
    }
}

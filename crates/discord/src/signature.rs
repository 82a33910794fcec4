//! The Ed25519 check Discord asks of an Interactions Endpoint: every request is signed over
//! `X-Signature-Timestamp` followed by the raw body, with the application's key (`DISCORD_PUBLIC_KEY`).
//! The check runs before the body is parsed; a missing, bad or stale signature is answered with 401.
//!
//! Stale means more than [`MAX_SKEW_SECONDS`] away from our clock, so a captured request cannot be replayed
//! later.

use ed25519_dalek::{Signature, VerifyingKey};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far a request's timestamp may be from our clock, either way.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// The application's public key was not usable; raised when the verifier is built, so a typo in
/// configuration stops start-up instead of rejecting every interaction later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    #[error("DISCORD_PUBLIC_KEY must be 64 hex characters (32 bytes), got {0} characters")]
    Length(usize),
    #[error("DISCORD_PUBLIC_KEY is not hex: {0}")]
    NotHex(String),
    #[error("DISCORD_PUBLIC_KEY is not a valid Ed25519 public key")]
    NotAKey,
}

/// Why an interaction request was not accepted. Every case is answered with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature-Ed25519 header is missing")]
    MissingSignature,
    #[error("the X-Signature-Timestamp header is missing")]
    MissingTimestamp,
    #[error("the X-Signature-Ed25519 header is not 128 hex characters")]
    MalformedSignature,
    #[error("the X-Signature-Timestamp header is not a Unix time in seconds")]
    MalformedTimestamp,
    #[error("the request timestamp {timestamp} is more than {MAX_SKEW_SECONDS} seconds from now ({now})")]
    Stale { timestamp: i64, now: i64 },
    #[error("the signature does not match the body")]
    Invalid,
}

/// Checks interaction signatures with the application's public key.
#[derive(Debug, Clone)]
pub struct InteractionVerifier {
    key: VerifyingKey,
}

impl InteractionVerifier {
    /// Builds a verifier from the 64-hex-character public key shown on the application's page.
    pub fn new(public_key_hex: &str) -> Result<InteractionVerifier, PublicKeyError> {
        let text = public_key_hex.trim();
        if text.len() != 64 {
            return Err(PublicKeyError::Length(text.chars().count()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| PublicKeyError::NotHex(e.to_string()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| PublicKeyError::NotAKey)?;
        // A weak (small-order) key would accept forged signatures for any message.
        if key.is_weak() {
            return Err(PublicKeyError::NotAKey);
        }
        Ok(InteractionVerifier { key })
    }

    /// Checks the signature headers of a request against its raw body, with the system clock.
    pub fn verify(&self, signature_hex: &str, timestamp: &str, body: &[u8]) -> Result<(), SignatureError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.verify_at(signature_hex, timestamp, body, now)
    }

    /// [`verify`](Self::verify) with the clock given, so tests can pin it.
    pub fn verify_at(
        &self,
        signature_hex: &str,
        timestamp: &str,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        let (signature_hex, timestamp) = (signature_hex.trim(), timestamp.trim());
        if signature_hex.is_empty() {
            return Err(SignatureError::MissingSignature);
        }
        if timestamp.is_empty() {
            return Err(SignatureError::MissingTimestamp);
        }
        let mut raw = [0u8; 64];
        hex::decode_to_slice(signature_hex, &mut raw).map_err(|_| SignatureError::MalformedSignature)?;
        let signature = Signature::from_bytes(&raw);
        let sent_at = parse_timestamp(timestamp)?;
        // Checked before the signature only because it is cheaper; both must pass.
        if (now_unix - sent_at).abs() > MAX_SKEW_SECONDS {
            return Err(SignatureError::Stale { timestamp: sent_at, now: now_unix });
        }
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        // `verify_strict` also refuses the malleable encodings plain `verify` lets through.
        self.key.verify_strict(&message, &signature).map_err(|_| SignatureError::Invalid)
    }
}

fn parse_timestamp(text: &str) -> Result<i64, SignatureError> {
    if text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    text.parse().map_err(|_| SignatureError::MalformedTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: i64 = 1_763_700_000;

    fn keypair(seed: u8) -> (SigningKey, InteractionVerifier) {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let verifier = InteractionVerifier::new(&hex::encode(signing.verifying_key().as_bytes())).unwrap();
        (signing, verifier)
    }

    fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        hex::encode(key.sign(&message).to_bytes())
    }

    #[test]
    fn accepts_a_good_signature() {
        let (key, verifier) = keypair(7);
        let ts = NOW.to_string();
        let body = br#"{"type":1}"#;
        assert_eq!(verifier.verify_at(&sign(&key, &ts, body), &ts, body, NOW), Ok(()));
        assert_eq!(verifier.verify_at(&sign(&key, &ts, body), &ts, body, NOW + MAX_SKEW_SECONDS), Ok(()));
        assert_eq!(verifier.verify_at(&sign(&key, &ts, body).to_uppercase(), &ts, body, NOW - 10), Ok(()));
    }

    #[test]
    fn refuses_a_tampered_body_or_timestamp() {
        let (key, verifier) = keypair(7);
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, br#"{"type":1}"#);
        assert_eq!(verifier.verify_at(&sig, &ts, br#"{"type":2}"#, NOW), Err(SignatureError::Invalid));
        let other = (NOW + 1).to_string();
        assert_eq!(verifier.verify_at(&sig, &other, br#"{"type":1}"#, NOW), Err(SignatureError::Invalid));
    }

    #[test]
    fn refuses_another_key() {
        let (other, _) = keypair(9);
        let (_, verifier) = keypair(7);
        let ts = NOW.to_string();
        let body = b"{}";
        assert_eq!(verifier.verify_at(&sign(&other, &ts, body), &ts, body, NOW), Err(SignatureError::Invalid));
    }

    #[test]
    fn refuses_missing_and_malformed_headers() {
        let (key, verifier) = keypair(7);
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, b"{}");
        assert_eq!(verifier.verify_at("", &ts, b"{}", NOW), Err(SignatureError::MissingSignature));
        assert_eq!(verifier.verify_at(&sig, " ", b"{}", NOW), Err(SignatureError::MissingTimestamp));
        assert_eq!(verifier.verify_at("zz", &ts, b"{}", NOW), Err(SignatureError::MalformedSignature));
        assert_eq!(verifier.verify_at(&sig[..126], &ts, b"{}", NOW), Err(SignatureError::MalformedSignature));
        assert_eq!(verifier.verify_at(&format!("{sig}00"), &ts, b"{}", NOW), Err(SignatureError::MalformedSignature));
        for bad in ["-5", "12a", "1.5", "99999999999999999999"] {
            assert_eq!(verifier.verify_at(&sig, bad, b"{}", NOW), Err(SignatureError::MalformedTimestamp), "{bad}");
        }
    }

    #[test]
    fn refuses_stale_and_future_timestamps() {
        let (key, verifier) = keypair(7);
        for skew in [MAX_SKEW_SECONDS + 1, -(MAX_SKEW_SECONDS + 1), 86_400] {
            let ts = (NOW - skew).to_string();
            let sig = sign(&key, &ts, b"{}");
            assert!(matches!(verifier.verify_at(&sig, &ts, b"{}", NOW), Err(SignatureError::Stale { .. })), "{skew}");
        }
    }

    #[test]
    fn the_system_clock_is_used_by_verify() {
        let (key, verifier) = keypair(7);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
        assert_eq!(verifier.verify(&sign(&key, &now, b"{}"), &now, b"{}"), Ok(()));
        assert!(matches!(
            verifier.verify(&sign(&key, "1000", b"{}"), "1000", b"{}"),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn bad_public_keys_are_refused_at_construction() {
        assert_eq!(InteractionVerifier::new("abcd").unwrap_err(), PublicKeyError::Length(4));
        assert!(matches!(InteractionVerifier::new(&"zz".repeat(32)), Err(PublicKeyError::NotHex(_))));
        // The identity point is a valid encoding but a small-order (weak) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(InteractionVerifier::new(&hex::encode(identity)).unwrap_err(), PublicKeyError::NotAKey);
        let err = InteractionVerifier::new("").unwrap_err().to_string();
        assert!(err.contains("64 hex characters"), "{err}");
    }
}

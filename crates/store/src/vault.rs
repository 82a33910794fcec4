//! The key vault: followers' broker API keys sealed at rest with AES-256-GCM.
//!
//! The database only ever holds [`SealedCredentials`]; the 32-byte key lives outside it (the
//! `SIGNALPOST_SECRET_KEY` setting, or a key file generated into the data dir on first start), so a copy of
//! the database alone — a backup, a dump attached to a bug report — reveals no key. Each seal uses a fresh
//! random nonce and binds the owning user's id in as associated data: a sealed blob copied into another
//! user's row does not open, so a write bug or a tampered row cannot hand one user's keys to another.
//! None of the types here print a secret through `Debug`, and errors never carry one.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::UserId;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// A broker account's API key pair, in the clear. Lives only in memory, between opening and use; it has no
/// `Serialize`, so it cannot end up in a JSON log or page by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerCredentials {
    pub api_key: String,
    pub api_secret: String,
}

/// The sealed plaintext's layout.
#[derive(Serialize, Deserialize)]
struct Plain {
    api_key: String,
    api_secret: String,
}

impl std::fmt::Debug for BrokerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerCredentials").field("api_key", &"[redacted]").field("api_secret", &"[redacted]").finish()
    }
}

/// Credentials as stored: `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials(Vec<u8>);

impl SealedCredentials {
    /// Wraps bytes read from the database; whether they open is decided by [`KeyCipher::open`].
    pub fn from_bytes(bytes: Vec<u8>) -> SealedCredentials {
        SealedCredentials(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[sealed]")
    }
}

/// Why the vault could not be set up, or a sealed value could not be opened.
#[derive(thiserror::Error, Debug)]
pub enum VaultError {
    /// The configured key is not 32 bytes of standard base64. The message never contains the key.
    #[error("the secret key is unusable: {0}")]
    BadKey(String),
    #[error("cannot read or write the secret key file {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Wrong key, a tampered or truncated blob, or a blob sealed for another user.
    #[error("the stored broker credentials cannot be opened with this secret key (changed key, or tampered data)")]
    CannotOpen,
}

/// Seals and opens broker credentials with one AES-256-GCM key.
#[derive(Clone)]
pub struct KeyCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher([redacted])")
    }
}

/// The associated data of a seal: a purpose tag (so these blobs never open as anything else) and the owner.
fn associated_data(owner: UserId) -> Vec<u8> {
    format!("signalpost broker credentials v1; user {}", owner.0).into_bytes()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without OS randomness no key or nonce can be made safely; there is nothing sensible to fall back to.
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

impl KeyCipher {
    fn from_key(key: &[u8; KEY_LEN]) -> KeyCipher {
        KeyCipher { cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)) }
    }

    /// A key given as standard base64 (what `SIGNALPOST_SECRET_KEY` and the key file hold): exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<KeyCipher, VaultError> {
        let bytes =
            STANDARD.decode(text.trim()).map_err(|_| VaultError::BadKey("it is not standard base64 text".into()))?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            VaultError::BadKey(format!("it decodes to {} bytes, an AES-256 key is {KEY_LEN}", bytes.len()))
        })?;
        Ok(KeyCipher::from_key(&key))
    }

    /// Reads the key file, or creates it with a fresh random key (mode 0600 on unix) when it is missing.
    ///
    /// Creation writes a temporary file and hard-links it into place, which fails if the file appeared
    /// meanwhile: two processes starting at once end up with the same key, and nobody ever reads a half
    /// written file.
    pub fn load_or_create(path: &Path) -> Result<KeyCipher, VaultError> {
        let io = |source| VaultError::Io { path: path.to_path_buf(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => return KeyCipher::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let key = random_bytes::<KEY_LEN>();
        let temp = dir.join(format!(".secret-key.{}.{}.tmp", std::process::id(), hex_suffix()));
        let written = write_private(&temp, format!("{}\n", STANDARD.encode(key)).as_bytes());
        let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(KeyCipher::from_key(&key)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io)?;
                KeyCipher::from_base64(&text)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A fresh random key, for tests.
    pub fn generate() -> KeyCipher {
        KeyCipher::from_key(&random_bytes::<KEY_LEN>())
    }

    /// Seals credentials for `owner`, with a new random nonce each time.
    pub fn seal(&self, credentials: &BrokerCredentials, owner: UserId) -> SealedCredentials {
        let nonce = random_bytes::<NONCE_LEN>();
        let plain = Plain { api_key: credentials.api_key.clone(), api_secret: credentials.api_secret.clone() };
        let plain = serde_json::to_vec(&plain).expect("two strings always serialise");
        let aad = associated_data(owner);
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: &plain, aad: &aad })
            .expect("AES-GCM encryption of a small message cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        SealedCredentials(out)
    }

    /// Opens credentials sealed for `owner`; [`VaultError::CannotOpen`] for any other key, owner or a
    /// changed byte.
    pub fn open(&self, sealed: &SealedCredentials, owner: UserId) -> Result<BrokerCredentials, VaultError> {
        if sealed.0.len() < NONCE_LEN {
            return Err(VaultError::CannotOpen);
        }
        let (nonce, body) = sealed.0.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::CannotOpen)?;
        let aad = associated_data(owner);
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: body, aad: &aad })
            .map_err(|_| VaultError::CannotOpen)?;
        let plain: Plain = serde_json::from_slice(&plain).map_err(|_| VaultError::CannotOpen)?;
        Ok(BrokerCredentials { api_key: plain.api_key, api_secret: plain.api_secret })
    }
}

/// A few random hex digits, so concurrent creators never share a temporary file.
fn hex_suffix() -> String {
    random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> BrokerCredentials {
        BrokerCredentials { api_key: "AKIA-public-part".into(), api_secret: "very-secret-value".into() }
    }

    #[test]
    fn seal_and_open_round_trip() {
        let cipher = KeyCipher::generate();
        let sealed = cipher.seal(&creds(), UserId(7));
        assert_eq!(cipher.open(&sealed, UserId(7)).unwrap(), creds());
    }

    #[test]
    fn two_seals_of_the_same_keys_differ() {
        let cipher = KeyCipher::generate();
        let a = cipher.seal(&creds(), UserId(7));
        let b = cipher.seal(&creds(), UserId(7));
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(!a.as_bytes().windows(b"very-secret".len()).any(|w| w == b"very-secret"), "no plaintext");
    }

    #[test]
    fn wrong_key_wrong_owner_and_tampering_fail() {
        let cipher = KeyCipher::generate();
        let sealed = cipher.seal(&creds(), UserId(7));
        assert!(matches!(KeyCipher::generate().open(&sealed, UserId(7)), Err(VaultError::CannotOpen)));
        assert!(matches!(cipher.open(&sealed, UserId(8)), Err(VaultError::CannotOpen)));
        for i in 0..sealed.as_bytes().len() {
            let mut bytes = sealed.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let flipped = SealedCredentials::from_bytes(bytes);
            assert!(matches!(cipher.open(&flipped, UserId(7)), Err(VaultError::CannotOpen)), "byte {i}");
        }
        let short = SealedCredentials::from_bytes(sealed.as_bytes()[..5].to_vec());
        assert!(matches!(cipher.open(&short, UserId(7)), Err(VaultError::CannotOpen)));
        let truncated = SealedCredentials::from_bytes(sealed.as_bytes()[..sealed.as_bytes().len() - 1].to_vec());
        assert!(matches!(cipher.open(&truncated, UserId(7)), Err(VaultError::CannotOpen)));
    }

    #[test]
    fn debug_shows_no_secret() {
        let key_text = STANDARD.encode([42u8; 32]);
        let cipher = KeyCipher::from_base64(&key_text).unwrap();
        let sealed = cipher.seal(&creds(), UserId(7));
        let shown = format!("{:?} {:?} {:?} {:#?}", creds(), sealed, cipher, creds());
        for secret in ["AKIA-public-part", "very-secret-value", key_text.as_str(), "42, 42"] {
            assert!(!shown.contains(secret), "{secret:?} leaked in {shown}");
        }
        assert!(shown.contains("[sealed]") && shown.contains("KeyCipher([redacted])"), "{shown}");
        let error = format!("{} {:?}", VaultError::CannotOpen, VaultError::CannotOpen);
        assert!(!error.contains("very-secret-value"));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(KeyCipher::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(KeyCipher::from_base64(&format!("  {}\n", STANDARD.encode([1u8; 32]))).is_ok());
        let short = STANDARD.encode([1u8; 16]);
        let Err(VaultError::BadKey(message)) = KeyCipher::from_base64(&short) else { panic!("16 bytes accepted") };
        assert!(message.contains("16 bytes") && !message.contains(&short), "{message}");
        assert!(matches!(KeyCipher::from_base64("not base64 at all!"), Err(VaultError::BadKey(_))));
        assert!(matches!(KeyCipher::from_base64(""), Err(VaultError::BadKey(_))));
    }

    #[test]
    fn load_or_create_creates_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("secret.key");
        let first = KeyCipher::load_or_create(&path).unwrap();
        let sealed = first.seal(&creds(), UserId(1));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = KeyCipher::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, UserId(1)).unwrap(), creds(), "the same key is reloaded");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");

        let other = dir.path().join("other.key");
        let fresh = KeyCipher::load_or_create(&other).unwrap();
        assert!(matches!(fresh.open(&sealed, UserId(1)), Err(VaultError::CannotOpen)), "a new file, a new key");

        std::fs::write(&other, "garbage").unwrap();
        assert!(matches!(KeyCipher::load_or_create(&other), Err(VaultError::BadKey(_))));
    }
}

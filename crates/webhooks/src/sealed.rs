//! Credential secrets encrypted at rest (ChaCha20-Poly1305), so a copy of the database or a
//! backup does not hand out the Salesforce connected app's secret.
//!
//! The key comes from `LEADWIRE_SECRET_KEY` (base64 of 32 bytes) or a key file created 0600 on
//! first start; the binary decides which. A sealed value is `lw1:` + base64(nonce ‖ ciphertext);
//! a value without the prefix is a secret saved before sealing existed and is read as it is (and
//! sealed at the next start, see `Credentials::seal_plaintext`).

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const PREFIX: &str = "lw1:";
const NONCE_LEN: usize = 12;

/// The key credentials are sealed with. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{0} is not a key: it must be base64 of 32 bytes (make one with `openssl rand -base64 32`)"
    )]
    Malformed(String),
    #[error("cannot read or create the key file {path}: {reason}")]
    File { path: String, reason: String },
}

impl SecretKey {
    pub fn generate() -> SecretKey {
        SecretKey(rand::random())
    }

    /// Parses base64 of 32 bytes; `what` names where it came from for the error.
    pub fn from_base64(text: &str, what: &str) -> Result<SecretKey, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed(what.to_owned()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Malformed(what.to_owned()))?;
        Ok(SecretKey(key))
    }

    /// Reads the key file, or creates it (mode 0600) with a new key. Two processes starting at
    /// once agree: the file appears whole, by a hard link that fails if another got there first.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, KeyError> {
        let file_error = |e: std::io::Error| KeyError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Ok(text) = std::fs::read_to_string(path) {
            return SecretKey::from_base64(&text, &path.display().to_string());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        let key = SecretKey::generate();
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp).map_err(file_error)?;
            writeln!(file, "{}", STANDARD.encode(key.0)).map_err(file_error)?;
            file.sync_all().map_err(file_error)?;
        }
        let linked = std::fs::hard_link(&temp, path);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(file_error)?;
                SecretKey::from_base64(&text, &path.display().to_string())
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// Encrypts a secret for the database.
    pub fn seal(&self, plain: &str) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let nonce: [u8; NONCE_LEN] = rand::random();
        // Encryption into a Vec cannot fail for inputs this size; fall back to nothing stored
        // in clear if it ever did.
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// Decrypts a stored value; a value saved before sealing is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "a sealed secret is damaged".to_owned())?;
        if bytes.len() < NONCE_LEN {
            return Err("a sealed secret is damaged".into());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| {
                "a secret was sealed with another key: give every node the same key \
             (LEADWIRE_SECRET_KEY or the same --secret-key-file)"
                    .to_owned()
            })?;
        String::from_utf8(plain).map_err(|_| "a sealed secret is damaged".into())
    }

    /// Whether a stored value is still in clear.
    pub fn is_plain(stored: &str) -> bool {
        !stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = SecretKey::generate();
        let sealed = key.seal("client-secret-123");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("client-secret-123"));
        assert_ne!(
            sealed,
            key.seal("client-secret-123"),
            "a fresh nonce each time"
        );
        assert_eq!(key.open(&sealed).as_deref(), Ok("client-secret-123"));
        assert!(SecretKey::generate().open(&sealed).is_err());
        assert_eq!(key.open("legacy").as_deref(), Ok("legacy"));
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys/secret.key");
        let first = SecretKey::load_or_create(&path).expect("created");
        let again = SecretKey::load_or_create(&path).expect("read");
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "short").expect("write");
        assert!(matches!(
            SecretKey::load_or_create(&path),
            Err(KeyError::Malformed(_))
        ));
    }
}

//! Secrets at rest and in memory. Access-key secrets, content keys and site
//! credentials are sealed with AES-256-GCM under a master key that lives
//! outside the database, so a database file alone reveals no secret.
//! [`Secret`] keeps plaintext out of `Debug` output and logs.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Name of the master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
const NONCE_LEN: usize = 12;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// A sealed value could not be opened: wrong master key or damaged data.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret could not be opened (wrong master key or damaged data)")]
pub struct UnsealError;

/// The key that seals every secret stored in the database.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(********)")
    }
}

impl MasterKey {
    /// Reads the key from a setting (64 hex digits or base64 of 32 bytes),
    /// or else from `<data_dir>/master.key`; `None` when neither exists.
    pub fn find(setting: Option<&Secret>, data_dir: &Path) -> anyhow::Result<Option<Self>> {
        if let Some(text) = setting {
            return Self::parse(text.expose())
                .map(Some)
                .context("MULTIDRM_MASTER_KEY is not 32 bytes in hex or base64");
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = Zeroizing::new(
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        );
        Self::parse(text.trim())
            .map(Some)
            .with_context(|| format!("{} does not hold a master key", path.display()))
    }

    /// Generates a key and writes it to `<data_dir>/master.key` (mode 0600).
    pub fn create(data_dir: &Path) -> anyhow::Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        let path = data_dir.join(MASTER_KEY_FILE);
        write_private_file(&path, hex::encode(bytes.as_ref()).as_bytes())?;
        Ok(Self(*Key::<Aes256Gcm>::from_slice(bytes.as_ref())))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(match hex::decode(text) {
            Ok(bytes) => bytes,
            Err(_) => STANDARD.decode(text).context("neither hex nor base64")?,
        });
        if bytes.len() != 32 {
            bail!("expected 32 bytes, found {}", bytes.len());
        }
        Ok(Self(*Key::<Aes256Gcm>::from_slice(&bytes)))
    }

    /// Encrypts `plaintext` under a fresh random nonce; the nonce leads the output.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = Aes256Gcm::new(&self.0)
            .encrypt(&nonce, plaintext)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Decrypts what [`MasterKey::seal`] produced.
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
        if sealed.len() < NONCE_LEN {
            return Err(UnsealError);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        Aes256Gcm::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), body)
            .map(Zeroizing::new)
            .map_err(|_| UnsealError)
    }
}

/// Writes `contents` to a new file readable only by its owner (mode 0600).
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::create(dir.path()).unwrap();
        let other = MasterKey::find(Some(&Secret::new(hex::encode([7u8; 32]))), dir.path())
            .unwrap()
            .unwrap();

        let sealed = key.seal(b"content key");

        assert_ne!(&sealed[NONCE_LEN..], b"content key");
        assert_eq!(key.open(&sealed).unwrap().as_slice(), b"content key");
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn the_master_key_file_is_private_and_found_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();

        let first = MasterKey::create(dir.path()).unwrap();
        let second = MasterKey::find(None, dir.path()).unwrap().unwrap();

        let mode = fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(second.open(&first.seal(b"x")).unwrap().as_slice(), b"x");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(********)");
    }
}
